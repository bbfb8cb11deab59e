"""The DASH recorder: one stream's packets, turned into MPEG-DASH files.

:class:`DashRecorder` taps a :class:`~srs_twisted.live.source.LiveSource`
and writes, under ``dash_path`` (names in :mod:`.mpd`):

* one init segment per track (``video-init.mp4``, ``audio-init.mp4``) when
  its sequence header arrives (MP3: its first frame), rewritten only when
  the decoder configuration changes;
* media segments per track (``video-1.m4s``, ``video-2.m4s``...), one :class:`~srs_twisted.codec.fmp4.Fragmenter`
  each (separate video and audio representations, as SRS): video is cut at
  the first keyframe once ``dash_fragment`` seconds are buffered, audio at
  its first frame from that keyframe's time on; a stream without video cuts
  its audio every ``dash_fragment`` seconds;
* the MPD after every segment, listing the newest ``dash_window_size``
  segments of each track.

Every file is written to ``<name>.tmp`` and renamed into place, segments
before the MPD that lists them.  Files of segments more than
``2 * dash_window_size * dash_fragment`` seconds old are removed
(``dash_cleanup``), after the MPD that no longer lists them.  At unpublish
the buffered samples become a last segment each; ``dash_dispose`` seconds
later every file of the stream is removed, unless it is published again.
With ``dash_dispose 0`` the files stay and the recorder is released (memory
stays bounded however many streams come and go) after
:func:`~srs_twisted.recording.release_after` the keep window; a new
recorder of the stream takes over the MPD it finds on disk
(:mod:`.restore`).

Timing.  The MPD's ``availabilityStartTime`` is the wall-clock time of
media time 0, set at the first frame (as SRS).  A republish, or a
timestamp that jumps more than :data:`BACKWARD_MS` back or
:data:`FORWARD_MS` ahead, continues the media timeline where it should be
(after the last segment, and not before the wall clock), so segment times
only grow and players keep their clock; segment numbers go on too.
"""

from __future__ import annotations

import os

from ..codec import flv, fmp4
from ..codec.errors import CodecError
from ..hls.writer import write_atomically
from ..live.packet import AUDIO, VIDEO
from ..log import ContextLogger
from ..recording import DisposeTimer, unlink
from .mpd import DashLayout, MpdTimes, Representation, Segment, TrackWindow, build_mpd
from .restore import MAX_MPD_BYTES, read_mpd

__all__ = ["DashRecorder", "BACKWARD_MS", "FORWARD_MS"]

# A frame this much older than the newest one, or this much newer, is a
# timestamp jump: the timeline goes on from the newest frame instead.
BACKWARD_MS = 1000
FORWARD_MS = 10000
# Audio of a stream whose video stopped is cut on its own after this many fragments.
AUDIO_ALONE_FRAGMENTS = 3
# A track with segments waits this many for a lagging one before the MPD leaves it out.
WAIT_FOR_TRACKS = 3
TRACK_IDS = {"video": 1, "audio": 2}
# Errors logged one by one; after that every thousandth.
ERRORS_LOGGED = 10
# An init segment longer than this is not read back.
MAX_INIT_BYTES = 1024 * 1024


class _Track:
    """One representation: its fMP4 track and fragmenter, and its segments."""

    __slots__ = ("rep_id", "track", "init", "init_path", "fragmenter", "window", "active", "floor_ms",
                 "shift", "sequence")

    def __init__(self, rep_id: str) -> None:
        self.rep_id = rep_id
        self.track: fmp4.Track | None = None
        self.init = b""  # the init segment written for the current epoch
        self.init_path = ""
        self.fragmenter: fmp4.Fragmenter | None = None
        self.window = TrackWindow()
        self.active = False  # has a track in this publish
        self.floor_ms: int | None = None  # a new fragmenter starts no earlier than this
        self.shift: int | None = None  # ms added to the packets of this fragmenter
        self.sequence = 0  # the last segment's number ($Number$, mfhd sequence number)




def _audio_codec(pkt) -> str:
    if pkt.codec:
        return pkt.codec
    try:
        return flv.parse_audio(pkt.payload).codec
    except CodecError:
        return ""


