"""edge: one pull per stream for any number of players, stopped some
seconds after the last one left; origins tried in turn with backoff while
players stay connected; publish pushed to the origin; token traverse; an
HTTP-FLV player creates the stream on an edge."""

from __future__ import annotations

from twisted.internet import defer
from twisted.trial import unittest

from srs_twisted.cluster.edge import (
    EDGE_RECV_TIMEOUT,
    EDGE_RETRY_MAX,
    EDGE_STOP_DELAY,
    EdgeObserver,
    EdgePull,
)
from srs_twisted.cluster.traverse import TokenTraversePolicy
from srs_twisted.context import ClientInfo
from srs_twisted.errors import Denied
from srs_twisted.http import stream as st
from srs_twisted.http.server import PlayerSession
from srs_twisted.policy.build import build_policy
from srs_twisted.url import discover

from ..live.test_source import Publisher
from .fakes import FakeConnector, add_player, audio, gop, make_ctx, meta, remove_player, video

CONF = """
vhost __defaultVhost__ {
    play { mw_latency 0; }
    cluster { mode remote; origin 127.0.0.1:19350 127.0.0.1:19351 127.0.0.1:19352; }
}
vhost edge.example.com {
    play { mw_latency 0; }
    cluster { mode remote; origin 10.0.0.1; vhost origin.example.com; }
}
vhost flv.example.com { cluster { mode remote; origin 10.0.0.1:8080; protocol flv; } }
vhost follow.example.com { cluster { mode remote; origin 10.0.0.1:8080; follow_client on; } }
vhost origin.example.com { play { mw_latency 0; } }
"""


def mid():
    return 0.5


def headers():
    return [meta(), video(0, sh=True), audio(0, sh=True)]


