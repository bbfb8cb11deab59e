"""New players refused while the circuit breaker (``ctx.breaker``) is critical.

First in the chain: a refused player costs no hook call and no security check,
and the players already connected keep the CPU.  Publishers are never refused
here (refusing a publisher would end the stream for everyone)."""

from __future__ import annotations

from twisted.internet import defer

from ..context import AllowAll, ClientInfo
from ..errors import Overloaded
from ..log import ContextLogger


class OverloadPolicy(AllowAll):
    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.log = ContextLogger()

    def on_play(self, client: ClientInfo):
        breaker = getattr(self.ctx, "breaker", None)
        reason = breaker.check_play() if breaker is not None else None
        if reason is None:
            return defer.succeed(None)
        self.log.warn(f"{client.type} {client.request.vhost}/{client.request.app}/{client.request.stream} "
                      f"from {client.ip} refused: {reason}")
        return defer.fail(Overloaded(reason))
