"""The vhost `security` rules end to end: the real server on loopback, an
FFmpeg publisher, ffprobe playing over RTMP and HTTP-FLV, a raw socket for
the refused HTTP-FLV reply, the API to see what was published."""

from __future__ import annotations

import json

from twisted.internet import defer
from twisted.trial import unittest

from . import harness as h
from .receiver import api_request, ffprobe, http_live_server, raw_http, until, wait_exit


class SecurityLiveTestCase(unittest.TestCase):
    timeout = 300
    rules = ""

    def setUp(self):
        h.ffmpeg(), h.ffprobe()
        self.server = http_live_server(self, vhost=f"security {{ enabled on; {self.rules} }}")
        self.http_port, self.api_port = self.server.http_port, self.server.api_port
        self.flv_url = f"http://127.0.0.1:{self.http_port}/live/s.flv"

    def publisher(self):
        proc = h.publish(self.server.url("s"), h.clip(), loop=True)
        self.addCleanup(h.stop_process, proc)
        return proc

    @defer.inlineCallbacks
    def streams(self):
        r, body, obj = yield api_request(f"http://127.0.0.1:{self.api_port}/api/v1/streams/")
        self.assertEqual(r.code, 200, body)
        return obj["streams"]

    @defer.inlineCallbacks
    def published(self):
        """Publishes live/s and waits until the API shows it with its codecs."""
        pub = self.publisher()
        streams = yield until(self.streams, lambda s: s and s[0]["publish"]["active"] and s[0]["video"],
                              "the stream to be published")
        self.assertEqual(streams[0]["name"], "s")
        return pub

    @defer.inlineCallbacks
    def assert_plays(self, url):
        out, err, code = yield ffprobe(url)
        self.assertEqual(code, 0, err.decode(errors="replace"))
        h.assert_streams(json.loads(out), [("video", "h264"), ("audio", "aac")])

    @defer.inlineCallbacks
    def assert_rtmp_play_refused(self):
        out, err, code = yield ffprobe(self.server.url("s"), rw_timeout_s=5)
        self.assertNotEqual(code, 0, "RTMP play was allowed")
        self.assertNotIn(b"codec_type", out)

    @defer.inlineCallbacks
    def assert_flv_play_refused(self):
        proto = yield raw_http(self.http_port, "/live/s.flv", max_bytes=65536, timeout=h.WAIT)
        yield proto.done
        self.assertFalse(proto.cut, "the refused response did not end")
        self.assertEqual(proto.status, 403, bytes(proto.data[:300]))
        self.assertNotIn(b"FLV", proto.body)
        self.assertLess(len(proto.body), 1000)


class DenyPlayTests(SecurityLiveTestCase):
    rules = "deny play 127.0.0.1; allow publish all; allow play all;"

    @defer.inlineCallbacks
    def test_play_refused_over_rtmp_and_http_publish_works(self):
        pub = yield self.published()
        yield self.assert_rtmp_play_refused()
        yield self.assert_flv_play_refused()
        self.assertIsNone(pub.poll(), "the publisher stopped")
        (s,) = yield self.streams()
        self.assertIs(s["publish"]["active"], True)
        self.assertEqual(s["clients"], 1)  # no player got in
        self.assertIn("denied", self.server.log())


class AllowLoopbackTests(SecurityLiveTestCase):
    rules = "allow play 127.0.0.0/8; allow publish 127.0.0.1;"

    @defer.inlineCallbacks
    def test_publish_and_play_over_rtmp_and_http(self):
        pub = yield self.published()
        yield self.assert_plays(self.server.url("s"))
        yield self.assert_plays(self.flv_url)
        self.assertIsNone(pub.poll())


class DenyPublishTests(SecurityLiveTestCase):
    rules = "deny publish 127.0.0.0/8;"

    @defer.inlineCallbacks
    def test_publish_refused(self):
        pub = self.publisher()
        code = yield wait_exit(pub)
        self.assertNotEqual(code, 0)
        streams = yield self.streams()
        self.assertEqual([s for s in streams if s["publish"]["active"]], [])
        proto = yield raw_http(self.http_port, "/live/s.flv", max_bytes=65536, timeout=h.WAIT)
        yield proto.done
        self.assertEqual(proto.status, 404)  # nothing was published
        self.assertIn("publish denied", self.server.log())
