"""The HTTP API of the real server, read while real clients use it: an FFmpeg
publisher, FFmpeg RTMP and HTTP-FLV players, treq for the API; every JSON
reply checked against docs/openapi.yaml; kicks measured; Basic auth, a port
shared with http_server, and /metrics on both ports parsed with
prometheus_client."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from types import SimpleNamespace

import jsonschema
from twisted.internet import defer, reactor
from twisted.python import log
from twisted.trial import unittest

from ..http import test_api as unit_api
from . import harness as h
from .receiver import api_request, ffprobe, http_live_server, raw_http, until, wait_exit

ROUTES = ["/", "/api/", "/api/v1/", "/api/v1/versions", "/api/v1/summaries", "/api/v1/rusages",
          "/api/v1/self_proc_stats", "/api/v1/system_proc_stats", "/api/v1/meminfos", "/api/v1/authors",
          "/api/v1/features", "/api/v1/vhosts/", "/api/v1/streams/", "/api/v1/clients/", "/api/v1/tests/requests"]


def schema(path: str, method: str = "get", content: str = "application/json") -> dict:
    """The JSON schema of a 200 reply in docs/openapi.yaml (the unit tests' reader)."""
    return unit_api.OpenApiTests.schema(SimpleNamespace(spec=unit_api.openapi()), path, method, "200", content)


def samples(text: str) -> dict:
    """Prometheus text -> {(sample name, frozenset(labels)): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(table: dict, name: str, **labels) -> float:
    return table[(name, frozenset(labels.items()))]


def loadavg_1m() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class LiveApiTestCase(unittest.TestCase):
    """A real server with the HTTP API and http_server on loopback ports."""

    timeout = 300
    auth = ""
    shared_port = False
    exporter = False

    def setUp(self):
        h.ffmpeg(), h.ffprobe()
        self.tmp = tempfile.mkdtemp(prefix="srs-api-live-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        with open(os.path.join(self.tmp, "index.html"), "w") as f:
            f.write("static ok")
        self.exporter_port = h.free_port()
        exporter = f"exporter {{ enabled on; listen 127.0.0.1:{self.exporter_port}; }}" if self.exporter else ""
        self.before_server = time.time()
        self.server = http_live_server(self, vhost="play { mw_latency 100; }", top=exporter, api=self.auth,
                                       static_dir=self.tmp, shared_port=self.shared_port)
        self.http_port, self.api_port = self.server.http_port, self.server.api_port
        if self.exporter:
            h.wait_port(self.exporter_port, proc=self.server.proc)
        self.pid = str(self.server.proc.pid)
        self.ids = None  # (server, service) as the first reply gave them
        self.tc_url = f"rtmp://127.0.0.1:{self.server.port}/live"
        self.flv_url = f"http://127.0.0.1:{self.http_port}/live/s.flv"

    # ---- clients ---------------------------------------------------------------------
    def publisher(self):
        proc = h.publish(self.server.url("s"), h.clip(), loop=True)
        self.addCleanup(h.stop_process, proc)
        return proc

    def player(self, url, name):
        """FFmpeg playing ``url`` into a file for up to 240 s (longer than a test)."""
        proc = h.start_player(url, 240, os.path.join(self.tmp, name))
        self.addCleanup(h.stop_process, proc)
        return proc

    @defer.inlineCallbacks
    def raw_player(self, timeout=240.0):
        """An HTTP-FLV player reading the raw response (kept, never parsed)."""
        proto = yield raw_http(self.http_port, "/live/s.flv", max_bytes=50_000_000, timeout=timeout)
        self.addCleanup(lambda: proto.done)
        self.addCleanup(proto.abort)
        return proto

    # ---- the API ---------------------------------------------------------------------
    def url(self, path, port=None):
        return f"http://127.0.0.1:{port or self.api_port}{path}"

    def request(self, path, method="GET", headers=None, port=None):
        return api_request(self.url(path, port), method, headers)

    @defer.inlineCallbacks
    def get(self, path, spec_path=None, method="GET", headers=None, port=None):
        """A JSON reply: HTTP 200, application/json, valid against the OpenAPI
        document (``spec_path`` defaults to the path without its query)."""
        r, body, obj = yield self.request(path, method, headers, port)
        self.assertEqual(r.code, 200, (path, body))
        self.assertEqual(r.headers.getRawHeaders("content-type"), ["application/json"], path)
        self.assertIsNotNone(obj, body)
        jsonschema.Draft7Validator(schema(spec_path or path.partition("?")[0], method.lower())).validate(obj)
        return obj

    def assertEnvelope(self, obj):
        self.assertEqual(obj["code"], 0, obj)
        self.assertEqual(obj["pid"], self.pid)
        if self.ids is None:
            self.ids = (obj["server"], obj["service"])
            self.assertRegex(obj["server"], r"^vid-[a-z0-9]{7}$")
            self.assertTrue(obj["service"])
        self.assertEqual((obj["server"], obj["service"]), self.ids)

    @defer.inlineCallbacks
    def clients_by_type(self, want):
        """Waits until /clients lists the types in ``want`` (a Counter-like dict)."""
        def enough(obj):
            types = [c["type"] for c in obj["clients"]]
            return all(types.count(t) >= n for t, n in want.items())

        obj = yield until(lambda: self.get("/api/v1/clients/"), enough, f"clients {want}")
        return obj["clients"]

    @defer.inlineCallbacks
    def stream(self):
        obj = yield until(lambda: self.get("/api/v1/streams/"),
                          lambda o: o["streams"] and o["streams"][0]["video"] and o["streams"][0]["audio"],
                          "a published stream with its codecs")
        self.assertEqual(len(obj["streams"]), 1, obj)
        return obj["streams"][0]


class ApiRoutesTests(LiveApiTestCase):
    @defer.inlineCallbacks
    def test_every_route_with_real_values(self):
        clip_info = h.assert_streams(h.probe(h.clip()), [("video", "h264"), ("audio", "aac")])
        pub = self.publisher()
        yield self.stream()
        rtmp_player = self.player(f"{self.tc_url}/s", "rtmp.flv")
        flv_player = self.player(self.flv_url, "http.flv")
        yield self.clients_by_type({"fmle-publish": 1, "rtmp-play": 1, "flv-play": 1})

        # Rates need a few seconds of media: every client 3 s old with a rate.
        def flowing(obj):
            return len(obj["clients"]) == 3 and all(
                c["alive"] > 3.0 and c["kbps"]["recv_30s" if c["publish"] else "send_30s"] > 0
                for c in obj["clients"])

        yield until(lambda: self.get("/api/v1/clients/"), flowing, "3 s of media to every client")

        # ---- every route answers, and matches the OpenAPI document ----
        replies = {}
        before, load_before = time.time(), loadavg_1m()
        for route in ROUTES:
            replies[route] = obj = yield self.get(route)
            self.assertEnvelope(obj)
        after, load_after = time.time(), loadavg_1m()

        # /, /api/, /api/v1/ describe themselves
        self.assertEqual(replies["/api/"]["urls"], {"v1": "the api version 1.0"})
        self.assertEqual(sorted(replies["/"]["urls"]["rtc"]["v1"]), ["nack", "play", "publish"])
        for name in ("versions", "summaries", "vhosts", "streams", "clients", "raw"):
            self.assertIn(name, replies["/api/v1/"]["urls"])
        self.assertEqual(replies["/api/v1/versions"]["data"],
                         {"major": 7, "minor": 0, "revision": 18, "version": "7.0.18"})

        # ---- summaries: this process, this machine ----
        data = replies["/api/v1/summaries"]["data"]
        me, system = data["self"], data["system"]
        self.assertIs(data["ok"], True)
        # read while the replies came (a second either side for rounding)
        self.assertTrue(before - 1 <= data["now_ms"] / 1000 <= after + 1, (before, data["now_ms"], after))
        self.assertEqual(me["version"], "7.0.18")
        self.assertEqual(me["pid"], self.server.proc.pid)
        self.assertEqual(me["ppid"], os.getpid())
        self.assertEqual(me["cwd"], os.path.realpath(self.server.dir))
        self.assertIn("srs_twisted", me["argv"])
        self.assertIn(self.server.conf_path, me["argv"])
        self.assertGreater(me["mem_kbyte"], 10_000)  # peak RSS of a Python server, kB
        self.assertGreaterEqual(me["mem_kbyte"] * 1.5, self.server.rss_kb())
        self.assertLessEqual(me["srs_uptime"], after - self.before_server + 1)
        self.assertGreaterEqual(me["srs_uptime"], 3)
        self.assertEqual(system["cpus"], os.cpu_count())
        with open("/proc/meminfo") as f:
            mem_total = int(f.readline().split()[1])
        self.assertEqual(system["mem_ram_kbyte"], mem_total)
        self.assertEqual(system["conn_srs"], 3)  # publisher + two players
        self.assertGreater(system["srs_recv_bytes"], 50_000)
        self.assertGreater(system["srs_send_bytes"], 50_000)
        self.assertGreater(system["conn_sys"], 0)
        self.assertGreater(system["net_recvi_bytes"], 0)  # loopback traffic
        # the kernel's figure when the reply was made: between the readings
        # taken before and after (which move slowly: a 5 s update, 1 min average)
        self.assertTrue(min(load_before, load_after) - 0.5 <= system["load_1m"] <= max(load_before, load_after) + 0.5,
                        (load_before, system["load_1m"], load_after))

        # rusages / proc stats / meminfos are this process's and machine's
        self.assertEqual(replies["/api/v1/rusages"]["data"]["ru_maxrss"], me["mem_kbyte"])
        self.assertEqual(replies["/api/v1/self_proc_stats"]["data"]["pid"], self.server.proc.pid)
        self.assertEqual(replies["/api/v1/meminfos"]["data"]["MemTotal"], mem_total)

        # ---- the stream ----
        vhosts = replies["/api/v1/vhosts/"]["vhosts"]
        vhost_id = {v["name"]: v["id"] for v in vhosts}["__defaultVhost__"]
        (s,) = replies["/api/v1/streams/"]["streams"]
        self.assertEqual((s["name"], s["app"], s["vhost"]), ("s", "live", vhost_id))
        self.assertEqual(s["tcUrl"], self.tc_url)
        self.assertEqual(s["url"], "/live/s")
        self.assertTrue(before - 1 <= s["live_ms"] / 1000 <= after + 1, (before, s["live_ms"], after))
        self.assertEqual(s["clients"], 3)  # publisher + RTMP player + HTTP-FLV player
        self.assertGreater(s["frames"], 25)
        self.assertIs(s["publish"]["active"], True)
        video, audio = clip_info["video"], clip_info["audio"]
        major, minor = divmod(video["level"], 10)
        self.assertEqual(s["video"], {
            "codec": "H264",
            # SRS names profile_idc 66 "Baseline"; ffprobe says "Constrained Baseline"
            "profile": s["video"]["profile"],
            "level": f"{major}.{minor}" if minor else str(major),
            "width": 320, "height": 240,
        })
        self.assertIn(s["video"]["profile"], video["profile"])
        self.assertEqual(s["audio"], {"codec": "AAC", "sample_rate": 44100, "channel": 2,
                                      "profile": audio["profile"]})
        self.assertGreater(s["kbps"]["recv_30s"], 0)
        self.assertLess(s["kbps"]["recv_30s"], 5000)
        # /vhosts/<id> resolves the stream's vhost
        v = (yield self.get(f"/api/v1/vhosts/{vhost_id}", "/api/v1/vhosts/{id}"))["vhost"]
        self.assertEqual((v["name"], v["enabled"], v["clients"], v["streams"]), ("__defaultVhost__", True, 3, 1))
        self.assertGreater(v["recv_bytes"], 50_000)

        # bytes grow between two reads
        def grown(obj):
            now = obj["stream"]
            return all(now[k] > s[k] for k in ("recv_bytes", "send_bytes", "frames"))

        one = yield until(lambda: self.get(f"/api/v1/streams/{s['id']}", "/api/v1/streams/{id}"), grown,
                          "the stream's counters to grow")
        self.assertEnvelope(one)
        s2 = one["stream"]
        self.assertEqual((s2["id"], s2["name"], s2["vhost"], s2["publish"]), (s["id"], "s", vhost_id, s["publish"]))
        self.assertGreater(s2["recv_bytes"], s["recv_bytes"])
        self.assertGreater(s2["send_bytes"], s["send_bytes"])
        self.assertGreater(s2["frames"], s["frames"])
        self.assertGreater(s2["kbps"]["recv_30s"], 0)
        self.assertGreater(s2["kbps"]["send_30s"], 0)
        log.msg(f"measured: stream kbps recv_30s={s2['kbps']['recv_30s']} send_30s={s2['kbps']['send_30s']}")

        # ---- the clients ----
        clients = {c["type"]: c for c in (yield self.get("/api/v1/clients/"))["clients"]}
        self.assertEqual(sorted(clients), ["flv-play", "fmle-publish", "rtmp-play"])
        self.assertEqual(s["publish"]["cid"], clients["fmle-publish"]["id"])
        for kind, c in clients.items():
            self.assertEqual((c["ip"], c["vhost"], c["stream"], c["url"], c["name"]),
                             ("127.0.0.1", vhost_id, s["id"], "/live/s", "s"), kind)
            self.assertIs(c["publish"], kind == "fmle-publish", kind)
            self.assertGreater(c["alive"], 3.0, kind)
            self.assertEqual((c["pageUrl"], c["swfUrl"]), ("", ""), kind)
        self.assertEqual(clients["fmle-publish"]["tcUrl"], self.tc_url)
        self.assertEqual(clients["rtmp-play"]["tcUrl"], self.tc_url)
        self.assertEqual(clients["flv-play"]["tcUrl"], "http://127.0.0.1/live")
        self.assertGreater(clients["fmle-publish"]["recv_bytes"], 50_000)
        self.assertGreater(clients["fmle-publish"]["kbps"]["recv_30s"], 0)
        for kind in ("rtmp-play", "flv-play"):
            self.assertGreater(clients[kind]["send_bytes"], 50_000, kind)
            self.assertGreater(clients[kind]["kbps"]["send_30s"], 0, kind)
        for c in clients.values():
            one = yield self.get(f"/api/v1/clients/{c['id']}", "/api/v1/clients/{id}")
            self.assertEnvelope(one)
            for key in ("id", "vhost", "stream", "ip", "tcUrl", "url", "name", "type", "publish"):
                self.assertEqual(one["client"][key], c[key], key)
            self.assertGreaterEqual(one["client"]["recv_bytes"], c["recv_bytes"])
            self.assertGreaterEqual(one["client"]["send_bytes"], c["send_bytes"])

        # ---- errors are HTTP 200 with a code; methods ----
        for path, spec_path, method, code in (
            ("/api/v1/streams/vid-nothing", "/api/v1/streams/{id}", "GET", 2048),
            ("/api/v1/clients/nobody", "/api/v1/clients/{id}", "GET", 2049),
            ("/api/v1/clients/nobody", "/api/v1/clients/{id}", "DELETE", 2049),
            ("/api/v1/vhosts/vid-nothing", "/api/v1/vhosts/{id}", "GET", 2014),
            ("/metrics", "/metrics", "GET", 1090),  # exporter off
            ("/api/v1/tests/errors", "/api/v1/tests/errors", "GET", 100),
        ):
            obj = yield self.get(path, spec_path, method)
            self.assertEqual(obj, {"code": code}, (method, path))
        # SRS looks the stream up before the method: unknown id -> 2048 whatever the method
        r, _, obj = yield self.request("/api/v1/streams/vid-nothing", "POST")
        self.assertEqual((r.code, obj), (200, {"code": 2048}))
        for path in ("/api/v1/streams/", f"/api/v1/streams/{s['id']}", f"/api/v1/clients/{clients['rtmp-play']['id']}"):
            r, body, _ = yield self.request(path, "POST")
            self.assertEqual((r.code, body), (405, b"Method Not Allowed"), path)
        r, _, _ = yield self.request("/api/v1/streams")
        self.assertEqual(r.code, 302)
        self.assertEqual(r.headers.getRawHeaders("location"), ["/api/v1/streams/"])
        r, _, _ = yield self.request("/api/v1/tests/redirects")
        self.assertEqual((r.code, r.headers.getRawHeaders("location")), (301, ["/api/v1/tests/errors"]))
        raw = yield self.get("/api/v1/raw?rpc=raw")
        self.assertEqual(raw["http_api"]["listen"], f"127.0.0.1:{self.api_port}")
        self.assertEqual((yield self.get("/api/v1/raw?rpc=reload")), {"code": 1061})  # raw API off
        req = replies["/api/v1/tests/requests"]["data"]
        self.assertEqual((req["METHOD"], req["path"]), ("GET", "/api/v1/tests/requests"))

        # ---- JSONP ----
        r, body, _ = yield self.request("/api/v1/versions?callback=show")
        self.assertEqual(r.headers.getRawHeaders("content-type"), ["text/javascript"])
        self.assertTrue(body.startswith(b"show({") and body.endswith(b"})"), body)
        self.assertIn(b'"version":"7.0.18"', body)
        r, body, _ = yield self.request("/api/v1/clients/nobody?callback=cb")
        self.assertEqual(body, b'cb({"code":2049})')

        # ---- CORS ----
        origin = {"Origin": ["http://player.example"]}
        r, body, _ = yield self.request("/api/v1/streams/", "OPTIONS", origin)
        self.assertEqual((r.code, body), (200, b""))
        self.assertEqual(r.headers.getRawHeaders("access-control-allow-origin"), ["*"])
        self.assertEqual(r.headers.getRawHeaders("access-control-allow-methods"), ["*"])
        r, _, _ = yield self.request("/api/v1/versions", headers=origin)
        self.assertEqual(r.headers.getRawHeaders("access-control-allow-origin"), ["*"])

        self.assertIsNone(pub.poll())
        self.assertIsNone(rtmp_player.poll())
        self.assertIsNone(flv_player.poll())


class KickTests(LiveApiTestCase):
    @defer.inlineCallbacks
    def kick(self, cid):
        t0 = time.monotonic()
        obj = yield self.get(f"/api/v1/clients/{cid}", "/api/v1/clients/{id}", "DELETE")
        self.assertEnvelope(obj)
        self.assertEqual(set(obj), {"code", "server", "service", "pid"})
        return t0

    @defer.inlineCallbacks
    def new_client(self, kind, start):
        """Start a player with ``start()`` and learn its client id: the one
        ``kind`` id /clients did not list before."""
        before = {c["id"] for c in (yield self.get("/api/v1/clients/"))["clients"]}
        player = yield defer.maybeDeferred(start)
        obj = yield until(lambda: self.get("/api/v1/clients/"),
                          lambda o: [c for c in o["clients"] if c["type"] == kind and c["id"] not in before],
                          f"a new {kind} client")
        (cid,) = [c["id"] for c in obj["clients"] if c["type"] == kind and c["id"] not in before]
        return player, cid

    @defer.inlineCallbacks
    def test_kick_players_then_the_publisher(self):
        from srs_twisted.rtmp import client as rtmp_client

        pub = self.publisher()
        s = yield self.stream()
        rtmp_url = f"{self.tc_url}/s"
        kicked_rtmp, kicked_rtmp_id = yield self.new_client("rtmp-play", lambda: self.player(rtmp_url, "k.flv"))
        waiting_rtmp, _ = yield self.new_client("rtmp-play", lambda: self.player(rtmp_url, "w.flv"))
        kicked_flv, kicked_flv_id = yield self.new_client("flv-play", self.raw_player)
        waiting_flv, _ = yield self.new_client("flv-play", self.raw_player)
        watched = []
        watcher = yield rtmp_client.connect(reactor, self.tc_url, "s", "play", on_packet=lambda p: watched.append(p.dts))
        self.addCleanup(lambda: watcher.done)
        self.addCleanup(watcher.transport.abortConnection)
        yield self.clients_by_type({"fmle-publish": 1, "rtmp-play": 3, "flv-play": 2})
        # media reaches the players before the kicks
        yield until(lambda: None, lambda _: all(b"FLV\x01" in bytes(p.data) for p in (kicked_flv, waiting_flv)),
                    "the HTTP-FLV players' first bytes")
        yield until(lambda: None, lambda _: h.file_size(os.path.join(self.tmp, "k.flv")) > 0, "the RTMP player's file")

        # an FFmpeg RTMP player: the process ends (media keeps flowing, so
        # only the kick ends it; the latency is a figure, not a bound)
        t0 = yield self.kick(kicked_rtmp_id)
        yield wait_exit(kicked_rtmp, h.WAIT, step=0.005)
        latency = time.monotonic() - t0
        log.msg(f"measured: RTMP player kick -> FFmpeg exit in {latency * 1000:.0f} ms")

        # an HTTP-FLV player: the socket sees EOF
        t0 = yield self.kick(kicked_flv_id)
        yield until(lambda: None, lambda _: kicked_flv.eof_at, "EOF on the kicked HTTP-FLV player",
                    timeout=h.WAIT, step=0.005)
        latency = kicked_flv.eof_at - t0
        log.msg(f"measured: HTTP-FLV player kick -> EOF in {latency * 1000:.0f} ms")
        self.assertFalse(kicked_flv.cut, "the reader cut the connection itself")
        self.assertEqual(kicked_flv.status, 200)
        self.assertIn(b"FLV\x01", bytes(kicked_flv.data))

        # only the kicked ones are gone
        self.assertIsNone(waiting_rtmp.poll())
        self.assertIsNone(waiting_flv.eof_at)
        self.assertFalse(watcher.done.called)
        left = yield self.get("/api/v1/clients/")
        self.assertEqual(sorted(c["type"] for c in left["clients"]),
                         ["flv-play", "fmle-publish", "rtmp-play", "rtmp-play"])
        for cid in (kicked_rtmp_id, kicked_flv_id):
            self.assertEqual((yield self.get(f"/api/v1/clients/{cid}", "/api/v1/clients/{id}")), {"code": 2049})

        # ---- kick the publisher: its cid from /streams ----
        # (HTTP-FLV players on an unpublish: test_flv_players_are_closed_on_unpublish)
        waiting_flv.abort()
        yield self.clients_by_type({"fmle-publish": 1, "rtmp-play": 2})
        yield until(lambda: self.get("/api/v1/clients/"),
                    lambda o: "flv-play" not in [c["type"] for c in o["clients"]], "the HTTP-FLV player to go")
        s = (yield self.get(f"/api/v1/streams/{s['id']}", "/api/v1/streams/{id}"))["stream"]
        cid = s["publish"]["cid"]
        t0 = yield self.kick(cid)
        code = yield wait_exit(pub, h.WAIT, step=0.01)
        log.msg(f"measured: publisher kick -> FFmpeg exit {code} in {(time.monotonic() - t0) * 1000:.0f} ms")
        self.assertNotEqual(code, 0)
        after = yield until(lambda: self.get("/api/v1/streams/"),
                            lambda o: not o["streams"] or not o["streams"][0]["publish"]["active"],
                            "the stream to end")
        (gone,) = after["streams"]  # players still wait on it, so it stays listed
        self.assertEqual(gone["publish"], {"active": False})
        self.assertIsNone(gone["video"])
        self.assertIsNone(gone["audio"])
        self.assertEqual(gone["clients"], 2)  # the FFmpeg and the in-process RTMP players
        # RTMP players stay connected, waiting for a new publisher, as SRS's do
        # (the unpublish that ended the stream would have closed them at once).
        self.assertIsNone(waiting_rtmp.poll(), "an RTMP player was closed when its publisher left")
        self.assertFalse(watcher.done.called)
        still = yield self.get("/api/v1/clients/")
        self.assertEqual(sorted(c["type"] for c in still["clients"]), ["rtmp-play", "rtmp-play"])
        self.assertEqual((yield self.get(f"/api/v1/clients/{cid}", "/api/v1/clients/{id}")), {"code": 2049})
        # SRS 7.0.18 sends them no onStatus (it has no UnpublishNotify code at all);
        # neither does this server, whatever docs/http-api.md says.
        self.assertEqual(watcher.status_codes, ["NetStream.Play.Reset", "NetStream.Play.Start"])
        # and a new publisher's media reaches them
        seen = len(watched)
        self.publisher()
        yield until(lambda: None, lambda _: len(watched) > seen + 25, "the new publisher's media at the waiting player")
        self.assertIsNone(waiting_rtmp.poll())

    @defer.inlineCallbacks
    def test_flv_players_are_closed_on_unpublish(self):
        """SRS 7.0.18 unmounts the HTTP stream when its publisher leaves
        (SrsServer::on_unpublish -> http_unmount -> SrsLiveStream::expire), which
        closes every HTTP-FLV player."""
        pub = self.publisher()
        s = yield self.stream()
        player, _ = yield self.new_client("flv-play", self.raw_player)
        yield self.kick(s["publish"]["cid"])
        yield wait_exit(pub, h.WAIT, step=0.02)
        yield until(lambda: None, lambda _: player.eof_at, "EOF on the HTTP-FLV player", step=0.05)



class AuthTests(LiveApiTestCase):
    auth = "auth { enabled on; username admin; password pw; }"

    @staticmethod
    def basic(user, password):
        import base64

        return {"Authorization": ["Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()]}

    @defer.inlineCallbacks
    def test_basic_auth(self):
        for headers in (None, self.basic("admin", "wrong"), self.basic("root", "pw"), {"Authorization": ["Bearer pw"]}):
            for path in ("/api/v1/versions", "/api/v1/streams/", "/api/v1/clients/nobody"):
                r, body, _ = yield self.request(path, headers=headers)
                self.assertEqual(r.code, 401, (path, headers))
                self.assertEqual(r.headers.getRawHeaders("www-authenticate"), ["Basic"])
                self.assertEqual(body, b"")
        right = self.basic("admin", "pw")
        obj = yield self.get("/api/v1/versions", headers=right)
        self.assertEnvelope(obj)
        self.assertEqual(obj["data"]["version"], "7.0.18")
        self.assertEqual((yield self.get("/api/v1/clients/nobody", "/api/v1/clients/{id}", headers=right)),
                         {"code": 2049})
        # as SRS: / and /metrics stay open, preflights pass before auth
        self.assertEnvelope((yield self.get("/")))
        self.assertEqual((yield self.get("/metrics")), {"code": 1090})
        r, body, _ = yield self.request("/api/v1/streams/", "OPTIONS", {"Origin": ["http://a.example"]})
        self.assertEqual((r.code, body), (200, b""))


class SharedPortTests(LiveApiTestCase):
    shared_port = True

    @defer.inlineCallbacks
    def test_api_streams_and_static_files_on_one_port(self):
        self.publisher()
        s = yield self.stream()  # the API on the shared port
        self.assertEqual(s["name"], "s")
        obj = yield self.get("/api/v1/versions")
        self.assertEnvelope(obj)
        out, err, code = yield ffprobe(self.flv_url)
        self.assertEqual(code, 0, err.decode(errors="replace"))
        h.assert_streams(json.loads(out), [("video", "h264"), ("audio", "aac")])
        r, body, _ = yield self.request("/index.html")
        self.assertEqual((r.code, body), (200, b"static ok"))
        r, _, _ = yield self.request("/live/nothing.flv")
        self.assertEqual(r.code, 404)


class MetricsTests(LiveApiTestCase):
    exporter = True

    @defer.inlineCallbacks
    def scrape(self, port):
        r, body, _ = yield self.request("/metrics", port=port)
        self.assertEqual(r.code, 200, body)
        self.assertEqual(r.headers.getRawHeaders("content-type")[0].split(";")[0], "text/plain")
        return samples(body.decode())

    @defer.inlineCallbacks
    def test_metrics_on_both_ports_while_streaming(self):
        self.publisher()
        yield self.stream()
        self.player(f"{self.tc_url}/s", "rtmp.flv")
        self.player(self.flv_url, "http.flv")
        yield self.clients_by_type({"fmle-publish": 1, "rtmp-play": 1, "flv-play": 1})
        stream = {"vhost": "__defaultVhost__", "app": "live", "stream": "s"}
        first = yield until(lambda: self.scrape(self.api_port),
                            lambda t: value(t, "srs_stream_players", **stream) == 2, "both players in the metrics")
        t0 = time.monotonic()

        def moved(table):  # every counter grew, and a frame rate over a second or more
            return (all(value(table, n) > value(first, n) for n in ("srs_receive_bytes_total", "srs_send_bytes_total"))
                    and all(value(table, n, **stream) > value(first, n, **stream)
                            for n in ("srs_stream_recv_bytes_total", "srs_stream_send_bytes_total"))
                    and value(table, "srs_stream_fps", **stream) > 0)

        second = yield until(lambda: self.scrape(self.exporter_port), moved, "the metrics to move")
        elapsed = time.monotonic() - t0
        for table in (first, second):
            self.assertEqual(value(table, "srs_streams"), 1)
            self.assertGreaterEqual(value(table, "srs_clients"), 3)
            self.assertGreaterEqual(value(table, "srs_protocol_connections", protocol="rtmp"), 2)
            self.assertGreaterEqual(value(table, "srs_protocol_connections", protocol="http"), 1)
            self.assertEqual(value(table, "srs_stream_players", **stream), 2)
            build = [labels for (name, labels) in table if name == "srs_build_info"]
            self.assertEqual(len(build), 1)
            self.assertEqual(dict(build[0])["version"], "7.0.18")
            self.assertEqual(dict(build[0])["pid"], self.pid)
        for name in ("srs_receive_bytes_total", "srs_send_bytes_total"):
            self.assertGreater(value(second, name), value(first, name), name)
        for name in ("srs_stream_recv_bytes_total", "srs_stream_send_bytes_total"):
            self.assertGreater(value(second, name, **stream), value(first, name, **stream), name)
        for name in ("srs_receive_bytes_total", "srs_send_bytes_total"):
            rate = (value(second, name) - value(first, name)) * 8 / 1000 / elapsed
            log.msg(f"measured: {name} rate {rate:.0f} kbit/s")
        self.assertGreater(value(second, "srs_stream_fps", **stream), 0)
        # SRS serves its whole API mux on the exporter port (srs.md §2.4)
        obj = yield self.get("/api/v1/versions", port=self.exporter_port)
        self.assertEnvelope(obj)
