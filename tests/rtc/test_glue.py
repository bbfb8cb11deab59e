"""The WebRTC glue without sockets: RtcUdpProtocol (fake transport, task.Clock),
RtcConnection in both DTLS roles, and RtcPublishPeer/RtcIngest turning a peer's
SRTP H.264 and Opus into live-core packets, with PLI while a keyframe is needed."""

from __future__ import annotations

import errno
import struct
from types import SimpleNamespace

from twisted.internet import task
from twisted.trial import unittest

from srs_twisted.codec import avc, rtp, stun
from srs_twisted.codec.rtcp import Nack, Pli, ReceiverReport, SenderReport, parse_compound
from srs_twisted.codec.rtp import RtpPacket
from srs_twisted.codec.rtp_h264 import H264Payloader
from srs_twisted.live.packet import AUDIO, VIDEO
from srs_twisted.rtc.answer import Track
from srs_twisted.rtc.connection import Connected, Failed, RtcConnection
from srs_twisted.rtc.dtls import DtlsContext, HandshakeComplete
from srs_twisted.rtc.protocol import TICK, RtcUdpProtocol
from srs_twisted.rtc.publisher import PLI_INTERVAL, RtcIngest, RtcPublishPeer
from srs_twisted.rtc.reorder import ReorderBuffer
from srs_twisted.rtc.srtp import SrtpSession

from tests.codec.test_avc import AVCC_320x240
from tests.rtc.pair import certificate

CONFIG = avc.parse_decoder_config(AVCC_320x240)
SPS, PPS = bytes(CONFIG.sps[0]), bytes(CONFIG.pps[0])
IDR = b"\x65" + bytes(range(200)) * 3
SLICE = b"\x41" + bytes(300)
OPUS = b"\xfc" + bytes(40)  # TOC config 31 (CELT 20 ms), one frame
VIDEO_PT, AUDIO_PT = 102, 111
PEER = ("127.0.0.1", 50000)
UFRAG, PWD, PEER_UFRAG = "ourufrag", "p" * 32, "peer"


class FakeTransport:
    def __init__(self):
        self.written = []

    def write(self, data, addr):
        self.written.append((bytes(data), addr))


class Source:
    def __init__(self):
        self.packets = []
        self.publisher = None

    def write(self, pkt):
        self.packets.append(pkt)


def answer(setup="passive"):
    tracks = [Track("audio", "0", AUDIO_PT, "opus", 48000, 2, None, ("nack",), None, None),
              Track("video", "1", VIDEO_PT, "H264", 90000, None, None, ("nack", "nack pli"), None, None)]
    return SimpleNamespace(local_ufrag=UFRAG, local_pwd=PWD, remote_ufrag=PEER_UFRAG, publish=True, setup=setup,
                           username=f"{UFRAG}:{PEER_UFRAG}", tracks=tracks,
                           track=lambda kind: next(t for t in tracks if t.kind == kind))


def video_packets(nalus, seq, ts, ssrc=0x1234):
    payloads = H264Payloader(max_payload=300).payloads(nalus)
    return [bytes(p) for p in rtp.packetize(payloads, VIDEO_PT, ssrc, seq, ts)]


