"""The `srs` command: flags, config check, env-only mode, pid file, signals."""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

from twisted.trial import unittest

from . import harness as h


def srs(*args, cwd=None, env=None, timeout=30):
    return subprocess.run(
        [sys.executable, "-m", "srs_twisted.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd or h.ROOT,
        env=dict(os.environ, PYTHONPATH=h.ROOT, **(env or {})),
        timeout=timeout,
    )


class CheckTests(unittest.TestCase):
    def test_version(self):
        out = srs("-v")
        self.assertEqual(out.returncode, 0)
        self.assertEqual(out.stdout.strip(), "7.0.18")

    def test_every_shipped_conf_passes_check(self):
        confs = sorted(glob.glob(os.path.join(h.ROOT, "conf", "*.conf")))
        self.assertIn(os.path.join(h.ROOT, "conf", "srs.conf"), confs)
        for path in confs:
            out = srs("-t", "-c", path)
            self.assertEqual(out.returncode, 0, f"{path}: {out.stderr}")

    def test_combined_flags(self):
        out = srs("-tc", os.path.join(h.ROOT, "conf", "rtmp.conf"))
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_bad_config_reports_file_line_col(self):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        path = os.path.join(d, "bad.conf")
        with open(path, "w") as f:
            f.write("listen 1935;\nvhost __defaultVhost__ {\n    play {\n        no_such_thing on;\n    }\n}\n")
        out = srs("-t", "-c", path)
        self.assertNotEqual(out.returncode, 0)
        self.assertTrue(out.stderr.startswith(f"{path}:4:9:"), out.stderr)
        self.assertIn("no_such_thing", out.stderr)

    def test_bad_values_report_file_line_col(self):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        for line, message in (
            ("gop_cache maybe;", "4:19: \"gop_cache\" must be on or off, got 'maybe'"),
            ("queue_length -5;", "4:22: \"queue_length\" must be >= 0.0, got '-5'"),
        ):
            path = os.path.join(d, "bad.conf")
            with open(path, "w") as f:
                f.write(f"listen 1935;\nvhost __defaultVhost__ {{\n    play {{\n        {line}\n    }}\n}}\n")
            out = srs("-t", "-c", path)
            self.assertEqual(out.returncode, 1, out.stdout)
            self.assertEqual(out.stderr.strip(), f"{path}:{message}")

    def test_unknown_flag(self):
        out = srs("-x")
        self.assertEqual(out.returncode, 2)


class RunTests(unittest.TestCase):
    timeout = 120

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="srs-cli-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def start(self, args, env=None, port=None):
        proc = subprocess.Popen(
            [sys.executable, "-m", "srs_twisted.cli", *args],
            cwd=h.ROOT,
            env=dict(os.environ, PYTHONPATH=h.ROOT, **(env or {})),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.addCleanup(h.stop_process, proc)
        if port:
            h.wait_port(port, proc=proc)
        return proc

    def conf(self, port, extra=""):
        path = os.path.join(self.dir, "srs.conf")
        with open(path, "w") as f:
            f.write(
                f"listen 127.0.0.1:{port};\nwork_dir {self.dir};\npid ./objs/srs.pid;\n"
                f"srs_log_tank file;\nsrs_log_file ./objs/srs.log;\n{extra}\nvhost __defaultVhost__ {{}}\n"
            )
        return path

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "objs", "srs.log")) as f:
                return f.read()
        except OSError:
            return ""

    def wait_pid_file(self, path, proc):
        """The pid file is written just after the ports listen: wait for it."""
        def pid():
            try:
                with open(path) as f:
                    return f.read().strip()
            except OSError:
                return ""

        self.assertEqual(h.wait_for(pid, message=f"no pid file {path}"), str(proc.pid))

    def wait_exit(self, proc) -> int:
        """The exit code; a graceful quit (SLOW_GRACE) would not end in time."""
        return proc.wait(h.WAIT)

    # A fast quit does not wait for clients; a graceful one would wait this
    # long, more than wait_exit waits: so no wall-clock bound is needed to
    # tell them apart, however busy the machine.
    SLOW_GRACE = f"grace_final_wait {int(2 * h.WAIT * 1000)};"

    def test_work_dir_pid_and_sigterm(self):
        port = h.free_port()
        proc = self.start(["-c", self.conf(port, self.SLOW_GRACE)], port=port)
        pid_file = os.path.join(self.dir, "objs", "srs.pid")
        self.wait_pid_file(pid_file, proc)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertFalse(os.path.exists(pid_file))
        self.assertNotIn("graceful quit", self.log())
        self.assertIn("srs-twisted stopped", self.log())

    def test_sigint_exits_fast(self):
        port = h.free_port()
        proc = self.start(["-c", self.conf(port, self.SLOW_GRACE)], port=port)
        proc.send_signal(signal.SIGINT)
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertNotIn("graceful quit", self.log())
        self.assertIn("srs-twisted stopped", self.log())
        self.assertNotIn(b"Traceback", proc.stdout.read())

    def test_sigquit_is_graceful(self):
        port = h.free_port()
        proc = self.start(["-c", self.conf(port, "grace_final_wait 500;")], port=port)
        proc.send_signal(signal.SIGQUIT)
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertIn("graceful quit, wait 500ms for clients", self.log())

    def test_sighup_reloads_and_sigusr1_reopens_log(self):
        port = h.free_port()
        proc = self.start(["-c", self.conf(port)], port=port)
        log = os.path.join(self.dir, "objs", "srs.log")
        os.rename(log, log + ".1")
        proc.send_signal(signal.SIGUSR1)
        h.wait_for(lambda: os.path.exists(log), message="SIGUSR1 did not reopen the log file")
        proc.send_signal(signal.SIGHUP)
        h.wait_for(lambda: "reload config ok" in self.log(), message=lambda: f"no reload in the log:\n{self.log()}")

    def test_env_only_mode(self):
        port = h.free_port()
        env = {
            "SRS_LISTEN": f"127.0.0.1:{port}",
            "SRS_PID": os.path.join(self.dir, "srs.pid"),
            "SRS_LOG_TANK": "console",
        }
        proc = self.start(["-e"], env=env, port=port)
        self.wait_pid_file(os.path.join(self.dir, "srs.pid"), proc)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.wait_exit(proc), 0)
        out = proc.stdout.read().decode()
        self.assertIn("[Trace]", out)
        self.assertIn(f"127.0.0.1:{port}", out)


