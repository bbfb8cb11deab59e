"""The server's policy: security rules, then refer checks, then HTTP hooks.

SRS (``srs_app_rtmp_conn.cpp``) checks the IP rules and the page refer
before it calls the blocking hooks, so a client refused locally never reaches
the user's web service (one exception: SRS checks ``refer play`` after
``on_play``; here it comes before, so a leech is never announced)."""

from __future__ import annotations

from . import ChainPolicy
from .hooks import HooksPolicy, HttpHooksClient
from .refer import ReferPolicy
from .security import SecurityPolicy


def build_policy(ctx, client=HttpHooksClient) -> ChainPolicy:
    return ChainPolicy([SecurityPolicy(ctx), ReferPolicy(ctx), HooksPolicy(ctx, client)])


__all__ = ["build_policy"]
