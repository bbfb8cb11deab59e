"""Fragmented MP4 (ISO BMFF) writer for HLS fMP4, LL-HLS parts, DASH and DVR.

From packets to files in three steps:

- :func:`track_from_sequence_header` (or :func:`track_for_mp3`) turns a
  sequence header packet into a :class:`Track`: codec, timescale, decoder
  configuration, picture size or sample rate and the RFC 6381 codec string;
- :func:`init_segment` writes ``ftyp`` + ``moov`` for a list of tracks;
- :func:`sample_from_packet` turns a frame packet into a :class:`Sample`
  and :func:`media_segment` writes ``[styp] moof mdat`` for samples of one
  or more tracks; :class:`Fragmenter` does the bookkeeping (sample
  durations, audio cut at the video boundary, decode times) for a live stream.

Sans-I/O: no Twisted, no clock, no logging.  Bad or unsupported input
raises :class:`Fmp4Error` (a :class:`~srs_twisted.codec.errors.CodecError`).
The box encoders live in :mod:`srs_twisted.codec.fmp4_boxes`.
"""

from dataclasses import dataclass

from . import aac, avc, flv, hevc, mp3, opus
from . import fmp4_boxes as boxes
from .bitreader import unescape_rbsp
from .errors import CodecError
from .fmp4_boxes import Fmp4Error

__all__ = [
    "Fmp4Error", "Track", "Sample", "FragmentInfo", "Fragmenter",
    "track_from_sequence_header", "track_for_mp3", "sample_from_packet",
    "init_segment", "media_segment", "avc_codec_string", "hevc_codec_string",
    "aac_codec_string", "opus_packet_samples", "VIDEO_TIMESCALE", "OPUS_TIMESCALE",
]

VIDEO_TIMESCALE = 90000
OPUS_TIMESCALE = 48000  # Opus in ISOBMFF: always 48 kHz
MOVIE_TIMESCALE = 1000

_VIDEO = flv.TAG_VIDEO
_AUDIO = flv.TAG_AUDIO
_VIDEO_CODECS = ("h264", "h265")
_AUDIO_CODECS = ("aac", "mp3", "opus")
_DEFAULT_FRAME_RATE = 25  # a video sample with no successor and no history lasts 1/25 s
_MAX_DURATION = 0xFFFFFFFF  # trun sample_duration is 32 bits


@dataclass
class Track:
    """One track of a fragmented MP4 file (see :func:`track_from_sequence_header`)."""

    track_id: int  # 1 video, 2 audio by convention
    kind: str  # 'video' | 'audio'
    codec: str  # 'h264', 'h265', 'aac', 'mp3', 'opus'
    timescale: int  # 90000 for video; the sample rate for audio (48000 for opus)
    config: bytes  # avcC / hvcC record, AudioSpecificConfig, OpusHead (or dOps body), b'' for mp3
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0
    codec_string: str = ""  # RFC 6381: 'avc1.64001f', 'hvc1.1.6.L93.B0', 'mp4a.40.2', 'opus'


@dataclass
class Sample:
    """One access unit, timed in its track's timescale."""

    dts: int
    duration: int
    cts: int  # pts - dts; negative offsets are written with trun version 1
    data: bytes  # length-prefixed NAL units for video; one raw AAC/Opus/MP3 frame for audio
    keyframe: bool


@dataclass
class FragmentInfo:
    """What :meth:`Fragmenter.cut`/``flush`` last wrote.

    ``start`` and ``duration`` are seconds of the main track (video if the
    fragmenter has one, else its first track), or of the longest track when
    the main track had no sample in the fragment.  ``independent`` is true
    when the main track's first sample is a keyframe (always for audio):
    the fragment can start playback (an LL-HLS ``INDEPENDENT=YES`` part).
    """

    sequence_number: int
    start: float
    duration: float
    independent: bool
    size: int
    samples: int


def _wrap(what: str, parse, data):
    try:
        return parse(data)
    except Fmp4Error:
        raise
    except CodecError as e:
        raise Fmp4Error("bad %s: %s" % (what, e)) from None


# ---------------------------------------------------------------------------
# codec strings (RFC 6381, ISO/IEC 14496-15 Annex E)


