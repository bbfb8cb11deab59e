"""Transport-wide congestion control feedback to a WebRTC publisher: the
recorder (srs_twisted.rtc.twcc) and the publisher session sending its feedback."""

from __future__ import annotations

from twisted.internet import task
from twisted.trial import unittest

from srs_twisted.codec import rtp
from srs_twisted.codec.rtcp import ReceiverReport, TransportCC, parse_compound
from srs_twisted.rtc.answer import Track
from srs_twisted.rtc.connection import RtcConnection
from srs_twisted.rtc.dtls import DtlsContext
from srs_twisted.rtc.protocol import TICK, RtcUdpProtocol
from srs_twisted.rtc.publisher import OUR_SSRC, RtcPublishPeer
from srs_twisted.rtc.twcc import RESTART, TwccRecorder, transport_sequence

from tests.rtc import test_glue as glue
from tests.rtc.pair import certificate

TWCC_ID = 3


def packet(seq, twcc=None, ext_id=TWCC_ID, more=(), pt=glue.AUDIO_PT, ssrc=0x55):
    """An RTP packet carrying transport-wide number ``twcc`` (and other extensions ``more``)."""
    p = rtp.RtpPacket(pt, seq, 960 * seq, ssrc, False, glue.OPUS)
    items = list(more) + ([(ext_id, (twcc & 0xFFFF).to_bytes(2, "big"))] if twcc is not None else [])
    if items:
        p.set_extensions(items)
    return bytes(p)


class TransportSequenceTests(unittest.TestCase):
    def test_one_byte_form_as_aiortc_writes_it(self):
        from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
        from aiortc.rtp import HeaderExtensionsMap
        from aiortc.rtp import RtpPacket as AiortcPacket

        ext_map = HeaderExtensionsMap()
        ext_map.configure(RTCRtpParameters(headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
            RTCRtpHeaderExtensionParameters(id=TWCC_ID, uri=rtp.TRANSPORT_CC_URI)]))
        p = AiortcPacket(payload_type=111, sequence_number=7, timestamp=1, ssrc=9, payload=b"x")
        p.extensions.mid = "0"
        p.extensions.transport_sequence_number = 0xABCD
        data = p.serialize(ext_map)
        self.assertEqual(data[12:14], b"\xbe\xde")
        self.assertEqual(transport_sequence(data, TWCC_ID), 0xABCD)
        self.assertIsNone(transport_sequence(data, 4))

    def test_two_byte_form_and_bad_headers(self):
        data = packet(1, 0x1234, ext_id=20, more=[(2, b"")])  # an empty element forces the two-byte form
        self.assertEqual(data[12:14], b"\x10\x00")
        self.assertEqual(transport_sequence(data, 20), 0x1234)
        self.assertIsNone(transport_sequence(packet(1), TWCC_ID))  # no extension
        self.assertIsNone(transport_sequence(packet(1, 5, more=[(4, b"abc")])[:18], TWCC_ID))  # truncated
        wrong_length = packet(1, more=[(TWCC_ID, b"\x01\x02\x03")])
        self.assertIsNone(transport_sequence(wrong_length, TWCC_ID))
        self.assertIsNone(transport_sequence(b"\x00" * 40, TWCC_ID))  # not RTP version 2


