"""Tests for srs_twisted.codec.mpegts (TsMuxer) and mpegts_demux (TsDemuxer).

Unit tests check exact bytes; round trips check that mux -> demux gives the
FLV frames back; the FFmpeg tests mux real FLV clips (H.264, H.265, MP3) and
let ffprobe/ffmpeg judge the result, then demux FFmpeg's own TS output.
"""

import atexit
import json
import os
import random
import shutil
import subprocess
import tempfile

from twisted.trial import unittest

from srs_twisted.codec import avc, flv, hevc
from srs_twisted.codec.errors import CodecError
from srs_twisted.codec.mpegts import (
    AUDIO_PID, MP3_PID, PMT_PID, VIDEO_PID, TsError, TsMuxer, crc32_mpeg2, decode_timestamp,
    encode_pcr, encode_timestamp,
)
from srs_twisted.codec.mpegts_demux import TsDemuxer, make_hevc_decoder_config
from srs_twisted.live.packet import AUDIO, DATA, VIDEO, MediaPacket

from .test_avc import AVCC_320x240
from .test_hevc import HVCC_1280x720, HVCC_1280x720_MAIN10

ASC_44100_STEREO = bytes.fromhex("1210")
MP3_FRAME_HEADER = bytes.fromhex("fffb9064")  # MPEG-1 layer III 128 kbps 44.1 kHz stereo: 417 B


# ---------------------------------------------------------------------------
# helpers


def parse_ts(data):
    """Split TS bytes into dicts of header fields, adaptation field and payload."""
    assert len(data) % 188 == 0, len(data)
    packets = []
    for pos in range(0, len(data), 188):
        p = data[pos:pos + 188]
        assert p[0] == 0x47
        control = (p[3] >> 4) & 3
        af = b""
        start = 4
        if control & 2:
            af = p[5:5 + p[4]]
            start = 5 + p[4]
        packets.append({
            "pid": ((p[1] & 0x1F) << 8) | p[2], "pusi": bool(p[1] & 0x40), "control": control,
            "cc": p[3] & 0x0F, "af": af, "payload": p[start:] if control & 1 else b"",
        })
    return packets


def random_nal(rng, first, size):
    """A NAL unit that survives Annex B framing (no zero bytes at all)."""
    return bytes((first,)) + bytes(rng.randrange(1, 256) for _ in range(size - 1))


def avc_frame(nals, keyframe, cts=0, nal_length_size=4):
    body = bytes(((0x17 if keyframe else 0x27), 1)) + (cts & 0xFFFFFF).to_bytes(3, "big")
    return body + b"".join(len(n).to_bytes(nal_length_size, "big") + n for n in nals)


def video(dts, body, cts=0, keyframe=False, sequence_header=False, codec="h264"):
    return MediaPacket(VIDEO, dts, body, codec=codec, pts=dts + cts, keyframe=keyframe,
                       sequence_header=sequence_header)


def h264_seq(dts=0, record=AVCC_320x240):
    return video(dts, b"\x17\x00\x00\x00\x00" + record, keyframe=True, sequence_header=True)


def aac_seq(dts=0):
    return MediaPacket(AUDIO, dts, b"\xaf\x00" + ASC_44100_STEREO, codec="aac",
                       sequence_header=True)


def aac_frame(dts, raw):
    return MediaPacket(AUDIO, dts, b"\xaf\x01" + raw, codec="aac")


def synthetic_stream(rng, frames=30, gop=10, sizes=(50, 3000), audio=True):
    """An H.264 + AAC packet list like an RTMP publisher's, with B-frame offsets."""
    pkts = [h264_seq(), aac_seq()] if audio else [h264_seq()]
    for i in range(frames):
        key = i % gop == 0
        nal = random_nal(rng, 0x65 if key else 0x41, rng.randint(*sizes))
        nals = [random_nal(rng, 0x06, 20), nal] if key else [nal]
        cts = 80 if i % 3 == 0 else (0 if i % 3 == 1 else 40)
        pkts.append(video(i * 40, avc_frame(nals, key, cts), cts, key))
        if audio:
            pkts.append(aac_frame(i * 40 + 3, random_nal(rng, 0x21, rng.randint(5, 600))))
    return pkts


def mux_all(muxer, pkts):
    return b"".join(muxer.mux(p) for p in pkts)


def demux_all(data, chunks=None, **kw):
    d = TsDemuxer(**kw)
    out = []
    if chunks is None:
        out += d.feed(data)
    else:
        pos = 0
        for size in chunks:
            out += d.feed(data[pos:pos + size])
            pos += size
        out += d.feed(data[pos:])
    out += d.flush()
    return d, out


def frames(pkts, kind):
    return [p for p in pkts if p.kind == kind and not p.sequence_header]


def nal_list(payload, skip=()):
    tag = flv.parse_video(payload)
    h264 = tag.codec == "h264"
    result = []
    for nal in avc.split_nalus(memoryview(payload)[tag.data_offset:]):
        nal_type = nal[0] & 0x1F if h264 else (nal[0] >> 1) & 0x3F
        if nal_type not in skip:
            result.append(bytes(nal))
    return result


# ---------------------------------------------------------------------------
# shared encodings


