"""What the reactor-driven integration tests share: the hook receiver (a
twisted.web site in the test process, from tests/policy/receiver.py), waits
that never block the reactor, a raw HTTP reader, the API over treq and
ffprobe run as a reactor child process.

Every wait here is bounded in time; nothing blocks the reactor, so the test
process can serve hooks while the server and FFmpeg work."""

from __future__ import annotations

import json
import os
import time

from twisted.internet import defer, endpoints, protocol, reactor, task
from twisted.internet.utils import getProcessOutputAndValue

from ..policy.receiver import HookReceiver, start_receiver
from . import harness as h

__all__ = ["HOOK_KEYS", "HookReceiver", "RawHttp", "api_request", "ffprobe", "http_live_server", "raw_http", "sleep",
           "start_receiver", "until", "wait_exit"]

# The fields of SRS's hook bodies, in SRS's order (docs/callbacks.md).
_COMMON = ["server_id", "service_id", "action", "client_id", "ip", "vhost", "app"]
_STREAM = _COMMON + ["tcUrl", "stream", "param", "stream_url", "stream_id"]
HOOK_KEYS = {
    "on_connect": _COMMON + ["stream", "param", "tcUrl", "pageUrl"],
    "on_close": _COMMON + ["send_bytes", "recv_bytes"],
    "on_publish": _STREAM,
    "on_unpublish": _STREAM,
    "on_play": _COMMON + ["stream", "tcUrl", "param", "pageUrl", "stream_url", "stream_id"],
    "on_stop": _STREAM,
}


def http_live_server(test, vhost: str = "", top: str = "", api: str = "", static_dir: str | None = None,
                     shared_port: bool = False) -> h.Server:
    """The real server with the HTTP API and http_server (HTTP-FLV at
    [vhost]/[app]/[stream].flv) on loopback; ``vhost``, ``top`` and ``api``
    are added to the default vhost, the top level and ``http_api``.  The
    server gets ``http_port`` and ``api_port`` (equal with ``shared_port``)
    and is stopped at the test's cleanup."""
    http_port = h.free_port()
    api_port = http_port if shared_port else h.free_port()
    static = f" dir {static_dir};" if static_dir else ""
    server = h.Server(f"""
http_api {{ enabled on; listen 127.0.0.1:{api_port}; {api} }}
http_server {{ enabled on; listen 127.0.0.1:{http_port};{static} }}
{top}
vhost __defaultVhost__ {{
    http_remux {{ enabled on; mount [vhost]/[app]/[stream].flv; }}
    {vhost}
}}
""")
    test.addCleanup(server.stop)
    for port in sorted({http_port, api_port}):
        h.wait_port(port, proc=server.proc)
    server.http_port, server.api_port = http_port, api_port
    return server


def sleep(seconds: float):
    return task.deferLater(reactor, seconds, lambda: None)


@defer.inlineCallbacks
def wait_exit(proc, timeout: float = 60.0, step: float = 0.1):
    """The exit code of a Popen, polled every ``step`` s without blocking the reactor."""
    end = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            return code
        if time.monotonic() > end:
            raise AssertionError(f"process {proc.args[0]} still runs after {timeout}s")
        yield sleep(step)


@defer.inlineCallbacks
def until(fetch, predicate, what: str, timeout: float = 60.0, step: float = 0.25):
    """Call ``fetch()`` (may return a Deferred) until ``predicate(result)``;
    returns the last result, fails after ``timeout`` s."""
    end = time.monotonic() + timeout
    while True:
        result = yield defer.maybeDeferred(fetch)
        if predicate(result):
            return result
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {result!r}"[:2000])
        yield sleep(step)


@defer.inlineCallbacks
def api_request(url: str, method: str = "GET", headers=None, timeout: float = h.WAIT):
    """One HTTP request with treq (no connection pool); returns
    (response, body bytes, parsed JSON or None)."""
    import treq

    response = yield treq.request(method, url, headers=headers, persistent=False, allow_redirects=False,
                                  timeout=timeout)
    body = yield response.content()
    try:
        obj = json.loads(body)
    except ValueError:
        obj = None
    return response, body, obj


def ffprobe(target: str, rw_timeout_s: int = 30):
    """ffprobe's streams of ``target`` as a reactor child process: fires with
    (stdout, stderr, exit code)."""
    return getProcessOutputAndValue(
        h.ffprobe(),
        ["-v", "error", "-rw_timeout", str(rw_timeout_s * 1_000_000), "-show_streams", "-of", "json", target],
        env=dict(os.environ),
    )


class RawHttp(protocol.Protocol):
    """A raw HTTP/1.1 client: sends one request and keeps every byte of the
    reply.  Stops after ``max_bytes`` or ``timeout`` s (then ``cut`` is set);
    ``done`` fires with itself when the connection is gone, ``eof_at`` is the
    monotonic time it went."""

    def __init__(self, request: bytes, max_bytes: int, timeout: float) -> None:
        self.request = request
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.data = bytearray()
        self.done: defer.Deferred = defer.Deferred()
        self.cut = False
        self.eof_at: float | None = None
        self.first_byte: defer.Deferred = defer.Deferred()
        self._timer = None

    def connectionMade(self) -> None:
        self.transport.write(self.request)
        self._timer = reactor.callLater(self.timeout, self.abort)

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if not self.first_byte.called:
            self.first_byte.callback(self)
        if len(self.data) >= self.max_bytes:
            self.abort()

    def abort(self) -> None:
        self.cut = True
        if self.transport is not None:
            self.transport.abortConnection()

    def connectionLost(self, reason=None) -> None:
        self.eof_at = time.monotonic()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if not self.first_byte.called:
            self.first_byte.callback(self)
        self.done.callback(self)

    @property
    def status(self) -> int:
        line = bytes(self.data).split(b"\r\n", 1)[0].split()
        return int(line[1]) if len(line) > 1 and line[1].isdigit() else 0

    @property
    def headers(self) -> dict:
        head = bytes(self.data).split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
        return {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in head)}

    @property
    def body(self) -> bytes:
        return bytes(self.data).partition(b"\r\n\r\n")[2]


def raw_http(port: int, path: str, max_bytes: int = 65536, timeout: float = 10.0, host: str = "127.0.0.1"):
    """GET ``path`` on 127.0.0.1:``port``; fires with the connected
    :class:`RawHttp` (wait on its ``done`` or ``first_byte``)."""
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: srs-twisted-tests\r\n"
               "Connection: close\r\n\r\n").encode()
    proto = RawHttp(request, max_bytes, timeout)
    ep = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=h.WAIT)
    return endpoints.connectProtocol(ep, proto)
