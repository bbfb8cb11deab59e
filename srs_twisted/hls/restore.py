"""Reading back a media playlist this server wrote, so a new recorder of the
stream can take over where the last one stopped (sans-I/O: text in, data
out).

A recorder whose stream has been gone for a while is released (see
:mod:`srs_twisted.hls.writer`); with ``hls_dispose 0`` its files stay on
disk.  When the stream is published again, or after a restart, the new
recorder reads the playlist back: its segments stay in the window (and
are cleaned up when they leave it), sequence numbers go on after them and
the next segment starts with ``EXT-X-DISCONTINUITY``.  SRS starts again at
0 there (its ``TODO: support load exists m3u8``), which overwrites the
files a cached playlist still names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["PlaylistEntry", "ReadPlaylist", "read_playlist"]

_URI = re.compile(r'URI="([^"]*)"')
_METHOD = re.compile(r"METHOD=([A-Z0-9-]+)")


@dataclass
class PlaylistEntry:
    uri: str
    duration_ms: int
    discontinuity: bool = False
    key_uri: str | None = None  # EXT-X-KEY METHOD=AES-128
    map_uri: str | None = None  # EXT-X-MAP


@dataclass
class ReadPlaylist:
    media_sequence: int
    discontinuity_sequence: int = 0
    entries: list[PlaylistEntry] = field(default_factory=list)

    @property
    def next_sequence(self) -> int:
        return self.media_sequence + len(self.entries)


def read_playlist(text: str) -> ReadPlaylist | None:
    """The segments of a media playlist, or None when it is not one (no
    ``#EXTM3U``, no ``EXT-X-MEDIA-SEQUENCE``, a URI without ``#EXTINF``, a
    number that does not parse)."""
    lines = [line.strip() for line in text.splitlines()]
    if not lines or lines[0] != "#EXTM3U":
        return None
    media_sequence = None
    discontinuity_sequence = 0
    entries: list[PlaylistEntry] = []
    duration = None
    discontinuity = False
    key_uri = map_uri = None
    try:
        for line in lines[1:]:
            if not line:
                continue
            if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
                media_sequence = int(line.partition(":")[2])
            elif line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE:"):
                discontinuity_sequence = int(line.partition(":")[2])
            elif line == "#EXT-X-DISCONTINUITY":
                discontinuity = True
            elif line.startswith("#EXT-X-KEY:"):
                method = _METHOD.search(line)
                uri = _URI.search(line)
                key_uri = uri.group(1) if uri and method and method.group(1) != "NONE" else None
            elif line.startswith("#EXT-X-MAP:"):
                uri = _URI.search(line)
                map_uri = uri.group(1) if uri else None
            elif line.startswith("#EXTINF:"):
                duration = int(round(float(line[len("#EXTINF:"):].partition(",")[0]) * 1000))
            elif line.startswith("#"):
                continue
            else:
                if duration is None:
                    return None
                entries.append(PlaylistEntry(line, duration, discontinuity, key_uri, map_uri))
                duration = None
                discontinuity = False
    except (ValueError, OverflowError):  # OverflowError: an infinite #EXTINF
        return None
    if media_sequence is None or media_sequence < 0:
        return None
    return ReadPlaylist(media_sequence, discontinuity_sequence, entries)
