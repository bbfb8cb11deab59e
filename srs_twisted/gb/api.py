"""The GB28181 routes of the HTTP API.

* ``POST /gb/v1/publish/`` with ``{"id": "<device id>", "ssrc": "<decimal SSRC>"}`` (SRS
  6.0.144's external-SIP mode): a media session for that SSRC, published under the output
  template with ``[stream]`` = id; answers ``{"code":0,"port":<media port>,"is_tcp":true}``
  (``Connection: Close``, as SRS).  Errors as SRS: ``{"code":3008,"desc":...}`` for a body
  that is not a JSON object with string ``id`` and ``ssrc`` (or an id that is no stream name),
  1028 when the id or the SSRC already has a session, 4052 when no gb28181 caster is enabled.
* ``GET /gb/v1/sessions/`` (ours: SRS has no such route): ``{"code":0,"sessions":[...]}``,
  one item per registered device or media session (device id, SIP state and peer, SSRC,
  media peer and transport, bytes, codecs); ``GET /gb/v1/sessions/<id>`` one of them.
* ``DELETE /gb/v1/sessions/<id>``: a BYE to the device, its stream ends, the device is
  forgotten until it registers again; 404-style ``{"code":2049}`` when there is no such id.
"""

from __future__ import annotations

import json

__all__ = ["render"]

ERROR_SYSTEM_STREAM_BUSY = 1028
ERROR_NOT_FOUND = 2049  # ERROR_RTMP_CLIENT_NOT_FOUND, as the clients route answers
ERROR_HTTP_DATA_INVALID = 3008
ERROR_GB_CONFIG = 4052
_NAMES = {ERROR_SYSTEM_STREAM_BUSY: "StreamBusy", ERROR_HTTP_DATA_INVALID: "HttpResponseData",
          ERROR_GB_CONFIG: "GbConfig", ERROR_NOT_FOUND: "RtmpClientNotFound"}
MAX_BODY = 64 * 1024


def _casters(ctx) -> list:
    """The running gb28181 casters (:class:`~.service.GbCaster`) of the server."""
    from .service import GbCaster

    return [c for c in getattr(ctx, "casters", None) or [] if isinstance(c, GbCaster)]


def render(api, request, path: str) -> bytes:
    """Route ``path`` (under ``/gb/v1/``) of ``request``; ``api`` is the SrsApi."""
    ctx = api.ctx
    if path.rstrip("/") == "/gb/v1/publish":
        request.setHeader(b"connection", b"close")
        if request.method != b"POST":
            return _error(api, request, ERROR_HTTP_DATA_INVALID)
        casters = _casters(ctx)
        if not casters:
            return _error(api, request, ERROR_GB_CONFIG)
        body = request.content.read(MAX_BODY + 1) if request.content is not None else b""
        try:
            obj = json.loads(body) if len(body) <= MAX_BODY else None
        except ValueError:
            obj = None
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not isinstance(obj.get("ssrc"), str) \
                or not obj["id"] or not obj["ssrc"].isdigit() or int(obj["ssrc"]) > 0xFFFFFFFF:
            return _error(api, request, ERROR_HTTP_DATA_INVALID)
        code, port = casters[0].external_publish(obj["id"], int(obj["ssrc"]))
        if code:
            return _error(api, request, code)
        return api.reply(request, {"code": 0, "port": port, "is_tcp": True})
    if path.startswith("/gb/v1/sessions"):
        device_id = path[len("/gb/v1/sessions"):].strip("/")
        sessions = [s for caster in _casters(ctx) for s in caster.describe()]
        if request.method == b"GET":
            if not device_id:
                return api.reply(request, api.envelope(sessions=sessions))
            for s in sessions:
                if s["id"] == device_id:
                    return api.reply(request, api.envelope(session=s))
            return _error(api, request, ERROR_NOT_FOUND)
        if request.method == b"DELETE" and device_id:
            if any(caster.remove(device_id, "removed by the API") for caster in _casters(ctx)):
                return api.reply(request, api.envelope())
            return _error(api, request, ERROR_NOT_FOUND)
        return _error(api, request, ERROR_HTTP_DATA_INVALID)
    request.setResponseCode(404)
    return b""


def _error(api, request, code: int) -> bytes:
    return api.reply(request, {"code": code, "desc": _NAMES.get(code, "")})
