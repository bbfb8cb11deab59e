"""SRS 3-6's origin cluster: ``cluster { mode local; origin_cluster on;
coworkers HOST:API_PORT ...; }``.

- ``GET /api/v1/clusters?vhost=&ip=&app=&stream=&coworker=`` (every origin
  answers it) says whether this origin publishes the stream and where to
  reach it: ``{"code":0,"data":{"query":{...},"origin":null|{"ip","port",
  "vhost","api","routers"}}}``, the ip being the RTMP listen host unless it
  is a loopback one, else the host the asker used for us (``coworker``).
- An RTMP player of a stream this origin does not publish is answered, after
  ``NetStream.Play.Start``, with SRS's 302: ``onStatus`` level error,
  ``NetConnection.Connect.Rejected``, description ``RTMP 302 Redirect`` and
  ``ex {code: 302, redirect: TCURL, redirect2: URL}`` naming the first
  coworker that publishes it; then the connection is closed.  When no
  coworker has it the player is closed too ("no origin"), as SRS does.  An
  edge's pull follows the redirect (:mod:`.edge`).

With ``redis { enabled on; }`` the Redis directory is used instead
(:mod:`.redis_directory`): no redirect, the origin pulls the stream.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from twisted.internet import defer

from ..log import ContextLogger
from .upstream import CONNECT_TIMEOUT, parse_hostport, rtmp_target

_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _published_here(ctx, vhost: str, app: str, stream: str):
    conf = ctx.vhost(vhost)
    if conf is None:
        return None
    source = ctx.registry.get(conf.name, app, stream)
    if source is None or not source.active or getattr(source.publisher, "relay", False):
        return None
    return source


def clusters_data(ctx, query: dict) -> dict:
    """The ``data`` of SRS's ``/api/v1/clusters`` answer."""
    vhost, app, stream = query.get("vhost", ""), query.get("app", ""), query.get("stream", "")
    data = {"query": {"ip": query.get("ip", ""), "vhost": vhost, "app": app, "stream": stream}, "origin": None}
    source = _published_here(ctx, vhost, app, stream)
    if source is None:
        return data
    listens = list(ctx.config.listen)
    listen_host, listen_port = "", 1935
    if listens:
        if ":" in listens[0]:
            listen_host, listen_port, _ = parse_hostport(listens[0], 1935)
        else:
            listen_port = int(listens[0]) if listens[0].isdigit() else 1935
    service_ip = listen_host if listen_host not in _LOOPBACK else ""
    if not service_ip:
        service_ip = parse_hostport(query.get("coworker", ""), 0)[0] if query.get("coworker") else ""
    if not service_ip:
        from ..heartbeat import local_ips

        service_ip = local_ips()[0]
    api_listens = ctx.config.http_api.listens
    backend = api_listens[0] if api_listens else ""
    if ":" not in backend:
        backend = f"{service_ip}:{backend}"
    ContextLogger().trace(f"Redirect vhost={vhost}, path={app}/{stream} to ip={service_ip}, port={listen_port}, "
                          f"api={backend}")
    data["origin"] = {"ip": service_ip, "port": listen_port, "vhost": source.vhost, "api": backend,
                      "routers": [backend]}
    return data


def redirect_applies(ctx, req, source) -> bool:
    """An RTMP player on an origin of a legacy cluster, of a stream not
    published here."""
    conf = ctx.vhost(req.vhost)
    if conf is None or conf.cluster.is_edge or not conf.cluster.origin_cluster or conf.cluster.redis.enabled:
        return False
    if not conf.cluster.coworkers:
        return False
    return not source.active


def _get_json(clock, url: str):
    import treq

    d = treq.get(url, timeout=CONNECT_TIMEOUT, persistent=False)
    d.addCallback(lambda r: r.content())
    d.addCallback(json.loads)
    return d


@defer.inlineCallbacks
def discover(ctx, req, log=None, get_json=_get_json):
    """The RTMP URL of the first coworker that publishes the stream, or
    None.  A coworker that fails or does not have it is skipped."""
    log = log or ContextLogger()
    conf = ctx.vhost(req.vhost)
    for coworker in conf.cluster.coworkers:
        query = urlencode({"vhost": req.vhost, "ip": req.host, "app": req.app, "stream": req.stream,
                           "coworker": coworker})
        url = f"http://{coworker}/api/v1/clusters?{query}"
        try:
            answer = yield get_json(ctx.clock, url)
            origin = (answer.get("data") or {}).get("origin") if isinstance(answer, dict) else None
            host, port = (origin or {}).get("ip"), (origin or {}).get("port")
        except Exception as e:  # noqa: BLE001 - an unreachable coworker: the next one
            log.warn(f"rtmp: discover coworker {url} failed: {type(e).__name__}: {e}")
            continue
        if not host or not isinstance(port, (int, float)) or not port:
            continue
        target = rtmp_target(str(host), int(port), req.host, req.vhost, req.app, req.stream, req.param)
        log.trace(f"rtmp: redirect in cluster, from={req.host}:{req.port}, target={host}:{int(port)}, url={url}, "
                  f"rurl={target.url}")
        return target.url
    return None


__all__ = ["clusters_data", "discover", "redirect_applies"]
