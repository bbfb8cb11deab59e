"""HLS of a stream published on another origin, answered from its owner.

HLS is written once, where the stream is published.  A request for an HLS
file (``.m3u8``, ``.ts``, ``.m4s``, ``.mp4``, ``.key``) that this node does
not have, for a stream the directory says another node publishes, is sent
to that node's HTTP server (same path and query) and its answer passed
through as it arrives: status, content type, ``Location`` (the owner's
``hls_ctx`` redirect stays relative) and body.

Which stream a file belongs to: a playlist names it (``/app/stream.m3u8``);
for a segment the sequence suffix is taken off (``stream-12.ts``), and if
the directory knows no such stream, the owner that served the last playlist
of the same directory is asked.
"""

from __future__ import annotations

import os
import re
import time

from twisted.internet import defer, protocol
from twisted.web import resource, server

from .. import SERVER_NAME, __version__
from ..log import ContextLogger
from ..url import DEFAULT_VHOST

HLS_EXTENSIONS = (".m3u8", ".ts", ".m4s", ".mp4", ".key")
PROXY_TIMEOUT = 10.0
# Headers passed from the owner's answer.
_PASSED = (b"content-type", b"cache-control", b"location", b"content-length")
# A directory's last playlist owner is remembered this long (seconds).
_RECENT_TTL = 60.0
_SUFFIX = re.compile(r"-(\d+|init)$")


def stream_of(path: str) -> tuple[str, str]:
    """(app, stream) a file path names: ``/live/s.m3u8`` and
    ``/live/s-12.ts`` -> (live, s)."""
    directory, _, name = path.rpartition("/")
    base = name.rsplit(".", 1)[0]
    if not name.endswith(".m3u8"):
        base = _SUFFIX.sub("", base)
    return directory.strip("/"), base


class _Recent:
    """The owner of the last playlist proxied per directory."""

    def __init__(self) -> None:
        self.owners: dict[str, tuple[float, object]] = {}

    def remember(self, directory: str, owner) -> None:
        if len(self.owners) > 1000:
            self.owners.clear()
        self.owners[directory] = (time.monotonic(), owner)

    def get(self, directory: str):
        found = self.owners.get(directory)
        if found is None or time.monotonic() - found[0] > _RECENT_TTL:
            return None
        return found[1]


_recent = _Recent()


def remote_hls(ctx, request, path: str, static_root: str | None, host: str):
    """A resource answering ``path`` from the owner, or None to serve it
    here (not an HLS file, no cluster, or the file is here)."""
    relay = getattr(ctx, "cluster", None)
    if relay is None or not path.endswith(HLS_EXTENSIONS):
        return None
    conf = ctx.vhost(host) or ctx.vhost(DEFAULT_VHOST)
    if static_root and os.path.exists(os.path.join(static_root, path.lstrip("/"))):
        # Here on disk: served here, unless it is LL-HLS of a stream published elsewhere
        # (worker processes share the disk, but parts and blocking reloads live in the
        # owner's memory).
        if conf is None or not conf.hls.hls_low_latency or _published_here(ctx, conf.name, path):
            return None
    if conf is None or relay.directory_for(conf.name) is None:
        return None
    return HlsProxy(ctx, relay, conf.name, path)


def _published_here(ctx, vhost: str, path: str) -> bool:
    app, stream = stream_of(path)
    source = ctx.registry.get(vhost, app, stream)
    return source is not None and source.publisher is not None and not getattr(source.publisher, "relay", False)


def _gone(request) -> bool:
    return bool(request.finished or getattr(request, "_disconnected", False))


class _Relay(protocol.Protocol):
    """The owner's body, written to the player as it arrives."""

    def __init__(self, request) -> None:
        self.request = request
        self.done = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        if not _gone(self.request):
            self.request.write(data)

    def connectionLost(self, reason=None) -> None:
        self.done.callback(None)


class HlsProxy(resource.Resource):
    isLeaf = True

    def __init__(self, ctx, relay, vhost: str, path: str, agent=None) -> None:
        super().__init__()
        self.ctx, self.relay, self.vhost, self.path = ctx, relay, vhost, path
        self.agent = agent
        self.log = ContextLogger()

    def render_GET(self, request):
        self._serve(request).addErrback(self._failed, request)
        return server.NOT_DONE_YET

    def _failed(self, failure, request) -> None:
        from ..log import log_unexpected

        log_unexpected(self.log, f"cluster: HLS proxy of {self.path}", failure)
        if not _gone(request) and not request.startedWriting:
            self._answer(request, 500, b"Internal Server Error")
        elif not _gone(request):
            request.finish()

    @defer.inlineCallbacks
    def _serve(self, request):
        app, stream = stream_of(self.path)
        directory = "/" + app
        try:
            owner = yield self.relay.find(self.vhost, app, stream)
            if owner is None and not self.path.endswith(".m3u8"):
                owner = _recent.get(directory)
            http = owner.endpoint("http") if owner is not None else None
            if not http:
                self._answer(request, 404, b"Not Found")
                return
            if self.path.endswith(".m3u8"):
                _recent.remember(directory, owner)
            query = request.uri.partition(b"?")[2]
            url = f"http://{http}{self.path}" + ("?" + query.decode("latin-1") if query else "")
            response = yield self._get(url)
        except Exception as e:  # noqa: BLE001 - the owner is unreachable: a clear 502
            self.log.warn(f"cluster: HLS {self.path} of {self.vhost}: owner unreachable: {type(e).__name__}: {e}")
            self._answer(request, 502, b"Bad Gateway")
            return
        if _gone(request):
            response.deliverBody(protocol.Protocol())
            return
        request.setResponseCode(response.code)
        for name in _PASSED:
            values = response.headers.getRawHeaders(name)
            if values:
                request.setHeader(name, values[0])
        request.setHeader(b"server", b"srs-twisted")
        body = _Relay(request)
        response.deliverBody(body)
        yield body.done
        if not _gone(request):
            request.finish()

    def _get(self, url: str):
        from twisted.web.client import Agent
        from twisted.web.http_headers import Headers

        agent = self.agent or Agent(self.ctx.clock, connectTimeout=PROXY_TIMEOUT)
        headers = Headers({b"user-agent": [f"{SERVER_NAME}/{__version__}".encode()]})
        if self.vhost != DEFAULT_VHOST:
            headers.setRawHeaders(b"host", [self.vhost.encode("idna")])
        d = agent.request(b"GET", url.encode("ascii"), headers)
        d.addTimeout(PROXY_TIMEOUT, self.ctx.clock)
        return d

    @staticmethod
    def _answer(request, code: int, body: bytes) -> None:
        if _gone(request):
            return
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/plain")
        request.write(body)
        request.finish()


__all__ = ["HLS_EXTENSIONS", "HlsProxy", "remote_hls", "stream_of"]
