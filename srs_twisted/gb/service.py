"""The GB28181 caster of ``stream_caster { caster gb28181; }``: SIP and media ports, sessions.

:class:`GbCaster` is a named child service of the server.  It listens for SIP
on ``sip.listen`` (TCP and UDP, when ``sip.enabled``) and for media on
``listen`` (TCP, RFC 4571, and UDP), runs :class:`~.core.SipServer` with a
timer every :data:`TICK` seconds, and keeps one :class:`~.session.GbSession`
per SSRC: made when a device accepts the INVITE, or by ``POST
/gb/v1/publish/`` (:meth:`external_publish`) when the SIP server is
someone else's.  RTP with an SSRC no session has is dropped (a TCP media
connection that sends one is closed).
"""

from __future__ import annotations

from twisted.application import service
from twisted.internet import defer, task
from twisted.internet.error import CannotListenError

from ..errors import InvalidStreamName
from ..limits import ConnectionLimitFactory
from ..log import ContextLogger
from ..url import validate_names
from .core import CallEnded, Gone, Invited, Inviting, Send, SipServer, SipSettings
from .protocol import MediaTcpFactory, MediaUdpProtocol, SipTcpFactory, SipUdpProtocol
from .session import GbSession, output_request

__all__ = ["GbCaster", "TICK", "sip_candidate"]

TICK = 0.25  # seconds between SIP timer runs (retransmissions, expiry, re-invites)
_SSRC_WORD = 0xFFFFFFFF


def sip_candidate(conf, bind_host: str = "") -> str:
    """``sip.candidate`` as one IPv4 address (``*`` and 0.0.0.0: the first non-loopback one)."""
    from ..config.rtc import resolve_candidates
    from ..rtc.service import host_addresses

    candidates = resolve_candidates(conf.sip.candidate, None, host_addresses())
    if candidates:
        return candidates[0].host
    return bind_host or "127.0.0.1"


