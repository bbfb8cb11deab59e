"""SRS's ``forward``: push every stream a vhost publishes to other servers.

::

    vhost __defaultVhost__ {
        forward {
            enabled on;
            destination 127.0.0.1:19350 10.0.0.2:1935/archive/[stream];
            # or ask a web service per publish:  backend http://127.0.0.1:8085/api/v1/forward;
        }
    }

One :class:`Forwarder` per destination taps the source and publishes with the
RTMP client.  The tap never blocks the stream: while a destination is down
(or its socket is full) packets are dropped, and once it is back the
forwarder starts again with the metadata and sequence headers at the next
keyframe.  A destination that is down is retried with backoff
(:mod:`.supervise`); everything stops when the publish ends.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from ..context import ClientInfo
from ..codec.errors import CodecError
from ..interfaces import IStreamObserver
from ..log import ContextLogger, log_unexpected
from ..rtmp.errors import RtmpError
from ..url import StreamRequest
from .supervise import Supervisor
from .upstream import Target, identity, parse_hostport, rtmp_connect, rtmp_target, target_from_url


def chunk_size_for(ctx, vhost_conf) -> int:
    """SRS's get_chunk_size(vhost): the vhost's, else the global one."""
    size = getattr(vhost_conf, "chunk_size", 0) if vhost_conf is not None else 0
    return int(size or getattr(ctx.config, "chunk_size", 0) or 60000)


def publisher_request(source) -> StreamRequest:
    """The publisher's request (host and query matter upstream), or one made
    from the source when the publisher attached none."""
    info = source.publisher_info
    req = getattr(info, "request", None)
    if req is not None and req.stream:
        return req
    return StreamRequest(vhost=source.vhost, app=source.app, stream=source.stream)


def destination_target(dest: str, source, req: StreamRequest | None = None) -> Target:
    """``HOST[:PORT][/APP[/STREAM]]`` -> the target SRS's forwarder would use:
    the source's app and stream unless the destination names others
    (``[app]``/``[stream]`` are replaced), the vhost in the tcUrl and the
    publisher's query on the stream."""
    req = req or publisher_request(source)
    host, port, path = parse_hostport(dest)
    app, stream = source.app, source.stream
    path = path.strip("/")
    if path:
        if "/" in path:
            app, _, stream = path.rpartition("/")
        else:
            app = path
        app = app.replace("[app]", source.app).replace("[stream]", source.stream)
        stream = stream.replace("[app]", source.app).replace("[stream]", source.stream)
    return rtmp_target(host, port, req.host, source.vhost, app, stream, req.param)


@implementer(IPushProducer)
class Forwarder:
    """Publishes one source to one upstream while the source is published.

    ``targets(attempt)`` gives the :class:`Target` of each attempt (0, 1,
    ...): a fixed destination, or origins in turn for an edge.  ``connect``
    is :func:`rtmp_connect`'s signature (tests pass fakes)."""

    def __init__(self, ctx, source, targets: Callable[[int], Target], *, what: str = "forward",
                 connect=rtmp_connect, chunk_size: int | None = None, supervisor_options: dict | None = None) -> None:
        self.ctx = ctx
        self.source = source
        self._targets = targets
        self._connect = connect
        self.what = what
        self.log = ContextLogger(source.id or None)
        self.chunk_size = chunk_size or chunk_size_for(ctx, ctx.vhost(source.vhost))
        self.target: Target | None = None
        self.conn = None
        self.waiting = True  # for a keyframe before sending anything
        self.paused = False  # the upstream's socket is full
        self.sent = 0
        self.dropped = 0
        self.connections = 0
        self.supervisor = Supervisor(
            ctx.clock, self._attempt, what=f"{what} {source.url}", log=self.log,
            on_connected=self._on_connected, on_lost=self._on_lost, **(supervisor_options or {}),
        )

    # ---- life ----------------------------------------------------------------
    def start(self) -> None:
        self.source.add_tap(self._tap, replay_headers=False)
        self.supervisor.start()

    def stop(self):
        """Stop retrying and close the upstream.  Fires once it is closed."""
        self.source.remove_tap(self._tap)
        return self.supervisor.stop()

    @property
    def connected(self) -> bool:
        return self.conn is not None

    def _attempt(self):
        self.target = target = self._targets(self.supervisor.attempts - 1)
        self.log.trace(f"{self.what}: start {self.source.url} of source=[{self.source.id}] to "
                       f"{target.endpoint} as {target.url}")
        return self._connect(self.ctx.clock, target, "publish", chunk_size=self.chunk_size,
                             connect_extra=identity(self.log.cid))

    def _on_connected(self, conn) -> None:
        self.conn = conn
        self.connections += 1
        self.waiting = True
        self.paused = False
        transport = getattr(conn, "transport", None)
        if transport is not None and hasattr(transport, "registerProducer"):
            transport.registerProducer(self, True)
        self.log.trace(f"{self.what}: publish url {self.target.url} on {self.target.endpoint} ok, "
                       f"waiting for a keyframe")

    def _on_lost(self, conn) -> None:
        if self.conn is conn:
            self.conn = None
        self.log.trace(f"{self.what}: {self.target.endpoint if self.target else '?'} disconnected, "
                       f"sent={self.sent} dropped={self.dropped}")

    # ---- IPushProducer: the upstream's socket says when it is full ----------
    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        if self.paused:
            self.paused = False
            self.waiting = True  # what was dropped meanwhile ends a GOP early

    def stopProducing(self) -> None:
        self.paused = True

    # ---- the tap: called with every packet the source appends --------------
    def _tap(self, pkt) -> None:
        conn = self.conn
        if conn is None or self.paused:
            self.dropped += 1
            return
        try:
            if self.waiting:
                if pkt.sequence_header or pkt.is_data:
                    return  # the source keeps them; they go out with the keyframe
                if self.source.video_sh is not None and not (pkt.is_video and pkt.keyframe):
                    self.dropped += 1
                    return
                self.waiting = False
                source = self.source
                for header in (source.metadata, source.video_sh, source.audio_sh):
                    if header is not None:
                        conn.write(header if header.is_data or header.dts == pkt.dts else header.retimed(pkt.dts))
            conn.write(pkt)
            self.sent += 1
        except Exception as e:  # noqa: BLE001 - the tap must never raise (the source would drop it)
            what = f"{self.what}: write to {self.target.endpoint if self.target else '?'} failed"
            if isinstance(e, (RtmpError, CodecError, ValueError, OSError)):
                self.log.error(f"{what}: {e!r}")
            else:
                log_unexpected(self.log, what, e)
            self.conn = None
            transport = getattr(conn, "transport", None)
            if transport is not None:
                transport.abortConnection()
            else:
                conn.close()


