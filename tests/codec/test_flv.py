"""Tests for srs_twisted.codec.flv."""

import random
import struct

from twisted.trial import unittest

from srs_twisted.codec import amf0, flv
from srs_twisted.codec.errors import CodecError
from srs_twisted.codec.flv import (
    TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO, AudioTag, FlvReader, FlvTag, VideoTag, encode_metadata,
    encode_tag, file_header, parse_audio, parse_script, parse_video)

AVCC = bytes.fromhex(
    "0142c01effe100186742c01ed90141fb011000000300100000030320f162e48001000568cb83cb20")


def video(codec, frame_type=1, seq=False, eos=False, cts=0, offset=5, enhanced=False,
          fourcc=None, keyframe=None):
    if keyframe is None:
        keyframe = frame_type in (1, 4)
    return VideoTag(codec, frame_type, keyframe, seq, eos, cts, offset, enhanced, fourcc)


class LegacyVideoTests(unittest.TestCase):
    def test_avc_sequence_header(self):
        self.assertEqual(parse_video(b"\x17\x00\x00\x00\x00" + AVCC), video("h264", seq=True))

    def test_avc_nalu_with_cts(self):
        self.assertEqual(parse_video(b"\x27\x01\x00\x00\x28\x00\x00\x00\x01\x09"),
                         video("h264", frame_type=2, cts=40))
        self.assertEqual(parse_video(b"\x17\x01\xff\xff\xd8"), video("h264", cts=-40))
        self.assertEqual(parse_video(b"\x17\x01\x7f\xff\xff").cts, 0x7FFFFF)
        self.assertEqual(parse_video(b"\x17\x01\x80\x00\x00").cts, -0x800000)

    def test_end_of_sequence(self):
        self.assertEqual(parse_video(b"\x17\x02\x00\x00\x00"), video("h264", eos=True))

    def test_hevc_and_av1_legacy_ids(self):
        self.assertEqual(parse_video(b"\x1c\x00\x00\x00\x00").codec, "h265")
        self.assertEqual(parse_video(b"\x2c\x01\x00\x00\x00"), video("h265", frame_type=2))
        self.assertEqual(parse_video(b"\x1d\x00\x00\x00\x00"), video("av1", seq=True))

    def test_other_codecs(self):
        self.assertEqual(parse_video(b"\x22\x00"), video("sorenson", 2, offset=1))
        self.assertEqual(parse_video(b"\x32\x00"), video("sorenson", 3, offset=1))
        self.assertEqual(parse_video(b"\x13"), video("screen", 1, offset=1))
        self.assertEqual(parse_video(b"\x14\x00").codec, "vp6")
        self.assertEqual(parse_video(b"\x15\x00").codec, "vp6a")
        self.assertEqual(parse_video(b"\x16\x00").codec, "screen2")
        self.assertEqual(parse_video(b"\x47\x01\x00\x00\x00"), video("h264", 4, cts=0))
        self.assertTrue(parse_video(b"\x47\x01\x00\x00\x00").keyframe)

    def test_command_frame(self):
        self.assertEqual(parse_video(b"\x57\x00"), video("h264", 5, offset=1, keyframe=False))
        self.assertEqual(parse_video(b"\x57").data_offset, 1)

    def test_invalid(self):
        for data in (b"", b"\x17", b"\x17\x00\x00\x00", b"\x17\x03\x00\x00\x00", b"\x18\x00",
                     b"\x10", b"\x1e", b"\x07\x00\x00\x00\x00", b"\x67\x00\x00\x00\x00"):
            self.assertRaises(CodecError, parse_video, data)


