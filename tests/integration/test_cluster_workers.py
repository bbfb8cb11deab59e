"""``workers 2`` on two origins of one Redis origin cluster (the chained directory,
srs_twisted/cluster/chained.py): a real redis-server on a free loopback port, origins
A and B each a supervisor with two workers, and a single-process edge in front of B.

In order: a stream published to A is claimed once in Redis for A's shared ports; B
plays it over RTMP and HTTP-FLV (ffprobe: H.264 320x240 + AAC), and so does the edge;
B answers its HLS from A;
16 light players on B land on both of B's workers, each of which pulls it from A; a
second publisher of it on B is refused; A's publisher stops (its record leaves Redis)
and the stream is published on B: B's players keep their connections and get the new
stream, and A plays it from B; B's owner worker killed, a live worker of B releases the
record at once and A publishes the stream again."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from twisted.trial import unittest

from . import harness as h
from .test_cluster_redis import Redis, redis_block

PLAYERS = os.path.join(h.ROOT, "tests", "workers", "players.py")
KEY = "srs:stream:__defaultVhost__/live/s"


def redis_get(port: int, key: str) -> str | None:
    """GET over a plain socket (RESP), blocking."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        k = key.encode()
        s.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k))
        data = b""
        while b"\r\n" not in data:
            data += s.recv(65536)
        head, _, rest = data.partition(b"\r\n")
        if head == b"$-1":
            return None
        size = int(head[1:])
        while len(rest) < size + 2:
            rest += s.recv(65536)
        return rest[:size].decode()


class Origin:
    """A supervisor with two workers, in the Redis cluster."""

    def __init__(self, redis_port: int) -> None:
        self.http, self.api = h.free_port(), h.free_port()
        self.hls = tempfile.mkdtemp(prefix="srs-cw-hls-")
        self.srv = h.Server(
            "workers 2;\n"
            f"http_server {{ enabled on; listen 127.0.0.1:{self.http}; dir {self.hls}; }}\n"
            f"http_api {{ enabled on; listen 127.0.0.1:{self.api}; }}\n"
            "vhost __defaultVhost__ {\n"
            "  play { mw_latency 0; }\n"
            "  http_remux { enabled on; mount [vhost]/[app]/[stream].flv; }\n"
            f"  hls {{ enabled on; hls_path {self.hls}; hls_fragment 2; hls_window 10; }}\n"
            f"  cluster {{ mode local; origin_cluster on; {redis_block(redis_port)} }}\n"
            "}\n")
        self.srv.wait_log(r"\[sup\] srs-twisted started, 2 workers", timeout=90)

    def rtmp(self) -> str:
        return self.srv.url("s")

    def flv(self) -> str:
        return f"http://127.0.0.1:{self.http}/live/s.flv"

    def privates(self) -> dict[int, str]:
        """Each worker's private API, from its latest join line."""
        out = {}
        for m in re.finditer(r"\[w(\d)\] worker \d joined the supervisor, private rtmp=\S+ api=(\S+)", self.srv.log()):
            out[int(m.group(1))] = m.group(2)
        return out

    def worker_clients(self) -> dict[int, list]:
        out = {}
        for i, hostport in self.privates().items():
            host, port = hostport.rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=h.WAIT)
            try:
                conn.request("GET", "/api/v1/clients/?count=1000")
                out[i] = json.loads(conn.getresponse().read())["clients"]
            finally:
                conn.close()
        return out


