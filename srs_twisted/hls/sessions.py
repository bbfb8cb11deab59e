"""HLS viewer sessions (SRS's ``hls_ctx`` / ``hls_ts_ctx``, SrsHlsStream).

HLS is stateless HTTP, so SRS makes a pseudo connection per viewer: the
first playlist request without ``?hls_ctx=`` runs ``on_play`` and sends the
player to the same URL with a new ``hls_ctx`` id; later playlist requests
carrying that id get the playlist from disk with the id appended to each
``.ts`` URI (``hls_ts_ctx on``), and every request carrying it keeps the
session alive.  A session no request touched for ``2 × hls_window`` expires:
``on_stop``, and it leaves the client list.  The session is a client in
``ctx.clients`` (type ``hls-play``), so the API lists and kicks it; a kicked
session's playlist requests get 404 (SRS: "HLS stream ... is EOF") until it
expires.

Differences from SRS, on purpose:

* SRS answers the first request with a one-variant master playlist (200)
  pointing at ``path?hls_ctx=id``; we answer ``302`` to that URL, which every
  HTTP client follows without knowing HLS (the playlist it gets is the media
  playlist, so tools reading ``#EXTINF`` lines keep working).
* SRS reuses an unknown ``hls_ctx`` the client sent as the new session's id;
  we make a fresh id (no client-chosen ids in the client table), except in a
  worker of ``workers N``, where the id may be another worker's: a well-formed
  one is taken, as SRS does, and the playlist answered (on_play then runs once
  in each worker the viewer's requests reach).
* SRS registers the session even when ``on_play`` refused it; we do not.
* As in SRS, a playlist that is not on disk is a plain 404: no session, no
  client and no ``on_play`` for a stream that does not exist.
* SRS's hook ``stream`` is the file name with ``.m3u8``; ours is the stream
  name.
* SRS expires one session per 5 s tick; we expire all that are due.
* Segment requests refresh the session here (SRS only counts their bytes).
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, quote, urlencode

from twisted.python.filepath import FilePath, InsecurePath
from twisted.web import resource, server

from ..context import ClientInfo
from ..errors import Denied, InvalidStreamName
from ..http.server import _host, cors
from ..live.registry import new_id
from ..log import ContextLogger
from ..url import StreamRequest, validate_names

PARAM = "hls_ctx"
PLAY_TYPE = "hls-play"
MAX_SESSIONS = 10000
TICK = 5.0  # seconds, SRS's timer5s
M3U8_TYPE = b"application/vnd.apple.mpegurl"
SEGMENT_EXTS = (".ts", ".m4s", ".aac", ".mp3")


def _query(request) -> list[tuple[str, str]]:
    raw = request.uri.partition(b"?")[2].decode("latin-1")
    return parse_qsl(raw, keep_blank_values=True)


def rewrite_playlist(text: str, cid: str) -> str:
    """SRS's rebuild: ``hls_ctx=<id>`` first in the query of each ``.ts`` URI."""
    out = []
    for line in text.split("\n"):
        if line and not line.startswith("#"):
            name, sep, rest = line.partition("?")
            if name.endswith(".ts"):
                line = f"{name}?{PARAM}={cid}" + (f"&{rest}" if sep and rest else "")
        out.append(line)
    return "\n".join(out)


class HlsSession:
    def __init__(self, sessions: "HlsSessions", client: ClientInfo, timeout: float) -> None:
        self.sessions = sessions
        self.client = client
        self.timeout = timeout
        self.last = sessions.clock.seconds()
        self.sent = 0
        self.interrupted = False
        client.send_bytes = lambda: self.sent
        client.kick = self.kick

    @property
    def id(self) -> str:
        return self.client.id

    def alive(self) -> None:
        if not self.interrupted:
            self.last = self.sessions.clock.seconds()

    def kick(self) -> None:
        """The API's DELETE: leave the client list now; the playlist answers
        404 from now on and on_stop comes when the session expires (SRS)."""
        if self.interrupted:
            return
        self.interrupted = True
        self.sessions.log.trace(f"hls-play kicked ctx={self.id}")
        self.sessions.ctx.remove_client(self.client)


