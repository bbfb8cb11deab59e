"""What every protocol adapter shares: config, registry, clients, policy.

A :class:`ServerContext` is built once by the service (or by an application
embedding the protocol classes) and handed to each factory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from twisted.internet import defer

from .live.registry import StreamRegistry, new_id
from .live.source import SourceOptions
from .url import StreamRequest


@dataclass(eq=False)
class ClientInfo:
    """One connected client as the HTTP API and the hooks see it."""

    ip: str
    port: int = 0
    id: str = field(default_factory=new_id)
    type: str = "unknown"  # 'fmle-publish', 'flash-publish', 'rtmp-play', 'flv-play'...
    protocol: str = "rtmp"
    request: StreamRequest = field(default_factory=StreamRequest)
    page_url: str = ""
    swf_url: str = ""
    publish: bool = False
    started: float = field(default_factory=time.time)
    recv_bytes: Callable[[], int] = lambda: 0
    send_bytes: Callable[[], int] = lambda: 0
    kick: Callable[[], None] = lambda: None
    source: object = None


class AllowAll:
    """The default policy: every connect, publish and play is allowed.

    Each ``on_*`` returns a Deferred that fires to allow or fails (with
    :class:`~srs_twisted.errors.Denied`) to refuse.  The HTTP hooks and the
    security rules replace this object."""

    def on_connect(self, client: ClientInfo):
        return defer.succeed(None)

    def on_publish(self, client: ClientInfo):
        return defer.succeed(None)

    def on_play(self, client: ClientInfo):
        return defer.succeed(None)

    def on_unpublish(self, client: ClientInfo) -> None:
        pass

    def on_stop(self, client: ClientInfo) -> None:
        pass

    def on_close(self, client: ClientInfo) -> None:
        pass


class ServerContext:
    def __init__(self, config, clock, policy=None) -> None:
        self.config = config
        self.clock = clock
        self.policy = policy or AllowAll()
        # The HTTP hooks (on_dvr, on_hls...), when the server installed them.
        self.hooks = None
        # LL-HLS streams the HTTP server serves from memory (an
        # srs_twisted.hls.resource.HlsMemory, made by the first stream with
        # hls_low_latency on); None while there is none.
        self.hls_memory = None
        # The stream directory's relay (srs_twisted.cluster.relay.ClusterRelay)
        # when streams are shared with other nodes (origin cluster, workers).
        self.cluster = None
        # SRS's circuit breaker (srs_twisted.breaker), sampled once a second by the
        # service from the process's CPU.
        from .breaker import CircuitBreaker

        self.breaker = CircuitBreaker(config.circuit_breaker) if hasattr(config, "circuit_breaker") else None
        self.registry = StreamRegistry(clock, self.source_options)
        self.clients: dict[str, ClientInfo] = {}
        # The clients of each stream, (vhost, app, stream) -> {id: client}, so a
        # stream's view never scans every client; kept by add_client,
        # remove_client and stream_changed.
        self._stream_clients: dict[tuple[str, str, str], dict[str, ClientInfo]] = {}
        self._client_stream: dict[str, tuple[str, str, str]] = {}
        # Server-wide counters (SRS's srs_*_total metrics); bytes of clients
        # still connected are in their own ClientInfo.
        self.totals = {"clients": 0, "client_errors": 0, "recv_bytes": 0, "send_bytes": 0}
        # Open TCP connections of every listener (what max_connections
        # bounds; see srs_twisted.limits).
        self.connections = 0
        self.started = clock.seconds()
        self.server_id = getattr(config, "server_id", "") or new_id("vid-", 7)
        self.service_id = new_id("", 8)

    def source_options(self, vhost: str) -> SourceOptions:
        conf = self.config.vhost(vhost)
        if conf is None:
            return SourceOptions()
        return SourceOptions.from_play_config(conf.play)

    def vhost(self, name: str):
        """The vhost config serving ``name`` (exact, else __defaultVhost__), or None."""
        return self.config.vhost(name)

    def add_client(self, client: ClientInfo) -> None:
        self.clients[client.id] = client
        self.totals["clients"] += 1
        self.stream_changed(client)

    def stream_changed(self, client: ClientInfo) -> None:
        """File ``client`` under the stream its request names now; an adapter
        calls this when it sets a connected client's request to a stream
        (an RTMP client's publish or play)."""
        self._unfile(client)
        req = client.request
        if req.stream and client.id in self.clients:
            key = (req.vhost, req.app, req.stream)
            self._stream_clients.setdefault(key, {})[client.id] = client
            self._client_stream[client.id] = key

    def _unfile(self, client: ClientInfo) -> None:
        key = self._client_stream.pop(client.id, None)
        if key is not None:
            mine = self._stream_clients[key]
            del mine[client.id]
            if not mine:
                del self._stream_clients[key]

    def stream_clients(self, vhost: str, app: str, stream: str) -> dict[str, ClientInfo]:
        """The connected clients (publisher and players) of one stream, by id,
        in the order they joined it."""
        return self._stream_clients.get((vhost, app, stream), {})

    def remove_client(self, client: ClientInfo, error: bool = False) -> None:
        """Forget a client that left; ``error`` when it was closed for a fault."""
        if self.clients.pop(client.id, None) is None:
            return
        self._unfile(client)
        self.totals["recv_bytes"] += client.recv_bytes()
        self.totals["send_bytes"] += client.send_bytes()
        if error:
            self.totals["client_errors"] += 1

    def recv_bytes(self) -> int:
        """All bytes received so far, by clients gone and present."""
        return self.totals["recv_bytes"] + sum(c.recv_bytes() for c in self.clients.values())

    def send_bytes(self) -> int:
        return self.totals["send_bytes"] + sum(c.send_bytes() for c in self.clients.values())

    def kick(self, client_id: str) -> bool:
        client = self.clients.get(client_id)
        if client is None:
            return False
        client.kick()
        return True