class EnhancedVideoTests(unittest.TestCase):
    def test_sequence_start(self):
        self.assertEqual(parse_video(b"\x90hvc1" + b"\x01"),
                         video("h265", seq=True, enhanced=True, fourcc=b"hvc1"))
        self.assertEqual(parse_video(b"\x90av01\x81").codec, "av1")
        self.assertEqual(parse_video(b"\x90vp09\x01").codec, "vp9")
        self.assertEqual(parse_video(b"\x90vp08\x01").codec, "vp8")
        self.assertEqual(parse_video(b"\x90avc1" + AVCC), video("h264", seq=True, enhanced=True,
                                                                 fourcc=b"avc1"))

    def test_coded_frames(self):
        self.assertEqual(parse_video(b"\x91hvc1\x00\x00\x28\x00\x00\x00\x02"),
                         video("h265", cts=40, offset=8, enhanced=True, fourcc=b"hvc1"))
        self.assertEqual(parse_video(b"\xa1avc1\xff\xff\xff").cts, -1)
        self.assertEqual(parse_video(b"\xa1avc1\xff\xff\xff").frame_type, 2)
        # AV1/VP9 coded frames carry no composition time
        self.assertEqual(parse_video(b"\x91av01\x12\x00"),
                         video("av1", offset=5, enhanced=True, fourcc=b"av01"))
        self.assertEqual(parse_video(b"\xa1vp09\x00").data_offset, 5)

    def test_coded_frames_x(self):
        self.assertEqual(parse_video(b"\xa3hvc1\x00\x00\x00\x02"),
                         video("h265", 2, offset=5, enhanced=True, fourcc=b"hvc1"))

    def test_sequence_end_and_metadata(self):
        self.assertEqual(parse_video(b"\x92hvc1"),
                         video("h265", eos=True, offset=5, enhanced=True, fourcc=b"hvc1"))
        meta = b"\x84hvc1" + amf0.encode_many("colorInfo", {})
        self.assertEqual(parse_video(meta), video("h265", 0, offset=5, enhanced=True,
                                                  fourcc=b"hvc1", keyframe=False))
        self.assertFalse(parse_video(b"\x94hvc1").keyframe)
        self.assertEqual(parse_video(b"\x95av01").sequence_header, False)

    def test_command(self):
        self.assertEqual(parse_video(b"\xd1\x01"),
                         video("unknown", 5, offset=1, enhanced=True, keyframe=False))
        self.assertRaises(CodecError, parse_video, b"\xd1")

    def test_modex(self):
        data = b"\x97\x02\x00\x01\x02\x01hvc1\x00\x00\x10\xaa"
        self.assertEqual(parse_video(data),
                         video("h265", cts=16, offset=13, enhanced=True, fourcc=b"hvc1"))
        long_modex = b"\x97\xff" + struct.pack(">H", 299) + b"\x00" * 300 + b"\x03avc1\xaa"
        self.assertEqual(parse_video(long_modex).data_offset, 309)
        chained = b"\x97\x00\x00\x07\x00\x00\x00av01"
        self.assertEqual(parse_video(chained).data_offset, 11)
        self.assertTrue(parse_video(chained).sequence_header)

    def test_one_track_multitrack(self):
        data = b"\x96\x00hvc1\x00\x01"
        self.assertEqual(parse_video(data),
                         video("h265", seq=True, offset=7, enhanced=True, fourcc=b"hvc1"))
        self.assertEqual(parse_video(b"\x96\x01avc1\x00\x00\x00\x21").cts, 33)

    def test_many_tracks_are_refused(self):
        for kind in (b"\x10", b"\x20"):
            with self.assertRaises(CodecError) as caught:
                parse_video(b"\x96" + kind + b"hvc1\x00\x00\x00\x05")
            self.assertIn("multitrack", str(caught.exception))
        self.assertRaises(CodecError, parse_video, b"\x96\x06hvc1\x00")

    def test_invalid(self):
        for data in (b"\x90abcd", b"\x98hvc1", b"\x9fhvc1", b"\x80hvc1", b"\xe0hvc1",
                     b"\xf1hvc1\x00\x00\x00"):
            self.assertRaises(CodecError, parse_video, data)

    def test_every_cut_of_headers_raises(self):
        for header in (b"\x91hvc1\x00\x00\x28", b"\x97\x02\x00\x01\x02\x01hvc1\x00\x00\x10",
                       b"\x96\x00hvc1\x00", b"\x97\xff\x00\x01" + b"\x00" * 2 + b"\x00av01"):
            for cut in range(len(header)):
                self.assertRaises(CodecError, parse_video, header[:cut])
            parse_video(header)

    def test_fuzz_only_codec_error(self):
        rng = random.Random(9)
        for _ in range(5000):
            data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 12)))
            try:
                tag = parse_video(data)
            except CodecError:
                continue
            self.assertLessEqual(tag.data_offset, len(data))


