"""Ingest, transcode, exec and snapshots with the real server and real FFmpeg.

Every wait is bounded; children are found through /proc (Linux) as the
server's child processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from twisted.trial import unittest

from . import harness as h


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def children(pid: int) -> dict[int, str]:
    """The live child processes of ``pid``: {pid: command line}."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(entry)] = cmd
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def wait_for(what: str, check, timeout: float = 60.0, interval: float = 0.2):
    return h.wait_for(check, timeout, interval, message=what)


def probe_when_live(url: str, timeout: float = 120.0) -> dict:
    """ffprobe a stream that may not be published yet (bounded retries)."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            info = h.probe(url, timeout=min(60.0, max(1.0, end - time.monotonic())))
            if any(kind == "video" for kind, _ in h.av_streams(info)):
                return info
        except (AssertionError, subprocess.TimeoutExpired) as e:
            last = e
        time.sleep(0.5)
    raise AssertionError(f"{url} never became playable: {last}")


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's SOF marker."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    raise AssertionError("no SOF marker in the JPEG")


class WorkersCase(unittest.TestCase):
    timeout = 300

    def setUp(self):
        h.ffmpeg(), h.ffprobe()
        self.tmp = tempfile.mkdtemp(prefix="srs-workers-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def start(self, body: str, port: int | None = None) -> h.Server:
        self.server = h.Server(body, rtmp_port=port)
        self.addCleanup(self.server.stop)
        return self.server

    def start_publisher(self, stream: str = "livestream"):
        pub = h.publish(self.server.url(stream), h.clip("h264-aac", 6), loop=True)
        self.addCleanup(h.stop_process, pub)
        return pub

    def ffmpeg_children(self) -> dict[int, str]:
        return {p: c for p, c in children(self.server.proc.pid).items() if "ffmpeg" in c}

    def assert_clip_like(self, info, width=320, height=240):
        streams = h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (width, height))
        return streams


INGEST_FILE = """
vhost __defaultVhost__ {
    ingest clip {
        enabled on;
        input { type file; url %s; }
        ffmpeg ./objs/ffmpeg/bin/ffmpeg;
        engine { enabled off; output rtmp://127.0.0.1:[port]/live?vhost=[vhost]/ingested; }
    }
}
"""

INGEST_STREAM = """
vhost __defaultVhost__ {
    ingest relay {
        enabled on;
        input { type stream; url rtmp://127.0.0.1:%d/live/source; }
        engine { enabled off; output rtmp://127.0.0.1:[port]/live/relayed; }
    }
}
"""

TRANSCODE = """
vhost __defaultVhost__ {
    transcode live {
        enabled on;
        ffmpeg ./objs/ffmpeg/bin/ffmpeg;
        engine sd {
            enabled on;
            vcodec libx264; vbitrate 200; vfps 25; vwidth 160; vheight 120; vthreads 1;
            vprofile baseline; vpreset ultrafast;
            vparams { g 25; }
            acodec aac; abitrate 48; asample_rate 44100; achannels 2;
            output rtmp://127.0.0.1:[port]/[app]/[stream]_[engine]?vhost=[vhost];
        }
    }
}
"""


class IngestTests(WorkersCase):
    def test_file_ingest_plays_at_its_output(self):
        clip = h.clip("h264-aac", 6)
        self.start(INGEST_FILE % clip)
        info = probe_when_live(self.server.url("ingested"))
        self.assert_clip_like(info)
        self.assert_clip_like(h.probe(clip))
        (pid, cmd), = self.ffmpeg_children().items()
        self.assertIn("-stream_loop -1", cmd)
        log = os.path.join(self.server.dir, "objs", "ffmpeg-ingest-__defaultVhost__-live-ingested.log")
        self.assertIn("process ppid=", wait_for("the ff log", lambda: _read(log)))
        # Looped: a player gets 8 s in one go from the 6 s clip, from the same FFmpeg.
        out = os.path.join(self.tmp, "looped.flv")
        result = h.record(self.server.url("ingested"), 8, out)
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace"))
        info = h.probe(out)
        self.assert_clip_like(info)
        self.assertGreaterEqual(float(info["format"]["duration"]), 7.5)
        self.assertTrue(alive(pid))
        self.assertEqual(list(self.ffmpeg_children()), [pid])

    def test_stream_ingest_relays_another_stream(self):
        port = h.free_port()
        self.start(INGEST_STREAM % port, port=port)
        self.start_publisher("source")
        info = probe_when_live(self.server.url("relayed"))
        self.assert_clip_like(info)


class TranscodeTests(WorkersCase):
    def test_second_resolution_and_no_loop(self):
        self.start(TRANSCODE)
        self.start_publisher()
        info = probe_when_live(self.server.url("livestream_sd"))
        streams = self.assert_clip_like(info, 160, 120)
        self.assertEqual(int(streams["audio"]["sample_rate"]), 44100)
        # livestream_sd matches scope "live" too: SRS's loop check keeps it at one FFmpeg.
        self.server.wait_log(r"transcode: \S*livestream_sd\S* is a transcode output, not transcoded again")
        self.assertEqual(len(self.ffmpeg_children()), 1, self.ffmpeg_children())
        log = os.path.join(self.server.dir, "objs", "ffmpeg-encoder-__defaultVhost__-live-livestream-sd.log")
        self.assertIn("libx264", _read(log))

    def test_killed_ffmpeg_is_restarted_and_stopped_at_unpublish(self):
        self.start(TRANSCODE)
        pub = self.start_publisher()
        probe_when_live(self.server.url("livestream_sd"))
        (old,) = self.ffmpeg_children()
        os.kill(old, signal.SIGKILL)
        new = wait_for("a new FFmpeg", lambda: [p for p in self.ffmpeg_children() if p != old])
        self.assertFalse(alive(old))
        self.assert_clip_like(probe_when_live(self.server.url("livestream_sd")), 160, 120)
        h.stop_process(pub)
        wait_for("FFmpeg gone after unpublish", lambda: not any(alive(p) for p in new))
        self.assertEqual(self.ffmpeg_children(), {})


EXEC_SCRIPT = """
import os, signal, sys, time
if sys.argv[3] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d %s" % (os.getpid(), sys.argv[2]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(600)
"""


class ExecTests(WorkersCase):
    def test_exec_runs_at_publish_and_is_gone_after_unpublish(self):
        script = os.path.join(self.tmp, "child.py")
        with open(script, "w") as f:
            f.write(EXEC_SCRIPT)
        polite, stubborn = os.path.join(self.tmp, "polite.pid"), os.path.join(self.tmp, "stubborn.pid")
        self.start(
            "vhost __defaultVhost__ { exec { enabled on;"
            f" publish {sys.executable} {script} {polite} [app]/[stream] polite;"
            f" publish {sys.executable} {script} {stubborn} [app]/[stream] stubborn; }} }}"
        )
        pub = self.start_publisher()
        pids = []
        for path in (polite, stubborn):
            text = wait_for(f"{path}", lambda p=path: _read(p))
            pid, name = text.split()
            self.assertEqual(name, "live/livestream")
            self.assertTrue(alive(int(pid)))
            pids.append(int(pid))
        self.assertEqual(sorted(pids), sorted(p for p in children(self.server.proc.pid) if p in pids))
        h.stop_process(pub)
        # SIGTERM, and SIGKILL 1 s later for the one that ignores SIGTERM.
        wait_for("exec children gone", lambda: not any(alive(p) for p in pids))


class SnapshotTests(WorkersCase):
    def test_snapshot_is_a_jpeg_of_the_stream_size(self):
        http_port = h.free_port()
        self.start(f"http_server {{ enabled on; listen 127.0.0.1:{http_port}; dir {self.tmp}; }}\nvhost __defaultVhost__ {{}}")
        url = f"http://127.0.0.1:{http_port}/snapshot/live/livestream.jpg"
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(url, timeout=h.WAIT)
        self.assertEqual(caught.exception.code, 404)
        self.start_publisher()

        def fetch():
            try:
                with urllib.request.urlopen(url, timeout=h.WAIT) as r:
                    return r.status, r.headers.get("content-type"), r.read()
            except urllib.error.HTTPError as e:
                if e.code in (404, 503):  # not published yet / no picture yet
                    return None
                raise

        status, ctype, body = wait_for("a snapshot", fetch, timeout=90)
        self.assertEqual((status, ctype), (200, "image/jpeg"))
        self.assertEqual(body[:2], b"\xff\xd8")
        self.assertEqual(body[-2:], b"\xff\xd9")
        self.assertEqual(jpeg_size(body), (320, 240))
        (child,) = self.ffmpeg_children()
        # A second request is served by the same child (no new FFmpeg).
        self.assertEqual(fetch()[2][:2], b"\xff\xd8")
        self.assertEqual(list(self.ffmpeg_children()), [child])


class ShutdownTests(WorkersCase):
    def test_sigterm_leaves_no_child_running(self):
        clip = h.clip("h264-aac", 6)
        script = os.path.join(self.tmp, "child.py")
        with open(script, "w") as f:
            f.write(EXEC_SCRIPT)
        pidfile = os.path.join(self.tmp, "exec.pid")
        engine = TRANSCODE[TRANSCODE.index("    transcode live"):TRANSCODE.rindex("}")]
        self.start(
            "vhost __defaultVhost__ {\n"
            f"    exec {{ enabled on; publish {sys.executable} {script} {pidfile} [stream] stubborn; }}\n"
            f"    ingest clip {{ enabled on; input {{ type file; url {clip}; }}\n"
            "        engine { enabled off; output rtmp://127.0.0.1:[port]/live/ingested; } }\n"
            f"{engine}}}\n"
        )
        # The ingest publishes live/ingested: the exec and the transcode start for it.
        wait_for("ingest, transcode and exec", lambda: len(children(self.server.proc.pid)) >= 3, timeout=90)
        wait_for("the exec pid file", lambda: _read(pidfile))
        pids = list(children(self.server.proc.pid))
        self.assertTrue(all(alive(p) for p in pids))
        self.server.proc.send_signal(signal.SIGTERM)
        self.server.proc.wait(h.WAIT)
        wait_for("no child left", lambda: not any(alive(p) for p in pids))
