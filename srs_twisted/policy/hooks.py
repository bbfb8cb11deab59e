"""SRS's HTTP callbacks (``vhost.http_hooks``): who may connect, publish and
play, and what happened afterwards, asked of the user's own web service.

Each action POSTs a compact JSON object (the same fields, in the same order,
as ``srs_app_http_hooks.cpp``) to every URL configured for it, one after the
other.  The blocking actions (``on_connect``, ``on_publish``, ``on_play``)
refuse the client at the first URL that does not authorise it; the others
only log a failure.  The reply rule (:func:`check_reply`) is SRS's
``do_post``.  See docs/callbacks.md.

HTTPS hook URLs work and, like SRS, the server's certificate is not verified
(SRS's client accepts any certificate so self-signed hook servers work); the
server name is sent (SNI) unless the host is an IP literal.
"""

from __future__ import annotations

import ipaddress
import json
import os
from typing import Iterable
from urllib.parse import urlsplit

from twisted.internet import defer, protocol
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.python.failure import Failure
from twisted.web.iweb import IBodyProducer, IPolicyForHTTPS
from zope.interface import implementer

from .. import SERVER_NAME, __version__
from ..context import ClientInfo
from ..errors import Denied, SrsError
from ..log import ContextLogger

DEFAULT_TIMEOUT = 30.0  # s, SRS_HTTP_CLIENT_TIMEOUT
HLS_NOTIFY_TIMEOUT = 10.0  # s, SRS_HLS_NOTIFY_TIMEOUT
MAX_REPLY = 64 * 1024  # bytes of a hook's reply we are willing to read
USER_AGENT = f"{SERVER_NAME}/{__version__}".encode()
RTMP_PROTOCOLS = ("rtmp", "rtmps")
# The protocols SRS sends on_connect/on_close for (its SRT connections call both too).
CONNECT_PROTOCOLS = RTMP_PROTOCOLS + ("srt",)


class HookError(SrsError):
    """A hook request that got no usable HTTP reply (connection, timeout, size)."""


# --------------------------------------------------------------------------------------------
# The reply rule and the body format


def _first_wins(pairs):
    """A JSON object keeping the first of repeated keys (SRS's get_property)."""
    obj: dict = {}
    for key, value in pairs:
        obj.setdefault(key, value)
    return obj


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


def reply_error(status: int, body: bytes) -> str | None:
    """Why a hook reply does not authorise, or None when it does.

    SRS's ``do_post``: status 200 or 201; a non-empty body; the body must
    parse as JSON (a leading UTF-8 BOM is skipped, surrounding whitespace is
    allowed); a non-object must be exactly the bytes ``0`` (no trimming); an
    object must have an *integer* ``code`` (the first one, if repeated) equal
    to 0 (``"0"``, ``0.0``, ``false`` are not integers)."""
    if status not in (200, 201):
        return f"http status {status}"
    if not body:
        return "empty response"
    text = body[3:] if body.startswith(b"\xef\xbb\xbf") else body
    try:
        # latin-1 keeps every byte: the JSON structure is ASCII either way.
        value = json.loads(
            text.decode("latin-1"), object_pairs_hook=_first_wins, parse_constant=_no_constants, strict=False
        )
    except (ValueError, RecursionError):
        return f"response is not json: {_clip(body)}"
    if not isinstance(value, dict):
        if body == b"0":
            return None
        return f"response number code {_clip(body)}"
    code = value.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        return f"response object has no integer code: {_clip(body)}"
    if code != 0:
        return f"response object code {code}: {_clip(body)}"
    return None


