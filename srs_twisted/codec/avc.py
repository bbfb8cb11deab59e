"""H.264/AVC: AVCDecoderConfigurationRecord, SPS and NAL unit framing.

``parse_decoder_config`` reads the ``avcC`` record that RTMP/FLV carry as the
video sequence header and decodes its first SPS for profile, level and the
displayed picture size (after frame cropping).  Profile names are the ones
SRS reports in its HTTP API.
"""

import struct
from dataclasses import dataclass, field

from .bitreader import BitReader, unescape_rbsp
from .errors import CodecError

__all__ = [
    "AvcInfo", "SpsInfo", "parse_decoder_config", "parse_sps", "make_decoder_config",
    "split_nalus", "split_annexb", "profile_name", "level_name",
    "NAL_SLICE", "NAL_IDR", "NAL_SEI", "NAL_SPS", "NAL_PPS", "NAL_AUD",
]

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9

# Names as printed by SRS (srs_avc_profile2str), keyed by profile_idc.
_PROFILE_NAMES = {
    66: "Baseline", 77: "Main", 88: "Extended", 100: "High", 110: "High(10)",
    122: "High(422)", 144: "High(444)", 244: "High(444+Predictive)",
}
# profile_idc values whose SPS carries chroma format, bit depth and scaling lists.
_HIGH_PROFILES = frozenset((100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135))

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


def profile_name(profile_idc: int) -> str:
    """SRS's name for an H.264 profile_idc ('Other' when unknown)."""
    return _PROFILE_NAMES.get(profile_idc, "Other")


def level_name(level_idc: int) -> str:
    """Level as text: 31 -> '3.1', 30 -> '3'."""
    major, minor = divmod(level_idc, 10)
    return "%d.%d" % (major, minor) if minor else "%d" % major


@dataclass(slots=True)
class SpsInfo:
    """Fields decoded from an H.264 sequence parameter set."""

    profile: int
    constraint_flags: int
    level: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    width: int
    height: int
    frame_mbs_only: bool
    log2_max_frame_num: int = 4  # bits of a slice header's frame_num
    separate_colour_planes: bool = False


@dataclass
class AvcInfo:
    """What an AVCDecoderConfigurationRecord says about the stream."""

    profile: int
    profile_name: str
    level: int
    level_name: str
    width: int
    height: int
    nal_length_size: int
    sps: list = field(default_factory=list)
    pps: list = field(default_factory=list)


def _skip_scaling_list(reader: BitReader, size: int) -> None:
    last = next_scale = 8
    for _ in range(size):
        if next_scale:
            delta = reader.read_se()
            if not -128 <= delta <= 127:
                raise CodecError("SPS scaling list delta %d out of range" % delta)
            next_scale = (last + delta + 256) % 256
        last = next_scale or last


