"""DVR end to end: the real server records what FFmpeg publishes; ffprobe
reads the files back; a hook receiver in this test process (twisted.web
served by the trial reactor) gets on_dvr; FFmpeg and ffprobe run without
blocking the reactor."""

from __future__ import annotations

import glob
import json
import os
import signal

from twisted.internet import defer
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from . import harness as h
from .receiver import start_receiver, until, wait_exit

ON_DVR_KEYS = ["server_id", "service_id", "action", "client_id", "ip", "vhost", "app",
               "tcUrl", "stream", "param", "cwd", "file", "stream_url", "stream_id"]


@defer.inlineCallbacks
def probe(path: str, *extra: str):
    """ffprobe's JSON for ``path`` (streams and format unless ``extra`` says otherwise)."""
    args = ["-v", "error", *(extra or ("-show_streams", "-show_format")), "-of", "json", path]
    out, err, code = yield getProcessOutputAndValue(h.ffprobe(), args, env=dict(os.environ))
    if code != 0:
        raise AssertionError(f"ffprobe {path} failed: {err.decode(errors='replace')[-500:]}")
    return json.loads(out)


@defer.inlineCallbacks
def readable(path: str, codec: str, tmp_dir: str):
    """A path ffprobe can read: FFmpeg 5 (Debian's ffprobe) predates
    Enhanced FLV, so an HEVC FLV is first copied into Matroska by the newer
    FFmpeg the publisher uses."""
    if not (codec == "hevc" and path.endswith((".flv", ".flv.tmp"))):
        return path
    out = os.path.join(tmp_dir, os.path.basename(path).replace(".", "_") + ".mkv")
    _, err, code = yield getProcessOutputAndValue(
        h.ffmpeg(), ["-hide_banner", "-loglevel", "error", "-y", "-f", "flv", "-i", path, "-c", "copy", out],
        env=dict(os.environ))
    if code != 0:
        raise AssertionError(f"remux {path} failed: {err.decode(errors='replace')[-500:]}")
    return out


class DvrCase(unittest.TestCase):
    timeout = 300

    def setUp(self):
        h.ffmpeg(), h.ffprobe()
        self.receiver, base = start_receiver(self)
        self.hook_url = base + "/api/v1/dvrs"

    def server(self, dvr: str, extra_vhosts: str = ""):
        server = h.Server(
            "vhost __defaultVhost__ { "
            f"http_hooks {{ enabled on; on_dvr {self.hook_url}; }} dvr {{ enabled on; {dvr} }} }}"
            + extra_vhosts
        )
        self.addCleanup(server.stop)
        return server

    def publisher(self, server, kind="h264-aac", stream="s", app="live", seconds=12, loop=True):
        proc = h.publish(server.url(stream, app), h.clip(kind, seconds), loop=loop)
        self.addCleanup(h.stop_process, proc)
        return proc

    def dvr_bodies(self):
        return self.receiver.bodies("on_dvr")

    @defer.inlineCallbacks
    def publish_clip(self, server, seconds, kind="h264-aac"):
        """Publish a clip of ``seconds`` once, to its end, then wait until the
        server closed every file it was writing (no .tmp left)."""
        pub = self.publisher(server, kind, seconds=seconds, loop=False)
        code = yield wait_exit(pub, 120)
        self.assertEqual(code, 0, pub.stderr.read().decode(errors="replace"))
        yield until(lambda: None, lambda _: not self.open_files(server), "the recording closed")

    @defer.inlineCallbacks
    def kill(self, servers: dict, pubs: dict):
        """SIGKILL every server, then stop the publishers."""
        for server in servers.values():
            server.proc.send_signal(signal.SIGKILL)
        for server in servers.values():
            yield wait_exit(server.proc, 10)
        for pub in pubs.values():
            h.stop_process(pub)

    def open_files(self, server) -> list[str]:
        """The .tmp files anywhere under the server's dir (recordings not closed)."""
        return [os.path.join(base, n) for base, _, names in os.walk(server.dir) for n in names if n.endswith(".tmp")]

    def files(self, server, pattern):
        return sorted(glob.glob(os.path.join(server.dir, pattern)))


class SessionPlanTests(DvrCase):
    @defer.inlineCallbacks
    def check_session(self, ext):
        server = self.server(f"dvr_plan session; dvr_path ./objs/nginx/html/[app]/[stream].[timestamp].{ext};")
        yield self.publish_clip(server, 6)
        yield self.receiver.wait_for(lambda: self.dvr_bodies(), 60, "on_dvr")
        (body,) = self.dvr_bodies()
        self.assertEqual(list(body), ON_DVR_KEYS)
        self.assertEqual((body["action"], body["vhost"], body["app"], body["stream"]),
                         ("on_dvr", "__defaultVhost__", "live", "s"))
        self.assertEqual(os.path.realpath(body["cwd"]), os.path.realpath(server.dir))
        self.assertRegex(body["file"], r"^\./objs/nginx/html/live/s\.\d{13}\." + ext + "$")
        self.assertTrue(body["stream_id"])
        (path,) = self.files(server, f"objs/nginx/html/live/*.{ext}")
        self.assertEqual(os.path.relpath(path, server.dir), os.path.normpath(body["file"]))
        self.assertEqual(self.files(server, "objs/nginx/html/live/*.tmp"), [])
        self.assertIn(f"dvr stream s to file {body['file']}", server.log())
        info = yield probe(path)
        self.assertEqual(sorted(s["codec_name"] for s in info["streams"]), ["aac", "h264"])
        duration = float(info["format"]["duration"])
        self.assertLess(abs(duration - 6.0), 0.5, duration)  # the whole 6 s clip
        self.measured = duration

    def test_flv(self):
        return self.check_session("flv")

    def test_mp4(self):
        return self.check_session("mp4")