class AudioTests(unittest.TestCase):
    def test_aac(self):
        self.assertEqual(parse_audio(b"\xaf\x00\x12\x10"),
                         AudioTag("aac", 44100, 16, 2, True, 2, False, None))
        self.assertEqual(parse_audio(b"\xaf\x01\x21\x00"),
                         AudioTag("aac", 44100, 16, 2, False, 2, False, None))
        self.assertEqual(parse_audio(b"\xae\x01").channels, 1)
        self.assertEqual(parse_audio(b"\xa9\x01").sound_rate, 22050)
        self.assertEqual(parse_audio(b"\xa5\x01").sound_rate, 11025)
        self.assertEqual(parse_audio(b"\xa1\x01").sound_size, 8)

    def test_legacy_formats(self):
        self.assertEqual(parse_audio(b"\x2f\xff\xfb"),
                         AudioTag("mp3", 44100, 16, 2, False, 1, False, None))
        self.assertEqual(parse_audio(b"\x22"), AudioTag("mp3", 5512, 16, 1, False, 1, False, None))
        expected = {0x0: "pcm", 0x1: "adpcm", 0x3: "pcm", 0x4: "nellymoser", 0x6: "nellymoser",
                    0x7: "g711a", 0x8: "g711u", 0xB: "speex", 0xD: "opus", 0xE: "mp3",
                    0xF: "native"}
        for sound_format, codec in expected.items():
            tag = parse_audio(bytes((sound_format << 4 | 0x06,)))
            self.assertEqual((tag.codec, tag.data_offset, tag.enhanced), (codec, 1, False))

    def test_invalid(self):
        for data in (b"", b"\xc2", b"\xaf", b"\xaf\x02"):
            self.assertRaises(CodecError, parse_audio, data)

    def test_enhanced(self):
        self.assertEqual(parse_audio(b"\x90OpusOpusHead"),
                         AudioTag("opus", 0, 0, 0, True, 5, True, b"Opus"))
        self.assertEqual(parse_audio(b"\x91Opus\xfc"),
                         AudioTag("opus", 0, 0, 0, False, 5, True, b"Opus"))
        self.assertEqual(parse_audio(b"\x90mp4a\x12\x10").codec, "aac")
        self.assertEqual(parse_audio(b"\x91.mp3\xff\xfb").codec, "mp3")
        self.assertEqual(parse_audio(b"\x90fLaC").codec, "flac")
        self.assertEqual(parse_audio(b"\x91ac-3").codec, "ac3")
        self.assertEqual(parse_audio(b"\x91ec-3").codec, "eac3")
        self.assertFalse(parse_audio(b"\x92Opus").sequence_header)
        self.assertEqual(parse_audio(b"\x94Opus\x00\x02").data_offset, 5)

    def test_enhanced_modex_and_multitrack(self):
        self.assertEqual(parse_audio(b"\x97\x02\x00\x00\x01\x01Opus\xfc").data_offset, 10)
        self.assertEqual(parse_audio(b"\x95\x00mp4a\x00\x12\x10"),
                         AudioTag("aac", 0, 0, 0, True, 10 - 3, True, b"mp4a"))
        with self.assertRaises(CodecError) as caught:
            parse_audio(b"\x95\x11mp4a\x00\x00\x00\x01\xff")
        self.assertIn("multitrack", str(caught.exception))
        self.assertRaises(CodecError, parse_audio, b"\x95\x05mp4a\x00")

    def test_enhanced_invalid(self):
        for data in (b"\x90", b"\x90Opu", b"\x90abcd", b"\x93Opus", b"\x96Opus", b"\x97",
                     b"\x97\x05\x00"):
            self.assertRaises(CodecError, parse_audio, data)


