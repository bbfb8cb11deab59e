"""The sans-I/O SRT core with a fake clock: packets, handshake, TSBPD, ACK/NAK, wrap-around, bad input."""

import os
import random
import struct
import subprocess
import sys

from twisted.trial import unittest

import srs_twisted
from srs_twisted.srt import packet as P
from srs_twisted.srt.connection import Closed, ConnectionParams, Delivered, SrtConnection
from srs_twisted.srt.handshake import ListenerSettings, Accepted, Rejected, SrtCaller, SrtListener, address_field
from srs_twisted.srt.streamid import parse_stream_id

MS = 1000
CALLER = ("127.0.0.1", 40000)


class Packets(unittest.TestCase):
    def test_data_round_trip(self):
        pkt = P.DataPacket(0x7FFFFFFF, 5, 123456, 99, b"x" * 10, position=P.PP_SOLO, key=2, rexmit=True)
        raw = bytes(pkt)
        self.assertEqual(raw[:4], b"\x7f\xff\xff\xff")
        self.assertEqual(raw[4], 0xC0 | 0x10 | 0x04)  # PP=11, KK=10, R=1
        self.assertEqual(P.DataPacket.parse(raw), pkt)

    def test_control_header(self):
        raw = bytes(P.ControlPacket(P.ACKACK, 7, 1000, 42))
        self.assertEqual(raw, bytes.fromhex("80060000 00000007 000003e8 0000002a"))
        self.assertEqual(P.parse_datagram(raw).type, P.ACKACK)

    def test_sequence_wrap(self):
        self.assertEqual(P.seq_add(P.SEQ_MASK, 1), 0)
        self.assertEqual(P.seq_diff(0, P.SEQ_MASK), 1)
        self.assertEqual(P.seq_diff(P.SEQ_MASK, 0), -1)
        self.assertTrue(P.seq_lt(P.SEQ_MASK - 3, 2))
        self.assertEqual(P.msg_next(P.MSG_MASK), 1)

    def test_loss_list(self):
        cif = P.encode_loss_list([(5, 5), (P.SEQ_MASK - 1, 2)])
        self.assertEqual(cif, struct.pack(">III", 5, 0x80000000 | (P.SEQ_MASK - 1), 2))
        self.assertEqual(P.decode_loss_list(cif), [(5, 5), (P.SEQ_MASK - 1, 2)])
        for bad in (b"", b"\x80\x00\x00\x01", struct.pack(">II", 0x80000009, 3), b"\x00\x00\x01"):
            self.assertRaises(P.SrtError, P.decode_loss_list, bad)

    def test_sid_word_order(self):
        # libsrt writes the stream id in little-endian 32-bit words: "#!::" -> "::!#"
        self.assertEqual(P.encode_sid("#!::r=a"), b"::!#" + b"\x00a=r")
        self.assertEqual(P.decode_sid(P.encode_sid("#!::r=live/x,m=publish")), "#!::r=live/x,m=publish")
        self.assertRaises(P.SrtError, P.decode_sid, b"abc")
        self.assertRaises(P.SrtError, P.decode_sid, b"\xff\xfe\xfd\xfc")

    def test_handshake_round_trip(self):
        hs = P.Handshake(5, 0, 5, 1234, 1500, 8192, P.HS_CONCLUSION, 77, 0xDEADBEEF, address_field("127.0.0.1"),
                         [P.HsExtension(P.EXT_HSREQ, bytes(P.SrtHs(flags=0x3F, recv_delay=120, send_delay=0))),
                          P.HsExtension(P.EXT_SID, P.encode_sid("live/x"))])
        raw = bytes(hs)
        self.assertEqual(len(raw), 48 + 4 + 12 + 4 + 8)
        self.assertEqual(raw[20:24], b"\xff\xff\xff\xff")
        self.assertEqual(raw[24:28], b"\x00\x00\x00\x4d")
        self.assertEqual(raw[32:36], b"\x01\x00\x00\x7f")  # IPv4 in a little-endian word
        back = P.Handshake.parse(raw)
        self.assertEqual(back, hs)
        self.assertEqual(P.SrtHs.parse(back.find(P.EXT_HSREQ).data).recv_delay, 120)

    def test_ack(self):
        ack = P.Ack(10, 5000, 2500, 8000, 100, 1000, 100000)
        self.assertEqual(P.Ack.parse(bytes(ack)), ack)
        self.assertTrue(P.Ack.parse(b"\x00\x00\x00\x0a").light)


