"""The secure transport of one WebRTC session: DTLS in the answered role, then SRTP.

Sans-I/O, like :mod:`.dtls` and :mod:`.session`: the adapter feeds what the
:class:`~.session.SessionTable` routed to the session (``receive_dtls``,
``receive_rtp``, ``receive_rtcp``) with the time, sends ``data_to_send()``
to the session's address, reads ``next_event()`` and calls
``handle_timeout(now)`` at ``next_timeout()``.

* The DTLS role is the answer's ``a=setup``: ``active`` makes us the DTLS
  client (FFmpeg's WHIP muxer offers ``passive``), which starts the handshake
  when the peer's address is first known (``start``, called on the first valid
  STUN check, as SRS does); ``passive`` waits for the ClientHello.
* When the handshake completes (the peer's certificate matched the SDP
  fingerprint) the SRTP session is built from the exported keys
  (``encrypt off`` sends plain RTP, SRS's semi-security) and :class:`Connected`
  is emitted; a failed handshake or a close is :class:`Failed`.
* ``?encrypt=false&dtls=false`` (SRS's plaintext transport: ``dtls=false`` only counts
  with encryption off): no DTLS at all; the session is :class:`Connected` at the
  first valid STUN check (``start``), whatever the role, and RTP/RTCP are plain both
  ways (:class:`~.srtp.PlainSession`); DTLS records are ignored.
* Incoming SRTP/SRTCP is unprotected into parsed packets; what fails
  authentication, replays or does not parse is dropped (counted by the SRTP
  session or in :attr:`malformed`), never raised.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ..codec.rtcp import parse_compound, serialize_compound
from ..codec.rtcp_packets import RtcpError
from ..codec.rtp import RtpError, RtpPacket
from .dtls import Closed, Error, HandshakeComplete
from .srtp import PlainSession, session_for

__all__ = ["RtcConnection", "Connected", "Failed", "Peer"]


@dataclass(frozen=True)
class Connected:
    """DTLS is done; SRTP is ready both ways."""
    profile: str


@dataclass(frozen=True)
class Failed:
    """The transport is unusable: the handshake failed or DTLS was closed."""
    reason: str


class RtcConnection:
    """DTLS then SRTP for one session (see the module docstring)."""

    NEW, HANDSHAKING, CONNECTED, FAILED = "new", "handshaking", "connected", "failed"

    def __init__(self, dtls_context, client: bool, remote_fingerprints, encrypt: bool = True,
                 dtls: bool = True) -> None:
        self.client = client
        self.encrypt = encrypt
        self.plaintext = not encrypt and not dtls   # no DTLS, plain RTP both ways
        self.dtls = dtls_context.endpoint(client, [str(f) for f in remote_fingerprints])
        self.srtp = None
        self.state = self.NEW
        self.malformed = 0
        self._out: list[bytes] = []
        self._events: deque = deque()

    # --- the adapter's side ---

    def start(self, now: float) -> None:
        """The peer's address is known: a DTLS client sends its ClientHello."""
        if self.plaintext:
            if self.state == self.NEW:
                self.srtp = PlainSession()
                self.state = self.CONNECTED
                self._events.append(Connected("none"))
            return
        if self.state == self.NEW:
            self.state = self.HANDSHAKING
            self.dtls.start(now)
            self._pump()

    def receive_dtls(self, data: bytes, now: float) -> None:
        if self.state == self.FAILED or self.plaintext:
            return
        if self.state == self.NEW:
            self.state = self.HANDSHAKING
        self.dtls.receive_data(data, now)
        self._pump()

    def receive_rtp(self, data: bytes):
        """The plain :class:`RtpPacket`, or None (dropped) before SRTP or when it fails."""
        if self.srtp is None:
            return None
        plain = self.srtp.unprotect_rtp(data)
        if plain is None:
            return None
        try:
            return RtpPacket.parse(plain)
        except RtpError:
            self.malformed += 1
            return None

    def receive_rtcp(self, data: bytes) -> list:
        """The packets of an SRTCP compound, [] when dropped."""
        if self.srtp is None:
            return []
        plain = self.srtp.unprotect_rtcp(data)
        if plain is None:
            return []
        try:
            return parse_compound(plain)
        except RtcpError:
            self.malformed += 1
            return []

    def send_rtcp(self, packets) -> None:
        """Queue RTCP packets (one compound) for the peer; ignored before SRTP is up."""
        if self.srtp is not None:
            self._out.append(self.srtp.protect_rtcp(serialize_compound(packets)))

    def send_rtp(self, packet: bytes) -> None:
        if self.srtp is not None:
            self._out.append(self.srtp.protect_rtp(packet))

    def data_to_send(self) -> list:
        out, self._out = self._out, []
        return out

    def next_event(self):
        return self._events.popleft() if self._events else None

    def next_timeout(self):
        return self.dtls.next_timeout()

    def handle_timeout(self, now: float) -> None:
        self.dtls.handle_timeout(now)
        self._pump()

    def close(self) -> None:
        if not self.plaintext:
            self.dtls.close()
            self._out.extend(self.dtls.data_to_send())
        self.state = self.FAILED

    # --- inside ---

    def _pump(self) -> None:
        self._out.extend(self.dtls.data_to_send())
        while (event := self.dtls.next_event()) is not None:
            if isinstance(event, HandshakeComplete) and self.state != self.CONNECTED:
                self.srtp = session_for(event, self.encrypt)
                self.state = self.CONNECTED
                self._events.append(Connected(event.srtp_profile))
            elif isinstance(event, (Error, Closed)) and self.state != self.FAILED:
                self.state = self.FAILED
                reason = event.message if isinstance(event, Error) else "DTLS closed by the peer"
                self._events.append(Failed(reason))


