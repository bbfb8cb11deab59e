"""Run external commands (FFmpeg, ``exec`` programs) and keep them running.

A :class:`ProcessSupervisor` owns one command line.  It spawns it through an
injected ``spawner`` (``reactor.spawnProcess`` in the server, a fake in
tests), restarts it when it exits with an exponential backoff on the
injected clock (:class:`srs_twisted.backoff.Backoff`), and stops it on
request: SIGTERM, then SIGKILL after a grace period; the Deferred of
:meth:`ProcessSupervisor.stop` fires once the child has been reaped.

Output: like SRS, when a log file is given (``ff_log_dir``) the child's
stdout and stderr are that file (opened for append, no copy through the
server).  Otherwise the server reads them: the last lines are kept (a
bounded tail) and logged with the owning stream's context id, at most a few
lines per second.  ``on_stdout`` takes the raw stdout bytes instead (the
snapshot reads JPEG frames that way).

:class:`WorkersService` owns every supervisor of the server; stopping it
(server shutdown) stops them all and fires when the last child is gone.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from typing import Callable

from twisted.application import service
from twisted.internet import defer, error, protocol

from ..backoff import INITIAL_DELAY, MAX_DELAY, Backoff
from ..log import ContextLogger

# Restart backoff: the first restart waits 1 s, each failed run doubles the
# wait up to 30 s (no jitter); a run of STABLE_AFTER seconds resets it.
STABLE_AFTER = 10.0
# SIGTERM, then SIGKILL after this many seconds (SRS_PROCESS_QUIT_TIMEOUT_MS).
GRACE = 1.0
# After SIGKILL, give up waiting for the reap after this long (never expected).
KILL_WAIT = 5.0
# How often a running child is polled with waitpid(WNOHANG): the server runs
# the reactor without Twisted's SIGCHLD handler, so this is what reaps.
POLL = 0.5
POLL_STOPPING = 0.05
KEEP_LINES = 50
MAX_LINE = 2048
# Logged child output: a burst of LOG_BURST lines, then LOG_RATE lines/s.
LOG_BURST = 20
LOG_RATE = 1.0


class _RateLimit:
    """A token bucket on the injected clock."""

    def __init__(self, clock, burst: int = LOG_BURST, rate: float = LOG_RATE) -> None:
        self.clock = clock
        self.burst = burst
        self.rate = rate
        self.tokens = float(burst)
        self.last = clock.seconds()
        self.dropped = 0

    def take(self) -> bool:
        now = self.clock.seconds()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.dropped += 1
        return False


class _Child(protocol.ProcessProtocol):
    """One run of the command; forwards to its supervisor."""

    def __init__(self, owner: "ProcessSupervisor", run: int) -> None:
        self.owner = owner
        self.run = run

    def outReceived(self, data: bytes) -> None:
        self.owner._output(self.run, 1, data)

    def errReceived(self, data: bytes) -> None:
        self.owner._output(self.run, 2, data)

    def processEnded(self, reason) -> None:
        self.owner._ended(self.run, reason)


def _exit_status(reason) -> tuple[int | None, int | None]:
    """(exit code, signal) of a processEnded reason."""
    value = getattr(reason, "value", reason)
    if isinstance(value, error.ProcessDone):
        return 0, None
    return getattr(value, "exitCode", None), getattr(value, "signal", None)


def _tail_of_file(path: str, lines: int = 3, size: int = 4096) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            data = f.read()
    except OSError:
        return []
    parts = [p.strip() for p in data.replace(b"\r", b"\n").split(b"\n")]
    return [p.decode("utf-8", "replace") for p in parts if p][-lines:]


def publisher_of(source):
    """A live source's publisher ClientInfo (None when nothing is attached)."""
    return getattr(source, "publisher_info", None)


def context_id(source) -> str:
    """The context id a stream's children log with: the publisher's
    connection id, else the source's id."""
    return getattr(publisher_of(source), "id", "") or getattr(source, "id", "") or ""


