"""AAC: AudioSpecificConfig (the RTMP/FLV AAC sequence header) and ADTS.

``AacInfo.sample_rate`` and ``channels`` describe the decoded output: for
HE-AAC (SBR) the rate is the extension (doubled) rate, and HE-AACv2 (PS)
yields two channels from a mono core.  SBR/PS are recognised both when
signalled explicitly (object type 5/29 first) and through the backward
compatible sync extension (0x2B7) after a plain AAC config.
"""

from dataclasses import dataclass

from .bitreader import BitReader
from .errors import CodecError

__all__ = [
    "AacInfo", "parse_audio_specific_config", "make_audio_specific_config",
    "adts_header", "parse_adts", "SAMPLE_RATES", "profile_name",
]

SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025,
                8000, 7350)
# channelConfiguration -> channel count (0 means "in the program config element").
_CHANNELS = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 8, 11: 7, 12: 8, 13: 24, 14: 8}
_CHANNEL_CONFIGS = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 8: 7}

AOT_MAIN = 1
AOT_LC = 2
AOT_SSR = 3
AOT_LTP = 4
AOT_SBR = 5
AOT_PS = 29

# SRS's srs_aac_object2str names; everything else is "Other".
_PROFILE_NAMES = {AOT_MAIN: "Main", AOT_LC: "LC", AOT_SSR: "SSR", AOT_SBR: "HE", AOT_PS: "HEv2"}
# Object types whose AudioSpecificConfig continues with a GASpecificConfig.
_GA_TYPES = frozenset((1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23))

_ADTS_HEADER = 7
_ADTS_MAX_FRAME = 0x1FFF


def profile_name(object_type: int) -> str:
    """SRS's name for an audio object type ('Other' when unknown)."""
    return _PROFILE_NAMES.get(object_type, "Other")


@dataclass
class AacInfo:
    """Audio object type, its SRS profile name, output rate and channels."""

    object_type: int
    profile_name: str
    sample_rate: int
    channels: int


def _object_type(r: BitReader) -> int:
    aot = r.read_bits(5)
    return 32 + r.read_bits(6) if aot == 31 else aot


def _sample_rate(r: BitReader) -> int:
    index = r.read_bits(4)
    if index == 15:
        rate = r.read_bits(24)
        if not rate:
            raise CodecError("explicit AAC sampling frequency of 0 Hz")
        return rate
    if index >= len(SAMPLE_RATES):
        raise CodecError("reserved AAC sampling frequency index %d" % index)
    return SAMPLE_RATES[index]


def _channels(config: int) -> int:
    if config not in _CHANNELS:
        raise CodecError("reserved AAC channel configuration %d" % config)
    return _CHANNELS[config]


def _implicit_sbr(r: BitReader, aot: int, config: int, rate: int):
    """Look for backward compatible SBR/PS signalling after a GASpecificConfig.

    Returns ``(object_type, sample_rate, ps)``; the plain values when nothing
    (or nothing parseable) follows.
    """
    plain = (aot, rate, False)
    if aot not in _GA_TYPES or config == 0:
        return plain  # a program config element would have to be parsed first
    try:
        r.skip(1)  # frameLengthFlag
        if r.read_flag():  # dependsOnCoreCoder
            r.skip(14)
        extension = r.read_flag()
        if aot in (6, 20):
            r.skip(3)
        if extension:
            if aot == 22:
                r.skip(16)
            if aot in (17, 19, 20, 23):
                r.skip(3)
            r.skip(1)
        if r.bits_left < 16 or r.read_bits(11) != 0x2B7:
            return plain
        if _object_type(r) != AOT_SBR or not r.read_flag():
            return plain
        rate = _sample_rate(r)
        ps = r.bits_left >= 12 and r.read_bits(11) == 0x548 and r.read_flag()
        return (AOT_PS if ps else AOT_SBR), rate, ps
    except CodecError:
        return plain


def parse_audio_specific_config(data) -> AacInfo:
    """Parse an AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1)."""
    data = bytes(data)
    if len(data) < 2:
        raise CodecError("AudioSpecificConfig of %d bytes is too short" % len(data))
    r = BitReader(data)
    aot = _object_type(r)
    if aot == 0:
        raise CodecError("AAC audio object type 0 is invalid")
    rate = _sample_rate(r)
    config = r.read_bits(4)
    channels = _channels(config)
    if aot in (AOT_SBR, AOT_PS):
        rate = _sample_rate(r)  # extensionSamplingFrequency: the output rate
        core = _object_type(r)
        if core == 22:
            r.skip(4)
        ps = aot == AOT_PS
    else:
        aot, rate, ps = _implicit_sbr(r, aot, config, rate)
    if ps and channels == 1:
        channels = 2
    return AacInfo(aot, profile_name(aot), rate, channels)


