"""Stream descriptions in the shape of SRS's ``/api/v1/streams`` entries.

``describe_video`` and ``describe_audio`` look at a parsed tag header and its
payload; when the payload says enough (a sequence header, or an MP3 frame)
they return the ``video``/``audio`` dict SRS reports, else None.  Malformed
codec data raises :class:`CodecError`.
"""

from . import aac, av1, avc, hevc, mp3, opus, vp9
from .flv import AudioTag, VideoTag

__all__ = ["describe_video", "describe_audio"]

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
