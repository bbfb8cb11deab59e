"""SRT v5 handshakes, sans-I/O: the listener (with SYN cookies) and the caller.

Listener (:class:`SrtListener`), as libsrt's:

1. INDUCTION from a caller (version 4, destination socket 0): answered with version 5,
   the SRT magic ``0x4A17`` in the extension field, and a SYN cookie, an HMAC of the
   caller's address and port and the current minute under a per-listener secret.
   Nothing is kept: a flood of inductions costs one HMAC each.
2. CONCLUSION (version 5) with the cookie of this minute or the last one: the HSREQ
   extension (required), the stream id (SID, optional) and KMREQ (when the caller
   encrypts) are read, the latencies negotiated (each direction takes the larger of
   what the two sides ask), and the answer is a CONCLUSION with HSRSP (and KMRSP); the
   result is an :class:`Accepted` with the :class:`~.connection.ConnectionParams`.
   A version 4 caller, a bad cookie, a missing HSREQ or a stream id that is not text
   is answered with a rejection (``1000 + reason``, as libsrt reports it) or ignored.

A conclusion repeated for a connection that already exists (the caller missed the
answer) is answered by the caller of :meth:`SrtListener.handshake`, which knows its
connections (the ``existing`` callback).

Caller (:class:`SrtCaller`), for pulls and tests: INDUCTION, then CONCLUSION with HSREQ
and SID, each repeated every 250 ms until answered or ``connect_timeout``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import struct
from dataclasses import dataclass

from .connection import ConnectionParams, SrtConnection
from .packet import (
    EXT_HSREQ, EXT_HSRSP, EXT_KMREQ, EXT_KMRSP, EXT_SID, FLAG_CRYPT, FLAG_NAKREPORT, FLAG_REXMITFLG,
    FLAG_TLPKTDROP, FLAG_TSBPDRCV, FLAG_TSBPDSND, HANDSHAKE, HS_CONCLUSION, HS_EXT_FLAG_CONFIG,
    HS_EXT_FLAG_HSREQ, HS_EXT_FLAG_KMREQ, HS_INDUCTION, REJ_BACKLOG, REJ_BADSECRET, REJ_ROGUE, REJ_UNSECURE,
    REJ_VERSION, REJECT_BASE, SEQ_MASK, SRT_MAGIC, ControlPacket, Handshake, HsExtension, SrtError, SrtHs, decode_sid,
    encode_sid, reject_reason_text,
)

__all__ = ["SrtListener", "SrtCaller", "ListenerSettings", "Accepted", "Rejected", "address_field",
           "COOKIE_PERIOD"]

COOKIE_PERIOD = 60_000_000  # µs: a cookie is good for this minute and the last
CAPABILITIES = FLAG_TSBPDSND | FLAG_TSBPDRCV | FLAG_CRYPT | FLAG_TLPKTDROP | FLAG_NAKREPORT | FLAG_REXMITFLG
FLOW_WINDOW = 8192
UDT_DGRAM = 2
KM_NOSECRET = 3


@dataclass
class ListenerSettings:
    recv_latency_ms: int = 120
    peer_latency_ms: int = 0
    tsbpd: bool = True
    tlpktdrop: bool = True
    mss: int = 1500
    peer_idle_ms: int = 10_000
    passphrase: str = ""
    pbkeylen: int = 0
    buffer_packets: int = 8192
    max_bw: int = 0  # bytes/s our data may leave at (maxbw > 0); 0: not paced
    max_bw_relative: bool = False  # maxbw 0: paced at the input rate + 25%


@dataclass
class Accepted:
    """A caller that completed the handshake: make an :class:`SrtConnection` of ``params``
    (:meth:`connection`) and send ``response``."""

    params: ConnectionParams
    response: bytes
    stream_id: str
    version: int

    def connection(self, now: int) -> SrtConnection:
        return SrtConnection(self.params, now, self.response)


@dataclass
class Rejected:
    reason: int
    message: str
    response: bytes | None  # the rejection to send, None when the datagram is just dropped


def address_field(host: str) -> bytes:
    """The handshake's peer-address field as libsrt writes it: 32-bit words in host
    (little-endian) order, i.e. an IPv4 address's bytes reversed in the first word."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return b"\x00" * 16
    raw = ip.packed if ip.version == 6 else ip.packed + b"\x00" * 12
    return b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))


