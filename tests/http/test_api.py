"""The SRS HTTP API: routes, fields, error codes, JSONP, CORS, auth, kick, raw API,
and every JSON reply checked against docs/openapi.yaml."""

from __future__ import annotations

import base64
import copy
import json
import os
import sys
import types
from pathlib import Path

import jsonschema
import yaml
from treq.testing import StubTreq
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest

import srs_twisted.http as http_package
from srs_twisted.config import ConfigError, load_string
from srs_twisted.context import ClientInfo, ServerContext
from srs_twisted.http import api as api_module
from srs_twisted.http.api import api_resource, atoi
from srs_twisted.live.packet import AUDIO, VIDEO, MediaPacket
from srs_twisted.url import StreamRequest

from ..codec.test_audio import ASC_FFMPEG_LC
from ..codec.test_avc import AVCC_1280x720

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"

AVC_SH = b"\x17\x00\x00\x00\x00" + AVCC_1280x720
AAC_SH = b"\xaf\x00" + ASC_FFMPEG_LC
START = 1_700_000_000.0

CONF = """
listen 1935;
http_api {
    enabled on;
    listen 1985;
    raw_api { enabled on; allow_reload on; }
}
vhost __defaultVhost__ { }
vhost hls.example.com {
    hls { enabled on; hls_fragment 4; }
}
"""


class Sink:
    """A player's end of a consumer: records bytes and publish events."""

    wire_key = "api-test"

    def __init__(self):
        self.data = b""
        self.events = []

    def encode(self, pkt):
        return pkt.payload

    def write(self, data):
        self.data += data

    def stream_published(self):
        self.events.append("published")

    def stream_unpublished(self):
        self.events.append("unpublished")


class Producer:
    stopped = False

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def stopProducing(self):
        self.stopped = True


class Counter:
    """A byte counter a test can move (what an adapter's recv/send callables read)."""

    def __init__(self, value=0):
        self.value = value

    def __call__(self):
        return self.value


def video(dts, key=False):
    return MediaPacket(VIDEO, dts, (b"\x17" if key else b"\x27") + b"\x01\x00\x00\x00" + bytes(200),
                       codec="h264", keyframe=key)


def audio(dts):
    return MediaPacket(AUDIO, dts, b"\xaf\x01" + bytes(50), codec="aac")


class World:
    """A server with streams, publishers and players, but no sockets."""

    def __init__(self, conf: str = CONF):
        self.clock = Clock()
        self.clock.advance(START)
        self.ctx = ServerContext(load_string(conf), self.clock)
        self.kicked: list[str] = []

    def client(self, vhost="__defaultVhost__", app="live", stream="livestream", kind="rtmp-play",
               ip="192.168.1.10", recv=0, send=0, host="127.0.0.1", kick=None) -> ClientInfo:
        req = StreamRequest(host=host, vhost=vhost, app=app, stream=stream, tc_url=f"rtmp://{host}/{app}")
        info = ClientInfo(ip=ip, type=kind, request=req, publish=kind.endswith("publish"),
                          started=self.clock.seconds(), recv_bytes=Counter(recv), send_bytes=Counter(send),
                          page_url="http://example.com/player.html", swf_url="http://example.com/p.swf")
        info.kick = kick or (lambda: self.kicked.append(info.id))
        self.ctx.add_client(info)
        return info

    def publish(self, vhost="__defaultVhost__", app="live", stream="livestream", headers=True):
        source = self.ctx.registry.fetch_or_create(vhost, app, stream)
        producer = Producer()

        def kick():
            self.kicked.append(info.id)
            self.ctx.registry.unpublish(source)
            self.ctx.remove_client(info)

        info = self.client(vhost, app, stream, kind="fmle-publish", ip="10.0.0.1", recv=0, kick=kick)
        info.source = source
        self.ctx.registry.publish(source, producer)
        source.publisher_info = info
        if headers:
            source.write(MediaPacket(VIDEO, 0, AVC_SH, codec="h264", keyframe=True, sequence_header=True))
            source.write(MediaPacket(AUDIO, 0, AAC_SH, codec="aac", sequence_header=True))
        return source, info

    def play(self, source, **kw):
        sink = Sink()
        consumer = source.subscribe(sink)
        info = self.client(source.vhost, source.app, source.stream, **kw)
        info.source = source
        info.kick = lambda: (self.kicked.append(info.id), consumer.close(), self.ctx.remove_client(info))
        return info, sink


class ApiTestCase(unittest.TestCase):
    conf = CONF

    def setUp(self):
        self.world = World(self.conf)
        self.ctx = self.world.ctx
        self.treq = StubTreq(api_resource(self.ctx, reload=self.reload))
        self.reloads = 0

    def reload(self):
        self.reloads += 1

    @defer.inlineCallbacks
    def request(self, method, path, headers=None, **kw):
        response = yield self.treq.request(method, "http://127.0.0.1:1985" + path, headers=headers,
                                           allow_redirects=False, **kw)
        body = yield response.content()
        response.body = body
        return response

    @defer.inlineCallbacks
    def get_json(self, path, method="GET", headers=None):
        response = yield self.request(method, path, headers)
        self.assertEqual(response.code, 200, response.body)
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["application/json"])
        return json.loads(response.body)

    def assertEnvelope(self, obj):
        self.assertEqual(obj["code"], 0)
        self.assertEqual(obj["server"], self.ctx.server_id)
        self.assertEqual(obj["service"], self.ctx.service_id)
        self.assertEqual(obj["pid"], str(os.getpid()))


