"""The UDP adapter (SrtUdpProtocol) with a fake clock and transport, driven by the core's caller."""

from twisted.internet import task
from twisted.trial import unittest

from srs_twisted.srt import packet as P
from srs_twisted.srt.handshake import SrtCaller, SrtListener
from srs_twisted.srt.protocol import SrtUdpProtocol

CALLER = ("127.0.0.1", 5000)


class FakeUdp:
    def __init__(self):
        self.sent = []

    def write(self, data, addr):
        self.sent.append((data, addr))


class Session:
    def __init__(self):
        self.payloads = []
        self.reason = None

    def delivered(self, payloads):
        self.payloads += payloads

    def closed(self, reason):
        self.reason = reason


def _rand(seed):
    import random

    rng = random.Random(seed)
    return lambda n: bytes(rng.getrandbits(8) for _ in range(n))


class Adapter(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(1000)
        self.sessions = []
        self.accepted = []

        def on_accept(conn, addr, accepted):
            self.accepted.append((conn, addr, accepted.stream_id))
            session = Session()
            self.sessions.append(session)
            return session

        self.proto = SrtUdpProtocol(self.clock, SrtListener(secret=b"x" * 32, rand=_rand(1)), on_accept,
                                    max_connections=2)
        self.udp = FakeUdp()
        self.proto.transport = self.udp
        self.proto.startProtocol()
        self.addCleanup(self.proto.stopProtocol)

    def now(self):
        return int(self.clock.seconds() * 1_000_000)

    def connect(self, seed=2, addr=CALLER, stream_id="#!::r=live/a,m=publish"):
        caller = SrtCaller(stream_id, rand=_rand(seed))
        caller.start(self.now())
        for _ in range(10):
            for data in (caller.connection or caller).datagrams_to_send():
                self.proto.datagramReceived(data, addr)
            for data, to in self.udp.sent:
                if to == addr:
                    caller.datagram_received(data, self.now())
            self.udp.sent = [(d, a) for d, a in self.udp.sent if a != addr]
            if caller.connection is not None or caller.error:
                break
        return caller

    def test_connect_deliver_and_close(self):
        caller = self.connect()
        self.assertIsNotNone(caller.connection, caller.error)
        self.assertEqual(self.accepted[0][2], "#!::r=live/a,m=publish")
        conn = caller.connection
        conn.send(b"ts" * 100, self.now())
        for data in conn.datagrams_to_send():
            self.proto.datagramReceived(data, CALLER)
        self.clock.advance(0.2)  # TSBPD: 120 ms
        self.assertEqual(self.sessions[0].payloads, [b"ts" * 100])
        # ACKs went back to the caller on the 10 ms timer
        kinds = [P.ControlPacket.parse(d).type for d, _ in self.udp.sent if d[0] & 0x80]
        self.assertIn(P.ACK, kinds)
        conn.close("bye", self.now())
        for data in conn.datagrams_to_send():
            self.proto.datagramReceived(data, CALLER)
        self.assertEqual(self.sessions[0].reason, "the peer shut down")
        self.assertEqual(self.proto.by_id, {})

    def test_datagrams_from_another_address_are_dropped(self):
        caller = self.connect()
        conn = caller.connection
        conn.send(b"x", self.now())
        for data in conn.datagrams_to_send():
            self.proto.datagramReceived(data, ("127.0.0.9", 5000))
        self.clock.advance(0.3)
        self.assertEqual(self.sessions[0].payloads, [])
        self.assertEqual(self.proto.dropped, 1)

    def test_connection_limit_refuses_with_backlog(self):
        self.assertIsNotNone(self.connect(2, ("127.0.0.1", 1)).connection)
        self.assertIsNotNone(self.connect(3, ("127.0.0.1", 2)).connection)
        third = self.connect(4, ("127.0.0.1", 3))
        self.assertIsNone(third.connection)
        self.assertEqual(third.reject_reason, P.REJ_BACKLOG)

    def test_repeated_conclusion_gets_the_same_answer(self):
        caller = SrtCaller("x", rand=_rand(5))
        caller.start(self.now())
        self.proto.datagramReceived(caller.datagrams_to_send()[0], CALLER)
        caller.datagram_received(self.udp.sent.pop()[0], self.now())
        conclusion = caller.datagrams_to_send()[0]
        self.proto.datagramReceived(conclusion, CALLER)
        first = self.udp.sent.pop()[0]
        self.clock.advance(0.25)
        self.proto.datagramReceived(conclusion, CALLER)  # our answer was lost: the caller repeats
        again = self.udp.sent.pop()[0]
        self.assertEqual(again[:8] + again[12:], first[:8] + first[12:])
        # stamped with the time since the connection started: the caller's TSBPD base
        self.assertEqual(P.ControlPacket.parse(again).timestamp - P.ControlPacket.parse(first).timestamp, 250_000)
        self.assertEqual(len(self.accepted), 1)

    def test_idle_peer_is_dropped(self):
        self.connect()
        self.clock.pump([0.5] * 25)  # 12.5 s, no datagram from the caller (idle limit 10 s)
        self.assertIn("no datagram", self.sessions[0].reason)
        self.assertEqual(self.proto.by_id, {})

    def test_garbage_is_dropped_without_answer(self):
        for data in (b"", b"\x00" * 5, b"\x80" + b"\x00" * 15, bytes(range(64))):
            self.proto.datagramReceived(data, CALLER)
        self.assertEqual(self.udp.sent, [])
        self.assertEqual(self.proto.dropped, 4)

    def test_thousands_of_half_open_handshakes_keep_no_state(self):
        for i in range(5000):
            addr = (f"10.{i // 250 % 250}.{i % 250}.1", 1000 + i)
            caller = SrtCaller("x", rand=_rand(100 + i % 7))
            caller.start(self.now())
            self.proto.datagramReceived(caller.datagrams_to_send()[0], addr)
            # and a conclusion with a made-up cookie
            hs = P.Handshake(5, 0, 1, 1, 1500, 8192, P.HS_CONCLUSION, 7, i)
            self.proto.datagramReceived(bytes(P.ControlPacket(P.HANDSHAKE, cif=bytes(hs))), addr)
        self.assertEqual(len(self.udp.sent), 5000)  # one induction answer each, nothing for bad cookies
        self.assertEqual((self.proto.by_id, self.proto.by_peer), ({}, {}))
        self.assertEqual(self.proto.listener.bad_cookies, 5000)
        self.assertEqual(self.proto.dropped, 5000)


class FakeSocket:
    def __init__(self, fail=None):
        self.calls = []
        self.fail = fail

    def sendto(self, data, addr):
        self.calls.append(("sendto", [len(data)]))

    def sendmsg(self, buffers, ancillary, flags, addr):
        import struct

        if self.fail is not None:
            raise OSError(self.fail, "no GSO")
        ((level, kind, size),) = ancillary
        (segment,) = struct.unpack("=H", size)
        data = b"".join(buffers)
        self.calls.append(("gso", [min(segment, len(data) - i) for i in range(0, len(data), segment)]))


class Segmentation(unittest.TestCase):
    def proto(self):
        return SrtUdpProtocol(task.Clock(), SrtListener(secret=b"x" * 32), lambda *a: None)

    def test_runs_of_equal_datagrams_go_in_one_call(self):
        import errno

        proto, sock = self.proto(), FakeSocket()
        out = [b"d" * 1332] * 45 + [b"d" * 500, b"c" * 44, b"d" * 1332, b"d" * 1332]
        proto._write_gso(sock, out, CALLER)
        # 40 per call at most; a shorter last one joins its run; a lone datagram is a plain send
        self.assertEqual(sock.calls, [("gso", [1332] * 40), ("gso", [1332] * 5 + [500]), ("sendto", [44]),
                                      ("gso", [1332, 1332])])
        sock = FakeSocket(fail=errno.EIO)
        proto._write_gso(sock, out, CALLER)
        self.assertFalse(proto.gso)
        self.assertEqual([c[0] for c in sock.calls], ["sendto"] * len(out))
