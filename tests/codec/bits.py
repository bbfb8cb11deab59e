"""Test helpers: an MSB-first bit writer for synthetic codec headers, and fuzzing."""

import random

from srs_twisted.codec.errors import CodecError


class BitWriter:
    def __init__(self):
        self._bits = []

    def u(self, width, value):
        if width:
            assert 0 <= value < (1 << width), (width, value)
            self._bits.append(format(value, "0%db" % width))
        return self

    def flag(self, value):
        return self.u(1, 1 if value else 0)

    def ue(self, value):
        code = value + 1
        self._bits.append("0" * (code.bit_length() - 1) + format(code, "b"))
        return self

    def se(self, value):
        return self.ue(2 * value - 1 if value > 0 else -2 * value)

    def trailing(self):
        """rbsp_trailing_bits: a stop bit then zero bits to a byte boundary."""
        self._bits.append("1")
        return self

    def tobytes(self):
        bits = "".join(self._bits)
        bits += "0" * (-len(bits) % 8)
        return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def escape_rbsp(rbsp):
    """Insert emulation prevention bytes (the inverse of unescape_rbsp)."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def assert_fuzz(testcase, parse, seed, rounds=3000, rng_seed=0, changes=3, error=None):
    """Parse ``rounds`` randomly mutated copies of ``seed``: only ``error`` may escape."""
    rng = random.Random(rng_seed)
    error = error or CodecError
    for _ in range(rounds):
        data = bytearray(seed)
        for _ in range(rng.randint(1, changes)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            parse(bytes(data))
        except error:
            pass
        except Exception as e:  # noqa: BLE001 - report what leaked, with its input
            testcase.fail("%r leaked from %s(%s)" % (e, parse.__name__, bytes(data).hex()))