class DescribeTests(ApiTestCase):
    @defer.inlineCallbacks
    def test_root(self):
        obj = yield self.get_json("/")
        self.assertEnvelope(obj)
        self.assertEqual(obj["urls"]["api"], "the api root")
        self.assertEqual(sorted(obj["urls"]["rtc"]["v1"]), ["nack", "play", "publish"])
        # the root pattern answers every path nothing longer answers, as SRS's mux
        self.assertEqual((yield self.get_json("/no/such/path"))["urls"], obj["urls"])

    @defer.inlineCallbacks
    def test_api_and_v1(self):
        obj = yield self.get_json("/api/")
        self.assertEnvelope(obj)
        self.assertEqual(obj["urls"], {"v1": "the api version 1.0"})
        v1 = yield self.get_json("/api/v1/")
        self.assertEnvelope(v1)
        for name in ("versions", "summaries", "rusages", "self_proc_stats", "system_proc_stats",
                     "meminfos", "authors", "features", "vhosts", "streams", "clients", "raw"):
            self.assertIn(name, v1["urls"])
        self.assertEqual(v1["tests"]["errors"], "always return an error 100")
        self.assertEqual((yield self.get_json("/api/v1/nothing/here"))["urls"], v1["urls"])
        self.assertEqual((yield self.get_json("/api/other"))["urls"], obj["urls"])

    @defer.inlineCallbacks
    def test_redirects_without_slash(self):
        for path in ("/api", "/api/v1", "/api/v1/vhosts", "/api/v1/streams", "/api/v1/clients"):
            r = yield self.request("GET", path)
            self.assertEqual(r.code, 302, path)
            self.assertEqual(r.headers.getRawHeaders("location"), [path + "/"])
            self.assertEqual(r.body, b"Redirect to " + path.encode() + b"/")
        r = yield self.request("GET", "/api/v1/streams?start=2&count=3")
        self.assertEqual(r.headers.getRawHeaders("location"), ["/api/v1/streams/?start=2&count=3"])

    @defer.inlineCallbacks
    def test_versions(self):
        obj = yield self.get_json("/api/v1/versions")
        self.assertEnvelope(obj)
        self.assertEqual(obj["data"], {"major": 7, "minor": 0, "revision": 18, "version": "7.0.18"})
        # TestRTCServerVersion POSTs to it
        obj = yield self.get_json("/api/v1/versions", method="POST")
        self.assertEqual(obj["data"]["major"], 7)

    @defer.inlineCallbacks
    def test_authors_and_features(self):
        obj = yield self.get_json("/api/v1/authors")
        self.assertEnvelope(obj)
        self.assertEqual(obj["data"]["license"], "MIT")
        self.assertTrue(obj["data"]["contributors"])
        obj = yield self.get_json("/api/v1/features")
        features = obj["data"]["features"]
        for name in ("ssl", "hls", "hds", "callback", "api", "httpd", "dvr", "transcode", "ingest",
                     "stat", "caster", "complex_send", "tcp_nodelay", "so_sendbuf", "mr"):
            self.assertIsInstance(features[name], bool, name)
        self.assertTrue(features["api"])
        self.assertFalse(features["hds"])

    @defer.inlineCallbacks
    def test_server_header(self):
        r = yield self.request("GET", "/api/v1/versions")
        self.assertIn(b"SRS/7.0.18", r.headers.getRawHeaders(b"server")[0])

    @defer.inlineCallbacks
    def test_test_routes(self):
        self.assertEqual((yield self.get_json("/api/v1/tests/errors")), {"code": 100})
        r = yield self.request("GET", "/api/v1/tests/redirects")
        self.assertEqual(r.code, 301)
        self.assertEqual(r.headers.getRawHeaders("location"), ["/api/v1/tests/errors"])
        obj = yield self.get_json("/api/v1/tests/requests?a=1", headers={"X-Test": ["yes"]})
        self.assertEqual(obj["data"]["path"], "/api/v1/tests/requests")
        self.assertEqual(obj["data"]["uri"], "/api/v1/tests/requests?a=1")
        self.assertEqual(obj["data"]["METHOD"], "GET")
        self.assertEqual(obj["data"]["headers"]["X-Test"], "yes")


class SystemTests(ApiTestCase):
    @defer.inlineCallbacks
    def test_summaries(self):
        self.world.client(recv=1000, send=2000)
        self.world.clock.advance(12.5)
        obj = yield self.get_json("/api/v1/summaries")
        self.assertEnvelope(obj)
        data = obj["data"]
        self.assertEqual(data["now_ms"], int((START + 12.5) * 1000))
        me = data["self"]
        self.assertEqual(me["version"], "7.0.18")
        self.assertEqual(me["pid"], os.getpid())
        self.assertEqual(me["ppid"], os.getppid())
        self.assertEqual(me["cwd"], os.getcwd())
        self.assertEqual(me["argv"], " ".join(sys.argv))
        self.assertGreater(me["mem_kbyte"], 0)
        self.assertTrue(0 < me["mem_percent"] < 1)
        self.assertGreaterEqual(me["cpu_percent"], 0)
        self.assertEqual(me["srs_uptime"], 12)
        system = data["system"]
        self.assertEqual(system["srs_recv_bytes"], 1000)
        self.assertEqual(system["srs_send_bytes"], 2000)
        self.assertEqual(system["srs_sample_time"], data["now_ms"])
        self.assertEqual(system["conn_srs"], 1)
        self.assertEqual(system["cpus"], os.sysconf("SC_NPROCESSORS_CONF"))
        self.assertEqual(system["cpus_online"], os.sysconf("SC_NPROCESSORS_ONLN"))
        self.assertGreater(system["mem_ram_kbyte"], 0)
        self.assertGreater(system["uptime"], 0)
        self.assertGreaterEqual(system["load_1m"], 0)
        self.assertGreaterEqual(system["conn_sys"], system["conn_sys_tw"])
        self.assertGreater(system["net_sample_time"], 0)
        self.assertGreater(system["net_recv_bytes"] + system["net_recvi_bytes"], 0)
        self.assertTrue(data["ok"])

    @defer.inlineCallbacks
    def test_rusages(self):
        obj = yield self.get_json("/api/v1/rusages")
        data = obj["data"]
        self.assertTrue(data["ok"])
        self.assertGreater(data["ru_maxrss"], 0)
        self.assertGreater(data["ru_minflt"], 0)
        self.assertIsInstance(data["ru_utime"], int)

    @defer.inlineCallbacks
    def test_self_proc_stats(self):
        obj = yield self.get_json("/api/v1/self_proc_stats")
        data = obj["data"]
        self.assertTrue(data["ok"])
        self.assertEqual(data["pid"], os.getpid())
        self.assertEqual(data["ppid"], os.getppid())
        self.assertTrue(data["comm"].startswith("(") and data["comm"].endswith(")"))
        self.assertIn(data["state"], "RSDTtZXIW")
        self.assertGreater(data["rss"], 0)
        self.assertGreaterEqual(data["num_threads"], 1)

    @defer.inlineCallbacks
    def test_system_proc_stats_and_meminfos(self):
        obj = yield self.get_json("/api/v1/system_proc_stats")
        data = obj["data"]
        self.assertTrue(data["ok"])
        self.assertGreater(data["user"] + data["sys"] + data["idle"], 0)
        obj = yield self.get_json("/api/v1/meminfos")
        m = obj["data"]
        self.assertTrue(m["ok"])
        self.assertEqual(m["MemActive"], m["MemTotal"] - m["MemFree"])
        self.assertEqual(m["RealInUse"], m["MemActive"] - m["Buffers"] - m["Cached"])
        self.assertEqual(m["NotInUse"], m["MemTotal"] - m["RealInUse"])
        self.assertAlmostEqual(m["percent_ram"], m["RealInUse"] / m["MemTotal"])