def avc_codec_string(sps) -> str:
    """``avc1.PPCCLL``: profile_idc, constraint flags and level_idc of an H.264 SPS."""
    sps = bytes(sps)
    if len(sps) < 4 or sps[0] & 0x1F != avc.NAL_SPS:
        raise Fmp4Error("an H.264 SPS NAL unit is needed for the codec string")
    return "avc1.%02x%02x%02x" % (sps[1], sps[2], sps[3])


def _reverse32(value: int) -> int:
    return int("{:032b}".format(value)[::-1], 2)


def hevc_codec_string(sps, sample_entry: str = "hvc1") -> str:
    """``hvc1.[A-C]P.C.TL.B...`` from the general profile/tier/level of an H.265 SPS.

    Profile space as a letter (none for 0) and profile_idc; the 32 profile
    compatibility flags bit-reversed, in hex; tier L/H and level_idc; the six
    constraint bytes in hex, trailing zero bytes left out (14496-15 E.3).
    """
    sps = bytes(sps)
    if len(sps) < 3 or (sps[0] >> 1) & 0x3F != hevc.NAL_SPS:
        raise Fmp4Error("an H.265 SPS NAL unit is needed for the codec string")
    rbsp = unescape_rbsp(sps[2:])
    if len(rbsp) < 13:
        raise Fmp4Error("H.265 SPS of %d bytes has no complete profile_tier_level" % len(sps))
    ptl = rbsp[1:13]  # after vps id, max_sub_layers, temporal nesting
    space, tier, profile = ptl[0] >> 6, (ptl[0] >> 5) & 1, ptl[0] & 0x1F
    constraints = ptl[5:11].rstrip(b"\x00")
    parts = [sample_entry, ("", "A", "B", "C")[space] + str(profile),
             "%X" % _reverse32(int.from_bytes(ptl[1:5], "big")), "%s%d" % ("LH"[tier], ptl[11])]
    parts.extend("%X" % c for c in constraints)
    return ".".join(parts)


def aac_codec_string(asc) -> str:
    """``mp4a.40.N`` with N the audio object type (2 LC, 5 HE-AAC, 29 HE-AACv2)."""
    return "mp4a.40.%d" % _wrap("AudioSpecificConfig", aac.parse_audio_specific_config,
                                asc).object_type


# ---------------------------------------------------------------------------
# tracks


def _video_tag(payload):
    return _wrap("video packet", flv.parse_video, payload)


def _audio_tag(payload):
    return _wrap("audio packet", flv.parse_audio, payload)


def _video_track(tag, payload, track_id: int) -> Track:
    record = bytes(payload[tag.data_offset:])
    if tag.codec == "h264":
        info = _wrap("AVC decoder configuration", avc.parse_decoder_config, record)
        string = avc_codec_string(info.sps[0])
    elif tag.codec == "h265":
        info = _wrap("HEVC decoder configuration", hevc.parse_decoder_config, record)
        string = hevc_codec_string(info.sps[0])
    else:
        raise Fmp4Error("video codec %r cannot be written to fMP4 (h264, h265 only)" % tag.codec)
    return Track(track_id, "video", tag.codec, VIDEO_TIMESCALE, record, width=info.width,
                 height=info.height, codec_string=string)


def track_from_sequence_header(pkt, track_id: int) -> Track:
    """A track from an AVC/HEVC, AAC or Opus sequence header packet."""
    payload = pkt.payload
    if pkt.kind == _VIDEO:
        tag = _video_tag(payload)
        if not tag.sequence_header:
            raise Fmp4Error("video packet is not a sequence header")
        return _video_track(tag, payload, track_id)
    if pkt.kind != _AUDIO:
        raise Fmp4Error("a packet of kind %r has no sequence header" % (pkt.kind,))
    tag = _audio_tag(payload)
    if tag.codec == "mp3":
        raise Fmp4Error("MP3 has no sequence header: use track_for_mp3")
    if not tag.sequence_header:
        raise Fmp4Error("audio packet is not a sequence header")
    config = bytes(payload[tag.data_offset:])
    if tag.codec == "aac":
        info = _wrap("AudioSpecificConfig", aac.parse_audio_specific_config, config)
        return Track(track_id, "audio", "aac", info.sample_rate, config,
                     sample_rate=info.sample_rate, channels=info.channels,
                     codec_string="mp4a.40.%d" % info.object_type)
    if tag.codec == "opus":
        info = _wrap("Opus header", opus.parse_opus_head, config)
        _dops_fields(config)  # refuse now what init_segment could not write
        return Track(track_id, "audio", "opus", OPUS_TIMESCALE, config,
                     sample_rate=OPUS_TIMESCALE, channels=info.channels, codec_string="opus")
    raise Fmp4Error("audio codec %r cannot be written to fMP4 (aac, mp3, opus only)" % tag.codec)