class GbCaster(service.Service):
    """See the module docstring."""

    name = "gb28181"

    def __init__(self, ctx, conf, bind_host: str = "") -> None:
        self.ctx = ctx
        self.conf = conf
        self.bind_host = bind_host
        self.log = ContextLogger()
        self.sip = None
        if conf.sip.enabled:
            settings = SipSettings(candidate=sip_candidate(conf, bind_host), sip_port=conf.sip.listen,
                                   media_port=conf.listen, timeout=conf.sip.timeout, reinvite=conf.sip.reinvite,
                                   max_devices=max(1, ctx.config.max_connections))
            self.sip = SipServer(settings)
        self.sessions: dict = {}  # ssrc -> GbSession
        self.by_device: dict = {}  # device id -> GbSession
        self.device_logs: dict = {}  # device id -> ContextLogger (one context id per device)
        self.sip_errors = 0
        self.unknown_ssrc = 0
        self.ports: list = []
        self._sip_udp = SipUdpProtocol(self)
        self._timer = None

    # --- ports ---

    def startService(self) -> None:
        super().startService()
        clock = self.ctx.clock
        host = self.conf.listen_ip or self.bind_host  # "listen ip:port" binds to that address
        sip_host = self.conf.sip.listen_ip or self.bind_host
        media, sip_port = self.conf.listen, self.conf.sip.listen

        def limited(factory, what: str, port: int):  # TCP connections count against max_connections
            return ConnectionLimitFactory(self.ctx, factory, f"gb28181 {what} port {port}")

        try:
            self.ports.append(clock.listenTCP(media, limited(MediaTcpFactory(self), "media", media), interface=host))
            self.ports.append(clock.listenUDP(media, MediaUdpProtocol(self), interface=host))
            if self.sip is not None:
                self.ports.append(clock.listenTCP(sip_port, limited(SipTcpFactory(self), "sip", sip_port),
                                                  interface=sip_host))
                self.ports.append(clock.listenUDP(sip_port, self._sip_udp, interface=sip_host))
        except CannotListenError as e:
            from ..service import StartError

            reason = getattr(e.socketError, "strerror", None) or str(e.socketError)
            raise StartError(f"gb28181 cannot listen on {e.interface or '0.0.0.0'}:{e.port}: {reason}") from None
        self._timer = task.LoopingCall(self.tick)
        self._timer.clock = clock
        self._timer.start(TICK, now=False)
        sip = self.conf.sip
        self.log.trace(f"GB28181 media listen at tcp/udp {host or '0.0.0.0'}:{self.conf.listen}, "
                       + (f"SIP at tcp/udp :{sip.listen}, candidate={self.sip.settings.candidate}, "
                          f"timeout={sip.timeout:g}s reinvite={sip.reinvite:g}s" if self.sip else "SIP external")
                       + f", output={self.conf.output}")

    def stopService(self):
        super().stopService()
        if self._timer is not None and self._timer.running:
            self._timer.stop()
        if self.sip is not None:  # hang up: the cameras stop sending to a port about to close
            for device in list(self.sip.devices.values()):
                self.sip.bye(device)
            self.pump()
        for session in list(self.sessions.values()):
            session.end("the server stopped")
        ports, self.ports = self.ports, []
        return defer.DeferredList([defer.maybeDeferred(p.stopListening) for p in ports])

    def port_of(self, kind: str) -> int:
        """The bound port of "media" (TCP) or "sip" (TCP); 0 when not listening."""
        index = {"media": 0, "sip": 2}[kind]
        return self.ports[index].getHost().port if len(self.ports) > index else 0

    # --- SIP ---

    def device_log(self, device_id: str) -> ContextLogger:
        log = self.device_logs.get(device_id)
        if log is None:
            log = self.device_logs[device_id] = ContextLogger()
        return log

    def sip_received(self, peer, msg, transport: str, addr: str) -> None:
        if self.sip is None:
            return
        self.sip.receive(peer, msg, self.ctx.clock.seconds(), transport, addr)
        self.pump()

    def pump(self) -> None:
        """Act on what the SIP core queued."""
        for event in self.sip.events():
            if isinstance(event, Send):
                if isinstance(event.peer, tuple):
                    self._sip_udp.send_to(event.peer, event.data)
                elif getattr(event.peer, "transport", None) is not None:
                    event.peer.send(event.data)
            elif isinstance(event, Inviting):
                device = event.device
                self.device_log(device.id).trace(
                    f"GB SIP INVITE device {device.id} ({device.transport} {device.peer_addr}) ssrc={device.ssrc}, "
                    f"media at {'tcp' if device.transport != 'UDP' else 'udp'} "
                    f"{self.sip.settings.candidate}:{self.sip.settings.media_port}")
                session = self.by_device.get(device.id)
                if session is not None and session.ssrc != device.ssrc:
                    session.end("the device was invited with another SSRC")
                    session = None
                if session is None:
                    self._add(GbSession(self, device.id, device.ssrc))
            elif isinstance(event, Invited):
                device = event.device
                self.device_log(device.id).trace(f"GB SIP device {device.id} accepted the INVITE, ssrc={device.ssrc}")
            elif isinstance(event, (Gone, CallEnded)):
                device = event.device
                self.device_log(device.id).trace(f"GB SIP device {device.id}: {event.reason}")
                session = self.by_device.get(device.id)
                if session is not None:
                    session.end(event.reason)
                if isinstance(event, Gone):
                    self.device_logs.pop(device.id, None)
        if self.sip.last_error:
            errors = self.sip.errors
            if errors <= 20 or errors % 1000 == 0:  # a flood of refusals logs a few lines
                self.log.warn(f"GB SIP: {self.sip.last_error} ({errors} refusals so far)")
            self.sip.last_error = ""

    def tick(self) -> None:
        now = self.ctx.clock.seconds()
        for session in list(self.sessions.values()):
            session.poll(now)
        if self.sip is not None:
            self.sip.poll(now)
            self.pump()

    # --- media ---

    def _add(self, session: GbSession) -> None:
        self.sessions[session.ssrc] = session
        self.by_device[session.device_id] = session

    def media_received(self, peer, data: bytes, transport: str, addr: str) -> bool:
        """One RTP packet; False when it belongs to no session (a TCP peer is closed then)."""
        if len(data) < 12 or data[0] >> 6 != 2:
            self._unknown(addr, "not RTP")
            return transport == "udp"
        ssrc = int.from_bytes(data[8:12], "big")
        session = self.sessions.get(ssrc)
        if session is None:
            self._unknown(addr, f"unknown SSRC {ssrc}")
            return False
        if not session.media(peer, data, transport, addr):
            return False
        if transport == "tcp":
            peer.session = session
        return True

    def _unknown(self, addr: str, what: str) -> None:
        self.unknown_ssrc += 1
        if self.unknown_ssrc <= 10 or self.unknown_ssrc % 1000 == 0:
            self.log.warn(f"GB media from {addr}: {what}; dropped ({self.unknown_ssrc} so far)")

    def media_lost(self, protocol) -> None:
        session = getattr(protocol, "session", None)
        if session is not None and session.media_peer is protocol:
            session.media_stopped("media connection closed")

    def session_ended(self, session: GbSession) -> None:
        if self.sessions.get(session.ssrc) is session:
            del self.sessions[session.ssrc]
        if self.by_device.get(session.device_id) is session:
            del self.by_device[session.device_id]
        if self.sip is None or session.device_id not in self.sip.devices:
            self.device_logs.pop(session.device_id, None)

    # --- the API ---

    def external_publish(self, device_id: str, ssrc: int) -> tuple:
        """``POST /gb/v1/publish/``: (error code or 0, media port)."""
        req = output_request(self.conf.output, device_id)
        if "/" in device_id or "?" in device_id:
            return 3008, 0  # ERROR_HTTP_DATA_INVALID: the id names one stream
        try:
            validate_names(req.app, req.stream)
        except InvalidStreamName:
            return 3008, 0
        if device_id in self.by_device:
            return 1028, 0  # ERROR_SYSTEM_STREAM_BUSY: "stream already exists"
        if ssrc in self.sessions:
            return 1028, 0  # "ssrc already exists"
        self._add(GbSession(self, device_id, ssrc, external=True))
        self.log.trace(f"GB publish id={device_id} ssrc={ssrc} (external SIP)")
        return 0, self.port_of("media") or self.conf.listen

    def remove(self, device_id: str, reason: str) -> bool:
        """End a device's session and (embedded SIP) its call: the API's DELETE and kicks."""
        found = False
        if self.sip is not None:
            found = self.sip.remove(device_id, reason)
            self.pump()
        session = self.by_device.get(device_id)
        if session is not None:
            session.end(reason)
            found = True
        return found

    def describe(self) -> list:
        """The GB sessions for the API: every registered device and every media session."""
        out = []
        seen = set()
        devices = self.sip.devices if self.sip is not None else {}
        for device_id, device in devices.items():
            seen.add(device_id)
            item = {"id": device_id, "sip_state": device.state, "sip_transport": device.transport,
                    "sip_peer": device.peer_addr, "expires": device.expires, "invites": device.invites,
                    "info": dict(device.info), "ssrc": device.ssrc}
            session = self.by_device.get(device_id)
            item.update(session.info() if session else {"media": False})
            out.append(item)
        for device_id, session in self.by_device.items():
            if device_id not in seen:
                item = {"id": device_id, "sip_state": "External"}
                item.update(session.info())
                out.append(item)
        return out
