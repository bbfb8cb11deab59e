"""Tests for srs_twisted.codec.fmp4 (and the box encoders in fmp4_boxes).

Byte-level tests walk the written boxes with a small independent parser;
codec-string tests use the H.264/H.265/AAC fixtures of the sibling tests;
the FFmpeg tests fragment real FLV clips (H.264/H.265 + AAC, H.264 + MP3,
H.264 + Opus) and let ffprobe and ffmpeg judge the MP4 files, whole,
truncated after each fragment, split DASH-style and cut into LL-HLS parts.
"""

import json
import os
import random
import struct
import subprocess

from twisted.trial import unittest

from srs_twisted.codec import flv, fmp4
from srs_twisted.codec import fmp4_boxes as boxes
from srs_twisted.codec.errors import CodecError
from srs_twisted.codec.fmp4 import (
    Fmp4Error, Fragmenter, Sample, init_segment, media_segment, sample_from_packet,
    track_for_mp3, track_from_sequence_header,
)
from srs_twisted.live.packet import AUDIO, DATA, VIDEO, MediaPacket

from .bits import escape_rbsp
from .test_avc import AVCC_320x240
from .test_hevc import HVCC_1280x720, HVCC_1280x720_MAIN10, HVCC_1920x1080

ASC_44100_STEREO = bytes.fromhex("1210")
ASC_HE_EXPLICIT = bytes.fromhex("2b920800")  # HE-AAC, 44.1 kHz output, stereo
ASC_HEV2_EXPLICIT = bytes.fromhex("eb8a0800")  # HE-AACv2, 44.1 kHz output
MP3_FRAME_HEADER = bytes.fromhex("fffb9064")  # MPEG-1 layer III 128 kbps 44.1 kHz stereo
MP3_LSF_HEADER = bytes.fromhex("fff39064")  # MPEG-2 layer III 22.05 kHz stereo
OPUS_HEAD = b"OpusHead" + struct.pack("<BBHIhB", 1, 2, 312, 44100, -256, 0)
OPUS_20MS = bytes((0xFC, 0xFF, 0xFE))  # TOC config 31 (CELT FB 20 ms), code 0


# ---------------------------------------------------------------------------
# a box walker, independent of the writer

CONTAINERS = frozenset((b"moov", b"trak", b"mdia", b"minf", b"dinf", b"stbl", b"mvex",
                        b"moof", b"traf"))


class Box:
    def __init__(self, data, kind, start, body, end, children):
        self.data, self.kind, self.start, self.body_start, self.end = data, kind, start, body, end
        self.children = children

    @property
    def size(self):
        return self.end - self.start

    @property
    def body(self):
        return self.data[self.body_start:self.end]

    @property
    def version_flags(self):
        word = struct.unpack_from(">I", self.data, self.body_start)[0]
        return word >> 24, word & 0xFFFFFF

    def kinds(self):
        return [c.kind for c in self.children]

    def find(self, path):
        box = self
        for kind in path.split("/"):
            matches = [c for c in box.children if c.kind == kind.encode()]
            assert matches, "no %s in %r" % (kind, box.kinds())
            box = matches[0]
        return box

    def all(self, kind):
        return [c for c in self.children if c.kind == kind.encode()]


def walk(data, start=0, end=None):
    """Parse boxes between start and end; each box must fit exactly."""
    end = len(data) if end is None else end
    out = []
    pos = start
    while pos < end:
        assert end - pos >= 8, "stray %d bytes at %d" % (end - pos, pos)
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        assert header <= size <= end - pos, "%r box of %d bytes at %d overruns %d" % (
            kind, size, pos, end)
        children = walk(data, pos + header, pos + size) if kind in CONTAINERS else None
        out.append(Box(data, kind, pos, pos + header, pos + size, children))
        pos += size
    return out


def root(data):
    return Box(data, b"", 0, 0, len(data), walk(data))


def stsd_entry(init, track_index=0):
    """The single sample entry of a track, with its child boxes parsed."""
    trak = root(init).find("moov").all("trak")[track_index]
    stsd = trak.find("mdia/minf/stbl/stsd")
    assert struct.unpack_from(">I", stsd.body, 4)[0] == 1
    entry = walk(init, stsd.body_start + 8, stsd.end)
    assert len(entry) == 1
    entry = entry[0]
    fixed = 78 if entry.kind in (b"avc1", b"hvc1") else 28
    entry.children = walk(init, entry.body_start + fixed, entry.end)
    return entry


def parse_trun(box):
    version, flags = box.version_flags
    count, offset = struct.unpack_from(">Ii", box.body, 4)
    fields = [name for bit, name in ((0x100, "duration"), (0x200, "size"), (0x400, "flags"),
                                     (0x800, "cts")) if flags & bit]
    row = ">" + "".join("i" if (n == "cts" and version) else "I" for n in fields)
    rows = []
    pos = 12
    for _ in range(count):
        rows.append(dict(zip(fields, struct.unpack_from(row, box.body, pos))))
        pos += 4 * len(fields)
    assert pos == len(box.body)
    return version, flags, offset, rows


def fragments_of(data):
    """[(sequence_number, {track_id: (tfdt, rows)})] for every moof in ``data``."""
    out = []
    for box in walk(data):
        if box.kind != b"moof":
            continue
        seq = struct.unpack_from(">I", box.find("mfhd").body, 4)[0]
        tracks = {}
        for traf in box.all("traf"):
            track_id = struct.unpack_from(">I", traf.find("tfhd").body, 4)[0]
            tfdt = struct.unpack_from(">Q", traf.find("tfdt").body, 4)[0]
            tracks[track_id] = (tfdt, parse_trun(traf.find("trun"))[3])
        out.append((seq, tracks))
    return out


# ---------------------------------------------------------------------------
# packets


def pkt_video(dts, body, cts=0, keyframe=False, sequence_header=False, codec="h264"):
    return MediaPacket(VIDEO, dts, body, codec=codec, pts=dts + cts, keyframe=keyframe,
                       sequence_header=sequence_header)


def avc_body(nals, keyframe, cts=0, codec_id=7, length_size=4):
    head = bytes((((1 if keyframe else 2) << 4) | codec_id, 1)) + (cts & 0xFFFFFF).to_bytes(3,
                                                                                          "big")
    return head + b"".join(len(n).to_bytes(length_size, "big") + n for n in nals)


def h264_seq(dts=0, record=AVCC_320x240):
    return pkt_video(dts, b"\x17\x00\x00\x00\x00" + record, keyframe=True, sequence_header=True)


def h264_frame(dts, keyframe=False, cts=0, nals=None):
    nals = nals or [bytes((0x65 if keyframe else 0x41,)) + bytes(range(1, 40))]
    return pkt_video(dts, avc_body(nals, keyframe, cts), cts, keyframe)


def hevc_seq(record=HVCC_1280x720, enhanced=False):
    body = (b"\x90hvc1" if enhanced else b"\x1c\x00\x00\x00\x00") + record
    return pkt_video(0, body, keyframe=True, sequence_header=True, codec="h265")


def aac_seq(asc=ASC_44100_STEREO, dts=0):
    return MediaPacket(AUDIO, dts, b"\xaf\x00" + asc, codec="aac", sequence_header=True)


def aac_frame(dts, raw=b"\x21\x10\x04\x60\x8c\x1c"):
    return MediaPacket(AUDIO, dts, b"\xaf\x01" + raw, codec="aac")