class ProcessSupervisor:
    """Keeps one command running until :meth:`stop`.

    ``argv[0]`` is the program (looked up on PATH by the spawner).
    ``log_file`` receives the child's stdout and stderr (SRS's ff_log_dir
    files); ``stdout_file``/``stderr_file`` redirect one stream each (the
    ``>`` of an ``exec`` line).  ``restart=False`` runs the command once.
    """

    def __init__(
        self,
        argv: list[str],
        *,
        clock,
        spawner: Callable | None = None,
        name: str = "",
        log: ContextLogger | None = None,
        env: dict | None = None,
        cwd: str | None = None,
        log_file: str = "",
        stdout_file: str = "",
        stderr_file: str = "",
        on_stdout: Callable[[bytes], None] | None = None,
        restart: bool = True,
        grace: float = GRACE,
        min_backoff: float = INITIAL_DELAY,
        max_backoff: float = MAX_DELAY,
        stable_after: float = STABLE_AFTER,
        keep_lines: int = KEEP_LINES,
    ) -> None:
        if not argv:
            raise ValueError("empty command line")
        self.argv = list(argv)
        self.clock = clock
        self.spawner = spawner if spawner is not None else clock.spawnProcess
        self.name = name or os.path.basename(argv[0])
        self.log = log or ContextLogger()
        self.env = env
        self.cwd = cwd
        self.log_file = log_file
        self.stdout_file = stdout_file
        self.stderr_file = stderr_file
        self.on_stdout = on_stdout
        self.restart = restart
        self.grace = grace
        self.backoff = Backoff(clock, initial=min_backoff, maximum=max_backoff, stable_after=stable_after)
        self.lines: deque[str] = deque(maxlen=keep_lines)
        self.pids: list[int] = []  # every pid this supervisor started, oldest first
        self.starts = 0
        self.exits = 0
        self.transport = None
        self.started_at = 0.0
        self._child_pid = None
        self._run = 0
        self._wanted = False
        self._stopping = False
        self._partial = {1: b"", 2: b""}
        self._limit = _RateLimit(clock)
        self._poll_call = None
        self._kill_call = None
        self._waiters: list[defer.Deferred] = []

    # ---- state ---------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return getattr(self.transport, "pid", None) if self.transport is not None else None

    @property
    def delay(self) -> float:
        """The wait before the next restart (a failed run doubles it)."""
        return self.backoff.delay

    @property
    def running(self) -> bool:
        return self.transport is not None

    @property
    def active(self) -> bool:
        """Running, or waiting to restart."""
        return self._wanted or self.transport is not None

    def tail(self, n: int = 10) -> list[str]:
        """The last ``n`` output lines kept (empty when output goes to a file)."""
        return list(self.lines)[-n:]

    # ---- control -------------------------------------------------------------
    def start(self) -> None:
        """Run the command (again); no-op while it runs or waits to restart."""
        if self._wanted:
            return
        self._wanted = True
        # While a stop is under way the child is started again once reaped.
        if self.transport is None and not self.backoff.pending:
            self._spawn()

    def stop(self, grace: float | None = None) -> defer.Deferred:
        """SIGTERM, SIGKILL after ``grace`` seconds; fires once reaped."""
        self._wanted = False
        self.backoff.cancel()
        if self.transport is None:
            return defer.succeed(None)
        d = defer.Deferred()
        self._waiters.append(d)
        if not self._stopping:
            self._stopping = True
            self.log.trace(f"{self.name}: stop pid={self.pid}, SIGTERM")
            self._signal(signal.SIGTERM)
            wait = self.grace if grace is None else grace
            self._kill_call = self.clock.callLater(wait, self._kill)
            self._schedule_poll(POLL_STOPPING)
        return d

    # ---- internals -----------------------------------------------------------
    def _cancel(self, attr: str) -> None:
        call = getattr(self, attr)
        setattr(self, attr, None)
        if call is not None and call.active():
            call.cancel()

    def _open(self, path: str) -> int:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        return os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o664)

    def _child_fds(self, opened: list[int]) -> dict:
        devnull = os.open(os.devnull, os.O_RDONLY)
        opened.append(devnull)
        fds: dict = {0: devnull, 1: "r", 2: "r"}
        if self.log_file:
            fd = self._open(self.log_file)
            opened.append(fd)
            os.write(fd, f"\nprocess ppid={os.getpid()}, cid={self.log.cid}, cli: {' '.join(self.argv)}\n".encode())
            fds[1] = fds[2] = fd
        for child_fd, path in ((1, self.stdout_file), (2, self.stderr_file)):
            if path:
                fd = self._open(path)
                opened.append(fd)
                fds[child_fd] = fd
        return fds

    def _spawn(self) -> None:
        self._run += 1
        self.starts += 1
        self._partial = {1: b"", 2: b""}
        opened: list[int] = []
        try:
            fds = self._child_fds(opened)
            env = self.env if self.env is not None else dict(os.environ)
            self.transport = self.spawner(
                _Child(self, self._run), self.argv[0], self.argv, env=env, path=self.cwd, childFDs=fds
            )
        except Exception as e:  # no such program, no fds, bad log path...
            self.transport = None
            self.log.error(f"{self.name}: start failed: {e}; cli: {' '.join(self.argv)}")
            self.exits += 1
            self._schedule_restart(failed=True, ran=0.0)
            return
        finally:
            for fd in opened:
                os.close(fd)
        self.started_at = self.clock.seconds()
        self._child_pid = self.pid
        if self.pid is not None:
            self.pids.append(self.pid)
        where = f", log={self.log_file}" if self.log_file else ""
        self.log.trace(f"{self.name}: started pid={self.pid}{where}, cli: {' '.join(self.argv)}")
        self._schedule_poll(POLL)

    def _schedule_poll(self, interval: float) -> None:
        self._cancel("_poll_call")
        self._poll_call = self.clock.callLater(interval, self._poll, interval)

    def _poll(self, interval: float) -> None:
        """Reap the child if it exited (no SIGCHLD handler in the server)."""
        self._poll_call = None
        transport = self.transport
        if transport is None:
            return
        reap = getattr(transport, "reapProcess", None)
        if reap is not None and getattr(transport, "pid", None) is not None:
            reap()
        if self.transport is transport:
            self._poll_call = self.clock.callLater(interval, self._poll, interval)

    def _signal(self, sig: int) -> None:
        try:
            self.transport.signalProcess(sig)
        except (error.ProcessExitedAlready, OSError, AttributeError):
            pass

    def _kill(self) -> None:
        self._kill_call = None
        if self.transport is None:
            return
        self.log.warn(f"{self.name}: pid={self.pid} still alive after SIGTERM, SIGKILL")
        self._signal(signal.SIGKILL)
        self._kill_call = self.clock.callLater(KILL_WAIT, self._give_up)

    def _give_up(self) -> None:
        self._kill_call = None
        if self.transport is None:
            return
        self.log.error(f"{self.name}: pid={self.pid} not reaped {KILL_WAIT}s after SIGKILL")
        self._forget()

    def _output(self, run: int, fd: int, data: bytes) -> None:
        if run != self._run:
            return
        if fd == 1 and self.on_stdout is not None:
            self.on_stdout(data)
            return
        buf = self._partial[fd] + data
        *lines, rest = buf.replace(b"\r", b"\n").split(b"\n")
        self._partial[fd] = rest[-MAX_LINE:]
        for raw in lines:
            self._line(raw[:MAX_LINE])

    def _line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip()
        if not line:
            return
        self.lines.append(line)
        if self._limit.take():
            if self._limit.dropped:
                self.log.trace(f"{self.name}: ({self._limit.dropped} lines not logged)")
                self._limit.dropped = 0
            self.log.trace(f"{self.name}[{self._child_pid}]: {line}")

    def _ended(self, run: int, reason) -> None:
        if run != self._run:
            return
        for fd in (1, 2):
            if self._partial[fd] and not (fd == 1 and self.on_stdout is not None):
                self._line(self._partial[fd])
            self._partial[fd] = b""
        code, sig = _exit_status(reason)
        pid = self._child_pid
        ran = self.clock.seconds() - self.started_at
        stopping = self._stopping or not self._wanted
        self._forget()  # fires the stop() Deferreds
        self.exits += 1
        failed = code != 0 or sig is not None
        how = f"signal {sig}" if sig is not None else f"code {code}"
        if stopping:
            self.log.trace(f"{self.name}: pid={pid} stopped ({how}) after {ran:.1f}s")
            if self._wanted:  # start() was called while stopping
                self._spawn()
            return
        tail = _tail_of_file(self.log_file) if self.log_file else self.tail(3)
        detail = f", last output: {' | '.join(tail)}" if failed and tail else ""
        log = self.log.warn if failed else self.log.trace
        log(f"{self.name}: pid={pid} exited with {how} after {ran:.1f}s{detail}")
        self._schedule_restart(failed, ran)

    def _forget(self) -> None:
        self.transport = None
        self._cancel("_poll_call")
        self._cancel("_kill_call")
        if self._stopping:
            self._stopping = False
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(None)

    def _schedule_restart(self, failed: bool, ran: float) -> None:
        if not (self.restart and self._wanted):
            self._wanted = False
            return
        wait = self.backoff.retry(self._restart, ran=ran, failed=failed)
        self.log.trace(f"{self.name}: restart in {wait:.0f}s")

    def _restart(self) -> None:
        if self._wanted and self.transport is None:
            self._spawn()


