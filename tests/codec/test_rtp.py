"""Tests for srs_twisted.codec.rtp: RTP packets, header extensions, fan-out."""

import random
import struct

from twisted.trial import unittest

from srs_twisted.codec import rtp
from srs_twisted.codec.rtp import FanOut, RtpError, RtpPacket, SeqUnwrapper

from .bits import assert_fuzz

# A packet written by hand from RFC 3550 5.1: V=2, X=1, CC=2, M=1, PT=96,
# seq 0x1234, ts 0x01020304, SSRC 0xdeadbeef, CSRCs 1 and 2, a one-byte
# extension block (id 1 = two bytes 0xabcd, id 2 = one byte 0x7f), payload "media".
HAND = bytes.fromhex(
    "92e0123401020304deadbeef"
    "0000000100000002"
    "bede0002" "11abcd20" "7f000000"
) + b"media"


def assert_only(testcase, error, parse, data):
    try:
        parse(data)
    except error:
        pass
    except Exception as e:  # noqa: BLE001
        testcase.fail("%r leaked from %s(%s)" % (e, parse.__name__, bytes(data).hex()))


class ParseTests(unittest.TestCase):
    def test_hand_made_packet(self):
        p = RtpPacket.parse(HAND)
        self.assertEqual((p.payload_type, p.sequence_number, p.timestamp, p.ssrc, p.marker),
                         (96, 0x1234, 0x01020304, 0xDEADBEEF, True))
        self.assertEqual(p.csrcs, [1, 2])
        self.assertEqual(p.extension_profile, rtp.EXT_ONE_BYTE)
        self.assertEqual(p.extensions(), [(1, b"\xab\xcd"), (2, b"\x7f")])
        self.assertEqual(bytes(p.payload), b"media")
        self.assertIsInstance(p.payload, memoryview)
        self.assertEqual(p.transport_sequence(1), 0xABCD)
        self.assertIsNone(p.transport_sequence(5))
        self.assertEqual(bytes(p), HAND)

    def test_minimal_packet_round_trip(self):
        p = RtpPacket(111, 65535, 0xFFFFFFFF, 7, False, b"\x01\x02")
        data = bytes(p)
        self.assertEqual(data, bytes.fromhex("806fffffffffffff00000007") + b"\x01\x02")
        self.assertEqual(RtpPacket.parse(data), p)

    def test_padding(self):
        p = RtpPacket(96, 1, 2, 3, False, b"abc", padding=5)
        data = bytes(p)
        self.assertEqual(data[0] & 0x20, 0x20)
        self.assertEqual(data[-5:], b"\x00\x00\x00\x00\x05")
        back = RtpPacket.parse(data)
        self.assertEqual((bytes(back.payload), back.padding), (b"abc", 5))
        self.assertEqual(bytes(back), data)

    def test_bad_padding_refused(self):
        data = bytearray(bytes(RtpPacket(96, 1, 2, 3, False, b"abc")))
        data[0] |= 0x20
        data[-1] = 0
        self.assertRaises(RtpError, RtpPacket.parse, bytes(data))
        data[-1] = 4  # more than the 3 payload bytes
        self.assertRaises(RtpError, RtpPacket.parse, bytes(data))

    def test_version_and_truncation(self):
        self.assertRaises(RtpError, RtpPacket.parse, b"\x40" + HAND[1:])
        for n in range(len(HAND) - 5):  # cut anywhere in the header
            self.assertRaises(RtpError, RtpPacket.parse, HAND[:n])
        # cutting the payload is not detectable: shorter payload, same header
        self.assertEqual(bytes(RtpPacket.parse(HAND[:-2]).payload), b"med")

    def test_two_byte_extensions(self):
        p = RtpPacket(96, 1, 2, 3, payload=b"x")
        p.set_extensions([(20, b"hello"), (3, b"")])  # id > 14 and an empty value
        self.assertEqual(p.extension_profile, rtp.EXT_TWO_BYTE)
        self.assertEqual(p.extension_data, b"\x14\x05hello\x03\x00" + bytes(3))
        back = RtpPacket.parse(bytes(p))
        self.assertEqual(back.extensions(), [(20, b"hello"), (3, b"")])
        # the low four "appbits" of the profile do not matter
        self.assertEqual(rtp.parse_extensions(0x100F, b"\x01\x01z\x00"), [(1, b"z")])

    def test_one_byte_extension_rules(self):
        # padding bytes between elements, id 15 stops the parse
        self.assertEqual(rtp.parse_extensions(0xBEDE, b"\x00\x10a\x00\xf0\x20b\x00"), [(1, b"a")])
        # an unknown profile has no elements
        self.assertEqual(rtp.parse_extensions(0x1234, b"\x10a\x00\x00"), [])
        self.assertRaises(RtpError, rtp.parse_extensions, 0xBEDE, b"\x13ab")
        self.assertRaises(RtpError, rtp.parse_extensions, 0x1000, b"\x05")
        self.assertRaises(RtpError, rtp.parse_extensions, 0x1000, b"\x05\x04ab")

    def test_pack_extensions_choice(self):
        self.assertEqual(rtp.pack_extensions([]), (0, b""))
        self.assertEqual(rtp.pack_extensions([(5, b"\x00\x07")]), (0xBEDE, b"\x51\x00\x07\x00"))
        self.assertEqual(rtp.pack_extensions([(1, bytes(17))])[0], rtp.EXT_TWO_BYTE)
        self.assertRaises(RtpError, rtp.pack_extensions, [(0, b"a")])
        self.assertRaises(RtpError, rtp.pack_extensions, [(1, bytes(256))])

    def test_twcc_extension_block(self):
        block = rtp.twcc_extension_block(3, 0x10203)
        self.assertEqual(block, bytes.fromhex("bede0001" "31020300"))
        self.assertEqual(block, rtp.extension_block([(3, b"\x02\x03")]))
        block = rtp.twcc_extension_block(20, 7)
        self.assertEqual(rtp.parse_extensions(*struct.unpack(">H", block[:2]), block[4:]), [(20, b"\x00\x07")])
        self.assertRaises(RtpError, rtp.twcc_extension_block, 0, 1)
        p = RtpPacket.parse(bytes(RtpPacket(96, payload=b"x")))
        p.set_extensions([(9, b"\x00")])
        self.assertRaises(RtpError, p.transport_sequence, 9)

    def test_header_checks(self):
        self.assertRaises(RtpError, bytes, RtpPacket(csrcs=list(range(16))))
        self.assertRaises(RtpError, bytes, RtpPacket(extension_profile=0xBEDE, extension_data=b"abc"))

    def test_packetize(self):
        packets = rtp.packetize([b"a", b"b", b"c"], 102, 9, 65535, 1000)
        self.assertEqual([p.sequence_number for p in packets], [65535, 0, 1])
        self.assertEqual([p.marker for p in packets], [False, False, True])
        self.assertEqual({(p.timestamp, p.ssrc, p.payload_type) for p in packets}, {(1000, 9, 102)})
        self.assertFalse(rtp.packetize([b"a"], 111, 1, 1, 1, marker=False)[0].marker)