def mp3_frame(dts, header=MP3_FRAME_HEADER):
    return MediaPacket(AUDIO, dts, b"\x2f" + header + bytes(100), codec="mp3")


def opus_seq(head=OPUS_HEAD):
    return MediaPacket(AUDIO, 0, b"\x90Opus" + head, codec="opus", sequence_header=True)


def opus_frame(dts, packet=OPUS_20MS):
    return MediaPacket(AUDIO, dts, b"\x91Opus" + packet, codec="opus")


def h264_track(track_id=1):
    return track_from_sequence_header(h264_seq(), track_id)


def aac_track(track_id=2, asc=ASC_44100_STEREO):
    return track_from_sequence_header(aac_seq(asc), track_id)


# ---------------------------------------------------------------------------
# codec strings and tracks


def hevc_sps(ptl):
    """An H.265 SPS NAL unit that is just headers and a general profile_tier_level."""
    return b"\x42\x01" + escape_rbsp(b"\x01" + ptl + b"\xa0")


class CodecStringTests(unittest.TestCase):
    def test_avc_from_sps(self):
        self.assertEqual(h264_track().codec_string, "avc1.42c01e")
        self.assertEqual(fmp4.avc_codec_string(b"\x67\x64\x00\x1f\xac"), "avc1.64001f")

    def test_avc_needs_an_sps(self):
        self.assertRaises(Fmp4Error, fmp4.avc_codec_string, b"\x68\x64\x00\x1f")
        self.assertRaises(Fmp4Error, fmp4.avc_codec_string, b"\x67\x64")

    def test_hevc_fixtures(self):
        self.assertEqual(track_from_sequence_header(hevc_seq(), 1).codec_string,
                         "hvc1.1.6.L93.90")
        self.assertEqual(track_from_sequence_header(hevc_seq(HVCC_1280x720_MAIN10), 1)
                         .codec_string, "hvc1.2.4.L93.90")
        self.assertEqual(track_from_sequence_header(hevc_seq(HVCC_1920x1080), 1).codec_string,
                         "hvc1.1.6.L120.90")

    def test_hevc_main_progressive(self):
        # Main, compatible with Main and Main10, progressive + frame-only: Annex E's example
        ptl = bytes((0x01,)) + bytes.fromhex("60000000") + bytes.fromhex("b00000000000") + b"\x5d"
        self.assertEqual(fmp4.hevc_codec_string(hevc_sps(ptl)), "hvc1.1.6.L93.B0")

    def test_hevc_space_tier_and_constraint_bytes(self):
        # profile space 1 (A), high tier, profile 4; compat flag 4 only -> reversed 0x10
        ptl = (bytes((0x40 | 0x20 | 4,)) + bytes.fromhex("08000000")
               + bytes.fromhex("010000020000") + bytes((153,)))
        self.assertEqual(fmp4.hevc_codec_string(hevc_sps(ptl)), "hvc1.A4.10.H153.1.0.0.2")
        self.assertEqual(fmp4.hevc_codec_string(hevc_sps(ptl), "hev1"), "hev1.A4.10.H153.1.0.0.2")

    def test_hevc_all_zero_constraints_left_out(self):
        ptl = b"\x01" + bytes.fromhex("60000000") + bytes(6) + b"\x78"
        # 00 00 00 00 00 runs get emulation prevention bytes; the string must not see them
        sps = hevc_sps(ptl)
        self.assertIn(b"\x00\x00\x03", sps)
        self.assertEqual(fmp4.hevc_codec_string(sps), "hvc1.1.6.L120")

    def test_hevc_needs_an_sps(self):
        self.assertRaises(Fmp4Error, fmp4.hevc_codec_string, b"\x40\x01" + bytes(20))
        self.assertRaises(Fmp4Error, fmp4.hevc_codec_string, b"\x42\x01\x01\x01")

    def test_aac(self):
        self.assertEqual(aac_track().codec_string, "mp4a.40.2")
        self.assertEqual(aac_track(asc=ASC_HE_EXPLICIT).codec_string, "mp4a.40.5")
        self.assertEqual(aac_track(asc=ASC_HEV2_EXPLICIT).codec_string, "mp4a.40.29")
        self.assertEqual(fmp4.aac_codec_string(ASC_HE_EXPLICIT), "mp4a.40.5")
        self.assertRaises(Fmp4Error, fmp4.aac_codec_string, b"\x00")

    def test_mp3_and_opus(self):
        self.assertEqual(track_for_mp3(mp3_frame(0), 2).codec_string, "mp4a.6b")
        self.assertEqual(track_for_mp3(mp3_frame(0, MP3_LSF_HEADER), 2).codec_string, "mp4a.69")
        self.assertEqual(track_from_sequence_header(opus_seq(), 2).codec_string, "opus")


