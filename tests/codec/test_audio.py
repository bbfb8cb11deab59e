"""Tests for srs_twisted.codec.aac, mp3 and opus."""

import random

from twisted.trial import unittest

from srs_twisted.codec import aac, mp3, opus
from srs_twisted.codec.aac import AacInfo
from srs_twisted.codec.errors import CodecError

from .bits import BitWriter

# FFmpeg 5.1 native AAC encoder, 44100 Hz stereo, from the MP4 esds: LC plus a
# backward compatible sync extension (0x2B7, SBR type 5) saying "no SBR".
ASC_FFMPEG_LC = bytes.fromhex("121056e500")
# Explicit hierarchical signalling: HE-AAC 44.1 kHz stereo (22.05 kHz LC core)
ASC_HE_EXPLICIT = bytes.fromhex("2b920800")
# HE-AACv2 48 kHz: mono core at 24 kHz, PS makes it stereo
ASC_HEV2_EXPLICIT = bytes.fromhex("eb098800")
# First ADTS header written by FFmpeg for the same stream (338-byte payload).
ADTS_FFMPEG = bytes.fromhex("fff150802b3ffc")


def implicit_sbr(ps=False):
    """LC 22.05 kHz stereo config followed by SBR (and PS) sync extensions."""
    w = BitWriter().u(5, 2).u(4, 7).u(4, 2 if not ps else 1).u(3, 0)
    w.u(11, 0x2B7).u(5, 5).flag(True).u(4, 4)
    if ps:
        w.u(11, 0x548).flag(True)
    return w.tobytes()


class AudioSpecificConfigTests(unittest.TestCase):
    def test_ffmpeg_lc(self):
        self.assertEqual(aac.parse_audio_specific_config(ASC_FFMPEG_LC),
                         AacInfo(2, "LC", 44100, 2))
        self.assertEqual(aac.parse_audio_specific_config(b"\x12\x10"), AacInfo(2, "LC", 44100, 2))
        self.assertEqual(aac.parse_audio_specific_config(memoryview(b"\x11\x90")),
                         AacInfo(2, "LC", 48000, 2))

    def test_he_explicit(self):
        self.assertEqual(aac.parse_audio_specific_config(ASC_HE_EXPLICIT),
                         AacInfo(5, "HE", 44100, 2))
        self.assertEqual(aac.parse_audio_specific_config(ASC_HEV2_EXPLICIT),
                         AacInfo(29, "HEv2", 48000, 2))

    def test_he_implicit(self):
        self.assertEqual(aac.parse_audio_specific_config(implicit_sbr()),
                         AacInfo(5, "HE", 44100, 2))
        self.assertEqual(aac.parse_audio_specific_config(implicit_sbr(ps=True)),
                         AacInfo(29, "HEv2", 44100, 2))

    def test_other_object_types(self):
        self.assertEqual(aac.parse_audio_specific_config(b"\x0a\x08"), AacInfo(1, "Main", 44100, 1))
        self.assertEqual(aac.parse_audio_specific_config(b"\x1a\x10"), AacInfo(3, "SSR", 44100, 2))
        self.assertEqual(aac.parse_audio_specific_config(b"\x22\x10").profile_name, "Other")
        # escape: audioObjectType 31 + 6 bits -> 32 + 10 = 42 (USAC)
        escaped = BitWriter().u(5, 31).u(6, 10).u(4, 3).u(4, 2).tobytes()
        self.assertEqual(aac.parse_audio_specific_config(escaped), AacInfo(42, "Other", 48000, 2))

    def test_explicit_frequency_and_channels(self):
        data = BitWriter().u(5, 2).u(4, 15).u(24, 12345).u(4, 7).u(3, 0).tobytes()
        self.assertEqual(aac.parse_audio_specific_config(data), AacInfo(2, "LC", 12345, 8))
        data = BitWriter().u(5, 2).u(4, 12).u(4, 0).u(3, 0).tobytes()
        self.assertEqual(aac.parse_audio_specific_config(data), AacInfo(2, "LC", 7350, 0))

    def test_invalid(self):
        for data in (b"", b"\x12", b"\x00\x10", b"\x16\x90", b"\x12\x40", b"\x17\x80\x00\x00\x10",
                     BitWriter().u(5, 2).u(4, 3).u(4, 9).tobytes()):
            self.assertRaises(CodecError, aac.parse_audio_specific_config, data)

    def test_every_cut_only_codec_error(self):
        for config in (ASC_FFMPEG_LC, ASC_HE_EXPLICIT, implicit_sbr(True)):
            self.assertRaises(CodecError, aac.parse_audio_specific_config, config[:1])
            for cut in range(len(config)):
                try:
                    aac.parse_audio_specific_config(config[:cut])
                except CodecError:
                    pass

    def test_make(self):
        self.assertEqual(aac.make_audio_specific_config(2, 44100, 2), b"\x12\x10")
        self.assertEqual(aac.make_audio_specific_config(2, 48000, 2), b"\x11\x90")
        self.assertEqual(aac.make_audio_specific_config(2, 44100, 1), b"\x12\x08")
        self.assertEqual(aac.make_audio_specific_config(5, 44100, 2), ASC_HE_EXPLICIT)
        self.assertEqual(aac.make_audio_specific_config(29, 48000, 2), ASC_HEV2_EXPLICIT)
        for args in ((2, 44100, 2), (1, 8000, 1), (2, 7350, 8), (5, 48000, 1), (29, 44100, 2),
                     (2, 12345, 6), (42, 96000, 2), (3, 22050, 3)):
            info = aac.parse_audio_specific_config(aac.make_audio_specific_config(*args))
            self.assertEqual((info.object_type, info.sample_rate, info.channels), args)

    def test_make_invalid(self):
        self.assertRaises(CodecError, aac.make_audio_specific_config, 0, 44100, 2)
        self.assertRaises(CodecError, aac.make_audio_specific_config, 2, 44100, 9)
        self.assertRaises(CodecError, aac.make_audio_specific_config, 2, 0, 2)
        self.assertRaises(CodecError, aac.make_audio_specific_config, 5, 44101, 2)


