"""HTTP hooks for HTTP-FLV players, end to end: the real server, an FFmpeg
publisher, FFmpeg/ffprobe and raw-socket HTTP-FLV players, and a hook
receiver in this test process (twisted.web on a free loopback port, served by
the trial reactor, so nothing here blocks it)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from twisted.internet import defer
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from . import harness as h
from .receiver import HOOK_KEYS, api_request, ffprobe, http_live_server, raw_http, start_receiver, until

ACTIONS = ("on_publish", "on_unpublish", "on_play", "on_stop")


class HooksHttpFlvTests(unittest.TestCase):
    timeout = 300

    def setUp(self):
        h.ffmpeg(), h.ffprobe()
        self.tmp = tempfile.mkdtemp(prefix="srs-hooks-http-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.receiver, base = start_receiver(self)
        hooks = "".join(f"{a} {base}/hooks/{a}; " for a in ACTIONS)
        self.server = http_live_server(self, vhost=f"http_hooks {{ enabled on; {hooks}}}")
        self.http_port, self.api_port = self.server.http_port, self.server.api_port
        self.flv_url = f"http://127.0.0.1:{self.http_port}/live/s.flv"

    def bodies(self, action):
        return self.receiver.bodies(action)

    @defer.inlineCallbacks
    def published(self):
        proc = h.publish(self.server.url("s"), h.clip(), loop=True)
        self.addCleanup(h.stop_process, proc)
        yield self.receiver.wait_for(lambda: self.bodies("on_publish"), 60, "on_publish")
        # the GOP cache has a keyframe once the API knows the codecs
        yield until(lambda: self.api("/api/v1/streams/"),
                    lambda o: o["streams"] and o["streams"][0]["video"], "the stream's codecs")
        return proc

    @defer.inlineCallbacks
    def api(self, path):
        r, body, obj = yield api_request(f"http://127.0.0.1:{self.api_port}{path}")
        self.assertEqual(r.code, 200, body)
        return obj

    def assert_play_body(self, body, action, param, stream_id):
        self.assertEqual(list(body), HOOK_KEYS[action], action)
        self.assertEqual(body["action"], action)
        self.assertTrue(body["server_id"] and body["service_id"] and body["client_id"], body)
        self.assertEqual((body["ip"], body["vhost"], body["app"], body["stream"]),
                         ("127.0.0.1", "__defaultVhost__", "live", "s"))
        self.assertEqual(body["param"], param)
        self.assertEqual(body["tcUrl"], "http://127.0.0.1/live")
        self.assertEqual(body["stream_url"], "/live/s")
        self.assertEqual(body["stream_id"], stream_id)
        if action == "on_play":
            self.assertEqual(body["pageUrl"], "")

    @defer.inlineCallbacks
    def test_on_play_and_on_stop_for_http_flv_players(self):
        yield self.published()
        (stream,) = (yield self.api("/api/v1/streams/"))["streams"]
        publish = self.bodies("on_publish")[0]

        # An FFmpeg player for 4 s: long enough to find it in /api/v1/clients.
        player = getProcessOutputAndValue(
            h.ffmpeg(),
            ["-hide_banner", "-loglevel", "error", "-rw_timeout", "30000000", "-i", self.flv_url + "?token=x",
             "-t", "4", "-c", "copy", "-f", "flv", os.path.join(self.tmp, "play.flv")],
            env=dict(os.environ),
        )
        yield self.receiver.wait_for(lambda: self.bodies("on_play"), 60, "on_play")
        (play,) = self.bodies("on_play")
        clients = yield until(lambda: self.api("/api/v1/clients/"),
                              lambda o: [c for c in o["clients"] if c["type"] == "flv-play"], "the flv-play client")
        (client,) = [c for c in clients["clients"] if c["type"] == "flv-play"]
        self.assertEqual(client["id"], play["client_id"])
        self.assertEqual(client["stream"], stream["id"])
        self.assert_play_body(play, "on_play", "?token=x", stream["id"])
        self.assertEqual(self.bodies("on_stop"), [])
        out, err, code = yield player
        self.assertEqual(code, 0, err.decode(errors="replace"))
        yield self.receiver.wait_for(lambda: self.bodies("on_stop"), 60, "on_stop")
        (stop,) = self.bodies("on_stop")
        self.assert_play_body(stop, "on_stop", "?token=x", stream["id"])
        self.assertEqual(stop["client_id"], play["client_id"])
        for body in (play, stop):
            self.assertEqual((body["server_id"], body["service_id"]), (publish["server_id"], publish["service_id"]))
        self.assertNotEqual(play["client_id"], publish["client_id"])
        self.assertGreater(os.path.getsize(os.path.join(self.tmp, "play.flv")), 50_000)

        # ffprobe: one more on_play / on_stop pair, with its own client id and param
        out, err, code = yield ffprobe(self.flv_url + "?token=y&k=v")
        self.assertEqual(code, 0, err.decode(errors="replace"))
        h.assert_streams(json.loads(out), [("video", "h264"), ("audio", "aac")])
        yield self.receiver.wait_for(lambda: len(self.bodies("on_stop")) == 2, 60, "a second on_stop")
        second_play, second_stop = self.bodies("on_play")[1], self.bodies("on_stop")[1]
        self.assert_play_body(second_play, "on_play", "?token=y&k=v", stream["id"])
        self.assert_play_body(second_stop, "on_stop", "?token=y&k=v", stream["id"])
        self.assertEqual(second_stop["client_id"], second_play["client_id"])
        self.assertNotEqual(second_play["client_id"], play["client_id"])
        # each player's hooks in order, and only the publisher's on_publish
        actions = [(r["body"]["client_id"], r["action"]) for r in self.receiver.requests]
        for cid in (play["client_id"], second_play["client_id"]):
            self.assertEqual([a for c, a in actions if c == cid], ["on_play", "on_stop"])
        self.assertEqual(self.bodies("on_unpublish"), [])

    @defer.inlineCallbacks
    def test_refused_on_play_gets_403_and_no_media(self):
        self.receiver.replies["on_play"] = (200, b'{"code":1}')
        pub = yield self.published()

        proto = yield raw_http(self.http_port, "/live/s.flv?token=bad", max_bytes=65536, timeout=h.WAIT)
        yield proto.done
        self.assertFalse(proto.cut, "the refused response did not end")
        self.assertEqual(proto.status, 403, bytes(proto.data[:300]))
        self.assertNotIn(b"FLV", proto.body)
        self.assertLess(len(proto.body), 1000)  # an error text, no media
        self.assertNotEqual(proto.headers.get(b"content-type"), b"video/x-flv")
        (play,) = self.bodies("on_play")
        self.assertEqual(play["param"], "?token=bad")
        clients = yield self.api("/api/v1/clients/")
        self.assertEqual([c["type"] for c in clients["clients"]], ["fmle-publish"])

        # RTMP playback of the same stream is refused too while the hook says no...
        out, err, code = yield ffprobe(self.server.url("s"), rw_timeout_s=5)
        self.assertNotEqual(code, 0)
        self.assertNotIn(b"codec_type", out)
        self.assertEqual(len(self.bodies("on_play")), 2)
        # ...and works once it says yes again, over RTMP and HTTP-FLV
        del self.receiver.replies["on_play"]
        out, err, code = yield ffprobe(self.server.url("s"))
        self.assertEqual(code, 0, err.decode(errors="replace"))
        # exactly video and audio: no phantom data stream (no onStatus NetStream.Data.Start, as SRS 6.0.153+)
        self.assertEqual(sorted(st["codec_type"] for st in json.loads(out)["streams"]), ["audio", "video"])
        h.assert_streams(json.loads(out), [("video", "h264"), ("audio", "aac")])
        proto = yield raw_http(self.http_port, "/live/s.flv", max_bytes=20_000, timeout=h.WAIT)
        yield proto.done
        self.assertEqual(proto.status, 200)
        self.assertEqual(proto.headers.get(b"content-type"), b"video/x-flv")
        self.assertIn(b"FLV\x01", proto.body)
        self.assertIsNone(pub.poll(), "the publisher stopped when a player was refused")
        # on_stop for the two players that played, none for the two refused
        plays = self.bodies("on_play")
        self.assertEqual(len(plays), 4)
        yield self.receiver.wait_for(lambda: len(self.bodies("on_stop")) >= 2, 60, "two on_stop")
        self.assertEqual(sorted(b["client_id"] for b in self.bodies("on_stop")),
                         sorted(b["client_id"] for b in plays[2:]))
