"""Tests for srs_twisted.codec.rtcp (and the packet classes of rtcp_packets)."""

import random

from twisted.trial import unittest

from srs_twisted.codec import rtcp
from srs_twisted.codec.rtcp import (
    Bye, Fir, Nack, Pli, RawRtcp, ReceiverReport, Remb, ReportBlock, RtcpError, Sdes, SdesChunk,
    SenderReport, TransportCC)

from .bits import assert_fuzz
from .test_rtp import assert_only

# Transport-cc feedback vectors from pion/rtcp's transport_layer_cc_test.go (MIT):
# "example1" (one run-length chunk), "example6" (a Chrome capture: a two-bit
# status vector, then a run-length chunk longer than the status count),
# "example4" (a run of seven small deltas) and "example7" (no packets).
TWCC_1 = bytes.fromhex("afcd0005fa17fa17430 32fa0009900013de80217200194 01".replace(" ", ""))
TWCC_6 = bytes.fromhex("afcd00079b74f61f9371dcbc853c000963f916b3d55200309baa6aaa7b010901")
TWCC_4 = bytes.fromhex("afcd0007fa17fa17193dd8bb00040007 10636e01 20074c24 24100c0c 10000003".replace(" ", ""))
TWCC_7 = bytes.fromhex("8fcd00049acb0442000000000000000000000000")

# A compound packet written field by field: SR with one block and SDES CNAME.
SR_SDES = bytes.fromhex(
    "81c8000c" "00000005" "e5f1a2b3c4d5e6f7" "00015f90" "0000000a" "00000400"
    "00000009" "05fffffe" "0001ffff" "00000010" "a2b3c4d5" "00000800"
    "81ca0003" "00000005" "0104" "63616d31" "0000")


class ReportTests(unittest.TestCase):
    def test_hand_made_sr_and_sdes(self):
        sr, sdes = rtcp.parse_compound(SR_SDES)
        self.assertEqual(sr, SenderReport(5, 0xE5F1A2B3C4D5E6F7, 90000, 10, 1024, [
            ReportBlock(9, 5, -2, 0x1FFFF, 16, 0xA2B3C4D5, 0x800)]))
        self.assertEqual(sdes, Sdes([SdesChunk(5, [(1, b"cam1")])]))
        self.assertEqual(sdes.chunks[0].cname, b"cam1")
        self.assertEqual(rtcp.serialize_compound([sr, sdes]), SR_SDES)

    def test_rr_and_extension_kept(self):
        rr = ReceiverReport(7, [ReportBlock(1, 0, 0x7FFFFF), ReportBlock(2, 255, -0x800000)], b"\x01\x02\x03\x04")
        data = bytes(rr)
        self.assertEqual(data[:4], bytes.fromhex("82c9000e"))
        self.assertEqual(rtcp.parse_compound(data), [rr])
        # an out-of-range cumulative loss is clamped, as RFC 3550 wants
        self.assertEqual(rtcp.parse_compound(bytes(ReceiverReport(1, [ReportBlock(2, 0, 1 << 30)])))[0]
                         .reports[0].packets_lost, 0x7FFFFF)
        self.assertEqual(rtcp.parse_compound(bytes(ReceiverReport(3)))[0], ReceiverReport(3))

    def test_report_length_checked(self):
        data = bytearray(bytes(ReceiverReport(7, [ReportBlock(1)])))
        data[0] = 0x82  # claims two blocks
        self.assertRaises(RtcpError, rtcp.parse_compound, bytes(data))

    def test_ntp(self):
        ntp = rtcp.ntp_timestamp(1.5)
        self.assertEqual(ntp, (2208988801 << 32) | (1 << 31))
        self.assertEqual(rtcp.ntp_compact(ntp), ((2208988801 & 0xFFFF) << 16) | 0x8000)

    def test_sdes_several_chunks_and_items(self):
        sdes = Sdes([SdesChunk(1, [(1, b"a")]), SdesChunk(2, [(1, b"abcdef"), (6, b"tool")]), SdesChunk(3)])
        data = bytes(sdes)
        self.assertEqual(len(data) % 4, 0)
        self.assertEqual(rtcp.parse_compound(data), [sdes])
        self.assertRaises(RtcpError, bytes, Sdes([SdesChunk(1, [(1, bytes(256))])]))

    def test_bye(self):
        bye = Bye([1, 2], b"bye now")
        data = bytes(bye)
        self.assertEqual(data[:4], bytes.fromhex("82cb0004"))
        self.assertEqual(rtcp.parse_compound(data), [bye])
        self.assertEqual(rtcp.parse_compound(bytes(Bye([9]))), [Bye([9])])


