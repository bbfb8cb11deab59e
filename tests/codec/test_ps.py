"""Tests for srs_twisted.codec.ps: the MPEG-PS demuxer (and the small muxer the tests' camera uses).

Round trips mux frames with :class:`PsMuxer` and check the demuxer gives the
same bytes and times back, fed whole, a byte at a time and split at every
boundary; hostile input (garbage, bad start codes, bad lengths, lost bytes)
is counted and skipped.
"""

import random

from twisted.trial import unittest

from srs_twisted.codec import avc
from srs_twisted.codec.mpegts_demux import TsDemuxer
from srs_twisted.codec.ps import PsDemuxer, PsFrame, PsMuxer

from .test_avc import AVCC_320x240

_INFO = avc.parse_decoder_config(AVCC_320x240)
SPS, PPS = bytes(_INFO.sps[0]), bytes(_INFO.pps[0])
ADTS = bytes.fromhex("fff15080015ffc") + b"\x21\x10\x05"  # AAC-LC 44.1 kHz stereo, 10 bytes


def annexb(*nals):
    return b"".join(b"\x00\x00\x00\x01" + n for n in nals)


def idr(size=300, seed=1):
    rng = random.Random(seed)
    return b"\x65" + bytes(rng.randrange(1, 256) for _ in range(size))


def stream(frames=5, big=False):
    """PS bytes of ``frames`` video frames (a keyframe first) each followed by an AAC frame, and the expected frames."""
    mux = PsMuxer("h264", "aac", pes_size=1000 if big else 65000)
    parts, expected = [], []
    for i in range(frames):
        pts = 90000 + i * 3600
        es = annexb(SPS, PPS, idr(3000 if big else 300, i)) if i == 0 else annexb(b"\x41" + bytes([i + 1]) * 200)
        parts.append(mux.video(es, pts + 3600, pts, keyframe=i == 0))
        expected.append(PsFrame("h264", pts + 3600, pts, es))
        parts.append(mux.audio(ADTS, pts))
        expected.append(PsFrame("aac", pts, pts, ADTS))
    return b"".join(parts), expected


def ordered(frames):
    """Video comes out one frame late (its end is the next PTS): compare per kind."""
    return [f for f in frames if f.is_video], [f for f in frames if not f.is_video]