def forward_urls(reply: bytes) -> list:
    """The RTMP URLs of an ``on_forward`` reply ``{"code":0,"data":{"urls":[...]}}``
    (non-strings and empty strings dropped); ValueError saying what is missing.
    The body is read as :func:`reply_error` reads it (latin-1, BOM skipped), so a
    reply that passed the reply rule parses here too."""
    text = reply[3:] if reply.startswith(b"\xef\xbb\xbf") else reply
    try:
        obj = json.loads(text.decode("latin-1"), object_pairs_hook=_first_wins, parse_constant=_no_constants,
                         strict=False)
    except (ValueError, RecursionError):
        raise ValueError(f"response is not json: {_clip(reply)}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), dict):
        raise ValueError(f"no data object in {_clip(reply)}")
    urls = obj["data"].get("urls")
    if not isinstance(urls, list):
        raise ValueError(f"no urls array in {_clip(reply)}")
    return [u for u in urls if isinstance(u, str) and u]


def check_reply(status: int, body: bytes) -> bool:
    """Whether a hook reply authorises (see :func:`reply_error`)."""
    return reply_error(status, body) is None


def _json_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "%.2f" % value  # SRS prints every JSON number with %.2f
    return json.dumps(str(value), ensure_ascii=False)


def dumps(body: dict) -> bytes:
    """SRS's JSON: compact, keys in insertion order, UTF-8 unescaped, floats
    with two decimals."""
    text = "{" + ",".join(f"{json.dumps(str(k))}:{_json_value(v)}" for k, v in body.items()) + "}"
    return text.encode("utf-8", "backslashreplace")


def _clip(data: bytes | str, size: int = 256) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text if len(text) <= size else text[:size] + "..."


def _reason(failure: Failure) -> str:
    if failure.check(defer.TimeoutError, HookError, Denied):
        return failure.getErrorMessage()
    value = failure.value
    inner = getattr(value, "reasons", None)  # twisted.web's ResponseFailed and friends
    if inner:
        return "; ".join(_reason(f) for f in inner)
    return f"{type(value).__name__}: {value}" if str(value) else type(value).__name__


# --------------------------------------------------------------------------------------------
# The HTTP client


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@implementer(IPolicyForHTTPS)
class _NoVerifyTLS:
    """An IPolicyForHTTPS that encrypts but trusts any certificate, as SRS."""

    def __init__(self) -> None:
        from twisted.internet.ssl import CertificateOptions

        self._options = CertificateOptions(verify=False)

    def creatorForNetloc(self, hostname: bytes, port: int):
        return _NoVerifyCreator(self._options, hostname.decode("ascii", "replace"))


@implementer(IOpenSSLClientConnectionCreator)
class _NoVerifyCreator:
    def __init__(self, options, hostname: str) -> None:
        self._options = options
        self._sni = None if _is_ip(hostname.strip("[]")) else hostname.encode("idna")

    def clientConnectionForTLS(self, tls_protocol):
        connection = self._options.clientConnectionForTLS(tls_protocol)
        if self._sni:
            connection.set_tlsext_host_name(self._sni)
        return connection


@implementer(IBodyProducer)
class _BytesProducer:
    """An IBodyProducer for a small request body written at once."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.length = len(data)

    def startProducing(self, consumer):
        consumer.write(self.data)
        return defer.succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class _BoundedBody(protocol.Protocol):
    """Collects a response body up to ``limit`` bytes.  Past the limit it
    either stops with what it has (``truncate``) or fails."""

    def __init__(self, limit: int, truncate: bool) -> None:
        self.finished: defer.Deferred = defer.Deferred(self.cancel)
        self.limit = limit
        self.truncate = truncate
        self.chunks: list[bytes] = []
        self.size = 0
        self.done = False

    def _finish(self, result) -> None:
        if not self.done:
            self.done = True
            if isinstance(result, Failure):
                self.finished.errback(result)
            else:
                self.finished.callback(result)

    def dataReceived(self, data: bytes) -> None:
        if self.done:
            return
        room = self.limit - self.size
        if len(data) >= room and (len(data) > room or self.truncate):
            self.chunks.append(data[:room])
            self.size += room
            if self.truncate:
                self._finish(b"".join(self.chunks))
            else:
                self._finish(Failure(HookError(f"response larger than {self.limit} bytes")))
            self.transport.stopProducing()
            return
        self.chunks.append(data)
        self.size += len(data)

    def connectionLost(self, reason=protocol.connectionDone) -> None:
        from twisted.web.client import ResponseDone
        from twisted.web.http import PotentialDataLoss

        if reason.check(ResponseDone, PotentialDataLoss):
            self._finish(b"".join(self.chunks))
        else:
            self._finish(reason)

    def cancel(self, _deferred) -> None:
        # The Deferred errbacks with CancelledError itself once we return.
        self.done = True
        if self.transport is not None:
            self.transport.stopProducing()


class HttpHooksClient:
    """POSTs hook bodies and applies SRS's reply rule.

    ``request`` is the only method touching the network (tests replace it);
    ``post``/``get`` add the timeout, ``call_blocking``/``notify`` the order
    and the reply rule."""

    def __init__(self, reactor, timeout: float = DEFAULT_TIMEOUT, max_body: int = MAX_REPLY, agent=None) -> None:
        self.reactor = reactor
        self.timeout = timeout
        self.max_body = max_body
        self._agent_obj = agent

    # ---- transport -----------------------------------------------------------------------
    def _agent(self):
        if self._agent_obj is None:
            from twisted.web.client import Agent, HTTPConnectionPool

            # One connection per request, closed after the reply (as SRS).
            pool = HTTPConnectionPool(self.reactor, persistent=False)
            self._agent_obj = Agent(self.reactor, contextFactory=_NoVerifyTLS(), pool=pool)
        return self._agent_obj

    def request(self, method: bytes, url: str, data: bytes | None, limit: int, truncate: bool = False):
        """One HTTP request; fires with ``(status, body)`` (the body read up
        to ``limit`` bytes), fails with HookError or a connection error."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return defer.fail(HookError(f"not an http(s) url: {url!r}"))
        from twisted.web.http_headers import Headers

        headers = Headers({b"User-Agent": [USER_AGENT]})
        if data is not None:
            headers.addRawHeader(b"Content-Type", b"application/json")
        producer = _BytesProducer(data) if data is not None else None
        try:
            d = self._agent().request(method, url.encode("utf-8"), headers, producer)
        except Exception as e:  # a malformed URL raises synchronously
            return defer.fail(HookError(f"bad url {url!r}: {e}"))

        def read(response):
            body = _BoundedBody(limit, truncate)
            response.deliverBody(body)
            return body.finished.addCallback(lambda data: (response.code, data))

        return d.addCallback(read)

    def _timed(self, d: defer.Deferred, timeout: float, url: str) -> defer.Deferred:
        def on_timeout(result, after):
            # Whatever the cancellation turned into (Agent wraps it in
            # ResponseNeverReceived), the cause is the timeout.
            if isinstance(result, Failure):
                return Failure(HookError(f"no reply from {url} in {after:g}s"))
            return result

        return d.addTimeout(timeout, self.reactor, onTimeoutCancel=on_timeout)

    def post(self, url: str, body: dict | bytes):
        """POST ``body`` (a dict in SRS's JSON, or bytes); fires with
        ``(status, reply body)`` whatever the status; fails with HookError
        on timeout (``self.timeout``), oversized reply or transport errors."""
        data = body if isinstance(body, bytes) else dumps(body)
        return self._timed(self.request(b"POST", url, data, self.max_body), self.timeout, url)

    def get(self, url: str, max_bytes: int, timeout: float | None = None):
        """GET ``url`` reading at most ``max_bytes`` of the body."""
        d = self.request(b"GET", url, None, max(0, max_bytes), truncate=True)
        return self._timed(d, self.timeout if timeout is None else timeout, url)

    check_reply = staticmethod(check_reply)

    # ---- hook semantics --------------------------------------------------------------------
    @staticmethod
    def _log_for(body, log):
        if log is not None:
            return log
        cid = body.get("client_id") if isinstance(body, dict) else None
        return ContextLogger(cid or None)

    @defer.inlineCallbacks
    def ask(self, url: str, data: bytes):
        """POST ``data`` and apply the reply rule: fires with ``(None, reply)``
        when the URL authorises, else ``(why, reply or None)``; never fails."""
        try:
            status, reply = yield self.post(url, data)
        except Exception:
            return f"error={_reason(Failure())}", None
        error = reply_error(status, reply)
        if error is not None:
            return f"response={_clip(reply)}, status={status}: {error}", reply
        return None, reply

    @defer.inlineCallbacks
    def call_blocking(self, urls: Iterable[str], body: dict, log: ContextLogger | None = None):
        """POST to each URL in order; fails with Denied at the first one that
        times out, fails or does not authorise (the rest are not asked)."""
        yield self._each(urls, body, log, stop=True)

    def call_logged(self, urls: Iterable[str], body: dict, log: ContextLogger | None = None):
        """Like :meth:`call_blocking`, but a failure is logged (a warning)
        instead of raised: fires True when every URL authorised, else False."""
        log = self._log_for(body, log)

        def failed(failure):
            log.warn(failure.getErrorMessage() if failure.check(Denied) else _reason(failure))
            return False

        return self.call_blocking(urls, body, log).addCallbacks(lambda _: True, failed)

    @defer.inlineCallbacks
    def notify(self, urls: Iterable[str], body: dict, log: ContextLogger | None = None):
        """POST to each URL in order, ignoring (logging) every failure.
        The Deferred fires with None once all were tried; it never fails."""
        yield self._each(urls, body, log, stop=False)

    @defer.inlineCallbacks
    def _each(self, urls, body: dict, log, stop: bool):
        log = self._log_for(body, log)
        action = body.get("action", "hook")
        data = dumps(body)
        for url in list(urls):
            why, reply = yield self.ask(url, data)
            if why is None:
                log.trace(f"http: {action} ok, url={url}, request={_clip(data, 1024)}, response={_clip(reply)}")
            elif stop:
                raise Denied(f"http: {action} failed, url={url}, request={_clip(data, 1024)}, {why}")
            else:
                log.warn(f"http: ignore {action} failed, url={url}, request={_clip(data, 1024)}, {why}")


# --------------------------------------------------------------------------------------------
# Bodies


_STREAM = ("tcUrl", "stream", "param", "stream_url", "stream_id")
FIELDS = {
    "on_connect": ("stream", "param", "tcUrl", "pageUrl"),
    "on_close": ("send_bytes", "recv_bytes"),
    "on_publish": _STREAM,
    "on_unpublish": _STREAM,
    "on_play": ("stream", "tcUrl", "param", "pageUrl", "stream_url", "stream_id"),
    "on_stop": _STREAM,
    "on_dvr": ("tcUrl", "stream", "param", "cwd", "file", "stream_url", "stream_id"),
    "on_hls": (
        "tcUrl", "stream", "param", "duration", "cwd", "file", "url", "m3u8", "m3u8_url", "seq_no",
        "stream_url", "stream_id",
    ),
    "on_forward": ("tcUrl", "stream", "param"),
}
_COMMON = ("server_id", "service_id", "action", "client_id", "ip", "vhost", "app")


def hook_body(ctx, action: str, client: ClientInfo, cid: str | None = None, **extra) -> dict:
    """The body SRS sends for ``action`` about ``client``: the common fields,
    then the action's own, in SRS's order.  ``stream_id`` is left out when the
    client has no source (SRS omits it when the stream is not in its stats);
    ``extra`` gives the fields a client does not know (cwd, file, duration...)."""
    req = client.request
    source_id = getattr(client.source, "id", "") or ""
    known = {
        "server_id": ctx.server_id,
        "service_id": ctx.service_id,
        "action": action,
        "client_id": cid or client.id,
        "ip": client.ip,
        "vhost": req.vhost,
        "app": req.app,
        "stream": req.stream,
        "param": req.param,
        "tcUrl": req.tc_url,
        "pageUrl": client.page_url,
        "stream_url": req.stream_url,
        "stream_id": source_id,
    }
    order = _COMMON + FIELDS[action]
    if action == "on_forward":  # SRS puts the action first there
        order = ("action",) + tuple(k for k in order if k != "action")
    body: dict = {}
    for key in order:
        if key in extra:
            body[key] = extra[key]
        elif key == "send_bytes":
            body[key] = int(client.send_bytes())
        elif key == "recv_bytes":
            body[key] = int(client.recv_bytes())
        elif key == "stream_id":
            if source_id:
                body[key] = source_id
        else:
            body[key] = known[key]
    return body


def _dirname(path: str) -> str:
    """SRS's srs_path_dirname: './' without a slash, '/' at the root."""
    pos = path.rfind("/")
    if pos < 0:
        return "./"
    if pos == 0:
        return "/"
    return path[:pos]


def _is_http(url: str) -> bool:
    return url.startswith("http://") or url.startswith("https://")


# --------------------------------------------------------------------------------------------
# The policy


class HooksPolicy:
    """The ``http_hooks`` of each client's vhost, as a policy: on_connect,
    on_publish and on_play must be authorised by every configured URL;
    on_unpublish, on_stop and on_close are told (failures logged).  As SRS,
    on_connect and on_close are for RTMP and SRT only, and on_close is only sent
    for a connection whose RTMP connect (SRT stream id) was read.  The vhost's config is read at
    each call, so a reload applies to the next client action."""

    def __init__(self, ctx, client=HttpHooksClient, cwd: str | None = None) -> None:
        self.ctx = ctx
        self.http = client(ctx.clock) if isinstance(client, type) else client
        self._cwd = cwd
        self._tails: dict[str, defer.Deferred] = {}  # client id -> its last hook's end

    @property
    def cwd(self) -> str:
        return self._cwd if self._cwd is not None else os.getcwd()

    def urls(self, vhost: str, action: str) -> list[str]:
        """The URLs configured for ``action`` in ``vhost`` (none while the
        vhost's http_hooks are disabled)."""
        conf = self.ctx.vhost(vhost)
        if conf is None or not conf.http_hooks.enabled:
            return []
        return list(getattr(conf.http_hooks, action))

    def body(self, action: str, client: ClientInfo, cid: str | None = None, **extra) -> dict:
        return hook_body(self.ctx, action, client, cid, **extra)

    def _in_order(self, client_id: str, start):
        """Run ``start()`` once this client's previous hook is done, so the
        hook server sees each client's actions in order (SRS calls them from
        the client's one coroutine): on_unpublish before on_close."""
        previous = self._tails.get(client_id)
        finished: defer.Deferred = defer.Deferred()
        self._tails[client_id] = finished

        def done(result):
            if self._tails.get(client_id) is finished:
                del self._tails[client_id]
            finished.callback(None)
            return result

        if previous is None:
            return defer.maybeDeferred(start).addBoth(done)
        result: defer.Deferred = defer.Deferred()

        def run(_):
            defer.maybeDeferred(start).addBoth(done).chainDeferred(result)

        previous.addCallback(run)
        return result

    def _blocking(self, action: str, client: ClientInfo):
        urls = self.urls(client.request.vhost, action)
        if not urls:
            return defer.succeed(None)
        body = self.body(action, client)
        return self._in_order(client.id, lambda: self.http.call_blocking(urls, body, ContextLogger(client.id)))

    def _notify(self, action: str, client: ClientInfo):
        urls = self.urls(client.request.vhost, action)
        if not urls:
            return defer.succeed(None)
        body = self.body(action, client)
        return self._in_order(client.id, lambda: self.http.notify(urls, body, ContextLogger(client.id)))

    # ---- the policy interface ----------------------------------------------------------------
    def on_connect(self, client: ClientInfo):
        if client.protocol not in CONNECT_PROTOCOLS:
            return defer.succeed(None)
        return self._blocking("on_connect", client)

    def on_publish(self, client: ClientInfo):
        return self._blocking("on_publish", client)

    def on_play(self, client: ClientInfo):
        return self._blocking("on_play", client)

    def on_unpublish(self, client: ClientInfo):
        return self._notify("on_unpublish", client)

    def on_stop(self, client: ClientInfo):
        return self._notify("on_stop", client)

    def on_close(self, client: ClientInfo):
        # SRS calls on_close once the RTMP connect was read (even when it was
        # refused), never for a connection that did not get that far.
        if client.protocol not in CONNECT_PROTOCOLS or not client.request.tc_url:
            return defer.succeed(None)
        return self._notify("on_close", client)

    # ---- helpers for DVR, HLS and forward -------------------------------------------------------
    def on_dvr(self, client: ClientInfo, file: str, cid: str | None = None):
        """A DVR file was reaped: POST on_dvr to each URL in turn until one
        fails (logged).  ``client`` is the publisher; ``file`` as SRS (the
        configured path, e.g. ./objs/nginx/html/live/s.1420254068776.flv).
        Fires True when all authorised, False otherwise; never fails."""
        urls = self.urls(client.request.vhost, "on_dvr")
        if not urls:
            return defer.succeed(True)
        body = self.body("on_dvr", client, cid, cwd=self.cwd, file=file)
        return self.http.call_logged(urls, body, ContextLogger(cid or client.id))

    def on_hls(
        self,
        client: ClientInfo,
        file: str,
        url: str,
        m3u8: str,
        m3u8_url: str,
        seq_no: int,
        duration: float,
        cid: str | None = None,
    ):
        """A TS/fMP4 segment was written.  ``url`` is the segment's URI as in
        the playlist; unless it is http(s) it is put under the directory of
        ``m3u8_url`` as SRS does (``live/livestream.m3u8`` + ``s-1.ts`` gives
        ``live/s-1.ts``).  ``duration`` in seconds.  Fires True/False as
        :meth:`on_dvr`."""
        urls = self.urls(client.request.vhost, "on_hls")
        if not urls:
            return defer.succeed(True)
        prefix = _dirname(m3u8_url)
        if prefix and not _is_http(url):
            url = prefix + "/" + url
        body = self.body(
            "on_hls", client, cid, duration=float(duration), cwd=self.cwd, file=file, url=url,
            m3u8=m3u8, m3u8_url=m3u8_url, seq_no=int(seq_no),
        )
        return self.http.call_logged(urls, body, ContextLogger(cid or client.id))

    def hls_notify_url(self, template: str, client: ClientInfo, ts_url: str) -> str:
        """The URL on_hls_notify GETs: the template (or ``ts_url`` itself
        when it is http(s)) with [server_id] [service_id] [app] [stream]
        [ts_url] [param] replaced."""
        url = ts_url if _is_http(ts_url) else template
        req = client.request
        for key, value in (
            ("[server_id]", self.ctx.server_id),
            ("[service_id]", self.ctx.service_id),
            ("[app]", req.app),
            ("[stream]", req.stream),
            ("[ts_url]", ts_url),
            ("[param]", req.param),
        ):
            url = url.replace(key, value)
        return url

    @defer.inlineCallbacks
    def on_hls_notify(self, client: ClientInfo, ts_url: str, cid: str | None = None):
        """GET each on_hls_notify URL (10 s timeout), reading at most the
        vhost's ``hls_nb_notify`` bytes; the result is only logged.  Fires
        with the number of URLs that answered; never fails."""
        vhost = client.request.vhost
        urls = self.urls(vhost, "on_hls_notify")
        conf = self.ctx.vhost(vhost)
        nb_notify = conf.hls.hls_nb_notify if conf is not None else 64
        log = ContextLogger(cid or client.id)
        answered = 0
        for template in urls:
            url = self.hls_notify_url(template, client, ts_url)
            start = self.http.reactor.seconds()
            try:
                status, data = yield self.http.get(url, nb_notify, HLS_NOTIFY_TIMEOUT)
            except Exception:
                log.warn(f"http hook on_hls_notify failed, url={url}, error={_reason(Failure())}")
                continue
            answered += 1
            spent = int((self.http.reactor.seconds() - start) * 1000)
            log.trace(f"http hook on_hls_notify success. url={url}, code={status}, spent={spent}ms, read={len(data)}B")
        return answered

    @defer.inlineCallbacks
    def on_forward(self, client: ClientInfo, backend: str | None = None):
        """Ask the forward backend (``forward.backend``, else ``backend``)
        where to forward the publisher's stream.  Fires with the RTMP URLs of
        the reply ``{"code":0,"data":{"urls":[...]}}`` (empty strings
        dropped); fails with Denied as SRS fails the publish.  Not gated by
        http_hooks.enabled (SRS neither)."""
        if backend is None:
            conf = self.ctx.vhost(client.request.vhost)
            backend = conf.forward.backend if conf is not None else ""
        if not backend:
            return []
        body = self.body("on_forward", client)
        data = dumps(body)
        why, reply = yield self.http.ask(backend, data)
        if why is not None:
            raise Denied(f"http: on_forward failed, url={backend}, request={_clip(data, 1024)}, {why}")
        try:
            found = forward_urls(reply)
        except ValueError as e:
            raise Denied(f"http: on_forward backend {backend}: {e}") from None
        ContextLogger(client.id).trace(f"http: on_forward ok, url={backend}, request={_clip(data, 1024)}, response={_clip(reply)}")
        return found


__all__ = [
    "DEFAULT_TIMEOUT",
    "FIELDS",
    "HLS_NOTIFY_TIMEOUT",
    "HookError",
    "HooksPolicy",
    "HttpHooksClient",
    "MAX_REPLY",
    "check_reply",
    "dumps",
    "forward_urls",
    "hook_body",
    "reply_error",
]