class StreamTests(ApiTestCase):
    def populate(self):
        w = self.world
        self.source, self.pub = w.publish()
        self.source.write(video(40, key=True))
        for i in range(2, 6):
            self.source.write(video(i * 40))
            self.source.write(audio(i * 40))
        self.player, self.sink = w.play(self.source, recv=500, send=40_000)

    @defer.inlineCallbacks
    def test_stream_fields(self):
        self.populate()
        vhosts = (yield self.get_json("/api/v1/vhosts/"))["vhosts"]
        default_id = [v["id"] for v in vhosts if v["name"] == "__defaultVhost__"][0]
        obj = yield self.get_json("/api/v1/streams/")
        self.assertEnvelope(obj)
        self.assertEqual(len(obj["streams"]), 1)
        s = obj["streams"][0]
        stats = self.source.stats
        self.assertEqual(s["id"], self.source.id)
        self.assertRegex(s["id"], r"^vid-[a-z0-9]{7}$")
        self.assertEqual(s["name"], "livestream")
        self.assertEqual(s["vhost"], default_id)
        self.assertEqual(s["app"], "live")
        self.assertEqual(s["tcUrl"], "rtmp://127.0.0.1/live")
        self.assertEqual(s["url"], "/live/livestream")
        self.assertEqual(s["live_ms"], int(START * 1000))
        # SRS counts every connection on the stream: the publisher and the player
        self.assertEqual(s["clients"], 2)
        self.assertEqual(s["frames"], 5)
        self.assertEqual(s["recv_bytes"], stats.recv_bytes)
        self.assertGreater(s["recv_bytes"], 5 * 205)
        self.assertEqual(s["send_bytes"], len(self.sink.data))
        self.assertGreater(s["send_bytes"], 0)
        self.assertEqual(s["kbps"], {"recv_30s": 0, "send_30s": 0})
        self.assertEqual(s["publish"], {"active": True, "cid": self.pub.id})
        self.assertEqual(s["video"], {"codec": "H264", "profile": "High", "level": "3.1",
                                      "width": 1280, "height": 720})
        self.assertEqual(s["audio"], {"codec": "AAC", "sample_rate": 44100, "channel": 2, "profile": "LC"})
        one = yield self.get_json(f"/api/v1/streams/{self.source.id}")
        self.assertEnvelope(one)
        self.assertEqual(one["stream"], s)

    @defer.inlineCallbacks
    def test_stream_kbps(self):
        self.populate()
        yield self.get_json("/api/v1/streams/")
        for second in range(1, 11):
            self.world.clock.advance(1)
            for i in range(25):
                self.source.write(video(second * 1000 + i * 40, key=(i == 0)))
        s = (yield self.get_json(f"/api/v1/streams/{self.source.id}"))["stream"]
        # 25 frames of 205 bytes a second: 41 kbit/s
        self.assertEqual(s["kbps"]["recv_30s"], 41)
        self.assertGreater(s["kbps"]["send_30s"], 0)

    @defer.inlineCallbacks
    def test_stream_without_publisher(self):
        source = self.ctx.registry.fetch_or_create("__defaultVhost__", "live", "waiting")
        self.world.play(source)
        s = (yield self.get_json(f"/api/v1/streams/{source.id}"))["stream"]
        self.assertEqual(s["publish"], {"active": False})
        self.assertIsNone(s["video"])
        self.assertIsNone(s["audio"])
        self.assertEqual(s["clients"], 1)
        self.assertEqual(s["tcUrl"], "rtmp://127.0.0.1/live")  # a player's, with no publisher
        self.assertEqual(s["frames"], 0)

    @defer.inlineCallbacks
    def test_stream_on_another_vhost(self):
        source, _ = self.world.publish(vhost="hls.example.com", app="app", stream="s1", headers=False)
        s = (yield self.get_json(f"/api/v1/streams/{source.id}"))["stream"]
        self.assertEqual(s["url"], "hls.example.com/app/s1")
        self.assertIsNone(s["video"])
        vhosts = {v["name"]: v for v in (yield self.get_json("/api/v1/vhosts/"))["vhosts"]}
        self.assertEqual(s["vhost"], vhosts["hls.example.com"]["id"])

    @defer.inlineCallbacks
    def test_pages(self):
        for i in range(15):
            self.world.publish(stream=f"s{i:02}", headers=False)
        names = lambda obj: [s["name"] for s in obj["streams"]]  # noqa: E731
        self.assertEqual(names((yield self.get_json("/api/v1/streams/"))), [f"s{i:02}" for i in range(10)])
        # count has a floor of 10, as SRS's max(10, count)
        self.assertEqual(len((yield self.get_json("/api/v1/streams/?count=2"))["streams"]), 10)
        self.assertEqual(len((yield self.get_json("/api/v1/streams/?count=20"))["streams"]), 15)
        self.assertEqual(names((yield self.get_json("/api/v1/streams/?start=10"))),
                         [f"s{i:02}" for i in range(10, 15)])
        self.assertEqual(len((yield self.get_json("/api/v1/streams/?start=-5&count=x"))["streams"]), 10)
        self.assertEqual((yield self.get_json("/api/v1/streams/?start=99"))["streams"], [])
        clients = yield self.get_json("/api/v1/clients/?start=12&count=1")
        self.assertEqual([c["name"] for c in clients["clients"]], ["s12", "s13", "s14"])

    @defer.inlineCallbacks
    def test_count_is_capped(self):
        self.patch(api_module, "MAX_COUNT", 12)
        for i in range(15):
            self.world.publish(stream=f"s{i:02}", headers=False)
        self.assertEqual(len((yield self.get_json("/api/v1/streams/?count=1000000"))["streams"]), 12)
        self.assertEqual(len((yield self.get_json("/api/v1/streams/?start=12&count=99"))["streams"]), 3)
        self.assertEqual(len((yield self.get_json("/api/v1/clients/?count=99"))["clients"]), 12)

    def test_count_cap_is_1000(self):
        self.assertEqual(api_module.MAX_COUNT, 1000)

    @defer.inlineCallbacks
    def test_stream_views_do_not_scan_every_client(self):
        """A stream's view reads that stream's clients only: listing streams
        or showing one never walks the server's whole client table (with
        1,000 streams that walk per stream took seconds)."""
        self.populate()
        others = [self.world.publish(stream=f"other{i}", headers=False)[0] for i in range(30)]
        for source in others:
            self.world.play(source)
        scans = []

        class Clients(dict):
            def __iter__(self):
                scans.append("iter")
                return super().__iter__()

            def values(self):
                scans.append("values")
                return super().values()

            def items(self):
                scans.append("items")
                return super().items()

        self.ctx.clients = Clients(self.ctx.clients)
        one = (yield self.get_json(f"/api/v1/streams/{self.source.id}"))["stream"]
        listed = (yield self.get_json("/api/v1/streams/?count=100"))["streams"]
        self.assertEqual(scans, [])
        self.assertEqual(one["clients"], 2)
        self.assertEqual(len(listed), 31)
        self.assertEqual({s["clients"] for s in listed}, {2})
        # the per-stream index follows clients as they leave
        self.ctx.remove_client(self.player)
        self.assertEqual((yield self.get_json(f"/api/v1/streams/{self.source.id}"))["stream"]["clients"], 1)

    @defer.inlineCallbacks
    def test_stream_errors_and_methods(self):
        self.populate()
        self.assertEqual((yield self.get_json("/api/v1/streams/vid-nothing")), {"code": 2048})
        # SRS looks the stream up before it looks at the method
        obj = yield self.get_json("/api/v1/streams/vid-nothing", method="DELETE")
        self.assertEqual(obj, {"code": 2048})
        for method in ("POST", "PUT", "DELETE"):
            r = yield self.request(method, f"/api/v1/streams/{self.source.id}")
            self.assertEqual(r.code, 405, method)
            self.assertEqual(r.body, b"Method Not Allowed")
            r = yield self.request(method, "/api/v1/streams/")
            self.assertEqual(r.code, 405, method)


