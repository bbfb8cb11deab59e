"""SRS's edge (``cluster { mode remote; origin A:1935 B:1935; }``).

- **Play**: the first player of a stream makes the edge pull it, once, from
  an origin (RTMP play, or HTTP-FLV with ``protocol flv|flvs``) and publish
  it into the local source; later players share that pull.  The pull stops
  :data:`EDGE_STOP_DELAY` seconds after the last player left.  On an
  upstream error the next origin is tried, with backoff; the local source
  stays published meanwhile, so players stay connected and only see a gap.
- **Publish**: a stream published to the edge is pushed to the origins (a
  :class:`~srs_twisted.cluster.forward.Forwarder` trying them in turn).
- **token_traverse**: :class:`~.traverse.TokenTraversePolicy` asks an origin,
  with the client's own tcUrl and stream, before the edge accepts the client.
"""

from __future__ import annotations

from functools import partial

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from ..context import ClientInfo
from ..interfaces import IStreamObserver
from ..log import ContextLogger
from ..url import DEFAULT_VHOST, StreamRequest
from .forward import Forwarder, chunk_size_for, publisher_request
from .supervise import Supervisor
from .upstream import (
    Target,
    first_player_request,
    flv_connect,
    flv_url,
    identity,
    parse_hostport,
    rtmp_connect,
    rtmp_target,
)

# The pull stops this long after the last player left (a player that comes
# back at once, e.g. a page reload, finds it still running).
EDGE_STOP_DELAY = 3.0
# An upstream that sends nothing for this long is dropped and the next
# origin tried (SRS_EDGE_INGESTER_TIMEOUT).
EDGE_RECV_TIMEOUT = 5.0
EDGE_CHECK_INTERVAL = 1.0
# After an upstream switch the new upstream's first packet comes this many
# ms after the last one of the old.
REBASE_STEP_MS = 10
# Players are waiting: an edge pull retries at most this long after a failure
# (forward backs off up to 30 s; SRS retries both every 3 s).
EDGE_RETRY_MAX = 5.0


def edge_conf(ctx, vhost: str):
    """The vhost's config if it is an edge with origins, else None."""
    conf = ctx.vhost(vhost)
    if conf is None or not conf.enabled or not conf.cluster.is_edge or not conf.cluster.origin:
        return None
    return conf


def upstream_vhost(conf, vhost: str) -> str:
    """``cluster.vhost`` (default ``[vhost]``) with the vhost filled in."""
    return (conf.cluster.vhost or "[vhost]").replace("[vhost]", vhost)


def pull_protocol(conf, req: StreamRequest | None) -> str:
    """rtmp, flv or flvs: the config's, or the first player's with follow_client."""
    proto = conf.cluster.protocol or "rtmp"
    if conf.cluster.follow_client and req is not None:
        if req.schema in ("http", "ws"):
            proto = "flv"
        elif req.schema in ("https", "wss"):
            proto = "flvs"
        elif req.schema.startswith("rtmp"):
            proto = "rtmp"
    return proto


