"""An RTMP client for Twisted applications: publish packets to, or play
packets from, any RTMP server.  Forward and edge build on it.

    d = rtmp.client.connect(reactor, "rtmp://127.0.0.1/live", "s", "play",
                            on_packet=print)
    d.addCallback(lambda proto: ...)   # fires once NetStream.Play.Start arrived
"""

from __future__ import annotations

from typing import Callable

from twisted.internet import defer, endpoints, protocol

from ..codec.errors import CodecError
from ..errors import Denied
from ..log import ContextLogger
from ..url import parse_tc_url
from . import client_session as cs
from .errors import RtmpError


class Redirected(Denied):
    """The server answered with an RTMP 302 (SRS's origin cluster)."""

    def __init__(self, url: str) -> None:
        super().__init__(f"RTMP 302 redirect to {url}")
        self.url = url


class RtmpClientProtocol(protocol.Protocol):
    def __init__(
        self,
        tc_url: str,
        stream: str,
        mode: str = "play",
        on_packet: Callable | None = None,
        chunk_size: int = 60000,
        connect_extra: dict | None = None,
    ) -> None:
        self.session = cs.ClientSession(tc_url, stream, mode, chunk_size, connect_extra)
        self.on_packet = on_packet
        self.log = ContextLogger()
        self.started: defer.Deferred = defer.Deferred()
        self.done: defer.Deferred = defer.Deferred()
        self.status_codes: list[str] = []
        self.sent_bytes = 0
        self.redirect = ""  # the URL of an RTMP 302 from the server

    def connectionMade(self) -> None:
        self._flush()

    def dataReceived(self, data: bytes) -> None:
        try:
            self.session.receive_data(data)
            for event in self.session.events():
                self._on_event(event)
        except (RtmpError, CodecError, ValueError) as e:
            self.log.error(f"RTMP client {self.session.tc_url}: {type(e).__name__}: {e}")
            self.transport.abortConnection()
            return
        self._flush()

    def _on_event(self, event) -> None:
        if isinstance(event, cs.PacketReceived):
            if self.on_packet is not None:
                self.on_packet(event.packet)
        elif isinstance(event, cs.StatusReceived):
            self.status_codes.append(event.code)
        elif isinstance(event, cs.Started):
            if not self.started.called:
                self.started.callback(self)
        elif isinstance(event, cs.Rejected):
            self.redirect = event.redirect
            if not self.started.called:
                error = Redirected(event.redirect) if event.redirect else Denied(f"{event.code}: {event.description}")
                self.started.errback(error)
            self.transport.loseConnection()

    def _flush(self) -> None:
        out = self.session.data_to_send()
        if out:
            self.sent_bytes += len(out)
            self.transport.write(out)

    def write(self, packet) -> None:
        """Publish one MediaPacket."""
        self.session.send_packet(packet)
        self._flush()

    def close(self) -> None:
        self.session.close()
        self._flush()
        self.transport.loseConnection()

    def connectionLost(self, reason=None) -> None:
        if not self.started.called:
            self.started.errback(ConnectionError(f"connection to {self.session.tc_url} lost before start"))
        if not self.done.called:
            self.done.callback(None)


def connect(
    reactor,
    tc_url: str,
    stream: str,
    mode: str = "play",
    on_packet: Callable | None = None,
    timeout: float = 10.0,
    **kw,
) -> defer.Deferred:
    """Connect, handshake, and publish or play.  Fires with the protocol once
    the server answered NetStream.Publish.Start or NetStream.Play.Start."""
    req = parse_tc_url(tc_url)
    host = req.host or "127.0.0.1"
    ep = endpoints.HostnameEndpoint(reactor, host, req.port, timeout=timeout)
    proto = RtmpClientProtocol(tc_url, stream, mode, on_packet, **kw)
    d = endpoints.connectProtocol(ep, proto)
    d.addCallback(lambda p: p.started)
    return d
