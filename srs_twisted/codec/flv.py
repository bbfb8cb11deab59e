"""FLV tag bodies (as carried by RTMP audio/video/data messages) and FLV files.

``parse_video`` and ``parse_audio`` read the legacy FLV tag headers and the
Enhanced RTMP (E-RTMP v1/v2) extended headers: FourCC codecs, ModEx
prefixes and single-track multitrack packets.  Multitrack packets carrying
several tracks raise :class:`CodecError`.

The file helpers write FLV headers and tags, and :class:`FlvReader` is an
incremental, sans-I/O FLV file/stream parser.
"""

import struct
from dataclasses import dataclass
from typing import NamedTuple

from . import amf0
from .errors import CodecError

__all__ = [
    "TAG_AUDIO", "TAG_VIDEO", "TAG_SCRIPT", "FLV_HEADER_SIZE",
    "VideoTag", "AudioTag", "parse_video", "parse_audio", "parse_script", "encode_metadata",
    "file_header", "tag_header", "encode_tag", "FlvTag", "FlvReader",
]

TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_SCRIPT = 18

FLV_HEADER_SIZE = 9
TAG_HEADER_SIZE = 11

# Video frame types.
FRAME_KEY = 1
FRAME_INTER = 2
FRAME_DISPOSABLE = 3
FRAME_GENERATED_KEY = 4
FRAME_COMMAND = 5

# Legacy AVCPacketType (also used by the legacy HEVC/AV1 ids).
AVC_SEQUENCE_HEADER = 0
AVC_NALU = 1
AVC_END_OF_SEQUENCE = 2

# Enhanced RTMP VideoPacketType.
VIDEO_SEQUENCE_START = 0
VIDEO_CODED_FRAMES = 1
VIDEO_SEQUENCE_END = 2
VIDEO_CODED_FRAMES_X = 3
VIDEO_METADATA = 4
VIDEO_MPEG2TS_SEQUENCE_START = 5
VIDEO_MULTITRACK = 6
PACKET_MODEX = 7

# Enhanced RTMP AudioPacketType.
AUDIO_SEQUENCE_START = 0
AUDIO_CODED_FRAMES = 1
AUDIO_SEQUENCE_END = 2
AUDIO_MULTICHANNEL_CONFIG = 4
AUDIO_MULTITRACK = 5

# AvMultitrackType.
MULTITRACK_ONE_TRACK = 0

SOUND_FORMAT_EX_HEADER = 9
SOUND_FORMAT_AAC = 10

_LEGACY_VIDEO = {
    2: "sorenson", 3: "screen", 4: "vp6", 5: "vp6a", 6: "screen2",
    7: "h264", 12: "h265", 13: "av1",
}
_AVC_LIKE_IDS = frozenset((7, 12, 13))
_VIDEO_FOURCC = {
    b"avc1": "h264", b"hvc1": "h265", b"av01": "av1", b"vp09": "vp9", b"vp08": "vp8", b"vvc1": "vvc",
}
_CTS_FOURCC = frozenset((b"avc1", b"hvc1", b"vvc1"))
_VIDEO_PACKET_TYPES = frozenset(range(6))

_LEGACY_AUDIO = {
    0: "pcm", 1: "adpcm", 2: "mp3", 3: "pcm", 4: "nellymoser", 5: "nellymoser", 6: "nellymoser",
    7: "g711a", 8: "g711u", 10: "aac", 11: "speex", 13: "opus", 14: "mp3", 15: "native",
}
_AUDIO_FOURCC = {
    b"Opus": "opus", b"mp4a": "aac", b".mp3": "mp3", b"fLaC": "flac", b"ac-3": "ac3", b"ec-3": "eac3",
}
_AUDIO_PACKET_TYPES = frozenset((0, 1, 2, 4))
_SOUND_RATES = (5512, 11025, 22050, 44100)

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_TAG_HEADER = struct.Struct(">IIxxx")


@dataclass(slots=True)
class VideoTag:
    """The parsed header of an FLV/RTMP video payload."""

    codec: str  # 'h264','h265','av1','vp9','vp8','vvc','vp6','vp6a','sorenson','screen'...
    frame_type: int  # 1 key, 2 inter, 3 disposable, 4 generated key, 5 info/command
    keyframe: bool
    sequence_header: bool
    end_of_sequence: bool
    cts: int  # composition time offset in ms (signed 24 bit)
    data_offset: int  # where codec data starts in the payload
    enhanced: bool
    fourcc: bytes | None