class TrackTests(unittest.TestCase):
    def test_h264(self):
        t = h264_track()
        self.assertEqual((t.track_id, t.kind, t.codec, t.timescale, t.width, t.height),
                         (1, "video", "h264", 90000, 320, 240))
        self.assertEqual(t.config, AVCC_320x240)

    def test_h265_legacy_and_enhanced(self):
        for enhanced in (False, True):
            t = track_from_sequence_header(hevc_seq(enhanced=enhanced), 1)
            self.assertEqual((t.codec, t.timescale, t.width, t.height, t.config),
                             ("h265", 90000, 1280, 720, HVCC_1280x720))

    def test_aac(self):
        t = aac_track()
        self.assertEqual((t.track_id, t.kind, t.codec, t.timescale, t.sample_rate, t.channels,
                          t.config), (2, "audio", "aac", 44100, 44100, 2, ASC_44100_STEREO))
        he = aac_track(asc=ASC_HE_EXPLICIT)
        self.assertEqual((he.timescale, he.sample_rate), (44100, 44100))

    def test_opus(self):
        t = track_from_sequence_header(opus_seq(), 2)
        self.assertEqual((t.codec, t.timescale, t.sample_rate, t.channels, t.config),
                         ("opus", 48000, 48000, 2, OPUS_HEAD))

    def test_mp3(self):
        t = track_for_mp3(mp3_frame(0), 2)
        self.assertEqual((t.codec, t.timescale, t.sample_rate, t.channels, t.config),
                         ("mp3", 44100, 44100, 2, b""))
        self.assertEqual(track_for_mp3(mp3_frame(0, MP3_LSF_HEADER), 2).timescale, 22050)

    def test_refusals(self):
        cases = [
            (track_from_sequence_header, h264_frame(0, True)),  # not a sequence header
            (track_from_sequence_header, aac_frame(0)),
            (track_from_sequence_header, MediaPacket(DATA, 0, b"\x02\x00\x0aonMetaData")),
            (track_from_sequence_header, mp3_frame(0)),  # use track_for_mp3
            (track_from_sequence_header, pkt_video(0, b"\x90av01" + bytes(4),
                                                   sequence_header=True)),
            (track_from_sequence_header, MediaPacket(AUDIO, 0, b"\x9fOpus")),  # bad packet type
            (track_from_sequence_header, h264_seq(record=AVCC_320x240[:20])),
            (track_from_sequence_header, aac_seq(b"\x00")),
            (track_from_sequence_header, opus_seq(OPUS_HEAD[:12])),
            (track_from_sequence_header, pkt_video(0, b"")),
            (track_for_mp3, aac_frame(0)),
            (track_for_mp3, h264_frame(0)),
            (track_for_mp3, MediaPacket(AUDIO, 0, b"\x2f\x00\x00\x00\x00")),
        ]
        for fn, pkt in cases:
            with self.assertRaises(Fmp4Error, msg=repr(pkt)) as ctx:
                fn(pkt, 1)
            self.assertIsInstance(ctx.exception, CodecError)

    def test_fuzzed_sequence_headers_raise_codec_errors_only(self):
        rng = random.Random(7)
        seeds = [h264_seq().payload, hevc_seq().payload, hevc_seq(enhanced=True).payload,
                 aac_seq().payload, opus_seq().payload]
        for seed in seeds:
            for _ in range(600):
                data = bytearray(seed)
                for _ in range(rng.randint(1, 3)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
                cut = rng.randrange(len(data) + 1)
                for body in (bytes(data), bytes(data[:cut])):
                    for kind in (VIDEO, AUDIO):
                        try:
                            track = track_from_sequence_header(MediaPacket(kind, 0, body), 1)
                            init_segment([track])
                        except CodecError:
                            pass


# ---------------------------------------------------------------------------
# init segment


class InitSegmentTests(unittest.TestCase):
    def test_layout(self):
        init = init_segment([h264_track(), aac_track()])
        top = root(init)
        self.assertEqual(top.kinds(), [b"ftyp", b"moov"])
        ftyp = top.find("ftyp").body
        self.assertEqual(ftyp[:8], b"iso6\x00\x00\x00\x00")
        self.assertEqual([ftyp[i:i + 4] for i in range(8, len(ftyp), 4)],
                         [b"iso6", b"iso5", b"mp41"])
        moov = top.find("moov")
        self.assertEqual(moov.kinds(), [b"mvhd", b"trak", b"trak", b"mvex"])
        for trak in moov.all("trak"):
            self.assertEqual(trak.kinds(), [b"tkhd", b"mdia"])
            self.assertEqual(trak.find("mdia").kinds(), [b"mdhd", b"hdlr", b"minf"])
            stbl = trak.find("mdia/minf/stbl")
            self.assertEqual(stbl.kinds(), [b"stsd", b"stts", b"stsc", b"stsz", b"stco"])
            for kind in ("stts", "stsc", "stco"):
                self.assertEqual(stbl.find(kind).body, bytes(8))  # version/flags, 0 entries
            self.assertEqual(stbl.find("stsz").body, bytes(12))
            dinf = trak.find("mdia/minf/dinf")
            self.assertEqual(dinf.children[0].body, b"\x00\x00\x00\x00\x00\x00\x00\x01"
                             b"\x00\x00\x00\x0curl \x00\x00\x00\x01")
        video, audio = moov.all("trak")
        self.assertEqual(video.find("mdia/minf").kinds(), [b"vmhd", b"dinf", b"stbl"])
        self.assertEqual(audio.find("mdia/minf").kinds(), [b"smhd", b"dinf", b"stbl"])
        self.assertEqual(video.find("mdia/minf/vmhd").version_flags, (0, 1))

    def test_mvhd_tkhd_mdhd_hdlr(self):
        init = init_segment([h264_track(), aac_track()])
        moov = root(init).find("moov")
        mvhd = moov.find("mvhd")
        self.assertEqual(mvhd.size, 108)
        self.assertEqual(struct.unpack_from(">II", mvhd.body, 12), (1000, 0))
        self.assertEqual(struct.unpack_from(">I", mvhd.body, len(mvhd.body) - 4)[0], 3)
        video, audio = moov.all("trak")
        tkhd = video.find("tkhd")
        self.assertEqual((tkhd.size, tkhd.version_flags), (92, (0, 3)))
        self.assertEqual(struct.unpack_from(">I", tkhd.body, 12)[0], 1)
        self.assertEqual(struct.unpack_from(">II", tkhd.body, 76), (320 << 16, 240 << 16))
        self.assertEqual(struct.unpack_from(">H", tkhd.body, 36)[0], 0)  # video: volume 0
        atkhd = audio.find("tkhd")
        self.assertEqual(struct.unpack_from(">I", atkhd.body, 12)[0], 2)
        self.assertEqual(struct.unpack_from(">H", atkhd.body, 36)[0], 0x100)
        self.assertEqual(struct.unpack_from(">II", atkhd.body, 76), (0, 0))
        for trak, timescale, handler in ((video, 90000, b"vide"), (audio, 44100, b"soun")):
            mdhd = trak.find("mdia/mdhd")
            self.assertEqual(mdhd.size, 32)
            self.assertEqual(struct.unpack_from(">IIH", mdhd.body, 12), (timescale, 0, 0x55C4))
            self.assertEqual(trak.find("mdia/hdlr").body[8:12], handler)

    def test_avc1_entry(self):
        entry = stsd_entry(init_segment([h264_track()]))
        self.assertEqual(entry.kind, b"avc1")
        self.assertEqual(struct.unpack_from(">H", entry.body, 6)[0], 1)  # data_reference_index
        self.assertEqual(struct.unpack_from(">HH", entry.body, 24), (320, 240))
        self.assertEqual(struct.unpack_from(">Hh", entry.body, 74), (0x18, -1))
        self.assertEqual([c.kind for c in entry.children], [b"avcC"])
        self.assertEqual(entry.children[0].body, AVCC_320x240)

    def test_hvc1_entry(self):
        entry = stsd_entry(init_segment([track_from_sequence_header(hevc_seq(), 1)]))
        self.assertEqual(entry.kind, b"hvc1")
        self.assertEqual(struct.unpack_from(">HH", entry.body, 24), (1280, 720))
        self.assertEqual(entry.children[0].kind, b"hvcC")
        self.assertEqual(entry.children[0].body, HVCC_1280x720)

    def test_mp4a_entry_with_esds(self):
        entry = stsd_entry(init_segment([aac_track()]))
        self.assertEqual(entry.kind, b"mp4a")
        self.assertEqual(struct.unpack_from(">HHHHI", entry.body, 16), (2, 16, 0, 0, 44100 << 16))
        esds = entry.children[0]
        self.assertEqual(esds.kind, b"esds")
        self.assertEqual(esds.body, bytes.fromhex(
            "00000000"  # version, flags
            "0319" "0002" "00"  # ES_Descriptor, 25 bytes, ES_ID 2, no flags
            "0411" "40" "15" "000000" "00000000" "00000000"  # DecoderConfig: AAC, audio stream
            "0502" "1210"  # DecoderSpecificInfo: the AudioSpecificConfig
            "060102"))  # SLConfig predefined 2

    def test_mp3_entry(self):
        for header, oti in ((MP3_FRAME_HEADER, 0x6B), (MP3_LSF_HEADER, 0x69)):
            entry = stsd_entry(init_segment([track_for_mp3(mp3_frame(0, header), 2)]))
            self.assertEqual(entry.kind, b"mp4a")
            esds = entry.children[0].body
            self.assertEqual(esds[9:11], bytes((4, 13)))  # DecoderConfig without DSI
            self.assertEqual(esds[11], oti)
            self.assertNotIn(b"\x05", esds[24:25])

    def test_opus_entry_with_dops(self):
        entry = stsd_entry(init_segment([track_from_sequence_header(opus_seq(), 2)]))
        self.assertEqual(entry.kind, b"Opus")
        self.assertEqual(struct.unpack_from(">HHHHI", entry.body, 16), (2, 16, 0, 0, 48000 << 16))
        dops = entry.children[0]
        self.assertEqual(dops.kind, b"dOps")
        # OpusHead is little endian; dOps big endian and version 0
        self.assertEqual(dops.body, struct.pack(">BBHIhB", 0, 2, 312, 44100, -256, 0))

    def test_opus_mapping_family_1(self):
        head = (b"OpusHead" + struct.pack("<BBHIhB", 1, 3, 312, 48000, 0, 1)
                + bytes((2, 1, 0, 2, 1)))
        track = track_from_sequence_header(opus_seq(head), 2)
        dops = stsd_entry(init_segment([track])).children[0].body
        self.assertEqual(dops, struct.pack(">BBHIhB", 0, 3, 312, 48000, 0, 1)
                         + bytes((2, 1, 0, 2, 1)))
        track.config = head[:-1]
        self.assertRaises(Fmp4Error, init_segment, [track])

    def test_mvex(self):
        mvex = root(init_segment([h264_track(), aac_track()])).find("moov/mvex")
        self.assertEqual(mvex.kinds(), [b"trex", b"trex"])
        for trex, track_id in zip(mvex.children, (1, 2)):
            self.assertEqual(trex.size, 32)
            self.assertEqual(struct.unpack(">IIIIII", trex.body), (0, track_id, 1, 0, 0, 0))
        mvex = root(init_segment([h264_track()], duration_ms=12345)).find("moov/mvex")
        self.assertEqual(mvex.kinds(), [b"mehd", b"trex"])
        self.assertEqual(mvex.children[0].body, struct.pack(">II", 0, 12345))

    def test_major_brand(self):
        ftyp = root(init_segment([aac_track()], major_brand=b"dash")).find("ftyp").body
        self.assertEqual(ftyp[:4], b"dash")
        self.assertEqual(ftyp[8:12], b"dash")
        self.assertRaises(Fmp4Error, init_segment, [aac_track()], major_brand=b"toolong")

    def test_refusals(self):
        self.assertRaises(Fmp4Error, init_segment, [])
        self.assertRaises(Fmp4Error, init_segment, [h264_track(1), aac_track(1)])
        for change in ({"codec": "vp9"}, {"kind": "data"}, {"track_id": 0}, {"timescale": 0},
                       {"config": b""}, {"width": 70000}, {"codec": "aac"}):
            track = h264_track()
            for name, value in change.items():
                setattr(track, name, value)
            self.assertRaises(Fmp4Error, init_segment, [track])
        track = aac_track()
        track.config = b""
        self.assertRaises(Fmp4Error, init_segment, [track])


# ---------------------------------------------------------------------------
# media segments


def video_samples():
    return [Sample(9000, 3600, 7200, b"\x00\x00\x00\x02\x65\x88", True),
            Sample(12600, 3600, 0, b"\x00\x00\x00\x03\x41\x9a\x01", False),
            Sample(16200, 3600, 3600, b"\x00\x00\x00\x01\x01", False)]


def audio_samples():
    return [Sample(4410, 1024, 0, b"\x21" * 10, True), Sample(5434, 1024, 0, b"\x22" * 12, True)]


class MediaSegmentTests(unittest.TestCase):
    def segment(self, styp=False):
        return media_segment(7, [(h264_track(), video_samples()), (aac_track(), audio_samples())],
                             styp=styp)

    def test_layout(self):
        data = self.segment()
        top = root(data)
        self.assertEqual(top.kinds(), [b"moof", b"mdat"])
        moof = top.find("moof")
        self.assertEqual(moof.kinds(), [b"mfhd", b"traf", b"traf"])
        self.assertEqual(moof.find("mfhd").body, struct.pack(">II", 0, 7))
        for traf in moof.all("traf"):
            self.assertEqual(traf.kinds(), [b"tfhd", b"tfdt", b"trun"])
        payload = b"".join(s.data for s in video_samples() + audio_samples())
        self.assertEqual(top.find("mdat").body, payload)

    def test_tfhd_tfdt(self):
        video, audio = root(self.segment()).find("moof").all("traf")
        for traf, track_id, base in ((video, 1, 9000), (audio, 2, 4410)):
            tfhd = traf.find("tfhd")
            self.assertEqual(tfhd.version_flags, (0, 0x020000))  # default-base-is-moof only
            self.assertEqual(tfhd.size, 16)
            self.assertEqual(struct.unpack_from(">I", tfhd.body, 4)[0], track_id)
            tfdt = traf.find("tfdt")
            self.assertEqual((tfdt.version_flags, tfdt.size), ((1, 0), 20))
            self.assertEqual(struct.unpack_from(">Q", tfdt.body, 4)[0], base)

    def test_trun_fields(self):
        video, audio = root(self.segment()).find("moof").all("traf")
        version, flags, _, rows = parse_trun(video.find("trun"))
        self.assertEqual((version, flags), (0, 0x000F01))
        self.assertEqual(rows, [
            {"duration": 3600, "size": 6, "flags": 0x02000000, "cts": 7200},
            {"duration": 3600, "size": 7, "flags": 0x01010000, "cts": 0},
            {"duration": 3600, "size": 5, "flags": 0x01010000, "cts": 3600}])
        version, flags, _, rows = parse_trun(audio.find("trun"))
        self.assertEqual((version, flags), (0, 0x000701))  # no composition offsets
        self.assertEqual(rows, [{"duration": 1024, "size": 10, "flags": 0x02000000},
                                {"duration": 1024, "size": 12, "flags": 0x02000000}])

    def test_data_offsets_point_at_each_tracks_samples(self):
        for styp in (False, True):
            data = self.segment(styp)
            top = root(data)
            moof = top.find("moof")
            for traf, samples in zip(moof.all("traf"), (video_samples(), audio_samples())):
                offset = parse_trun(traf.find("trun"))[2]
                pos = moof.start + offset
                for sample in samples:
                    self.assertEqual(data[pos:pos + len(sample.data)], sample.data)
                    pos += len(sample.data)
            first = parse_trun(moof.all("traf")[0].find("trun"))[2]
            self.assertEqual(moof.start + first, top.find("mdat").body_start)

    def test_styp(self):
        data = self.segment(styp=True)
        top = root(data)
        self.assertEqual(top.kinds(), [b"styp", b"moof", b"mdat"])
        self.assertEqual(top.find("styp").body, b"msdh\x00\x00\x00\x00msdhmsix")

    def test_negative_composition_offsets_use_version_1(self):
        samples = video_samples()
        samples[1].cts = -3600
        traf = root(media_segment(1, [(h264_track(), samples)])).find("moof/traf")
        version, _, _, rows = parse_trun(traf.find("trun"))
        self.assertEqual(version, 1)
        self.assertEqual([r["cts"] for r in rows], [7200, -3600, 3600])

    def test_audio_with_offsets_gets_the_cts_column(self):
        samples = audio_samples()
        samples[0].cts = 5
        trun = root(media_segment(1, [(aac_track(), samples)])).find("moof/traf/trun")
        self.assertEqual(parse_trun(trun)[1], 0x000F01)

    def test_empty_tracks_are_left_out(self):
        data = media_segment(2, [(h264_track(), []), (aac_track(), audio_samples())])
        trafs = root(data).find("moof").all("traf")
        self.assertEqual(len(trafs), 1)
        self.assertEqual(struct.unpack_from(">I", trafs[0].find("tfhd").body, 4)[0], 2)

    def test_large_mdat_header(self):
        self.assertEqual(boxes.mdat_header(100), b"\x00\x00\x00\x6cmdat")
        self.assertEqual(boxes.mdat_header(1 << 32), b"\x00\x00\x00\x01mdat"
                         + struct.pack(">Q", (1 << 32) + 16))

    def test_refusals(self):
        video = h264_track()
        self.assertRaises(Fmp4Error, media_segment, 1, [])
        self.assertRaises(Fmp4Error, media_segment, 1, [(video, [])])
        self.assertRaises(Fmp4Error, media_segment, 1 << 32, [(video, video_samples())])
        self.assertRaises(Fmp4Error, media_segment, -1, [(video, video_samples())])
        self.assertRaises(Fmp4Error, media_segment, 1,
                          [(video, video_samples()), (video, video_samples())])
        for change in ({"dts": -1}, {"duration": -1}, {"duration": 1 << 32},
                       {"cts": 1 << 32}):
            samples = video_samples()
            for name, value in change.items():
                setattr(samples[0], name, value)
            self.assertRaises(Fmp4Error, media_segment, 1, [(video, samples)])

    def test_box_helpers(self):
        self.assertEqual(boxes.box(b"free"), b"\x00\x00\x00\x08free")
        self.assertEqual(boxes.full_box(b"test", 1, 0x020304, b"x"),
                         b"\x00\x00\x00\x0dtest\x01\x02\x03\x04x")
        # descriptor sizes use as many 7-bit groups as needed
        self.assertEqual(boxes._descriptor(5, b"a" * 200)[:3], b"\x05\x81\x48")
        self.assertRaises(Fmp4Error, boxes.tfdt, 1 << 64)


# ---------------------------------------------------------------------------
# samples


class SampleFromPacketTests(unittest.TestCase):
    def test_video(self):
        track = h264_track()
        s = sample_from_packet(h264_frame(1000, True, cts=80), track)
        self.assertEqual((s.dts, s.duration, s.cts, s.keyframe), (90000, 0, 7200, True))
        self.assertEqual(s.data, h264_frame(1000, True).payload[5:])
        self.assertFalse(sample_from_packet(h264_frame(1040), track).keyframe)

    def test_enhanced_hevc(self):
        track = track_from_sequence_header(hevc_seq(enhanced=True), 1)
        nal = b"\x26\x01" + bytes(range(1, 30))
        frame = b"\x91hvc1" + b"\x00\x00\x28" + len(nal).to_bytes(4, "big") + nal  # cts 40
        s = sample_from_packet(pkt_video(2000, frame, 40, True, codec="h265"), track)
        self.assertEqual((s.dts, s.cts, s.keyframe), (180000, 3600, True))
        self.assertEqual(s.data, len(nal).to_bytes(4, "big") + nal)
        # coded frames without composition time (packet type 3)
        s = sample_from_packet(pkt_video(0, b"\x93hvc1" + frame[8:], codec="h265"), track)
        self.assertEqual(s.data, len(nal).to_bytes(4, "big") + nal)

    def test_audio_timescale(self):
        track = aac_track()
        s = sample_from_packet(aac_frame(23), track)
        self.assertEqual((s.dts, s.duration, s.cts, s.keyframe, s.data),
                         (1014, 0, 0, True, b"\x21\x10\x04\x60\x8c\x1c"))  # 23 ms * 44.1 = 1014.3
        opus_track = track_from_sequence_header(opus_seq(), 2)
        s = sample_from_packet(opus_frame(20), opus_track)
        self.assertEqual((s.dts, s.data), (960, OPUS_20MS))
        mp3 = track_for_mp3(mp3_frame(0), 2)
        self.assertEqual(sample_from_packet(mp3_frame(1000), mp3).data[:4], MP3_FRAME_HEADER)

    def test_nothing_to_write(self):
        video = h264_track()
        audio = aac_track()
        end = pkt_video(0, b"\x17\x02\x00\x00\x00")
        command = pkt_video(0, b"\x57\x00")
        empty = pkt_video(0, b"\x27\x01\x00\x00\x00")
        metadata = pkt_video(0, b"\x84hvc1" + bytes(4), codec="h265")  # enhanced metadata
        for pkt in (h264_seq(), end, command, empty):
            self.assertIsNone(sample_from_packet(pkt, video), pkt)
        self.assertIsNone(sample_from_packet(metadata,
                                             track_from_sequence_header(hevc_seq(), 1)))
        self.assertIsNone(sample_from_packet(MediaPacket(DATA, 0, b"\x02\x00\x01x"), video))
        self.assertIsNone(sample_from_packet(aac_seq(), audio))
        self.assertIsNone(sample_from_packet(MediaPacket(AUDIO, 0, b"\xaf\x01"), audio))
        opus = track_from_sequence_header(opus_seq(), 2)
        self.assertIsNone(sample_from_packet(MediaPacket(AUDIO, 0, b"\x92Opus"), opus))  # end

    def test_refusals(self):
        video = h264_track()
        audio = aac_track()
        bad_length = pkt_video(0, b"\x17\x01\x00\x00\x00\x00\x00\x00\x09\x65")
        short_length = pkt_video(0, b"\x17\x01\x00\x00\x00\x00\x00")
        hevc_frame = pkt_video(0, b"\x1c\x01\x00\x00\x00\x00\x00\x00\x01\x26", codec="h265")
        for pkt, track in ((bad_length, video), (short_length, video), (hevc_frame, video),
                           (aac_frame(0), video), (h264_frame(0), audio), (mp3_frame(0), audio),
                           (pkt_video(0, b"\x07"), video), (MediaPacket(AUDIO, 0, b""), audio)):
            self.assertRaises(Fmp4Error, sample_from_packet, pkt, track)

    def test_fuzzed_frames_raise_codec_errors_only(self):
        rng = random.Random(3)
        tracks = [h264_track(), track_from_sequence_header(hevc_seq(enhanced=True), 1),
                  aac_track(), track_from_sequence_header(opus_seq(), 2)]
        seeds = [(h264_frame(40, True).payload, VIDEO),
                 (b"\x91hvc1\x00\x00\x00\x00\x00\x00\x03\x26\x01\x02", VIDEO),
                 (aac_frame(0).payload, AUDIO), (opus_frame(0).payload, AUDIO)]
        for _ in range(3000):
            seed, kind = rng.choice(seeds)
            data = bytearray(seed)
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data[:rng.randrange(len(data) + 1)])
            for track in tracks:
                try:
                    sample_from_packet(MediaPacket(kind, rng.randrange(-5, 10 ** 6), data),
                                       track)
                except CodecError:
                    pass