def make_audio_specific_config(object_type: int, sample_rate: int, channels: int) -> bytes:
    """Build an AudioSpecificConfig.

    For HE-AAC (5) and HE-AACv2 (29) ``sample_rate``/``channels`` are the
    output values; the core is written at half the rate (mono for v2), with
    explicit hierarchical signalling of an LC core.
    """
    if not 1 <= object_type <= 95:
        raise CodecError("invalid AAC object type %d" % object_type)
    config = _CHANNEL_CONFIGS.get(channels)
    if config is None:
        raise CodecError("no AAC channel configuration for %d channels" % channels)
    bits = []  # (value, width)

    def put_type(aot):
        if aot >= 31:
            bits.extend(((31, 5), (aot - 32, 6)))
        else:
            bits.append((aot, 5))

    def put_rate(rate):
        if rate in SAMPLE_RATES:
            bits.append((SAMPLE_RATES.index(rate), 4))
        elif 0 < rate < (1 << 24):
            bits.extend(((15, 4), (rate, 24)))
        else:
            raise CodecError("AAC sample rate %r out of range" % (rate,))

    put_type(object_type)
    if object_type in (AOT_SBR, AOT_PS):
        if sample_rate % 2:
            raise CodecError("HE-AAC output rate %d is not even" % sample_rate)
        put_rate(sample_rate // 2)
        bits.append((1 if object_type == AOT_PS else config, 4))
        put_rate(sample_rate)
        put_type(AOT_LC)
    else:
        put_rate(sample_rate)
        bits.append((config, 4))
    bits.append((0, 3))  # GASpecificConfig: frameLength, dependsOnCoreCoder, extension
    value = 0
    width = 0
    for field_value, field_width in bits:
        value = (value << field_width) | field_value
        width += field_width
    pad = -width % 8
    return (value << pad).to_bytes((width + pad) // 8, "big")


def adts_header(info: AacInfo, payload_len: int) -> bytes:
    """A 7-byte ADTS header (no CRC) for one raw AAC frame.

    HE-AAC is written as its LC core (half rate, mono core for v2), which is
    how ADTS signals implicit SBR/PS.
    """
    aot, rate, channels = info.object_type, info.sample_rate, info.channels
    if aot in (AOT_SBR, AOT_PS):
        aot, rate = AOT_LC, rate // 2
        if info.object_type == AOT_PS and channels == 2:
            channels = 1
    if not 1 <= aot <= 4:
        raise CodecError("AAC object type %d cannot be carried in ADTS" % aot)
    if rate not in SAMPLE_RATES:
        raise CodecError("AAC sample rate %d cannot be carried in ADTS" % rate)
    config = _CHANNEL_CONFIGS.get(channels)
    if config is None:
        raise CodecError("%d channels cannot be carried in ADTS" % channels)
    length = payload_len + _ADTS_HEADER
    if payload_len < 0 or length > _ADTS_MAX_FRAME:
        raise CodecError("ADTS frame of %d bytes exceeds 8191" % length)
    word = ((0xFFF << 44) | (1 << 40)  # syncword, MPEG-4, layer 0, no CRC
            | ((aot - 1) << 38) | (SAMPLE_RATES.index(rate) << 34) | (config << 30)
            | (length << 13) | (0x7FF << 2))  # buffer fullness: VBR; one raw block
    return word.to_bytes(7, "big")


def parse_adts(data) -> list:
    """Split a buffer of ADTS frames into ``[(AacInfo, raw_frame_bytes)]``.

    The buffer must hold whole frames; a bad sync word or a frame running
    past the end raises :class:`CodecError`.
    """
    data = bytes(data)
    frames = []
    infos = {}
    pos = 0
    end = len(data)
    while pos < end:
        if end - pos < _ADTS_HEADER:
            raise CodecError("truncated ADTS header at offset %d" % pos)
        head = int.from_bytes(data[pos:pos + _ADTS_HEADER], "big")
        if head >> 44 != 0xFFF:
            raise CodecError("lost ADTS sync at offset %d" % pos)
        header_len = _ADTS_HEADER if (head >> 40) & 1 else _ADTS_HEADER + 2
        length = (head >> 13) & 0x1FFF
        if length < header_len:
            raise CodecError("ADTS frame length %d at offset %d is below its header"
                             % (length, pos))
        if length > end - pos:
            raise CodecError("truncated ADTS frame at offset %d: need %d bytes, have %d"
                             % (pos, length, end - pos))
        key = (head >> 30) & 0x3FF  # profile, rate index, private bit, channel config
        info = infos.get(key)
        if info is None:
            index = (head >> 34) & 0x0F
            if index >= len(SAMPLE_RATES):
                raise CodecError("reserved ADTS sampling frequency index %d" % index)
            aot = ((head >> 38) & 0x03) + 1
            info = infos[key] = AacInfo(aot, profile_name(aot), SAMPLE_RATES[index],
                                        _channels((head >> 30) & 0x07))
        frames.append((info, data[pos + header_len:pos + length]))
        pos += length
    return frames