def track_for_mp3(first_frame_pkt, track_id: int) -> Track:
    """A track from the first MP3 frame (MP3 has no sequence header).

    MPEG-1 audio is ``mp4a.6b``, MPEG-2/2.5 low sampling rates ``mp4a.69``.
    """
    if first_frame_pkt.kind != _AUDIO:
        raise Fmp4Error("an MP3 track needs an audio packet")
    payload = first_frame_pkt.payload
    tag = _audio_tag(payload)
    if tag.codec != "mp3":
        raise Fmp4Error("audio packet is %s, not mp3" % tag.codec)
    info = _wrap("MP3 frame", mp3.parse_frame_header, memoryview(payload)[tag.data_offset:])
    oti = boxes.OTI_MP3 if info.version == 1.0 else boxes.OTI_MP3_LSF
    return Track(track_id, "audio", "mp3", info.sample_rate, b"", sample_rate=info.sample_rate,
                 channels=info.channels, codec_string="mp4a.%02x" % oti)


# ---------------------------------------------------------------------------
# init segment


def _dops_fields(config: bytes):
    """dOps fields from an OpusHead packet (little endian) or a dOps body (big endian)."""
    config = bytes(config)
    if config.startswith(b"OpusHead"):
        body, order = config[8:], "little"
    else:
        body, order = config, "big"
    if len(body) < 11:
        raise Fmp4Error("Opus header of %d bytes is too short" % len(config))
    channels, family = body[1], body[10]
    if not channels:
        raise Fmp4Error("Opus header declares zero channels")
    mapping = b""
    if family:
        mapping = body[11:13 + channels]
        if len(mapping) != 2 + channels:
            raise Fmp4Error("Opus channel mapping table is truncated")
    return (channels, int.from_bytes(body[2:4], order), int.from_bytes(body[4:8], order),
            int.from_bytes(body[8:10], order, signed=True), family, mapping)


def _sample_entry(track: Track) -> bytes:
    codec = track.codec
    if codec in _VIDEO_CODECS:
        if not track.config:
            raise Fmp4Error("%s track %d has no decoder configuration" % (codec, track.track_id))
        if codec == "h264":
            child = boxes.box(b"avcC", track.config)
            fourcc = b"avc1"
        else:
            child = boxes.box(b"hvcC", track.config)
            fourcc = b"hvc1"
        return boxes.visual_sample_entry(fourcc, track.width, track.height, child)
    channels = track.channels or 2
    if codec == "aac":
        if not track.config:
            raise Fmp4Error("AAC track %d has no AudioSpecificConfig" % track.track_id)
        esds = boxes.esds(track.track_id, boxes.OTI_AAC, track.config)
        return boxes.audio_sample_entry(b"mp4a", channels, track.sample_rate, esds)
    if codec == "mp3":
        oti = boxes.OTI_MP3 if track.sample_rate >= 32000 else boxes.OTI_MP3_LSF
        esds = boxes.esds(track.track_id, oti)
        return boxes.audio_sample_entry(b"mp4a", channels, track.sample_rate, esds)
    if codec == "opus":
        dops = boxes.dops(*_dops_fields(track.config))
        return boxes.audio_sample_entry(b"Opus", channels, OPUS_TIMESCALE, dops)
    raise Fmp4Error("codec %r cannot be written to fMP4" % (codec,))


