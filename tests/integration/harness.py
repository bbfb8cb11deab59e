"""Run the real server on loopback and drive it with real FFmpeg/ffprobe.

Everything here is bounded in time: every wait has a deadline and every
child process is killed when its test ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from twisted.trial import unittest
from twisted.trial.unittest import SkipTest

IN_CI = os.environ.get("CI", "").lower() == "true"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def need(tool: str, path: str | None) -> str:
    """The tool's path; a missing tool skips locally and fails in CI."""
    if path:
        return path
    message = f"{tool} is not installed (apt-get install ffmpeg)"
    if IN_CI:
        raise AssertionError(message)
    raise SkipTest(message)


def ffmpeg() -> str:
    """A modern FFmpeg (>= 6.1, speaks Enhanced RTMP): imageio-ffmpeg's, else PATH's."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        return need("ffmpeg", shutil.which("ffmpeg"))


def ffprobe() -> str:
    return need("ffprobe", shutil.which("ffprobe"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, deadline: float = 10.0, proc=None) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {deadline}s")


class Server:
    """The real server (``python -m srs_twisted.cli``) in its own work dir."""

    def __init__(self, conf_body: str = "vhost __defaultVhost__ {}", rtmp_port: int | None = None, extra_env=None):
        self.dir = tempfile.mkdtemp(prefix="srs-it-")
        self.port = rtmp_port or free_port()
        self.conf_path = os.path.join(self.dir, "srs.conf")
        with open(self.conf_path, "w") as f:
            f.write(
                f"listen 127.0.0.1:{self.port};\n"
                f"pid {self.dir}/srs.pid;\n"
                f"srs_log_tank file;\nsrs_log_file {self.dir}/srs.log;\n"
                f"{conf_body}\n"
            )
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.update(extra_env or {})
        # The server's own stdout/stderr go to a file: a pipe nobody reads
        # could fill and freeze the server.
        self._console = open(os.path.join(self.dir, "console.log"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "srs_twisted.cli", "-c", self.conf_path],
            cwd=self.dir,
            env=env,
            stdout=self._console,
            stderr=subprocess.STDOUT,
        )
        wait_port(self.port, proc=self.proc)

    def url(self, stream: str = "livestream", app: str = "live") -> str:
        return f"rtmp://127.0.0.1:{self.port}/{app}/{stream}"

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "srs.log")) as f:
                return f.read()
        except OSError:
            return ""

    def console(self) -> str:
        """What the server printed outside its log (tracebacks would land here)."""
        with open(os.path.join(self.dir, "console.log"), errors="replace") as f:
            return f.read()

    def rss_kb(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._console.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.proc.returncode


_CLIPS: dict = {}


def clip(kind: str = "h264-aac", seconds: int = 12) -> str:
    """A generated test clip (lavfi testsrc2 + sine), cached per run.
    Kinds: h264-aac, h264-mp3, hevc-aac.  1 s GOPs at 25 fps, 320x240."""
    key = (kind, seconds)
    if key in _CLIPS and os.path.exists(_CLIPS[key]):
        return _CLIPS[key]
    vcodec, acodec = kind.split("-")
    out_dir = tempfile.mkdtemp(prefix="srs-clip-")
    path = os.path.join(out_dir, f"{kind}-{seconds}.flv")
    v = {"h264": ["-c:v", "libx264", "-profile:v", "high"], "hevc": ["-c:v", "libx265", "-x265-params", "log-level=error"]}[vcodec]
    a = {"aac": ["-c:a", "aac", "-b:a", "64k"], "mp3": ["-c:a", "libmp3lame", "-b:a", "64k", "-ar", "44100"]}[acodec]
    cmd = [
        ffmpeg(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
        *v, "-g", "25", "-bf", "0", "-pix_fmt", "yuv420p", "-preset", "ultrafast", "-b:v", "300k",
        *a, "-ac", "2", "-f", "flv", path,
    ]
    subprocess.run(cmd, check=True, timeout=120)
    _CLIPS[key] = path
    return path


def publish(url: str, path: str, loop: bool = False, extra=()) -> subprocess.Popen:
    """Publish a clip in real time (-re) with FFmpeg; returns the process."""
    cmd = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-re"]
    if loop:
        cmd += ["-stream_loop", "-1"]
    cmd += ["-i", path, "-c", "copy", *extra, "-f", "flv", url]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def probe(target: str, timeout: float = 20.0) -> dict:
    """ffprobe's streams and format of a URL or file, as JSON."""
    out = subprocess.run(
        [ffprobe(), "-v", "error", "-rw_timeout", "10000000", "-show_streams", "-show_format", "-of", "json", target]
        if target.startswith("rtmp") else
        [ffprobe(), "-v", "error", "-show_streams", "-show_format", "-of", "json", target],
        capture_output=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise AssertionError(f"ffprobe {target} failed: {out.stderr.decode(errors='replace')[-500:]}")
    return json.loads(out.stdout)


def record(url: str, seconds: float, out_path: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Play ``url`` for ``seconds`` with FFmpeg, copying the streams to a file."""
    return subprocess.run(
        [ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-rw_timeout", "15000000",
         "-i", url, "-t", str(seconds), "-c", "copy", out_path],
        capture_output=True,
        timeout=timeout or seconds + 30,
    )


def start_player(url: str, seconds: float, out_path: str) -> subprocess.Popen:
    return subprocess.Popen(
        [ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-rw_timeout", "15000000",
         "-i", url, "-t", str(seconds), "-c", "copy", out_path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def streams_by_type(info: dict) -> dict:
    return {s["codec_type"]: s for s in info.get("streams", [])}


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


class FileServerCase(unittest.TestCase):
    """The real server with an HTTP server whose dir is a fresh temp folder
    (``self.root``, on ``self.http``) that a writer (HLS, DASH) fills.
    Subclasses give the vhost's body; children in ``self.procs`` are stopped
    and the server console is checked for tracebacks before the server stops."""

    prefix = "srs-files-"

    def vhost_body(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def setUp(self):
        ffmpeg(), ffprobe()
        self.root = tempfile.mkdtemp(prefix=self.prefix)
        self.addCleanup(shutil.rmtree, self.root, True)
        self.http = free_port()
        conf = (
            f"http_server {{ enabled on; listen 127.0.0.1:{self.http}; dir {self.root}; }}\n"
            f"vhost __defaultVhost__ {{ {self.vhost_body()} }}\n"
        )
        self.server = Server(conf)
        self.addCleanup(self.server.stop)
        self.procs = []
        self.addCleanup(self.finish)  # runs before the server stops
        wait_port(self.http)

    def finish(self):
        for proc in self.procs:
            stop_process(proc)
        console = self.server.console()
        self.assertNotIn("Traceback", console, console[-3000:])
