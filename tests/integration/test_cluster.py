"""Forward and edge end to end: several real servers on loopback, FFmpeg
publishing, ffprobe and FFmpeg playing, the Twisted RTMP client as a
crowd of players, and the origins' HTTP API counting upstream connections.

Blocking work (ffprobe, waiting for FFmpeg) runs in threads so the trial
reactor keeps serving the in-process players and hook receiver."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile

import treq
from twisted.internet import defer, reactor, task, threads
from twisted.trial import unittest
from twisted.web import resource, server

from srs_twisted.errors import Denied
from srs_twisted.live.packet import VIDEO
from srs_twisted.rtmp import client

from . import harness as h

def sleep(seconds: float) -> defer.Deferred:
    return task.deferLater(reactor, seconds, lambda: None)


@defer.inlineCallbacks
def until(fn, what: str, timeout: float = 60.0, interval: float = 0.25):
    """Polls ``fn`` (a value or a Deferred) until it is truthy."""
    end = reactor.seconds() + timeout
    last = None
    while True:
        try:
            value = yield defer.maybeDeferred(fn)
        except Exception as e:  # noqa: BLE001 - not ready yet
            value, last = None, e
        if value:
            return value
        if reactor.seconds() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last!r})")
        yield sleep(interval)


@defer.inlineCallbacks
def api(port: int, path: str):
    r = yield treq.get(f"http://127.0.0.1:{port}{path}", timeout=h.WAIT, persistent=False)
    body = yield r.content()
    return json.loads(body)


@defer.inlineCallbacks
def stream_active(port: int, name: str):
    obj = yield api(port, "/api/v1/streams/?count=100")
    for s in obj.get("streams", []):
        if s["name"] == name and s["publish"]["active"] and s.get("video"):
            return s
    return None


@defer.inlineCallbacks
def plays(port: int) -> list:
    """The rtmp-play clients an origin sees (an edge's pull is one)."""
    obj = yield api(port, "/api/v1/clients/?count=100")
    return [c for c in obj.get("clients", []) if c["type"] == "rtmp-play"]


def video_pts(path: str) -> list[float]:
    out = subprocess.run(
        [h.ffprobe(), "-v", "error", "-select_streams", "v", "-show_entries", "packet=pts_time", "-of", "csv=p=0",
         path], capture_output=True, timeout=60, text=True,
    )
    return [float(x) for x in out.stdout.split() if x.strip() and x.strip() != "N/A"]


class Player:
    """The Twisted RTMP client playing a stream, noting when each packet came."""

    def __init__(self):
        self.packets: list = []  # (arrival, MediaPacket)
        self.proto = None

    def on_packet(self, pkt) -> None:
        self.packets.append((reactor.seconds(), pkt))

    def frames(self) -> list:
        return [(t, p) for t, p in self.packets if p.kind == VIDEO and not p.sequence_header]

    def keyframes(self) -> int:
        return sum(1 for _t, p in self.frames() if p.keyframe)

    @defer.inlineCallbacks
    def play(self, tc_url: str, stream: str):
        self.proto = yield client.connect(reactor, tc_url, stream, "play", on_packet=self.on_packet)
        return self

    def close(self) -> defer.Deferred:
        if self.proto is None:
            return defer.succeed(None)
        if not self.proto.done.called:
            self.proto.close()
        return self.proto.done


class ClusterTestCase(unittest.TestCase):
    timeout = 300

    def setUp(self):
        h.ffmpeg(), h.ffprobe()
        self.tmp = tempfile.mkdtemp(prefix="srs-cluster-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def server(self, conf: str, api_port: int | None = None, rtmp_port: int | None = None) -> h.Server:
        if api_port:
            conf = f"http_api {{ enabled on; listen 127.0.0.1:{api_port}; }}\n{conf}"
        srv = h.Server(conf, rtmp_port=rtmp_port)
        self.addCleanup(srv.stop)
        if api_port:
            h.wait_port(api_port, proc=srv.proc)
        return srv

    def publisher(self, url: str):
        proc = h.publish(url, h.clip(), loop=True)
        self.addCleanup(h.stop_process, proc)
        return proc

    @defer.inlineCallbacks
    def player(self, srv: h.Server, stream: str = "s") -> defer.Deferred:
        p = Player()
        self.addCleanup(p.close)
        yield p.play(f"rtmp://127.0.0.1:{srv.port}/live", stream)
        return p

    def assertAvc320Aac(self, info: dict) -> None:
        streams = h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (320, 240))


class ForwardTests(ClusterTestCase):
    def setUp(self):
        super().setUp()

    @defer.inlineCallbacks
    def test_forward_to_a_second_server(self):
        dest_api = h.free_port()
        dest = self.server("vhost __defaultVhost__ { }", api_port=dest_api)
        src = self.server(f"vhost __defaultVhost__ {{ forward {{ enabled on; destination 127.0.0.1:{dest.port}; }} }}")
        self.publisher(src.url("s") + "?token=abc")
        found = yield until(lambda: stream_active(dest_api, "s"), "the forwarded stream on the destination")
        self.assertEqual(found["app"], "live")
        info = yield threads.deferToThread(h.probe, dest.url("s"))
        self.assertAvc320Aac(info)
        info = yield threads.deferToThread(h.probe, src.url("s"))
        self.assertAvc320Aac(info)
        self.assertIn(f"forward: publish url rtmp://127.0.0.1:{dest.port}/live/s?token=abc", src.log())
        self.assertNotIn("Traceback", src.console() + dest.console())

    @defer.inlineCallbacks
    def test_destination_restart_resumes_while_local_players_go_on(self):
        dest_port = h.free_port()
        conf = "vhost __defaultVhost__ { }"
        dest_api = h.free_port()
        dest = self.server(conf, api_port=dest_api, rtmp_port=dest_port)
        src = self.server(f"vhost __defaultVhost__ {{ forward {{ enabled on; destination 127.0.0.1:{dest_port}; }} }}")
        self.publisher(src.url("s"))
        yield until(lambda: stream_active(dest_api, "s"), "the forwarded stream on the destination")
        recording = os.path.join(self.tmp, "local.flv")
        seconds = 22
        rec = h.start_player(src.url("s"), seconds, recording)
        self.addCleanup(h.stop_process, rec)
        yield until(lambda: h.file_size(recording) >= 100_000, "2 s recorded by the local player")
        dest.stop()
        # the forwarder saw the loss and retries
        yield until(lambda: re.search(r"forward \S+: connection lost after", src.log()),
                    "the forwarder to notice the destination went away")
        yield until(lambda: re.search(r"forward \S+: attempt \d+ failed", src.log()),
                    "a failed retry while the destination is down")
        api_port = h.free_port()
        restarted = reactor.seconds()
        dest2 = self.server(conf, api_port=api_port, rtmp_port=dest_port)
        yield until(lambda: stream_active(api_port, "s"), "forwarding to the restarted destination", interval=0.1)
        resume = reactor.seconds() - restarted  # a figure (the retry backoff), not a bound
        info = yield threads.deferToThread(h.probe, dest2.url("s"))
        self.assertAvc320Aac(info)
        code = yield threads.deferToThread(rec.wait, seconds + 120)
        self.assertEqual(code, 0, rec.stderr.read().decode(errors="replace")[-500:])
        pts = yield threads.deferToThread(video_pts, recording)
        gap = max(b - a for a, b in zip(pts, pts[1:]))
        self.assertGreater(pts[-1] - pts[0], seconds - 3)
        self.assertLess(gap, 1.0)
        print(f"\n  forward resumed {resume:.2f}s after the destination listened again; "
              f"local player: {pts[-1] - pts[0]:.1f}s recorded, largest video gap {gap * 1000:.0f} ms")


class EdgeTests(ClusterTestCase):
    def setUp(self):
        super().setUp()

    def edge(self, origins: str, extra: str = "", http_port: int | None = None) -> h.Server:
        http = ""
        remux = ""
        if http_port:
            http = f"http_server {{ enabled on; listen 127.0.0.1:{http_port}; dir {self.tmp}; }}\n"
            remux = "http_remux { enabled on; mount [vhost]/[app]/[stream].flv; }"
        return self.server(f"{http}vhost __defaultVhost__ {{ {remux} "
                           f"cluster {{ mode remote; origin {origins}; {extra} }} }}")

    @defer.inlineCallbacks
    def test_twenty_players_one_upstream(self):
        origin_api = h.free_port()
        origin = self.server("vhost __defaultVhost__ { }", api_port=origin_api)
        http_port = h.free_port()
        edge = self.edge(f"127.0.0.1:{origin.port}", http_port=http_port)
        h.wait_port(http_port, proc=edge.proc)
        self.publisher(origin.url("s"))
        yield until(lambda: stream_active(origin_api, "s"), "the stream on the origin")
        players = yield defer.gatherResults([self.player(edge) for _ in range(20)])
        yield until(lambda: all(p.keyframes() >= 2 for p in players), "20 players to get keyframes")
        # and an HTTP-FLV player on the edge, sharing the same pull
        info = yield threads.deferToThread(h.probe, f"http://127.0.0.1:{http_port}/live/s.flv")
        self.assertAvc320Aac(info)
        upstream = yield plays(origin_api)
        self.assertEqual(len(upstream), 1, upstream)
        self.assertEqual(upstream[0]["ip"], "127.0.0.1")
        self.assertEqual(edge.log().count("edge: connected to origin"), 1)
        yield defer.gatherResults([p.close() for p in players])
        left = reactor.seconds()
        yield until(lambda: plays(origin_api).addCallback(lambda c: not c), "the pull to stop")
        stopped = reactor.seconds() - left
        self.assertGreater(stopped, 2.0)  # EDGE_STOP_DELAY is 3 s
        print(f"\n  20 RTMP + 1 HTTP-FLV players, 1 upstream connection; pull stopped {stopped:.1f}s "
              f"after the last player")

    @defer.inlineCallbacks
    def test_origin_failover_keeps_players(self):
        apis = [h.free_port() for _ in range(3)]
        origins = [self.server("vhost __defaultVhost__ { }", api_port=port) for port in apis]
        for o in origins:
            self.publisher(o.url("s"))
        for port in apis:
            yield until(lambda port=port: stream_active(port, "s"), "the stream on every origin")
        edge = self.edge(" ".join(f"127.0.0.1:{o.port}" for o in origins))
        p1, p2 = yield defer.gatherResults([self.player(edge), self.player(edge)])
        yield until(lambda: p1.keyframes() >= 4, "4 s of video on the edge")
        first = yield plays(apis[0])
        self.assertEqual(len(first), 1)
        origins[0].proc.kill()
        killed = reactor.seconds()

        def after(p):
            return [t for t, _ in p.frames() if t > killed]

        # 6 s of video after the failover, on the same connections
        yield until(lambda: all(len(after(p)) > 150 or p.proto.done.called for p in (p1, p2)),
                    "6 s of video after the failover", timeout=120)
        for p in (p1, p2):
            self.assertFalse(p.proto.done.called, "the player was disconnected")
            self.assertGreater(len(after(p)), 150, "less than 6 s of video after the failover")
            dts = [pkt.dts for _, pkt in p.frames()]
            self.assertEqual(dts, sorted(dts), "timestamps went back in time across the switch")
        second = yield plays(apis[1])
        self.assertEqual(len(second), 1, "the edge did not move to the second origin")
        arrivals = [t for t, _ in p1.frames()]
        gap = max(b - a for a, b in zip(arrivals, arrivals[1:]))  # the failover time: a figure, not a bound
        print(f"\n  failover: the players' largest gap was {gap:.2f}s")

    @defer.inlineCallbacks
    def test_pull_over_http_flv(self):
        origin_http = h.free_port()
        origin = self.server(f"http_server {{ enabled on; listen 127.0.0.1:{origin_http}; dir {self.tmp}; }}\n"
                             "vhost __defaultVhost__ { http_remux { enabled on; mount [vhost]/[app]/[stream].flv; } }")
        h.wait_port(origin_http, proc=origin.proc)
        edge = self.edge(f"127.0.0.1:{origin_http}", "protocol flv;")
        self.publisher(origin.url("s"))
        yield until(lambda: "fmle-publish" in origin.log(), "the publish on the origin")
        p = yield self.player(edge)
        yield until(lambda: p.keyframes() >= 2, "video pulled over HTTP-FLV")
        info = yield threads.deferToThread(h.probe, edge.url("s"))
        self.assertAvc320Aac(info)
        self.assertIn(f"edge: pull __defaultVhost__/live/s from http://127.0.0.1:{origin_http}/live/s.flv", edge.log())
        self.assertEqual(edge.log().count("edge: connected to origin"), 1)

    @defer.inlineCallbacks
    def test_publish_through_an_edge_plays_on_the_origin(self):
        origin_api = h.free_port()
        origin = self.server("vhost __defaultVhost__ { }", api_port=origin_api)
        edge = self.edge(f"127.0.0.1:{origin.port}")
        self.publisher(edge.url("pushed"))
        yield until(lambda: stream_active(origin_api, "pushed"), "the pushed stream on the origin")
        info = yield threads.deferToThread(h.probe, origin.url("pushed"))
        self.assertAvc320Aac(info)
        info = yield threads.deferToThread(h.probe, edge.url("pushed"))  # its local players too
        self.assertAvc320Aac(info)
        self.assertIn("edge-push: publish url", edge.log())

    @defer.inlineCallbacks
    def test_token_traverse(self):
        asked = []

        class Hook(resource.Resource):
            isLeaf = True

            def render_POST(self, request):
                body = json.loads(request.content.read())
                asked.append(body["param"])
                return b'{"code":0}' if "token=good" in body["param"] else b'{"code":1}'

        port = reactor.listenTCP(0, server.Site(Hook()), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        hook = f"http://127.0.0.1:{port.getHost().port}/play"
        origin = self.server(f"vhost __defaultVhost__ {{ http_hooks {{ enabled on; on_play {hook}; }} }}")
        edge = self.edge(f"127.0.0.1:{origin.port}", "token_traverse on;")
        tc_url = f"rtmp://127.0.0.1:{edge.port}/live"
        bad = Player()
        yield self.assertFailure(bad.play(tc_url, "s?token=bad"), Denied)
        self.assertEqual(asked, ["?token=bad"])
        good = yield self.player(edge, "s?token=good")
        self.assertIn("NetStream.Play.Start", good.proto.status_codes)
        self.assertEqual(asked[1], "?token=good")
        self.assertIn("edge token auth ok", edge.log())
        # a publisher traverses as a publisher (the origin has no on_publish
        # hook here), and its push is not refused as a busy stream
        self.publisher(edge.url("pub") + "?token=any")
        yield until(lambda: "edge-push: publish url" in edge.log(), "the push to the origin")
        info = yield threads.deferToThread(h.probe, origin.url("pub") + "?token=good")
        self.assertAvc320Aac(info)
