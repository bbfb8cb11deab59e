"""What a restart reads back from disk after a crash: DVR leftovers (an FLV
or fragmented MP4 cut anywhere) repaired in place, HLS playlists and DASH
MPDs read back so a new recorder continues them.  A killed server leaves
any prefix of these files, and a shared directory may hold anything."""

from __future__ import annotations

import os

from srs_twisted.codec import flv
from srs_twisted.dash.restore import read_mpd
from srs_twisted.dvr.recover import repair_flv, repair_mp4
from srs_twisted.hls.restore import read_playlist

from ..base import target


@target("dvr_repair", max_len=65536)
def dvr_repair(data: bytes):
    """Byte 0 picks FLV or MP4; the rest is the leftover ``.tmp`` file."""
    if not data:
        return None
    body = data[1:]
    fd = os.memfd_create("dvr-leftover")
    with os.fdopen(fd, "w+b") as f:
        f.write(body)
        f.flush()
        f.seek(0)
        kept, duration = (repair_mp4 if data[0] & 1 else repair_flv)(f)
        assert 0 <= kept <= len(body) and duration >= 0, (kept, duration)
        f.seek(0)
        repaired = f.read()
    if kept and not data[0] & 1:
        # What is kept is whole: an FLV reader reads it to its end without an error.
        assert len(repaired) == kept, (len(repaired), kept)
        flv.FlvReader().feed(repaired)
    return kept


@target("hls_playlist", max_len=16384)
def hls_playlist(data: bytes):
    found = read_playlist(data.decode("utf-8", "replace"))
    if found is not None:
        found.next_sequence
    return found


@target("dash_mpd", max_len=16384)
def dash_mpd(data: bytes):
    found = read_mpd(data, "seed/")  # the seeds are stream "seed"
    if found is not None:
        for rep in found.representations.values():
            rep.last_number
    return found
