"""Snapshots: JPEG splitting, when the child runs, and the HTTP resource."""

from __future__ import annotations

import signal

from twisted.trial import unittest
from twisted.web import server
from twisted.web.test.requesthelper import DummyRequest

from srs_twisted.process import snapshot as snap

from .test_workers import Base

JPEG1 = b"\xff\xd8\xff\xe0JFIF\x00\xff\x00data1\xff\xd9"
JPEG2 = b"\xff\xd8\xff\xe0JFIF\x00more\xff\xd0data2\xff\xd9"


class SplitterTests(unittest.TestCase):
    def test_whole_frames(self):
        s = snap.JpegSplitter()
        self.assertEqual(s.feed(JPEG1 + JPEG2), [JPEG1, JPEG2])
        self.assertEqual(bytes(s.buf), b"")

    def test_split_at_every_byte(self):
        s = snap.JpegSplitter()
        data = b"junk" + JPEG1 + JPEG2
        out = []
        for i in range(len(data)):
            out += s.feed(data[i : i + 1])
        self.assertEqual(out, [JPEG1, JPEG2])

    def test_garbage_is_bounded(self):
        s = snap.JpegSplitter(limit=100)
        s.feed(b"x" * 1000)
        self.assertLessEqual(len(s.buf), 1)
        s.feed(b"\xff\xd8" + b"y" * 1000)
        self.assertEqual(len(s.buf), 0)

    def test_args(self):
        self.assertEqual(
            snap.snapshot_args("ffmpeg", "rtmp://127.0.0.1:1935/live?vhost=v/s", 2.0),
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "flv", "-i", "rtmp://127.0.0.1:1935/live?vhost=v/s",
             "-an", "-sn", "-dn", "-vf", "fps=1/2", "-q:v", "5", "-f", "mjpeg", "pipe:1"],
        )


RECIPE = """
vhost __defaultVhost__ {
    transcode live {
        enabled on;
        ffmpeg ./objs/ffmpeg/bin/ffmpeg;
        engine snapshot {
            enabled on;
            iformat flv;
            vfilter { vf fps=1; }
            vcodec png;
            vparams { vframes 6; }
            acodec an;
            oformat image2;
            output ./objs/nginx/html/[app]/[stream]-%03d.png;
        }
    }
}
"""


class OnDemandTests(Base):
    def test_not_published_is_none(self):
        self.assertIsNone(self.successResultOf(self.workers.snapshot.request("__defaultVhost__", "live", "s")))
        self.assertEqual(self.spawner.processes, [])

    def test_first_request_starts_the_child_and_gets_the_first_frame(self):
        self.publish()
        d = self.workers.snapshot.request("__defaultVhost__", "live", "livestream")
        self.assertNoResult(d)
        self.assertEqual(
            self.spawner.last.args[:8],
            ["/usr/bin/ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "flv", "-i",
             "rtmp://127.0.0.1:19350/live?vhost=__defaultVhost__/livestream"],
        )
        self.spawner.last.out(JPEG1[:5])
        self.assertNoResult(d)
        self.spawner.last.out(JPEG1[5:])
        self.assertEqual(self.successResultOf(d), JPEG1)
        self.spawner.last.out(JPEG2)
        self.assertEqual(self.successResultOf(self.workers.snapshot.request("__defaultVhost__", "live", "livestream")), JPEG2)
        self.assertEqual(len(self.spawner.processes), 1)

    def test_no_frame_in_time_is_empty(self):
        self.publish()
        d = self.workers.snapshot.request("__defaultVhost__", "live", "livestream")
        self.clock.advance(snap.WAIT_FIRST)
        self.assertEqual(self.successResultOf(d), b"")

    def test_idle_child_stops_a_minute_after_the_last_request(self):
        self.publish()
        self.workers.snapshot.request("__defaultVhost__", "live", "livestream")
        self.clock.pump([5] * 11)
        self.workers.snapshot.request("__defaultVhost__", "live", "livestream")  # at 55 s
        self.clock.pump([5] * 11)
        self.assertEqual(self.spawner.last.signals, [])  # 110 s
        self.clock.pump([5])
        self.assertEqual(self.spawner.last.signals, [signal.SIGTERM])  # 115 s
        self.spawner.last.exit(signal=signal.SIGTERM)
        self.assertEqual(self.workers.snapshot.shots, {})

    def test_unpublish_stops_and_answers_waiters(self):
        source = self.publish()
        d = self.workers.snapshot.request("__defaultVhost__", "live", "livestream")
        self.unpublish(source)
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(self.spawner.last.signals, [signal.SIGTERM])

    def test_children_are_capped(self):
        self.workers.snapshot.max_children = 2
        for name in ("a", "b", "c"):
            self.publish(stream=name)
        for name in ("a", "b"):
            self.workers.snapshot.request("__defaultVhost__", "live", name)
        self.assertEqual(self.successResultOf(self.workers.snapshot.request("__defaultVhost__", "live", "c")), b"")
        self.assertEqual(len(self.spawner.processes), 2)


