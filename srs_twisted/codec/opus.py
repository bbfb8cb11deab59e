"""Opus identification header: ``OpusHead`` (RFC 7845) or the ``dOps`` box.

Enhanced RTMP sends the Ogg-style ``OpusHead`` packet (little endian, with
its magic) as the Opus sequence start; MP4 muxers use the ``dOps`` box body
(big endian, no magic).  Both are accepted.
"""

import struct
from dataclasses import dataclass

from .errors import CodecError

__all__ = ["OpusInfo", "parse_opus_head", "make_opus_head"]

_MAGIC = b"OpusHead"
_HEAD = struct.Struct("<BBHIhB")  # version, channels, pre-skip, input rate, gain, mapping
_DOPS = struct.Struct(">BBHIhB")


@dataclass(slots=True)
class OpusInfo:
    """Channel count, the encoder's input sample rate (0 if unknown) and pre-skip."""

    channels: int
    sample_rate: int
    pre_skip: int


def parse_opus_head(data) -> OpusInfo:
    """Parse an OpusHead packet or a dOps box body."""
    data = bytes(data)
    if data.startswith(_MAGIC):
        layout, body, what = _HEAD, data[len(_MAGIC):], "OpusHead"
    else:
        layout, body, what = _DOPS, data, "dOps"
    if len(body) < layout.size:
        raise CodecError("%s of %d bytes is too short" % (what, len(data)))
    version, channels, pre_skip, rate, _gain, mapping = layout.unpack_from(body)
    if what == "OpusHead" and version >> 4:
        raise CodecError("unsupported OpusHead major version %d" % (version >> 4))
    if what == "dOps" and version:
        raise CodecError("unsupported dOps version %d" % version)
    if not channels:
        raise CodecError("%s declares zero channels" % what)
    if mapping and len(body) < layout.size + 2 + channels:
        raise CodecError("%s channel mapping table is truncated" % what)
    return OpusInfo(channels, rate, pre_skip)


def make_opus_head(channels: int = 2, sample_rate: int = 48000, pre_skip: int = 312) -> bytes:
    """Build an OpusHead packet for mono or stereo (mapping family 0)."""
    if channels not in (1, 2):
        raise CodecError("mapping family 0 only carries 1 or 2 channels, not %d" % channels)
    return _MAGIC + _HEAD.pack(1, channels, pre_skip, sample_rate, 0, 0)
