"""Tests for srs_twisted.codec.rtp_h264: RFC 6184 payloader and depayloader."""

import random

from twisted.trial import unittest

from srs_twisted.codec import avc, flv, rtp
from srs_twisted.codec.rtp import RtpError, RtpPacket
from srs_twisted.codec.rtp_h264 import H264Depayloader, H264Payloader, parse_payload

from .test_avc import AVCC_320x240
from .test_rtp import assert_only

CONFIG = avc.parse_decoder_config(AVCC_320x240)
SPS, PPS = bytes(CONFIG.sps[0]), bytes(CONFIG.pps[0])
AUD = b"\x09\xf0"
SEI = b"\x06\x05\x01\x00\x80"


def idr(size, seed=0):
    rng = random.Random(seed)
    return b"\x65" + bytes(rng.randrange(256) for _ in range(size - 1))


def slice_(size, seed=0):
    rng = random.Random(seed)
    return b"\x41" + bytes(rng.randrange(256) for _ in range(size - 1))


def coded_slice(frame_num, first_mb=0, size=400, seed=0):
    """A non-IDR reference slice whose header starts as a P slice of the test SPS
    (log2_max_frame_num 4): first_mb_in_slice, slice_type 0, pps 0, frame_num."""
    def ue(v):
        code = bin(v + 1)[2:]
        return "0" * (len(code) - 1) + code

    rng = random.Random(seed)
    bits = ue(first_mb) + ue(0) + ue(0) + format(frame_num % 16, "04b")
    bits += "".join(rng.choice("01") for _ in range(8 * (size - 1) - len(bits)))
    return b"\x41" + int(bits, 2).to_bytes(size - 1, "big")


def avcc(*nalus, length_size=4):
    return b"".join(len(n).to_bytes(length_size, "big") + n for n in nalus)


def flv_video(key, data, sequence_header=False):
    return bytes(((0x17 if key else 0x27), 0 if sequence_header else 1, 0, 0, 0)) + data


def packets(payloads, seq, ts, ssrc=1):
    """Through the wire and back: RtpPackets as a receiver parses them."""
    return [RtpPacket.parse(bytes(p)) for p in rtp.packetize(payloads, 102, ssrc, seq, ts)]


