"""SRS's stream URL conventions: vhost, app, stream and param from a tcUrl and
a stream name, shared by every protocol.

``rtmp://host[:port]/app[?vhost=v&k=x]`` + ``stream[?token=t]`` gives vhost
(the ``vhost``/``domain`` query parameter, else the host), app, stream and
``param`` (the query, kept with its ``?`` for hooks, as SRS sends it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from .errors import InvalidStreamName

DEFAULT_VHOST = "__defaultVhost__"
DEFAULT_PORTS = {"rtmp": 1935, "rtmps": 443, "http": 80, "https": 443, "webrtc": 1985, "srt": 10080}
# Letters, digits and a few separators: no spaces, quotes, control bytes or
# shell/URL metacharacters in names that become file paths and URLs.
_NAME = re.compile(r"^[A-Za-z0-9_\-.~@+=]+(/[A-Za-z0-9_\-.~@+=]+)*$")


@dataclass
class StreamRequest:
    schema: str = "rtmp"
    host: str = ""
    port: int = 1935
    vhost: str = DEFAULT_VHOST
    app: str = ""
    stream: str = ""
    param: str = ""  # '?a=b' or ''
    tc_url: str = ""

    @property
    def stream_url(self) -> str:
        """SRS's ``stream_url``: /app/stream, prefixed by the vhost unless it
        is the default one."""
        base = f"/{self.app}/{self.stream}"
        return base if self.vhost == DEFAULT_VHOST else f"{self.vhost}{base}"

    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.param.lstrip("?"), keep_blank_values=True))


def split_query(text: str) -> tuple[str, str]:
    """'name?a=b' -> ('name', '?a=b')."""
    name, sep, query = text.partition("?")
    return name, (sep + query if query else "")


def parse_tc_url(tc_url: str) -> StreamRequest:
    """Split a tcUrl into schema, host, port, app and app-level query."""
    req = StreamRequest(tc_url=tc_url)
    rest = tc_url
    if "://" in rest:
        req.schema, rest = rest.split("://", 1)
        req.schema = req.schema.lower()
    hostport, _, path = rest.partition("/")
    if hostport.startswith("["):  # IPv6 literal
        host, _, port = hostport[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = hostport.partition(":")
    req.host = host
    req.port = int(port) if port.isdigit() else DEFAULT_PORTS.get(req.schema, 1935)
    req.app, req.param = split_query(path)
    # SRS also accepts ...vhost...name in the app (old Flash players' trick).
    if "...vhost..." in req.app:
        req.app, _, vhost = req.app.partition("...vhost...")
        req.param = _merge(req.param, f"?vhost={vhost}")
    req.app = req.app.rstrip("/")
    req.vhost = host or DEFAULT_VHOST
    return req


def _merge(a: str, b: str) -> str:
    if not a:
        return b
    if not b:
        return a
    return a + "&" + b.lstrip("?")


def discover(tc_url: str, stream_name: str = "") -> StreamRequest:
    """Full SRS discovery from a tcUrl and a stream name (either may carry
    the query).  The vhost is still the requested one; whether it exists is
    the config's business (unknown vhosts fall back to __defaultVhost__)."""
    req = parse_tc_url(tc_url)
    stream, stream_param = split_query(stream_name)
    req.stream = stream
    req.param = _merge(req.param, stream_param)
    query = req.query()
    vhost = query.get("vhost") or query.get("domain")
    if vhost:
        req.vhost = vhost
    return req


def validate_names(app: str, stream: str) -> None:
    """Refuse names that cannot safely become paths and URLs."""
    for what, value in (("app", app), ("stream", stream)):
        if not value:
            raise InvalidStreamName(f"empty {what} name")
        if len(value) > 256:
            raise InvalidStreamName(f"{what} name longer than 256 characters")
        if not _NAME.match(value) or ".." in value.split("/"):
            raise InvalidStreamName(f"illegal characters in {what} name {value!r}")
