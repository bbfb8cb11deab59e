"""SRS 3-6's origin cluster: the /api/v1/clusters answer, the coworker
discovery, the RTMP 302 an origin sends (in memory, the client session
reading ``ex.redirect2``) and an edge pull following it."""

from __future__ import annotations

from twisted.internet import defer
from twisted.trial import unittest

from srs_twisted.cluster.coworkers import clusters_data, discover, redirect_applies
from srs_twisted.cluster.edge import EdgeObserver
from srs_twisted.rtmp import client_session as cs
from srs_twisted.url import StreamRequest

from ..live.test_source import Publisher
from ..rtmp.test_protocol import ServerTestCase
from .fakes import FakeConnector, add_player, make_ctx

CONF = """
listen 19350;
http_api { enabled on; listen 9090; }
vhost __defaultVhost__ { cluster { mode local; origin_cluster on; coworkers 10.0.0.2:9091 10.0.0.3:9092; } }
vhost redis.example.com { cluster { mode local; origin_cluster on; coworkers 10.0.0.2:9091; redis { enabled on; } } }
vhost plain.example.com { }
"""


def req(stream="s", vhost="__defaultVhost__", host="10.0.0.1"):
    return StreamRequest(host=host, vhost=vhost, app="live", stream=stream, param="?token=1")


class ClustersTests(unittest.TestCase):
    def setUp(self):
        self.ctx = make_ctx(CONF)

    def test_answer_for_a_stream_published_here(self):
        source = self.ctx.registry.fetch_or_create("__defaultVhost__", "live", "s")
        self.ctx.registry.publish(source, Publisher())
        data = clusters_data(self.ctx, {"vhost": "__defaultVhost__", "app": "live", "stream": "s",
                                        "ip": "1.2.3.4", "coworker": "10.0.0.1:9090"})
        self.assertEqual(data, {
            "query": {"ip": "1.2.3.4", "vhost": "__defaultVhost__", "app": "live", "stream": "s"},
            "origin": {"ip": "10.0.0.1", "port": 19350, "vhost": "__defaultVhost__", "api": "10.0.0.1:9090",
                       "routers": ["10.0.0.1:9090"]},
        })
        # An unknown vhost is looked up as the default one (SRS).
        self.assertIsNotNone(clusters_data(self.ctx, {"vhost": "x.example.com", "app": "live", "stream": "s",
                                                      "coworker": "h:1"})["origin"])

    def test_null_origin(self):
        data = clusters_data(self.ctx, {"vhost": "__defaultVhost__", "app": "live", "stream": "nothing"})
        self.assertIsNone(data["origin"])
        self.assertEqual(data["query"]["stream"], "nothing")

    def test_when_a_redirect_applies(self):
        idle = self.ctx.registry.fetch_or_create("__defaultVhost__", "live", "s")
        self.assertTrue(redirect_applies(self.ctx, req(), idle))
        self.ctx.registry.publish(idle, Publisher())
        self.assertFalse(redirect_applies(self.ctx, req(), idle))
        other = self.ctx.registry.fetch_or_create("redis.example.com", "live", "s")
        self.assertFalse(redirect_applies(self.ctx, req(vhost="redis.example.com"), other))
        plain = self.ctx.registry.fetch_or_create("plain.example.com", "live", "s")
        self.assertFalse(redirect_applies(self.ctx, req(vhost="plain.example.com"), plain))

    def test_discover_asks_coworkers_in_turn(self):
        asked = []
        answers = {
            "10.0.0.2:9091": ConnectionRefusedError(),
            "10.0.0.3:9092": {"code": 0, "data": {"origin": {"ip": "10.0.0.3", "port": 19351}}},
        }

        def get_json(_clock, url):
            asked.append(url)
            answer = answers[url.split("/")[2]]
            return defer.fail(answer) if isinstance(answer, Exception) else defer.succeed(answer)

        url = self.successResultOf(discover(self.ctx, req(), get_json=get_json))
        self.assertEqual(url, "rtmp://10.0.0.3:19351/live/s?token=1")
        self.assertEqual(asked[0], "http://10.0.0.2:9091/api/v1/clusters?vhost=__defaultVhost__&ip=10.0.0.1"
                                   "&app=live&stream=s&coworker=10.0.0.2%3A9091")
        # SRS's URL rule: a client that named the server by a name keeps it as the vhost in the tcUrl.
        url = self.successResultOf(discover(self.ctx, req(host="origin.local"), get_json=get_json))
        self.assertEqual(url, "rtmp://origin.local:19351/live/s?token=1")
        none = {"code": 0, "data": {"origin": None}}
        self.assertIsNone(self.successResultOf(discover(self.ctx, req(), get_json=lambda c, u: defer.succeed(none))))


class RedirectTests(ServerTestCase):
    conf = CONF

    def test_player_gets_the_302_after_play_start(self):
        found = defer.Deferred()
        import srs_twisted.cluster.coworkers as coworkers

        self.patch(coworkers, "discover", lambda ctx, r, log=None: found)
        player = self.connect("s", "play")
        self.assertEqual([e.code for e in player.of(cs.StatusReceived)], ["NetStream.Play.Reset", "NetStream.Play.Start"])
        found.callback("rtmp://10.0.0.3:19351/live/s")
        player.pump()
        (rejected,) = player.of(cs.Rejected)
        self.assertEqual((rejected.code, rejected.description, rejected.redirect),
                         ("NetConnection.Connect.Rejected", "RTMP 302 Redirect", "rtmp://10.0.0.3:19351/live/s"))
        status = player.of(cs.StatusReceived)[-1].info
        self.assertEqual(status["ex"], {"code": 302.0, "redirect": "rtmp://10.0.0.3:19351/live",
                                        "redirect2": "rtmp://10.0.0.3:19351/live/s"})
        self.assertTrue(player.transport.disconnecting)

    def test_no_coworker_has_it(self):
        import srs_twisted.cluster.coworkers as coworkers

        self.patch(coworkers, "discover", lambda ctx, r, log=None: defer.succeed(None))
        player = self.connect("s", "play")
        self.assertEqual(player.of(cs.Rejected), [])
        self.assertTrue(player.transport.disconnecting)


class EdgeFollowsTests(unittest.TestCase):
    def test_edge_pull_follows_a_redirect(self):
        ctx = make_ctx("vhost __defaultVhost__ { cluster { mode remote; origin 10.0.0.1:19350 10.0.0.2:19350; } }")
        rtmp = FakeConnector()
        ctx.registry.observers.append(EdgeObserver(ctx, connect_rtmp=rtmp, supervisor_options={"rng": lambda: 0.5}))
        add_player(ctx, ctx.registry.fetch_or_create("__defaultVhost__", "live", "s"))
        conn = rtmp.last.succeed()
        conn.redirect = "rtmp://10.0.0.9:19351/live/s"
        conn.lose()
        ctx.clock.advance(1)
        self.assertEqual(rtmp.last.target.endpoint, "10.0.0.9:19351")
        # Before Play.Start (another server's way): the attempt fails with the URL.
        from srs_twisted.rtmp.client import Redirected

        rtmp.last.fail(Redirected("rtmp://10.0.0.8:1935/live/s"))
        ctx.clock.advance(2)
        self.assertEqual(rtmp.last.target.endpoint, "10.0.0.8:1935")
        rtmp.last.fail()
        ctx.clock.advance(4)
        self.assertEqual(rtmp.last.target.endpoint, "10.0.0.2:19350")
