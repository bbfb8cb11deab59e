"""Stream descriptions in the shape of SRS's ``/api/v1/streams`` entries.

``describe_video`` and ``describe_audio`` look at a parsed tag header and its
payload; when the payload says enough (a sequence header, or an MP3 frame)
they return the ``video``/``audio`` dict SRS reports, else None.  Malformed
codec data raises :class:`CodecError`.
"""

from . import aac, av1, avc, hevc, mp3, opus, vp9
from .flv import AudioTag, VideoTag

__all__ = ["describe_video", "describe_audio", "META_VIDEO_CODECS", "META_AUDIO_CODECS", "metadata_codec",
           "metadata_tracks"]

# onMetaData codec ids (legacy numbers, or Enhanced RTMP FourCC numbers/strings) of what TS/HLS carry.
META_VIDEO_CODECS = {7: "h264", 12: "h265", 0x61766331: "h264", 0x68766331: "h265", "avc1": "h264", "hvc1": "h265"}
META_AUDIO_CODECS = {10: "aac", 2: "mp3", 0x6D703461: "aac", 0x2E6D7033: "mp3", "mp4a": "aac", ".mp3": "mp3"}


def metadata_codec(value, table: dict):
    """``(announced, codec)`` for an onMetaData ``videocodecid``/``audiocodecid``
    value: announced is False for a missing or zero id; codec is None for an
    id ``table`` does not know."""
    if value in (None, 0, "", False):
        return False, None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return True, table.get(value) if isinstance(value, (int, str)) else None


def metadata_tracks(meta: dict) -> tuple:
    """``(video, audio)`` an onMetaData object announces: a codec name, the
    default (``h264``/``aac``) for an unknown id or a bare ``hasVideo``/
    ``hasAudio``, or None."""
    out = []
    for key, flag, table, default in (("videocodecid", "hasVideo", META_VIDEO_CODECS, "h264"),
                                      ("audiocodecid", "hasAudio", META_AUDIO_CODECS, "aac")):
        announced, codec = metadata_codec(meta.get(key), table)
        if announced or meta.get(flag) is True:
            codec = codec or default
        out.append(codec)
    return tuple(out)

_OPUS_RATE = 48000


def _video(codec: str, info) -> dict:
    return {"codec": codec, "profile": info.profile_name, "level": info.level_name,
            "width": info.width, "height": info.height}


def describe_video(tag: VideoTag, payload):
    """Describe a video sequence header; None for other packets or codecs."""
    if not tag.sequence_header:
        return None
    record = memoryview(payload)[tag.data_offset:]
    if tag.codec == "h264":
        return _video("H264", avc.parse_decoder_config(record))
    if tag.codec == "h265":
        return _video("HEVC", hevc.parse_decoder_config(record))
    if tag.codec == "av1":
        return _video("AV1", av1.parse_av1c(record))
    if tag.codec == "vp9":
        return _video("VP9", vp9.parse_vpcc(record))
    return None


def _audio(codec: str, sample_rate: int, channels: int, profile: str = "Other") -> dict:
    return {"codec": codec, "sample_rate": sample_rate, "channel": channels, "profile": profile}


def describe_audio(tag: AudioTag, payload):
    """Describe an AAC/Opus sequence header or an MP3 frame; else None."""
    data = memoryview(payload)[tag.data_offset:]
    if tag.codec == "aac":
        if not tag.sequence_header:
            return None
        info = aac.parse_audio_specific_config(data)
        return _audio("AAC", info.sample_rate, info.channels, info.profile_name)
    if tag.codec == "opus":
        if tag.sequence_header:
            info = opus.parse_opus_head(data)
            return _audio("Opus", info.sample_rate or _OPUS_RATE, info.channels)
        if not tag.enhanced:
            return _audio("Opus", _OPUS_RATE, tag.channels)
        return None
    if tag.codec == "mp3" and not tag.sequence_header and len(data):
        info = mp3.parse_frame_header(data)
        return _audio("MP3", info.sample_rate, info.channels)
    return None
