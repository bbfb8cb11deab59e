"""The HTTP server: live streams, WebSocket streams, static files, and the
API when it shares the port (SRS's ``http_server`` and ``http_api``)."""

from __future__ import annotations

from urllib.parse import urlencode

from twisted.web import resource, server

from ..context import ClientInfo
from ..directwrite import body_writer, response_writer
from ..errors import Denied, InvalidStreamName, Overloaded
from ..log import ContextLogger
from ..url import StreamRequest, validate_names
from . import stream as st
from .paths import BadPath, normalize_request
from .site import HeaderTimeoutSite, StaticFile

# Paths the API owns when API and HTTP server share one port.
API_PREFIXES = ("/api/", "/rtc/", "/metrics", "/gb/")

# SRS's CORS headers (SrsHttpCorsMux): no credentials, so "*" for the rest.
CORS_HEADERS = (
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-headers", b"*"),
    (b"access-control-allow-methods", b"*"),
    (b"access-control-expose-headers", b"*"),
    (b"access-control-allow-credentials", b"false"),
    (b"access-control-request-private-network", b"true"),
)


def _host(request) -> str:
    host = (request.getHeader(b"host") or b"").decode("latin-1")
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.partition(":")[0]


def cors(request) -> None:
    for name, value in CORS_HEADERS:
        request.setHeader(name, value)


class ErrorPage(resource.Resource):
    """A short plain-text error answer."""

    isLeaf = True

    def __init__(self, code: int = 404, text: str = "Not Found") -> None:
        super().__init__()
        self.code, self.text = code, text

    def render(self, request):
        body = self.text.encode("utf-8")
        request.setResponseCode(self.code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"content-length", b"%d" % len(body))
        return b"" if request.method == b"HEAD" else body


def NotFound() -> ErrorPage:
    return ErrorPage(404, "Not Found")


class Preflight(resource.Resource):
    """OPTIONS, as SRS's CORS mux answers it: 200 and no body with
    ``crossdomain on``, else 405."""

    isLeaf = True

    def __init__(self, crossdomain: bool) -> None:
        super().__init__()
        self.crossdomain = crossdomain

    def render(self, request):
        request.setResponseCode(200 if self.crossdomain else 405)
        request.setHeader(b"content-length", b"0")
        return b""


class PlayerSession:
    """What one HTTP or WebSocket player adds to the server: a client entry,
    the policy checks, and its consumer of the live source."""

    def __init__(self, ctx, match: st.StreamMatch, ip: str, port: int, host: str, query: dict, protocol: str):
        self.ctx = ctx
        self.match = match
        self.log = ContextLogger()
        scheme = "ws" if protocol == "ws" else "http"
        param = ("?" + urlencode(query)) if query else ""
        req = StreamRequest(
            schema=scheme,
            host=host,
            vhost=match.vhost,
            app=match.app,
            stream=match.stream,
            param=param,
            tc_url=f"{scheme}://{host}/{match.app}",
        )
        self.client = ClientInfo(ip=ip, port=port, id=self.log.cid, protocol=protocol, request=req)
        self.client.type = st.PLAY_TYPES[match.fmt]
        self.client.page_url = ""
        self.consumer = None
        self.sink = None
        self.stopped = False
        self.started = ctx.clock.seconds()

    def check(self):
        """Validate, find the source and ask the policy.  Fires with the
        source, or fails with Denied / InvalidStreamName / LookupError."""
        from twisted.internet import defer

        m = self.match
        try:
            validate_names(m.app, m.stream)
        except InvalidStreamName as e:
            return defer.fail(e)
        source = self.ctx.registry.get(m.vhost, m.app, m.stream)
        if source is None or not (source.active or source.consumers):
            conf = self.ctx.vhost(m.vhost)
            if conf is not None and conf.cluster.is_edge:
                # An edge has every stream: its first player makes it pull from the origin.
                return self._play(self.ctx.registry.fetch_or_create(m.vhost, m.app, m.stream))
            relay = getattr(self.ctx, "cluster", None)
            if relay is None:
                return defer.fail(LookupError(f"stream {m.vhost}/{m.app}/{m.stream} is not published"))
            # Another node may publish it: then its first player here makes this node pull it.
            d = relay.find(m.vhost, m.app, m.stream)
            d.addCallback(self._found_remote)
            return d
        return self._play(source)

    def _found_remote(self, owner):
        m = self.match
        if owner is None or self.stopped:
            raise LookupError(f"stream {m.vhost}/{m.app}/{m.stream} is not published")
        return self._play(self.ctx.registry.fetch_or_create(m.vhost, m.app, m.stream))

    def _play(self, source):
        from twisted.internet import defer

        m = self.match
        reason = st.unplayable(source, m.fmt)
        if reason:  # before the policy: a player refused here never played
            return defer.fail(st.Unplayable(reason))
        self.client.source = source
        self.ctx.add_client(self.client)
        d = self.ctx.policy.on_play(self.client)
        d.addCallback(lambda _: source)
        return d

    def start(self, source, write_raw, producer_target, kick, end=None, direct=None) -> None:
        """Subscribe the player; ``end`` closes it politely when the
        publisher leaves (SRS unmounts the stream then)."""
        remux = self.ctx.vhost(self.match.vhost).http_remux
        self.sink = st.HttpStreamSink(source, self.match.fmt, write_raw, remux, end, direct)
        self.client.send_bytes = lambda: self.sink.sent_bytes
        self.client.kick = kick
        self.log.trace(
            f"{self.client.type} ip={self.client.ip} {self.match.vhost}/{self.match.app}/"
            f"{self.match.stream}{self.client.request.param}"
        )
        self.consumer = source.subscribe(self.sink)
        st.configure_consumer(self.consumer, self.match.fmt, remux)
        producer_target.registerProducer(self.consumer, True)

    def stop(self, reason: str = "closed") -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.consumer is not None:
            self.consumer.close()
            self.ctx.policy.on_stop(self.client)
        elif self.client.source is not None:
            self.client.source.release_if_idle()
        if self.client.id in self.ctx.clients:
            self.ctx.remove_client(self.client)
        if self.sink is None:
            return
        sent = self.sink.sent_bytes
        self.log.trace(
            f"{self.client.type} closed ip={self.client.ip} send={sent} "
            f"duration={self.ctx.clock.seconds() - self.started:.1f}s ({reason})"
        )


