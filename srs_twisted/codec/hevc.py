"""H.265/HEVC: HEVCDecoderConfigurationRecord and SPS picture size.

``parse_decoder_config`` reads the ``hvcC`` record sent as the video sequence
header (legacy codec id 12 or Enhanced RTMP ``hvc1``), collects its VPS, SPS
and PPS arrays and decodes the first SPS for the displayed size (after the
conformance window).  Profile names follow SRS's srs_hevc_profile2str.
"""

import struct
from dataclasses import dataclass, field

from .bitreader import BitReader, unescape_rbsp
from .errors import CodecError

__all__ = [
    "HevcInfo", "HevcSps", "parse_decoder_config", "parse_sps", "profile_name", "level_name",
    "NAL_VPS", "NAL_SPS", "NAL_PPS",
]

NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34

_PROFILE_NAMES = {1: "Main", 2: "Main10", 3: "Main Still Picture", 4: "Rext"}
_RECORD_HEADER_SIZE = 23
_U16 = struct.Struct(">H")


def profile_name(profile_idc: int) -> str:
    """SRS's name for a general_profile_idc ('Other' when unknown)."""
    return _PROFILE_NAMES.get(profile_idc, "Other")


def level_name(level_idc: int) -> str:
    """general_level_idc as text: 93 -> '3.1', 120 -> '4'."""
    major, rest = divmod(level_idc, 30)
    minor = rest // 3
    return "%d.%d" % (major, minor) if minor else "%d" % major


@dataclass(slots=True)
class HevcSps:
    """Fields decoded from an H.265 sequence parameter set."""

    profile: int
    tier: int
    level: int
    chroma_format_idc: int
    width: int
    height: int


@dataclass
class HevcInfo:
    """What an HEVCDecoderConfigurationRecord says about the stream."""

    profile: int
    profile_name: str
    level: int
    level_name: str
    width: int
    height: int
    nal_length_size: int
    vps: list = field(default_factory=list)
    sps: list = field(default_factory=list)
    pps: list = field(default_factory=list)


def _profile_tier_level(r: BitReader, max_sub_layers_minus1: int):
    r.skip(2)  # general_profile_space
    tier = r.read_bits(1)
    profile = r.read_bits(5)
    r.skip(32 + 4 + 43 + 1)  # compatibility flags, source flags, constraint flags
    level = r.read_bits(8)
    present = [(r.read_flag(), r.read_flag()) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1:
        r.skip(2 * (8 - max_sub_layers_minus1))  # reserved_zero_2bits
    for profile_present, level_present in present:
        if profile_present:
            r.skip(88)
        if level_present:
            r.skip(8)
    return profile, tier, level


def parse_sps(nal) -> HevcSps:
    """Decode an H.265 SPS NAL unit (with its two-byte NAL header)."""
    nal = bytes(nal)
    if len(nal) < 3:
        raise CodecError("H.265 SPS of %d bytes is too short" % len(nal))
    if (nal[0] >> 1) & 0x3F != NAL_SPS:
        raise CodecError("NAL unit type %d is not an SPS" % ((nal[0] >> 1) & 0x3F))
    r = BitReader(unescape_rbsp(nal[2:]))
    r.skip(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.read_bits(3)
    if max_sub_layers_minus1 > 6:
        raise CodecError("sps_max_sub_layers_minus1 %d out of range" % max_sub_layers_minus1)
    r.skip(1)  # sps_temporal_id_nesting_flag
    profile, tier, level = _profile_tier_level(r, max_sub_layers_minus1)
    if r.read_ue() > 15:
        raise CodecError("SPS id out of range")
    chroma_format_idc = r.read_ue()
    if chroma_format_idc > 3:
        raise CodecError("invalid chroma_format_idc %d" % chroma_format_idc)
    separate_planes = chroma_format_idc == 3 and r.read_flag()
    width = r.read_ue()
    height = r.read_ue()
    if r.read_flag():  # conformance_window_flag
        left, right, top, bottom = r.read_ue(), r.read_ue(), r.read_ue(), r.read_ue()
        chroma_type = 0 if separate_planes else chroma_format_idc
        unit_x = 2 if chroma_type in (1, 2) else 1
        unit_y = 2 if chroma_type == 1 else 1
        width -= unit_x * (left + right)
        height -= unit_y * (top + bottom)
    if width <= 0 or height <= 0:
        raise CodecError("H.265 SPS describes an empty picture")
    return HevcSps(profile, tier, level, chroma_format_idc, width, height)


def parse_decoder_config(record) -> HevcInfo:
    """Parse an HEVCDecoderConfigurationRecord and its first SPS."""
    record = bytes(record)
    if len(record) < _RECORD_HEADER_SIZE:
        raise CodecError("HEVC decoder configuration of %d bytes is too short" % len(record))
    if record[0] != 1:
        raise CodecError("unsupported HEVC configurationVersion %d" % record[0])
    nal_length_size = (record[21] & 0x03) + 1
    arrays = {NAL_VPS: [], NAL_SPS: [], NAL_PPS: []}
    pos = _RECORD_HEADER_SIZE
    for _ in range(record[22]):
        if len(record) - pos < 3:
            raise CodecError("truncated HEVC NAL array header at offset %d" % pos)
        nal_type = record[pos] & 0x3F
        (count,) = _U16.unpack_from(record, pos + 1)
        pos += 3
        for _ in range(count):
            if len(record) - pos < 2:
                raise CodecError("truncated HEVC NAL length at offset %d" % pos)
            (n,) = _U16.unpack_from(record, pos)
            pos += 2
            if len(record) - pos < n:
                raise CodecError("truncated HEVC NAL unit: need %d bytes at offset %d, have %d"
                                 % (n, pos, len(record) - pos))
            if nal_type in arrays:
                arrays[nal_type].append(record[pos:pos + n])
            pos += n
    if not arrays[NAL_SPS]:
        raise CodecError("HEVC decoder configuration has no SPS")
    sps = parse_sps(arrays[NAL_SPS][0])
    return HevcInfo(sps.profile, profile_name(sps.profile), sps.level, level_name(sps.level),
                    sps.width, sps.height, nal_length_size,
                    arrays[NAL_VPS], arrays[NAL_SPS], arrays[NAL_PPS])