class ScriptTests(unittest.TestCase):
    META = amf0.ECMAArray(width=1280.0, height=720.0, videocodecid=7.0)

    def test_set_data_frame_is_stripped(self):
        wrapped = amf0.encode_many("@setDataFrame", "onMetaData", self.META)
        plain = amf0.encode_many("onMetaData", self.META)
        self.assertEqual(parse_script(wrapped), ("onMetaData", self.META))
        self.assertEqual(parse_script(plain), ("onMetaData", self.META))

    def test_other_names(self):
        self.assertEqual(parse_script(amf0.encode("onTextData")), ("onTextData", None))
        self.assertEqual(parse_script(amf0.encode_many("onCuePoint", {"n": 1.0}, "extra")),
                         ("onCuePoint", {"n": 1.0}))

    def test_undecodable(self):
        for data in (b"", b"\x05", amf0.encode(1.0), b"\x02\x00\x0aonMeta", b"\x02\x00\x01x\xff"):
            self.assertRaises(CodecError, parse_script, data)

    def test_encode_metadata(self):
        data = encode_metadata({"width": 1.0})
        self.assertEqual(data, b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x01"
                         b"\x00\x05width\x00\x3f\xf0\x00\x00\x00\x00\x00\x00\x00\x00\x09")
        name, value = parse_script(data)
        self.assertEqual((name, value), ("onMetaData", {"width": 1.0}))
        self.assertIsInstance(value, amf0.ECMAArray)


