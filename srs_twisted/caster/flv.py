"""``stream_caster { caster flv; listen 8936; output rtmp://127.0.0.1/[app]/[stream]; }``

An HTTP POST (or PUT, what ``curl -T`` sends) of an FLV body to ``/APP/STREAM.flv`` on the
caster's TCP port becomes the live stream ``output`` names for the duration of the request:
``[app]`` is the path's directory (``APP``, which may have several segments) and
``[stream]`` its last segment (SRS's substitution; a trailing ``.flv`` of the result is
dropped).  The body may be sent with ``Content-Length`` or ``Transfer-Encoding: chunked``; it
is read as it arrives (never buffered whole), tag by tag, through
:class:`~srs_twisted.codec.flv.FlvReader` into :class:`~.publisher.CasterPublisher`.

Answers (SRS has none of its own: its caster just closes the connection on an error):

* ``200`` with an empty body once the whole body was read and published;
* ``400`` for a path naming no app/stream, or a body that is not FLV (sent as soon as it is
  known, then the connection is closed); ``405`` for another method;
* ``404`` when the output's vhost is not served, ``403`` when the policy (hooks, security)
  refuses the publish, ``409`` when the stream is already published;
* ``408`` when no body byte came for the vhost's ``publish.normal_timeout``.

A client that disconnects ends the publish.  Connections count against ``max_connections``
and must send their headers within ``http_header_timeout``, as on the other HTTP ports.
"""

from __future__ import annotations

import io
from urllib.parse import unquote

from twisted.web import http, server

from ..codec.errors import CodecError
from ..codec.flv import FlvReader
from ..errors import InvalidStreamName
from ..http.site import HeaderTimeoutSite
from ..log import ContextLogger
from ..rtmp.session import media_packet, metadata_packet
from .base import CasterService
from .publisher import CasterPublisher, output_request

__all__ = ["FlvCaster", "split_post_path"]

_CHECK_EVERY = 1.0  # seconds between idle checks
_METHODS = (b"POST", b"PUT")


def split_post_path(path: str) -> tuple[str, str]:
    """``/live/sub/stream.flv?x`` -> (``live/sub``, ``stream.flv``): SRS's dirname and basename
    of the request path (the query is not part of either)."""
    path = unquote(path.partition("?")[0])
    app, _, stream = path.rpartition("/")
    return app.strip("/"), stream


class _Post:
    """One POST: its publish, its FLV reader and its idle timer."""

    def __init__(self, caster: "FlvCaster", request: "FlvPostRequest", app: str, stream: str) -> None:
        self.caster = caster
        self.ctx = caster.ctx
        self.request = request
        self.log = ContextLogger()
        peer = request.getClientAddress()
        self.peer = (getattr(peer, "host", ""), getattr(peer, "port", 0))
        self.reader = FlvReader()
        self.tag_errors = 0
        self.ended = False
        self.started = self.last = self.ctx.clock.seconds()
        req = output_request(caster.conf.output, app, stream)  # InvalidStreamName: the caller's 400
        self.publisher = CasterPublisher(self.ctx, req, self.peer, "flash-publish", "rtmp", self._stopped, self.log)
        self._check = None

    def start(self) -> None:
        req = self.publisher.req
        self.log.trace(f"flv caster: {self.peer[0]}:{self.peer[1]} POST {self.request.path_text} -> publish "
                       f"{req.tc_url}/{req.stream}")
        self._check = self.ctx.clock.callLater(_CHECK_EVERY, self._idle_check)
        self.publisher.start()

    def feed(self, data: bytes) -> None:
        if self.ended:
            return
        self.last = self.ctx.clock.seconds()
        self.publisher.received += len(data)
        try:
            tags = self.reader.feed(data)
        except CodecError as e:
            self.end(f"bad FLV body: {e}", 400)
            return
        write = self.publisher.write
        for tag in tags:
            if tag.tag_type not in (8, 9, 18) or not tag.payload:
                continue
            try:
                if tag.tag_type == 18:
                    pkt = metadata_packet(tag.timestamp, tag.payload)  # onMetaData only, as RTMP
                else:
                    pkt = media_packet(tag.tag_type, tag.timestamp, tag.payload)
            except (CodecError, ValueError):
                self.tag_errors += 1  # one bad tag is dropped, the stream goes on
                continue
            if pkt is not None:
                write(pkt)

    def _idle_check(self) -> None:
        self._check = None
        conf = self.ctx.vhost(self.publisher.req.vhost)
        limit = (conf.publish.normal_timeout if conf is not None else 5000) / 1000.0
        idle = self.ctx.clock.seconds() - self.last
        if idle >= limit:
            self.end(f"no body data for {idle:.1f}s", 408)
            return
        self._check = self.ctx.clock.callLater(_CHECK_EVERY, self._idle_check)

    def _stopped(self, reason: str) -> None:
        self.end(reason, self.publisher.refusal or 503)

    def end(self, reason: str, code: int | None) -> None:
        """End the publish; ``code`` None when the body is complete (200), else the status
        sent before the connection is closed (nothing is sent once the client is gone)."""
        if self.ended:
            return
        self.ended = True
        if self._check is not None and self._check.active():
            self._check.cancel()
        self._check = None
        self.publisher.close()
        log = self.log.trace if code is None else self.log.warn
        log(f"flv caster: publish ended ({reason}){f' with {code}' if code else ''}: bytes={self.publisher.received} "
            f"packets={self.publisher.packets} bad_tags={self.tag_errors}, "
            f"duration={self.ctx.clock.seconds() - self.started:.1f}s")
        self.caster.posts.discard(self)
        if code is not None:
            self.request.refuse(code, reason)