class RecipeTests(Base):
    conf = RECIPE

    def test_recipe_runs_srs_png_engine_and_a_jpeg_child_at_publish(self):
        source = self.publish()
        args = self.spawner.argvs()
        self.assertEqual(len(args), 2)
        self.assertIn("png", args[0])
        self.assertEqual(args[0][-1], "./objs/nginx/html/live/livestream-%03d.png")
        self.assertEqual(args[1][-1], "pipe:1")
        self.clock.pump([5] * 30)  # never requested: still running
        self.assertEqual(self.spawner.processes[1].signals, [])
        self.unpublish(source)
        self.assertEqual([p.signals for p in self.spawner.processes], [[signal.SIGTERM]] * 2)

    def test_recipe_covers(self):
        conf = self.ctx.vhost("__defaultVhost__")
        self.assertTrue(snap.recipe_covers(conf, "live", "x"))
        self.assertFalse(snap.recipe_covers(conf, "other", "x"))
        self.assertFalse(snap.recipe_covers(None, "live", "x"))

    def test_reload_without_recipe_lets_it_idle(self):
        self.publish()
        self.reload("vhost __defaultVhost__ {}")
        self.reap_all()
        self.clock.pump([5] * 11)
        self.assertEqual(self.spawner.processes[1].signals, [])
        self.clock.pump([5])
        self.assertEqual(self.spawner.processes[1].signals, [signal.SIGTERM])


class ResourceTests(Base):
    def get(self, path, host=b"localhost:8080", args=None):
        req = DummyRequest(path.split(b"/"))
        req.requestHeaders.setRawHeaders(b"host", [host])
        req.args = args or {}
        res = snap.snapshot_resource(self.ctx)
        result = res.render(req)
        return req, result

    def body(self, req):
        return b"".join(req.written)

    def test_serves_the_newest_jpeg(self):
        self.publish()
        req, result = self.get(b"live/livestream.jpg")
        self.assertEqual(result, server.NOT_DONE_YET)
        self.assertEqual(req.finished, 0)
        self.spawner.last.out(JPEG1)
        self.assertEqual(req.finished, 1)
        self.assertEqual(req.responseCode or 200, 200)
        self.assertEqual(req.responseHeaders.getRawHeaders(b"content-type"), [b"image/jpeg"])
        self.assertEqual(self.body(req), JPEG1)

    def test_unknown_stream_is_404(self):
        req, result = self.get(b"live/nothing.jpg")
        self.assertEqual(req.responseCode, 404)

    def test_bad_paths_are_404(self):
        for path in (b"live/livestream.png", b"livestream.jpg", b"live/../x.jpg", b"live/a b.jpg"):
            req, result = self.get(path)
            self.assertEqual(req.responseCode, 404, path)
            self.assertEqual(self.spawner.processes, [])

    def test_no_frame_in_time_is_503(self):
        self.publish()
        req, _ = self.get(b"live/livestream.jpg")
        self.clock.advance(snap.WAIT_FIRST)
        self.assertEqual(req.responseCode, 503)
        self.assertEqual(req.responseHeaders.getRawHeaders(b"retry-after"), [b"2"])

    def test_vhost_query(self):
        self.reload("vhost __defaultVhost__ {} vhost v.com {}")
        self.publish(vhost="v.com")
        req, _ = self.get(b"live/livestream.jpg", args={b"vhost": [b"v.com"]})
        self.spawner.last.out(JPEG2)
        self.assertEqual(self.body(req), JPEG2)
        req, _ = self.get(b"live/livestream.jpg", host=b"v.com:8080")
        self.assertEqual(self.body(req), JPEG2)
        req, _ = self.get(b"live/livestream.jpg")
        self.assertEqual(req.responseCode, 404)

    def test_client_gone_before_the_frame(self):
        self.publish()
        req, _ = self.get(b"live/livestream.jpg")
        req.processingFailed(Exception("gone"))
        self.spawner.last.out(JPEG1)
        self.assertEqual(self.body(req), b"")

    def test_without_observer_is_503(self):
        self.ctx.registry.observers.clear()
        req, _ = self.get(b"live/livestream.jpg")
        self.assertEqual(req.responseCode, 503)
