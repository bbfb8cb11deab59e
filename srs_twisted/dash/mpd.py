"""MPEG-DASH live manifests, sans-I/O: file names, segment windows and the MPD text.

A stream's files, as SRS lays them out (``dash_mpd_file [app]/[stream].mpd``)::

    [dash_path]/[app]/[stream].mpd
    [dash_path]/[app]/[stream]/video-init.mp4     ftyp + moov of the video track
    [dash_path]/[app]/[stream]/video-<n>.m4s      styp + moof + mdat, n = 1, 2, 3...
    [dash_path]/[app]/[stream]/audio-init.mp4
    [dash_path]/[app]/[stream]/audio-<n>.m4s

Video and audio are separate representations (one track per file), each
with its own ``SegmentTemplate`` (``$Number$`` addressing, ``startNumber``
the first listed segment) and ``SegmentTimeline`` in its track's timescale
(90000 for video, the sample rate for audio), ``S@t`` being the segment's
``tfdt``.  This is SRS's addressing; FFmpeg 5.1 reads it more reliably in
real time than ``$Time$`` (docs/dash.md), dash.js reads both.

No Twisted, no clock (times are passed in), no files.
"""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass, field
from urllib.parse import quote
from html import escape

from ..hls.segmenter import build_stream

__all__ = [
    "INIT_TEMPLATE",
    "MEDIA_TEMPLATE",
    "DashLayout",
    "Segment",
    "TrackWindow",
    "Representation",
    "MpdTimes",
    "build_mpd",
    "iso_duration",
    "iso_datetime",
]

INIT_TEMPLATE = "$RepresentationID$-init.mp4"
MEDIA_TEMPLATE = "$RepresentationID$-$Number$.m4s"
PROFILE = "urn:mpeg:dash:profile:isoff-live:2011"
CHANNEL_SCHEME = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
UTC_DIRECT = "urn:mpeg:dash:utc:direct:2014"


# --------------------------------------------------------------------------------------------
# Names


@dataclass(frozen=True)
class DashLayout:
    """Where one stream's files go.

    ``mpd_path`` is the MPD file, ``home`` the directory of its init and
    media segments (``[stream]`` next to the MPD, as SRS) and ``prefix`` the
    URL of ``home`` relative to the MPD (``"livestream/"``).
    """

    mpd_path: str
    home: str
    prefix: str

    @classmethod
    def build(cls, dash_path: str, mpd_file: str, vhost: str, app: str, stream: str) -> "DashLayout":
        mpd_rel = build_stream(mpd_file, vhost, app, stream).lstrip("/")
        directory = posixpath.dirname(mpd_rel)
        home_rel = posixpath.join(directory, stream) if directory else stream
        root = dash_path.rstrip("/") or "/"
        return cls(
            mpd_path=posixpath.join(root, mpd_rel),
            home=posixpath.join(root, home_rel),
            prefix=quote(stream, safe="") + "/",
        )

    def init_path(self, rep_id: str) -> str:
        return posixpath.join(self.home, f"{rep_id}-init.mp4")

    def segment_path(self, rep_id: str, number: int) -> str:
        return posixpath.join(self.home, f"{rep_id}-{number}.m4s")


# --------------------------------------------------------------------------------------------
# Windows


@dataclass
class Segment:
    """One media segment file of a representation."""

    number: int  # $Number$: consecutive within an epoch, never reused by a recorder
    start: int  # its tfdt, in the track's timescale: S@t
    duration: int  # in the track's timescale
    timescale: int
    size: int  # bytes
    path: str
    epoch: int = 0  # segments of an earlier epoch were written for another init segment

    @property
    def end(self) -> int:
        return self.start + self.duration

    @property
    def seconds(self) -> float:
        return self.duration / self.timescale


