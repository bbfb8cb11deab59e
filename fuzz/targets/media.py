"""Media containers and their codec payloads: AMF0, AMF3, FLV (file/stream
reader and the tag bodies every publisher sends), the MPEG-TS demuxer."""

from __future__ import annotations

from srs_twisted.codec import amf0, amf3, avc, flv, hevc, info
from srs_twisted.codec.errors import CodecError
from srs_twisted.codec.mpegts_demux import TsDemuxer

from ..base import demux, pieces, target


@target("amf0", allowed=(CodecError,))
def amf0_target(data: bytes):
    values = amf0.decode_all(data)
    # What we decoded we can say back (the server echoes command objects).
    amf0.encode_many(*values)
    return values


@target("amf3", allowed=(CodecError,))
def amf3_target(data: bytes):
    value, end = amf3.decode(data)
    amf3.encode(value)
    return end


def _tag(tag_type: int, payload: bytes):
    """What the live core does with a publisher's tag: header, then the
    stream description of its sequence header (the API's codec fields)."""
    if tag_type == flv.TAG_VIDEO:
        tag = flv.parse_video(payload)
        info.describe_video(tag, payload)
        if not tag.sequence_header and tag.codec in ("h264", "h265"):
            avc.split_nalus(memoryview(payload)[tag.data_offset:])
        return tag
    if tag_type == flv.TAG_AUDIO:
        tag = flv.parse_audio(payload)
        info.describe_audio(tag, payload)
        return tag
    meta = flv.parse_script(payload)
    if isinstance(meta, tuple) and len(meta) == 2 and isinstance(meta[1], dict):
        info.metadata_tracks(meta[1])
    return meta


@target("flv_tags", allowed=(CodecError,))
def flv_tags(data: bytes):
    if not data:
        return None
    kind = (flv.TAG_VIDEO, flv.TAG_AUDIO, flv.TAG_SCRIPT)[data[0] % 3]
    return _tag(kind, data[1:])


@target("flv_reader", allowed=(CodecError,), max_len=32768)
def flv_reader(data: bytes):
    reader = flv.FlvReader(max_tag_size=256 * 1024)
    count = 0
    for piece in pieces(data):
        for tag in reader.feed(piece):
            count += 1
            try:
                _tag(tag.tag_type, tag.payload)
            except CodecError:
                pass  # one bad tag: the reader goes on, as the FLV caster does
    return count


@target("mpegts", allowed=(CodecError,), max_len=65536)
def mpegts(data: bytes):
    return len(demux(TsDemuxer(max_pes_size=512 * 1024), data, held=lambda d: len(d._buf)))
