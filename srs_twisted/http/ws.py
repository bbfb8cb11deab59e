"""WebSocket-FLV and WebSocket-TS (and AAC/MP3) at the same mounts as the
HTTP streams, through autobahn: each binary message carries the bytes of
one flush."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol

from ..errors import Denied, InvalidStreamName
from . import stream as st
from .server import PlayerSession


class LiveWebSocketProtocol(WebSocketServerProtocol):
    """Plays one live stream to a WebSocket client."""

    def onConnect(self, request):
        self.session = None
        self._open = False
        match: st.StreamMatch = self.factory.match
        peer = self.transport.getPeer()
        host = (request.headers.get("host") or "").partition(":")[0]
        query = dict(parse_qsl(urlsplit(request.path).query)) if "?" in request.path else {}
        self.session = PlayerSession(
            self.factory.ctx, match, getattr(peer, "host", ""), getattr(peer, "port", 0), host, query, "ws"
        )
        return None

    def onOpen(self):
        self._open = True
        self.session.check().addCallbacks(self._go, self._refuse)

    def _go(self, source):
        if not self._open:
            self.session.stop("closed before start")
            return
        self.session.start(source, self._send, self.transport, self._kick, self._end)

    def _refuse(self, failure):
        reason = failure.getErrorMessage()
        if failure.check(LookupError):
            code = 4404
        elif failure.check(st.Unplayable):
            code = 4415
        elif failure.check(Denied, InvalidStreamName):
            code = 4403
        else:
            code = 1011
        self.session.log.warn(f"{self.session.client.type} over WebSocket refused: {reason}")
        self.session.stop("refused")
        if self._open:
            self.sendClose(code, reason[:120])

    def _send(self, data: bytes) -> None:
        self.sendMessage(data, isBinary=True)

    def _end(self) -> None:
        if self._open:
            self.sendClose(1000, "stream unpublished")

    def _kick(self) -> None:
        self.transport.abortConnection()

    def onMessage(self, payload, isBinary):
        pass  # players have nothing to say

    def onClose(self, wasClean, code, reason):
        self._open = False
        if self.session is not None:
            if self.session.consumer is not None:
                try:
                    self.transport.unregisterProducer()
                except RuntimeError:
                    pass
            self.session.stop(f"websocket closed code={code}")


class LiveWebSocketResource(WebSocketResource):
    """autobahn's resource, which takes the HTTP connection's transport
    over, made to unregister the HTTP channel from it first: the channel
    registered itself as the transport's producer when the connection
    opened, so the player's live consumer could not become the producer
    (the registration raised, and a player that reads slowly was not paced
    by back-pressure)."""

    def render(self, request):
        transport = request.channel.transport
        if transport is not None:  # HTTP/1.1 (autobahn answers 426 otherwise)
            transport.unregisterProducer()
        return super().render(request)


def websocket_resource(ctx, match: st.StreamMatch) -> WebSocketResource:
    factory = WebSocketServerFactory()
    factory.protocol = LiveWebSocketProtocol
    factory.ctx = ctx
    factory.match = match
    # Players send nothing worth more than a small control frame: cap what
    # a client may make us buffer.
    factory.setProtocolOptions(maxFramePayloadSize=65536, maxMessagePayloadSize=65536, autoFragmentSize=0)
    return LiveWebSocketResource(factory)