class AdtsTests(unittest.TestCase):
    def test_header_bytes(self):
        info = AacInfo(2, "LC", 44100, 2)
        self.assertEqual(aac.adts_header(info, 338), ADTS_FFMPEG)
        self.assertEqual(aac.adts_header(info, 10), bytes.fromhex("fff15080023ffc"))
        self.assertEqual(aac.adts_header(AacInfo(1, "Main", 48000, 1), 0),
                         bytes.fromhex("fff10c4000fffc"))

    def test_he_is_written_as_lc_core(self):
        header = aac.adts_header(AacInfo(5, "HE", 44100, 2), 10)
        self.assertEqual(header, aac.adts_header(AacInfo(2, "LC", 22050, 2), 10))
        header = aac.adts_header(AacInfo(29, "HEv2", 48000, 2), 10)
        self.assertEqual(header, aac.adts_header(AacInfo(2, "LC", 24000, 1), 10))

    def test_header_limits(self):
        info = AacInfo(2, "LC", 44100, 2)
        self.assertRaises(CodecError, aac.adts_header, info, 8185)
        self.assertEqual(len(aac.adts_header(info, 8184)), 7)
        self.assertRaises(CodecError, aac.adts_header, AacInfo(42, "Other", 44100, 2), 1)
        self.assertRaises(CodecError, aac.adts_header, AacInfo(2, "LC", 12345, 2), 1)
        self.assertRaises(CodecError, aac.adts_header, AacInfo(2, "LC", 44100, 0), 1)

    def test_parse_ffmpeg_header(self):
        frames = aac.parse_adts(ADTS_FFMPEG + bytes(338))
        self.assertEqual(frames, [(AacInfo(2, "LC", 44100, 2), bytes(338))])

    def test_round_trip(self):
        lc = AacInfo(2, "LC", 44100, 2)
        mono = AacInfo(2, "LC", 16000, 1)
        payloads = [(lc, b"\x21\x10" * 50), (lc, b""), (mono, b"\x01\x02\x03"), (lc, b"\xff")]
        data = b"".join(aac.adts_header(info, len(raw)) + raw for info, raw in payloads)
        self.assertEqual(aac.parse_adts(data), payloads)
        self.assertEqual(aac.parse_adts(b""), [])

    def test_crc_header(self):
        header = bytearray(aac.adts_header(AacInfo(2, "LC", 44100, 2), 5))
        header[1] &= 0xFE  # protection_absent = 0: a 16-bit CRC follows
        self.assertEqual(aac.parse_adts(bytes(header) + b"\xab\xcd" + b"abc")[0][1], b"abc")

    def test_errors(self):
        good = aac.adts_header(AacInfo(2, "LC", 44100, 2), 3) + b"abc"
        for cut in range(1, len(good)):
            self.assertRaises(CodecError, aac.parse_adts, good[:cut])
        self.assertRaises(CodecError, aac.parse_adts, good + b"\x00" * 7)
        self.assertRaises(CodecError, aac.parse_adts, bytes.fromhex("fff15080006000"))
        self.assertRaises(CodecError, aac.parse_adts, bytes.fromhex("fff17480023ffc") + bytes(10))


