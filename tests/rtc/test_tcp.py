"""WebRTC over TCP without sockets: the RFC 4571 deframer, the candidates an answer
offers for ``rtc_server.protocol``/``?protocol=``, and RtcTcpProtocol carrying a
session (STUN, DTLS, SRTP) through the same RtcUdpProtocol hub as UDP
(StringTransport, task.Clock)."""

from __future__ import annotations

import random
from types import SimpleNamespace

from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from srs_twisted.codec import stun
from srs_twisted.limits import ConnectionLimitFactory
from srs_twisted.rtc.answer import build_answer, choose_protocol, transport_candidates
from srs_twisted.rtc.connection import RtcConnection
from srs_twisted.rtc.dtls import DtlsContext, HandshakeComplete
from srs_twisted.rtc.protocol import TICK, RtcUdpProtocol
from srs_twisted.rtc.publisher import RtcPublishPeer
from srs_twisted.rtc.srtp import SrtpSession
from srs_twisted.rtc.tcp import (FIRST_FRAME_TIMEOUT, MAX_FRAME, FrameDecoder, FramingError, RtcTcpFactory,
                                 encode_frame)

from tests.rtc.pair import certificate
from tests.codec.sdp_fixtures import CHROMIUM_OFFER
from tests.rtc.test_glue import IDR, PEER_UFRAG, PPS, PWD, SPS, UFRAG, FakeTransport, Source, answer, video_packets