@implementer(IPushProducer)
class EdgePull:
    """Pulls one stream from the origins into the local source.  It is the
    source's publisher from start to stop, across upstream reconnects."""

    def __init__(self, ctx, source, request: StreamRequest, *, connect_rtmp=rtmp_connect,
                 connect_flv=flv_connect, on_stopped=None, supervisor_options: dict | None = None) -> None:
        self.ctx = ctx
        self.source = source
        self.request = request
        self._connect_rtmp = connect_rtmp
        self._connect_flv = connect_flv
        self._on_stopped = on_stopped
        self.log = ContextLogger(source.id or None)
        self.info = ClientInfo(ip="", id=self.log.cid, type="edge-pull", protocol="rtmp",
                               request=request, publish=True, source=source)
        options = {"maximum": EDGE_RETRY_MAX, **(supervisor_options or {})}
        self.supervisor = Supervisor(
            ctx.clock, self._attempt, what=f"edge-pull {source.url}", log=self.log,
            on_connected=self._on_connected, on_lost=self._on_lost, **options,
        )
        self.running = False
        self.origin = ""  # host:port of the current (or last) upstream
        self.conn = None
        self.packets = 0
        self.connections = 0
        self._generation = 0
        self._last_packet = 0.0
        self._check_call = None
        # Each upstream has its own timeline; the next one is rebased to go
        # on where the last left off (players never see time go back).
        self._last_dts: int | None = None
        self._offset = 0
        self._rebase = False
        self._redirect = ""  # an origin's RTMP 302: the next attempt goes there

    # ---- life ----------------------------------------------------------------
    def start(self) -> None:
        self.running = True
        self.ctx.registry.publish(self.source, self)
        self.source.publisher_info = self.info
        self.log.trace(f"edge: pull {self.source.url} for {len(self.source.consumers)} player(s)")
        self.supervisor.start()
        self._check_call = self.ctx.clock.callLater(EDGE_CHECK_INTERVAL, self._check)

    def stop(self):
        """Stop pulling and unpublish the local source (players stay
        subscribed).  Fires once the upstream is closed."""
        if not self.running:
            return defer.succeed(None)
        self.running = False
        if self._check_call is not None and self._check_call.active():
            self._check_call.cancel()
        self._check_call = None
        d = self.supervisor.stop()
        if self.source.publisher is self:
            self.ctx.registry.unpublish(self.source)
        self.log.trace(f"edge: stop pulling {self.source.url} from {self.origin or '-'}, packets={self.packets}")
        if self._on_stopped is not None:
            self._on_stopped(self)
        return d

    # ---- IPushProducer (the source's publisher) -----------------------------
    def pauseProducing(self) -> None:
        transport = getattr(self.conn, "transport", None)
        if transport is not None:
            transport.pauseProducing()

    def resumeProducing(self) -> None:
        transport = getattr(self.conn, "transport", None)
        if transport is not None:
            transport.resumeProducing()

    def stopProducing(self) -> None:
        """The source's kick: stop the pull."""
        self.stop()

    # ---- upstream ------------------------------------------------------------
    def _attempt(self):
        conf = edge_conf(self.ctx, self.source.vhost)
        if conf is None:
            return defer.fail(RuntimeError(f"vhost {self.source.vhost} is no longer an edge with origins"))
        if self._redirect:
            url, self._redirect = self._redirect, ""
            host, port, _ = parse_hostport(url, 1935)
            return self._connect(conf, f"{host}:{port}", "rtmp", upstream_vhost(conf, self.source.vhost))
        origins = conf.cluster.origin
        origin = origins[(self.supervisor.attempts - 1) % len(origins)]
        return self._connect(conf, origin, pull_protocol(conf, self.request), upstream_vhost(conf, self.source.vhost))

    def _connect(self, conf, origin: str, proto: str, vhost: str):
        """Connect to ``origin`` (host:port) with ``proto`` (rtmp, flv, flvs)
        and play the stream as ``vhost``."""
        self._generation += 1
        on_packet = partial(self._on_packet, self._generation)
        req = self.request
        self.info.protocol = proto
        if proto in ("flv", "flvs"):
            schema = "http" if proto == "flv" else "https"
            host, port, _ = parse_hostport(origin, 80 if schema == "http" else 443)
            self.origin = f"{host}:{port}"
            url = flv_url(schema, host, port, self.source.app, self.source.stream, req.param)
            self.log.trace(f"edge: pull {self.source.url} from {url}")
            host_header = vhost if vhost != DEFAULT_VHOST else None
            return self._connect_flv(self.ctx.clock, url, on_packet, host_header=host_header)
        host, port, _ = parse_hostport(origin, 1935)
        self.origin = f"{host}:{port}"
        target = rtmp_target(host, port, req.host, vhost, self.source.app, self.source.stream, req.param)
        self.info.ip = host
        self.log.trace(f"edge: pull {self.source.url} from {self.origin} as {target.url}")
        d = self._connect_rtmp(self.ctx.clock, target, "play", on_packet=on_packet,
                               chunk_size=chunk_size_for(self.ctx, conf), connect_extra=identity(self.log.cid))
        d.addErrback(self._redirected)
        return d

    def _redirected(self, failure):
        url = getattr(failure.value, "url", "")
        if isinstance(url, str) and url:
            self._follow(url)
        return failure

    def _follow(self, url: str) -> None:
        self.log.warn(f"edge: RTMP redirect {self.source.url} from {self.origin} to {url}")
        self._redirect = url

    def _on_connected(self, conn) -> None:
        self.conn = conn
        self.connections += 1
        self._last_packet = self.ctx.clock.seconds()
        self._rebase = self._last_dts is not None
        self.log.trace(f"edge: connected to origin {self.origin} for {self.source.url}")

    def _on_lost(self, conn) -> None:
        redirect = getattr(conn, "redirect", "")
        if isinstance(redirect, str) and redirect:
            self._follow(redirect)
        if self.conn is conn:
            self.conn = None
            self._generation += 1  # late packets of that connection are ignored

    def _on_packet(self, generation: int, pkt) -> None:
        if generation != self._generation or self.source.publisher is not self:
            return
        self.packets += 1
        self._last_packet = self.ctx.clock.seconds()
        if not pkt.is_data:
            if self._rebase:
                self._rebase = False
                self._offset = self._last_dts + REBASE_STEP_MS - pkt.dts
            if self._offset:
                pkt = pkt.retimed(pkt.dts + self._offset)
            self._last_dts = pkt.dts
        self.source.write(pkt)

    def _check(self) -> None:
        self._check_call = None
        if not self.running:
            return
        conn = self.conn
        idle = self.ctx.clock.seconds() - self._last_packet
        if conn is not None and idle > EDGE_RECV_TIMEOUT:
            self.log.warn(f"edge: no data from origin {self.origin} for {idle:.1f}s, try the next origin")
            self._drop(conn)
        self._check_call = self.ctx.clock.callLater(EDGE_CHECK_INTERVAL, self._check)

    def _drop(self, conn) -> None:
        """Close the upstream now (its late packets are ignored); the
        supervisor makes the next attempt."""
        self._generation += 1
        transport = getattr(conn, "transport", None)
        if transport is not None and hasattr(transport, "abortConnection"):
            transport.abortConnection()
        else:
            conn.close()
        self._last_packet = self.ctx.clock.seconds()