class EdgePullTests(unittest.TestCase):
    def setUp(self):
        self.ctx = make_ctx(CONF)
        self.clock = self.ctx.clock
        self.rtmp = FakeConnector()
        self.flv = FakeConnector()
        self.observer = EdgeObserver(self.ctx, connect_rtmp=self.rtmp, connect_flv=self.flv.flv,
                                     supervisor_options={"rng": mid})
        self.ctx.registry.observers.append(self.observer)

    def source(self, vhost="__defaultVhost__", stream="s"):
        return self.ctx.registry.fetch_or_create(vhost, "live", stream)

    def players(self, source, n, stream="s?token=first", **kw):
        return [add_player(self.ctx, source, stream=stream, **kw) for _ in range(n)]

    def feed(self, attempt, packets):
        for p in packets:
            attempt.on_packet(p)

    def test_one_pull_for_twenty_players(self):
        source = self.source()
        players = self.players(source, 20)
        self.assertEqual(len(self.rtmp.attempts), 1)
        a = self.rtmp.last
        self.assertEqual((a.mode, a.target.host, a.target.port), ("play", "127.0.0.1", 19350))
        self.assertEqual(a.target.url, "rtmp://127.0.0.1:19350/live/s?token=first")  # the first player's query
        self.assertIsInstance(source.publisher, EdgePull)
        self.assertEqual(source.publisher_info.type, "edge-pull")
        a.succeed()
        self.feed(a, headers() + gop(0))
        for _client, sink, _c in players:
            self.assertEqual(len(sink.packets), 3 + len(gop(0)))
        self.assertEqual(len(self.rtmp.attempts), 1)

    def test_stops_some_seconds_after_the_last_player(self):
        source = self.source()
        players = self.players(source, 3)
        conn = self.rtmp.last.succeed()
        for p in players:
            remove_player(self.ctx, p)
        self.assertIs(self.ctx.registry.get("__defaultVhost__", "live", "s"), source)
        self.clock.advance(EDGE_STOP_DELAY - 0.1)
        self.assertFalse(conn.closed)
        self.clock.advance(0.2)
        self.assertTrue(conn.closed)
        self.assertIsNone(self.ctx.registry.get("__defaultVhost__", "live", "s"))
        self.assertEqual(self.observer.pulls, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_player_back_in_time_keeps_the_pull(self):
        source = self.source()
        (p,) = self.players(source, 1)
        conn = self.rtmp.last.succeed()
        remove_player(self.ctx, p)
        self.clock.advance(1.0)
        self.players(source, 1)
        self.clock.advance(10.0)
        self.assertFalse(conn.closed)
        self.assertEqual(len(self.rtmp.attempts), 1)

    def test_a_new_pull_after_the_old_one_stopped(self):
        source = self.source()
        (p,) = self.players(source, 1)
        self.rtmp.last.succeed()
        remove_player(self.ctx, p)
        self.clock.advance(EDGE_STOP_DELAY)
        source2 = self.source()
        self.assertIsNot(source2, source)
        self.players(source2, 1)
        self.assertEqual(len(self.rtmp.attempts), 2)

    def test_origins_in_turn_with_backoff(self):
        self.players(self.source(), 2)
        ports, times = [], []
        for _ in range(5):
            ports.append(self.rtmp.last.target.port)
            times.append(self.clock.seconds())
            self.rtmp.last.fail()
            (call,) = self.clock.getDelayedCalls()[-1:]
            self.clock.advance(call.getTime() - self.clock.seconds())
        self.assertEqual(ports, [19350, 19351, 19352, 19350, 19351])
        self.assertEqual([b - a for a, b in zip(times, times[1:])], [1, 2, 4, EDGE_RETRY_MAX])

    def test_players_stay_across_an_origin_switch(self):
        source = self.source()
        players = self.players(source, 5)
        first = self.rtmp.last
        conn = first.succeed()
        self.feed(first, headers() + gop(0) + gop(1000))
        self.clock.advance(30)  # a healthy while
        conn.lose()  # origin 1 died
        self.assertTrue(source.active)
        self.assertEqual(len(source.consumers), 5)
        self.clock.advance(1.0)
        second = self.rtmp.last
        self.assertEqual(second.target.port, 19351)
        second.succeed()
        # origin 2 starts its own timeline: the source keeps the players' going
        self.feed(second, [meta(), video(500, sh=True), audio(500, sh=True)] + gop(500) + gop(1500))
        for _client, sink, _c in players:
            self.assertNotIn("unpublished", sink.events)
            frames = [p for p in sink.packets if p.is_video and not p.sequence_header]
            self.assertEqual(len(frames), 4 * 25)
            dts = [p.dts for p in frames]
            self.assertEqual(dts, sorted(dts))  # no jump back in time
            self.assertLess(max(b - a for a, b in zip(dts, dts[1:])), 250)
            self.assertEqual(dts[50] - dts[49], 10)  # the second origin's timeline follows the first's

    def test_late_packets_of_a_dropped_upstream_are_ignored(self):
        source = self.source()
        (_c, sink, _) = self.players(source, 1)[0]
        first = self.rtmp.last
        conn = first.succeed()
        self.feed(first, headers())
        conn.lose()
        before = len(sink.packets)
        self.feed(first, gop(0))
        self.assertEqual(len(sink.packets), before)

    def test_a_silent_origin_is_dropped(self):
        self.players(self.source(), 1)
        first = self.rtmp.last
        conn = first.succeed()
        self.feed(first, headers() + gop(0))
        self.clock.advance(EDGE_RECV_TIMEOUT + 1.5)
        self.assertTrue(conn.transport.aborted)
        self.clock.advance(1.0)
        self.assertEqual(self.rtmp.last.target.port, 19351)

    def test_upstream_vhost_rewrite(self):
        self.players(self.source("edge.example.com"), 1, tc_url="rtmp://edge.example.com/live")
        t = self.rtmp.last.target
        self.assertEqual((t.host, t.port, t.tc_url, t.stream), ("10.0.0.1", 1935, "rtmp://origin.example.com/live",
                                                                "s?token=first"))

    def test_http_flv_upstream(self):
        source = self.source("flv.example.com")
        ((_c, sink, _),) = self.players(source, 1)
        self.assertEqual(self.rtmp.attempts, [])
        self.assertEqual(self.flv.last.target, "http://10.0.0.1:8080/live/s.flv?token=first")
        self.assertEqual(self.flv.last.kw, {"host_header": "flv.example.com"})
        self.flv.last.succeed()
        self.feed(self.flv.last, headers() + gop(0))
        self.clock.advance(0.35)  # this vhost merges writes (mw_latency 350 ms)
        self.assertEqual(len(sink.packets), 3 + len(gop(0)))

    def test_follow_client(self):
        self.players(self.source("follow.example.com"), 1, tc_url="http://follow.example.com/live", protocol="http")
        self.assertEqual(len(self.flv.attempts), 1)
        self.assertEqual(self.rtmp.attempts, [])
        self.players(self.source("follow.example.com", "r"), 1, stream="r")
        self.assertEqual(len(self.rtmp.attempts), 1)

    def test_not_an_edge(self):
        self.players(self.source("origin.example.com"), 3)
        self.assertEqual(self.rtmp.attempts, [])

    def test_kicking_the_pull_stops_it(self):
        source = self.source()
        self.players(source, 2)
        conn = self.rtmp.last.succeed()
        source.kick_publisher()
        self.assertTrue(conn.closed)
        self.assertFalse(source.active)
        self.assertEqual(len(source.consumers), 2)  # players wait
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_publish_on_the_edge_is_pushed_to_the_origins(self):
        source = self.source(stream="pub")
        pub = Publisher()
        self.ctx.registry.publish(source, pub)
        req = discover("rtmp://127.0.0.1/live", "pub?secret=1")
        source.publisher_info = ClientInfo(ip="127.0.0.1", request=req, publish=True, source=source)
        self.clock.advance(0)
        a = self.rtmp.last
        self.assertEqual((a.mode, a.target.url), ("publish", "rtmp://127.0.0.1:19350/live/pub?secret=1"))
        conn = a.succeed()
        for p in headers() + gop(0):
            source.write(p)
        self.assertEqual(len(conn.written), 3 + len(gop(0)))
        # its players on the edge are served locally, no pull
        self.players(source, 2, stream="pub")
        self.assertEqual(len(self.rtmp.attempts), 1)
        conn.lose()
        self.clock.advance(1.0)
        self.assertEqual(self.rtmp.last.target.port, 19351)  # the next origin
        self.ctx.registry.unpublish(source)
        self.assertTrue(self.rtmp.last.cancelled)
        self.assertEqual(self.observer.pushes, {})

    def test_a_pulled_stream_is_not_pushed_back(self):
        self.players(self.source(), 1)
        self.clock.advance(0)
        self.assertEqual([a.mode for a in self.rtmp.attempts], ["play"])

    def test_players_left_by_a_local_publisher_pull_from_the_origin(self):
        source = self.source(stream="pub")
        self.ctx.registry.publish(source, Publisher())
        self.players(source, 1, stream="pub")
        self.clock.advance(0)
        self.rtmp.last.succeed()  # the push
        self.ctx.registry.unpublish(source)
        self.clock.advance(0)
        self.assertEqual(self.rtmp.last.mode, "play")
        self.assertIsInstance(source.publisher, EdgePull)


class TokenTraverseTests(unittest.TestCase):
    CONF = """
vhost __defaultVhost__ {}
vhost edge.example.com { cluster { mode remote; origin 10.0.0.1 10.0.0.2:1936; token_traverse on; } }
vhost notraverse.example.com { cluster { mode remote; origin 10.0.0.1; } }
"""

    def setUp(self):
        self.ctx = make_ctx(self.CONF)
        self.rtmp = FakeConnector()
        self.policy = TokenTraversePolicy(self.ctx, connect=self.rtmp)

    def client(self, vhost="edge.example.com", publish=False, protocol="rtmp"):
        req = discover(f"rtmp://{vhost}/live?k=1", "s?token=t1")
        conf = self.ctx.vhost(req.vhost)
        req.vhost = conf.name
        return ClientInfo(ip="1.2.3.4", request=req, publish=publish, protocol=protocol)

    def test_asks_the_origin_with_the_clients_url(self):
        d = self.policy.on_connect(self.client())
        a = self.rtmp.last
        self.assertEqual((a.target.host, a.target.port, a.mode), ("10.0.0.1", 1935, "play"))
        self.assertEqual(a.target.tc_url, "rtmp://edge.example.com/live?k=1")
        self.assertEqual(a.target.stream, "s?k=1&token=t1")
        conn = a.succeed()
        self.successResultOf(d)
        self.assertTrue(conn.closed)

    def test_publishers_traverse_as_publishers(self):
        self.policy.on_connect(self.client(publish=True))
        self.assertEqual(self.rtmp.last.mode, "publish")

    def test_origin_refusal_refuses(self):
        d = self.policy.on_connect(self.client())
        self.rtmp.last.fail(Denied("NetStream.Play.StreamNotFound: bad token"))
        f = self.failureResultOf(d, Denied)
        self.assertIn("bad token", f.getErrorMessage())
        self.assertEqual(len(self.rtmp.attempts), 1)

    def test_an_unreachable_origin_is_skipped(self):
        d = self.policy.on_connect(self.client())
        self.rtmp.last.fail(ConnectionRefusedError())
        self.assertEqual((self.rtmp.last.target.host, self.rtmp.last.target.port), ("10.0.0.2", 1936))
        self.rtmp.last.succeed()
        self.successResultOf(d)

    def test_no_origin_reachable_refuses(self):
        d = self.policy.on_connect(self.client())
        self.rtmp.last.fail(ConnectionRefusedError())
        self.rtmp.last.fail(ConnectionRefusedError())
        self.failureResultOf(d, Denied)

    def test_times_out(self):
        d = self.policy.on_connect(self.client())
        self.ctx.clock.advance(10.0)
        self.failureResultOf(d, defer.TimeoutError)
        self.assertTrue(self.rtmp.last.cancelled)

    def test_only_rtmp_clients_of_traverse_vhosts(self):
        self.successResultOf(self.policy.on_connect(self.client("notraverse.example.com")))
        self.successResultOf(self.policy.on_connect(self.client("other.example.com")))
        self.successResultOf(self.policy.on_connect(self.client(protocol="http")))
        self.assertEqual(self.rtmp.attempts, [])

    def test_in_the_chain_only_with_a_traverse_vhost(self):
        self.assertIn(TokenTraversePolicy, [type(p) for p in build_policy(self.ctx).policies])
        plain = make_ctx("vhost __defaultVhost__ {}")
        self.assertNotIn(TokenTraversePolicy, [type(p) for p in build_policy(plain).policies])


class HttpFlvOnEdgeTests(unittest.TestCase):
    def session(self, ctx, vhost):
        match = st.StreamMatch(vhost, "live", "s", "flv", b"video/x-flv")
        return PlayerSession(ctx, match, "127.0.0.1", 5000, "127.0.0.1", {}, "http")

    def test_an_edge_creates_the_stream(self):
        ctx = make_ctx(CONF)
        s = self.session(ctx, "__defaultVhost__")
        source = self.successResultOf(s.check())
        self.assertIs(ctx.registry.get("__defaultVhost__", "live", "s"), source)
        s.stop()
        self.assertIsNone(ctx.registry.get("__defaultVhost__", "live", "s"))

    def test_an_origin_answers_not_found(self):
        ctx = make_ctx(CONF)
        self.failureResultOf(self.session(ctx, "origin.example.com").check(), LookupError)
