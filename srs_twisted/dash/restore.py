"""Reading back an MPD this server wrote, so a new recorder of the stream
can take over where the last one stopped (sans-I/O: bytes in, data out).

With ``dash_dispose 0`` a stream's files stay on disk for ever, and its
recorder is released once the stream has been gone a while (see
:mod:`srs_twisted.dash.writer`).  When the stream is published again, or
after a restart, the new recorder reads the MPD back: the
``availabilityStartTime`` (the stream keeps one timeline), and per
representation the listed segments (``startNumber`` and the
``SegmentTimeline``), so the old segments stay in the window, are cleaned
up as they leave it, and numbers go on after them: a segment name is never
reused while a player may hold the old MPD.  SRS starts again there (new
windows and ``availabilityStartTime``, the old files forgotten).
"""

from __future__ import annotations

import calendar
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from .mpd import INIT_TEMPLATE, MEDIA_TEMPLATE

__all__ = ["ReadRepresentation", "ReadMpd", "read_mpd", "MAX_MPD_BYTES"]

# An MPD longer than this is not read back (it is not one of ours).
MAX_MPD_BYTES = 1024 * 1024
_NS = "{urn:mpeg:dash:schema:mpd:2011}"
_DATETIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z\Z")
REP_IDS = ("video", "audio")


@dataclass
class ReadRepresentation:
    rep_id: str  # 'video' or 'audio'
    timescale: int
    start_number: int  # the first listed segment's number
    entries: list[tuple[int, int]] = field(default_factory=list)  # (t, d) per segment, in timescale units
    ours: bool = True  # its templates are this stream's: the segments are files we may take

    @property
    def last_number(self) -> int:
        """The number of the last listed segment (start - 1 when none is)."""
        return self.start_number + len(self.entries) - 1


@dataclass
class ReadMpd:
    availability_start: float  # epoch seconds
    representations: dict[str, ReadRepresentation] = field(default_factory=dict)


def parse_datetime(text: str) -> float | None:
    """``2023-11-14T22:13:20.250Z`` as epoch seconds (UTC only, as we write it)."""
    m = _DATETIME.match(text or "")
    if m is None:
        return None
    y, mo, d, h, mi, s, frac = m.groups()
    try:
        whole = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    return whole + (int(frac) / 10 ** len(frac) if frac else 0.0)


def _int(value, minimum: int = 0) -> int | None:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return n if n >= minimum else None


def read_mpd(data: bytes, prefix: str) -> ReadMpd | None:
    """The MPD's timeline and listed segments, or None when ``data`` is not
    a dynamic MPD of the shape :func:`~.mpd.build_mpd` writes.  ``prefix``
    is the stream's segment directory relative to the MPD (``"s/"``): a
    representation whose templates are not ``prefix`` + ours keeps its
    numbers but not its segments."""
    if len(data) > MAX_MPD_BYTES:
        return None
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, LookupError, ValueError):  # an XML declaration naming an unknown or multi-byte encoding
        return None
    if root.tag != _NS + "MPD" or root.get("type") != "dynamic":
        return None
    start = parse_datetime(root.get("availabilityStartTime", ""))
    if start is None:
        return None
    read = ReadMpd(start)
    for rep in root.iterfind(f"{_NS}Period/{_NS}AdaptationSet/{_NS}Representation"):
        rep_id = rep.get("id")
        template = rep.find(_NS + "SegmentTemplate")
        if rep_id not in REP_IDS or rep_id in read.representations or template is None:
            continue
        timescale = _int(template.get("timescale"), 1)
        number = _int(template.get("startNumber"), 0)
        if timescale is None or number is None:
            continue
        entries = []
        for s in template.iterfind(f"{_NS}SegmentTimeline/{_NS}S"):
            t, d = _int(s.get("t")), _int(s.get("d"), 1)
            if t is None or d is None or s.get("r") is not None:
                entries = None
                break
            entries.append((t, d))
        if entries is None:
            continue
        ours = template.get("media") == prefix + MEDIA_TEMPLATE and template.get("initialization") == (
            prefix + INIT_TEMPLATE)
        read.representations[rep_id] = ReadRepresentation(rep_id, timescale, number, entries, ours)
    return read