class FeedbackTests(unittest.TestCase):
    def test_nack_pairs_both_ways(self):
        lost = [100, 101, 116, 117, 200]
        self.assertEqual(rtcp.nack_pairs(lost), [(100, 0x8001), (117, 0), (200, 0)])
        self.assertEqual(rtcp.nack_lost([(100, 0x8001), (117, 0), (200, 0)]), [100, 101, 116, 117, 200])
        # across the wrap, and duplicates folded
        self.assertEqual(rtcp.nack_pairs([65534, 65535, 0, 0, 14]), [(65534, 0x8003)])
        self.assertEqual(rtcp.nack_lost([(65534, 0x8003)]), [65534, 65535, 0, 14])
        self.assertEqual(rtcp.nack_pairs([]), [])

    def test_nack_packet(self):
        nack = Nack(0x11, 0x22, [5, 7, 30])
        data = bytes(nack)
        self.assertEqual(data, bytes.fromhex("81cd0004" "00000011" "00000022" "00050002" "001e0000"))
        self.assertEqual(rtcp.parse_compound(data), [nack])
        # two padding bytes leave an FCI that is not a list of words
        self.assertRaises(RtcpError, rtcp.parse_compound,
                          bytes.fromhex("a1cd0003" "00000011" "00000022" "00050002"))

    def test_pli_fir_remb(self):
        pli = Pli(1, 2)
        self.assertEqual(bytes(pli), bytes.fromhex("81ce0002" "00000001" "00000002"))
        fir = Fir(1, [(0xAAAA, 3), (0xBBBB, 255)])
        self.assertEqual(bytes(fir)[:4], bytes.fromhex("84ce0006"))
        remb = Remb(1, 1_500_000, [0xAAAA, 0xBBBB])
        data = bytes(remb)
        self.assertEqual(data[12:16], b"REMB")
        parsed = rtcp.parse_compound(rtcp.serialize_compound([pli, fir, remb]))
        self.assertEqual(parsed[:2], [pli, fir])
        # 1.5 Mbit/s needs a mantissa of 18 bits: exponent 3, exact
        self.assertEqual(parsed[2], remb)
        odd = rtcp.parse_compound(bytes(Remb(1, 123_456_789)))[0].bitrate
        self.assertLessEqual(odd, 123_456_789)
        self.assertGreater(odd, 123_456_789 * 0.999)

    def test_unknown_kept_raw(self):
        app = bytes.fromhex("85cc0003" "00000001" "6e616d65" "01020304")
        xr = bytes.fromhex("80cf0002" "00000001" "04000000")
        afb = bytes.fromhex("8fce0003" "00000001" "00000000" "41424344")  # AFB, not REMB
        sli = bytes.fromhex("82ce0003" "00000001" "00000002" "12345678")
        data = app + xr + afb + sli
        parsed = rtcp.parse_compound(data)
        self.assertEqual([type(p) for p in parsed], [RawRtcp] * 4)
        self.assertEqual((parsed[0].packet_type, parsed[0].count), (204, 5))
        self.assertEqual(rtcp.serialize_compound(parsed), data)

    def test_padding(self):
        data = bytes.fromhex("a1ce0003" "00000001" "00000002" "00000004")  # PLI + 4 padding bytes
        self.assertEqual(rtcp.parse_compound(data), [Pli(1, 2)])
        for bad in ("a1ce0003" "00000001" "00000002" "00000000", "a1ce0000"):
            self.assertRaises(RtcpError, rtcp.parse_compound, bytes.fromhex(bad))

    def test_is_rtcp(self):
        self.assertTrue(rtcp.is_rtcp(bytes(Pli(1, 2))))
        self.assertTrue(rtcp.is_rtcp(SR_SDES))
        self.assertFalse(rtcp.is_rtcp(bytes.fromhex("80600001")))  # RTP, PT 96
        self.assertFalse(rtcp.is_rtcp(bytes.fromhex("80e00001")))  # RTP, PT 96 + marker
        self.assertFalse(rtcp.is_rtcp(b"\x80"))


