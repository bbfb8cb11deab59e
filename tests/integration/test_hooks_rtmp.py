"""HTTP hooks end to end: the real server, FFmpeg publishing and ffprobe
playing over RTMP, and a hook receiver in this test process (twisted.web on
a free loopback port, served by the trial reactor — so every external
process here is waited for without blocking the reactor)."""

from __future__ import annotations

import json

from twisted.internet import defer
from twisted.trial import unittest

from . import harness as h
from .receiver import HOOK_KEYS as KEYS
from .receiver import ffprobe, start_receiver, wait_exit



class HooksRtmpTests(unittest.TestCase):
    timeout = 300

    def setUp(self):
        h.ffmpeg(), h.ffprobe()
        self.receiver, base = start_receiver(self)
        url = base + "/api/v1/hooks"
        actions = "".join(f"{a} {url}/{a}; " for a in KEYS)
        self.server = h.Server(
            "vhost __defaultVhost__ { play { mw_latency 100; } "
            f"http_hooks {{ enabled on; {actions}}} }}"
        )
        self.addCleanup(self.server.stop)
        self.tc_url = f"rtmp://127.0.0.1:{self.server.port}/live"

    def publisher(self, loop=True, stream="s?token=abc"):
        proc = h.publish(f"{self.tc_url}/{stream}", h.clip(), loop=loop)
        self.addCleanup(h.stop_process, proc)
        return proc

    def probe(self, stream="s", rw_timeout_s=30):
        return ffprobe(f"{self.tc_url}/{stream}", rw_timeout_s)

    def bodies(self, action):
        return self.receiver.bodies(action)

    def until(self, predicate, what, timeout=60.0):
        return self.receiver.wait_for(predicate, timeout, what)

    def assert_common(self, body, action):
        self.assertEqual(list(body), KEYS[action], action)
        self.assertEqual(body["action"], action)
        self.assertTrue(body["server_id"] and body["service_id"] and body["client_id"], body)
        self.assertEqual((body["ip"], body["vhost"], body["app"]), ("127.0.0.1", "__defaultVhost__", "live"))

    def assert_stream(self, body, action, param):
        self.assert_common(body, action)
        self.assertEqual(body["tcUrl"], self.tc_url)
        self.assertEqual(body["stream"], "s")
        self.assertEqual(body["param"], param)
        self.assertEqual(body["stream_url"], "/live/s")
        self.assertTrue(body["stream_id"])

    @defer.inlineCallbacks
    def test_every_action_with_srs_bodies(self):
        pub = self.publisher()
        yield self.until(lambda: self.bodies("on_publish"), "on_publish")
        out, err, code = yield self.probe()  # plays as soon as the publisher is accepted
        self.assertEqual(code, 0, err.decode(errors="replace"))
        h.assert_streams(json.loads(out), [("video", "h264"), ("audio", "aac")])
        pub.terminate()
        yield wait_exit(pub)
        yield self.until(
            lambda: self.bodies("on_unpublish") and self.bodies("on_stop") and len(self.bodies("on_close")) >= 2,
            "on_unpublish, on_stop and two on_close",
        )

        (publish,) = self.bodies("on_publish")
        (unpublish,) = self.bodies("on_unpublish")
        (play,) = self.bodies("on_play")
        (stop,) = self.bodies("on_stop")
        connects = self.bodies("on_connect")
        closes = self.bodies("on_close")
        self.assertEqual(len(connects), 2)

        self.assert_stream(publish, "on_publish", "?token=abc")
        self.assert_stream(unpublish, "on_unpublish", "?token=abc")
        self.assert_stream(play, "on_play", "")
        self.assert_stream(stop, "on_stop", "")
        pub_id, play_id = publish["client_id"], play["client_id"]
        self.assertNotEqual(pub_id, play_id)
        self.assertEqual(unpublish["client_id"], pub_id)
        self.assertEqual(stop["client_id"], play_id)
        self.assertEqual(play["stream_id"], publish["stream_id"])
        self.assertEqual(unpublish["stream_id"], publish["stream_id"])
        self.assertIsInstance(play["pageUrl"], str)
        for body in (publish, unpublish, play, stop):
            self.assertEqual(body["server_id"], publish["server_id"])
            self.assertEqual(body["service_id"], publish["service_id"])

        for body in connects:
            self.assert_common(body, "on_connect")
            self.assertEqual(body["tcUrl"], self.tc_url)
            self.assertEqual(body["stream"], "s")  # sent once publish/play names it, as SRS
            self.assertIsInstance(body["pageUrl"], str)
        self.assertEqual(sorted(b["client_id"] for b in connects), sorted([pub_id, play_id]))

        by_id = {b["client_id"]: b for b in closes}
        self.assertEqual(sorted(by_id), sorted([pub_id, play_id]))
        for body in closes:
            self.assert_common(body, "on_close")
            self.assertIsInstance(body["send_bytes"], int)
            self.assertIsInstance(body["recv_bytes"], int)
        self.assertGreater(by_id[pub_id]["recv_bytes"], 50_000)  # the publisher sent media
        self.assertGreater(by_id[play_id]["send_bytes"], 10_000)  # the player was sent media

        # Each client's hooks in order.
        actions = [(r["body"]["client_id"], r["action"]) for r in self.receiver.requests]
        self.assertEqual([a for c, a in actions if c == pub_id], ["on_connect", "on_publish", "on_unpublish", "on_close"])
        self.assertEqual([a for c, a in actions if c == play_id], ["on_connect", "on_play", "on_stop", "on_close"])
        self.assertEqual({r["path"] for r in self.receiver.requests},
                         {f"/api/v1/hooks/{a}".encode() for a in KEYS})

    @defer.inlineCallbacks
    def test_on_publish_code_1_refuses_the_publisher(self):
        self.receiver.replies["on_publish"] = (200, b'{"code":1}')
        pub = self.publisher(loop=False)
        code = yield wait_exit(pub)
        self.assertNotEqual(code, 0)
        self.assertEqual(len(self.bodies("on_publish")), 1)
        # nobody publishes now: a player gets no data (3 s are enough to see none)
        out, err, code = yield self.probe(rw_timeout_s=3)
        self.assertNotEqual(code, 0, "a player got a stream nobody was allowed to publish")
        self.assertNotIn(b"codec_type", out)
        yield self.until(lambda: len(self.bodies("on_close")) >= 2, "two on_close")
        self.assertEqual(self.bodies("on_unpublish"), [])

    @defer.inlineCallbacks
    def test_on_play_code_1_refuses_the_player_not_the_publisher(self):
        self.receiver.replies["on_play"] = (200, b'{"code":1}')
        pub = self.publisher()
        yield self.until(lambda: self.bodies("on_publish"), "on_publish")
        out, err, code = yield self.probe()
        self.assertNotEqual(code, 0)
        self.assertNotIn(b"codec_type", out)
        (refused,) = self.bodies("on_play")
        yield self.until(lambda: [b for b in self.bodies("on_close") if b["client_id"] == refused["client_id"]],
                         "the refused player's on_close")
        self.assertIsNone(pub.poll(), "the publisher stopped when a player was refused")
        # The publisher goes on: the next player, allowed, gets its stream.
        self.receiver.replies["on_play"] = (200, b'{"code":0}')
        out, err, code = yield self.probe()
        self.assertEqual(code, 0, err.decode(errors="replace"))
        h.assert_streams(json.loads(out), [("video", "h264"), ("audio", "aac")])
        allowed = self.bodies("on_play")[1]
        yield self.until(lambda: self.bodies("on_stop"), "the allowed player's on_stop")
        # on_stop only for the player that played (the refused one's came
        # before its on_close, which came first)
        self.assertEqual([b["client_id"] for b in self.bodies("on_stop")], [allowed["client_id"]])
        self.assertIsNone(pub.poll())
        self.assertEqual(self.bodies("on_unpublish"), [])
