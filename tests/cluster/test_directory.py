"""The stream directory (LocalDirectory, Owner records) and the relay: a node
looks a stream it lacks up and pulls it from the owner, once per stream;
local publishes are registered and claimed; a second publisher on another
node is refused; a local publisher replaces a pull; HTTP players of a remote
stream are served, of an unknown one refused."""

from __future__ import annotations

from twisted.internet import defer
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from srs_twisted.cluster.directory import (
    DirectoryUnavailable,
    IStreamDirectory,
    LocalDirectory,
    Owner,
    StreamOwned,
    stream_key,
)
from srs_twisted.cluster.edge import EDGE_STOP_DELAY
from srs_twisted.cluster.relay import LOOKUP_RETRY, DirectoryPolicy, RelayPull, install, is_relay
from srs_twisted.context import ClientInfo
from srs_twisted.errors import Denied
from srs_twisted.hls.service import HlsObserver
from srs_twisted.http import stream as st
from srs_twisted.http.server import PlayerSession
from srs_twisted.url import StreamRequest

from ..live.test_source import Publisher
from .fakes import FakeConnector, add_player, audio, gop, make_ctx, meta, remove_player, video

CONF = """
vhost __defaultVhost__ {
    play { mw_latency 0; }
    hls { enabled on; hls_path /nonexistent-hls; }
}
vhost alone.example.com { }
vhost flv.example.com { play { mw_latency 0; } cluster { origin_cluster on; protocol flv; } }
"""

A = Owner("node-a", {"rtmp": "10.0.0.1:1935", "http": "10.0.0.1:8080", "api": "10.0.0.1:1985"})
B = Owner("node-b", {"rtmp": "10.0.0.2:19350"})
KEY = "__defaultVhost__/live/s"


class DownDirectory(LocalDirectory):
    """A directory that cannot be reached."""

    def __init__(self):
        super().__init__()
        self.down = True

    def _check(self):
        if self.down:
            raise DirectoryUnavailable("connection refused")

    def register(self, key, owner):
        self._check()
        return super().register(key, owner)

    def lookup(self, key):
        self._check()
        return super().lookup(key)


class LocalDirectoryTests(unittest.TestCase):
    def setUp(self):
        self.d = LocalDirectory()

    def test_interface(self):
        self.assertTrue(verifyObject(IStreamDirectory, self.d))

    def test_register_lookup_unregister(self):
        self.assertIsNone(self.successResultOf(self.d.lookup(KEY)))
        self.successResultOf(self.d.register(KEY, A))
        self.assertEqual(self.successResultOf(self.d.lookup(KEY)).endpoints["rtmp"], "10.0.0.1:1935")
        self.successResultOf(self.d.unregister(KEY, A))
        self.assertIsNone(self.successResultOf(self.d.lookup(KEY)))

    def test_another_node_cannot_claim(self):
        self.successResultOf(self.d.register(KEY, A))
        f = self.failureResultOf(self.d.register(KEY, B), StreamOwned)
        self.assertIsInstance(f.value, Denied)
        self.assertIn("node-a", str(f.value))
        # Nor remove it; the holder may register again (heartbeat).
        self.successResultOf(self.d.unregister(KEY, B))
        self.assertEqual(self.successResultOf(self.d.lookup(KEY)).node, "node-a")
        self.successResultOf(self.d.register(KEY, A))

    def test_owner_json_round_trip_and_bad_records(self):
        self.assertEqual(Owner.from_json(A.to_json()).endpoints, A.endpoints)
        self.assertEqual(Owner.from_json(A.to_json().encode()).node, "node-a")
        for bad in ("", "{", "[]", '{"node": 3}', '{"node": ""}', '{"node": "x", "endpoints": [1]}'):
            with self.assertRaises(ValueError):
                Owner.from_json(bad)

    def test_stream_key(self):
        self.assertEqual(stream_key("__defaultVhost__", "live", "s"), KEY)


