"""Tests for srs_twisted.codec.rtp_opus: RFC 7587 payloads and Opus durations."""

import random

from twisted.trial import unittest

from srs_twisted.codec import rtp
from srs_twisted.codec.opus import make_opus_head
from srs_twisted.codec.rtp import RtpError, RtpPacket
from srs_twisted.codec.rtp_opus import CLOCK_RATE, OpusDepayloader, OpusFrame, OpusPayloader, opus_samples

from .test_rtp import assert_only


def toc(config, stereo=False, code=0):
    return bytes(((config << 3) | (4 if stereo else 0) | code,))


class SamplesTests(unittest.TestCase):
    def test_frame_durations(self):
        # RFC 6716 table 2: SILK 10/20/40/60 ms, hybrid 10/20, CELT 2.5/5/10/20
        expected = {0: 480, 1: 960, 2: 1920, 3: 2880, 11: 2880, 12: 480, 13: 960, 15: 960,
                    16: 120, 17: 240, 18: 480, 19: 960, 31: 960}
        for config, samples in expected.items():
            self.assertEqual(opus_samples(toc(config) + b"x"), samples, config)
        self.assertEqual(opus_samples(b"\xfc\xff\xfe"), 960)  # what WebRTC sends: CELT FB 20 ms stereo
        self.assertEqual(CLOCK_RATE, 48000)

    def test_frame_counts(self):
        self.assertEqual(opus_samples(toc(1, code=1) + b"ab"), 1920)
        self.assertEqual(opus_samples(toc(1, code=2) + b"\x01ab"), 1920)
        self.assertEqual(opus_samples(toc(16, code=3) + b"\x05" + bytes(5)), 600)
        self.assertEqual(opus_samples(toc(3, code=3) + b"\x02"), 5760)  # 120 ms, the most allowed

    def test_refusals(self):
        for bad in (b"", toc(1, code=3), toc(1, code=3) + b"\x00", toc(3, code=3) + b"\x03",
                    toc(19, code=3) + b"\x07"):
            self.assertRaises(RtpError, opus_samples, bad)
        rng = random.Random(40)
        for _ in range(2000):
            assert_only(self, RtpError, opus_samples, bytes(rng.randrange(256) for _ in range(rng.randrange(4))))


class PayloaderTests(unittest.TestCase):
    def test_payload(self):
        pay = OpusPayloader()
        self.assertEqual(pay.payload(memoryview(b"\xfc\x01\x02")), b"\xfc\x01\x02")
        self.assertRaises(RtpError, pay.payload, b"")

    def test_flv_bodies(self):
        pay = OpusPayloader()
        # Enhanced RTMP: SoundFormat 9, packet type 0 (sequence start) / 1 (coded frames), FourCC Opus
        self.assertIsNone(pay.payload_flv(b"\x90Opus" + make_opus_head()))
        self.assertEqual(pay.payload_flv(b"\x91Opus\xfc\xaa"), b"\xfc\xaa")
        self.assertIsNone(pay.payload_flv(b"\x92Opus"))  # sequence end
        self.assertIsNone(pay.payload_flv(b"\x91Opus"))  # nothing coded
        # legacy SoundFormat 13
        self.assertEqual(pay.payload_flv(b"\xdf\xfc\xbb"), b"\xfc\xbb")
        self.assertRaises(RtpError, pay.payload_flv, b"\xaf\x01\x21")  # AAC
        self.assertRaises(RtpError, pay.payload_flv, b"\x91Zzzz\xfc")


class DepayloaderTests(unittest.TestCase):
    def packet(self, seq, ts, payload=b"\xfc\x01\x02"):
        return RtpPacket.parse(bytes(RtpPacket(111, seq, ts, 5, False, payload)))

    def test_frames_losses_and_late(self):
        dep = OpusDepayloader()
        got = [dep.push(self.packet(seq, ts)) for seq, ts in
               ((65534, 0), (65535, 960), (1, 2880), (0, 1920), (1, 2880), (2, 3840))]
        self.assertEqual(got[0], OpusFrame(0, b"\xfc\x01\x02", 960))
        self.assertEqual([g.timestamp if g else None for g in got], [0, 960, 2880, None, None, 3840])
        self.assertEqual((dep.lost, dep.late), (1, 2))
        self.assertIsNone(dep.push(self.packet(3, 4800, b"")))  # padding only: not a loss
        self.assertEqual(dep.push(self.packet(4, 4800)).timestamp, 4800)
        self.assertEqual(dep.lost, 1)
        self.assertRaises(RtpError, dep.push, self.packet(5, 5760, toc(1, code=3)))

    def test_sequence_restart_followed(self):
        dep = OpusDepayloader()
        dep.push(self.packet(30000, 0))
        results = [dep.push(self.packet(1000 + i, 960 * i)) for i in range(70)]
        self.assertIsNone(results[0])
        self.assertIsNotNone(results[-1])
        self.assertIsNotNone(dep.push(self.packet(1070, 960 * 70)))

    def test_round_trip_through_rtp(self):
        pay, dep = OpusPayloader(), OpusDepayloader()
        frames = [bytes((0xFC,)) + bytes([i]) * (20 + i) for i in range(10)]
        ts = 123456
        out = []
        for i, frame in enumerate(frames):
            (p,) = rtp.packetize([pay.payload(frame)], 111, 9, 100 + i, ts, marker=i == 0)
            out.append(dep.push(RtpPacket.parse(bytes(p))))
            ts += opus_samples(frame)
        self.assertEqual([f.data for f in out], frames)
        self.assertEqual([f.timestamp - 123456 for f in out], [960 * i for i in range(10)])
