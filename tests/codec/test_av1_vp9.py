"""Tests for srs_twisted.codec.av1 and vp9."""

from twisted.trial import unittest

from srs_twisted.codec import av1, vp9
from srs_twisted.codec.errors import CodecError

from .bits import BitWriter, assert_fuzz

# FFmpeg 5.1 + libaom, 640x360 testsrc: the av1C box body with its sequence header OBU.
AV1C_640x360 = bytes.fromhex("81010c000a0b0000000cc4ff6736be4010")
# FFmpeg 5.1 + libvpx-vp9: the vpcC box body (FullBox version 1, flags 0, then the record).
VPCC_FFMPEG = bytes.fromhex("010000000015820202020000")


def leb128(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def sequence_header(width=1920, height=1080):
    """A sequence header OBU payload with timing, decoder model and two operating points."""
    w = BitWriter().u(3, 0).flag(False).flag(False)
    w.flag(True).u(32, 1).u(32, 25).flag(True).ue(5)  # timing info, uvlc ticks
    w.flag(True).u(5, 9).u(32, 1).u(5, 31).u(5, 31)  # decoder model info
    w.flag(True)  # initial_display_delay_present_flag
    w.u(5, 1)  # two operating points
    w.u(12, 0x103).u(5, 9).flag(True).flag(True).u(10, 5).u(10, 7).flag(False).flag(True).u(4, 9)
    w.u(12, 0x101).u(5, 4).flag(False).flag(False)
    w.u(4, 10).u(4, 10).u(11, width - 1).u(11, height - 1)
    w.flag(False).flag(False).trailing()
    return w.tobytes()


def av1c(obus=b"", byte1=0x08, byte2=0x0C):
    return bytes((0x81, byte1, byte2, 0x00)) + obus


class Av1Tests(unittest.TestCase):
    def test_ffmpeg_record(self):
        self.assertEqual(av1.parse_av1c(AV1C_640x360),
                         av1.Av1Info(0, "Main", 1, "2.1", 0, 8, False, 640, 360))
        self.assertIs(av1.parse_decoder_config, av1.parse_av1c)

    def test_synthetic_sequence_header(self):
        payload = sequence_header()
        self.assertEqual(av1.parse_sequence_header(payload), (1920, 1080))
        info = av1.parse_av1c(av1c(b"\x0a" + leb128(len(payload)) + payload))
        self.assertEqual((info.level, info.level_name, info.width, info.height),
                         (8, "4.0", 1920, 1080))

    def test_reduced_still_picture_header(self):
        payload = BitWriter().u(3, 0).flag(True).flag(True).u(5, 12).u(4, 7).u(4, 7) \
            .u(8, 99).u(8, 49).trailing().tobytes()
        self.assertEqual(av1.parse_sequence_header(payload), (100, 50))

    def test_obu_forms(self):
        payload = sequence_header(320, 240)
        skipped = b"\x2a\x01\x00"  # a metadata OBU with a size field comes first
        extension = b"\x0e\x00" + leb128(len(payload)) + payload
        self.assertEqual(av1.parse_av1c(av1c(skipped + extension)).width, 320)
        no_size = b"\x08" + payload  # the last OBU may omit its size
        self.assertEqual(av1.parse_av1c(av1c(no_size)).height, 240)
        self.assertEqual(av1.parse_av1c(av1c()).width, 0)

    def test_bit_depth_and_flags(self):
        self.assertEqual(av1.parse_av1c(av1c(byte2=0x4C)).bit_depth, 10)
        info = av1.parse_av1c(av1c(byte1=0x48, byte2=0xE0))
        self.assertEqual((info.profile, info.profile_name, info.bit_depth, info.tier),
                         (2, "Professional", 12, 1))
        self.assertTrue(av1.parse_av1c(av1c(byte2=0x1C)).monochrome)
        self.assertEqual(av1.level_name(31), "max")
        self.assertEqual(av1.level_name(13), "5.1")

    def test_invalid(self):
        for data in (b"", b"\x81\x00\x00", b"\x01\x00\x00\x00", b"\x82\x00\x00\x00",
                     av1c(b"\x0a\x10\x00"), av1c(b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
                     av1c(b"\x0a"), av1c(b"\x0a\x01\x00")):
            self.assertRaises(CodecError, av1.parse_av1c, data)

    def test_every_cut_raises(self):
        payload = sequence_header()
        record = av1c(b"\x0a" + leb128(len(payload)) + payload)
        for cut in range(len(record)):
            if cut == 4:
                continue  # a record without config OBUs is valid
            self.assertRaises(CodecError, av1.parse_av1c, record[:cut])

    def test_fuzz_only_codec_error(self):
        payload = sequence_header()
        assert_fuzz(self, av1.parse_av1c, av1c(b"\x0a" + leb128(len(payload)) + payload))
        assert_fuzz(self, vp9.parse_vpcc, VPCC_FFMPEG, rounds=500)


class Vp9Tests(unittest.TestCase):
    def test_ffmpeg_full_box(self):
        self.assertEqual(vp9.parse_vpcc(VPCC_FFMPEG),
                         vp9.Vp9Info(0, "Profile 0", 21, "2.1", 8, 1, False, 0, 0))
        self.assertIs(vp9.parse_decoder_config, vp9.parse_vpcc)

    def test_bare_record(self):
        info = vp9.parse_vpcc(bytes.fromhex("021fa1010101" "0000"))
        self.assertEqual((info.profile, info.level, info.level_name, info.bit_depth,
                          info.chroma_subsampling, info.full_range), (2, 31, "3.1", 10, 0, True))
        self.assertEqual(vp9.parse_vpcc(bytes.fromhex("0128c2010101" "0000")).level_name, "4")

    def test_invalid(self):
        for data in (b"", VPCC_FFMPEG[:11], bytes.fromhex("041f800101010000"),
                     bytes.fromhex("001f900101010000")):
            self.assertRaises(CodecError, vp9.parse_vpcc, data)
