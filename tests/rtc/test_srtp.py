"""SRTP sessions from DTLS keys (srs_twisted/rtc/srtp.py): what one side protects, the other unprotects."""

import random
import struct

from twisted.trial import unittest

from srs_twisted.rtc.dtls import SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_SHA1_80, HandshakeComplete
from srs_twisted.rtc.srtp import PlainSession, SrtpError, SrtpSession, session_for
from tests.rtc.pair import Link


def rtp(seq, ssrc=0x11223344, payload=b"\x65" * 100, pt=96):
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, seq * 3000, ssrc) + payload


def rtcp_rr(ssrc=0x11223344):
    # A receiver report with no report blocks: V=2, PT=201, length 1 (two words).
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)


def handshake(profiles=(SRTP_AES128_CM_SHA1_80,)):
    link = Link(server_context={"srtp_profiles": list(profiles)})
    link.run()
    return link.only("client", HandshakeComplete), link.only("server", HandshakeComplete)


class RoundTripTests(unittest.TestCase):
    def check_profile(self, profile, tag):
        c, s = handshake((profile,))
        client, server = session_for(c), session_for(s)
        self.assertEqual((client.profile, server.profile), (profile, profile))
        for sender, receiver in ((client, server), (server, client)):
            for seq in range(1, 50):
                packet = rtp(seq)
                protected = sender.protect_rtp(packet)
                self.assertEqual(len(protected), len(packet) + tag)
                self.assertEqual(protected[:12], packet[:12])  # the header stays readable
                self.assertNotEqual(protected[12 : len(packet)], packet[12:])  # the payload does not
                self.assertEqual(receiver.unprotect_rtp(protected), packet)
            report = rtcp_rr()
            protected = sender.protect_rtcp(report)
            self.assertEqual(len(protected), len(report) + 4 + tag)  # E flag + SRTCP index, then the tag
            self.assertEqual(receiver.unprotect_rtcp(protected), report)
            self.assertEqual(receiver.stats.dropped, 0)

    def test_aes_cm_sha1_80(self):
        self.check_profile(SRTP_AES128_CM_SHA1_80, 10)

    def test_aead_aes_128_gcm(self):
        self.check_profile(SRTP_AEAD_AES_128_GCM, 16)

    def test_own_packets_are_not_readable_with_own_key(self):
        c, s = handshake()
        client = session_for(c)
        self.assertIsNone(client.unprotect_rtp(client.protect_rtp(rtp(1))))
        self.assertEqual(client.stats.auth_failures, 1)


class InboundFailureTests(unittest.TestCase):
    def setUp(self):
        c, s = handshake()
        self.client, self.server = session_for(c), session_for(s)

    def test_replay_is_counted_not_raised(self):
        protected = self.client.protect_rtp(rtp(7))
        self.assertEqual(self.server.unprotect_rtp(protected), rtp(7))
        self.assertIsNone(self.server.unprotect_rtp(protected))
        report = self.client.protect_rtcp(rtcp_rr())
        self.assertIsNotNone(self.server.unprotect_rtcp(report))
        self.assertIsNone(self.server.unprotect_rtcp(report))
        self.assertEqual((self.server.stats.replays, self.server.stats.auth_failures), (2, 0))

    def test_tampering_is_counted_not_raised(self):
        protected = bytearray(self.client.protect_rtp(rtp(8)))
        protected[20] ^= 1
        self.assertIsNone(self.server.unprotect_rtp(bytes(protected)))
        report = bytearray(self.client.protect_rtcp(rtcp_rr()))
        report[-1] ^= 1
        self.assertIsNone(self.server.unprotect_rtcp(bytes(report)))
        self.assertEqual((self.server.stats.auth_failures, self.server.stats.replays), (2, 0))
        # The genuine packet still passes afterwards.
        self.assertEqual(self.server.unprotect_rtp(self.client.protect_rtp(rtp(9))), rtp(9))

    def test_random_and_short_input(self):
        rng = random.Random(99)
        for n in range(3000):
            packet = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
            if n % 2:
                packet = bytes([0x80 | (packet[0] & 0x3F) if packet else 0x80]) + packet[1:]
            self.assertIsNone(self.server.unprotect_rtp(packet))
            self.assertIsNone(self.server.unprotect_rtcp(packet))
        self.assertEqual(self.server.stats.dropped, 6000)
        self.assertGreater(self.server.stats.malformed, 0)
        self.assertEqual(self.server.unprotect_rtp(self.client.protect_rtp(rtp(1))), rtp(1))

    def test_a_nacked_packet_arriving_late_is_accepted(self):
        # Packet 10 is lost; 1,000 packets later the sender protects it again (NACK) and it arrives.
        lost = rtp(10)
        self.client.protect_rtp(lost)
        for seq in range(11, 1011):
            self.assertIsNotNone(self.server.unprotect_rtp(self.client.protect_rtp(rtp(seq))))
        self.assertEqual(self.server.unprotect_rtp(self.client.protect_rtp(lost)), lost)
        # libsrtp's default window (128) would have refused it as too old.
        c, s = handshake()
        narrow = SrtpSession.from_handshake(s, replay_window=128)
        sender = session_for(c)
        for seq in range(11, 1011):
            narrow.unprotect_rtp(sender.protect_rtp(rtp(seq)))
        self.assertIsNone(narrow.unprotect_rtp(sender.protect_rtp(lost)))
        self.assertEqual(narrow.stats.replays, 1)