class RecorderTests(unittest.TestCase):
    def feedback(self, recorder):
        packets = recorder.feedback()
        for fb in packets:  # what goes on the wire parses back the same
            self.assertEqual(parse_compound(bytes(fb)), [fb])
        return packets

    def test_arrivals_become_feedback_with_250us_deltas(self):
        recorder = TwccRecorder(TWCC_ID, 1, 0x55)
        t0 = 1000.0
        for i, (seq, dt) in enumerate([(10, 0.0), (11, 0.001), (13, 0.0035), (12, 0.004)]):
            self.assertTrue(recorder.on_rtp(packet(i, seq), t0 + dt))
        self.assertFalse(recorder.on_rtp(packet(9), t0))  # no transport-wide number
        (fb,) = self.feedback(recorder)
        self.assertEqual((fb.sender_ssrc, fb.media_ssrc, fb.base_seq, fb.status_count, fb.fb_count),
                         (1, 0x55, 10, 4, 0))
        self.assertEqual(fb.reference_time, int(t0 * 1e6) // 64000)
        got = dict(fb.arrivals())
        for seq, dt in [(10, 0.0), (11, 0.001), (13, 0.0035), (12, 0.004)]:
            self.assertLess(abs(got[seq] - (t0 + dt) * 1e6), 250)
        self.assertEqual(self.feedback(recorder), [])  # nothing new
        recorder.record(15, t0 + 0.1)
        (fb,) = self.feedback(recorder)
        # the next window starts after the last reported number: 14 is reported lost
        self.assertEqual((fb.base_seq, fb.status_count, fb.fb_count, fb.lost()), (14, 2, 1, [14]))

    def test_sequence_wrap_late_and_duplicate_packets(self):
        recorder = TwccRecorder(TWCC_ID, 1)
        for seq in (65533, 65534, 65535, 0, 1, 0):
            recorder.record(seq, 5.0)
        (fb,) = self.feedback(recorder)
        self.assertEqual((fb.base_seq, fb.status_count, len(fb.received)), (65533, 5, 5))
        recorder.record(65535, 5.1)  # already reported
        recorder.record(3, 5.1)
        (fb,) = self.feedback(recorder)
        self.assertEqual((fb.base_seq, fb.status_count, fb.lost()), (2, 2, [2]))
        self.assertEqual((recorder.duplicates, recorder.late, recorder.received), (1, 1, 6))

    def test_a_restarted_count_starts_a_new_window(self):
        recorder = TwccRecorder(TWCC_ID, 1)
        recorder.record(30000, 1.0)
        self.feedback(recorder)
        recorder.record(30000 - RESTART - 1, 1.1)
        (fb,) = self.feedback(recorder)
        self.assertEqual((fb.base_seq, fb.status_count, recorder.restarts), (30000 - RESTART - 1, 1, 1))
        recorder.record(40000, 1.2)  # a jump forward: not thousands of losses
        (fb,) = self.feedback(recorder)
        self.assertEqual((fb.base_seq, fb.status_count), (40000, 1))

    def test_memory_is_bounded_and_large_windows_split(self):
        recorder = TwccRecorder(TWCC_ID, 1, max_pending=100)
        for seq in range(150):
            recorder.record(seq, 2.0 + seq * 0.02)
            if seq == 98:
                self.assertFalse(recorder.full)
        self.assertTrue(recorder.full)
        self.assertEqual((recorder.received, recorder.overflow), (100, 50))
        packets = self.feedback(recorder)
        self.assertEqual([s for fb in packets for s, _ in fb.received], list(range(100)))
        self.assertEqual([fb.fb_count for fb in packets], list(range(len(packets))))
        self.assertEqual(recorder.fb_count, len(packets))
        # 8 s apart does not fit a 16-bit delta: a second packet
        recorder = TwccRecorder(TWCC_ID, 1)
        recorder.record(1, 0.0)
        recorder.record(2, 9.0)
        self.assertEqual(len(self.feedback(recorder)), 2)


def answer(twcc_id):
    a = glue.answer()
    a.tracks = [Track("audio", "0", glue.AUDIO_PT, "opus", 48000, 2, None, ("nack",), twcc_id, None),
                Track("video", "1", glue.VIDEO_PT, "H264", 90000, None, None, ("nack", "nack pli", "transport-cc"),
                      twcc_id, 0x1234)]
    a.track = lambda kind: next(t for t in a.tracks if t.kind == kind)
    return a


def udp_protocol(case):
    """Give a test case ``clock`` (task.Clock), ``transport`` (fake) and ``proto``, a started
    RtcUdpProtocol on them, stopped at cleanup."""
    case.clock = task.Clock()
    case.clock.advance(1000)
    case.proto = RtcUdpProtocol(case.clock)
    case.transport = glue.FakeTransport()
    case.proto.transport = case.transport
    case.proto.startProtocol()
    case.addCleanup(case.proto.stopProtocol)


class PublisherTests(unittest.TestCase):
    """A publisher session on the UDP protocol (fake transport, task.Clock) sending TWCC feedback."""

    def start(self, twcc_id):
        udp_protocol(self)
        server_cert, peer_cert = certificate(True, 0), certificate(True, 1)
        conn = RtcConnection(DtlsContext(server_cert), False, [peer_cert.fingerprint])
        self.peer = RtcPublishPeer(answer(twcc_id), conn, glue.Source(), self.proto.send,
                                   lambda peer, reason: None, self.clock.seconds())
        self.proto.add(answer(twcc_id), self.peer, stun_timeout=30)
        # the handshake of test_glue's ProtocolTests, on this protocol
        helper = glue.ProtocolTests("test_silence_ends_the_session_once")
        helper.clock, helper.proto, helper.transport, helper.peer = self.clock, self.proto, self.transport, self.peer
        helper.client = DtlsContext(peer_cert).endpoint(True, server_cert.fingerprint)
        self.srtp = helper.handshake()
        self.helper = helper

    def rtcp_sent(self):
        """Each datagram the server sent since the last look, as its RTCP packets."""
        return [parse_compound(self.srtp.unprotect_rtcp(d)) for d in self.helper.from_server()]

    def test_feedback_each_tick_one_per_datagram(self):
        self.start(TWCC_ID)
        arrivals = {}
        for i in range(20):
            twcc = 65530 + i  # across the wrap
            if i in (4, 5):
                continue  # lost
            self.proto.datagramReceived(self.srtp.protect_rtp(packet(100 + i, twcc)), glue.PEER)
            arrivals[twcc & 0xFFFF] = self.clock.seconds()
            self.clock.advance(0.002)
        self.clock.advance(TICK)
        datagrams = [d for d in self.rtcp_sent() if any(isinstance(p, TransportCC) for p in d)]
        self.assertEqual([len(d) for d in datagrams], [1])  # alone in its datagram
        (fb,) = datagrams[0]
        self.assertEqual((fb.sender_ssrc, fb.media_ssrc, fb.base_seq, fb.status_count, fb.fb_count),
                         (OUR_SSRC, 0x1234, 65530, 20, 0))
        self.assertEqual(fb.lost(), [(65530 + 4) & 0xFFFF, (65530 + 5) & 0xFFFF])
        for seq, t in fb.arrivals():
            self.assertLess(abs(t - arrivals[seq] * 1e6), 250)
        self.proto.datagramReceived(self.srtp.protect_rtp(packet(200, 14)), glue.PEER)
        self.clock.advance(TICK)
        (fb,) = [p for d in self.rtcp_sent() for p in d if isinstance(p, TransportCC)]
        self.assertEqual((fb.base_seq, fb.status_count, fb.fb_count), (14, 1, 1))
        self.clock.advance(TICK)  # nothing arrived: no feedback
        self.assertEqual([p for d in self.rtcp_sent() for p in d if isinstance(p, TransportCC)], [])
        self.assertIn("twcc=2", self.peer.summary())
        # a packet that fails SRTP (a duplicate) still counts as arrived, as in SRS
        data = self.srtp.protect_rtp(packet(300, 15))
        self.proto.datagramReceived(data, glue.PEER)
        self.proto.datagramReceived(data, glue.PEER)
        self.assertEqual((self.peer.twcc.received, self.peer.twcc.duplicates), (20, 1))

    def test_no_feedback_while_the_circuit_breaker_is_critical(self):
        from srs_twisted.breaker import CircuitBreaker
        from srs_twisted.config.model import CircuitBreakerConfig

        self.start(TWCC_ID)
        self.peer.breaker = breaker = CircuitBreaker(CircuitBreakerConfig())
        breaker.sample(96)
        for i in range(5):
            self.proto.datagramReceived(self.srtp.protect_rtp(packet(100 + i, i)), glue.PEER)
        self.clock.advance(TICK)
        self.assertEqual([p for d in self.rtcp_sent() for p in d if isinstance(p, TransportCC)], [])
        breaker.sample(10)  # high: feedback again, for what arrives from now on
        self.proto.datagramReceived(self.srtp.protect_rtp(packet(105, 5)), glue.PEER)
        self.clock.advance(TICK)
        (fb,) = [p for d in self.rtcp_sent() for p in d if isinstance(p, TransportCC)]
        self.assertEqual((fb.base_seq, fb.status_count), (5, 1))

    def test_no_feedback_unless_negotiated(self):
        self.start(None)
        self.assertIsNone(self.peer.twcc)
        for i in range(5):
            self.proto.datagramReceived(self.srtp.protect_rtp(packet(100 + i, i)), glue.PEER)
        self.clock.advance(1.1)
        sent = [p for d in self.rtcp_sent() for p in d]
        self.assertEqual([type(p) for p in sent], [ReceiverReport])
        self.assertNotIn("twcc", self.peer.summary())