# An SRS log line: [date time.ms][Level][pid][cid] message
SRS_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\]\[(\w+)\]\[\d+\]\[\w+\] (.*)$")


def busy_port(test) -> int:
    """A loopback port something else listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", h.free_port()))
    sock.listen(1)
    test.addCleanup(sock.close)
    return sock.getsockname()[1]


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


class TwistdTests(unittest.TestCase):
    timeout = 120

    def twistd(self, *args, env=None):
        d = tempfile.mkdtemp(prefix="srs-twistd-")
        self.addCleanup(shutil.rmtree, d, True)
        self.pid_file = os.path.join(d, "twistd.pid")
        proc = subprocess.Popen(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
             "-n", "--pidfile", self.pid_file, "srs", *args],
            cwd=d,
            env=dict(os.environ, PYTHONPATH=h.ROOT, **(env or {})),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.addCleanup(h.stop_process, proc)
        return proc

    def test_twistd_srs_prints_srs_lines_with_the_urls(self):
        rtmp, http, api = h.free_port(), h.free_port(), h.free_port()
        proc = self.twistd(env={"SRS_LISTEN": f"127.0.0.1:{rtmp}", "SRS_HTTP_SERVER_LISTEN": str(http),
                                "SRS_HTTP_API_LISTEN": str(api)})
        h.wait_port(rtmp, proc=proc)
        # twistd binds the ports before the services start and log: wait for the API to answer
        # (the reactor runs, so every start line is out) before stopping it.
        h.wait_for(lambda: _answers(f"http://127.0.0.1:{api}/api/v1/versions"), h.WAIT,
                   message="the API does not answer")
        proc.send_signal(signal.SIGTERM)
        proc.wait(h.WAIT)
        lines = proc.stdout.read().decode().splitlines()
        # Every line as `srs` prints it: no second (twistd) timestamp around it.
        self.assertEqual([line for line in lines if not SRS_LINE.match(line)], [], lines)
        messages = [SRS_LINE.match(line).group(2) for line in lines]
        self.assertTrue(messages[0].startswith("srs-twisted started"), messages)
        self.assertIn(f"RTMP listen=127.0.0.1:{rtmp}: publish and play rtmp://127.0.0.1:{rtmp}/live/livestream", messages)
        self.assertIn(f"HTTP-FLV: play http://127.0.0.1:{http}/live/livestream.flv, "
                      f"over WebSocket ws://127.0.0.1:{http}/live/livestream.flv", messages)
        self.assertIn(f"HTTP API listen={api}: http://127.0.0.1:{api}/api/v1/versions", messages)

    def test_twistd_busy_port_is_one_error_line_and_exit_1(self):
        port = busy_port(self)
        proc = self.twistd(env={"SRS_LISTEN": f"127.0.0.1:{port}", "SRS_HTTP_SERVER_LISTEN": str(h.free_port()),
                                "SRS_HTTP_API_LISTEN": str(h.free_port())})
        self.assertEqual(proc.wait(h.WAIT), 1)
        lines = proc.stdout.read().decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(SRS_LINE.match(lines[0]).groups(),
                         ("Error", f"start server failed: rtmp-0 cannot listen on 127.0.0.1:{port}: Address already in use"))
        self.assertFalse(os.path.exists(self.pid_file))

    def test_twistd_max_connections_beyond_the_file_limit_is_one_error_line(self):
        proc = self.twistd(env={"SRS_LISTEN": f"127.0.0.1:{h.free_port()}", "SRS_MAX_CONNECTIONS": str(10**12)})
        self.assertEqual(proc.wait(h.WAIT), 1)
        lines = proc.stdout.read().decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        level, message = SRS_LINE.match(lines[0]).groups()
        self.assertEqual(level, "Error")
        self.assertTrue(message.startswith(f"start server failed: max_connections={10**12} needs"), message)
        self.assertFalse(os.path.exists(self.pid_file))


class BusyPortTests(unittest.TestCase):
    timeout = 120

    def test_srs_busy_port_is_one_error_line_and_exit_1(self):
        port = busy_port(self)
        d = tempfile.mkdtemp(prefix="srs-cli-")
        self.addCleanup(shutil.rmtree, d, True)
        env = {"SRS_LISTEN": f"127.0.0.1:{port}", "SRS_PID": os.path.join(d, "srs.pid"), "SRS_LOG_TANK": "console"}
        out = srs("-e", env=env, timeout=h.WAIT)
        self.assertEqual(out.returncode, 1)
        lines = (out.stdout + out.stderr).splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(SRS_LINE.match(lines[0]).groups(),
                         ("Error", f"start server failed: rtmp-0 cannot listen on 127.0.0.1:{port}: Address already in use"))
