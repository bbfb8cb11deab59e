"""Run the real server on loopback and drive it with real FFmpeg/ffprobe.

Everything here is bounded in time: every wait has a deadline and every
child process is killed when its test ends.  Waits poll for the event they
wait on with generous deadlines (CI is a busy 2-core box): never a fixed
sleep standing in for an event.

A test fails when its server logged an unexpected exception (a line with
``srs_twisted.log.UNEXPECTED_MARKER``) or printed a traceback, unless it
says it provokes one on purpose (``Server(..., expect_unexpected=True)``).
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from twisted.trial import unittest
from twisted.trial.unittest import SkipTest

from srs_twisted.log import UNEXPECTED_MARKER

IN_CI = os.environ.get("CI", "").lower() == "true"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def need(tool: str, path: str | None) -> str:
    """The tool's path; a missing tool skips locally and fails in CI."""
    if path:
        return path
    package = {"ffprobe": "ffmpeg"}.get(tool, tool)
    message = f"{tool} is not installed (apt-get install {package}; .ci/run installs it)"
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


# ---- waiting -----------------------------------------------------------------------
# The deadline of a wait for something that takes well under a second on an
# idle machine: generous, because CI is a busy 2-core box.
WAIT = 30.0


def wait_for(predicate, timeout: float = WAIT, interval: float = 0.05, message: str = ""):
    """Poll ``predicate()`` until it returns something true, and return that;
    an AssertionError (with ``message``, or a callable giving it) after
    ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() >= end:
            why = message() if callable(message) else message
            raise AssertionError(f"not after {timeout:.0f}s: {why or predicate}")
        time.sleep(interval)


# ---- ports ---------------------------------------------------------------------------
# Binding port 0, closing it and handing the number on races with the kernel,
# which may give that (ephemeral) port to the next outgoing connection: a
# player's or FFmpeg's.  So test ports come from below the ephemeral range,
# where the kernel never picks, in blocks of PORT_BLOCK that one process
# claims with a lock file (flock, released when the process dies): two test
# runs on one machine never hand out the same port, and a process never hands
# out a port twice.
PORT_BLOCK = 100
PORT_FLOOR = 10000
PORT_LOCK_DIR = os.path.join(tempfile.gettempdir(), "srs-it-ports")
_ports = {"lock": None, "next": 0, "end": 0}


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _claim_port_block() -> None:
    blocks = max(0, (_ephemeral_low() - PORT_FLOOR) // PORT_BLOCK)
    if blocks == 0:
        raise AssertionError("no port range below the ephemeral ports to take test ports from")
    os.makedirs(PORT_LOCK_DIR, exist_ok=True)
    for i in random.sample(range(blocks), blocks):
        fd = os.open(os.path.join(PORT_LOCK_DIR, f"{i}.lock"), os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        if _ports["lock"] is not None:
            os.close(_ports["lock"])  # the exhausted block is free for others
        _ports.update(lock=fd, next=PORT_FLOOR + i * PORT_BLOCK, end=PORT_FLOOR + (i + 1) * PORT_BLOCK)
        return
    raise AssertionError(f"all {blocks} test port blocks in {PORT_LOCK_DIR} are taken")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))  # without SO_REUSEADDR: TIME_WAIT leftovers count as busy
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port nothing listens on and no other test run hands out."""
    for _ in range(10 * PORT_BLOCK):
        if _ports["next"] >= _ports["end"]:
            _claim_port_block()
        port = _ports["next"]
        _ports["next"] += 1
        if _bindable(port):
            return port
    raise AssertionError("no free port found")


def wait_port(port: int, deadline: float = 60.0, proc=None) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2.0):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {deadline}s")


