"""The server as a Twisted service tree: one shared context, one named child
per listener, so a reload can diff them."""

from __future__ import annotations

from twisted.application import internet, service
from twisted.internet import endpoints

from .context import ServerContext
from .log import ContextLogger
from .rtmp.protocol import RtmpServerFactory


def endpoint_description(listen: str, default_host: str = "") -> str:
    """SRS listen values ('1935', '0.0.0.0:1935', '[::]:1935') as a Twisted
    server endpoint description."""
    listen = listen.strip()
    if listen.startswith("["):
        host, _, port = listen[1:].partition("]")
        port = port.lstrip(":")
        return f"tcp6:{int(port)}:interface={host.replace(':', chr(92) + ':')}"
    if ":" in listen:
        host, _, port = listen.rpartition(":")
        return f"tcp:{int(port)}:interface={host}"
    iface = f":interface={default_host}" if default_host else ""
    return f"tcp:{int(listen)}{iface}"


class SrsService(service.MultiService):
    """The whole server.  ``ctx`` is what protocol factories share."""

    def __init__(self, config, reactor=None, bind_host: str = "") -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.reactor = reactor
        self.bind_host = bind_host
        self.ctx = ServerContext(config, reactor)
        self.log = ContextLogger()
        self._add_rtmp()

    @property
    def config(self):
        return self.ctx.config

    def _add_rtmp(self) -> None:
        factory = RtmpServerFactory(self.ctx)
        self.rtmp_factory = factory
        for i, listen in enumerate(self.config.listen):
            ep = endpoints.serverFromString(self.reactor, endpoint_description(listen, self.bind_host))
            svc = internet.StreamServerEndpointService(ep, factory)
            svc._raiseSynchronously = True
            svc.setName(f"rtmp-{i}")
            svc.setServiceParent(self)

    def startService(self) -> None:
        super().startService()
        self.log.trace(
            f"srs-twisted started, server_id={self.ctx.server_id}, "
            f"rtmp listen={' '.join(self.config.listen)}, chunk_size={self.config.chunk_size}"
        )

    def reload(self, config) -> None:
        """Apply a re-read config.  Vhost settings take effect for new
        connections and new streams; listeners are kept (full reload later)."""
        self.ctx.config = config
        self.log.trace(f"reload config ok, vhosts={','.join(sorted(config.vhosts))}")
