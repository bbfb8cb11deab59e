"""The HLS recorder: one stream's segmenter, turned into files.

:class:`HlsRecorder` taps a :class:`~srs_twisted.live.source.LiveSource`,
feeds every packet to an :class:`~.segmenter.HlsSegmenter` and carries out
its events under ``hls_path``:

* a segment is written to ``<name>.tmp`` and renamed into place when it is
  complete; keys and the playlist are written to a temporary name and
  renamed too, so a reader never sees half a file;
* after each segment: the playlist, then the files that left it long enough
  ago (``hls_cleanup``), then ``on_hls`` and ``on_hls_notify``;
* at unpublish the open segment is finished and the playlist refreshed (no
  ``EXT-X-ENDLIST``, as SRS: a republish continues the same playlist);
* ``hls_dispose`` seconds after the publisher left, every file of the
  stream is removed; with ``hls_dispose 0`` the files stay and the
  recorder is released after :func:`release_after` (memory stays bounded
  however many streams come and go); a new recorder takes over the
  playlist it finds on disk (:mod:`.restore`);
* a failed write follows ``hls_on_error``: ``continue`` leaves that segment
  out of the playlist and goes on, ``ignore`` stops HLS for this publish,
  ``disconnect`` kicks the publisher;
* fMP4 init segments (``hls_use_fmp4``) are written (temporary name and
  rename) before the first segment that uses them;
* with ``hls_low_latency on`` the parts, the LL-HLS playlist and the hint
  go to the HTTP server's memory (:mod:`srs_twisted.hls.resource`), which
  answers the requests waiting for them; the playlist on disk stays a plain
  one (whole segments), for other web servers.

Writes are plain synchronous ``os.write`` calls of at least 256 KiB (or a
segment's end) -- small files, never an fsync.
"""

from __future__ import annotations

import errno
import os

from ..log import ContextLogger
from ..recording import DisposeTimer, unlink
from ..recording import release_after as _release_after
from .restore import read_playlist
from .segmenter import (
    FilesExpired,
    HlsSegmenter,
    InitCreated,
    KeyCreated,
    PartAdded,
    PlaylistUpdated,
    SegmentClosed,
    SegmentData,
    SegmentDropped,
    SegmentOpened,
)

__all__ = ["HlsRecorder", "write_atomically", "release_after"]

# A playlist longer than this is not read back (it is not one of ours).
MAX_PLAYLIST_BYTES = 4 * 1024 * 1024


def release_after(hls) -> float:
    """How long after its publisher left a stream's recorder is kept with
    ``hls_dispose 0``: twice the window (what a viewer session lasts), at
    least 30 s (:func:`srs_twisted.recording.release_after`).  A republish
    until then goes on in memory; later the next recorder goes on from the
    playlist on disk."""
    return _release_after(2.0 * hls.hls_window)

_O_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:  # pragma: no cover - regular files never write 0
            raise OSError(errno.EIO, "short write")
        view = view[n:]


def _makedirs_for(path: str) -> None:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)


def write_atomically(path: str, data: bytes, tmp_suffix: str = ".tmp") -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    _makedirs_for(path)
    tmp = path + tmp_suffix
    fd = os.open(tmp, _O_FLAGS, 0o644)
    try:
        _write_all(fd, data)
    except BaseException:
        os.close(fd)
        unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)