class DashRecorder(DisposeTimer):
    """Writes the DASH files of one stream (``vhost``/``app``/``stream``)
    across its publishes, until they are disposed.

    ``start(source)`` at each publish, ``stop()`` at each unpublish,
    ``dispose()`` removes every file (the ``dash_dispose`` timer calls it)
    and then calls ``on_disposed(recorder)``; with ``dash_dispose 0``,
    ``release()`` (the timer calls it too) keeps the files and calls
    ``on_disposed(recorder)``.  ``ctx`` gives the config and the clock
    (``callLater``, and ``seconds()`` for the MPD's wall-clock times).
    """

    kind = "dash"

    def __init__(self, ctx, vhost: str, app: str, stream: str, on_disposed=None) -> None:
        self.ctx = ctx
        self.vhost = vhost
        self.app = app
        self.stream = stream
        self.on_disposed = on_disposed
        self.source = None
        self.conf = None  # the VhostConfig of the current (or last) publish
        self.layout: DashLayout | None = None
        self.enabled = False  # attached and writing
        self.tracks: dict[str, _Track] = {}
        self.availability_start: float | None = None  # wall clock of media time 0
        self.errors = 0
        self.last_error = ""
        self.jumps = 0  # timestamp jumps smoothed over
        self._offset: int | None = None  # ms added to this publish's timestamps
        self._head = 0  # the newest (mapped) frame time, ms
        self._audio_cut_at: int | None = None  # cut audio at its first frame from here (ms)
        self._mpd_paths: set[str] = set()
        self._listed: set[str] = set()  # the files the MPD on disk names (segments and init segments)
        self._dispose_call = None
        self._unsupported: set[str] = set()
        self.log = ContextLogger("dash")

    # ---- settings -----------------------------------------------------------------------------
    @property
    def _dash(self):
        return self.conf.dash

    @property
    def fragment_ms(self) -> int:
        return max(1, int(self._dash.dash_fragment * 1000))

    @property
    def window_size(self) -> int:
        return max(1, int(self._dash.dash_window_size))

    # ---- life cycle -------------------------------------------------------------------------
    def start(self, source, conf=None) -> None:
        """A publish of this stream begins: attach to ``source``."""
        self._cancel_dispose()
        if self.enabled:
            self.stop()
            self._cancel_dispose()
        self.conf = conf if conf is not None else self.ctx.vhost(self.vhost)
        dash = self.conf.dash
        layout = DashLayout.build(dash.dash_path, dash.dash_mpd_file, self.vhost, self.app, self.stream)
        if self.layout is not None and layout != self.layout:
            # dash_path or dash_mpd_file changed (a reload): start over in the new place
            self._remove_files()
        if self.layout is None:
            self._take_over(layout)
        self.layout = layout
        for track in self.tracks.values():
            track.active = False
            track.fragmenter = None
        self._offset = None
        self._audio_cut_at = None
        self.source = source
        client = source.publisher_info
        self.log = ContextLogger(getattr(client, "id", None) or source.id or "dash")
        self.enabled = True
        source.add_tap(self.on_packet, replay_headers=True)
        self.log.trace(
            f"dash: start {self.vhost}/{self.app}/{self.stream}, fragment={dash.dash_fragment}s, "
            f"window={dash.dash_window_size}, update={dash.dash_update_period}s, "
            f"timeshift={dash.dash_timeshift}s, mpd={layout.mpd_path}, dispose={dash.dash_dispose}s"
        )

    def stop(self) -> None:
        """The publisher left: the buffered samples become a last segment per
        track, the MPD is refreshed and the dispose timer armed."""
        source, self.source = self.source, None
        if source is not None:
            source.remove_tap(self.on_packet)
        if self.enabled:
            self.enabled = False
            wrote = False
            for track in self._ordered():
                if track.active and track.fragmenter is not None:
                    wrote = self._cut(track, final=True) or wrote
                track.fragmenter = None
            if wrote:
                self._refresh(final=True)
        self.enabled = False
        if self.conf is not None:
            dash = self.conf.dash
            self._after_unpublish(dash.dash_dispose, 2 * self.window_size * dash.dash_fragment)

    def dispose(self) -> None:
        """Remove every file of the stream (MPD, init and media segments)."""
        self._cancel_dispose()
        if self.enabled:
            self.stop()
            self._cancel_dispose()
        removed = self._remove_files()
        self.tracks.clear()
        self.availability_start = None
        self.log.trace(f"dash: disposed {self.vhost}/{self.app}/{self.stream}, {removed} files removed")
        if self.on_disposed is not None:
            self.on_disposed(self)

    def _remove_files(self) -> int:
        removed = 0
        paths = []
        for track in self.tracks.values():
            paths.extend(s.path for s in track.window.drop_all())
            if track.init_path:
                paths.append(track.init_path)
            track.init = b""
            track.init_path = ""
        paths.extend(sorted(self._mpd_paths))
        self._mpd_paths.clear()
        self._listed.clear()
        for path in paths:
            try:
                removed += unlink(path)
            except OSError as e:
                self.log.warn(f"dash: cannot remove {path}: {e}")
        if self.layout is not None:
            try:
                os.rmdir(self.layout.home)
            except OSError:
                pass  # not empty, or gone
        return removed

    def _forget(self) -> None:
        """dash_dispose 0, :meth:`release` after the keep window: the MPD and
        what it lists stay on disk, for the next recorder to take over; the
        segments (and init segments) it no longer lists go, with
        dash_cleanup on."""
        if self.conf is not None and self._dash.dash_cleanup:
            listed = self._listed
            paths = [s.path for t in self._ordered() for s in t.window.segments if s.path not in listed]
            paths += [t.init_path for t in self._ordered() if t.init_path and t.init_path not in listed]
            for path in paths:
                try:
                    unlink(path)
                except OSError as e:
                    self.log.warn(f"dash: cleanup cannot remove {path}: {e}")
        self.tracks.clear()
        self._listed.clear()

    def _take_over(self, layout: DashLayout) -> None:
        """A new recorder: go on from the MPD that a released (or crashed)
        recorder of this stream left on disk (see :mod:`.restore`)."""
        try:
            with open(layout.mpd_path, "rb") as f:
                data = f.read(MAX_MPD_BYTES + 1)
        except FileNotFoundError:
            return
        except OSError as e:
            self.log.warn(f"dash: cannot read {layout.mpd_path} to go on from it: {e}")
            return
        read = read_mpd(data, layout.prefix)
        if read is None:
            self.log.warn(f"dash: {layout.mpd_path} is not an MPD of ours, numbers start at 1")
            return
        self.availability_start = read.availability_start
        self._mpd_paths.add(layout.mpd_path)
        taken = []
        for rep in read.representations.values():
            track = self.tracks[rep.rep_id] = _Track(rep.rep_id)
            track.sequence = max(0, rep.last_number)
            if rep.ours:
                taken.extend(self._take_segments(track, rep, layout))
        self._listed = set(taken)
        numbers = ", ".join(f"{t.rep_id} {t.sequence + 1}" for t in self._ordered())
        self.log.trace(f"dash: {layout.mpd_path} taken over, {len(taken)} files, next {numbers}")

    def _take_segments(self, track: _Track, rep, layout: DashLayout) -> list[str]:
        """The listed segments of ``rep`` whose files are there, after the
        last missing one, with their init segment; returns their paths."""
        init_path = layout.init_path(rep.rep_id)
        try:
            with open(init_path, "rb") as f:
                init = f.read(MAX_INIT_BYTES + 1)
        except OSError:
            return []
        if not init or len(init) > MAX_INIT_BYTES:
            return []
        segments: list[Segment] = []
        for i, (t, d) in enumerate(rep.entries):
            number = rep.start_number + i
            path = layout.segment_path(rep.rep_id, number)
            try:
                size = os.stat(path).st_size
            except OSError:
                segments = []  # the numbers listed must stay consecutive
                continue
            segments.append(Segment(number, t, d, rep.timescale, size, path))
        if not segments:
            return []
        track.init, track.init_path = init, init_path
        for segment in segments:
            track.window.append(segment)
        return [init_path] + [s.path for s in segments]

    # ---- packets ------------------------------------------------------------------------------
    def on_packet(self, pkt) -> None:
        if not self.enabled:
            return
        kind = pkt.kind
        if kind == VIDEO:
            rep_id = "video"
        elif kind == AUDIO:
            rep_id = "audio"
        else:
            return
        try:
            if pkt.sequence_header:
                self._on_header(rep_id, pkt)
            else:
                self._on_frame(rep_id, pkt)
        except CodecError as e:  # fmp4.Fmp4Error included: a bad frame is dropped
            self._count_error(f"{rep_id} frame at {pkt.dts} dropped: {e}")

    def _on_header(self, rep_id: str, pkt) -> None:
        try:
            track = fmp4.track_from_sequence_header(pkt, TRACK_IDS[rep_id])
        except CodecError as e:
            self._unsupported_track(rep_id, str(e))
            return
        self._use_track(rep_id, track)

    def _unsupported_track(self, rep_id: str, why: str) -> None:
        current = self.tracks.get(rep_id)
        if current is not None and current.active:
            self._close_track(current)
        if why not in self._unsupported and len(self._unsupported) < ERRORS_LOGGED:
            self._unsupported.add(why)
            self.log.warn(f"dash: no {rep_id} for {self.vhost}/{self.app}/{self.stream}: {why}")

    def _use_track(self, rep_id: str, track: fmp4.Track) -> None:
        """A (new) decoder configuration for a representation."""
        init = fmp4.init_segment([track])
        current = self.tracks.get(rep_id)
        if current is None:
            current = self.tracks[rep_id] = _Track(rep_id)
        elif current.active and current.init == init:
            return  # the same sequence header again
        if current.active:
            self._close_track(current)
        if current.init != init:
            if current.window.segments:
                current.window.new_epoch()
            path = self.layout.init_path(rep_id)
            try:
                write_atomically(path, init)
            except OSError as e:
                current.init = b""
                self._count_error(f"cannot write {path}: {e}")
                return
            current.init, current.init_path = init, path
        current.track = track
        current.fragmenter = fmp4.Fragmenter([track])
        current.floor_ms = current.window.end_ms()
        current.shift = None
        current.active = True

    def _close_track(self, track: _Track) -> None:
        """The track's configuration ends: its buffered samples become a segment."""
        if track.fragmenter is not None and self._cut(track, final=True):
            self._refresh()
        track.fragmenter = None
        track.active = False

    def _on_frame(self, rep_id: str, pkt) -> None:
        track = self.tracks.get(rep_id)
        if rep_id == "audio" and _audio_codec(pkt) == "mp3":
            if track is None or not track.active or track.track.codec != "mp3":
                try:
                    self._use_track(rep_id, fmp4.track_for_mp3(pkt, TRACK_IDS[rep_id]))
                except CodecError as e:
                    self._unsupported_track(rep_id, str(e))
                    return
                track = self.tracks.get(rep_id)
        if track is None or not track.active:
            return  # no sequence header yet, or a codec fMP4 cannot carry
        dts = self._map(pkt.dts)
        if track.shift is None:
            floor = track.floor_ms
            track.shift = max(0, floor - dts) if floor is not None else 0
        moved = dts + track.shift
        track.fragmenter.add(pkt if moved == pkt.dts else pkt.retimed(moved))
        fragmenter = track.fragmenter
        if rep_id == "video":
            if pkt.keyframe and fragmenter.pending_duration_ms() >= self.fragment_ms:
                if self._cut(track):
                    self._refresh()
                audio = self.tracks.get("audio")
                if audio is not None and audio.active:
                    self._audio_cut_at = dts
            return
        video = self.tracks.get("video")
        pending = fragmenter.pending_duration_ms()
        if video is None or not video.active:
            cut = pending >= self.fragment_ms
        elif self._audio_cut_at is not None and dts >= self._audio_cut_at:
            cut = True
        else:
            cut = pending >= AUDIO_ALONE_FRAGMENTS * self.fragment_ms
        if cut:
            self._audio_cut_at = None
            if self._cut(track):
                self._refresh()

    def _map(self, dts: int) -> int:
        """The packet time on the recorder's timeline (ms)."""
        if self._offset is None:
            now = self.ctx.clock.seconds()
            if self.availability_start is None:
                self.availability_start = now - dts / 1000.0
                self._offset = 0
            else:
                # a new publish: after everything written, not behind the wall clock
                wall = int((now - self.availability_start) * 1000)
                ends = [t.window.end_ms() or 0 for t in self.tracks.values()]
                self._offset = max([wall, self._head + 1, *ends]) - dts
            self._head = dts + self._offset
            return self._head
        mapped = dts + self._offset
        head = self._head
        if mapped > head:
            if mapped - head > FORWARD_MS:
                self._jump(mapped, head)
                return head
            self._head = mapped
        elif head - mapped > BACKWARD_MS:
            self._jump(mapped, head)
            return head
        return mapped

    def _jump(self, mapped: int, head: int) -> None:
        self._offset += head - mapped
        self.jumps += 1
        self.log.warn(f"dash: {self.vhost}/{self.app}/{self.stream} timestamp jumped by {mapped - head} ms, "
                      f"the timeline goes on at {head} ms")

    # ---- files --------------------------------------------------------------------------------
    def _ordered(self) -> list[_Track]:
        return [self.tracks[r] for r in ("video", "audio") if r in self.tracks]

    def _cut(self, track: _Track, final: bool = False) -> bool:
        """Write the track's buffered samples as a segment; True if one was
        written (and added to the window)."""
        fragmenter = track.fragmenter
        sequence = track.sequence + 1
        data = fragmenter.flush(sequence, styp=True) if final else fragmenter.cut(sequence, styp=True)
        if data is None:
            return False
        info = fragmenter.last_cut
        timescale = track.track.timescale
        start = round(info.start * timescale)
        duration = round(info.duration * timescale)
        path = self.layout.segment_path(track.rep_id, sequence)
        try:
            write_atomically(path, data)
        except OSError as e:
            # left out; its number goes to the next one, so the listed numbers stay consecutive
            self._count_error(f"cannot write {path}: {e}")
            return False
        track.sequence = sequence
        track.window.append(Segment(sequence, start, duration, timescale, len(data), path))
        return True

    def _refresh(self, final: bool = False) -> None:
        """Rewrite the MPD, then remove the files that left the keep window.

        The first MPD waits until every track has a segment (a track with
        :data:`WAIT_FOR_TRACKS` segments waits no more), except at unpublish."""
        reps = [Representation(t.rep_id, t.track, t.window.listed(self.window_size))
                for t in self._ordered() if t.active]
        ready = [r for r in reps if r.segments]
        if not ready:
            return
        if not final and len(ready) < len(reps) and max(len(r.segments) for r in ready) < WAIT_FOR_TRACKS:
            return  # the other track's first segment is due any moment
        dash = self._dash
        fragment = dash.dash_fragment
        times = MpdTimes(
            availability_start=self.availability_start,
            publish=self.ctx.clock.seconds(),
            update_period=dash.dash_update_period,
            timeshift=dash.dash_timeshift,
            min_buffer=fragment,
            presentation_delay=min(3, max(1, self.window_size - 1)) * fragment,
        )
        path = self.layout.mpd_path
        try:
            write_atomically(path, build_mpd(ready, times, self.layout.prefix).encode())
        except OSError as e:
            self._count_error(f"cannot write {path}: {e}")
            return
        self._mpd_paths.add(path)
        self._listed = {s.path for r in ready for s in r.segments}
        self._listed.update(self.tracks[r.rep_id].init_path for r in ready)
        self._expire()

    def _expire(self) -> None:
        keep = 2 * self.window_size * self._dash.dash_fragment
        cleanup = self._dash.dash_cleanup
        for track in self.tracks.values():
            listed = self.window_size if track.active else 0  # a track out of the MPD protects nothing
            for segment in track.window.expire(keep, listed):
                if not cleanup:
                    continue
                try:
                    unlink(segment.path)
                except OSError as e:
                    self.log.warn(f"dash: cleanup cannot remove {segment.path}: {e}")

    def _count_error(self, what: str) -> None:
        self.errors += 1
        self.last_error = what
        if self.errors <= ERRORS_LOGGED or self.errors % 1000 == 0:  # a broken publisher must not flood the log
            self.log.error(f"dash: {self.vhost}/{self.app}/{self.stream}: {what} ({self.errors} errors)")
