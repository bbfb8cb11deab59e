"""ISO BMFF (ISO/IEC 14496-12) box encoders for fragmented MP4.

The byte layer under :mod:`srs_twisted.codec.fmp4`: every function returns
one complete box (size, type, body) built from plain values.  Nothing here
knows about packets or tracks; :mod:`fmp4` composes these into init and
media segments.  Values that do not fit their field raise :class:`Fmp4Error`.
"""

import struct

from .errors import CodecError

__all__ = [
    "Fmp4Error", "box", "full_box", "ftyp", "styp", "mvhd", "tkhd", "mdhd", "hdlr", "vmhd",
    "smhd", "dinf", "empty_sample_tables", "stsd", "visual_sample_entry", "audio_sample_entry",
    "esds", "dops", "mvex", "mfhd", "tfhd", "tfdt", "trun", "mdat_header",
    "TFHD_DEFAULT_BASE_IS_MOOF", "TRUN_DATA_OFFSET", "TRUN_DURATION", "TRUN_SIZE", "TRUN_FLAGS",
    "TRUN_CTS", "SAMPLE_FLAGS_SYNC", "SAMPLE_FLAGS_NON_SYNC", "OTI_AAC", "OTI_MP3",
    "OTI_MP3_LSF",
]

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_MAX_U32 = 0xFFFFFFFF

# Flags of the track fragment header and track run boxes (14496-12 8.8.7, 8.8.8).
TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
TRUN_DATA_OFFSET = 0x000001
TRUN_DURATION = 0x000100
TRUN_SIZE = 0x000200
TRUN_FLAGS = 0x000400
TRUN_CTS = 0x000800

# Sample flags (14496-12 8.8.3.1): is_leading(2) depends_on(2) is_depended_on(2)
# has_redundancy(2) padding(3) is_non_sync(1) degradation_priority(16).
SAMPLE_FLAGS_SYNC = 0x02000000  # depends on no other sample
SAMPLE_FLAGS_NON_SYNC = 0x01010000  # depends on others, not a sync sample

# MPEG-4 systems objectTypeIndication values (14496-1, MP4RA).
OTI_AAC = 0x40
OTI_MP3_LSF = 0x69  # ISO/IEC 13818-3: MPEG-2 audio at 16/22.05/24 kHz
OTI_MP3 = 0x6B  # ISO/IEC 11172-3: MPEG-1 audio
_STREAM_TYPE_AUDIO = 0x05

_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
_LANGUAGE_UND = 0x55C4  # 'und' as three 5-bit letters


class Fmp4Error(CodecError):
    """Raised for input or parameters that cannot be written as fragmented MP4."""


def _check(value: int, limit: int, what: str) -> int:
    if not 0 <= value <= limit:
        raise Fmp4Error("%s %r does not fit its %d-bit field" % (what, value, limit.bit_length()))
    return value


def box(kind: bytes, *parts) -> bytes:
    """A box: 32-bit size, 4-byte type, then the parts joined."""
    size = 8 + sum(len(p) for p in parts)
    if size > _MAX_U32:
        raise Fmp4Error("%r box of %d bytes exceeds 4 GiB" % (kind, size))
    return b"".join((_U32.pack(size), kind) + parts)


def full_box(kind: bytes, version: int, flags: int, *parts) -> bytes:
    """A FullBox: a box whose body starts with version (8 bits) and flags (24 bits)."""
    return box(kind, _U32.pack((version << 24) | flags), *parts)


def _brands(kind: bytes, major: bytes, compatible) -> bytes:
    if len(major) != 4 or any(len(b) != 4 for b in compatible):
        raise Fmp4Error("brands are four bytes: %r %r" % (major, compatible))
    return box(kind, major, _U32.pack(0), *compatible)


def ftyp(major: bytes, compatible) -> bytes:
    """File type box: major brand, minor version 0, compatible brands."""
    return _brands(b"ftyp", major, compatible)


def styp(major: bytes = b"msdh", compatible=(b"msdh", b"msix")) -> bytes:
    """Segment type box (same layout as ftyp), for media segments."""
    return _brands(b"styp", major, compatible)


def mvhd(timescale: int, duration: int, next_track_id: int) -> bytes:
    """Movie header, version 0 (times 0 = unknown)."""
    body = struct.pack(">IIII", 0, 0, _check(timescale, _MAX_U32, "movie timescale"),
                       _check(duration, _MAX_U32, "movie duration"))
    return full_box(b"mvhd", 0, 0, body,
                    struct.pack(">IH10x", 0x00010000, 0x0100),  # rate 1.0, volume 1.0
                    _MATRIX, bytes(24),  # pre_defined
                    _U32.pack(_check(next_track_id, _MAX_U32, "next track id")))