@dataclass(slots=True)
class AudioTag:
    """The parsed header of an FLV/RTMP audio payload.

    For enhanced (FourCC) audio the legacy rate/size/channel flags do not
    exist: ``sound_rate``, ``sound_size`` and ``channels`` are then 0.
    """

    codec: str  # 'aac','mp3','opus','pcm','adpcm','g711a','g711u','speex','nellymoser','flac'...
    sound_rate: int  # Hz as flagged in the legacy header, 0 for enhanced
    sound_size: int  # 8 or 16 (0 for enhanced)
    channels: int  # 1 or 2 (0 for enhanced)
    sequence_header: bool
    data_offset: int
    enhanced: bool
    fourcc: bytes | None


def _need(payload, pos: int, n: int, what: str) -> None:
    if len(payload) - pos < n:
        raise CodecError("truncated %s at offset %d: need %d bytes, have %d"
                         % (what, pos, n, max(len(payload) - pos, 0)))


def _si24(payload, pos: int) -> int:
    value = (payload[pos] << 16) | (payload[pos + 1] << 8) | payload[pos + 2]
    return value - 0x1000000 if value & 0x800000 else value


def _skip_modex(payload, pos: int, packet_type: int, kind: str):
    """Skip E-RTMP v2 ModEx prefixes; return the real packet type and offset."""
    while packet_type == PACKET_MODEX:
        _need(payload, pos, 1, kind + " ModEx size")
        size = payload[pos] + 1
        pos += 1
        if size == 256:
            _need(payload, pos, 2, kind + " ModEx size")
            size = _U16.unpack_from(payload, pos)[0] + 1
            pos += 2
        _need(payload, pos, size + 1, kind + " ModEx data")
        pos += size
        packet_type = payload[pos] & 0x0F  # the high nibble is the ModEx type
        pos += 1
    return packet_type, pos


def _fourcc(payload, pos: int, packet_type: int, multitrack: int, kind: str):
    """Read the FourCC, unwrapping a one-track multitrack header."""
    if packet_type != multitrack:
        _need(payload, pos, 4, kind + " FourCC")
        return packet_type, bytes(payload[pos:pos + 4]), pos + 4
    _need(payload, pos, 1, kind + " multitrack type")
    track_type = payload[pos] >> 4
    packet_type = payload[pos] & 0x0F
    pos += 1
    if track_type != MULTITRACK_ONE_TRACK:
        raise CodecError("%s multitrack type %d (several tracks) is not supported"
                         % (kind, track_type))
    if packet_type == multitrack:
        raise CodecError("%s multitrack packet nests another multitrack packet" % kind)
    _need(payload, pos, 5, kind + " FourCC and track id")
    return packet_type, bytes(payload[pos:pos + 4]), pos + 5


def _check_ex(codecs: dict, fourcc: bytes, packet_types, packet_type: int, kind: str) -> str:
    """The codec name for an enhanced header, refusing unknown FourCCs and packet types."""
    codec = codecs.get(fourcc)
    if codec is None:
        raise CodecError("unknown %s FourCC %r" % (kind, fourcc))
    if packet_type not in packet_types:
        raise CodecError("unknown enhanced %s packet type %d" % (kind, packet_type))
    return codec


def parse_video(payload) -> VideoTag:
    """Parse the header of a video message/tag body."""
    if not len(payload):
        raise CodecError("empty video payload")
    first = payload[0]
    if first & 0x80:
        return _parse_ex_video(payload, first)
    frame_type = first >> 4
    codec_id = first & 0x0F
    if not FRAME_KEY <= frame_type <= FRAME_COMMAND:
        raise CodecError("invalid video frame type %d" % frame_type)
    codec = _LEGACY_VIDEO.get(codec_id)
    if codec is None:
        raise CodecError("unknown video codec id %d" % codec_id)
    keyframe = frame_type in (FRAME_KEY, FRAME_GENERATED_KEY)
    if frame_type == FRAME_COMMAND:
        return VideoTag(codec, frame_type, False, False, False, 0, 1, False, None)
    if codec_id not in _AVC_LIKE_IDS:
        return VideoTag(codec, frame_type, keyframe, False, False, 0, 1, False, None)
    _need(payload, 1, 4, "AVC packet type and composition time")
    packet_type = payload[1]
    if packet_type > AVC_END_OF_SEQUENCE:
        raise CodecError("invalid AVC packet type %d" % packet_type)
    return VideoTag(codec, frame_type, keyframe, packet_type == AVC_SEQUENCE_HEADER,
                    packet_type == AVC_END_OF_SEQUENCE, _si24(payload, 2), 5, False, None)