class ClientTests(ApiTestCase):
    @defer.inlineCallbacks
    def test_client_fields(self):
        source, pub = self.world.publish()
        player, _ = self.world.play(source, recv=3000, send=90_000)
        self.world.clock.advance(2.5)
        ids = {v["name"]: v["id"] for v in (yield self.get_json("/api/v1/vhosts/"))["vhosts"]}
        obj = yield self.get_json("/api/v1/clients/")
        self.assertEnvelope(obj)
        by_id = {c["id"]: c for c in obj["clients"]}
        self.assertEqual(set(by_id), {pub.id, player.id})
        c = by_id[player.id]
        self.assertEqual(c["vhost"], ids["__defaultVhost__"])
        self.assertEqual(c["stream"], source.id)
        self.assertEqual(c["ip"], "192.168.1.10")
        self.assertEqual(c["pageUrl"], "http://example.com/player.html")
        self.assertEqual(c["swfUrl"], "http://example.com/p.swf")
        self.assertEqual(c["tcUrl"], "rtmp://127.0.0.1/live")
        self.assertEqual(c["url"], "/live/livestream")
        self.assertEqual(c["name"], "livestream")
        self.assertEqual(c["type"], "rtmp-play")
        self.assertIs(c["publish"], False)
        self.assertEqual(c["alive"], 2.5)
        self.assertEqual(c["send_bytes"], 90_000)
        self.assertEqual(c["recv_bytes"], 3000)
        # the first read gives the average since the client connected
        self.assertEqual(c["kbps"], {"recv_30s": 9, "send_30s": 288})
        p = by_id[pub.id]
        self.assertEqual(p["type"], "fmle-publish")
        self.assertIs(p["publish"], True)
        self.assertEqual(p["ip"], "10.0.0.1")
        one = yield self.get_json(f"/api/v1/clients/{player.id}")
        self.assertEnvelope(one)
        self.assertEqual(one["client"], c)

    @defer.inlineCallbacks
    def test_client_kbps_window(self):
        source, _ = self.world.publish()
        player, _ = self.world.play(source)
        counter = player.send_bytes
        for _ in range(40):
            self.world.clock.advance(1)
            counter.value += 125_000  # 1000 kbit/s
            yield self.get_json(f"/api/v1/clients/{player.id}")
        c = (yield self.get_json(f"/api/v1/clients/{player.id}"))["client"]
        self.assertEqual(c["kbps"]["send_30s"], 1000)

    @defer.inlineCallbacks
    def test_unidentified_clients_are_not_listed(self):
        idle = ClientInfo(ip="1.2.3.4")
        self.ctx.add_client(idle)
        self.assertEqual((yield self.get_json("/api/v1/clients/"))["clients"], [])
        # but a kick still reaches it
        kicked = []
        idle.kick = lambda: kicked.append(True)
        obj = yield self.get_json(f"/api/v1/clients/{idle.id}", method="DELETE")
        self.assertEnvelope(obj)
        self.assertEqual(kicked, [True])

    @defer.inlineCallbacks
    def test_unknown_client(self):
        self.assertEqual((yield self.get_json("/api/v1/clients/nobody")), {"code": 2049})
        self.assertEqual((yield self.get_json("/api/v1/clients/nobody", method="DELETE")), {"code": 2049})
        self.assertEqual((yield self.get_json("/api/v1/clients/", method="DELETE")), {"code": 2049})

    @defer.inlineCallbacks
    def test_methods(self):
        source, _ = self.world.publish()
        player, _ = self.world.play(source)
        for method in ("POST", "PUT"):
            r = yield self.request(method, f"/api/v1/clients/{player.id}")
            self.assertEqual(r.code, 405)
            r = yield self.request(method, "/api/v1/clients/")
            self.assertEqual(r.code, 405)
        r = yield self.request("POST", "/api/v1/vhosts/")
        self.assertEqual(r.code, 405)

    @defer.inlineCallbacks
    def test_kick_player(self):
        source, _ = self.world.publish()
        player, sink = self.world.play(source)
        obj = yield self.get_json(f"/api/v1/clients/{player.id}", method="DELETE")
        self.assertEnvelope(obj)
        self.assertEqual(set(obj), {"code", "server", "service", "pid"})
        self.assertEqual(self.world.kicked, [player.id])
        self.assertEqual(source.consumers, [])
        self.assertNotIn(player.id, self.ctx.clients)
        self.assertEqual((yield self.get_json(f"/api/v1/clients/{player.id}")), {"code": 2049})

    @defer.inlineCallbacks
    def test_kick_publisher_ends_the_stream(self):
        source, pub = self.world.publish()
        _, sink = self.world.play(source)
        s = (yield self.get_json(f"/api/v1/streams/{source.id}"))["stream"]
        cid = s["publish"]["cid"]
        self.assertEqual(cid, pub.id)
        obj = yield self.get_json(f"/api/v1/clients/{cid}", method="DELETE")
        self.assertEqual(obj["code"], 0)
        self.assertEqual(self.world.kicked, [pub.id])
        self.assertEqual(sink.events, ["unpublished"])
        self.assertFalse(source.active)
        s = (yield self.get_json(f"/api/v1/streams/{source.id}"))["stream"]
        self.assertEqual(s["publish"], {"active": False})
        self.assertIsNone(s["video"])
        self.assertEqual(s["clients"], 1)

    @defer.inlineCallbacks
    def test_jsonp_method_override(self):
        source, _ = self.world.publish()
        player, _ = self.world.play(source)
        # without a callback, ?method= is ignored (a plain GET)
        obj = yield self.get_json(f"/api/v1/clients/{player.id}?method=DELETE")
        self.assertEqual(obj["client"]["id"], player.id)
        self.assertEqual(self.world.kicked, [])
        r = yield self.request("GET", f"/api/v1/clients/{player.id}?callback=cb&method=DELETE")
        self.assertEqual(r.headers.getRawHeaders("content-type"), ["text/javascript"])
        self.assertTrue(r.body.startswith(b"cb(") and r.body.endswith(b")"))
        self.assertEqual(json.loads(r.body[3:-1])["code"], 0)
        self.assertEqual(self.world.kicked, [player.id])

    @defer.inlineCallbacks
    def test_departed_clients_stay_in_vhost_bytes(self):
        source, _ = self.world.publish()
        player, _ = self.world.play(source, recv=10, send=7000)
        vhost = lambda obj: [v for v in obj["vhosts"] if v["name"] == "__defaultVhost__"][0]  # noqa: E731
        v = vhost((yield self.get_json("/api/v1/vhosts/")))
        self.assertEqual((v["clients"], v["send_bytes"], v["recv_bytes"]), (2, 7000, 10))
        self.assertEqual(v["streams"], 1)
        player.kick()
        v = vhost((yield self.get_json("/api/v1/vhosts/")))
        self.assertEqual((v["clients"], v["send_bytes"], v["recv_bytes"]), (1, 7000, 10))


class VhostTests(ApiTestCase):
    @defer.inlineCallbacks
    def test_vhosts(self):
        self.world.publish(vhost="hls.example.com", stream="a", headers=False)
        self.world.client(vhost="seen.example.com", stream="b")
        obj = yield self.get_json("/api/v1/vhosts/")
        self.assertEnvelope(obj)
        names = [v["name"] for v in obj["vhosts"]]
        self.assertEqual(names, ["__defaultVhost__", "hls.example.com", "seen.example.com"])
        by_name = {v["name"]: v for v in obj["vhosts"]}
        d, h, s = by_name["__defaultVhost__"], by_name["hls.example.com"], by_name["seen.example.com"]
        for v in (d, h, s):
            self.assertRegex(v["id"], r"^vid-[a-z0-9]{7}$")
            self.assertEqual(v["kbps"], {"recv_30s": 0, "send_30s": 0})
        self.assertEqual(len({d["id"], h["id"], s["id"]}), 3)
        self.assertEqual(d["hls"], {"enabled": False})
        self.assertEqual(h["hls"], {"enabled": True, "fragment": 4.0})
        self.assertTrue(d["enabled"] and h["enabled"])
        self.assertFalse(s["enabled"])
        self.assertEqual((h["clients"], h["streams"]), (1, 1))
        self.assertEqual((s["clients"], s["streams"]), (1, 0))
        self.assertEqual((d["clients"], d["streams"]), (0, 0))
        # ids are stable
        again = yield self.get_json("/api/v1/vhosts/")
        self.assertEqual([v["id"] for v in again["vhosts"]], [d["id"], h["id"], s["id"]])
        one = yield self.get_json(f"/api/v1/vhosts/{h['id']}")
        self.assertEnvelope(one)
        self.assertEqual(one["vhost"], h)
        # and shared by every API resource of the same server
        other = StubTreq(api_resource(self.ctx))
        r = yield other.get(f"http://h/api/v1/vhosts/{h['id']}")
        self.assertEqual(json.loads((yield r.content()))["vhost"]["name"], "hls.example.com")

    @defer.inlineCallbacks
    def test_unknown_vhost(self):
        self.assertEqual((yield self.get_json("/api/v1/vhosts/vid-nothing")), {"code": 2014})


