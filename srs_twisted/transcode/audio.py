"""Compressed audio frames in, compressed audio frames of another codec out (PyAV).

:class:`AudioTranscoder` decodes one stream's raw frames (AAC with its
AudioSpecificConfig as extradata, MP3, Opus...), resamples them to the output
rate, layout and frame size, and encodes them (Opus 48 kHz 20 ms for WebRTC,
AAC-LC 48 kHz for RTMP).  No I/O and no clock: frames and their times in
milliseconds in, ``(frame bytes, pts ms)`` out, in order.

Timestamps are continuous on the output codec's sample clock, derived from the
input's: the first input frame's pts is the anchor, and an output frame is
stamped ``anchor + pts_samples * 1000 / rate`` where ``pts_samples`` is the
encoder's own packet pts counted in samples since the anchor (so the encoder's
priming, e.g. Opus's 312-sample lookahead or AAC's 1024, is accounted for: an
output frame carries the time of the input samples it decodes to).  An input
whose pts strays from the expected one (the anchor plus the samples decoded
so far) by more than :data:`DISCONTINUITY_MS` re-anchors (a publisher's
timestamp jump, a gap); the samples still buffered in the resampler are
dropped then.

Undecodable input is counted in ``errors`` and skipped; nothing raises out of
:meth:`AudioTranscoder.push` for bad data.  ``close()`` frees the codecs.
"""

from __future__ import annotations

import fractions

import av

__all__ = ["AudioTranscoder", "DISCONTINUITY_MS", "TRANSCODE_ERRORS", "opus_encoder", "aac_encoder"]

DISCONTINUITY_MS = 200
#: what PyAV raises for bad data or an unusable codec
TRANSCODE_ERRORS = (av.FFmpegError, ValueError, OSError)
_ERRORS = TRANSCODE_ERRORS


class AudioTranscoder:
    """One stream's audio from ``decoder`` to ``encoder`` (see the module docstring).

    ``decoder``: an FFmpeg decoder name ("aac", "mp3", "opus"); ``extradata``:
    its configuration (AudioSpecificConfig for AAC, OpusHead for Opus, None
    for MP3).  ``encoder``: an encoder name ("libopus", "aac"), ``rate`` the
    output sample rate, ``frame_size`` the samples per output frame (960 =
    20 ms of Opus at 48 kHz, 1024 for AAC), ``bitrate`` in bit/s,
    ``channels`` 1 or 2, ``sample_format`` what the encoder takes ("s16",
    "fltp"), ``options`` the encoder's private options.  ``input_rate`` and
    ``input_channels`` describe a decoder input that does not (raw G.711).
    """

    def __init__(self, decoder: str, extradata: bytes | None, encoder: str, *, rate: int, frame_size: int,
                 bitrate: int, channels: int = 2, sample_format: str = "fltp", options: dict | None = None,
                 input_rate: int = 0, input_channels: int = 0) -> None:
        self.rate = rate
        self.frame_size = frame_size
        layout = "stereo" if channels == 2 else "mono"
        self._decoder = av.CodecContext.create(decoder, "r")
        if extradata:
            self._decoder.extradata = bytes(extradata)
        if input_rate:
            self._decoder.sample_rate = input_rate
            self._decoder.layout = "stereo" if input_channels == 2 else "mono"
        self._encoder = av.CodecContext.create(encoder, "w")
        self._encoder.sample_rate = rate
        self._encoder.layout = layout
        self._encoder.format = sample_format
        self._encoder.bit_rate = bitrate
        self._encoder.time_base = fractions.Fraction(1, rate)
        if options:
            self._encoder.options = dict(options)
        self._encoder.open()
        self._resampler_args = {"format": sample_format, "layout": layout, "rate": rate, "frame_size": frame_size}
        self._resampler = av.AudioResampler(**self._resampler_args)
        self.extradata = bytes(self._encoder.extradata or b"")
        self.errors = 0  # input frames that did not decode (or encode)
        self.frames_in = 0
        self.frames_out = 0
        self.resets = 0  # re-anchors on a timestamp discontinuity
        self._fed = 0  # samples fed to the encoder (its frame pts)
        self._anchor_ms = None  # output time of encoder sample _anchor_samples
        self._anchor_samples = 0
        self._in_anchor = 0  # input pts (ms) of the first input frame since the anchor
        self._in_samples = 0  # decoded samples since then
        self._in_rate = 0
        self._last_ms = None

    def push(self, data, pts_ms: int) -> list:
        """One compressed input frame at ``pts_ms``: ``[(bytes, pts_ms)]`` of
        the output frames that are ready (zero, one or more)."""
        self.frames_in += 1
        try:
            frames = self._decoder.decode(av.Packet(bytes(data)))
        except _ERRORS:
            self.errors += 1
            return []
        if not frames:
            return []
        rate = frames[0].sample_rate
        if self._anchor_ms is None:
            self._anchor(pts_ms, rate)
        else:
            expected = self._in_anchor + self._in_samples * 1000 / (self._in_rate or rate)
            if abs(pts_ms - expected) > DISCONTINUITY_MS or rate != self._in_rate:
                self.resets += 1
                self._resampler = av.AudioResampler(**self._resampler_args)
                self._anchor(pts_ms, rate)
        out = []
        try:
            for frame in frames:
                self._in_samples += frame.samples
                frame.pts = None
                for chunk in self._resampler.resample(frame):
                    chunk.pts = self._fed
                    chunk.time_base = self._encoder.time_base
                    self._fed += chunk.samples
                    for packet in self._encoder.encode(chunk):
                        out.append(self._stamp(packet))
        except _ERRORS:
            self.errors += 1
        self.frames_out += len(out)
        return out

    def shift(self, ms: float) -> None:
        """Move the output timeline by ``ms`` from now on (the input's moved as
        much, e.g. an A/V resync), without a re-anchor's loss of buffered
        samples; a move back is absorbed by keeping the output's order."""
        if self._anchor_ms is not None:
            self._anchor_ms += int(round(ms))
            self._in_anchor += ms

    def _anchor(self, pts_ms: int, rate: int) -> None:
        self._anchor_ms = int(pts_ms)
        self._anchor_samples = self._fed
        self._in_anchor = pts_ms
        self._in_samples = 0
        self._in_rate = rate

    def _stamp(self, packet) -> tuple:
        pts = packet.pts if packet.pts is not None else self._fed
        ms = self._anchor_ms + ((pts - self._anchor_samples) * 1000) // self.rate
        if self._last_ms is not None and ms <= self._last_ms:
            ms = self._last_ms + 1  # frames buffered across a re-anchor: keep the order
        self._last_ms = ms
        return bytes(packet), ms

    def close(self) -> None:
        """Free the codecs (the transcoder cannot be used afterwards)."""
        self._decoder = self._encoder = self._resampler = None


def opus_encoder(decoder: str, extradata: bytes | None, bitrate: int) -> AudioTranscoder:
    """To Opus, 48 kHz stereo, 20 ms frames (what WebRTC players take)."""
    return AudioTranscoder(decoder, extradata, "libopus", rate=48000, frame_size=960, bitrate=bitrate,
                           sample_format="s16", options={"application": "audio"})


def aac_encoder(decoder: str, extradata: bytes | None, bitrate: int) -> AudioTranscoder:
    """To AAC-LC, 48 kHz stereo, 1024-sample frames (what RTMP, FLV, HLS and DVR take)."""
    return AudioTranscoder(decoder, extradata, "aac", rate=48000, frame_size=1024, bitrate=bitrate,
                           sample_format="fltp")
