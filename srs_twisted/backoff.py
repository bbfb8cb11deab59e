"""Retry later, waiting longer after each failure: the one backoff that
everything which reconnects or restarts uses (forwarders and edge pulls in
:mod:`srs_twisted.cluster.supervise`, FFmpeg and ``exec`` children in
:mod:`srs_twisted.process.supervisor`).

The wait before a retry is ``initial * factor**n``, capped at ``maximum``,
where ``n`` counts the failures since the last reset, then spread by
+-``jitter`` (a fraction).  A run that lasted ``stable_after`` seconds or more
was healthy: the count starts over.  Timers run on the clock given, so tests
drive them with :class:`twisted.internet.task.Clock`.
"""

from __future__ import annotations

import random
from typing import Callable

# 1 s, 2 s, 4 s ... capped at 30 s.
INITIAL_DELAY = 1.0
MAX_DELAY = 30.0
FACTOR = 2.0
# Past this many failures the wait is the maximum anyway; bounding the
# exponent keeps factor**n from overflowing after hours of failures.
_MAX_EXPONENT = 64


def backoff_delay(failures: int, rng: Callable[[], float] = random.random,
                  initial: float = INITIAL_DELAY, maximum: float = MAX_DELAY,
                  factor: float = FACTOR, jitter: float = 0.0) -> float:
    """The wait before the attempt that follows ``failures`` failures in a row
    (``failures`` >= 1): ``initial * factor**(failures-1)``, capped at
    ``maximum``, then spread by +-``jitter`` (a fraction)."""
    exponent = min(_MAX_EXPONENT, max(0, failures - 1))
    base = min(maximum, initial * factor ** exponent)
    if not jitter:
        return base
    return max(0.0, base * (1.0 + jitter * (2.0 * rng() - 1.0)))


class Backoff:
    """One retry timer with its failure count.

    :meth:`retry` plans ``call(*args)`` after the current wait and then, if
    the run failed, counts one more failure; :meth:`cancel` drops the planned
    call.  ``failures`` is the count, ``delay`` the wait (without jitter) the
    next :meth:`retry` would use."""

    def __init__(
        self,
        clock,
        *,
        initial: float = INITIAL_DELAY,
        maximum: float = MAX_DELAY,
        factor: float = FACTOR,
        jitter: float = 0.0,
        stable_after: float = 5.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.clock = clock
        self.initial, self.maximum, self.factor, self.jitter = initial, maximum, factor, jitter
        self.stable_after = stable_after
        self.rng = rng
        self.failures = 0
        self._call = None

    @property
    def delay(self) -> float:
        return backoff_delay(self.failures + 1, self.rng, self.initial, self.maximum, self.factor)

    @property
    def pending(self) -> bool:
        """Whether a retry is planned."""
        return self._call is not None

    def retry(self, call: Callable, *args, ran: float | None = None, failed: bool = True) -> float:
        """Plan ``call(*args)`` and return the wait.  ``ran`` is how long the
        run that just ended lasted (None when it never came up): at least
        ``stable_after`` resets the count first.  A run that did not fail (a
        clean exit) is retried without growing the wait."""
        self.cancel()
        if ran is not None and ran >= self.stable_after:
            self.failures = 0
        wait = backoff_delay(self.failures + 1, self.rng, self.initial, self.maximum, self.factor, self.jitter)
        if failed:
            self.failures += 1
        self._call = self.clock.callLater(wait, self._fire, call, args)
        return wait

    def cancel(self) -> None:
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    def _fire(self, call: Callable, args: tuple) -> None:
        self._call = None
        call(*args)


__all__ = ["Backoff", "backoff_delay", "INITIAL_DELAY", "MAX_DELAY", "FACTOR"]
