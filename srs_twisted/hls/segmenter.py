"""The HLS segmenter: media packets in, segments and playlists out.

Sans-I/O: no Twisted, no file access, no clock reads.  The wall clock (for
the ``[timestamp]`` and date variables in file names) and the random source
(for AES keys) are passed in.  :class:`HlsSegmenter` is fed the packets of
one stream and returns *events* saying what to write where:

``SegmentOpened`` -> ``SegmentData``... -> ``SegmentClosed`` (or
``SegmentDropped``), ``KeyCreated``, ``PlaylistUpdated`` and
``FilesExpired``.  The recorder (:mod:`srs_twisted.hls.writer`) turns them
into files.

When segments are cut (SRS's ``srs_app_hls.cpp`` rules, durations in stream
time):

* nothing is cut before a segment is 200 ms long;
* a video frame cuts once the segment reaches ``hls_fragment * hls_td_ratio``
  if it is a keyframe, or any frame with ``hls_wait_keyframe off``;
* any frame cuts once the segment reaches ``hls_aof_ratio * hls_fragment``
  (SRS's "absolute overflow": it is how audio-only streams are cut, and it
  bounds streams whose keyframes are rare or missing; SRS checks it on audio
  only, we on video too so a video-only stream without keyframes is cut);
* a timestamp that jumps back more than a second, or forward more than
  ``max(10 s, 2 * hls_fragment)``, within one track ends the segment at its
  last frame and the next one starts with ``EXT-X-DISCONTINUITY``;
* a new track, a codec change or a changed sequence header ends the segment
  too (the next starts with a discontinuity and the new configuration);
* a segment shorter than 100 ms when it ends is dropped and its sequence
  number reused (SRS).

The output format is a strategy object: :class:`TsSegmentFormat`, or
:class:`~.fmp4_format.Fmp4SegmentFormat` with ``hls_use_fmp4 on`` (an init
segment, ``InitCreated``, and ``moof``/``mdat`` fragments) and with
``hls_low_latency on`` (LL-HLS: fMP4 parts of at most ``hls_part_duration``,
``PartAdded``, and :meth:`HlsSegmenter.ll_playlist`).  The cutting, window,
keys and cleanup logic is the same for every format.
"""

from __future__ import annotations

import math
import os
import posixpath
import time
from dataclasses import dataclass, field
from typing import Callable

from ..codec import flv
from ..codec.errors import CodecError
from ..codec.info import META_AUDIO_CODECS, META_VIDEO_CODECS, metadata_codec
from ..codec.mpegts import TsMuxer
from .fmp4_format import Fmp4SegmentFormat

__all__ = [
    "HlsSegmenter", "Segment", "HlsKey", "Tracks", "TsSegmentFormat", "Fmp4SegmentFormat",
    "InitSection", "Part", "SegmentOpened", "SegmentData", "SegmentClosed", "SegmentDropped",
    "KeyCreated", "InitCreated", "PartAdded", "PlaylistUpdated", "FilesExpired", "build_stream",
    "build_time", "MIN_PART_MS",
    "MIN_SEGMENT_MS", "MIN_CUT_MS", "BACKWARD_JUMP_MS", "FORWARD_JUMP_MIN_MS", "FLUSH_BYTES",
]

AUDIO = flv.TAG_AUDIO
VIDEO = flv.TAG_VIDEO
DATA = flv.TAG_SCRIPT

VIDEO_CODECS = ("h264", "h265")
AUDIO_CODECS = ("aac", "mp3")

# SRS_HLS_SEGMENT_MIN_DURATION: a shorter segment is dropped when it ends...
MIN_SEGMENT_MS = 100
# ... and none is cut before twice that.
MIN_CUT_MS = 2 * MIN_SEGMENT_MS
# A track whose timestamp goes back more than this has jumped.
BACKWARD_JUMP_MS = 1000
# A track whose timestamp moves on more than max(this, 2 * hls_fragment) has jumped.
FORWARD_JUMP_MIN_MS = 10000
# The last frame's duration, when a segment ends without a next frame, is at most this.
MAX_FRAME_MS = 1000
# Segment bytes are handed out in chunks of at least this size (and at the end).
FLUSH_BYTES = 256 * 1024
# hls_part_duration is at least this (ms).
MIN_PART_MS = 100
# EXT-X-PART tags are listed for the segments that start within this many
# target durations of the playlist's end (RFC 8216bis 6.2.2), and parts stay
# available for as long again after they leave it.
PART_WINDOW_TARGETS = 3
# hls_ts_floor: SRS_HLS_FLOOR_REAP_PERCENT and SRS_JUMP_WHEN_PIECE_DEVIATION.
FLOOR_REAP_PERCENT = 0.3
JUMP_WHEN_PIECE_DEVIATION = 20



def _rounded_seconds(ms: int) -> int:
    """A segment's duration as the target duration must cover it: rounded to
    the nearest second (RFC 8216 4.3.3.1), half up.  SRS takes the ceiling,
    so a 2.02 s segment makes a target of 3 and players' live delay 9 s."""
    return (ms + 500) // 1000


# --------------------------------------------------------------------------------------------
# What the segmenter produces


@dataclass(frozen=True)
class Tracks:
    """The tracks of one segment and their codecs (None: no such track)."""

    video: str | None
    audio: str | None


@dataclass(eq=False)
class HlsKey:
    """One AES-128 key: ``key`` is written to ``path``; playlists point at ``uri``."""

    seq: int  # the sequence number of the first segment it encrypts ([seq] in its name)
    key: bytes
    path: str
    uri: str


