"""What arrives over HTTP and as text: request lines and headers into the
server's own site (static files, live streams, the API), API bodies (the
legacy WebRTC JSON, WHIP SDP), HTTP hook replies, SRS config files."""

from __future__ import annotations

import contextlib
import os
import tempfile

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure

from srs_twisted.config import ConfigError, load_string
from srs_twisted.log import UNEXPECTED_MARKER
from srs_twisted.policy import hooks

from ..base import pieces, target

CONF = """
listen 1935;
http_api {{ enabled on; listen 1985; }}
http_server {{ enabled on; listen 8080; dir {root}; }}
vhost __defaultVhost__ {{
    http_remux {{ enabled on; mount [vhost]/[app]/[stream].flv; }}
    hls {{ enabled on; hls_path {root}; }}
}}
"""


class _TcpLikeTransport(StringTransport):
    """A StringTransport that, like a TCP transport, lets a producer that is
    not registered be unregistered (autobahn does it when a WebSocket
    handshake fails); StringTransport raises there, a socket does not."""

    def unregisterProducer(self):
        self.producer = None
        self.streaming = None


class Bug(AssertionError):
    """An input made the server log an unexpected error or a Twisted failure."""


@contextlib.contextmanager
def no_unexpected_errors():
    """Fail when anything is logged as a bug while the block runs."""
    seen = []

    def observe(event):
        # twisted.logger's failures, and twisted.python.log.err's (legacy: "failure", "isError").
        failure = event.get("log_failure") or (event.get("failure") if event.get("isError") else None)
        if isinstance(failure, Failure):
            seen.append(failure.getTraceback())
        elif UNEXPECTED_MARKER in str(event.get("log_format", "")) + str(event.get("message", "")):
            seen.append(str(event.get("log_format") or event.get("message")))

    globalLogPublisher.addObserver(observe)
    try:
        yield
    finally:
        globalLogPublisher.removeObserver(observe)
    if seen:
        raise Bug("\n".join(seen)[:4000])


class _World:
    def __init__(self):
        from srs_twisted.context import ServerContext
        from srs_twisted.http.api import api_resource
        from srs_twisted.http.server import make_site

        self.root = tempfile.mkdtemp(prefix="srs-fuzz-www-")
        os.makedirs(os.path.join(self.root, "live"))
        for name, body in (("index.html", b"ok"), ("live/s.m3u8", b"#EXTM3U\n"), ("live/s-1.ts", b"\x47" * 188)):
            with open(os.path.join(self.root, name), "wb") as f:
                f.write(body)
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.ctx = ServerContext(load_string(CONF.format(root=self.root)), self.clock)
        self.site = make_site(self.ctx, self.root, api_resource(self.ctx, reload=lambda: None), True)

    def send(self, data_pieces):
        """One connection: the pieces in, then a lost connection.  Static
        files' pull producers run on a local cooperator, and whatever the
        input scheduled on the global reactor (autobahn's WebSocket timers)
        is cancelled: no reactor runs here, nothing may pile up."""
        from twisted.internet import _producer_helpers, reactor
        from twisted.internet.task import Cooperator

        pending = []
        cooperator = Cooperator(terminationPredicateFactory=lambda: (lambda: False),
                                scheduler=lambda step: pending.append(step) or _Never())
        before = set(reactor.getDelayedCalls())
        real = _producer_helpers.cooperate
        _producer_helpers.cooperate = cooperator.cooperate
        channel = self.site.buildProtocol(None)
        channel.callLater = self.clock.callLater
        transport = _TcpLikeTransport()
        transport.protocol = channel  # as a TCP transport has (autobahn's WebSocket upgrade reads it)
        try:
            channel.makeConnection(transport)
            for piece in data_pieces:
                if transport.disconnecting:
                    break
                channel.dataReceived(piece)
                for _ in range(100):
                    if not pending:
                        break
                    pending.pop(0)()
            self.clock.advance(31)  # header timeouts, delayed calls
            channel.connectionLost(Failure(ConnectionError("fuzz input ended")))
            cooperator.stop()
        finally:
            _producer_helpers.cooperate = real
            for call in reactor.getDelayedCalls():
                if call not in before and call.active():
                    call.cancel()
        return transport.value()


class _Never:
    def cancel(self):
        pass


_world = None


def world() -> _World:
    global _world
    if _world is None:
        _world = _World()
    return _world


@target("http", max_len=8192)
def http_target(data: bytes):
    with no_unexpected_errors():
        return world().send(pieces(data))


_ROUTES = (
    b"POST /rtc/v1/publish/ HTTP/1.1",
    b"POST /rtc/v1/play/ HTTP/1.1",
    b"POST /rtc/v1/whip/?app=live&stream=s HTTP/1.1",
    b"POST /rtc/v1/whep/?app=live&stream=s HTTP/1.1",
    b"POST /api/v1/clients/ HTTP/1.1",
)


@target("api_bodies", max_len=8192)
def api_bodies(data: bytes):
    """A body (byte 0 picks the route) for the API routes that read one."""
    if not data:
        return None
    line, body = _ROUTES[data[0] % len(_ROUTES)], data[1:]
    request = line + b"\r\nHost: 127.0.0.1:1985\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    with no_unexpected_errors():
        return world().send([request])


@target("hook_reply", max_len=4096)
def hook_reply(data: bytes):
    """A hook backend's reply: status in bytes 0-1, then the body."""
    if len(data) < 2:
        return None
    status = 200 if data[0] & 1 else 100 + data[1]
    body = data[2:]
    why = hooks.reply_error(status, body)
    assert why is None or isinstance(why, str)
    if why is None:  # authorised: an on_forward reply is then read for its URLs
        try:
            return hooks.forward_urls(body)
        except ValueError:
            pass  # the publish is refused (Denied), as SRS does
    return why


@target("config", allowed=(ConfigError,), max_len=8192)
def config_target(data: bytes):
    text = data.decode("utf-8", "replace")
    if "include" in text:
        return None  # an include reads other files: the parser's own tests cover it
    return load_string(text)