class RelayTests(unittest.TestCase):
    def setUp(self):
        self.ctx = make_ctx(CONF)
        self.clock = self.ctx.clock
        self.directory = LocalDirectory()
        self.rtmp = FakeConnector()
        self.flv = FakeConnector()
        self.node = Owner("node-c", {"rtmp": "10.0.0.3:1935"})

        def directory_for(vhost):
            return self.directory if vhost in ("__defaultVhost__", "flv.example.com") else None

        self.relay = install(self.ctx, directory_for, self.node, connect_rtmp=self.rtmp,
                             connect_flv=self.flv.flv, supervisor_options={"rng": lambda: 0.5})
        self.ctx.registry.observers.insert(0, HlsObserver(self.ctx))

    def source(self, vhost="__defaultVhost__", stream="s"):
        return self.ctx.registry.fetch_or_create(vhost, "live", stream)

    def publish(self, source):
        pub = Publisher()
        self.ctx.registry.publish(source, pub)
        return pub

    def test_one_pull_from_the_owner_for_many_players(self):
        self.directory.owners[KEY] = A
        source = self.source()
        players = [add_player(self.ctx, source, stream="s?token=t") for _ in range(10)]
        self.assertEqual(len(self.rtmp.attempts), 1)
        a = self.rtmp.last
        self.assertEqual((a.mode, a.target.host, a.target.port), ("play", "10.0.0.1", 1935))
        self.assertEqual(a.target.url, "rtmp://10.0.0.1/live/s?token=t")
        self.assertIsInstance(source.publisher, RelayPull)
        self.assertTrue(is_relay(source))
        self.assertEqual(source.publisher_info.type, "relay-pull")
        a.succeed()
        for p in [meta(), video(0, sh=True), audio(0, sh=True)] + gop(0):
            a.on_packet(p)
        for _client, sink, _c in players:
            self.assertEqual(len(sink.packets), 3 + len(gop(0)))
        # HLS is written by the owner, not by the relay.
        self.assertEqual(self.ctx.registry.observers[0].recorders, {})
        for p in players:
            remove_player(self.ctx, p)
        self.clock.advance(EDGE_STOP_DELAY)
        self.assertTrue(a.conn.closed)
        self.assertEqual(self.relay.pulls, {})
        self.assertIsNone(self.ctx.registry.get("__defaultVhost__", "live", "s"))

    def test_http_endpoint_when_no_rtmp(self):
        self.directory.owners[KEY] = Owner("node-h", {"http": "10.0.0.9:8080"})
        add_player(self.ctx, self.source())
        self.assertEqual(self.rtmp.attempts, [])
        self.assertEqual(self.flv.last.target, "http://10.0.0.9:8080/live/s.flv")

    def test_protocol_flv_pulls_over_http(self):
        self.directory.owners["flv.example.com/live/s"] = A
        add_player(self.ctx, self.source("flv.example.com"))
        self.assertEqual(self.rtmp.attempts, [])
        self.assertEqual(self.flv.last.target, "http://10.0.0.1:8080/live/s.flv")

    def test_a_silent_pull_follows_the_stream_to_another_node_at_once(self):
        self.directory.owners[KEY] = A
        source = self.source()
        add_player(self.ctx, source)
        a = self.rtmp.last
        a.succeed()
        a.on_packet(video(0, key=True))
        self.clock.advance(2)  # silent, but still A's: kept
        self.assertFalse(a.conn.done.called)
        self.directory.owners[KEY] = B  # A stopped, B publishes
        self.clock.advance(1)
        self.assertTrue(a.conn.transport.aborted)
        self.clock.advance(1)
        self.assertEqual(self.rtmp.last.target.endpoint, "10.0.0.2:19350")
        self.assertEqual(len(self.rtmp.attempts), 2)

    def test_players_wait_for_a_stream_published_later_elsewhere(self):
        source = self.source()
        add_player(self.ctx, source)
        self.assertEqual(self.rtmp.attempts, [])
        self.assertIsNone(source.publisher)
        self.clock.advance(LOOKUP_RETRY)
        self.assertEqual(self.rtmp.attempts, [])
        self.directory.owners[KEY] = B
        self.clock.advance(LOOKUP_RETRY)
        self.assertEqual(self.rtmp.last.target.endpoint, "10.0.0.2:19350")

    def test_players_wait_for_a_local_publisher(self):
        source = self.source()
        (p,) = [add_player(self.ctx, source)]
        pub = self.publish(source)
        self.assertIs(source.publisher, pub)
        self.assertEqual(self.successResultOf(self.directory.lookup(KEY)).node, "node-c")
        self.clock.advance(LOOKUP_RETRY * 3)
        self.assertEqual(self.rtmp.attempts, [])
        remove_player(self.ctx, p)
        self.ctx.registry.unpublish(source)
        self.assertIsNone(self.successResultOf(self.directory.lookup(KEY)))
        self.assertEqual(self.relay._lookups, {})

    def test_pull_follows_the_stream_to_its_new_owner(self):
        self.directory.owners[KEY] = A
        source = self.source()
        add_player(self.ctx, source)
        conn = self.rtmp.last.succeed()
        # A stops publishing, B publishes: the reconnect looks up again.
        self.directory.owners[KEY] = B
        conn.lose()
        self.clock.advance(5)
        self.assertEqual(self.rtmp.last.target.endpoint, "10.0.0.2:19350")
        self.assertIsInstance(source.publisher, RelayPull)

    def test_lookup_that_finds_nothing_retries_the_pull(self):
        self.directory.owners[KEY] = A
        add_player(self.ctx, self.source())
        conn = self.rtmp.last.succeed()
        del self.directory.owners[KEY]
        conn.lose()
        self.clock.advance(10)
        self.assertEqual(len(self.rtmp.attempts), 1)
        self.directory.owners[KEY] = B
        self.clock.advance(10)
        self.assertEqual(self.rtmp.last.target.endpoint, "10.0.0.2:19350")

    def test_vhost_without_directory_is_left_alone(self):
        source = self.source("alone.example.com")
        add_player(self.ctx, source)
        self.publish(self.source("alone.example.com", "t"))
        self.assertEqual(self.rtmp.attempts, [])
        self.assertEqual(self.directory.owners, {})

    def client(self, stream="s"):
        req = StreamRequest(vhost="__defaultVhost__", app="live", stream=stream)
        return ClientInfo(ip="127.0.0.1", request=req, publish=True)

    def test_publish_claimed_refused_when_another_node_has_it(self):
        policy = DirectoryPolicy(self.ctx)
        self.directory.owners[KEY] = A
        f = self.failureResultOf(policy.on_publish(self.client()), StreamOwned)
        self.assertIsInstance(f.value, Denied)
        self.successResultOf(policy.on_publish(self.client("other")))
        self.assertEqual(self.directory.owners["__defaultVhost__/live/other"].node, "node-c")

    def test_local_publisher_replaces_the_pull(self):
        self.directory.owners[KEY] = A
        source = self.source()
        _client, sink, _c = add_player(self.ctx, source)
        conn = self.rtmp.last.succeed()
        del self.directory.owners[KEY]  # A unpublished
        self.successResultOf(DirectoryPolicy(self.ctx).on_publish(self.client()))
        self.assertTrue(conn.closed)
        self.assertIsNone(source.publisher)
        pub = self.publish(source)
        self.assertIs(source.publisher, pub)
        self.assertIn("published", sink.events)
        self.assertEqual(self.relay.pulls, {})

    def test_directory_down(self):
        self.directory = down = DownDirectory()
        # A publish goes on (the claim cannot be made), with a log line.
        self.successResultOf(DirectoryPolicy(self.ctx).on_publish(self.client()))
        self.publish(self.source("__defaultVhost__", "s"))
        # A lookup fails and is retried.
        source = self.source(stream="remote")
        add_player(self.ctx, source)
        self.assertEqual(self.rtmp.attempts, [])
        down.down = False
        down.owners["__defaultVhost__/live/remote"] = A
        self.clock.advance(LOOKUP_RETRY)
        self.assertEqual(len(self.rtmp.attempts), 1)
        self.flushLoggedErrors()

    def session(self, stream="s"):
        match = st.StreamMatch("__defaultVhost__", "live", stream, "flv", b"video/x-flv")
        return PlayerSession(self.ctx, match, "127.0.0.1", 1000, "127.0.0.1:8080", {}, "http")

    def test_http_player_of_remote_stream(self):
        self.directory.owners[KEY] = A
        source = self.successResultOf(self.session().check())
        self.assertIs(source, self.ctx.registry.get("__defaultVhost__", "live", "s"))

    def test_http_player_of_unknown_stream_is_404(self):
        self.failureResultOf(self.session("nothing").check(), LookupError)
        self.assertIsNone(self.ctx.registry.get("__defaultVhost__", "live", "nothing"))

    def test_http_player_of_own_stream_not_pulled(self):
        self.directory.owners[KEY] = self.node
        self.failureResultOf(self.session().check(), LookupError)

    def test_stop_stops_pulls(self):
        self.directory.owners[KEY] = A
        add_player(self.ctx, self.source())
        conn = self.rtmp.last.succeed()
        self.successResultOf(self.relay.stop())
        self.assertTrue(conn.closed)


class DeferredDirectoryTests(unittest.TestCase):
    """Lookups that answer later (Redis): one lookup at a time per stream."""

    def test_one_lookup_in_flight(self):
        ctx = make_ctx(CONF)
        pending = []

        class Slow(LocalDirectory):
            def lookup(self, key):
                d = defer.Deferred()
                pending.append(d)
                return d

        rtmp = FakeConnector()
        install(ctx, lambda v: Slow(), Owner("me"), connect_rtmp=rtmp)
        source = ctx.registry.fetch_or_create("__defaultVhost__", "live", "s")
        add_player(ctx, source)
        add_player(ctx, source)
        self.assertEqual(len(pending), 1)
        pending[0].callback(A)
        self.assertEqual(len(rtmp.attempts), 0)  # the pull looks up again before connecting
        self.assertEqual(len(pending), 2)
        pending[1].callback(A)
        self.assertEqual(len(rtmp.attempts), 1)
