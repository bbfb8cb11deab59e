"""WebRTC over TCP (``rtc_server.tcp``): RFC 4571 framing and a thin Twisted adapter.

RFC 4571 carries each STUN, DTLS, RTP or RTCP packet of a session over a TCP
connection as a frame: a 2-byte big-endian length, then that many bytes.  The
client connects to our ``tcptype passive`` candidate (RFC 6544), as SRS's
``SrsRtcTcpConn`` serves it:

* :class:`FrameDecoder` (sans-I/O) cuts the byte stream into frames.  A length
  above ``max_frame`` (SRS's 1500) or of 0 is a :class:`FramingError`: the
  stream cannot be trusted any more and the connection is closed.
* :class:`RtcTcpProtocol` hands each frame to the same session machinery as the
  UDP port (:class:`~.protocol.RtcUdpProtocol`, which owns the
  :class:`~.session.SessionTable`, the ticker and the peers), with the address
  ``(host, port, connection)``; what a session sends to that address comes
  back here and is written framed on this connection.
* A connection is one session's transport.  Its first frame must be a valid
  STUN Binding request (USERNAME, MESSAGE-INTEGRITY, FINGERPRINT) for a session
  that has no TCP connection yet (SRS: "only support one network"), within
  :data:`FIRST_FRAME_TIMEOUT` seconds; afterwards a STUN message for another
  session, malformed STUN, a frame that is neither STUN, DTLS nor RTP/RTCP, or a
  framing error closes the connection, and only it.  A bound connection lives
  as long as its session: a session silent for its ``stun_timeout`` (a peer
  dripping half a frame is silent), DELETEd or kicked closes it; when it closes
  and the session has no other address, the session ends (SRS expires it).
* Connections count against ``max_connections`` (the server wraps the factory
  in :class:`~srs_twisted.limits.ConnectionLimitFactory` like every listener).
"""

from __future__ import annotations

from twisted.internet import protocol

from ..codec import stun
from ..log import ContextLogger

__all__ = ["FrameDecoder", "FramingError", "encode_frame", "RtcTcpProtocol", "RtcTcpFactory",
           "MAX_FRAME", "FIRST_FRAME_TIMEOUT"]

MAX_FRAME = 1500  # SRS's SRS_RTC_TCP_PACKET_MAX: a longer frame closes the connection
FIRST_FRAME_TIMEOUT = 10.0  # seconds for a new connection's first valid STUN check


class FramingError(ValueError):
    """The byte stream is not RFC 4571 frames we accept."""


def encode_frame(data) -> bytes:
    """One RFC 4571 frame: the 2-byte length, then ``data``."""
    size = len(data)
    if not 0 < size <= 0xFFFF:
        raise FramingError("a frame holds 1..65535 bytes, not %d" % size)
    return size.to_bytes(2, "big") + bytes(data)


class FrameDecoder:
    """Bytes of a stream in, whole frames out (see the module docstring).

    At most ``max_frame + 1`` bytes are held between calls.  After a
    :class:`FramingError` every further :meth:`feed` raises it again.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        if not 0 < max_frame <= 0xFFFF:
            raise ValueError("max_frame must be in 1..65535")
        self.max_frame = max_frame
        self.error: str | None = None
        self.frames = 0
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held: a partial length or a partial frame."""
        return len(self._buffer)

    def feed(self, data) -> list[bytes]:
        if self.error is not None:
            raise FramingError(self.error)
        buffer = self._buffer
        buffer += data
        out = []
        pos, end = 0, len(buffer)
        while end - pos >= 2:
            size = (buffer[pos] << 8) | buffer[pos + 1]
            if size == 0 or size > self.max_frame:
                self.error = "frame length %d is not in 1..%d" % (size, self.max_frame)
                del buffer[:]
                raise FramingError(self.error)
            if end - pos - 2 < size:
                break
            out.append(bytes(buffer[pos + 2:pos + 2 + size]))
            pos += 2 + size
        if pos:
            del buffer[:pos]
        self.frames += len(out)
        return out


