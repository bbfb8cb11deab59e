"""The WebRTC server of one SrsService: certificate, DTLS context, the UDP and TCP ports, sessions.

:class:`RtcServer` is the named child ``rtc`` of :class:`~srs_twisted.service.SrsService`
when ``rtc_server.enabled on``.  It makes the DTLS certificate at start (ECDSA P-256,
RSA 2048 with ``ecdsa off``), listens on ``rtc_server.listen`` (UDP) with one
:class:`~.protocol.RtcUdpProtocol`, with ``rtc_server.tcp.enabled on`` also on every
``rtc_server.tcp.listen`` (WebRTC over TCP, :mod:`.tcp`; connections count against
``max_connections``), and keeps the sessions the API made, by SRS's session id
(``ourufrag:theirufrag``), with their DELETE token.  :meth:`RtcServer.candidates`
offers UDP, TCP or both (``rtc_server.protocol``, or the request's ``?protocol=``).
"""

from __future__ import annotations

import fcntl
import secrets
import socket
import struct

from twisted.application import service
from twisted.internet import defer
from twisted.internet.error import CannotListenError

from ..config.rtc import resolve_candidates
from ..limits import ConnectionLimitFactory
from ..log import ContextLogger
from .answer import choose_protocol, transport_candidates
from .cert import Certificate
from .dtls import DtlsContext
from .protocol import RtcUdpProtocol
from .tcp import RtcTcpFactory

__all__ = ["RtcServer", "host_addresses", "udp_listen_address"]

_SIOCGIFADDR = 0x8915


def host_addresses() -> list[str]:
    """The host's IPv4 interface addresses (Linux ioctl), loopback included."""
    out = []
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                packed = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
            except OSError:
                continue
        out.append(socket.inet_ntoa(packed[20:24]))
    return out


def udp_listen_address(listen: str, default_host: str = "") -> tuple[str, int]:
    """SRS listen values ('8000', '0.0.0.0:8000') as (interface, port)."""
    listen = listen.strip()
    if listen.startswith("["):
        host, _, port = listen[1:].partition("]")
        return host, int(port.lstrip(":"))
    if ":" in listen:
        host, _, port = listen.rpartition(":")
        return host, int(port)
    return default_host, int(listen)


class _Entry:
    __slots__ = ("peer", "token", "client", "publish")

    def __init__(self, peer, token, client, publish) -> None:
        self.peer, self.token, self.client, self.publish = peer, token, client, publish


