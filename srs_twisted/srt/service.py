"""The SRT server of one SrtService: ``srt_server`` on UDP, MPEG-TS in and out of the live core.

:class:`SrtServer` is the named child ``srt`` of :class:`~srs_twisted.service.SrsService`
when ``srt_server.enabled on``.  As SRS does, a caller is accepted by the SRT handshake
first and then judged by its stream id (:mod:`.streamid`):

* the vhost (``h=``, else the default vhost) must be served and have ``srt { enabled on; }``;
* the policy chain runs as for RTMP: ``on_connect``, then ``on_publish`` (client type
  ``srt-publish``) or ``on_play`` (``srt-play``), with the stream id's extra keys as
  the hooks' ``param``; security rules; one publisher per stream (whatever protocol);
* a refused caller gets a SHUTDOWN (SRS closes the socket too).

Publish: the payloads (MPEG-TS, 188-byte packets in 1316-byte messages) go through
:class:`~srs_twisted.codec.mpegts_demux.TsDemuxer` into the live source, so the stream
plays over RTMP, HTTP-FLV/TS, HLS, DASH and is recorded like any other.  While the
policy is deciding, at most :data:`PENDING_LIMIT` bytes are held.

Play: a stream published over SRT is relayed (:mod:`.relay`, as SRS): the publisher's
TS messages go to its SRT players as the server's TSBPD releases them, nothing remuxed.
Any other stream is muxed to MPEG-TS by the shared TS muxer of HTTP-TS (once per
stream), cut into ``payloadsize`` messages and sent as each packet comes (no merged
writes while an SRT player plays: ``mw_latency`` does not delay SRT).  A player stays a
consumer of the live source either way (paused while relayed), so it waits through a
publisher's absence and counts as the stream's client.

``vhost.srt.srt_to_rtmp off`` (as SRS): an SRT publish is not demuxed into the live
core, so only SRT players get it.
"""

from __future__ import annotations

from twisted.application import service
from twisted.internet import defer
from twisted.internet.error import CannotListenError

from ..codec.mpegts_demux import TsDemuxer
from ..context import ClientInfo
from ..errors import Denied, InvalidStreamName, StreamBusy
from ..http.stream import HttpStreamSink
from ..log import ContextLogger
from ..url import StreamRequest, validate_names
from .crypto import accept_kmreq
from .handshake import ListenerSettings, SrtListener
from .protocol import SrtUdpProtocol
from .relay import TsRelay
from .streamid import parse_stream_id

__all__ = ["SrtServer", "listener_settings", "PENDING_LIMIT", "message_size"]

PENDING_LIMIT = 4 * 1024 * 1024  # bytes of TS held while the policy decides
RECV_TIMEOUT = 5.0  # seconds without data after which a publisher is closed (SRS's SRT socket recv timeout)


def listener_settings(conf) -> ListenerSettings:
    """The handshake settings of ``srt_server`` (as SRS sets them on its listener:
    ``latency`` first, then ``recvlatency`` and ``peerlatency``, which win)."""
    return ListenerSettings(
        recv_latency_ms=conf.recvlatency, peer_latency_ms=conf.peerlatency, tsbpd=conf.tsbpdmode,
        tlpktdrop=conf.tlpktdrop, mss=conf.mss, peer_idle_ms=conf.peer_idle_timeout,
        passphrase=conf.passphrase, pbkeylen=conf.pbkeylen or (16 if conf.passphrase else 0),
        max_bw=max(conf.maxbw, 0), max_bw_relative=conf.maxbw == 0)


def message_size(conf) -> int:
    """The size of the TS messages sent to players of a remuxed stream: ``payloadsize``
    (SRS's SRTO_PAYLOADSIZE) in whole TS packets, at least one, at most what fits the MSS."""
    fit = min(conf.payloadsize, conf.mss - 44)  # 28 bytes of IPv4/UDP + the 16-byte SRT header
    return max(188, fit - fit % 188)


class SrtTsSink(HttpStreamSink):
    """HTTP-TS's sink for an SRT player, flushed per packet (``realtime``: no merged writes,
    as SRS's SRT consumers): SRT is for low latency, its player already buffers ``latency``."""

    realtime = True