def _hs_packet(hs: Handshake, dest: int, timestamp: int) -> bytes:
    return bytes(ControlPacket(HANDSHAKE, 0, timestamp, dest, bytes(hs)))


class SrtListener:
    """The listening side of SRT handshakes (see the module docstring)."""

    def __init__(self, settings: ListenerSettings | None = None, secret: bytes | None = None, rand=os.urandom,
                 kmreq=None) -> None:
        self.settings = settings or ListenerSettings()
        self.secret = secret or rand(32)
        self._rand = rand
        # kmreq(passphrase, pbkeylen, body) -> (crypto, kmrsp body); raises SrtError(REJ_*) (see crypto.py)
        self._kmreq = kmreq
        self.inductions = 0
        self.bad_cookies = 0

    def cookie(self, host: str, port: int, now: int, back: int = 0) -> int:
        period = now // COOKIE_PERIOD - back
        digest = hmac.new(self.secret, f"{host}:{port}:{period}".encode(), hashlib.sha256).digest()
        return struct.unpack_from(">I", digest)[0]

    def new_socket_id(self) -> int:
        return (struct.unpack(">I", self._rand(4))[0] & 0x3FFFFFFF) or 1

    def handshake(self, data: bytes, addr: tuple, now: int, existing=None, full: bool = False):
        """One datagram sent to socket 0 from ``addr`` (host, port).  Returns bytes to send
        back (an induction answer), an :class:`Accepted`, a :class:`Rejected`, or None.
        ``existing(addr, caller_socket_id)`` returns the response of a connection already
        made for that caller (a repeated conclusion), else None; ``full`` refuses a new
        caller (backlog exceeded).  Raises :class:`SrtError`
        for a datagram that is not a handshake (drop it)."""
        pkt = ControlPacket.parse(data)
        if pkt.type != HANDSHAKE:
            raise SrtError(f"control type {pkt.type} to socket 0")
        hs = Handshake.parse(pkt.cif)
        host, port = addr[0], addr[1]
        if hs.req_type == HS_INDUCTION:
            if hs.version not in (4, 5):
                raise SrtError(f"an induction of version {hs.version}")
            self.inductions += 1
            answer = Handshake(5, self.settings.pbkeylen // 8 if self.settings.passphrase else 0, SRT_MAGIC,
                               hs.isn, hs.mtu, hs.flow_window, HS_INDUCTION, hs.socket_id,
                               self.cookie(host, port, now), hs.peer_ip)
            return _hs_packet(answer, hs.socket_id, 0)
        if hs.req_type != HS_CONCLUSION:
            raise SrtError(f"handshake type {hs.req_type:#x} to a listener")
        if hs.cookie not in (self.cookie(host, port, now), self.cookie(host, port, now, 1)):
            self.bad_cookies += 1
            raise SrtError("a conclusion with a bad cookie (spoofed, or older than two minutes)")
        if existing is not None:
            response = existing(addr, hs.socket_id)
            if response is not None:
                return response
        if full:
            return self._reject(hs, REJ_BACKLOG, "too many SRT connections")
        if hs.version != 5:
            return self._reject(hs, REJ_VERSION, f"a version {hs.version} (HSv4) caller is not supported; "
                                                 "SRT 1.3 or later is needed")
        try:
            return self._conclude(hs, pkt, host, now)
        except _Refuse as e:
            return self._reject(hs, e.reason, str(e))

    def _reject(self, hs: Handshake, reason: int, message: str) -> Rejected:
        answer = Handshake(hs.version, 0, 0, hs.isn, hs.mtu, hs.flow_window, REJECT_BASE + reason, hs.socket_id,
                           hs.cookie, hs.peer_ip)
        return Rejected(reason, f"{message} ({reject_reason_text(reason)})", _hs_packet(answer, hs.socket_id, 0))

    def _conclude(self, hs: Handshake, pkt: ControlPacket, host: str, now: int) -> Accepted:
        conf = self.settings
        req = hs.find(EXT_HSREQ)
        if req is None or not hs.extension & HS_EXT_FLAG_HSREQ:
            raise _Refuse(REJ_ROGUE, "a conclusion without HSREQ")
        try:
            hsreq = SrtHs.parse(req.data)
        except SrtError as e:
            raise _Refuse(REJ_ROGUE, str(e)) from None
        stream_id = ""
        sid = hs.find(EXT_SID)
        if sid is not None:
            try:
                stream_id = decode_sid(sid.data)
            except SrtError as e:
                raise _Refuse(REJ_ROGUE, str(e)) from None
        crypto = None
        kmrsp = None
        km = hs.find(EXT_KMREQ)
        if conf.passphrase:
            if km is None:
                raise _Refuse(REJ_UNSECURE, "the listener has a passphrase and the caller does not encrypt")
            if self._kmreq is None:
                raise _Refuse(REJ_UNSECURE, "encryption is not supported")
            try:
                crypto, kmrsp = self._kmreq(conf.passphrase, conf.pbkeylen, km.data)
            except SrtError as e:
                raise _Refuse(getattr(e, "reason", REJ_BADSECRET), str(e)) from None
        elif km is not None:
            raise _Refuse(REJ_UNSECURE, "the caller encrypts and the listener has no passphrase")
        # Latencies: we receive with max(ours, what the caller proposes for us); the caller
        # receives with max(what we propose, what it wants).
        recv_ms = max(conf.recv_latency_ms, hsreq.send_delay) if hsreq.flags & FLAG_TSBPDSND else conf.recv_latency_ms
        send_ms = max(conf.peer_latency_ms, hsreq.recv_delay) if hsreq.flags & FLAG_TSBPDRCV else 0
        local_id = self.new_socket_id()
        start = now
        params = ConnectionParams(
            local_id=local_id, peer_id=hs.socket_id, rcv_isn=hs.isn, snd_isn=hs.isn, start_us=start,
            peer_start_us=now - pkt.timestamp, recv_latency_us=recv_ms * 1000, send_latency_us=send_ms * 1000,
            tsbpd=conf.tsbpd, tlpktdrop=conf.tlpktdrop and bool(hsreq.flags & FLAG_TLPKTDROP),
            mss=min(conf.mss, max(hs.mtu, 76)), peer_idle_us=conf.peer_idle_ms * 1000,
            buffer_packets=conf.buffer_packets, stream_id=stream_id, crypto=crypto, max_bw=conf.max_bw,
            max_bw_relative=conf.max_bw_relative,
            extra={"srt_version": hsreq.version, "peer_flags": hsreq.flags})
        rsp = SrtHs(flags=CAPABILITIES, recv_delay=recv_ms, send_delay=send_ms)
        ext_flags = HS_EXT_FLAG_HSREQ
        extensions = [HsExtension(EXT_HSRSP, bytes(rsp))]
        if kmrsp is not None:
            ext_flags |= HS_EXT_FLAG_KMREQ
            extensions.append(HsExtension(EXT_KMRSP, kmrsp))
        answer = Handshake(5, 0, ext_flags, hs.isn, min(hs.mtu, conf.mss), FLOW_WINDOW, HS_CONCLUSION, local_id,
                           hs.cookie, address_field(host), extensions)
        response = _hs_packet(answer, hs.socket_id, 0)
        return Accepted(params, response, stream_id, hs.version)