class FileWriterTests(unittest.TestCase):
    def test_file_header(self):
        self.assertEqual(file_header(), b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00")
        self.assertEqual(file_header(has_video=False)[4], 0x04)
        self.assertEqual(file_header(has_audio=False)[4], 0x01)
        self.assertEqual(len(file_header()), flv.FLV_HEADER_SIZE + 4)

    def test_encode_tag(self):
        self.assertEqual(encode_tag(TAG_VIDEO, 0x12345678, b"abc"),
                         b"\x09\x00\x00\x03\x34\x56\x78\x12\x00\x00\x00abc\x00\x00\x00\x0e")
        self.assertEqual(encode_tag(TAG_AUDIO, 0, b""),
                         b"\x08" + b"\x00" * 10 + b"\x00\x00\x00\x0b")
        self.assertEqual(encode_tag(TAG_SCRIPT, 2 ** 32 + 5, memoryview(b"x"))[4:8],
                         b"\x00\x00\x05\x00")
        self.assertEqual(encode_tag(TAG_AUDIO, -1, b"")[4:8], b"\xff\xff\xff\xff")

    def test_encode_tag_limits(self):
        self.assertRaises(CodecError, encode_tag, TAG_VIDEO, 0, b"\x00" * (1 << 24))
        self.assertRaises(CodecError, encode_tag, 0x40, 0, b"")
        self.assertEqual(len(encode_tag(TAG_VIDEO, 0, b"\x00" * 0xFFFFFF)), 0xFFFFFF + 15)


def sample_stream():
    tags = [
        FlvTag(TAG_SCRIPT, 0, encode_metadata({"duration": 0.0, "encoder": "x" * 300})),
        FlvTag(TAG_VIDEO, 0, b"\x17\x00\x00\x00\x00" + AVCC),
        FlvTag(TAG_AUDIO, 0, b"\xaf\x00\x12\x10"),
        FlvTag(TAG_VIDEO, 40, b"\x17\x01\x00\x00\x00" + b"\x00\x00\x00\x02\x65\x88"),
        FlvTag(TAG_AUDIO, 0xFFFFFF, b"\xaf\x01" + bytes(range(200))),
        FlvTag(TAG_VIDEO, 0x01000000, b"\x27\x01\x00\x00\x00"),
        FlvTag(TAG_AUDIO, 0xFFFFFFFF, b""),
        FlvTag(7, 1, b"unknown tag types pass through"),
    ]
    data = file_header() + b"".join(encode_tag(*tag) for tag in tags)
    return tags, data


class FlvReaderTests(unittest.TestCase):
    def test_whole(self):
        tags, data = sample_stream()
        reader = FlvReader()
        self.assertFalse(reader.header_parsed)
        self.assertEqual(reader.feed(data), tags)
        self.assertTrue(reader.header_parsed)
        self.assertEqual((reader.version, reader.has_audio, reader.has_video), (1, True, True))
        self.assertEqual(reader.feed(b""), [])

    def test_byte_by_byte(self):
        tags, data = sample_stream()
        reader = FlvReader()
        out = []
        for i in range(len(data)):
            out += reader.feed(data[i:i + 1])
        self.assertEqual(out, tags)

    def test_every_split_point(self):
        tags, data = sample_stream()
        for split in range(len(data) + 1):
            reader = FlvReader()
            out = reader.feed(data[:split])
            out += reader.feed(memoryview(data)[split:])
            self.assertEqual(out, tags, "split at %d" % split)

    def test_random_chunks(self):
        tags, data = sample_stream()
        rng = random.Random(3)
        for _ in range(50):
            reader = FlvReader()
            out = []
            pos = 0
            while pos < len(data):
                step = rng.randint(1, 64)
                out += reader.feed(bytearray(data[pos:pos + step]))
                pos += step
            self.assertEqual(out, tags)

    def test_tags_are_parseable(self):
        tags, data = sample_stream()
        parsed = FlvReader().feed(data)
        self.assertEqual(parse_script(parsed[0].payload)[0], "onMetaData")
        self.assertTrue(parse_video(parsed[1].payload).sequence_header)
        self.assertTrue(parse_audio(parsed[2].payload).sequence_header)

    def test_extended_header(self):
        data = b"FLV\x01\x01\x00\x00\x00\x0cXYZ\x00\x00\x00\x00" + encode_tag(9, 7, b"\x17\x02")
        self.assertEqual(FlvReader().feed(data), [FlvTag(9, 7, b"\x17\x02")])
        reader = FlvReader()
        self.assertEqual(sum((reader.feed(bytes((b,))) for b in data), []),
                         [FlvTag(9, 7, b"\x17\x02")])
        self.assertEqual((reader.has_audio, reader.has_video), (False, True))

    def test_bad_signature(self):
        self.assertRaises(CodecError, FlvReader().feed, b"FLX\x01\x05\x00\x00\x00\x09")
        self.assertRaises(CodecError, FlvReader().feed, b"GIF")
        self.assertRaises(CodecError, FlvReader().feed, b"F\x00")
        self.assertEqual(FlvReader().feed(b"FL"), [])

    def test_bad_header_offset(self):
        self.assertRaises(CodecError, FlvReader().feed, b"FLV\x01\x05\x00\x00\x00\x08")

    def test_max_tag_size(self):
        data = file_header() + encode_tag(TAG_VIDEO, 0, b"\x00" * 11)
        reader = FlvReader(max_tag_size=10)
        self.assertRaises(CodecError, reader.feed, data)
        self.assertRaises(CodecError, reader.feed, b"")  # stays failed
        self.assertEqual(len(FlvReader(max_tag_size=11).feed(data)), 1)
        # The limit is checked from the 11-byte header, before the body arrives.
        reader = FlvReader(max_tag_size=100)
        reader.feed(file_header())
        self.assertRaises(CodecError, reader.feed, b"\x09\x00\x01\x00" + b"\x00" * 7)

    def test_encrypted_tag(self):
        data = file_header() + b"\x29" + encode_tag(TAG_VIDEO, 0, b"\x00")[1:]
        self.assertRaises(CodecError, FlvReader().feed, data)

    def test_partial_tag_is_buffered(self):
        tags, data = sample_stream()
        reader = FlvReader()
        self.assertEqual(reader.feed(data[:-1]), tags[:-1])
        self.assertEqual(reader.feed(data[-1:]), tags[-1:])
