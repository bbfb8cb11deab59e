"""Tests for srs_twisted.codec.hevc.

The hvcC fixtures were produced once with FFmpeg 5.1 + libx265 (testsrc, one
frame) and copied out of the MP4 ``hvcC`` box, keeping only the VPS/SPS/PPS
arrays (x265 also stores a long SEI with its settings).
"""

from twisted.trial import unittest

from srs_twisted.codec import hevc
from srs_twisted.codec.errors import CodecError

from .bits import BitWriter, assert_fuzz, escape_rbsp

HVCC_1280x720 = bytes.fromhex(
    "0101600000009000000000005df000fcfdf8f800000f03200001001840010c01ffff0160000003009000"
    "0003000003005d959809210001002b42010101600000030090000003000003005da00280802d165959a4"
    "932bc05a02000003000200000300321022000100074401c172b46240")
# 1920x1080 is coded as 1088 lines with a conformance window
HVCC_1920x1080 = bytes.fromhex(
    "01016000000090000000000078f000fcfdf8f800000f03200001001840010c01ffff0160000003009000"
    "00030000030078959809210001002a420101016000000300900000030000030078a003c08010e5965669"
    "24caf0168080000003008000000c8422000100074401c172b46240")
# -pix_fmt yuv420p10le: Main 10
HVCC_1280x720_MAIN10 = bytes.fromhex(
    "0102200000009000000000005df000fcfdfafa00000f03200001001840010c01ffff0220000003009000"
    "0003000003005d959809210001002b42010102200000030090000003000003005da00280802d136595"
    "9a4932bc05a0200000030020000003032122000100074401c172b46240")


def synthetic_sps(sub_layers=((True, True), (False, True)), chroma=1, separate=False,
                  width=1920, height=1088, window=(0, 0, 0, 4), profile=4, level=153):
    """Build an H.265 SPS NAL unit up to the conformance window (7.3.2.2)."""
    w = BitWriter().u(4, 0).u(3, len(sub_layers)).u(1, 1)
    w.u(2, 0).u(1, 1).u(5, profile).u(32, 0x08000000).u(48, 0).u(8, level)
    for profile_present, level_present in sub_layers:
        w.flag(profile_present).flag(level_present)
    if sub_layers:
        for _ in range(len(sub_layers), 8):
            w.u(2, 0)
    for profile_present, level_present in sub_layers:
        if profile_present:
            w.u(88, (1 << 87) | 5)
        if level_present:
            w.u(8, 0xFF)
    w.ue(0).ue(chroma)
    if chroma == 3:
        w.flag(separate)
    w.ue(width).ue(height).flag(window is not None)
    if window is not None:
        for value in window:
            w.ue(value)
    w.ue(0).ue(0).ue(4).trailing()
    return b"\x42\x01" + escape_rbsp(w.tobytes())


class DecoderConfigTests(unittest.TestCase):
    def test_main_1280x720(self):
        info = hevc.parse_decoder_config(HVCC_1280x720)
        self.assertEqual((info.profile, info.profile_name, info.level, info.level_name),
                         (1, "Main", 93, "3.1"))
        self.assertEqual((info.width, info.height, info.nal_length_size), (1280, 720, 4))
        self.assertEqual([len(info.vps), len(info.sps), len(info.pps)], [1, 1, 1])
        self.assertEqual((info.vps[0][0] >> 1, info.sps[0][0] >> 1, info.pps[0][0] >> 1),
                         (hevc.NAL_VPS, hevc.NAL_SPS, hevc.NAL_PPS))
        self.assertEqual(info.pps[0], bytes.fromhex("4401c172b46240"))

    def test_conformance_window_1080p(self):
        info = hevc.parse_decoder_config(HVCC_1920x1080)
        self.assertEqual((info.width, info.height, info.level, info.level_name),
                         (1920, 1080, 120, "4"))

    def test_main10(self):
        info = hevc.parse_decoder_config(HVCC_1280x720_MAIN10)
        self.assertEqual((info.profile, info.profile_name, info.width, info.height),
                         (2, "Main10", 1280, 720))

    def test_every_cut_raises(self):
        for record in (HVCC_1280x720, HVCC_1920x1080):
            for cut in range(len(record)):
                self.assertRaises(CodecError, hevc.parse_decoder_config, record[:cut])

    def test_invalid_records(self):
        self.assertRaises(CodecError, hevc.parse_decoder_config, b"\x00" + HVCC_1280x720[1:])
        no_arrays = HVCC_1280x720[:22] + b"\x00"
        self.assertRaises(CodecError, hevc.parse_decoder_config, no_arrays)

    def test_fuzz_only_codec_error(self):
        assert_fuzz(self, hevc.parse_decoder_config, HVCC_1920x1080, rng_seed=265)

    def test_names(self):
        self.assertEqual(hevc.profile_name(3), "Main Still Picture")
        self.assertEqual(hevc.profile_name(4), "Rext")
        self.assertEqual(hevc.profile_name(9), "Other")
        self.assertEqual([hevc.level_name(i) for i in (30, 60, 63, 90, 153, 156, 186)],
                         ["1", "2", "2.1", "3", "5.1", "5.2", "6.2"])


class SyntheticSpsTests(unittest.TestCase):
    def test_sub_layers_and_window(self):
        info = hevc.parse_sps(synthetic_sps())
        self.assertEqual((info.profile, info.level, info.tier), (4, 153, 1))
        self.assertEqual((info.width, info.height), (1920, 1080))

    def test_no_sub_layers(self):
        info = hevc.parse_sps(synthetic_sps(sub_layers=(), window=None, width=640, height=360))
        self.assertEqual((info.width, info.height), (640, 360))

    def test_six_sub_layers(self):
        info = hevc.parse_sps(synthetic_sps(sub_layers=((True, False),) * 6))
        self.assertEqual((info.width, info.height), (1920, 1080))

    def test_chroma_window_units(self):
        sps = synthetic_sps(chroma=2, window=(1, 2, 3, 4), width=640, height=480)
        self.assertEqual((hevc.parse_sps(sps).width, hevc.parse_sps(sps).height), (634, 473))
        sps = synthetic_sps(chroma=3, window=(1, 2, 3, 4), width=640, height=480)
        self.assertEqual((hevc.parse_sps(sps).width, hevc.parse_sps(sps).height), (637, 473))
        sps = synthetic_sps(chroma=3, separate=True, window=(1, 0, 0, 1), width=64, height=64)
        self.assertEqual((hevc.parse_sps(sps).width, hevc.parse_sps(sps).height), (63, 63))

    def test_invalid(self):
        self.assertRaises(CodecError, hevc.parse_sps, synthetic_sps(width=4, window=(2, 0, 0, 0)))
        self.assertRaises(CodecError, hevc.parse_sps, synthetic_sps(chroma=4))
        self.assertRaises(CodecError, hevc.parse_sps, b"\x40\x01\x0c")  # a VPS
        self.assertRaises(CodecError, hevc.parse_sps, b"\x42\x01")
        sps = synthetic_sps()
        for cut in range(2, 20):
            self.assertRaises(CodecError, hevc.parse_sps, sps[:cut])