class PullBook:
    """The pulls of an observer, one per source (``pulls``), each stopped
    :data:`EDGE_STOP_DELAY` seconds after its last player left."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.pulls: dict = {}  # source -> EdgePull
        self._stop_calls: dict = {}  # source -> DelayedCall (stop the pull)

    def _schedule_stop(self, source) -> None:
        if source in self.pulls and source not in self._stop_calls:
            self._stop_calls[source] = self.ctx.clock.callLater(EDGE_STOP_DELAY, self._stop_pull, source)

    def _cancel_stop(self, source) -> None:
        call = self._stop_calls.pop(source, None)
        if call is not None and call.active():
            call.cancel()

    def _stop_pull(self, source) -> None:
        self._stop_calls.pop(source, None)
        pull = self.pulls.get(source)
        if pull is not None and not source.consumers:
            pull.stop()

    def _pull_stopped(self, pull) -> None:
        if self.pulls.get(pull.source) is pull:
            del self.pulls[pull.source]
        self._cancel_stop(pull.source)


@implementer(IStreamObserver)
class EdgeObserver(PullBook):
    """A registry observer for edge vhosts: starts and stops pulls as
    players come and go, and pushes streams published on the edge to the
    origins."""

    def __init__(self, ctx, connect_rtmp=rtmp_connect, connect_flv=flv_connect,
                 supervisor_options: dict | None = None) -> None:
        super().__init__(ctx)
        self._connect_rtmp = connect_rtmp
        self._connect_flv = connect_flv
        self._options = supervisor_options
        self.pushes: dict = {}  # source -> Forwarder
        self._push_calls: dict = {}  # source -> DelayedCall (start the push)

    # ---- play: pulls ---------------------------------------------------------
    def source_players_changed(self, source) -> None:
        if source.consumers:
            self._cancel_stop(source)
            if source in self.pulls or source.publisher is not None:
                return
            if edge_conf(self.ctx, source.vhost) is None:
                return
            req = first_player_request(self.ctx, source) or StreamRequest(
                vhost=source.vhost, app=source.app, stream=source.stream)
            pull = EdgePull(self.ctx, source, req, connect_rtmp=self._connect_rtmp, connect_flv=self._connect_flv,
                            on_stopped=self._pull_stopped, supervisor_options=self._options)
            self.pulls[source] = pull
            pull.start()
        else:
            self._schedule_stop(source)


    # ---- publish: pushes -----------------------------------------------------
    def source_published(self, source) -> None:
        if isinstance(source.publisher, EdgePull):
            return
        if edge_conf(self.ctx, source.vhost) is None:
            return
        # publisher_info is attached right after the publish: start next turn.
        self._push_calls[source] = self.ctx.clock.callLater(0, self._start_push, source, source.publisher)

    def _start_push(self, source, publisher) -> None:
        self._push_calls.pop(source, None)
        if source.publisher is not publisher or source in self.pushes:
            return
        conf = edge_conf(self.ctx, source.vhost)
        if conf is None:
            return
        req = publisher_request(source)

        def targets(attempt: int) -> Target:
            now = edge_conf(self.ctx, source.vhost) or conf
            origins = now.cluster.origin
            host, port, _ = parse_hostport(origins[attempt % len(origins)], 1935)
            return rtmp_target(host, port, req.host, upstream_vhost(now, source.vhost),
                               source.app, source.stream, req.param)

        push = Forwarder(self.ctx, source, targets, what="edge-push", connect=self._connect_rtmp,
                         supervisor_options=self._options)
        self.pushes[source] = push
        push.start()

    def source_unpublished(self, source) -> None:
        call = self._push_calls.pop(source, None)
        if call is not None and call.active():
            call.cancel()
        push = self.pushes.pop(source, None)
        if push is not None:
            push.stop()
        if isinstance(source.publisher, EdgePull) or not source.consumers:
            return
        # A local publisher left an edge stream that still has players: pull
        # it from the origins (once the source is really unpublished).
        if edge_conf(self.ctx, source.vhost) is not None:
            self.ctx.clock.callLater(0, self._pull_if_played, source)

    def _pull_if_played(self, source) -> None:
        if self.ctx.registry.get(source.vhost, source.app, source.stream) is source:
            self.source_players_changed(source)


__all__ = ["EDGE_RECV_TIMEOUT", "EDGE_RETRY_MAX", "EDGE_STOP_DELAY", "EdgeObserver", "EdgePull", "PullBook"]
