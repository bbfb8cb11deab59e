"""Twisted adapter for the RTMP server: feeds bytes to :class:`ServerSession`,
acts on its events against the shared :class:`ServerContext`."""

from __future__ import annotations

from functools import lru_cache

from twisted.internet import protocol
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from ..codec.errors import CodecError
from ..context import ClientInfo
from ..directwrite import direct_writer
from ..errors import Denied, InvalidStreamName, StreamBusy
from ..interfaces import IMediaSink
from ..live.packet import AUDIO, VIDEO
from ..log import ContextLogger, log_unexpected
from ..url import DEFAULT_VHOST, discover, validate_names
from . import session as s
from .chunk import EXTENDED_TIMESTAMP, ChunkReader, encode_message, encode_message_delta, message_pieces
from .errors import RtmpError

# How long a client may take from TCP connect to a finished connect command.
CONNECT_TIMEOUT = 30.0
# How often publisher timeouts and idle kick-off are checked.
PUBLISH_CHECK_INTERVAL = 1.0


def _csid(kind: int) -> int:
    return s.CSID_VIDEO if kind == VIDEO else s.CSID_AUDIO if kind == AUDIO else s.CSID_DATA


@lru_cache(maxsize=16)
def media_encoder(chunk_size: int):
    """The shared RTMP encoders for one chunk size, as (encode, retime,
    chained):

    - ``encode(pkt)``: fmt 0 chunks at the packet's own time, computed once
      and shared by every player with that chunk size;
    - ``retime(pkt, ts)``: fmt 0 chunks at a player's own time, as pieces
      that reuse the payload (a player's first message on a chunk stream);
    - ``chained(pkt)``: fmt 1 chunks carrying the step from the previous
      packet of the same kind, shared by every player that got that packet,
      whatever its timeline; None when the step is negative or too large.
    """
    delta_key = ("rtmp-delta", chunk_size)

    def encode(pkt) -> bytes:
        return encode_message(_csid(pkt.kind), pkt.kind, s.STREAM_ID, pkt.dts & 0xFFFFFFFF, pkt.payload, chunk_size)

    def retime(pkt, ts: int) -> list:
        return message_pieces(_csid(pkt.kind), pkt.kind, s.STREAM_ID, ts & 0xFFFFFFFF, pkt.payload, chunk_size)

    def encode_delta(pkt) -> bytes:
        return encode_message_delta(_csid(pkt.kind), pkt.kind, pkt.dts - pkt.prev_dts, pkt.payload, chunk_size)

    def chained(pkt):
        if 0 <= pkt.dts - pkt.prev_dts < EXTENDED_TIMESTAMP:
            return pkt.wire(delta_key, encode_delta)
        return None

    return encode, retime, chained


@implementer(IMediaSink)
class RtmpPlaySink:
    def __init__(self, proto: "RtmpServerProtocol", chunk_size: int) -> None:
        self.proto = proto
        self.wire_key = ("rtmp", chunk_size)
        self.encode, self.retime, self.chained = media_encoder(chunk_size)
        # counted into proto.sent_bytes, sent at once when it can
        self._send = direct_writer(proto.transport, proto)
        if type(self).write is RtmpPlaySink.write:
            self.write = self._send  # the hot path: no method call in between

    def write(self, data: bytes) -> None:
        self._send(data)

    def stream_published(self) -> None:
        pass

    def stream_unpublished(self) -> None:
        pass


