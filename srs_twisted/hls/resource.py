"""LL-HLS from memory: playlists with blocking reload, parts with preload
hints, served by the HTTP server (``twisted.web``).

The HTTP root asks :meth:`HlsMemory.resource_for` before it serves static
files; for the paths of a low-latency stream (its playlist, its parts, the
hinted next part, its recent segments) it gets a leaf resource.  The
recorder (:mod:`srs_twisted.hls.writer`) feeds one :class:`LowLatencyStream`
per stream with ``add_part``, ``add_segment`` and ``update``.

Requests that ask for what does not exist yet are held (``NOT_DONE_YET``)
and answered by ``update``/``add_part`` when the segmenter produces it --
there is no polling -- or when they time out (RFC 8216bis 6.2.5.2):

* ``GET s.m3u8?_HLS_msn=M[&_HLS_part=N]`` waits until the playlist has
  segment M (or part N of segment M, a part index past the segment's last
  meaning part 0 of the next segment), then answers the whole playlist.
  ``_HLS_part`` without ``_HLS_msn``, a non-number, M beyond the last
  segment + 2 or N beyond the last part + the Advance Part Limit get 400
  (an N past the parts a segment holds waits for segment M's end);
  no answer after three target durations gets 503.
* ``GET s-partK.m4s`` for the hinted part (``EXT-X-PRELOAD-HINT``) waits
  until it is complete; any other unknown part is 404, and a hinted part
  that does not come within three target durations is 404 too.
* At most ``max_waiters`` requests are held per stream; more get 503.
"""

from __future__ import annotations

import math
from urllib.parse import unquote

from twisted.web import resource, server

__all__ = ["HlsMemory", "LowLatencyStream", "hls_memory", "MAX_WAITERS"]

MAX_WAITERS = 1000
PLAYLIST_TYPE = b"application/vnd.apple.mpegurl"
PART_TYPE = b"video/mp4"


def hls_memory(ctx) -> "HlsMemory":
    """The server's :class:`HlsMemory` (``ctx.hls_memory``), made on first use."""
    memory = getattr(ctx, "hls_memory", None)
    if memory is None:
        memory = ctx.hls_memory = HlsMemory(ctx.clock)
    return memory


def _headers(request, content_type: bytes, cache: bytes) -> None:
    request.setHeader(b"content-type", content_type)
    request.setHeader(b"cache-control", cache)
    request.setHeader(b"access-control-allow-origin", b"*")
    request.setHeader(b"server", b"srs-twisted")


def _gone(request) -> bool:
    return bool(request.finished or getattr(request, "_disconnected", False))


def _respond(request, code: int, body: bytes, content_type: bytes = b"text/plain",
             cache: bytes = b"no-cache") -> None:
    """Answer a held request (nothing if the client left)."""
    if _gone(request):
        return
    request.setResponseCode(code)
    _headers(request, content_type, cache)
    request.setHeader(b"content-length", b"%d" % len(body))
    request.write(body)
    request.finish()


def _error(request, code: int, text: str) -> bytes:
    request.setResponseCode(code)
    _headers(request, b"text/plain", b"no-cache")
    return text.encode()


class _Waiter:
    __slots__ = ("request", "msn", "part", "number", "call")

    def __init__(self, request, msn=None, part=None, number=None) -> None:
        self.request = request
        self.msn = msn
        self.part = part
        self.number = number
        self.call = None