class Peer:
    """What the UDP protocol drives for one session (``IceSession.owner``): the
    transport glue a publishing and a playing session share.

    ``transmit(session, datagrams)`` sends to the session's address;
    ``on_close(peer, reason)`` is told once when the session ends for any reason.
    Subclasses add ``rtp_in``/``rtcp_in`` and may override ``on_connected(now)``,
    ``on_tick(now)`` and ``on_closed(reason)``.
    """

    def __init__(self, answer, connection: RtcConnection, source, transmit, on_close) -> None:
        self.answer = answer
        self.connection = connection
        self.source = source
        self.transmit = transmit
        self.on_close = on_close
        self.session = None
        self.ended = False
        self.reason = ""
        self.recv_bytes = 0
        self.sent_bytes = 0

    def address_changed(self, now: float) -> None:
        self.connection.start(now)
        self._flush(now)

    def dtls_in(self, data: bytes, now: float) -> None:
        self.recv_bytes += len(data)
        self.connection.receive_dtls(data, now)
        self._flush(now)

    def rtp_in(self, data: bytes, now: float) -> None:
        self.recv_bytes += len(data)

    def rtcp_in(self, data: bytes, now: float) -> None:
        self.recv_bytes += len(data)

    def tick(self, now: float) -> None:
        deadline = self.connection.next_timeout()
        if deadline is not None and now >= deadline:
            self.connection.handle_timeout(now)
        if self.connection.srtp is not None and not self.ended:
            self.on_tick(now)
        self._flush(now)

    def closed(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        self.reason = reason
        self.on_closed(reason)
        self.on_close(self, reason)

    def on_connected(self, now: float) -> None:
        pass

    def on_tick(self, now: float) -> None:
        pass

    def on_closed(self, reason: str) -> None:
        pass

    def _send(self, datagrams) -> None:
        if datagrams and self.session is not None:
            self.sent_bytes += sum(len(d) for d in datagrams)
            self.transmit(self.session, datagrams)

    def _flush(self, now: float) -> None:
        while (event := self.connection.next_event()) is not None:
            if isinstance(event, Connected):
                self._send(self.connection.data_to_send())
                self.on_connected(now)
            elif isinstance(event, Failed):
                self._send(self.connection.data_to_send())
                self.closed(event.reason)
                return
        self._send(self.connection.data_to_send())