class RtcTcpProtocol(protocol.Protocol):
    """One accepted WebRTC-over-TCP connection (see the module docstring)."""

    def __init__(self, factory: RtcTcpFactory) -> None:
        self.factory = factory
        self.hub = factory.hub
        self.decoder = FrameDecoder(factory.max_frame)
        self.session = None
        self.address: tuple | None = None
        self.closing = False
        self.reason = ""
        self.frames_out = 0
        self._timer = None

    # --- Twisted ---

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.address = (peer.host, peer.port, self)
        self._timer = self.factory.clock.callLater(self.factory.first_frame_timeout, self._first_frame_late)
        self.factory.log.trace(f"RTC tcp client {self._peer()}")

    def dataReceived(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            frames = self.decoder.feed(data)
        except FramingError as e:
            self.close(str(e))
            return
        for frame in frames:
            if self.closing:
                return
            reason = self._check(frame)
            if reason:
                self.close(reason)
                return
            self.hub.receive(frame, self.address)
            if self.session is None:
                self._bind()
            elif self.hub.table.by_address(self.address) is not self.session and not self.closing:
                self.close("the session no longer uses this connection")

    def connectionLost(self, reason=None) -> None:
        self.closing = True
        self._cancel_timer()
        session, self.session = self.session, None
        if session is None:
            if not self.reason:
                self.factory.log.trace(f"RTC tcp {self._peer()} closed by the peer before a STUN check "
                                       f"({self.decoder.frames} frames, {self.decoder.pending} bytes pending)")
            return
        self.factory.unlink(session, self)
        self.factory.log.trace(f"RTC tcp {self._peer()} of session {session.username} closed: "
                               f"{self.reason or 'by the peer'}; frames in={self.decoder.frames} "
                               f"out={self.frames_out}")
        self.hub.drop_address(self.address, "its TCP connection closed")

    # --- for the session machinery ---

    def send_frames(self, datagrams) -> int:
        """Write datagrams as frames; returns the bytes written."""
        if self.closing or self.transport is None:
            return 0
        frames = []
        for data in datagrams:
            if 0 < len(data) <= 0xFFFF:
                frames.append(len(data).to_bytes(2, "big"))
                frames.append(data)
        self.frames_out += len(frames) // 2
        self.transport.writeSequence(frames)
        return sum(len(f) for f in frames)

    def register_producer(self, producer) -> None:
        """A player's live-core consumer, paused while this connection's send buffer is full."""
        if not self.closing and self.transport is not None and self.transport.producer is None:
            self.transport.registerProducer(producer, True)

    def close(self, reason: str) -> None:
        """Close this connection (and only it)."""
        if self.closing:
            return
        self.closing = True
        self.reason = reason
        self._cancel_timer()
        if self.session is None:
            self.factory.log.warn(f"RTC tcp {self._peer()} closed: {reason}")
        if self.transport is not None:
            self.transport.loseConnection()

    # --- inside ---

    def _peer(self) -> str:
        return "%s:%s" % self.address[:2] if self.address else "?"

    def _check(self, frame: bytes) -> str:
        """Why ``frame`` closes the connection, or "" to pass it on."""
        kind = stun.classify(frame)
        if kind is None:
            return "a frame that is neither STUN, DTLS nor RTP/RTCP (first byte %d)" % frame[0]
        if kind != "stun":
            return "" if self.session is not None else "the first frame is not STUN"
        try:
            message = stun.parse(frame)
        except stun.StunError as e:
            return "malformed STUN: %s" % e
        if message.method != stun.BINDING or message.msg_class != stun.REQUEST:
            return "" if self.session is not None else "the first frame is not a STUN Binding request"
        try:
            local, _ = stun.ice_ufrags(message)
        except stun.StunError as e:
            return "STUN check without a session: %s" % e
        if self.session is not None:
            return "" if local == self.session.local_ufrag else "a STUN check for another session"
        session = self.hub.table.get(local)
        if session is None:
            return "no session for ufrag %r" % local
        if self.factory.link(session) is not None:
            return "session %s has a TCP connection already" % session.username
        return ""

    def _bind(self) -> None:
        session = self.hub.table.by_address(self.address)
        if session is None:
            self.close("the first STUN check failed")
            return
        self.session = session
        self._cancel_timer()
        self.factory.bind(session, self)
        self.factory.log.trace(f"RTC tcp {self._peer()} carries session {session.username}")

    def _first_frame_late(self) -> None:
        self._timer = None
        if self.session is None:
            self.close(f"no valid STUN check in {self.factory.first_frame_timeout:g}s")

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


class RtcTcpFactory(protocol.Factory):
    """Every WebRTC-over-TCP listener of a server: connections by session.

    ``hub`` is the UDP port's :class:`~.protocol.RtcUdpProtocol` (the
    sessions); ``clock`` a reactor (``callLater``).
    """

    noisy = False

    def __init__(self, hub, clock, max_frame: int = MAX_FRAME,
                 first_frame_timeout: float = FIRST_FRAME_TIMEOUT) -> None:
        self.hub = hub
        self.clock = clock
        self.max_frame = max_frame
        self.first_frame_timeout = first_frame_timeout
        self.log = ContextLogger()
        self._links: dict = {}

    def buildProtocol(self, addr) -> RtcTcpProtocol:
        return RtcTcpProtocol(self)

    def link(self, session):
        """The connection carrying ``session``, or None."""
        return self._links.get(session)

    def bind(self, session, connection) -> None:
        self._links[session] = connection

    def unlink(self, session, connection) -> None:
        if self._links.get(session) is connection:
            del self._links[session]

    def session_ended(self, session, reason: str = "the session ended") -> None:
        """The session is gone (DELETE, timeout, kick, DTLS failure): close its connection."""
        connection = self._links.pop(session, None)
        if connection is not None:
            connection.close(reason)

    def close_all(self, reason: str) -> None:
        for session in list(self._links):
            self.session_ended(session, reason)

    def __len__(self) -> int:
        return len(self._links)
