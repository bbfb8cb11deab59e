"""Timestamp correction (SRS ``play.time_jitter``) and A/V interleaving
(``play.mix_correct``).

``TimeJitter`` runs once per packet at the source.  With ``full`` each player
then gets its own constant offset (:func:`player_offset`), so that its
timeline starts near zero whenever it joins, as SRS's per-consumer jitter
does, while the steps between packets stay the source's (and so the same for
every player)."""

from __future__ import annotations

import heapq
from itertools import count

from .packet import MediaPacket

MAX_JITTER_MS = 250
DEFAULT_FRAME_TIME_MS = 10
MIX_CORRECT_PURE_AV = 10


class TimeJitter:
    """``full``: start near zero and keep every step within +-250 ms (a larger
    step becomes 10 ms); script data is stamped 0.  ``zero``: subtract the
    first timestamp.  ``off``: leave timestamps alone."""

    MODES = ("full", "zero", "off")

    def __init__(self, mode: str = "full") -> None:
        if mode not in self.MODES:
            raise ValueError(f"time_jitter must be one of {self.MODES}, not {mode!r}")
        self.mode = mode
        self.reset()

    def reset(self) -> None:
        self._last_time = 0
        self._last_correct = -1

    def correct(self, pkt: MediaPacket) -> int:
        """Return the corrected dts for ``pkt`` (the packet is not changed)."""
        mode = self.mode
        if mode == "off":
            return pkt.dts
        if mode == "zero":
            if self._last_correct == -1:
                self._last_correct = pkt.dts
            return pkt.dts - self._last_correct
        if pkt.is_data:
            return 0
        time = pkt.dts
        delta = time - self._last_time
        if delta < -MAX_JITTER_MS or delta > MAX_JITTER_MS:
            delta = DEFAULT_FRAME_TIME_MS
        corrected = max(0, self._last_correct + delta)
        self._last_correct = corrected
        self._last_time = time
        return corrected


def player_offset(first_dts: int, last_dts: int = 0, last_offset: int = 0) -> int:
    """The offset (player time = dts - offset) that starts or restarts a
    player's timeline at the media packet ``first_dts``.

    ``last_dts``/``last_offset`` describe the last media packet the player
    got (0/0 for a new player).  Like SRS's per-consumer ``full`` jitter, the
    step from it is kept when it is within +-250 ms and becomes 10 ms
    otherwise: a new player of a stream that is 2,845 s old starts at 10 ms,
    one that joined at the start keeps the stream's time, and a player that
    skipped ahead or outlived a republish goes on 10 ms after its last packet.
    """
    delta = first_dts - last_dts
    if delta < -MAX_JITTER_MS or delta > MAX_JITTER_MS:
        delta = DEFAULT_FRAME_TIME_MS
    start = max(0, max(0, last_dts - last_offset) + delta)
    return first_dts - start


class MixQueue:
    """Reorders interleaved audio and video by dts before they are delivered.

    A packet leaves once at least one audio and one video packet are queued,
    or when either kind has piled up past ten packets (a pure audio or pure
    video stream)."""

    def __init__(self) -> None:
        self._heap: list = []
        self._seq = count()
        self._audios = 0
        self._videos = 0

    def push(self, pkt: MediaPacket) -> list[MediaPacket]:
        heapq.heappush(self._heap, (pkt.dts, next(self._seq), pkt))
        if pkt.is_audio:
            self._audios += 1
        elif pkt.is_video:
            self._videos += 1
        out = []
        while self._heap and (
            (self._audios and self._videos)
            or self._audios > MIX_CORRECT_PURE_AV
            or self._videos > MIX_CORRECT_PURE_AV
            or self._heap[0][2].is_data
        ):
            out.append(self._pop())
        return out

    def _pop(self) -> MediaPacket:
        pkt = heapq.heappop(self._heap)[2]
        if pkt.is_audio:
            self._audios -= 1
        elif pkt.is_video:
            self._videos -= 1
        return pkt

    def drain(self) -> list[MediaPacket]:
        return [self._pop() for _ in range(len(self._heap))]