def _parse_ex_video(payload, first: int) -> VideoTag:
    frame_type = (first >> 4) & 0x07
    packet_type, pos = _skip_modex(payload, 1, first & 0x0F, "video")
    if packet_type != VIDEO_METADATA and not FRAME_KEY <= frame_type <= FRAME_COMMAND:
        raise CodecError("invalid enhanced video frame type %d" % frame_type)
    if frame_type == FRAME_COMMAND and packet_type != VIDEO_METADATA:
        _need(payload, pos, 1, "video command")
        return VideoTag("unknown", frame_type, False, False, False, 0, pos, True, None)
    packet_type, fourcc, pos = _fourcc(payload, pos, packet_type, VIDEO_MULTITRACK, "video")
    codec = _check_ex(_VIDEO_FOURCC, fourcc, _VIDEO_PACKET_TYPES, packet_type, "video")
    cts = 0
    if packet_type == VIDEO_CODED_FRAMES and fourcc in _CTS_FOURCC:
        _need(payload, pos, 3, "composition time")
        cts = _si24(payload, pos)
        pos += 3
    keyframe = packet_type != VIDEO_METADATA and frame_type in (FRAME_KEY, FRAME_GENERATED_KEY)
    return VideoTag(codec, frame_type, keyframe, packet_type == VIDEO_SEQUENCE_START,
                    packet_type == VIDEO_SEQUENCE_END, cts, pos, True, fourcc)


def parse_audio(payload) -> AudioTag:
    """Parse the header of an audio message/tag body."""
    if not len(payload):
        raise CodecError("empty audio payload")
    first = payload[0]
    sound_format = first >> 4
    if sound_format == SOUND_FORMAT_EX_HEADER:
        return _parse_ex_audio(payload, first)
    codec = _LEGACY_AUDIO.get(sound_format)
    if codec is None:
        raise CodecError("unknown audio sound format %d" % sound_format)
    rate = _SOUND_RATES[(first >> 2) & 3]
    size = 16 if first & 0x02 else 8
    channels = 2 if first & 0x01 else 1
    if sound_format != SOUND_FORMAT_AAC:
        return AudioTag(codec, rate, size, channels, False, 1, False, None)
    _need(payload, 1, 1, "AAC packet type")
    packet_type = payload[1]
    if packet_type > 1:
        raise CodecError("invalid AAC packet type %d" % packet_type)
    return AudioTag(codec, rate, size, channels, packet_type == 0, 2, False, None)


def _parse_ex_audio(payload, first: int) -> AudioTag:
    packet_type, pos = _skip_modex(payload, 1, first & 0x0F, "audio")
    packet_type, fourcc, pos = _fourcc(payload, pos, packet_type, AUDIO_MULTITRACK, "audio")
    codec = _check_ex(_AUDIO_FOURCC, fourcc, _AUDIO_PACKET_TYPES, packet_type, "audio")
    return AudioTag(codec, 0, 0, 0, packet_type == AUDIO_SEQUENCE_START, pos, True, fourcc)


def parse_script(payload):
    """Parse a script data body; return ``(name, value)``.

    ``@setDataFrame`` wrappers (as RTMP publishers send) are removed, so both
    ``['@setDataFrame', 'onMetaData', obj]`` and ``['onMetaData', obj]`` give
    ``('onMetaData', obj)``.  ``value`` is None when the name has no argument.
    """
    name, pos = amf0.decode(payload, 0)
    if name == "@setDataFrame":
        name, pos = amf0.decode(payload, pos)
    if not isinstance(name, str):
        raise CodecError("script data name is %s, not a string" % type(name).__name__)
    value = None
    if pos < len(payload):
        value, pos = amf0.decode(payload, pos)
    return name, value


def encode_metadata(obj) -> bytes:
    """Encode ``onMetaData`` with ``obj`` as an ECMA array (a script tag body)."""
    return amf0.encode_many("onMetaData", amf0.ECMAArray(obj))


# ---------------------------------------------------------------------------
# FLV files


def file_header(has_audio: bool = True, has_video: bool = True) -> bytes:
    """The 9-byte FLV header followed by PreviousTagSize0 (13 bytes)."""
    flags = (0x04 if has_audio else 0) | (0x01 if has_video else 0)
    return b"FLV\x01" + bytes((flags,)) + b"\x00\x00\x00\x09\x00\x00\x00\x00"


def tag_header(tag_type: int, timestamp_ms: int, size: int) -> bytes:
    """The 11-byte FLV tag header (stream id 0; the timestamp wraps at 2**32)."""
    if not 0 <= tag_type <= 0x1F:
        raise CodecError("invalid FLV tag type %r" % (tag_type,))
    if not 0 <= size <= 0xFFFFFF:
        raise CodecError("FLV tag payload of %d bytes exceeds 16 MiB - 1" % size)
    ts = int(timestamp_ms) & 0xFFFFFFFF
    return _TAG_HEADER.pack((tag_type << 24) | size, ((ts & 0xFFFFFF) << 8) | (ts >> 24))


