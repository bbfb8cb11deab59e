"""Tests for srs_twisted.codec.info (SRS /api/v1/streams shaped descriptions)."""

from twisted.trial import unittest

from srs_twisted.codec import opus
from srs_twisted.codec.errors import CodecError
from srs_twisted.codec.flv import parse_audio, parse_video
from srs_twisted.codec.info import describe_audio, describe_video

from .test_audio import ASC_FFMPEG_LC, ASC_HE_EXPLICIT
from .test_av1_vp9 import AV1C_640x360, VPCC_FFMPEG
from .test_avc import AVCC_1280x720
from .test_hevc import HVCC_1920x1080


def describe_v(payload):
    return describe_video(parse_video(payload), payload)


def describe_a(payload):
    return describe_audio(parse_audio(payload), payload)


class DescribeVideoTests(unittest.TestCase):
    def test_h264(self):
        expected = {"codec": "H264", "profile": "High", "level": "3.1", "width": 1280,
                    "height": 720}
        self.assertEqual(describe_v(b"\x17\x00\x00\x00\x00" + AVCC_1280x720), expected)
        self.assertEqual(describe_v(b"\x90avc1" + AVCC_1280x720), expected)

    def test_hevc(self):
        expected = {"codec": "HEVC", "profile": "Main", "level": "4", "width": 1920,
                    "height": 1080}
        self.assertEqual(describe_v(b"\x1c\x00\x00\x00\x00" + HVCC_1920x1080), expected)
        self.assertEqual(describe_v(b"\x90hvc1" + HVCC_1920x1080), expected)
        self.assertEqual(describe_v(b"\x96\x00hvc1\x00" + HVCC_1920x1080), expected)

    def test_av1_and_vp9(self):
        self.assertEqual(describe_v(b"\x90av01" + AV1C_640x360),
                         {"codec": "AV1", "profile": "Main", "level": "2.1", "width": 640,
                          "height": 360})
        self.assertEqual(describe_v(b"\x90vp09" + VPCC_FFMPEG),
                         {"codec": "VP9", "profile": "Profile 0", "level": "2.1", "width": 0,
                          "height": 0})

    def test_not_a_sequence_header(self):
        self.assertIsNone(describe_v(b"\x17\x01\x00\x00\x00\x00\x00\x00\x01\x65"))
        self.assertIsNone(describe_v(b"\x93hvc1\x00"))
        self.assertIsNone(describe_v(b"\x22\x00\x00"))
        self.assertIsNone(describe_v(b"\x90vp08\x00"))

    def test_bad_record_raises(self):
        self.assertRaises(CodecError, describe_v, b"\x17\x00\x00\x00\x00\x01\x64")


class DescribeAudioTests(unittest.TestCase):
    def test_aac(self):
        self.assertEqual(describe_a(b"\xaf\x00" + ASC_FFMPEG_LC),
                         {"codec": "AAC", "sample_rate": 44100, "channel": 2, "profile": "LC"})
        self.assertEqual(describe_a(b"\x90mp4a" + ASC_HE_EXPLICIT),
                         {"codec": "AAC", "sample_rate": 44100, "channel": 2, "profile": "HE"})
        self.assertIsNone(describe_a(b"\xaf\x01\x21\x00"))

    def test_opus(self):
        self.assertEqual(describe_a(b"\x90Opus" + opus.make_opus_head(2, 48000)),
                         {"codec": "Opus", "sample_rate": 48000, "channel": 2, "profile": "Other"})
        self.assertEqual(describe_a(b"\x90Opus" + opus.make_opus_head(1, 0))["sample_rate"], 48000)
        self.assertIsNone(describe_a(b"\x91Opus\xfc"))
        self.assertEqual(describe_a(b"\xdf\xfc"),
                         {"codec": "Opus", "sample_rate": 48000, "channel": 2, "profile": "Other"})

    def test_mp3(self):
        expected = {"codec": "MP3", "sample_rate": 44100, "channel": 2, "profile": "Other"}
        self.assertEqual(describe_a(b"\x2f" + bytes.fromhex("fffb9000")), expected)
        self.assertEqual(describe_a(b"\x91.mp3" + bytes.fromhex("fffb9000")), expected)
        self.assertEqual(describe_a(b"\x2e" + bytes.fromhex("fff370c0"))["channel"], 1)
        self.assertIsNone(describe_a(b"\x2f"))
        self.assertRaises(CodecError, describe_a, b"\x2f\x00\x00\x00\x00")

    def test_other_codecs(self):
        self.assertIsNone(describe_a(b"\x72\x00"))
        self.assertIsNone(describe_a(b"\x90fLaC"))
