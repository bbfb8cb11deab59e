"""SRS's ``heartbeat``: POST this server's identity (and ports) every few seconds.

With ``heartbeat { enabled on; url ...; }`` the server POSTs a JSON object to
``url`` every ``interval`` seconds, the first one an interval after start::

    {"device_id": "...", "ip": "10.0.0.5",
     "server": "vid-...", "service": "...", "pid": "4242",
     "summaries": {"data": {...}},           # with summaries on
     "rtmp": ["1935"], "http": ["8080"],      # with ports on (srs-proxy)
     "api": ["1985"], "srt": ["udp://0.0.0.0:10080"],
     "rtc": ["udp://0.0.0.0:8000", "tcp://0.0.0.0:8000"]}

``ip`` is ``$SRS_DEVICE_IP`` if set, else the ``stats.network``-th local
address (IPv4 first, then IPv6, as SRS orders them).  With ``ports on``,
``rtmp`` is always there and ``http``/``api``/``srt``/``rtc`` only when that
server is enabled (``rtc`` gets the TCP endpoint when ``rtc_server.tcp`` is
on).  A failed POST is logged and the next one goes out on time; SRS ignores
the reply, we only log a status outside 2xx.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Callable

from twisted.application import service
from twisted.internet import defer, task

from .log import ContextLogger

# Linux ioctls and interface flags (net/if.h).
_SIOCGIFFLAGS = 0x8913
_SIOCGIFADDR = 0x8915
_IFF_UP = 0x1
_IFF_LOOPBACK = 0x8
_IFF_POINTOPOINT = 0x10
_IFF_RUNNING = 0x40
_IFF_PROMISC = 0x100


def _ioctl(sock, request: int, name: str) -> bytes:
    import fcntl

    return fcntl.ioctl(sock.fileno(), request, struct.pack("256s", name.encode()[:15]))


def _iface_flags(sock, name: str) -> int:
    return struct.unpack("H", _ioctl(sock, _SIOCGIFFLAGS, name)[16:18])[0]


def local_ips() -> list[str]:
    """This host's addresses in SRS's order: IPv4 of interfaces that are up,
    running and neither loopback nor point-to-point, then IPv6 ones (not
    promiscuous either); only the IPv4 loopback when there is none."""
    try:
        names = [name for _, name in socket.if_nameindex()]
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError:
        return ["127.0.0.1"]
    ipv4, ipv6, loopback = [], [], []
    flags: dict[str, int] = {}
    with sock:
        for name in names:
            try:
                flags[name] = f = _iface_flags(sock, name)
            except OSError:
                continue
            if not (f & _IFF_UP and f & _IFF_RUNNING) or f & _IFF_POINTOPOINT:
                continue
            try:
                ip = socket.inet_ntoa(_ioctl(sock, _SIOCGIFADDR, name)[20:24])
            except OSError:
                continue  # no IPv4 address
            (loopback if f & _IFF_LOOPBACK else ipv4).append(ip)
    try:
        with open("/proc/net/if_inet6") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split()
        if len(parts) < 6:
            continue
        raw, scope, name = parts[0], int(parts[3], 16), parts[5]
        f = flags.get(name, 0)
        if not (f & _IFF_UP and f & _IFF_RUNNING):
            continue
        if f & (_IFF_LOOPBACK | _IFF_POINTOPOINT | _IFF_PROMISC):
            continue
        ip = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(raw))
        ipv6.append(f"{ip}%{name}" if scope == 0x20 else ip)
    return ipv4 + ipv6 or loopback or ["127.0.0.1"]


def _port(listen: str) -> int:
    """The port of a listen endpoint ("8000", "0.0.0.0:8000", "[::]:8000")."""
    try:
        return int(listen.rpartition(":")[2])
    except ValueError:
        return 0


def json_poster(clock) -> Callable[[str, dict], defer.Deferred]:
    """The default poster: the HTTP hooks' client (http and https, SRS's 30 s
    timeout), fed standard JSON; fires with ``(status, reply body)``."""
    from .policy.hooks import HttpHooksClient

    client = HttpHooksClient(clock)

    def post(url: str, body: dict) -> defer.Deferred:
        return client.post(url, json.dumps(body, separators=(",", ":")).encode("utf-8"))

    return post


def api_summaries(ctx) -> dict:
    """The data of ``/api/v1/summaries``, as the HTTP API computes it."""
    from .http.api import SrsApi

    return SrsApi(ctx).summary()


class HeartbeatService(service.Service):
    """Posts :meth:`body` to ``heartbeat.url`` every ``heartbeat.interval``
    seconds on ``ctx.clock``.

    ``poster(url, body_dict)`` returns a Deferred (default:
    :func:`json_poster` on ``ctx.clock``); ``summaries()`` returns the
    summaries data (default: the HTTP API's); ``environ`` and ``ips`` (a
    callable returning the local addresses) are there for tests.  A beat
    waits for the previous POST (at most 30 s), as SRS's timer does."""

    name = "heartbeat"

    def __init__(
        self,
        ctx,
        poster: Callable[[str, dict], defer.Deferred] | None = None,
        environ=None,
        ips: Callable[[], list[str]] | None = None,
        summaries: Callable[[], dict] | None = None,
    ) -> None:
        self.ctx = ctx
        self.poster = poster if poster is not None else json_poster(ctx.clock)
        self.summaries = summaries or (lambda: api_summaries(ctx))
        self.environ = os.environ if environ is None else environ
        self._ips_source = ips or local_ips
        self._ips: list[str] | None = None
        self.log = ContextLogger()
        self.loop: task.LoopingCall | None = None
        self.sent = 0
        self.failed = 0

    @property
    def conf(self):
        return self.ctx.config.heartbeat

    def startService(self) -> None:
        super().startService()
        if not self.conf.enabled:
            return
        self.loop = task.LoopingCall(self.beat)
        self.loop.clock = self.ctx.clock
        interval = max(1, int(self.conf.interval))
        self.log.trace(f"heartbeat every {interval}s to {self.conf.url}")
        self.loop.start(interval, now=False).addErrback(
            lambda f: self.log.error(f"heartbeat loop stopped: {f.getErrorMessage()}")
        )

    def stopService(self):
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.loop = None
        return super().stopService()

    # ---- the body -----------------------------------------------------------
    def ip(self) -> str:
        ip = self.environ.get("SRS_DEVICE_IP", "")
        if ip:
            return ip
        if self._ips is None:
            self._ips = list(self._ips_source())
        if not self._ips:
            return ""
        return self._ips[self.ctx.config.stats.network % len(self._ips)]

    def body(self) -> dict:
        ctx = self.ctx
        cfg = ctx.config
        conf = self.conf
        body: dict = {
            "device_id": conf.device_id,
            "ip": self.ip(),
            "server": ctx.server_id,
            "service": ctx.service_id,
            "pid": str(os.getpid()),
        }
        if conf.summaries:
            body["summaries"] = {"data": self.summaries()}
        if conf.ports:
            body["rtmp"] = list(cfg.listen)
            if cfg.http_server.enabled:
                body["http"] = [cfg.http_server.listen]
            if cfg.http_api.enabled:
                body["api"] = [cfg.http_api.listen]
            if cfg.srt_server.enabled:
                body["srt"] = [f"udp://0.0.0.0:{_port(cfg.srt_server.listen)}"]
            rtc = cfg.rtc_server
            if rtc.enabled:
                body["rtc"] = [f"udp://0.0.0.0:{_port(rtc.listen)}"]
                if rtc.tcp.enabled:
                    body["rtc"].append(f"tcp://0.0.0.0:{_port(rtc.tcp.listen)}")
        return body

    # ---- one beat -------------------------------------------------------------
    def beat(self) -> defer.Deferred:
        """Post one heartbeat; the Deferred never fails (errors are logged)."""
        url = self.conf.url
        d = defer.maybeDeferred(lambda: self.poster(url, self.body()))

        def done(result):
            self.sent += 1
            code = result[0] if isinstance(result, tuple) and result else None
            if isinstance(code, int) and not 200 <= code < 300:
                self.log.warn(f"heartbeat url={url} status={code}")

        def failed(failure):
            self.failed += 1
            self.log.warn(f"heartbeat url={url} err={failure.getErrorMessage()}")

        d.addCallbacks(done, failed)
        return d


__all__ = ["HeartbeatService", "api_summaries", "json_poster", "local_ips"]
