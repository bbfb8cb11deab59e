"""The stream a caster publishes: the ``output`` URL's stream, published into the live core.

SRS's casters connect an RTMP client to ``output`` and publish there.  srs-twisted publishes
the same stream locally instead, as an RTMP publisher at that URL would: the vhost is the
URL's host (or its ``?vhost=``), falling back to ``__defaultVhost__``; ``[app]`` and
``[stream]`` in the URL are the caster's names (see :func:`output_request`).  The publish
goes through the policy like any other (``on_connect``, then ``on_publish``, security rules,
one publisher per stream), so hooks, HLS, DASH, DVR and forward follow it; an ``output``
naming another server is therefore published here, not pushed there (``forward`` pushes on).

:class:`CasterPublisher` is one such publish: it holds what arrives while the policy decides
(at most :data:`PENDING_LIMIT` bytes), then writes packets into the source until
:meth:`CasterPublisher.close`.  It is the source's producer, so an API kick or a reload
that stops the stream ends it through ``on_end``.
"""

from __future__ import annotations

from typing import Callable

from ..context import ClientInfo
from ..errors import Denied, InvalidStreamName, StreamBusy
from ..log import ContextLogger
from ..url import StreamRequest, discover, validate_names

__all__ = ["output_request", "CasterPublisher", "PENDING_LIMIT"]

PENDING_LIMIT = 4 * 1024 * 1024  # bytes of media held while the policy decides


def output_request(output: str, app: str = "", stream: str = "") -> StreamRequest:
    """The stream ``output`` names, with SRS's substitutions: ``[app]`` by ``app`` (when
    given), ``[stream]`` by ``stream``, then a trailing ``.flv`` dropped; the last path
    segment is the stream name (its query kept), the rest the app.  Raises
    :class:`InvalidStreamName` when no usable app/stream results."""
    url = output
    if app:
        url = url.replace("[app]", app)
    url = url.replace("[stream]", stream)
    if url.endswith(".flv"):
        url = url[:-4]
    path, sep, query = url.partition("?")
    tc_url, slash, name = path.rpartition("/")
    if not slash or "://" not in tc_url:
        raise InvalidStreamName(f"output {output!r} names no app/stream")
    req = discover(tc_url + (sep + query if sep else ""), name)
    validate_names(req.app, req.stream)
    return req


class CasterPublisher:
    """One caster publish of ``req`` for a peer at ``peer`` (``(ip, port)``).

    ``on_end(reason)`` is called once when the stream must stop from outside (refused by the
    policy, busy, kicked, stopped by the registry); the caster then calls :meth:`close`.
    ``refusal`` then says why as an HTTP status: 404 (vhost not served), 409 (stream busy),
    403 (denied by the policy), or None (kicked, stopped).
    """

    def __init__(self, ctx, req: StreamRequest, peer: tuple[str, int], client_type: str, protocol: str,
                 on_end: Callable[[str], None], log: ContextLogger | None = None) -> None:
        self.ctx = ctx
        self.req = req
        self.on_end = on_end
        self.log = log or ContextLogger()
        self.client = ClientInfo(ip=peer[0], port=peer[1], id=self.log.cid, type=client_type, protocol=protocol,
                                 request=req, publish=True)
        self.client.kick = lambda: self._end("kicked by the API")
        self.received = 0  # bytes the caster counted as received for this publish
        self.client.recv_bytes = lambda: self.received
        self.source = None
        self.allowed = False
        self.published = False
        self.closed = False
        self.packets = 0
        self._pending: list = []
        self._pending_bytes = 0
        self._ended = False
        self.refusal: int | None = None

    def start(self) -> None:
        """Register the client and ask the policy; packets are held until it allows."""
        req = self.req
        conf = self.ctx.vhost(req.vhost)
        if conf is None or not conf.enabled:
            self._end(f"vhost {req.vhost} is not served", 404)
            return
        req.vhost = conf.name
        self.ctx.add_client(self.client)
        self.source = self.client.source = self.ctx.registry.fetch_or_create(req.vhost, req.app, req.stream)
        policy = self.ctx.policy
        d = policy.on_connect(self.client)
        d.addCallback(lambda _: policy.on_publish(self.client))
        d.addCallbacks(self._allowed, self._denied)

    def _allowed(self, _) -> None:
        if self.closed:
            return
        try:
            self.ctx.registry.publish(self.source, self, self.client)
        except StreamBusy as e:
            self.client.publish = False
            self._end(f"stream busy: {e}", 409)
            return
        self.published = self.allowed = True
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        for pkt in pending:
            self.write(pkt)

    def _denied(self, failure) -> None:
        if self.closed:
            return
        self.client.publish = False
        reason = failure.getErrorMessage() if failure.check(Denied) else repr(failure.value)
        self._end(f"publish denied: {reason}", 403)

    def _end(self, reason: str, refusal: int | None = None) -> None:
        if self._ended or self.closed:
            return
        self._ended = True
        self.refusal = refusal
        self.on_end(reason)

    def write(self, pkt) -> None:
        """One MediaPacket of the stream (held while the policy decides)."""
        if self.closed:
            return
        if not self.allowed:
            size = len(pkt.payload)
            if self._pending_bytes + size <= PENDING_LIMIT:
                self._pending.append(pkt)
                self._pending_bytes += size
            return
        self.packets += 1
        self.source.write(pkt)

    # -- the source's producer -------------------------------------------------

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        self._end("stopped by the stream")

    # -- end ---------------------------------------------------------------------

    def close(self) -> None:
        """End the publish (idempotent): unpublish, hooks, forget the client."""
        if self.closed:
            return
        self.closed = True
        ctx = self.ctx
        self._pending = []
        if self.source is None:
            return
        if self.published:
            self.published = False
            self.client.publish = False
            ctx.registry.unpublish(self.source)
            ctx.policy.on_unpublish(self.client)
        else:
            self.source.release_if_idle()
        ctx.remove_client(self.client)
        ctx.policy.on_close(self.client)
