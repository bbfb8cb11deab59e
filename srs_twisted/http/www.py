"""The built-in pages: the landing page ``/``, the console ``/console/`` and
the players ``/players/``, shipped as package data in ``srs_twisted/www``.

A file in ``http_server.dir`` wins over a built-in one of the same path (so
an operator can replace any page, as with SRS's ``objs/nginx/html``); the
built-in ones fill in what the directory lacks.

The player libraries (hls.js, mpegts.js, dash.js) come from npm (the repo's
package.json and lockfile, ``npm ci``) and are served at ``/players/lib/``
from the first of:

1. ``$SRS_NODE_MODULES`` (a ``node_modules`` folder), when set;
2. ``srs_twisted/www/lib/``, where ``pip install .`` copies them at build
   time (setup.py) when the checkout has ``node_modules``;
3. the checkout's ``node_modules`` next to the ``srs_twisted`` package (a
   source checkout or an editable install).

They are never loaded from a CDN.  ``/server.json`` tells the pages what
this server runs (version, ports) so the landing page can show the URLs to
publish to and the console can find the API.
"""

from __future__ import annotations

import json
import os

from twisted.web import resource

from .. import SRS_COMPAT_VERSION, SERVER_NAME, __version__
from ..config.check import parse_endpoint
from .site import StaticFile

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WWW_DIR = os.path.join(PACKAGE_DIR, "www")
LIB_PREFIX = "/players/lib/"

# What /players/lib/<name> serves: the file's path inside node_modules (setup.py reads it too).
with open(os.path.join(WWW_DIR, "libs.json"), encoding="utf-8") as _f:
    LIBS: dict[str, str] = json.load(_f)

# SRS's page names, kept working with SRS's queries: one page that reads its own name.
SRS_PAGES = ("srs_player.html", "rtc_player.html", "whep.html", "rtc_publisher.html")


def lib_file(name: str, environ=os.environ) -> str | None:
    """The file on disk that ``/players/lib/<name>`` serves, None if none."""
    inside = LIBS.get(name)
    if inside is None:
        return None
    candidates = []
    if environ.get("SRS_NODE_MODULES"):
        candidates.append(os.path.join(environ["SRS_NODE_MODULES"], inside))
    candidates.append(os.path.join(WWW_DIR, "lib", name))
    candidates.append(os.path.join(os.path.dirname(PACKAGE_DIR), "node_modules", inside))
    return next((path for path in candidates if os.path.isfile(path)), None)


def _ports(listens) -> list[int]:
    out = []
    for listen in listens:
        try:
            out.append(int(parse_endpoint(listen.strip())[1]))
        except (ValueError, TypeError):
            continue
    return out


def site_info(config) -> dict:
    """What ``/server.json`` says: the version and the ports of each service
    (empty lists for services that are off)."""
    srv, api = config.http_server, config.http_api
    rtc = getattr(config, "rtc_server", None)
    srt = getattr(config, "srt_server", None)
    vhosts = [name for name, v in config.vhosts.items() if v.enabled]
    return {
        "server": SERVER_NAME,
        "version": __version__,
        "srs_version": ".".join(str(v) for v in SRS_COMPAT_VERSION),
        "vhosts": vhosts,
        "rtmp": _ports(config.listen),
        "http": _ports(srv.listens) if srv.enabled else [],
        "https": _ports(srv.https.listens) if srv.enabled and srv.https.enabled else [],
        "api": _ports(api.listens) if api.enabled else [],
        "api_https": _ports(api.https.listens) if api.enabled and api.https.enabled else [],
        "rtc": _ports(rtc.listens) if rtc is not None and rtc.enabled else [],
        "srt": _ports(srt.listens) if srt is not None and srt.enabled else [],
    }


class ServerInfo(resource.Resource):
    isLeaf = True

    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx = ctx

    def render_GET(self, request):
        body = json.dumps(site_info(self.ctx.config)).encode()
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"content-length", b"%d" % len(body))
        return b"" if request.method == b"HEAD" else body

    render_HEAD = render_GET


def _index(path: str) -> str:
    return path + "index.html" if path.endswith("/") else path


def _exists(root: str, path: str) -> bool:
    """Whether the normalized URL ``path`` names a file (or a directory's
    index.html) under ``root``."""
    full = os.path.join(root, _index(path).lstrip("/"))
    return os.path.isfile(full) or os.path.isfile(os.path.join(full, "index.html"))


def _file(request, path: str):
    """One file answering the whole request path."""
    request.prepath.extend(request.postpath)
    del request.postpath[:]
    return StaticFile(path)


def builtin_resource(ctx, path: str, static_root: str | None, request):
    """The built-in resource for the normalized ``path`` when
    ``static_root`` (``http_server.dir``) has no file there, else None.
    ``request``'s prepath/postpath are advanced like static.File expects."""
    if static_root is not None and _exists(static_root, path):
        return None
    if path == "/server.json":
        return ServerInfo(ctx)
    if path.startswith(LIB_PREFIX):
        found = lib_file(path[len(LIB_PREFIX):])
        return _file(request, found) if found else None
    if path.startswith("/players/") and path[len("/players/"):] in SRS_PAGES:
        return _file(request, os.path.join(WWW_DIR, "players", "srs-compat.html"))
    if not _exists(WWW_DIR, path) or path.startswith("/lib/"):
        return None
    first = request.postpath[0]
    request.prepath.append(request.postpath.pop(0))
    return StaticFile(WWW_DIR).getChildWithDefault(first, request)


def console_resource(ctx, request, path: str, static_root: str | None):
    """``/console/`` on the API's own port (SRS mounts it there too): the
    console from ``http_server.dir`` when it has one, else the built-in;
    and ``/server.json``, so the console there finds the HTTP server."""
    if path == "/server.json":
        return ServerInfo(ctx)
    if not (path == "/console" or path.startswith("/console/")):
        return None
    if static_root is not None and _exists(static_root, path):
        first = request.postpath[0]
        request.prepath.append(request.postpath.pop(0))
        return StaticFile(static_root).getChildWithDefault(first, request)
    return builtin_resource(ctx, path, None, request)


__all__ = ["LIBS", "WWW_DIR", "builtin_resource", "console_resource", "lib_file", "site_info"]
