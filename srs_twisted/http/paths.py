"""The one path every HTTP decision is made on.

A request path is percent-decoded once (``%61pi`` is ``api``, ``api%2fv1`` is
``api/v1``), must be UTF-8 without control characters, and is normalized:
empty and ``.`` segments go, ``..`` removes the segment before it (never
above the root).  The API's auth check, the API router, the live stream
mounts, HLS sessions and the static files all see this same path, so no
spelling of a URL can reach a route without passing the checks made for it.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes


class BadPath(ValueError):
    """A path no route can have: not UTF-8, or with a control character."""


def normalize(raw: bytes) -> str:
    """``raw`` (the encoded path of a request line, no query) as routes see it."""
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise BadPath("the path is not UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise BadPath("the path has a control character")
    segments: list[str] = []
    parts = text.split("/")
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if segments:
                segments.pop()
            continue
        segments.append(part)
    trailing = parts[-1] in ("", ".", "..") and bool(segments)
    return "/" + "/".join(segments) + ("/" if trailing else "")


def normalize_request(request) -> str:
    """Normalize ``request``'s path in place (``path``, ``prepath``,
    ``postpath``) and return it.  Always computed from the request line
    (``request.uri``), so doing it twice gives the same result."""
    path = normalize(request.uri.split(b"?", 1)[0])
    request.path = path.encode("utf-8")
    request.prepath = []
    request.postpath = [s.encode("utf-8") for s in path[1:].split("/")] if path != "/" else [b""]
    return path


__all__ = ["BadPath", "normalize", "normalize_request"]