def parse_sps(nal) -> SpsInfo:
    """Decode an H.264 SPS NAL unit (with its one-byte NAL header)."""
    nal = bytes(nal)
    if len(nal) < 4:
        raise CodecError("H.264 SPS of %d bytes is too short" % len(nal))
    if nal[0] & 0x1F != NAL_SPS:
        raise CodecError("NAL unit type %d is not an SPS" % (nal[0] & 0x1F))
    r = BitReader(unescape_rbsp(nal[1:]))
    profile = r.read_bits(8)
    constraints = r.read_bits(8)
    level = r.read_bits(8)
    if r.read_ue() > 31:
        raise CodecError("SPS id out of range")
    chroma_format_idc = 1
    separate_planes = False
    depth_luma = depth_chroma = 8
    if profile in _HIGH_PROFILES:
        chroma_format_idc = r.read_ue()
        if chroma_format_idc > 3:
            raise CodecError("invalid chroma_format_idc %d" % chroma_format_idc)
        if chroma_format_idc == 3:
            separate_planes = r.read_flag()
        depth_luma = r.read_ue() + 8
        depth_chroma = r.read_ue() + 8
        if depth_luma > 14 or depth_chroma > 14:
            raise CodecError("invalid bit depth %d/%d" % (depth_luma, depth_chroma))
        r.skip(1)  # qpprime_y_zero_transform_bypass_flag
        if r.read_flag():  # seq_scaling_matrix_present_flag
            for i in range(12 if chroma_format_idc == 3 else 8):
                if r.read_flag():
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    log2_max_frame_num = r.read_ue() + 4
    if log2_max_frame_num > 16:
        raise CodecError("log2_max_frame_num_minus4 out of range")
    poc_type = r.read_ue()
    if poc_type == 0:
        if r.read_ue() > 12:
            raise CodecError("log2_max_pic_order_cnt_lsb_minus4 out of range")
    elif poc_type == 1:
        r.skip(1)  # delta_pic_order_always_zero_flag
        r.read_se()
        r.read_se()
        cycle = r.read_ue()
        if cycle > 255:
            raise CodecError("num_ref_frames_in_pic_order_cnt_cycle %d out of range" % cycle)
        for _ in range(cycle):
            r.read_se()
    elif poc_type != 2:
        raise CodecError("invalid pic_order_cnt_type %d" % poc_type)
    r.read_ue()  # max_num_ref_frames
    r.skip(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.read_ue() + 1
    height_units = r.read_ue() + 1
    frame_mbs_only = r.read_flag()
    if not frame_mbs_only:
        r.skip(1)  # mb_adaptive_frame_field_flag
    r.skip(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_units * 16
    if r.read_flag():  # frame_cropping_flag
        left, right, top, bottom = r.read_ue(), r.read_ue(), r.read_ue(), r.read_ue()
        chroma_type = 0 if separate_planes else chroma_format_idc
        if chroma_type == 0:
            unit_x, unit_y = 1, 2 - frame_mbs_only
        else:
            unit_x = 2 if chroma_type in (1, 2) else 1
            unit_y = (2 if chroma_type == 1 else 1) * (2 - frame_mbs_only)
        width -= (left + right) * unit_x
        height -= (top + bottom) * unit_y
        if width <= 0 or height <= 0:
            raise CodecError("SPS cropping leaves no picture")
    return SpsInfo(profile, constraints, level, chroma_format_idc, depth_luma, depth_chroma,
                   width, height, frame_mbs_only, log2_max_frame_num, separate_planes)


def _length_prefixed(record: bytes, pos: int, count: int, what: str):
    items = []
    for _ in range(count):
        if len(record) - pos < 2:
            raise CodecError("truncated %s length at offset %d" % (what, pos))
        (n,) = _U16.unpack_from(record, pos)
        pos += 2
        if len(record) - pos < n:
            raise CodecError("truncated %s: need %d bytes at offset %d, have %d"
                             % (what, n, pos, len(record) - pos))
        items.append(record[pos:pos + n])
        pos += n
    return items, pos


def parse_decoder_config(record) -> AvcInfo:
    """Parse an AVCDecoderConfigurationRecord and its first SPS."""
    record = bytes(record)
    if len(record) < 6:
        raise CodecError("AVC decoder configuration of %d bytes is too short" % len(record))
    if record[0] != 1:
        raise CodecError("unsupported AVC configurationVersion %d" % record[0])
    nal_length_size = (record[4] & 0x03) + 1
    sps, pos = _length_prefixed(record, 6, record[5] & 0x1F, "SPS")
    if pos >= len(record):
        raise CodecError("truncated AVC decoder configuration: no PPS count")
    pps, pos = _length_prefixed(record, pos + 1, record[pos], "PPS")
    if not sps:
        raise CodecError("AVC decoder configuration has no SPS")
    info = parse_sps(sps[0])
    return AvcInfo(info.profile, profile_name(info.profile), info.level, level_name(info.level),
                   info.width, info.height, nal_length_size, sps, pps)


def make_decoder_config(sps: list, pps: list, nal_length_size: int = 4) -> bytes:
    """Build an AVCDecoderConfigurationRecord from SPS and PPS NAL units."""
    if not sps:
        raise CodecError("an AVC decoder configuration needs an SPS")
    if not 1 <= nal_length_size <= 4 or len(sps) > 31 or len(pps) > 255:
        raise CodecError("invalid AVC decoder configuration parameters")
    first = bytes(sps[0])
    if len(first) < 4:
        raise CodecError("H.264 SPS of %d bytes is too short" % len(first))
    parts = [bytes((1, first[1], first[2], first[3], 0xFC | (nal_length_size - 1),
                    0xE0 | len(sps)))]
    for group, count in ((sps, None), (pps, len(pps))):
        if count is not None:
            parts.append(bytes((count,)))
        for nal in group:
            if len(nal) > 0xFFFF:
                raise CodecError("parameter set of %d bytes is too long" % len(nal))
            parts.append(_U16.pack(len(nal)) + bytes(nal))
    return b"".join(parts)


def split_nalus(data, nal_length_size: int = 4) -> list:
    """Split length-prefixed (AVCC/HVCC) NAL units; returns memoryviews.

    Zero-length NAL units are dropped.  A length that overruns the data
    raises :class:`CodecError`.
    """
    if not 1 <= nal_length_size <= 4:
        raise CodecError("invalid NAL length size %d" % nal_length_size)
    view = memoryview(data)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    end = len(view)
    nalus = []
    pos = 0
    while pos < end:
        if end - pos < nal_length_size:
            raise CodecError("truncated NAL length at offset %d" % pos)
        n = int.from_bytes(view[pos:pos + nal_length_size], "big")
        pos += nal_length_size
        if n > end - pos:
            raise CodecError("NAL unit of %d bytes at offset %d overruns %d remaining"
                             % (n, pos, end - pos))
        if n:
            nalus.append(view[pos:pos + n])
        pos += n
    return nalus


def split_annexb(data) -> list:
    """Split an Annex B byte stream (00 00 01 / 00 00 00 01 start codes).

    Bytes before the first start code are ignored and trailing zero bytes
    of each NAL unit (part of the next 4-byte start code) are removed.
    Data without any start code raises :class:`CodecError`.
    """
    data = bytes(data)
    hit = data.find(b"\x00\x00\x01")
    if hit < 0:
        raise CodecError("no Annex B start code in %d bytes" % len(data))
    nalus = []
    start = hit + 3
    while True:
        hit = data.find(b"\x00\x00\x01", start)
        stop = len(data) if hit < 0 else hit
        nal = data[start:stop].rstrip(b"\x00")
        if nal:
            nalus.append(nal)
        if hit < 0:
            return nalus
        start = hit + 3
