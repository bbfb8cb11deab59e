"""Tests for srs_twisted.codec.avc.

The avcC fixtures were produced once with FFmpeg 5.1 + libx264 (testsrc,
one frame, yuv420p unless noted) and copied out of the MP4 ``avcC`` box.
"""

from twisted.trial import unittest

from srs_twisted.codec import avc
from srs_twisted.codec.errors import CodecError

from .bits import BitWriter, assert_fuzz, escape_rbsp

# -profile:v baseline -level 3.0, 320x240
AVCC_320x240 = bytes.fromhex(
    "0142c01effe100186742c01ed90141fb011000000300100000030320f162e48001000568cb83cb20")
# -profile:v high -level 3.1, 1280x720 (record ends with the high-profile extension)
AVCC_1280x720 = bytes.fromhex(
    "0164001fffe1001a6764001facd9405005bb011000000300100000030320f183196001000668ebe3cb22c0"
    "fdf8f800")
# -profile:v main, 1920x1080: coded as 1088 lines, cropped by 8
AVCC_1920x1080 = bytes.fromhex(
    "014d4028ffe1001a674d4028eca03c0113f2e022000003000200000300641e30632c01000568ebe3cb20")
# -x264-params interlaced=1, 720x576 (frame_mbs_only_flag = 0)
AVCC_720x576_INTERLACED = bytes.fromhex(
    "0164001effe100186764001eacd940b424d8088000000300800000190f8a14cb01000768fba3cb3002c0"
    "fdf8f800")
# -pix_fmt yuv444p, 642x362: High 4:4:4 Predictive, chroma_format_idc 3, cropped
AVCC_642x362_444 = bytes.fromhex(
    "01f4001effe1001a67f4001e919b281485fc7cf808800000030080000019078b16cb01000668ebe3c44844"
    "fff8f800")


def synthetic_sps(profile=100, chroma=1, separate_planes=False, scaling=(), poc_type=0,
                  width_mbs=80, height_units=45, frame_mbs_only=True, crop=None, level=40):
    """Build an SPS NAL unit field by field (H.264 7.3.2.1.1)."""
    w = BitWriter().u(8, profile).u(8, 0).u(8, level).ue(0)
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        w.ue(chroma)
        if chroma == 3:
            w.flag(separate_planes)
        w.ue(0).ue(0).flag(False)
        w.flag(bool(scaling))
        if scaling:
            for present, deltas in scaling:
                w.flag(present)
                for delta in deltas:
                    w.se(delta)
    w.ue(0).ue(poc_type)
    if poc_type == 0:
        w.ue(2)
    elif poc_type == 1:
        w.flag(False).se(-1).se(3).ue(3).se(1).se(-2).se(5)
    w.ue(4).flag(False).ue(width_mbs - 1).ue(height_units - 1).flag(frame_mbs_only)
    if not frame_mbs_only:
        w.flag(True)
    w.flag(True)
    w.flag(crop is not None)
    if crop is not None:
        for value in crop:
            w.ue(value)
    w.flag(False).trailing()
    return b"\x67" + escape_rbsp(w.tobytes())


