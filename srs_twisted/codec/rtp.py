"""RTP packets (RFC 3550) with RFC 8285 header extensions, and fan-out helpers.

:meth:`RtpPacket.parse` reads a datagram without copying its payload (the
payload is a memoryview of the input) and ``bytes(packet)`` writes it back.
Header extensions are kept as the raw block (``extension_profile`` and
``extension_data``); :meth:`RtpPacket.extensions` decodes its one-byte
(0xBEDE) or two-byte (0x100X) elements on demand.

:class:`FanOut` is the "serialize once" path for relaying one packet to
many players: everything but the first 12 bytes of the header is prepared
once, and each player's copy costs one ``struct.pack`` plus one join of the
same shared payload.  The sequence-number helpers do RFC 1982 style 16-bit
arithmetic; :class:`SeqUnwrapper` turns wrapping numbers into a monotonic
count.
"""

import struct
from dataclasses import dataclass, field

from .errors import CodecError

__all__ = [
    "RtpError", "RtpPacket", "FanOut", "SeqUnwrapper", "packetize",
    "parse_extensions", "pack_extensions", "extension_block", "twcc_extension_block",
    "seq_add", "seq_diff", "seq_newer", "ts_diff",
    "EXT_ONE_BYTE", "EXT_TWO_BYTE", "TRANSPORT_CC_URI", "HEADER_SIZE",
]

HEADER_SIZE = 12
EXT_ONE_BYTE = 0xBEDE
EXT_TWO_BYTE = 0x1000  # the low four "appbits" are free
TRANSPORT_CC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

_FIXED = struct.Struct(">BBHII")
_EXT_HEADER = struct.Struct(">HH")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_TWCC_ONE = struct.Struct(">HHBHx")  # 0xBEDE, 1 word, id/len byte, seq, one pad byte
_TWCC_TWO = struct.Struct(">HHBBH")  # 0x1000, 1 word, id, len 2, seq


class RtpError(CodecError):
    """Malformed or unsupported RTP (or RTP payload) bytes."""


# --- sequence numbers ------------------------------------------------------


def seq_add(seq: int, n: int) -> int:
    """``seq + n`` modulo 2**16."""
    return (seq + n) & 0xFFFF