class PayloaderTests(unittest.TestCase):
    def setUp(self):
        self.pay = H264Payloader(max_payload=1000)
        self.pay.set_config(AVCC_320x240)

    def test_config(self):
        self.assertEqual((self.pay.sps, self.pay.pps, self.pay.nal_length_size), ([SPS], [PPS], 4))
        self.assertRaises(RtpError, self.pay.set_config, b"\x01\x42")
        self.assertRaises(RtpError, H264Payloader, 10)

    def test_single_nal_units(self):
        out = self.pay.payload_avcc(avcc(AUD, SEI, slice_(1000)))
        self.assertEqual(out, [SEI, slice_(1000)])  # no AUD, exactly max_payload fits

    def test_idr_gets_stap_a_then_fu_a(self):
        frame = idr(2500, seed=3)
        out = self.pay.payload_avcc(avcc(frame))
        stap = out[0]
        self.assertEqual(stap[0], 0x78)  # F=0, NRI=3 (the SPS's), type 24
        self.assertEqual(stap[1:], len(SPS).to_bytes(2, "big") + SPS + len(PPS).to_bytes(2, "big") + PPS)
        fus = out[1:]
        self.assertEqual(len(fus), 3)
        self.assertTrue(all(len(f) <= 1000 for f in fus))
        self.assertLessEqual(max(map(len, fus)) - min(map(len, fus)), 1)  # balanced
        self.assertEqual([f[0] for f in fus], [0x7C] * 3)  # NRI of the IDR, type 28
        self.assertEqual([f[1] for f in fus], [0x85, 0x05, 0x45])  # S, -, E; type 5
        self.assertEqual(b"\x65" + b"".join(f[2:] for f in fus), frame)

    def test_in_band_parameter_sets_replace_config(self):
        new_sps = SPS[:-1] + b"\x99"
        out = self.pay.payload_avcc(avcc(new_sps, PPS, idr(100)))
        self.assertEqual(parse_payload(out[0])[1], [new_sps, PPS])
        self.assertEqual(self.pay.sps, [new_sps])
        out = self.pay.payload_avcc(avcc(idr(100)))
        self.assertEqual([bytes(n) for n in parse_payload(out[0])[1]], [new_sps, PPS])

    def test_large_parameter_sets(self):
        pay = H264Payloader(max_payload=64)
        big_pps = b"\x68" + bytes(100)
        pay.sps, pay.pps = [SPS], [big_pps, PPS]
        out = pay.payloads([idr(10)])
        kinds = [parse_payload(p)[0] for p in out]
        # the SPS alone (the next PPS is too big to share a STAP-A), the big
        # PPS fragmented, the small PPS, the IDR
        self.assertEqual(kinds, [7, 28, 28, 8, 5])

    def test_flv_bodies(self):
        pay = H264Payloader()
        self.assertEqual(pay.payload_flv(flv_video(True, AVCC_320x240, sequence_header=True)), [])
        self.assertEqual(pay.sps, [SPS])
        out = pay.payload_flv(flv_video(True, avcc(idr(50))))
        self.assertEqual(out[1], idr(50))
        self.assertEqual(pay.payload_flv(bytes((0x17, 2, 0, 0, 0))), [])  # end of sequence
        self.assertRaises(RtpError, pay.payload_flv, bytes((0x2C, 1, 0, 0, 0, 1)))  # HEVC
        self.assertRaises(RtpError, pay.payload_flv, flv_video(False, b"\x00\x00\x00\x09ab"))
        self.assertRaises(RtpError, pay.payload_flv, b"")
        # a 2-byte NAL length size from the record is honoured
        record = bytearray(AVCC_320x240)
        record[4] = 0xFD
        pay.set_config(bytes(record))
        self.assertEqual(pay.payload_flv(flv_video(False, avcc(slice_(20), length_size=2))), [slice_(20)])


class ParsePayloadTests(unittest.TestCase):
    def test_refusals(self):
        for bad in (b"", b"\x80\x00", b"\x19abc", b"\x1dabc", b"\x00", b"\x1e", b"\x1f",
                    b"\x18", b"\x18\x00", b"\x18\x00\x00", b"\x18\x00\x05abc",
                    b"\x1c\x85", b"\x1c\xc5ab", b"\x1c\x98ab", b"\x1c\x80ab"):
            self.assertRaises(RtpError, parse_payload, bad)

    def test_hostile(self):
        rng = random.Random(30)
        for _ in range(3000):
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(12)))
            assert_only(self, RtpError, parse_payload, data)