def _check_track(track: Track) -> None:
    allowed = _VIDEO_CODECS if track.kind == "video" else _AUDIO_CODECS
    if track.kind not in ("video", "audio") or track.codec not in allowed:
        raise Fmp4Error("track %r: unsupported %s codec %r" % (track.track_id, track.kind,
                                                              track.codec))
    if not 0 < track.track_id <= 0xFFFFFFFF:
        raise Fmp4Error("track id %r is out of range" % (track.track_id,))
    if not 0 < track.timescale <= 0xFFFFFFFF:
        raise Fmp4Error("track %d: timescale %r is out of range" % (track.track_id,
                                                                   track.timescale))


def _trak(track: Track) -> bytes:
    video = track.kind == "video"
    if video:
        header = boxes.vmhd()
        handler = boxes.hdlr(b"vide", "VideoHandler")
    else:
        header = boxes.smhd()
        handler = boxes.hdlr(b"soun", "SoundHandler")
    stbl = boxes.box(b"stbl", boxes.stsd(_sample_entry(track)), boxes.empty_sample_tables())
    minf = boxes.box(b"minf", header, boxes.dinf(), stbl)
    mdia = boxes.box(b"mdia", boxes.mdhd(track.timescale), handler, minf)
    width, height = (track.width, track.height) if video else (0, 0)
    return boxes.box(b"trak", boxes.tkhd(track.track_id, not video, width, height), mdia)


def init_segment(tracks, major_brand: bytes = b"iso6", duration_ms: int = 0) -> bytes:
    """``ftyp`` + ``moov`` (with ``mvex``) for ``tracks``.

    ``duration_ms`` > 0 adds ``mvex/mehd`` with the whole presentation's
    duration (a DVR file rewritten at close, a VOD DASH manifest).
    """
    tracks = list(tracks)
    if not tracks:
        raise Fmp4Error("an init segment needs at least one track")
    ids = [t.track_id for t in tracks]
    if len(set(ids)) != len(ids):
        raise Fmp4Error("track ids %r are not unique" % (ids,))
    for track in tracks:
        _check_track(track)
    brands = []
    for brand in (major_brand, b"iso6", b"iso5", b"mp41"):
        if brand not in brands:
            brands.append(brand)
    moov = boxes.box(b"moov", boxes.mvhd(MOVIE_TIMESCALE, 0, max(ids) + 1),
                     *[_trak(t) for t in tracks],
                     boxes.mvex(ids, max(int(duration_ms), 0)))
    return boxes.ftyp(major_brand, brands) + moov


# ---------------------------------------------------------------------------
# media segments


def media_segment(sequence_number: int, fragments, styp: bool = False) -> bytes:
    """``[styp] moof mdat`` holding each track's samples, in the given order.

    Each track gets a ``traf``: ``tfhd`` (default-base-is-moof), ``tfdt``
    (64-bit, the first sample's dts) and a ``trun`` whose data offset points
    at the track's first byte in the ``mdat``, with every sample's duration,
    size, flags and (for video, or any non-zero offset) composition offset.
    A sample's ``dts`` other than the first only matters through the
    durations.  Tracks without samples are left out.
    """
    runs = [(track, list(samples)) for track, samples in fragments]
    runs = [(track, samples) for track, samples in runs if samples]
    if not runs:
        raise Fmp4Error("a media segment needs at least one sample")
    if len({track.track_id for track, _ in runs}) != len(runs):
        raise Fmp4Error("a track appears twice in one media segment")
    layout = []
    moof_size = 8 + 16  # moof header, mfhd
    payload_size = 0
    for track, samples in runs:
        with_cts = track.kind == "video" or any(s.cts for s in samples)
        sizes = [len(s.data) for s in samples]
        layout.append((track, samples, with_cts, sizes, payload_size))
        moof_size += 8 + 16 + 20 + boxes.trun_size(len(samples), with_cts)  # traf tfhd tfdt
        payload_size += sum(sizes)
    mdat_header = boxes.mdat_header(payload_size)
    base = moof_size + len(mdat_header)
    trafs = []
    video_flags = (boxes.SAMPLE_FLAGS_NON_SYNC, boxes.SAMPLE_FLAGS_SYNC)
    for track, samples, with_cts, sizes, offset in layout:
        first = samples[0].dts
        if first < 0:
            raise Fmp4Error("track %d: first sample dts %d is negative" % (track.track_id, first))
        if track.kind == "video":
            flags = [video_flags[bool(s.keyframe)] for s in samples]
        else:
            flags = [boxes.SAMPLE_FLAGS_SYNC] * len(samples)
        cts = [s.cts for s in samples] if with_cts else None
        run = boxes.trun(base + offset, [s.duration for s in samples], sizes, flags, cts)
        trafs.append(boxes.box(b"traf", boxes.tfhd(track.track_id), boxes.tfdt(first), run))
    moof = boxes.box(b"moof", boxes.mfhd(sequence_number), *trafs)
    if len(moof) != moof_size:  # pragma: no cover - a layout bug, not an input error
        raise Fmp4Error("moof size %d differs from its layout %d" % (len(moof), moof_size))
    parts = [boxes.styp()] if styp else []
    parts.append(moof)
    parts.append(mdat_header)
    parts.extend(s.data for _, samples in runs for s in samples)
    return b"".join(parts)