def flv_media(parse, body, codec: str, wrong_codec: str):
    """``(tag, data)`` of an FLV/RTMP tag ``body`` read by ``parse``
    (flv.parse_video or flv.parse_audio) whose codec must be ``codec``
    (else RtpError(``wrong_codec % tag.codec``)); ``data`` is a memoryview
    of the codec bytes.  A malformed tag is an RtpError too."""
    try:
        tag = parse(body)
    except CodecError as e:
        raise RtpError(str(e)) from e
    if tag.codec != codec:
        raise RtpError(wrong_codec % tag.codec)
    return tag, memoryview(body)[tag.data_offset:]


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` of two 16-bit sequence numbers, in [-32768, 32767]."""
    d = (a - b) & 0xFFFF
    return d - 0x10000 if d >= 0x8000 else d


def seq_newer(a: int, b: int) -> bool:
    """True when ``a`` comes after ``b`` (across a wrap)."""
    return seq_diff(a, b) > 0


def ts_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` of two 32-bit RTP timestamps."""
    d = (a - b) & 0xFFFFFFFF
    return d - 0x100000000 if d >= 0x80000000 else d


class SeqUnwrapper:
    """Extend wrapping sequence numbers (16 bits by default) to plain ints.

    Each number is placed at the signed distance from the previous one, so
    the result keeps growing across wraps and late packets land before.
    """

    __slots__ = ("_half", "_mod", "_last")

    def __init__(self, bits: int = 16):
        self._mod = 1 << bits
        self._half = self._mod >> 1
        self._last = None

    def unwrap(self, seq: int) -> int:
        if self._last is None:
            self._last = seq
            return seq
        d = (seq - self._last) % self._mod
        if d >= self._half:
            d -= self._mod
        value = self._last + d
        if d > 0:
            self._last = value
        return value

    @property
    def last(self):
        """The highest unwrapped number seen (None before the first)."""
        return self._last


# --- header extensions (RFC 8285) -------------------------------------------


def parse_extensions(profile: int, data) -> list:
    """Decode the elements of an extension block as ``[(id, bytes)]``.

    A profile other than one-byte or two-byte headers yields ``[]``.  In the
    one-byte form id 15 stops the parse, as RFC 8285 says.
    """
    data = memoryview(data)
    end = len(data)
    items = []
    pos = 0
    if profile == EXT_ONE_BYTE:
        while pos < end:
            b = data[pos]
            ext_id = b >> 4
            if ext_id == 0:  # padding
                pos += 1
                continue
            if ext_id == 15:
                break
            n = (b & 0x0F) + 1
            pos += 1
            if pos + n > end:
                raise RtpError("RTP one-byte extension %d of %d bytes overruns its block" % (ext_id, n))
            items.append((ext_id, bytes(data[pos:pos + n])))
            pos += n
    elif profile & 0xFFF0 == EXT_TWO_BYTE:
        while pos < end:
            ext_id = data[pos]
            if ext_id == 0:
                pos += 1
                continue
            if pos + 2 > end:
                raise RtpError("RTP two-byte extension %d has no length" % ext_id)
            n = data[pos + 1]
            pos += 2
            if pos + n > end:
                raise RtpError("RTP two-byte extension %d of %d bytes overruns its block" % (ext_id, n))
            items.append((ext_id, bytes(data[pos:pos + n])))
            pos += n
    return items


def pack_extensions(items) -> tuple:
    """Encode ``[(id, bytes)]`` as ``(profile, data)``, data padded to 4 bytes.

    The one-byte form is used when every id is 1..14 and every value 1..16
    bytes long, otherwise the two-byte form (ids 1..255, 0..255 bytes).
    """
    items = [(i, bytes(v)) for i, v in items]
    if not items:
        return 0, b""
    one_byte = all(1 <= i <= 14 and 1 <= len(v) <= 16 for i, v in items)
    out = bytearray()
    for ext_id, value in items:
        if one_byte:
            out.append((ext_id << 4) | (len(value) - 1))
        else:
            if not 1 <= ext_id <= 255 or len(value) > 255:
                raise RtpError("RTP extension id %d with %d bytes cannot be encoded" % (ext_id, len(value)))
            out += bytes((ext_id, len(value)))
        out += value
    out += bytes(-len(out) % 4)
    return (EXT_ONE_BYTE if one_byte else EXT_TWO_BYTE), bytes(out)


def extension_block(items) -> bytes:
    """The whole extension block (profile, length, elements) for ``items``."""
    profile, data = pack_extensions(items)
    if not profile:
        return b""
    return _EXT_HEADER.pack(profile, len(data) >> 2) + data


def twcc_extension_block(ext_id: int, seq: int) -> bytes:
    """An extension block holding only a transport-wide sequence number."""
    if 1 <= ext_id <= 14:
        return _TWCC_ONE.pack(EXT_ONE_BYTE, 1, (ext_id << 4) | 1, seq & 0xFFFF)
    if 15 <= ext_id <= 255:
        return _TWCC_TWO.pack(EXT_TWO_BYTE, 1, ext_id, 2, seq & 0xFFFF)
    raise RtpError("invalid RTP extension id %d" % ext_id)


# --- packets --------------------------------------------------------------


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet.

    ``payload`` is a memoryview into the parsed datagram (any bytes-like
    when built).  ``padding`` is the number of padding bytes, the count byte
    included.  ``extension_profile`` is 0 when the packet has no extension.
    """

    payload_type: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    marker: bool = False
    payload: object = b""
    csrcs: list = field(default_factory=list)
    extension_profile: int = 0
    extension_data: bytes = b""
    padding: int = 0

    @classmethod
    def parse(cls, data) -> "RtpPacket":
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        end = len(view)
        if end < HEADER_SIZE:
            raise RtpError("RTP packet of %d bytes is shorter than its header" % end)
        b0, b1, seq, ts, ssrc = _FIXED.unpack_from(view)
        if b0 >> 6 != 2:
            raise RtpError("RTP version %d is not 2" % (b0 >> 6))
        cc = b0 & 0x0F
        pos = HEADER_SIZE + 4 * cc
        if pos > end:
            raise RtpError("RTP packet truncated in its %d CSRCs" % cc)
        csrcs = list(struct.unpack_from(">%dI" % cc, view, HEADER_SIZE)) if cc else []
        profile = 0
        ext = b""
        if b0 & 0x10:
            if pos + 4 > end:
                raise RtpError("RTP packet truncated in its extension header")
            profile, words = _EXT_HEADER.unpack_from(view, pos)
            pos += 4
            if pos + 4 * words > end:
                raise RtpError("RTP extension of %d words overruns the packet" % words)
            ext = bytes(view[pos:pos + 4 * words])
            pos += 4 * words
        padding = 0
        if b0 & 0x20:
            padding = view[end - 1] if end > pos else 0
            if not padding or padding > end - pos:
                raise RtpError("RTP padding count %d is invalid" % padding)
            end -= padding
        return cls(b1 & 0x7F, seq, ts, ssrc, bool(b1 & 0x80), view[pos:end], csrcs,
                   profile, ext, padding)

    def header_bytes(self) -> bytes:
        """The header (fixed part, CSRCs and extension block) without payload."""
        csrcs = self.csrcs
        if len(csrcs) > 15:
            raise RtpError("an RTP packet carries at most 15 CSRCs, not %d" % len(csrcs))
        ext = self.extension_data
        if len(ext) % 4:
            raise RtpError("RTP extension data of %d bytes is not a multiple of 4" % len(ext))
        has_ext = bool(self.extension_profile)
        b0 = 0x80 | (0x20 if self.padding else 0) | (0x10 if has_ext else 0) | len(csrcs)
        parts = [_FIXED.pack(b0, (0x80 if self.marker else 0) | (self.payload_type & 0x7F),
                             self.sequence_number & 0xFFFF, self.timestamp & 0xFFFFFFFF,
                             self.ssrc & 0xFFFFFFFF)]
        if csrcs:
            parts.append(struct.pack(">%dI" % len(csrcs), *csrcs))
        if has_ext:
            parts.append(_EXT_HEADER.pack(self.extension_profile, len(ext) >> 2))
            parts.append(ext)
        return b"".join(parts)

    def __bytes__(self) -> bytes:
        parts = [self.header_bytes(), self.payload]
        if self.padding:
            if not 1 <= self.padding <= 255:
                raise RtpError("RTP padding of %d bytes is invalid" % self.padding)
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)

    def extensions(self) -> list:
        """The header extension elements as ``[(id, bytes)]``."""
        return parse_extensions(self.extension_profile, self.extension_data)

    def get_extension(self, ext_id: int):
        """The value of extension ``ext_id`` (None when absent)."""
        for i, value in self.extensions():
            if i == ext_id:
                return value
        return None

    def set_extensions(self, items) -> None:
        """Replace every header extension with ``[(id, bytes)]``."""
        self.extension_profile, self.extension_data = pack_extensions(items)

    def transport_sequence(self, ext_id: int):
        """The transport-wide-cc sequence number carried in ``ext_id``, or None."""
        value = self.get_extension(ext_id)
        if value is None:
            return None
        if len(value) != 2:
            raise RtpError("transport-cc extension of %d bytes (expected 2)" % len(value))
        return _U16.unpack(value)[0]


