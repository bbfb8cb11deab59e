"""SRS's ``vhost.security``: allow or deny publish and play by client IP.

::

    security {
        enabled on;
        deny  publish 10.0.0.13;
        allow publish 10.0.0.0/8;
        allow play    all;
    }

The order is SRS's (``srs_app_security.cpp``), not the order of the lines:

1. a ``deny`` rule for the method (publish or play) that matches refuses;
2. otherwise an ``allow`` rule for the method that matches accepts;
3. otherwise the client is refused if there is any ``allow`` rule at all
   (of either method) or no rule at all, and accepted when the block only
   has ``deny`` rules.

So an enabled block with no rules refuses everything, and ``deny`` alone
means "everyone but these".  A target is ``all``, an address or a CIDR
network, IPv4 or IPv6 (SRS only understands IPv4 networks); an IPv4-mapped
IPv6 client address (``::ffff:10.0.0.1``) is matched as IPv4.  It applies to
publish and play over every protocol; connect is not checked.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from twisted.internet import defer

from ..context import AllowAll, ClientInfo
from ..errors import Denied


@lru_cache(maxsize=1024)
def _network(target: str):
    try:
        return ipaddress.ip_network(target, strict=False)
    except ValueError:
        return None


def _address(ip: str):
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped if mapped is not None else addr


def target_matches(target: str, ip: str) -> bool:
    """Whether a rule's target (``all``, an address, a CIDR) covers ``ip``."""
    if target == "all" or target == ip:
        return True
    addr = _address(ip)
    net = _network(target)
    if addr is None or net is None or net.version != addr.version:
        return False
    return addr in net


def check(rules, method: str, ip: str) -> str | None:
    """Why ``ip`` may not ``method`` (publish or play) under ``rules``
    (SecurityRule-like: action, method, target), or None when it may."""
    for rule in rules:
        if rule.action == "deny" and rule.method == method and target_matches(rule.target, ip):
            return f"{ip} denied by rule <deny {rule.method} {rule.target}>"
    allow_rules = 0
    deny_rules = 0
    for rule in rules:
        if rule.action == "deny":
            deny_rules += 1
            continue
        if rule.action != "allow":
            continue
        allow_rules += 1
        if rule.method == method and target_matches(rule.target, ip):
            return None
    if allow_rules > 0 or deny_rules == 0:
        return f"{ip} not allowed to {method} by any of {allow_rules} allow/{deny_rules} deny rules"
    return None


class SecurityPolicy(AllowAll):
    """The vhost's ``security`` block as a policy (connect and the
    notifications are AllowAll's)."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    def _check(self, client: ClientInfo, method: str):
        conf = self.ctx.vhost(client.request.vhost)
        if conf is None or not conf.security.enabled:
            return defer.succeed(None)
        reason = check(conf.security.rules, method, client.ip)
        if reason is not None:
            return defer.fail(Denied(f"security: {reason}"))
        return defer.succeed(None)

    def on_publish(self, client: ClientInfo):
        return self._check(client, "publish")

    def on_play(self, client: ClientInfo):
        return self._check(client, "play")


__all__ = ["SecurityPolicy", "check", "target_matches"]