class LowLatencyStream:
    """What the HTTP server knows of one LL-HLS stream: the current
    playlist, the parts still available and the requests waiting.

    Paths are URL paths (``/live/s.m3u8``).  ``target`` is the target
    duration (s), ``part_target`` the part target duration (s).
    """

    def __init__(self, memory: "HlsMemory", playlist_path: str, part_target: float, target: int) -> None:
        self.memory = memory
        self.playlist_path = playlist_path
        self.part_target = part_target
        self.target = target
        self.text = b""
        self.last_segment = -1  # the newest whole segment's sequence number
        self.last_part: tuple[int, int] | None = None  # (msn, index) of the newest part
        self.next_part = 0
        self.next_part_path: str | None = None
        self.parts: dict[int, tuple[str, bytes]] = {}  # number -> (path, bytes)
        self.segments: dict[str, list[int]] = {}  # path -> its part numbers
        self._playlist_waiters: list[_Waiter] = []
        self._part_waiters: dict[int, list[_Waiter]] = {}
        self.held = 0
        self.closed = False

    # ---- what the recorder tells ---------------------------------------------------------
    def add_part(self, number: int, path: str, data: bytes) -> None:
        """A complete part: answer the requests waiting for it."""
        self.parts[number] = (path, data)
        self.memory._route(path, (self, "part", number))
        waiters = self._part_waiters.pop(number, ())
        for waiter in waiters:
            self._release(waiter)
        for waiter in waiters:
            _respond(waiter.request, 200, data, PART_TYPE, b"max-age=60")

    def add_segment(self, path: str, numbers: list[int]) -> None:
        """A whole segment made of these parts (served while they all are)."""
        if numbers:
            self.segments[path] = list(numbers)
            self.memory._route(path, (self, "segment", path))

    def update(self, text: str, last_segment: int, last_part, next_part: int, next_part_path: str,
               target: int, keep_from: int) -> None:
        """A new playlist: answer the playlist requests it satisfies.
        ``keep_from`` is the oldest part still needed."""
        self.text = text.encode()
        self.last_segment = last_segment
        self.last_part = last_part
        self.target = target
        if self.next_part_path is not None and self.next_part_path != next_part_path:
            route = self.memory._routes.get(self.next_part_path)
            if route is not None and route[1] == "hint":
                del self.memory._routes[self.next_part_path]
        self.next_part = next_part
        self.next_part_path = next_part_path
        if next_part not in self.parts:
            self.memory._route(next_part_path, (self, "hint", next_part))
        self._prune(keep_from)
        if self._playlist_waiters and self.text:
            waiters, self._playlist_waiters = self._playlist_waiters, []
            answer = []
            for waiter in waiters:
                if self.satisfied(waiter.msn, waiter.part):
                    self._release(waiter)
                    answer.append(waiter)
                else:
                    self._playlist_waiters.append(waiter)
            for waiter in answer:
                _respond(waiter.request, 200, self.text, PLAYLIST_TYPE)

    def _prune(self, keep_from: int) -> None:
        for number in [n for n in self.parts if n < keep_from]:
            path, _ = self.parts.pop(number)
            self.memory._unroute(path, self)
        for path in [p for p, numbers in self.segments.items() if numbers[0] < keep_from]:
            del self.segments[path]
            self.memory._unroute(path, self)

    def close(self) -> None:
        """The stream's files are gone: everything waiting gets 404."""
        self.closed = True
        waiters = list(self._playlist_waiters)
        for items in self._part_waiters.values():
            waiters.extend(items)
        self._playlist_waiters = []
        self._part_waiters = {}
        for waiter in waiters:
            self._forget_timer(waiter)
            _respond(waiter.request, 404, b"Not Found")
        self.held = 0
        self.parts.clear()
        self.segments.clear()
        self.memory._forget(self)

    # ---- blocking reload rules ------------------------------------------------------------
    @property
    def advance_part_limit(self) -> int:
        """RFC 8216bis 6.2.5.2: 3 / PART-TARGET below one second, else 3."""
        if 0 < self.part_target < 1:
            return math.ceil(3 / self.part_target - 1e-9)
        return 3

    def satisfied(self, msn: int, part: int | None) -> bool:
        if not self.text:
            return False
        if part is None:
            return self.last_segment >= msn
        return self.last_part is not None and self.last_part >= (msn, part)

    @property
    def parts_per_segment(self) -> int:
        """The parts a segment of the target duration holds."""
        if self.part_target <= 0:
            return 1
        return max(1, math.ceil(self.target / self.part_target - 1e-9))

    def too_far(self, msn: int, part: int | None) -> bool:
        """RFC 8216bis 6.2.5.2: 400 for a segment beyond the last + 2, or a
        part beyond the last by the Advance Part Limit.  A part index past
        what a segment holds asks for that segment's end (its last part, or
        part 0 of the next), as ``_HLS_msn`` alone does: hls.js without its
        low-latency mode asks for the next segment so, with the part index of
        the previous segment's last (``_HLS_msn=7&_HLS_part=7`` after a 4 s
        segment), and is held like ``_HLS_msn=7``."""
        if msn > self.last_segment + 2:
            return True
        if part is None or self.last_part is None or part >= self.parts_per_segment:
            return False
        last_msn, last_index = self.last_part
        if msn == last_msn:
            return part > last_index + self.advance_part_limit
        return msn > last_msn and part > self.advance_part_limit

    @property
    def timeout(self) -> float:
        """How long a request is held: three target durations."""
        return 3.0 * max(1, self.target)

    # ---- holding requests -----------------------------------------------------------------
    def _hold(self, request, waiter: _Waiter, code: int, text: bytes) -> bool:
        if self.held >= self.memory.max_waiters:
            return False
        self.held += 1
        waiter.call = self.memory.clock.callLater(self.timeout, self._expire, waiter, code, text)
        request.notifyFinish().addBoth(lambda _: self._left(waiter))
        return True

    def hold_playlist(self, request, msn: int, part: int | None) -> bool:
        waiter = _Waiter(request, msn=msn, part=part)
        if not self._hold(request, waiter, 503, b"Service Unavailable: the playlist did not reach the part asked for"):
            return False
        self._playlist_waiters.append(waiter)
        return True

    def hold_part(self, request, number: int) -> bool:
        waiter = _Waiter(request, number=number)
        if not self._hold(request, waiter, 404, b"Not Found"):
            return False
        self._part_waiters.setdefault(number, []).append(waiter)
        return True

    def _forget_timer(self, waiter: _Waiter) -> None:
        call, waiter.call = waiter.call, None
        if call is not None and call.active():
            call.cancel()

    def _release(self, waiter: _Waiter) -> None:
        self._forget_timer(waiter)
        self.held -= 1

    def _remove(self, waiter: _Waiter) -> bool:
        if waiter.number is None:
            if waiter in self._playlist_waiters:
                self._playlist_waiters.remove(waiter)
                return True
            return False
        items = self._part_waiters.get(waiter.number)
        if items and waiter in items:
            items.remove(waiter)
            if not items:
                del self._part_waiters[waiter.number]
            return True
        return False

    def _expire(self, waiter: _Waiter, code: int, text: bytes) -> None:
        waiter.call = None
        if self._remove(waiter):
            self.held -= 1
            _respond(waiter.request, code, text)

    def _left(self, waiter: _Waiter) -> None:
        """The client went away (or the request was answered)."""
        if self._remove(waiter):
            self._release(waiter)

    @property
    def waiting(self) -> int:
        return self.held