class SrtSession:
    """One accepted SRT connection: its client, stream and direction."""

    def __init__(self, server: "SrtServer", conn, addr, client: ClientInfo, source, publish: bool) -> None:
        self.server = server
        self.ctx = server.ctx
        self.conn = conn
        self.addr = addr
        self.client = client
        self.source = source
        self.publish = publish
        self.log = ContextLogger(client.id)
        self.allowed = False
        self.ended = False
        self.published = False
        self.consumer = None
        self.sink = None
        self.demuxer = TsDemuxer() if publish else None
        self.to_rtmp = True  # srt_to_rtmp: a publish is demuxed into the live core
        self.relay = None  # the TsRelay this session publishes to or plays from
        self.chunk = message_size(server.ctx.config.srt_server)
        self._pending: list = []
        self._pending_bytes = 0
        self._tail = b""
        self.started = self.ctx.clock.seconds()
        self.frames = 0
        self._last_data = self.started
        self._check = None

    # --- policy ---

    def start(self) -> None:
        policy = self.ctx.policy
        d = policy.on_connect(self.client)
        d.addCallback(lambda _: (policy.on_publish if self.publish else policy.on_play)(self.client))
        d.addCallbacks(self._allowed, self._denied)

    def _allowed(self, _) -> None:
        if self.ended:
            return
        req = self.client.request
        if self.publish:
            try:
                self.ctx.registry.publish(self.source, self, self.client)
            except StreamBusy as e:
                self.client.publish = False
                self._refuse(f"stream busy: {e}")
                return
            self.published = True
            self.allowed = True
            vhost = self.ctx.vhost(req.vhost)
            self.to_rtmp = vhost is None or vhost.srt.srt_to_rtmp
            self.relay = self.server.start_relay(self)
            pending, self._pending = self._pending, []
            self._pending_bytes = 0
            if pending:
                self.delivered(pending)
            self._check = self.ctx.clock.callLater(1.0, self._check_data)
        else:
            self.allowed = True
            relay = self.relay = self.server.relays.get(self.source.url)  # set: the live core's GOP is not sent
            self.sink = SrtTsSink(self.source, "ts", self._write)
            self.sink.realtime = relay is None
            self.consumer = self.source.subscribe(self.sink)
            if relay is not None:
                self.relay_on(relay)
        self.log.trace(f"SRT {'publish' if self.publish else 'play'} {req.vhost}/{req.app}/{req.stream}{req.param} "
                       f"from {self.addr[0]}:{self.addr[1]}, latency rcv={self.conn.params.recv_latency_us // 1000}ms "
                       f"snd={self.conn.params.send_latency_us // 1000}ms")

    def _denied(self, failure) -> None:
        if self.ended:
            return
        reason = failure.getErrorMessage() if failure.check(Denied) else repr(failure.value)
        self.client.publish = False
        self._refuse(f"{'publish' if self.publish else 'play'} denied: {reason}")

    def _refuse(self, reason: str) -> None:
        self.log.warn(f"SRT {self.addr[0]}:{self.addr[1]} streamid={self.conn.params.stream_id!r}: {reason}")
        self.server.protocol.close(self.conn, reason)

    # --- as a publisher (IPushProducer for the source) ---

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        self.server.protocol.close(self.conn, "stopped by the stream")

    def delivered(self, payloads: list) -> None:
        if not self.publish:
            return  # a player sends nothing we use
        if not self.allowed:
            for p in payloads:
                if self._pending_bytes + len(p) <= PENDING_LIMIT:
                    self._pending.append(p)
                    self._pending_bytes += len(p)
            return
        self._last_data = self.ctx.clock.seconds()
        if self.relay is not None:
            self.relay.feed(payloads)
        if not self.to_rtmp:
            self.source.stats.recv_bytes += sum(map(len, payloads))  # SRT only: no packet counts it
            return
        write = self.source.write
        for p in payloads:
            for pkt in self.demuxer.feed(p):
                write(pkt)
                self.frames += 1

    def _check_data(self) -> None:
        self._check = None
        if self.ended:
            return
        idle = self.ctx.clock.seconds() - self._last_data
        if idle >= RECV_TIMEOUT:
            self.server.protocol.close(self.conn, f"no data from the publisher for {idle:.1f}s")
            return
        self._check = self.ctx.clock.callLater(1.0, self._check_data)

    # --- as a player ---

    def relay_on(self, relay) -> None:
        """Play the SRT publisher's own messages (the live core's packets wait, paused)."""
        self.consumer.set_user_paused(True)
        self.source.set_realtime(self.consumer, False)  # the stream's other players may merge writes again
        self.relay = relay
        self._tail = b""
        relay.add(self, self._send_relayed)

    def relay_off(self) -> None:
        """The SRT publisher left: back to the live core (its next publisher, remuxed)."""
        if self.relay is None:
            return
        self.relay.remove(self)
        self.relay = None
        if self.consumer is not None:
            self.sink.header_sent = False  # PAT/PMT of the remuxed stream first
            self.source.set_realtime(self.consumer, True)
            self.consumer.set_user_paused(False)

    def _send_relayed(self, messages: list) -> None:
        self.source.stats.send_bytes += sum(map(len, messages))  # the stream's bytes out, as the live core counts
        self.server.protocol.send(self.conn, messages)

    def _write(self, data: bytes) -> None:
        if self.relay is not None:
            return  # relayed: the live core's copy is not sent
        if self._tail:
            data = self._tail + data
            self._tail = b""
        size = len(data)
        whole = size - size % 188
        if whole < size:
            self._tail = data[whole:]
        step = self.chunk
        chunks = [data[i:min(i + step, whole)] for i in range(0, whole, step)]
        if chunks:
            self.server.protocol.send(self.conn, chunks)

    # --- end ---

    def kick(self) -> None:
        self.server.protocol.close(self.conn, "kicked by the API")

    def closed(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        ctx = self.ctx
        if self._check is not None and self._check.active():
            self._check.cancel()
        self._check = None
        if self.relay is not None and not self.publish:
            self.relay.remove(self)
            self.relay = None
        if self.published:
            self.published = False
            self.client.publish = False
            if self.demuxer is not None:
                for pkt in self.demuxer.flush():
                    self.source.write(pkt)
            ctx.registry.unpublish(self.source)
            if self.relay is not None:  # after unpublish: the players resume at the live core's end
                self.server.stop_relay(self)
                self.relay = None
            ctx.policy.on_unpublish(self.client)
        elif self.consumer is not None:
            consumer, self.consumer = self.consumer, None
            consumer.close()
            ctx.policy.on_stop(self.client)
        else:
            self.source.release_if_idle()
        ctx.remove_client(self.client)
        ctx.policy.on_close(self.client)
        duration = ctx.clock.seconds() - self.started
        self.log.trace(f"SRT client closed {self.addr[0]}:{self.addr[1]} type={self.client.type} "
                       f"recv={self.conn.recv_bytes} send={self.conn.sent_bytes} duration={duration:.1f}s "
                       f"({reason}); {self.conn.summary()}")
        self.server.sessions.discard(self)


class SrtServer(service.Service):
    """The UDP port and every SRT session of a server (see the module docstring)."""

    name = "srt"

    def __init__(self, ctx, bind_host: str = "") -> None:
        self.ctx = ctx
        self.bind_host = bind_host
        self.log = ContextLogger()
        conf = ctx.config.srt_server
        self.listener = SrtListener(listener_settings(conf), kmreq=accept_kmreq)
        self.protocol = SrtUdpProtocol(ctx.clock, self.listener, self._accept,
                                       max_connections=ctx.config.max_connections)
        self.ports: list = []
        self.sessions: set = set()
        self.relays: dict = {}  # source url -> TsRelay of its SRT publisher

    def startService(self) -> None:
        super().startService()
        from ..rtc.service import udp_listen_address  # the same SRS listen forms as rtc_server's UDP port

        conf = self.ctx.config.srt_server
        for listen in conf.listens[:1]:  # one socket: every connection shares it
            host, port = udp_listen_address(listen, self.bind_host)
            try:
                self.ports.append(self.ctx.clock.listenUDP(port, self.protocol, interface=host))
            except CannotListenError as e:
                from ..service import StartError

                reason = getattr(e.socketError, "strerror", None) or str(e.socketError)
                raise StartError(f"srt cannot listen on udp {host or '0.0.0.0'}:{port}: {reason}") from None
            self._size_buffers(self.ports[-1], conf)
            self.log.trace(f"SRT listen at udp://{host or '0.0.0.0'}:{port}, recvlatency={conf.recvlatency}ms "
                           f"peerlatency={conf.peerlatency}ms")

    def _size_buffers(self, port, conf) -> None:
        """The UDP socket's buffers from ``sendbuf``/``recvbuf`` (libsrt's buffer sizes in SRS),
        so a burst to many players or from a fast publisher is not lost in the kernel (the
        kernel caps them at net.core.wmem_max/rmem_max)."""
        import socket

        sock = getattr(port, "socket", None)
        if sock is None:
            return
        for option, size in ((socket.SO_SNDBUF, conf.sendbuf), (socket.SO_RCVBUF, conf.recvbuf)):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, size)
            except OSError:
                pass

    def start_relay(self, publisher: SrtSession) -> TsRelay:
        """An SRT publish began: its relay, and the stream's waiting SRT players move onto it."""
        source = publisher.source
        relay = self.relays[source.url] = TsRelay(start_cache=source.options.gop_cache)
        for s in list(self.sessions):
            if not s.publish and s.source is source and s.consumer is not None and s.relay is None:
                s.relay_on(relay)
        return relay

    def stop_relay(self, publisher: SrtSession) -> None:
        relay = self.relays.get(publisher.source.url)
        if relay is publisher.relay:
            del self.relays[publisher.source.url]
        for player in list(publisher.relay.players):
            player.relay_off()

    def stopService(self):
        super().stopService()
        self.protocol.close_all("the server stopped")
        ports, self.ports = self.ports, []
        return defer.DeferredList([defer.maybeDeferred(port.stopListening) for port in ports])

    @property
    def host(self) -> str:
        if self.ports:
            host = self.ports[0].getHost().host
            if host not in ("", "0.0.0.0", "::"):
                return host
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self.ports[0].getHost().port if self.ports else 0

    def _accept(self, conn, addr, accepted):
        """A caller completed the handshake: its session, or None to close it."""
        conf = self.ctx.config.srt_server
        stream_id = accepted.stream_id
        log = ContextLogger()
        try:
            sid = parse_stream_id(stream_id, conf.default_app or "live")
        except ValueError as e:
            log.warn(f"SRT {addr[0]}:{addr[1]} refused: invalid streamid: {e}")
            return None
        vhost_conf = self.ctx.vhost(sid.vhost or "")
        if vhost_conf is None or not vhost_conf.enabled:
            log.warn(f"SRT {addr[0]}:{addr[1]} refused: vhost {sid.vhost!r} is not served (streamid={stream_id!r})")
            return None
        if not vhost_conf.srt.enabled:
            log.warn(f"SRT {addr[0]}:{addr[1]} refused: srt disabled, vhost={vhost_conf.name}")
            return None
        try:
            validate_names(sid.app, sid.stream)
        except InvalidStreamName as e:
            log.warn(f"SRT {addr[0]}:{addr[1]} refused: {e} (streamid={stream_id!r})")
            return None
        # SRS's tcUrl host: the h= vhost, else the server's address (the listen address here).
        host = sid.vhost or self.host
        req = StreamRequest(schema="srt", host=host, port=self.port, vhost=vhost_conf.name, app=sid.app,
                            stream=sid.stream, param=f"?{sid.param}" if sid.param else "",
                            tc_url=f"srt://{host}/{sid.app}")
        client = ClientInfo(ip=addr[0], port=addr[1], id=log.cid, type="srt-publish" if sid.publish else "srt-play",
                            protocol="srt", request=req, publish=sid.publish)
        source = client.source = self.ctx.registry.fetch_or_create(req.vhost, req.app, req.stream)
        session = SrtSession(self, conn, addr, client, source, sid.publish)
        client.recv_bytes = lambda: conn.recv_bytes
        client.send_bytes = lambda: conn.sent_bytes
        client.kick = session.kick
        self.ctx.add_client(client)
        self.sessions.add(session)
        log.trace(f"SRT client {addr[0]}:{addr[1]} streamid={stream_id!r} -> "
                  f"{'publish' if sid.publish else 'play'} {req.vhost}/{req.app}/{req.stream}{req.param}")
        # The policy runs once the protocol holds the session (a refusal ends it through the protocol).
        self.ctx.clock.callLater(0, session.start)
        return session
