"""VP8/VP9: VPCodecConfigurationRecord (the ``vpcC`` box, version 1).

Both the full box body (version and flags first, as FFmpeg writes it for
Enhanced RTMP) and the bare record are accepted.  The record holds no
picture size, so ``width``/``height`` are 0.
"""

from dataclasses import dataclass

from .avc import level_name
from .errors import CodecError

__all__ = ["Vp9Info", "parse_vpcc", "parse_decoder_config", "level_name"]

_RECORD_SIZE = 8


@dataclass(slots=True)
class Vp9Info:
    profile: int
    profile_name: str
    level: int
    level_name: str
    bit_depth: int
    chroma_subsampling: int
    full_range: bool
    width: int = 0
    height: int = 0


def parse_vpcc(data) -> Vp9Info:
    """Parse a vpcC box body or a bare VPCodecConfigurationRecord."""
    data = bytes(data)
    if len(data) >= 4 + _RECORD_SIZE and data[0] == 1 and data[1:4] == b"\x00\x00\x00":
        data = data[4:]  # FullBox version 1, flags 0
    if len(data) < _RECORD_SIZE:
        raise CodecError("VP codec configuration of %d bytes is too short" % len(data))
    profile, level, packed = data[0], data[1], data[2]
    if profile > 3:
        raise CodecError("invalid VP9 profile %d" % profile)
    bit_depth = packed >> 4
    if bit_depth not in (8, 10, 12):
        raise CodecError("invalid VP9 bit depth %d" % bit_depth)
    return Vp9Info(profile, "Profile %d" % profile, level, level_name(level), bit_depth,
                   (packed >> 1) & 0x07, bool(packed & 1))


parse_decoder_config = parse_vpcc
