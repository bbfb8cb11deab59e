"""Tests for srs_twisted.codec.bitreader."""

from twisted.trial import unittest

from srs_twisted.codec.bitreader import BitReader, unescape_rbsp
from srs_twisted.codec.errors import CodecError

from .bits import BitWriter, escape_rbsp


class BitReaderTests(unittest.TestCase):
    def test_read_bits_across_bytes(self):
        # 1010 0101 0000 1111
        r = BitReader(b"\xa5\x0f")
        self.assertEqual(r.bits_left, 16)
        self.assertEqual(r.read_bits(3), 0b101)
        self.assertEqual(r.read_bits(7), 0b0010100)
        self.assertEqual(r.position, 10)
        self.assertEqual(r.read_bits(6), 0b001111)
        self.assertEqual(r.bits_left, 0)
        self.assertEqual(r.read_bits(0), 0)
        self.assertRaises(CodecError, r.read_bits, 1)

    def test_wide_read(self):
        r = BitReader(bytes(range(1, 10)))
        r.skip(4)
        self.assertEqual(r.read_bits(64), 0x1020304050607080)
        self.assertEqual(r.read_bits(4), 9)

    def test_ue_codes(self):
        # 1 | 010 | 011 | 00100 | 001 (then only one bit left for the suffix)
        r = BitReader(b"\xa6\x42")
        self.assertEqual([r.read_ue() for _ in range(4)], [0, 1, 2, 3])
        self.assertRaises(CodecError, r.read_ue)

    def test_se_codes(self):
        w = BitWriter()
        for value in (0, 1, -1, 2, -2, 1000, -1000):
            w.se(value)
        r = BitReader(w.tobytes())
        self.assertEqual([r.read_se() for _ in range(7)], [0, 1, -1, 2, -2, 1000, -1000])

    def test_ue_too_long(self):
        self.assertRaises(CodecError, BitReader(b"\x00" * 5 + b"\xff").read_ue)

    def test_ue_32bit_max(self):
        w = BitWriter().ue(0xFFFFFFFE)
        self.assertEqual(BitReader(w.tobytes()).read_ue(), 0xFFFFFFFE)

    def test_flags_skip_align_bytes(self):
        r = BitReader(b"\x80\xab\xcd")
        self.assertTrue(r.read_flag())
        self.assertEqual(r.read_bit(), 0)
        r.byte_align()
        self.assertEqual(r.read_bytes(2), b"\xab\xcd")
        self.assertRaises(CodecError, r.skip, 1)
        r = BitReader(b"\x00\x01")
        r.skip(3)
        self.assertRaises(CodecError, r.read_bytes, 1)

    def test_offset(self):
        self.assertEqual(BitReader(b"\x01\x02", 1).read_bits(8), 2)
        self.assertRaises(CodecError, BitReader, b"\x01", 2)

    def test_negative_count(self):
        self.assertRaises(CodecError, BitReader(b"\x01").read_bits, -1)


class UnescapeTests(unittest.TestCase):
    def test_unescape(self):
        self.assertEqual(unescape_rbsp(b"\x00\x00\x03\x01"), b"\x00\x00\x01")
        self.assertEqual(unescape_rbsp(b"\x00\x00\x03\x00\x00\x03"), b"\x00" * 4)
        self.assertEqual(unescape_rbsp(b"\x67\x00\x00\x03"), b"\x67\x00\x00")
        self.assertEqual(unescape_rbsp(b"\x01\x00\x03\x00"), b"\x01\x00\x03\x00")
        self.assertEqual(unescape_rbsp(memoryview(b"ab")), b"ab")

    def test_round_trip_with_escape(self):
        rbsp = b"\x00\x00\x00\x00\x01\x00\x00\x02\x00\x00\x03\x00\x00\x04"
        escaped = escape_rbsp(rbsp)
        self.assertNotIn(b"\x00\x00\x01", escaped)
        self.assertEqual(unescape_rbsp(escaped), rbsp)
