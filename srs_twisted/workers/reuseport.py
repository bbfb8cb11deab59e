"""A server endpoint that listens with ``SO_REUSEPORT``: every worker binds the same
TCP port and the kernel spreads new connections over them (by a hash of the
connection's addresses).  Takes the ``tcp:``/``tcp6:``/``ssl:`` descriptions the
server builds; TLS is layered on the adopted port as ``ssl:`` would."""

from __future__ import annotations

import socket

from twisted.internet import defer, endpoints
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IStreamServerEndpoint
from zope.interface import implementer

__all__ = ["ReusePortEndpoint", "bind_reuseport", "check_bindable"]


def _family(interface: str) -> int:
    return socket.AF_INET6 if ":" in interface else socket.AF_INET


def bind_reuseport(interface: str, port: int, backlog: int, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A non-blocking socket bound with SO_REUSEADDR and SO_REUSEPORT (listening if TCP)."""
    family = _family(interface)
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and interface in ("::", ""):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((interface or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
        if kind == socket.SOCK_STREAM:
            sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def check_bindable(interface: str, port: int, kind: int = socket.SOCK_STREAM) -> None:
    """Raise OSError if ``port`` cannot be bound by us (another program holds it);
    binds without SO_REUSEPORT and closes at once."""
    family = _family(interface)
    with socket.socket(family, kind) as sock:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((interface or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))


@implementer(IStreamServerEndpoint)
class ReusePortEndpoint:
    """``serverFromString(reactor, description)``, but bound with SO_REUSEPORT."""

    def __init__(self, reactor, description: str) -> None:
        self.reactor = reactor
        self.description = description
        inner = endpoints.serverFromString(reactor, description)
        self.port = inner._port
        self.backlog = inner._backlog
        self.interface = inner._interface
        self.tls = getattr(inner, "_sslContextFactory", None)
        if isinstance(inner, endpoints.TCP6ServerEndpoint) and not self.interface:
            self.interface = "::"

    def listen(self, factory):
        try:
            sock = bind_reuseport(self.interface, self.port, self.backlog)
        except OSError as e:
            return defer.fail(CannotListenError(self.interface, self.port, e))
        if self.tls is not None:
            from twisted.protocols.tls import TLSMemoryBIOFactory

            factory = TLSMemoryBIOFactory(self.tls, False, factory)
        try:
            port = self.reactor.adoptStreamPort(sock.fileno(), sock.family, factory)
        except Exception as e:
            return defer.fail(CannotListenError(self.interface, self.port, e))
        finally:
            sock.close()  # the reactor holds its own copy of the descriptor
        return defer.succeed(port)
