"""The supervisor's life cycle with a fake reactor: start, restart backoff, stop."""

import shutil

from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial import unittest

from srs_twisted import config
from srs_twisted.workers import supervisor as sup_mod
from srs_twisted.workers.supervisor import RESTART_FIRST, RESTART_MAX, RESTART_RESET_AFTER, SupervisorService


class _Transport:
    def __init__(self, pid):
        self.pid = pid
        self.signals = []

    def signalProcess(self, name):
        self.signals.append(name)


class _Reactor(MemoryReactorClock):
    def __init__(self):
        super().__init__()
        self.spawned = []

    def spawnProcess(self, proto, executable, args, env=None, childFDs=None, **kw):
        transport = _Transport(1000 + len(self.spawned))
        self.spawned.append((proto, args, env, transport))
        proto.makeConnection(transport)
        return transport

    def listenUNIX(self, address, factory, backlog=50, mode=0o666, wantPID=0):
        class _Port:
            def stopListening(self):
                pass

        return _Port()


class _Exit:
    def __init__(self, code=None, signal=None):
        self.exitCode, self.signal = code, signal


def ended(child, code=None, signal=None):
    child.processEnded(Failure(_Exit(code, signal)))


class Supervisor(unittest.TestCase):
    def setUp(self):
        self.patch(sup_mod, "ports_to_check", lambda conf, count: [])
        self.reactor = _Reactor()
        conf = config.load_string("workers 2; vhost a {}", environ={})
        self.sup = SupervisorService(conf, self.reactor, 2, "/etc/srs.conf")
        self.sup.startService()
        self.addCleanup(shutil.rmtree, self.sup.rundir, True)
        self.sup._spawn_all()

    def hello_all(self):
        for index, child in list(self.sup.children.items()):
            self.sup.worker_hello(index, child.pid, {"rtmp": f"127.0.0.1:{4000 + index}"}, object())

    def test_workers_spawned_with_their_index_and_the_config(self):
        self.assertEqual(len(self.reactor.spawned), 2)
        for i, (_proto, args, env, _t) in enumerate(self.reactor.spawned):
            self.assertEqual(args[-3:], ["srs_twisted.workers.worker", "-c", "/etc/srs.conf"])
            self.assertEqual(env["SRSTW_WORKER_INDEX"], str(i))
            self.assertEqual(env["SRSTW_WORKER_CONTROL"], self.sup.control_path)

    def test_started_once_every_worker_said_hello(self):
        got = []
        self.sup.started.addCallback(got.append)
        self.sup.worker_hello(0, 1000, {}, object())
        self.assertEqual(got, [])
        self.sup.worker_hello(1, 1001, {}, object())
        self.assertEqual(got, [self.sup])
        self.assertEqual([p["index"] for p in self.sup.peers()], [0, 1])

    def test_a_worker_dying_while_starting_fails_the_start(self):
        failures = []
        self.sup.started.addErrback(failures.append)
        ended(self.sup.children[1], code=1)
        self.assertEqual(len(failures), 1)
        self.reactor.advance(RESTART_MAX)
        self.assertEqual(len(self.reactor.spawned), 2)  # no restart

    def test_restart_backoff_doubles_then_resets(self):
        self.hello_all()
        delays = []
        for _ in range(6):
            child = self.sup.children[0]
            ended(child, signal=9)
            self.assertNotIn(0, self.sup.children)
            before = len(self.reactor.spawned)
            delay = 0.0
            while len(self.reactor.spawned) == before:
                self.reactor.advance(0.25)
                delay += 0.25
            delays.append(delay)
        self.assertEqual(delays, [RESTART_FIRST, 1.0, 2.0, 4.0, 8.0, RESTART_MAX])
        self.reactor.advance(RESTART_RESET_AFTER)  # a long life: the next restart is quick again
        ended(self.sup.children[0], code=1)
        self.reactor.advance(RESTART_FIRST)
        self.assertIn(0, self.sup.children)

    def test_a_dead_workers_streams_leave_the_directory(self):
        control = object()
        self.sup.worker_hello(1, 1001, {}, control)
        self.sup.table.register("v/live/s", {"node": "w1"})
        self.sup.worker_gone(1, control)
        self.assertIsNone(self.sup.table.lookup("v/live/s"))
        self.assertEqual(self.sup.peers(), [])

    def test_a_live_worker_is_asked_to_release_a_dead_workers_cluster_records(self):
        from twisted.internet import defer

        from srs_twisted.workers.control import Orphaned

        class Control:
            def __init__(self):
                self.calls = []

            def callRemote(self, command, **kw):
                self.calls.append((command, kw))
                return defer.succeed({})

        dead, live = Control(), Control()
        self.sup.worker_hello(0, 1000, {}, live)
        self.sup.worker_hello(1, 1001, {}, dead)
        self.sup.table.register("v/live/s", {"node": "w1"})
        self.sup.table.register("v/live/t", {"node": "w0"})
        self.sup.worker_gone(1, dead)
        self.assertEqual(live.calls, [(Orphaned, {"keys": '["v/live/s"]'})])
        self.assertEqual(dead.calls, [])
        self.sup.worker_gone(0, live)  # nobody left to ask: nothing sent
        self.assertEqual(len(live.calls), 1)

    def test_signals_reach_every_worker_and_stop_kills_the_stubborn(self):
        self.hello_all()
        self.sup.reload(None)
        self.sup.reopen()
        transports = [t for _p, _a, _e, t in self.reactor.spawned]
        self.assertEqual([t.signals for t in transports], [["HUP", "USR1"]] * 2)
        done = self.sup.stopService()
        self.assertEqual([t.signals[-1] for t in transports], ["TERM", "TERM"])
        ended(self.sup.children[0], code=0)
        self.reactor.advance(sup_mod.KILL_AFTER)
        self.assertEqual(transports[1].signals[-1], "KILL")
        ended(self.sup.children[1], signal=9)
        self.assertTrue(done.called)
        self.reactor.advance(RESTART_MAX)
        self.assertEqual(len(self.reactor.spawned), 2)  # stopping: no restart