def encode_tag(tag_type: int, timestamp_ms: int, payload) -> bytes:
    """Header, payload and PreviousTagSize of one FLV tag."""
    return b"".join(tag_pieces(tag_type, timestamp_ms, payload))


def tag_pieces(tag_type: int, timestamp_ms: int, payload) -> tuple:
    """:func:`encode_tag` as (header, payload, PreviousTagSize), the payload
    not copied: a player's own timestamp over a shared payload."""
    size = len(payload)
    if size > 0xFFFFFF or not 0 <= tag_type <= 0x1F:
        tag_header(tag_type, timestamp_ms, size)  # raises the CodecError
    ts = timestamp_ms & 0xFFFFFFFF
    # This runs once per packet per player timeline: no call to tag_header.
    return (_TAG_HEADER.pack((tag_type << 24) | size, ((ts & 0xFFFFFF) << 8) | (ts >> 24)), payload,
            _U32.pack(size + TAG_HEADER_SIZE))


class FlvTag(NamedTuple):
    """One tag read from an FLV file: type, timestamp in ms and body."""

    tag_type: int
    timestamp: int
    payload: bytes


_STATE_HEADER = 0
_STATE_SKIP = 1
_STATE_TAG = 2


class FlvReader:
    """Incremental FLV file/stream parser: ``feed(bytes) -> [FlvTag]``.

    The header is checked first; then tags are returned as soon as they and
    their PreviousTagSize are complete, however the input was split.  A tag
    larger than ``max_tag_size`` raises :class:`CodecError`, as does any
    later ``feed`` once the stream was found corrupt.
    """

    def __init__(self, max_tag_size: int = 16 * 1024 * 1024):
        self.max_tag_size = max_tag_size
        self.version = None
        self.has_audio = False
        self.has_video = False
        self._buf = bytearray()
        self._state = _STATE_HEADER
        self._skip = 0
        self._failure = None

    @property
    def header_parsed(self) -> bool:
        return self._state != _STATE_HEADER

    def feed(self, data) -> list:
        if self._failure is not None:
            raise CodecError("FLV stream already failed: %s" % self._failure)
        buf = self._buf
        buf += data
        tags: list = []
        pos = 0
        try:
            pos = self._parse(buf, tags)
        except CodecError as e:
            self._failure = str(e)
            raise
        finally:
            del buf[:pos]
        return tags

    def _parse(self, buf: bytearray, tags: list) -> int:
        pos = 0
        end = len(buf)
        while True:
            avail = end - pos
            if self._state == _STATE_TAG:
                if avail < TAG_HEADER_SIZE:
                    return pos
                word, stamp = _TAG_HEADER.unpack_from(buf, pos)
                tag_type = word >> 24
                size = word & 0xFFFFFF
                if tag_type & 0x20:
                    raise CodecError("encrypted (filtered) FLV tag at byte %d" % pos)
                if size > self.max_tag_size:
                    raise CodecError("FLV tag of %d bytes exceeds the %d byte limit"
                                     % (size, self.max_tag_size))
                total = TAG_HEADER_SIZE + size + 4
                if avail < total:
                    return pos
                timestamp = (stamp >> 8) | ((stamp & 0xFF) << 24)
                start = pos + TAG_HEADER_SIZE
                tags.append(FlvTag(tag_type & 0x1F, timestamp, bytes(buf[start:start + size])))
                pos += total
            elif self._state == _STATE_SKIP:
                step = min(avail, self._skip)
                pos += step
                self._skip -= step
                if self._skip:
                    return pos
                self._state = _STATE_TAG
            else:
                if avail < FLV_HEADER_SIZE:
                    if bytes(buf[pos:pos + 3]) != b"FLV"[:avail]:
                        raise CodecError("not an FLV stream: bad signature %r" % bytes(buf[pos:]))
                    return pos
                if buf[pos:pos + 3] != b"FLV":
                    raise CodecError("not an FLV stream: bad signature %r" % bytes(buf[pos:pos + 3]))
                self.version = buf[pos + 3]
                flags = buf[pos + 4]
                self.has_audio = bool(flags & 0x04)
                self.has_video = bool(flags & 0x01)
                (offset,) = _U32.unpack_from(buf, pos + 5)
                if offset < FLV_HEADER_SIZE:
                    raise CodecError("FLV header data offset %d is below 9" % offset)
                self._skip = offset - FLV_HEADER_SIZE + 4  # extra header + PreviousTagSize0
                self._state = _STATE_SKIP
                pos += FLV_HEADER_SIZE
