"""ProcessSupervisor and WorkersService with a fake spawner and task.Clock."""

from __future__ import annotations

import os
import signal
import tempfile

from twisted.internet import task
from twisted.trial import unittest

from srs_twisted import log
from srs_twisted.process.supervisor import ProcessSupervisor, WorkersService

from .fakes import FakeSpawner


class Base(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.spawner = FakeSpawner()
        self.events = []
        self.addCleanup(log.capture(self.events))

    def sup(self, argv=("ffmpeg", "-i", "x"), **kw):
        kw.setdefault("spawner", self.spawner)
        return ProcessSupervisor(list(argv), clock=self.clock, **kw)

    def messages(self):
        return [e[2] for e in self.events]


class StartTests(Base):
    def test_start_spawns_the_command(self):
        s = self.sup(cwd="/tmp")
        s.start()
        self.assertEqual(len(self.spawner.processes), 1)
        p = self.spawner.last
        self.assertEqual(p.executable, "ffmpeg")
        self.assertEqual(p.args, ["ffmpeg", "-i", "x"])
        self.assertEqual(p.path, "/tmp")
        self.assertEqual((p.childFDs[1], p.childFDs[2]), ("r", "r"))
        self.assertIsInstance(p.childFDs[0], int)  # stdin is /dev/null, like SRS
        self.assertEqual(s.pid, 1000)
        self.assertEqual(s.pids, [1000])
        self.assertTrue(s.running)
        s.start()  # no second child
        self.assertEqual(len(self.spawner.processes), 1)

    def test_env_defaults_to_ours(self):
        self.sup().start()
        self.assertEqual(self.spawner.last.env.get("PATH"), os.environ.get("PATH"))

    def test_empty_argv_is_refused(self):
        self.assertRaises(ValueError, self.sup, argv=())


class RestartTests(Base):
    def test_backoff_doubles_to_thirty_seconds(self):
        s = self.sup()
        s.start()
        waits = []
        for _ in range(8):
            self.spawner.last.exit(1)
            count = len(self.spawner.processes)
            waited = 0.0
            while len(self.spawner.processes) == count:
                self.clock.advance(0.5)
                waited += 0.5
                self.assertLess(waited, 60)
            waits.append(waited)
        self.assertEqual(waits, [1, 2, 4, 8, 16, 30, 30, 30])
        self.assertEqual(s.exits, 8)
        self.assertEqual(len(s.pids), 9)

    def test_not_before_the_delay(self):
        s = self.sup()
        s.start()
        self.spawner.last.exit(1)
        self.clock.advance(0.99)
        self.assertEqual(len(self.spawner.processes), 1)
        self.assertFalse(s.running)
        self.assertTrue(s.active)
        self.clock.advance(0.01)
        self.assertEqual(len(self.spawner.processes), 2)

    def test_long_run_resets_the_backoff(self):
        s = self.sup()
        s.start()
        for wait in (1, 2, 4):
            self.spawner.last.exit(1)
            self.clock.advance(wait)
        self.assertEqual(s.delay, 8)
        self.clock.advance(10)  # ran fine for a while
        self.spawner.last.exit(1)
        self.clock.advance(1)
        self.assertEqual(len(self.spawner.processes), 5)
        self.assertEqual(s.delay, 2)

    def test_clean_exit_restarts_without_growing(self):
        s = self.sup()
        s.start()
        for _ in range(3):
            self.spawner.last.exit(0)
            self.clock.advance(1)
        self.assertEqual(len(self.spawner.processes), 4)
        self.assertEqual(s.delay, 1)

    def test_killed_child_is_restarted_with_a_new_pid(self):
        s = self.sup()
        s.start()
        self.spawner.last.exit(signal=signal.SIGKILL)
        self.clock.advance(1)
        self.assertEqual(s.pids, [1000, 1001])
        self.assertIn("signal 9", " ".join(self.messages()))

    def test_no_restart_when_asked(self):
        s = self.sup(restart=False)
        s.start()
        self.spawner.last.exit(1)
        self.clock.advance(60)
        self.assertEqual(len(self.spawner.processes), 1)
        self.assertFalse(s.active)

    def test_spawn_failure_is_retried_with_backoff(self):
        self.spawner.fail_with = OSError(2, "No such file")
        s = self.sup()
        s.start()
        self.assertFalse(s.running)
        self.clock.advance(1)
        self.clock.advance(2)
        self.assertEqual(s.starts, 3)
        self.spawner.fail_with = None
        self.clock.advance(4)
        self.assertTrue(s.running)
        self.assertTrue(any("start failed" in m for m in self.messages()))


class StopTests(Base):
    def test_sigterm_then_sigkill_after_grace(self):
        s = self.sup()
        s.start()
        p = self.spawner.last
        d = s.stop()
        self.assertEqual(p.signals, [signal.SIGTERM])
        self.assertNoResult(d)
        self.clock.advance(0.99)
        self.assertEqual(p.signals, [signal.SIGTERM])
        self.clock.advance(0.01)
        self.assertEqual(p.signals, [signal.SIGTERM, signal.SIGKILL])
        self.assertNoResult(d)
        p.exit(signal=signal.SIGKILL)
        self.successResultOf(d)
        self.assertFalse(s.running)
        self.clock.advance(100)
        self.assertEqual(len(self.spawner.processes), 1)  # never restarted

    def test_child_that_obeys_sigterm_gets_no_sigkill(self):
        self.spawner.exit_on = {signal.SIGTERM: None}
        s = self.sup()
        s.start()
        p = self.spawner.last
        d = s.stop()
        self.successResultOf(d)
        self.clock.advance(5)
        self.assertEqual(p.signals, [signal.SIGTERM])

    def test_custom_grace(self):
        s = self.sup(grace=3)
        s.start()
        s.stop()
        self.clock.advance(2.9)
        self.assertEqual(self.spawner.last.signals, [signal.SIGTERM])
        self.clock.advance(0.1)
        self.assertEqual(self.spawner.last.signals, [signal.SIGTERM, signal.SIGKILL])

    def test_two_stops_share_one_kill(self):
        s = self.sup()
        s.start()
        d1, d2 = s.stop(), s.stop()
        self.assertEqual(self.spawner.last.signals, [signal.SIGTERM])
        self.spawner.last.exit(signal=signal.SIGTERM)
        self.successResultOf(d1)
        self.successResultOf(d2)

    def test_stop_while_waiting_to_restart(self):
        s = self.sup()
        s.start()
        self.spawner.last.exit(1)
        self.successResultOf(s.stop())
        self.clock.advance(60)
        self.assertEqual(len(self.spawner.processes), 1)

    def test_stop_before_start(self):
        self.successResultOf(self.sup().stop())

    def test_start_during_stop_restarts_after_reap(self):
        s = self.sup()
        s.start()
        d = s.stop()
        s.start()
        self.spawner.last.exit(signal=signal.SIGTERM)
        self.successResultOf(d)
        self.assertEqual(len(self.spawner.processes), 2)
        self.assertTrue(s.running)

    def test_stopping_polls_for_the_reap(self):
        # The server's reactor has no SIGCHLD handler: the supervisor polls.
        s = self.sup()
        s.start()
        p = self.spawner.last
        self.clock.pump([0.5, 0.5])
        self.assertEqual(p.reaps, 2)
        s.stop()
        self.clock.pump([0.05] * 10)
        self.assertGreaterEqual(p.reaps, 10)

    def test_gives_up_if_never_reaped(self):
        s = self.sup()
        s.start()
        d = s.stop()
        self.clock.pump([1, 4.9])
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.successResultOf(d)
        self.assertTrue(any("not reaped" in m for m in self.messages()))

    def test_stale_callbacks_of_an_old_run_are_ignored(self):
        s = self.sup()
        s.start()
        old = self.spawner.last
        old.exit(1)
        self.clock.advance(1)
        old.proto.processEnded(None)
        old.proto.errReceived(b"late line\n")
        self.assertTrue(s.running)
        self.assertEqual(s.tail(), [])


class OutputTests(Base):
    def test_lines_are_split_and_bounded(self):
        s = self.sup(keep_lines=3)
        s.start()
        p = self.spawner.last
        p.err(b"one\ntw")
        p.err(b"o\r\nthree\rfour\n\nfive")
        self.assertEqual(s.tail(), ["two", "three", "four"])
        p.exit(0)
        self.assertEqual(s.tail(), ["three", "four", "five"])

    def test_logging_is_rate_limited(self):
        s = self.sup()
        s.start()
        p = self.spawner.last
        p.err(b"".join(b"line %d\n" % i for i in range(100)))
        logged = [m for m in self.messages() if "]: line" in m]
        self.assertEqual(len(logged), 20)
        self.clock.advance(5)
        p.err(b"later\n")
        self.assertTrue(any("(80 lines not logged)" in m for m in self.messages()))
        self.assertTrue(any(m.endswith("]: later") for m in self.messages()))
        self.assertEqual(len(s.lines), 50)

    def test_lines_carry_the_context_id(self):
        s = self.sup(log=log.ContextLogger("cid12345"))
        s.start()
        self.spawner.last.err(b"hello\n")
        self.assertIn(("cid12345", "ffmpeg[1000]: hello"), [(e[1], e[2]) for e in self.events])

    def test_long_lines_are_cut(self):
        s = self.sup()
        s.start()
        self.spawner.last.err(b"x" * 10000 + b"\n")
        self.assertEqual(len(s.tail()[0]), 2048)

    def test_failure_logs_the_tail(self):
        s = self.sup()
        s.start()
        self.spawner.last.err(b"Unknown encoder 'libfoo'\n")
        self.spawner.last.exit(1)
        self.assertTrue(any("pid=1000 exited with code 1" in m and "libfoo" in m for m in self.messages()))

    def test_stdout_callback_takes_raw_bytes(self):
        got = []
        s = self.sup(on_stdout=got.append)
        s.start()
        self.spawner.last.out(b"\xff\xd8abc")
        self.assertEqual(got, [b"\xff\xd8abc"])
        self.assertEqual(s.tail(), [])

    def test_log_file_gets_the_child_fds(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, tmp)
        path = os.path.join(tmp, "sub", "ffmpeg-ingest.log")
        s = self.sup(log_file=path, log=log.ContextLogger("abc"))
        s.start()
        fds = self.spawner.last.childFDs
        self.assertIsInstance(fds[1], int)
        self.assertEqual(fds[1], fds[2])
        with open(path) as f:
            self.assertIn("cid=abc, cli: ffmpeg -i x", f.read())
        with open(path, "a") as f:
            f.write("frame=1\rError opening output\n")
        self.spawner.last.exit(1)
        self.assertTrue(any("Error opening output" in m for m in self.messages()))

    def test_redirect_files(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, tmp)
        s = self.sup(stdout_file=os.path.join(tmp, "o"))
        s.start()
        fds = self.spawner.last.childFDs
        self.assertIsInstance(fds[1], int)
        self.assertEqual(fds[2], "r")
        self.assertTrue(os.path.exists(os.path.join(tmp, "o")))


class WorkersServiceTests(Base):
    def test_stop_service_stops_every_child(self):
        w = WorkersService(self.clock, self.spawner)
        w.startService()
        a = w.supervise(["a"])
        b = w.supervise(["b"])
        self.assertEqual(sorted(w.pids()), [1000, 1001])
        d = w.stopService()
        self.assertNoResult(d)
        self.assertEqual([p.signals for p in self.spawner.processes], [[signal.SIGTERM]] * 2)
        self.spawner.processes[0].exit(signal=signal.SIGTERM)
        self.assertNoResult(d)
        self.clock.advance(1)
        self.spawner.processes[1].exit(signal=signal.SIGKILL)
        self.successResultOf(d)
        self.assertFalse(a.running or b.running)
        self.assertEqual(w.supervisors, set())
        self.assertIsNone(w.supervise(["c"]))
        self.assertEqual(len(self.spawner.processes), 2)

    def test_release_forgets(self):
        w = WorkersService(self.clock, self.spawner)
        s = w.supervise(["a"])
        d = w.release(s)
        self.spawner.last.exit(signal=signal.SIGTERM)
        self.successResultOf(d)
        self.assertEqual(w.supervisors, set())
        self.successResultOf(w.release(None))

    def test_stop_service_waits_for_child_services(self):
        from twisted.application import service
        from twisted.internet import defer

        w = WorkersService(self.clock, self.spawner)
        slow = defer.Deferred()

        class Child(service.Service):
            def stopService(self):
                super().stopService()
                return slow

        Child().setServiceParent(w)
        w.startService()
        d = w.stopService()
        self.assertNoResult(d)
        slow.callback(None)
        self.successResultOf(d)