class _StreamResource(resource.Resource):
    """A leaf resource of one stream; ``key`` says which of its things."""

    isLeaf = True

    def __init__(self, stream: LowLatencyStream, key=None) -> None:
        super().__init__()
        self.stream = stream
        self.key = key


class _PlaylistResource(_StreamResource):
    def render_GET(self, request):
        stream = self.stream
        try:
            msn = _directive(request, b"_HLS_msn")
            part = _directive(request, b"_HLS_part")
        except ValueError:
            return _error(request, 400, "Bad Request: _HLS_msn and _HLS_part are decimal integers")
        if part is not None and msn is None:
            return _error(request, 400, "Bad Request: _HLS_part without _HLS_msn")
        if msn is None or stream.satisfied(msn, part):
            if not stream.text:
                return _error(request, 404, "Not Found")
            _headers(request, PLAYLIST_TYPE, b"no-cache")
            return stream.text
        if stream.too_far(msn, part):
            return _error(request, 400, "Bad Request: too far ahead of the playlist")
        if not stream.hold_playlist(request, msn, part):
            return _error(request, 503, "Service Unavailable: too many waiting requests")
        return server.NOT_DONE_YET


class _PartResource(_StreamResource):
    def render_GET(self, request):
        stream = self.stream
        found = stream.parts.get(self.key)
        if found is not None:
            _headers(request, PART_TYPE, b"max-age=60")
            return found[1]
        if self.key != stream.next_part or stream.closed:
            return _error(request, 404, "Not Found")
        if not stream.hold_part(request, self.key):
            return _error(request, 503, "Service Unavailable: too many waiting requests")
        return server.NOT_DONE_YET


class _SegmentResource(_StreamResource):
    def render_GET(self, request):
        numbers = self.stream.segments.get(self.key)
        pieces = [self.stream.parts.get(n) for n in numbers or ()]
        if not pieces or any(p is None for p in pieces):
            return _error(request, 404, "Not Found")
        _headers(request, PART_TYPE, b"max-age=60")
        return b"".join(p[1] for p in pieces)


def _directive(request, name: bytes) -> int | None:
    values = request.args.get(name)
    if not values:
        return None
    text = values[0].decode("latin-1")
    if not text.isdigit():
        raise ValueError(text)
    return int(text)


class HlsMemory:
    """Every LL-HLS stream the HTTP server serves from memory, by URL path."""

    def __init__(self, clock, max_waiters: int = MAX_WAITERS) -> None:
        self.clock = clock
        self.max_waiters = max_waiters
        self._routes: dict[str, tuple] = {}
        self.streams: dict[str, LowLatencyStream] = {}

    def open_stream(self, playlist_path: str, part_target: float, target: int) -> LowLatencyStream:
        """The stream whose playlist is at ``playlist_path`` (a new one
        replaces an old one at the same path)."""
        old = self.streams.get(playlist_path)
        if old is not None:
            old.close()
        stream = LowLatencyStream(self, playlist_path, part_target, target)
        self.streams[playlist_path] = stream
        self._routes[playlist_path] = (stream, "playlist", None)
        return stream

    def _route(self, path: str, route: tuple) -> None:
        self._routes[path] = route

    def _unroute(self, path: str, stream: LowLatencyStream) -> None:
        route = self._routes.get(path)
        if route is not None and route[0] is stream:
            del self._routes[path]

    def _forget(self, stream: LowLatencyStream) -> None:
        for path in [p for p, r in self._routes.items() if r[0] is stream]:
            del self._routes[path]
        if self.streams.get(stream.playlist_path) is stream:
            del self.streams[stream.playlist_path]

    def resource_for(self, request):
        """The resource for ``request`` if its path is one of an LL-HLS
        stream's, else None (the caller goes on with static files)."""
        if not self._routes:
            return None
        try:
            path = unquote(request.path.decode("utf-8"))
        except UnicodeDecodeError:
            return None
        route = self._routes.get(path)
        if route is None:
            return None
        stream, kind, key = route
        if kind == "playlist":
            return _PlaylistResource(stream)
        if kind in ("part", "hint"):
            return _PartResource(stream, key)
        return _SegmentResource(stream, key)
