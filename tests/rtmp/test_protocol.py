"""The RTMP server adapter driven by the RTMP client session, in memory:
StringTransport and task.Clock, no sockets, no sleeps."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel
from twisted.trial import unittest

from srs_twisted import config as srs_config
from srs_twisted import log as srs_log
from srs_twisted.codec import amf0
from srs_twisted.context import ServerContext
from srs_twisted.errors import Denied
from srs_twisted.live.packet import AUDIO, DATA, VIDEO, MediaPacket
from srs_twisted.rtmp import client_session as cs
from srs_twisted.rtmp import messages as m
from srs_twisted.rtmp import session as s
from srs_twisted.rtmp.chunk import ChunkReader, encode_message
from srs_twisted.rtmp.protocol import RtmpServerFactory

AVC_SH = bytes.fromhex("1700000000014d401effe1001967") + bytes(20)
AAC_SH = bytes.fromhex("af001210")


def video(dts, key=False, sh=False):
    if sh:
        return MediaPacket(VIDEO, dts, AVC_SH, codec="h264", keyframe=True, sequence_header=True)
    head = b"\x17\x01\x00\x00\x00" if key else b"\x27\x01\x00\x00\x00"
    return MediaPacket(VIDEO, dts, head + bytes(200), codec="h264", keyframe=key)


def audio(dts, sh=False):
    return MediaPacket(AUDIO, dts, AAC_SH if sh else b"\xaf\x01" + bytes(30), codec="aac", sequence_header=sh)


class Conn:
    """One client session wired to one server protocol instance."""

    def __init__(self, factory, session, port):
        self.session = session
        self.proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", port))
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        self.proto.makeConnection(self.transport)
        self.events = []

    def pump(self, rounds=20):
        for _ in range(rounds):
            moved = False
            out = self.session.data_to_send()
            if out and not self.transport.disconnecting:
                self.proto.dataReceived(out)
                moved = True
            back = self.transport.value()
            if back:
                self.transport.clear()
                self.session.receive_data(back)
                self.events.extend(self.session.events())
                moved = True
            if not moved:
                break

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]

    def close(self):
        self.proto.connectionLost(None)


class ServerTestCase(unittest.TestCase):
    conf = "vhost __defaultVhost__ { play { mw_latency 0; } }"

    def setUp(self):
        self.clock = Clock()
        self.ctx = ServerContext(srs_config.load_string(self.conf), self.clock)
        self.factory = RtmpServerFactory(self.ctx)
        self.port = 40000

    def connect(self, stream="s", mode="play", app="live", tc_url=None):
        self.port += 1
        tc_url = tc_url or f"rtmp://127.0.0.1/{app}"
        conn = Conn(self.factory, cs.ClientSession(tc_url, stream, mode, random_bytes=lambda n: bytes(n)), self.port)
        conn.pump()
        return conn

    def publisher(self, stream="s"):
        pub = self.connect(stream, "publish")
        self.assertEqual(len(pub.of(cs.Started)), 1, pub.events)
        return pub

    def handshaken(self):
        sess = cs.ClientSession("rtmp://127.0.0.1/live", "s", "play", random_bytes=lambda n: bytes(n))
        self.port += 1
        conn = Conn(self.factory, sess, self.port)
        # handshake only: C0C1, then S0S1S2 back, then C2
        conn.proto.dataReceived(sess.data_to_send())
        sess.receive_data(conn.transport.value())
        conn.transport.clear()
        c2 = sess.data_to_send()
        return conn, c2[:1537 - 1]

    def send(self, pub, *packets):
        for p in packets:
            pub.session.send_packet(p)
        pub.pump()


class PublishPlayTests(ServerTestCase):
    def test_publish_then_play_gets_headers_gop_and_live(self):
        pub = self.publisher()
        meta = MediaPacket(DATA, 0, amf0.encode_many("onMetaData", amf0.ECMAArray({"width": 320.0})))
        self.send(pub, meta, video(0, sh=True), audio(0, sh=True), video(0, key=True), audio(10), video(40))
        src = self.ctx.registry.get("__defaultVhost__", "live", "s")
        self.assertTrue(src.active)
        self.assertEqual(self.ctx.clients[pub.proto.client.id].type, "fmle-publish")

        player = self.connect("s", "play")
        codes = [e.code for e in player.of(cs.StatusReceived)]
        self.assertEqual(codes, ["NetStream.Play.Reset", "NetStream.Play.Start"])
        self.send(pub, video(80))
        player.pump()
        got = [e.packet for e in player.of(cs.PacketReceived)]
        kinds = [(p.kind, p.sequence_header, p.keyframe) for p in got]
        self.assertEqual(kinds[:3], [(DATA, False, False), (VIDEO, True, True), (AUDIO, True, False)])
        self.assertEqual([p.dts for p in got[3:]], [0, 10, 40, 80])
        self.assertEqual(got[1].payload, AVC_SH)
        self.assertIn(b"srs-twisted", got[0].payload)  # onMetaData kept, server added

    def test_publisher_and_player_are_filed_under_their_stream(self):
        """The API's per-stream view reads ctx.stream_clients: an RTMP client
        joins it when it publishes or plays (its stream is known only then)
        and leaves it when it disconnects."""
        pub = self.publisher()
        player = self.connect("s", "play")
        other = self.connect("t", "play")
        mine = self.ctx.stream_clients("__defaultVhost__", "live", "s")
        self.assertEqual(list(mine), [pub.proto.client.id, player.proto.client.id])
        self.assertEqual(list(self.ctx.stream_clients("__defaultVhost__", "live", "t")), [other.proto.client.id])
        player.close()
        self.assertEqual(list(self.ctx.stream_clients("__defaultVhost__", "live", "s")), [pub.proto.client.id])
        pub.close()
        self.assertEqual(dict(self.ctx.stream_clients("__defaultVhost__", "live", "s")), {})

    def test_enhanced_rtmp_av1_vp9_opus_pass_through(self):
        from srs_twisted.codec.opus import make_opus_head

        av1c = bytes([0x81, 0x08, 0x0C, 0x00])  # AV1 main profile, level 4.0
        vpcc = bytes([1, 0, 0, 0]) + bytes([0, 31, 0x80, 2, 2, 2, 0, 0])  # VP9 profile 0, level 3.1
        cases = [
            ("av1", b"av01", av1c, "AV1"),
            ("vp9", b"vp09", vpcc, "VP9"),
        ]
        for codec, fourcc, record, name in cases:
            stream = f"enh-{codec}"
            pub = self.publisher(stream)
            opus_sh = b"\x90Opus" + make_opus_head(2, 48000)
            packets = [
                MediaPacket(VIDEO, 0, b"\x90" + fourcc + record),  # key, SequenceStart
                MediaPacket(AUDIO, 0, opus_sh),
                MediaPacket(VIDEO, 0, b"\x93" + fourcc + bytes(50)),  # key, CodedFramesX
                MediaPacket(AUDIO, 20, b"\x91Opus" + bytes(40)),
                MediaPacket(VIDEO, 40, b"\xa3" + fourcc + bytes(30)),  # inter, CodedFramesX
            ]
            self.send(pub, *packets)
            src = self.ctx.registry.get("__defaultVhost__", "live", stream)
            self.assertEqual(src.stats.video["codec"], name)
            self.assertEqual(src.stats.audio, {"codec": "Opus", "sample_rate": 48000, "channel": 2, "profile": "Other"})
            player = self.connect(stream, "play")
            got = [e.packet for e in player.of(cs.PacketReceived)]
            self.assertEqual([p.payload for p in got], [p.payload for p in packets])
            self.assertEqual([(p.codec, p.keyframe, p.sequence_header) for p in got[:3]],
                             [(codec, True, True), ("opus", False, True), (codec, True, False)])

    def test_second_publisher_refused_first_keeps_going(self):
        pub = self.publisher()
        second = self.connect("s", "publish")
        self.assertEqual(second.of(cs.Started), [])
        rejected = second.of(cs.Rejected)
        self.assertEqual(rejected[0].description, "Stream is busy.")
        self.assertTrue(second.transport.disconnecting)
        self.assertFalse(pub.transport.disconnecting)

    def test_unpublish_keeps_player_and_releases_when_all_gone(self):
        pub = self.publisher()
        self.send(pub, video(0, sh=True), video(0, key=True))
        player = self.connect("s", "play")
        statuses = len(player.of(cs.StatusReceived))
        pub.session.close()
        pub.pump()
        player.pump()
        src = self.ctx.registry.get("__defaultVhost__", "live", "s")
        self.assertFalse(src.active)
        self.assertFalse(player.transport.disconnecting)
        # as SRS: the player hears nothing (no NetStream.Play.UnpublishNotify), it just waits
        self.assertEqual(len(player.of(cs.StatusReceived)), statuses)
        pub.close()
        player.close()
        self.assertIsNone(self.ctx.registry.get("__defaultVhost__", "live", "s"))
        self.assertEqual(self.ctx.clients, {})

    def test_vhost_and_param_from_tcurl_and_stream(self):
        pub = self.connect("s?token=abc", "publish", tc_url="rtmp://127.0.0.1/live?vhost=foo.com")
        self.assertEqual(len(pub.of(cs.Started)), 1)
        req = pub.proto.client.request
        # vhost foo.com is not configured: it falls back to the default vhost
        self.assertEqual((req.vhost, req.app, req.stream), ("__defaultVhost__", "live", "s"))
        self.assertEqual(req.param, "?vhost=foo.com&token=abc")

    def test_paused_transport_pauses_player(self):
        pub = self.publisher()
        self.send(pub, video(0, sh=True), video(0, key=True))
        player = self.connect("s", "play")
        player.pump()
        consumer = player.transport.producer
        self.assertIs(consumer, player.proto.consumer)
        consumer.pauseProducing()
        before = len(player.of(cs.PacketReceived))
        self.send(pub, video(40), video(80))
        player.pump()
        self.assertEqual(len(player.of(cs.PacketReceived)), before)
        consumer.resumeProducing()
        player.pump()
        self.assertEqual(len(player.of(cs.PacketReceived)), before + 2)


class DenyPublishAndPlay:
    """A policy that refuses publish and play (as a failing hook would)."""

    def __init__(self):
        self.seen = []

    def on_connect(self, client):
        return defer.succeed(None)

    def on_publish(self, client):
        self.seen.append(("publish", client.source.id))
        return defer.fail(Denied("hook said no"))

    on_play = on_publish

    def on_unpublish(self, client):
        self.seen.append("unpublish")

    on_stop = on_close = on_unpublish


class PolicyTests(ServerTestCase):
    def test_denied_publish_never_starts_and_releases_the_source(self):
        self.ctx.policy = policy = DenyPublishAndPlay()
        pub = self.connect("s", "publish")
        self.assertEqual(pub.of(cs.Started), [])
        codes = [e.code for e in pub.of(cs.StatusReceived)]
        self.assertNotIn("NetStream.Publish.Start", codes)
        self.assertEqual(pub.of(cs.Rejected)[0].description, "hook said no")
        self.assertTrue(policy.seen[0][1].startswith("vid-"))  # hooks see the stream id
        pub.close()
        self.assertEqual(len(self.ctx.registry), 0)

    def test_denied_play_gets_no_media(self):
        pub = self.publisher()
        self.send(pub, video(0, sh=True), video(0, key=True))
        self.ctx.policy = DenyPublishAndPlay()
        player = self.connect("s", "play")
        self.assertEqual(player.of(cs.PacketReceived), [])
        self.assertNotIn("NetStream.Play.Start", [e.code for e in player.of(cs.StatusReceived)])
        self.assertTrue(player.transport.disconnecting)


class TimeoutTests(ServerTestCase):
    conf = "vhost __defaultVhost__ { publish { firstpkt_timeout 3000; normal_timeout 2000; kickoff_for_idle 5; } }"

    def wait(self, seconds):
        """Time passing on a reactor that is free: timers fire when due."""
        self.clock.pump([0.25] * int(seconds / 0.25))

    def test_first_packet_timeout(self):
        pub = self.publisher()
        self.wait(2.0)
        self.assertFalse(pub.transport.disconnecting)
        self.wait(2.0)
        self.assertTrue(pub.transport.disconnecting)

    def test_normal_timeout(self):
        pub = self.publisher()
        self.send(pub, video(0, key=True))
        self.wait(1.0)
        self.assertFalse(pub.transport.disconnecting)
        self.wait(2.0)
        self.assertTrue(pub.transport.disconnecting)

    def test_reactor_stall_is_not_publisher_silence(self):
        """A reactor busy for longer than normal_timeout (one slow request)
        runs the publisher check late, before it reads the data the
        publisher sent meanwhile: that publisher is not kicked, and the
        timeout still counts the time the reactor was free."""
        pub = self.publisher()
        self.send(pub, video(0, key=True))
        self.clock.advance(6.0)  # the stall: nothing ran for 6 s
        self.assertFalse(pub.transport.disconnecting)
        self.send(pub, video(40))  # what waited in the socket
        self.wait(1.0)
        self.assertFalse(pub.transport.disconnecting)
        self.wait(2.0)  # 3 s of free reactor and no data (checked once a second)
        self.assertTrue(pub.transport.disconnecting)

    def test_stall_then_silence_still_times_out(self):
        pub = self.publisher()
        self.send(pub, video(0, key=True))
        self.clock.advance(6.0)
        self.wait(1.5)
        self.assertFalse(pub.transport.disconnecting)
        self.wait(1.0)
        self.assertTrue(pub.transport.disconnecting)

    def test_kickoff_for_idle(self):
        pub = self.publisher()
        for i in range(7):
            self.send(pub, video(i * 1000, key=True))
            self.clock.advance(1.0)
        self.assertTrue(pub.transport.disconnecting)


class BadInputTests(ServerTestCase):
    def raw(self, data):
        self.port += 1
        proto = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", self.port))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", self.port))
        proto.makeConnection(transport)
        proto.dataReceived(data)
        return proto, transport

    def test_garbage_before_handshake(self):
        _, t = self.raw(b"GET / HTTP/1.1\r\n\r\n" + bytes(2000))
        self.assertTrue(t.disconnected)

    def test_fresh_chunk_stream_with_fmt3_closes(self):
        conn, c2 = self.handshaken()
        conn.proto.dataReceived(c2 + b"\xc8" + bytes(10))
        self.assertTrue(conn.transport.disconnected)

    def test_message_longer_than_limit(self):
        self.factory.max_message_size = 1000
        conn, c2 = self.handshaken()
        # a command message header announcing 1001 bytes
        header = b"\x03" + b"\x00\x00\x00" + (1001).to_bytes(3, "big") + b"\x14" + b"\x00\x00\x00\x00"
        conn.proto.dataReceived(c2 + header)
        self.assertTrue(conn.transport.disconnected)

    def test_deeply_nested_amf_closes(self):
        conn, c2 = self.handshaken()
        payload = amf0.encode_many("connect", 1.0) + b"\x03\x00\x01a" * 500
        conn.proto.dataReceived(c2 + encode_message(3, 20, 0, 0, payload, 128))
        self.assertTrue(conn.transport.disconnected)

    def test_truncated_amf_closes(self):
        conn, c2 = self.handshaken()
        payload = amf0.encode_many("connect", 1.0, {"app": "live", "tcUrl": "rtmp://x/live"})[:-7]
        conn.proto.dataReceived(c2 + encode_message(3, 20, 0, 0, payload, 128))
        self.assertTrue(conn.transport.disconnected)

    def test_illegal_stream_name_closes_that_connection_only(self):
        pub = self.publisher("good")
        bad = self.connect("bad name;rm", "publish")
        self.assertEqual(bad.of(cs.Started), [])
        self.assertTrue(bad.transport.disconnecting)
        self.assertFalse(pub.transport.disconnecting)
        self.assertIsNone(self.ctx.registry.get("__defaultVhost__", "live", "bad name;rm"))

    def test_a_bug_closes_that_connection_with_a_traceback_in_the_log(self):
        from srs_twisted import log

        events = []
        self.addCleanup(log.capture(events))
        pub = self.publisher()
        before = log.unexpected_errors()

        def buggy(data):
            raise KeyError("bug")

        pub.proto.session.receive_data = buggy
        pub.proto.dataReceived(b"x")
        self.assertTrue(pub.transport.disconnecting)
        msgs = [msg for _, cid, msg in events if cid == pub.proto.log.cid]
        port = pub.proto.client.port
        self.assertIn(f"[unexpected-error] RTMP client 127.0.0.1:{port}: KeyError: 'bug'", msgs)
        self.assertIn("[unexpected-error] Traceback (most recent call last):", msgs)
        self.assertIn(f"RTMP client 127.0.0.1:{port} closed: internal error KeyError", msgs)
        self.assertEqual(log.unexpected_errors(), before + 1)
        # The server goes on: a new publisher gets the stream.
        pub.close()
        self.publisher()

    def test_unknown_message_type_is_ignored(self):
        pub = self.publisher()
        pub.proto.dataReceived(encode_message(9, 99, 1, 0, b"junk", 60000))
        self.assertFalse(pub.transport.disconnecting)


def sent_commands(data):
    """(name, transaction id, onStatus code or None) of each command in ``data``."""
    out = []
    for msg in ChunkReader().feed(data):
        if msg.type_id == m.COMMAND_AMF0:
            values = amf0.decode_all(msg.payload)
            info = values[3] if len(values) > 3 and isinstance(values[3], dict) else {}
            out.append((values[0], values[1], info.get("code")))
    return out


class RawClient:
    """Commands written straight after the handshake, all in one write."""

    def pipelined(self, *commands):
        conn, c2 = self.handshaken()
        lines = []
        self.addCleanup(srs_log.capture(lines))
        conn.proto.dataReceived(c2 + b"".join(m.command(3, sid, name, tid, obj, *args)
                                                for name, tid, sid, obj, args in commands))
        errors = [msg for level, cid, msg in lines if level == LogLevel.error and cid == conn.proto.log.cid]
        return conn, errors

    CONNECT = ("connect", 1.0, 0, {"app": "live", "tcUrl": "rtmp://127.0.0.1/live"}, ())


class PipelinedCommandTests(RawClient, ServerTestCase):
    """connect and the commands after it in one write (SRS answers them all)."""

    def test_fmle_publish_in_one_write(self):
        conn, errors = self.pipelined(
            self.CONNECT,
            ("releaseStream", 2.0, 0, None, ("s",)),
            ("FCPublish", 3.0, 0, None, ("s",)),
            ("createStream", 4.0, 0, None, ()),
            ("publish", 5.0, 1, None, ("s", "live")),
        )
        self.assertEqual(errors, [])
        self.assertFalse(conn.transport.disconnecting)
        got = sent_commands(conn.transport.value())
        self.assertEqual([(n, tid) for n, tid, _ in got[:5]],
                         [("_result", 1.0), ("onBWDone", 0.0), ("_result", 2.0), ("_result", 3.0), ("_result", 4.0)])
        self.assertEqual(got[-1][2], "NetStream.Publish.Start")
        self.assertTrue(self.ctx.registry.get("__defaultVhost__", "live", "s").active)
        self.assertEqual(conn.proto.client.type, "fmle-publish")

    def test_play_in_one_write(self):
        pub = self.publisher()
        self.send(pub, video(0, sh=True), video(0, key=True))
        conn, errors = self.pipelined(self.CONNECT, ("createStream", 2.0, 0, None, ()),
                                      ("play", 3.0, 1, None, ("s", -1000.0)))
        self.assertEqual(errors, [])
        got = sent_commands(conn.transport.value())
        self.assertEqual([c for _, _, c in got if c], ["NetConnection.Connect.Success", "NetStream.Play.Reset",
                                                       "NetStream.Play.Start"])
        self.assertIs(conn.proto.consumer.source, self.ctx.registry.get("__defaultVhost__", "live", "s"))
        self.assertIn(AVC_SH, conn.transport.value())

    def test_too_many_commands_before_the_answer_close_with_a_reason(self):
        extra = [("getStreamLength", 2.0, 0, None, ("s",))] * (s.MAX_PENDING_COMMANDS + 1)
        conn, errors = self.pipelined(self.CONNECT, *extra)
        self.assertTrue(conn.transport.disconnected)
        self.assertEqual(len(errors), 1)
        self.assertRegex(errors[0], r"RTMP client 127\.0\.0\.1:\d+ closed: ProtocolViolation: more than 64 commands")


class RecordClose(DenyPublishAndPlay):
    """Allows everything, records the close hooks."""

    def on_publish(self, client):
        return defer.succeed(None)

    on_play = on_publish

    def on_close(self, client):
        self.seen.append(("close", client.request.app, client.request.stream))


class NonUtf8NameTests(ServerTestCase):
    """Names whose bytes are not UTF-8 (AMF0 strings keep them as surrogates)
    must not break the log, and on_close must still be sent (issue 9 item 4)."""

    def test_invalid_utf8_app_and_stream_still_send_on_close(self):
        import os
        import tempfile

        from srs_twisted import log

        path = os.path.join(tempfile.mkdtemp(), "srs.log")
        log.configure("file", path, "trace")
        self.addCleanup(log.unconfigure)
        self.ctx.policy = policy = RecordClose()
        for app, stream in (("li\udcfeve", "s"), ("live", "s\udcff")):
            conn = self.connect(stream, "publish", app=app)
            self.assertTrue(conn.transport.disconnecting)  # such names are refused
            conn.close()
        self.assertEqual(policy.seen, [("close", "li\udcfeve", ""), ("close", "live", "")])
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")  # the file stays valid UTF-8
        self.assertEqual(text.count("RTMP client closed"), 2)
        self.assertIn("li\\xfeve", text)  # the bad bytes are escaped, not dropped
        self.assertIn("illegal characters in stream name", text)


class PlayDurationTests(RawClient, ServerTestCase):
    """play(name, start, duration, reset) on a live stream, as SRS: start and
    reset change nothing; a duration > 0 (ms) stops the player once the
    audio/video it was sent spans that much, with NetStream.Play.Stop, then
    the connection closes."""

    def player(self, *play_args):
        conn, errors = self.pipelined(self.CONNECT, ("createStream", 2.0, 0, None, ()),
                                      ("play", 3.0, 1, None, ("s", *play_args)))
        self.assertEqual(errors, [])
        conn.reader = ChunkReader()
        conn.got = []
        return conn

    def received(self, conn):
        """What the player got so far: ('media', ts) and ('status', code)."""
        for msg in conn.reader.feed(conn.transport.value()):
            if msg.type_id in (AUDIO, VIDEO):
                conn.got.append(("media", msg.timestamp))
            elif msg.type_id == m.COMMAND_AMF0:
                values = amf0.decode_all(msg.payload)
                if values[0] == "onStatus":
                    conn.got.append(("status", values[3]["code"]))
        conn.transport.clear()
        return conn.got

    def live(self, pub, first, last, step=40):
        """Publish a frame every ``step`` ms, the clock moving with them."""
        for ts in range(first, last + 1, step):
            self.send(pub, video(ts, key=ts % 1000 == 0), audio(ts + 20))
            self.clock.advance(step / 1000.0)

    def test_duration_stops_the_player_after_that_much_media(self):
        pub = self.publisher()
        self.send(pub, video(5000, sh=True), audio(5000, sh=True), video(5000, key=True))
        conn = self.player(-1000.0, 1000.0)
        self.live(pub, 5040, 8000)
        got = self.received(conn)
        media = [ts for kind, ts in got if kind == "media"]
        self.assertEqual(max(media) - media[0], 1000)  # 1000 ms of media, then nothing
        self.assertEqual(got[-1], ("status", "NetStream.Play.Stop"))
        self.assertNotIn("NetStream.Play.Stop", [c for k, c in got[:-1]])
        self.assertTrue(conn.transport.disconnecting)
        self.assertFalse(conn.transport.disconnected)  # closed politely, after the status went out
        src = self.ctx.registry.get("__defaultVhost__", "live", "s")
        self.assertEqual(src.consumers, [])
        self.assertFalse(pub.transport.disconnecting)

    def test_start_and_reset_change_nothing_on_live(self):
        pub = self.publisher()
        self.send(pub, video(0, sh=True), audio(0, sh=True), video(0, key=True))
        conn = self.player(30000.0, 400.0, False)
        self.live(pub, 40, 2000)
        media = [ts for kind, ts in self.received(conn) if kind == "media"]
        self.assertEqual(max(media) - media[0], 400)
        self.assertTrue(conn.transport.disconnecting)

    def test_duration_shorter_than_the_gop_cache(self):
        pub = self.publisher()
        self.send(pub, video(0, sh=True), audio(0, sh=True), video(0, key=True))
        self.live(pub, 40, 960)
        conn = self.player(-2000.0, 200.0)  # the GOP cache alone is 1 s of media
        self.clock.advance(0)
        got = self.received(conn)
        self.assertEqual(got[-1], ("status", "NetStream.Play.Stop"))
        media = [ts for kind, ts in got if kind == "media"]
        self.assertEqual(max(media) - media[0], 980)  # the cache went out whole
        self.assertTrue(conn.transport.disconnecting)
        self.live(pub, 1000, 1200)
        self.assertEqual(self.received(conn)[len(got):], [])

    def test_no_duration_plays_on(self):
        pub = self.publisher()
        self.send(pub, video(0, sh=True), audio(0, sh=True), video(0, key=True))
        players = [self.player(), self.player(-1000.0, -1.0), self.player(-1000.0, 0.0), self.player(-1000.0, 0.5)]
        self.live(pub, 40, 10000)
        for conn in players:
            got = self.received(conn)
            media = [ts for kind, ts in got if kind == "media"]
            self.assertEqual(max(media) - media[0], 10020)
            self.assertNotIn(("status", "NetStream.Play.Stop"), got)
            self.assertFalse(conn.transport.disconnecting)

    def test_a_new_publisher_restarting_at_zero_does_not_end_the_play(self):
        pub = self.publisher()
        self.send(pub, video(50000, sh=True), audio(50000, sh=True), video(50000, key=True))
        conn = self.player(-1000.0, 1000.0)
        self.live(pub, 50040, 50600)
        pub.session.close()
        pub.pump()
        pub.close()
        pub = self.publisher()
        self.send(pub, video(0, sh=True), audio(0, sh=True), video(0, key=True))
        self.live(pub, 40, 300)
        self.assertFalse(conn.transport.disconnecting)  # 620 + 10 + 320 ms so far
        self.live(pub, 340, 2000)
        got = self.received(conn)
        self.assertEqual(got[-1], ("status", "NetStream.Play.Stop"))
        media = [ts for kind, ts in got if kind == "media"]
        # time_jitter full: the player's timeline goes on 10 ms after its last
        # packet across the new publisher (as SRS's per-player jitter), so
        # the duration counts the first publisher's 620 ms, that 10 ms step
        # and the new publisher's media up to 1000 ms in all.
        self.assertEqual(media, sorted(media))
        steps = [b - a for a, b in zip(media, media[1:])]
        self.assertEqual(steps.count(10), 1)
        self.assertEqual(media[steps.index(10)] - media[0], 620)  # video to 600, audio to 620
        self.assertTrue(1000 <= max(media) - media[0] < 1040, media)