@dataclass(eq=False)
class InitSection:
    """One fMP4 init segment (``EXT-X-MAP``): ``data`` is written to ``path``."""

    seq: int  # the first segment that uses it ([seq] in its name)
    path: str
    uri: str
    data: bytes


@dataclass(eq=False)
class Part:
    """One LL-HLS partial segment.  ``number`` counts every part of the
    stream and names it, so the next part's name (the preload hint) is
    known before it is known which segment it belongs to."""

    number: int
    msn: int  # the parent segment's sequence number
    index: int  # within the parent segment
    duration: float  # seconds
    independent: bool
    path: str  # where it would be under hls_path (parts live in memory only)
    uri: str
    size: int = 0


@dataclass(eq=False)
class Segment:
    """One media segment.  ``path`` and ``uri`` are final once it is closed
    (``[duration]`` in a name is known only then); ``tmp_path`` is where its
    bytes go while it is open."""

    seq: int
    path: str
    uri: str
    tmp_path: str
    start_dts: int
    tracks: Tracks
    discontinuity: bool = False
    key: HlsKey | None = None
    duration_ms: int = 0
    size: int = 0
    init: InitSection | None = None  # fMP4: its EXT-X-MAP
    parts: list = field(default_factory=list)  # LL-HLS: its Parts so far
    media: float = 0.0  # fMP4: seconds of media written (the fragments' durations)

    @property
    def duration(self) -> float:
        """Seconds, as EXTINF and on_hls give it."""
        return self.duration_ms / 1000.0

    @property
    def iv(self) -> bytes | None:
        """The AES-128 IV: the sequence number, big-endian, as HLS defines it."""
        return self.seq.to_bytes(16, "big") if self.key is not None else None


@dataclass
class SegmentOpened:
    segment: Segment


@dataclass
class SegmentData:
    segment: Segment
    data: bytes


@dataclass
class SegmentClosed:
    """The segment is complete (its last bytes came in a SegmentData before)."""

    segment: Segment


@dataclass
class SegmentDropped:
    """The segment was too short to keep: remove its temporary file."""

    segment: Segment


@dataclass
class KeyCreated:
    key: HlsKey


@dataclass
class InitCreated:
    """A new fMP4 init segment: write it before the segments that use it."""

    init: InitSection


@dataclass
class PartAdded:
    """An LL-HLS part of ``segment`` is complete: ``data`` is its bytes
    (they are also part of the segment's ``SegmentData``)."""

    segment: Segment
    part: Part
    data: bytes


@dataclass
class PlaylistUpdated:
    text: str


@dataclass
class FilesExpired:
    """Files no playlist needs any more (segments past the window, their keys)."""

    paths: list[str]


_NOTHING: tuple = ()


# --------------------------------------------------------------------------------------------
# Names


def build_stream(template: str, vhost: str, app: str, stream: str) -> str:
    """SRS's srs_path_build_stream: [vhost] [app] [stream]."""
    return template.replace("[vhost]", vhost).replace("[app]", app).replace("[stream]", stream)


def build_time(template: str, now: float, utc: bool = False) -> str:
    """SRS's srs_path_build_timestamp at wall-clock time ``now`` (seconds):
    [2006] [01] [02] [15] [04] [05] [999] and [timestamp] (ms)."""
    if "[" not in template:
        return template
    tm = time.gmtime(now) if utc else time.localtime(now)
    ms = int(now * 1000)
    for var, value in (
        ("[2006]", "%04d" % tm.tm_year),
        ("[01]", "%02d" % tm.tm_mon),
        ("[02]", "%02d" % tm.tm_mday),
        ("[15]", "%02d" % tm.tm_hour),
        ("[04]", "%02d" % tm.tm_min),
        ("[05]", "%02d" % tm.tm_sec),
        ("[999]", "%03d" % (ms % 1000)),
        ("[timestamp]", str(ms)),
    ):
        template = template.replace(var, value)
    return template


def _dirname(path: str) -> str:
    pos = path.rfind("/")
    if pos < 0:
        return ""
    return path[:pos] or "/"


def _relative_to(path: str, directory: str) -> str:
    """``path`` as a URI relative to ``directory``, worked out on the strings."""
    if not directory:
        return path.lstrip("/")
    if path.startswith(directory + "/"):
        return path[len(directory) + 1:].lstrip("/")
    if path.startswith("/") != directory.startswith("/"):
        return path
    return posixpath.relpath(posixpath.normpath(path), posixpath.normpath(directory))


def _inside(path: str, root: str) -> str | None:
    """``path`` when it names something below ``root`` (as strings: no
    ``..`` out of it, no URL), else None."""
    if "://" in path or not root:
        return None
    norm, base = posixpath.normpath(path), posixpath.normpath(root)
    if not norm.startswith(base.rstrip("/") + "/"):
        return None
    return norm


# --------------------------------------------------------------------------------------------
# Output formats


class TsSegmentFormat:
    """MPEG-TS segments: one fresh :class:`TsMuxer` per segment, so each
    starts with PAT/PMT and its own continuity counters (SRS resets its TS
    context per segment too).  A malformed packet is dropped and counted."""

    extension = "ts"

    def __init__(self) -> None:
        self._muxer: TsMuxer | None = None
        self.errors = 0
        self.last_error = ""

    def begin_segment(self, tracks: Tracks, headers: list) -> bytes:
        self._muxer = TsMuxer(
            has_video=tracks.video is not None,
            has_audio=tracks.audio is not None,
            video_codec=tracks.video or "h264",
            audio_codec=tracks.audio or "aac",
        )
        for pkt in headers:
            self.add_packet(pkt)
        return b""

    def add_packet(self, pkt) -> bytes:
        try:
            return self._muxer.mux(pkt)
        except CodecError as e:
            self.errors += 1
            self.last_error = str(e)
            return b""

    def end_segment(self, next_pkt=None) -> bytes:
        self._muxer = None
        return b""


