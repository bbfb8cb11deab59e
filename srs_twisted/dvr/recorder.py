"""DVR recorders: one per recorded publish, a packet tap on its live source
writing FLV or fragmented MP4 files as its :class:`~.plan.DvrPlan` says.

Files are written as SRS does: to ``<path>.tmp``, renamed to the path (with
``[duration]`` filled in) when the file is reaped, then ``on_dvr`` is sent
with that path as configured (relative paths stay relative).

Crash safety.  Nothing is kept in this process longer than about a second:

- FLV tags are buffered and written to the OS at least once a second (or
  every 256 KiB); each write ends on a tag boundary, and the onMetaData
  duration and filesize are refreshed after it;
- MP4 samples become a moof/mdat fragment at every video keyframe and once
  a second of media is pending, whichever comes first, and each fragment is
  written to the OS at once;
- the file is fsynced once, when it is closed (never per packet).

So a ``kill -9`` of the server loses at most about one second of media
(``<path>.tmp`` then holds everything written before it and plays, and the
next start finishes it: :mod:`.recover`); a power loss can lose what the OS
had not written back yet.

A write error (disk full, file removed...) ends this recording: the file is
cut back to its last complete write, closed and reaped; the error is logged
and the stream itself goes on.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import time

from ..codec import flv
from ..codec.errors import CodecError
from ..live.packet import AUDIO, VIDEO
from ..log import ContextLogger, log_unexpected
from .plan import MP4, Close, DvrPlan, DvrSettings, Open, Write, finish_path, render_path
from .recover import label_recording

__all__ = ["DvrRecorder", "FLUSH_INTERVAL", "FLUSH_BYTES", "FRAGMENT_MS"]

FLUSH_INTERVAL = 1.0  # seconds: buffered FLV tags reach the OS at least this often
FLUSH_BYTES = 256 * 1024  # ... or as soon as this much is buffered
FRAGMENT_MS = 1000  # an MP4 fragment holds at most this much media (or one GOP)
MP4_PROBE_MS = 1000  # how long an MP4 file waits for a track it expects (MP3)

_DOUBLE = struct.Struct(">d")


class _Output:
    """A file being written: appends are buffered and written to the OS
    whole by :meth:`flush`; ``good`` is the size of what is known to be
    complete on disk."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            # Tells a server starting meanwhile (shared directory) that this
            # file is no leftover to finish (see recover.py); gone with us.
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass
        self.good = 0
        self._parts: list[bytes] = []
        self.buffered = 0

    @property
    def size(self) -> int:
        return self.good + self.buffered

    def append(self, data: bytes) -> None:
        self._parts.append(data)
        self.buffered += len(data)

    def flush(self) -> None:
        if not self._parts:
            return
        data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self._parts = []
        self.buffered = 0
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            if n <= 0:  # pragma: no cover - regular files never write 0
                raise OSError(errno.EIO, "short write")
            view = view[n:]
        self.good += len(data)

    def patch(self, offset: int, data: bytes) -> None:
        """Overwrite bytes already written (metadata refresh)."""
        os.pwrite(self.fd, data, offset)

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def abandon(self) -> None:
        """After a failed write: drop what is buffered, cut the file back to
        its last complete write and close it (errors ignored)."""
        self._parts = []
        self.buffered = 0
        fd, self.fd = self.fd, -1
        if fd < 0:
            return
        try:
            os.ftruncate(fd, self.good)
        except OSError:
            pass
        try:
            os.close(fd)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# Formats


