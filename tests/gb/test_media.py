"""Tests for srs_twisted.gb.media: RFC 4571 framing, UDP reordering, PS over RTP into live packets."""

import random
import struct

from twisted.trial import unittest

from srs_twisted.codec.ps import PsMuxer
from srs_twisted.codec.rtp import RtpPacket
from srs_twisted.gb.media import MediaError, PsIngest, ReorderBuffer, Rfc4571Framer

from tests.codec.test_ps import ADTS, PPS, SPS, annexb, idr


def rtp(seq, payload, ssrc=1234, marker=False, ts=0):
    return struct.pack(">BBHII", 0x80, (0x80 if marker else 0) | 96, seq & 0xFFFF, ts, ssrc) + payload


def camera(frames=10, audio="aac", video="h264", chunk=500, seq0=65530):
    """RTP packets of a PS stream: per frame a video access unit and an audio frame, marker at each frame's end."""
    mux = PsMuxer(video, audio)
    packets = []
    seq = seq0
    for i in range(frames):
        pts = 90000 + i * 3600
        es = annexb(SPS, PPS, idr(400, i)) if i % 5 == 0 else annexb(b"\x41" + bytes([i + 1]) * 300)
        data = mux.video(es, pts, keyframe=i % 5 == 0)
        if audio == "aac":
            data += mux.audio(ADTS, pts)
        elif audio:
            data += mux.audio(b"\xd5" * 320, pts)  # 40 ms of G.711 at 8 kHz
        pieces = [data[j:j + chunk] for j in range(0, len(data), chunk)]
        for k, piece in enumerate(pieces):
            packets.append(rtp(seq, piece, marker=k == len(pieces) - 1, ts=pts))
            seq += 1
    return packets


class FramerTests(unittest.TestCase):
    def test_split_everywhere(self):
        pkts = [rtp(i, b"x" * (i * 10)) for i in range(1, 6)]
        stream = b"".join(struct.pack(">H", len(p)) + p for p in pkts)
        for size in (1, 3, 50, len(stream)):
            f = Rfc4571Framer()
            out = []
            for i in range(0, len(stream), size):
                out += f.feed(stream[i:i + size])
            self.assertEqual(out, pkts)

    def test_lengths_out_of_range(self):
        self.assertRaises(MediaError, Rfc4571Framer().feed, b"\xff\xff" + b"\x00" * 100)
        self.assertRaises(MediaError, Rfc4571Framer().feed, b"\x00\x05hello")
        self.assertEqual(Rfc4571Framer(max_packet=65535).feed(b"\xff\xff"), [])


class ReorderTests(unittest.TestCase):
    def test_reorders_and_drops_duplicates_and_late(self):
        b = ReorderBuffer(size=8)
        got = []
        for seq in (65534, 0, 65535, 1, 1, 3, 2, 65533):
            got += [p.sequence_number for p in b.push(RtpPacket.parse(rtp(seq, b"")))]
        self.assertEqual(got, [65534, 65535, 0, 1, 2, 3])
        self.assertEqual(b.late, 2)

    def test_a_lost_packet_is_given_up_when_full(self):
        b = ReorderBuffer(size=4)
        got = []
        for seq in [10, 12, 13, 14, 15, 16, 17]:
            got += [p.sequence_number for p in b.push(RtpPacket.parse(rtp(seq, b"")))]
        self.assertEqual(got, [10, 12, 13, 14, 15, 16, 17])