@implementer(IStreamObserver)
class ForwardObserver:
    """A registry observer: starts the forwarders of a stream when it is
    published on a vhost with ``forward { enabled on; }`` and stops them
    when it is unpublished."""

    def __init__(self, ctx, connect=rtmp_connect, supervisor_options: dict | None = None) -> None:
        self.ctx = ctx
        self._connect = connect
        self._options = supervisor_options
        self.forwarders: dict = {}  # source -> [Forwarder]
        self._pending: dict = {}  # source -> DelayedCall or Deferred (backend)

    def source_published(self, source) -> None:
        conf = self.ctx.vhost(source.vhost)
        if conf is None or not conf.forward.enabled:
            return
        if not conf.forward.destination and not conf.forward.backend:
            return
        if getattr(source.publisher, "relay", False):  # forwarded where it is published
            return
        self._cancel(source)
        # The publishing adapter attaches publisher_info right after the
        # publish: read it on the next turn of the reactor.
        self._pending[source] = self.ctx.clock.callLater(0, self._start, source, source.publisher)

    def source_unpublished(self, source) -> None:
        self._cancel(source)
        for fwd in self.forwarders.pop(source, []):
            fwd.stop()

    def _cancel(self, source) -> None:
        pending = self._pending.pop(source, None)
        if pending is None:
            return
        if hasattr(pending, "active"):
            if pending.active():
                pending.cancel()
        else:
            pending.cancel()

    def _start(self, source, publisher) -> None:
        self._pending.pop(source, None)
        if source.publisher is not publisher or publisher is None:
            return
        conf = self.ctx.vhost(source.vhost)
        if conf is None or not conf.forward.enabled:
            return
        log = ContextLogger(source.id or None)
        backend = conf.forward.backend
        if backend and self.ctx.hooks is not None:
            info = source.publisher_info
            if info is None:
                req = publisher_request(source)
                info = ClientInfo(ip="", request=req, source=source, publish=True)
            d = self.ctx.hooks.on_forward(info, backend)
            self._pending[source] = d

            def got(urls):
                if self._pending.get(source) is d:
                    del self._pending[source]
                if source.publisher is not publisher:
                    return
                if not urls:
                    log.trace(f"forward: backend {backend} gave no destination for {source.url}")
                targets = []
                for url in urls:
                    try:
                        targets.append(target_from_url(url))
                    except ValueError as e:
                        log.warn(f"forward: ignore bad url {url!r} from {backend}: {e}")
                self._launch(source, targets)

            def failed(failure):
                if self._pending.get(source) is d:
                    del self._pending[source]
                from twisted.internet.defer import CancelledError

                if failure.check(CancelledError) or source.publisher is not publisher:
                    return
                # SRS fails the publish when the forward backend fails.
                log.error(f"forward: {failure.getErrorMessage()}; kick the publisher of {source.url}")
                source.kick_publisher()

            d.addCallbacks(got, failed)
            return
        req = publisher_request(source)
        targets = []
        for dest in conf.forward.destination:
            try:
                targets.append(destination_target(dest, source, req))
            except ValueError as e:
                log.warn(f"forward: ignore bad destination {dest!r}: {e}")
        self._launch(source, targets)

    def _launch(self, source, targets) -> None:
        started = self.forwarders.setdefault(source, [])
        for target in targets:
            fwd = Forwarder(self.ctx, source, lambda _n, t=target: t, connect=self._connect,
                            supervisor_options=self._options)
            started.append(fwd)
            fwd.start()


__all__ = ["Forwarder", "ForwardObserver", "chunk_size_for", "destination_target", "publisher_request"]
