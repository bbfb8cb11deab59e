"""One player's subscription to a live source.

A consumer is a cursor into its source's packet ring, not a queue of its
own: delivering a packet to N players costs no per-player work until the
players are flushed, and players that are in step share one joined bytes
object per flush.  The consumer is the ``IPushProducer`` that a player's
transport pauses and resumes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zope.interface import implementer
from twisted.internet.interfaces import IPushProducer

if TYPE_CHECKING:
    from .source import LiveSource


@implementer(IPushProducer)
class Consumer:
    __slots__ = (
        "source",
        "sink",
        "cursor",
        "paused",
        "user_paused",
        "wait_keyframe",
        "needs_headers",
        "_accept_audio",
        "_accept_video",
        "filtered",
        "dropped",
        "sent_bytes",
        "closed",
        "retime",
        "chained",
        "anchored",
        "offset",
        "last_dts",
        "chain_start",
        "__weakref__",
    )

    def __init__(self, source: "LiveSource", sink) -> None:
        self.source = source
        self.sink = sink
        self.cursor = 0
        self.paused = False
        self.user_paused = False
        self.wait_keyframe = False
        self.needs_headers = False
        self._accept_audio = True
        self._accept_video = True
        self.filtered = False  # wants only some kinds of packet (kept by the setters)
        self.dropped = 0  # packets skipped because the player fell behind
        self.sent_bytes = 0
        self.closed = False
        # Per-player timestamps (``time_jitter full``): player time is
        # dts - offset.  Sinks without ``retime`` (formats without
        # timestamps, or whose bytes cannot be restamped) keep offset 0.
        self.retime = getattr(sink, "retime", None)
        self.chained = getattr(sink, "chained", None)
        self.anchored = False  # offset chosen for the current run of packets
        self.offset = 0
        self.last_dts = 0  # dts of the last media packet written
        # Ring index from which this player got every packet (of the kinds it
        # accepts) with the current offset: a packet whose same-kind
        # predecessor is at or after it may use the shared relative form.
        self.chain_start = 0

    @property
    def accept_audio(self) -> bool:
        return self._accept_audio

    @accept_audio.setter
    def accept_audio(self, value: bool) -> None:
        if value != self._accept_audio:
            self._accept_audio = value
            self._filter_changed()

    @property
    def accept_video(self) -> bool:
        return self._accept_video

    @accept_video.setter
    def accept_video(self, value: bool) -> None:
        if value != self._accept_video:
            self._accept_video = value
            self._filter_changed()

    def _filter_changed(self) -> None:
        self.filtered = not (self._accept_audio and self._accept_video)
        # Packets skipped while a kind was refused break that kind's chain:
        # relative forms are only valid from the next packet on.
        if self.chained is not None and self.chain_start < self.cursor:
            self.chain_start = self.cursor

    def accepts(self, pkt) -> bool:
        if pkt.is_audio:
            return self._accept_audio
        if pkt.is_video:
            return self._accept_video
        return True

    # IPushProducer: the player's transport drives these.
    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        if self.closed:
            return
        self.paused = False
        self.source.catch_up(self)

    def stopProducing(self) -> None:
        self.close()

    # What a player (RTMP pause, receiveAudio...) asks for.
    def set_user_paused(self, paused: bool) -> None:
        self.user_paused = paused
        if not paused and not self.closed:
            self.source.catch_up(self)

    def close(self) -> None:
        """Unsubscribe at once; the source forgets this consumer."""
        if not self.closed:
            self.closed = True
            self.source.unsubscribe(self)

    @property
    def lag(self) -> int:
        """Packets published but not yet written to this player."""
        return self.source.end - self.cursor
