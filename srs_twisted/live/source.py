"""A live stream: one publisher, a shared packet ring, many consumers.

The ring holds the packets some player still needs: the current GOP (the GOP
cache) and whatever a slow player has not been sent yet, never more than
``queue_length`` seconds behind the newest packet.  A player that falls
further behind jumps forward to the newest GOP (whole GOPs are dropped, the
sequence headers are sent again), so memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from zope.interface import implementer

from ..errors import StreamBusy
from ..interfaces import ILiveSource
from .consumer import Consumer
from .jitter import MixQueue, TimeJitter, player_offset
from .packet import DATA, MediaPacket
from .stats import StreamStats

# SRS guesses a stream is pure audio after this many audio packets without video.
PURE_AUDIO_GUESS_COUNT = 115
# Lag is checked on every keyframe and at least every this many packets.
LAG_CHECK_INTERVAL = 128
# The ring is compacted when this many dead packets sit at its front.
TRIM_SLACK = 64
# With a write per video frame (mw_by_frame), audio waits at most this long (seconds) for the
# next video frame: a frame interval at 25 fps.
FRAME_WAIT = 0.04


@dataclass
class SourceOptions:
    """The per-vhost play settings a source runs with (SRS's defaults)."""

    gop_cache: bool = True
    gop_cache_max_frames: int = 2500
    queue_length: float = 30.0  # seconds
    time_jitter: str = "full"
    atc: bool = False
    atc_auto: bool = False
    mix_correct: bool = False
    mw_latency: int = 350  # ms; 0 flushes every packet
    mw_msgs: int = 8
    # mw_latency and mw_msgs not set: a merged write per video frame (srs_twisted's default).
    mw_by_frame: bool = False
    reduce_sequence_header: bool = False

    @classmethod
    def from_play_config(cls, play) -> "SourceOptions":
        return cls(
            gop_cache=play.gop_cache,
            gop_cache_max_frames=play.gop_cache_max_frames,
            queue_length=float(play.queue_length),
            time_jitter=play.time_jitter,
            atc=play.atc,
            atc_auto=play.atc_auto,
            mix_correct=play.mix_correct,
            mw_latency=int(play.mw_latency),
            mw_msgs=int(play.mw_msgs),
            mw_by_frame=bool(getattr(play, "mw_by_frame", False)),
            reduce_sequence_header=play.reduce_sequence_header,
        )


@implementer(ILiveSource)
class LiveSource:
    def __init__(
        self,
        vhost: str,
        app: str,
        stream: str,
        clock,
        options: SourceOptions | None = None,
        on_idle: Callable[["LiveSource"], None] | None = None,
        source_id: str = "",
        on_players: Callable[["LiveSource"], None] | None = None,
    ) -> None:
        self.vhost = vhost
        self.app = app
        self.stream = stream
        self.url = f"{vhost}/{app}/{stream}"
        self.id = source_id
        self.clock = clock
        self.options = options or SourceOptions()
        self._on_idle = on_idle
        self._on_players = on_players  # told when players come and go (edge pulls)
        self.publisher = None  # the publisher's IPushProducer, or None
        self.publisher_info = None  # whatever the publishing adapter attaches
        self.consumers: list[Consumer] = []
        self.metadata: MediaPacket | None = None
        self.video_sh: MediaPacket | None = None
        self.audio_sh: MediaPacket | None = None
        # The codec of the newest video / audio packet of this publish (MP3
        # has no sequence header: its frames say the stream has audio).
        self.video_codec: str | None = None
        self.audio_codec: str | None = None
        self._ring: list[MediaPacket] = []
        self._base = 0  # absolute index of _ring[0]
        self._gop_start: int | None = None
        self._audio_after_video = 0
        self._since_lag_check = 0
        self._unflushed = 0
        self._flush_call = None
        self._realtime = 0  # players whose sink is ``realtime``: no merged writes
        self._jitter = TimeJitter(self.options.time_jitter)
        self._kind_last: dict = {}  # kind -> (ring index, dts) of its newest packet
        self._mix = MixQueue() if self.options.mix_correct else None
        self._atc = self.options.atc
        self.stats = StreamStats(clock)
        # Shared per-stream state of output formats (e.g. one TS muxer whose
        # bytes every HTTP-TS player shares), keyed by the output's name.
        self.outputs: dict = {}
        # In-process packet processors (HLS, DASH, DVR, forward): called with
        # every packet as it is appended, in order, with no queue.
        self._taps: list = []

    # ---- ring bookkeeping -------------------------------------------------
    @property
    def end(self) -> int:
        return self._base + len(self._ring)

    @property
    def active(self) -> bool:
        return self.publisher is not None

    @property
    def has_video(self) -> bool:
        return self.video_sh is not None

    @property
    def has_audio(self) -> bool:
        return self.audio_sh is not None

    @property
    def retiming(self) -> bool:
        """Whether players get their own timeline (``time_jitter full``
        without ATC): each starts near zero whenever it joins."""
        return self.options.time_jitter == "full" and not self._atc

    def gop_cache_packets(self) -> list[MediaPacket]:
        if self._gop_start is None:
            return []
        return self._ring[self._gop_start - self._base :]

    # ---- publisher side (IConsumer shape, carrying MediaPackets) -----------
    def registerProducer(self, producer, streaming: bool = True) -> None:
        if self.publisher is not None:
            raise StreamBusy(self.url)
        self.publisher = producer
        self._jitter.reset()
        self._kind_last.clear()
        self._atc = self.options.atc
        self._mix = MixQueue() if self.options.mix_correct else None
        self.stats.publish_started()
        for c in list(self.consumers):
            c.sink.stream_published()

    def unregisterProducer(self) -> None:
        if self.publisher is None:
            return
        if self._mix is not None:
            for pkt in self._mix.drain():
                self._deliver(pkt)
        self.publisher = None
        self.publisher_info = None
        self.flush()
        # A new publisher brings its own headers and GOP: players wait for them.
        self.metadata = self.video_sh = self.audio_sh = None
        self.video_codec = self.audio_codec = None
        self._gop_start = None
        self._audio_after_video = 0
        for c in list(self.consumers):
            c.cursor = self.end
            c.wait_keyframe = False
            c.needs_headers = False
            c.anchored = False  # the next publisher's packets get a new offset
            c.sink.stream_unpublished()
        self._trim()
        self.stats.publish_stopped()
        self._check_idle()

    def kick_publisher(self) -> None:
        """Disconnect the publisher (API kick, idle kick-off)."""
        if self.publisher is not None:
            self.publisher.stopProducing()

    def write(self, pkt: MediaPacket) -> None:
        """One packet from the publisher: correct, remember, fan out."""
        self.stats.on_packet(pkt)
        if pkt.is_data:
            self._on_metadata(pkt)
        if not self._atc:
            dts = self._jitter.correct(pkt)
            if dts != pkt.dts:
                pkt = pkt.retimed(dts)
        if self._mix is not None:
            for p in self._mix.push(pkt):
                self._deliver(p)
        else:
            self._deliver(pkt)

    def _on_metadata(self, pkt: MediaPacket) -> None:
        if self.options.atc_auto:
            from ..codec import flv

            try:
                _, meta = flv.parse_script(pkt.payload)
            except ValueError:
                return
            if isinstance(meta, dict) and str(meta.get("bravo_atc")) == "true":
                self._atc = True

    def _deliver(self, pkt: MediaPacket) -> None:
        if pkt.is_audio:
            self.audio_codec = pkt.codec
        elif pkt.is_video:
            self.video_codec = pkt.codec
        if pkt.sequence_header:
            current = self.video_sh if pkt.is_video else self.audio_sh
            if (
                self.options.reduce_sequence_header
                and current is not None
                and current.payload == pkt.payload
            ):
                return
            if pkt.is_video:
                self.video_sh = pkt
            else:
                self.audio_sh = pkt
            self.stats.on_sequence_header(pkt)
        elif pkt.is_data:
            self.metadata = pkt
        self._append(pkt)

    def add_tap(self, tap, replay_headers: bool = True) -> None:
        """Call ``tap(packet)`` for every packet from now on (first the
        current metadata and sequence headers, unless told not to).  A tap
        that raises is removed, so one broken recorder never stops a stream."""
        self._taps.append(tap)
        if replay_headers:
            for pkt in (self.metadata, self.video_sh, self.audio_sh):
                if pkt is not None and tap in self._taps:
                    self._call_tap(tap, pkt)

    def remove_tap(self, tap) -> None:
        if tap in self._taps:
            self._taps.remove(tap)

    def _call_tap(self, tap, pkt: MediaPacket) -> None:
        try:
            tap(pkt)
        except Exception as e:  # noqa: BLE001 - isolate the stream from a broken tap
            self.remove_tap(tap)
            from ..log import ContextLogger, log_unexpected

            # Taps (HLS, DASH, DVR, forward) handle their own I/O errors: what
            # reaches here is a bug, reported with its traceback.
            log_unexpected(ContextLogger(self.id), f"stream {self.url}: tap {tap!r} failed and was removed", e)

    def _append(self, pkt: MediaPacket) -> None:
        if self._taps:
            for tap in list(self._taps):
                self._call_tap(tap, pkt)
        index = self.end
        kind = pkt.kind
        prev = self._kind_last.get(kind)
        if prev is not None:
            pkt.prev_index, pkt.prev_dts = prev
        self._kind_last[kind] = (index, pkt.dts)
        self._ring.append(pkt)
        self._since_lag_check += 1
        if pkt.is_video:
            self._audio_after_video = 0
            if pkt.keyframe and not pkt.sequence_header:
                self._gop_start = index if self.options.gop_cache else None
                self._check_lag()
        elif pkt.is_audio:
            self._audio_after_video += 1
            if (
                self._gop_start is not None
                and self._audio_after_video > PURE_AUDIO_GUESS_COUNT
            ):
                self._gop_start = None
        if (
            self._gop_start is not None
            and self.options.gop_cache_max_frames > 0
            and self.end - self._gop_start > self.options.gop_cache_max_frames
        ):
            self._gop_start = None
        if self._since_lag_check >= LAG_CHECK_INTERVAL:
            self._check_lag()
        self._schedule_flush(pkt)

    # ---- consumers --------------------------------------------------------
    def subscribe(self, sink, gop_cache: bool = True) -> Consumer:
        """Add a player.  It gets metadata and sequence headers, then the GOP
        cache, then live packets (or waits for the next keyframe).  With
        ``gop_cache=False`` this player skips the cache and waits for the next
        keyframe (a WebRTC player of a publisher that sends one on request)."""
        c = Consumer(self, sink)
        self.consumers.append(c)
        if getattr(sink, "realtime", False):
            self._realtime += 1
        self._position_new(c, gop_cache)
        self.flush_one(c)
        if self._on_players is not None:
            self._on_players(self)
        return c

    def _position_new(self, c: Consumer, gop_cache: bool = True) -> None:
        if gop_cache and self._gop_start is not None:
            c.cursor = self._gop_start
        else:
            c.cursor = self.end
            c.wait_keyframe = self.video_sh is not None
        c.needs_headers = self.active

    def set_realtime(self, c: Consumer, realtime: bool) -> None:
        """A player's sink starts or stops needing each packet at once (an SRT player fed
        by its own relay needs nothing from here: the stream's merged writes come back)."""
        if bool(getattr(c.sink, "realtime", False)) != realtime:
            c.sink.realtime = realtime
            if not c.closed:
                self._realtime += 1 if realtime else -1

    def unsubscribe(self, c: Consumer) -> None:
        try:
            self.consumers.remove(c)
        except ValueError:
            return
        if getattr(c.sink, "realtime", False):
            self._realtime -= 1
        self._trim()
        if self._on_players is not None:
            self._on_players(self)
        self._check_idle()

    def catch_up(self, c: Consumer) -> None:
        """A paused player resumed: send what it missed (or jump it forward)."""
        if self._too_far_behind(c):
            self._jump(c)
        self.flush_one(c)

    def _too_far_behind(self, c: Consumer) -> bool:
        if c.cursor >= self.end:
            return False
        if c.cursor < self._base:
            return True
        oldest = self._ring[c.cursor - self._base].dts
        newest = self._ring[-1].dts
        return newest - oldest > self.options.queue_length * 1000

    def _jump(self, c: Consumer) -> None:
        if self._gop_start is not None and self._gop_start > c.cursor:
            skipped = self._gop_start - c.cursor
            c.cursor = self._gop_start
            c.wait_keyframe = False
        else:
            skipped = self.end - c.cursor
            c.cursor = self.end
            c.wait_keyframe = self.video_sh is not None
        c.dropped += skipped
        c.needs_headers = True
        c.anchored = False  # like SRS: the timeline goes on 10 ms later, no gap
        self.stats.dropped += skipped

    def _check_lag(self) -> None:
        self._since_lag_check = 0
        for c in self.consumers:
            if (c.paused or c.user_paused) and self._too_far_behind(c):
                self._jump(c)
        self._trim()

    def _trim(self) -> None:
        keep = self.end if self._gop_start is None else self._gop_start
        for c in self.consumers:
            if c.cursor < keep:
                keep = c.cursor
        dead = keep - self._base
        if dead >= TRIM_SLACK or (dead > 0 and dead == len(self._ring)):
            del self._ring[:dead]
            self._base = keep

    # ---- writing ----------------------------------------------------------
    def _schedule_flush(self, pkt: MediaPacket) -> None:
        self._unflushed += 1
        opts = self.options
        if opts.mw_by_frame:
            # Our default (mw_latency and mw_msgs not set): a write per video frame, with the
            # audio that came before it; audio-only streams per packet; FRAME_WAIT bounds the
            # wait of audio when video stalls.
            if pkt.is_video or not self.has_video or self._realtime:
                self.flush()
            elif self._flush_call is None:
                self._flush_call = self.clock.callLater(FRAME_WAIT, self.flush)
            return
        if opts.mw_latency <= 0 or self._realtime or self._unflushed >= max(1, opts.mw_msgs):
            self.flush()
        elif self._flush_call is None:
            self._flush_call = self.clock.callLater(opts.mw_latency / 1000.0, self.flush)

    def flush(self) -> None:
        """Write everything new to every player that can take it.  Players in
        step with each other (same position, wire format and timeline) share
        one joined bytes object."""
        if self._flush_call is not None:
            if self._flush_call.active():
                self._flush_call.cancel()
            self._flush_call = None
        self._unflushed = 0
        end = self.end
        retiming = self.retiming
        groups: dict = {}
        for c in self.consumers:
            if c.paused or c.user_paused or c.cursor >= end:
                continue
            if (
                c.needs_headers
                or c.wait_keyframe
                or c.filtered
                or (retiming and not c.anchored and c.retime is not None)
            ):
                self.flush_one(c)
                continue
            key = (c.sink.wire_key, c.cursor)
            group = groups.get(key)
            if group is None:
                groups[key] = [c]
            else:
                group.append(c)
        base = self._base
        ring = self._ring
        for (wire_key, cursor), group in groups.items():
            packets = ring[cursor - base :]
            first = group[0]
            encode = first.sink.encode
            if not retiming:
                self._send(group, b"".join([p.wire(wire_key, encode) for p in packets]), None)
                continue
            # Players on their own timelines: those holding the predecessor
            # of every packet take the relative forms (the same bytes for all
            # of them), those at offset 0 the plain shared form, the others
            # one restamped copy per timeline.
            chained = first.chained
            need = _chain_needs(packets, chained) if chained is not None else None
            timelines: dict = {}
            for c in group:
                if need is not None and c.chain_start <= need[0] and c.offset <= need[1]:
                    timeline = True
                elif not c.offset:
                    timeline = False
                else:
                    timeline = (c.offset, c.chain_start if chained is not None else 0)
                players = timelines.get(timeline)
                if players is None:
                    timelines[timeline] = [c]
                else:
                    players.append(c)
            last = _last_media_dts(packets)
            for timeline, players in timelines.items():
                if timeline is True:
                    data = b"".join(
                        [p.wire(wire_key, encode) if p.kind == DATA else chained(p) for p in packets]
                    )
                elif timeline is False:
                    data = b"".join([p.wire(wire_key, encode) for p in packets])
                else:
                    data = b"".join(self._wire_parts(players[0], packets, *timeline))
                self._send(players, data, last)
        self._trim()

    def _send(self, players: list, data: bytes, last_dts) -> None:
        end = self.end
        size = len(data)
        for c in players:
            c.cursor = end
            if last_dts is not None:
                c.last_dts = last_dts
            c.sent_bytes += size
            c.sink.write(data)
        self.stats.send_bytes += size * len(players)

    def flush_one(self, c: Consumer) -> None:
        """Write what one player is owed, honouring its own state."""
        if c.closed or c.paused or c.user_paused:
            return
        end = self.end
        if c.cursor < self._base:
            self._jump(c)
        start = c.cursor  # ring index of packets[0]
        packets = self._ring[start - self._base :]
        if c.wait_keyframe:
            for i, p in enumerate(packets):
                if p.is_video and p.keyframe and not p.sequence_header:
                    c.dropped += i
                    packets = packets[i:]
                    start += i
                    c.wait_keyframe = False
                    break
            else:
                c.dropped += len(packets)
                packets = []
        c.cursor = end
        if c.retime is not None and self.retiming:
            parts = self._retimed_parts(c, packets, start)
        else:
            out: list[MediaPacket] = []
            if c.needs_headers:
                c.needs_headers = False
                out.extend(self._headers_at(packets[0].dts if packets else None))
            out.extend(packets)
            if c.filtered:
                out = [p for p in out if c.accepts(p)]
            parts = self._wire_parts(c, out, 0, 0)
        if not parts:
            return
        data = b"".join(parts)
        c.sent_bytes += len(data)
        self.stats.send_bytes += len(data)
        c.sink.write(data)
        self._trim()

    def _retimed_parts(self, c: Consumer, packets: list, start: int) -> list:
        """Headers and packets for a player with its own timeline
        (``time_jitter full``): a player that has no offset yet gets one from
        the first media packets it is sent, so it starts near zero."""
        if c.filtered:
            packets = [p for p in packets if c.accepts(p)]
        first = None
        for p in packets:
            if not p.is_data:
                first = p
                break
        if not c.anchored and first is not None:
            c.offset = player_offset(min(p.dts for p in packets if not p.is_data), c.last_dts, c.offset)
            c.anchored = True
            c.chain_start = start if c.chained is not None else 0
        parts: list = []
        if c.needs_headers:
            c.needs_headers = False
            # Sequence headers at the first media packet's time (or 0 when
            # none follows yet); metadata, like all script data, at 0.
            ts = max(0, first.dts - c.offset) if first is not None and c.anchored else 0
            key, encode, retime = c.sink.wire_key, c.sink.encode, c.retime
            for h in (self.metadata, self.video_sh, self.audio_sh):
                if h is None or not c.accepts(h):
                    continue
                if h.is_data:
                    parts.append(h.wire(key, encode))
                else:
                    parts.extend(retime(h, ts))
        if packets:
            parts.extend(self._wire_parts(c, packets, c.offset, c.chain_start))
            last = _last_media_dts(packets)
            if last is not None:
                c.last_dts = last
        return parts

    @staticmethod
    def _wire_parts(c: Consumer, packets: list, offset: int, chain_start: int) -> list:
        """The wire pieces of ``packets`` for ``c``'s format on a timeline
        ``offset`` ms behind the stream's.  Offset 0 and script data use the
        shared form; other packets the shared relative form when the player
        holds their predecessor (RTMP fmt 1), else the sink's ``retime``
        (a new header over the shared payload)."""
        sink = c.sink
        key = sink.wire_key
        encode = sink.encode
        if not offset:
            return [p.wire(key, encode) for p in packets]
        retime = c.retime
        chained = c.chained
        parts: list = []
        for p in packets:
            if p.kind == DATA:
                parts.append(p.wire(key, encode))
                continue
            if chained is not None and p.prev_index >= chain_start and p.prev_dts >= offset:
                data = chained(p)
                if data is not None:
                    parts.append(data)
                    continue
            dts = p.dts - offset
            parts.extend(retime(p, dts if dts > 0 else 0))
        return parts

    def _headers_at(self, dts: int | None) -> list[MediaPacket]:
        headers = [p for p in (self.metadata, self.video_sh, self.audio_sh) if p is not None]
        if dts is None:
            return headers
        # Sequence headers move to the first packet's time; metadata stays at
        # its own (players such as FFmpeg read a script tag stamped later
        # than 0 as a subtitle stream).
        return [p if p.dts == dts or p.is_data else p.retimed(dts) for p in headers]

    # ---- life cycle -------------------------------------------------------
    def release_if_idle(self) -> None:
        """Let the registry drop this source if nobody uses it (e.g. after a
        publish or play that was looked up and then refused)."""
        self._check_idle()

    def _check_idle(self) -> None:
        if self.publisher is None and not self.consumers and self._on_idle is not None:
            if self._flush_call is not None and self._flush_call.active():
                self._flush_call.cancel()
            self._flush_call = None
            self._ring.clear()
            self._base = 0
            self._on_idle(self)

    def __repr__(self) -> str:
        return (
            f"<LiveSource {self.url} publisher={self.active} "
            f"consumers={len(self.consumers)} ring={len(self._ring)}>"
        )


def _last_media_dts(packets: list) -> int | None:
    for p in reversed(packets):
        if p.kind != DATA:
            return p.dts
    return None


def _chain_needs(packets: list, chained) -> tuple:
    """(lowest ring index, lowest dts) among the predecessors of the media
    packets in ``packets``: a player can take them all in their relative
    form when it holds every one of those predecessors (its chain starts at
    or before the index) unclamped (its offset is at most the dts).  A packet
    without a relative form makes both impossible."""
    low_index = low_dts = None
    for p in packets:
        if p.kind == DATA:
            continue
        if chained(p) is None:
            return (-1, float("-inf"))
        if low_index is None or p.prev_index < low_index:
            low_index = p.prev_index
        if low_dts is None or p.prev_dts < low_dts:
            low_dts = p.prev_dts
    if low_index is None:
        return (float("inf"), float("inf"))
    return (low_index, low_dts)
