"""The `srs` command: flags, config check, env-only mode, pid file, signals."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

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

    def test_unknown_flag(self):
        out = srs("-x")
        self.assertEqual(out.returncode, 2)


class RunTests(unittest.TestCase):
    timeout = 60

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

    def wait_exit(self, proc, within):
        start = time.monotonic()
        proc.wait(within + 5)
        return time.monotonic() - start

    def test_work_dir_pid_and_sigterm(self):
        port = h.free_port()
        proc = self.start(["-c", self.conf(port)], port=port)
        pid_file = os.path.join(self.dir, "objs", "srs.pid")
        with open(pid_file) as f:
            self.assertEqual(int(f.read()), proc.pid)
        proc.send_signal(signal.SIGTERM)
        self.assertLess(self.wait_exit(proc, 3), 3.0)
        self.assertEqual(proc.returncode, 0)
        self.assertFalse(os.path.exists(pid_file))

    def test_sigint_exits_fast(self):
        port = h.free_port()
        proc = self.start(["-c", self.conf(port)], port=port)
        proc.send_signal(signal.SIGINT)
        self.assertLess(self.wait_exit(proc, 3), 3.0)
        self.assertEqual(proc.returncode, 0)

    def test_sigquit_is_graceful(self):
        port = h.free_port()
        proc = self.start(["-c", self.conf(port, "grace_final_wait 500;")], port=port)
        proc.send_signal(signal.SIGQUIT)
        self.wait_exit(proc, 5)
        self.assertEqual(proc.returncode, 0)
        with open(os.path.join(self.dir, "objs", "srs.log")) as f:
            self.assertIn("graceful quit", f.read())

    def test_sighup_reloads_and_sigusr1_reopens_log(self):
        port = h.free_port()
        proc = self.start(["-c", self.conf(port)], port=port)
        log = os.path.join(self.dir, "objs", "srs.log")
        os.rename(log, log + ".1")
        proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while not os.path.exists(log) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(os.path.exists(log), "SIGUSR1 did not reopen the log file")
        proc.send_signal(signal.SIGHUP)
        text = ""
        while time.monotonic() < deadline:
            if os.path.exists(log):
                with open(log) as f:
                    text = f.read()
                if "reload config ok" in text:
                    break
            time.sleep(0.05)
        self.assertIn("reload config ok", text)

    def test_env_only_mode(self):
        port = h.free_port()
        env = {
            "SRS_LISTEN": f"127.0.0.1:{port}",
            "SRS_PID": os.path.join(self.dir, "srs.pid"),
            "SRS_LOG_TANK": "console",
        }
        proc = self.start(["-e"], env=env, port=port)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "srs.pid")))
        proc.send_signal(signal.SIGTERM)
        self.wait_exit(proc, 3)
        out = proc.stdout.read().decode()
        self.assertIn("[Trace]", out)
        self.assertIn(f"127.0.0.1:{port}", out)


class TwistdTests(unittest.TestCase):
    timeout = 60

    def test_twistd_srs_on_defaults_serves_rtmp(self):
        d = tempfile.mkdtemp(prefix="srs-twistd-")
        self.addCleanup(shutil.rmtree, d, True)
        port = h.free_port()
        twistd = subprocess.Popen(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
             "-n", "--pidfile", os.path.join(d, "twistd.pid"), "srs"],
            cwd=d,
            env=dict(os.environ, PYTHONPATH=h.ROOT, SRS_LISTEN=f"127.0.0.1:{port}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.addCleanup(h.stop_process, twistd)
        h.wait_port(port, proc=twistd)
        twistd.send_signal(signal.SIGTERM)
        twistd.wait(10)
        out = twistd.stdout.read().decode()
        self.assertIn("srs-twisted started", out)