class _Aes128Cbc:
    """AES-128-CBC with PKCS#7 padding over a whole segment, fed in pieces."""

    def __init__(self, key: bytes, iv: bytes) -> None:
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        self._enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        self._pad = padding.PKCS7(128).padder()

    def update(self, data: bytes) -> bytes:
        return self._enc.update(self._pad.update(data)) if data else b""

    def finalize(self) -> bytes:
        return self._enc.update(self._pad.finalize()) + self._enc.finalize()


# --------------------------------------------------------------------------------------------
# The segmenter


class HlsSegmenter:
    """Cut one stream into HLS segments and keep its playlist.

    ``conf`` is the vhost's :class:`~srs_twisted.config.model.HlsConfig`.
    ``wallclock()`` gives the time (seconds since the epoch) used for the
    date variables of ``hls_ts_file``; ``random_bytes(n)`` makes AES keys.

    ``on_packet(pkt)`` returns a (possibly empty) sequence of events.
    ``on_unpublish()`` ends the open segment; ``on_publish()`` after it
    makes the next segment start with ``EXT-X-DISCONTINUITY``: the playlist
    and its sequence numbers go on across republishing, as SRS's do.

    The format follows the config (MPEG-TS, fMP4, fMP4 with LL-HLS parts)
    unless ``segment_format`` is given.
    """

    def __init__(
        self,
        conf,
        app: str,
        stream: str,
        vhost: str = "__defaultVhost__",
        *,
        wallclock: Callable[[], float] = lambda: 0.0,
        random_bytes: Callable[[int], bytes] = os.urandom,
        utc: bool = False,
        segment_format=None,
    ) -> None:
        self.app = app
        self.stream = stream
        self.vhost = vhost
        self._wallclock = wallclock
        self._random_bytes = random_bytes
        self._utc = utc
        self._fixed_format = segment_format
        self.format = segment_format
        self._format_kind = None
        self._init: InitSection | None = None  # fMP4: the init segment new segments use
        self._inits: dict[int, InitSection] = {}
        self._init_users: dict[int, set[int]] = {}  # init seq -> seqs of its segments on disk
        self._part_number = 0  # the number the next LL-HLS part gets
        self.segments: list[Segment] = []  # the playlist's window
        self._expired: list[tuple[int, Segment]] = []  # (delete after this stream time, segment)
        self._key_users: dict[int, set[int]] = {}  # key seq -> seqs of its segments on disk
        self._keys: dict[int, HlsKey] = {}
        self._key: HlsKey | None = None
        self._rotate_key = False
        self._seq = 0
        self._discontinuity_sequence = 0
        self._discontinuity_next = False
        self._stream_ms = 0  # total duration of the segments closed so far
        self._current: Segment | None = None
        self._cipher: _Aes128Cbc | None = None
        self._chunks: list[bytes] = []
        self._pending = 0
        self._floor_accept = 0
        self._deviation = 0
        self.dropped = 0  # segments too short to keep
        self._reset_stream()
        self._configure(conf)
        self._target = self._max_td_target()

    # ---- configuration ---------------------------------------------------------------------
    def _configure(self, conf) -> None:
        self.conf = conf
        self.low_latency = bool(getattr(conf, "hls_low_latency", False))
        self.fmp4 = bool(getattr(conf, "hls_use_fmp4", False)) or self.low_latency
        self.part_ms = (max(MIN_PART_MS, int(round(conf.hls_part_duration * 1000)))
                        if self.low_latency else None)
        # AES-128 encrypts whole segments: LL-HLS parts are left clear (see docs/hls.md).
        self.encrypting = bool(conf.hls_keys) and not self.low_latency
        if self._fixed_format is None and self._current is None:
            kind = (self.fmp4, self.part_ms)
            if kind != self._format_kind:
                if self._format_kind is not None and self.segments:
                    self._discontinuity_next = True
                self._format_kind = kind
                self.format = Fmp4SegmentFormat(self.part_ms) if self.fmp4 else TsSegmentFormat()
                self._init = None
        self.segment_template = conf.hls_fmp4_file if self.fmp4 else conf.hls_ts_file
        self.fragment_ms = max(1, int(round(conf.hls_fragment * 1000)))
        self.max_td_ms = max(1, int(round(conf.hls_fragment * conf.hls_td_ratio * 1000)))
        self.aof_ms = max(1, int(round(conf.hls_fragment * conf.hls_aof_ratio * 1000)))
        self.window_ms = int(round(conf.hls_window * 1000))
        self.jump_ms = max(FORWARD_JUMP_MIN_MS, 2 * self.fragment_ms)
        self.m3u8_url = build_stream(conf.hls_m3u8_file, self.vhost, self.app, self.stream)
        self.m3u8_path = f"{conf.hls_path}/{self.m3u8_url}"
        self.m3u8_dir = _dirname(self.m3u8_path)

    def _max_td_target(self) -> int:
        longest = max((s.duration_ms for s in self.segments), default=0)
        return max(1, math.ceil(self.max_td_ms / 1000.0), _rounded_seconds(longest))

    def _reset_stream(self) -> None:
        """Forget what the last publisher sent (headers, tracks, timing)."""
        self._video_sh = None
        self._audio_sh = None
        self._seen: dict[int, str] = {}  # kind -> codec of the frames or headers seen
        self._declared: dict[int, str] = {}  # kind -> codec onMetaData announced
        self._last: dict[int, int] = {}  # kind -> last dts
        self._delta: dict[int, int] = {}  # kind -> last frame duration
        self._seg_max = 0
        self._tracks_changed = False

    # ---- the publisher's life cycle ----------------------------------------------------------
    def on_publish(self, conf=None) -> tuple:
        """A (new) publisher starts; ``conf`` applies a reloaded config."""
        if conf is not None:
            self._configure(conf)
        self._reset_stream()
        self._target = self._max_td_target()  # SRS resets the target at publish
        return _NOTHING

    def on_unpublish(self) -> list:
        """The publisher left: end the open segment and refresh the playlist."""
        events: list = []
        if self._current is not None:
            self._close(events, self._natural_end())
        if self.segments:
            self._discontinuity_next = True
        self._reset_stream()
        return events

    # ---- packets -----------------------------------------------------------------------------
    def on_packet(self, pkt):
        kind = pkt.kind
        if kind == VIDEO:
            if pkt.codec not in VIDEO_CODECS:
                return _NOTHING  # AV1, VP9...: TS cannot carry them
        elif kind == AUDIO:
            if pkt.codec not in AUDIO_CODECS:
                return _NOTHING  # Opus, G.711...
        else:
            if kind == DATA:
                self._on_metadata(pkt)
            return _NOTHING
        if pkt.sequence_header:
            return self._on_sequence_header(pkt)
        return self._on_frame(pkt)

    def _on_metadata(self, pkt) -> None:
        try:
            name, meta = flv.parse_script(pkt.payload)
        except (CodecError, ValueError, IndexError):
            return
        if name != "onMetaData" or not isinstance(meta, dict):
            return
        conf = self.conf
        for kind, key, table, default, off in (
            (VIDEO, "videocodecid", META_VIDEO_CODECS, conf.hls_vcodec, "vn"),
            (AUDIO, "audiocodecid", META_AUDIO_CODECS, conf.hls_acodec, "an"),
        ):
            announced, codec = metadata_codec(meta.get(key), table)
            if not announced or default == off:
                if self._declared.pop(kind, None) is not None:
                    self._tracks_changed = True
                continue
            if codec is None:
                codecs = VIDEO_CODECS if kind == VIDEO else AUDIO_CODECS
                codec = default if default in codecs else codecs[0]
            if self._declared.get(kind) != codec:
                self._declared[kind] = codec
                self._tracks_changed = True

    def _on_sequence_header(self, pkt):
        kind = pkt.kind
        if kind == VIDEO:
            previous, self._video_sh = self._video_sh, pkt
        else:
            previous, self._audio_sh = self._audio_sh, pkt
        if previous is not None and previous.payload == pkt.payload and previous.codec == pkt.codec:
            return _NOTHING  # a repeat
        self._set_seen(kind, pkt.codec)
        seg = self._current
        if seg is None:
            return _NOTHING
        if previous is None and self._tracks() == seg.tracks:
            # The first configuration of a track the segment already has
            # (announced by onMetaData): the muxer takes it in flight.
            self.format.add_packet(pkt)
            if self.fmp4:
                events = []
                self._drain(events, seg)
                return events or _NOTHING
            return _NOTHING
        # A new configuration: the next segment starts with it, after a discontinuity.
        events: list = []
        self._close(events, self._natural_end())
        self._discontinuity_next = True
        return events

    def _set_seen(self, kind: int, codec: str) -> None:
        if self._seen.get(kind) != codec:
            self._seen[kind] = codec
            self._tracks_changed = True

    def _on_frame(self, pkt):
        kind = pkt.kind
        dts = pkt.dts
        events = None
        last = self._last.get(kind)
        # A track is compared with itself; its first frame with the newest frame.
        ref = last if last is not None else (max(self._last.values()) if self._last else None)
        jumped = ref is not None and (dts < ref - BACKWARD_JUMP_MS or dts - ref > self.jump_ms)
        if self._seen.get(kind) != pkt.codec:
            self._set_seen(kind, pkt.codec)
        seg = self._current
        if seg is not None:
            changed = False
            if self._tracks_changed:
                self._tracks_changed = False
                changed = self._tracks() != seg.tracks
            if jumped or changed:
                events = []
                self._close(events, self._natural_end())
                self._discontinuity_next = True
            elif self._should_cut(pkt, dts - seg.start_dts):
                events = []
                self._close(events, dts, pkt)
        if jumped:
            # Every track restarts its timing: the other one jumps too, usually.
            self._last.clear()
            self._delta.clear()
        elif last is not None and dts > last:
            self._delta[kind] = min(dts - last, MAX_FRAME_MS)
        self._last[kind] = dts
        if self._current is None:
            if events is None:
                events = []
            self._open(events, pkt)
        if dts > self._seg_max:
            self._seg_max = dts
        data = self.format.add_packet(pkt)
        if data:
            self._append(data)
        if self.fmp4:
            if events is None:
                events = []
            self._drain(events, self._current)
        if self._pending >= FLUSH_BYTES:
            if events is None:
                events = []
            events.append(SegmentData(self._current, self._take()))
        return events or _NOTHING

    def _should_cut(self, pkt, elapsed: int) -> bool:
        if elapsed < MIN_CUT_MS:
            return False
        deviation = self._floor_deviation_ms()
        if elapsed >= self.aof_ms + deviation:
            return True
        if pkt.kind != VIDEO or elapsed < self.max_td_ms + deviation:
            return False
        return pkt.keyframe or not self.conf.hls_wait_keyframe

    def _floor_deviation_ms(self) -> float:
        if not self.conf.hls_ts_floor:
            return 0
        return FLOOR_REAP_PERCENT * self._deviation * self.fragment_ms

    def _tracks(self) -> Tracks:
        video = self._seen.get(VIDEO) or self._declared.get(VIDEO)
        audio = self._seen.get(AUDIO) or self._declared.get(AUDIO)
        return Tracks(video, audio)

    def _natural_end(self) -> int:
        """Where the open segment ends when no next frame says so: the end
        of the track that ends last (its last frame plus that frame's
        duration), within the segment."""
        start = self._current.start_dts
        end = self._seg_max
        for kind, last in self._last.items():
            if start <= last <= self._seg_max:
                end = max(end, last + self._delta.get(kind, 0))
        return end

    # ---- fMP4: init segments and fragments -----------------------------------------------------
    def _drain(self, events: list, seg: Segment) -> None:
        """Take what the fMP4 format made: a new init segment, fragments
        (the segment's bytes; LL-HLS parts)."""
        fmt = self.format
        init = fmt.take_init()
        if init is not None:
            if self._init is not None and not seg.parts and seg.size == 0:
                seg.discontinuity = True  # a new init: the decoder starts again
            self._init = self._new_init(seg.seq, init)
            events.append(InitCreated(self._init))
        if seg.init is None and self._init is not None:
            self._use_init(seg, self._init)
        for fragment in fmt.take_fragments():
            seg.media += fragment.duration
            if self.part_ms is not None:
                part = self._new_part(seg, fragment)
                events.append(PartAdded(seg, part, fragment.data))
            self._append(fragment.data, seg)

    def _new_init(self, seq: int, data: bytes) -> InitSection:
        conf = self.conf
        template = build_stream(conf.hls_init_file, self.vhost, self.app, self.stream)
        name = template.replace("[seq]", str(seq))
        if "[seq]" not in template and self._inits:
            # Segments still listed use the previous init: a new name.
            stem, dot, ext = name.rpartition(".")
            name = f"{stem}-{seq}.{ext}" if dot and "/" not in ext else f"{name}-{seq}"
        path = f"{conf.hls_path}/{name}"
        init = InitSection(seq=seq, path=path, uri=self._uri(path), data=data)
        self._inits[seq] = init
        self._init_users[seq] = set()
        return init

    def _use_init(self, seg: Segment, init: InitSection) -> None:
        seg.init = init
        users = self._init_users.get(init.seq)
        if users is not None:
            users.add(seg.seq)

    def part_path(self, number: int) -> str:
        """Where part ``number`` would be (parts are served from memory)."""
        stem = self.m3u8_path.rpartition("/")[2].rpartition(".")[0] or self.stream
        return f"{self.m3u8_dir}/{stem}-part{number}.m4s"

    def _new_part(self, seg: Segment, fragment) -> Part:
        number = self._part_number
        self._part_number += 1
        path = self.part_path(number)
        part = Part(number=number, msn=seg.seq, index=len(seg.parts), duration=fragment.duration,
                    independent=fragment.independent, path=path, uri=self._uri(path),
                    size=len(fragment.data))
        seg.parts.append(part)
        return part

    # ---- segment bytes -----------------------------------------------------------------------
    def _append(self, data: bytes, seg: Segment | None = None) -> None:
        if self._cipher is not None:
            data = self._cipher.update(data)
            if not data:
                return
        self._chunks.append(data)
        self._pending += len(data)
        (seg or self._current).size += len(data)

    def _take(self) -> bytes:
        data = b"".join(self._chunks) if len(self._chunks) != 1 else self._chunks[0]
        self._chunks = []
        self._pending = 0
        return data

    # ---- opening and closing -----------------------------------------------------------------
    def _open(self, events: list, pkt) -> None:
        conf = self.conf
        seq = self._seq
        self._seq += 1
        now = self._wallclock()
        name = build_stream(self.segment_template, self.vhost, self.app, self.stream)
        if conf.hls_ts_floor:
            name = name.replace("[timestamp]", str(self._floor_piece(now)))
        name = build_time(name, now, self._utc).replace("[seq]", str(seq))
        path = f"{conf.hls_path}/{name}"
        key = None
        if self.encrypting:
            key = self._next_key(events, seq)
        tracks = self._tracks()
        seg = Segment(
            seq=seq, path=path, uri=self._uri(path), tmp_path=path + ".tmp", start_dts=pkt.dts,
            tracks=tracks, discontinuity=self._discontinuity_next, key=key,
        )
        self._discontinuity_next = False
        self._current = seg
        self._seg_max = pkt.dts
        self._tracks_changed = False
        self._cipher = _Aes128Cbc(key.key, seg.iv) if key is not None else None
        self._chunks = []
        self._pending = 0
        headers = [h for h in (self._video_sh, self._audio_sh) if h is not None]
        events.append(SegmentOpened(seg))
        head = self.format.begin_segment(tracks, headers)
        if head:
            self._append(head)
        if self.fmp4:
            self._drain(events, seg)

    def _floor_piece(self, now: float) -> int:
        """hls_ts_floor: [timestamp] is floor(now / hls_fragment), one more per segment."""
        current = int(now * 1000) // self.fragment_ms
        if not self._floor_accept:
            self._floor_accept = current - 1
        else:
            self._floor_accept += 1
        if self._floor_accept - current > JUMP_WHEN_PIECE_DEVIATION:
            self._floor_accept = current - 1
        self._deviation = self._floor_accept - current
        return self._floor_accept

    def _uri(self, path: str) -> str:
        """The playlist entry for a file: relative to the playlist, after
        hls_entry_prefix (with the playlist's directory when the prefix has
        no trailing slash, as SRS)."""
        rel = _relative_to(path, self.m3u8_dir)
        prefix = self.conf.hls_entry_prefix
        if not prefix:
            return rel
        if prefix.endswith("/"):
            return prefix + rel
        http_dir = _dirname(self.m3u8_url)
        return prefix + "/" + (http_dir + "/" if http_dir and http_dir != "." else "") + rel

    def _next_key(self, events: list, seq: int) -> HlsKey:
        conf = self.conf
        per_key = max(1, conf.hls_fragments_per_key)
        key = self._key
        if key is None or self._rotate_key or seq % per_key == 0:
            self._rotate_key = False
            name = build_stream(conf.hls_key_file, self.vhost, self.app, self.stream).replace("[seq]", str(seq))
            path = f"{conf.hls_key_file_path or conf.hls_path}/{name}"
            key_url = conf.hls_key_url
            if key_url and key_url != conf.hls_path:
                uri = key_url + ("" if key_url.endswith("/") else "/") + name
            else:
                uri = _relative_to(path, self.m3u8_dir)
            key = self._key = HlsKey(seq=seq, key=bytes(self._random_bytes(16)), path=path, uri=uri)
            self._keys[seq] = key
            self._key_users[seq] = set()
            events.append(KeyCreated(key))
        self._key_users[key.seq].add(seq)
        return key

    def rotate_key(self) -> None:
        """Use a new key from the next segment on (e.g. the last one could not be written)."""
        self._rotate_key = True

    def _close(self, events: list, end_dts: int, next_pkt=None) -> None:
        """End the open segment at ``end_dts``; ``next_pkt`` is the frame
        that starts the next one when the stream goes on (a cut)."""
        seg = self._current
        self._current = None
        tail = self.format.end_segment(next_pkt)
        if tail:
            self._append(tail, seg)
        if self.fmp4:
            self._drain(events, seg)
        if self._cipher is not None:
            last = self._cipher.finalize()
            self._cipher = None
            self._chunks.append(last)
            seg.size += len(last)
        if self._chunks:
            events.append(SegmentData(seg, self._take()))
        duration = max(0, end_dts - seg.start_dts)
        if self.fmp4:
            # What the fragments hold: LL-HLS parts add up to the segment exactly.
            duration = int(round(seg.media * 1000))
        # A track onMetaData announced that sent nothing for a whole segment
        # is no longer assumed.
        for kind in list(self._declared):
            if kind not in self._seen:
                del self._declared[kind]
                self._tracks_changed = True
        if duration < MIN_SEGMENT_MS and not seg.parts:
            # Too short to play: drop it and reuse its number (SRS).  A
            # segment whose LL-HLS parts were published stays.
            self._seq -= 1
            self.dropped += 1
            self._discontinuity_next = self._discontinuity_next or seg.discontinuity
            self._release_segment(seg)
            events.append(SegmentDropped(seg))
            if self.segments:
                events.append(PlaylistUpdated(self.playlist()))
            return
        seg.duration_ms = duration
        if "[duration]" in seg.path or "[duration]" in seg.uri:
            seg.path = seg.path.replace("[duration]", str(duration))
            seg.uri = seg.uri.replace("[duration]", str(duration))
        self.segments.append(seg)
        self._stream_ms += duration
        self._target = max(self._target, _rounded_seconds(duration))
        events.append(SegmentClosed(seg))
        self._shrink()
        events.append(PlaylistUpdated(self.playlist()))
        expired = self._due()
        if expired:
            events.append(FilesExpired(expired))

    # ---- the window and cleanup ------------------------------------------------------------
    def _shrink(self) -> None:
        """SRS's window: keep the newest segments until their durations add
        up to more than hls_window (the one that crosses it stays)."""
        total = 0
        remove = 0
        for i in range(len(self.segments) - 1, -1, -1):
            total += self.segments[i].duration_ms
            if total > self.window_ms:
                remove = i
                break
        if remove <= 0:
            return
        gone, self.segments = self.segments[:remove], self.segments[remove:]
        playlist_ms = sum(s.duration_ms for s in self.segments)
        for seg in gone:
            if seg.discontinuity:
                self._discontinuity_sequence += 1
            if self.conf.hls_cleanup:
                # RFC 8216 6.2.2: a segment stays available for its own duration
                # plus the playlist's after it left the playlist.
                self._expired.append((self._stream_ms + seg.duration_ms + playlist_ms, seg))
            else:
                self._release_segment(seg, delete_key=False)

    def _due(self) -> list[str]:
        paths: list[str] = []
        keep = []
        for deadline, seg in self._expired:
            if deadline <= self._stream_ms:
                paths.append(seg.path)
                paths.extend(self._release_segment(seg))
            else:
                keep.append((deadline, seg))
        self._expired = keep
        return paths

    def _release_segment(self, seg: Segment, delete_key: bool = True) -> list[str]:
        """The segment's file is gone; returns its key's and init segment's
        files once no segment needs them."""
        paths = []
        init = seg.init
        if init is not None:
            users = self._init_users.get(init.seq)
            if users is not None:
                users.discard(seg.seq)
                if not users and init is not self._init:
                    self._inits.pop(init.seq, None)
                    self._init_users.pop(init.seq, None)
                    if delete_key and self.conf.hls_cleanup:
                        paths.append(init.path)
        key = seg.key
        if key is None:
            return paths
        users = self._key_users.get(key.seq)
        if users is not None:
            users.discard(seg.seq)
        if users or key is self._key:
            return paths
        self._forget_key(key)
        if delete_key and self.conf.hls_cleanup:
            paths.append(key.path)
        return paths

    def _forget_key(self, key: HlsKey) -> None:
        self._keys.pop(key.seq, None)
        self._key_users.pop(key.seq, None)

    def discard(self, seq: int) -> bool:
        """Take a closed segment out of the playlist (its file could not be
        written); what follows it starts with a discontinuity."""
        for i, seg in enumerate(self.segments):
            if seg.seq == seq:
                del self.segments[i]
                self._release_segment(seg, delete_key=False)
                if i < len(self.segments):
                    self.segments[i].discontinuity = True
                elif self._current is not None:
                    self._current.discontinuity = True
                else:
                    self._discontinuity_next = True
                return True
        return False

    def dispose(self) -> list[str]:
        """Every file this stream still has (segments, keys, the playlist),
        and forget them all: what ``hls_dispose`` removes."""
        paths = [s.path for s in self.segments]
        paths += [s.path for _, s in self._expired]
        if self._current is not None:
            paths.append(self._current.tmp_path)
            self._current = None
        paths += [k.path for k in self._keys.values()]
        paths += [i.path for i in self._inits.values()]
        paths.append(self.m3u8_path)
        self.segments = []
        self._expired = []
        self._keys.clear()
        self._key_users.clear()
        self._key = None
        self._inits.clear()
        self._init_users.clear()
        self._init = None
        self._discontinuity_next = False
        self._discontinuity_sequence = 0
        return paths

    def release(self) -> list[str]:
        """The files of the segments that left the playlist and wait for
        cleanup, and of their keys and init segments no segment needs any
        more: the recorder is about to forget this stream (its playlist
        and the segments it lists stay on disk)."""
        paths: list[str] = []
        for _, seg in self._expired:
            paths.append(seg.path)
            paths.extend(self._release_segment(seg))
        self._expired = []
        return paths

    def restore(self, read) -> int:
        """Take over the playlist a previous recorder of this stream left
        (a :class:`~.restore.ReadPlaylist`): its segments stay in the
        window, numbers go on after them and the next segment starts with a
        discontinuity.  Segments whose files cannot be told from their URIs
        (or lie outside ``hls_path``), or of the other format (TS / fMP4),
        are left out of the window, the numbers still go on.  Only on a
        segmenter that has made nothing yet; returns the segments taken."""
        if self.segments or self._expired or self._current is not None or self._seq or read is None:
            return 0
        taken: list[Segment] = []
        keys: dict[str, HlsKey] = {}
        inits: dict[str, InitSection] = {}
        seq = read.media_sequence
        for i, entry in enumerate(read.entries):
            path = self._restored_path(entry.uri)
            if path is None or (entry.map_uri is not None) != self.fmp4:
                taken = []
                break
            seg = Segment(seq=seq + i, path=path, uri=entry.uri, tmp_path=path + ".tmp", start_dts=0,
                          tracks=Tracks(None, None), discontinuity=entry.discontinuity,
                          duration_ms=entry.duration_ms)
            seg.key = self._restored_file(keys, entry.key_uri, self._restored_key_path,
                                          lambda p, u, n=seg.seq: HlsKey(seq=n, key=b"", path=p, uri=u))
            seg.init = self._restored_file(inits, entry.map_uri, self._restored_path,
                                           lambda p, u, n=seg.seq: InitSection(seq=n, path=p, uri=u, data=b""))
            if (seg.key is None) != (entry.key_uri is None) or (seg.init is None) != (entry.map_uri is None):
                taken = []
                break
            taken.append(seg)
        self._seq = read.next_sequence
        self._discontinuity_sequence = read.discontinuity_sequence
        if not taken:
            # The old window is not ours to keep: its discontinuities are counted as gone.
            self._discontinuity_sequence += sum(1 for e in read.entries if e.discontinuity)
        for seg in taken:
            if seg.key is not None:
                self._keys[seg.key.seq] = seg.key
                self._key_users.setdefault(seg.key.seq, set()).add(seg.seq)
            if seg.init is not None:
                self._inits[seg.init.seq] = seg.init
                self._init_users.setdefault(seg.init.seq, set()).add(seg.seq)
        self.segments = taken
        self._stream_ms = sum(s.duration_ms for s in taken)
        self._discontinuity_next = bool(read.entries)
        self._target = self._max_td_target()
        return len(taken)

    @staticmethod
    def _restored_file(found: dict, uri: str | None, locate, make):
        """The key or init segment at ``uri`` (one object per URI), made by
        ``make(path, uri)``; None without a URI or a file for it."""
        if uri is None:
            return None
        if uri not in found:
            path = locate(uri)
            found[uri] = make(path, uri) if path is not None else None
        return found[uri]

    def _restored_path(self, uri: str) -> str | None:
        """Where the file a playlist URI names is (the reverse of
        :meth:`_uri`), or None when that is not a file under hls_path."""
        prefix = self.conf.hls_entry_prefix
        rel = uri
        if prefix:
            if not prefix.endswith("/"):
                http_dir = _dirname(self.m3u8_url)
                prefix += "/" + (http_dir + "/" if http_dir and http_dir != "." else "")
            if not uri.startswith(prefix):
                return None
            rel = uri[len(prefix):]
        return _inside(posixpath.join(self.m3u8_dir, rel) if self.m3u8_dir else rel, self.conf.hls_path)

    def _restored_key_path(self, uri: str) -> str | None:
        conf = self.conf
        key_url = conf.hls_key_url
        root = conf.hls_key_file_path or conf.hls_path
        if key_url and key_url != conf.hls_path:
            base = key_url + ("" if key_url.endswith("/") else "/")
            if not uri.startswith(base):
                return None
            return _inside(f"{root}/{uri[len(base):]}", root)
        return _inside(posixpath.join(self.m3u8_dir, uri) if self.m3u8_dir else uri, root)

    # ---- the playlist ------------------------------------------------------------------------
    @property
    def target_duration(self) -> int:
        return self._target

    @property
    def current(self) -> Segment | None:
        return self._current

    @property
    def sequence(self) -> int:
        """The sequence number the next segment gets."""
        return self._seq

    @property
    def kept(self) -> list[Segment]:
        """Segments out of the playlist whose files are still kept."""
        return [s for _, s in self._expired]

    @property
    def next_part(self) -> int:
        """The number of the next LL-HLS part (the preload hint)."""
        return self._part_number

    @property
    def latest_part(self) -> Part | None:
        """The newest LL-HLS part, or None."""
        for seg in (self._current, *reversed(self.segments)):
            if seg is not None and seg.parts:
                return seg.parts[-1]
        return None

    def parts_needed_from(self) -> int:
        """The oldest LL-HLS part still to be served: parts are listed for
        three target durations and must stay available for three more after
        they leave the playlist (RFC 8216bis 6.2.2)."""
        limit = 2 * PART_WINDOW_TARGETS * self._target
        needed = self._part_number
        span = 0.0
        current = self._current
        for seg in (current, *reversed(self.segments)):
            if seg is None:
                continue
            span += sum(p.duration for p in seg.parts) if seg is current else seg.duration_ms / 1000.0
            if span > limit + 1e-9:
                break
            if seg.parts:
                needed = seg.parts[0].number
        return needed

    @property
    def inits(self) -> list[InitSection]:
        """The fMP4 init segments some segment still needs."""
        return list(self._inits.values())

    def playlist(self) -> str:
        """The media playlist (empty while there is no segment, as SRS).
        With LL-HLS on, this is the plain playlist (whole segments only)
        that is written to disk; :meth:`ll_playlist` has the parts."""
        return self._render(False)

    def ll_playlist(self) -> str:
        """The LL-HLS media playlist: the segments, the parts of those that
        start within three target durations of the end (and of the open
        segment), and a preload hint for the next part.  Empty while there
        is no whole segment."""
        return self._render(True)

    def _render(self, low_latency: bool) -> str:
        if not self.segments:
            return ""
        low_latency = low_latency and self.part_ms is not None
        lines = ["#EXTM3U", "#EXT-X-VERSION:%d" % (7 if self.fmp4 else 3)]
        if low_latency:
            part_target = self.part_ms / 1000.0
            lines.append("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=%.3f"
                         % (PART_WINDOW_TARGETS * part_target))
            lines.append("#EXT-X-PART-INF:PART-TARGET=%.3f" % part_target)
        lines.append(f"#EXT-X-MEDIA-SEQUENCE:{self.segments[0].seq}")
        if self._discontinuity_sequence:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{self._discontinuity_sequence}")
        lines.append(f"#EXT-X-TARGETDURATION:{self._target}")
        segments = list(self.segments)
        current = self._current
        if low_latency and current is not None and current.parts:
            segments.append(current)
        parts_from = len(segments)
        if low_latency:
            # Parts of the segments that start within 3 target durations of the end.
            end = sum(s.duration_ms for s in self.segments) / 1000.0
            if segments[-1] is current:
                end += sum(p.duration for p in current.parts)
            limit = PART_WINDOW_TARGETS * self._target
            start = end
            for i in range(len(segments) - 1, -1, -1):
                seg = segments[i]
                start -= seg.duration_ms / 1000.0 if seg is not current else sum(p.duration for p in seg.parts)
                if end - start > limit + 1e-9:
                    break
                parts_from = i
        encrypted = False
        init = None
        for i, seg in enumerate(segments):
            if seg.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            if seg.init is not None and seg.init is not init:
                if encrypted:
                    # The init segment is clear: no key applies to it.
                    lines.append("#EXT-X-KEY:METHOD=NONE")
                    encrypted = False
                init = seg.init
                lines.append(f'#EXT-X-MAP:URI="{init.uri}"')
            if seg.key is not None:
                # One tag per segment: its IV is its own sequence number.
                lines.append(f'#EXT-X-KEY:METHOD=AES-128,URI="{seg.key.uri}",IV=0x{seg.seq:032x}')
                encrypted = True
            elif encrypted:
                lines.append("#EXT-X-KEY:METHOD=NONE")
                encrypted = False
            if i >= parts_from:
                for part in seg.parts:
                    lines.append('#EXT-X-PART:DURATION=%.5f,URI="%s"%s' % (
                        part.duration, part.uri, ",INDEPENDENT=YES" if part.independent else ""))
            if seg is current:
                break
            lines.append("#EXTINF:%.3f, no desc" % (seg.duration_ms / 1000.0))
            lines.append(seg.uri)
        if low_latency:
            hint = self.part_path(self._part_number)
            lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{self._uri(hint)}"')
        return "\n".join(lines) + "\n"
