"""The site every HTTP port serves (``http_server``, ``http_api``,
``exporter``): Twisted's Site, whose connections must finish each request's
headers within ``http_header_timeout`` seconds.

Twisted's own idle timeout restarts with every byte, so a client sending one
header byte every few seconds (slowloris) would hold its connection, and a
file descriptor, forever.  The header timer starts when the connection opens
and again when a response ends on a kept-alive connection, and stops when
the request's headers are complete; a long response (an HTTP-FLV stream, a
WebSocket) is not bounded by it.
"""

from __future__ import annotations

import re

from twisted.web import http, server, static

from ..log import ContextLogger

DEFAULT_HEADER_TIMEOUT = 30.0


class HeaderTimeoutChannel(http.HTTPChannel):
    """An HTTP/1.1 connection that is closed when a request's headers take
    longer than its site's ``header_timeout()`` seconds (0: no bound)."""

    _header_call = None

    def connectionMade(self) -> None:
        super().connectionMade()
        self._await_headers()

    def _await_headers(self) -> None:
        timeout = self.site.header_timeout()
        if timeout and timeout > 0 and self._header_call is None:
            self._header_call = self.callLater(timeout, self._headers_timed_out, timeout)

    def _headers_done(self) -> None:
        call, self._header_call = self._header_call, None
        if call is not None and call.active():
            call.cancel()

    def allHeadersReceived(self) -> None:
        self._headers_done()
        super().allHeadersReceived()

    def requestDone(self, request) -> None:
        # Armed first: a pipelined request already buffered may complete
        # its headers (and disarm the timer) inside requestDone.
        self._await_headers()
        super().requestDone(request)

    def _headers_timed_out(self, timeout: float) -> None:
        self._header_call = None
        transport = self.transport
        if transport is None:
            return
        peer = transport.getPeer()
        ContextLogger().warn(
            f"HTTP client ip={getattr(peer, 'host', '?')}:{getattr(peer, 'port', 0)} closed: "
            f"request headers not complete in {timeout:g}s (http_header_timeout)"
        )
        transport.abortConnection()

    def connectionLost(self, reason) -> None:
        self._headers_done()
        super().connectionLost(reason)


# Bytes Python's email package takes for line breaks in a header value
# (decoded as latin-1): Twisted parses Content-Type with it.
_LINE_BREAKS = re.compile(rb"[\n\r\x0b\x0c\x1c\x1d\x1e\x85]")


_NON_ASCII = re.compile(rb"[\x80-\xff]")


class SrsRequest(server.Request):
    """Twisted's Request, minus three ways for a client to make it fail
    (found by fuzz/targets/web.py).  A request target with raw non-ASCII
    bytes (not valid HTTP, but sent) is kept with those bytes
    percent-encoded, which means the same to every route: Twisted's
    directory listing decoded it as ASCII (a 500 and a traceback).  And a
    header Twisted cannot read is ignored, as a server may:

    * static.File decodes a malformed Range header as UTF-8 to log it, so a
      Range with non-UTF-8 bytes raised (a 500 and a traceback); the whole
      file is served instead (RFC 9110 14.2);
    * a Content-Type with a byte Python's email package reads as a line
      break (0x85, 0x0b...) made Twisted's form parsing raise out of
      ``dataReceived`` (a traceback, the connection dropped); the body is
      then not parsed as a form (no route here reads form arguments)."""

    def requestReceived(self, command, path, version) -> None:
        types = self.requestHeaders.getRawHeaders(b"content-type")
        if types and any(_LINE_BREAKS.search(value) for value in types):
            self.requestHeaders.removeHeader(b"content-type")
        super().requestReceived(command, path, version)

    def process(self) -> None:
        if _NON_ASCII.search(self.uri):
            self.uri = _NON_ASCII.sub(lambda m: b"%%%02X" % m.group()[0], self.uri)
        ranges = self.requestHeaders.getRawHeaders(b"range")
        if ranges:
            try:
                for value in ranges:
                    value.decode("ascii")
            except UnicodeDecodeError:
                self.requestHeaders.removeHeader(b"range")
        super().process()


class StaticFile(static.File):
    """Twisted's static file resource (its children are of this class too),
    answering a suffix range longer than the file (``Range: bytes=-909`` on
    a 500-byte file) with the whole file, as RFC 9110 14.1.2 says: Twisted
    seeked to a negative offset and failed with a traceback (found by
    fuzz/targets/web.py)."""

    def _rangeToOffsetAndSize(self, start, end):
        offset, size = super()._rangeToOffsetAndSize(start, end)
        if offset < 0:
            return 0, offset + size
        return offset, size


class HeaderTimeoutSite(server.Site):
    """A Site on the server's clock whose connections are
    :class:`HeaderTimeoutChannel`; the bound is read from ``ctx.config`` per
    connection, so a reload changes it for new requests."""

    protocol = HeaderTimeoutChannel
    requestFactory = SrsRequest
    displayTracebacks = False

    def __init__(self, ctx, resource, **kw) -> None:
        super().__init__(resource, reactor=ctx.clock, **kw)
        self.ctx = ctx

    def header_timeout(self) -> float:
        return getattr(self.ctx.config, "http_header_timeout", DEFAULT_HEADER_TIMEOUT)
