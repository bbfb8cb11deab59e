"""Keep one upstream connection alive: connect, and when it fails or drops,
connect again after an exponential backoff with jitter
(:class:`srs_twisted.backoff.Backoff`), until stopped.

Forwarders and edge pulls/pushes use it.  The connection itself comes from
a factory function returning a Deferred that fires with a *connection*: any
object with ``done`` (a Deferred that fires once it is gone) and ``close()``.
Every timer runs on the clock given (``ctx.clock``), so tests drive it with
:class:`twisted.internet.task.Clock`.
"""

from __future__ import annotations

import random
from typing import Callable

from twisted.internet import defer
from twisted.python.failure import Failure

from ..backoff import FACTOR, INITIAL_DELAY, MAX_DELAY, Backoff
from ..log import ContextLogger, log_unexpected

# Backoff between attempts: 1 s, 2 s, 4 s ... capped at 30 s, +-20 % jitter.
JITTER = 0.2
# A connection that lived this long was healthy: the next retry starts over
# from INITIAL_DELAY.
STABLE_AFTER = 5.0
# The longest an attempt may take to be ready (TCP, handshake, connect, start).
START_TIMEOUT = 15.0


def _why(failure: Failure) -> str:
    value = failure.value
    inner = getattr(value, "reasons", None)
    if inner:
        return "; ".join(_why(f) for f in inner)
    text = str(value)
    return f"{type(value).__name__}: {text}" if text else type(value).__name__


class Supervisor:
    """Runs ``connect()`` until stopped, one connection at a time.

    ``on_connected(conn)`` is called once a connection is ready and
    ``on_lost(conn)`` once it is gone (before the next attempt is planned).
    ``attempts`` counts calls to ``connect``; ``failures`` the failures in a
    row (attempts that failed and connections that dropped before
    ``stable_after`` seconds)."""

    def __init__(
        self,
        clock,
        connect: Callable[[], defer.Deferred],
        *,
        what: str = "upstream",
        log: ContextLogger | None = None,
        on_connected: Callable | None = None,
        on_lost: Callable | None = None,
        initial: float = INITIAL_DELAY,
        maximum: float = MAX_DELAY,
        factor: float = FACTOR,
        jitter: float = JITTER,
        stable_after: float = STABLE_AFTER,
        start_timeout: float = START_TIMEOUT,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.clock = clock
        self._connect = connect
        self.what = what
        self.log = log or ContextLogger()
        self.on_connected = on_connected
        self.on_lost = on_lost
        self.backoff = Backoff(
            clock, initial=initial, maximum=maximum, factor=factor, jitter=jitter, stable_after=stable_after, rng=rng
        )
        self.start_timeout = start_timeout
        self.running = False
        self.connection = None
        self.attempts = 0
        self._pending: defer.Deferred | None = None  # the attempt under way
        self._timer = None  # the start timeout of the attempt under way
        self._connected_at = 0.0
        self._stopped: defer.Deferred | None = None

    # ---- control -------------------------------------------------------------
    def start(self) -> None:
        if self.running:
            return
        self.running = True
        self._stopped = None
        self._attempt()

    def stop(self) -> defer.Deferred:
        """Stop retrying and close the connection.  Fires once it is gone."""
        self.running = False
        self._cancel_timer()
        self.backoff.cancel()
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.cancel()
        conn = self.connection
        if conn is None:
            return defer.succeed(None)
        if self._stopped is None:
            self._stopped = defer.Deferred()
        waiter = defer.Deferred()
        self._stopped.addBoth(lambda r: (waiter.callback(None), r)[1])
        try:
            conn.close()
        except Exception as e:  # noqa: BLE001 - a broken connection must not stop the stop
            self.log.warn(f"{self.what}: close failed: {e!r}")
        return waiter

    @property
    def failures(self) -> int:
        """Failures in a row (failed attempts and connections that dropped
        before ``stable_after`` seconds)."""
        return self.backoff.failures

    # ---- internals -----------------------------------------------------------
    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _attempt(self) -> None:
        if not self.running:
            return
        self.attempts += 1
        try:
            d = self._connect()
        except Exception:  # noqa: BLE001 - a factory bug is one more failed attempt
            d = defer.fail()
        self._pending = d
        if self.start_timeout and not d.called:
            self._timer = self.clock.callLater(self.start_timeout, self._start_timed_out, d)
        d.addCallbacks(self._ready, self._failed, callbackArgs=(d,), errbackArgs=(d,))

    def _start_timed_out(self, d) -> None:
        self._timer = None
        if self._pending is d:
            self.log.warn(f"{self.what}: not ready after {self.start_timeout:.0f}s, giving up this attempt")
            d.cancel()

    def _ready(self, conn, d) -> None:
        if self._pending is not d:  # stopped (or timed out) meanwhile
            conn.close()
            return
        self._pending = None
        self._cancel_timer()
        self.connection = conn
        self._connected_at = self.clock.seconds()
        if self.on_connected is not None:
            try:
                self.on_connected(conn)
            except Exception as e:  # noqa: BLE001
                log_unexpected(self.log, f"{self.what}: on_connected failed", e)
                conn.close()
        conn.done.addBoth(self._lost, conn)

    def _lost(self, result, conn) -> None:
        if self.connection is conn:
            self.connection = None
        if self.on_lost is not None:
            try:
                self.on_lost(conn)
            except Exception as e:  # noqa: BLE001
                log_unexpected(self.log, f"{self.what}: on_lost failed", e)
        if not self.running:
            stopped, self._stopped = self._stopped, None
            if stopped is not None:
                stopped.callback(None)
            return
        lived = self.clock.seconds() - self._connected_at
        delay = self.backoff.retry(self._attempt, ran=lived)
        self.log.warn(f"{self.what}: connection lost after {lived:.1f}s, retry in {delay:.1f}s")

    def _failed(self, failure: Failure, d) -> None:
        if self._pending is not d:
            return None  # cancelled by stop(): nothing to do
        self._pending = None
        self._cancel_timer()
        if not self.running:
            return None
        delay = self.backoff.retry(self._attempt)
        reason = "timeout" if failure.check(defer.CancelledError) else _why(failure)
        self.log.warn(f"{self.what}: attempt {self.attempts} failed ({reason}), retry in {delay:.1f}s")
        return None
