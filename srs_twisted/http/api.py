"""SRS's HTTP API (``http_api``) on Klein: the same routes, JSON and error codes.

:func:`api_resource` gives the resource a site serves.  In front of the Klein
routes, :class:`_ApiFront` does what SRS's connection does before its router:
JSONP callback check, CORS headers and OPTIONS preflight, HTTP Basic (or
Bearer) auth for paths under ``/api/``, and the JSONP ``method`` override.

Routing follows SRS's mux: a pattern ending in ``/`` matches every path below
it unless a longer pattern does (``/api/v1/nothing`` answers like
``/api/v1/``), and ``/api/v1/streams`` without the slash redirects (302) to
``/api/v1/streams/``.

Replies are HTTP 200 with ``code`` 0 and the ``server``/``service``/``pid``
envelope; failures are HTTP 200 with only a non-zero ``code`` (SRS's error
numbers).  Routing (405) and auth (401) use HTTP status codes.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import json
import os
import re
import sys
import time
import weakref
from typing import Callable

from klein import Klein
from twisted.internet import defer
from twisted.web import resource

from .. import SERVER_NAME, SRS_COMPAT_VERSION, __version__
from ..config import ConfigError
from ..live.registry import new_id
from ..live.stats import KbpsWindow
from ..url import StreamRequest
from .paths import BadPath, normalize_request
from .procstats import ProcStats

# SRS error codes (trunk/src/kernel/srs_kernel_error.hpp).
ERROR_SUCCESS = 0
ERROR_SYSTEM_CONFIG_INVALID = 1023
ERROR_SYSTEM_CONFIG_RAW = 1060
ERROR_SYSTEM_CONFIG_RAW_DISABLED = 1061
ERROR_EXPORTER_DISABLED = 1090
ERROR_RTMP_VHOST_NOT_FOUND = 2014
ERROR_RTMP_STREAM_NOT_FOUND = 2048
ERROR_RTMP_CLIENT_NOT_FOUND = 2049
ERROR_TEST = 100  # /api/v1/tests/errors

# SRS's reload states (SrsReloadState).
RELOAD_INIT, RELOAD_PARSING, RELOAD_APPLYING, RELOAD_FINISHED = 0, 10, 30, 90

VERSION = ".".join(str(v) for v in SRS_COMPAT_VERSION)
SERVER_HEADER = f"{SERVER_NAME}/{__version__} (SRS/{VERSION})".encode()
HTTP_STATUS_TEXT = {302: b"Found", 301: b"Moved Permanently", 400: b"Bad Request",
                    404: b"Not Found", 405: b"Method Not Allowed"}
_JSONP_CALLBACK = re.compile(r"^[A-Za-z0-9_.\-]*$")
_LEADING_INT = re.compile(r"^\s*([+-]?\d+)")
# The request methods a JSONP ``method`` may turn a GET into (as SRS).
_OVERRIDES = ("GET", "PUT", "POST", "DELETE")
# The most streams or clients one reply lists: ``count`` reads as SRS's
# max(10, count), and (ours) no more than this; ``start`` pages further.
MAX_COUNT = 1000
# Patterns ending in '/' that SRS also answers without the slash, with a 302.
_REDIRECTS = ("/api", "/api/v1", "/api/v1/vhosts", "/api/v1/streams", "/api/v1/clients")

ROOT_URLS = {"api": "the api root", "rtc": {"v1": {"play": "Play stream", "publish": "Publish stream",
                                                    "nack": "Simulate the NACK"}}}
V1_URLS = {
    "versions": "the version of SRS",
    "summaries": "the summary(pid, argv, pwd, cpu, mem) of SRS",
    "rusages": "the rusage of SRS",
    "self_proc_stats": "the self process stats",
    "system_proc_stats": "the system process stats",
    "meminfos": "the meminfo of system",
    "authors": "the license, copyright, authors and contributors",
    "features": "the supported features of SRS",
    "requests": "the request itself, for http debug",
    "vhosts": "manage all vhosts or specified vhost",
    "streams": "manage all streams or specified stream",
    "clients": "manage all clients or specified client, default query top 10 clients",
    "raw": "raw api for srs, support CUID srs for instance the config",
    "clusters": "origin cluster server API",
    "perf": "System performance stat",
    "tcmalloc": "tcmalloc api with params ?page=summary|api",
}
V1_TESTS = {
    "requests": "show the request info",
    "errors": "always return an error 100",
    "redirects": "always redirect to /api/v1/test/errors",
    "[vhost]": "http vhost for http://error.srs.com:1985/api/v1/tests/errors",
}
LICENSE = "MIT"
CONTRIBUTORS = "the srs-twisted authors; interfaces after SRS, https://github.com/ossrs/srs"


def api_resource(ctx, reload: Callable[[], object] | None = None) -> resource.IResource:
    """The HTTP API for ``ctx``.  ``reload()`` is what ``/api/v1/raw?rpc=reload`` calls
    (it may return a Deferred); without it that call answers 1061 (disabled)."""
    return _ApiFront(SrsApi(ctx, reload))


def atoi(text: str) -> int:
    """C's atoi: the leading integer of ``text``, else 0."""
    m = _LEADING_INT.match(text or "")
    return int(m.group(1)) if m else 0