class ProtectErrorTests(unittest.TestCase):
    def test_one_exception_type(self):
        c, _ = handshake()
        session = session_for(c)
        with self.assertRaises(SrtpError):
            session.protect_rtp(rtp(1, payload=bytes(1400)))  # beyond libsrtp's 1500-byte buffer with the tag
        with self.assertRaises(SrtpError):
            SrtpSession(SRTP_AES128_CM_SHA1_80, c.local_key[:20], c.remote_key)
        with self.assertRaises(SrtpError):
            SrtpSession("SRTP_NULL_NULL", c.local_key, c.remote_key)
        with self.assertRaises(SrtpError):
            SrtpSession(SRTP_AEAD_AES_128_GCM, c.local_key, c.remote_key)  # 30 bytes: a CM key, not GCM's 28
        self.assertTrue(issubclass(SrtpError, ValueError))


class PlainTests(unittest.TestCase):
    def test_encrypt_off_sends_plain_and_still_reads_srtp(self):
        # SRS's semi-security transport: the peer still encrypts, we do not.
        c, s = handshake()
        server = session_for(s, encrypt=False)
        client = session_for(c)
        self.assertFalse(server.encrypted)
        self.assertEqual(server.protect_rtp(rtp(1)), rtp(1))
        self.assertEqual(server.protect_rtcp(rtcp_rr()), rtcp_rr())
        self.assertEqual(server.unprotect_rtp(client.protect_rtp(rtp(2))), rtp(2))
        self.assertIsNone(server.unprotect_rtp(rtp(3)))  # plain RTP from the peer is not authentic

    def test_plain_session_passes_through(self):
        plain = PlainSession()
        for packet in (rtp(1), rtcp_rr()):
            self.assertEqual(plain.protect_rtp(packet), packet)
            self.assertEqual(plain.protect_rtcp(packet), packet)
            self.assertEqual(plain.unprotect_rtcp(packet), packet)
        self.assertEqual(plain.unprotect_rtp(rtp(1)), rtp(1))
        self.assertIsNone(plain.unprotect_rtp(b"\x80" * 11))
        self.assertIsNone(plain.unprotect_rtcp(b"\x80" * 7))
        self.assertEqual(plain.stats.malformed, 2)


class ProtectorTests(unittest.TestCase):
    """rtp_protector(): the send path's (header, payload) form gives protect_rtp's bytes."""

    def check(self, profile):
        c, s = handshake((profile,))
        fast, slow, receiver = session_for(c), session_for(c), session_for(s)
        protect = fast.rtp_protector()
        for seq in range(1, 40):
            packet = rtp(seq, payload=bytes(random.randrange(256) for _ in range(seq * 30)))
            # A memoryview payload, as the player passes its shared records.
            datagram = protect(packet[:12], memoryview(packet)[12:])
            self.assertIsInstance(datagram, bytes)
            self.assertEqual(datagram, slow.protect_rtp(packet))
            self.assertEqual(receiver.unprotect_rtp(datagram), packet)

    def test_aes_cm_sha1_80(self):
        self.check(SRTP_AES128_CM_SHA1_80)

    def test_aead_aes_128_gcm(self):
        self.check(SRTP_AEAD_AES_128_GCM)

    def test_too_long_raises_srtp_error(self):
        c, _ = handshake()
        protect = session_for(c).rtp_protector()
        packet = rtp(1, payload=bytes(1480))
        with self.assertRaises(SrtpError):
            protect(packet[:12], packet[12:])
        self.assertEqual(len(protect(rtp(2)[:12], rtp(2)[12:])), len(rtp(2)) + 10)  # still usable

    def test_plain(self):
        c, _ = handshake()
        packet = rtp(5)
        for session in (session_for(c, encrypt=False), PlainSession()):
            self.assertEqual(session.rtp_protector()(packet[:12], memoryview(packet)[12:]), packet)