class IngestTests(unittest.TestCase):
    def test_keyframe_makes_sequence_header_then_frame_with_ms_timestamps(self):
        ingest = RtcIngest(VIDEO_PT, AUDIO_PT, start=100.0)
        out = []
        for data in video_packets([SPS, PPS, IDR], 1, 90000):
            out += ingest.push(RtpPacket.parse(data), 100.5)
        self.assertEqual([(p.kind, p.sequence_header, p.keyframe, p.dts) for p in out],
                         [(VIDEO, True, True, 500), (VIDEO, False, True, 500)])
        self.assertEqual(out[0].payload, b"\x17\x00\x00\x00\x00" + avc.make_decoder_config([SPS], [PPS]))
        self.assertEqual(out[1].payload, b"\x17\x01\x00\x00\x00" + len(IDR).to_bytes(4, "big") + IDR)
        self.assertFalse(ingest.needs_keyframe)
        seq = RtpPacket.parse(video_packets([SPS, PPS, IDR], 1, 90000)[-1]).sequence_number + 1
        later = []
        for data in video_packets([SLICE], seq, 90000 + 9000):  # 100 ms later on the 90 kHz clock
            later += ingest.push(RtpPacket.parse(data), 200.0)
        self.assertEqual([(p.keyframe, p.dts, p.payload[:5]) for p in later], [(False, 600, b"\x27\x01\x00\x00\x00")])

    def test_frames_before_a_keyframe_are_dropped_and_a_keyframe_is_needed(self):
        ingest = RtcIngest(VIDEO_PT, None, start=0.0)
        out = []
        for data in video_packets([SLICE], 1, 0):
            out += ingest.push(RtpPacket.parse(data), 0.0)
        self.assertEqual(out, [])
        self.assertTrue(ingest.needs_keyframe)

    def test_opus_gets_a_head_once_then_frames(self):
        ingest = RtcIngest(None, AUDIO_PT, start=10.0)
        out = []
        for i in range(3):
            packet = RtpPacket(AUDIO_PT, 7 + i, 1000 + 960 * i, 99, False, OPUS)
            out += ingest.push(RtpPacket.parse(bytes(packet)), 10.0)
        self.assertEqual([(p.kind, p.codec, p.sequence_header, p.dts) for p in out],
                         [(AUDIO, "opus", True, 0), (AUDIO, "opus", False, 0), (AUDIO, "opus", False, 20),
                          (AUDIO, "opus", False, 40)])
        self.assertEqual(out[0].payload[:5], b"\x90Opus")
        self.assertEqual(out[1].payload, b"\x91Opus" + OPUS)

    def test_other_payload_types_and_garbage_are_ignored(self):
        ingest = RtcIngest(VIDEO_PT, AUDIO_PT, start=0.0)
        self.assertEqual(ingest.push(RtpPacket(5, 1, 0, 1, True, b"x"), 0.0), [])
        self.assertEqual(ingest.push(RtpPacket(VIDEO_PT, 1, 0, 1, True, b"\x80"), 0.0), [])
        self.assertEqual(ingest.malformed, 1)