class FlvWriter:
    """FLV: the file header, onMetaData (duration and filesize refreshed at
    every flush and at close), the sequence headers, then every tag."""

    extension = ".flv"
    flushes_itself = False

    def __init__(self, out: _Output, log: ContextLogger) -> None:
        self.out = out
        self.log = log
        self.duration_ms = 0
        self._duration_at = 0  # file offsets of the two numbers, 0 = no metadata yet
        self._filesize_at = 0
        out.append(flv.file_header(True, True))

    def write(self, pkt, header: bool) -> None:
        if pkt.is_data:
            self._write_metadata(pkt)
            return
        self.out.append(flv.encode_tag(pkt.kind, pkt.dts, pkt.payload))
        if not header:
            self.duration_ms = max(self.duration_ms, pkt.dts)

    def _write_metadata(self, pkt) -> None:
        if self._duration_at:
            return
        try:
            name, value = flv.parse_script(pkt.payload)
        except (CodecError, ValueError, IndexError) as e:
            self.log.warn(f"dvr: metadata not written, unreadable: {e}")
            return
        props = dict(value) if isinstance(value, dict) else {}
        for key in ("duration", "filesize"):
            props.pop(key, None)
        props["service"] = "srs-twisted"
        props["filesize"] = 0.0
        props["duration"] = 0.0
        body = flv.encode_metadata(props)
        # The numbers sit right after their keys: u16 length, name, marker 0.
        base = self.out.size + flv.TAG_HEADER_SIZE
        self._filesize_at = base + body.rindex(b"\x00\x08filesize\x00") + 11
        self._duration_at = base + body.rindex(b"\x00\x08duration\x00") + 11
        # Stamped 0: FFmpeg reads a later onMetaData as a data stream.
        self.out.append(flv.encode_tag(flv.TAG_SCRIPT, 0, body))

    def flush(self, media_ms: int) -> None:
        self.out.flush()
        self._refresh(media_ms)

    def _refresh(self, media_ms: int) -> None:
        if self._duration_at and self.out.good > self._duration_at:
            self.out.patch(self._filesize_at, _DOUBLE.pack(float(self.out.good)))
            self.out.patch(self._duration_at, _DOUBLE.pack(media_ms / 1000.0))

    def finish(self, media_ms: int) -> None:
        self.flush(media_ms)


