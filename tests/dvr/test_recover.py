"""Issue 9 item 20: at start, the DVR finishes the ``.tmp`` files a killed
server left (cut back to whole tags / fragments, renamed, on_dvr sent), and
leaves alone a file a live recorder holds."""

from __future__ import annotations

import json
import os
import subprocess

from twisted.internet.task import Clock

from srs_twisted.codec import flv
from srs_twisted.config import load_string
from srs_twisted.context import ServerContext
from srs_twisted.dvr.recover import recover_leftovers, template_regex, template_root
from srs_twisted.dvr.service import DvrObserver

from . import packets as P
from .test_recorder import NOW, FakeHooks, RecorderCase, read_flv, top_boxes


class Killed(RecorderCase):
    """A recording in progress, then the server dies: its file descriptor
    (and lock) go away with it, the last write may be cut short."""

    def record(self, path, seconds=3.0, tail=b""):
        rec = self.recorder(path=path)
        self.feed(P.stream(seconds))
        self.clock.advance(2)  # the timed flush: what a kill leaves on disk
        tmp = rec._out.path
        os.close(rec._out.fd)  # the process is gone: no close, no rename, no lock
        rec._out = rec._writer = None
        rec._cancel_flush()
        if tail:
            with open(tmp, "ab") as f:
                f.write(tail)
        return tmp

    def context(self, path):
        conf = load_string(f"vhost __defaultVhost__ {{ dvr {{ enabled on; dvr_path {os.path.join(self.dir, path)}; }} }}")
        return ServerContext(conf, Clock())

    def recover(self, path):
        hooks = FakeHooks()
        return recover_leftovers(self.context(path), hooks), hooks

    def probe(self, path):
        from tests.integration import harness as h

        out = subprocess.run([h.ffprobe(), "-v", "error", "-show_streams", "-show_format", "-of", "json", path],
                             capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)


class FlvTests(Killed):
    path = "[app]/[stream].[timestamp].flv"

    def test_finished_renamed_and_announced(self):
        tmp = self.record(self.path, tail=b"\x09\x00\x10\x00")  # half a tag header
        done, hooks = self.recover(self.path)
        final = os.path.join(self.dir, "live/s.1420254068776.flv")
        self.assertEqual(done, [final])
        self.assertFalse(os.path.exists(tmp))
        (client, file), = hooks.calls
        self.assertEqual(file, final)
        self.assertEqual((client.request.vhost, client.request.app, client.request.stream),
                         ("__defaultVhost__", "live", "s"))
        reader, tags = read_flv(final)
        with open(final, "rb") as f:
            data = f.read()
        self.assertEqual(len(data), 13 + sum(11 + len(t.payload) + 4 for t in tags))  # whole tags only
        meta = flv.parse_script(tags[0].payload)[1]
        self.assertEqual(meta["filesize"], len(data))
        self.assertEqual(meta["duration"], max(t.timestamp for t in tags) / 1000.0)
        info = self.probe(final)
        self.assertEqual(sorted(s["codec_type"] for s in info["streams"]), ["audio", "video"])
        self.assertGreater(float(info["format"]["duration"]), 2.5)

    def test_duration_in_the_name(self):
        path = "[stream]_[duration].flv"
        self.record(path)
        done, hooks = self.recover(path)
        (final,) = done
        _, tags = read_flv(final)
        self.assertEqual(os.path.basename(final), f"s_{max(t.timestamp for t in tags)}.flv")
        # The path has no [app]: the file's label names the stream and its publisher.
        (client, _), = hooks.calls
        req = client.request
        self.assertEqual((req.vhost, req.app, req.stream, req.tc_url, client.ip, client.id),
                         ("__defaultVhost__", "live", "s", "rtmp://h/live", "127.0.0.1", self.client.id))

    def test_a_file_a_live_recorder_holds_is_left_alone(self):
        rec = self.recorder(path=self.path)
        self.feed(P.stream(2))
        self.clock.advance(2)
        done, hooks = self.recover(self.path)
        self.assertEqual((done, hooks.calls), ([], []))
        self.assertTrue(os.path.exists(rec._out.path))
        rec.stop()
        self.assertEqual(len(rec.reaped), 1)

    def test_no_media_no_file(self):
        os.makedirs(os.path.join(self.dir, "live"))
        tmp = os.path.join(self.dir, "live/s.1420254068776.flv.tmp")
        with open(tmp, "wb") as f:
            f.write(flv.file_header(True, True) + b"\x12\x00")
        done, hooks = self.recover(self.path)
        self.assertEqual((done, hooks.calls), ([], []))
        self.assertFalse(os.path.exists(tmp))

    def test_other_files_are_not_touched(self):
        os.makedirs(os.path.join(self.dir, "live"))
        others = ["live/s.flv.tmp", "live/s.1420254068776.mp4.tmp", "live/notes.tmp"]
        for name in others:
            with open(os.path.join(self.dir, name), "wb") as f:
                f.write(b"x")
        done, _ = self.recover(self.path)
        self.assertEqual(done, [])
        for name in others:
            self.assertTrue(os.path.exists(os.path.join(self.dir, name)))