def tkhd(track_id: int, audio: bool, width: int, height: int) -> bytes:
    """Track header, version 0, enabled and in the movie; width/height as 16.16."""
    body = struct.pack(">IIIII", 0, 0, _check(track_id, _MAX_U32, "track id"), 0, 0)
    return full_box(b"tkhd", 0, 0x000003, body,
                    struct.pack(">8xhhH2x", 0, 0, 0x0100 if audio else 0),  # layer, group, volume
                    _MATRIX,
                    _U32.pack(_check(width, 0xFFFF, "width") << 16),
                    _U32.pack(_check(height, 0xFFFF, "height") << 16))


def mdhd(timescale: int) -> bytes:
    """Media header, version 0, duration 0, language 'und'."""
    return full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0,
                                               _check(timescale, _MAX_U32, "timescale"), 0,
                                               _LANGUAGE_UND, 0))


def hdlr(handler: bytes, name: str) -> bytes:
    """Handler reference: 'vide' or 'soun' and a null-terminated name."""
    return full_box(b"hdlr", 0, 0, _U32.pack(0), handler, bytes(12),
                    name.encode("utf-8") + b"\x00")


def vmhd() -> bytes:
    """Video media header (flags 1, copy graphics mode)."""
    return full_box(b"vmhd", 0, 1, bytes(8))


def smhd() -> bytes:
    """Sound media header (balance 0)."""
    return full_box(b"smhd", 0, 0, bytes(4))


def dinf() -> bytes:
    """Data information: one self-contained 'url ' entry."""
    return box(b"dinf", full_box(b"dref", 0, 0, _U32.pack(1), full_box(b"url ", 0, 1)))


def empty_sample_tables() -> bytes:
    """stts, stsc, stsz and stco with no entries (the samples live in fragments)."""
    return b"".join((full_box(b"stts", 0, 0, _U32.pack(0)),
                     full_box(b"stsc", 0, 0, _U32.pack(0)),
                     full_box(b"stsz", 0, 0, bytes(8)),
                     full_box(b"stco", 0, 0, _U32.pack(0))))


def stsd(*entries) -> bytes:
    """Sample description box holding the given sample entries."""
    return full_box(b"stsd", 0, 0, _U32.pack(len(entries)), *entries)


def visual_sample_entry(fourcc: bytes, width: int, height: int, *children) -> bytes:
    """VisualSampleEntry (14496-12 12.1.3) followed by e.g. an avcC/hvcC box."""
    head = struct.pack(">6xH16xHHIIIH32sHh", 1,  # data_reference_index
                       _check(width, 0xFFFF, "width"), _check(height, 0xFFFF, "height"),
                       0x00480000, 0x00480000, 0,  # 72 dpi, reserved
                       1, b"", 0x0018, -1)  # frame_count, compressorname, depth, pre_defined
    return box(fourcc, head, *children)


def audio_sample_entry(fourcc: bytes, channels: int, sample_rate: int, *children) -> bytes:
    """AudioSampleEntry version 0 (14496-12 12.2.3); rates above 65535 Hz are written as 0."""
    rate = sample_rate if 0 < sample_rate <= 0xFFFF else 0
    head = struct.pack(">6xH8xHHHHI", 1, _check(channels, 0xFFFF, "channel count"), 16, 0, 0,
                       rate << 16)
    return box(fourcc, head, *children)


def _descriptor(tag: int, *parts) -> bytes:
    """An MPEG-4 systems descriptor: tag, expandable size (7 bits a byte), body."""
    body = b"".join(parts)
    size = len(body)
    if size >= 1 << 28:
        raise Fmp4Error("descriptor of %d bytes is too large" % size)
    groups = [size & 0x7F]
    size >>= 7
    while size:
        groups.append(0x80 | (size & 0x7F))
        size >>= 7
    return bytes((tag,)) + bytes(reversed(groups)) + body


