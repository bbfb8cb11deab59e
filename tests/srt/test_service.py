"""The SRT server glue without sockets: SrtServer on a fake clock and transport, the core's
caller publishing MPEG-TS into the live source, a player getting whole TS packets, refusals."""

from twisted.internet import task
from twisted.trial import unittest

from srs_twisted.codec.mpegts import TsMuxer
from srs_twisted.config import load_string
from srs_twisted.context import ServerContext
from srs_twisted.live.packet import AUDIO, VIDEO, MediaPacket
from srs_twisted.policy.build import build_policy
from srs_twisted.srt.connection import Closed, Delivered
from srs_twisted.srt.handshake import SrtCaller
from srs_twisted.srt.service import RECV_TIMEOUT, SrtServer, message_size

from tests.codec.test_avc import AVCC_320x240
from tests.http.test_api import Producer

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

    def test_security_rules_apply_to_srt_clients(self):
        rules = "security { enabled on; deny publish 127.0.0.1; allow play all; }"
        self.ctx = ServerContext(load_string(CONF.replace("srt { enabled on; }", f"srt {{ enabled on; }} {rules}")),
                                 self.clock)
        self.ctx.policy = build_policy(self.ctx)  # the server's chain: security rules first
        self.server.protocol.stopProtocol()
        self.server = SrtServer(self.ctx)
        self.server.protocol.transport = self.udp
        self.server.protocol.startProtocol()
        pub, addr = self.connect("#!::r=live/sec,m=publish")
        self.pump(pub, addr)
        self.assertEqual([type(e) for e in pub.events()], [Closed])  # denied: shut down
        player, addr = self.connect("#!::r=live/sec,m=request", port=5001)
        self.pump(player, addr)
        self.assertEqual(player.events(), [])  # allowed: plays (waits for a publisher)
        self.assertEqual([c.type for c in self.ctx.clients.values()], ["srt-play"])

    def test_second_publisher_and_bad_stream_id_are_shut_down(self):
        self.connect("#!::r=live/b,m=publish")
        second, addr = self.connect("#!::r=live/b,m=publish", port=5002)
        self.pump(second, addr)
        self.assertEqual([type(e) for e in second.events()], [Closed])
        bad, addr = self.connect("#!::m=publish", port=5003)
        self.pump(bad, addr)
        self.assertEqual([type(e) for e in bad.events()], [Closed])
        self.assertEqual([c.type for c in self.ctx.clients.values()], ["srt-publish"])

    def publish_core(self, stream):
        """A publisher that is not SRT (as RTMP): packets straight into the live source."""
        source = self.ctx.registry.fetch_or_create("__defaultVhost__", "live", stream)
        self.ctx.registry.publish(source, Producer())
        source.write(MediaPacket(VIDEO, 0, b"\x17\x00\x00\x00\x00" + AVCC_320x240, codec="h264", keyframe=True,
                                 sequence_header=True))
        source.write(MediaPacket(AUDIO, 0, b"\xaf\x00\x12\x10", codec="aac", sequence_header=True))
        source.write(MediaPacket(VIDEO, 0, b"\x17\x01\x00\x00\x00\x00\x00\x00\x05\x65" + bytes(4), codec="h264",
                                 keyframe=True))
        return source

    def play(self, conn, addr, rounds=40):
        got = b""
        for _ in range(rounds):
            self.pump(conn, addr)
            conn.tick(self.now())
            got += b"".join(e.payload for e in conn.events() if isinstance(e, Delivered))
            self.clock.advance(0.01)
        return got

    def publish_ts(self, stream_id=None, pub=None):
        """An SRT caller publishes ts_payloads(), released by the server's TSBPD."""
        pub, pub_addr = pub or self.connect(stream_id)
        payloads = ts_payloads()
        for payload in payloads:
            pub.send(payload, self.now())
        self.pump(pub, pub_addr)
        self.clock.pump([0.01] * 20)
        self.pump(pub, pub_addr)
        return payloads

    def test_players_get_each_packet_at_once(self):
        source = self.publish_core("rt")
        player, play_addr = self.connect("#!::r=live/rt,m=request", port=5001)
        self.clock.pump([0.01] * 40)
        self.udp.sent = []
        source.write(MediaPacket(AUDIO, 900, b"\xaf\x01" + bytes(100), codec="aac"))
        # no clock advance: not held for mw_latency (350 ms by default)
        data = [d for d, a in self.udp.sent if a == play_addr and not d[0] & 0x80]
        self.assertEqual(len(data), 1)
        self.assertEqual(data[0][16], 0x47)

    def test_srt_publish_is_relayed_byte_for_byte(self):
        """SRT to SRT as SRS: the publisher's own messages, from the latest keyframe, then live."""
        payloads = ts_payloads()
        head, tail = payloads[:-3], payloads[-3:]
        pub, pub_addr = self.connect("#!::r=live/relay,m=publish")
        for payload in head:
            pub.send(payload, self.now())
        self.pump(pub, pub_addr)
        self.clock.pump([0.01] * 20)  # TSBPD at the server
        player, play_addr = self.connect("#!::r=live/relay,m=request", port=5001)
        got = self.play(player, play_addr)
        sent = b"".join(head)
        packets = [sent[i:i + 188] for i in range(0, len(sent), 188)]
        # the latest video packet with the random access indicator (the muxer sets it on keyframes)
        key = max(i for i, p in enumerate(packets) if p[1:3] == b"\x41\x00" and p[3] & 0x20 and p[5] & 0x40)
        self.assertLess(key, len(packets) - 10)
        pat = max(i for i, p in enumerate(packets[:key]) if p[1:3] == b"\x40\x00")
        self.assertEqual(got[:376], packets[pat] + packets[pat + 1])  # the latest PAT and PMT
        self.assertEqual(got[376:], b"".join(packets[key:]))  # unchanged from the keyframe on
        for payload in tail:
            pub.send(payload, self.now())
        self.pump(pub, pub_addr)
        self.assertEqual(self.play(player, play_addr), b"".join(tail))  # then live, message for message
        source = self.ctx.registry.get("__defaultVhost__", "live", "relay")
        self.assertEqual(source._realtime, 0)  # relayed: the stream's other players keep merged writes
        self.assertEqual(source.video_codec, "h264")  # srt_to_rtmp on: the live core has it too
        # the publisher leaves: the player waits on the live core, and plays a remuxed publish next
        self.server.protocol.close(self.server.protocol.by_id[pub.peer_id].conn, "test")
        self.assertEqual(self.server.relays, {})
        self.assertEqual(source._realtime, 1)  # back on the live core: flushed per packet
        self.publish_core("relay")
        got = self.play(player, play_addr)
        self.assertEqual(got[:4], b"\x47\x40\x00\x10")  # PAT of the remuxed stream first
        self.assertIn(b"\x00\x00\x01\x65", got)

    def test_player_waiting_moves_to_the_relay(self):
        player, play_addr = self.connect("#!::r=live/w,m=request", port=5001)
        self.assertEqual(self.play(player, play_addr, 5), b"")
        payloads = self.publish_ts("#!::r=live/w,m=publish")
        self.assertEqual(self.play(player, play_addr), b"".join(payloads))  # exactly what was published
        source = self.ctx.registry.get("__defaultVhost__", "live", "w")
        self.assertEqual(source._realtime, 0)
        self.assertEqual(source.stats.send_bytes, len(b"".join(payloads)))  # counted for the API and metrics

    def test_srt_to_rtmp_off_keeps_the_publish_srt_only(self):
        self.ctx = ServerContext(load_string(CONF.replace("srt { enabled on; }", "srt { enabled on; srt_to_rtmp off; }")
                                             + " srt_server { payloadsize 1000; }"), self.clock)
        self.server.protocol.stopProtocol()
        self.server = SrtServer(self.ctx)
        self.server.protocol.transport = self.udp
        self.server.protocol.startProtocol()
        pub = self.connect("#!::r=live/only,m=publish")
        player, play_addr = self.connect("#!::r=live/only,m=request", port=5001)
        payloads = self.publish_ts(pub=pub)
        source = self.ctx.registry.get("__defaultVhost__", "live", "only")
        self.assertTrue(source.active)  # published (hooks, API, one publisher per stream) ...
        self.assertIsNone(source.video_codec)  # ... but not demuxed into the live core
        self.assertEqual(source.stats.recv_bytes, len(b"".join(payloads)))
        self.assertEqual(self.play(player, play_addr), b"".join(payloads))

    def test_payloadsize_cuts_remuxed_messages(self):
        self.assertEqual(message_size(self.ctx.config.srt_server), 1316)
        conf = load_string(CONF.replace("listen 10080;", "listen 10080; payloadsize 1000;"))
        self.assertEqual(message_size(conf.srt_server), 940)
        conf = load_string(CONF.replace("listen 10080;", "listen 10080; payloadsize 1456; mss 1000;"))
        self.assertEqual(message_size(conf.srt_server), 940)  # what fits the MSS
        self.ctx.config = load_string(CONF.replace("listen 10080;", "listen 10080; payloadsize 564;"))
        source = self.publish_core("small")
        player, play_addr = self.connect("#!::r=live/small,m=request", port=5001)
        self.udp.sent = []
        source.write(MediaPacket(VIDEO, 40, b"\x27\x01\x00\x00\x00\x00\x00\x07\xd1\x41" + bytes(2000), codec="h264"))
        sizes = [len(d) - 16 for d, a in self.udp.sent if a == play_addr and not d[0] & 0x80]
        self.assertEqual(sizes[:-1], [564] * (len(sizes) - 1))
        self.assertGreater(len(sizes), 3)
        self.assertLessEqual(sizes[-1], 564)