class Mp4Tests(Killed):
    path = "[app]/[stream].[timestamp].mp4"

    def test_cut_to_whole_fragments_and_playable(self):
        tmp = self.record(self.path, seconds=3.5, tail=b"\x00\x00\x10\x00moof\x00\x00")
        with open(tmp, "rb") as f:
            self.assertNotEqual(top_boxes(f.read())[-1][0], b"mdat")
        done, hooks = self.recover(self.path)
        final = os.path.join(self.dir, "live/s.1420254068776.mp4")
        self.assertEqual(done, [final])
        self.assertEqual([f for _, f in hooks.calls], [final])
        with open(final, "rb") as f:
            data = f.read()
        boxes = top_boxes(data)
        self.assertEqual([k for k, _ in boxes[:2]], [b"ftyp", b"moov"])
        self.assertEqual(boxes[-1][0], b"mdat")
        self.assertEqual(sum(size for _, size in boxes), len(data))
        info = self.probe(final)
        self.assertEqual(sorted(s["codec_type"] for s in info["streams"]), ["audio", "video"])
        self.assertGreater(float(info["format"]["duration"]), 2.5)

    def test_duration_in_the_name(self):
        path = "[stream]_[duration].mp4"
        self.record(path, seconds=3.5)
        (final,), _ = self.recover(path)
        duration = int(os.path.basename(final)[2:-4])
        self.assertTrue(2900 <= duration <= 3600, final)


class TemplateTests(RecorderCase):
    def test_regex(self):
        regex = template_regex("./objs/nginx/html/[app]/[stream].[timestamp].flv")
        m = regex.match("./objs/nginx/html/live/s.1420254068776.flv.tmp")
        self.assertEqual((m.group("app"), m.group("stream")), ("live", "s"))
        self.assertIsNone(regex.match("./objs/nginx/html/live/s.1420254068776.flv"))
        regex = template_regex("/rec/[vhost]/[2006][01][02]/[stream]_[duration].mp4")
        m = regex.match("/rec/v.example/20150103/cam_[duration].mp4.tmp")
        self.assertEqual((m.group("vhost"), m.group("stream")), ("v.example", "cam"))

    def test_root(self):
        self.assertEqual(template_root("./objs/nginx/html/[app]/[stream].flv"), "./objs/nginx/html")
        self.assertEqual(template_root("[stream].flv"), ".")
        self.assertEqual(template_root("/rec/[stream].flv"), "/rec")
        self.assertEqual(template_root("/[stream].flv"), "/")


class ObserverTests(Killed):
    def test_the_observer_finishes_leftovers_once_the_server_runs(self):
        path = "[app]/[stream].[timestamp].flv"
        tmp = self.record(path)
        ctx = self.context(path)
        ctx.hooks = FakeHooks()
        DvrObserver(ctx, wallclock=lambda: NOW)
        self.assertTrue(os.path.exists(tmp))
        ctx.clock.advance(0)
        self.assertFalse(os.path.exists(tmp))
        self.assertEqual([f for _, f in ctx.hooks.calls], [tmp[: -len(".tmp")]])