class IngestTests(unittest.TestCase):
    def test_h264_aac(self):
        ingest = PsIngest()
        out = []
        for p in camera():
            out += ingest.rtp(p)
        video = [p for p in out if p.kind == 9 and not p.sequence_header]
        self.assertEqual([p.dts for p in video], [1000 + 40 * i for i in range(10)])  # each frame at its marker
        self.assertEqual([p.keyframe for p in video], [i % 5 == 0 for i in range(10)])
        self.assertEqual(sorted(p.codec for p in out if p.sequence_header), ["aac", "h264"])
        self.assertEqual(len([p for p in out if p.kind == 8 and not p.sequence_header]), 10)
        self.assertEqual((ingest.lost, ingest.errors, ingest.codecs), (0, 0, {"video": "h264", "audio": "aac"}))

    def test_loss_loses_frames_not_the_stream(self):
        packets = camera(20)
        rng = random.Random(4)
        dropped = set(rng.sample(range(5, len(packets) - 1), 6))
        ingest = PsIngest()
        out = []
        for i, p in enumerate(packets):
            if i not in dropped:
                out += ingest.rtp(p)
        self.assertEqual(ingest.lost, 6)
        video = [p for p in out if p.kind == 9 and not p.sequence_header]
        self.assertGreaterEqual(len(video), 10)
        self.assertIn(1000 + 40 * 19, [p.dts for p in video] + [p.dts for p in out if p.kind == 8])

    def test_g711_becomes_aac(self):
        for codec in ("pcma", "pcmu"):
            ingest = PsIngest()
            out = []
            for p in camera(25, audio=codec):
                out += ingest.rtp(p)
            audio = [p for p in out if p.kind == 8]
            self.assertTrue(audio and audio[0].sequence_header, codec)
            self.assertEqual(audio[0].payload[:2], b"\xaf\x00")
            self.assertEqual(audio[0].payload[2:4], bytes.fromhex("1190"))  # AAC-LC 48 kHz stereo
            frames = [p for p in audio if not p.sequence_header]
            self.assertGreaterEqual(len(frames), 15)  # 1 s of 8 kHz input ~ 47 AAC frames at 48 kHz, minus priming
            self.assertTrue(all(p.payload[:2] == b"\xaf\x01" for p in frames))
            self.assertEqual(ingest.codecs["audio"], codec)
            ingest.close()

    def test_garbage_rtp_payloads(self):
        ingest = PsIngest()
        rng = random.Random(1)
        for i in range(300):
            ingest.rtp(rtp(i, bytes(rng.randrange(256) for _ in range(rng.randrange(0, 600)))))
        ingest.rtp(b"\x00" * 5)
        out = []
        for p in camera(5, seq0=300):
            out += ingest.rtp(p)
        self.assertTrue([p for p in out if p.kind == 9 and p.keyframe and not p.sequence_header])
        self.assertGreater(ingest.errors, 0)

    def test_restart_keeps_the_codec_state(self):
        ingest = PsIngest()
        first = []
        for p in camera(5):
            first += ingest.rtp(p)
        ingest.restart()  # a re-invite: new RTP numbering and PS state, same camera
        again = []
        for p in camera(5, seq0=100):
            again += ingest.rtp(p)
        self.assertEqual(len([p for p in first if p.sequence_header]), 2)
        self.assertEqual([p for p in again if p.sequence_header], [])
        self.assertEqual(len([p for p in again if p.kind == 9]), 5)
        self.assertEqual(ingest.lost, 0)


class ReorderTimeTests(unittest.TestCase):
    def test_a_gap_is_given_up_after_max_wait(self):
        b = ReorderBuffer(size=64, max_wait=0.2)
        self.assertEqual(len(b.push(RtpPacket.parse(rtp(1, b"")), 10.0)), 1)
        self.assertEqual(b.push(RtpPacket.parse(rtp(3, b"")), 10.0), [])  # 2 is missing
        self.assertEqual(b.push(RtpPacket.parse(rtp(4, b"")), 10.1), [])
        self.assertEqual(b.release(10.15), [])
        self.assertEqual([p.sequence_number for p in b.release(10.21)], [3, 4])
        self.assertEqual([p.sequence_number for p in b.push(RtpPacket.parse(rtp(5, b"")), 10.3)], [5])
        self.assertEqual(b.push(RtpPacket.parse(rtp(2, b"")), 10.3), [])  # too late now
        self.assertEqual(b.late, 1)