def _arg(request, name: str) -> str:
    values = request.args.get(name.encode())
    return values[0].decode("utf-8", "replace") if values else ""


def _is_publish(client) -> bool:
    return bool(client.publish) or client.type.endswith("-publish")


class _ClientRate:
    """30 s bit rates of one client, kept by the API while the client is connected.

    The first read seeds each window with the client's average rate since it
    connected, so a rate is reported at once rather than from the second read."""

    def __init__(self, clock, client, now: float) -> None:
        self.client = client
        self.vhost = client.request.vhost
        self.recv = _SeededWindow(clock)
        self.send = _SeededWindow(clock)
        alive = now - client.started
        if alive > 0:
            start = max(client.started, now - self.recv.window)
            share = (start - client.started) / alive
            self.recv.seed(start, int(client.recv_bytes() * share))
            self.send.seed(start, int(client.send_bytes() * share))

    def kbps(self) -> dict:
        return {"recv_30s": self.recv.kbps(self.client.recv_bytes()),
                "send_30s": self.send.kbps(self.client.send_bytes())}


class _SeededWindow(KbpsWindow):
    def seed(self, when: float, total: int) -> None:
        self._samples.appendleft((when, total))


class _ApiState:
    """What the API remembers about one server: vhost ids, client rates, the bytes of
    clients that left (per vhost), /proc samples and the last reload."""

    def __init__(self, ctx) -> None:
        self.vhost_ids: dict[str, str] = {}
        self.rates: dict[str, _ClientRate] = {}
        self.departed: dict[str, list[int]] = {}  # vhost -> [recv, send]
        self.proc = ProcStats(disk_devices=ctx.config.stats.disk)
        self.reload = {"err": ERROR_SUCCESS, "msg": "Success", "state": RELOAD_INIT, "rid": ""}


_STATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _state_for(ctx) -> _ApiState:
    """One state per server, shared by every API resource made for it (one per
    listening port), so ids stay the same whichever port answers."""
    state = _STATES.get(ctx)
    if state is None:
        state = _STATES[ctx] = _ApiState(ctx)
    return state