class DecoderConfigTests(unittest.TestCase):
    def check(self, record, profile, profile_name, level, level_name, width, height):
        info = avc.parse_decoder_config(record)
        self.assertEqual((info.profile, info.profile_name, info.level, info.level_name),
                         (profile, profile_name, level, level_name))
        self.assertEqual((info.width, info.height, info.nal_length_size), (width, height, 4))
        self.assertEqual(len(info.sps), 1)
        self.assertEqual(len(info.pps), 1)
        self.assertEqual(info.sps[0][0] & 0x1F, avc.NAL_SPS)
        self.assertEqual(info.pps[0][0] & 0x1F, avc.NAL_PPS)
        return info

    def test_baseline_320x240(self):
        info = self.check(AVCC_320x240, 66, "Baseline", 30, "3", 320, 240)
        self.assertEqual(info.sps[0], AVCC_320x240[8:32])
        self.assertEqual(info.pps[0], AVCC_320x240[35:])

    def test_high_1280x720(self):
        self.check(AVCC_1280x720, 100, "High", 31, "3.1", 1280, 720)

    def test_main_1080p_cropping(self):
        self.check(AVCC_1920x1080, 77, "Main", 40, "4", 1920, 1080)

    def test_interlaced(self):
        self.check(AVCC_720x576_INTERLACED, 100, "High", 30, "3", 720, 576)
        info = avc.parse_sps(avc.parse_decoder_config(AVCC_720x576_INTERLACED).sps[0])
        self.assertFalse(info.frame_mbs_only)

    def test_high444(self):
        self.check(AVCC_642x362_444, 244, "High(444+Predictive)", 30, "3", 642, 362)
        self.assertEqual(avc.parse_sps(avc.parse_decoder_config(AVCC_642x362_444).sps[0])
                         .chroma_format_idc, 3)

    def test_memoryview_input_and_nal_length_size(self):
        record = bytearray(AVCC_320x240)
        record[4] = 0xFD
        info = avc.parse_decoder_config(memoryview(record))
        self.assertEqual((info.nal_length_size, info.width), (2, 320))

    def test_make_decoder_config(self):
        info = avc.parse_decoder_config(AVCC_320x240)
        self.assertEqual(avc.make_decoder_config(info.sps, info.pps), AVCC_320x240)
        self.assertRaises(CodecError, avc.make_decoder_config, [], info.pps)
        self.assertRaises(CodecError, avc.make_decoder_config, info.sps, info.pps, 5)

    def test_every_cut_raises(self):
        for record in (AVCC_320x240, AVCC_1920x1080):
            for cut in range(len(record)):
                self.assertRaises(CodecError, avc.parse_decoder_config, record[:cut])

    def test_invalid_records(self):
        self.assertRaises(CodecError, avc.parse_decoder_config, b"\x00" + AVCC_320x240[1:])
        no_sps = AVCC_320x240[:5] + b"\xe0\x00"
        self.assertRaises(CodecError, avc.parse_decoder_config, no_sps)
        pps_as_sps = AVCC_320x240[:6] + b"\x00\x05" + AVCC_320x240[35:] + b"\x00"
        self.assertRaises(CodecError, avc.parse_decoder_config, pps_as_sps)

    def test_fuzz_only_codec_error(self):
        assert_fuzz(self, avc.parse_decoder_config, AVCC_1280x720, rng_seed=264)

    def test_names(self):
        self.assertEqual(avc.profile_name(110), "High(10)")
        self.assertEqual(avc.profile_name(122), "High(422)")
        self.assertEqual(avc.profile_name(88), "Extended")
        self.assertEqual(avc.profile_name(1), "Other")
        self.assertEqual(avc.level_name(52), "5.2")
        self.assertEqual(avc.level_name(10), "1")