class HostileTests(unittest.TestCase):
    def parse_all(self, data):
        p = RtpPacket.parse(data)
        p.extensions()
        bytes(p)

    def test_mutated(self):
        assert_fuzz(self, self.parse_all, HAND, rounds=3000, error=RtpError)
        two = RtpPacket(96, 1, 2, 3, payload=b"xyz")
        two.set_extensions([(20, b"hello"), (30, b"a")])
        assert_fuzz(self, self.parse_all, bytes(two), rounds=2000, rng_seed=1, error=RtpError)

    def test_random_and_truncated(self):
        rng = random.Random(10)
        for _ in range(3000):
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
            if data:  # mostly valid first bytes, to get past the version check
                data = bytes((0x80 | (data[0] & 0x3F),)) + data[1:]
            assert_only(self, RtpError, self.parse_all, data)
        for n in range(len(HAND)):
            assert_only(self, RtpError, self.parse_all, HAND[:n])


class SeqTests(unittest.TestCase):
    def test_arithmetic(self):
        self.assertEqual(rtp.seq_add(65535, 1), 0)
        self.assertEqual(rtp.seq_add(0, -1), 65535)
        self.assertEqual(rtp.seq_diff(0, 65535), 1)
        self.assertEqual(rtp.seq_diff(65535, 0), -1)
        self.assertEqual(rtp.seq_diff(5, 5), 0)
        self.assertEqual(rtp.seq_diff(32767, 0), 32767)
        self.assertEqual(rtp.seq_diff(32768, 0), -32768)
        self.assertTrue(rtp.seq_newer(3, 65530))
        self.assertFalse(rtp.seq_newer(65530, 3))
        self.assertFalse(rtp.seq_newer(3, 3))
        self.assertEqual(rtp.ts_diff(10, 0xFFFFFFF0), 26)
        self.assertEqual(rtp.ts_diff(0xFFFFFFF0, 10), -26)

    def test_unwrapper(self):
        u = SeqUnwrapper()
        self.assertIsNone(u.last)
        got = [u.unwrap(s) for s in (65530, 65535, 0, 3, 65534, 10, 30000, 60000, 1000, 40000)]
        self.assertEqual(got, [65530, 65535, 65536, 65539, 65534, 65546, 95536, 125536, 132072, 105536])
        self.assertEqual(u.last, 132072)  # a jump of half the space or more counts as backwards
        u8 = SeqUnwrapper(bits=8)
        self.assertEqual([u8.unwrap(s) for s in (250, 5, 200)], [250, 261, 200])