class LiveStreamResource(resource.Resource):
    """One HTTP live stream response: headers, then the stream until the
    player goes away.  (CORS headers come from :class:`HttpRoot`.)"""

    isLeaf = True

    def __init__(self, ctx, match: st.StreamMatch, crossdomain: bool = True) -> None:
        super().__init__()
        self.ctx = ctx
        self.match = match
        self.crossdomain = crossdomain

    def render_GET(self, request):
        peer = request.getClientAddress()
        query = {k.decode("latin-1"): v[0].decode("latin-1") for k, v in request.args.items() if v}
        session = PlayerSession(
            self.ctx, self.match, getattr(peer, "host", ""), getattr(peer, "port", 0), _host(request), query, "http"
        )
        finished = request.notifyFinish()
        finished.addBoth(lambda _: session.stop("player left"))

        def answer(code: int, text: str) -> None:
            request.setResponseCode(code)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            request.write(text.encode("utf-8"))
            request.finish()

        def go(source):
            if request.finished or request._disconnected:
                return
            request.setHeader(b"content-type", self.match.content_type)
            request.setHeader(b"cache-control", b"no-cache")
            request.setHeader(b"server", b"srs-twisted")
            transport = request.channel.transport

            def end():
                if not (request.finished or request._disconnected):
                    request.unregisterProducer()
                    request.finish()

            try:
                session.start(source, response_writer(request), request, transport.abortConnection, end,
                              lambda sink: body_writer(request, sink))
            except Exception as e:  # a format this stream cannot be served in
                session.log.error(f"{session.client.type} cannot start: {type(e).__name__}: {e}")
                request.setResponseCode(500)
                request.finish()
                return
            if not (request.finished or request._disconnected or request.startedWriting):
                request.write(b"")  # the status and headers now, not with the first media

        def refuse(failure):
            if request.finished or request._disconnected:
                return
            if failure.check(LookupError):
                code, text = 404, failure.getErrorMessage()
            elif failure.check(st.Unplayable):
                code, text = 415, failure.getErrorMessage()
                session.log.warn(f"{session.client.type} refused: {text}")
            elif failure.check(Overloaded):
                code, text = 503, failure.getErrorMessage()  # logged by the policy
            elif failure.check(Denied, InvalidStreamName):
                code, text = 403, failure.getErrorMessage()
                session.log.warn(f"{session.client.type} refused: {text}")
            else:
                code, text = 500, "internal error"
                session.log.error(f"{session.client.type} failed: {failure.getErrorMessage()}")
            answer(code, text)

        session.check().addCallbacks(go, refuse)
        return server.NOT_DONE_YET


