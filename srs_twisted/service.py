"""The server as a Twisted service tree: one shared context, one named child
per listener, so a reload can diff them."""

from __future__ import annotations

import functools

from twisted.application import internet, service
from twisted.internet import defer, endpoints
from twisted.internet.error import CannotListenError
from twisted.python import failure

from .context import ServerContext
from .limits import ConnectionLimitFactory, FileLimitError, check_file_limit, raise_file_limit
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


def inert_settings(config) -> list[str]:
    """What the config sets that SRS honours but we accept and ignore, one
    message per vhost and key (logged at start and on a reload that changes
    them).

    * ``play.send_min_interval``: SRS sends one message per loop and sleeps
      that long after it; players here are flushed by ``mw_latency`` /
      ``mw_msgs`` only.
    * ``publish.mr`` / ``mr_latency`` (merged read, when ``min_latency`` is
      off): SRS sleeps after a small read so the next read is bigger; the
      reactor already reads whatever the socket holds in one go.
    * ``rtc_server.protocol tcp|all`` with ``rtc_server.tcp.enabled off``: nothing
      serves WebRTC over TCP, so ``all`` offers UDP candidates only and ``tcp``
      refuses every WebRTC session (SRS's full.conf: "Ignore" and "Fail").
    """
    out = []
    rtc = config.rtc_server
    if rtc.enabled and rtc.protocol != "udp" and not rtc.tcp.enabled:
        effect = ("WebRTC sessions are refused (no candidate to offer)" if rtc.protocol == "tcp"
                  else "answers offer UDP candidates only")
        out.append(f"rtc_server.protocol {rtc.protocol} without rtc_server.tcp.enabled on: {effect}")
    for name, vhost in config.vhosts.items():
        if vhost.play.send_min_interval > 0:
            out.append(
                f"vhost {name}: play.send_min_interval {vhost.play.send_min_interval:g}ms has no effect "
                "(accepted and ignored; players are flushed by mw_latency/mw_msgs)"
            )
        if vhost.merged_read:
            out.append(
                f"vhost {name}: publish.mr on (mr_latency {vhost.publish.mr_latency}ms) has no effect "
                "(accepted and ignored; the reactor reads whatever the socket holds)"
            )
    return out


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
        self._add_rtc()
        self._add_srt()
        self._add_casters()
        self._add_heartbeat()
        self._add_breaker()
        self._add_memory_trim()

    @property
    def config(self):
        return self.ctx.config

    def _add_rtmp(self) -> None:
        self.rtmp_factory = RtmpServerFactory(self.ctx)
        self._add_listeners(self._rtmp_specs(self.config))

    def _rtmp_specs(self, conf) -> dict:
        """``rtmp-N`` -> listener spec; every RTMP port shares one factory,
        which reads ``ctx.config`` per connection."""
        return {
            f"rtmp-{i}": _Spec(endpoint_description(listen, self.bind_host), ("rtmp",), lambda: self.rtmp_factory)
            for i, listen in enumerate(conf.listen)
        }

    def _add_listeners(self, specs: dict) -> None:
        for name, spec in specs.items():
            svc = _Listener(self._endpoint(spec.description), self._limited(spec), spec)
            svc._raiseSynchronously = True
            svc.setName(name)
            svc.setServiceParent(self)

    def _endpoint(self, description: str):
        """The server endpoint of a listener (a worker's binds with SO_REUSEPORT)."""
        return endpoints.serverFromString(self.reactor, description)

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
        from .cluster.origin_cluster import uses_redis

        if uses_redis(self.config):  # the Redis origin cluster (stream directory, pulls)
            self._origin_cluster().setServiceParent(self)

    def _origin_cluster(self):
        from .cluster.origin_cluster import OriginClusterService

        return OriginClusterService(self.ctx, self.bind_host)

    def _api(self):
        """The HTTP API resource, made once and shared by every port serving
        it (it reads ``ctx.config`` per request)."""
        if getattr(self, "_api_resource", None) is None:
            from .http.api import api_resource

            self._api_resource = api_resource(self.ctx, reload=self.reload_from_disk)
        return self._api_resource

    def _add_http(self) -> None:
        self._add_listeners(self._http_specs(self.config))

    def _http_specs(self, conf) -> dict:
        """http_server, http_api and exporter listeners as ``name`` -> spec;
        one site per port, so the API, live streams and static files can
        share a port (SRS #2881)."""
        specs: dict[str, _Spec] = {}
        plain: dict[str, dict] = {}
        tls: dict[str, dict] = {}
        srv = conf.http_server
        if srv.enabled:
            for listen in srv.listens:
                plain.setdefault(listen, {})["server"] = True
            if srv.https.enabled:
                for listen in srv.https.listens:
                    tls.setdefault(listen, {"tls": srv.https})["server"] = True
        if conf.http_api.enabled:
            for listen in conf.http_api.listens:
                plain.setdefault(listen, {})["api"] = True
            if conf.http_api.https.enabled:
                for listen in conf.http_api.https.listens:
                    tls.setdefault(listen, {"tls": conf.http_api.https})["api"] = True
        for kind, table in (("http", plain), ("https", tls)):
            for i, (listen, roles) in enumerate(sorted(table.items())):
                server_on, api_on = bool(roles.get("server")), bool(roles.get("api"))
                static_dir = srv.dir if server_on else None
                description = endpoint_description(listen, self.bind_host)
                if kind == "https":
                    description = tls_description(description, roles["tls"])
                signature = ("site", server_on, api_on, static_dir, srv.crossdomain if server_on else None)
                build = functools.partial(self._make_site, static_dir, api_on, srv.crossdomain)
                specs[f"{kind}-{i}"] = _Spec(description, signature, build)
        if conf.exporter.enabled:
            # SRS serves its whole API mux (which has /metrics) on this port.
            api_on = conf.http_api.enabled
            specs["exporter"] = _Spec(
                endpoint_description(conf.exporter.listen, self.bind_host),
                ("exporter", api_on),
                functools.partial(self._make_exporter_site, api_on),
            )
        return specs

    def _make_site(self, static_dir, api_on: bool, crossdomain: bool):
        from .http.server import make_site

        site_api = self._api() if api_on else None
        site = make_site(self.ctx, static_dir, site_api, crossdomain)
        if static_dir is None and site_api is not None:
            return site
        from .process.snapshot import snapshot_resource

        site.resource.putChild(b"snapshot", snapshot_resource(self.ctx))
        return site

    def _make_exporter_site(self, api_on: bool):
        from .http.exporter import metrics_resource
        from .http.site import HeaderTimeoutSite

        return HeaderTimeoutSite(self.ctx, self._api() if api_on else metrics_resource(self.ctx))

    def reload_from_disk(self) -> None:
        """The API's raw reload: re-read the file the server started with."""
        from .tap import load_config

        path = getattr(self.config, "path", None)
        self.reload(load_config(path) if path else self.config)

    def _limited(self, spec) -> ConnectionLimitFactory:
        """The listener's factory, its connections counted against
        max_connections with every other listener's."""
        kind = "http" if spec.signature[0] == "site" else spec.signature[0]
        return ConnectionLimitFactory(self.ctx, spec.build(), f"{kind} port {_port_of(spec.description)}")

    _file_limit: tuple[int, int] | None = None

    def _check_file_limit(self) -> None:
        """Before any port listens: raise the open-file limit to the hard
        limit, and refuse to start (StartError) if max_connections does not
        fit in it (SRS's check_number_connections)."""
        if self._file_limit is not None:
            return
        self._file_limit = raise_file_limit()
        try:
            check_file_limit(self.config.max_connections, self._file_limit[0])
        except FileLimitError as e:
            raise StartError(str(e)) from None

    def privilegedStartService(self) -> None:
        self._check_file_limit()  # twistd binds the ports here
        super().privilegedStartService()

    def startService(self) -> None:
        self._check_file_limit()
        super().startService()
        from .banner import startup_lines

        self.log.trace(
            f"srs-twisted started, server_id={self.ctx.server_id}, chunk_size={self.config.chunk_size}, "
            f"vhosts={','.join(self.config.vhosts) or 'none'}"
        )
        for line in startup_lines(self.config, self.bind_host):
            self.log.trace(line)
        for message in inert_settings(self.config):
            self.log.warn(message)
        soft, hard = self._file_limit
        self.log.trace(f"open files limit soft={soft} hard={hard}, max_connections={self.config.max_connections}")

    def _add_rtc(self) -> None:
        """The WebRTC server (UDP port, certificate, sessions) when rtc_server is enabled."""
        self.ctx.rtc = None
        if self.config.rtc_server.enabled:
            from .rtc.service import RtcServer

            self.ctx.rtc = RtcServer(self.ctx, self.bind_host)
            self.ctx.rtc.setServiceParent(self)

    def _reload_rtc(self, old, new, changes: list, done: defer.Deferred) -> defer.Deferred:
        """A new WebRTC server when its ports (UDP, ``tcp {}``), switch or certificate kind
        changed (its sessions end; the old ports are closed first, so the same ports can be
        bound again); other rtc_server settings are read per request and need nothing."""
        def ports(c):
            return c.enabled, c.listens, c.ecdsa, c.tcp.enabled, c.tcp.listens

        if ports(old) == ports(new):
            return done
        where = "udp " + " ".join(new.listens) + (" tcp " + " ".join(new.tcp.listens) if new.tcp.enabled else "")
        changes.append(f"rtc {where if new.enabled else 'off'} (sessions ended)")
        return self._restart_server("rtc", self._add_rtc, "WebRTC", done)

    def _restart_server(self, name: str, add, what: str, done: defer.Deferred) -> defer.Deferred:
        """Stop the named server child (``ctx.<name>``), then ``add()`` a new one."""
        old = self.namedServices.get(name)
        stopped = defer.maybeDeferred(self.removeService, old) if old is not None else defer.succeed(None)
        setattr(self.ctx, name, None)

        def restart(_):
            try:
                add()
            except Exception as e:
                setattr(self.ctx, name, None)
                self.log.error(f"reload: the {what} server cannot start: {e}")

        stopped.addCallback(restart)
        return defer.DeferredList([done, stopped])

    def _add_srt(self) -> None:
        """The SRT server (UDP port, connections) when srt_server is enabled."""
        self.ctx.srt = None
        if self.config.srt_server.enabled:
            from .srt.service import SrtServer

            self.ctx.srt = SrtServer(self.ctx, self.bind_host)
            self.ctx.srt.setServiceParent(self)

    def _reload_srt(self, old, new, changes: list, done: defer.Deferred) -> defer.Deferred:
        """A new SRT server when srt_server changed (its connections end; the old UDP port
        is closed first, so the same port can be bound again)."""
        if old == new:
            return done
        changes.append(f"srt {'udp ' + ' '.join(new.listens) if new.enabled else 'off'} (connections ended)")
        return self._restart_server("srt", self._add_srt, "SRT", done)

    def _add_casters(self) -> None:
        """One service per enabled ``stream_caster`` block, made by the factory of its kind
        (:data:`srs_twisted.caster.CASTERS`); a kind that cannot be served fails the start,
        as in SRS."""
        from .caster import CasterUnavailable, caster_factory

        self.ctx.casters = []
        for i, conf in enumerate(self.config.stream_casters):
            if not conf.enabled:
                continue
            try:
                svc = caster_factory(conf.caster)(self.ctx, conf, self.bind_host)
            except CasterUnavailable as e:
                svc = _Unstartable(f"stream_caster {conf.caster} (listen {conf.listen}): {e}")
            svc.setName(f"caster-{i}")
            svc.setServiceParent(self)
            self.ctx.casters.append(svc)

    def _reload_casters(self, old: list, new: list, changes: list, done: defer.Deferred) -> defer.Deferred:
        """New casters when any ``stream_caster`` block changed (their streams end; the old
        ports are closed first).  SRS does not reload casters at all."""
        if old == new:
            return done
        stopping = [defer.maybeDeferred(self.removeService, svc) for svc in list(self.ctx.casters)]
        self.ctx.casters = []
        changes.append(f"stream_caster ({sum(c.enabled for c in new)} enabled, streams ended)")

        def restart(_):
            try:
                self._add_casters()
            except Exception as e:
                self.log.error(f"reload: a stream caster cannot start: {e}")

        return defer.DeferredList([done, defer.DeferredList(stopping).addCallback(restart)])

    def _add_heartbeat(self) -> None:
        if self.config.heartbeat.enabled:
            from .heartbeat import HeartbeatService

            svc = HeartbeatService(self.ctx)
            svc.setName("heartbeat")
            svc.setServiceParent(self)

    def _add_breaker(self) -> None:
        """Once a second, the process's CPU into SRS's circuit breaker (``ctx.breaker``)."""
        from twisted.application.internet import TimerService

        from .http.procstats import ProcStats

        breaker = self.ctx.breaker
        breaker.log = self.log.warn
        stats = ProcStats(now=self.reactor.seconds, min_interval=0.5)

        def sample():
            # self_stat's percent is a fraction of one core, as SRS's API gives it;
            # the breaker's thresholds are percents (SRS multiplies by 100 too)
            breaker.sample(stats.self_stat()["percent"] * 100)

        timer = TimerService(1.0, sample)
        timer.clock = self.reactor
        timer.setName("circuit-breaker")
        timer.setServiceParent(self)

    def _add_memory_trim(self) -> None:
        """Freed heap memory back to the system every 30 s (memtrim.py)."""
        from twisted.application.internet import TimerService

        from .memtrim import MemoryTrimmer, interval_from_env, libc_trim

        interval, trim = interval_from_env(), libc_trim()
        if not interval or trim is None:
            return
        timer = TimerService(interval, MemoryTrimmer(trim, self.log.trace))
        timer.clock = self.reactor
        timer.setName("memory-trim")
        timer.setServiceParent(self)

    def reload(self, config) -> defer.Deferred:
        """Apply a re-read config without dropping connections (SRS's reload).

        Vhost settings take effect for new connections and new streams (the
        factories and sites read ``ctx.config``); listeners are diffed by
        name, buildbot-style: a listener whose endpoint vanished or changed
        is stopped (its accepted connections keep running), a new one is
        started, an unchanged one is kept.  A port that fails to bind is
        logged and the old listener of that name is kept.  Log settings,
        ``daemon`` and ``pid`` are not reloaded.  The Deferred fires when
        every listener change is done."""
        old = self.ctx.config
        self.ctx.config = config
        changes: list[str] = []
        fixed = [k for k in NOT_RELOADABLE if getattr(old, k, None) != getattr(config, k, None)]
        if fixed:
            self.log.warn(f"reload: {','.join(fixed)} changed but cannot be reloaded, restart to apply")
        wanted = {**self._rtmp_specs(config), **self._http_specs(config)}
        done = self._reload_listeners(wanted, changes)
        if old.heartbeat != config.heartbeat:
            hb = self.namedServices.get("heartbeat")
            if hb is not None:
                self.removeService(hb)
            self._add_heartbeat()
            changes.append(f"heartbeat={'on' if config.heartbeat.enabled else 'off'}")
        done = self._reload_rtc(old.rtc_server, config.rtc_server, changes, done)
        done = self._reload_srt(old.srt_server, config.srt_server, changes, done)
        done = self._reload_casters(old.stream_casters, config.stream_casters, changes, done)
        self.workers.reload()
        self.ctx.breaker.config = config.circuit_breaker
        inert = inert_settings(config)
        if inert != inert_settings(old):
            for message in inert:
                self.log.warn(message)
        self.log.trace(
            f"reload config ok, vhosts={','.join(sorted(config.vhosts))}, "
            f"changed: {'; '.join(changes) or 'no listener or heartbeat change'}"
        )
        return done

    def _reload_listeners(self, wanted: dict, changes: list) -> defer.Deferred:
        current = {c.name: c for c in self if isinstance(c, _Listener)}
        held = {_port_of(c.spec.description) for c in current.values()}
        stopping: list[defer.Deferred] = []
        for name in sorted(set(current) - set(wanted)):
            stopping.append(self._remove(current[name]))
            changes.append(f"{name} {current[name].spec.description} stopped")
        retries: list[tuple[str, _Spec]] = []
        for name, spec in wanted.items():
            svc = current.get(name)
            if svc is not None and svc.spec.description == spec.description:
                if svc.spec.signature != spec.signature:
                    # Same port, different content (e.g. the API added to
                    # the http_server port): swap the site's root in place.
                    svc.factory.wrappedFactory.resource = spec.build().resource
                    svc.spec = spec
                    changes.append(f"{name} {spec.description} updated")
                continue
            try:
                bound = self._bind(spec)
            except Exception as e:
                if svc is not None and _port_of(spec.description) in held:
                    retries.append((name, spec))  # a port one of ours holds
                    continue
                keep = f"; keep {svc.spec.description}" if svc is not None else ""
                self.log.error(f"reload: {name} cannot listen on {spec.description}: {e}{keep}")
                continue
            if svc is not None:
                stopping.append(self._remove(svc))
                changes.append(f"{name} {svc.spec.description} -> {spec.description}")
            else:
                changes.append(f"{name} {spec.description} started")
            self._adopt(name, spec, *bound)
        if not retries:
            return defer.DeferredList(stopping) if stopping else defer.succeed(None)
        changes.append(f"{', '.join(n for n, _ in retries)} rebinding after the old ports close")
        return defer.DeferredList(stopping).addCallback(lambda _: self._retry(retries, current))

    def _retry(self, retries, current) -> defer.Deferred:
        """Listeners whose new port was busy: close the old one first, then
        try again; if it still fails, listen on the old endpoint again."""
        waits = []
        for name, spec in retries:
            old = current[name]
            waits.append(self._remove(old).addCallback(lambda _, n=name, s=spec, o=old: self._swap(n, s, o)))
        return defer.DeferredList(waits)

    def _swap(self, name: str, spec, old) -> None:
        try:
            self._adopt(name, spec, *self._bind(spec))
            self.log.trace(f"reload: {name} {old.spec.description} -> {spec.description}")
            return
        except Exception as e:
            self.log.error(f"reload: {name} cannot listen on {spec.description}: {e}; keep {old.spec.description}")
        try:
            self._adopt(name, old.spec, *self._bind(old.spec, old.factory))
        except Exception as e:
            self.log.error(f"reload: {name} cannot listen on {old.spec.description} again: {e}")

    def _bind(self, spec, factory=None) -> tuple:
        """Listen now; returns (port, factory) or raises why not."""
        if factory is None:
            factory = self._limited(spec)
        d = self._endpoint(spec.description).listen(factory)
        result: list = []
        d.addBoth(result.append)
        if not result:  # an endpoint that binds later
            return d, factory
        if isinstance(result[0], failure.Failure):
            result[0].raiseException()
        return result[0], factory

    def _adopt(self, name: str, spec, port, factory) -> None:
        svc = _Listener(self._endpoint(spec.description), factory, spec)
        svc._waitingForPort = port if isinstance(port, defer.Deferred) else defer.succeed(port)
        svc.setName(name)
        svc.setServiceParent(self)

    def _remove(self, svc) -> defer.Deferred:
        return defer.maybeDeferred(self.removeService, svc)