class DepayloaderTests(unittest.TestCase):
    def setUp(self):
        self.pay = H264Payloader(max_payload=500)
        self.pay.set_config(AVCC_320x240)
        self.dep = H264Depayloader()
        self.seq = 65530
        self.ts = 1000

    def frame(self, *nalus):
        """Packets of one frame, sequence numbers continuing."""
        out = packets(self.pay.payloads(list(nalus)), self.seq, self.ts)
        self.seq = (self.seq + len(out)) & 0xFFFF
        self.ts += 3000
        return out

    def push(self, pkts):
        frames = []
        for p in pkts:
            frames.extend(self.dep.push(p))
        return frames

    def test_round_trip_and_keyframes(self):
        self.assertTrue(self.dep.needs_keyframe)
        key = self.push(self.frame(SEI, idr(1800, 1)))
        self.assertEqual(len(key), 1)
        self.assertTrue(key[0].keyframe)
        self.assertEqual((key[0].nalus, key[0].sps, key[0].pps), ([SEI, idr(1800, 1)], [SPS], [PPS]))
        self.assertEqual(key[0].timestamp, 1000)
        self.assertEqual(key[0].avcc(), avcc(SEI, idr(1800, 1)))
        self.assertFalse(self.dep.needs_keyframe)
        self.assertEqual(self.dep.decoder_config(), avc.make_decoder_config([SPS], [PPS]))
        inter = self.push(self.frame(slice_(700, 2)))  # crosses the sequence number wrap
        self.assertEqual([(f.keyframe, f.nalus, f.timestamp) for f in inter], [(False, [slice_(700, 2)], 4000)])
        self.assertEqual(self.dep.dropped, 0)

    def test_inter_frames_wait_for_a_keyframe(self):
        self.assertEqual(self.push(self.frame(slice_(100))), [])
        self.assertEqual(self.dep.dropped, 1)
        self.assertTrue(self.dep.needs_keyframe)
        self.assertIsNone(self.dep.decoder_config())

    def test_idr_without_parameter_sets_is_not_a_keyframe(self):
        self.pay.sps = self.pay.pps = []
        self.assertEqual(self.push(self.frame(idr(100))), [])
        self.assertTrue(self.dep.needs_keyframe)

    def test_loss_inside_a_frame(self):
        self.push(self.frame(idr(300)))
        pkts = self.frame(slice_(1400, 5))  # three FU-A fragments
        self.assertEqual(len(pkts), 3)
        self.assertEqual(self.push([pkts[0], pkts[2]]), [])
        self.assertTrue(self.dep.needs_keyframe)
        self.assertEqual(self.dep.dropped, 1)
        # the next inter frame is dropped too; the keyframe recovers
        self.assertEqual(self.push(self.frame(slice_(100))), [])
        self.assertEqual(self.dep.dropped, 2)
        key = self.push(self.frame(idr(900, 7)))
        self.assertEqual([f.keyframe for f in key], [True])
        self.assertFalse(self.dep.needs_keyframe)

    def test_loss_of_a_whole_frame(self):
        self.push(self.frame(idr(300)))
        self.frame(slice_(100))  # never delivered
        self.assertEqual(self.push(self.frame(slice_(100, 1))), [])
        self.assertTrue(self.dep.needs_keyframe)

    def test_loss_of_the_last_packet_without_marker(self):
        self.push(self.frame(idr(300)))
        pkts = self.frame(slice_(1400, 5))
        self.assertEqual(self.push(pkts[:2]), [])  # end fragment lost, frame pending
        nxt = self.frame(slice_(50))
        self.assertEqual(self.push(nxt), [])  # the pending frame is dropped, and this one
        self.assertEqual(self.dep.dropped, 2)

    def test_frame_without_marker_closed_by_the_next_timestamp(self):
        self.push(self.frame(idr(300)))
        a = self.frame(slice_(100))
        a[-1].marker = False
        b = self.frame(slice_(100, 1))
        got = self.push(a) + self.push(b)
        self.assertEqual([f.nalus for f in got], [[slice_(100)], [slice_(100, 1)]])

    def test_duplicates_and_late_packets(self):
        key = self.frame(idr(1400))
        got = self.push(key[:2] + key[:2] + key[2:] + key[1:2])
        self.assertEqual(len(got), 1)
        self.assertEqual(self.dep.dropped, 0)

    def test_reordered_packets_inside_a_frame(self):
        key = self.frame(idr(1400))  # STAP-A then 3 fragments, the last with the marker
        got = self.push([key[0], key[2], key[1], key[3]])
        self.assertEqual([f.nalus for f in got], [[idr(1400)]])

    def test_sender_restarting_its_sequence_numbers(self):
        self.push(self.frame(idr(300)))
        self.seq = (self.seq - 1000) & 0xFFFF  # seems 1000 packets old
        for _ in range(80):
            self.push(self.frame(slice_(50)))
        got = self.push(self.frame(idr(300, 1)))
        self.assertEqual([f.keyframe for f in got], [True])

    def padding(self, ts):
        """A padding-only packet (empty payload), as Chrome sends to probe bandwidth."""
        p = RtpPacket.parse(bytes(RtpPacket(102, self.seq, ts, 1, False, b"", padding=200)))
        self.seq = (self.seq + 1) & 0xFFFF
        return p

    def test_padding_packets_keep_the_sequence(self):
        self.push(self.frame(idr(300)))
        pads = [self.padding(self.ts - 3000), self.padding(self.ts - 3000)]
        inter = self.frame(slice_(800))
        pads.append(self.padding(self.ts))  # a timestamp of its own, between frames
        got = self.push(pads[:2] + inter + pads[2:] + self.frame(slice_(100, 1)))
        self.assertEqual([f.nalus for f in got], [[slice_(800)], [slice_(100, 1)]])
        self.assertEqual(self.dep.dropped, 0)
        # a lost packet is still a loss when padding follows it
        self.frame(slice_(100, 2))
        got = self.push([self.padding(self.ts)] + self.frame(slice_(100, 3)))
        self.assertEqual(got, [])
        self.assertTrue(self.dep.needs_keyframe)

    def test_lost_padding_is_no_loss(self):
        # Chromium pads (probes bandwidth) on the video SSRC when RTX is not negotiated, after
        # a frame's marker and with its timestamp, and never resends padding a NACK asks for.
        self.push(self.frame(idr(300)))
        last_ts = self.ts - 3000
        pads = [self.padding(last_ts) for _ in range(6)]
        got = self.push([pads[0], pads[2], pads[3], pads[5]] + self.frame(slice_(800)))  # 1 and 4 lost
        self.assertEqual([f.nalus for f in got], [[slice_(800)]])
        pads = [self.padding(self.ts - 3000) for _ in range(3)]
        got = self.push(pads[1:] + self.frame(slice_(100, 1)))  # the first padding after the frame lost
        self.assertEqual([f.nalus for f in got], [[slice_(100, 1)]])
        self.assertEqual((self.dep.dropped, self.dep.needs_keyframe), (0, False))
        # a hole after the last padding may have been a frame: still a loss
        self.push([self.padding(self.ts - 3000)])
        self.padding(self.ts - 3000)
        self.assertEqual(self.push(self.frame(slice_(100, 2))), [])
        self.assertTrue(self.dep.needs_keyframe)

    def test_a_hole_before_the_next_frame_num_is_padding(self):
        self.assertEqual(avc.parse_sps(SPS).log2_max_frame_num, 4)
        got = self.push(self.frame(idr(300)) + self.frame(coded_slice(1)))
        self.assertEqual(len(got), 2)
        pads = [self.padding(self.ts - 3000) for _ in range(3)]
        got = self.push(pads[:2] + self.frame(coded_slice(2, seed=1)))  # the last padding lost
        self.assertEqual([f.nalus for f in got], [[coded_slice(2, seed=1)]])
        for n in range(3, 20):  # frame_num wraps at 16
            self.padding(self.ts - 3000)  # lost
            self.assertEqual(len(self.push(self.frame(coded_slice(n, seed=n)))), 1, n)
        self.assertEqual((self.dep.dropped, self.dep.needs_keyframe), (0, False))

    def test_a_lost_reference_frame_or_first_slice_is_a_loss(self):
        self.push(self.frame(idr(300)) + self.frame(coded_slice(1)))
        self.frame(coded_slice(2))  # lost: the next frame_num is 3, not 2
        self.assertEqual(self.push(self.frame(coded_slice(3))), [])
        self.assertTrue(self.dep.needs_keyframe)
        self.push(self.frame(idr(300, 1)) + self.frame(coded_slice(1)))
        two_slices = self.frame(coded_slice(2), coded_slice(2, first_mb=150, seed=5))
        self.assertEqual(len(two_slices), 2)
        self.assertEqual(self.push(two_slices[1:]), [])  # the first slice lost: the picture is broken
        self.assertTrue(self.dep.needs_keyframe)

    def test_padding_after_a_lost_frame_reveals_the_loss(self):
        self.push(self.frame(idr(300)))
        self.frame(slice_(100))  # never delivered; its padding follows, with its timestamp
        pads = [self.padding(self.ts - 3000) for _ in range(3)]
        self.assertEqual(self.push([pads[0], pads[2]] + self.frame(slice_(100, 1))), [])
        self.assertTrue(self.dep.needs_keyframe)

    def test_bounded_frame(self):
        pkts = packets([b"\x41" + bytes(10)] * 5000, 0, 90)
        for p in pkts:
            p.marker = False
        self.push(pkts)
        self.assertEqual(self.dep.dropped, 1)
        self.assertLess(len(self.dep._packets), 4097)

    def test_parameter_sets_only(self):
        self.assertEqual(self.push(packets([SPS, PPS], 1, 90)), [])
        self.assertEqual(self.dep.sps, [SPS])
        self.assertEqual(self.dep.dropped, 0)

    def test_malformed_payload_counts_as_lost(self):
        self.push(self.frame(idr(300)))
        pkts = self.frame(slice_(1400, 5))
        bad = RtpPacket(102, pkts[1].sequence_number, pkts[1].timestamp, 1, False, b"\x1c\xc5ab")
        self.assertRaises(RtpError, self.dep.push, bad)
        self.assertEqual(self.push([pkts[0], pkts[2]]), [])
        self.assertTrue(self.dep.needs_keyframe)

    def test_fragments_that_do_not_match(self):
        self.push(self.frame(idr(300)))
        for payloads in ([b"\x7c\x05ab", b"\x7c\x45cd"],  # no start fragment
                         [b"\x7c\x85ab", b"\x41xx"],  # a single NAL inside a fragmented one
                         [b"\x7c\x85ab", b"\x7c\x85cd"],  # two starts
                         [b"\x7c\x85ab", b"\x7c\x41cd"]):  # type changes mid-unit
            pkts = packets(payloads, self.seq, self.ts)
            self.seq += len(pkts)
            self.ts += 3000
            self.assertEqual(self.push(pkts), [])
        self.assertEqual(self.dep.dropped, 4)

    def test_hostile_streams(self):
        rng = random.Random(31)
        seeds = self.frame(idr(1400)) + self.frame(slice_(600))
        for _ in range(400):
            dep = H264Depayloader()
            for p in seeds:
                data = bytearray(bytes(p))
                if rng.random() < 0.5:
                    for _ in range(rng.randint(1, 3)):
                        data[rng.randrange(len(data))] = rng.randrange(256)
                try:
                    packet = RtpPacket.parse(bytes(data))
                except RtpError:
                    continue
                assert_only(self, RtpError, dep.push, packet)