class RtcServer(service.Service):
    """The UDP port and every WebRTC session of a server (see the module docstring)."""

    name = "rtc"

    def __init__(self, ctx, bind_host: str = "") -> None:
        self.ctx = ctx
        self.bind_host = bind_host
        self.log = ContextLogger()
        conf = ctx.config.rtc_server
        self.certificate = Certificate.generate(ecdsa=conf.ecdsa)
        self._contexts: dict[str, DtlsContext] = {}
        self.protocol = RtcUdpProtocol(ctx.clock)
        self.tcp = RtcTcpFactory(self.protocol, ctx.clock) if conf.tcp.enabled else None
        self.ports: list = []
        self.tcp_ports: list = []
        self.sessions: dict[str, _Entry] = {}

    # --- life ---

    def startService(self) -> None:
        super().startService()
        conf = self.ctx.config.rtc_server
        reactor = self.ctx.clock
        for listen in conf.listens[:1]:  # one socket: every session shares it
            host, port = udp_listen_address(listen, self.bind_host)
            try:
                self.ports.append(reactor.listenUDP(port, self.protocol, interface=host))
            except CannotListenError as e:
                from ..service import StartError

                reason = getattr(e.socketError, "strerror", None) or str(e.socketError)
                raise StartError(f"rtc cannot listen on udp {host or '0.0.0.0'}:{port}: {reason}") from None
            where = f"udp://{host or '0.0.0.0'}:{port}"
            self.log.trace(f"RTC listen at {where}, fingerprint {self.certificate.fingerprint}")
        if self.tcp is not None:
            for listen in conf.tcp.listens:
                self._listen_tcp(reactor, listen)

    def _listen_tcp(self, reactor, listen: str) -> None:
        from ..service import BACKLOG, StartError

        host, port = udp_listen_address(listen, self.bind_host)
        factory = ConnectionLimitFactory(self.ctx, self.tcp, f"rtc-tcp port {port}")
        try:
            self.tcp_ports.append(reactor.listenTCP(port, factory, backlog=BACKLOG, interface=host))
        except CannotListenError as e:
            reason = getattr(e.socketError, "strerror", None) or str(e.socketError)
            raise StartError(f"rtc cannot listen on tcp {host or '0.0.0.0'}:{port}: {reason}") from None
        self.log.trace(f"RTC listen at tcp://{host or '0.0.0.0'}:{port} (WebRTC over TCP, RFC 4571)")

    def stopService(self):
        super().stopService()
        for entry in list(self.sessions.values()):
            self.end(entry.peer, "the server stopped")
        if self.tcp is not None:
            self.tcp.close_all("the server stopped")
        ports, self.ports = self.ports + self.tcp_ports, []
        self.tcp_ports = []
        return defer.DeferredList([defer.maybeDeferred(port.stopListening) for port in ports])

    # --- for the API ---

    @property
    def port(self) -> int:
        if self.ports:
            return self.ports[0].getHost().port
        return udp_listen_address(self.ctx.config.rtc_server.listens[0])[1]

    @property
    def tcp_port(self) -> int:
        if self.tcp_ports:
            return self.tcp_ports[0].getHost().port
        return udp_listen_address(self.ctx.config.rtc_server.tcp.listens[0])[1]

    def dtls_context(self, version: str) -> DtlsContext:
        context = self._contexts.get(version)
        if context is None:
            context = self._contexts[version] = DtlsContext(self.certificate, version=version)
        return context

    def candidates(self, eip: str = "", api_host: str = "", protocol: str = "") -> list[tuple[str, int, str]]:
        """The answer's ``(host, port, "udp"|"tcp")`` candidates; ``protocol`` is the
        request's ``?protocol=`` ("" for ``rtc_server.protocol``).  ValueError when it
        asks for TCP and WebRTC over TCP is off, or is not udp, tcp or all."""
        conf = self.ctx.config.rtc_server
        protocol = choose_protocol(conf.protocol, protocol, self.tcp is not None)
        found = resolve_candidates(
            conf.candidate, None, host_addresses(), ip_family=conf.ip_family,
            auto_detect=conf.use_auto_detect_network_ip, eip=eip, api_host=api_host,
            api_as_candidates=conf.api_as_candidates, keep_api_domain=conf.keep_api_domain,
            resolve_api_domain=False)
        tcp_port = self.tcp_port if self.tcp is not None else 0
        return transport_candidates(found, protocol, self.port, tcp_port)

    def add(self, answer, peer, client, stun_timeout: float, strict_check: bool) -> str:
        """Register ``peer``'s ICE session; returns its DELETE token."""
        self.protocol.add(answer, peer, stun_timeout, strict_check)
        token = secrets.token_hex(16)
        self.sessions[answer.username] = _Entry(peer, token, client, answer.publish)
        return token

    def find(self, session_id: str):
        return self.sessions.get(session_id)

    def end(self, peer, reason: str) -> None:
        """End a session from our side (DELETE, kick, shutdown)."""
        if peer.session is not None:
            self.protocol.remove(peer.session, reason)
        else:
            peer.closed(reason)

    def forget(self, peer) -> None:
        """The session ended (any reason): drop it from the tables."""
        session = peer.session
        if session is not None:
            self.sessions.pop(session.username, None)
            self.protocol.table.remove(session)
            if self.tcp is not None:
                self.tcp.session_ended(session, f"session ended: {peer.reason or 'closed'}")