class StreamIds(unittest.TestCase):
    def test_srs_forms(self):
        s = parse_stream_id("#!::r=live/livestream,m=publish")
        self.assertEqual((s.publish, s.vhost, s.app, s.stream, s.param), (True, "", "live", "livestream", ""))
        s = parse_stream_id("#!::h=example.com,r=app/st,m=request,secret=abc,k=v")
        self.assertEqual((s.publish, s.vhost, s.app, s.stream), (False, "example.com", "app", "st"))
        self.assertEqual(s.param, "vhost=example.com&k=v&secret=abc")
        s = parse_stream_id("#!::h=live/livestream?secret=xxx,m=publish")
        self.assertEqual((s.publish, s.app, s.stream, s.param), (True, "live", "livestream", "secret=xxx"))
        s = parse_stream_id("#!::h=srs.srt.com.cn/live/livestream,m=publish")
        self.assertEqual((s.vhost, s.app, s.stream), ("srs.srt.com.cn", "live", "livestream"))
        s = parse_stream_id("#!::r=st", default_app="myapp")
        self.assertEqual((s.app, s.stream, s.publish), ("myapp", "st", False))

    def test_plain_forms(self):
        s = parse_stream_id("app/stream?m=publish&token=1")
        self.assertEqual((s.publish, s.app, s.stream, s.param), (True, "app", "stream", "token=1"))
        s = parse_stream_id("stream", default_app="d")
        self.assertEqual((s.publish, s.app, s.stream), (False, "d", "stream"))
        s = parse_stream_id("")
        self.assertEqual((s.publish, s.app, s.stream), (True, "live", "livestream"))

    def test_bad(self):
        self.assertRaises(ValueError, parse_stream_id, "#!::m=publish")
        self.assertRaises(ValueError, parse_stream_id, "#!::r=a/b,m=push")


def _seeded(seed):
    rng = random.Random(seed)
    return lambda n: bytes(rng.getrandbits(8) for _ in range(n))


class Link:
    """A caller and a listener-side connection joined by lists, with a fake clock (µs)."""

    def __init__(self, test, stream_id="#!::r=live/x,m=publish", settings=None, caller_latency=120):
        self.now = 1_000_000
        self.test = test
        self.listener = SrtListener(settings or ListenerSettings(), secret=b"k" * 32, rand=_seeded(1))
        self.caller = SrtCaller(stream_id, latency_ms=caller_latency, peer_latency_ms=caller_latency,
                                rand=_seeded(2))
        self.server = None
        self.drop_to_server = lambda data: False
        self.drop_to_caller = lambda data: False
        self.caller.start(self.now)
        self.pump()
        test.assertIsNotNone(self.caller.connection, self.caller.error)
        test.assertIsNotNone(self.server)

    @property
    def client(self):
        return self.caller.connection

    def pump(self):
        for _ in range(20):
            moved = False
            out = self.caller.datagrams_to_send() if self.caller.connection is None else \
                self.caller.connection.datagrams_to_send()
            for data in out:
                moved = True
                if self.drop_to_server(data):
                    continue
                if self.server is None:
                    result = self.listener.handshake(data, CALLER, self.now)
                    if isinstance(result, Accepted):
                        self.server = result.connection(self.now)
                        self.caller.datagram_received(result.response, self.now)
                    elif isinstance(result, bytes):
                        self.caller.datagram_received(result, self.now)
                else:
                    self.server.datagram_received(data, self.now)
            if self.server is not None:
                for data in self.server.datagrams_to_send():
                    moved = True
                    if not self.drop_to_caller(data):
                        self.caller.datagram_received(data, self.now)
            if not moved:
                return

    def advance(self, us, step=10 * MS):
        end = self.now + us
        while self.now < end:
            self.now = min(end, self.now + step)
            self.client.tick(self.now)
            self.server.tick(self.now)
            self.pump()