# What SRS does not reload (a change is logged and ignored until a restart).
NOT_RELOADABLE = ("daemon", "pid", "srs_log_tank", "srs_log_level", "srs_log_level_v2", "srs_log_file")


def _port_of(description: str) -> str:
    """'tcp:1935:backlog=512:...' -> '1935'."""
    return description.split(":")[1]


class _Spec:
    """One listener as a config asks for it: where (``description``), what
    it serves (``signature``, compared at reload) and how to make its
    factory (``build``)."""

    def __init__(self, description: str, signature, build) -> None:
        self.description = description
        self.signature = signature
        self.build = build


class StartError(Exception):
    """The server cannot start, for a reason one line tells (a port in use)."""


class _Unstartable(service.Service):
    """Stands for a server part the config asks for but this build cannot run: the start fails
    with its reason (as SRS refuses an unknown ``caster``)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def privilegedStartService(self) -> None:
        raise StartError(self.reason)

    def startService(self) -> None:
        raise StartError(self.reason)


class _Listener(internet.StreamServerEndpointService):
    """A listening port that a reload may hand over already bound."""

    def __init__(self, endpoint, factory, spec: _Spec) -> None:
        super().__init__(endpoint, factory)
        self.spec = spec

    def privilegedStartService(self) -> None:
        if self._waitingForPort is None:
            try:
                super().privilegedStartService()
            except CannotListenError as e:
                reason = getattr(e.socketError, "strerror", None) or str(e.socketError)
                host = e.interface or "0.0.0.0"
                where = f"[{host}]:{e.port}" if ":" in host else f"{host}:{e.port}"
                raise StartError(f"{self.name} cannot listen on {where}: {reason}") from None
        else:
            service.Service.privilegedStartService(self)