class EncodingTests(unittest.TestCase):
    def test_crc32_mpeg2(self):
        self.assertEqual(crc32_mpeg2(b"123456789"), 0x0376E6E7)  # the catalogued check value
        self.assertEqual(crc32_mpeg2(b""), 0xFFFFFFFF)
        section = b"\x00\xb0\x0d\x00\x01\xc1\x00\x00\x00\x01\xf0\x00"
        full = section + crc32_mpeg2(section).to_bytes(4, "big")
        self.assertEqual(crc32_mpeg2(full), 0)

    def test_timestamps(self):
        self.assertEqual(encode_timestamp(0x2, 0), bytes.fromhex("2100010001"))
        self.assertEqual(encode_timestamp(0x3, 126000), bytes.fromhex("310007d861"))
        self.assertEqual(encode_timestamp(0x1, (1 << 33) - 1), bytes.fromhex("1fffffffff"))
        self.assertEqual(encode_timestamp(0x2, 1 << 33), encode_timestamp(0x2, 0))  # 33-bit wrap
        for value in (0, 1, 90, 126000, 0x12345678, (1 << 32) + 5, (1 << 33) - 1):
            self.assertEqual(decode_timestamp(encode_timestamp(0x2, value)), value)
        self.assertRaises(TsError, decode_timestamp, b"\x21\x00\x01\x00")

    def test_pcr(self):
        self.assertEqual(encode_pcr(0), bytes.fromhex("000000007e00"))
        self.assertEqual(encode_pcr(1), bytes.fromhex("00000000fe00"))
        self.assertEqual(encode_pcr((1 << 33) - 1, 0x1FF), bytes.fromhex("ffffffffffff"))
        self.assertEqual(encode_pcr(90000), (90000 << 15 | 0x3F << 9).to_bytes(6, "big"))


# ---------------------------------------------------------------------------
# muxer


class PsiTests(unittest.TestCase):
    def test_pat_bytes(self):
        pat = parse_ts(TsMuxer().pat_pmt())[0]
        self.assertEqual(pat["pid"], 0)
        self.assertTrue(pat["pusi"])
        self.assertEqual(pat["control"], 1)
        section = bytes.fromhex("00b00d0001c100000001f001")
        self.assertEqual(pat["payload"][:17], b"\x00" + section + crc32_mpeg2(section).to_bytes(4, "big"))
        self.assertEqual(pat["payload"][17:], b"\xff" * 167)

    def check_pmt(self, muxer, pcr_pid, streams, version=0):
        pmt = parse_ts(muxer.pat_pmt())[1]
        self.assertEqual(pmt["pid"], PMT_PID)
        payload = pmt["payload"]
        self.assertEqual(payload[0], 0)  # pointer field
        length = ((payload[2] & 0x0F) << 8) | payload[3]
        section = payload[1:4 + length]
        self.assertEqual(crc32_mpeg2(section), 0)
        self.assertEqual(section[0], 0x02)
        self.assertEqual(section[3:5], b"\x00\x01")  # program number
        self.assertEqual((section[5] >> 1) & 0x1F, version)
        self.assertEqual(((section[8] & 0x1F) << 8) | section[9], pcr_pid)
        found = []
        for pos in range(12, len(section) - 4, 5):
            found.append((section[pos], ((section[pos + 1] & 0x1F) << 8) | section[pos + 2]))
        self.assertEqual(found, streams)
        self.assertEqual(payload[4 + length:], b"\xff" * (184 - 4 - length))

    def test_pmt_h264_aac(self):
        self.check_pmt(TsMuxer(), VIDEO_PID, [(0x1B, VIDEO_PID), (0x0F, AUDIO_PID)])
        self.check_pmt(TsMuxer(pcr_on_video=False), AUDIO_PID, [(0x1B, VIDEO_PID), (0x0F, AUDIO_PID)])

    def test_pmt_h265_mp3_and_single_streams(self):
        self.check_pmt(TsMuxer(video_codec="h265", audio_codec="mp3"), VIDEO_PID,
                       [(0x24, VIDEO_PID), (0x03, MP3_PID)])
        self.check_pmt(TsMuxer(has_video=False), AUDIO_PID, [(0x0F, AUDIO_PID)])
        self.check_pmt(TsMuxer(has_video=False, audio_codec="mp3"), MP3_PID, [(0x03, MP3_PID)])
        self.check_pmt(TsMuxer(has_audio=False, pcr_on_video=False), VIDEO_PID, [(0x1B, VIDEO_PID)])

    def test_codec_change_bumps_pmt_version(self):
        m = TsMuxer()
        mux_all(m, [h264_seq()])
        self.check_pmt(m, VIDEO_PID, [(0x1B, VIDEO_PID), (0x0F, AUDIO_PID)])
        m.mux(video(0, b"\x1c\x00\x00\x00\x00" + HVCC_1280x720, keyframe=True,
                    sequence_header=True, codec="h265"))
        self.check_pmt(m, VIDEO_PID, [(0x24, VIDEO_PID), (0x0F, AUDIO_PID)], version=1)
        # the next output starts with the new tables even without a keyframe
        out = m.mux(video(40, b"\x2c\x01\x00\x00\x00\x00\x00\x00\x03\x02\x01\x01", codec="h265"))
        self.assertEqual([p["pid"] for p in parse_ts(out)][:3], [0, PMT_PID, VIDEO_PID])

    def test_lsf_mp3_stream_type(self):
        m = TsMuxer(has_video=False, audio_codec="mp3")
        # MPEG-2 layer III 22.05 kHz
        frame = bytes.fromhex("fff39064") + b"\x01" * 200
        out = m.mux(MediaPacket(AUDIO, 0, b"\x2e" + frame, codec="mp3"))
        self.check_pmt(m, MP3_PID, [(0x04, MP3_PID)], version=1)
        self.assertEqual(parse_ts(out)[1]["payload"][1 + 12], 0x04)

    def test_pat_pmt_for_late_joiners_keeps_counters(self):
        m = TsMuxer()
        first = m.pat_pmt()
        self.assertEqual([p["cc"] for p in parse_ts(first)], [15, 15])
        rng = random.Random(3)
        out = mux_all(m, synthetic_stream(rng, frames=11))  # two keyframes: PSI twice
        psi = [p["cc"] for p in parse_ts(out) if p["pid"] == 0]
        self.assertEqual(psi, [0, 1])
        self.assertEqual([p["cc"] for p in parse_ts(m.pat_pmt())], [1, 1])
        self.assertEqual(m.pat_pmt(), m.pat_pmt())

    def test_constructor_refuses(self):
        self.assertRaises(TsError, TsMuxer, has_video=False, has_audio=False)
        self.assertRaises(TsError, TsMuxer, video_codec="av1")
        self.assertRaises(TsError, TsMuxer, audio_codec="opus")
        self.assertTrue(issubclass(TsError, CodecError))
        TsMuxer(has_video=False, video_codec="av1")  # a disabled track's codec does not matter


