"""MSB-first bit reader for codec headers (H.264/H.265 SPS, AAC, AV1).

``BitReader`` walks a byte string bit by bit, with the Exp-Golomb helpers the
video parameter sets need.  Reading past the end raises :class:`CodecError`.
"""

from .errors import CodecError

__all__ = ["BitReader", "unescape_rbsp"]

_EMULATION = b"\x00\x00\x03"


def unescape_rbsp(data) -> bytes:
    """Return the RBSP of a NAL unit: every ``00 00 03`` becomes ``00 00``.

    The byte after a removed 0x03 starts a fresh zero run, so ``00 00 03 00
    00 03`` yields four zero bytes.
    """
    data = bytes(data)
    hit = data.find(_EMULATION)
    if hit < 0:
        return data
    out = bytearray()
    start = 0
    while hit >= 0:
        out += data[start:hit + 2]
        start = hit + 3
        hit = data.find(_EMULATION, start)
    out += data[start:]
    return bytes(out)


class BitReader:
    """Read unsigned, Exp-Golomb and signed fields from ``data`` (MSB first)."""

    __slots__ = ("_data", "_pos", "_end")

    def __init__(self, data, offset: int = 0):
        self._data = bytes(data)
        self._pos = offset * 8
        self._end = len(self._data) * 8
        if self._pos > self._end:
            raise CodecError("bit reader offset %d beyond %d bytes" % (offset, len(self._data)))

    @property
    def bits_left(self) -> int:
        """Number of unread bits."""
        return self._end - self._pos

    @property
    def position(self) -> int:
        """Current position in bits from the start of the data."""
        return self._pos

    def _need(self, n: int) -> None:
        if n < 0:
            raise CodecError("negative bit count %d" % n)
        if n > self._end - self._pos:
            raise CodecError(
                "bitstream truncated: need %d bits at bit %d, only %d left"
                % (n, self._pos, self._end - self._pos))

    def read_bits(self, n: int) -> int:
        """Read ``n`` bits as an unsigned integer (``n`` may be 0)."""
        self._need(n)
        if n == 0:
            return 0
        pos = self._pos
        first = pos >> 3
        last = (pos + n + 7) >> 3
        chunk = int.from_bytes(self._data[first:last], "big")
        self._pos = pos + n
        return (chunk >> ((last << 3) - pos - n)) & ((1 << n) - 1)

    def read_bit(self) -> int:
        """Read one bit (0 or 1)."""
        return self.read_bits(1)

    def read_flag(self) -> bool:
        """Read one bit as a boolean."""
        return self.read_bits(1) == 1

    def skip(self, n: int) -> None:
        """Advance ``n`` bits."""
        self._need(n)
        self._pos += n

    def byte_align(self) -> None:
        """Skip to the next byte boundary (no-op when already aligned)."""
        self._pos = min(self._end, (self._pos + 7) & ~7)

    def read_bytes(self, n: int) -> bytes:
        """Read ``n`` whole bytes; the reader must be byte aligned."""
        if self._pos & 7:
            raise CodecError("read_bytes on a non byte-aligned position")
        self._need(n * 8)
        start = self._pos >> 3
        self._pos += n * 8
        return self._data[start:start + n]

    def read_ue(self) -> int:
        """Read an unsigned Exp-Golomb code ``ue(v)`` (at most 32 bits)."""
        zeros = 0
        while self.read_bits(1) == 0:
            zeros += 1
            if zeros > 31:
                raise CodecError("Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.read_bits(zeros)

    def read_se(self) -> int:
        """Read a signed Exp-Golomb code ``se(v)``."""
        code = self.read_ue()
        if code & 1:
            return (code + 1) >> 1
        return -(code >> 1)