class Server:
    """The real server (``python -m srs_twisted.cli``) in its own work dir.

    ``stop()`` (every test adds it as a cleanup) fails the test when the server
    logged an unexpected exception or printed a traceback, unless
    ``expect_unexpected`` says the test provokes one on purpose."""

    START_ATTEMPTS = 3

    def __init__(self, conf_body: str = "vhost __defaultVhost__ {}", rtmp_port: int | None = None, extra_env=None,
                 expect_unexpected: bool = False, sitecustomize: str | None = None):
        """``sitecustomize``: Python code the server runs at start-up (to
        patch it for a test), put first on its PYTHONPATH."""
        self.dir = tempfile.mkdtemp(prefix="srs-it-")
        self.expect_unexpected = expect_unexpected
        self.conf_path = os.path.join(self.dir, "srs.conf")
        path = [ROOT, os.environ.get("PYTHONPATH", "")]
        if sitecustomize is not None:
            site_dir = os.path.join(self.dir, "site")
            os.makedirs(site_dir)
            with open(os.path.join(site_dir, "sitecustomize.py"), "w") as f:
                f.write(sitecustomize)
            path.insert(0, site_dir)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in path if p))
        # The circuit breaker measures the server's CPU, which on CI's two busy cores says
        # nothing of the server's own load: off unless a test turns it on (test_breaker).
        env["SRS_CIRCUIT_BREAKER_ENABLED"] = "off"
        env.update(extra_env or {})
        self._conf_body, self._env = conf_body, env
        for attempt in range(self.START_ATTEMPTS):
            self.port = rtmp_port or free_port()
            try:
                self._start(conf_body, env)
                return
            except AssertionError:
                # Our own port taken meanwhile (by a foreign process): another one.
                busy = "Address already in use" in self.log() + self.console()
                if rtmp_port is not None or not busy or attempt == self.START_ATTEMPTS - 1:
                    self.stop(check=False)
                    raise
                self._console.close()

    def _start(self, conf_body: str, env: dict) -> None:
        with open(self.conf_path, "w") as f:
            f.write(
                f"listen 127.0.0.1:{self.port};\n"
                f"pid {self.dir}/srs.pid;\n"
                f"srs_log_tank file;\nsrs_log_file {self.dir}/srs.log;\n"
                f"{conf_body}\n"
            )
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
        # The RTMP port accepts as soon as it listens; the other listeners
        # (HTTP, API, RTC, SRT) are up once the start line is logged.
        end = time.monotonic() + 60.0
        while "srs-twisted started" not in self.log() + self.console():
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode} while starting")
            if time.monotonic() > end:
                raise AssertionError("the server did not log its start line within 60 s")
            time.sleep(0.02)

    def restart(self) -> None:
        """Start the server again (same dir, config and port) once its
        process has ended, e.g. after a SIGKILL."""
        if self.proc.poll() is None:
            raise AssertionError("the server is still running")
        self._console.close()
        self._start(self._conf_body, self._env)

    def url(self, stream: str = "livestream", app: str = "live") -> str:
        return f"rtmp://127.0.0.1:{self.port}/{app}/{stream}"

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "srs.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def console(self) -> str:
        """What the server printed outside its log (tracebacks would land here)."""
        try:
            with open(os.path.join(self.dir, "console.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_log(self, pattern: str, timeout: float = WAIT, after: int = 0) -> re.Match:
        """The first match of the regex ``pattern`` in the log (from offset
        ``after``), waiting for it to be written."""
        regex = re.compile(pattern)

        def found():
            return regex.search(self.log(), after)

        return wait_for(found, timeout, message=lambda: f"no log line matches {pattern!r}; log tail:\n{self.log()[-3000:]}")

    def unexpected_errors(self) -> str:
        """Unexpected-exception reports in the log and tracebacks on the
        console, as text ('' when there is none)."""
        marked = [line for line in self.log().splitlines() if UNEXPECTED_MARKER in line]
        console = self.console()
        found = "\n".join(marked)
        if "Traceback" in console:
            found += "\n--- console ---\n" + console[-3000:]
        return found.strip()

    def rss_kb(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, check: bool = True) -> int:
        """Stop the server and remove its dir; then fail (AssertionError) if
        it logged an unexpected exception, unless told it was expected."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(WAIT)
        self._console.close()
        errors = self.unexpected_errors() if check and not self.expect_unexpected else ""
        shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            raise AssertionError(f"the server logged unexpected errors:\n{errors[-6000:]}")
        return self.proc.returncode


_CLIPS: dict = {}


def clip(kind: str = "h264-aac", seconds: int = 12, size: str = "320x240") -> str:
    """A generated test clip (lavfi testsrc2 + sine), cached per run.
    Kinds: h264-aac, h264-mp3, hevc-aac.  1 s GOPs at 25 fps, ``size`` pictures."""
    key = (kind, seconds, size)
    if key in _CLIPS and os.path.exists(_CLIPS[key]):
        return _CLIPS[key]
    vcodec, acodec = kind.split("-")
    out_dir = tempfile.mkdtemp(prefix="srs-clip-")
    path = os.path.join(out_dir, f"{kind}-{seconds}-{size}.flv")
    v = {"h264": ["-c:v", "libx264", "-profile:v", "high"], "hevc": ["-c:v", "libx265", "-x265-params", "log-level=error"]}[vcodec]
    a = {"aac": ["-c:a", "aac", "-b:a", "64k"], "mp3": ["-c:a", "libmp3lame", "-b:a", "64k", "-ar", "44100"]}[acodec]
    cmd = [
        ffmpeg(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
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


def probe(target: str, timeout: float = 90.0) -> dict:
    """ffprobe's streams and format of a URL or file, as JSON.  On an RTMP
    URL, ffprobe plays: it waits (up to 30 s without data) for a publisher,
    so probing a stream is also how a test waits for it to be live."""
    out = subprocess.run(
        [ffprobe(), "-v", "error", "-rw_timeout", "30000000", "-show_streams", "-show_format", "-of", "json", target]
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
        [ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-rw_timeout", "30000000",
         "-i", url, "-t", str(seconds), "-c", "copy", out_path],
        capture_output=True,
        timeout=timeout or seconds + 90,
    )


def start_player(url: str, seconds: float, out_path: str) -> subprocess.Popen:
    return subprocess.Popen(
        [ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-rw_timeout", "30000000",
         "-i", url, "-t", str(seconds), "-c", "copy", out_path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def streams_by_type(info: dict) -> dict:
    """ffprobe's streams keyed by type; two streams of a type (which a dict
    would collapse into one) are an AssertionError.  Prefer
    :func:`assert_streams`, which checks the exact list."""
    streams = info.get("streams", [])
    kinds = [s.get("codec_type", "") for s in streams]
    if len(kinds) != len(set(kinds)):
        raise AssertionError(f"more than one stream of a type: {av_streams(info)}")
    return {s["codec_type"]: s for s in streams}


def av_streams(info: dict) -> list[tuple[str, str]]:
    """Every stream a player sees, in order, as ``(codec_type,
    codec_name)``: audio, video and anything else (a data stream is what
    FFmpeg makes of an FLV/RTMP data message it does not know, such as the
    onStatus NetStream.Data.Start SRS sends: players show it, so it is a
    defect, never ignored)."""
    return [(s.get("codec_type", ""), s.get("codec_name", "")) for s in info.get("streams", [])]


def assert_streams(info: dict, expected) -> dict:
    """Assert the exact streams (count, types and codecs, in any order; data
    streams included): ``expected`` is a list like ``[("video", "h264"),
    ("audio", "aac")]``.  Returns the streams keyed by type."""
    got = av_streams(info)
    if sorted(got) != sorted(expected):
        raise AssertionError(f"streams {got}, expected {sorted(expected)}")
    return streams_by_type(info)


def wait_http_stream(url: str, min_bytes: int = 1000, timeout: float = WAIT * 2) -> bytes:
    """The first ``min_bytes`` of a live HTTP stream (HTTP-FLV/TS/AAC/MP3),
    waiting until it is served (404 until its publisher is live)."""
    import urllib.error
    import urllib.request

    def first_bytes():
        try:
            with urllib.request.urlopen(url, timeout=WAIT) as r:
                data = r.read(min_bytes)
        except (urllib.error.URLError, OSError):
            return None
        return data if len(data) >= min_bytes else None

    return wait_for(first_bytes, timeout, interval=0.2, message=f"{url} is not served")


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def wait_growing(path: str, min_bytes: int = 1, timeout: float = WAIT) -> int:
    """Wait until a file (a player's output, a recording) holds ``min_bytes``."""
    return wait_for(lambda: file_size(path) >= min_bytes and file_size(path), timeout,
                    message=f"{path} did not reach {min_bytes} bytes")


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