class SyntheticSpsTests(unittest.TestCase):
    def test_plain(self):
        info = avc.parse_sps(synthetic_sps())
        self.assertEqual((info.width, info.height, info.profile, info.level), (1280, 720, 100, 40))

    def test_scaling_lists(self):
        lists = [(True, [-8])]  # 4x4 list 0: nextScale 0 at once (use default matrix)
        lists += [(False, [])] * 5
        lists += [(True, [0] * 64)]  # 8x8 list 6: 64 explicit deltas
        lists += [(True, [7] + [0] * 62 + [-7])]
        sps = synthetic_sps(scaling=lists)
        info = avc.parse_sps(sps)
        self.assertEqual((info.width, info.height), (1280, 720))

    def test_scaling_lists_444_has_twelve(self):
        lists = [(False, [])] * 11 + [(True, [0] * 64)]
        info = avc.parse_sps(synthetic_sps(profile=244, chroma=3, scaling=lists))
        self.assertEqual((info.width, info.height, info.chroma_format_idc), (1280, 720, 3))

    def test_bad_scaling_delta(self):
        lists = [(True, [200])] + [(False, [])] * 7
        self.assertRaises(CodecError, avc.parse_sps, synthetic_sps(scaling=lists))

    def test_poc_type_one_and_two(self):
        self.assertEqual(avc.parse_sps(synthetic_sps(profile=66, poc_type=1)).width, 1280)
        self.assertEqual(avc.parse_sps(synthetic_sps(profile=77, poc_type=2)).height, 720)
        self.assertRaises(CodecError, avc.parse_sps, synthetic_sps(poc_type=3))

    def test_cropping_units(self):
        # 4:2:0 progressive: 2 pixels per unit both ways
        sps = synthetic_sps(width_mbs=120, height_units=68, crop=(0, 0, 0, 4))
        self.assertEqual(avc.parse_sps(sps).height, 1080)
        # 4:2:0 interlaced: 4 lines per vertical unit
        sps = synthetic_sps(width_mbs=120, height_units=34, frame_mbs_only=False, crop=(1, 1, 0, 2))
        self.assertEqual((avc.parse_sps(sps).width, avc.parse_sps(sps).height), (1916, 1080))
        # 4:2:2: 2 pixels horizontally, 1 line vertically
        sps = synthetic_sps(profile=122, chroma=2, width_mbs=40, height_units=30, crop=(2, 0, 3, 0))
        self.assertEqual((avc.parse_sps(sps).width, avc.parse_sps(sps).height), (636, 477))
        # 4:4:4 with separate colour planes: ChromaArrayType 0, 1 pixel units
        sps = synthetic_sps(profile=244, chroma=3, separate_planes=True, width_mbs=40,
                            height_units=30, crop=(1, 2, 3, 4))
        self.assertEqual((avc.parse_sps(sps).width, avc.parse_sps(sps).height), (637, 473))
        # monochrome
        sps = synthetic_sps(profile=100, chroma=0, width_mbs=2, height_units=2, crop=(1, 0, 1, 0))
        self.assertEqual((avc.parse_sps(sps).width, avc.parse_sps(sps).height), (31, 31))

    def test_cropping_everything_is_an_error(self):
        sps = synthetic_sps(width_mbs=1, height_units=1, crop=(4, 4, 0, 0))
        self.assertRaises(CodecError, avc.parse_sps, sps)

    def test_every_cut_raises_only_codec_error(self):
        sps = synthetic_sps(scaling=[(True, [0] * 16)] * 8, crop=(0, 0, 0, 4))
        for cut in range(len(sps)):
            try:
                avc.parse_sps(sps[:cut])
            except CodecError:
                pass
        self.assertRaises(CodecError, avc.parse_sps, sps[:20])

    def test_not_an_sps(self):
        self.assertRaises(CodecError, avc.parse_sps, b"\x68\x00\x00\x00")
        self.assertRaises(CodecError, avc.parse_sps, b"\x67")


class NaluSplitTests(unittest.TestCase):
    def test_split_avcc(self):
        data = b"\x00\x00\x00\x02\x09\xf0\x00\x00\x00\x00\x00\x00\x00\x03\x65\x88\x84"
        nalus = avc.split_nalus(data, 4)
        self.assertEqual([bytes(n) for n in nalus], [b"\x09\xf0", b"\x65\x88\x84"])
        self.assertIsInstance(nalus[0], memoryview)
        self.assertEqual([bytes(n) for n in avc.split_nalus(b"\x00\x01a\x00\x02bc", 2)],
                         [b"a", b"bc"])
        self.assertEqual([bytes(n) for n in avc.split_nalus(b"\x01a\x00\x01b", 1)], [b"a", b"b"])
        self.assertEqual([bytes(n) for n in avc.split_nalus(b"\x00\x00\x01a", 3)], [b"a"])
        self.assertEqual(avc.split_nalus(b""), [])

    def test_split_avcc_errors(self):
        self.assertRaises(CodecError, avc.split_nalus, b"\x00\x00\x00", 4)
        self.assertRaises(CodecError, avc.split_nalus, b"\x00\x00\x00\x05abcd", 4)
        self.assertRaises(CodecError, avc.split_nalus, b"\x00\x00\x00\x01a\x00", 4)
        self.assertRaises(CodecError, avc.split_nalus, b"", 5)
        self.assertRaises(CodecError, avc.split_nalus, b"", 0)

    def test_split_annexb(self):
        data = (b"junk\x00\x00\x00\x01\x67ab\x00\x00\x01\x68cd\x00\x00\x00\x00\x01\x65ef"
                b"\x00\x00\x03\x01\x00\x00")
        self.assertEqual(avc.split_annexb(data),
                         [b"\x67ab", b"\x68cd", b"\x65ef\x00\x00\x03\x01"])
        self.assertEqual(avc.split_annexb(b"\x00\x00\x01\x09\xf0"), [b"\x09\xf0"])
        self.assertEqual(avc.split_annexb(b"\x00\x00\x01"), [])
        self.assertRaises(CodecError, avc.split_annexb, b"\x67\x42\x00\x00")