class _ApiFront(resource.Resource):
    """JSONP check, CORS, auth and method override, then the Klein routes."""

    isLeaf = True

    def __init__(self, api: "SrsApi") -> None:
        super().__init__()
        self.api = api
        self.routes = api.app.resource()

    def render(self, request):
        request.setHeader(b"server", SERVER_HEADER)
        try:
            # Auth and the router below both see this decoded, normalized path.
            path = normalize_request(request)
        except BadPath:
            return _plain(request, 400)
        try:
            # Klein decodes the host, and Werkzeug encodes it as IDNA: a host either
            # cannot take raised out of the route (a 500 and a traceback).
            host = request.getRequestHostname().decode("utf-8")
            host.partition(":")[0].encode("idna")
        except UnicodeError:
            return _plain(request, 400)
        conf = self.api.ctx.config.http_api
        callback = _arg(request, "callback")
        if not _JSONP_CALLBACK.match(callback):
            return _plain(request, 400)
        if conf.crossdomain and request.getHeader(b"origin"):
            from .server import cors

            cors(request)
        if request.method == b"OPTIONS":
            if conf.crossdomain and request.getHeader(b"origin"):
                # Browsers never let "*" cover Authorization: named, a page on another
                # port (the console on the HTTP server) can send Basic/Bearer credentials.
                request.setHeader(b"access-control-allow-headers", b"*, authorization")
            request.setResponseCode(200 if conf.crossdomain else 405)
            request.setHeader(b"content-length", b"0")
            return b""
        if conf.auth.enabled and _guarded(path) and not self._authorized(request, conf.auth):
            request.setResponseCode(401)
            scheme = b"Bearer" if conf.auth.type == "bearer" else b"Basic"
            request.setHeader(b"www-authenticate", scheme)
            return b""
        method = _arg(request, "method")
        if callback and method in _OVERRIDES:
            request.method = method.encode()
        return self.routes.render(request)

    @staticmethod
    def _authorized(request, auth) -> bool:
        header = (request.getHeader(b"authorization") or b"").decode("latin-1")
        if auth.type == "bearer":
            scheme, _, token = header.partition(" ")
            return scheme == "Bearer" and bool(auth.token) and token == auth.token
        scheme, _, token = header.partition(" ")
        if scheme != "Basic" or not token:
            return False
        try:
            plain = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = plain.partition(":")
        return bool(sep) and user == auth.username and password == auth.password


def _guarded(path: str) -> bool:
    """Whether auth applies: SRS guards every path with ``/api/`` in it; here
    in any letter case, and ``/api`` itself (its redirect) too."""
    return "/api/" in path.lower() + "/"


def _plain(request, status: int, text: bytes | None = None) -> bytes:
    body = text if text is not None else HTTP_STATUS_TEXT.get(status, b"")
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    request.setHeader(b"content-length", b"%d" % len(body))
    return body