class JsonpTests(ApiTestCase):
    @defer.inlineCallbacks
    def test_jsonp_wraps_replies_and_errors(self):
        r = yield self.request("GET", "/api/v1/versions?callback=jQuery_1.2-3")
        self.assertEqual(r.code, 200)
        self.assertEqual(r.headers.getRawHeaders("content-type"), ["text/javascript"])
        self.assertTrue(r.body.startswith(b"jQuery_1.2-3("))
        self.assertEqual(json.loads(r.body[len(b"jQuery_1.2-3(") : -1])["data"]["version"], "7.0.18")
        r = yield self.request("GET", "/api/v1/streams/none?callback=f")
        self.assertEqual(r.body, b'f({"code":2048})')

    @defer.inlineCallbacks
    def test_invalid_callback(self):
        r = yield self.request("GET", "/api/v1/versions?callback=alert(1)")
        self.assertEqual(r.code, 400)

    @defer.inlineCallbacks
    def test_empty_callback_is_plain_json(self):
        obj = yield self.get_json("/api/v1/versions?callback=")
        self.assertEqual(obj["data"]["major"], 7)


class CorsTests(ApiTestCase):
    CORS = {
        "access-control-allow-origin": "*",
        "access-control-allow-headers": "*",
        "access-control-allow-methods": "*",
        "access-control-expose-headers": "*",
        "access-control-allow-credentials": "false",
        "access-control-request-private-network": "true",
    }

    @defer.inlineCallbacks
    def test_cors_headers_with_origin(self):
        r = yield self.request("GET", "/api/v1/versions", headers={"Origin": ["http://example.com"]})
        for name, value in self.CORS.items():
            self.assertEqual(r.headers.getRawHeaders(name), [value], name)
        r = yield self.request("GET", "/api/v1/versions")
        self.assertIsNone(r.headers.getRawHeaders("access-control-allow-origin"))

    @defer.inlineCallbacks
    def test_preflight(self):
        r = yield self.request("OPTIONS", "/api/v1/clients/someone",
                               headers={"Origin": ["http://example.com"],
                                        "Access-Control-Request-Method": ["DELETE"]})
        self.assertEqual(r.code, 200)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.headers.getRawHeaders("access-control-allow-methods"), ["*"])
        # "*" does not cover Authorization in browsers: the console on another port sends Basic auth
        self.assertEqual(r.headers.getRawHeaders("access-control-allow-headers"), ["*, authorization"])


class NoCrossdomainTests(ApiTestCase):
    conf = CONF.replace("listen 1985;", "listen 1985; crossdomain off;")

    @defer.inlineCallbacks
    def test_no_cors(self):
        r = yield self.request("GET", "/api/v1/versions", headers={"Origin": ["http://example.com"]})
        self.assertIsNone(r.headers.getRawHeaders("access-control-allow-origin"))
        r = yield self.request("OPTIONS", "/api/v1/versions", headers={"Origin": ["http://example.com"]})
        self.assertEqual(r.code, 405)


class AuthTests(ApiTestCase):
    conf = CONF.replace("listen 1985;", "listen 1985; auth { enabled on; username admin; password s3cr:et; }")

    def basic(self, user, password):
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": [f"Basic {token}"]}

    @defer.inlineCallbacks
    def test_missing_credentials(self):
        r = yield self.request("GET", "/api/v1/streams/")
        self.assertEqual(r.code, 401)
        self.assertEqual(r.headers.getRawHeaders("www-authenticate"), ["Basic"])

    @defer.inlineCallbacks
    def test_wrong_credentials(self):
        for headers in (self.basic("admin", "wrong"), self.basic("root", "s3cr:et"),
                        {"Authorization": ["Basic !!!notbase64"]}, {"Authorization": ["Bearer s3cr:et"]},
                        {"Authorization": ["Basic " + base64.b64encode(b"admin").decode()]}):
            r = yield self.request("GET", "/api/v1/versions", headers=headers)
            self.assertEqual(r.code, 401, headers)
            self.assertEqual(r.headers.getRawHeaders("www-authenticate"), ["Basic"])
        # a kick without credentials kicks nobody
        source, _ = self.world.publish()
        player, _ = self.world.play(source)
        r = yield self.request("DELETE", f"/api/v1/clients/{player.id}")
        self.assertEqual(r.code, 401)
        self.assertEqual(self.world.kicked, [])

    @defer.inlineCallbacks
    def test_right_credentials(self):
        r = yield self.request("GET", "/api/v1/versions", headers=self.basic("admin", "s3cr:et"))
        self.assertEqual(r.code, 200)
        self.assertEqual(json.loads(r.body)["data"]["major"], 7)

    @defer.inlineCallbacks
    def test_open_paths(self):
        # SRS only guards paths under /api/; preflights pass before auth
        self.assertEqual((yield self.request("GET", "/")).code, 200)
        self.assertEqual((yield self.request("GET", "/metrics")).code, 200)
        r = yield self.request("OPTIONS", "/api/v1/streams/", headers={"Origin": ["http://a"]})
        self.assertEqual(r.code, 200)