class DemuxTests(unittest.TestCase):
    def demux(self, data, chunk=None):
        d = PsDemuxer()
        out = []
        if chunk is None:
            out += d.feed(data)
        else:
            for i in range(0, len(data), chunk):
                out += d.feed(data[i:i + chunk])
        out += d.flush()
        return d, out

    def test_round_trip_whole(self):
        data, expected = stream()
        d, out = self.demux(data)
        self.assertEqual(ordered(out), ordered(expected))
        self.assertEqual((d.errors, d.packs), (0, 10))
        self.assertEqual(d.types, {0xE0: 0x1B, 0xC0: 0x0F})

    def test_round_trip_split_everywhere(self):
        data, expected = stream(3)
        for chunk in (1, 2, 3, 7, 188, 1400):
            d, out = self.demux(data, chunk)
            self.assertEqual(ordered(out), ordered(expected), chunk)
            self.assertEqual(d.errors, 0)

    def test_frame_over_several_pes(self):
        data, expected = stream(2, big=True)
        self.assertGreater(data.count(b"\x00\x00\x01\xe0"), 3)
        d, out = self.demux(data)
        self.assertEqual(ordered(out), ordered(expected))
        self.assertEqual((d.errors, len(ordered(out)[0][0].data)), (0, len(expected[0].data)))

    def test_video_ends_at_the_next_pts(self):
        data, expected = stream(2)
        d = PsDemuxer()
        first = data[:data.index(b"\x00\x00\x01\xba", 10)]  # the keyframe's pack only
        self.assertEqual(d.feed(first), [])  # its end is not known yet
        self.assertEqual(d.flush(), [expected[0]])  # an RTP marker says so

    def test_g711_types(self):
        mux = PsMuxer(None, "pcma")
        data = mux.pack_header(0) + mux.psm() + mux.pes(0xC0, b"\xd5" * 160, 900)
        d, out = self.demux(data)
        self.assertEqual(out, [PsFrame("pcma", 900, 900, b"\xd5" * 160)])
        mux = PsMuxer(None, "pcmu")
        d, out = self.demux(mux.psm() + mux.pes(0xC0, b"\xff" * 160, 900))
        self.assertEqual(out[0].codec, "pcmu")

    def test_without_psm(self):
        mux = PsMuxer("h264", "aac")
        es = annexb(SPS, PPS, idr())
        d, out = self.demux(mux.pack_header(0) + mux.pes(0xE0, es, 3600) + mux.pes(0xC0, ADTS, 3600))
        self.assertEqual([f.codec for f in out], ["aac", "h264"])

    def test_unknown_stream_type_is_ignored(self):
        mux = PsMuxer("h264", "aac")
        mux.audio_type = 0x92  # G.722.1
        d, out = self.demux(mux.psm() + mux.pes(0xC0, b"\x01" * 50, 0))
        self.assertEqual((out, d.errors), ([], 0))

    def test_garbage_and_bad_start_codes_resync(self):
        data, expected = stream(3)
        rng = random.Random(5)
        junk = bytes(rng.randrange(1, 256) for _ in range(500))
        bad = b"\x00\x00\x01\x42\x00\x00\x01\xba\x00" + b"\x00\x00\x01\xe0\x00\x05\x00\x00\x00\x00\x00"
        d, out = self.demux(junk + bad + data)
        self.assertEqual(ordered(out), ordered(expected))
        self.assertGreaterEqual(d.errors, 3)
        self.assertTrue(d.last_error)

    def test_lost_bytes_lose_frames_not_the_stream(self):
        data, expected = stream(6)
        cut = data.index(b"\x00\x00\x01\xba", len(data) // 3)
        d = PsDemuxer()
        out = d.feed(data[:cut - 50])
        d.discontinuity()
        out += d.feed(data[cut:]) + d.flush()
        self.assertTrue(set(f.pts for f in expected[-4:]) <= set(f.pts for f in out))

    def test_frame_limit(self):
        data, _ = stream(2, big=True)
        d = PsDemuxer(max_frame=2000)
        out = d.feed(data) + d.flush()
        self.assertEqual((d.errors, d.last_error), (1, "video frame exceeds 2000 bytes; dropped"))
        self.assertEqual([f.dts for f in out if f.is_video], [93600])
        self.assertLessEqual(max(len(f.data) for f in out), 2000)

    def test_fuzz_never_raises_and_stays_bounded(self):
        data, _ = stream(4)
        rng = random.Random(7)
        for _ in range(300):
            b = bytearray(data)
            for _ in range(rng.randrange(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            d = PsDemuxer()
            for i in range(0, len(b), 333):
                d.feed(bytes(b[i:i + 333]))
                self.assertLessEqual(len(d._buf), 65541 + 333)
            d.flush()

    def test_frames_become_flv_packets(self):
        data, _ = stream(3)
        d, frames = self.demux(data)
        ts = TsDemuxer()
        packets = []
        for f in sorted(frames, key=lambda f: f.dts):
            packets += ts.decode_es(f.codec, f.data, f.pts, f.dts)
        heads = [p for p in packets if p.sequence_header]
        self.assertEqual(sorted(p.codec for p in heads), ["aac", "h264"])
        video = [p for p in packets if p.kind == 9 and not p.sequence_header]
        self.assertEqual([(p.dts, p.pts, p.keyframe) for p in video],
                         [(1000, 1040, True), (1040, 1080, False), (1080, 1120, False)])
        self.assertEqual(ts.errors, 0)
        self.assertEqual(ts.decode_es("h264", b"\x00\x00\x01\x67\x00", 0, 0), [])
        self.assertEqual(ts.errors, 1)