class RealClipTests(unittest.TestCase):
    """A real x264 stream (the integration harness's FLV clip) through both ends."""

    def test_clip_round_trip(self):
        from tests.integration import harness

        with open(harness.clip("h264-aac", seconds=2), "rb") as f:
            tags = [t for t in flv.FlvReader().feed(f.read()) if t.tag_type == flv.TAG_VIDEO]
        pay = H264Payloader()
        dep = H264Depayloader()
        seq = 40000
        sent, got = [], []
        for tag in tags:
            payloads = pay.payload_flv(tag.payload)
            if not payloads:
                continue
            self.assertTrue(all(len(p) <= 1200 for p in payloads))
            header = flv.parse_video(tag.payload)
            sent.append((header.keyframe, bytes(tag.payload[header.data_offset:])))
            for p in packets(payloads, seq, tag.timestamp * 90):
                got.extend(dep.push(p))
            seq = (seq + len(payloads)) & 0xFFFF
        self.assertEqual(len(sent), 50)
        self.assertEqual(sum(k for k, _ in sent), 2)
        self.assertEqual([(f.keyframe, f.avcc()) for f in got], sent)
        self.assertEqual(dep.decoder_config()[5:], AVCC_FROM_CLIP(tags)[5:])
        self.assertGreater(seq - 40000, 50)  # some frames needed fragments


def AVCC_FROM_CLIP(tags):
    header = flv.parse_video(tags[0].payload)
    info = avc.parse_decoder_config(tags[0].payload[header.data_offset:])
    return avc.make_decoder_config(info.sps, info.pps)