class TransportCCTests(unittest.TestCase):
    def test_pion_vectors(self):
        (p,) = rtcp.parse_compound(TWCC_1)
        self.assertEqual(p, TransportCC(4195875351, 1124282272, 153, 4057090, 23, 1, [(153, 148)]))
        self.assertEqual(p.arrivals(), [(153, 4057090 * 64000 + 37000)])
        (p,) = rtcp.parse_compound(TWCC_6)
        self.assertEqual((p.sender_ssrc, p.media_ssrc, p.base_seq, p.reference_time, p.fb_count),
                         (2608133663, 2473712828, 34108, 6551830, 179))
        self.assertEqual(p.status_count, 9)
        self.assertEqual(p.received, [(34108, 155), (34109, 170), (34110, 106), (34111, 170), (34112, 123),
                                      (34114, 265)])
        self.assertEqual(p.lost(), [34113, 34115, 34116])
        ref = 6551830 * 64000
        self.assertEqual(p.arrivals(), [(34108, ref + 38750), (34109, ref + 81250), (34110, ref + 107750),
                                        (34111, ref + 150250), (34112, ref + 181000), (34114, ref + 247250)])
        (p,) = rtcp.parse_compound(TWCC_4)
        self.assertEqual(p.received, [(4 + i, d) for i, d in enumerate((76, 36, 36, 16, 12, 12, 16))])
        # our encoder picks the same chunks as pion; it pads with zeros as the draft and SRS
        # do, where pion (as libwebrtc) sets the P bit and a count byte
        self.assertEqual(bytes(p), bytes.fromhex("8f") + TWCC_4[1:-3] + bytes(3))
        (p,) = rtcp.parse_compound(TWCC_7)
        self.assertEqual((p.sender_ssrc, p.status_count, p.received), (2596996162, 0, []))
        self.assertEqual(bytes(p), TWCC_7)

    def test_hand_computed_draft_vector(self):
        # draft-holmer-rmcat-transport-wide-cc-extensions-01 section 3.1, by hand: base 100, five
        # packets: 100 after 1 ms (small delta 4), 101 lost, 102 1 ms earlier (large delta -4),
        # 103 after 63.75 ms (small 255), 104 lost; reference time 0x123456 * 64 ms, fb count 7.
        # Symbols 1 0 2 1 0 need a two-bit status vector: 11 01 00 10 01 00 00 = 0xd240.
        wire = bytes.fromhex("8fcd0006" "00000001" "00000002" "0064" "0005" "123456" "07" "d240"
                             "04" "fffc" "ff" "0000")
        fb = TransportCC(1, 2, 100, 0x123456, 7, 5, [(100, 4), (102, -4), (103, 255)])
        self.assertEqual(bytes(fb), wire)
        self.assertEqual(rtcp.parse_compound(wire), [fb])
        self.assertEqual(fb.lost(), [101, 104])
        ref = 0x123456 * 64000
        self.assertEqual(fb.arrivals(), [(100, ref + 1000), (102, ref), (103, ref + 63750)])
        # libwebrtc's form of the same (P bit, count byte) parses to the same packet
        padded = bytes.fromhex("afcd0006") + wire[4:-2] + bytes.fromhex("0002")
        self.assertEqual(rtcp.parse_compound(padded), [fb])

    def test_aiortc_parses_our_feedback(self):
        # aiortc has no transport-cc feedback; its RTCP parser must still take ours (as a generic
        # RTPFB of format 15) without dropping the datagram, whatever the padding.
        from aiortc.rtp import RtcpPacket, RtcpRtpfbPacket

        arrivals = [(i, 1_000_000 + 1500 * i) for i in range(40) if i % 9]
        for fb in rtcp.build_transport_cc(7, 8, arrivals) + [TransportCC(1, 2, 0, 0, 0, 3, [(0, 1)])]:
            data = bytes(fb)
            self.assertEqual(data[0] & 0x20, 0)
            (parsed,) = RtcpPacket.parse(data)
            self.assertIsInstance(parsed, RtcpRtpfbPacket)
            self.assertEqual((parsed.fmt, parsed.ssrc, parsed.media_ssrc), (15, fb.sender_ssrc, fb.media_ssrc))

    def test_reserved_symbol_and_truncation(self):
        # two-bit vector with symbol 3
        body = bytes.fromhex("00000001" "00000002" "0001" "0001" "00000000" "f000")
        self.assertRaises(RtcpError, rtcp.parse_compound, bytes.fromhex("8fcd0005") + body)
        # status count says two packets, one delta byte only (pion's example8)
        bad = bytes.fromhex("afcd0005fa17fa17430 32fa0009900033de80217200394 01".replace(" ", ""))
        self.assertRaises(RtcpError, rtcp.parse_compound, bad)

    def test_round_trip_mixed_symbols(self):
        received = [(65530, 0), (65531, 255), (65533, 256), (65534, -1), (0, 32767), (1, -32768), (22, 5)]
        fb = TransportCC(1, 2, 65530, 0xABCDEF, 9, 40, received)  # ends with 11 lost packets
        self.assertEqual(rtcp.parse_compound(bytes(fb)), [fb])
        self.assertEqual(fb.lost(), [65532, 65535] + list(range(2, 22)) + list(range(23, 34)))
        self.assertRaises(RtcpError, bytes, TransportCC(1, 2, 0, 0, 0, 1, [(0, 40000)]))
        self.assertRaises(RtcpError, bytes, TransportCC(1, 2, 0, 0, 0, 2, [(1, 0), (0, 0)]))  # order
        self.assertRaises(RtcpError, bytes, TransportCC(1, 2, 0, 0, 0, 2, [(2, 0)]))  # past the count
        self.assertRaises(RtcpError, bytes, TransportCC(1, 2, 0, 0, 0, 1 << 16, []))

    def test_parse_cost_bounded_by_bytes(self):
        # 40 bytes claiming 65535 lost packets in nine run-length chunks
        lost = bytes.fromhex("8fcd0009" "00000001" "00000002" "0000ffff" "00000000") + bytes.fromhex("1fff") * 9 + bytes(2)
        (p,) = rtcp.parse_compound(lost)
        self.assertEqual((p.status_count, p.received), (65535, []))
        # the same claiming 65535 received packets: refused before expanding them
        got = bytes.fromhex("8fcd0009" "00000001" "00000002" "0000ffff" "00000000") + bytes.fromhex("3fff") * 9 + bytes(2)
        self.assertRaises(RtcpError, rtcp.parse_compound, got)

    def test_encoder_chunks(self):
        # 14 one-bit symbols fit a one-bit vector; a run of 7+ becomes run-length
        fb = TransportCC(1, 2, 0, 0, 0, 14, [(i, 1) for i in range(14) if not i % 3])
        self.assertEqual(bytes(fb)[20:22], bytes.fromhex("a492"))
        fb = TransportCC(1, 2, 0, 0, 0, 100, [(i, 1) for i in range(100)])
        self.assertEqual(bytes(fb)[20:22], bytes.fromhex("2064"))
        self.assertEqual(len(bytes(fb)), 20 + 2 + 100 + 2)

    def test_build_from_arrivals(self):
        base_us = 1_000_000_000
        arrivals = [(70000, base_us), (70001, base_us + 1000), (70003, base_us + 3000),
                    (70002, base_us + 70000), (70010, base_us + 2000)]  # late and reordered
        (fb,) = rtcp.build_transport_cc(5, 6, arrivals, fb_count=255)
        self.assertEqual((fb.sender_ssrc, fb.media_ssrc, fb.base_seq, fb.fb_count), (5, 6, 70000 & 0xFFFF, 255))
        self.assertEqual(fb.reference_time, base_us // 64000)
        back = rtcp.parse_compound(bytes(fb))[0]
        self.assertEqual(back, fb)
        got = dict(back.arrivals())
        self.assertEqual((back.status_count, len(back.received)), (11, 5))
        self.assertEqual(back.lost(), list(range(70004 & 0xFFFF, 70010 & 0xFFFF)))
        self.assertEqual(sorted(got), sorted(s & 0xFFFF for s, _ in arrivals))
        for seq, t in arrivals:  # 250 us resolution
            self.assertLess(abs(got[seq & 0xFFFF] - t), 250)

    def test_build_splits(self):
        # a jump of more than 8 s in arrival time does not fit a delta
        (a, b) = rtcp.build_transport_cc(1, 2, [(1, 0), (2, 1000), (3, 9_000_000), (4, 9_001_000)], fb_count=7)
        self.assertEqual(([s for s, _ in a.received], [s for s, _ in b.received]), ([1, 2], [3, 4]))
        self.assertEqual((a.status_count, b.status_count), (2, 2))
        self.assertEqual((a.fb_count, b.fb_count), (7, 8))
        self.assertEqual(b.reference_time, 9_000_000 // 64000)
        # a size bound: many packets spread over several feedback messages
        many = [(i, i * 1000) for i in range(3000)]
        fbs = rtcp.build_transport_cc(1, 2, many, max_size=300)
        self.assertGreater(len(fbs), 5)
        self.assertTrue(all(len(bytes(f)) <= 300 for f in fbs))
        seen = [s for f in fbs for s, _ in rtcp.parse_compound(bytes(f))[0].arrivals()]
        self.assertEqual(seen, [i & 0xFFFF for i in range(3000)])
        self.assertEqual(rtcp.build_transport_cc(1, 2, []), [])

    def test_build_from_a_window_start(self):
        # the window starts before the first arrival: the packets in between are reported lost
        (fb,) = rtcp.build_transport_cc(1, 2, [(65537, 64000), (65538, 65000)], first_seq=65533)
        self.assertEqual((fb.base_seq, fb.status_count), (65533, 6))
        self.assertEqual(fb.lost(), [65533, 65534, 65535, 0])
        self.assertEqual(rtcp.parse_compound(bytes(fb))[0].arrivals(), [(1, 64000), (2, 65000)])


class HostileTests(unittest.TestCase):
    def seeds(self):
        return [SR_SDES, TWCC_1, TWCC_6, TWCC_4, bytes(Nack(1, 2, [1, 5, 40])), bytes(Bye([1, 2], b"x")),
                bytes(Remb(1, 5000, [3])), bytes(Fir(1, [(2, 3)])),
                rtcp.serialize_compound([ReceiverReport(1, [ReportBlock(2)]), Pli(1, 2)])]

    def test_mutated(self):
        for i, seed in enumerate(self.seeds()):
            assert_fuzz(self, rtcp.parse_compound, seed, rounds=800, rng_seed=i, error=RtcpError)

    def test_truncated(self):
        for seed in self.seeds():
            for n in range(len(seed)):
                assert_only(self, RtcpError, rtcp.parse_compound, seed[:n])

    def test_random(self):
        rng = random.Random(20)
        for _ in range(3000):
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(60)))
            header = bytes((0x80 | rng.randrange(64), rng.choice((200, 201, 202, 203, 204, 205, 206, 207)),
                            0, len(body) // 4))
            assert_only(self, RtcpError, rtcp.parse_compound, header + body)