class AuthPathSpellingTests(unittest.TestCase):
    """Issue 9.1: the auth check and the router see the same decoded, normalized
    path, so no spelling of a guarded URL answers without credentials.  The request
    line goes in byte for byte (a client library would rewrite it), to the API on
    its own port and to the API sharing the HTTP server's port."""

    conf = CONF.replace("listen 1985;", "listen 1985; auth { enabled on; username admin; password pw; }")
    CREDENTIALS = {"Authorization": "Basic " + base64.b64encode(b"admin:pw").decode()}
    # Each spelling names the route after it for the router.
    SPELLINGS = {
        b"/%61pi/v1/summaries": "summaries",
        b"/api%2fv1/versions": "versions",
        b"/api%2Fv1%2Fversions": "versions",
        b"/%2561pi/v1/versions": None,  # decoded once only: "/%61pi/..." is no route
        b"//api/v1/versions": "versions",
        b"/api//v1///versions": "versions",
        b"/x/../api/v1/versions": "versions",
        b"/api/v1/./versions": "versions",
        b"/%2e%2e/api/v1/versions": "versions",
        b"/api/v1/nothing/%2E%2E/versions": "versions",
        b"/api/v1/versions/.": None,  # "/api/v1/versions/" (RFC 3986): the v1 listing
        b"/API/v1/versions": None,
        b"/Api/V1/Summaries": None,
    }

    def setUp(self):
        from twisted.web.server import Site

        from srs_twisted.http.server import make_site

        self.world = World(self.conf)
        self.reloads = []
        static = self.mktemp()
        os.makedirs(static)
        api = api_resource(self.world.ctx, reload=lambda: self.reloads.append(1))
        self.sites = {"api port": Site(api), "shared port": make_site(self.world.ctx, static, api)}

    def get(self, site, target, headers=None, method="GET"):
        from .raw import request

        response, _, _ = request(site, method, target, headers)
        self.assertIsNotNone(response, target)
        return response

    def test_every_spelling_needs_credentials(self):
        for where, site in self.sites.items():
            for target, route in self.SPELLINGS.items():
                r = self.get(site, target)
                if route is None:  # no route of the API's: nothing but its public root, if anything
                    if r.status == 200:
                        self.assertNotIn("data", json.loads(r.body), (where, target))
                    continue
                self.assertEqual(r.status, 401, (where, target, r.body[:200]))
                self.assertEqual(r.header("www-authenticate"), "Basic", (where, target))
                self.assertEqual(r.body, b"", (where, target))

    def test_with_credentials_the_spellings_reach_their_route(self):
        for where, site in self.sites.items():
            for target, route in self.SPELLINGS.items():
                if route is None:
                    continue
                r = self.get(site, target, self.CREDENTIALS)
                self.assertEqual(r.status, 200, (where, target))
                data = json.loads(r.body).get("data", {})
                self.assertIn("major" if route == "versions" else "self", data, (where, target))

    def test_raw_api_and_jsonp_overrides_are_guarded(self):
        source, _ = self.world.publish()
        player, _ = self.world.play(source)
        for where, site in self.sites.items():
            for target in (b"/%61pi/v1/raw?rpc=raw", b"/api%2Fv1/raw?rpc=reload", b"//api/v1/raw?rpc=reload",
                           b"/%61pi/v1/clients/" + player.id.encode() + b"?callback=f&method=DELETE",
                           b"/api/v1/x/..%2fclients/" + player.id.encode() + b"?callback=f&method=DELETE"):
                for method in ("GET", "POST", "DELETE"):
                    r = self.get(site, target, method=method)
                    self.assertEqual(r.status, 401, (where, target, method))
            self.world.clock.advance(0)
            self.assertEqual(self.reloads, [])
            self.assertEqual(self.world.kicked, [])
        # the same override with credentials does kick
        target = b"/%61pi/v1/clients/" + player.id.encode() + b"?callback=f&method=DELETE"
        r = self.get(self.sites["api port"], target, self.CREDENTIALS)
        self.assertEqual((r.status, r.body), (200, b'f({"code":0,"server":"%s","service":"%s","pid":"%d"})' % (
            self.world.ctx.server_id.encode(), self.world.ctx.service_id.encode(), os.getpid())))
        self.assertEqual(self.world.kicked, [player.id])

    def test_undecodable_path_is_400(self):
        for site in self.sites.values():
            for target in (b"/api/v1/%ff", b"/%61pi/v1/versions%00"):
                self.assertEqual(self.get(site, target, self.CREDENTIALS).status, 400, target)


class BearerTests(ApiTestCase):
    conf = CONF.replace("listen 1985;", "listen 1985; auth { enabled on; type bearer; token t0k3n; }")

    @defer.inlineCallbacks
    def test_bearer(self):
        r = yield self.request("GET", "/api/v1/versions")
        self.assertEqual(r.code, 401)
        self.assertEqual(r.headers.getRawHeaders("www-authenticate"), ["Bearer"])
        r = yield self.request("GET", "/api/v1/versions", headers={"Authorization": ["Bearer nope"]})
        self.assertEqual(r.code, 401)
        r = yield self.request("GET", "/api/v1/versions", headers={"Authorization": ["Bearer t0k3n"]})
        self.assertEqual(r.code, 200)


class RawTests(ApiTestCase):
    @defer.inlineCallbacks
    def test_raw_settings(self):
        obj = yield self.get_json("/api/v1/raw?rpc=raw")
        self.assertEqual(obj, {"code": 0, "http_api": {
            "enabled": True, "listen": "1985", "crossdomain": True,
            "raw_api": {"enabled": True, "allow_reload": True, "allow_query": False, "allow_update": False}}})

    @defer.inlineCallbacks
    def test_reload_and_fetch(self):
        fetch = yield self.get_json("/api/v1/raw?rpc=reload-fetch")
        self.assertEqual(fetch, {"code": 0, "data": {"err": 0, "msg": "Success", "state": 0, "rid": ""}})
        self.assertEqual((yield self.get_json("/api/v1/raw?rpc=reload")), {"code": 0})
        # like SRS, the reload runs after the reply
        self.assertEqual(self.reloads, 0)
        self.world.clock.advance(0)
        self.assertEqual(self.reloads, 1)
        data = (yield self.get_json("/api/v1/raw?rpc=reload-fetch"))["data"]
        self.assertEqual((data["err"], data["msg"], data["state"]), (0, "Success", 90))
        self.assertRegex(data["rid"], r"^[a-z0-9]{7}$")

    @defer.inlineCallbacks
    def test_reload_failure(self):
        def bad():
            raise ConfigError("<string>", 3, 1, "unknown directive")

        self.treq = StubTreq(api_resource(self.ctx, reload=bad))
        self.assertEqual((yield self.get_json("/api/v1/raw?rpc=reload")), {"code": 0})
        self.world.clock.advance(0)
        data = (yield self.get_json("/api/v1/raw?rpc=reload-fetch"))["data"]
        self.assertEqual((data["err"], data["state"]), (1023, 10))
        self.assertIn("unknown directive", data["msg"])

    @defer.inlineCallbacks
    def test_unknown_rpc(self):
        self.assertEqual((yield self.get_json("/api/v1/raw")), {"code": 1060})
        self.assertEqual((yield self.get_json("/api/v1/raw?rpc=query")), {"code": 1060})

    @defer.inlineCallbacks
    def test_no_reload_callable(self):
        self.treq = StubTreq(api_resource(self.ctx))
        self.assertEqual((yield self.get_json("/api/v1/raw?rpc=reload")), {"code": 1061})


class RawDisabledTests(ApiTestCase):
    conf = CONF.replace("raw_api { enabled on; allow_reload on; }", "")

    @defer.inlineCallbacks
    def test_disabled(self):
        self.assertEqual((yield self.get_json("/api/v1/raw?rpc=reload")), {"code": 1061})
        self.assertEqual((yield self.get_json("/api/v1/raw?rpc=reload-fetch")), {"code": 1061})
        self.world.clock.advance(0)
        self.assertEqual(self.reloads, 0)
        # rpc=raw answers even so
        obj = yield self.get_json("/api/v1/raw?rpc=raw")
        self.assertFalse(obj["http_api"]["raw_api"]["enabled"])


class ReloadNotAllowedTests(ApiTestCase):
    conf = CONF.replace("allow_reload on;", "allow_reload off;")

    @defer.inlineCallbacks
    def test_not_allowed(self):
        self.assertEqual((yield self.get_json("/api/v1/raw?rpc=reload")), {"code": 1061})
        self.assertEqual(self.reloads, 0)


class MetricsTests(ApiTestCase):
    def fake_exporter(self):
        calls = []
        fake = types.ModuleType("srs_twisted.http.exporter")

        def render(ctx):
            calls.append(ctx)
            return b"srs_streams 0\n", "text/plain; version=0.0.4; charset=utf-8"

        fake.render = render
        had = "exporter" in vars(http_package)
        old = vars(http_package).get("exporter")
        old_module = sys.modules.get("srs_twisted.http.exporter")
        http_package.exporter = fake
        sys.modules["srs_twisted.http.exporter"] = fake

        def restore():
            if had:
                http_package.exporter = old
            else:
                del http_package.exporter
            if old_module is None:
                sys.modules.pop("srs_twisted.http.exporter", None)
            else:
                sys.modules["srs_twisted.http.exporter"] = old_module

        self.addCleanup(restore)
        return calls

    @defer.inlineCallbacks
    def test_disabled(self):
        self.assertEqual((yield self.get_json("/metrics")), {"code": 1090})

    @defer.inlineCallbacks
    def test_enabled_delegates_to_exporter(self):
        calls = self.fake_exporter()
        self.ctx.config = load_string(CONF + "exporter { enabled on; }")
        r = yield self.request("GET", "/metrics")
        self.assertEqual(r.code, 200)
        self.assertEqual(r.body, b"srs_streams 0\n")
        self.assertEqual(r.headers.getRawHeaders("content-type"),
                         ["text/plain; version=0.0.4; charset=utf-8"])
        self.assertEqual(calls, [self.ctx])