def frame(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


class DeframerTests(unittest.TestCase):
    def test_a_frame_split_anywhere_comes_out_once_whole(self):
        payload = bytes(range(256)) * 3
        wire = frame(payload)
        for cut in (1, 2, 3, 500, len(wire) - 1):
            decoder = FrameDecoder()
            self.assertEqual(decoder.feed(wire[:cut]), [])
            self.assertEqual(decoder.pending, cut)
            self.assertEqual(decoder.feed(wire[cut:]), [payload])
            self.assertEqual(decoder.pending, 0)
        decoder = FrameDecoder()
        out = [f for byte in wire for f in decoder.feed(bytes([byte]))]
        self.assertEqual(out, [payload])

    def test_joined_frames_and_a_trailing_part(self):
        decoder = FrameDecoder()
        a, b, c = b"\x00\x01stun", b"\x16dtls", b"\x80rtp" * 100
        wire = frame(a) + frame(b) + frame(c)
        self.assertEqual(decoder.feed(wire + b"\x00"), [a, b, c])
        self.assertEqual(decoder.pending, 1)
        self.assertEqual(decoder.feed(b"\x02xy"), [b"xy"])
        self.assertEqual(decoder.frames, 4)

    def test_the_largest_frame_passes_and_a_longer_one_is_an_error_for_good(self):
        decoder = FrameDecoder()
        self.assertEqual(decoder.feed(frame(b"\x80" * MAX_FRAME)), [b"\x80" * MAX_FRAME])
        self.assertEqual(MAX_FRAME, 1500)  # SRS's SRS_RTC_TCP_PACKET_MAX
        with self.assertRaisesRegex(FramingError, "frame length 1501 is not in 1..1500"):
            decoder.feed((MAX_FRAME + 1).to_bytes(2, "big"))
        with self.assertRaises(FramingError):
            decoder.feed(frame(b"\x80ok"))  # the stream is lost: no resync
        self.assertEqual(decoder.pending, 0)
        small = FrameDecoder(max_frame=4)
        with self.assertRaises(FramingError):
            small.feed(frame(b"12345"))

    def test_a_zero_length_frame_is_an_error(self):
        with self.assertRaisesRegex(FramingError, "frame length 0"):
            FrameDecoder().feed(b"\x00\x00\x80")

    def test_random_bytes_give_bounded_frames_or_an_error(self):
        rng = random.Random(4571)
        errors = 0
        for _ in range(300):
            decoder = FrameDecoder(max_frame=rng.choice((64, 1500)))
            try:
                for _ in range(rng.randrange(1, 20)):
                    chunk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
                    for out in decoder.feed(chunk):
                        self.assertTrue(1 <= len(out) <= decoder.max_frame)
                    self.assertLessEqual(decoder.pending, decoder.max_frame + 1)
            except FramingError:
                errors += 1
        self.assertGreater(errors, 100)

    def test_encode_frame(self):
        self.assertEqual(encode_frame(b"abc"), b"\x00\x03abc")
        self.assertEqual(FrameDecoder(0xFFFF).feed(encode_frame(b"x" * 0xFFFF)), [b"x" * 0xFFFF])
        for bad in (b"", b"x" * 0x10000):
            with self.assertRaises(FramingError):
                encode_frame(bad)


class CandidateTests(unittest.TestCase):
    ADDRESSES = [("192.168.1.10", None), ("10.0.0.1", 18000)]

    def test_protocol_udp_tcp_all_in_srs_order(self):
        self.assertEqual(transport_candidates(self.ADDRESSES, "udp", 8000, 8001),
                         [("192.168.1.10", 8000, "udp"), ("10.0.0.1", 18000, "udp")])
        self.assertEqual(transport_candidates(self.ADDRESSES, "tcp", 8000, 8001),
                         [("192.168.1.10", 8001, "tcp"), ("10.0.0.1", 18000, "tcp")])
        self.assertEqual(transport_candidates(self.ADDRESSES, "all", 8000, 8001),
                         [("192.168.1.10", 8000, "udp"), ("192.168.1.10", 8001, "tcp"),
                          ("10.0.0.1", 18000, "udp"), ("10.0.0.1", 18000, "tcp")])
        with self.assertRaises(ValueError):
            transport_candidates(self.ADDRESSES, "quic", 8000, 8001)

    def test_the_query_overrides_the_config_within_what_is_served(self):
        self.assertEqual(choose_protocol("udp"), "udp")
        self.assertEqual(choose_protocol("udp", "tcp"), "tcp")
        self.assertEqual(choose_protocol("tcp", "udp"), "udp")
        self.assertEqual(choose_protocol("tcp", "ALL"), "all")
        self.assertEqual(choose_protocol("all", "", tcp_served=False), "udp")  # full.conf: "Ignore"
        self.assertEqual(choose_protocol("tcp", "all", tcp_served=False), "udp")
        with self.assertRaisesRegex(ValueError, "needs WebRTC over TCP"):  # full.conf: "Fail"
            choose_protocol("tcp", tcp_served=False)
        with self.assertRaisesRegex(ValueError, "needs WebRTC over TCP"):
            choose_protocol("udp", "tcp", tcp_served=False)
        with self.assertRaisesRegex(ValueError, "udp, tcp or all, not 'sctp'"):
            choose_protocol("udp", "sctp")

    def test_answer_lines_for_all(self):
        candidates = transport_candidates([("192.168.1.10", None)], "all", 8000, 8443)
        sdp = build_answer(CHROMIUM_OFFER, publish=True, fingerprint="AB:CD", candidates=candidates).sdp
        lines = [line for line in sdp.split("\r\n") if line.startswith("a=candidate")]
        self.assertEqual(lines[:2], [
            "a=candidate:0 1 udp 2130706431 192.168.1.10 8000 typ host generation 0",
            "a=candidate:1 1 tcp 2130706431 192.168.1.10 8443 typ host tcptype passive",
        ])


class TcpSessionTests(unittest.TestCase):
    """A publisher's session carried by one TCP connection: STUN, DTLS and SRTP in frames."""

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(1000)
        self.hub = RtcUdpProtocol(self.clock)
        self.udp = FakeTransport()
        self.hub.transport = self.udp
        self.hub.startProtocol()
        self.addCleanup(self.hub.stopProtocol)
        self.factory = RtcTcpFactory(self.hub, self.clock)
        server_cert, peer_cert = certificate(True, 0), certificate(True, 1)
        self.source = Source()
        self.ended = []

        def on_close(peer, reason):  # what RtcServer.forget does
            self.ended.append(reason)
            self.hub.table.remove(peer.session)
            self.factory.session_ended(peer.session, "session ended")

        conn = RtcConnection(DtlsContext(server_cert), False, [peer_cert.fingerprint])
        self.peer = RtcPublishPeer(answer(), conn, self.source, self.hub.send, on_close, self.clock.seconds())
        self.session = self.hub.add(answer(), self.peer, stun_timeout=5)
        self.client = DtlsContext(peer_cert).endpoint(True, server_cert.fingerprint)
        self.decoders = {}

    def connect(self, port=40000):
        proto = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", port))
        proto.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port)))
        self.decoders[proto] = FrameDecoder(0xFFFF)
        return proto

    def received(self, proto):
        """The frames the server wrote on ``proto`` since the last look."""
        data = proto.transport.value()
        proto.transport.clear()
        return self.decoders[proto].feed(data)

    def check(self, ufrag=UFRAG, pwd=PWD):
        return frame(stun.binding_request(f"{ufrag}:{PEER_UFRAG}", pwd, priority=1, controlling=1,
                                          use_candidate=True))

    def closed(self, proto):
        return proto.transport.disconnecting

    def lose(self, proto):
        proto.connectionLost(None)

    def bind(self, proto):
        proto.dataReceived(self.check())
        (reply,) = self.received(proto)
        message = stun.parse(reply)
        self.assertEqual(message.msg_class, stun.SUCCESS)
        self.assertEqual(message.get(stun.XOR_MAPPED_ADDRESS), ("127.0.0.1", 40000))
        self.assertIs(proto.session, self.session)
        self.assertIs(self.factory.link(self.session), proto)

    def test_publish_over_tcp_frames_reaches_the_source(self):
        proto = self.connect()
        self.bind(proto)
        self.assertEqual(self.udp.written, [])  # nothing on the UDP port
        self.client.start(self.clock.seconds())
        for _ in range(20):
            wire = b"".join(frame(d) for d in self.client.data_to_send())
            for i in range(0, len(wire), 7):  # in odd pieces
                proto.dataReceived(wire[i:i + 7])
            for data in self.received(proto):
                self.client.receive_data(data, self.clock.seconds())
            if self.peer.connection.state == RtcConnection.CONNECTED and self.client.state == "connected":
                break
        done = self.client.next_event()
        self.assertIsInstance(done, HandshakeComplete)
        srtp = SrtpSession.from_handshake(done)
        proto.dataReceived(b"".join(frame(srtp.protect_rtp(d)) for d in video_packets([SPS, PPS, IDR], 1, 0)))
        self.assertEqual([(p.sequence_header, p.keyframe) for p in self.source.packets], [(True, True), (False, True)])
        self.clock.advance(1.0)  # RTCP (receiver report) goes back framed on the connection
        self.assertTrue(self.received(proto))
        self.assertEqual(self.udp.written, [])
        self.assertEqual(self.ended, [])
        self.lose(proto)  # the connection was the session's only address: it ends (SRS expires it)
        self.assertEqual(self.ended, ["its TCP connection closed"])
        self.assertIsNone(self.factory.link(self.session))

    def test_a_session_also_checked_on_udp_goes_on_there_when_its_connection_closes(self):
        udp_peer = ("127.0.0.1", 50000)
        self.hub.datagramReceived(stun.binding_request(f"{UFRAG}:{PEER_UFRAG}", PWD, priority=1, controlling=1),
                                  udp_peer)
        self.assertEqual(self.session.address, udp_peer)
        proto = self.connect()
        self.bind(proto)  # a nominating check: the session now sends on the connection
        self.assertIs(self.session.address[2], proto)
        self.lose(proto)
        self.assertEqual(self.ended, [])
        self.assertEqual(self.session.address, udp_peer)
        self.assertIsNone(self.factory.link(self.session))

    def test_a_first_frame_that_is_not_a_valid_check_closes_only_that_connection(self):
        wrong_password = self.check(pwd="x" * 32)
        unknown = self.check(ufrag="nobody")
        for first in (frame(b"\x16\xfe\xfd" + bytes(20)), frame(b"\x80\x60" + bytes(20)), wrong_password,
                      unknown, frame(b"\x00\x01\x00\x00garbage"), frame(b"\x64junk")):
            proto = self.connect()
            proto.dataReceived(first)
            self.assertTrue(self.closed(proto), first)
            self.assertIsNone(proto.session)
            self.lose(proto)
        self.assertEqual(self.ended, [])
        self.assertIsNone(self.session.address)
        self.bind(self.connect())  # the session still takes a good connection

    def test_bad_lengths_and_garbage_after_binding_close_the_connection_and_end_the_session(self):
        for bad in ((MAX_FRAME + 1).to_bytes(2, "big"), b"\x00\x00", frame(b"\x64junk"),
                    frame(b"\x00\x01\x00\x04" + bytes(16)), self.check(ufrag="other")):
            self.setUp()
            proto = self.connect()
            self.bind(proto)
            proto.dataReceived(bad)
            self.assertTrue(self.closed(proto), bad)
            self.lose(proto)
            self.assertEqual(self.ended, ["its TCP connection closed"], bad)

    def test_a_second_connection_for_the_same_session_is_refused(self):
        first = self.connect()
        self.bind(first)
        second = self.connect(40001)
        second.dataReceived(self.check())
        self.assertTrue(self.closed(second))
        self.assertEqual(self.received(second), [])  # not even a STUN answer
        self.lose(second)
        self.assertIs(self.factory.link(self.session), first)
        self.assertEqual(self.session.address[:2], ("127.0.0.1", 40000))
        self.assertFalse(self.closed(first))

    def test_slowloris_connections_are_closed_by_timers(self):
        idle, partial = self.connect(), self.connect(40001)
        partial.dataReceived(self.check()[:30])
        self.clock.advance(FIRST_FRAME_TIMEOUT - TICK)
        self.assertFalse(self.closed(idle) or self.closed(partial))
        self.clock.advance(TICK)
        self.assertTrue(self.closed(idle) and self.closed(partial))

    def test_a_bound_connection_dripping_half_frames_ends_with_its_session(self):
        bound = self.connect(40002)
        bound.dataReceived(self.check())
        self.assertIs(bound.session, self.session)
        drip = frame(b"\x80" * 1000)
        for i in range(10):
            bound.dataReceived(drip[i:i + 1])
            self.assertFalse(self.closed(bound))
            self.assertEqual(self.ended, [])
            self.clock.advance(0.5)
        self.clock.advance(TICK)
        self.assertEqual(self.ended, ["stun_timeout: no valid traffic"])
        self.assertTrue(self.closed(bound))

    def test_the_session_ending_closes_its_connection(self):
        proto = self.connect()
        self.bind(proto)
        self.hub.remove(self.session, "DELETE by the client")
        self.assertEqual(self.ended, ["DELETE by the client"])
        self.assertTrue(self.closed(proto))
        self.lose(proto)
        self.assertEqual(self.ended, ["DELETE by the client"])

    def test_a_player_registers_its_consumer_as_the_connection_producer(self):
        proto = self.connect()
        self.bind(proto)
        consumer = object()
        self.session.address[2].register_producer(consumer)
        self.assertIs(proto.transport.producer, consumer)
        self.assertTrue(proto.transport.streaming)

    def test_connections_count_against_max_connections(self):
        ctx = SimpleNamespace(connections=0, config=SimpleNamespace(max_connections=1))
        limited = ConnectionLimitFactory(ctx, self.factory, "rtc-tcp port 8000")
        addr = IPv4Address("TCP", "127.0.0.1", 40000)
        first = limited.buildProtocol(addr)
        first.makeConnection(StringTransport(peerAddress=addr))
        self.assertEqual(ctx.connections, 1)
        second = limited.buildProtocol(addr)
        transport = StringTransport(peerAddress=addr)
        second.makeConnection(transport)
        self.assertTrue(transport.disconnecting)  # refused before reading anything
        first.dataReceived(self.check())
        self.assertIs(self.factory.link(self.session), first.wrappedProtocol)
        first.connectionLost(None)
        self.assertEqual(ctx.connections, 0)