class FanOutTests(unittest.TestCase):
    def setUp(self):
        self.src = RtpPacket.parse(HAND)
        self.fan = FanOut(self.src)

    def test_rewrite_keeps_everything_else(self):
        out = self.fan.packet(0x11223344, 102, 65535)
        p = RtpPacket.parse(out)
        self.assertEqual((p.ssrc, p.payload_type, p.sequence_number), (0x11223344, 102, 65535))
        self.assertEqual((p.timestamp, p.marker, p.csrcs), (0x01020304, True, [1, 2]))
        self.assertEqual(p.extensions(), [(1, b"\xab\xcd"), (2, b"\x7f")])
        self.assertEqual(bytes(p.payload), b"media")
        # only bytes 1..3 and 8..11 differ from the source
        diff = [i for i, (a, b) in enumerate(zip(out, HAND)) if a != b]
        self.assertTrue(set(diff) <= {1, 2, 3, 8, 9, 10, 11}, diff)
        self.assertEqual(self.fan.header(0x11223344, 102, 65535) + b"media", out)

    def test_shared_payload(self):
        self.assertIs(self.fan.payload, self.src.payload)
        a = self.fan.packet(1, 96, 1)
        b = self.fan.packet(2, 97, 2)
        self.assertEqual(a[-5:], b[-5:])

    def test_per_player_extension_and_timestamp(self):
        block = rtp.twcc_extension_block(5, 4242)
        p = RtpPacket.parse(self.fan.packet(1, 96, 7, timestamp=99, extension=block))
        self.assertEqual((p.timestamp, p.csrcs, p.extensions()), (99, [1, 2], [(5, struct.pack(">H", 4242))]))
        self.assertEqual(p.transport_sequence(5), 4242)
        p = RtpPacket.parse(self.fan.packet(1, 96, 7, extension=b""))
        self.assertEqual((p.extension_profile, p.csrcs, bytes(p.payload)), (0, [1, 2], b"media"))
        # a source without extension can gain one
        plain = FanOut(RtpPacket(96, 1, 2, 3, True, b"abc", padding=4))
        p = RtpPacket.parse(plain.packet(8, 100, 9, extension=block))
        self.assertEqual((p.transport_sequence(5), bytes(p.payload), p.padding, p.marker), (4242, b"abc", 4, True))

    def test_sequence_and_payload_type_masked(self):
        p = RtpPacket.parse(self.fan.packet(1, 96 + 128, 65536 + 5))
        self.assertEqual((p.payload_type, p.sequence_number, p.marker), (96, 5, True))