class TrackWindow:
    """The segments of one representation, oldest first.

    The newest ``window_size`` of the current epoch are listed in the MPD.
    A file is kept while the segments after it last no more than the keep
    window (SRS keeps ``2 * dash_window_size * dash_fragment`` seconds, so a
    player holding an older MPD still finds its segments), and always while
    it is listed.

    A new epoch starts when the track's decoder configuration changes (a new
    init segment): the older segments leave the MPD at once, their files
    expire by the same rule.
    """

    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self.epoch = 0

    def append(self, segment: Segment) -> None:
        segment.epoch = self.epoch
        self.segments.append(segment)

    def new_epoch(self) -> None:
        self.epoch += 1

    def end_ms(self) -> int | None:
        """Where the newest segment ends, in milliseconds rounded up; None
        before the first segment."""
        if not self.segments:
            return None
        last = self.segments[-1]
        return -((-last.end * 1000) // last.timescale)

    def listed(self, window_size: int) -> list[Segment]:
        """What the MPD lists: the newest ``window_size`` segments of the
        current epoch (none when ``window_size`` is 0: a track out of the MPD)."""
        if window_size <= 0:
            return []
        return [s for s in self.segments[-window_size:] if s.epoch == self.epoch]

    def expire(self, keep_seconds: float, window_size: int) -> list[Segment]:
        """Forget the segments out of the keep window and return them,
        oldest first, for their files to be removed."""
        listed_from = len(self.segments) - len(self.listed(window_size))
        newer = 0.0
        cut = 0
        for i in range(len(self.segments) - 1, -1, -1):
            if i < listed_from and newer > keep_seconds:
                cut = i + 1
                break
            newer += self.segments[i].seconds
        gone = self.segments[:cut]
        del self.segments[:cut]
        return gone

    def drop_all(self) -> list[Segment]:
        """Forget every segment (dispose) and return them."""
        gone, self.segments = self.segments, []
        return gone


# --------------------------------------------------------------------------------------------
# The MPD


@dataclass
class Representation:
    """One AdaptationSet with one Representation: a track and its listed segments."""

    rep_id: str  # 'video' or 'audio': $RepresentationID$
    track: object  # srs_twisted.codec.fmp4.Track
    segments: list[Segment] = field(default_factory=list)

    @property
    def bandwidth(self) -> int:
        """Bits per second over the listed segments (at least 1)."""
        seconds = sum(s.seconds for s in self.segments)
        if seconds <= 0:
            return 1
        return max(1, round(sum(s.size for s in self.segments) * 8 / seconds))


@dataclass(frozen=True)
class MpdTimes:
    """The MPD's clock and buffer attributes, in seconds (epoch seconds for times)."""

    availability_start: float
    publish: float
    update_period: float
    timeshift: float
    min_buffer: float
    presentation_delay: float


def iso_duration(seconds: float) -> str:
    """An xs:duration in seconds with milliseconds: ``PT2.000S``."""
    return "PT%.3fS" % max(0.0, seconds)


def iso_datetime(epoch_seconds: float) -> str:
    """UTC with milliseconds: ``2024-01-31T12:00:00.250Z``."""
    ms = int(round(epoch_seconds * 1000))
    tm = time.gmtime(ms // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + ".%03dZ" % (ms % 1000)


def _attrs(**values) -> str:
    return "".join(f' {name}="{escape(str(value))}"' for name, value in values.items() if value is not None)


def build_mpd(representations, times: MpdTimes, prefix: str) -> str:
    """The dynamic MPD of a live stream: one Period, one AdaptationSet per
    representation that has segments (video first), each with a
    SegmentTemplate (``prefix`` + ``$RepresentationID$-init.mp4`` and
    ``$RepresentationID$-$Number$.m4s``, ``startNumber`` the first listed
    segment's) and its SegmentTimeline."""
    reps = [r for r in representations if r.segments]
    reps.sort(key=lambda r: 0 if r.track.kind == "video" else 1)
    longest = max((sum(s.seconds for s in r.segments) for r in reps), default=0.0)
    max_segment = max((s.seconds for r in reps for s in r.segments), default=0.0)
    timeshift = times.timeshift if times.timeshift > 0 else longest
    lines = ['<?xml version="1.0" encoding="utf-8"?>']
    lines.append(
        "<MPD"
        + _attrs(
            xmlns="urn:mpeg:dash:schema:mpd:2011",
            profiles=PROFILE,
            type="dynamic",
            availabilityStartTime=iso_datetime(times.availability_start),
            publishTime=iso_datetime(times.publish),
            minimumUpdatePeriod=iso_duration(times.update_period),
            timeShiftBufferDepth=iso_duration(min(timeshift, longest)),
            maxSegmentDuration=iso_duration(max_segment),
            minBufferTime=iso_duration(times.min_buffer),
            suggestedPresentationDelay=iso_duration(times.presentation_delay),
        )
        + ">"
    )
    lines.append('  <Period id="0" start="PT0S">')
    for rep in reps:
        lines.extend(_adaptation_set(rep, prefix))
    lines.append("  </Period>")
    lines.append(f"  <UTCTiming{_attrs(schemeIdUri=UTC_DIRECT, value=iso_datetime(times.publish))}/>")
    lines.append("</MPD>")
    return "\n".join(lines) + "\n"


def _adaptation_set(rep: Representation, prefix: str) -> list[str]:
    track = rep.track
    video = track.kind == "video"
    out = [
        "    <AdaptationSet"
        + _attrs(
            id="0" if video else "1",
            contentType=track.kind,
            mimeType="video/mp4" if video else "audio/mp4",
            segmentAlignment="true",
            startWithSAP="1",
        )
        + ">"
    ]
    rep_attrs = {"id": rep.rep_id, "bandwidth": rep.bandwidth, "codecs": track.codec_string}
    if video:
        rep_attrs.update(width=track.width, height=track.height)
    else:
        rep_attrs.update(audioSamplingRate=track.sample_rate)
    out.append("      <Representation" + _attrs(**rep_attrs) + ">")
    if not video:
        channels = _attrs(schemeIdUri=CHANNEL_SCHEME, value=track.channels or 2)
        out.append(f"        <AudioChannelConfiguration{channels}/>")
    out.append(
        "        <SegmentTemplate"
        + _attrs(timescale=track.timescale, initialization=prefix + INIT_TEMPLATE, media=prefix + MEDIA_TEMPLATE,
                 startNumber=rep.segments[0].number)
        + ">"
    )
    out.append("          <SegmentTimeline>")
    for segment in rep.segments:
        out.append(f'            <S t="{segment.start}" d="{segment.duration}"/>')
    out.append("          </SegmentTimeline>")
    out.append("        </SegmentTemplate>")
    out.append("      </Representation>")
    out.append("    </AdaptationSet>")
    return out