class HlsRecorder(DisposeTimer):
    """Writes the HLS files of one stream (``vhost``/``app``/``stream``)
    across its publishes, until they are disposed.

    ``start(source)`` at each publish, ``stop()`` at each unpublish;
    ``dispose()`` removes every file (called by the ``hls_dispose`` timer).
    ``on_disposed()`` is called once the files are gone.  ``ctx`` gives the
    config, the clock (``callLater`` and ``seconds()``, which also names
    files with [timestamp]...) and ``hooks``.
    """

    kind = "hls"

    def __init__(self, ctx, vhost: str, app: str, stream: str, on_disposed=None, random_bytes=os.urandom) -> None:
        self.ctx = ctx
        self.vhost = vhost
        self.app = app
        self.stream = stream
        self.on_disposed = on_disposed
        self.random_bytes = random_bytes
        self.segmenter: HlsSegmenter | None = None
        self.source = None
        self.conf = None  # the VhostConfig of the current (or last) publish
        self.client = None  # the publisher's ClientInfo, for the hooks
        self.enabled = False  # attached and writing
        self.errors = 0
        self.last_error = ""
        self._fd = -1
        self._fd_seq = -1
        self._fd_path = ""
        self._failed: set[int] = set()  # segments whose file could not be written
        self._dispose_call = None
        self._after_apply = None  # what hls_on_error asked for, done after the batch
        self.ll = None  # LL-HLS: the LowLatencyStream the HTTP server serves
        self.log = ContextLogger("hls")

    # ---- life cycle -------------------------------------------------------------------------
    def start(self, source, conf=None) -> None:
        """A publish of this stream begins: attach to ``source``."""
        self._cancel_dispose()
        self.conf = conf if conf is not None else self.ctx.vhost(self.vhost)
        hls = self.conf.hls
        if self.segmenter is None:
            self.segmenter = HlsSegmenter(
                hls, self.app, self.stream, self.vhost,
                wallclock=self.ctx.clock.seconds,
                random_bytes=self.random_bytes,
                utc=bool(getattr(self.ctx.config, "utc_time", False)),
            )
            self._restore()
        else:
            self.segmenter.on_publish(hls)
        self.source = source
        self.client = source.publisher_info
        self.log = ContextLogger(getattr(self.client, "id", None) or source.id or "hls")
        self.enabled = True
        self._failed.clear()
        self._open_low_latency()
        source.add_tap(self.on_packet, replay_headers=True)
        segmenter = self.segmenter
        mode = "ts"
        if segmenter.low_latency:
            mode = f"fmp4, low latency, part={segmenter.part_ms / 1000:.3f}s"
        elif segmenter.fmp4:
            mode = "fmp4"
        self.log.trace(
            f"hls: start {self.vhost}/{self.app}/{self.stream}, fragment={hls.hls_fragment}s, "
            f"window={hls.hls_window}s, path={hls.hls_path}, m3u8={self.segmenter.m3u8_url}, "
            f"format={mode}, keys={'on' if segmenter.encrypting else 'off'}, dispose={hls.hls_dispose}s"
        )
        if hls.hls_keys and segmenter.low_latency:
            self.log.warn("hls: hls_keys is not applied with hls_low_latency on: segments and parts are clear")

    def _open_low_latency(self) -> None:
        """LL-HLS: the stream the HTTP server serves from memory."""
        segmenter = self.segmenter
        path = self._url_path(segmenter.m3u8_path)
        if not segmenter.low_latency or path is None:
            if self.ll is not None:
                self.ll.close()
                self.ll = None
            return
        if self.ll is not None and not self.ll.closed and self.ll.playlist_path == path:
            self.ll.part_target = segmenter.part_ms / 1000.0
            return
        if self.ll is not None:
            self.ll.close()
        from .resource import hls_memory

        self.ll = hls_memory(self.ctx).open_stream(path, segmenter.part_ms / 1000.0, segmenter.target_duration)

    def _url_path(self, path: str) -> str | None:
        """The URL path of a file under hls_path (``/live/s.m3u8``)."""
        root = self.segmenter.conf.hls_path.rstrip("/")
        if not path.startswith(root + "/"):
            return None
        return "/" + path[len(root) + 1:].lstrip("/")

    def stop(self) -> None:
        """The publisher left: finish the open segment, refresh the playlist
        and arm the dispose timer."""
        source = self.source
        if source is not None:
            if self.client is None:
                self.client = source.publisher_info
            source.remove_tap(self.on_packet)
        if self.enabled and self.segmenter is not None:
            self.enabled = False
            self._apply(self.segmenter.on_unpublish())
        self.enabled = False
        self._close_fd(remove=True)
        self.source = None
        if self.segmenter is not None and self.conf is not None:
            hls = self.conf.hls
            self._after_unpublish(hls.hls_dispose, 2.0 * hls.hls_window)

    def _restore(self) -> None:
        """A new recorder: take over the playlist a released (or crashed)
        recorder of this stream left on disk (see :mod:`.restore`)."""
        segmenter = self.segmenter
        try:
            with open(segmenter.m3u8_path, "rb") as f:
                text = f.read(MAX_PLAYLIST_BYTES).decode("utf-8")
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError) as e:
            self.log.warn(f"hls: cannot read {segmenter.m3u8_path} to go on from it: {e}")
            return
        read = read_playlist(text)
        if read is None:
            self.log.warn(f"hls: {segmenter.m3u8_path} is not a media playlist, numbers start at 0")
            return
        taken = segmenter.restore(read)
        self.log.trace(f"hls: {segmenter.m3u8_path} taken over, {taken} of {len(read.entries)} segments, "
                       f"next seq={segmenter.sequence}")

    def _forget(self) -> None:
        """hls_dispose 0, :meth:`release` after :func:`release_after`: the
        playlist and its segments stay on disk, for the next recorder to
        take over; segments already out of the playlist go, with
        hls_cleanup on."""
        segmenter, self.segmenter = self.segmenter, None
        if self.ll is not None:
            self.ll.close()
            self.ll = None
        if segmenter is not None and segmenter.conf.hls_cleanup:
            for path in segmenter.release():
                try:
                    unlink(path)
                except OSError as e:
                    self.log.warn(f"hls: cleanup cannot remove {path}: {e}")

    def dispose(self) -> None:
        """Remove every file of the stream (segments, keys, playlist)."""
        self._cancel_dispose()
        if self.enabled:
            self.stop()
            self._cancel_dispose()
        segmenter, self.segmenter = self.segmenter, None
        if self.ll is not None:
            self.ll.close()
            self.ll = None
        if segmenter is not None:
            removed = 0
            for path in segmenter.dispose():
                try:
                    removed += unlink(path)
                except OSError as e:
                    self.log.warn(f"hls: dispose cannot remove {path}: {e}")
            self.log.trace(f"hls: disposed {self.vhost}/{self.app}/{self.stream}, {removed} files removed")
        if self.on_disposed is not None:
            self.on_disposed(self)


    # ---- packets ------------------------------------------------------------------------
    def on_packet(self, pkt) -> None:
        if not self.enabled:
            return
        events = self.segmenter.on_packet(pkt)
        if events:
            self._apply(events)

    def _apply(self, events) -> None:
        """Carry out one batch of segmenter events: segment and key files in
        order, then the playlist, then the removals, then the hooks."""
        playlist = False
        expired: list[str] = []
        closed = []
        parts = []
        for event in events:
            if isinstance(event, SegmentData):
                self._write(event.segment, event.data)
            elif isinstance(event, PartAdded):
                parts.append(event)
            elif isinstance(event, SegmentOpened):
                self._open(event.segment)
            elif isinstance(event, InitCreated):
                self._write_init(event.init)
            elif isinstance(event, SegmentClosed):
                if self._finish(event.segment):
                    closed.append(event.segment)
            elif isinstance(event, PlaylistUpdated):
                playlist = True
            elif isinstance(event, FilesExpired):
                expired.extend(event.paths)
            elif isinstance(event, KeyCreated):
                self._write_key(event.key)
            elif isinstance(event, SegmentDropped):
                self._drop(event.segment)
        if playlist:
            self._write_playlist()
        if self.ll is not None and (parts or closed or playlist):
            self._publish_low_latency(parts, closed)
        for path in expired:
            try:
                unlink(path)
            except OSError as e:
                self.log.warn(f"hls: cleanup cannot remove {path}: {e}")
        for segment in closed:
            self._notify(segment)
        action, self._after_apply = self._after_apply, None
        if action is not None:
            action()

    # ---- files --------------------------------------------------------------------------
    def _open(self, segment) -> None:
        self._close_fd(remove=True)
        if segment.seq in self._failed:
            return  # its key could not be written
        try:
            _makedirs_for(segment.tmp_path)
            self._fd = os.open(segment.tmp_path, _O_FLAGS, 0o644)
        except OSError as e:
            self._failed.add(segment.seq)
            self._error(f"cannot create {segment.tmp_path}", e)
            return
        self._fd_seq = segment.seq
        self._fd_path = segment.tmp_path

    def _write(self, segment, data: bytes) -> None:
        if self._fd_seq != segment.seq:
            return
        try:
            _write_all(self._fd, data)
        except OSError as e:
            self._failed.add(segment.seq)
            self._close_fd(remove=True)
            self._error(f"cannot write {segment.tmp_path}", e)

    def _finish(self, segment) -> bool:
        """Close the segment's file and rename it into place; False (and the
        segment leaves the playlist) when it could not be written."""
        ok = self._fd_seq == segment.seq and segment.seq not in self._failed
        if ok:
            fd, self._fd, self._fd_seq = self._fd, -1, -1
            try:
                os.close(fd)
                os.replace(segment.tmp_path, segment.path)
            except OSError as e:
                ok = False
                self._error(f"cannot rename {segment.tmp_path} to {segment.path}", e)
                _quiet_unlink(segment.tmp_path)
        else:
            if self._fd_seq == segment.seq:
                self._close_fd(remove=True)
            self._failed.discard(segment.seq)
            self.log.warn(f"hls: segment {segment.seq} left out of {self.segmenter.m3u8_path}")
        if not ok:
            self.segmenter.discard(segment.seq)
        return ok

    def _drop(self, segment) -> None:
        self._failed.discard(segment.seq)
        if self._fd_seq == segment.seq:
            self._close_fd(remove=True)

    def _close_fd(self, remove: bool) -> None:
        fd, self._fd, self._fd_seq = self._fd, -1, -1
        if fd < 0:
            return
        try:
            os.close(fd)
        except OSError:
            pass
        if remove:
            _quiet_unlink(self._fd_path)

    def _write_key(self, key) -> None:
        try:
            write_atomically(key.path, key.key)
        except OSError as e:
            # The segment opened with this key could not be played: it is
            # left out, and the next one gets a new key.
            self.segmenter.rotate_key()
            current = self.segmenter.current
            if current is not None and current.key is key:
                self._failed.add(current.seq)
            self._error(f"cannot write key {key.path}", e)

    def _write_init(self, init) -> None:
        try:
            write_atomically(init.path, init.data)
        except OSError as e:
            self._error(f"cannot write init segment {init.path}", e)

    def _publish_low_latency(self, parts, closed) -> None:
        """Hand the new parts, segments and LL-HLS playlist to the HTTP
        server's memory, which answers the requests waiting for them."""
        ll = self.ll
        segmenter = self.segmenter
        for event in parts:
            path = self._url_path(event.part.path)
            if path is not None:
                ll.add_part(event.part.number, path, event.data)
        for segment in closed:
            path = self._url_path(segment.path)
            if path is not None:
                ll.add_segment(path, [p.number for p in segment.parts])
        latest = segmenter.latest_part
        last = segmenter.segments[-1].seq if segmenter.segments else -1
        ll.update(
            segmenter.ll_playlist(),
            last,
            (latest.msn, latest.index) if latest is not None else None,
            segmenter.next_part,
            self._url_path(segmenter.part_path(segmenter.next_part)) or "",
            segmenter.target_duration,
            segmenter.parts_needed_from(),
        )

    def _write_playlist(self) -> None:
        segmenter = self.segmenter
        text = segmenter.playlist()
        if not text:
            return
        try:
            write_atomically(segmenter.m3u8_path, text.encode())
        except OSError as e:
            self._error(f"cannot write {segmenter.m3u8_path}", e)

    # ---- errors -------------------------------------------------------------------------
    def _error(self, what: str, exc: OSError) -> None:
        self.errors += 1
        self.last_error = f"{what}: {exc}"
        strategy = self.conf.hls.hls_on_error if self.conf is not None else "continue"
        self.log.error(f"hls: {what}: {exc}, hls_on_error={strategy}")
        if strategy == "ignore":
            self._after_apply = self._give_up
        elif strategy == "disconnect":
            self._after_apply = self._disconnect

    def _give_up(self) -> None:
        """hls_on_error ignore: HLS stops for this publish (the files written
        so far stay, and are disposed as usual)."""
        if not self.enabled:
            return
        self.log.warn(f"hls: disabled for {self.vhost}/{self.app}/{self.stream} until the next publish")
        if self.source is not None:
            self.source.remove_tap(self.on_packet)
        self.enabled = False
        self._apply(self.segmenter.on_unpublish())
        self._close_fd(remove=True)

    def _disconnect(self) -> None:
        source = self.source
        if source is None or not source.active:
            return
        self.log.warn(f"hls: kick the publisher of {self.vhost}/{self.app}/{self.stream} (hls_on_error disconnect)")
        self.ctx.clock.callLater(0, source.kick_publisher)

    # ---- hooks --------------------------------------------------------------------------
    def _notify(self, segment) -> None:
        hooks = self.ctx.hooks
        if hooks is None:
            return
        client = self.client
        if client is None and self.source is not None:
            client = self.client = self.source.publisher_info
        if client is None:
            from ..context import ClientInfo
            from ..url import StreamRequest

            client = ClientInfo("", request=StreamRequest(vhost=self.vhost, app=self.app, stream=self.stream))
        segmenter = self.segmenter
        d = hooks.on_hls(
            client,
            segment.path,
            segment.uri,
            segmenter.m3u8_path,
            segmenter.m3u8_url,
            segment.seq,
            segment.duration,
        )
        _log_failure(d, self.log, "on_hls")
        conf = self.conf
        if conf is not None and conf.http_hooks.enabled and conf.http_hooks.on_hls_notify:
            _log_failure(hooks.on_hls_notify(client, segment.uri), self.log, "on_hls_notify")


def _quiet_unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _log_failure(d, log, what: str) -> None:
    if d is not None and hasattr(d, "addErrback"):
        d.addErrback(lambda f: log.warn(f"hls: {what} failed: {f.getErrorMessage()}"))
