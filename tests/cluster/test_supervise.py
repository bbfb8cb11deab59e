"""Supervisor: backoff timing, reset after a healthy connection, start
timeout, clean stop (no connection, no timer left)."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest

from srs_twisted.cluster.supervise import Supervisor

from .fakes import FakeConnector


def mid(_=None):
    return 0.5  # no jitter


class SupervisorTests(unittest.TestCase):
    def setUp(self):
        self.clock = Clock()
        self.connector = FakeConnector()
        self.events = []
        self.sup = Supervisor(
            self.clock, lambda: self.connector(None, "t"), what="test", rng=mid,
            on_connected=lambda c: self.events.append(("up", c)), on_lost=lambda c: self.events.append(("down", c)),
        )

    def test_retries_with_exponential_backoff(self):
        self.sup.start()
        times = []
        for _ in range(7):
            times.append(self.clock.seconds())
            self.connector.last.fail()
            delay = self.clock.getDelayedCalls()[0].getTime() - self.clock.seconds()
            self.clock.advance(delay)
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertEqual(gaps, [1, 2, 4, 8, 16, 30])
        self.assertEqual(self.sup.attempts, 8)

    def test_a_stable_connection_resets_the_backoff(self):
        self.sup.start()
        for _ in range(3):
            self.connector.last.fail()
            self.clock.advance(30)
        self.assertEqual(self.sup.failures, 3)
        conn = self.connector.last.succeed()
        self.assertEqual(self.events, [("up", conn)])
        self.clock.advance(60)  # healthy for a minute
        conn.lose()
        self.assertEqual(self.events[-1], ("down", conn))
        (call,) = self.clock.getDelayedCalls()
        self.assertEqual(call.getTime() - self.clock.seconds(), 1.0)

    def test_retries_are_spread_by_twenty_percent(self):
        for rng, want in ((lambda: 0.0, 0.8), (lambda: 1.0, 1.2)):
            clock = Clock()
            sup = Supervisor(clock, lambda: defer.fail(ValueError("down")), rng=rng)
            sup.start()
            (call,) = clock.getDelayedCalls()
            self.assertAlmostEqual(call.getTime() - clock.seconds(), want)
            sup.stop()

    def test_hours_of_failures_stay_at_thirty_seconds(self):
        self.sup.start()
        for _ in range(1100):  # past 2.0**1024, which overflows a float
            self.connector.last.fail()
            (call,) = self.clock.getDelayedCalls()
            self.assertLessEqual(call.getTime() - self.clock.seconds(), 30)
            self.clock.advance(call.getTime() - self.clock.seconds())
        self.assertEqual(self.sup.failures, 1100)
        self.assertEqual(len(self.connector.attempts), 1101)

    def test_a_connection_that_drops_at_once_keeps_backing_off(self):
        self.sup.start()
        delays = []
        for _ in range(4):
            self.connector.last.succeed().lose()
            (call,) = self.clock.getDelayedCalls()
            delays.append(call.getTime() - self.clock.seconds())
            self.clock.advance(delays[-1])
        self.assertEqual(delays, [1, 2, 4, 8])

    def test_an_attempt_that_hangs_times_out(self):
        self.sup.start()
        self.clock.advance(self.sup.start_timeout)
        self.assertTrue(self.connector.attempts[0].cancelled)
        self.clock.advance(1.0)
        self.assertEqual(len(self.connector.attempts), 2)

    def test_stop_closes_the_connection_and_leaves_no_timer(self):
        self.sup.start()
        conn = self.connector.last.succeed()
        d = self.sup.stop()
        self.assertTrue(conn.closed)
        self.successResultOf(d)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(100)
        self.assertEqual(len(self.connector.attempts), 1)

    def test_stop_while_connecting_cancels_the_attempt(self):
        self.sup.start()
        self.successResultOf(self.sup.stop())
        self.assertTrue(self.connector.attempts[0].cancelled)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stop_while_waiting_to_retry(self):
        self.sup.start()
        self.connector.last.fail()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.successResultOf(self.sup.stop())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_connection_ready_after_stop_is_closed(self):
        from .fakes import FakeConn

        d = defer.Deferred()
        sup = Supervisor(self.clock, lambda: d, start_timeout=0)
        sup.start()
        sup._pending = None  # stop() ran while a factory that ignores cancel() was connecting
        sup.running = False
        conn = FakeConn()
        d.callback(conn)
        self.assertTrue(conn.closed)
        self.assertIsNone(sup.connection)

    def test_a_factory_that_raises_is_a_failed_attempt(self):
        calls = []

        def connect():
            calls.append(1)
            raise ValueError("bad")

        sup = Supervisor(self.clock, connect, rng=mid)
        sup.start()
        self.clock.advance(1)
        self.assertEqual(len(calls), 2)
        sup.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