def delivered(conn):
    return [e.payload for e in conn.events() if isinstance(e, Delivered)]


def release_ms(link, payload: bytes, limit: int = 300) -> list:
    """The caller sends ``payload`` now; the ms (after now) at which the server delivers it."""
    t0 = link.now
    link.client.send(payload, t0)
    link.pump()
    times = []
    for i in range(1, limit):
        link.now = t0 + i * MS
        link.server.tick(link.now)
        if payload in delivered(link.server):
            times.append(i)
    return times


class Handshakes(unittest.TestCase):
    def test_induction_is_stateless_and_cookie_checked(self):
        listener = SrtListener(secret=b"s" * 32)
        caller = SrtCaller("live/x", rand=_seeded(3))
        caller.start(0)
        induction = caller.datagrams_to_send()[0]
        answer = listener.handshake(induction, CALLER, 5)
        hs = P.Handshake.parse(P.ControlPacket.parse(answer).cif)
        self.assertEqual((hs.version, hs.extension, hs.req_type), (5, P.SRT_MAGIC, P.HS_INDUCTION))
        self.assertEqual(hs.cookie, listener.cookie(*CALLER, 5))
        self.assertNotEqual(hs.cookie, listener.cookie("127.0.0.2", 40000, 5))
        caller.datagram_received(answer, 10)
        conclusion = caller.datagrams_to_send()[0]
        # from another address the cookie is wrong: dropped without an answer
        self.assertRaises(P.SrtError, listener.handshake, conclusion, ("127.0.0.2", 40000), 10)
        # two minutes later it has expired
        self.assertRaises(P.SrtError, listener.handshake, conclusion, CALLER, 10 + 2 * 60_000_000)
        result = listener.handshake(conclusion, CALLER, 60_000_000 + 20)  # the next minute: still good
        self.assertIsInstance(result, Accepted)
        self.assertEqual(result.stream_id, "live/x")

    def test_latency_negotiation(self):
        link = Link(self, settings=ListenerSettings(recv_latency_ms=120, peer_latency_ms=0), caller_latency=300)
        self.assertEqual(link.server.params.recv_latency_us, 300 * MS)  # the caller asked us for 300
        self.assertEqual(link.server.params.send_latency_us, 300 * MS)
        self.assertEqual(link.client.params.recv_latency_us, 300 * MS)
        link = Link(self, settings=ListenerSettings(recv_latency_ms=500, peer_latency_ms=0), caller_latency=20)
        self.assertEqual(link.server.params.recv_latency_us, 500 * MS)
        self.assertEqual(link.client.params.send_latency_us, 500 * MS)

    def test_mss_is_the_smaller_of_both_sides(self):
        link = Link(self, settings=ListenerSettings(mss=1400))  # the caller offers 1500
        self.assertEqual(link.server.params.mss, 1400)
        self.assertEqual(Link(self).server.params.mss, 1500)

    def test_hsv4_conclusion_rejected(self):
        listener = SrtListener(secret=b"s" * 32)
        hs = P.Handshake(4, 0, 2, 1, 1500, 8192, P.HS_CONCLUSION, 9, listener.cookie(*CALLER, 0))
        result = listener.handshake(bytes(P.ControlPacket(P.HANDSHAKE, cif=bytes(hs))), CALLER, 0)
        self.assertIsInstance(result, Rejected)
        self.assertEqual(result.reason, P.REJ_VERSION)
        self.assertIn("HSv4", result.message)
        back = P.Handshake.parse(P.ControlPacket.parse(result.response).cif)
        self.assertEqual(back.req_type, P.REJECT_BASE + P.REJ_VERSION)

    def test_encrypting_caller_refused_without_passphrase(self):
        listener = SrtListener(secret=b"s" * 32)
        caller = SrtCaller("live/x", rand=_seeded(3), kmreq=(b"\x12" * 16, None))
        caller.start(0)
        caller.datagram_received(listener.handshake(caller.datagrams_to_send()[0], CALLER, 0), 0)
        result = listener.handshake(caller.datagrams_to_send()[0], CALLER, 0)
        self.assertIsInstance(result, Rejected)
        self.assertEqual(result.reason, P.REJ_UNSECURE)
        caller.datagram_received(result.response, 0)
        self.assertEqual(caller.reject_reason, P.REJ_UNSECURE)

    def test_repeated_conclusion_answered_again(self):
        link = Link(self)
        link.server.datagrams_to_send()
        caller = SrtCaller("x", rand=_seeded(2))  # same socket id and isn as the link's caller
        caller.start(link.now)
        caller.datagram_received(link.listener.handshake(caller.datagrams_to_send()[0], CALLER, link.now), link.now)
        conclusion = caller.datagrams_to_send()[0]
        response = link.listener.handshake(conclusion, CALLER, link.now, existing=lambda a, sid: b"again")
        self.assertEqual(response, b"again")

    def test_caller_times_out(self):
        caller = SrtCaller("x", connect_timeout_ms=1000, rand=_seeded(4))
        caller.start(0)
        sent = len(caller.datagrams_to_send())
        for t in range(0, 1_200_000, 50_000):
            caller.tick(t)
            sent += len(caller.datagrams_to_send())
        self.assertEqual(caller.error, "connection timeout")
        self.assertEqual(sent, 4)  # at 0, 250, 500, 750 ms (1 s is the limit)