def esds(es_id: int, object_type: int, decoder_specific: bytes = b"", avg_bitrate: int = 0,
         max_bitrate: int = 0, buffer_size: int = 0) -> bytes:
    """Elementary stream descriptor box: ES_Descriptor > DecoderConfig (+ DSI) + SLConfig."""
    config = [bytes((object_type, (_STREAM_TYPE_AUDIO << 2) | 1)),
              _check(buffer_size, 0xFFFFFF, "buffer size").to_bytes(3, "big"),
              struct.pack(">II", _check(max_bitrate, _MAX_U32, "max bitrate"),
                          _check(avg_bitrate, _MAX_U32, "average bitrate"))]
    if decoder_specific:
        config.append(_descriptor(0x05, decoder_specific))
    es = _descriptor(0x03, _U16.pack(es_id & 0xFFFF), b"\x00",  # no dependency, URL, OCR
                     _descriptor(0x04, *config), _descriptor(0x06, b"\x02"))  # SL predefined: MP4
    return full_box(b"esds", 0, 0, es)


def dops(channels: int, pre_skip: int, input_rate: int, gain: int, family: int,
         mapping: bytes = b"") -> bytes:
    """Opus specific box (Opus in ISOBMFF 4.3.2); ``mapping`` is stream/coupled counts + table."""
    body = struct.pack(">BBHIhB", 0, channels, pre_skip, input_rate, gain, family)
    return box(b"dOps", body, mapping if family else b"")


def mvex(track_ids, fragment_duration: int = 0) -> bytes:
    """Movie extends: [mehd] and one trex per track (no defaults: trun carries every field)."""
    parts = []
    if fragment_duration > 0:
        parts.append(full_box(b"mehd", 0, 0, _U32.pack(
            _check(fragment_duration, _MAX_U32, "fragment duration"))))
    for track_id in track_ids:
        parts.append(full_box(b"trex", 0, 0, struct.pack(">IIIII", track_id, 1, 0, 0, 0)))
    return box(b"mvex", *parts)


def mfhd(sequence_number: int) -> bytes:
    """Movie fragment header."""
    return full_box(b"mfhd", 0, 0, _U32.pack(_check(sequence_number, _MAX_U32,
                                                    "sequence number")))


def tfhd(track_id: int) -> bytes:
    """Track fragment header: only the track id, data offsets relative to the moof."""
    return full_box(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, _U32.pack(track_id))


def tfdt(base_media_decode_time: int) -> bytes:
    """Track fragment decode time, version 1 (64 bits)."""
    if not 0 <= base_media_decode_time < 1 << 64:
        raise Fmp4Error("base media decode time %r is out of range" % (base_media_decode_time,))
    return full_box(b"tfdt", 1, 0, _U64.pack(base_media_decode_time))


_TRUN_FORMATS: dict = {}


def trun_size(count: int, with_cts: bool) -> int:
    """Bytes of a trun box written by :func:`trun` for ``count`` samples."""
    return 20 + count * (16 if with_cts else 12)


def trun(data_offset: int, durations, sizes, flags, cts=None) -> bytes:
    """Track run with a data offset and per-sample duration, size, flags [and cts].

    Version 1 (signed composition offsets) is used when any offset is
    negative, else version 0.
    """
    count = len(durations)
    if not len(sizes) == len(flags) == count or (cts is not None and len(cts) != count):
        raise Fmp4Error("trun columns differ in length")
    if not -(1 << 31) <= data_offset < 1 << 31:
        raise Fmp4Error("trun data offset %d is out of range" % data_offset)
    box_flags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS
    if cts is None:
        columns = (durations, sizes, flags)
        version = 0
    else:
        box_flags |= TRUN_CTS
        columns = (durations, sizes, flags, cts)
        version = 1 if min(cts, default=0) < 0 else 0
    key = (count, version, cts is not None)
    fmt = _TRUN_FORMATS.get(key)
    if fmt is None:
        row = "IIIi" if version else ("IIII" if cts is not None else "III")
        fmt = struct.Struct(">" + row * count)
        if len(_TRUN_FORMATS) < 512:
            _TRUN_FORMATS[key] = fmt
    values = [v for sample in zip(*columns) for v in sample]
    try:
        rows = fmt.pack(*values)
    except struct.error:
        raise Fmp4Error("a sample duration, size or composition offset does not fit "
                        "its 32-bit field") from None
    return full_box(b"trun", version, box_flags, struct.pack(">Ii", count, data_offset), rows)


def mdat_header(payload_size: int) -> bytes:
    """The header of an mdat box around ``payload_size`` bytes (64-bit size when needed)."""
    if payload_size + 8 <= _MAX_U32:
        return _U32.pack(payload_size + 8) + b"mdat"
    return _U32.pack(1) + b"mdat" + _U64.pack(payload_size + 16)