# ---------------------------------------------------------------------------
# samples


def _scale(ms: int, timescale: int) -> int:
    """Milliseconds to ``timescale`` ticks, rounded to the nearest tick."""
    return (ms * timescale + 500) // 1000


def _packet_type(payload, multitrack: int) -> int:
    """The real packet type of an enhanced (FourCC) body that parsed once already."""
    packet_type, pos = flv._skip_modex(payload, 1, payload[0] & 0x0F, "packet")
    if packet_type == multitrack:
        packet_type = payload[pos] & 0x0F
    return packet_type


def _check_nal_framing(data: bytes, length_size: int, codec: str) -> None:
    pos = 0
    end = len(data)
    while pos < end:
        if end - pos < length_size:
            raise Fmp4Error("truncated %s NAL length at offset %d" % (codec, pos))
        pos += length_size + int.from_bytes(data[pos:pos + length_size], "big")
        if pos > end:
            raise Fmp4Error("%s NAL unit overruns its %d byte frame" % (codec, end))


def _nal_length_size(track: Track) -> int:
    config = track.config
    index = 4 if track.codec == "h264" else 21
    if len(config) <= index:
        raise Fmp4Error("%s track %d has no decoder configuration" % (track.codec,
                                                                     track.track_id))
    return (config[index] & 0x03) + 1


def sample_from_packet(pkt, track: Track):
    """The :class:`Sample` of a frame packet (duration 0), or None.

    None for sequence headers, end of sequence, metadata, command frames,
    empty frames and script data.  A packet of another codec than the
    track's raises :class:`Fmp4Error` (a new init segment is needed).
    """
    kind = pkt.kind
    if kind not in (_VIDEO, _AUDIO):
        return None
    payload = pkt.payload
    if (kind == _VIDEO) != (track.kind == "video"):
        raise Fmp4Error("a %s packet for %s track %d" % ("video" if kind == _VIDEO else "audio",
                                                         track.kind, track.track_id))
    timescale = track.timescale
    if kind == _VIDEO:
        tag = _video_tag(payload)
        if tag.codec != track.codec:
            raise Fmp4Error("%s frame for %s track %d" % (tag.codec, track.codec, track.track_id))
        if (tag.sequence_header or tag.end_of_sequence or tag.frame_type == flv.FRAME_COMMAND
                or (tag.enhanced and _packet_type(payload, flv.VIDEO_MULTITRACK)
                    not in (flv.VIDEO_CODED_FRAMES, flv.VIDEO_CODED_FRAMES_X))):
            return None
        data = bytes(payload[tag.data_offset:])
        if not data:
            return None
        _check_nal_framing(data, _nal_length_size(track), tag.codec)
        return Sample(_scale(pkt.dts, timescale), 0, _scale(pkt.pts - pkt.dts, timescale), data,
                      bool(tag.keyframe))
    tag = _audio_tag(payload)
    if tag.codec != track.codec:
        raise Fmp4Error("%s frame for %s track %d" % (tag.codec, track.codec, track.track_id))
    if tag.sequence_header or (tag.enhanced and _packet_type(payload, flv.AUDIO_MULTITRACK)
                               != flv.AUDIO_CODED_FRAMES):
        return None
    data = bytes(payload[tag.data_offset:])
    if not data:
        return None
    return Sample(_scale(pkt.dts, timescale), 0, 0, data, True)