class SegmentPlanTests(DvrCase):
    @defer.inlineCallbacks
    def check_segments(self, kind, ext):
        server = self.server(f"dvr_plan segment; dvr_duration 3; dvr_wait_keyframe on; "
                             f"dvr_path ./rec/[stream].[timestamp].{ext};")
        yield self.publish_clip(server, 10, kind)
        files = self.files(server, f"rec/*.{ext}")
        yield self.receiver.wait_for(lambda: len(self.dvr_bodies()) >= len(files), 60, "on_dvr per file")
        self.assertEqual(sorted(os.path.normpath(os.path.join(server.dir, b["file"])) for b in self.dvr_bodies()),
                         files)
        vcodec = "hevc" if kind.startswith("hevc") else "h264"
        durations = []
        for path in files:
            target = yield readable(path, vcodec, server.dir)
            info = yield probe(target)
            self.assertEqual(sorted(s["codec_name"] for s in info["streams"]), sorted(["aac", vcodec]), path)
            durations.append(float(info["format"]["duration"]))
            first = yield probe(target, "-select_streams", "v", "-show_frames", "-read_intervals", "%+#1",
                                "-show_entries", "frame=key_frame,pict_type")
            self.assertEqual(first["frames"][0]["key_frame"], 1, path)
        # 10 s in segments of 3 s cut at the next keyframe (1 s GOPs)
        self.assertEqual(len(files), 4, durations)
        for d in durations[:-1]:
            self.assertTrue(2.5 <= d <= 3.6, durations)
        self.assertLess(abs(sum(durations) - 10.0), 0.5, durations)
        self.measured = durations

    def test_h264_flv(self):
        return self.check_segments("h264-aac", "flv")

    def test_hevc_flv(self):
        return self.check_segments("hevc-aac", "flv")

    def test_h264_mp4(self):
        return self.check_segments("h264-aac", "mp4")

    def test_hevc_mp4(self):
        return self.check_segments("hevc-aac", "mp4")


class CrashTests(DvrCase):
    @defer.inlineCallbacks
    def test_kill_9_leaves_playable_files(self):
        """SIGKILL the server ~6 s into a recording: the .tmp files (FLV and
        MP4) hold everything but the last second or so, and play."""
        servers = {ext: self.server(f"dvr_path ./rec/[stream].{ext};") for ext in ("flv", "mp4")}
        pubs = {ext: self.publisher(s) for ext, s in servers.items()}

        def recorded():  # about 6 s of the clip (~45 KB/s) on disk
            sizes = [sum(os.path.getsize(p) for p in self.files(s, "rec/*.tmp")) for s in servers.values()]
            return min(sizes) >= 270_000

        yield until(lambda: None, lambda _: recorded(), "6 s recorded in each .tmp", timeout=120)
        yield self.kill(servers, pubs)
        self.measured = {}
        for ext, server in servers.items():
            (path,) = self.files(server, f"rec/s.{ext}.tmp")
            info = yield probe(path)
            self.assertEqual(sorted(s["codec_name"] for s in info["streams"]), ["aac", "h264"], ext)
            duration = float(info["format"]["duration"])
            self.assertGreaterEqual(duration, 4.0, ext)
            self.measured[ext] = duration
        self.assertEqual(self.dvr_bodies(), [])


class RestartAfterCrashTests(DvrCase):
    @defer.inlineCallbacks
    def test_restart_finishes_and_announces_what_a_kill_9_left(self):
        """Issue 9 item 20: SIGKILL the server mid-recording, start it again
        in the same directory: the .tmp files (FLV and MP4) are finished
        (renamed, playable) and on_dvr is sent for each."""
        servers = {ext: self.server(f"dvr_path ./rec/[stream].[timestamp].{ext};") for ext in ("flv", "mp4")}
        pubs = {ext: self.publisher(s) for ext, s in servers.items()}

        def recorded():  # about 4 s of the clip (~45 KB/s) on disk
            sizes = [sum(os.path.getsize(p) for p in self.files(s, "rec/*.tmp")) for s in servers.values()]
            return min(sizes) >= 180_000

        yield until(lambda: None, lambda _: recorded(), "4 s recorded in each .tmp", timeout=60)
        yield self.kill(servers, pubs)
        self.assertEqual(self.dvr_bodies(), [])
        for server in servers.values():
            server.restart()
        yield self.receiver.wait_for(lambda: len(self.dvr_bodies()) >= 2, 30, "on_dvr for both files")
        self.measured = {}
        for ext, server in servers.items():
            self.assertEqual(self.files(server, "rec/*.tmp"), [])
            (path,) = self.files(server, f"rec/s.*.{ext}")
            rel = "./" + os.path.relpath(path, server.dir)
            (body,) = [b for b in self.dvr_bodies() if b["file"] == rel]
            # no stream (and no publisher) any more: no stream_id, as SRS leaves it out then
            self.assertEqual(list(body), [k for k in ON_DVR_KEYS if k != "stream_id"])
            self.assertEqual((body["action"], body["vhost"], body["app"], body["stream"]),
                             ("on_dvr", "__defaultVhost__", "live", "s"))
            self.assertEqual(body["ip"], "127.0.0.1")  # the publisher's, kept on the file
            self.assertTrue(body["client_id"])
            info = yield probe(path)
            self.assertEqual(sorted(s["codec_name"] for s in info["streams"]), ["aac", "h264"], ext)
            duration = float(info["format"]["duration"])
            self.assertGreaterEqual(duration, 3.0, ext)
            self.measured[ext] = duration
            self.assertIn(f"dvr: finished {rel}", server.log())
