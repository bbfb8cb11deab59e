"""Opus RTP payload format (RFC 7587).

One Opus packet per RTP packet, no payload header, a 48 kHz RTP clock
whatever the codec's internal rate.  :func:`opus_samples` reads the TOC
byte (RFC 6716 3.1) for a packet's duration, which is how far the RTP
timestamp advances.  The payloader takes Opus packets (or Enhanced RTMP
Opus tag bodies); the depayloader returns :class:`OpusFrame` objects and
counts lost packets.
"""

from dataclasses import dataclass

from . import flv
from .rtp import RtpError, flv_media, seq_diff

__all__ = ["CLOCK_RATE", "OpusFrame", "OpusPayloader", "OpusDepayloader", "opus_samples"]

CLOCK_RATE = 48000
# Frame sizes in 48 kHz samples by TOC configuration (RFC 6716 table 2).
_SILK = (480, 960, 1920, 2880)
_CELT = (120, 240, 480, 960)
_FRAME_SAMPLES = tuple(_SILK[c % 4] if c < 12 else (480, 960)[c % 2] if c < 16 else _CELT[c % 4]
                       for c in range(32))
_MAX_SAMPLES = 5760  # 120 ms
_MAX_LATE = 64


def opus_samples(packet) -> int:
    """Duration of an Opus packet in 48 kHz samples."""
    if not len(packet):
        raise RtpError("empty Opus packet")
    toc = packet[0]
    per_frame = _FRAME_SAMPLES[toc >> 3]
    code = toc & 0x03
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        if len(packet) < 2:
            raise RtpError("Opus code 3 packet without its frame count")
        frames = packet[1] & 0x3F
        if not frames:
            raise RtpError("Opus code 3 packet with zero frames")
    samples = frames * per_frame
    if samples > _MAX_SAMPLES:
        raise RtpError("Opus packet of %d samples is longer than 120 ms" % samples)
    return samples


@dataclass(slots=True)
class OpusFrame:
    """One Opus packet: ``timestamp`` on the 48 kHz RTP clock."""

    timestamp: int
    data: bytes
    samples: int


class OpusPayloader:
    """RTP payloads for Opus: each Opus packet is one payload."""

    def payload(self, packet) -> bytes:
        opus_samples(packet)
        return bytes(packet)

    def payload_flv(self, body):
        """The payload of an FLV/RTMP Opus audio tag body; None for its
        sequence header (OpusHead) or a tag without audio."""
        tag, data = flv_media(flv.parse_audio, body, "opus", "audio codec %s is not Opus")
        if tag.sequence_header or not len(data) or (
                tag.enhanced and body[0] & 0x0F in (flv.AUDIO_SEQUENCE_END, flv.AUDIO_MULTICHANNEL_CONFIG)):
            return None
        return self.payload(data)


class OpusDepayloader:
    """Opus frames from a publisher's RTP packets, in order.

    ``lost`` counts sequence numbers skipped; late and duplicate packets
    are dropped (``late``).  Empty payloads (padding-only packets) yield
    nothing but keep the sequence unbroken.
    """

    def __init__(self):
        self.lost = 0
        self.late = 0
        self._last_seq = None
        self._late_run = 0

    def push(self, packet):
        payload = packet.payload
        samples = opus_samples(payload) if len(payload) else 0
        seq = packet.sequence_number
        if self._last_seq is not None:
            d = seq_diff(seq, self._last_seq)
            if d <= 0:
                self.late += 1
                self._late_run += 1
                if self._late_run <= _MAX_LATE:
                    return None
            else:
                self.lost += d - 1
        self._late_run = 0
        self._last_seq = seq
        return OpusFrame(packet.timestamp, bytes(payload), samples) if samples else None