class HttpRoot(resource.Resource):
    """Routes a request to the API (when sharing the port), a WebSocket or
    HTTP live stream, the HLS sessions, or the static files, all on the
    request's decoded, normalized path (:mod:`.paths`).  With
    ``crossdomain on`` every answer carries SRS's CORS headers, and OPTIONS
    is a preflight."""

    def __init__(self, ctx, static_dir: str | None, api=None, crossdomain: bool = True) -> None:
        super().__init__()
        self.ctx = ctx
        self.static = StaticFile(static_dir) if static_dir else None
        self.api = api
        self.crossdomain = crossdomain

    def getChildWithDefault(self, name, request):
        try:
            path = normalize_request(request)
        except BadPath as e:
            return ErrorPage(400, f"Bad Request: {e}")
        if self.api is not None and (path.startswith(API_PREFIXES) or self.static is None):
            return self.api  # it answers CORS and OPTIONS by http_api.crossdomain
        if self.crossdomain:
            cors(request)
        if request.method == b"OPTIONS":
            return Preflight(self.crossdomain)
        first = request.postpath[0]
        if first in self.children:  # e.g. /snapshot/
            request.prepath.append(request.postpath.pop(0))
            return self.children[first]
        match = st.match_request(self.ctx, _host(request), path)
        if match is not None:
            if (request.getHeader(b"upgrade") or b"").lower() == b"websocket":
                from .ws import websocket_resource

                return websocket_resource(self.ctx, match)
            return LiveStreamResource(self.ctx, match, self.crossdomain)
        memory = getattr(self.ctx, "hls_memory", None)
        if memory is not None:  # LL-HLS playlists and parts, from memory
            found = memory.resource_for(request)
            if found is not None:
                return found
        if getattr(self.ctx, "cluster", None) is not None:  # HLS of a stream another origin publishes
            from ..cluster.hls_proxy import remote_hls

            found = remote_hls(self.ctx, request, path, self.static.path if self.static is not None else None,
                               _host(request))
            if found is not None:
                return found
        if path.endswith((".m3u8", ".ts")):  # HLS sessions (hls_ctx), when the vhost has them
            from ..hls import sessions

            roots = [self.static.path] if self.static is not None else []
            found = sessions.resource_for(self.ctx, request, roots, self.crossdomain)
            if found is not None:
                return found
        from .www import builtin_resource

        found = builtin_resource(self.ctx, path, self.static.path if self.static is not None else None, request)
        if found is not None:  # a built-in page the dir does not replace
            return found
        if self.static is None:
            return NotFound()
        request.prepath.append(request.postpath.pop(0))
        try:
            return self.static.getChildWithDefault(first, request)
        except (OSError, ValueError):
            return NotFound()

    def render(self, request):
        if self.static is not None:
            return self.static.render(request)
        return NotFound().render(request)


class ApiRoot(resource.Resource):
    """The API's own port: the API, and ``/console/`` (SRS mounts it there
    too, so the console can reach an API with Basic auth on its own origin)."""

    def __init__(self, ctx, api) -> None:
        super().__init__()
        self.ctx, self.api = ctx, api

    def getChildWithDefault(self, name, request):
        try:
            path = normalize_request(request)
        except BadPath:
            return self.api  # it answers 400
        from .www import console_resource

        found = console_resource(self.ctx, request, path, self.ctx.config.http_server.dir)
        return found if found is not None else self.api


class SrsSite(HeaderTimeoutSite):
    """A site that shows no tracebacks, bounds how long request headers may
    take (``http_header_timeout``) and logs every error answer (a 404
    included) to the server log."""

    displayTracebacks = False

    def log(self, request) -> None:
        super().log(request)
        code = request.code
        if code < 400:
            return
        peer = request.getClientAddress()
        uri = request.uri.decode("latin-1")
        if len(uri) > 200:
            uri = uri[:200] + "..."
        line = (f"http {request.method.decode('latin-1')} {uri} -> {code} "
                f"ip={getattr(peer, 'host', '')} host={_host(request)}")
        logger = ContextLogger()
        (logger.error if code >= 500 else logger.warn)(line)


def make_site(ctx, static_dir: str | None, api=None, crossdomain: bool = True) -> server.Site:
    """The site of one HTTP port: the HTTP server (static files and live
    streams) with the API when it shares the port, or the API alone."""
    if static_dir is None and api is not None:
        return SrsSite(ctx, ApiRoot(ctx, api))
    return SrsSite(ctx, HttpRoot(ctx, static_dir, api, crossdomain))
