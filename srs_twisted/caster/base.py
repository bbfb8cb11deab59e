"""What every caster service shares: its block, its one listening port, a start that fails
with one clear line, and a stop that ends its streams before the port closes."""

from __future__ import annotations

from typing import Callable

from twisted.application import service
from twisted.internet import defer
from twisted.internet.error import CannotListenError

from ..log import ContextLogger

__all__ = ["CasterService"]


class CasterService(service.Service):
    """Subclasses listen in ``startService`` through :meth:`listen` and end their streams in
    :meth:`end_all`."""

    def __init__(self, ctx, conf, bind_host: str = "") -> None:
        self.ctx = ctx
        self.conf = conf
        self.bind_host = bind_host
        self.log = ContextLogger()
        self.port = None

    def listen(self, transport: str, bind: Callable[[int, str], object]) -> None:
        """``bind(port, interface)`` (a reactor's listenUDP/listenTCP); a port that cannot be
        bound is a :class:`~srs_twisted.service.StartError`."""
        from ..service import StartError

        host = self.host
        try:
            self.port = bind(self.conf.listen, host)
        except CannotListenError as e:
            reason = getattr(e.socketError, "strerror", None) or str(e.socketError)
            raise StartError(f"stream_caster {self.conf.caster} cannot listen on {transport} "
                             f"{host or '0.0.0.0'}:{self.conf.listen}: {reason}") from None

    @property
    def host(self) -> str:
        """The address to listen on: ``listen ip:port``'s, else the server's bind host."""
        return self.conf.listen_ip or self.bind_host

    def end_all(self, reason: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def stopService(self):
        super().stopService()
        self.end_all("the server stopped")
        port, self.port = self.port, None
        return defer.maybeDeferred(port.stopListening) if port is not None else defer.succeed(None)
