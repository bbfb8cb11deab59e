"""forward: one publishing client per destination, fed by a tap that never
blocks: drops while the destination is down, restarts at a keyframe with
metadata and sequence headers, retries with backoff, stops on unpublish."""

from __future__ import annotations

from twisted.internet import defer
from twisted.trial import unittest

from srs_twisted.cluster.forward import ForwardObserver
from srs_twisted.context import ClientInfo
from srs_twisted.errors import Denied
from srs_twisted.url import discover

from ..live.test_source import Publisher
from .fakes import FakeConnector, add_player, audio, gop, make_ctx, meta, video

CONF = """
vhost __defaultVhost__ {
    play { mw_latency 0; }
    forward { enabled on; destination 127.0.0.1:19350 127.0.0.1:19351/backup; }
}
vhost plain.example.com { play { mw_latency 0; } }
vhost backend.example.com {
    play { mw_latency 0; }
    forward { enabled on; destination 127.0.0.1:1; backend http://127.0.0.1:8085/api/v1/forward; }
}
"""


def mid():
    return 0.5


class ForwardTests(unittest.TestCase):
    def setUp(self):
        self.ctx = make_ctx(CONF)
        self.clock = self.ctx.clock
        self.connector = FakeConnector()
        self.observer = ForwardObserver(self.ctx, connect=self.connector, supervisor_options={"rng": mid})
        self.ctx.registry.observers.append(self.observer)

    def publish(self, vhost="__defaultVhost__", stream="s?token=abc", tc_url="rtmp://127.0.0.1/live"):
        req = discover(tc_url, stream)
        req.vhost = vhost
        source = self.ctx.registry.fetch_or_create(vhost, req.app, req.stream)
        self.publisher = Publisher()
        self.ctx.registry.publish(source, self.publisher)
        source.publisher_info = ClientInfo(ip="127.0.0.1", request=req, publish=True, source=source)
        return source

    def feed(self, source, packets):
        for p in packets:
            source.write(p)

    def test_one_publisher_per_destination_with_srs_urls(self):
        source = self.publish()
        self.assertEqual(self.connector.attempts, [])  # publisher_info comes right after the publish
        self.clock.advance(0)
        urls = [(a.target.host, a.target.port, a.target.url, a.mode) for a in self.connector.attempts]
        self.assertEqual(urls, [
            ("127.0.0.1", 19350, "rtmp://127.0.0.1:19350/live/s?token=abc", "publish"),
            ("127.0.0.1", 19351, "rtmp://127.0.0.1:19351/backup/s?token=abc", "publish"),
        ])
        self.assertEqual(len(self.observer.forwarders[source]), 2)

    def test_starts_with_headers_at_a_keyframe(self):
        source = self.publish()
        self.clock.advance(0)
        self.feed(source, [meta(), video(0, sh=True), audio(0, sh=True)] + gop(0)[:11])
        conn = self.connector.attempts[0].succeed()
        self.feed(source, gop(0)[11:])  # the rest of a GOP: not sent, no keyframe yet
        self.assertEqual(conn.written, [])
        self.feed(source, gop(1000))
        kinds = [(p.kind, p.sequence_header, p.keyframe, p.dts) for p in conn.written[:4]]
        self.assertEqual(kinds, [(18, False, False, 0), (9, True, True, 1000), (8, True, False, 1000),
                                 (9, False, True, 1000)])
        self.assertEqual(len(conn.written), 3 + len(gop(1000)))
        self.assertEqual(conn.transport.producer, self.observer.forwarders[source][0])

    def test_a_destination_down_drops_and_recovers_while_players_go_on(self):
        source = self.publish()
        _client, sink, _consumer = add_player(self.ctx, source)
        self.clock.advance(0)
        self.feed(source, [meta(), video(0, sh=True), audio(0, sh=True)])
        fwd = self.observer.forwarders[source][0]
        conn = self.connector.attempts[0].succeed()
        self.feed(source, gop(0))
        self.assertEqual(len(conn.written), 3 + len(gop(0)))
        conn.lose()  # the destination went away
        self.assertFalse(fwd.connected)
        # first retry after 1 s (on the next connection attempt to the same place)
        self.feed(source, gop(1000))
        self.clock.advance(1.0)
        retry = self.connector.attempts[2]
        self.assertEqual(retry.target.port, 19350)
        retry.fail()
        self.feed(source, gop(2000))
        self.clock.advance(2.0)  # then 2 s
        conn2 = self.connector.attempts[3].succeed()
        self.feed(source, gop(3000)[1:])  # mid-GOP: waits
        self.assertEqual(conn2.written, [])
        self.feed(source, gop(4000))
        self.assertEqual([p.sequence_header for p in conn2.written[1:3]], [True, True])
        self.assertTrue(conn2.written[3].keyframe)
        self.assertEqual(conn2.written[3].dts, 4000)
        self.assertGreater(fwd.dropped, 2 * len(gop(0)))
        # the local player saw every packet, whatever the destination did
        self.assertEqual(len([p for p in sink.packets if not p.sequence_header and not p.is_data]),
                         5 * len(gop(0)) - 1)  # gop(3000) came without its keyframe

    def test_a_full_socket_drops_until_the_next_keyframe(self):
        source = self.publish()
        self.clock.advance(0)
        self.feed(source, [video(0, sh=True)])
        conn = self.connector.attempts[0].succeed()
        self.feed(source, gop(0)[:5])
        before = len(conn.written)
        conn.transport.producer.pauseProducing()
        self.feed(source, gop(0)[5:])
        self.assertEqual(len(conn.written), before)
        conn.transport.producer.resumeProducing()
        self.feed(source, [video(990), video(995)])
        self.assertEqual(len(conn.written), before)
        self.feed(source, gop(1000)[:1])
        self.assertTrue(conn.written[-1].keyframe)

    def test_a_failing_write_drops_the_connection_not_the_tap(self):
        source = self.publish()
        self.clock.advance(0)
        conn = self.connector.attempts[0].succeed()
        conn.fail_writes = True
        self.feed(source, gop(0)[:1])
        self.assertTrue(conn.transport.aborted)
        self.assertEqual(len(source._taps), 2)
        self.clock.advance(1.0)
        self.assertEqual(len(self.connector.attempts), 3)

    def test_unpublish_stops_everything(self):
        source = self.publish()
        self.clock.advance(0)
        conn = self.connector.attempts[0].succeed()
        self.connector.attempts[1].fail()  # this one is waiting to retry
        self.ctx.registry.unpublish(source)
        self.assertTrue(conn.closed)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(source._taps, [])
        self.assertEqual(self.observer.forwarders, {})
        self.clock.advance(60)
        self.assertEqual(len(self.connector.attempts), 2)

    def test_unpublish_before_start(self):
        source = self.publish()
        self.ctx.registry.unpublish(source)
        self.clock.advance(0)
        self.assertEqual(self.connector.attempts, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_vhost_without_forward(self):
        self.publish(vhost="plain.example.com")
        self.clock.advance(0)
        self.assertEqual(self.connector.attempts, [])

    def test_backend_urls_replace_destinations(self):
        asked = []

        class Hooks:
            def on_forward(self, client, backend=None):
                asked.append((client.request.stream, client.request.param, backend))
                return defer.succeed(["rtmp://10.0.0.9:1936/other/x?k=v", "rtmp://10.0.0.8/live/y"])

        self.ctx.hooks = Hooks()
        source = self.publish(vhost="backend.example.com")
        self.clock.advance(0)
        self.assertEqual(asked, [("s", "?token=abc", "http://127.0.0.1:8085/api/v1/forward")])
        self.assertEqual([(a.target.host, a.target.port, a.target.url) for a in self.connector.attempts],
                         [("10.0.0.9", 1936, "rtmp://10.0.0.9:1936/other/x?k=v"),
                          ("10.0.0.8", 1935, "rtmp://10.0.0.8/live/y")])
        self.assertFalse(self.publisher.stopped)
        self.ctx.registry.unpublish(source)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_backend_failure_fails_the_publish_as_srs(self):
        class Hooks:
            def on_forward(self, client, backend=None):
                return defer.fail(Denied("http: on_forward failed"))

        self.ctx.hooks = Hooks()
        self.publish(vhost="backend.example.com")
        self.clock.advance(0)
        self.assertTrue(self.publisher.stopped)
        self.assertEqual(self.connector.attempts, [])

    def test_unpublish_while_asking_the_backend(self):
        pending = defer.Deferred()

        class Hooks:
            def on_forward(self, client, backend=None):
                return pending

        self.ctx.hooks = Hooks()
        source = self.publish(vhost="backend.example.com")
        self.clock.advance(0)
        self.ctx.registry.unpublish(source)
        self.assertTrue(pending.called)  # cancelled
        self.assertEqual(self.connector.attempts, [])
        self.assertFalse(self.publisher.stopped)
