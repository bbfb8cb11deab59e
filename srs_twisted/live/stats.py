"""Counters for streams and clients, shaped for SRS's HTTP API."""

from __future__ import annotations

from collections import deque

from .packet import MediaPacket


class KbpsWindow:
    """Bit rate over a sliding window (SRS reports 30 s windows).

    Samples of a byte counter are taken at most once a second, whenever the
    counter moves or the rate is read, so it costs nothing per packet beyond
    one comparison."""

    def __init__(self, clock, window: float = 30.0) -> None:
        self.clock = clock
        self.window = window
        self._samples: deque = deque(maxlen=int(window) + 2)

    def sample(self, total: int) -> None:
        now = self.clock.seconds()
        samples = self._samples
        if not samples or now - samples[-1][0] >= 1.0:
            samples.append((now, total))

    def kbps(self, total: int) -> int:
        now = self.clock.seconds()
        self.sample(total)
        samples = self._samples
        start = None
        for t, b in samples:
            if now - t <= self.window:
                start = (t, b)
                break
        if start is None or now - start[0] <= 0:
            return 0
        return int((total - start[1]) * 8 / 1000 / (now - start[0]))


class StreamStats:
    """Per-stream counters: bytes, frames, codec descriptions, timing."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.created = clock.seconds()
        self.publish_time: float | None = None
        self.recv_bytes = 0
        self.send_bytes = 0
        self.frames = 0
        self.audio_frames = 0
        self.dropped = 0
        self.publishes = 0
        self.gop_frames = 0  # video frames in the last complete GOP
        self._frames_at_key: int | None = None
        self.video: dict | None = None
        self.audio: dict | None = None
        self.recv_kbps = KbpsWindow(clock)
        self.send_kbps = KbpsWindow(clock)

    def publish_started(self) -> None:
        self.publish_time = self.clock.seconds()
        self.publishes += 1

    def publish_stopped(self) -> None:
        self.publish_time = None
        self._frames_at_key = None
        self.video = self.audio = None

    def on_packet(self, pkt: MediaPacket) -> None:
        self.recv_bytes += len(pkt.payload)
        if pkt.is_video:
            if not pkt.sequence_header:
                self.frames += 1
                if pkt.keyframe:
                    if self._frames_at_key is not None:
                        self.gop_frames = self.frames - self._frames_at_key
                    self._frames_at_key = self.frames
            self.recv_kbps.sample(self.recv_bytes)
        elif pkt.is_audio:
            self.audio_frames += 1
            if self.audio is None and pkt.codec == "mp3":
                self._describe(pkt)

    def on_sequence_header(self, pkt: MediaPacket) -> None:
        self._describe(pkt)

    def _describe(self, pkt: MediaPacket) -> None:
        from ..codec import flv, info

        try:
            if pkt.is_video:
                self.video = info.describe_video(flv.parse_video(pkt.payload), pkt.payload)
            else:
                self.audio = info.describe_audio(flv.parse_audio(pkt.payload), pkt.payload)
        except ValueError:
            pass  # the packet still flows; only its description is missing

    def live_ms(self) -> int:
        return int(self.clock.seconds() * 1000)
