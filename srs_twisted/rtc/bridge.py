"""The RTMP <-> WebRTC audio bridge: AAC/MP3 -> Opus for WebRTC players, Opus -> AAC for the rest.

* :class:`OpusBridge` (``rtc.rtmp_to_rtc on``): the AAC (AudioSpecificConfig
  from the sequence header as the decoder's extradata) or MP3 frames of a
  stream's FLV audio bodies become Opus 48 kHz 20 ms frames
  (``opus_bitrate``).  One per stream, inside the stream's shared
  :class:`~.player.RtpEncoder`, so it runs once whatever the number of WebRTC
  players; it starts at the first audio frame a WebRTC player needs and
  :meth:`OpusBridge.stop` frees it when the last one leaves (the encoder
  keeps the AudioSpecificConfig to start again).
* :class:`AacBridge` (``rtc.rtc_to_rtmp on``): a WebRTC publisher's Opus frames
  become AAC-LC 48 kHz frames (``aac_bitrate``) in FLV bodies, the AAC
  sequence header first, for RTMP, HTTP-FLV, HLS, DVR...  Each AAC packet is a
  :class:`BridgedAudio` that also carries the Opus frames received since the
  previous one (:attr:`BridgedAudio.rtc_frames`), which WebRTC players of the
  stream get unchanged: no Opus -> AAC -> Opus round trip.

Timestamps come from the input's (see :mod:`srs_twisted.transcode.audio`):
continuous on the output's sample clock, anchored at the first input frame's
time and corrected for the encoders' priming, so audio stays on the video's
timeline.
"""

from __future__ import annotations

from ..codec import flv
from ..codec.errors import CodecError
from ..codec.opus import make_opus_head
from ..live.packet import AUDIO, MediaPacket
from ..transcode.audio import TRANSCODE_ERRORS, aac_encoder, opus_encoder

__all__ = ["OpusBridge", "AacBridge", "BridgedAudio", "AAC_HEADER"]

#: FLV audio tag header of AAC (SoundFormat 10, 44 kHz, 16 bit, stereo: FLV's fixed values for AAC)
AAC_HEADER = 0xAF


class BridgedAudio(MediaPacket):
    """An audio packet that also carries ``rtc_frames``: ``[(opus bytes, pts ms)]``
    for WebRTC players (the publisher's own Opus)."""

    __slots__ = ("rtc_frames",)

    def __init__(self, kind, dts, payload, *, rtc_frames=(), **kw) -> None:
        super().__init__(kind, dts, payload, **kw)
        self.rtc_frames = list(rtc_frames)

    def retimed(self, dts: int) -> "BridgedAudio":
        shift = dts - self.dts
        return BridgedAudio(self.kind, dts, self.payload, codec=self.codec, pts=self.pts + shift,
                            keyframe=self.keyframe, sequence_header=self.sequence_header,
                            rtc_frames=[(data, pts + shift) for data, pts in self.rtc_frames])


class OpusBridge:
    """AAC/MP3 FLV audio bodies -> Opus frames (see the module docstring)."""

    def __init__(self, bitrate: int = 48000, factory=opus_encoder) -> None:
        self.bitrate = bitrate
        self._factory = factory
        self.transcoder = None
        self._decoder = None
        self._config = None  # the AudioSpecificConfig of the stream's AAC
        self.starts = 0  # transcoders started (for tests and the log)
        self.errors = 0  # bodies that did not parse or could not start a transcoder

    def frames(self, pkt) -> list:
        """``[(opus bytes, pts ms)]`` for one AAC or MP3 MediaPacket (none for
        a sequence header or while the transcoder fills its first frame)."""
        body = pkt.payload
        try:
            tag = flv.parse_audio(body)
        except CodecError:
            self.errors += 1
            return []
        data = memoryview(body)[tag.data_offset:]
        if tag.codec == "aac":
            if tag.sequence_header:
                config = bytes(data)
                if config != self._config:
                    self.stop()
                    self._config = config
                return []
            if self._config is None:
                return []  # no AudioSpecificConfig yet: nothing to decode with
            decoder, extradata = "aac", self._config
        elif tag.codec == "mp3":
            decoder, extradata = "mp3", None
        else:
            return []
        if not len(data):
            return []
        if self.transcoder is None or self._decoder != decoder:
            self.stop()
            try:
                self.transcoder = self._factory(decoder, extradata, self.bitrate)
            except TRANSCODE_ERRORS:
                self.errors += 1
                return []
            self._decoder = decoder
            self.starts += 1
        return self.transcoder.push(data, pkt.pts)

    def stop(self) -> None:
        """Free the transcoder (no WebRTC player is left, or the config changed)."""
        if self.transcoder is not None:
            self.transcoder.close()
            self.transcoder = None
            self._decoder = None


class AacBridge:
    """A WebRTC publisher's Opus frames -> AAC MediaPackets (see the module docstring)."""

    def __init__(self, bitrate: int = 48000, factory=aac_encoder) -> None:
        self.bitrate = bitrate
        self._factory = factory
        self.transcoder = None
        self._pending: list = []  # Opus frames not yet carried by an AAC packet
        self._header_sent = False
        self.errors = 0
        self.frames = 0  # AAC frames made

    def header(self, dts: int) -> list:
        """The AAC sequence header (``[MediaPacket]``) once, at ``dts``; [] afterwards or
        when no encoder could be made."""
        if self._header_sent or not self._start():
            return []
        self._header_sent = True
        return [MediaPacket(AUDIO, max(0, dts), bytes((AAC_HEADER, 0)) + self.transcoder.extradata, codec="aac",
                            sequence_header=True)]

    def _start(self) -> bool:
        if self.transcoder is None:
            try:
                self.transcoder = self._factory("opus", make_opus_head(2, 48000), self.bitrate)
            except TRANSCODE_ERRORS:
                self.errors += 1
                return False
        return True

    def push(self, opus: bytes, dts: int) -> list:
        """One Opus frame at ``dts`` ms: the MediaPackets it completes (the AAC
        sequence header before the first frame, unless :meth:`header` sent it)."""
        if not self._start():
            return []
        self._pending.append((opus, dts))
        out = []
        for data, pts in self.transcoder.push(opus, dts):
            pts = max(0, pts)
            out += self.header(pts)
            frames, self._pending = self._pending, []
            self.frames += 1
            out.append(BridgedAudio(AUDIO, pts, bytes((AAC_HEADER, 1)) + data, codec="aac", rtc_frames=frames))
        if len(self._pending) > 50:  # the encoder gives nothing (broken input): do not hold Opus forever
            del self._pending[:-50]
        return out

    def shift(self, ms: float) -> None:
        """The input timeline moved by ``ms`` (an A/V resync): the output follows."""
        if self.transcoder is not None:
            self.transcoder.shift(ms)

    def close(self) -> None:
        if self.transcoder is not None:
            self.transcoder.close()
            self.transcoder = None
