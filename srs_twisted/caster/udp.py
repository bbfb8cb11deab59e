"""``stream_caster { caster mpegts_over_udp; listen 8935; output rtmp://127.0.0.1/live/livestream; }``

MPEG-TS in UDP datagrams (what ``ffmpeg -re -i clip -c copy -f mpegts udp://HOST:8935`` sends:
seven 188-byte packets a datagram) becomes the live stream ``output`` names, published through
:class:`~.publisher.CasterPublisher` (hooks, HLS, DVR... as any publish).

* The first datagram starts a publish; the TS goes through
  :class:`~srs_twisted.codec.mpegts_demux.TsDemuxer` (H.264, H.265, AAC, MP3).
* The publish ends when no datagram came for the vhost's ``publish.normal_timeout`` (5 s by
  default, the time after which SRS's RTMP server drops the caster's idle publish); the next
  datagram starts a new one.
* One sender feeds the stream at a time: datagrams from another address are dropped (and
  counted) while the current sender is active; once it has been silent for
  :data:`TAKEOVER_AFTER` seconds the next sender takes over (a restarted encoder) and the
  demuxer starts afresh, so the new TS is not glued to the old one's leftovers.  (SRS appends
  every sender's datagrams to one buffer, so two senders corrupt each other.)
* Lost, reordered, duplicated or garbage datagrams cost the frames they touch: the demuxer
  counts them (continuity errors, bad sync) and resynchronises; nothing raises.
* A publish that was refused (policy, busy stream, vhost) or kicked is not retried for
  :data:`RETRY_AFTER` seconds: the datagrams meanwhile are dropped and counted, so a refused
  sender costs one hook call per retry period, not one per datagram.
"""

from __future__ import annotations

from twisted.internet.protocol import DatagramProtocol

from ..codec.mpegts_demux import TsDemuxer
from ..errors import InvalidStreamName
from ..log import ContextLogger
from .base import CasterService
from .publisher import CasterPublisher, output_request

__all__ = ["UdpCaster", "RETRY_AFTER", "TAKEOVER_AFTER", "RECV_BUFFER"]

RETRY_AFTER = 3.0  # seconds a refused or kicked publish is not retried
TAKEOVER_AFTER = 1.0  # seconds the sender must be silent before another address takes over
RECV_BUFFER = 4 * 1024 * 1024  # bytes asked for the socket's receive buffer (bursts)
_CHECK_EVERY = 1.0  # seconds between idle checks