class HlsSessions:
    """Every HLS session of a server (one per context, see :func:`sessions_of`)."""

    def __init__(self, ctx, max_sessions: int = MAX_SESSIONS, tick: float = TICK) -> None:
        self.ctx = ctx
        self.clock = ctx.clock
        self.max_sessions = max_sessions
        self.tick = tick
        self.sessions: dict[str, HlsSession] = {}
        self.log = ContextLogger()
        self._timer = None

    # ---- lifetime -------------------------------------------------------------------------
    def add(self, session: HlsSession) -> None:
        self.sessions[session.id] = session
        self._arm()

    def _arm(self) -> None:
        if self._timer is None and self.sessions:
            self._timer = self.clock.callLater(self.tick, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self.clock.seconds()
        for cid, session in list(self.sessions.items()):
            if session.last + session.timeout < now:
                self.expire(session)
        self._arm()

    def expire(self, session: HlsSession) -> None:
        if self.sessions.pop(session.id, None) is None:
            return
        self.log.trace(f"hls-play expired ctx={session.id} send={session.sent}")
        try:
            self.ctx.policy.on_stop(session.client)
        finally:
            self.ctx.remove_client(session.client)

    def stop(self) -> None:
        """Cancel the timer (the sessions stay as they are)."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    # ---- routing --------------------------------------------------------------------------
    def resource_for(self, request, roots, crossdomain: bool = True):
        """The resource answering ``request`` when it belongs to an HLS
        session, else None (the static files serve it).  ``roots`` are the
        directories the playlist is looked up in, first found wins."""
        try:
            path = request.path.decode("utf-8")
        except UnicodeDecodeError:
            return None
        is_m3u8 = path.endswith(".m3u8")
        if not is_m3u8 and not path.endswith(SEGMENT_EXTS):
            return None
        query = _query(request)
        params = dict(query)
        conf = self.ctx.vhost(params.get("vhost") or params.get("domain") or _host(request))
        if conf is None or not conf.hls.enabled or not conf.hls.hls_ctx or conf.hls.hls_low_latency:
            return None
        session = self.sessions.get(params.get(PARAM, ""))
        if not is_m3u8:
            if session is not None:
                session.alive()
                found = _locate(path, roots + [conf.hls.hls_path])
                if found is not None:
                    try:
                        session.sent += found.getsize()
                    except OSError:
                        pass
            return None
        if session is not None:
            if session.interrupted:
                return _Error(404, f"HLS stream {session.id} is EOF")
            session.alive()
            if not conf.hls.hls_ts_ctx:
                return None
            found = _locate(path, roots + [conf.hls.hls_path])
            if found is None:
                return None  # the static files answer 404
            return _Playlist(session, found, crossdomain)
        app, _, name = path.lstrip("/").rpartition("/")
        stream = name[: -len(".m3u8")]
        try:
            validate_names(app, stream)
        except InvalidStreamName as e:
            return _Error(403, str(e))
        if _locate(path, roots + [conf.hls.hls_path]) is None:
            # No playlist, no stream: the static files answer 404 and no
            # session, client or on_play is made (SRS checks the file first).
            return None
        if len(self.sessions) >= self.max_sessions:
            return _Error(503, "too many HLS sessions")
        rest = [(k, v) for k, v in query if k != PARAM]
        host = _host(request)
        req = StreamRequest(
            schema="http", host=host, vhost=conf.name, app=app, stream=stream,
            param=("?" + urlencode(rest)) if rest else "", tc_url=f"http://{host}/{app}",
        )
        given = params.get(PARAM, "")
        adopt = None
        if given and getattr(self.ctx, "worker", None) is not None and _ADOPTABLE.fullmatch(given):
            # With several workers, the session may live in another worker: as SRS does with an
            # unknown hls_ctx, this worker takes the id (on_play runs here too) and answers the
            # playlist, instead of redirecting to a new id that the next request, landing on
            # yet another worker, would not know either.
            found = _locate(path, roots + [conf.hls.hls_path])
            adopt = (given, found, crossdomain)
        return _NewSession(self, conf, req, path, rest, adopt)


# An hls_ctx another worker may have made (new_id("", 8)).
_ADOPTABLE = re.compile(r"[0-9a-z]{8}")


def _locate(path: str, roots) -> FilePath | None:
    segments = [s for s in path.split("/") if s]
    for root in roots:
        if not root:
            continue
        try:
            found = FilePath(os.path.abspath(root)).descendant(segments)
        except InsecurePath:
            return None
        if found.isfile():
            return found
    return None


class _Error(resource.Resource):
    isLeaf = True

    def __init__(self, code: int, text: str) -> None:
        super().__init__()
        self.code, self.text = code, text

    def render(self, request):
        request.setResponseCode(self.code)
        request.setHeader(b"content-type", b"text/plain")
        return self.text.encode()


class _Playlist(resource.Resource):
    isLeaf = True

    def __init__(self, session: HlsSession, found: FilePath, crossdomain: bool) -> None:
        super().__init__()
        self.session, self.found, self.crossdomain = session, found, crossdomain

    def render_GET(self, request):
        try:
            text = self.found.getContent().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return _Error(404, "Not Found").render(request)
        body = rewrite_playlist(text, self.session.id).encode("utf-8")
        self.session.sent += len(body)
        if self.crossdomain:
            cors(request)
        request.setHeader(b"content-type", M3U8_TYPE)
        request.setHeader(b"cache-control", b"no-cache")
        return body

    def render_HEAD(self, request):
        self.render_GET(request)
        return b""


class _NewSession(resource.Resource):
    """A first playlist request: on_play, then 302 to the URL with hls_ctx."""

    isLeaf = True

    def __init__(self, sessions: HlsSessions, conf, req: StreamRequest, path: str, rest, adopt=None) -> None:
        super().__init__()
        self.sessions, self.conf, self.req, self.path, self.rest = sessions, conf, req, path, rest
        self.adopt = adopt  # (hls_ctx, playlist file, crossdomain): take that id, answer the playlist

    def render_GET(self, request):
        ctx = self.sessions.ctx
        log = ContextLogger()
        adopt = self.adopt if self.adopt is not None and self.adopt[0] not in ctx.clients else None
        cid = adopt[0] if adopt is not None else new_id("", 8)
        while adopt is None and (cid in ctx.clients or cid in self.sessions.sessions):
            cid = new_id("", 8)
        peer = request.getClientAddress()
        client = ClientInfo(
            ip=getattr(peer, "host", ""), port=getattr(peer, "port", 0), id=cid, protocol="http", request=self.req
        )
        client.type = PLAY_TYPE
        client.started = ctx.clock.seconds()
        client.page_url = (request.getHeader(b"referer") or b"").decode("latin-1")
        client.source = ctx.registry.get(self.req.vhost, self.req.app, self.req.stream)
        # SRS counts the client before the hook (the hook may look it up).
        ctx.add_client(client)
        timeout = 2 * self.conf.hls.hls_window
        session = HlsSession(self.sessions, client, timeout)

        def allowed(_):
            if len(self.sessions.sessions) >= self.sessions.max_sessions:
                ctx.remove_client(client)
                return _finish(request, 503, "too many HLS sessions")
            self.sessions.add(session)
            log.trace(f"hls-play ctx={cid} ip={client.ip} {self.req.vhost}/{self.req.app}/{self.req.stream}"
                      f"{self.req.param}{' (a session of another worker)' if adopt is not None else ''}")
            if adopt is not None:
                if request.finished or getattr(request, "_disconnected", False):
                    return
                body = _Playlist(session, adopt[1], adopt[2]).render_GET(request)
                if isinstance(body, bytes):
                    request.write(body)
                    request.finish()
                return
            location = quote(self.path) + f"?{PARAM}={cid}"
            if self.rest:
                location += "&" + urlencode(self.rest)
            if request.finished or getattr(request, "_disconnected", False):
                return
            request.setResponseCode(302)
            request.setHeader(b"location", location.encode("latin-1"))
            request.setHeader(b"content-type", b"text/plain")
            request.setHeader(b"cache-control", b"no-cache")
            request.write(b"Found")
            request.finish()

        def refused(failure):
            ctx.remove_client(client)
            if failure.check(Denied):
                log.warn(f"hls-play refused ctx={cid}: {failure.getErrorMessage()}")
                return _finish(request, 403, failure.getErrorMessage())
            log.error(f"hls-play on_play failed ctx={cid}: {failure.getErrorMessage()}")
            return _finish(request, 500, "internal error")

        ctx.policy.on_play(client).addCallbacks(allowed, refused).addErrback(
            lambda f: log.error(f"hls-play: {f.getErrorMessage()}")
        )
        return server.NOT_DONE_YET

    def render_HEAD(self, request):
        return self.render_GET(request)


def _finish(request, code: int, text: str) -> None:
    if request.finished or getattr(request, "_disconnected", False):
        return
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"text/plain")
    request.write(text.encode())
    request.finish()


def sessions_of(ctx) -> HlsSessions:
    """The context's sessions, made on first use (one per server, shared by
    the HTTP and HTTPS ports)."""
    found = getattr(ctx, "hls_sessions", None)
    if found is None:
        found = HlsSessions(ctx)
        ctx.hls_sessions = found
    return found


def resource_for(ctx, request, roots, crossdomain: bool = True):
    """:meth:`HlsSessions.resource_for` without making sessions for servers
    that have no vhost with hls_ctx."""
    path = request.path
    if not (path.endswith(b".m3u8") or path.endswith(tuple(e.encode() for e in SEGMENT_EXTS))):
        return None
    return sessions_of(ctx).resource_for(request, list(roots), crossdomain)
