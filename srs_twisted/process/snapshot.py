"""JPEG snapshots of live streams: ``GET /snapshot/[app]/[stream].jpg``.

SRS has no built-in snapshot; its documentation shows two recipes (an HTTP
hook that starts FFmpeg, or a ``transcode`` engine with ``vcodec png`` and
``oformat image2``).  The transcode recipe works here unchanged (it is an
ordinary transcode engine).  On top of it the HTTP server answers
``/snapshot/[app]/[stream].jpg`` with the newest JPEG of a published stream.

What runs, exactly:

* one FFmpeg per stream reads the stream over RTMP from this server and
  writes a JPEG every :data:`INTERVAL` seconds to its stdout (``-f mjpeg
  pipe:1``); the server keeps the newest frame in memory;
* it starts at the first request for a published stream, and stops
  :data:`IDLE` seconds after the last request, or at unpublish;
* for a stream that a transcode snapshot recipe covers (an enabled engine
  with ``vcodec png`` or ``mjpeg`` in a matching ``transcode`` block), it
  starts at publish and runs until unpublish, requested or not;
* a request for a published stream with no frame yet waits up to
  :data:`WAIT_FIRST` seconds for the first one (503 after that); a stream
  not published is 404; at most :data:`MAX_CHILDREN` on-demand children run
  at once (503 beyond).

The vhost is the ``?vhost=`` query parameter, else the Host header, as for
the other HTTP streams.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet import defer
from twisted.web import resource, server
from zope.interface import implementer

from ..errors import InvalidStreamName
from ..interfaces import IStreamObserver
from ..log import ContextLogger
from ..url import validate_names
from .ffmpeg import IMAGE_VCODECS, FFmpegNotFound, find_ffmpeg, rtmp_endpoint, transcode_input
from .supervisor import ProcessSupervisor, WorkersService, context_id

INTERVAL = 2.0  # seconds between two frames
IDLE = 60.0  # an on-demand child stops this long after the last request
WAIT_FIRST = 10.0  # how long a request waits for the first frame
MAX_CHILDREN = 16  # on-demand children at once
CHECK = 5.0  # how often idle children are looked for
MAX_BUFFER = 8 * 1024 * 1024  # bytes of an unfinished JPEG before giving up on it

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"


def snapshot_args(binary: str, input_url: str, interval: float = INTERVAL) -> list[str]:
    """FFmpeg reading the stream and writing one JPEG every ``interval`` s to stdout."""
    return [
        binary,
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "flv",
        "-i",
        input_url,
        "-an",
        "-sn",
        "-dn",
        "-vf",
        f"fps=1/{interval:g}",
        "-q:v",
        "5",
        "-f",
        "mjpeg",
        "pipe:1",
    ]


class JpegSplitter:
    """Cuts a stream of concatenated JPEGs (FFmpeg's mjpeg muxer) into frames.

    FFmpeg's JPEGs carry no embedded thumbnail, so the first EOI after an
    SOI ends the frame (0xFF in entropy-coded data is always stuffed)."""

    def __init__(self, limit: int = MAX_BUFFER) -> None:
        self.buf = bytearray()
        self.limit = limit

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        frames = []
        while True:
            start = self.buf.find(SOI)
            if start < 0:
                del self.buf[: max(0, len(self.buf) - 1)]
                break
            end = self.buf.find(EOI, start + 2)
            if end < 0:
                del self.buf[:start]
                if len(self.buf) > self.limit:
                    self.buf.clear()
                break
            frames.append(bytes(self.buf[start : end + 2]))
            del self.buf[: end + 2]
        return frames


def recipe_covers(conf, app: str, stream: str) -> bool:
    """Whether SRS's transcode snapshot recipe applies to the stream: an
    enabled ``transcode`` block of matching scope with an enabled engine
    whose ``vcodec`` is png or mjpeg."""
    if conf is None:
        return False
    for block in conf.transcodes:
        if not block.enabled or block.scope not in ("", app, f"{app}/{stream}"):
            continue
        if any(e.enabled and e.vcodec in IMAGE_VCODECS for e in block.engines):
            return True
    return False


class _Shot:
    """The snapshot child of one stream and its newest frame."""

    def __init__(self, key, always: bool) -> None:
        self.key = key
        self.always = always
        self.sup: ProcessSupervisor | None = None
        self.splitter = JpegSplitter()
        self.frame: bytes | None = None
        self.frame_at = 0.0
        self.last_request = 0.0
        self.waiters: list[defer.Deferred] = []

    def fire(self, value) -> None:
        waiters, self.waiters = self.waiters, []
        for d in waiters:
            if not d.called:
                d.callback(value)


@implementer(IStreamObserver)
class SnapshotObserver:
    """Registry observer running the per-stream snapshot children."""

    def __init__(self, ctx, workers: WorkersService | None = None, find: Callable = find_ffmpeg) -> None:
        self.ctx = ctx
        self.workers = workers if workers is not None else WorkersService(ctx.clock)
        self.find = find
        self.shots: dict[tuple[str, str, str], _Shot] = {}
        self.interval = INTERVAL
        self.idle = IDLE
        self.wait_first = WAIT_FIRST
        self.max_children = MAX_CHILDREN
        self._check_call = None
        self._pending: dict = {}

    # ---- registry observer --------------------------------------------------------
    def source_published(self, source) -> None:
        if recipe_covers(self.ctx.vhost(source.vhost), source.app, source.stream):
            key = (source.vhost, source.app, source.stream)
            self._pending[key] = self.ctx.clock.callLater(0, self._publish_start, source)

    def _publish_start(self, source) -> None:
        key = (source.vhost, source.app, source.stream)
        self._pending.pop(key, None)
        if source.active:
            self._ensure(source, always=True)

    def source_unpublished(self, source) -> defer.Deferred:
        key = (source.vhost, source.app, source.stream)
        call = self._pending.pop(key, None)
        if call is not None and call.active():
            call.cancel()
        return self._drop(key)

    def reload(self) -> defer.Deferred:
        """Recipe coverage may have changed: start or demote children."""
        for source in self.ctx.registry.sources():
            if not source.active:
                continue
            key = (source.vhost, source.app, source.stream)
            covered = recipe_covers(self.ctx.vhost(source.vhost), source.app, source.stream)
            shot = self.shots.get(key)
            if covered:
                self._ensure(source, always=True)
            elif shot is not None and shot.always:
                shot.always = False
                shot.last_request = self.ctx.clock.seconds()
        return defer.succeed(None)

    # ---- children --------------------------------------------------------------------
    def _ensure(self, source, always: bool = False) -> _Shot | None:
        key = (source.vhost, source.app, source.stream)
        shot = self.shots.get(key)
        if shot is not None:
            shot.always = shot.always or always
            return shot
        if not always and sum(1 for s in self.shots.values() if not s.always) >= self.max_children:
            return None
        try:
            binary = self.find("")
        except FFmpegNotFound as e:
            ContextLogger(source.id).error(f"snapshot: {e}")
            return None
        shot = _Shot(key, always)
        host, port = rtmp_endpoint(self.ctx.config)
        argv = snapshot_args(binary, transcode_input(port, *key, host=host), self.interval)
        shot.sup = self.workers.supervise(
            argv,
            name=f"snapshot {source.url}",
            log=ContextLogger(context_id(source)),
            on_stdout=lambda data, s=shot: self._data(s, data),
        )
        if shot.sup is None:
            return None
        self.shots[key] = shot
        self._schedule_check()
        return shot

    def _data(self, shot: _Shot, data: bytes) -> None:
        frames = shot.splitter.feed(data)
        if frames:
            shot.frame = frames[-1]
            shot.frame_at = self.ctx.clock.seconds()
            shot.fire(shot.frame)

    def _drop(self, key) -> defer.Deferred:
        shot = self.shots.pop(key, None)
        if shot is None:
            return defer.succeed(None)
        shot.fire(None)
        return self.workers.release(shot.sup)

    def _schedule_check(self) -> None:
        if self._check_call is None or not self._check_call.active():
            self._check_call = self.ctx.clock.callLater(CHECK, self._check)

    def _check(self) -> None:
        self._check_call = None
        now = self.ctx.clock.seconds()
        for key, shot in list(self.shots.items()):
            if not shot.always and now - shot.last_request >= self.idle:
                self._drop(key)
        if self.shots:
            self._schedule_check()

    # ---- requests ---------------------------------------------------------------------
    def request(self, vhost: str, app: str, stream: str) -> defer.Deferred:
        """The newest JPEG of the stream: fires with bytes, ``None`` when the
        stream is not published, or ``b""`` when no frame came in time (or
        too many snapshot children run)."""
        source = self.ctx.registry.get(vhost, app, stream)
        if source is None or not source.active:
            return defer.succeed(None)
        shot = self._ensure(source)
        if shot is None:
            return defer.succeed(b"")
        shot.last_request = self.ctx.clock.seconds()
        if shot.frame is not None:
            return defer.succeed(shot.frame)
        d = defer.Deferred()
        shot.waiters.append(d)
        timer = self.ctx.clock.callLater(self.wait_first, lambda: d.called or d.callback(b""))
        d.addBoth(lambda result: (timer.active() and timer.cancel(), result)[1])
        return d


def _host(request) -> str:
    host = (request.getHeader(b"host") or b"").decode("latin-1")
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.partition(":")[0]


class SnapshotResource(resource.Resource):
    """``/snapshot/<app...>/<stream>.jpg``: the newest JPEG of a live stream."""

    isLeaf = True

    def __init__(self, ctx, observer: SnapshotObserver | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self._observer = observer

    @property
    def observer(self) -> SnapshotObserver | None:
        if self._observer is None:
            self._observer = next((o for o in self.ctx.registry.observers if isinstance(o, SnapshotObserver)), None)
        return self._observer

    def _error(self, request, code: int, message: str) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return message.encode() + b"\n"

    def _target(self, request) -> tuple[str, str, str] | None:
        try:
            parts = [p.decode("utf-8") for p in request.postpath if p]
        except UnicodeDecodeError:
            return None
        if len(parts) < 2 or not parts[-1].endswith(".jpg"):
            return None
        app, stream = "/".join(parts[:-1]), parts[-1][: -len(".jpg")]
        try:
            validate_names(app, stream)
        except InvalidStreamName:
            return None
        vhost = request.args.get(b"vhost", [b""])[0].decode("utf-8", "replace") or _host(request)
        conf = self.ctx.vhost(vhost)
        if conf is None or not conf.enabled:
            return None
        return conf.name, app, stream

    def render_GET(self, request):
        target = self._target(request)
        if target is None:
            return self._error(request, 404, "no such stream")
        observer = self.observer
        if observer is None:
            return self._error(request, 503, "snapshots are not enabled")
        d = observer.request(*target)
        finished = []
        request.notifyFinish().addBoth(lambda _: finished.append(True))

        def reply(jpeg):
            if finished:
                return
            if jpeg is None:
                body = self._error(request, 404, "stream not published")
            elif not jpeg:
                request.setHeader(b"retry-after", b"2")
                body = self._error(request, 503, "no snapshot yet")
            else:
                request.setHeader(b"content-type", b"image/jpeg")
                request.setHeader(b"cache-control", b"no-store")
                request.setHeader(b"access-control-allow-origin", b"*")
                body = jpeg
            request.setHeader(b"content-length", str(len(body)).encode())
            if request.method != b"HEAD":
                request.write(body)
            request.finish()

        def failed(failure):
            ContextLogger().error(f"snapshot {'/'.join(target)}: {failure.getErrorMessage()}")
            if not finished:
                request.write(self._error(request, 500, "snapshot failed"))
                request.finish()

        d.addCallback(reply)
        d.addErrback(failed)
        return server.NOT_DONE_YET


def snapshot_resource(ctx, observer: SnapshotObserver | None = None) -> resource.Resource:
    """The ``/snapshot`` resource; it uses the SnapshotObserver among
    ``ctx.registry.observers`` unless one is given."""
    return SnapshotResource(ctx, observer)


__all__ = ["JpegSplitter", "SnapshotObserver", "SnapshotResource", "recipe_covers", "snapshot_args", "snapshot_resource"]
