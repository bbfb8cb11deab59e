"""The WebRTC server of one SrsService: certificate, DTLS context, the UDP port, sessions.

:class:`RtcServer` is the named child ``rtc`` of :class:`~srs_twisted.service.SrsService`
when ``rtc_server.enabled on``.  It makes the DTLS certificate at start (ECDSA P-256,
RSA 2048 with ``ecdsa off``), listens on ``rtc_server.listen`` (UDP) with one
:class:`~.protocol.RtcUdpProtocol`, and keeps the sessions the API made, by SRS's
session id (``ourufrag:theirufrag``), with their DELETE token.
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
from ..log import ContextLogger
from .cert import Certificate
from .dtls import DtlsContext
from .protocol import RtcUdpProtocol

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
        self.ports: list = []
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

    def stopService(self):
        super().stopService()
        for entry in list(self.sessions.values()):
            self.end(entry.peer, "the server stopped")
        ports, self.ports = self.ports, []
        return defer.DeferredList([defer.maybeDeferred(port.stopListening) for port in ports])

    # --- for the API ---

    @property
    def port(self) -> int:
        if self.ports:
            return self.ports[0].getHost().port
        return udp_listen_address(self.ctx.config.rtc_server.listens[0])[1]

    def dtls_context(self, version: str) -> DtlsContext:
        context = self._contexts.get(version)
        if context is None:
            context = self._contexts[version] = DtlsContext(self.certificate, version=version)
        return context

    def candidates(self, eip: str = "", api_host: str = "") -> list[tuple[str, int, str]]:
        conf = self.ctx.config.rtc_server
        found = resolve_candidates(
            conf.candidate, None, host_addresses(), ip_family=conf.ip_family,
            auto_detect=conf.use_auto_detect_network_ip, eip=eip, api_host=api_host,
            api_as_candidates=conf.api_as_candidates, keep_api_domain=conf.keep_api_domain,
            resolve_api_domain=False)
        return [(c.host, c.port or self.port, "udp") for c in found]

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