class Mp3Tests(unittest.TestCase):
    # Headers written by FFmpeg's libmp3lame / mp2 encoders.
    def test_mpeg1_layer3(self):
        self.assertEqual(mp3.parse_frame_header(bytes.fromhex("fffb9000")),
                         mp3.Mp3Info(1.0, 3, 128, 44100, 2, 417, 1152))
        self.assertEqual(mp3.parse_frame_header(bytes.fromhex("fffb9200")).frame_length, 418)

    def test_mpeg2_and_25_layer3(self):
        self.assertEqual(mp3.parse_frame_header(bytes.fromhex("fff370c0")),
                         mp3.Mp3Info(2.0, 3, 56, 22050, 1, 182, 576))
        self.assertEqual(mp3.parse_frame_header(memoryview(bytes.fromhex("ffe338c0aa"))),
                         mp3.Mp3Info(2.5, 3, 24, 8000, 1, 216, 576))

    def test_layer2_and_layer1(self):
        self.assertEqual(mp3.parse_frame_header(bytes.fromhex("fffda404")),
                         mp3.Mp3Info(1.0, 2, 192, 48000, 2, 576, 1152))
        self.assertEqual(mp3.parse_frame_header(bytes.fromhex("ffff9000")),
                         mp3.Mp3Info(1.0, 1, 288, 44100, 2, 312, 384))

    def test_free_format(self):
        self.assertEqual(mp3.parse_frame_header(bytes.fromhex("fffb0000")).frame_length, 0)

    def test_invalid(self):
        for header in ("fffb90", "7ffb9000", "ffeb9000", "fff99000", "fffbf000", "fffb9c00"):
            self.assertRaises(CodecError, mp3.parse_frame_header, bytes.fromhex(header))

    def test_fuzz_only_codec_error(self):
        rng = random.Random(3)
        for _ in range(3000):
            data = bytes((0xFF, 0xE0 | rng.randrange(32), rng.randrange(256), rng.randrange(256)))
            try:
                info = mp3.parse_frame_header(data)
            except CodecError:
                continue
            self.assertIn(info.sample_rate, (8000, 11025, 12000, 16000, 22050, 24000, 32000,
                                             44100, 48000))


class OpusTests(unittest.TestCase):
    # FFmpeg 5.1 libopus in MP4, the dOps box body
    DOPS = bytes.fromhex("000201380000bb80000000")

    def test_dops(self):
        self.assertEqual(opus.parse_opus_head(self.DOPS), opus.OpusInfo(2, 48000, 312))

    def test_opus_head(self):
        head = b"OpusHead\x01\x02\x38\x01\x44\xac\x00\x00\x00\x00\x00"
        self.assertEqual(opus.parse_opus_head(head), opus.OpusInfo(2, 44100, 312))
        self.assertEqual(opus.make_opus_head(1, 16000, 100),
                         b"OpusHead\x01\x01\x64\x00\x80\x3e\x00\x00\x00\x00\x00")
        self.assertEqual(opus.parse_opus_head(opus.make_opus_head()), opus.OpusInfo(2, 48000, 312))

    def test_mapping_family_one(self):
        head = b"OpusHead\x01\x06\x38\x01\x80\xbb\x00\x00\x00\x00\x01\x04\x02\x00\x04\x01\x02\x03\x05"
        self.assertEqual(opus.parse_opus_head(head).channels, 6)
        self.assertRaises(CodecError, opus.parse_opus_head, head[:-1])

    def test_invalid(self):
        for data in (b"", self.DOPS[:10], b"OpusHead\x01\x02\x38\x01",
                     b"OpusHead\x10\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00",
                     b"OpusHead\x01\x00\x38\x01\x80\xbb\x00\x00\x00\x00\x00",
                     b"\x01" + self.DOPS[1:]):
            self.assertRaises(CodecError, opus.parse_opus_head, data)
        self.assertRaises(CodecError, opus.make_opus_head, 3)
