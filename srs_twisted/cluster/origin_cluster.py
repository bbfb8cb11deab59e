"""The origin cluster as a server part: this node's identity and endpoints,
the Redis directories of the vhosts that name one, and the relay that
registers local streams and pulls remote ones (:mod:`.relay`).

A node advertises the host of its listen directives when they name one
(``listen 10.0.0.5:1935``), else the address it was told to bind, else its
first non-loopback address (as the heartbeat reports it).  Its id is its
RTMP endpoint, so a restarted origin takes its own streams back at once.
"""

from __future__ import annotations

from twisted.application import service

from .directory import Owner

_WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def _split(listen: str) -> tuple[str, str]:
    listen = listen.strip()
    if listen.startswith("["):
        host, _, port = listen[1:].partition("]")
        return host, port.lstrip(":")
    if ":" in listen:
        host, _, port = listen.rpartition(":")
        return host, port
    return "", listen


def advertised_host(config, bind_host: str = "", ips=None) -> str:
    for listen in list(config.listen):
        host, _ = _split(listen)
        if host not in _WILDCARDS:
            return host
    if bind_host not in _WILDCARDS:
        return bind_host
    if ips is None:
        from ..heartbeat import local_ips

        ips = local_ips
    found = [ip for ip in ips() if ":" not in ip]
    return found[0] if found else "127.0.0.1"


def node_endpoints(config, host: str) -> dict:
    """kind -> host:port of this server's services (the first listen of each)."""
    def endpoint(listens) -> str:
        if not listens:
            return ""
        h, port = _split(listens[0])
        h = host if h in _WILDCARDS else h
        return f"[{h}]:{port}" if ":" in h else f"{h}:{port}"

    out = {"rtmp": endpoint(config.listen)}
    if config.http_server.enabled:
        out["http"] = endpoint(config.http_server.listens)
    if config.http_api.enabled:
        out["api"] = endpoint(config.http_api.listens)
    if config.rtc_server.enabled:
        out["rtc"] = endpoint(config.rtc_server.listens)
    if config.srt_server.enabled:
        out["srt"] = endpoint(config.srt_server.listens)
    return {k: v for k, v in out.items() if v}


def this_node(config, bind_host: str = "") -> Owner:
    endpoints = node_endpoints(config, advertised_host(config, bind_host))
    return Owner(endpoints["rtmp"], endpoints)


def uses_redis(config) -> bool:
    return any(v.cluster.uses_redis for v in getattr(config, "vhosts", {}).values())


class OriginClusterService(service.Service):
    """Starts and stops the Redis directories and the relay's pulls.

    In a worker of ``workers N`` (``local_for`` given: vhost -> the supervisor's
    directory or None; ``local_node``: the worker as the other workers reach it),
    ``node`` is the machine as other machines reach it and every vhost in the
    Redis cluster gets a :class:`~.chained.ChainedDirectory` (this machine's
    workers first, then Redis); the relay's own node is the worker."""

    name = "origin-cluster"

    def __init__(self, ctx, bind_host: str = "", node: Owner | None = None, local_for=None,
                 local_node: Owner | None = None) -> None:
        from .redis_directory import RedisDirectories
        from .relay import install

        self.ctx = ctx
        self.node = node or this_node(ctx.config, bind_host)
        self.directories = RedisDirectories(ctx, self.node)
        self.local_for = local_for
        self._chained: dict = {}
        directory_for = self.directories.for_vhost if local_for is None else self.chained_for
        self.relay = install(ctx, directory_for, local_node if local_for is not None else self.node)

    def chained_for(self, vhost: str):
        """The directory of ``vhost`` in a worker: chained for the Redis cluster's
        vhosts, the supervisor's for the others (None on edges)."""
        from .chained import ChainedDirectory

        local, remote = self.local_for(vhost), self.directories.for_vhost(vhost)
        if remote is None or local is None:
            return remote if local is None else local  # an edge's Redis (HLS), or the workers' only
        chained = self._chained.get(id(remote))
        if chained is None or chained.remote is not remote:
            chained = self._chained[id(remote)] = ChainedDirectory(local, remote, self.node)
        return chained

    def startService(self) -> None:
        super().startService()
        worker = f", this worker is node {self.relay.node.node} on it" if self.local_for is not None else ""
        self.relay.log.trace(f"cluster: origin cluster node {self.node.node}, endpoints {self.node.endpoints}{worker}")
        self.directories.start()

    def stopService(self):
        super().stopService()
        d = self.relay.stop()
        d.addBoth(lambda _: self.directories.stop())
        return d


__all__ = ["OriginClusterService", "advertised_host", "node_endpoints", "this_node", "uses_redis"]