class Mp4Writer:
    """Fragmented MP4: an init segment (moov) first, then a moof/mdat
    fragment per GOP or per second of media, whichever comes first, each
    written to the OS at once.  The init segment waits until the tracks are
    known (sequence headers; an MP3 track needs its first frame)."""

    extension = ".mp4"
    flushes_itself = True
    VIDEO_TRACK = 1
    AUDIO_TRACK = 2

    def __init__(self, out: _Output, log: ContextLogger) -> None:
        from ..codec import fmp4

        self.fmp4 = fmp4
        self.out = out
        self.log = log
        self.headers: dict[int, object] = {}
        self.tracks: dict[int, object] = {}
        self.init: bytes | None = None
        self.fragmenter = None
        self.sequence = 1
        self.expect_audio = False
        self.expect_video = False
        self._pending: list = []
        self._mp3 = None
        self._warned: set = set()

    # ---- before the init segment ----------------------------------------------------------
    def write(self, pkt, header: bool) -> None:
        if pkt.is_data:
            self._read_metadata(pkt)
            return
        if pkt.sequence_header:
            if self.init is None:
                self.headers[pkt.kind] = pkt
                if pkt.is_audio:
                    self.expect_audio = True
                else:
                    self.expect_video = True
            return  # the plan starts a new file when a header changes mid-file
        if self.init is not None:
            self._add(pkt)
            return
        if pkt.is_audio:
            self.expect_audio = True
            if self._mp3 is None and pkt.codec == "mp3" and AUDIO not in self.headers:
                self._mp3 = pkt
        self._pending.append(pkt)
        if self._ready():
            self._start()

    def _read_metadata(self, pkt) -> None:
        try:
            _, value = flv.parse_script(pkt.payload)
        except (CodecError, ValueError, IndexError):
            return
        if isinstance(value, dict):
            if value.get("audiocodecid"):
                self.expect_audio = True
            if value.get("videocodecid"):
                self.expect_video = True

    def _ready(self) -> bool:
        have_video = VIDEO in self.headers
        have_audio = AUDIO in self.headers or self._mp3 is not None
        if (have_video or not self.expect_video) and (have_audio or not self.expect_audio):
            return True
        span = self._pending[-1].dts - self._pending[0].dts
        return span >= MP4_PROBE_MS

    def _track(self, kind: int):
        fmp4 = self.fmp4
        try:
            if kind == VIDEO and VIDEO in self.headers:
                return fmp4.track_from_sequence_header(self.headers[VIDEO], self.VIDEO_TRACK)
            if kind == AUDIO and AUDIO in self.headers:
                return fmp4.track_from_sequence_header(self.headers[AUDIO], self.AUDIO_TRACK)
            if kind == AUDIO and self._mp3 is not None:
                return fmp4.track_for_mp3(self._mp3, self.AUDIO_TRACK)
        except (CodecError, ValueError, KeyError, IndexError, NotImplementedError) as e:
            self._warn(kind, f"dvr: {'video' if kind == VIDEO else 'audio'} not recorded in MP4: {e}")
        return None

    def _start(self) -> None:
        for kind in (VIDEO, AUDIO):
            track = self._track(kind)
            if track is not None:
                self.tracks[kind] = track
        if not self.tracks:
            raise CodecError("no track MP4 can hold")
        ordered = [self.tracks[k] for k in (VIDEO, AUDIO) if k in self.tracks]
        self.init = self.fmp4.init_segment(ordered)
        self.fragmenter = self.fmp4.Fragmenter(ordered)
        self.out.append(self.init)
        self.out.flush()
        pending, self._pending = self._pending, []
        for pkt in pending:
            self._add(pkt)

    # ---- fragments ------------------------------------------------------------------------
    def _add(self, pkt) -> None:
        if pkt.kind not in self.tracks:
            self._warn(pkt.kind, f"dvr: no MP4 track for {pkt.codec or pkt.kind} packets; they are not recorded")
            return
        self.fragmenter.add(pkt)
        # The fragmenter holds each track's newest sample back until the next
        # one gives its duration: right after a keyframe is added, what is
        # ready is exactly the GOP before it.
        if (pkt.is_video and pkt.keyframe) or self.fragmenter.pending_duration_ms() >= FRAGMENT_MS:
            self._cut()

    def _cut(self, last: bool = False) -> None:
        fragmenter = self.fragmenter
        data = fragmenter.flush(self.sequence) if last else fragmenter.cut(self.sequence)
        if data:
            self.sequence += 1
            self.out.append(data)
            self.out.flush()

    def _warn(self, key, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.log.warn(message)

    def flush(self, media_ms: int) -> None:
        self.out.flush()

    def finish(self, media_ms: int) -> None:
        if self.init is None:
            if not self._pending:
                return
            self._start()
        self._cut(last=True)
        # With the length known, the moov can say it (when that keeps its size).
        try:
            final = self.fmp4.init_segment([self.tracks[k] for k in (VIDEO, AUDIO) if k in self.tracks],
                                           duration_ms=int(media_ms))
        except TypeError:  # pragma: no cover - an init_segment without duration_ms
            return
        if len(final) == len(self.init) and final != self.init:
            self.out.patch(0, final)


# ---------------------------------------------------------------------------------------------
# The recorder


class DvrRecorder:
    """Records one publish of ``source`` under ``settings``.

    ``start()`` attaches it (a packet tap), ``stop()`` (at unpublish) closes
    the last file.  ``hooks`` is the server's HooksPolicy (``ctx.hooks``) or
    None; ``wallclock`` gives the Unix time that names files; ``clock`` runs
    the flush timer.  ``reaped`` lists the finished files, as sent in
    ``on_dvr``.
    """

    def __init__(
        self,
        source,
        settings: DvrSettings,
        clock,
        hooks=None,
        wallclock=time.time,
        utc: bool = False,
        client=None,
    ) -> None:
        self.source = source
        self.settings = settings
        self.clock = clock
        self.hooks = hooks
        self.wallclock = wallclock
        self.utc = utc
        self.client = client
        self.container = settings.container
        self.plan = DvrPlan(settings, reopen_on_new_header=self.container == MP4)
        self.reaped: list[str] = []
        self.failed = False
        self.path: str | None = None  # the file being written (as configured, maybe with [duration])
        self._out: _Output | None = None
        self._writer = None
        self._flush_call = None
        self._attached = False
        self.log = ContextLogger(getattr(client, "id", None) or source.id or None)

    # ---- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._attached = True
        self.source.add_tap(self._on_packet, replay_headers=True)

    def stop(self) -> None:
        """The publish ended: close and reap the current file."""
        if self._attached:
            self._attached = False
            self.source.remove_tap(self._on_packet)
        if self.failed:
            return
        try:
            self._apply(self.plan.finish())
        except Exception as e:  # noqa: BLE001 - never let a recorder break unpublish
            self._fail(e)

    def _on_packet(self, pkt) -> None:
        if self.client is None:
            self.client = self.source.publisher_info
            if self.client is not None:
                self.log = ContextLogger(self.client.id)
        try:
            self._apply(self.plan.feed(pkt))
        except Exception as e:  # noqa: BLE001 - the stream goes on without its recording
            self._fail(e)

    def _apply(self, events) -> None:
        for event in events:
            if isinstance(event, Write):
                if self._writer is not None:
                    self._writer.write(event.packet, event.header)
                    self._after_write()
            elif isinstance(event, Open):
                self._open()
            elif isinstance(event, Close):
                self._close(event.duration_ms)

    # ---- files --------------------------------------------------------------------------
    def _open(self) -> None:
        self._drop_file()
        s = self.source
        path = render_path(self.settings.path, s.vhost, s.app, s.stream, self.wallclock(), self.utc)
        tmp = path + ".tmp"
        if os.path.exists(tmp) or ("[duration]" not in path and os.path.exists(path)):
            self.log.error(f"dvr: cannot append to existing file {path}; this file is not recorded")
            return
        directory = os.path.dirname(path)
        try:
            if directory:
                os.makedirs(directory, exist_ok=True)
            out = _Output(tmp)
        except OSError as e:
            self.log.error(f"dvr: cannot create {tmp}: {e}; this file is not recorded")
            return
        label_recording(out.fd, s, self.client or s.publisher_info)
        writer_class = Mp4Writer if self.container == MP4 else FlvWriter
        try:
            self._writer = writer_class(out, self.log)
        except Exception:
            out.abandon()
            os.unlink(tmp)
            raise
        self._out = out
        self.path = path
        self.log.trace(f"dvr stream {s.stream} to file {path}")

    def _after_write(self) -> None:
        out = self._out
        if not out.buffered:
            return
        if out.buffered >= FLUSH_BYTES:
            self._flush()
        elif self._flush_call is None:
            self._flush_call = self.clock.callLater(FLUSH_INTERVAL, self._timed_flush)

    def _timed_flush(self) -> None:
        self._flush_call = None
        try:
            self._flush()
        except Exception as e:  # noqa: BLE001
            self._fail(e)

    def _flush(self) -> None:
        self._cancel_flush()
        if self._writer is not None:
            self._writer.flush(self.plan.duration_ms)

    def _cancel_flush(self) -> None:
        call, self._flush_call = self._flush_call, None
        if call is not None and call.active():
            call.cancel()

    def _close(self, duration_ms: int) -> None:
        self._cancel_flush()
        writer, out, path = self._writer, self._out, self.path
        if writer is None:
            return
        writer.finish(duration_ms)
        self._writer = self._out = self.path = None
        out.close()
        self._reap(out.path, path, duration_ms)

    def _reap(self, tmp: str, path: str, duration_ms: int) -> None:
        final = finish_path(path, duration_ms)
        os.rename(tmp, final)
        self.reaped.append(final)
        self.log.trace(f"dvr: reap file {final}, duration={duration_ms}ms")
        self._notify(final)

    def _notify(self, file: str) -> None:
        hooks = self.hooks
        if hooks is None:
            return
        client = self.client or self.source.publisher_info
        if client is None:
            from ..context import ClientInfo
            from ..url import StreamRequest

            s = self.source
            client = ClientInfo("", request=StreamRequest(vhost=s.vhost, app=s.app, stream=s.stream))
        try:
            hooks.on_dvr(client, file)
        except Exception as e:  # noqa: BLE001 - the hook is fire-and-forget
            self.log.error(f"dvr: on_dvr for {file} failed: {e!r}")

    def _drop_file(self) -> None:
        """Forget a file left open (it should not be: a Close comes first)."""
        if self._writer is not None:
            self._close(self.plan.duration_ms)

    def _fail(self, error: Exception) -> None:
        """A write (or codec) error: keep what is complete, stop recording."""
        self.failed = True
        self._cancel_flush()
        if self._attached:
            self._attached = False
            self.source.remove_tap(self._on_packet)
        out, path = self._out, self.path
        self._writer = self._out = self.path = None
        where = path or "(no file)"
        if isinstance(error, (OSError, CodecError)):
            self.log.error(f"dvr: recording of {self.source.url} stopped: {error!r} writing {where}")
        else:  # a bug, not the disk or the stream
            log_unexpected(self.log, f"dvr: recording of {self.source.url} stopped writing {where}", error)
        if out is None:
            return
        out.abandon()
        if out.good == 0:
            try:
                os.unlink(out.path)
            except OSError:
                pass
            return
        try:
            self._reap(out.path, path, self.plan.duration_ms)
        except OSError as e:
            self.log.error(f"dvr: cannot reap {out.path}: {e}")