class FlvPostRequest(server.Request):
    """A request whose body is streamed to a :class:`_Post` (Twisted's Request would buffer
    it whole before ``process``)."""

    post: _Post | None = None
    refused = False
    path_text = ""

    def gotLength(self, length) -> None:
        self.content = io.BytesIO()  # stays empty: the body goes to the post
        channel = self.channel
        method = getattr(channel, "_command", b"")
        self.path_text = getattr(channel, "_path", b"").decode("latin-1")
        caster: FlvCaster = channel.site.caster
        if method.upper() not in _METHODS:
            self.refuse(405, f"method {method.decode('latin-1')} not allowed: POST an FLV body")
            return
        app, stream = split_post_path(self.path_text)
        if not app or not stream:
            self.refuse(400, f"{self.path_text!r} names no app and stream: POST to /APP/STREAM.flv")
            return
        try:
            self.post = _Post(caster, self, app, stream)
        except InvalidStreamName as e:
            self.refuse(400, f"{self.path_text!r}: {e}")
            return
        caster.posts.add(self.post)
        self.post.start()

    def handleContentChunk(self, data: bytes) -> None:
        if self.post is not None and not self.refused:
            self.post.feed(data)

    def refuse(self, code: int, reason: str) -> None:
        """Answer ``code`` now, mid-body, and close the connection."""
        if self.refused:
            return
        self.refused = True
        if self.post is None:
            ContextLogger().warn(f"flv caster: {code} {reason}")
        transport = self.channel.transport if self.channel is not None else None
        if transport is None:
            return
        body = (reason + "\n").encode("utf-8", "replace")
        phrase = http.RESPONSES.get(code, b"Error")
        transport.write(b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
                        b"Connection: close\r\n\r\n" % (code, phrase, len(body)) + body)
        transport.loseConnection()

    def process(self) -> None:
        """The whole body was read: the publish ends, the answer is 200."""
        if self.refused:
            return
        if self.post is not None:
            self.post.end("the request body ended", None)
        self.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        self.setHeader(b"Content-Length", b"0")
        self.finish()

    def connectionLost(self, reason) -> None:
        if self.post is not None:
            self.post.end("the client disconnected", None)
        super().connectionLost(reason)


class _Site(HeaderTimeoutSite):
    requestFactory = FlvPostRequest

    def __init__(self, caster: "FlvCaster") -> None:
        from twisted.web.resource import Resource

        super().__init__(caster.ctx, Resource())
        self.caster = caster


class FlvCaster(CasterService):
    """The TCP port of one ``flv`` block and its POSTs."""

    def __init__(self, ctx, conf, bind_host: str = "") -> None:
        super().__init__(ctx, conf, bind_host)
        self.posts: set[_Post] = set()

    def startService(self) -> None:
        from ..limits import ConnectionLimitFactory
        from ..service import BACKLOG

        super().startService()
        factory = ConnectionLimitFactory(self.ctx, _Site(self), f"flv caster port {self.conf.listen}")
        self.listen("tcp", lambda port, host: self.ctx.clock.listenTCP(port, factory, BACKLOG, interface=host))
        self.log.trace(f"stream_caster flv listen at http://{self.host or '0.0.0.0'}:{self.conf.listen}"
                       f"/[app]/[stream].flv, output={self.conf.output}")

    def end_all(self, reason: str) -> None:
        for post in list(self.posts):
            post.end(reason, 503)