class DurationLimitedSink(RtmpPlaySink):
    """A player whose play command gave a duration: it reads back the
    timestamps of the audio and video it was sent (the wire is the truth,
    whatever retiming the output applies) and stops the play once they
    span the duration.  Only such players pay for the parsing."""

    def __init__(self, proto: "RtmpServerProtocol", chunk_size: int, stream_id: int, duration_ms: int) -> None:
        super().__init__(proto, chunk_size)
        self.stream_id = stream_id
        self.duration = s.PlayDuration(duration_ms)
        self._reader = ChunkReader()
        self._reader.chunk_size = chunk_size
        self.done = False

    def write(self, data: bytes) -> None:
        if self.done:
            return
        self._send(data)
        add = self.duration.add
        try:
            messages = self._reader.feed(data)
        except RtmpError as e:  # our own output: a bug must cost this player only
            messages = ()
            self.done = True
            self.proto.ctx.clock.callLater(0, self.proto._fail, f"cannot read back the play duration: {e}")
        for msg in messages:
            if msg.type_id in (AUDIO, VIDEO) and add(msg.timestamp):
                self.done = True
                # Not from inside the source's flush (or subscribe): later.
                self.proto.ctx.clock.callLater(0, self.proto._play_duration_reached, self)
                return


@implementer(IPushProducer)
class RtmpServerProtocol(protocol.Protocol):
    """One RTMP connection.  While publishing it is the source's producer
    (pause/resume stop reading the socket; stopProducing kicks it)."""

    def __init__(self) -> None:
        self.session: s.ServerSession | None = None
        self.log = ContextLogger()
        self.client: ClientInfo | None = None
        self.vhost_conf = None
        self.source = None
        self.consumer = None
        self.sent_bytes = 0
        self.closed = False
        self.failed = False
        self._connect_checked = False
        self._timeout_call = None
        self._check_call = None
        # When bytes last came in, and how long since then the reactor was
        # busy elsewhere (publisher checks that ran late): a stall is not
        # the publisher's silence, its data waits unread in the socket.
        self._last_packet = 0.0
        self._stalled = 0.0
        self._check_due = 0.0
        self._got_packet = False
        self._idle_since = None
        self._start = 0.0

    @property
    def ctx(self):
        return self.factory.ctx

    # ---- connection life ----------------------------------------------------
    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        ip, port = getattr(peer, "host", "?"), getattr(peer, "port", 0)
        self._start = self.ctx.clock.seconds()
        self.client = ClientInfo(ip=ip, port=port, id=self.log.cid, protocol="rtmp")
        self.client.recv_bytes = lambda: self.session.bytes_received if self.session else 0
        self.client.send_bytes = lambda: self.sent_bytes
        self.client.kick = self.kick
        self.ctx.add_client(self.client)
        self.log.trace(f"RTMP client ip={ip}:{port}, fd={self.transport.fileno() if hasattr(self.transport, 'fileno') else -1}")
        conf = self.ctx.config
        self.session = s.ServerSession(
            chunk_size=conf.chunk_size, max_message_size=self.factory.max_message_size
        )
        self._timeout_call = self.ctx.clock.callLater(CONNECT_TIMEOUT, self._connect_timeout)

    def _connect_timeout(self) -> None:
        self._timeout_call = None
        self._fail(f"no connect within {CONNECT_TIMEOUT:.0f}s")

    def dataReceived(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.session.receive_data(data)
            self._last_packet = self.ctx.clock.seconds()
            self._stalled = 0.0
            for event in self.session.events():
                self._on_event(event)
                if self.closed:
                    return
        except (RtmpError, CodecError, ValueError) as e:
            self._fail(f"{type(e).__name__}: {e}")
            return
        except Exception as e:  # a bug must cost one connection, never the server
            log_unexpected(self.log, f"RTMP client {self.client.ip}:{self.client.port}", e)
            self._fail(f"internal error {type(e).__name__}")
            return
        self._flush_session()

    def _flush_session(self) -> None:
        out = self.session.data_to_send()
        if out:
            self.sent_bytes += len(out)
            self.transport.write(out)

    def _fail(self, reason: str, abort: bool = True) -> None:
        """Log why and close this one connection.  Garbage aborts at once;
        a refusal (abort=False) first flushes the status sent to the client."""
        if self.closed:
            return
        self.log.error(f"RTMP client {self.client.ip}:{self.client.port} closed: {reason}")
        self.failed = True
        self._close(abort=abort)

    def kick(self) -> None:
        """Disconnect this client (API kick, publisher timeout, idle kick-off)."""
        if not self.closed:
            self.log.trace("RTMP client kicked")
            self._close(abort=True)

    def _close(self, abort: bool = False) -> None:
        if self.session is not None:
            self._flush_session()
        self.closed = True
        if abort:
            self.transport.abortConnection()
        else:
            self.transport.loseConnection()

    def connectionLost(self, reason=None) -> None:
        self.closed = True
        for call in (self._timeout_call, self._check_call):
            if call is not None and call.active():
                call.cancel()
        if self.client is None or self.session is None:
            return
        try:
            self._stop_stream()
        finally:
            self.ctx.remove_client(self.client, error=self.failed)
            duration = self.ctx.clock.seconds() - self._start
            req = self.client.request
            self.log.trace(
                f"RTMP client closed ip={self.client.ip}:{self.client.port} "
                f"url={req.tc_url}/{req.stream} type={self.client.type} "
                f"recv={self.session.bytes_received} send={self.sent_bytes} duration={duration:.1f}s"
            )
            # on_close is always sent, even when stopping the stream failed.
            self.ctx.policy.on_close(self.client)

    # ---- IPushProducer (as a publisher) ------------------------------------
    def pauseProducing(self) -> None:
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.transport.resumeProducing()

    def stopProducing(self) -> None:
        self.kick()

    # ---- events ---------------------------------------------------------------
    def _on_event(self, event) -> None:
        if isinstance(event, s.MediaReceived):
            if self.source is not None and self.client.publish:
                self._got_packet = True
                self.source.write(event.packet)
        elif isinstance(event, s.ConnectRequested):
            self._on_connect(event)
        elif isinstance(event, s.PublishRequested):
            self._on_publish(event)
        elif isinstance(event, s.PlayRequested):
            self._on_play(event)
        elif isinstance(event, s.PauseRequested):
            if self.consumer is not None:
                self.consumer.set_user_paused(event.paused)
        elif isinstance(event, s.ReceiveAVChanged):
            if self.consumer is not None:
                if event.audio is not None:
                    self.consumer.accept_audio = event.audio
                if event.video is not None:
                    self.consumer.accept_video = event.video
        elif isinstance(event, s.StreamClosed):
            self.log.trace(f"RTMP {event.reason} stream")
            self._stop_stream()
        elif isinstance(event, s.UnknownMessage):
            self.log.warn(f"ignore RTMP message type={event.type_id} size={event.size}")

    def _on_connect(self, event: s.ConnectRequested) -> None:
        obj = event.command_object
        tc_url = event.tc_url or f"rtmp://{DEFAULT_VHOST}/{event.app}"
        req = discover(tc_url)
        if event.app and not req.app:
            req.app = event.app.split("?")[0]
        self.client.request = req
        self.client.page_url = str(obj.get("pageUrl", "") or "")
        self.client.swf_url = str(obj.get("swfUrl", "") or "")
        self.log.trace(
            f"connect app, tcUrl={tc_url}, pageUrl={self.client.page_url}, "
            f"swfUrl={self.client.swf_url}, schema={req.schema}, vhost={req.vhost}, "
            f"port={req.port}, app={req.app}, args={'(obj)' if obj else 'null'}"
        )
        conf = self.ctx.vhost(req.vhost)
        if conf is None or not conf.enabled:
            self.session.reject_connect(f"vhost {req.vhost} is not served")
            self._fail(f"no vhost {req.vhost}", abort=False)
            return
        self.vhost_conf = conf
        req.vhost = conf.name
        if conf.chunk_size:
            self.session.chunk_size = conf.chunk_size
        self.session.in_ack_size = conf.in_ack_size or self.session.in_ack_size
        self.session.out_ack_size = conf.out_ack_size
        if conf.tcp_nodelay and hasattr(self.transport, "setTcpNoDelay"):
            self.transport.setTcpNoDelay(True)
        # Like SRS, the connect is answered at once; the on_connect hook runs
        # when the client says what it wants (publish or play), so it can
        # carry the stream name.
        self._connected()

    def _connected(self) -> None:
        if self._timeout_call is not None and self._timeout_call.active():
            self._timeout_call.cancel()
        self._timeout_call = None
        self.session.accept_connect({"srs_id": self.log.cid})

    def _decide(self, d, on_allow, what: str, on_deny=None) -> None:
        """Run ``on_allow`` when the policy Deferred fires, else refuse."""

        def allow(_):
            if self.closed:
                return
            try:
                on_allow()
            except (RtmpError, CodecError, ValueError) as e:
                self._fail(f"{type(e).__name__}: {e}")
                return
            self._flush_session()

        def deny(failure):
            if self.closed:
                return
            reason = failure.getErrorMessage() if failure.check(Denied) else repr(failure.value)
            if on_deny is not None:
                on_deny(reason)
            self._fail(f"{what} denied: {reason}", abort=False)

        d.addCallbacks(allow, deny)

    def _ask_policy(self, action: str):
        """on_connect (once per connection), then on_publish or on_play."""
        policy = self.ctx.policy
        if self._connect_checked:
            return getattr(policy, action)(self.client)
        self._connect_checked = True
        d = policy.on_connect(self.client)
        d.addCallback(lambda _: getattr(policy, action)(self.client))
        return d

    def _request_for(self, stream_name: str):
        req = discover(self.client.request.tc_url or f"rtmp://{DEFAULT_VHOST}/{self.client.request.app}", stream_name)
        if not req.app:
            req.app = self.client.request.app
        conf = self.ctx.vhost(req.vhost)
        if conf is None or not conf.enabled:
            raise InvalidStreamName(f"vhost {req.vhost} is not served")
        req.vhost = conf.name
        validate_names(req.app, req.stream)
        return req

    def _on_publish(self, event: s.PublishRequested) -> None:
        if self.client.publish or self.consumer is not None:
            self._fail("publish on a connection that already publishes or plays")
            return
        try:
            req = self._request_for(event.stream_name)
        except InvalidStreamName as e:
            self.session.reject_publish(event.stream_id, description=str(e))
            self._fail(f"publish refused: {e}", abort=False)
            return
        self.client.request = req
        self.ctx.stream_changed(self.client)
        self.client.type = "fmle-publish" if event.fmle else "flash-publish"
        self.client.publish = True
        self.log.trace(f"{self.client.type} {req.vhost}/{req.app}/{req.stream}{req.param}")
        # The source exists before the policy runs, so hooks see its stream id.
        source = self.client.source = self.ctx.registry.fetch_or_create(req.vhost, req.app, req.stream)

        def start():
            try:
                self.ctx.registry.publish(source, self, self.client)
            except StreamBusy as e:
                self.session.reject_publish(event.stream_id, description="Stream is busy.")
                self.client.publish = False
                self._fail(str(e), abort=False)
                return
            self.source = source
            self.session.accept_publish(event.stream_id)
            self._got_packet = False
            self._last_packet = self.ctx.clock.seconds()
            self._stalled = 0.0
            self._idle_since = None
            self._schedule_check()

        def deny(reason):
            self.client.publish = False
            self.session.reject_publish(event.stream_id, description=reason)

        self._decide(self._ask_policy("on_publish"), start, "publish", deny)

    def _check_publisher(self) -> None:
        self._check_call = None
        if self.closed or self.source is None:
            return
        publish = self.vhost_conf.publish
        now = self.ctx.clock.seconds()
        # This check running late means the reactor was stalled (a slow
        # request, a busy machine) and could not read the socket: only the
        # time since data came in that the reactor could have read counts.
        self._stalled += max(0.0, now - max(self._check_due, self._last_packet))
        limit = (publish.normal_timeout if self._got_packet else publish.firstpkt_timeout) / 1000.0
        if now - self._last_packet - self._stalled > limit:
            what = "normal" if self._got_packet else "first packet"
            self._fail(f"publisher timeout: no {what} data in {limit:.1f}s")
            return
        idle = publish.kickoff_for_idle
        if idle and idle > 0:
            if self.source.consumers:
                self._idle_since = None
            elif self._idle_since is None:
                self._idle_since = now
            elif now - self._idle_since >= idle:
                self._fail(f"kickoff publisher: no players for {idle}s (kickoff_for_idle)")
                return
        self._schedule_check()

    def _schedule_check(self) -> None:
        clock = self.ctx.clock
        self._check_due = clock.seconds() + PUBLISH_CHECK_INTERVAL
        self._check_call = clock.callLater(PUBLISH_CHECK_INTERVAL, self._check_publisher)

    def _on_play(self, event: s.PlayRequested) -> None:
        if self.client.publish or self.consumer is not None:
            self._fail("play on a connection that already publishes or plays")
            return
        try:
            req = self._request_for(event.stream_name)
        except InvalidStreamName as e:
            self.session.reject_play(event.stream_id, description=str(e))
            self._fail(f"play refused: {e}", abort=False)
            return
        self.client.request = req
        self.ctx.stream_changed(self.client)
        self.client.type = "rtmp-play"
        # As SRS, start and reset do not change a live play; a duration > 0
        # (milliseconds) stops the player once it got that much media.
        duration = int(event.duration) if event.duration > 0 else 0
        self.log.trace(
            f"rtmp-play {req.vhost}/{req.app}/{req.stream}{req.param} start={event.start} "
            f"duration={event.duration} reset={event.reset}"
        )
        source = self.client.source = self.ctx.registry.fetch_or_create(req.vhost, req.app, req.stream)

        def start():
            self.session.accept_play(event.stream_id)
            self._flush_session()
            from ..cluster.coworkers import redirect_applies

            if redirect_applies(self.ctx, req, source):  # SRS 3-6 origin cluster: a 302 to the coworker
                self._redirect_to_coworker(req)
                return
            self.source = source
            if duration > 0:
                sink = DurationLimitedSink(self, self.session.chunk_size, event.stream_id, duration)
            else:
                sink = RtmpPlaySink(self, self.session.chunk_size)
            self.consumer = source.subscribe(sink)
            self.transport.registerProducer(self.consumer, True)

        def deny(reason):
            self.session.reject_play(event.stream_id, description=reason)

        self._decide(self._ask_policy("on_play"), start, "play", deny)

    def _redirect_to_coworker(self, req) -> None:
        from ..cluster.coworkers import discover

        def found(url):
            if self.closed:
                return
            if url is None:
                self._fail(f"no origin of the cluster publishes {req.vhost}/{req.app}/{req.stream}", abort=False)
                return
            self.session.redirect(url)
            self._fail(f"redirected to {url}", abort=False)

        discover(self.ctx, req, self.log).addCallback(found)

    def _play_duration_reached(self, sink: DurationLimitedSink) -> None:
        """Like SRS, end the connection once the play's duration is reached;
        first tell the player with onStatus NetStream.Play.Stop."""
        if self.closed or self.consumer is None or self.consumer.sink is not sink:
            return
        d = sink.duration
        self.log.trace(f"RTMP play duration reached: time {d.elapsed}ms up {d.limit}ms, closing")
        self.session.stop_play(sink.stream_id)
        self._stop_stream()
        self._close(abort=False)

    def _stop_stream(self) -> None:
        if self._check_call is not None and self._check_call.active():
            self._check_call.cancel()
        self._check_call = None
        if self.client.publish and self.source is not None:
            self.client.publish = False
            self.ctx.registry.unpublish(self.source)
            self.ctx.policy.on_unpublish(self.client)
        elif self.consumer is not None:
            consumer, self.consumer = self.consumer, None
            if not self.closed:
                self.transport.unregisterProducer()
            consumer.close()
            self.ctx.policy.on_stop(self.client)
        elif self.client.source is not None:
            self.client.source.release_if_idle()
        self.source = None


class RtmpServerFactory(protocol.ServerFactory):
    protocol = RtmpServerProtocol

    # The largest RTMP message accepted (the 24-bit length field's maximum).
    max_message_size = 16 * 1024 * 1024 - 1

    def __init__(self, ctx) -> None:
        self.ctx = ctx
