"""MPEG audio (MP1/MP2/MP3) frame header parsing."""

from dataclasses import dataclass

from .errors import CodecError

__all__ = ["Mp3Info", "parse_frame_header"]

# Bitrates in kbps by (MPEG-1?, layer) and bitrate index 1..14.
_BITRATES = {
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_BITRATES[(False, 3)] = _BITRATES[(False, 2)]
_SAMPLE_RATES = (44100, 48000, 32000)
_VERSIONS = {0: 2.5, 2: 2.0, 3: 1.0}  # version bits 1 is reserved
_LAYERS = {1: 3, 2: 2, 3: 1}  # layer bits 0 is reserved


@dataclass(slots=True)
class Mp3Info:
    """One MPEG audio frame header.

    ``version`` is 1.0, 2.0 or 2.5; ``frame_length`` is in bytes including
    the header, 0 for free-format streams (bitrate index 0).
    """

    version: float
    layer: int
    bitrate_kbps: int
    sample_rate: int
    channels: int
    frame_length: int
    samples_per_frame: int


def parse_frame_header(data) -> Mp3Info:
    """Parse the 4-byte MPEG audio frame header at the start of ``data``."""
    if len(data) < 4:
        raise CodecError("MPEG audio header needs 4 bytes, have %d" % len(data))
    head = int.from_bytes(bytes(data[:4]), "big")
    if head >> 21 != 0x7FF:
        raise CodecError("no MPEG audio frame sync in %r" % bytes(data[:4]))
    version = _VERSIONS.get((head >> 19) & 3)
    layer = _LAYERS.get((head >> 17) & 3)
    if version is None or layer is None:
        raise CodecError("reserved MPEG audio version or layer")
    bitrate_index = (head >> 12) & 0x0F
    rate_index = (head >> 10) & 3
    if bitrate_index == 15 or rate_index == 3:
        raise CodecError("reserved MPEG audio bitrate or sample rate index")
    mpeg1 = version == 1.0
    sample_rate = _SAMPLE_RATES[rate_index] // {1.0: 1, 2.0: 2, 2.5: 4}[version]
    padding = (head >> 9) & 1
    channels = 1 if (head >> 6) & 3 == 3 else 2
    if layer == 1:
        samples = 384
    elif layer == 3 and not mpeg1:
        samples = 576
    else:
        samples = 1152
    bitrate = _BITRATES[(mpeg1, layer)][bitrate_index - 1] if bitrate_index else 0
    if layer == 1:
        length = (12 * bitrate * 1000 // sample_rate + padding) * 4
    else:
        length = samples // 8 * bitrate * 1000 // sample_rate + padding
    return Mp3Info(version, layer, bitrate, sample_rate, channels, length, samples)
