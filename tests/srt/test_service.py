"""The SRT server glue without sockets: SrtServer on a fake clock and transport, the core's
caller publishing MPEG-TS into the live source, a player getting whole TS packets, refusals."""

from twisted.internet import task
from twisted.trial import unittest

from srs_twisted.codec.mpegts import TsMuxer
from srs_twisted.config import load_string
from srs_twisted.context import ServerContext
from srs_twisted.live.packet import AUDIO, VIDEO, MediaPacket
from srs_twisted.srt.connection import Closed, Delivered
from srs_twisted.srt.handshake import SrtCaller
from srs_twisted.srt.service import RECV_TIMEOUT, SrtServer

from tests.codec.test_avc import AVCC_320x240

CONF = "srt_server { enabled on; listen 10080; } vhost __defaultVhost__ { srt { enabled on; } }"


class FakeUdp:
    def __init__(self):
        self.sent = []

    def write(self, data, addr):
        self.sent.append((data, addr))


def ts_payloads():
    """A few seconds of H.264 + AAC as MPEG-TS, cut in 1316-byte messages."""
    mux = TsMuxer(has_video=True, has_audio=True)
    data = mux.pat_pmt()
    data += mux.mux(MediaPacket(VIDEO, 0, b"\x17\x00\x00\x00\x00" + AVCC_320x240, codec="h264", keyframe=True,
                                sequence_header=True))
    data += mux.mux(MediaPacket(AUDIO, 0, b"\xaf\x00\x12\x10", codec="aac", sequence_header=True))
    for i in range(20):
        nal = (b"\x65" if i % 10 == 0 else b"\x41") + bytes(400)
        data += mux.mux(MediaPacket(VIDEO, i * 40, (b"\x17" if i % 10 == 0 else b"\x27") + b"\x01\x00\x00\x00"
                                    + len(nal).to_bytes(4, "big") + nal, codec="h264", keyframe=i % 10 == 0))
        data += mux.mux(MediaPacket(AUDIO, i * 40, b"\xaf\x01" + bytes(100), codec="aac"))
    return [data[i:i + 1316] for i in range(0, len(data), 1316)]


class Glue(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(100)
        self.ctx = ServerContext(load_string(CONF), self.clock)
        self.server = SrtServer(self.ctx)
        self.udp = FakeUdp()
        self.server.protocol.transport = self.udp
        self.server.protocol.startProtocol()
        self.addCleanup(self.server.protocol.stopProtocol)

    def now(self):
        return int(self.clock.seconds() * 1_000_000)

    def connect(self, stream_id, port=5000):
        addr = ("127.0.0.1", port)
        caller = SrtCaller(stream_id)
        caller.start(self.now())
        for _ in range(4):
            for data in caller.datagrams_to_send():
                self.server.protocol.datagramReceived(data, addr)
            for data, to in [x for x in self.udp.sent if x[1] == addr]:
                caller.datagram_received(data, self.now())
            self.udp.sent = [x for x in self.udp.sent if x[1] != addr]
        self.assertIsNotNone(caller.connection, caller.error)
        self.clock.advance(0)  # the policy runs
        return caller.connection, addr

    def pump(self, conn, addr):
        for data in conn.datagrams_to_send():
            self.server.protocol.datagramReceived(data, addr)
        for data, to in [x for x in self.udp.sent if x[1] == addr]:
            conn.datagram_received(data, self.now())
        self.udp.sent = [x for x in self.udp.sent if x[1] != addr]

    def test_publish_feeds_the_source_and_a_player_gets_ts(self):
        pub, pub_addr = self.connect("#!::r=live/s,m=publish,token=t")
        client = next(c for c in self.ctx.clients.values() if c.type == "srt-publish")
        self.assertEqual((client.request.app, client.request.stream, client.request.param), ("live", "s", "?token=t"))
        source = self.ctx.registry.get("__defaultVhost__", "live", "s")
        for payload in ts_payloads():
            pub.send(payload, self.now())
        self.pump(pub, pub_addr)
        self.clock.pump([0.01] * 20)  # TSBPD: 120 ms
        self.pump(pub, pub_addr)
        self.assertTrue(source.active)
        self.assertEqual(source.video_codec, "h264")
        self.assertEqual(source.audio_codec, "aac")
        player, play_addr = self.connect("#!::r=live/s,m=request", port=5001)
        self.assertEqual(next(c for c in self.ctx.clients.values() if c.type == "srt-play").request.stream, "s")
        self.clock.pump([0.01] * 40)  # mw_latency 350 ms, then TSBPD at the player
        got = b""
        for _ in range(50):
            self.pump(player, play_addr)
            player.tick(self.now())
            got += b"".join(e.payload for e in player.events() if isinstance(e, Delivered))
            self.clock.advance(0.01)
        self.assertGreater(len(got), 188 * 10)
        self.assertEqual(len(got) % 188, 0)
        self.assertEqual(got[0], 0x47)
        self.assertEqual(got[188 * 4::188][:5], b"\x47" * 5)

    def test_silent_publisher_is_closed_after_the_recv_timeout(self):
        pub, addr = self.connect("#!::r=live/quiet,m=publish")
        for _ in range(int(RECV_TIMEOUT) + 2):
            self.clock.advance(1.0)
            pub.tick(self.now())
            self.pump(pub, addr)  # keepalives keep SRT up, but no data comes
        self.assertEqual([type(e) for e in pub.events()], [Closed])  # the server's SHUTDOWN
        self.assertEqual(self.ctx.clients, {})
        source = self.ctx.registry.get("__defaultVhost__", "live", "quiet")
        self.assertTrue(source is None or not source.active)

    def test_second_publisher_and_bad_stream_id_are_shut_down(self):
        self.connect("#!::r=live/b,m=publish")
        second, addr = self.connect("#!::r=live/b,m=publish", port=5002)
        self.pump(second, addr)
        self.assertEqual([type(e) for e in second.events()], [Closed])
        bad, addr = self.connect("#!::m=publish", port=5003)
        self.pump(bad, addr)
        self.assertEqual([type(e) for e in bad.events()], [Closed])
        self.assertEqual([c.type for c in self.ctx.clients.values()], ["srt-publish"])

    def test_players_get_each_packet_at_once(self):
        pub, pub_addr = self.connect("#!::r=live/rt,m=publish")
        for payload in ts_payloads():
            pub.send(payload, self.now())
        self.pump(pub, pub_addr)
        self.clock.pump([0.01] * 20)
        player, play_addr = self.connect("#!::r=live/rt,m=request", port=5001)
        self.clock.pump([0.01] * 40)
        self.udp.sent = []
        source = self.ctx.registry.get("__defaultVhost__", "live", "rt")
        source.write(MediaPacket(AUDIO, 900, b"\xaf\x01" + bytes(100), codec="aac"))
        # no clock advance: not held for mw_latency (350 ms by default)
        data = [d for d, a in self.udp.sent if a == play_addr and not d[0] & 0x80]
        self.assertEqual(len(data), 1)
        self.assertEqual(data[0][16], 0x47)
