"""SRS's edge ``token_traverse``: before an edge accepts an RTMP client, an
origin is asked with the client's own tcUrl and stream."""

from __future__ import annotations

from twisted.internet import defer

from ..context import AllowAll, ClientInfo
from ..errors import Denied
from ..log import ContextLogger
from .edge import edge_conf
from .upstream import Target, identity, parse_hostport, rtmp_connect

# Token traverse: TCP connect timeout per origin (SRS_EDGE_TOKEN_TRAVERSE_TIMEOUT)
# and the longest the whole check may take.
TRAVERSE_CONNECT_TIMEOUT = 3.0
TRAVERSE_TIMEOUT = 10.0


class TokenTraversePolicy(AllowAll):
    """``cluster { token_traverse on; }``: before an edge accepts an RTMP
    client, the origins are asked with the client's own tcUrl and stream
    (query and token included), for the same action (play or publish).  An
    origin that refuses refuses the client; one that cannot be reached is
    skipped for the next; none reachable refuses the client too (SRS)."""

    def __init__(self, ctx, connect=rtmp_connect) -> None:
        self.ctx = ctx
        self._connect = connect

    # Publish, play and the notifications are AllowAll's: nothing to ask.
    def on_connect(self, client: ClientInfo):
        if client.protocol != "rtmp":
            return defer.succeed(None)
        conf = edge_conf(self.ctx, client.request.vhost)
        if conf is None or not conf.cluster.token_traverse:
            return defer.succeed(None)
        d = self._traverse(client, conf)
        d.addTimeout(TRAVERSE_TIMEOUT, self.ctx.clock)
        return d

    @defer.inlineCallbacks
    def _traverse(self, client: ClientInfo, conf):
        log = ContextLogger(client.id)
        req = client.request
        mode = "publish" if client.publish else "play"
        tc_url = req.tc_url or f"rtmp://{req.host or '127.0.0.1'}/{req.app}"
        for origin in conf.cluster.origin:
            host, port, _ = parse_hostport(origin, 1935)
            target = Target(host, port, tc_url, req.stream + req.param, req.vhost)
            try:
                conn = yield self._connect(self.ctx.clock, target, mode, timeout=TRAVERSE_CONNECT_TIMEOUT,
                                           connect_extra=identity(client.id))
            except Denied as e:
                log.warn(f"edge token traverse: origin {target.endpoint} refused tcUrl={tc_url}: {e}")
                raise Denied(f"token traverse: origin {target.endpoint} refused: {e}")
            except defer.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - unreachable: try the next origin
                log.warn(f"edge token traverse: origin {target.endpoint} unreachable: {type(e).__name__}: {e}")
                continue
            conn.close()
            log.trace(f"edge token auth ok, tcUrl={tc_url}, origin={target.endpoint}")
            return None
        raise Denied(f"token traverse: no origin of {len(conf.cluster.origin)} reachable")


__all__ = ["TRAVERSE_CONNECT_TIMEOUT", "TRAVERSE_TIMEOUT", "TokenTraversePolicy"]
