"""The server's policy: the circuit breaker (new players refused at its critical
level), security rules, then refer checks, then (on edge vhosts with
token_traverse) the origin, then HTTP hooks, then (origin cluster, workers) the
stream directory's claim of a published stream.

SRS (``srs_app_rtmp_conn.cpp``) checks the IP rules and the page refer
before it calls the blocking hooks, so a client refused locally never reaches
the user's web service (one exception: SRS checks ``refer play`` after
``on_play``; here it comes before, so a leech is never announced)."""

from __future__ import annotations

from . import ChainPolicy
from .hooks import HooksPolicy, HttpHooksClient
from .overload import OverloadPolicy
from .refer import ReferPolicy
from .security import SecurityPolicy


def _has_edge(ctx) -> bool:
    vhosts = getattr(ctx.config, "vhosts", {}) or {}
    return any(v.cluster.is_edge and v.cluster.token_traverse for v in vhosts.values())


def build_policy(ctx, client=HttpHooksClient) -> ChainPolicy:
    policies = [OverloadPolicy(ctx), SecurityPolicy(ctx), ReferPolicy(ctx)]
    if _has_edge(ctx):
        # Edge vhosts with token_traverse ask an origin before their own hooks.
        from ..cluster.traverse import TokenTraversePolicy

        policies.append(TokenTraversePolicy(ctx))
    policies.append(HooksPolicy(ctx, client))
    # Last: a stream is claimed in the cluster's directory only once accepted here.
    from ..cluster.relay import DirectoryPolicy

    policies.append(DirectoryPolicy(ctx))
    return ChainPolicy(policies)


__all__ = ["build_policy"]