class AtoiTests(unittest.TestCase):
    def test_atoi(self):
        self.assertEqual([atoi(x) for x in ("", "12", " 7x", "-3", "+4", "x1", "1.9")],
                         [0, 12, 7, -3, 4, 0, 1])


# ---- the OpenAPI document -----------------------------------------------------------------


def _inline(node, components):
    """Resolve $refs and turn OpenAPI's ``nullable`` into JSON Schema."""
    if isinstance(node, list):
        return [_inline(n, components) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _inline(copy.deepcopy(components[name]), components)
    out = {k: _inline(v, components) for k, v in node.items() if k not in ("nullable", "example")}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


_SPEC: dict = {}


def openapi() -> dict:
    if not _SPEC:
        _SPEC.update(yaml.safe_load(OPENAPI.read_text(encoding="utf-8")))
    return _SPEC


class OpenApiTests(ApiTestCase):
    def setUp(self):
        super().setUp()
        self.spec = openapi()

    def schema(self, path, method="get", status="200", content="application/json"):
        op = self.spec["paths"][path][method]
        response = op["responses"][status]
        if "$ref" in response:
            response = self.spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
        return _inline(response["content"][content]["schema"], self.spec["components"]["schemas"])

    @defer.inlineCallbacks
    def check(self, path, url, method="GET", expect_code=0):
        obj = yield self.get_json(url, method=method)
        jsonschema.Draft7Validator(self.schema(path, method.lower())).validate(obj)
        self.assertEqual(obj["code"], expect_code, url)
        return obj

    def test_document(self):
        self.assertEqual(self.spec["openapi"], "3.0.3")
        self.assertEqual(self.spec["info"]["version"], "7.0.18")
        for path, ops in self.spec["paths"].items():
            for method, op in ops.items():
                for status, response in op["responses"].items():
                    if "content" in response:
                        for media in response["content"].values():
                            jsonschema.Draft7Validator.check_schema(
                                _inline(media["schema"], self.spec["components"]["schemas"]))

    def test_every_route_is_documented(self):
        documented = set(self.spec["paths"])
        routes = {"/", "/api/", "/api/v1/", "/api/v1/versions", "/api/v1/clusters", "/api/v1/summaries",
                  "/api/v1/rusages",
                  "/api/v1/self_proc_stats", "/api/v1/system_proc_stats", "/api/v1/meminfos",
                  "/api/v1/authors", "/api/v1/features", "/api/v1/vhosts/", "/api/v1/vhosts/{id}",
                  "/api/v1/streams/", "/api/v1/streams/{id}", "/api/v1/clients/", "/api/v1/clients/{id}",
                  "/api/v1/raw", "/metrics", "/api/v1/tests/errors", "/api/v1/tests/redirects",
                  "/api/v1/tests/requests"}
        self.assertEqual(documented, routes)
        rules = {r.rule for r in api_module.SrsApi.app.url_map.iter_rules()}
        for route in routes:
            prefix = route.replace("{id}", "")
            self.assertTrue(any(rule.startswith(prefix) for rule in rules), route)

    @defer.inlineCallbacks
    def test_replies_match_the_document(self):
        source, pub = self.world.publish()
        source.write(video(40, key=True))
        player, _ = self.world.play(source)
        waiting = self.ctx.registry.fetch_or_create("__defaultVhost__", "live", "waiting")
        self.world.play(waiting)
        self.world.publish(vhost="hls.example.com", stream="other", headers=False)
        vhosts = (yield self.check("/api/v1/vhosts/", "/api/v1/vhosts/"))["vhosts"]
        self.assertEqual(len(vhosts), 2)
        for v in vhosts:
            yield self.check("/api/v1/vhosts/{id}", f"/api/v1/vhosts/{v['id']}")
        for path in ("/", "/api/", "/api/v1/", "/api/v1/versions", "/api/v1/summaries", "/api/v1/rusages",
                     "/api/v1/self_proc_stats", "/api/v1/system_proc_stats", "/api/v1/meminfos",
                     "/api/v1/authors", "/api/v1/features"):
            yield self.check(path, path)
        for stream, published in (("livestream", True), ("nothing", False)):
            found = yield self.check("/api/v1/clusters", f"/api/v1/clusters?vhost=__defaultVhost__&app=live"
                                                         f"&stream={stream}&coworker=10.0.0.5:1985")
            self.assertEqual(found["data"]["origin"] is not None, published, found)
        streams = (yield self.check("/api/v1/streams/", "/api/v1/streams/"))["streams"]
        self.assertEqual(len(streams), 3)
        for s in streams:
            yield self.check("/api/v1/streams/{id}", f"/api/v1/streams/{s['id']}")
        clients = (yield self.check("/api/v1/clients/", "/api/v1/clients/"))["clients"]
        self.assertEqual(len(clients), 4)
        for c in clients:
            yield self.check("/api/v1/clients/{id}", f"/api/v1/clients/{c['id']}")
        yield self.check("/api/v1/vhosts/{id}", "/api/v1/vhosts/vid-none", expect_code=2014)
        yield self.check("/api/v1/streams/{id}", "/api/v1/streams/vid-none", expect_code=2048)
        yield self.check("/api/v1/clients/{id}", "/api/v1/clients/none", expect_code=2049)
        yield self.check("/api/v1/clients/{id}", "/api/v1/clients/none", "DELETE", expect_code=2049)
        yield self.check("/api/v1/clients/{id}", f"/api/v1/clients/{player.id}", "DELETE")
        for rpc, code in (("raw", 0), ("reload", 0), ("reload-fetch", 0), ("nothing", 1060)):
            yield self.check("/api/v1/raw", f"/api/v1/raw?rpc={rpc}", expect_code=code)
        yield self.check("/metrics", "/metrics", expect_code=1090)
        yield self.check("/api/v1/tests/errors", "/api/v1/tests/errors", expect_code=100)
        yield self.check("/api/v1/tests/requests", "/api/v1/tests/requests")

    def test_document_is_valid_openapi(self):
        try:
            from openapi_spec_validator import validate
        except ImportError:
            # a test dependency (setup.py extras "test"): missing in CI is a failure
            if os.environ.get("CI", "").lower() == "true":
                raise
            raise unittest.SkipTest("openapi-spec-validator is not installed")
        validate(copy.deepcopy(self.spec))


# ---- /proc readers ----------------------------------------------------------------------------

SELF_STAT = ("4242 (srs twisted) S 1 4242 4242 0 -1 4194560 1500 0 3 0 {utime} {stime} 0 0 20 0 3 0 "
             "12345 300000000 9000 18446744073709551615 1 2 3 0 0 0 0 16781312 2 0 0 0 17 1 0 0 0 0 0")
CPU_STAT = "cpu  {user} 10 {sys} {idle} 5 0 2 0 0 0\ncpu0 1 1 1 1 1 1 1 1 1 1\n"
MEMINFO = ("MemTotal:       16000000 kB\nMemFree:         6000000 kB\nMemAvailable:   9000000 kB\n"
           "Buffers:          500000 kB\nCached:          1500000 kB\nSwapTotal:       2000000 kB\n"
           "SwapFree:        1500000 kB\n")
NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0: 5000000    4000    0    0    0     0          0         0  7000000    5000    0    0    0     0       0          0
  eth1:   30000     300    0    0    0     0          0         0    40000     400    0    0    0     0       0          0
"""
FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 8.8.4.0/24 2 0 2
           |-- 8.8.4.0
              /24 link UNICAST
           |-- 8.8.4.4
              /32 host LOCAL
     +-- 192.168.0.0/24 2 0 2
           |-- 192.168.0.9
              /32 host LOCAL
"""
ROUTE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t01040408\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t00040808\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""
IF_INET6 = ("00000000000000000000000000000001 01 80 10 80       lo\n"
            "fe800000000000000000000000000001 03 40 20 80     eth1\n")
SOCKSTAT = ("sockets: used 300\nTCP: inuse 20 orphan 1 tw 40 alloc 25 mem 3\nUDP: inuse 6 mem 1\n"
            "UDPLITE: inuse 0\n")
SNMP = ("Ip: Forwarding DefaultTTL\nIp: 1 64\n"
        "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets "
        "CurrEstab InSegs\nTcp: 1 200 120000 -1 100 200 3 4 17 5000\n")
VMSTAT = "nr_free_pages 100\npgpgin {pgin}\npgpgout {pgout}\n"
DISKSTATS = ("   8       0 sda 100 0 2000 50 200 0 4000 60 0 {ticks} 110\n"
             "   8       1 sda1 1 0 2 3 4 0 6 7 0 999 9\n")


class ProcStatsTests(unittest.TestCase):
    def setUp(self):
        from srs_twisted.http import procstats

        self.procstats = procstats
        self.root = Path(self.mktemp())
        (self.root / "self").mkdir(parents=True)
        (self.root / "net").mkdir()
        self.now = 1000.0
        self.write(utime=100, stime=50, user=1000, sys=500, idle=8500, pgin=1000, pgout=2000, ticks=100)
        for name, text in (("meminfo", MEMINFO), ("net/dev", NET_DEV), ("net/fib_trie", FIB_TRIE),
                           ("net/route", ROUTE), ("net/if_inet6", IF_INET6), ("net/sockstat", SOCKSTAT),
                           ("net/snmp", SNMP), ("uptime", "1234.5 4000.25\n"),
                           ("loadavg", "0.50 0.25 0.10 1/200 999\n")):
            (self.root / name).write_text(text)
        self.stats = procstats.ProcStats(str(self.root), now=lambda: self.now, disk_devices=["sda"])
        self.stats.user_hz = 100

    def write(self, **v):
        (self.root / "self" / "stat").write_text(SELF_STAT.format(**v))
        (self.root / "stat").write_text(CPU_STAT.format(**v))
        (self.root / "vmstat").write_text(VMSTAT.format(**v))
        (self.root / "diskstats").write_text(DISKSTATS.format(**v))

    def test_self_stat(self):
        first = self.stats.self_stat()
        self.assertEqual((first["pid"], first["comm"], first["state"], first["ppid"]),
                         (4242, "(srs twisted)", "S", 1))
        self.assertEqual((first["utime"], first["stime"], first["num_threads"], first["rss"]),
                         (100, 50, 3, 9000))
        self.assertEqual(first["rsslim"], 18446744073709551615)
        self.assertEqual(first["cguest_time"], 0)
        self.assertEqual(first["percent"], 0.0)
        self.assertEqual(first["sample_time"], 1_000_000)
        # 50 ticks (0.5 s of CPU) in 2 s: a quarter of one CPU
        self.write(utime=130, stime=70, user=1000, sys=500, idle=8500, pgin=1000, pgout=2000, ticks=100)
        self.now += 0.5
        self.assertIs(self.stats.self_stat(), first)  # too soon: the last sample
        self.now += 1.5
        self.assertAlmostEqual(self.stats.self_stat()["percent"], 0.25)

    def test_system_stat(self):
        first = self.stats.system_stat()
        self.assertEqual((first["user"], first["nice"], first["sys"], first["idle"], first["iowait"],
                          first["softirq"]), (1000, 10, 500, 8500, 5, 2))
        self.write(utime=0, stime=0, user=1300, sys=600, idle=8600, pgin=0, pgout=0, ticks=0)
        self.now += 5
        self.assertAlmostEqual(self.stats.system_stat()["percent"], 0.8)

    def test_meminfo(self):
        m = self.stats.meminfo()
        self.assertEqual((m["MemTotal"], m["MemActive"], m["RealInUse"], m["NotInUse"]),
                         (16000000, 10000000, 8000000, 8000000))
        self.assertAlmostEqual(m["percent_ram"], 0.5)
        self.assertAlmostEqual(m["percent_swap"], 0.25)
        self.assertTrue(m["ok"])

    def test_platform_and_connections(self):
        p = self.stats.platform()
        self.assertEqual((p["uptime"], p["ilde_time"], p["load_1m"], p["load_5m"], p["load_15m"]),
                         (1234.5, 4000.25, 0.5, 0.25, 0.1))
        c = self.stats.connections()
        self.assertEqual((c["conn_sys"], c["conn_sys_tw"], c["conn_sys_udp"], c["conn_sys_et"]),
                         (65, 40, 6, 17))

    def test_network_devices(self):
        self.assertEqual(self.procstats.internet_devices(FIB_TRIE, ROUTE, IF_INET6), {"eth0"})
        n = self.stats.network()
        self.assertEqual((n["net_recv_bytes"], n["net_send_bytes"]), (5000000, 7000000))
        self.assertEqual((n["net_recvi_bytes"], n["net_sendi_bytes"]), (31000, 41000))
        self.assertEqual(n["net_sample_time"], 1_000_000)

    def test_is_internet(self):
        for address in ("8.8.8.8", "172.32.0.1", "127.0.0.2", "2001:db8::1", "fd00::1"):
            self.assertTrue(self.procstats.is_internet(address), address)
        for address in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "::1", "::",
                        "fe80::1", "fec0::1", "ff02::1", "bogus"):
            self.assertFalse(self.procstats.is_internet(address), address)

    def test_disk(self):
        first = self.stats.disk()
        self.assertEqual((first["in_KBps"], first["out_KBps"], first["busy"]), (0, 0, 0.0))
        # 2 s later: 400 KB in, 1000 KB out, 500 ms of I/O in 2 s of 2 CPUs' jiffies
        self.write(utime=0, stime=0, user=1000, sys=500, idle=8900, pgin=1400, pgout=3000, ticks=600)
        self.now += 2
        self.patch(self.stats, "cpus", lambda: (2, 2))
        d = self.stats.disk()
        self.assertEqual((d["in_KBps"], d["out_KBps"]), (200, 500))
        self.assertAlmostEqual(d["busy"], 0.25)

    def test_missing_proc(self):
        stats = self.procstats.ProcStats(str(self.root / "nothing"))
        self.assertFalse(stats.self_stat()["ok"])
        self.assertFalse(stats.system_stat()["ok"])
        self.assertFalse(stats.meminfo()["ok"])
        self.assertFalse(stats.platform()["ok"])
        self.assertFalse(stats.network()["ok"])
        self.assertFalse(stats.connections()["ok"])
        self.assertFalse(stats.disk()["ok"])
        self.assertTrue(stats.rusage()["ok"])