class _Refuse(Exception):
    def __init__(self, reason: int, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SrtCaller:
    """The calling side (see the module docstring): ``start(now)``, then feed the
    listener's datagrams to :meth:`datagram_received` and :meth:`tick` until
    :attr:`connection` is set (or :attr:`error`)."""

    RETRY = 250_000

    def __init__(self, stream_id: str = "", latency_ms: int = 120, peer_latency_ms: int = 120,
                 connect_timeout_ms: int = 3000, peer_idle_ms: int = 5000, mss: int = 1500, rand=os.urandom,
                 host: str = "127.0.0.1", kmreq=None) -> None:
        self.stream_id = stream_id
        self.latency_ms = latency_ms
        self.peer_latency_ms = peer_latency_ms
        self.timeout = connect_timeout_ms * 1000
        self.peer_idle_ms = peer_idle_ms
        self.mss = mss
        self.host = host
        self.socket_id = (struct.unpack(">I", rand(4))[0] & 0x3FFFFFFF) or 1
        self.isn = struct.unpack(">I", rand(4))[0] & SEQ_MASK
        self.kmreq = kmreq  # (body, crypto) for an encrypting caller
        self.connection: SrtConnection | None = None
        self.error: str | None = None
        self.reject_reason: int | None = None
        self._cookie = 0
        self._state = "idle"
        self._started = 0
        self._last = 0
        self._out: list = []

    def datagrams_to_send(self) -> list:
        out, self._out = self._out, []
        return out

    def start(self, now: int) -> None:
        self._started = now
        self._state = "induction"
        self._send(now)

    def _request(self) -> Handshake:
        if self._state == "induction":
            return Handshake(4, 0, UDT_DGRAM, self.isn, self.mss, FLOW_WINDOW, HS_INDUCTION, self.socket_id, 0,
                             address_field(self.host))
        flags = (FLAG_TSBPDSND | FLAG_TSBPDRCV | FLAG_TLPKTDROP | FLAG_NAKREPORT | FLAG_REXMITFLG)
        extensions = [HsExtension(EXT_HSREQ, bytes(SrtHs(flags=flags, recv_delay=self.latency_ms,
                                                          send_delay=self.peer_latency_ms)))]
        ext_flags = HS_EXT_FLAG_HSREQ
        if self.kmreq is not None:
            ext_flags |= HS_EXT_FLAG_KMREQ
            extensions.append(HsExtension(EXT_KMREQ, self.kmreq[0]))
        if self.stream_id:
            ext_flags |= HS_EXT_FLAG_CONFIG
            extensions.append(HsExtension(EXT_SID, encode_sid(self.stream_id)))
        return Handshake(5, 0, ext_flags, self.isn, self.mss, FLOW_WINDOW, HS_CONCLUSION, self.socket_id,
                         self._cookie, address_field(self.host), extensions)

    def _send(self, now: int) -> None:
        self._last = now
        self._out.append(_hs_packet(self._request(), 0, now - self._started))

    def tick(self, now: int) -> None:
        if self._state not in ("induction", "conclusion"):
            return
        if now - self._started >= self.timeout:
            self._state = "failed"
            self.error = "connection timeout"
            return
        if now - self._last >= self.RETRY:
            self._send(now)

    def datagram_received(self, data: bytes, now: int) -> None:
        if self._state not in ("induction", "conclusion"):
            if self.connection is not None:
                self.connection.datagram_received(data, now)
            return
        try:
            pkt = ControlPacket.parse(data)
            if pkt.type != HANDSHAKE or pkt.dest != self.socket_id:
                return
            hs = Handshake.parse(pkt.cif)
        except SrtError:
            return
        if hs.req_type >= REJECT_BASE and hs.req_type < 0xFFFFFFF0:
            self._state = "failed"
            self.reject_reason = hs.req_type - REJECT_BASE
            self.error = f"rejected: {reject_reason_text(self.reject_reason)}"
            return
        if self._state == "induction" and hs.req_type == HS_INDUCTION:
            if hs.version != 5 or hs.extension != SRT_MAGIC:
                self._state = "failed"
                self.error = "the listener does not speak HSv5"
                return
            self._cookie = hs.cookie
            self._state = "conclusion"
            self._send(now)
        elif self._state == "conclusion" and hs.req_type == HS_CONCLUSION:
            rsp = hs.find(EXT_HSRSP)
            if rsp is None:
                self._state, self.error = "failed", "a conclusion response without HSRSP"
                return
            srths = SrtHs.parse(rsp.data)
            crypto = None
            if self.kmreq is not None:
                km = hs.find(EXT_KMRSP)
                if km is None or len(km.data) <= 4:
                    self._state, self.error = "failed", "the listener did not accept our key"
                    return
                crypto = self.kmreq[1]
            params = ConnectionParams(
                local_id=self.socket_id, peer_id=hs.socket_id, rcv_isn=self.isn, snd_isn=self.isn,
                start_us=self._started, peer_start_us=now - pkt.timestamp,
                recv_latency_us=srths.send_delay * 1000, send_latency_us=srths.recv_delay * 1000,
                peer_idle_us=self.peer_idle_ms * 1000, mss=min(self.mss, hs.mtu), stream_id=self.stream_id,
                crypto=crypto)
            self.connection = SrtConnection(params, now)
            self._state = "connected"
