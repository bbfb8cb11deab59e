"""SRS's circuit breaker: water levels from CPU samples (srs_app_threads.cpp's
on_timer), new players refused at the critical level, publishers never."""

from __future__ import annotations

from twisted.trial import unittest

from srs_twisted.breaker import CircuitBreaker
from srs_twisted.errors import Denied, Overloaded
from srs_twisted.policy.build import build_policy
from srs_twisted.policy.overload import OverloadPolicy

from .common import make_client, make_ctx


def breaker(body: str = "") -> CircuitBreaker:
    return make_ctx(f"circuit_breaker {{ {body} }}\nvhost __defaultVhost__ {{}}").breaker


class LevelTests(unittest.TestCase):
    def levels(self, b, samples):
        out = []
        for percent in samples:
            b.sample(percent)
            out.append(b.level())
        return out

    def test_defaults_are_srs(self):
        c = breaker().config
        self.assertEqual((c.enabled, c.high_threshold, c.high_pulse, c.critical_threshold, c.critical_pulse,
                          c.dying_threshold, c.dying_pulse), (True, 90, 2, 95, 1, 99, 5))

    def test_high_holds_for_high_pulse_samples_below(self):
        # Above 90: high for high_pulse=2 more samples after the CPU falls.
        self.assertEqual(self.levels(breaker(), [50, 91, 50, 50, 50]),
                         ["normal", "high", "high", "normal", "normal"])

    def test_critical_implies_high_and_holds_critical_pulse(self):
        b = breaker()
        self.assertEqual(self.levels(b, [96, 80]), ["critical", "high"])
        self.assertTrue(b.high)
        self.assertEqual(self.levels(breaker("critical_pulse 3;"), [96, 10, 10, 10]),
                         ["critical", "critical", "critical", "normal"])

    def test_dying_needs_dying_pulse_samples_in_a_row_and_ends_at_once(self):
        b = breaker("dying_pulse 3;")
        self.assertEqual(self.levels(b, [100, 100, 50, 100, 100, 100]),
                         ["critical", "critical", "high", "critical", "critical", "dying"])
        self.assertTrue(b.critical and b.high)
        b.sample(98)
        self.assertEqual(b.level(), "critical")

    def test_threshold_is_exclusive(self):
        self.assertEqual(self.levels(breaker(), [90, 95]), ["normal", "high"])

    def test_disabled_never_breaks(self):
        b = breaker("enabled off;")
        self.assertEqual(self.levels(b, [100] * 7), ["normal"] * 7)
        self.assertIsNone(b.check_play())

    def test_a_transition_is_logged_once(self):
        lines = []
        b = breaker()
        b.log = lines.append
        for percent in (10, 97, 97, 50, 50, 50):
            b.sample(percent)
        self.assertEqual([line.split("level ")[1].split(" (")[0] for line in lines],
                         ["normal -> critical", "critical -> high", "high -> normal"])
        self.assertIn("cpu=97.00%", lines[0])


class PolicyTests(unittest.TestCase):
    def ctx(self):
        return make_ctx("vhost __defaultVhost__ {}")

    def test_new_players_refused_at_critical_only(self):
        ctx = self.ctx()
        policy = OverloadPolicy(ctx)
        ctx.breaker.sample(92)  # high: players still welcome
        self.successResultOf(policy.on_play(make_client(ctx)))
        ctx.breaker.sample(96)
        failure = self.failureResultOf(policy.on_play(make_client(ctx)), Overloaded)
        self.assertIn("above critical_threshold 95%", failure.getErrorMessage())
        self.assertEqual(ctx.breaker.refused, 1)
        self.successResultOf(policy.on_publish(make_client(ctx)))

    def test_first_in_the_servers_chain(self):
        ctx = self.ctx()
        chain = build_policy(ctx)
        self.assertIsInstance(chain.policies[0], OverloadPolicy)
        ctx.breaker.sample(100)
        self.failureResultOf(chain.on_play(make_client(ctx)), Denied)
        ctx.breaker.sample(10)
        ctx.breaker.sample(10)
        self.successResultOf(chain.on_play(make_client(ctx)))
