"""The Redis origin cluster end to end: a real redis-server on a free loopback
port, three origins (A, B, C) sharing it and one edge whose origins they
are.  FFmpeg publishes, ffprobe and the Twisted RTMP client play.

- a stream published to A plays from B, C and the edge over RTMP, HTTP-FLV
  and HLS (HLS answered from A);
- SRT and WebRTC (WHEP) players on another origin get it too;
- a second publisher of it on C is refused;
- A stops, B publishes: C's players go on;
- Redis stopped: A's own streams still publish and play, B's lookups fail
  with a log line and retry; Redis back: A's streams are registered again
  and B plays them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import treq
from twisted.internet import defer, reactor, threads

from srs_twisted.errors import Denied
from srs_twisted.rtmp import client

from . import harness as h
from .test_cluster import ClusterTestCase, Player, api, sleep, stream_active, until
from .test_rtc_whip import need_aiortc


def redis_server() -> str:
    path = shutil.which("redis-server")
    return h.need("redis-server", path)


class Redis:
    """redis-server on 127.0.0.1:PORT, no persistence (a restart is empty)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or h.free_port()
        self.dir = tempfile.mkdtemp(prefix="srs-redis-")
        self.proc = None
        self.start()

    def start(self) -> None:
        self.log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            [redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir], stdout=self.log, stderr=subprocess.STDOUT)
        h.wait_port(self.port, proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def redis_block(port: int) -> str:
    return f"redis {{ enabled on; host 127.0.0.1; port {port}; password; db 0; }}"


class Node:
    def __init__(self, srv: h.Server, http: int, api: int) -> None:
        self.srv, self.http, self.api = srv, http, api

    @property
    def port(self) -> int:
        return self.srv.port

    def rtmp(self, stream: str = "s") -> str:
        return self.srv.url(stream)

    def flv(self, stream: str = "s") -> str:
        return f"http://127.0.0.1:{self.http}/live/{stream}.flv"

    def hls(self, stream: str = "s") -> str:
        return f"http://127.0.0.1:{self.http}/live/{stream}.m3u8"


class RedisClusterTestCase(ClusterTestCase):
    timeout = 600

    def setUp(self):
        super().setUp()
        self.redis = Redis()
        self.addCleanup(self.redis.close)

    def node(self, vhost_body: str, hls: bool = True, extra: str = "") -> Node:
        http, api = h.free_port(), h.free_port()
        hls_dir = tempfile.mkdtemp(prefix="srs-hls-", dir=self.tmp)
        # hls_ctx and hls_ts_ctx on (SRS's default): the owner's session redirect passes through.
        hls_conf = f"hls {{ enabled on; hls_path {hls_dir}; hls_fragment 2; hls_window 10; }}" if hls else ""
        conf = (f"http_server {{ enabled on; listen 127.0.0.1:{http}; dir {hls_dir}; }}\n"
                f"http_api {{ enabled on; listen 127.0.0.1:{api}; }}\n{extra}\n"
                f"vhost __defaultVhost__ {{ play {{ mw_latency 0; }} http_remux {{ enabled on; mount [vhost]/[app]/[stream].flv; }} "
                f"{hls_conf} {vhost_body} }}")
        srv = h.Server(conf)
        self.addCleanup(srv.stop)
        h.wait_port(http, proc=srv.proc)
        return Node(srv, http, api)

    def origin(self, extra: str = "", vhost: str = "") -> Node:
        return self.node(f"cluster {{ mode local; origin_cluster on; {redis_block(self.redis.port)} }} {vhost}",
                         extra=extra)

    def edge(self, origins: list[Node]) -> Node:
        upstream = " ".join(f"127.0.0.1:{o.port}" for o in origins)
        return self.node(f"cluster {{ mode remote; origin {upstream}; {redis_block(self.redis.port)} }}", hls=False)

    @defer.inlineCallbacks
    def registered(self, node: Node, stream: str = "s"):
        """Wait until the directory names ``node`` for the stream."""
        import txredisapi

        conn = yield txredisapi.Connection("127.0.0.1", self.redis.port, reconnect=False)
        try:
            value = yield until(lambda: conn.get(f"srs:stream:__defaultVhost__/live/{stream}"),
                                f"{stream} in Redis")
        finally:
            yield conn.disconnect()
        self.assertIn(f'"rtmp":"127.0.0.1:{node.port}"', value)
        return value

    @defer.inlineCallbacks
    def probe(self, url: str):
        info = yield threads.deferToThread(h.probe, url)
        self.assertAvc320Aac(info)
        return info

    @defer.inlineCallbacks
    def hls_ready(self, node: Node, stream: str = "s"):
        """Wait until the playlist answers with a segment (on the owner it
        takes a fragment or two)."""
        @defer.inlineCallbacks
        def playlist():
            r = yield treq.get(node.hls(stream), timeout=10, persistent=False)
            body = yield r.text()
            return body if r.code == 200 and "#EXTINF" in body else None

        return (yield until(playlist, f"an HLS playlist on {node.hls(stream)}", timeout=90))


class RedisClusterTests(RedisClusterTestCase):
    @defer.inlineCallbacks
    def test_any_node_plays_a_stream_published_on_one(self):
        a, b, c = self.origin(), self.origin(), self.origin()
        edge = self.edge([b, c])
        self.publisher(a.rtmp("s"))
        yield self.registered(a)
        for url in (b.rtmp(), c.flv(), edge.rtmp(), edge.flv(), b.flv(), c.rtmp()):
            yield self.probe(url)
        # One pull per stream per node: ten players on B and C, two pulls on A.
        crowd = []
        for node in (b, c) * 5:
            crowd.append((yield self.player(node.srv, "s")))
        yield until(lambda: all(p.keyframes() >= 1 for p in crowd), "ten players on B and C")
        # (polled: a pull that B or C stopped a moment ago may still be closing on A)
        yield until(lambda: self.rtmp_plays(a.api).addCallback(lambda pulls: len(pulls) == 2),
                    "exactly two pulls on A", timeout=20)
        pulls = yield self.rtmp_plays(a.api)
        self.assertEqual(len(pulls), 2, pulls)
        for p in crowd:
            yield p.close()
        # HLS is written on A only, and answered by every node.
        playlist = yield self.hls_ready(a)
        for node in (b, c, edge):
            body = yield self.hls_ready(node)
            self.assertIn("#EXTM3U", body)
            yield self.probe(node.hls())
        self.assertTrue(playlist.startswith("#EXTM3U"))
        self.assertFalse(os.path.exists(os.path.join(b.srv.dir, "live")))
        for node in (b, c, edge):
            self.assertIn("cluster: ", node.srv.log())

    @defer.inlineCallbacks
    def rtmp_plays(self, api_port: int):
        from .test_cluster import plays

        found = yield plays(api_port)
        return found

    @defer.inlineCallbacks
    def test_second_publisher_refused_cluster_wide(self):
        a, c = self.origin(), self.origin()
        self.publisher(a.rtmp("s"))
        yield self.registered(a)
        with self.assertRaises(Denied):
            yield client.connect(reactor, f"rtmp://127.0.0.1:{c.port}/live", "s", "publish")
        self.assertRegex(c.srv.log(), r"cluster: refuse publish of __defaultVhost__/live/s: .*published on node "
                                      rf"127\.0\.0\.1:{a.port}")
        # Another stream is fine on C.
        proto = yield client.connect(reactor, f"rtmp://127.0.0.1:{c.port}/live", "t", "publish")
        proto.close()
        # A stopped (SIGTERM) removes its records at once (not after the 10 s TTL): C may publish s.
        stopped = reactor.seconds()
        a.srv.stop()
        value = yield self.redis_get("srs:stream:__defaultVhost__/live/s")
        self.assertIsNone(value)
        proto = yield client.connect(reactor, f"rtmp://127.0.0.1:{c.port}/live", "s", "publish")
        self.assertLess(reactor.seconds() - stopped, 10)
        proto.close()

    @defer.inlineCallbacks
    def redis_get(self, key: str):
        import txredisapi

        conn = yield txredisapi.Connection("127.0.0.1", self.redis.port, reconnect=False)
        try:
            value = yield conn.get(key)
        finally:
            yield conn.disconnect()
        return value

    @defer.inlineCallbacks
    def test_publisher_moves_players_go_on(self):
        a, b, c = self.origin(), self.origin(), self.origin()
        first = self.publisher(a.rtmp("s"))
        yield self.registered(a)
        player = yield self.player(c.srv, "s")
        yield until(lambda: player.keyframes() >= 2, "C's player getting A's stream")
        h.stop_process(first)
        yield sleep(1.0)
        self.publisher(b.rtmp("s"))
        yield self.registered(b)
        before = len(player.frames())
        moved = reactor.seconds()
        yield until(lambda: len(player.frames()) > before, "C's player getting B's stream", timeout=90,
                    interval=0.05)
        resumed = reactor.seconds() - moved
        yield until(lambda: len(player.frames()) > before + 50, "50 frames of B's stream on C", timeout=90)
        self.assertFalse(player.proto.done.called)
        times = [t for t, _p in player.frames()]
        gap = max(b_ - a_ for a_, b_ in zip(times, times[1:]))
        print(f"\n  C's player got B's first frame {resumed:.2f}s after B's stream was in Redis; "
              f"largest gap between frames {gap:.2f}s (A stopped, 1 s, B published)")
        yield self.probe(c.flv())

    @defer.inlineCallbacks
    def test_redis_down_and_back(self):
        a, b = self.origin(), self.origin()
        self.publisher(a.rtmp("s"))
        yield self.registered(a)
        self.redis.stop()
        yield until(lambda: "unreachable" in a.srv.log(), "A to notice Redis is gone")
        # Local streams keep working: a new publish on A, and its players.
        self.publisher(a.rtmp("local"))
        yield self.probe(a.rtmp("local"))
        # A remote lookup fails with a clear line (and the player waits).
        failed = Player()
        self.addCleanup(failed.close)
        d = failed.play(f"rtmp://127.0.0.1:{b.port}/live", "local")
        d.addErrback(lambda _f: None)
        yield until(lambda: "lookup of __defaultVhost__/live/local failed, will retry" in b.srv.log(),
                    "B's failed lookup logged")
        self.redis.start()
        yield self.registered(a, "local")
        yield until(lambda: failed.keyframes() >= 1, "B's waiting player served once Redis is back", timeout=90)
        yield self.probe(b.rtmp("s"))
        self.assertIn("is back; register", a.srv.log())


class LegacyCoworkersTests(ClusterTestCase):
    """SRS 3-6's origin cluster as its conf/origin.cluster.* files set it up:
    two origins naming each other's API as coworkers, an edge with both as
    origins; the edge plays a stream published to either origin."""

    timeout = 300

    @defer.inlineCallbacks
    def test_edge_plays_from_either_origin(self):
        api_a, api_b = h.free_port(), h.free_port()
        a = self.server(f"vhost __defaultVhost__ {{ cluster {{ mode local; origin_cluster on; "
                        f"coworkers 127.0.0.1:{api_b}; }} }}", api_port=api_a)
        b = self.server(f"vhost __defaultVhost__ {{ cluster {{ mode local; origin_cluster on; "
                        f"coworkers 127.0.0.1:{api_a}; }} }}", api_port=api_b)
        edge = self.server(f"vhost __defaultVhost__ {{ cluster {{ mode remote; origin 127.0.0.1:{a.port} "
                           f"127.0.0.1:{b.port}; }} }}")
        self.publisher(b.url("s"))
        yield until(lambda: stream_active(api_b, "s"), "the stream on B")
        # B answers SRS's clusters query; A does not have the stream.
        found = yield api(api_b, "/api/v1/clusters?vhost=__defaultVhost__&ip=127.0.0.1&app=live&stream=s"
                                 f"&coworker=127.0.0.1:{api_b}")
        self.assertEqual(found, {"code": 0, "data": {
            "query": {"ip": "127.0.0.1", "vhost": "__defaultVhost__", "app": "live", "stream": "s"},
            "origin": {"ip": "127.0.0.1", "port": b.port, "vhost": "__defaultVhost__",
                       "api": f"127.0.0.1:{api_b}", "routers": [f"127.0.0.1:{api_b}"]}}})
        missing = yield api(api_a, "/api/v1/clusters?vhost=__defaultVhost__&app=live&stream=s")
        self.assertIsNone(missing["data"]["origin"])
        # A player of A gets the 302 to B.
        proto = yield client.connect(reactor, f"rtmp://127.0.0.1:{a.port}/live", "s", "play")
        yield proto.done
        self.assertEqual(proto.redirect, f"rtmp://127.0.0.1:{b.port}/live/s")
        # The edge asks A first, follows the redirect to B.
        info = yield threads.deferToThread(h.probe, edge.url("s"))
        self.assertAvc320Aac(info)
        self.assertIn(f"edge: RTMP redirect __defaultVhost__/live/s from 127.0.0.1:{a.port} to "
                      f"rtmp://127.0.0.1:{b.port}/live/s", edge.log())
        # A stream published to A plays on the edge too.
        self.publisher(a.url("t"))
        yield until(lambda: stream_active(api_a, "t"), "the stream on A")
        info = yield threads.deferToThread(h.probe, edge.url("t"))
        self.assertAvc320Aac(info)
        # A stream nobody publishes: A closes the player ("no origin"), as SRS.
        proto = yield client.connect(reactor, f"rtmp://127.0.0.1:{a.port}/live", "nothing", "play")
        yield proto.done
        self.assertEqual(proto.redirect, "")
        self.assertIn("no origin of the cluster publishes __defaultVhost__/live/nothing", a.log())


class RedisClusterUdpTests(RedisClusterTestCase):
    """SRT (``m=request``) and WebRTC (WHEP, aiortc) players on B of a stream
    published over RTMP on A: B pulls it as for any player (UDP: in a
    private network namespace)."""

    def setUp(self):
        from . import netns

        netns.enter()
        super().setUp()

    @defer.inlineCallbacks
    def test_srt_player_on_another_origin(self):
        a = self.origin()
        srt = h.free_port()
        b = self.origin(extra=f"srt_server {{ enabled on; listen 127.0.0.1:{srt}; }}", vhost="srt { enabled on; }")
        b.srv.wait_log(r"SRT listen at udp://127\.0\.0\.1:%d" % srt)
        self.publisher(a.rtmp("s"))
        yield self.registered(a)
        info = yield threads.deferToThread(h.probe, f"srt://127.0.0.1:{srt}?streamid=#!::r=live/s,m=request")
        self.assertAvc320Aac(info)
        self.assertIn("SRT play __defaultVhost__/live/s", b.srv.log())
        self.assertIn(f"edge: connected to origin 127.0.0.1:{a.port}", b.srv.log())

    @defer.inlineCallbacks
    def test_whep_player_on_another_origin(self):
        need_aiortc()
        a = self.origin()
        udp = h.free_port()
        b = self.origin(extra=f"rtc_server {{ enabled on; listen 127.0.0.1:{udp}; candidate 127.0.0.1; }}",
                        vhost="rtc { enabled on; rtmp_to_rtc on; }")
        self.publisher(a.rtmp("s"))
        yield self.registered(a)
        client = os.path.join(os.path.dirname(os.path.abspath(__file__)), "whep_aiortc.py")
        url = f"http://127.0.0.1:{b.api}/rtc/v1/whep/?app=live&stream=s"

        def play():
            return subprocess.run([sys.executable, client, url, "8"], capture_output=True, timeout=180)

        result = yield threads.deferToThread(play)
        output = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
        self.assertEqual(result.returncode, 0, output)
        video = re.search(r"VIDEO (\d+) (\d+)x(\d+)", output)
        audio = re.search(r"AUDIO (\d+)", output)
        self.assertGreaterEqual(int(video.group(1)), 50, output)
        self.assertEqual((video.group(2), video.group(3)), ("320", "240"), output)
        self.assertGreaterEqual(int(audio.group(1)), 50, output)  # Opus, transcoded on B
        self.assertIn(f"edge: connected to origin 127.0.0.1:{a.port}", b.srv.log())
