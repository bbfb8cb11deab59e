"""A fake process spawner for supervisor tests (no real children)."""

from __future__ import annotations

from twisted.internet import error
from twisted.python.failure import Failure


class FakeProcess:
    """What ``reactor.spawnProcess`` returns, driven by the test."""

    def __init__(self, proto, pid: int, executable: str, args, env, path, childFDs) -> None:
        self.proto = proto
        self.pid = pid
        self.executable = executable
        self.args = list(args)
        self.env = env
        self.path = path
        self.childFDs = childFDs
        self.signals: list[int] = []
        self.reaps = 0
        # What signalProcess does: record only (default) or end the process.
        self.exit_on: dict[int, int | None] = {}

    def signalProcess(self, sig) -> None:
        if self.pid is None:
            raise error.ProcessExitedAlready()
        self.signals.append(sig)
        if sig in self.exit_on:
            self.exit(signal=sig)

    def reapProcess(self) -> None:
        self.reaps += 1

    def out(self, data: bytes) -> None:
        self.proto.outReceived(data)

    def err(self, data: bytes) -> None:
        self.proto.errReceived(data)

    def exit(self, code: int = 0, signal: int | None = None) -> None:
        self.pid = None
        if code == 0 and signal is None:
            reason = Failure(error.ProcessDone(0))
        else:
            reason = Failure(error.ProcessTerminated(None if signal else code, signal))
        self.proto.processEnded(reason)

    @property
    def alive(self) -> bool:
        return self.pid is not None


class FakeSpawner:
    """Callable like ``reactor.spawnProcess``; remembers every process."""

    def __init__(self, first_pid: int = 1000) -> None:
        self.next_pid = first_pid
        self.processes: list[FakeProcess] = []
        self.fail_with: Exception | None = None
        self.exit_on: dict[int, int | None] = {}

    def __call__(self, proto, executable, args=(), env=None, path=None, childFDs=None, **kw):
        if self.fail_with is not None:
            raise self.fail_with
        proc = FakeProcess(proto, self.next_pid, executable, args, env, path, childFDs)
        proc.exit_on = dict(self.exit_on)
        self.next_pid += 1
        self.processes.append(proc)
        proto.makeConnection(proc)
        return proc

    @property
    def last(self) -> FakeProcess:
        return self.processes[-1]

    def alive(self) -> list[FakeProcess]:
        return [p for p in self.processes if p.alive]

    def argvs(self) -> list[list[str]]:
        return [p.args for p in self.processes]
