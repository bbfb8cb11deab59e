"""DVR plans, sans-I/O: which streams record, where each file goes and when a
file ends.

A :class:`DvrPlan` is fed every packet of one publish and answers with
:class:`Open`, :class:`Write` and :class:`Close` events; the recorder turns
them into files.  Nothing here reads a clock or touches a file: the wall
clock time that names a file is passed to :func:`render_path`.

The rules follow SRS's ``srs_app_dvr.cpp``:

- ``dvr_apply all`` (the default) records every stream, otherwise only the
  streams named ``app/stream`` in the list (exact match, nothing else);
- the ``session`` plan writes one file per publish; the ``segment`` plan
  ends a file once it holds ``dvr_duration`` seconds, at the next video
  keyframe when ``dvr_wait_keyframe`` is on;
- each file gets its own ``time_jitter`` corrector (``full``, ``zero`` or
  ``off``), so with ``full`` (the default) every file starts near 0;
- the path takes ``[vhost] [app] [stream]``, the local (or UTC) time of the
  file's start ``[2006] [01] [02] [15] [04] [05] [999]``, the Unix time in ms
  ``[timestamp]``, and ``[duration]`` (the file's length in ms, known when
  it is closed); a path not ending in ``.flv`` or ``.mp4`` is a directory
  that gets ``/[stream].[timestamp].flv``.

Where this differs from SRS (see docs/dvr.md): a file opens at the first
media packet, not at publish time, so a publish without media leaves no
empty file; every file starts with the metadata and sequence headers
stamped at its first packet's time; a segment ends at the first keyframe
that brings it to ``dvr_duration`` (SRS: the first keyframe after it got
there, so 1 s GOPs and 3 s segments make 4 s files in SRS); any video
codec's keyframe ends a segment (SRS looks at H.264 keyframes only); an audio-only stream's segments
end on any audio packet; negative timestamps after correction become 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..hls.segmenter import build_stream, build_time
from ..live.jitter import MAX_JITTER_MS, TimeJitter
from ..live.packet import MediaPacket

__all__ = [
    "DEFAULT_PATH", "DvrSettings", "DvrPlan", "Open", "Write", "Close",
    "applies", "container_of", "full_template", "render_path", "finish_path",
]

DEFAULT_PATH = "./objs/nginx/html/[app]/[stream].[timestamp].flv"
FLV = "flv"
MP4 = "mp4"
SESSION = "session"
SEGMENT = "segment"


# ---------------------------------------------------------------------------------------------
# Which streams, which files


def applies(dvr_apply, app: str, stream: str) -> bool:
    """SRS's ``srs_config_apply_filter``: an empty list or exactly ``all``
    records everything; otherwise ``app/stream`` must be one of the names."""
    names = list(dvr_apply or ())
    if not names:
        return True
    if len(names) == 1 and names[0] == "all":
        return True
    return f"{app}/{stream}" in names


def full_template(template: str) -> str:
    """A ``dvr_path`` that does not name an .flv/.mp4 file is a directory."""
    if template.endswith((".flv", ".mp4")):
        return template
    return template + "/[stream].[timestamp].flv"


def container_of(template: str) -> str:
    """``mp4`` for a path ending in .mp4, otherwise ``flv`` (as SRS)."""
    return MP4 if full_template(template).endswith(".mp4") else FLV


def render_path(template: str, vhost: str, app: str, stream: str, now: float, utc: bool = False) -> str:
    """The path of a file started at ``now`` (Unix seconds).  ``[duration]``
    stays in place until :func:`finish_path`."""
    # SRS's srs_path_build_stream then srs_path_build_timestamp, as HLS names its files.
    return build_time(build_stream(full_template(template), vhost, app, stream), now, utc)


def finish_path(path: str, duration_ms: int) -> str:
    """The final name of a closed file: ``[duration]`` becomes its length in ms."""
    return path.replace("[duration]", str(int(duration_ms)))


# ---------------------------------------------------------------------------------------------
# Settings and events


@dataclass(frozen=True)
class DvrSettings:
    """What one recording runs with (a vhost's ``dvr`` section)."""

    plan: str = SESSION
    path: str = DEFAULT_PATH
    duration: float = 30.0  # seconds, segment plan
    wait_keyframe: bool = True
    time_jitter: str = "full"
    apply: tuple = ("all",)

    @classmethod
    def from_config(cls, dvr) -> "DvrSettings":
        return cls(
            plan=SEGMENT if dvr.dvr_plan == SEGMENT else SESSION,
            path=dvr.dvr_path,
            duration=float(dvr.dvr_duration),
            wait_keyframe=bool(dvr.dvr_wait_keyframe),
            time_jitter=dvr.time_jitter if dvr.time_jitter in TimeJitter.MODES else "off",
            apply=tuple(dvr.dvr_apply),
        )

    @property
    def container(self) -> str:
        return container_of(self.path)


@dataclass
class Open:
    """Start a new file (its name is rendered now)."""

    index: int  # 0 for the first file of the publish


@dataclass
class Write:
    """Append one packet, already time-corrected.  ``header`` marks the
    metadata and sequence headers that start every file."""

    packet: MediaPacket
    header: bool = False


@dataclass
class Close:
    """End the current file; ``duration_ms`` is its media length."""

    duration_ms: int
    reason: str = "segment"  # 'segment', 'unpublish' or 'codec'


# ---------------------------------------------------------------------------------------------
# The plan


@dataclass
class _File:
    index: int
    jitter: TimeJitter
    start: int | None = None  # smallest corrected dts of audio/video
    last: int = 0  # corrected dts of the last audio/video packet
    last_raw: int = 0  # ... and its dts before correction
    has_keyframe: bool = False
    has_metadata: bool = False
    media: int = 0
    headers: dict = field(default_factory=dict)  # kind -> payload written for the sequence headers

    @property
    def duration_ms(self) -> int:
        return 0 if self.start is None else max(0, self.last - self.start)


class DvrPlan:
    """The session or segment plan of one publish.

    ``feed(packet)`` and ``finish()`` return the events to act on, in order.
    ``reopen_on_new_header`` ends the file when a sequence header changes
    mid-file (MP4 keeps one codec configuration per file; FLV does not
    need it).
    """

    def __init__(self, settings: DvrSettings, reopen_on_new_header: bool = False) -> None:
        self.settings = settings
        self.reopen_on_new_header = reopen_on_new_header
        self.segment_ms = int(settings.duration * 1000) if settings.plan == SEGMENT else 0
        self.metadata: MediaPacket | None = None
        self.video_sh: MediaPacket | None = None
        self.audio_sh: MediaPacket | None = None
        self.seen_video = False
        self.files = 0
        self._file: _File | None = None
        self._finished = False

    @property
    def recording(self) -> bool:
        return self._file is not None

    @property
    def duration_ms(self) -> int:
        """The media length of the file being written (0 when none)."""
        return self._file.duration_ms if self._file is not None else 0

    @property
    def has_video(self) -> bool:
        return self.video_sh is not None or self.seen_video

    # ---- input ----------------------------------------------------------------------------
    def feed(self, pkt: MediaPacket) -> list:
        if self._finished:
            return []
        if pkt.is_data:
            return self._on_metadata(pkt)
        if pkt.sequence_header:
            return self._on_header(pkt)
        if not (pkt.is_audio or pkt.is_video):
            return []
        if pkt.is_video:
            self.seen_video = True
        events: list = []
        f = self._file
        if f is not None and self._should_reap(f, pkt):
            events.append(self._close("segment"))
            f = None
        if f is None:
            if not self._can_start(pkt):
                return events
            f = self._open(pkt, events)
        self._write_media(f, pkt, events)
        return events

    def finish(self) -> list:
        """The publish ended: close the file being written."""
        self._finished = True
        if self._file is None:
            return []
        return [self._close("unpublish")]

    # ---- decisions ------------------------------------------------------------------------
    def _is_cut_point(self, pkt: MediaPacket) -> bool:
        if pkt.is_video:
            return pkt.keyframe
        # A stream without video has no keyframes: any audio frame will do.
        return not self.has_video

    def _should_reap(self, f: _File, pkt: MediaPacket) -> bool:
        if self.segment_ms <= 0 or f.media == 0:
            return False
        # The length the file would have with this packet (SRS looks at the
        # length before it, so a keyframe exactly dvr_duration in waits for
        # the next one).  A jump in time counts as nothing, as in the jitter.
        step = pkt.dts - f.last_raw
        if not -MAX_JITTER_MS <= step <= MAX_JITTER_MS:
            step = 0
        if f.duration_ms + step < self.segment_ms:
            return False
        return not self.settings.wait_keyframe or self._is_cut_point(pkt)

    def _can_start(self, pkt: MediaPacket) -> bool:
        """A file starts on a keyframe when video is expected and
        ``dvr_wait_keyframe`` is on, else on any media packet."""
        if not self.settings.wait_keyframe or not self.has_video:
            return True
        return pkt.is_video and pkt.keyframe

    # ---- events ---------------------------------------------------------------------------
    def _open(self, pkt: MediaPacket, events: list) -> _File:
        f = self._file = _File(self.files, TimeJitter(self.settings.time_jitter))
        self.files += 1
        events.append(Open(f.index))
        # The headers that let this file play alone, stamped at its first
        # packet's time so every jitter mode starts the file there.
        for header in (self.metadata, self.video_sh, self.audio_sh):
            if header is None:
                continue
            out = header.retimed(pkt.dts) if header.dts != pkt.dts else header
            out = self._correct(f, out)
            if header.is_data:
                f.has_metadata = True
            else:
                f.headers[header.kind] = header.payload
            events.append(Write(out, True))
        return f

    def _close(self, reason: str) -> Close:
        f = self._file
        self._file = None
        return Close(f.duration_ms, reason)

    def _correct(self, f: _File, pkt: MediaPacket) -> MediaPacket:
        dts = f.jitter.correct(pkt)
        if dts < 0:
            dts = 0
        return pkt if dts == pkt.dts else pkt.retimed(dts)

    def _write_media(self, f: _File, pkt: MediaPacket, events: list) -> None:
        if pkt.is_video and pkt.keyframe:
            f.has_keyframe = True
        elif pkt.is_video and self.settings.wait_keyframe and not f.has_keyframe:
            return  # SRS: no video before the file's first keyframe
        out = self._correct(f, pkt)
        if f.start is None or out.dts < f.start:
            f.start = out.dts
        f.last = out.dts
        f.last_raw = pkt.dts
        f.media += 1
        events.append(Write(out))

    def _on_metadata(self, pkt: MediaPacket) -> list:
        self.metadata = pkt
        f = self._file
        if f is None or f.has_metadata:
            return []  # SRS writes one onMetaData per file
        f.has_metadata = True
        return [Write(self._correct(f, pkt), True)]

    def _on_header(self, pkt: MediaPacket) -> list:
        if pkt.is_video:
            self.video_sh = pkt
            self.seen_video = True
        elif pkt.is_audio:
            self.audio_sh = pkt
        else:
            return []
        f = self._file
        if f is None:
            return []
        written = f.headers.get(pkt.kind)
        if written == pkt.payload:
            return []  # a repeated header adds nothing
        if self.reopen_on_new_header and f.media:
            # A new (or late) codec configuration starts a new file; it opens
            # at the next packet that may start one, with the new headers.
            return [self._close("codec")]
        f.headers[pkt.kind] = pkt.payload
        return [Write(self._correct(f, pkt), True)]
