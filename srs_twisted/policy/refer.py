"""SRS's ``vhost.refer``: anti-leech by the page a Flash/RTMP client says it
was embedded in (the ``pageUrl`` of its RTMP connect).

::

    refer {
        enabled on;
        all     ossrs.net;          # checked when the client connects
        publish ossrs.net;          # checked before publishing
        play    ossrs.net srs.io;   # checked before playing
    }

As ``srs_app_refer.cpp``: the page URL's domain is what follows ``://`` up
to the first ``/`` and then the first ``:``; it passes a list when one entry
is found in the domain *ending* it (a plain suffix test, so ``ossrs.net``
also accepts ``www.ossrs.net`` and ``evilossrs.net``; the first occurrence
must be the suffix, so ``a.com.a.com`` fails ``a.com``).  A list given with no
entries refuses everyone; a list not given is not checked.  Only RTMP
clients are checked (HTTP-FLV, HLS, WebRTC and SRT have no pageUrl; SRS
does not check them either).
"""

from __future__ import annotations

from twisted.internet import defer

from ..context import AllowAll, ClientInfo
from ..errors import Denied
from .hooks import RTMP_PROTOCOLS


def page_domain(page_url: str) -> str:
    domain = page_url
    pos = domain.find("://")
    if pos >= 0:
        domain = domain[pos + 3 :]
    pos = domain.find("/")
    if pos >= 0:
        domain = domain[:pos]
    pos = domain.find(":")
    if pos >= 0:
        domain = domain[:pos]
    return domain


def refer_matches(page_url: str, refer: str) -> bool:
    """SRS's check_single_refer."""
    domain = page_domain(page_url)
    pos = domain.find(refer)
    return pos >= 0 and pos == len(domain) - len(refer)


def check(page_url: str, refers) -> bool:
    """Whether ``page_url`` passes a refer list (None: no list, passes)."""
    if refers is None:
        return True
    return any(refer_matches(page_url, refer) for refer in refers)


class ReferPolicy(AllowAll):
    """The vhost's ``refer`` block as a policy: ``all`` on connect,
    ``publish`` and ``play`` before those."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    def _check(self, client: ClientInfo, which: str):
        if client.protocol not in RTMP_PROTOCOLS:
            return defer.succeed(None)
        conf = self.ctx.vhost(client.request.vhost)
        if conf is None or not conf.refer.enabled:
            return defer.succeed(None)
        refers = getattr(conf.refer, which)
        if check(client.page_url, refers):
            return defer.succeed(None)
        return defer.fail(
            Denied(f"refer: pageUrl {client.page_url!r} is not in refer {which} {' '.join(refers)}".rstrip())
        )

    def on_connect(self, client: ClientInfo):
        return self._check(client, "all")

    def on_publish(self, client: ClientInfo):
        return self._check(client, "publish")

    def on_play(self, client: ClientInfo):
        return self._check(client, "play")


__all__ = ["ReferPolicy", "check", "page_domain", "refer_matches"]
