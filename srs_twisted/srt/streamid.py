"""SRT stream ids as SRS reads them (``srs_srt_streamid_info`` / ``_to_request``).

* ``#!::r=app/stream,m=publish`` (or ``m=request``, the default): keys split on ``,``
  ``&`` ``;`` and ``=`` (a ``?`` counts as ``,``); ``h=vhost`` names the vhost (and is
  passed on as ``vhost=`` in the parameters); the old ``h=app/stream`` and
  ``h=vhost/app/stream`` forms are read as SRS reads them; every other key goes to the
  hooks' ``param``.
* A plain id: ``app/stream?k=v`` (a stream without ``/`` is in ``default_app``).  SRS
  always plays a plain id; here a plain id whose query has ``m=publish`` publishes (the
  mode key is then not passed on).
* An empty id is ``#!::r=live/livestream,m=publish`` (SRS's fallback).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["StreamId", "parse_stream_id", "EMPTY_STREAM_ID"]

EMPTY_STREAM_ID = "#!::r=live/livestream,m=publish"
_SPLIT = re.compile(r"&&|[=,&;]")


@dataclass(frozen=True)
class StreamId:
    publish: bool
    vhost: str
    app: str
    stream: str
    param: str  # "k=v&k2=v2", without "?"


def _pairs(text: str) -> list:
    parts = _SPLIT.split(text)
    return [(parts[i], parts[i + 1] if i + 1 < len(parts) else "") for i in range(0, len(parts), 2)]


def parse_stream_id(stream_id: str, default_app: str = "live") -> StreamId:
    """The request a stream id names; :class:`ValueError` when it names none."""
    if not stream_id:
        stream_id = EMPTY_STREAM_ID
    publish = False
    vhost = ""
    params: list = []
    if not stream_id.startswith("#!::"):
        path, _, query = stream_id.partition("?")
        subpath = path if "/" in path else f"{default_app}/{path}"
        for key, value in _pairs(query) if query else []:
            if key == "m" and value.lower() in ("publish", "request"):
                publish = value.lower() == "publish"
            elif key:
                params.append(f"{key}={value}")
    else:
        subpath = ""
        seen = {}
        for key, value in _pairs(stream_id[4:].replace("?", ",")):
            seen[key] = value  # the last value of a key wins, as in SRS's map
        for key in sorted(seen):  # SRS walks a std::map: keys in order
            value = seen[key]
            if key == "h":
                if "/" in value:
                    first, last = value.find("/"), value.rfind("/")
                    if first != last:
                        subpath = value[first + 1:]
                        vhost = value[:first]
                        params.append(f"vhost={vhost}")
                    else:
                        subpath = value
                else:
                    vhost = value
                    params.append(f"vhost={vhost}")
            elif key == "r":
                subpath = value
            elif key == "m":
                mode = value.lower()
                if mode not in ("publish", "request"):
                    raise ValueError(f"unknown mode m={value!r} in stream id {stream_id!r}")
                publish = mode == "publish"
            else:
                params.append(f"{key}={value}")
    if not subpath:
        raise ValueError(f"stream id {stream_id!r} names no stream (r=app/stream)")
    app, sep, rest = subpath.partition("/")
    if not sep:
        app, rest = default_app, subpath
    stream, _, inner = rest.partition("?")
    if inner:
        params = [inner] + params
    return StreamId(publish, vhost, app, stream, "&".join(params))