class SrsApi:
    """The routes, bound to one :class:`~srs_twisted.context.ServerContext`."""

    app = Klein()

    def __init__(self, ctx, reload: Callable[[], object] | None = None) -> None:
        self.ctx = ctx
        self.reload_call = reload
        self.state = _state_for(ctx)
        self.pid = str(os.getpid())

    # ---- replies ----------------------------------------------------------------------
    def envelope(self, **fields) -> dict:
        obj = {"code": ERROR_SUCCESS, "server": self.ctx.server_id, "service": self.ctx.service_id,
               "pid": self.pid}
        obj.update(fields)
        return obj

    def reply(self, request, obj: dict) -> bytes:
        data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return self._send(request, data, b"application/json")

    def error(self, request, code: int) -> bytes:
        return self.reply(request, {"code": code})

    @staticmethod
    def _send(request, data: bytes, content_type: bytes) -> bytes:
        callback = _arg(request, "callback")
        if callback:
            content_type = b"text/javascript"
            data = callback.encode() + b"(" + data + b")"
        request.setHeader(b"content-type", content_type)
        request.setHeader(b"content-length", b"%d" % len(data))
        return data

    @staticmethod
    def _rest(request, prefix: str) -> str:
        path = request.path.decode("utf-8", "replace")
        return path[len(prefix):] if len(path) > len(prefix) else ""

    # ---- describing ------------------------------------------------------------------
    @app.route("/", branch=True)
    def root(self, request):
        return self.reply(request, self.envelope(urls=ROOT_URLS))

    @app.route("/api/", branch=True)
    def api(self, request):
        return self.reply(request, self.envelope(urls={"v1": "the api version 1.0"}))

    @app.route("/api/v1/", branch=True)
    def v1(self, request):
        return self.reply(request, self.envelope(urls=V1_URLS, tests=V1_TESTS))

    for _path in _REDIRECTS:

        @app.route(_path, endpoint="redirect" + _path.replace("/", "_"))
        def _redirect(self, request, _to=_path + "/"):
            query = request.uri.partition(b"?")[2]
            location = _to.encode() + (b"?" + query if query else b"")
            request.setHeader(b"location", location)
            return _plain(request, 302, b"Redirect to " + location)

    del _path, _redirect

    @app.route("/api/v1/versions")
    def versions(self, request):
        major, minor, revision = SRS_COMPAT_VERSION
        data = {"major": major, "minor": minor, "revision": revision, "version": VERSION}
        return self.reply(request, self.envelope(data=data))

    @app.route("/api/v1/authors")
    def authors(self, request):
        return self.reply(request, self.envelope(data={"license": LICENSE, "contributors": CONTRIBUTORS}))

    @app.route("/api/v1/features")
    def features(self, request):
        def has(module: str) -> bool:
            try:
                return importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                return False

        features = {
            "ssl": has("OpenSSL"),
            "hls": has("srs_twisted.hls"),
            "hds": False,
            "callback": True,
            "api": True,
            "httpd": True,
            "dvr": has("srs_twisted.dvr"),
            "transcode": has("srs_twisted.process"),
            "ingest": has("srs_twisted.process"),
            "stat": True,
            "caster": has("srs_twisted.caster"),
            "complex_send": False,
            "tcp_nodelay": False,
            "so_sendbuf": False,
            "mr": True,
        }
        data = {"options": "", "options2": "", "build": "", "build2": "", "features": features}
        return self.reply(request, self.envelope(data=data))

    # ---- system ------------------------------------------------------------------------
    @app.route("/api/v1/summaries")
    def summaries(self, request):
        return self.reply(request, self.envelope(data=self.summary()))

    def summary(self) -> dict:
        proc = self.state.proc
        ru = proc.rusage()
        me = proc.self_stat()
        system = proc.system_stat()
        mem = proc.meminfo()
        disk = proc.disk()
        plat = proc.platform()
        net = proc.network()
        conns = proc.connections()
        cpus, online = proc.cpus()
        now = self.ctx.clock.seconds()
        now_ms = int(now * 1000)
        mem_total = mem["MemTotal"]
        ok = all(x["ok"] for x in (ru, me, system, mem, disk, plat, net, conns))
        this = {
            "version": VERSION,
            "pid": os.getpid(),
            "ppid": me.get("ppid", os.getppid()),
            "argv": " ".join(sys.argv),
            "cwd": os.getcwd(),
            "mem_kbyte": ru["ru_maxrss"],
            "mem_percent": ru["ru_maxrss"] / mem_total if mem_total > 0 else 0.0,
            "cpu_percent": me["percent"],
            "srs_uptime": int(max(0.0, now - self.ctx.started)),
        }
        system_out = {
            "cpu_percent": system["percent"],
            "disk_read_KBps": disk["in_KBps"],
            "disk_write_KBps": disk["out_KBps"],
            "disk_busy_percent": disk["busy"],
            "mem_ram_kbyte": mem_total,
            "mem_ram_percent": mem["percent_ram"],
            "mem_swap_kbyte": mem["SwapTotal"],
            "mem_swap_percent": mem["percent_swap"],
            "cpus": cpus,
            "cpus_online": online,
            "uptime": plat["uptime"],
            "ilde_time": plat["ilde_time"],
            "load_1m": plat["load_1m"],
            "load_5m": plat["load_5m"],
            "load_15m": plat["load_15m"],
            "net_sample_time": net["net_sample_time"],
            "net_recv_bytes": net["net_recv_bytes"],
            "net_send_bytes": net["net_send_bytes"],
            "net_recvi_bytes": net["net_recvi_bytes"],
            "net_sendi_bytes": net["net_sendi_bytes"],
            "srs_sample_time": now_ms,
            "srs_recv_bytes": self.ctx.recv_bytes(),
            "srs_send_bytes": self.ctx.send_bytes(),
            "conn_sys": conns["conn_sys"],
            "conn_sys_et": conns["conn_sys_et"],
            "conn_sys_tw": conns["conn_sys_tw"],
            "conn_sys_udp": conns["conn_sys_udp"],
            "conn_srs": len(self.ctx.clients),
        }
        return {"ok": ok, "now_ms": now_ms, "self": this, "system": system_out}

    @app.route("/api/v1/rusages")
    def rusages(self, request):
        return self.reply(request, self.envelope(data=self.state.proc.rusage()))

    @app.route("/api/v1/self_proc_stats")
    def self_proc_stats(self, request):
        return self.reply(request, self.envelope(data=dict(self.state.proc.self_stat())))

    @app.route("/api/v1/system_proc_stats")
    def system_proc_stats(self, request):
        return self.reply(request, self.envelope(data=dict(self.state.proc.system_stat())))

    @app.route("/api/v1/meminfos")
    def meminfos(self, request):
        m = self.state.proc.meminfo()
        keys = ("ok", "sample_time", "percent_ram", "percent_swap", "MemActive", "RealInUse",
                "NotInUse", "MemTotal", "MemFree", "Buffers", "Cached", "SwapTotal", "SwapFree")
        return self.reply(request, self.envelope(data={k: m[k] for k in keys}))

    # ---- vhosts, streams, clients ------------------------------------------------------
    def vhost_id(self, name: str) -> str:
        ids = self.state.vhost_ids
        vid = ids.get(name)
        if vid is None:
            vid = ids[name] = new_id("vid-", 7)
        return vid

    def clients(self) -> list:
        """The clients the API shows: those that asked for a stream (play or publish),
        as SRS's statistics only learn of a client then.  Also brings the per-client
        rates up to date and banks the bytes of clients that left."""
        state = self.state
        for cid in [cid for cid in state.rates if cid not in self.ctx.clients]:
            rate = state.rates.pop(cid)
            if not rate.client.request.stream:
                continue
            banked = state.departed.setdefault(rate.vhost, [0, 0])
            banked[0] += rate.client.recv_bytes()
            banked[1] += rate.client.send_bytes()
        out = [c for c in self.ctx.clients.values() if c.request.stream]
        for c in out:
            self.rate(c)
        return out

    def rate(self, client) -> _ClientRate:
        rate = self.state.rates.get(client.id)
        if rate is None:
            clock = self.ctx.clock
            rate = self.state.rates[client.id] = _ClientRate(clock, client, clock.seconds())
        return rate

    def vhost_names(self, clients) -> list[str]:
        names = list(self.ctx.config.vhosts)
        for name in [s.vhost for s in self.ctx.registry.sources()] + [c.request.vhost for c in clients]:
            if name not in names:
                names.append(name)
        for name in names:
            self.vhost_id(name)
        return names

    def dump_vhost(self, name: str, clients) -> dict:
        conf = self.ctx.config.vhosts.get(name)
        mine = [c for c in clients if c.request.vhost == name]
        banked = self.state.departed.get(name, [0, 0])
        rates = [self.rate(c).kbps() for c in mine]
        hls = {"enabled": bool(conf is not None and conf.hls.enabled)}
        if hls["enabled"]:
            hls["fragment"] = float(conf.hls.hls_fragment)
        return {
            "id": self.vhost_id(name),
            "name": name,
            "enabled": bool(conf is not None and conf.enabled),
            "clients": len(mine),
            "streams": sum(1 for s in self.ctx.registry.sources() if s.vhost == name and s.active),
            "send_bytes": banked[1] + sum(c.send_bytes() for c in mine),
            "recv_bytes": banked[0] + sum(c.recv_bytes() for c in mine),
            "kbps": {"recv_30s": sum(r["recv_30s"] for r in rates),
                     "send_30s": sum(r["send_30s"] for r in rates)},
            "hls": hls,
        }

    def dump_stream(self, source) -> dict:
        """One stream; its clients come from the context's per-stream index,
        so this costs the same however many clients the server has."""
        stats = source.stats
        mine = self.ctx.stream_clients(source.vhost, source.app, source.stream)
        pub = source.publisher_info
        tc_url = pub.request.tc_url if pub is not None else ""
        if not tc_url and mine:
            tc_url = next(iter(mine.values())).request.tc_url
        publish = {"active": source.active}
        if pub is not None:
            publish["cid"] = pub.id
        url = StreamRequest(vhost=source.vhost, app=source.app, stream=source.stream).stream_url
        return {
            "id": source.id,
            "name": source.stream,
            "vhost": self.vhost_id(source.vhost),
            "app": source.app,
            "tcUrl": tc_url,
            "url": url,
            "live_ms": stats.live_ms(),
            "clients": len(mine),
            "frames": stats.frames,
            "send_bytes": stats.send_bytes,
            "recv_bytes": stats.recv_bytes,
            "kbps": {"recv_30s": stats.recv_kbps.kbps(stats.recv_bytes),
                     "send_30s": stats.send_kbps.kbps(stats.send_bytes)},
            "publish": publish,
            "video": dict(stats.video) if stats.video else None,
            "audio": dict(stats.audio) if stats.audio else None,
        }

    def dump_client(self, client) -> dict:
        req = client.request
        source = self.ctx.registry.get(req.vhost, req.app, req.stream)
        if source is None:
            source = client.source
        return {
            "id": client.id,
            "vhost": self.vhost_id(req.vhost),
            "stream": getattr(source, "id", "") or "",
            "ip": client.ip,
            "pageUrl": client.page_url,
            "swfUrl": client.swf_url,
            "tcUrl": req.tc_url,
            "url": req.stream_url,
            "name": req.stream,
            "type": client.type,
            "publish": _is_publish(client),
            "alive": max(0.0, self.ctx.clock.seconds() - client.started),
            "send_bytes": client.send_bytes(),
            "recv_bytes": client.recv_bytes(),
            "kbps": self.rate(client).kbps(),
        }

    @staticmethod
    def _page(request, items: list) -> list:
        start = max(0, atoi(_arg(request, "start")))
        count = min(max(10, atoi(_arg(request, "count"))), MAX_COUNT)
        return items[start : start + count]

    @app.route("/api/v1/vhosts/", branch=True)
    def vhosts(self, request):
        clients = self.clients()
        names = self.vhost_names(clients)
        vid = self._rest(request, "/api/v1/vhosts/")
        by_id = {self.vhost_id(n): n for n in names}
        if vid and vid not in by_id:
            return self.error(request, ERROR_RTMP_VHOST_NOT_FOUND)
        if request.method != b"GET":
            return _plain(request, 405)
        if vid:
            return self.reply(request, self.envelope(vhost=self.dump_vhost(by_id[vid], clients)))
        return self.reply(request, self.envelope(vhosts=[self.dump_vhost(n, clients) for n in names]))

    @app.route("/api/v1/streams/", branch=True)
    def streams(self, request):
        sid = self._rest(request, "/api/v1/streams/")
        source = None
        if sid:
            source = self.ctx.registry.by_id(sid)
            if source is None:
                return self.error(request, ERROR_RTMP_STREAM_NOT_FOUND)
        if request.method != b"GET":
            return _plain(request, 405)
        if source is not None:
            return self.reply(request, self.envelope(stream=self.dump_stream(source)))
        sources = self._page(request, self.ctx.registry.sources())
        return self.reply(request, self.envelope(streams=[self.dump_stream(s) for s in sources]))

    @app.route("/api/v1/clients/", branch=True)
    def clients_route(self, request):
        cid = self._rest(request, "/api/v1/clients/")
        clients = self.clients()
        client = None
        if cid:
            client = self.ctx.clients.get(cid)
            if client is None:
                return self.error(request, ERROR_RTMP_CLIENT_NOT_FOUND)
        if request.method == b"GET":
            if client is not None:
                return self.reply(request, self.envelope(client=self.dump_client(client)))
            page = self._page(request, clients)
            return self.reply(request, self.envelope(clients=[self.dump_client(c) for c in page]))
        if request.method == b"DELETE":
            if client is None or not self.ctx.kick(client.id):
                return self.error(request, ERROR_RTMP_CLIENT_NOT_FOUND)
            return self.reply(request, self.envelope())
        return _plain(request, 405)

    # ---- raw API, metrics, tests ---------------------------------------------------------
    @app.route("/api/v1/raw")
    def raw(self, request):
        conf = self.ctx.config.http_api
        raw = conf.raw_api
        rpc = _arg(request, "rpc")
        if rpc == "raw":
            http_api = {
                "enabled": conf.enabled,
                "listen": conf.listen,
                "crossdomain": conf.crossdomain,
                "raw_api": {"enabled": raw.enabled, "allow_reload": raw.allow_reload,
                            "allow_query": raw.allow_query, "allow_update": raw.allow_update},
            }
            return self.reply(request, {"code": ERROR_SUCCESS, "http_api": http_api})
        if not raw.enabled:
            return self.error(request, ERROR_SYSTEM_CONFIG_RAW_DISABLED)
        if rpc == "reload":
            if not raw.allow_reload or self.reload_call is None:
                return self.error(request, ERROR_SYSTEM_CONFIG_RAW_DISABLED)
            self._reload()
            return self.error(request, ERROR_SUCCESS)
        if rpc == "reload-fetch":
            return self.reply(request, {"code": ERROR_SUCCESS, "data": dict(self.state.reload)})
        return self.error(request, ERROR_SYSTEM_CONFIG_RAW)

    def _reload(self) -> None:
        """Reload after this reply is sent, as SRS does (it signals its main loop);
        ``rpc=reload-fetch`` tells how it went."""
        self.ctx.clock.callLater(0, self._run_reload)

    def _run_reload(self) -> None:
        status = self.state.reload
        status.update(err=ERROR_SUCCESS, msg="Success", state=RELOAD_APPLYING, rid=new_id("", 7))

        def done(_):
            status["state"] = RELOAD_FINISHED

        def failed(failure):
            parsing = failure.check(ConfigError) is not None
            status.update(
                err=ERROR_SYSTEM_CONFIG_INVALID,
                msg=f"code={ERROR_SYSTEM_CONFIG_INVALID}(ConfigInvalid) : {failure.getErrorMessage()}",
                state=RELOAD_PARSING if parsing else RELOAD_APPLYING,
            )

        defer.maybeDeferred(self.reload_call).addCallbacks(done, failed)

    @app.route("/api/v1/clusters")
    def clusters(self, request):
        from ..cluster.coworkers import clusters_data

        query = {name: _arg(request, name) for name in ("ip", "vhost", "app", "stream", "coworker")}
        return self.reply(request, {"code": ERROR_SUCCESS, "data": clusters_data(self.ctx, query)})

    @app.route("/rtc/v1/", branch=True)
    def rtc(self, request):
        from ..rtc.api import RtcApi

        if getattr(self, "_rtc", None) is None:
            self._rtc = RtcApi(self)
        return self._rtc.render(request, request.path.decode("utf-8", "replace"))

    @app.route("/gb/v1/", branch=True)
    def gb(self, request):
        from ..gb.api import render

        return render(self, request, request.path.decode("utf-8", "replace"))

    @app.route("/metrics")
    def metrics(self, request):
        if not self.ctx.config.exporter.enabled:
            return self.error(request, ERROR_EXPORTER_DISABLED)
        from . import exporter

        body, content_type = exporter.render(self.ctx)
        if isinstance(content_type, str):
            content_type = content_type.encode()
        return self._send(request, body, content_type)

    @app.route("/api/v1/tests/errors")
    def test_errors(self, request):
        return self.error(request, ERROR_TEST)

    @app.route("/api/v1/tests/redirects")
    def test_redirects(self, request):
        request.setHeader(b"location", b"/api/v1/tests/errors")
        return _plain(request, 301, b"Redirect to /api/v1/tests/errors")

    @app.route("/api/v1/tests/requests")
    def test_requests(self, request):
        headers = {k.decode("latin-1"): b", ".join(v).decode("latin-1")
                   for k, v in request.requestHeaders.getAllRawHeaders()}
        data = {
            "uri": request.uri.decode("utf-8", "replace"),
            "path": request.path.decode("utf-8", "replace"),
            "METHOD": request.method.decode("latin-1"),
            "headers": headers,
            "server": {"sigature": "SRS", "version": VERSION, "link": "https://github.com/ossrs/srs",
                       "time": int(time.time() * 1000)},
        }
        return self.reply(request, self.envelope(data=data))
