"""AV1: AV1CodecConfigurationRecord (``av1C``) and the sequence header OBU.

The record gives profile, level, tier and bit depth; when its configOBUs
include a sequence header OBU, that is decoded for the maximum frame size.
"""

from dataclasses import dataclass

from .bitreader import BitReader
from .errors import CodecError

__all__ = ["Av1Info", "parse_av1c", "parse_decoder_config", "parse_sequence_header",
           "profile_name", "level_name"]

OBU_SEQUENCE_HEADER = 1
_PROFILE_NAMES = {0: "Main", 1: "High", 2: "Professional"}


def profile_name(seq_profile: int) -> str:
    return _PROFILE_NAMES.get(seq_profile, "Other")


def level_name(seq_level_idx: int) -> str:
    """seq_level_idx as text: 8 -> '4.0'; 31 -> 'max'."""
    if seq_level_idx == 31:
        return "max"
    return "%d.%d" % (2 + (seq_level_idx >> 2), seq_level_idx & 3)


@dataclass(slots=True)
class Av1Info:
    """AV1 stream parameters; width/height are 0 without a sequence header."""

    profile: int
    profile_name: str
    level: int
    level_name: str
    tier: int
    bit_depth: int
    monochrome: bool
    width: int = 0
    height: int = 0


def _leb128(data: bytes, pos: int):
    value = 0
    for i in range(8):
        if pos >= len(data):
            raise CodecError("truncated leb128 at offset %d" % pos)
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos
    raise CodecError("leb128 longer than 8 bytes")


def _skip_uvlc(r: BitReader) -> None:
    zeros = 0
    while not r.read_flag():
        zeros += 1
        if zeros >= 32:
            raise CodecError("uvlc code longer than 32 bits")
    r.skip(zeros)


def parse_sequence_header(payload):
    """Decode a sequence header OBU payload; return ``(max_width, max_height)``."""
    r = BitReader(payload)
    r.skip(3)  # seq_profile
    r.skip(1)  # still_picture
    if r.read_flag():  # reduced_still_picture_header
        r.skip(5)  # seq_level_idx[0]
    else:
        decoder_model = False
        buffer_delay_bits = 0
        if r.read_flag():  # timing_info_present_flag
            r.skip(64)  # num_units_in_display_tick, time_scale
            if r.read_flag():  # equal_picture_interval
                _skip_uvlc(r)
            decoder_model = r.read_flag()
            if decoder_model:
                buffer_delay_bits = r.read_bits(5) + 1
                r.skip(32 + 5 + 5)
        initial_display_delay = r.read_flag()
        for _ in range(r.read_bits(5) + 1):  # operating points
            r.skip(12)  # operating_point_idc
            if r.read_bits(5) > 7:  # seq_level_idx
                r.skip(1)  # seq_tier
            if decoder_model and r.read_flag():
                r.skip(2 * buffer_delay_bits + 1)
            if initial_display_delay and r.read_flag():
                r.skip(4)
    width_bits = r.read_bits(4) + 1
    height_bits = r.read_bits(4) + 1
    return r.read_bits(width_bits) + 1, r.read_bits(height_bits) + 1


def parse_av1c(record) -> Av1Info:
    """Parse an AV1CodecConfigurationRecord (the ``av1C`` box body)."""
    record = bytes(record)
    if len(record) < 4:
        raise CodecError("av1C record of %d bytes is too short" % len(record))
    if record[0] & 0x80 == 0 or record[0] & 0x7F != 1:
        raise CodecError("av1C marker/version byte 0x%02x is invalid" % record[0])
    profile = record[1] >> 5
    level = record[1] & 0x1F
    tier = record[2] >> 7
    high_bitdepth = (record[2] >> 6) & 1
    twelve_bit = (record[2] >> 5) & 1
    bit_depth = 12 if (profile == 2 and high_bitdepth and twelve_bit) else (10 if high_bitdepth else 8)
    info = Av1Info(profile, profile_name(profile), level, level_name(level), tier, bit_depth,
                   bool((record[2] >> 4) & 1))
    pos = 4
    while pos < len(record):
        header = record[pos]
        obu_type = (header >> 3) & 0x0F
        pos += 2 if header & 0x04 else 1  # extension header
        if header & 0x02:
            size, pos = _leb128(record, pos)
        else:
            size = len(record) - pos
        if size > len(record) - pos:
            raise CodecError("OBU of %d bytes overruns the av1C record" % size)
        if obu_type == OBU_SEQUENCE_HEADER:
            info.width, info.height = parse_sequence_header(record[pos:pos + size])
            break
        pos += size
    return info


parse_decoder_config = parse_av1c
