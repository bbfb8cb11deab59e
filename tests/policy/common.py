"""Shared fixtures for the policy tests: a context from config text, clients,
and an HTTP hooks client whose network is a script."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.task import Clock

from srs_twisted import config as srs_config
from srs_twisted.context import ClientInfo, ServerContext
from srs_twisted.policy.hooks import HttpHooksClient
from srs_twisted.url import discover


def make_ctx(conf: str, clock=None) -> ServerContext:
    ctx = ServerContext(srs_config.load_string(conf), clock or Clock())
    ctx.server_id = "vid-srv0001"
    ctx.service_id = "svc12345"
    return ctx


def make_client(
    ctx=None,
    ip="192.168.1.10",
    tc_url="rtmp://127.0.0.1:1935/live",
    stream="livestream?token=abc",
    vhost=None,
    protocol="rtmp",
    page_url="http://www.ossrs.net/players/srs_player.html",
    with_source=True,
    cid="cid00001",
) -> ClientInfo:
    req = discover(tc_url, stream)
    if ctx is not None:
        conf = ctx.vhost(req.vhost)
        if conf is not None:
            req.vhost = conf.name
    if vhost is not None:
        req.vhost = vhost
    client = ClientInfo(ip=ip, port=50000, id=cid, protocol=protocol, request=req, page_url=page_url)
    client.recv_bytes = lambda: 1234
    client.send_bytes = lambda: 5678
    if with_source and ctx is not None:
        client.source = ctx.registry.fetch_or_create(req.vhost, req.app, req.stream)
    return client


class ScriptedHttp(HttpHooksClient):
    """The network replaced by a script: ``replies[url]`` is a (status, body)
    pair, an Exception, or None for "never answers"."""

    def __init__(self, clock=None, replies=None, timeout=30.0):
        super().__init__(clock or Clock(), timeout=timeout)
        self.replies = dict(replies or {})
        self.requests: list[tuple[bytes, str, bytes | None, int, bool]] = []
        self.pending: list[defer.Deferred] = []

    def request(self, method, url, data, limit, truncate=False):
        self.requests.append((method, url, data, limit, truncate))
        reply = self.replies.get(url, (200, b'{"code":0}'))
        if reply is None:
            d = defer.Deferred()
            self.pending.append(d)
            return d
        if isinstance(reply, Exception):
            return defer.fail(reply)
        return defer.succeed(reply)

    def urls(self):
        return [r[1] for r in self.requests]

    def bodies(self):
        import json

        return [json.loads(r[2]) if r[2] is not None else None for r in self.requests]