class DataFlow(unittest.TestCase):
    def test_tsbpd_release_at_timestamp_plus_latency(self):
        link = Link(self)  # latencies: 120 ms both ways
        t0 = link.now
        link.client.send(b"a" * 1316, t0)
        link.pump()
        self.assertEqual(delivered(link.server), [])
        link.advance(110 * MS, step=MS)
        self.assertEqual(delivered(link.server), [])
        link.advance(15 * MS, step=MS)
        got = delivered(link.server)
        self.assertEqual(got, [b"a" * 1316])
        # released within a tick of t0 + 120 ms (the handshake put the peer's zero at its start)
        self.assertEqual(link.server.receiver.delivered, 1)

    def test_release_time_exact(self):
        self.assertEqual(release_ms(Link(self), b"p"), [120])

    def test_loss_is_naked_and_retransmitted(self):
        link = Link(self)
        lose = {3, 4}
        count = {"n": 0}

        def drop(data):
            if data[0] & 0x80:
                return False
            pkt = P.DataPacket.parse(data)
            count["n"] += 1
            return count["n"] in lose and not pkt.rexmit

        link.drop_to_server = drop
        for i in range(8):
            link.client.send(bytes([i]) * 100, link.now)
            link.pump()
            link.advance(5 * MS, step=5 * MS)
        self.assertEqual(link.server.receiver.lost, 2)
        self.assertGreaterEqual(link.server.naks_sent, 1)
        self.assertEqual(link.client.sender.retransmitted, 2)
        link.advance(200 * MS)
        self.assertEqual(delivered(link.server), [bytes([i]) * 100 for i in range(8)])
        self.assertEqual(link.server.receiver.recovered, 2)
        self.assertEqual(link.server.receiver.dropped, 0)

    def test_periodic_nak_until_recovered(self):
        link = Link(self, settings=ListenerSettings(recv_latency_ms=1000))
        state = {"n": 0, "retx_dropped": 0}

        def drop(data):
            if data[0] & 0x80:
                return False
            pkt = P.DataPacket.parse(data)
            state["n"] += 1
            if state["n"] == 2:
                return True
            if pkt.rexmit and state["retx_dropped"] < 2:
                state["retx_dropped"] += 1
                return True
            return False

        link.drop_to_server = drop
        for i in range(3):
            link.client.send(bytes([i]), link.now)
            link.pump()
        link.advance(600 * MS)
        self.assertGreaterEqual(link.server.naks_sent, 3)  # immediate, then periodic ones
        self.assertEqual(link.server.receiver.recovered, 1)
        link.advance(600 * MS)
        self.assertEqual(delivered(link.server), [b"\x00", b"\x01", b"\x02"])

    def test_too_late_drop(self):
        link = Link(self)

        def drop(data):
            return not data[0] & 0x80 and P.DataPacket.parse(data).payload == b"lost"

        link.drop_to_server = drop
        link.client.send(b"one", link.now)
        link.client.send(b"lost", link.now)
        link.client.send(b"three", link.now)
        link.pump()
        link.advance(300 * MS)
        self.assertEqual(delivered(link.server), [b"one", b"three"])
        self.assertEqual(link.server.receiver.dropped, 1)
        self.assertEqual(link.server.receiver.loss, {})

    def test_ack_ackack_rtt_and_buffer_release(self):
        link = Link(self)
        for i in range(50):
            link.client.send(b"z" * 1000, link.now)
        link.pump()
        self.assertEqual(len(link.client.sender.buf), 50)
        link.advance(30 * MS)
        self.assertEqual(len(link.client.sender.buf), 0)  # ACKed
        self.assertGreaterEqual(link.server.acks_sent, 1)
        self.assertGreaterEqual(link.server.rtt.samples, 1)
        self.assertLess(link.server.rtt.rtt, 20 * MS)

    def test_sequence_and_timestamp_wrap(self):
        link = Link(self)
        # move both ends near the 31-bit sequence and 32-bit timestamp wraps
        start_seq = P.SEQ_MASK - 5
        link.client.sender.next = link.client.sender.oldest = start_seq
        link.server.receiver.next = start_seq
        link.server.receiver.last = P.seq_add(start_seq, -1)
        link.client.sender.start -= (1 << 32) - 50 * MS  # its timestamps wrap within 50 ms
        link.server.receiver.peer_start -= (1 << 32) - 50 * MS
        got = []
        for i in range(12):
            link.client.send(bytes([i]), link.now)
            link.pump()
            link.advance(10 * MS)
            got += delivered(link.server)
        link.advance(200 * MS)
        got += delivered(link.server)
        self.assertEqual(got, [bytes([i]) for i in range(12)])
        self.assertEqual(link.server.receiver.next, P.seq_add(start_seq, 12))

    def test_keepalive_and_idle_timeout(self):
        link = Link(self, settings=ListenerSettings(peer_idle_ms=3000))
        link.advance(2500 * MS, step=100 * MS)
        self.assertFalse(link.server.closed)  # keepalives from the caller kept it up
        link.drop_to_server = lambda data: True
        link.advance(3200 * MS, step=100 * MS)
        self.assertEqual([type(e) for e in link.server.events()], [Closed])
        self.assertIn("no datagram", link.server.close_reason)

    def test_shutdown(self):
        link = Link(self)
        link.client.close("bye", link.now)
        link.pump()
        self.assertTrue(link.server.closed)
        self.assertEqual(link.server.close_reason, "the peer shut down")

    def test_peer_clock_drift_moves_the_time_base(self):
        """The caller's clock gains 2 ms a second on ours (2000 ppm): without correcting for it, a
        packet sent after 25 s would be released 50 ms late; the ACKACKs' drift samples move the
        time base (each 1000 samples, when their mean passes 5 ms)."""
        link = Link(self)
        base = link.server.receiver.peer_start
        for _ in range(2500):  # 25 s
            link.client.start -= 20  # the caller's timestamps run 20 µs ahead per 10 ms
            link.client.send(b"p", link.now)
            link.advance(10 * MS)
        delivered(link.server)
        r = link.server.receiver
        self.assertEqual(r.drift_corrections, 2)
        self.assertLess(r.peer_start, base - 20_000)  # moved back: the peer's timestamps are ahead
        self.assertEqual(link.server.stats()["drift_ms"], r.drift_us / 1000)
        times = release_ms(link, b"last")
        self.assertEqual(len(times), 1)
        self.assertLess(times[0], 120 + 30)  # 170 without the correction

    def test_sender_drop_and_dropreq(self):
        link = Link(self)
        link.drop_to_caller = lambda data: True  # no ACKs reach the sender
        link.client.send(b"old", link.now)
        link.advance(1200 * MS, step=50 * MS)
        self.assertEqual(link.client.sender.dropped, 1)
        link.drop_to_caller = lambda data: False
        # a NAK for the dropped packet is answered with a DROPREQ
        nak = P.ControlPacket(P.NAK, 0, 0, link.client.local_id,
                              P.encode_loss_list([(link.client.sender.oldest - 1, link.client.sender.oldest - 1)]))
        link.client.datagram_received(bytes(nak), link.now)
        out = link.client.datagrams_to_send()
        self.assertEqual([P.ControlPacket.parse(d).type for d in out], [P.DROPREQ])