# Opus frame sizes in 1/400 s (2.5 ms) units by TOC config (RFC 6716 3.1).
_OPUS_FRAME_UNITS = (4, 8, 16, 24) * 3 + (4, 8) * 2 + (1, 2, 4, 8) * 4


def opus_packet_samples(packet) -> int:
    """Samples at 48 kHz in one Opus packet, from its TOC byte (0 if unreadable)."""
    if not len(packet):
        return 0
    toc = packet[0]
    code = toc & 0x03
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    elif len(packet) >= 2:
        frames = packet[1] & 0x3F
    else:
        return 0
    return _OPUS_FRAME_UNITS[toc >> 3] * 120 * frames


# ---------------------------------------------------------------------------
# fragmenter


class _TrackState:
    """Per-track buffering: ready samples, the held-back last one, the timeline."""

    __slots__ = ("track", "video", "ready", "ready_ticks", "held", "end", "offset",
                 "last_duration", "started", "tolerance", "frame_samples")

    def __init__(self, track: Track):
        self.track = track
        self.video = track.kind == "video"
        self.ready: list = []
        self.ready_ticks = 0
        self.held = None  # the newest sample: its duration waits for its successor
        self.end = None  # where the last written sample ended, once the held one is gone
        self.offset = 0  # added to incoming dts after time went backwards
        self.last_duration = 0
        self.started = not self.video  # video waits for its first keyframe
        # an audio dts within 1.5 ms of the expected one is taken as exactly contiguous
        self.tolerance = (track.timescale * 3 + 1999) // 2000
        self.frame_samples = 0
        if track.codec == "aac":
            self.frame_samples = 2048 if track.codec_string in ("mp4a.40.5", "mp4a.40.29") else 1024
        elif track.codec == "mp3":
            self.frame_samples = 1152 if track.sample_rate >= 32000 else 576

    def nominal(self, sample) -> int:
        """The codec's duration of an audio sample in ticks; 0 for video or when unknown."""
        if self.video:
            return 0
        if self.track.codec == "opus":
            return opus_packet_samples(sample.data) * self.track.timescale // OPUS_TIMESCALE
        return self.frame_samples

    def fallback(self, sample) -> int:
        """A sample's duration when it has no successor."""
        return (self.nominal(sample) or self.last_duration
                or max(self.track.timescale // _DEFAULT_FRAME_RATE, 1))

    def push(self, sample) -> None:
        if not self.started:
            if not sample.keyframe:
                return
            self.started = True
        sample.dts += self.offset
        held = self.held
        if held is None:
            # the first sample, or the first after a flush: start at 0 or where the last ended
            expected = self.end
            lowest = 0 if expected is None else expected
            highest = None
        else:
            nominal = self.nominal(held)
            expected = held.dts + nominal if nominal else None
            lowest = held.dts + 1
            highest = held.dts + _MAX_DURATION
        if (expected is not None and not self.video
                and abs(sample.dts - expected) <= self.tolerance):
            sample.dts = expected
        if sample.dts < lowest or (highest is not None and sample.dts > highest):
            # time went backwards, stood still or jumped further than a trun can say:
            # go on from where this track should be and move the rest of it alike
            if expected is not None:
                target = expected
            else:
                target = lowest if held is None else held.dts + self.fallback(held)
            self.offset += target - sample.dts
            sample.dts = target
        if held is not None:
            held.duration = sample.dts - held.dts
            self.last_duration = held.duration
            self.ready.append(held)
            self.ready_ticks += held.duration
        self.held = sample

    def release_held(self) -> None:
        held = self.held
        if held is not None:
            held.duration = self.fallback(held)
            self.ready.append(held)
            self.ready_ticks += held.duration
            self.end = held.dts + held.duration
            self.held = None

    def take(self, boundary) -> list:
        """Ready samples that start before ``boundary`` = (dts, timescale), or all of them."""
        ready = self.ready
        count = len(ready)
        if boundary is not None:
            limit, scale = boundary
            timescale = self.track.timescale
            count = 0
            for sample in ready:
                if sample.dts * scale >= limit * timescale:
                    break
                count += 1
        taken = ready[:count]
        del ready[:count]
        self.ready_ticks -= sum(s.duration for s in taken)
        return taken


class Fragmenter:
    """Buffers samples per track and cuts fragments.

    Fills each sample's duration from the next sample's dts (the last sample
    of a track waits for its successor; on :meth:`flush` it gets the
    previous duration or a codec default: 1024 samples AAC, 960 opus, 1152
    mp3, 1/25 s video).

    Details that keep the output playable:

    - video samples before the first keyframe are dropped;
    - audio timestamps (milliseconds in FLV) within 1.5 ms of where the
      previous frame ends are snapped to it, so AAC/MP3/Opus durations are
      exact frame sizes instead of millisecond jitter;
    - a timestamp that goes backwards (or repeats, or jumps ahead by more
      than a 32-bit sample duration) continues the track's timeline where
      it should be and shifts the rest of the track by the same amount; a
      track's first timestamp below zero is moved to zero the same way;
    - with a video track, :meth:`cut` gives audio only up to the video's
      held-back sample, so audio and video fragments cover the same time.

    Sequence headers and metadata are ignored: a codec change needs a new
    init segment and a new fragmenter.  A frame of another codec than its
    track raises :class:`Fmp4Error`.
    """

    def __init__(self, tracks):
        tracks = list(tracks)
        if not tracks:
            raise Fmp4Error("a fragmenter needs at least one track")
        for track in tracks:
            _check_track(track)
        if len({t.track_id for t in tracks}) != len(tracks):
            raise Fmp4Error("track ids are not unique")
        self.tracks = tracks
        self._states = [_TrackState(t) for t in tracks]
        self._by_kind = {}
        for state in self._states:
            if state.track.kind in self._by_kind:
                raise Fmp4Error("a fragmenter takes one %s track" % state.track.kind)
            self._by_kind[state.track.kind] = state
        self._main = self._by_kind.get("video") or self._states[0]
        self.last_cut = None  # FragmentInfo of the last cut/flush that wrote something

    def add(self, pkt) -> None:
        """Take one packet; packets without a track of their kind are ignored."""
        kind = pkt.kind
        if kind == _VIDEO:
            state = self._by_kind.get("video")
        elif kind == _AUDIO:
            state = self._by_kind.get("audio")
        else:
            return
        if state is None:
            return
        sample = sample_from_packet(pkt, state.track)
        if sample is not None:
            state.push(sample)

    def pending_duration_ms(self) -> int:
        """Media time buffered and ready in the main track (video, else the first track)."""
        main = self._main
        return main.ready_ticks * 1000 // main.track.timescale

    def _boundary(self):
        video = self._by_kind.get("video")
        if video is None or video.held is None:
            return None
        return video.held.dts, video.track.timescale

    def _write(self, sequence_number: int, styp: bool, boundary):
        fragments = []
        for state in self._states:
            samples = state.take(None if state is self._main or state.video else boundary)
            if samples:
                fragments.append((state.track, samples))
        if not fragments:
            return None
        data = media_segment(sequence_number, fragments, styp)
        main = next((f for f in fragments if f[0] is self._main.track), None)
        if main is None:
            main = max(fragments, key=lambda f: sum(s.duration for s in f[1]) / f[0].timescale)
        track, samples = main
        self.last_cut = FragmentInfo(
            sequence_number, samples[0].dts / track.timescale,
            sum(s.duration for s in samples) / track.timescale,
            track.kind != "video" or samples[0].keyframe, len(data),
            sum(len(f[1]) for f in fragments))
        return data

    def cut(self, sequence_number: int, styp: bool = False):
        """A media segment of everything ready (None if nothing)."""
        return self._write(sequence_number, styp, self._boundary())

    def flush(self, sequence_number: int, styp: bool = False):
        """Like :meth:`cut`, with the held-back last samples (end of stream)."""
        for state in self._states:
            state.release_held()
        return self._write(sequence_number, styp, None)
