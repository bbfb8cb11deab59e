"""DVR recorders on a real LiveSource with task.Clock, in a temp dir: file
names, FLV and MP4 structure, flushing, reaping, on_dvr, errors; and the
observer that starts and stops them."""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import subprocess
import tempfile

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest

from srs_twisted.codec import flv
from srs_twisted.config import load_string
from srs_twisted.context import ClientInfo, ServerContext
from srs_twisted.dvr import recorder as recorder_module
from srs_twisted.dvr.plan import DvrSettings
from srs_twisted.dvr.recorder import FLUSH_INTERVAL, DvrRecorder
from srs_twisted.dvr.service import DvrObserver
from srs_twisted.live.source import LiveSource
from srs_twisted.policy.hooks import HooksPolicy
from srs_twisted.url import StreamRequest

from . import packets as P

NOW = 1420254068.776  # the [timestamp] of SRS's on_dvr example


class Publisher:
    def stopProducing(self):
        pass


class FakeHooks:
    def __init__(self):
        self.calls = []

    def on_dvr(self, client, file):
        self.calls.append((client, file))
        return defer.succeed(True)


def top_boxes(data: bytes) -> list[tuple[bytes, int]]:
    """(type, size) of each top-level ISO BMFF box."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size < 8:
            break
        out.append((kind, size))
        pos += size
    return out


def read_flv(path: str):
    reader = flv.FlvReader()
    with open(path, "rb") as f:
        tags = reader.feed(f.read())
    return reader, tags


class RecorderCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="srs-dvr-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.clock = Clock()
        self.clock.advance(NOW)
        self.hooks = FakeHooks()
        self.source = LiveSource("__defaultVhost__", "live", "s", self.clock, source_id="vid-test")
        self.source.registerProducer(Publisher())
        self.client = ClientInfo("127.0.0.1", request=StreamRequest(vhost="__defaultVhost__", app="live",
                                                                    stream="s", tc_url="rtmp://h/live"))
        self.source.publisher_info = self.client

    def recorder(self, path="[app]/[stream].[timestamp].flv", wallclock=None, **kw):
        settings = DvrSettings(path=os.path.join(self.dir, path), **kw)
        rec = DvrRecorder(self.source, settings, self.clock, hooks=self.hooks,
                          wallclock=wallclock or self.clock.seconds, utc=True)
        rec.start()
        return rec

    def feed(self, pkts, step_per_ms: bool = True):
        """Write packets to the source, moving the clock with their time."""
        last = None
        for p in pkts:
            if last is not None and p.dts > last and step_per_ms:
                self.clock.advance((p.dts - last) / 1000.0)
            last = p.dts if last is None else max(last, p.dts)
            self.source.write(p)


class FlvRecorderTests(RecorderCase):
    def test_session_file_named_and_structured(self):
        rec = self.recorder()
        self.feed(P.stream(5))
        rec.stop()
        expected = os.path.join(self.dir, "live/s.1420254068776.flv")
        self.assertEqual(rec.reaped, [expected])
        self.assertEqual(self.hooks.calls, [(self.client, expected)])
        self.assertFalse(os.path.exists(expected + ".tmp"))
        reader, tags = read_flv(expected)
        self.assertTrue(reader.has_audio and reader.has_video)
        self.assertEqual([t.tag_type for t in tags[:4]], [18, 9, 8, 9])
        name, meta = flv.parse_script(tags[0].payload)
        self.assertEqual(name, "onMetaData")
        self.assertEqual(tags[0].timestamp, 0)
        self.assertEqual(meta["filesize"], os.path.getsize(expected))
        self.assertTrue(4.95 <= meta["duration"] <= 5.0, meta["duration"])
        self.assertEqual(meta["service"], "srs-twisted")
        self.assertEqual(meta["width"], 320.0)
        self.assertTrue(flv.parse_video(tags[1].payload).sequence_header)
        self.assertTrue(flv.parse_audio(tags[2].payload).sequence_header)
        first = flv.parse_video(tags[3].payload)
        self.assertTrue(first.keyframe and not first.sequence_header)
        media = [t for t in tags if t.tag_type != 18]
        self.assertEqual(len(media), len([p for p in P.stream(5) if not p.is_data]))
        stamps = [t.timestamp for t in media]
        self.assertEqual(stamps, sorted(stamps))

    def test_segments_each_play_alone(self):
        rec = self.recorder(plan="segment", duration=3)
        self.feed(P.stream(10.5))
        rec.stop()
        self.assertEqual(len(rec.reaped), 4)
        self.assertEqual(len(set(rec.reaped)), 4)
        self.assertEqual([f for _, f in self.hooks.calls], rec.reaped)
        for path in rec.reaped:
            _, tags = read_flv(path)
            self.assertEqual([t.tag_type for t in tags[:4]], [18, 9, 8, 9])
            self.assertTrue(flv.parse_video(tags[1].payload).sequence_header)
            self.assertTrue(flv.parse_audio(tags[2].payload).sequence_header)
            self.assertTrue(flv.parse_video(tags[3].payload).keyframe)
            self.assertLessEqual(tags[3].timestamp, 10)
            dur = flv.parse_script(tags[0].payload)[1]["duration"]
            self.assertTrue(path == rec.reaped[-1] or 2.9 < dur < 3.05, (path, dur))

    def test_names_follow_the_clock_and_duration(self):
        # (rounded: the test clock adds up 40 ms steps in floating point)
        rec = self.recorder(path="[2006]-[01]-[02]/[15][04][05].[999]_[duration].flv", plan="segment", duration=3,
                            wallclock=lambda: round(self.clock.seconds(), 3))
        self.feed(P.stream(7))
        rec.stop()
        names = [os.path.relpath(p, self.dir) for p in rec.reaped]
        # 2015-01-03 03:01:08.776 UTC, then the clock moved 3 s per segment.
        self.assertEqual(names, ["2015-01-03/030108.776_2995.flv", "2015-01-03/030111.776_2990.flv",
                                 "2015-01-03/030114.776_989.flv"])

    def test_flushed_to_the_os_within_a_second(self):
        rec = self.recorder()
        tmp = os.path.join(self.dir, "live/s.1420254068776.flv.tmp")
        pkts = P.stream(3)
        for p in pkts[:10]:
            self.source.write(p)
        self.assertEqual(os.path.getsize(tmp), 0)  # buffered, not yet written
        self.clock.advance(FLUSH_INTERVAL)
        _, tags = read_flv(tmp)
        self.assertEqual(len(tags), 10)
        # What a crash would leave: everything but the last second, with
        # the metadata telling its length.
        self.feed(pkts[10:])
        _, tags = read_flv(tmp)
        meta = flv.parse_script(tags[0].payload)[1]
        self.assertGreater(max(t.timestamp for t in tags), 1900)
        self.assertEqual(meta["filesize"], os.path.getsize(tmp))
        self.assertGreater(meta["duration"], 1.9)
        rec.stop()

    def test_large_bursts_flush_early(self):
        rec = self.recorder()
        tmp = os.path.join(self.dir, "live/s.1420254068776.flv.tmp")
        pkts = P.stream(1)
        big = P.video(2000, True)
        big.payload = big.payload + b"\x00" * recorder_module.FLUSH_BYTES
        for p in pkts + [big]:
            self.source.write(p)
        self.assertGreater(os.path.getsize(tmp), recorder_module.FLUSH_BYTES)
        rec.stop()

    def test_an_existing_file_is_never_overwritten(self):
        path = os.path.join(self.dir, "live/s.flv")
        os.makedirs(os.path.dirname(path))
        with open(path, "wb") as f:
            f.write(b"keep")
        rec = self.recorder(path="[app]/[stream].flv")
        self.feed(P.stream(2))
        rec.stop()
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"keep")
        self.assertEqual(rec.reaped, [])
        self.assertEqual(self.hooks.calls, [])
        self.flushLoggedErrors()

    def test_a_write_error_ends_the_recording_and_the_stream_goes_on(self):
        rec = self.recorder(plan="segment", duration=3)
        self.feed(P.stream(2))  # flushed once: a good prefix on disk
        real_write = os.write

        def full(fd, data):
            real_write(fd, bytes(data[: len(data) // 2]))  # a partial write, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")

        self.patch(recorder_module.os, "write", full)
        from srs_twisted import log

        events = []
        self.addCleanup(log.capture(events))
        self.feed(P.stream(3, start=2000, headers=False))
        self.assertTrue(rec.failed)
        # A full disk is no bug: one error line, no unexpected-error report.
        msgs = [msg for _, _, msg in events]
        self.assertEqual(len([m for m in msgs if "recording of" in m]), 1, msgs)
        self.assertFalse([m for m in msgs if log.UNEXPECTED_MARKER in m], msgs)
        self.assertNotIn(rec._on_packet, self.source._taps)
        (path,) = rec.reaped
        reader, tags = read_flv(path)  # cut back to whole tags: reads to the end
        self.assertGreater(len(tags), 40)
        with open(path, "rb") as f:
            data = f.read()
        self.assertEqual(len(data), 13 + sum(11 + len(t.payload) + 4 for t in tags))
        self.assertEqual([f for _, f in self.hooks.calls], [path])
        # The stream still works: a player would still be fed.
        self.source.write(P.video(6000, True))
        rec.stop()
        self.assertEqual(rec.reaped, [path])

    def test_a_bug_in_the_writer_is_reported_with_its_traceback(self):
        from srs_twisted import log

        rec = self.recorder(plan="session")
        self.feed(P.stream(1))

        def buggy(*args):
            raise TypeError("a bug")

        self.patch(rec._writer, "write", buggy)
        events = []
        self.addCleanup(log.capture(events))
        before = log.unexpected_errors()
        self.feed(P.stream(1, start=1000, headers=False))
        self.assertTrue(rec.failed)
        msgs = [msg for _, _, msg in events]
        self.assertTrue(msgs[0].startswith("[unexpected-error] dvr: recording of "), msgs)
        self.assertTrue(msgs[0].endswith(": TypeError: a bug"), msgs)
        self.assertIn("[unexpected-error] Traceback (most recent call last):", msgs)
        self.assertEqual(log.unexpected_errors(), before + 1)

    def test_hooks_none_and_no_publisher_info(self):
        self.source.publisher_info = None
        settings = DvrSettings(path=os.path.join(self.dir, "[stream].flv"))
        rec = DvrRecorder(self.source, settings, self.clock, wallclock=self.clock.seconds)
        rec.start()
        self.feed(P.stream(1))
        rec.stop()
        self.assertEqual(rec.reaped, [os.path.join(self.dir, "s.flv")])

    def test_unpublish_before_media_leaves_no_file(self):
        rec = self.recorder()
        self.source.write(P.metadata())
        rec.stop()
        self.assertEqual(rec.reaped, [])
        self.assertFalse(os.path.exists(os.path.join(self.dir, "live")))

    def test_starting_mid_stream_replays_the_headers(self):
        self.feed(P.stream(1.5))
        rec = self.recorder()
        self.feed(P.stream(2.5, start=1500, headers=False))
        rec.stop()
        _, tags = read_flv(rec.reaped[0])
        self.assertEqual([t.tag_type for t in tags[:4]], [18, 9, 8, 9])
        self.assertTrue(flv.parse_video(tags[3].payload).keyframe)


class OnDvrBodyTests(RecorderCase):
    def test_the_body_srs_sends(self):
        conf = load_string(
            "vhost __defaultVhost__ { http_hooks { enabled on; on_dvr http://127.0.0.1:1/dvr; } }")
        ctx = ServerContext(conf, self.clock)

        class Http:
            posts = []

            def call_logged(self, urls, body, log=None):
                self.posts.append((urls, body))
                return defer.succeed(True)

        http = Http()
        self.source.id = "vid-abc"
        self.client.source = self.source
        hooks = HooksPolicy(ctx, client=http, cwd="/srv/srs")
        settings = DvrSettings(path="./objs/nginx/html/[app]/[stream].[timestamp].flv")
        cwd = os.getcwd()
        os.chdir(self.dir)
        self.addCleanup(os.chdir, cwd)
        rec = DvrRecorder(self.source, settings, self.clock, hooks=hooks, wallclock=self.clock.seconds)
        rec.start()
        self.feed(P.stream(1))
        rec.stop()
        ((urls, body),) = http.posts
        self.assertEqual(urls, ["http://127.0.0.1:1/dvr"])
        self.assertEqual(list(body), ["server_id", "service_id", "action", "client_id", "ip", "vhost", "app",
                                      "tcUrl", "stream", "param", "cwd", "file", "stream_url", "stream_id"])
        self.assertEqual(body["action"], "on_dvr")
        self.assertEqual(body["file"], "./objs/nginx/html/live/s.1420254068776.flv")
        self.assertEqual(body["cwd"], "/srv/srs")
        self.assertEqual(body["stream_id"], "vid-abc")
        self.assertTrue(os.path.exists(os.path.join(self.dir, body["file"])))


class Mp4RecorderTests(RecorderCase):
    def test_init_then_a_fragment_per_gop(self):
        rec = self.recorder(path="[stream].mp4")
        tmp = os.path.join(self.dir, "s.mp4.tmp")
        pkts = P.stream(4.2)
        self.feed(pkts[:3])
        self.assertFalse(os.path.exists(tmp))  # nothing before the first media packet
        self.feed(pkts[3:])
        with open(tmp, "rb") as f:
            kinds = [k for k, _ in top_boxes(f.read())]
        # Already on disk before the end: init + one fragment per finished GOP.
        self.assertEqual(kinds, [b"ftyp", b"moov"] + [b"moof", b"mdat"] * 4)
        rec.stop()
        with open(rec.reaped[0], "rb") as f:
            kinds = [k for k, _ in top_boxes(f.read())]
        self.assertEqual(kinds, [b"ftyp", b"moov"] + [b"moof", b"mdat"] * 5)

    def test_long_gops_still_fragment_every_second(self):
        rec = self.recorder(path="[stream].mp4")
        self.feed(P.stream(5.1, gop=250))
        tmp = os.path.join(self.dir, "s.mp4.tmp")
        with open(tmp, "rb") as f:
            kinds = [k for k, _ in top_boxes(f.read())]
        self.assertEqual(kinds.count(b"moof"), 5)
        rec.stop()

    def test_segments(self):
        rec = self.recorder(path="[stream].[timestamp].mp4", plan="segment", duration=3)
        self.feed(P.stream(10.5))
        rec.stop()
        self.assertEqual(len(rec.reaped), 4)
        self.assertEqual([f for _, f in self.hooks.calls], rec.reaped)
        for path in rec.reaped:
            with open(path, "rb") as f:
                kinds = [k for k, _ in top_boxes(f.read())]
            self.assertEqual(kinds[:3], [b"ftyp", b"moov", b"moof"])

    def test_codec_change_starts_a_new_file(self):
        rec = self.recorder(path="[stream].[timestamp].mp4")
        pkts = P.stream(2)
        self.feed(pkts)
        self.feed([P.video_sh(2000, P.AVC_CONFIG[:-1] + b"\xc9")] + P.stream(2, start=2000, headers=False))
        rec.stop()
        self.assertEqual(len(rec.reaped), 2)

    def test_audio_only_mp3(self):
        # MP3 has no sequence header: the track comes from its first frame.
        frame = bytes.fromhex("fffb9064") + b"\x00" * 413  # MPEG-1 layer 3, 128 kb/s, 44.1 kHz
        pkts = [P.MediaPacket(P.AUDIO, i * 26, b"\x2f" + frame, codec="mp3") for i in range(80)]
        rec = self.recorder(path="[stream].mp4")
        self.feed(pkts)
        rec.stop()
        with open(rec.reaped[0], "rb") as f:
            data = f.read()
        self.assertIn(b"mp4a", data)
        self.assertGreaterEqual([k for k, _ in top_boxes(data)].count(b"moof"), 2)


class FFprobeTests(RecorderCase):
    """The files of a real FFmpeg clip, read back by ffprobe."""

    def setUp(self):
        super().setUp()
        from tests.integration import harness as h

        self.h = h
        self.ffprobe = h.ffprobe()
        self.clip = h.clip("h264-aac", 7)

    def clip_packets(self):
        from srs_twisted.rtmp.session import media_packet

        with open(self.clip, "rb") as f:
            return [media_packet(t.tag_type, t.timestamp, t.payload) for t in flv.FlvReader().feed(f.read())]

    def probe(self, path, *extra):
        out = subprocess.run([self.ffprobe, "-v", "error", "-show_streams", "-show_format", *extra, "-of", "json",
                              path], capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def first_video_frame(self, path):
        out = subprocess.run([self.ffprobe, "-v", "error", "-select_streams", "v", "-show_frames", "-read_intervals",
                              "%+#1", "-show_entries", "frame=key_frame,pict_type", "-of", "json", path],
                             capture_output=True, timeout=30)
        return json.loads(out.stdout)["frames"][0]

    def check(self, ext, plan, files):
        rec = self.recorder(path=f"[stream].[timestamp].{ext}", plan=plan, duration=3)
        self.feed(self.clip_packets())
        rec.stop()
        self.assertEqual(len(rec.reaped), files)
        total = 0.0
        for path in rec.reaped:
            info = self.probe(path)
            self.assertEqual(sorted(s["codec_name"] for s in info["streams"]), ["aac", "h264"])
            total += float(info["format"]["duration"])
            self.assertEqual(self.first_video_frame(path)["key_frame"], 1)
        self.assertTrue(6.5 <= total <= 7.5, total)

    def test_flv_session(self):
        self.check("flv", "session", 1)

    def test_mp4_session(self):
        self.check("mp4", "session", 1)

    def test_flv_segments(self):
        self.check("flv", "segment", 3)

    def test_mp4_segments(self):
        self.check("mp4", "segment", 3)


class ObserverTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="srs-dvr-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.clock = Clock()

    def context(self, dvr: str):
        conf = load_string(f"vhost __defaultVhost__ {{ dvr {{ {dvr} }} }}\nvhost other {{ }}")
        ctx = ServerContext(conf, self.clock)
        ctx.hooks = FakeHooks()
        observer = DvrObserver(ctx, wallclock=lambda: NOW)
        ctx.registry.observers.append(observer)
        return ctx, observer

    def publish(self, ctx, vhost="__defaultVhost__", app="live", stream="s", seconds=2):
        source = ctx.registry.fetch_or_create(vhost, app, stream)
        ctx.registry.publish(source, Publisher())
        for p in P.stream(seconds):
            source.write(p)
        ctx.registry.unpublish(source)

    def test_records_enabled_vhosts_only(self):
        ctx, observer = self.context(f"enabled on; dvr_path {self.dir}/[vhost]/[app]/[stream].flv;")
        self.publish(ctx)
        self.publish(ctx, vhost="other")
        self.assertEqual([f for _, f in ctx.hooks.calls], [f"{self.dir}/__defaultVhost__/live/s.flv"])
        self.assertEqual(observer.recorders, {})

    def test_disabled(self):
        ctx, observer = self.context(f"enabled off; dvr_path {self.dir}/[stream].flv;")
        self.publish(ctx)
        self.assertEqual(os.listdir(self.dir), [])

    def test_apply_filter(self):
        ctx, _ = self.context(f"enabled on; dvr_apply live/a live/b; dvr_path {self.dir}/[stream].[timestamp].flv;")
        for name in ("a", "s", "b"):
            self.publish(ctx, stream=name)
        self.assertEqual(sorted(os.listdir(self.dir)), ["a.1420254068776.flv", "b.1420254068776.flv"])

    def test_each_publish_gets_its_own_file(self):
        times = iter([NOW, NOW + 10])
        ctx, observer = self.context(f"enabled on; dvr_path {self.dir}/[stream].[timestamp].mp4;")
        observer.wallclock = lambda: next(times)
        self.publish(ctx)
        self.publish(ctx)
        self.assertEqual(sorted(os.listdir(self.dir)), ["s.1420254068776.mp4", "s.1420254078776.mp4"])

    def test_stop_all_closes_open_files(self):
        ctx, observer = self.context(f"enabled on; dvr_path {self.dir}/[stream].flv;")
        source = ctx.registry.fetch_or_create("__defaultVhost__", "live", "s")
        ctx.registry.publish(source, Publisher())
        for p in P.stream(1):
            source.write(p)
        observer.stop_all()
        self.assertEqual(os.listdir(self.dir), ["s.flv"])