class ClusterWorkers(unittest.TestCase):
    timeout = 600

    def setUp(self):
        h.ffmpeg()
        h.ffprobe()
        self.redis = Redis()
        self.addCleanup(self.redis.close)
        self.procs: list[subprocess.Popen] = []
        self.addCleanup(self._stop_procs)

    def _stop_procs(self):
        for proc in self.procs:
            h.stop_process(proc)

    def origin(self) -> Origin:
        o = Origin(self.redis.port)
        self.addCleanup(o.srv.stop)
        return o

    def publish(self, url: str) -> subprocess.Popen:
        proc = h.publish(url, h.clip(), loop=True)
        self.procs.append(proc)
        return proc

    def assert_avc320_aac(self, url: str) -> None:
        streams = h.assert_streams(h.probe(url), [("video", "h264"), ("audio", "aac")])
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (320, 240), url)

    def record(self) -> dict | None:
        value = redis_get(self.redis.port, KEY)
        return json.loads(value) if value else None

    def status(self, path: str) -> list[dict]:
        try:
            with open(path) as f:
                return json.load(f)["players"]
        except (OSError, ValueError):
            return []

    def hls_playlist(self, node: Origin) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{node.http}/live/s.m3u8", timeout=h.WAIT) as r:
                body = r.read().decode()
        except OSError:
            return None
        return body if "#EXTINF" in body else None

    def test_two_origins_of_two_workers_share_one_directory(self):
        a, b = self.origin(), self.origin()
        edge_http = h.free_port()
        edge = h.Server(
            f"http_server {{ enabled on; listen 127.0.0.1:{edge_http}; }}\n"
            "vhost __defaultVhost__ { http_remux { enabled on; mount [vhost]/[app]/[stream].flv; } "
            f"cluster {{ mode remote; origin 127.0.0.1:{b.srv.port}; }} }}")
        self.addCleanup(edge.stop)

        def pulls_on_a():
            tc = f"127.0.0.1:{a.srv.port}"
            return [c["id"] for cs in a.worker_clients().values() for c in cs if not c["publish"] and tc in c["tcUrl"]]

        # 1. Published on one of A's workers: one record in Redis, for A's shared ports.
        pub_a = self.publish(a.rtmp())
        rec = h.wait_for(self.record, 60, interval=0.2, message="the stream in Redis")
        self.assertEqual(rec["node"], f"127.0.0.1:{a.srv.port}")
        self.assertEqual(rec["endpoints"]["rtmp"], f"127.0.0.1:{a.srv.port}")
        self.assertEqual(rec["endpoints"]["http"], f"127.0.0.1:{a.http}")
        # Either of A's workers serves it (the one without the publisher pulls from the owner
        # worker): HTTP-FLV on fresh connections, which the kernel spreads over both.
        h.wait_http_stream(a.flv())
        for _ in range(6):
            with urllib.request.urlopen(a.flv(), timeout=h.WAIT) as r:  # a 404 raises
                self.assertEqual(len(r.read(20000)), 20000)

        # 2. B (either worker) and the edge in front of B play it.
        for url in (b.rtmp(), b.flv(), b.rtmp(), b.flv(), edge.url("s"), f"http://127.0.0.1:{edge_http}/live/s.flv"):
            self.assert_avc320_aac(url)

        # 3. Several players on B: both of B's workers serve it (each pulls it from A).
        status = os.path.join(b.srv.dir, "players.json")
        players = subprocess.Popen(
            [sys.executable, PLAYERS, "--rtmp-port", str(b.srv.port), "--http-port", str(b.http), "--stream", "s",
             "-n", "8", "-m", "8", "--seconds", "200", "--status", status],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(players)

        def all_playing(minimum=5):
            st = self.status(status)
            return len(st) == 16 and all(p["state"] == "playing" and p["video"] > minimum and p["audio"] > minimum
                                         for p in st)

        h.wait_for(all_playing, 90, interval=0.5, message=lambda: self.status(status)[:4])
        per = b.worker_clients()
        plays = {i: [c for c in cs if not c["publish"]] for i, cs in per.items()}
        self.assertEqual(sorted(plays), [0, 1])
        self.assertTrue(all(len(cs) >= 1 for cs in plays.values()), {i: len(cs) for i, cs in plays.items()})
        # Each B worker pulled from A's shared port (the relay log line names A's node).
        pulls = set(re.findall(r"\[(w\d)\] edge: connected to origin 127\.0\.0\.1:%d for" % a.srv.port, b.srv.log()))
        self.assertEqual(pulls, {"w0", "w1"}, "both of B's workers pull from A")

        # HLS, written by A's owner worker, answered by B (passed to A's shared HTTP port).
        playlist = h.wait_for(lambda: self.hls_playlist(b), 90, interval=0.5, message="B's HLS playlist")
        segment = next(line for line in playlist.splitlines() if line and not line.startswith("#"))
        with urllib.request.urlopen(f"http://127.0.0.1:{b.http}/live/{segment}", timeout=h.WAIT) as r:
            ts = r.read()
        self.assertGreater(len(ts), 10000)
        self.assertEqual(ts[0], 0x47)
        self.assertFalse(os.path.exists(os.path.join(b.hls, "live", "s.m3u8")))

        # ... two pulls on A's shared port: one per B worker, each landing on either worker of A.
        h.wait_for(lambda: len(pulls_on_a()) == 2, 30, interval=0.5, message=lambda: f"pulls on A: {pulls_on_a()}")

        # 4. A second publisher of the stream on B is refused (A holds it in Redis).
        second = h.publish(b.rtmp(), h.clip(), loop=True)
        self.procs.append(second)
        h.wait_for(lambda: second.poll() is not None, 60, message="the second publisher on B was not refused")
        self.assertRegex(b.srv.log(), r"cluster: refuse publish of __defaultVhost__/live/s: stream "
                                      r"__defaultVhost__/live/s is published on node 127\.0\.0\.1:%d" % a.srv.port)
        self.assertEqual(self.record()["node"], f"127.0.0.1:{a.srv.port}")

        # 5. A's publisher stops: the owner worker releases the record.
        h.stop_process(pub_a)
        h.wait_for(lambda: self.record() is None, 30, interval=0.2, message="A's record left Redis")
        before = {i: p["video"] for i, p in enumerate(self.status(status))}

        # 6. Published on B: B's players keep their connections and get it; A plays it from B.
        self.publish(b.rtmp())
        rec = h.wait_for(self.record, 60, interval=0.2, message="B's record in Redis")
        self.assertEqual(rec["node"], f"127.0.0.1:{b.srv.port}")

        def recovered():
            st = self.status(status)
            return len(st) == 16 and all(p["state"] == "playing" and p["video"] > before[i] + 50
                                         for i, p in enumerate(st))

        h.wait_for(recovered, 90, interval=0.5,
                   message=lambda: [(p["state"], before.get(i), p["video"]) for i, p in enumerate(self.status(status))])
        # B's workers get it from B now, not through A (a pull left on A would relay B's
        # stream back to B: it follows the owner within RELAY_RECHECK, then A's pulls stop).
        h.wait_for(lambda: not pulls_on_a(), 30, interval=0.5, message=lambda: f"pulls still on A: {pulls_on_a()}")
        for url in (a.flv(), a.rtmp()):
            self.assert_avc320_aac(url)

        # 7. B's owner worker killed (SIGKILL): the supervisor has a live worker of B release
        # the record at once (not after its 10 s TTL), so A may publish the stream again.
        owner = next(i for i, cs in b.worker_clients().items() if any(c["publish"] for c in cs))
        pid = int(re.findall(r"\]\[(\d+)\]\[\w+\]\[w%d\] worker %d joined the supervisor" % (owner, owner),
                             b.srv.log())[-1])
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        h.wait_for(lambda: self.record() is None, 30, interval=0.1, message="B's record left Redis")
        self.assertLess(time.monotonic() - killed, 5.0, "released by a live worker, not by the TTL")
        self.assertIn("cluster: released __defaultVhost__/live/s of a worker that died", b.srv.log())
        self.publish(a.rtmp())
        rec = h.wait_for(self.record, 60, interval=0.2, message="A's record in Redis again")
        self.assertEqual(rec["node"], f"127.0.0.1:{a.srv.port}")
        self.assertNotIn("Traceback", a.srv.log() + b.srv.log())
