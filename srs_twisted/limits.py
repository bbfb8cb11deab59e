"""What bounds the server's connections.

* ``max_connections`` counts every accepted TCP connection, whatever its
  listener (RTMP, HTTP server, HTTP API, exporter; a WebSocket is the HTTP
  connection it was upgraded from), as SRS's ``SrsServer`` compares every
  accepted resource with it.  Past the limit a new connection is closed at
  once, before any protocol sees it, and a warning is logged.
* The open-file limit: at start the soft limit is raised to the hard one,
  and, as SRS's ``check_number_connections``, the server refuses to start
  when ``max_connections`` plus a reserve for listeners, files and children
  does not fit in it.
"""

from __future__ import annotations

from twisted.internet import protocol
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

from .log import ContextLogger

# Descriptors kept aside for listeners, logs, HLS/DVR files and FFmpeg pipes
# (SRS reserves 128 too).
RESERVED_FDS = 128


class FileLimitError(Exception):
    """``max_connections`` does not fit in the open-file limit."""


class _Counted(ProtocolWrapper):
    """A connection that counts against ``max_connections`` while it is open.

    It stays between the transport and the protocol for the whole
    connection, so it is counted until the socket closes even when the
    protocol is swapped (a WebSocket upgrade replaces the HTTP channel)."""

    _counted = False

    def makeConnection(self, transport) -> None:
        self.factory.ctx.connections += 1
        self._counted = True
        super().makeConnection(transport)

    def connectionLost(self, reason) -> None:
        if self._counted:
            self._counted = False
            self.factory.ctx.connections -= 1
        super().connectionLost(reason)


class _Refused(protocol.Protocol):
    """A connection past ``max_connections``: closed as soon as it is made
    (under TLS too), having read nothing."""

    def connectionMade(self) -> None:
        self.transport.loseConnection()


class ConnectionLimitFactory(WrappingFactory):
    """Wraps one listener's factory; every listener of a server shares the
    count in ``ctx.connections`` and reads ``ctx.config.max_connections``
    per connection, so a reload changes the limit at once."""

    protocol = _Counted
    noisy = False

    def __init__(self, ctx, wrapped, what: str = "") -> None:
        super().__init__(wrapped)
        self.ctx = ctx
        self.what = what
        self.log = ContextLogger()

    def buildProtocol(self, addr):
        limit = self.ctx.config.max_connections
        current = self.ctx.connections
        if current >= limit:
            ip, port = getattr(addr, "host", "?"), getattr(addr, "port", 0)
            self.log.warn(
                f"drop {self.what} client ip={ip}:{port}, max={limit}, cur={current} "
                f"for exceed connection limits (max_connections)"
            )
            return _Refused()
        inner = self.wrappedFactory.buildProtocol(addr)
        return None if inner is None else self.protocol(self, inner)


def raise_file_limit(resource_module=None) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard one; returns (soft, hard)
    as they are afterwards (-1 for unlimited, or where there is no limit)."""
    if resource_module is None:
        try:
            import resource as resource_module
        except ImportError:  # pragma: no cover - not a POSIX system
            return -1, -1
    rl = resource_module
    soft, hard = rl.getrlimit(rl.RLIMIT_NOFILE)
    if soft != hard:
        try:
            rl.setrlimit(rl.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            # An unlimited hard limit the kernel will not take (nr_open):
            # keep what we have.
            pass
        soft, hard = rl.getrlimit(rl.RLIMIT_NOFILE)
    infinity = rl.RLIM_INFINITY
    return (-1 if soft == infinity else soft), (-1 if hard == infinity else hard)


def check_file_limit(max_connections: int, soft: int) -> None:
    """Raise FileLimitError unless ``max_connections`` and the reserve fit
    in ``soft`` open files (-1: unlimited), with SRS's advice."""
    if soft < 0:
        return
    total = max_connections + RESERVED_FDS
    if total >= soft:
        raise FileLimitError(
            f"max_connections={max_connections} needs {total} open files, system limit to {soft}: "
            f"lower max_connections, or raise the limit (ulimit -HSn {max(10000, max_connections * 10)})"
        )
