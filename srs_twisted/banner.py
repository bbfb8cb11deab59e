"""What the server says when it starts: one line per service it runs, with the
URLs to use on this host (publish and play), so a user can copy them.

Pure: a function of the typed config, no I/O.  The example stream is SRS's
``live/livestream``; a listen on every interface (``1935``, ``0.0.0.0``,
``[::]``) is reached through the loopback address.
"""

from __future__ import annotations

import os

from .config.check import parse_endpoint
from .http.stream import mount_format
from .url import DEFAULT_VHOST

APP, STREAM = "live", "livestream"


def host_port(listen: str, bind_host: str = "") -> str:
    """``host:port`` to reach a listen endpoint from this host."""
    host, port = parse_endpoint(listen.strip())
    host = host or bind_host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}"


def _vhost(config):
    """The vhost the examples use: the default one, else the first enabled one."""
    default = config.vhosts.get(DEFAULT_VHOST)
    if default is not None and default.enabled:
        return default
    return next((v for v in config.vhosts.values() if v.enabled), None)


def _fill(template: str, vhost: str) -> str:
    return template.replace("[vhost]", vhost).replace("[app]", APP).replace("[stream]", STREAM)


def _served_path(directory: str, file: str, root: str) -> str | None:
    """The URL path of ``directory/file`` under the HTTP server's ``root``, None if outside it."""
    full = os.path.normpath(os.path.join(directory, file))
    rel = os.path.relpath(full, os.path.normpath(root))
    return None if rel == ".." or rel.startswith(".." + os.sep) else "/" + rel.replace(os.sep, "/")


def startup_lines(config, bind_host: str = "") -> list[str]:
    """One line per service: RTMP, HTTP-FLV, HLS, DASH, the HTTP server, the API, the exporter."""
    lines = []
    vhost = _vhost(config)
    named = vhost is not None and vhost.name != DEFAULT_VHOST
    srv, api = config.http_server, config.http_api

    if vhost is None:
        lines.append(f"RTMP listen={' '.join(config.listen)}: no enabled vhost, every stream is refused")
    else:
        # A named vhost goes in the tcUrl (the app part), which the connect already reads.
        app = f"{APP}?vhost={vhost.name}" if named else APP
        urls = [f"rtmp://{host_port(listen, bind_host)}/{app}/{STREAM}" for listen in config.listen]
        lines.append(f"RTMP listen={' '.join(config.listen)}: publish and play {', '.join(urls)}")

    def http_urls(path: str, by_vhost: bool = True) -> str:
        """Every HTTP(S) URL of ``path`` on the HTTP server; a named vhost's streams go by its Host."""
        out = []
        schemes = [("http", srv.listens)] + ([("https", srv.https.listens)] if srv.https.enabled else [])
        for scheme, listens in schemes:
            for listen in listens:
                where = host_port(listen, bind_host)
                if named and by_vhost:
                    where = f"{vhost.name}:{where.rsplit(':', 1)[1]}"
                out.append(f"{scheme}://{where}{path}")
        return ", ".join(out)

    if srv.enabled and vhost is not None:
        remux = vhost.http_remux
        if remux.enabled:
            mount = remux.mount[len("[vhost]"):] if remux.mount.startswith("[vhost]") else remux.mount
            path = "/" + _fill(mount, vhost.name).lstrip("/")
            ext = mount_format(remux.mount)  # a mount serves its own extension only
            if ext is None:
                lines.append(f"HTTP remux: mount {remux.mount} ends in none of .flv, .ts, .aac, .mp3: serves nothing")
            else:
                ws = http_urls(path).replace("https://", "wss://").replace("http://", "ws://")
                lines.append(f"HTTP-{ext[1:].upper()}: play {http_urls(path)}, over WebSocket {ws}")
        for name, section, directory, file in (
            ("HLS", vhost.hls, vhost.hls.hls_path, vhost.hls.hls_m3u8_file),
            ("DASH", vhost.dash, vhost.dash.dash_path, vhost.dash.dash_mpd_file),
        ):
            if not section.enabled:
                continue
            path = _served_path(directory, _fill(file, vhost.name), srv.dir)
            if path is None:
                lines.append(f"{name}: writes {os.path.join(directory, _fill(file, vhost.name))}, outside "
                             f"http_server.dir {srv.dir}, so not served over HTTP")
            else:
                lines.append(f"{name}: play {http_urls(path)}")
    if srv.enabled:
        listens = " ".join(srv.listens + (srv.https.listens if srv.https.enabled else []))
        lines.append(f"HTTP server listen={listens}: files of {srv.dir} at {http_urls('/', by_vhost=False)}")
    if api.enabled:
        urls = [f"http://{host_port(listen, bind_host)}/api/v1/versions" for listen in api.listens]
        if api.https.enabled:
            urls += [f"https://{host_port(listen, bind_host)}/api/v1/versions" for listen in api.https.listens]
        listens = " ".join(api.listens + (api.https.listens if api.https.enabled else []))
        lines.append(f"HTTP API listen={listens}: {', '.join(urls)}")
    if config.exporter.enabled:
        lines.append(f"Exporter listen={config.exporter.listen}: "
                     f"http://{host_port(config.exporter.listen, bind_host)}/metrics")
    return lines