class OpusDurationTests(unittest.TestCase):
    def test_toc(self):
        cases = [
            (bytes((0xFC,)), 960),  # CELT 20 ms, one frame
            (bytes((0xF0,)), 480),  # CELT FB 10 ms
            (bytes((0x80,)), 120),  # CELT NB 2.5 ms
            (bytes((0x18,)), 2880),  # SILK NB 60 ms
            (bytes((0x69,)), 960 * 2),  # hybrid SWB 20 ms, code 1: two frames
            (bytes((0x63, 0x03)), 480 * 3),  # hybrid SWB 10 ms, code 3: three frames
            (bytes((0x03,)), 0),  # code 3 without its count byte
            (b"", 0),
        ]
        for packet, samples in cases:
            self.assertEqual(fmp4.opus_packet_samples(packet), samples, packet.hex())


# ---------------------------------------------------------------------------
# fragmenter


def feed(fragmenter, pkts):
    for pkt in pkts:
        fragmenter.add(pkt)


class FragmenterTests(unittest.TestCase):
    def test_durations_from_the_next_sample(self):
        f = Fragmenter([h264_track()])
        self.assertIsNone(f.cut(1))
        feed(f, [h264_seq(), h264_frame(0, True, 80), h264_frame(40), h264_frame(100)])
        self.assertEqual(f.pending_duration_ms(), 100)  # the frame at 100 waits
        data = f.cut(1)
        [(seq, tracks)] = fragments_of(data)
        tfdt, rows = tracks[1]
        self.assertEqual((seq, tfdt), (1, 0))
        self.assertEqual([(r["duration"], r["cts"]) for r in rows], [(3600, 7200), (5400, 0)])
        self.assertEqual(f.pending_duration_ms(), 0)
        self.assertIsNone(f.cut(2))
        data = f.flush(2)
        [(_, tracks)] = fragments_of(data)
        self.assertEqual(tracks[1][0], 9000)
        self.assertEqual([r["duration"] for r in tracks[1][1]], [5400])  # the previous duration
        self.assertIsNone(f.flush(3))

    def test_flush_defaults(self):
        cases = [
            ([h264_seq(), h264_frame(0, True)], h264_track(), 3600),  # 1/25 s
            ([aac_seq(), aac_frame(0)], aac_track(), 1024),
            ([aac_seq(ASC_HE_EXPLICIT), aac_frame(0)], aac_track(asc=ASC_HE_EXPLICIT), 2048),
            ([opus_seq(), opus_frame(0)], track_from_sequence_header(opus_seq(), 2), 960),
            ([mp3_frame(0)], track_for_mp3(mp3_frame(0), 2), 1152),
            ([mp3_frame(0, MP3_LSF_HEADER)], track_for_mp3(mp3_frame(0, MP3_LSF_HEADER), 2), 576),
        ]
        for pkts, track, duration in cases:
            f = Fragmenter([track])
            feed(f, pkts)
            self.assertIsNone(f.cut(1))
            [(_, tracks)] = fragments_of(f.flush(1))
            self.assertEqual([r["duration"] for r in tracks[track.track_id][1]], [duration],
                             track.codec)

    def test_audio_millisecond_jitter_is_snapped(self):
        f = Fragmenter([aac_track()])
        feed(f, [aac_seq()] + [aac_frame(i * 1024 * 1000 // 44100) for i in range(200)])
        [(_, tracks)] = fragments_of(f.flush(1))
        tfdt, rows = tracks[2]
        self.assertEqual(tfdt, 0)
        self.assertEqual({r["duration"] for r in rows}, {1024})
        self.assertEqual(len(rows), 200)

    def test_audio_gap_is_kept(self):
        f = Fragmenter([aac_track()])
        feed(f, [aac_frame(0), aac_frame(23), aac_frame(1000), aac_frame(1023)])
        [(_, tracks)] = fragments_of(f.flush(1))
        # 23 ms is 1014 ticks, snapped to 1024; the 977 ms gap stays
        self.assertEqual([r["duration"] for r in tracks[2][1]], [1024, 44100 - 1024, 1024, 1024])

    def test_time_going_backwards_continues_the_timeline(self):
        f = Fragmenter([h264_track()])
        feed(f, [h264_frame(1000, True), h264_frame(1040), h264_frame(0, True), h264_frame(40),
                 h264_frame(40), h264_frame(80)])
        [(_, tracks)] = fragments_of(f.flush(1))
        tfdt, rows = tracks[1]
        self.assertEqual(tfdt, 90000)
        self.assertEqual([r["duration"] for r in rows], [3600] * 6)
        audio = Fragmenter([aac_track()])
        feed(audio, [aac_frame(5000), aac_frame(100), aac_frame(123)])
        [(_, tracks)] = fragments_of(audio.flush(1))
        self.assertEqual([r["duration"] for r in tracks[2][1]], [1024] * 3)

    def test_negative_start_and_huge_jumps(self):
        f = Fragmenter([h264_track()])
        feed(f, [h264_frame(-80, True), h264_frame(-40), h264_frame(0), h264_frame(2 ** 40),
                 h264_frame(2 ** 40 + 40)])
        [(_, tracks)] = fragments_of(f.flush(1))
        tfdt, rows = tracks[1]
        self.assertEqual(tfdt, 0)
        self.assertEqual([r["duration"] for r in rows], [3600] * 5)

    def test_random_timestamps_give_valid_fragments(self):
        """Whatever the timestamps, fragments parse and each track's time only moves on."""
        rng = random.Random(11)
        for _ in range(30):
            f = Fragmenter([h264_track(), aac_track()])
            ends = {1: 0, 2: 0}
            seq = 0
            for _ in range(rng.randrange(1, 120)):
                dts = rng.choice((rng.randrange(-1000, 10 ** 4), rng.randrange(2 ** 34),
                                  seq * 10))
                f.add(rng.choice((h264_frame(dts, rng.random() < 0.3, rng.randrange(0, 200)),
                                  aac_frame(dts), h264_seq(dts), aac_seq(dts=dts))))
                roll = rng.random()
                data = None
                if roll < 0.2:
                    data = f.cut(seq + 1, styp=roll < 0.1)
                elif roll < 0.25:
                    data = f.flush(seq + 1)
                if data is None:
                    continue
                seq += 1
                walk(data)
                for _, tracks in fragments_of(data):
                    for track_id, (tfdt, rows) in tracks.items():
                        self.assertGreaterEqual(tfdt, ends[track_id])
                        self.assertTrue(all(r["duration"] > 0 for r in rows))
                        ends[track_id] = tfdt + sum(r["duration"] for r in rows)

    def test_video_waits_for_a_keyframe(self):
        f = Fragmenter([h264_track()])
        feed(f, [h264_frame(0), h264_frame(40), h264_frame(80, True), h264_frame(120)])
        [(_, tracks)] = fragments_of(f.flush(1))
        tfdt, rows = tracks[1]
        self.assertEqual((tfdt, len(rows), rows[0]["flags"]), (7200, 2, 0x02000000))

    def test_audio_is_cut_at_the_video_boundary(self):
        f = Fragmenter([h264_track(), aac_track()])
        pkts = [h264_seq(), aac_seq()]
        for i in range(50):
            pkts.append(h264_frame(i * 40, i % 25 == 0))
            pkts.append(aac_frame(i * 40 + 5))  # audio runs a bit ahead... and is not 1024-aligned
        for i, pkt in enumerate(pkts):
            f.add(pkt)
            if pkt.kind == VIDEO and pkt.keyframe and pkt.dts == 1000:
                data = f.cut(1)
                break
        [(_, tracks)] = fragments_of(data)
        video_end = tracks[1][0] + sum(r["duration"] for r in tracks[1][1])
        self.assertEqual(video_end, 90000)
        audio_tfdt, audio_rows = tracks[2]
        starts = [audio_tfdt]
        for r in audio_rows[:-1]:
            starts.append(starts[-1] + r["duration"])
        self.assertLess(starts[-1], 44100)  # every audio sample starts before the keyframe
        self.assertEqual(len(audio_rows), 24)  # the frame at 965 ms waits for its successor
        self.assertEqual(f.last_cut.sequence_number, 1)
        self.assertAlmostEqual(f.last_cut.start, 0.0)
        self.assertAlmostEqual(f.last_cut.duration, 1.0)
        self.assertTrue(f.last_cut.independent)
        self.assertEqual((f.last_cut.size, f.last_cut.samples), (len(data), 49))
        feed(f, pkts[i + 1:])
        data = f.flush(2)
        [(_, tracks)] = fragments_of(data)
        self.assertEqual(tracks[1][0], 90000)  # decode times continue across fragments
        self.assertEqual(tracks[2][0], starts[-1] + audio_rows[-1]["duration"])

    def test_parts_that_do_not_start_on_a_keyframe(self):
        f = Fragmenter([h264_track()])
        feed(f, [h264_frame(0, True), h264_frame(40), h264_frame(80), h264_frame(120)])
        f.cut(1)
        self.assertTrue(f.last_cut.independent)
        feed(f, [h264_frame(160), h264_frame(200)])
        f.cut(2)
        self.assertFalse(f.last_cut.independent)
        self.assertAlmostEqual(f.last_cut.start, 0.12)
        self.assertAlmostEqual(f.last_cut.duration, 0.08)

    def test_audio_only(self):
        f = Fragmenter([track_from_sequence_header(opus_seq(), 2)])
        feed(f, [opus_seq()] + [opus_frame(i * 20) for i in range(10)])
        self.assertEqual(f.pending_duration_ms(), 180)
        [(_, tracks)] = fragments_of(f.cut(1, styp=True))
        self.assertEqual([r["duration"] for r in tracks[2][1]], [960] * 9)
        self.assertTrue(f.last_cut.independent)

    def test_ignored_packets(self):
        f = Fragmenter([aac_track()])
        feed(f, [h264_seq(), h264_frame(0, True), MediaPacket(DATA, 0, b"\x02\x00\x01x"),
                 aac_seq(), aac_seq()])
        self.assertIsNone(f.flush(1))

    def test_codec_change_raises(self):
        f = Fragmenter([aac_track()])
        self.assertRaises(Fmp4Error, f.add, mp3_frame(0))
        f = Fragmenter([h264_track()])
        self.assertRaises(Fmp4Error, f.add, pkt_video(0, b"\x1c\x01\x00\x00\x00", codec="h265"))

    def test_refusals(self):
        self.assertRaises(Fmp4Error, Fragmenter, [])
        self.assertRaises(Fmp4Error, Fragmenter, [h264_track(1), aac_track(1)])
        self.assertRaises(Fmp4Error, Fragmenter, [aac_track(2), aac_track(3)])
        track = aac_track()
        track.codec = "flac"
        self.assertRaises(Fmp4Error, Fragmenter, [track])


# ---------------------------------------------------------------------------
# real tools


def _tools():
    """imageio-ffmpeg's FFmpeg (9.x: writes Opus and HEVC into enhanced FLV)
    else PATH's, and ffprobe."""
    from tests.integration import harness

    return harness.ffmpeg(), harness.ffprobe()


def _missing(message: str) -> None:
    """An FFmpeg without a feature skips locally and fails in CI, as a
    missing tool does (tests/integration/harness.need)."""
    from tests.integration import harness

    if harness.IN_CI:
        raise AssertionError(message)
    raise unittest.SkipTest(message)


_CLIPS = {}  # clip name -> packets, shared by the tests of one run
_H264 = ["-c:v", "libx264", "-g", "25", "-bf", "2"]


def _clip_args(video, audio, rate=44100):
    """4 s (four 1 s GOPs) of testsrc2 320x240 at 25 fps and a stereo 440 Hz sine."""
    return (["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=%d" % rate,
             "-t", "4", "-pix_fmt", "yuv420p", "-ac", "2"] + video + audio)


class FFmpegTests(unittest.TestCase):
    """Fragment FFmpeg-made FLV clips and let ffprobe and ffmpeg judge the MP4."""

    CLIPS = {
        "h264-aac": _clip_args(_H264, ["-c:a", "aac"]),
        "h265-aac": _clip_args(["-c:v", "libx265", "-x265-params",
                                "keyint=25:min-keyint=25:bframes=2:log-level=error"],
                               ["-c:a", "aac"]),
        "h264-mp3": _clip_args(_H264, ["-c:a", "libmp3lame"]),
        "h264-opus": _clip_args(_H264, ["-c:a", "libopus"], rate=48000),
    }
    EXPECT = {  # ffprobe names: video codec, audio codec, sample rate
        "h264-aac": ("h264", "aac", 44100),
        "h265-aac": ("hevc", "aac", 44100),
        "h264-mp3": ("h264", "mp3", 44100),
        "h264-opus": ("h264", "opus", 48000),
    }

    def setUp(self):
        self.tmp = self.mktemp()
        os.makedirs(self.tmp)

    def run_tool(self, cmd):
        """Run a tool; a non-zero exit fails the test with the end of its stderr."""
        done = subprocess.run(cmd, capture_output=True, timeout=120)
        if done.returncode:
            self.fail("%s exited %d: %s" % (os.path.basename(cmd[0]), done.returncode,
                                            done.stderr.decode(errors="replace")[-800:]))
        return done

    def clip(self, name):
        """The clip's packets (FFmpeg -> FLV file -> FlvReader -> media_packet), made once."""
        if name not in _CLIPS:
            _CLIPS[name] = self.make_clip(name)
        return _CLIPS[name]

    def make_clip(self, name):
        ffmpeg, _ = _tools()
        path = os.path.join(self.tmp, name + ".flv")
        result = subprocess.run([ffmpeg, "-hide_banner", "-v", "error", "-y", *self.CLIPS[name],
                                 "-f", "flv", path], capture_output=True, timeout=120)
        if result.returncode and name == "h264-opus":
            _missing("this FFmpeg cannot write Opus into FLV (needs >= 6.1, as imageio-ffmpeg's): "
                     + result.stderr.decode(errors="replace")[-200:])
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace")[-800:])
        with open(path, "rb") as f:
            tags = flv.FlvReader().feed(f.read())
        from srs_twisted.rtmp.session import media_packet

        pkts = [media_packet(t.tag_type, t.timestamp, t.payload) for t in tags]
        if name == "h264-opus" and not any(p.codec == "opus" for p in pkts):
            _missing("this FFmpeg wrote no Opus into FLV (needs enhanced FLV, as imageio-ffmpeg's)")
        return pkts

    @staticmethod
    def tracks(pkts):
        video = audio = None
        for pkt in pkts:
            if pkt.kind == VIDEO and pkt.sequence_header and video is None:
                video = track_from_sequence_header(pkt, 1)
            elif pkt.kind == AUDIO and audio is None:
                if pkt.codec == "mp3":
                    audio = track_for_mp3(pkt, 2)
                elif pkt.sequence_header:
                    audio = track_from_sequence_header(pkt, 2)
        return [video, audio]

    @staticmethod
    def source(pkts):
        """Frame counts and the end time (s) of the source, read from the FLV tags alone."""
        counts = {}
        ends = []
        for kind, parse in ((VIDEO, flv.parse_video), (AUDIO, flv.parse_audio)):
            stamps = []
            for pkt in pkts:
                if pkt.kind != kind:
                    continue
                tag = parse(pkt.payload)
                if tag.sequence_header or getattr(tag, "end_of_sequence", False):
                    continue
                if kind == VIDEO and tag.frame_type == flv.FRAME_COMMAND:
                    continue  # E-RTMP metadata (colour info)
                if tag.enhanced and pkt.payload[0] & 0x0F not in (1, 3):
                    continue  # E-RTMP audio multichannel config and the like
                stamps.append(pkt.dts)
            counts[kind] = len(stamps)
            ends.append((2 * stamps[-1] - stamps[-2]) / 1000)
        return counts, max(ends)

    def fragment(self, pkts, styp=False, part_ms=None):
        """Init segment and media segments: one per GOP, or LL-HLS-like parts of part_ms."""
        tracks = self.tracks(pkts)
        f = Fragmenter(tracks)
        segments = []
        infos = []
        for pkt in pkts:
            f.add(pkt)
            if part_ms is not None:
                ready = f.pending_duration_ms() >= part_ms
            else:
                ready = (pkt.kind == VIDEO and pkt.keyframe and not pkt.sequence_header
                         and not flv.parse_video(pkt.payload).end_of_sequence)
            if ready:
                data = f.cut(len(segments) + 1, styp)
                if data:
                    segments.append(data)
                    infos.append(f.last_cut)
        data = f.flush(len(segments) + 1, styp)
        if data:
            segments.append(data)
            infos.append(f.last_cut)
        return tracks, init_segment(tracks), segments, infos

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def probe(self, path):
        _, ffprobe = _tools()
        result = self.run_tool([ffprobe, "-v", "error", "-count_frames", "-show_streams",
                                "-show_format", "-of", "json", path])
        info = json.loads(result.stdout)
        from tests.integration import harness

        return info, harness.streams_by_type(info)  # one stream per type, or an AssertionError

    def decode_silently(self, path):
        ffmpeg, _ = _tools()
        result = self.run_tool([ffmpeg, "-hide_banner", "-v", "error", "-i", path,
                                "-f", "null", "-"])
        self.assertEqual(result.stderr.decode(errors="replace").strip(), "")

    @staticmethod
    def expected(segments, tracks):
        """Sample counts and the end time (s) of the given media segments, from their boxes."""
        counts = {t.track_id: 0 for t in tracks}
        ends = {t.track_id: 0 for t in tracks}
        for segment in segments:
            for _, trafs in fragments_of(segment):
                for track_id, (tfdt, rows) in trafs.items():
                    counts[track_id] += len(rows)
                    ends[track_id] = tfdt + sum(r["duration"] for r in rows)
        end = max(ends[t.track_id] / t.timescale for t in tracks)
        return counts, end

    def check_whole(self, name):
        pkts = self.clip(name)
        vcodec, acodec, rate = self.EXPECT[name]
        tracks, init, segments, infos = self.fragment(pkts)
        path = self.write(name + ".mp4", init + b"".join(segments))
        info, streams = self.probe(path)
        v, a = streams["video"], streams["audio"]
        self.assertEqual((v["codec_name"], v["width"], v["height"]), (vcodec, 320, 240))
        self.assertEqual((a["codec_name"], int(a["sample_rate"]), a["channels"]),
                         (acodec, rate, 2))
        counts, end = self.source(pkts)
        self.assertEqual(counts[VIDEO], 100)
        self.assertEqual(int(v["nb_read_frames"]), counts[VIDEO])
        self.assertEqual(int(a["nb_read_frames"]), counts[AUDIO])
        self.assertLessEqual(abs(float(info["format"]["duration"]) - end), 0.1,
                             (info["format"]["duration"], end))
        self.decode_silently(path)
        self.assertEqual([i.sequence_number for i in infos], list(range(1, len(segments) + 1)))
        self.assertEqual(len(segments), 4)  # one per GOP
        self.assertTrue(all(i.independent for i in infos))
        return tracks, init, segments, streams

    def check_truncated(self, name):
        """Cut the file after each fragment: what is there still probes, with its duration."""
        tracks, init, segments, _ = self.check_whole(name)
        for k in range(1, len(segments)):
            path = self.write("%s-%d.mp4" % (name, k), init + b"".join(segments[:k]))
            info, streams = self.probe(path)
            counts, end = self.expected(segments[:k], tracks)
            self.assertEqual(int(streams["video"]["nb_read_frames"]), counts[1], k)
            self.assertEqual(int(streams["audio"]["nb_read_frames"]), counts[2], k)
            self.assertLessEqual(abs(float(info["format"]["duration"]) - end), 0.05, (k, end))
            self.decode_silently(path)

    def test_h264_aac(self):
        self.check_truncated("h264-aac")

    def test_h265_aac(self):
        self.check_truncated("h265-aac")

    def test_h264_mp3(self):
        self.check_truncated("h264-mp3")

    def test_h264_opus(self):
        self.check_truncated("h264-opus")

    def test_codec_strings_of_real_clips(self):
        self.assertEqual(self.tracks(self.clip("h264-aac"))[0].codec_string[:7], "avc1.64")
        hevc = self.tracks(self.clip("h265-aac"))[0].codec_string
        self.assertRegex(hevc, r"^hvc1\.1\.6\.L\d+\.[0-9A-F]+")
        self.assertEqual(self.tracks(self.clip("h264-mp3"))[1].codec_string, "mp4a.6b")

    def test_dash_split(self):
        """init.mp4 + seg-N.m4s files: concatenated, and each segment alone after the init."""
        _, ffprobe = _tools()
        pkts = self.clip("h264-aac")
        tracks, init, segments, _ = self.fragment(pkts, styp=True)
        names = [self.write("dash-init.mp4", init)]
        for n, segment in enumerate(segments, 1):
            self.assertEqual(segment[4:8], b"styp")
            names.append(self.write("dash-seg-%d.m4s" % n, segment))
        info, streams = self.probe("concat:" + "|".join(names))
        counts, _ = self.source(pkts)
        self.assertEqual(int(streams["video"]["nb_read_frames"]), counts[VIDEO])
        self.assertEqual(int(streams["audio"]["nb_read_frames"]), counts[AUDIO])
        for n, segment in enumerate(segments[:-1], 1):
            path = self.write("dash-alone-%d.mp4" % n, init + segment)
            _, streams = self.probe(path)
            expected, _ = self.expected([segment], tracks)
            self.assertEqual(int(streams["video"]["nb_read_frames"]), expected[1])
            self.assertEqual(int(streams["audio"]["nb_read_frames"]), expected[2])
            self.decode_silently(path)  # every segment starts with a keyframe

    def test_low_latency_parts(self):
        """200 ms parts (not on keyframes) still make one clean stream."""
        pkts = self.clip("h264-aac")
        tracks, init, segments, infos = self.fragment(pkts, styp=True, part_ms=200)
        self.assertGreaterEqual(len(segments), 19)
        for segment, part in zip(segments, infos):
            [(_, trafs)] = fragments_of(segment)
            first_flags = trafs[1][1][0]["flags"] if 1 in trafs else None
            self.assertEqual(part.independent, first_flags == 0x02000000)
        self.assertEqual(sum(i.independent for i in infos), 4)  # one part per GOP starts with one
        path = self.write("parts.mp4", init + b"".join(segments))
        info, streams = self.probe(path)
        counts, end = self.source(pkts)
        self.assertEqual(int(streams["video"]["nb_read_frames"]), counts[VIDEO])
        self.assertEqual(int(streams["audio"]["nb_read_frames"]), counts[AUDIO])
        self.assertLessEqual(abs(float(info["format"]["duration"]) - end), 0.1)
        self.decode_silently(path)