class ProtocolTests(unittest.TestCase):
    """A DTLS client peer (as a browser is when we answer passive) publishing through the protocol."""

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(1000)
        self.proto = RtcUdpProtocol(self.clock)
        self.transport = FakeTransport()
        self.proto.transport = self.transport
        self.proto.startProtocol()
        self.addCleanup(self.proto.stopProtocol)
        server_cert, self.peer_cert = certificate(True, 0), certificate(True, 1)
        self.source = Source()
        self.ended = []
        conn = RtcConnection(DtlsContext(server_cert), False, [self.peer_cert.fingerprint])
        self.peer = RtcPublishPeer(answer(), conn, self.source, self.proto.send,
                                   lambda peer, reason: self.ended.append(reason), self.clock.seconds())
        self.session = self.proto.add(answer(), self.peer, stun_timeout=5)
        self.client = DtlsContext(self.peer_cert).endpoint(True, server_cert.fingerprint)

    def check(self):
        request = stun.binding_request(f"{UFRAG}:{PEER_UFRAG}", PWD, priority=1, controlling=1, use_candidate=True)
        self.proto.datagramReceived(request, PEER)

    def from_server(self):
        out, self.transport.written = self.transport.written, []
        self.assertTrue(all(addr == PEER for _, addr in out), out)
        return [data for data, _ in out]

    def handshake(self):
        self.check()
        self.assertEqual(stun.parse(self.from_server()[0]).msg_class, stun.SUCCESS)
        self.client.start(self.clock.seconds())
        for _ in range(20):
            for data in self.client.data_to_send():
                self.proto.datagramReceived(data, PEER)
            for data in self.from_server():
                self.client.receive_data(data, self.clock.seconds())
            if self.peer.connection.state == RtcConnection.CONNECTED and self.client.state == "connected":
                break
        done = self.client.next_event()
        self.assertIsInstance(done, HandshakeComplete)
        return SrtpSession.from_handshake(done)

    def sent(self, srtp, kind):
        """The RTCP packets of ``kind`` the server sent since the last look."""
        return [p for d in self.from_server() for p in parse_compound(srtp.unprotect_rtcp(d)) if isinstance(p, kind)]

    def test_publish_over_srtp_reaches_the_source_and_pli_asks_for_keyframes(self):
        srtp = self.handshake()
        for data in video_packets([SLICE], 1, 0):  # no keyframe yet
            self.proto.datagramReceived(srtp.protect_rtp(data), PEER)
        self.assertEqual(self.source.packets, [])
        self.assertEqual([p.media_ssrc for p in self.sent(srtp, Pli)], [0x1234])
        self.clock.advance(TICK)  # within PLI_INTERVAL: no second PLI
        self.assertEqual(self.sent(srtp, Pli), [])
        self.clock.advance(PLI_INTERVAL)
        self.assertEqual(len(self.sent(srtp, Pli)), 1)
        for data in video_packets([SPS, PPS, IDR], 3, 3000):  # the slice took 1 and 2
            self.proto.datagramReceived(srtp.protect_rtp(data), PEER)
        self.assertEqual([(p.sequence_header, p.keyframe) for p in self.source.packets], [(True, True), (False, True)])
        self.clock.advance(PLI_INTERVAL * 2)
        self.assertEqual(self.sent(srtp, Pli), [])  # a keyframe came: no more PLI
        self.peer.request_keyframe()  # a player joined
        self.clock.advance(TICK)
        self.assertEqual(len(self.sent(srtp, Pli)), 1)

    def test_receiver_reports_tell_the_publisher_its_losses(self):
        srtp = self.handshake()
        key = video_packets([SPS, PPS, IDR], 100, 0)
        for data in key[:1] + key[2:]:  # one lost for good
            self.proto.datagramReceived(srtp.protect_rtp(data), PEER)
        self.proto.datagramReceived(srtp.protect_rtcp(bytes(SenderReport(0x1234, 0x0123456789ABCDEF))), PEER)
        self.clock.advance(0.5)
        reports = self.sent(srtp, ReceiverReport)
        self.assertEqual(len(reports), 1)
        (block,) = reports[0].reports
        self.assertEqual((block.ssrc, block.packets_lost, block.highest_seq, block.lsr),
                         (0x1234, 1, 100 + len(key) - 1, 0x456789AB))
        self.assertEqual(block.fraction_lost, 256 // len(key))
        self.assertGreater(block.dlsr, 0)
        self.clock.advance(0.5)
        self.assertEqual(self.sent(srtp, ReceiverReport), [])  # one per second
        self.clock.advance(0.6)
        self.assertEqual(len(self.sent(srtp, ReceiverReport)), 1)

    def test_a_hole_is_nacked_and_the_retransmission_fills_it(self):
        srtp = self.handshake()
        key = video_packets([SPS, PPS, IDR], 1, 0)
        self.assertGreater(len(key), 2)
        for data in key[:1] + key[2:]:  # the second packet is lost
            self.proto.datagramReceived(srtp.protect_rtp(data), PEER)
        self.assertEqual(self.source.packets, [])  # held behind the hole
        # (a PLI too: no keyframe yet)
        (nack,) = self.sent(srtp, Nack)
        self.assertEqual((nack.media_ssrc, nack.lost), (0x1234, [2]))
        self.proto.datagramReceived(srtp.protect_rtp(key[1]), PEER)  # the retransmission
        self.assertEqual([(p.sequence_header, p.keyframe) for p in self.source.packets], [(True, True), (False, True)])
        self.assertEqual((self.peer.ingest.reorder.recovered, self.peer.ingest.reorder.given_up), (1, 0))

    def test_an_unfilled_hole_is_given_up_after_the_wait(self):
        srtp = self.handshake()
        key = video_packets([SPS, PPS, IDR], 1, 0)
        for data in key[:1] + key[2:]:  # the second packet never comes
            self.proto.datagramReceived(srtp.protect_rtp(data), PEER)
        for _ in range(5):
            self.clock.advance(TICK)  # NACKed again, at most 3 times, then given up
        nacks = self.sent(srtp, Nack)
        self.assertEqual([n.lost for n in nacks], [[2], [2], [2]])
        self.assertEqual(self.peer.ingest.reorder.given_up, 1)
        self.assertEqual(self.source.packets, [])  # the frame is broken: dropped, a keyframe is needed
        self.assertTrue(self.peer.ingest.needs_keyframe)

    def test_encrypt_off_sends_plain_rtcp_and_still_takes_srtp(self):
        self.peer.connection.encrypt = False  # rtc_server.encrypt off (or ?encrypt=false)
        srtp = self.handshake()
        for data in video_packets([SLICE], 1, 0):
            self.proto.datagramReceived(srtp.protect_rtp(data), PEER)
        (pli_datagram,) = self.from_server()
        self.assertEqual([type(p) for p in parse_compound(pli_datagram)], [Pli])  # plain, not SRTCP
        self.assertIsNone(srtp.unprotect_rtcp(pli_datagram))

    def test_forged_rtp_and_unknown_addresses_are_dropped(self):
        srtp = self.handshake()
        data = video_packets([SPS, PPS, IDR], 1, 0)
        self.proto.datagramReceived(data[0], PEER)  # plain RTP: fails SRTP auth
        self.proto.datagramReceived(srtp.protect_rtp(data[0]), ("127.0.0.1", 1))  # not checked
        self.assertEqual(self.source.packets, [])
        self.assertEqual(self.proto.table.stats["unknown_address"], 1)
        self.assertEqual(self.peer.connection.srtp.stats.auth_failures, 1)

    def test_silence_ends_the_session_once(self):
        self.check()
        self.clock.advance(5 + TICK)
        self.assertEqual(self.ended, ["stun_timeout: no valid traffic"])
        self.assertEqual(len(self.proto.table), 0)
        self.clock.advance(10)
        self.assertEqual(len(self.ended), 1)


def handshake(conn, peer):
    conn.start(0.0)
    for _ in range(20):
        for data in conn.data_to_send():
            peer.receive_data(data, 0.0)
        for data in peer.data_to_send():
            conn.receive_dtls(data, 0.0)


class ConnectionTests(unittest.TestCase):
    def test_active_role_starts_the_handshake_and_connects(self):
        ours, theirs = certificate(True, 0), certificate(True, 1)
        conn = RtcConnection(DtlsContext(ours), True, [theirs.fingerprint])
        peer = DtlsContext(theirs).endpoint(False, ours.fingerprint)
        self.assertEqual(conn.data_to_send(), [])
        handshake(conn, peer)
        self.assertIsInstance(conn.next_event(), Connected)
        self.assertEqual(conn.state, RtcConnection.CONNECTED)

    def test_wrong_fingerprint_fails(self):
        ours, theirs, other = certificate(True, 0), certificate(True, 1), certificate(False, 0)
        conn = RtcConnection(DtlsContext(ours), True, [other.fingerprint])
        peer = DtlsContext(theirs).endpoint(False, ours.fingerprint)
        handshake(conn, peer)
        self.assertIsInstance(conn.next_event(), Failed)
        self.assertIsNone(conn.receive_rtp(bytes(20)))


class ReorderTests(unittest.TestCase):
    def packets(self, seqs):
        return [RtpPacket(VIDEO_PT, s, 0, 1, False, b"x") for s in seqs]

    def test_out_of_order_packets_go_on_in_order_across_the_wrap(self):
        buf = ReorderBuffer()
        out = []
        for p in self.packets([65534, 0, 65535, 1, 1, 65534]):
            out += buf.push(p, 0.0)
        self.assertEqual([p.sequence_number for p in out], [65534, 65535, 0, 1])
        self.assertEqual((buf.late, buf.recovered, buf.given_up, buf.nacks(0.0)), (2, 1, 0, []))

    def test_holes_are_nacked_a_bounded_number_of_times_then_given_up(self):
        buf = ReorderBuffer(wait=0.3, renack=0.09, tries=3)
        self.assertEqual([p.sequence_number for p in buf.push(self.packets([10])[0], 0.0)], [10])
        self.assertEqual(buf.push(self.packets([14])[0], 0.0), [])
        self.assertEqual(buf.nacks(0.0), [11, 12, 13])
        self.assertEqual(buf.nacks(0.05), [])
        self.assertEqual(buf.nacks(0.1), [11, 12, 13])
        self.assertEqual([p.sequence_number for p in buf.push(self.packets([11])[0], 0.15)], [11])
        self.assertEqual(buf.nacks(0.2), [12, 13])
        self.assertEqual(buf.nacks(0.3), [])  # three tries each
        self.assertEqual([p.sequence_number for p in buf.release(0.31)], [14])
        self.assertEqual((buf.recovered, buf.given_up, buf.missing), (1, 2, {}))

    def test_held_packets_are_bounded_and_a_jump_is_followed(self):
        buf = ReorderBuffer(wait=10, max_held=4)
        buf.push(self.packets([0])[0], 0.0)
        out = []
        for p in self.packets([2, 3, 4, 5]):
            out += buf.push(p, 0.0)
        self.assertEqual([p.sequence_number for p in out], [2, 3, 4, 5])  # the 4th held packet gave up 1
        self.assertEqual([p.sequence_number for p in buf.push(self.packets([30000])[0], 0.0)], [30000])
        self.assertEqual(len(buf.missing), 0)


class DirectSendTests(unittest.TestCase):
    """With a real udp.Port (it has ``socket``), datagrams go straight to sendto, not through Port.write."""

    def test_sendto_direct_and_a_refused_port_is_dropped(self):
        class Sock:
            def __init__(self):
                self.sent = []
                self.refuse = False

            def sendto(self, data, addr):
                if self.refuse:
                    raise ConnectionRefusedError(111, "refused")
                self.sent.append((data, addr))

        class Port:
            def __init__(self):
                self.socket = Sock()

            def write(self, data, addr):
                raise AssertionError("Port.write must not be used when the socket is there")

        proto = RtcUdpProtocol(task.Clock())
        proto.transport = Port()

        class Session:
            address = PEER

        proto.send(Session(), [b"\x80a", b"\x80bc"])
        self.assertEqual(proto.transport.socket.sent, [(b"\x80a", PEER), (b"\x80bc", PEER)])
        self.assertEqual(proto.sent_bytes, 5)
        proto.transport.socket.refuse = True
        proto.send(Session(), [b"\x80d"])  # no exception: the client's port is gone
        self.assertEqual(len(proto.transport.socket.sent), 2)


class GsoTests(unittest.TestCase):
    """A batch of datagrams goes out as runs of one size (the last may be shorter), one sendmsg each with
    UDP_SEGMENT; singles with sendto; a kernel refusing GSO turns it off and nothing is lost."""

    class Sock:
        def __init__(self, refuse=None):
            self.calls = []
            self.refuse = refuse

        def sendto(self, data, addr):
            self.calls.append(("sendto", data, None))

        def sendmsg(self, buffers, ancillary, flags, addr):
            if self.refuse:
                raise OSError(self.refuse, "no GSO here")
            (level, kind, value), = ancillary
            self.calls.append(("gso", b"".join(buffers), (level, kind, struct.unpack("=H", value)[0])))

    def send(self, sock, datagrams):
        proto = RtcUdpProtocol(task.Clock())
        proto.transport = type("Port", (), {"socket": sock, "write": None})()

        class Session:
            address = PEER

        proto.send(Session(), datagrams)
        return proto

    def test_runs(self):
        sock = self.Sock()
        small, full, tail, audio = b"s" * 50, [bytes([65 + i]) * 1222 for i in range(5)], b"t" * 700, b"a" * 160
        proto = self.send(sock, [small, *full, tail, audio])
        self.assertEqual(sock.calls, [("sendto", small, None), ("gso", b"".join(full) + tail, (17, 103, 1222)),
                                      ("sendto", audio, None)])
        self.assertEqual(proto.sent_bytes, 50 + 5 * 1222 + 700 + 160)

    def test_a_run_is_at_most_64_segments(self):
        sock = self.Sock()
        self.send(sock, [b"x" * 100] * 70)
        self.assertEqual([(kind, len(data)) for kind, data, _ in sock.calls], [("gso", 6400), ("gso", 600)])

    def test_refused_gso_falls_back_to_one_by_one(self):
        sock = self.Sock(refuse=errno.EINVAL)
        datagrams = [b"y" * 300] * 3 + [b"z" * 10]
        proto = self.send(sock, datagrams)
        self.assertFalse(proto.gso)
        self.assertEqual([data for _, data, _ in sock.calls], datagrams)
        self.assertEqual(proto.sent_bytes, 910)
