"""fMP4 segments for HLS (``hls_use_fmp4``) and LL-HLS parts.

:class:`Fmp4SegmentFormat` is the segmenter's output format when segments
are fragmented MP4: an init segment (``EXT-X-MAP``) built from the
stream's sequence headers, then ``moof``/``mdat`` fragments made by
:class:`srs_twisted.codec.fmp4.Fragmenter`.  Sans-I/O like the segmenter.

* Without parts (``part_ms=None``) a segment is one fragment, cut when the
  segmenter ends the segment.
* With parts (LL-HLS) a fragment is cut whenever the next frame of the main
  track (video, else audio) would make it longer than ``part_ms``, so every
  part lasts at most ``part_ms``; the segment is its parts one after the
  other (several ``moof``/``mdat`` pairs).

The fragmenter lives on from segment to segment while the configuration
does not change, so a cut at a keyframe gives the previous segment exactly
the frames before that keyframe (the segmenter hands the keyframe to
:meth:`end_segment`).  A natural end (unpublish, timestamp jump, new
configuration) flushes it; the next segment starts a new one.

A track that onMetaData announced but whose configuration has not come yet
(an AAC header after the first video frame, MP3 whose track is read from
its first frame) holds the init segment back: packets are buffered until
every track is known, for at most ``WAIT_TRACKS_MS`` of media.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..codec import fmp4
from ..codec.errors import CodecError

__all__ = ["Fmp4SegmentFormat", "Fragment", "WAIT_TRACKS_MS"]

# How much media is buffered while a track's configuration is missing.
WAIT_TRACKS_MS = 1000

_VIDEO = 9
_AUDIO = 8


@dataclass
class Fragment:
    """One ``moof``/``mdat`` pair: a whole segment, or an LL-HLS part."""

    data: bytes
    start: float  # seconds, main track
    duration: float  # seconds, main track
    independent: bool  # starts with a keyframe (always for audio-only)


class Fmp4SegmentFormat:
    """The segmenter's fMP4 strategy (see the module docs).

    The segmenter calls ``begin_segment(tracks, headers)``,
    ``add_packet(pkt)`` and ``end_segment(next_pkt)`` as for MPEG-TS; the
    fMP4 bytes come from :meth:`take_fragments` and a new init segment, once
    per configuration, from :meth:`take_init`.
    """

    extension = "m4s"
    fragmented = True

    def __init__(self, part_ms: int | None = None) -> None:
        self.part_ms = part_ms
        self.errors = 0
        self.last_error = ""
        self._wanted = None  # Tracks of the segment
        self._headers: dict[int, object] = {}
        self._mp3_frame = None
        self._fragmenter: fmp4.Fragmenter | None = None
        self._built: set[str] = set()  # the fragmenter's track kinds
        self._main_video = False
        self._buffer: list = []
        self._preadded = None
        self._init: bytes | None = None  # the init segment of the fragmenter
        self._new_init: bytes | None = None  # not taken yet
        self._fragments: list[Fragment] = []
        self._sequence = 1  # mfhd sequence numbers
        self._last_main: int | None = None
        self._main_delta = 0

    # ---- the segmenter's interface ------------------------------------------------------
    def begin_segment(self, tracks, headers: list) -> bytes:
        new_headers = {pkt.kind: pkt for pkt in headers}
        if (self._fragmenter is not None and tracks == self._wanted
                and _same_headers(new_headers, self._headers) and not self._can_complete()):
            return b""  # the same configuration: the timeline goes on
        self._wanted = tracks
        self._headers = new_headers
        if tracks.audio != "mp3":
            self._mp3_frame = None
        self._fragmenter = None
        self._buffer = []
        self._preadded = None
        self._last_main = None
        self._try_build(force=False)
        return b""

    def add_packet(self, pkt) -> bytes:
        if pkt is self._preadded:
            self._preadded = None
            return b""
        if pkt.sequence_header:
            # The first configuration of a track announced by onMetaData.
            self._headers[pkt.kind] = pkt
            if self._fragmenter is None:
                self._try_build(force=False)
            return b""
        if pkt.kind == _AUDIO and pkt.codec == "mp3" and self._mp3_frame is None:
            self._mp3_frame = pkt
        if self._fragmenter is None:
            self._buffer.append(pkt)
            span = self._buffer[-1].dts - self._buffer[0].dts
            self._try_build(force=abs(span) >= WAIT_TRACKS_MS)
            return b""
        self._add(pkt)
        return b""

    def end_segment(self, next_pkt=None) -> bytes:
        """End the segment.  ``next_pkt`` is the frame that starts the next
        one when the timeline goes on (a cut): it is added first, so the
        fragment holds exactly the frames before it.  Without it (a natural
        end) the last frames are flushed and the next segment starts a new
        timeline."""
        if self._fragmenter is None:
            self._try_build(force=True)
        fragmenter = self._fragmenter
        if fragmenter is None:
            self._buffer = []
            return b""
        if next_pkt is not None:
            self._add(next_pkt)
            self._preadded = next_pkt
            self._cut(fragmenter.cut)
        else:
            self._cut(fragmenter.flush)
            self._fragmenter = None
            self._preadded = None
        return b""

    def take_fragments(self) -> list[Fragment]:
        out, self._fragments = self._fragments, []
        return out

    def take_init(self) -> bytes | None:
        """A new init segment, once (None when it did not change)."""
        out, self._new_init = self._new_init, None
        return out

    # ---- internals ----------------------------------------------------------------------
    def _error(self, e: Exception) -> None:
        self.errors += 1
        self.last_error = str(e)

    def _can_complete(self) -> bool:
        """The fragmenter was built without a track whose configuration is
        known now (it came too late): the next segment gets a new init."""
        wanted = self._wanted
        if wanted.video is not None and "video" not in self._built and _VIDEO in self._headers:
            return True
        if wanted.audio is not None and "audio" not in self._built:
            return (self._mp3_frame if wanted.audio == "mp3" else self._headers.get(_AUDIO)) is not None
        return False

    def _track(self, kind: int, codec: str, track_id: int):
        """The fMP4 track of ``kind`` if its configuration is known, else None."""
        try:
            if codec == "mp3":
                first = self._mp3_frame
                return None if first is None else fmp4.track_for_mp3(first, track_id)
            sh = self._headers.get(kind)
            return None if sh is None else fmp4.track_from_sequence_header(sh, track_id)
        except CodecError as e:
            self._error(e)
            return None

    def _try_build(self, force: bool) -> None:
        wanted = self._wanted
        if wanted is None:
            return
        tracks = []
        missing = False
        for kind, codec, track_id in ((_VIDEO, wanted.video, 1), (_AUDIO, wanted.audio, 2)):
            if codec is None:
                continue
            track = self._track(kind, codec, track_id)
            if track is None:
                missing = True
            else:
                tracks.append(track)
        if (missing and not force) or not tracks:
            if force:
                self._buffer = []
            return
        try:
            init = fmp4.init_segment(tracks)
            self._fragmenter = fmp4.Fragmenter(tracks)
        except CodecError as e:  # pragma: no cover - tracks were checked when built
            self._error(e)
            self._buffer = []
            return
        self._main_video = tracks[0].kind == "video"
        self._built = {t.kind for t in tracks}
        if init != self._init:
            self._init = init
            self._new_init = init
        buffered, self._buffer = self._buffer, []
        for pkt in buffered:
            self._add(pkt)

    def _is_main(self, pkt) -> bool:
        return pkt.kind == (_VIDEO if self._main_video else _AUDIO)

    def _add(self, pkt) -> None:
        main = self._is_main(pkt)
        if main and self.part_ms is not None:
            self._cut_before(pkt)
        try:
            self._fragmenter.add(pkt)
        except CodecError as e:
            self._error(e)
            return
        if main:
            last = self._last_main
            if last is not None and pkt.dts > last:
                self._main_delta = pkt.dts - last
            self._last_main = pkt.dts
            if self.part_ms is not None:
                self._cut_after()

    # A part is cut as soon as one more frame could make it longer than the
    # part target.  The fragmenter's ready duration is exact for video (ms
    # timestamps at 90 kHz) and floored for audio, hence the margin.
    def _margin(self) -> int:
        return 0 if self._main_video else 2

    def _cut_before(self, pkt) -> None:
        """Before a main-track frame: the frame before it lasts until it;
        cut if that frame would not fit in the part."""
        last = self._last_main
        if last is None:
            return
        ready = self._fragmenter.pending_duration_ms()
        if ready > 0 and ready + self._margin() + max(0, pkt.dts - last) > self.part_ms:
            self._cut(self._fragmenter.cut)

    def _cut_after(self) -> None:
        """After a main-track frame: cut if a frame as long as the last one
        would not fit any more."""
        ready = self._fragmenter.pending_duration_ms()
        if ready > 0 and ready + self._margin() + self._main_delta > self.part_ms:
            self._cut(self._fragmenter.cut)

    def _cut(self, method) -> None:
        try:
            data = method(self._sequence)
        except CodecError as e:  # pragma: no cover - samples were checked when added
            self._error(e)
            return
        if not data:
            return
        self._sequence += 1
        info = self._fragmenter.last_cut
        self._fragments.append(Fragment(data, info.start, info.duration, info.independent))


def _same_headers(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(a[k].payload == b[k].payload and a[k].codec == b[k].codec for k in a)
