"""The one backoff shared by the cluster supervisor and the process
supervisor: delays, jitter, reset after a stable run, clean runs that do not
grow the wait, the planned call and its cancellation."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial import unittest

from srs_twisted.backoff import MAX_DELAY, Backoff, backoff_delay


def mid():
    return 0.5  # the middle of the jitter range: no spread


class BackoffDelayTests(unittest.TestCase):
    def test_doubles_from_one_second_to_thirty(self):
        self.assertEqual([backoff_delay(n, mid) for n in range(1, 8)], [1, 2, 4, 8, 16, 30, 30])
        self.assertEqual(backoff_delay(100, mid), MAX_DELAY)

    def test_no_overflow_after_thousands_of_failures(self):
        # 2.0 ** 1024 raises OverflowError; the wait is simply the maximum.
        self.assertEqual(backoff_delay(5000), MAX_DELAY)
        self.assertEqual(backoff_delay(10**9, jitter=0.2, rng=mid), MAX_DELAY)

    def test_jitter_spreads_by_the_fraction(self):
        self.assertAlmostEqual(backoff_delay(3, lambda: 0.0, jitter=0.2), 3.2)
        self.assertAlmostEqual(backoff_delay(3, lambda: 1.0, jitter=0.2), 4.8)
        self.assertEqual(backoff_delay(3, lambda: 0.0), 4)  # no jitter by default

    def test_other_initial_and_cap(self):
        self.assertEqual([backoff_delay(n, initial=0.5, maximum=3) for n in range(1, 6)], [0.5, 1, 2, 3, 3])


class BackoffTests(unittest.TestCase):
    def setUp(self):
        self.clock = Clock()
        self.calls = []
        self.b = Backoff(self.clock, stable_after=10)

    def waits(self, n, **kw):
        out = []
        for _ in range(n):
            out.append(self.b.retry(self.calls.append, "x", **kw))
            self.clock.advance(out[-1])
        return out

    def test_failures_double_the_wait_and_the_call_runs_after_it(self):
        self.assertEqual(self.b.delay, 1)
        self.b.retry(self.calls.append, "x")
        self.assertTrue(self.b.pending)
        self.clock.advance(0.99)
        self.assertEqual(self.calls, [])
        self.clock.advance(0.01)
        self.assertEqual(self.calls, ["x"])
        self.assertFalse(self.b.pending)
        self.assertEqual(self.waits(6), [2, 4, 8, 16, 30, 30])
        self.assertEqual(self.b.failures, 7)

    def test_a_stable_run_starts_over(self):
        self.waits(3, ran=0.0)
        self.assertEqual(self.b.delay, 8)
        self.assertEqual(self.b.retry(self.calls.append, "x", ran=10.0), 1)
        self.assertEqual(self.b.failures, 1)
        self.assertEqual(self.b.delay, 2)

    def test_a_run_that_never_came_up_does_not_reset(self):
        self.waits(2)
        self.assertEqual(self.b.retry(self.calls.append, "x", ran=None), 4)

    def test_a_clean_run_keeps_the_wait(self):
        self.waits(2)
        self.assertEqual(self.waits(3, failed=False), [4, 4, 4])
        self.assertEqual(self.b.failures, 2)

    def test_cancel_drops_the_planned_call(self):
        self.b.retry(self.calls.append, "x")
        self.b.cancel()
        self.assertFalse(self.b.pending)
        self.clock.advance(60)
        self.assertEqual(self.calls, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_new_retry_replaces_the_planned_one(self):
        self.b.retry(self.calls.append, "a")
        self.b.retry(self.calls.append, "b")
        self.clock.advance(60)
        self.assertEqual(self.calls, ["b"])

    def test_jitter_uses_the_rng(self):
        b = Backoff(self.clock, jitter=0.2, rng=lambda: 1.0)
        self.assertAlmostEqual(b.retry(self.calls.append, "x"), 1.2)
        self.assertEqual(b.delay, 2)  # without jitter
        b.cancel()