class MuxerTests(unittest.TestCase):
    def setUp(self):
        self.rng = random.Random(7)

    def test_headers_and_metadata_produce_nothing(self):
        m = TsMuxer()
        self.assertEqual(m.mux(h264_seq()), b"")
        self.assertEqual(m.mux(aac_seq()), b"")
        self.assertEqual(m.mux(MediaPacket(DATA, 0, b"\x02\x00\x0aonMetaData")), b"")
        self.assertEqual(m.mux(video(0, b"\x17\x02\x00\x00\x00")), b"")  # end of sequence

    def test_frames_before_sequence_header_are_skipped(self):
        m = TsMuxer()
        nal = random_nal(self.rng, 0x65, 100)
        self.assertEqual(m.mux(video(0, avc_frame([nal], True), keyframe=True)), b"")
        self.assertEqual(m.mux(aac_frame(0, b"\x21\x10\x05")), b"")
        m.mux(h264_seq())
        self.assertNotEqual(m.mux(video(40, avc_frame([nal], True), keyframe=True)), b"")

    def test_keyframe_layout(self):
        m = TsMuxer()
        m.mux(h264_seq())
        nal = random_nal(self.rng, 0x65, 1000)
        out = m.mux(video(1000, avc_frame([nal], True, cts=80), 80, keyframe=True))
        packets = parse_ts(out)
        self.assertEqual([p["pid"] for p in packets[:3]], [0, PMT_PID, VIDEO_PID])
        first = packets[2]
        self.assertTrue(first["pusi"])
        self.assertEqual(first["control"], 3)
        # random_access_indicator + PCR flag, PCR base = DTS * 90, extension 0
        self.assertEqual(first["af"], b"\x50" + encode_pcr(90000))
        pes = b"".join(p["payload"] for p in packets[2:])
        self.assertEqual(pes[:4], b"\x00\x00\x01\xe0")
        self.assertEqual(int.from_bytes(pes[4:6], "big"), len(pes) - 6)
        self.assertEqual(pes[6:9], b"\x80\xc0\x0a")
        self.assertEqual(pes[9:14], encode_timestamp(0x3, 1080 * 90))
        self.assertEqual(pes[14:19], encode_timestamp(0x1, 1000 * 90))
        es = pes[19:]
        info = avc.parse_decoder_config(AVCC_320x240)
        expected = (b"\x00\x00\x00\x01\x09\xf0" + b"\x00\x00\x00\x01" + info.sps[0]
                    + b"\x00\x00\x00\x01" + info.pps[0] + b"\x00\x00\x01" + nal)
        self.assertEqual(es, expected)
        # the last packet is stuffed through its adaptation field
        last = packets[-1]
        self.assertEqual(last["control"], 3)
        self.assertEqual(len(last["af"]) + 1 + len(last["payload"]), 184)
        self.assertTrue(set(last["af"][1:]) <= {0xFF})

    def test_inter_frame_has_no_parameter_sets_and_dts_only_when_needed(self):
        m = TsMuxer()
        m.mux(h264_seq())
        nal = random_nal(self.rng, 0x41, 300)
        m.mux(video(0, avc_frame([random_nal(self.rng, 0x65, 10)], True), keyframe=True))
        packets = parse_ts(m.mux(video(40, avc_frame([nal], False), 0)))
        self.assertEqual({p["pid"] for p in packets}, {VIDEO_PID})
        self.assertEqual(packets[0]["af"], b"\x10" + encode_pcr(40 * 90))  # PCR, no RAI
        pes = b"".join(p["payload"] for p in packets)
        self.assertEqual(pes[6:9], b"\x80\x80\x05")
        self.assertEqual(pes[9:14], encode_timestamp(0x2, 3600))
        self.assertEqual(pes[14:], b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01" + nal)

    def test_the_first_output_starts_with_psi(self):
        m = TsMuxer()
        m.mux(aac_seq())
        out = parse_ts(m.mux(aac_frame(0, b"\x21\x10\x05\x00")))
        self.assertEqual([p["pid"] for p in out], [0, PMT_PID, AUDIO_PID])
        self.assertEqual(out[2]["af"][:1], b"\x00")  # stuffing only: the PCR is on video

    def test_existing_aud_and_in_band_parameter_sets_are_kept(self):
        m = TsMuxer()
        m.mux(h264_seq())
        aud = b"\x09\x10"
        sps = avc.parse_decoder_config(AVCC_320x240).sps[0]
        nal = random_nal(self.rng, 0x65, 50)
        out = m.mux(video(0, avc_frame([aud, sps, nal], True), keyframe=True))
        pes = b"".join(p["payload"] for p in parse_ts(out) if p["pid"] == VIDEO_PID)
        self.assertEqual(pes[14:], b"\x00\x00\x00\x01" + aud + b"\x00\x00\x01" + sps
                         + b"\x00\x00\x01" + nal)

    def test_nal_length_size_from_config(self):
        record = bytearray(AVCC_320x240)
        record[4] = 0xFD  # two-byte NAL lengths
        m = TsMuxer()
        m.mux(h264_seq(record=bytes(record)))
        nal = random_nal(self.rng, 0x41, 30)
        m.mux(video(0, avc_frame([random_nal(self.rng, 0x65, 9)], True, nal_length_size=2),
                    keyframe=True))
        out = m.mux(video(40, avc_frame([nal, nal], False, nal_length_size=2)))
        pes = b"".join(p["payload"] for p in parse_ts(out))
        self.assertEqual(pes[14:], b"\x00\x00\x00\x01\x09\xf0" + (b"\x00\x00\x01" + nal) * 2)

    def test_hevc_frame(self):
        m = TsMuxer(video_codec="h265")
        m.mux(video(0, b"\x1c\x00\x00\x00\x00" + HVCC_1280x720, keyframe=True,
                    sequence_header=True, codec="h265"))
        idr = bytes((19 << 1, 1)) + random_nal(self.rng, 0xAF, 40)
        body = b"\x93hvc1" + len(idr).to_bytes(4, "big") + idr  # E-RTMP CodedFramesX, key
        out = m.mux(video(0, body, keyframe=True, codec="h265"))
        pes = b"".join(p["payload"] for p in parse_ts(out) if p["pid"] == VIDEO_PID)
        info = hevc.parse_decoder_config(HVCC_1280x720)
        sets = b"".join(b"\x00\x00\x00\x01" + n for n in info.vps + info.sps + info.pps)
        self.assertEqual(pes[14:], b"\x00\x00\x00\x01\x46\x01\x50" + sets + b"\x00\x00\x01" + idr)
        # an enhanced metadata packet is not a picture
        meta = b"\x84hvc1" + b"\x02\x00\x09colorInfo\x05"
        self.assertEqual(m.mux(video(40, meta, codec="h265")), b"")

    def test_continuity_counters_and_sizes(self):
        m = TsMuxer()
        out = mux_all(m, synthetic_stream(self.rng, frames=40))
        packets = parse_ts(out)
        last = {}
        for p in packets:
            if p["pid"] in last:
                self.assertEqual(p["cc"], (last[p["pid"]] + 1) & 15)
            last[p["pid"]] = p["cc"]
        self.assertEqual(set(last), {0, PMT_PID, VIDEO_PID, AUDIO_PID})

    def test_every_pes_size_around_packet_boundaries(self):
        # PES sizes from tiny to three packets, with and without an adaptation field
        m = TsMuxer(has_video=False)
        m.mux(aac_seq())
        for size in range(1, 560):
            raw = random_nal(self.rng, 0x21, size)
            out = m.mux(aac_frame(size * 23, raw))
            packets = [p for p in parse_ts(out) if p["pid"] == AUDIO_PID]
            for p in packets:
                self.assertEqual(len(p["af"]) + (1 if p["control"] & 2 else 0) + len(p["payload"]),
                                 184)
            pes = b"".join(p["payload"] for p in packets)
            self.assertEqual(pes[14 + 7:], raw)
            self.assertEqual(int.from_bytes(pes[4:6], "big"), len(pes) - 6)
            # the first packet's adaptation field: length, flags and PCR
            self.assertEqual(len(packets), -(-(len(pes) + 8) // 184))

    def test_adts_header(self):
        m = TsMuxer(has_video=False)
        m.mux(aac_seq())
        out = m.mux(aac_frame(0, b"\x21" * 10))
        pes = b"".join(p["payload"] for p in parse_ts(out) if p["pid"] == AUDIO_PID)
        self.assertEqual(pes[3], 0xC0)
        # LC, 44.1 kHz, 2 channels, 17 bytes, VBR fullness
        self.assertEqual(pes[14:21], bytes.fromhex("fff15080023ffc"))

    def test_audio_only_psi_and_pcr(self):
        m = TsMuxer(has_video=False)
        m.mux(aac_seq())
        counts = []
        for i in range(100):
            packets = parse_ts(m.mux(aac_frame(i * 23, b"\x21\x10\x05\x00")))
            counts.append(sum(1 for p in packets if p["pid"] == 0))
            audio = [p for p in packets if p["pid"] == AUDIO_PID][0]
            self.assertEqual(audio["af"][:7], b"\x50" + encode_pcr(i * 23 * 90))
        self.assertEqual([i for i, n in enumerate(counts) if n], [0, 40, 80])

    def test_mp3_frames(self):
        m = TsMuxer(has_video=False, audio_codec="mp3")
        frame = MP3_FRAME_HEADER + b"\x55" * 413
        out = m.mux(MediaPacket(AUDIO, 26, b"\x2f" + frame, codec="mp3"))
        packets = parse_ts(out)
        self.assertEqual({p["pid"] for p in packets}, {0, PMT_PID, MP3_PID})
        pes = b"".join(p["payload"] for p in packets if p["pid"] == MP3_PID)
        self.assertEqual(pes[:4], b"\x00\x00\x01\xc0")
        self.assertEqual(pes[9:14], encode_timestamp(0x2, 26 * 90))
        self.assertEqual(pes[14:], frame)

    def test_disabled_tracks_and_unknown_codecs_are_ignored(self):
        m = TsMuxer(has_audio=False)
        m.mux(aac_seq())
        self.assertEqual(m.mux(aac_frame(0, b"\x21\x10")), b"")
        m = TsMuxer(has_video=False)
        m.mux(h264_seq())
        self.assertEqual(m.mux(video(0, avc_frame([b"\x65\x01"], True), keyframe=True)), b"")
        m = TsMuxer()
        self.assertEqual(m.mux(MediaPacket(AUDIO, 0, b"\x91Opus\x01\x02", codec="opus")), b"")
        self.assertEqual(m.mux(video(0, b"\x12\x00\x00")), b"")  # Sorenson H.263

    def test_hostile_input_raises_only_ts_error(self):
        m = TsMuxer()
        self.assertRaises(TsError, m.mux, video(0, b""))
        self.assertRaises(TsError, m.mux, video(0, b"\x17\x00\x00\x00\x00\x01\x02", sequence_header=True))
        self.assertRaises(TsError, m.mux, MediaPacket(AUDIO, 0, b"\xaf\x00\x00", codec="aac"))
        m.mux(h264_seq())
        self.assertRaises(TsError, m.mux, video(0, b"\x17\x01\x00\x00\x00\x00\x00\x00\x09\x65"))
        rng = random.Random(11)
        seeds = synthetic_stream(rng, frames=6, sizes=(5, 200))
        for _ in range(1500):
            m = TsMuxer()
            for pkt in seeds:
                data = bytearray(pkt.payload)
                if rng.random() < 0.5:
                    for _ in range(rng.randint(1, 4)):
                        data[rng.randrange(len(data))] = rng.randrange(256)
                if rng.random() < 0.2:
                    del data[rng.randrange(len(data) + 1):]
                try:
                    out = m.mux(MediaPacket(pkt.kind, pkt.dts, bytes(data), pts=pkt.pts,
                                            keyframe=pkt.keyframe))
                except TsError:
                    continue
                self.assertEqual(len(out) % 188, 0)


# ---------------------------------------------------------------------------
# demuxer


class RoundTripTests(unittest.TestCase):
    def setUp(self):
        self.rng = random.Random(5)
        self.pkts = synthetic_stream(self.rng, frames=40, gop=10)
        self.ts = mux_all(TsMuxer(), self.pkts)

    def check_same(self, out):
        for kind in (VIDEO, AUDIO):
            src = frames(self.pkts, kind)
            got = frames(out, kind)
            self.assertEqual([(p.dts, p.pts, p.keyframe) for p in got],
                             [(p.dts, p.pts, p.keyframe) for p in src])
            self.assertEqual([p.payload for p in got], [p.payload for p in src])
            self.assertEqual({p.codec for p in got}, {"h264" if kind == VIDEO else "aac"})
        headers = [p for p in out if p.sequence_header]
        self.assertEqual([(p.kind, p.payload) for p in headers],
                         [(VIDEO, self.pkts[0].payload), (AUDIO, self.pkts[1].payload)]
                         if headers[0].kind == VIDEO else
                         [(AUDIO, self.pkts[1].payload), (VIDEO, self.pkts[0].payload)])

    def test_whole(self):
        d, out = demux_all(self.ts)
        self.assertEqual(d.errors, 0, d.last_error)
        self.check_same(out)
        self.assertEqual((d.pmt_pid, d.pcr_pid), (PMT_PID, VIDEO_PID))
        cts = [flv.parse_video(p.payload).cts for p in frames(out, VIDEO)]
        self.assertEqual(cts, [p.pts - p.dts for p in frames(self.pkts, VIDEO)])

    def test_each_packet_separately(self):
        d, out = demux_all(self.ts, chunks=[188] * (len(self.ts) // 188))
        self.assertEqual(d.errors, 0, d.last_error)
        self.check_same(out)

    def test_odd_offsets(self):
        for step in (1, 7, 187, 189, 1000):
            if step == 1:
                data = self.ts[:188 * 100]
                d, out = demux_all(data, chunks=[1] * len(data))
                d2, whole = demux_all(data)
                self.assertEqual(d.errors, d2.errors)  # the PES cut at the end
                self.assertEqual([p.payload for p in out], [p.payload for p in whole])
                self.assertGreater(len(out), 10)
                continue
            d, out = demux_all(self.ts, chunks=[step] * (len(self.ts) // step))
            self.assertEqual(d.errors, 0, d.last_error)
            self.check_same(out)

    def test_video_pes_without_length_ends_at_next_start(self):
        # a frame bigger than 64 KiB gets PES_packet_length 0
        m = TsMuxer(has_audio=False)
        big = random_nal(self.rng, 0x65, 70000)
        big2 = random_nal(self.rng, 0x41, 66000)
        data = mux_all(m, [h264_seq(), video(0, avc_frame([big], True), keyframe=True),
                           video(40, avc_frame([big2], False))])
        pes_start = parse_ts(data)[2]["payload"]
        self.assertEqual(pes_start[4:6], b"\x00\x00")
        d = TsDemuxer()
        out = d.feed(data)
        self.assertEqual([p.sequence_header for p in out], [True, False])  # big2 waits
        self.assertEqual(nal_list(out[1].payload), [big])
        self.assertEqual([nal_list(p.payload) for p in d.flush()], [[big2]])
        # a PES that fits 64 KiB carries its length and comes out at once
        out = d.feed(m.mux(video(80, avc_frame([b"\x41\x01"], False))))
        self.assertEqual([nal_list(p.payload) for p in out], [[b"\x41\x01"]])

    def test_late_join_in_the_middle(self):
        # cut inside a packet a third of the way in: the demuxer finds the sync,
        # waits for PAT/PMT and the next keyframe's parameter sets, and counts
        # nothing as an error (a late joiner sees exactly this)
        packets = len(self.ts) // 188
        d, out = demux_all(self.ts[188 * (packets // 3) + 50:])
        video_frames = frames(out, VIDEO)
        self.assertTrue(video_frames[0].keyframe)
        first = video_frames[0].dts
        self.assertEqual([p.sequence_header for p in out if p.kind == VIDEO][:2], [True, False])
        self.assertEqual(d.errors, 0, d.last_error)
        self.assertEqual(len(video_frames), len([p for p in frames(self.pkts, VIDEO) if p.dts >= first]))

    def test_timestamp_wrap(self):
        wrap_ms = (1 << 33) // 90  # 95443717 ms, about 26.5 hours
        m = TsMuxer(has_audio=False)
        pkts = [h264_seq(wrap_ms - 200)]
        for i in range(10):
            key = i == 0
            nal = random_nal(self.rng, 0x65 if key else 0x41, 100)
            pkts.append(video(wrap_ms - 200 + i * 40, avc_frame([nal], key, 40), 40, key))
        d, out = demux_all(mux_all(m, pkts))
        got = [(p.dts, p.pts) for p in frames(out, VIDEO)]
        self.assertEqual(got, [(p.dts, p.pts) for p in pkts[1:]])

    def test_parameter_set_change_emits_a_new_sequence_header(self):
        m = TsMuxer(has_audio=False)
        nal = random_nal(self.rng, 0x65, 100)
        other = bytearray(AVCC_320x240)
        other[-3] ^= 0x01  # a different PPS byte
        pkts = [h264_seq(), video(0, avc_frame([nal], True), keyframe=True),
                video(40, avc_frame([nal], True), keyframe=True),
                h264_seq(80, bytes(other)), video(80, avc_frame([nal], True), keyframe=True)]
        d, out = demux_all(mux_all(m, pkts))
        self.assertEqual([p.sequence_header for p in out], [True, False, False, True, False])
        self.assertEqual(out[3].payload, b"\x17\x00\x00\x00\x00" + bytes(other))
        self.assertEqual(out[3].dts, 80)

    def test_hevc_round_trip(self):
        m = TsMuxer(video_codec="h265", has_audio=False)
        seq = video(0, b"\x1c\x00\x00\x00\x00" + HVCC_1280x720, keyframe=True,
                    sequence_header=True, codec="h265")
        pkts = [seq]
        for i in range(6):
            t = 19 if i % 3 == 0 else 1
            nal = bytes((t << 1, 1)) + random_nal(self.rng, 0xAF, 50)
            body = (b"\x1c" if t == 19 else b"\x2c") + b"\x01\x00\x00\x28" + len(nal).to_bytes(4, "big") + nal
            pkts.append(video(i * 40, body, 40, t == 19, codec="h265"))
        for enhanced in (True, False):
            d, out = demux_all(mux_all(m, pkts), enhanced_hevc=enhanced)
            self.assertEqual(d.errors, 0, d.last_error)
            self.assertTrue(out[0].sequence_header)
            tag = flv.parse_video(out[0].payload)
            self.assertEqual((tag.codec, tag.enhanced), ("h265", enhanced))
            info = hevc.parse_decoder_config(out[0].payload[tag.data_offset:])
            ref = hevc.parse_decoder_config(HVCC_1280x720)
            self.assertEqual((info.vps, info.sps, info.pps, info.width, info.nal_length_size),
                             (ref.vps, ref.sps, ref.pps, 1280, 4))
            got = frames(out, VIDEO)
            self.assertEqual([(p.dts, p.pts, p.keyframe, p.codec) for p in got],
                             [(p.dts, p.pts, p.keyframe, "h265") for p in pkts[1:]])
            self.assertEqual([nal_list(p.payload) for p in got], [nal_list(p.payload) for p in pkts[1:]])
            self.assertEqual([flv.parse_video(p.payload).cts for p in got], [40] * 6)
            m = TsMuxer(video_codec="h265", has_audio=False)

    def test_mp3_round_trip(self):
        m = TsMuxer(has_video=False, audio_codec="mp3")
        pkts = [MediaPacket(AUDIO, i * 26, b"\x2f" + MP3_FRAME_HEADER + bytes((i + 1,)) * 413,
                            codec="mp3") for i in range(50)]
        d, out = demux_all(mux_all(m, pkts))
        self.assertEqual(d.errors, 0)
        self.assertEqual([(p.dts, p.payload, p.codec) for p in out],
                         [(p.dts, p.payload, "mp3") for p in pkts])


class DemuxerRobustnessTests(unittest.TestCase):
    def setUp(self):
        self.rng = random.Random(9)
        self.pkts = synthetic_stream(self.rng, frames=20, gop=10, sizes=(50, 1500))
        self.ts = mux_all(TsMuxer(), self.pkts)

    def test_garbage_before_and_between(self):
        packets = [self.ts[i:i + 188] for i in range(0, len(self.ts), 188)]
        noisy = b"\x47garbage\x47\x00" * 30 + b"".join(packets[:40]) + b"\x47" * 3 + b"".join(packets[40:])
        d, out = demux_all(noisy)
        _, clean = demux_all(self.ts)
        self.assertEqual(d.errors, 1)  # one lost sync, nothing else
        self.assertEqual([p.payload for p in out], [p.payload for p in clean])

    def test_dropped_packet_drops_only_its_pes(self):
        packets = [self.ts[i:i + 188] for i in range(0, len(self.ts), 188)]
        video_cont = [i for i, p in enumerate(parse_ts(self.ts))
                      if p["pid"] == VIDEO_PID and not p["pusi"]]
        victim = video_cont[len(video_cont) // 2]
        d, out = demux_all(b"".join(packets[:victim] + packets[victim + 1:]))
        self.assertEqual(d.errors, 1)
        self.assertIn("continuity", d.last_error)
        self.assertEqual(len(frames(out, VIDEO)), len(frames(self.pkts, VIDEO)) - 1)
        self.assertEqual(len(frames(out, AUDIO)), len(frames(self.pkts, AUDIO)))

    def test_duplicate_packets_are_ignored(self):
        packets = [self.ts[i:i + 188] for i in range(0, len(self.ts), 188)]
        doubled = b"".join(p + p for p in packets)
        d, out = demux_all(doubled)
        self.assertEqual(d.errors, 0)
        self.assertEqual(len(frames(out, VIDEO)), len(frames(self.pkts, VIDEO)))

    def test_transport_error_and_bad_crc(self):
        packets = [bytearray(self.ts[i:i + 188]) for i in range(0, len(self.ts), 188)]
        packets[1][20] ^= 0xFF  # PMT byte: CRC mismatch; the next PMT repairs it
        video_first = [i for i, p in enumerate(parse_ts(self.ts)) if p["pid"] == VIDEO_PID][0]
        packets[video_first + 1][1] |= 0x80  # transport_error_indicator
        d, out = demux_all(b"".join(packets))
        self.assertGreaterEqual(d.errors, 2)
        self.assertGreater(len(frames(out, VIDEO)), 0)

    def test_pes_size_limit(self):
        m = TsMuxer(has_audio=False)
        big = random_nal(self.rng, 0x65, 70000)
        data = mux_all(m, [h264_seq(), video(0, avc_frame([b"\x65\x01"], True), keyframe=True),
                           video(40, avc_frame([big], True), keyframe=True),
                           video(80, avc_frame([b"\x41\x01"], False))])
        d, out = demux_all(data, max_pes_size=20000)
        self.assertEqual(d.errors, 1)
        self.assertIn("exceeds", d.last_error)
        # the oversized keyframe is gone; the frames around it come out
        self.assertEqual([nal_list(p.payload) for p in frames(out, VIDEO)],
                         [[b"\x65\x01"], [b"\x41\x01"]])

    def test_memory_stays_bounded_on_garbage(self):
        d = TsDemuxer()
        rng = random.Random(1)
        for _ in range(200):
            d.feed(bytes(rng.randrange(256) for _ in range(1000)).replace(b"\x47", b"\x48"))
            self.assertLess(len(d._buf), 188 * 3)
        self.assertEqual(d.flush(), [])

    def test_random_bytes_and_mutations_never_raise(self):
        rng = random.Random(4)
        for _ in range(150):
            data = bytearray(self.ts[:rng.randint(0, len(self.ts))])
            for _ in range(rng.randint(1, 40)):
                if not data:
                    break
                k = rng.randrange(len(data))
                op = rng.randrange(4)
                if op == 0:
                    data[k] = rng.randrange(256)
                elif op == 1:
                    del data[k:k + rng.randint(1, 300)]
                elif op == 2:
                    data[k:k] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
                else:
                    data[k] ^= 1 << rng.randrange(8)
            d = TsDemuxer()
            pos = 0
            while pos < len(data):
                n = rng.randint(1, 2000)
                for pkt in d.feed(bytes(data[pos:pos + n])):
                    self.assertIn(pkt.kind, (AUDIO, VIDEO))
                pos += n
            d.flush()
        for _ in range(50):
            d = TsDemuxer()
            d.feed(bytes(rng.randrange(256) for _ in range(5000)))
            d.flush()

    def test_hand_made_pes_edge_cases(self):
        m = TsMuxer()

        def es_packets(pes):
            m._cc[AUDIO_PID] = 0
            return m.pat_pmt() + m._packetize(AUDIO_PID, pes, b"")

        cases = [
            b"\x00\x00\x01\xc0\x00\x00\x80\x00\x00",  # no PTS
            b"\x00\x00\x02\xc0\x00\x00\x80\x80\x05" + encode_timestamp(2, 0),  # bad prefix
            b"\x00\x00\x01\xc0\x00\x02\x80\x80",  # length leaves no header
            b"\x00\x00\x01\xc0\x00\x00\x80\x80\x02\x21\x00",  # header too short for a PTS
            b"\x00\x00\x01\xc0\x00\x00\x80\x80\x05" + encode_timestamp(2, 0) + b"\xff\xf1\x50",
        ]
        for pes in cases:
            d, out = demux_all(es_packets(pes))
            self.assertEqual(out, [])
            self.assertEqual(d.errors, 1, pes.hex())

    def test_several_adts_frames_in_one_pes(self):
        m = TsMuxer(has_video=False)
        raws = [bytes((0x21, i + 1)) * 50 for i in range(3)]
        adts = b"".join(bytes.fromhex("fff15080") + ((len(r) + 7) << 5 | 0x1F).to_bytes(2, "big")
                        + b"\xfc" + r for r in raws)
        pes = b"".join(m._pes(0xC0, 900, 900, [adts], len(adts), False))
        d, out = demux_all(m.pat_pmt() + m._packetize(AUDIO_PID, pes, b""))
        self.assertEqual(d.errors, 0, d.last_error)
        self.assertEqual(out[0].payload, b"\xaf\x00\x12\x10")
        self.assertEqual([(p.dts, p.payload) for p in out[1:]],
                         [(10, b"\xaf\x01" + raws[0]), (33, b"\xaf\x01" + raws[1]),
                          (56, b"\xaf\x01" + raws[2])])


class HevcConfigTests(unittest.TestCase):
    def test_matches_ffmpeg_records(self):
        for record in (HVCC_1280x720, HVCC_1280x720_MAIN10):
            info = hevc.parse_decoder_config(record)
            ours = make_hevc_decoder_config(info.vps, info.sps, info.pps)
            # profile/tier/level/constraints, chroma format and bit depths as FFmpeg wrote them
            self.assertEqual(ours[1:13], record[1:13])
            self.assertEqual(ours[16:19], record[16:19])
            back = hevc.parse_decoder_config(ours)
            self.assertEqual((back.vps, back.sps, back.pps, back.width, back.height, back.profile),
                             (info.vps, info.sps, info.pps, info.width, info.height, info.profile))

    def test_refuses(self):
        self.assertRaises(TsError, make_hevc_decoder_config, [], [], [])
        self.assertRaises(CodecError, make_hevc_decoder_config, [], [b"\x42\x01\x01"], [])


# ---------------------------------------------------------------------------
# real tools


def _tools():
    from tests.integration import harness

    return harness.ffmpeg(), harness.ffprobe()


_TMP = None


class FFmpegTests(unittest.TestCase):
    """Mux FFmpeg-made FLV clips and let ffprobe and ffmpeg judge the TS."""

    CLIPS = {
        "h264": ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i",
                 "sine=frequency=440:sample_rate=44100", "-t", "2", "-pix_fmt", "yuv420p",
                 "-c:v", "libx264", "-g", "25", "-bf", "2", "-c:a", "aac"],
        "h265": ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i",
                 "sine=frequency=440:sample_rate=44100", "-t", "2", "-pix_fmt", "yuv420p",
                 "-c:v", "libx265", "-x265-params", "keyint=25:bframes=2:log-level=error",
                 "-c:a", "aac"],
        "mp3": ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "2",
                "-c:a", "libmp3lame"],
    }

    @property
    def tmp(self):
        # one directory per run: the clips are made once and shared by the tests
        global _TMP
        if _TMP is None:
            _TMP = tempfile.mkdtemp(prefix="mpegts-test-")
            atexit.register(shutil.rmtree, _TMP, True)
        return _TMP

    def run_tool(self, cmd):
        result = subprocess.run(cmd, capture_output=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace")[-800:])
        return result

    def clip(self, name):
        ffmpeg, _ = _tools()
        path = os.path.join(self.tmp, name + ".flv")
        if not os.path.exists(path):
            self.run_tool([ffmpeg, "-hide_banner", "-v", "error", "-y", *self.CLIPS[name],
                           "-f", "flv", path])
        with open(path, "rb") as f:
            tags = flv.FlvReader().feed(f.read())
        from srs_twisted.rtmp.session import media_packet

        return path, [media_packet(t.tag_type, t.timestamp, t.payload) for t in tags]

    @staticmethod
    def coded(pkts, kind):
        out = []
        for p in frames(pkts, kind):
            if kind == VIDEO:
                tag = flv.parse_video(p.payload)
                if tag.end_of_sequence or (tag.enhanced and not is_coded_frames(p.payload)):
                    continue
            out.append(p)
        return out

    def mux_clip(self, name):
        path, pkts = self.clip(name)
        vcodec = next((p.codec for p in pkts if p.kind == VIDEO), None)
        acodec = next((p.codec for p in pkts if p.kind == AUDIO), None)
        muxer = TsMuxer(has_video=vcodec is not None, has_audio=acodec is not None,
                        video_codec=vcodec or "h264", audio_codec=acodec or "aac")
        ts_path = os.path.join(self.tmp, name + ".ts")
        with open(ts_path, "wb") as f:
            f.write(mux_all(muxer, pkts))
        return path, pkts, ts_path

    def probe(self, path):
        _, ffprobe = _tools()
        result = self.run_tool([ffprobe, "-v", "error", "-count_frames", "-show_streams",
                                "-show_format", "-of", "json", path])
        return json.loads(result.stdout)

    def check_clip(self, name, vcodec, acodec, audio_pid):
        ffmpeg, _ = _tools()
        flv_path, pkts, ts_path = self.mux_clip(name)
        info = self.probe(ts_path)
        streams = {s["codec_type"]: s for s in info["streams"]}
        self.assertEqual(info["format"]["format_name"], "mpegts")
        if vcodec:
            v = streams["video"]
            self.assertEqual((v["codec_name"], v["width"], v["height"], v["id"]),
                             (vcodec, 320, 240, "0x100"))
            self.assertEqual(int(v["nb_read_frames"]), len(self.coded(pkts, VIDEO)))
        else:
            self.assertNotIn("video", streams)
        a = streams["audio"]
        self.assertEqual((a["codec_name"], a["sample_rate"], a["channels"], a["id"]),
                         (acodec, "44100", 1, audio_pid))
        self.assertEqual(int(a["nb_read_frames"]), len(frames(pkts, AUDIO)))
        self.assertLessEqual(abs(float(info["format"]["duration"]) - 2.0), 0.2)
        result = self.run_tool([ffmpeg, "-hide_banner", "-v", "error", "-i", ts_path,
                                "-f", "null", "-"])
        self.assertEqual(result.stderr.decode(errors="replace").strip(), "")
        return info

    def test_h264_aac(self):
        self.check_clip("h264", "h264", "aac", "0x101")

    def test_h265_aac(self):
        self.check_clip("h265", "hevc", "aac", "0x101")

    def test_mp3_audio_only(self):
        self.check_clip("mp3", None, "mp3", "0x102")

    def check_ffmpeg_ts(self, name, skip=()):
        """Demux FFmpeg's own -f mpegts output of a clip; compare with the FLV."""
        ffmpeg, _ = _tools()
        flv_path, pkts = self.clip(name)
        ts_path = os.path.join(self.tmp, name + "-ffmpeg.ts")
        self.run_tool([ffmpeg, "-hide_banner", "-v", "error", "-y", "-i", flv_path, "-c", "copy",
                       "-f", "mpegts", ts_path])
        with open(ts_path, "rb") as f:
            data = f.read()
        d, out = demux_all(data, chunks=[1316] * (len(data) // 1316))  # SRT/UDP-sized reads
        self.assertEqual(d.errors, 0, d.last_error)
        for kind in (VIDEO, AUDIO):
            src = self.coded(pkts, kind)
            got = frames(out, kind)
            self.assertEqual(len(got), len(src))
            if not src:
                continue
            offset = got[0].dts - src[0].dts  # FFmpeg starts its clock at 1.4 s
            self.assertIn(offset, (1399, 1400))
            tolerance = 0 if kind == VIDEO else 1  # several AAC/MP3 frames share one PES
            for s, g in zip(src, got):
                self.assertLessEqual(abs(g.dts - offset - s.dts), tolerance, (s, g))
                self.assertLessEqual(abs(g.pts - offset - s.pts), tolerance, (s, g))
                if kind == VIDEO:
                    self.assertEqual(g.keyframe, s.keyframe)
                    self.assertEqual(nal_list(g.payload, skip), nal_list(s.payload, skip))
                else:
                    self.assertEqual(g.payload, s.payload)
        headers = [p for p in out if p.sequence_header]
        self.assertEqual(len(headers), 2 if name != "mp3" else 0)

    def test_demux_ffmpeg_h264(self):
        self.check_ffmpeg_ts("h264")

    def test_demux_ffmpeg_h265(self):
        self.check_ffmpeg_ts("h265", skip=(39,))  # FFmpeg repeats the hvcC SEI on keyframes

    def test_demux_ffmpeg_mp3(self):
        self.check_ffmpeg_ts("mp3")

    def test_demuxed_stream_muxes_again(self):
        """SRT-style ingest: FFmpeg TS -> demux -> mux again -> ffprobe still agrees."""
        ffmpeg, _ = _tools()
        flv_path, pkts = self.clip("h264")
        ts_path = os.path.join(self.tmp, "again-ffmpeg.ts")
        self.run_tool([ffmpeg, "-hide_banner", "-v", "error", "-y", "-i", flv_path, "-c", "copy",
                       "-f", "mpegts", ts_path])
        with open(ts_path, "rb") as f:
            d, out = demux_all(f.read())
        out.sort(key=lambda p: (p.dts, not p.sequence_header))
        again = os.path.join(self.tmp, "again.ts")
        with open(again, "wb") as f:
            f.write(mux_all(TsMuxer(), out))
        info = self.probe(again)
        counts = {s["codec_type"]: int(s["nb_read_frames"]) for s in info["streams"]}
        self.assertEqual(counts, {"video": 50, "audio": len(frames(pkts, AUDIO))})


def is_coded_frames(payload):
    """Whether an enhanced video body carries coded frames (not metadata)."""
    kind = payload[0] & 0x0F
    return kind in (1, 3)