class WorkersService(service.MultiService):
    """Owns every supervised child of the server.

    :meth:`supervise` creates and starts a supervisor; :meth:`release` stops
    one.  ``stopService`` stops the child services (the ingesters) and every
    supervisor, and fires when all children are reaped.  Once stopping, no
    new child is started.
    """

    def __init__(self, clock, spawner: Callable | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.spawner = spawner
        self.supervisors: set[ProcessSupervisor] = set()
        self.closed = False

    def supervise(self, argv: list[str], **kwargs) -> ProcessSupervisor | None:
        """Start ``argv`` under a new supervisor (None once shutting down)."""
        if self.closed:
            return None
        kwargs.setdefault("spawner", self.spawner)
        sup = ProcessSupervisor(argv, clock=self.clock, **kwargs)
        self.supervisors.add(sup)
        sup.start()
        return sup

    def release(self, sup: ProcessSupervisor | None) -> defer.Deferred:
        """Stop ``sup`` and forget it."""
        if sup is None:
            return defer.succeed(None)
        d = sup.stop()
        d.addBoth(lambda result: (self.supervisors.discard(sup), result)[1])
        return d

    def stop_all(self) -> defer.Deferred:
        return defer.gatherResults([self.release(s) for s in list(self.supervisors)], consumeErrors=True)

    def pids(self) -> list[int]:
        """The pids of the children running now."""
        return [s.pid for s in self.supervisors if s.pid is not None]

    def startService(self) -> None:
        self.closed = False
        super().startService()

    def stopService(self) -> defer.Deferred:
        self.closed = True
        children = super().stopService()
        d = defer.gatherResults([defer.maybeDeferred(lambda: children), self.stop_all()], consumeErrors=True)
        d.addBoth(lambda _: None)
        return d


__all__ = ["ProcessSupervisor", "WorkersService", "context_id", "publisher_of"]