def packetize(payloads, payload_type: int, ssrc: int, first_seq: int, timestamp: int,
              marker: bool = True) -> list:
    """RTP packets for the payloads of one frame: consecutive sequence
    numbers from ``first_seq``, one timestamp, the marker on the last one
    (when ``marker``)."""
    packets = [RtpPacket(payload_type, (first_seq + i) & 0xFFFF, timestamp, ssrc, False, p)
               for i, p in enumerate(payloads)]
    if packets and marker:
        packets[-1].marker = True
    return packets


class FanOut:
    """One packet prepared once and copied for many players.

    Each player's copy differs only in SSRC, payload type and sequence
    number (and optionally the timestamp or the extension block, e.g. a
    per-transport TWCC number from :func:`twcc_extension_block`).  The
    CSRC list, the extension block and the payload bytes are shared.
    """

    __slots__ = ("_b0", "_b0_cc", "_marker", "timestamp", "_tail", "_csrc", "payload", "_pad")

    def __init__(self, packet: RtpPacket):
        header = packet.header_bytes()
        self._b0 = header[0]
        self._b0_cc = header[0] & 0xEF  # without the X bit
        self._marker = 0x80 if packet.marker else 0
        self.timestamp = packet.timestamp & 0xFFFFFFFF
        self._tail = header[HEADER_SIZE:]
        self._csrc = header[HEADER_SIZE:HEADER_SIZE + 4 * len(packet.csrcs)]
        self.payload = packet.payload
        self._pad = (bytes(packet.padding - 1) + bytes((packet.padding,))) if packet.padding else b""

    def header(self, ssrc: int, payload_type: int, sequence_number: int,
               timestamp=None, extension=None) -> bytes:
        """The rewritten header; ``extension`` (a whole block, or b"" for none)
        replaces the original extension block when given."""
        ts = self.timestamp if timestamp is None else timestamp & 0xFFFFFFFF
        if extension is None:
            return _FIXED.pack(self._b0, self._marker | (payload_type & 0x7F),
                               sequence_number & 0xFFFF, ts, ssrc) + self._tail
        b0 = self._b0_cc | (0x10 if extension else 0)
        return _FIXED.pack(b0, self._marker | (payload_type & 0x7F), sequence_number & 0xFFFF,
                           ts, ssrc) + self._csrc + extension

    def packet(self, ssrc: int, payload_type: int, sequence_number: int,
               timestamp=None, extension=None) -> bytes:
        """The whole rewritten packet: header, the shared payload, padding."""
        if extension is None:
            ts = self.timestamp if timestamp is None else timestamp & 0xFFFFFFFF
            return b"".join((_FIXED.pack(self._b0, self._marker | (payload_type & 0x7F),
                                         sequence_number & 0xFFFF, ts, ssrc),
                             self._tail, self.payload, self._pad))
        return b"".join((self.header(ssrc, payload_type, sequence_number, timestamp, extension),
                         self.payload, self._pad))