class Pacing(unittest.TestCase):
    """maxbw: the sender's data packets (retransmissions too) leave at most at max_bw bytes/s."""

    def data_out(self, link):
        out = link.server.datagrams_to_send()
        for d in out:
            link.caller.datagram_received(d, link.now)
        return [d for d in out if not d[0] & 0x80]

    def test_data_leaves_at_the_rate(self):
        link = Link(self, "#!::r=live/x,m=request", settings=ListenerSettings(max_bw=133_200))  # 100 packets/s
        t0 = link.now
        for i in range(30):
            link.server.send(bytes((i,)) * 1316, t0)
        self.assertEqual(len(self.data_out(link)), 2)  # the burst: 3000 bytes (two MSS) of tokens
        sent = 2
        for _ in range(10):  # 100 ms
            link.now += 10 * MS
            link.server.tick(link.now)
            sent += len(self.data_out(link))
        self.assertIn(sent, (11, 12))  # 2 + 100 ms at 100 packets/s
        for _ in range(30):
            link.now += 10 * MS
            link.server.tick(link.now)
            sent += len(self.data_out(link))
        self.assertEqual(sent, 30)
        self.assertEqual(link.server.paced, 28)
        link.advance(200 * MS)
        self.assertEqual(delivered(link.client), [bytes((i,)) * 1316 for i in range(30)])  # all, in order

    def test_packets_held_too_long_are_given_up(self):
        link = Link(self, "#!::r=live/x,m=request", settings=ListenerSettings(max_bw=2664))  # 2 packets/s
        for i in range(10):
            link.server.send(bytes((i,)) * 1316, link.now)
        self.data_out(link)
        link.advance(1500 * MS)
        self.assertGreater(link.server.pace_dropped, 0)
        self.assertEqual(link.server.stats()["pace_dropped"], link.server.pace_dropped)
        self.assertEqual(len(link.server._paced), 0)

    def test_relative_to_the_input_rate(self):
        """maxbw 0: unpaced for the first second, then the measured input rate + 25%."""
        link = Link(self, "#!::r=live/x,m=request", settings=ListenerSettings(max_bw_relative=True))
        for _ in range(100):  # 1 s at 100 packets/s: 133 200 bytes/s with headers
            link.server.send(b"x" * 1316, link.now)
            self.assertEqual(len(self.data_out(link)), 1)  # not held
            link.now += 10 * MS
            link.server.tick(link.now)
        self.assertAlmostEqual(link.server.max_bw, 133_200 * 5 // 4, delta=2000)
        for _ in range(30):  # a burst of 30: the bucket (2 MSS, at least 20 ms of the rate) lets 2 go
            link.server.send(b"y" * 1316, link.now)
        self.assertEqual(len(self.data_out(link)), 2)
        sent = 0
        for _ in range(10):
            link.now += 10 * MS
            link.server.tick(link.now)
            sent += len(self.data_out(link))
        self.assertIn(sent, (12, 13))  # 100 ms at 166 500 bytes/s: 12.5 packets of 1332 bytes
        self.assertEqual(link.server.stats()["paced"], 28)

    def test_unpaced_by_default(self):
        link = Link(self, "#!::r=live/x,m=request")
        for i in range(100):
            link.server.send(b"x" * 1316, link.now)
        self.assertEqual(len(self.data_out(link)), 100)
        self.assertNotIn("paced", link.server.stats())


class Hostile(unittest.TestCase):
    def test_random_and_truncated_datagrams(self):
        link = Link(self)
        rng = random.Random(7)
        listener = link.listener
        valid = [bytes(P.DataPacket(link.server.receiver.next, 1, 0, link.server.local_id, b"x" * 100)),
                 bytes(P.ControlPacket(P.ACK, 1, 0, link.server.local_id, bytes(P.Ack(5)))),
                 bytes(P.ControlPacket(P.NAK, 0, 0, link.server.local_id, P.encode_loss_list([(1, 5)]))),
                 bytes(P.ControlPacket(P.DROPREQ, 0, 0, link.server.local_id, b"\x00" * 8))]
        caller = SrtCaller("live/x", rand=_seeded(5))
        caller.start(0)
        valid.append(caller.datagrams_to_send()[0])
        for i in range(3000):
            base = rng.choice(valid)
            kind = i % 3
            if kind == 0:
                data = os.urandom(rng.randrange(0, 200))
            elif kind == 1:
                data = base[:rng.randrange(0, len(base))]
            else:
                data = bytearray(base)
                for _ in range(rng.randrange(1, 6)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
                data = bytes(data)
            if not data:
                continue
            try:
                listener.handshake(data, ("10.0.0.1", 1000 + i), link.now)
            except P.SrtError:
                pass
            link.server.datagram_received(data, link.now)
            link.server.tick(link.now)
        r = link.server.receiver
        self.assertLessEqual(len(r.buf), r.capacity)
        self.assertLessEqual(len(r.loss), r.capacity)
        self.assertGreater(link.server.bad_datagrams, 0)

    def test_far_ahead_packets_are_bounded(self):
        link = Link(self)
        r = link.server.receiver
        far = P.seq_add(r.next, 100_000)
        link.server.datagram_received(bytes(P.DataPacket(far, 1, 0, 1, b"x")), link.now)
        self.assertEqual((r.overflow, len(r.loss), len(r.buf)), (1, 0, 0))

    def test_ack_beyond_sent_is_dropped(self):
        link = Link(self)
        ack = P.ControlPacket(P.ACK, 1, 0, link.client.local_id, bytes(P.Ack(P.seq_add(link.client.sender.next, 9))))
        link.client.datagram_received(bytes(ack), link.now)
        self.assertEqual(link.client.bad_datagrams, 1)


class Purity(unittest.TestCase):
    def test_core_imports_no_twisted(self):
        names = ["srs_twisted.srt.packet", "srs_twisted.srt.connection", "srs_twisted.srt.handshake",
                 "srs_twisted.srt.streamid", "srs_twisted.srt.crypto", "srs_twisted.srt.receiver",
                 "srs_twisted.srt.sender", "srs_twisted.srt.relay"]
        script = ("import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\n"
                  "print(' '.join(m for m in ('twisted', 'socket', 'asyncio') if m in sys.modules))\n")
        root = os.path.dirname(os.path.dirname(os.path.abspath(srs_twisted.__file__)))
        result = subprocess.run([sys.executable, "-c", script] + names, capture_output=True, text=True,
                                env=dict(os.environ, PYTHONPATH=root), cwd=root, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "")
