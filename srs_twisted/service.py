"""The server as a Twisted service tree: one shared context, one named child
per listener, so a reload can diff them."""

from __future__ import annotations

from twisted.application import internet, service
from twisted.internet import endpoints

from .context import ServerContext
from .log import ContextLogger
from .rtmp.protocol import RtmpServerFactory


# SRS listens with a backlog of 512; Twisted's default of 50 drops bursts.
BACKLOG = 512


def endpoint_description(listen: str, default_host: str = "") -> str:
    """SRS listen values ('1935', '0.0.0.0:1935', '[::]:1935') as a Twisted
    server endpoint description."""
    listen = listen.strip()
    if listen.startswith("["):
        host, _, port = listen[1:].partition("]")
        port = port.lstrip(":")
        return f"tcp6:{int(port)}:backlog={BACKLOG}:interface={host.replace(':', chr(92) + ':')}"
    if ":" in listen:
        host, _, port = listen.rpartition(":")
        return f"tcp:{int(port)}:backlog={BACKLOG}:interface={host}"
    iface = f":interface={default_host}" if default_host else ""
    return f"tcp:{int(listen)}:backlog={BACKLOG}{iface}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def tls_description(tcp_description: str, https) -> str:
    """Turn a tcp endpoint description into an ssl one with the key and
    certificate of an ``https {}`` section."""
    rest = tcp_description.split(":", 1)[1]
    return f"ssl:{rest}:privateKey={_escape(https.key)}:certKey={_escape(https.cert)}"


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
        self._install_policy()
        self._add_workers()
        self._add_observers()
        self._add_rtmp()
        self._add_http()
        if config.heartbeat.enabled:
            from .heartbeat import HeartbeatService

            HeartbeatService(self.ctx).setServiceParent(self)

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

    def _install_policy(self) -> None:
        try:
            from .policy.build import build_policy
        except ImportError:  # pragma: no cover - policies not present
            return
        self.ctx.policy = build_policy(self.ctx)
        from .policy.hooks import HooksPolicy

        # HLS, DVR and forward fire on_hls/on_dvr/on_forward through this.
        self.ctx.hooks = next(p for p in self.ctx.policy.policies if isinstance(p, HooksPolicy))

    def _add_workers(self) -> None:
        """FFmpeg children (ingest, transcode, exec, snapshots), all owned
        by one service so none outlives the server."""
        from .process.workers import ServerWorkers

        self.workers = ServerWorkers(self.ctx)
        self.workers.setServiceParent(self)
        self.ctx.registry.observers.extend(self.workers.observers)

    def _add_observers(self) -> None:
        """Features that follow every stream's publish and unpublish."""
        from .cluster.edge import EdgeObserver
        from .cluster.forward import ForwardObserver
        from .dash.service import DashObserver
        from .dvr.service import DvrObserver
        from .hls.service import HlsObserver

        self.ctx.registry.observers += [
            HlsObserver(self.ctx),
            DashObserver(self.ctx),
            DvrObserver(self.ctx),
            ForwardObserver(self.ctx),
            EdgeObserver(self.ctx),
        ]

    def _listen(self, name: str, description: str, factory) -> None:
        ep = endpoints.serverFromString(self.reactor, description)
        svc = internet.StreamServerEndpointService(ep, factory)
        svc._raiseSynchronously = True
        svc.setName(name)
        svc.setServiceParent(self)

    def _add_http(self) -> None:
        """http_server and http_api listeners; one site per port, so the API,
        live streams and static files can share a port (SRS #2881)."""
        from .http.server import make_site

        conf = self.config
        api = None
        if conf.http_api.enabled:
            from .http.api import api_resource

            api = api_resource(self.ctx, reload=self.reload_from_disk)
        plain: dict[str, dict] = {}
        tls: dict[str, dict] = {}
        srv = conf.http_server
        if srv.enabled:
            for listen in srv.listens:
                plain.setdefault(listen, {})["server"] = True
            if srv.https.enabled:
                for listen in srv.https.listens:
                    tls.setdefault(listen, {"tls": srv.https})["server"] = True
        if api is not None:
            for listen in conf.http_api.listens:
                plain.setdefault(listen, {})["api"] = True
            if conf.http_api.https.enabled:
                for listen in conf.http_api.https.listens:
                    tls.setdefault(listen, {"tls": conf.http_api.https})["api"] = True
        for kind, table in (("http", plain), ("https", tls)):
            for i, (listen, roles) in enumerate(sorted(table.items())):
                static_dir = srv.dir if roles.get("server") else None
                site_api = api if roles.get("api") else None
                if static_dir is None and site_api is not None:
                    from twisted.web.server import Site

                    site = Site(site_api)
                else:
                    site = make_site(self.ctx, static_dir, site_api, srv.crossdomain)
                    from .process.snapshot import snapshot_resource

                    site.resource.putChild(b"snapshot", snapshot_resource(self.ctx))
                description = endpoint_description(listen, self.bind_host)
                if kind == "https":
                    description = tls_description(description, roles["tls"])
                self._listen(f"{kind}-{i}", description, site)
        if conf.exporter.enabled:
            from twisted.web.server import Site

            from .http.exporter import metrics_resource

            # SRS serves its whole API mux (which has /metrics) on this port.
            root = api if api is not None else metrics_resource(self.ctx)
            listen = conf.exporter.listen
            self._listen("exporter", endpoint_description(listen, self.bind_host), Site(root))

    def reload_from_disk(self) -> None:
        """The API's raw reload: re-read the file the server started with."""
        from .tap import load_config

        path = getattr(self.config, "path", None)
        self.reload(load_config(path) if path else self.config)

    def startService(self) -> None:
        super().startService()
        http = [c.name for c in self if c.name and c.name.startswith(("http", "exporter"))]
        self.log.trace(
            f"srs-twisted started, server_id={self.ctx.server_id}, "
            f"rtmp listen={' '.join(self.config.listen)}, chunk_size={self.config.chunk_size}, "
            f"http={','.join(http) or 'off'}"
        )

    def reload(self, config) -> None:
        """Apply a re-read config.  Vhost settings take effect for new
        connections and new streams; listeners are kept (full reload later)."""
        self.ctx.config = config
        self.workers.reload()
        self.log.trace(f"reload config ok, vhosts={','.join(sorted(config.vhosts))}")
