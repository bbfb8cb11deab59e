"""The HTTP server: live streams, WebSocket streams, static files, and the
API when it shares the port (SRS's ``http_server`` and ``http_api``)."""

from __future__ import annotations

from urllib.parse import urlencode

from twisted.web import resource, server, static

from ..context import ClientInfo
from ..errors import Denied, InvalidStreamName
from ..log import ContextLogger
from ..url import StreamRequest, validate_names
from . import stream as st

# Paths the API owns when API and HTTP server share one port.
API_PREFIXES = (b"/api/", b"/rtc/", b"/metrics", b"/gb/")


def _host(request) -> str:
    host = (request.getHeader(b"host") or b"").decode("latin-1")
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.partition(":")[0]


def cors(request) -> None:
    request.setHeader(b"access-control-allow-origin", b"*")
    request.setHeader(b"access-control-allow-methods", b"GET, POST, HEAD, PUT, DELETE, OPTIONS")
    request.setHeader(b"access-control-expose-headers", b"Server,range,Content-Length,Content-Range")
    request.setHeader(b"access-control-allow-headers", b"origin,range,accept-encoding,referer,Cache-Control,X-Proxy-Authorization,X-Requested-With,Content-Type")


class NotFound(resource.Resource):
    isLeaf = True

    def render(self, request):
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain")
        return b"Not Found"


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
            if conf is None or not conf.cluster.is_edge:
                return defer.fail(LookupError(f"stream {m.vhost}/{m.app}/{m.stream} is not published"))
            # An edge has every stream: its first player makes it pull from the origin.
            source = self.ctx.registry.fetch_or_create(m.vhost, m.app, m.stream)
        self.client.source = source
        self.ctx.add_client(self.client)
        d = self.ctx.policy.on_play(self.client)
        d.addCallback(lambda _: source)
        return d

    def start(self, source, write_raw, producer_target, kick, end=None) -> None:
        """Subscribe the player; ``end`` closes it politely when the
        publisher leaves (SRS unmounts the stream then)."""
        remux = self.ctx.vhost(self.match.vhost).http_remux
        self.sink = st.HttpStreamSink(source, self.match.fmt, write_raw, remux, end)
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
    player goes away."""

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

        def go(source):
            if request.finished or request._disconnected:
                return
            if self.crossdomain:
                cors(request)
            request.setHeader(b"content-type", self.match.content_type)
            request.setHeader(b"cache-control", b"no-cache")
            request.setHeader(b"server", b"srs-twisted")
            transport = request.channel.transport
            def end():
                if not (request.finished or request._disconnected):
                    request.unregisterProducer()
                    request.finish()

            try:
                session.start(source, request.write, request, transport.abortConnection, end)
            except Exception as e:  # a format this stream cannot be served in
                session.log.error(f"{session.client.type} cannot start: {type(e).__name__}: {e}")
                request.setResponseCode(500)
                request.finish()

        def refuse(failure):
            if request.finished or request._disconnected:
                return
            if failure.check(LookupError):
                code, text = 404, failure.getErrorMessage()
            elif failure.check(Denied, InvalidStreamName):
                code, text = 403, failure.getErrorMessage()
                session.log.warn(f"{session.client.type} refused: {text}")
            else:
                code, text = 500, "internal error"
                session.log.error(f"{session.client.type} failed: {failure.getErrorMessage()}")
            request.setResponseCode(code)
            request.setHeader(b"content-type", b"text/plain")
            request.write(text.encode())
            request.finish()

        session.check().addCallbacks(go, refuse)
        return server.NOT_DONE_YET



class HttpRoot(resource.Resource):
    """Routes a request to the API (when sharing the port), a WebSocket or
    HTTP live stream, or the static files."""

    def __init__(self, ctx, static_dir: str | None, api=None, crossdomain: bool = True) -> None:
        super().__init__()
        self.ctx = ctx
        self.static = static.File(static_dir) if static_dir else None
        self.api = api
        self.crossdomain = crossdomain

    def getChildWithDefault(self, path, request):
        full = request.path
        if self.api is not None and (full.startswith(API_PREFIXES) or (self.static is None)):
            request.prepath.pop()
            request.postpath.insert(0, path)
            return self.api
        if path in self.children:  # e.g. /snapshot/
            return self.children[path]
        try:
            match = st.match_request(self.ctx, _host(request), full.decode("utf-8"))
        except UnicodeDecodeError:
            match = None
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
        if full.endswith((b".m3u8", b".ts")):  # HLS sessions (hls_ctx), when the vhost has them
            from ..hls import sessions

            roots = [self.static.path] if self.static is not None else []
            found = sessions.resource_for(self.ctx, request, roots, self.crossdomain)
            if found is not None:
                return found
        if self.static is not None:
            return self.static.getChildWithDefault(path, request)
        return NotFound()

    def render(self, request):
        if self.static is not None:
            return self.static.render(request)
        return NotFound().render(request)


def make_site(ctx, static_dir: str | None, api=None, crossdomain: bool = True) -> server.Site:
    site = server.Site(HttpRoot(ctx, static_dir, api, crossdomain))
    site.displayTracebacks = False
    return site