class _Session:
    """One publish: from the first datagram to the idle timeout (or a refusal)."""

    def __init__(self, caster: "UdpCaster", peer: tuple[str, int]) -> None:
        self.caster = caster
        self.ctx = caster.ctx
        self.peer = peer
        self.log = ContextLogger()
        self.demuxer = TsDemuxer()
        self.datagrams = 0
        self.foreign = 0  # datagrams of other senders dropped
        self.started = self.last = self.ctx.clock.seconds()
        self.ended = False
        self.reason = ""
        self.publisher = CasterPublisher(self.ctx, output_request(caster.conf.output), peer, "flash-publish",
                                         "rtmp", self.end, self.log)
        self._check = None

    def start(self) -> None:
        req = self.publisher.req
        self.log.trace(f"mpegts_over_udp: {self.peer[0]}:{self.peer[1]} -> publish {req.tc_url}/{req.stream} "
                       f"(udp port {self.caster.conf.listen})")
        self._check = self.ctx.clock.callLater(_CHECK_EVERY, self._idle_check)
        self.publisher.start()

    def feed(self, data: bytes, peer: tuple[str, int]) -> None:
        now = self.ctx.clock.seconds()
        if peer != self.peer:
            if now - self.last < TAKEOVER_AFTER:
                if not self.foreign:
                    self.log.warn(f"mpegts_over_udp: datagrams from {peer[0]}:{peer[1]} dropped while "
                                  f"{self.peer[0]}:{self.peer[1]} sends")
                self.foreign += 1
                return
            self.log.trace(f"mpegts_over_udp: sender {self.peer[0]}:{self.peer[1]} -> {peer[0]}:{peer[1]}, "
                           f"the TS demuxer starts afresh")
            self.peer = peer
            self.flush()
            self.demuxer = TsDemuxer()
        self.last = now
        self.datagrams += 1
        self.publisher.received += len(data)
        write = self.publisher.write
        for pkt in self.demuxer.feed(data):
            write(pkt)

    def flush(self) -> None:
        for pkt in self.demuxer.flush():
            self.publisher.write(pkt)

    def _timeout(self) -> float:
        conf = self.ctx.vhost(self.publisher.req.vhost)
        return (conf.publish.normal_timeout if conf is not None else 5000) / 1000.0

    def _idle_check(self) -> None:
        self._check = None
        idle = self.ctx.clock.seconds() - self.last
        if idle >= self._timeout():
            self.end(f"no datagram for {idle:.1f}s", retry=True)
            return
        self._check = self.ctx.clock.callLater(_CHECK_EVERY, self._idle_check)

    def end(self, reason: str, retry: bool = False) -> None:
        """End the publish; without ``retry`` the caster holds off new ones for a while."""
        if self.ended:
            return
        self.ended = True
        self.reason = reason
        if self._check is not None and self._check.active():
            self._check.cancel()
        self._check = None
        if not self.publisher.closed:
            self.flush()
        self.publisher.close()
        d = self.demuxer
        log = self.log.trace if retry else self.log.warn  # a refusal or a kick is worth a warning
        log(f"mpegts_over_udp: publish ended ({reason}): datagrams={self.datagrams} "
            f"bytes={self.publisher.received} packets={self.publisher.packets} ts_errors={d.errors} "
            f"foreign={self.foreign}" + (f" (last: {d.last_error})" if d.errors else "")
            + f", duration={self.ctx.clock.seconds() - self.started:.1f}s")
        self.caster.session_ended(self, retry)


class _Protocol(DatagramProtocol):
    def __init__(self, caster: "UdpCaster") -> None:
        self.caster = caster

    def datagramReceived(self, data: bytes, addr) -> None:
        self.caster.datagram(data, (addr[0], addr[1]))


class UdpCaster(CasterService):
    """The UDP port of one ``mpegts_over_udp`` block and its one stream."""

    def __init__(self, ctx, conf, bind_host: str = "") -> None:
        super().__init__(ctx, conf, bind_host)
        self.session: _Session | None = None
        self.held_until = 0.0  # no new publish before this time (after a refusal)
        self.dropped = 0  # datagrams dropped while held off
        self.datagrams = 0
        self.bytes = 0

    def startService(self) -> None:
        from ..service import StartError

        try:
            output_request(self.conf.output)
        except InvalidStreamName as e:
            raise StartError(f"stream_caster mpegts_over_udp: {e}") from None
        super().startService()
        protocol = _Protocol(self)
        self.listen("udp", lambda port, host: self.ctx.clock.listenUDP(port, protocol, interface=host,
                                                                        maxPacketSize=65535))
        self._size_buffer()
        self.log.trace(f"stream_caster mpegts_over_udp listen at udp://{self.host or '0.0.0.0'}:"
                       f"{self.conf.listen}, output={self.conf.output}")

    def _size_buffer(self) -> None:
        import socket

        sock = getattr(self.port, "socket", None)
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
            except OSError:
                pass

    def end_all(self, reason: str) -> None:
        if self.session is not None:
            self.session.end(reason, retry=True)

    def datagram(self, data: bytes, peer: tuple[str, int]) -> None:
        self.datagrams += 1
        self.bytes += len(data)
        session = self.session
        if session is None:
            now = self.ctx.clock.seconds()
            if now < self.held_until:
                self.dropped += 1
                return
            if self.dropped:
                self.log.trace(f"mpegts_over_udp: {self.dropped} datagrams dropped while a refused publish waited")
                self.dropped = 0
            session = self.session = _Session(self, peer)
            session.start()
            if session.ended:  # refused at once (vhost not served)
                return
        session.feed(data, peer)

    def session_ended(self, session: _Session, retry: bool) -> None:
        if self.session is session:
            self.session = None
        if not retry:
            self.held_until = self.ctx.clock.seconds() + RETRY_AFTER
