"""Talking to another server: where to connect and what to send (SRS's URL
rules for forward and edge), and cancellable RTMP and HTTP-FLV connections.

A *connection* here is what :class:`~srs_twisted.cluster.supervise.Supervisor`
keeps alive: it has ``done`` (fires once it is gone) and ``close()``.
:class:`RtmpClientProtocol` is one; :class:`FlvPull` is the HTTP-FLV one.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Callable

from twisted.internet import defer, endpoints, protocol

from .. import SERVER_NAME, __version__
from ..codec.errors import CodecError
from ..codec.flv import FlvReader
from ..rtmp.client import RtmpClientProtocol
from ..rtmp.session import media_packet
from ..url import DEFAULT_VHOST, StreamRequest, discover

# TCP connect timeout towards an upstream (SRS: 3 s forward, 5 s edge).
CONNECT_TIMEOUT = 5.0
# HTTP redirects an HTTP-FLV pull follows (SRS: 3).
FLV_REDIRECT_LIMIT = 3


def parse_hostport(text: str, default_port: int = 1935) -> tuple[str, int, str]:
    """``HOST[:PORT][/APP/STREAM]`` -> (host, port, path).  IPv6 hosts are
    written in brackets (``[::1]:1935``)."""
    text = text.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    hostport, _, path = text.partition("/")
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port = rest.lstrip(":")
    elif hostport.count(":") == 1:
        host, _, port = hostport.partition(":")
    else:
        host, port = hostport, ""
    return host or "127.0.0.1", int(port) if port.isdigit() else default_port, path


def _is_ipv4(host: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv4Address)
    except ValueError:
        return False


def _query_items(param: str) -> list[str]:
    return [p for p in param.lstrip("?").split("&") if p]


@dataclass
class Target:
    """One upstream attempt: where to connect and what to say."""

    host: str
    port: int
    tc_url: str  # sent in the RTMP connect (SRS puts the vhost there)
    stream: str  # stream name with its query, as published/played
    vhost: str = DEFAULT_VHOST

    @property
    def url(self) -> str:
        return f"{self.tc_url}/{self.stream}"

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"


def rtmp_target(server: str, port: int, client_host: str, vhost: str, app: str, stream: str, param: str) -> Target:
    """SRS's ``srs_generate_rtmp_url`` then ``SrsBasicRtmpClient``: the vhost
    travels in the tcUrl (``rtmp://VHOST[:port]/app``; the server's address
    for the default vhost), the stream keeps the client's query without
    ``vhost=``.  When the query names no vhost, a non-default vhost (or a
    client host that is a name, not an IPv4 address) is used."""
    items = _query_items(param)
    named = [i.partition("=")[2] for i in items if i.startswith("vhost=") or i.startswith("domain=")]
    if named:
        target_vhost = named[0]
    elif vhost and vhost != DEFAULT_VHOST:
        target_vhost = vhost
    elif client_host and not _is_ipv4(client_host) and client_host != DEFAULT_VHOST:
        target_vhost = client_host
    else:
        target_vhost = DEFAULT_VHOST
    host_in_url = server if target_vhost == DEFAULT_VHOST else target_vhost
    if ":" in host_in_url and not host_in_url.startswith("["):
        host_in_url = f"[{host_in_url}]"
    port_part = "" if port == 1935 else f":{port}"
    tc_url = f"rtmp://{host_in_url}{port_part}/{app}"
    query = [i for i in items if not (i.startswith("vhost=") or i.startswith("domain="))]
    name = stream + ("?" + "&".join(query) if query else "")
    return Target(server, port, tc_url, name, target_vhost)


def target_from_url(url: str) -> Target:
    """An ``rtmp://host[:port]/app/stream[?query]`` URL (forward backend
    replies) as a target, by SRS's rules."""
    base, _, query = url.partition("?")
    tc_url, _, stream = base.rpartition("/")
    req = discover(tc_url, stream + ("?" + query if query else ""))
    vhost = req.vhost if req.vhost != req.host else DEFAULT_VHOST
    return rtmp_target(req.host or "127.0.0.1", req.port, req.host, vhost, req.app, req.stream, req.param)


def identity(cid: str) -> dict:
    """What an upstream connect tells about us (SRS sends srs_* fields too)."""
    return {"srs_server": f"{SERVER_NAME}/{__version__}", "srs_id": cid, "srs_pid": float(os.getpid())}


def rtmp_connect(
    reactor,
    target: Target,
    mode: str,
    on_packet: Callable | None = None,
    timeout: float = CONNECT_TIMEOUT,
    chunk_size: int = 60000,
    connect_extra: dict | None = None,
) -> defer.Deferred:
    """Connect to ``target.host:target.port`` (not the tcUrl's host) and
    publish or play.  Fires with the :class:`RtmpClientProtocol` once the
    server started; fails with Denied if it refused.  Cancelling it closes
    whatever was opened."""
    proto = RtmpClientProtocol(target.tc_url, target.stream, mode, on_packet, chunk_size, connect_extra)
    ep = endpoints.HostnameEndpoint(reactor, target.host, target.port, timeout=timeout)
    connecting = endpoints.connectProtocol(ep, proto)

    cancelled = []

    def cancel(_d):
        # The attempt's own failures (ConnectingCancelledError, a lost
        # connection) are not reported: the caller sees CancelledError.
        cancelled.append(True)
        connecting.cancel()
        if proto.transport is not None:
            proto.transport.abortConnection()

    result = defer.Deferred(cancel)

    def connected(p):
        p.started.addCallbacks(_fire, _fail)

    def _fire(p):
        if not result.called:
            result.callback(p)
        else:  # cancelled meanwhile
            p.transport.abortConnection()

    def _fail(failure):
        if not result.called and not cancelled:
            result.errback(failure)

    connecting.addCallbacks(connected, _fail)
    return result


class FlvPull(protocol.Protocol):
    """An HTTP-FLV response body read as packets: the edge's ``protocol
    flv|flvs`` upstream.  A connection (``done``, ``close()``)."""

    def __init__(self, on_packet: Callable | None) -> None:
        self.on_packet = on_packet
        self.reader = FlvReader()
        self.done: defer.Deferred = defer.Deferred()
        self.received = 0
        self.error: str | None = None

    def dataReceived(self, data: bytes) -> None:
        self.received += len(data)
        try:
            tags = self.reader.feed(data)
            for tag in tags:
                if tag.tag_type in (8, 9, 18) and tag.payload:
                    pkt = media_packet(tag.tag_type, tag.timestamp, tag.payload)
                    if self.on_packet is not None:
                        self.on_packet(pkt)
        except (CodecError, ValueError) as e:
            self.error = f"{type(e).__name__}: {e}"
            self.transport.stopProducing()

    def connectionLost(self, reason=None) -> None:
        if not self.done.called:
            self.done.callback(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.stopProducing()

    @property
    def bytes_received(self) -> int:
        return self.received


def flv_url(schema: str, host: str, port: int, app: str, stream: str, param: str) -> str:
    """SRS's ``SrsEdgeFlvUpstream``: ``/app/stream.flv`` plus the query."""
    host_part = f"[{host}]" if ":" in host else host
    path = f"/{app}/{stream}"
    if not stream.endswith(".flv"):
        path += ".flv"
    return f"{schema}://{host_part}:{port}{path}{param}"


def flv_connect(reactor, url: str, on_packet: Callable | None = None, host_header: str | None = None,
                timeout: float = CONNECT_TIMEOUT, agent=None) -> defer.Deferred:
    """GET an HTTP(S)-FLV stream.  Fires with a :class:`FlvPull` once the
    response is 200 (up to three redirects are followed, as SRS does); fails
    with ConnectionError on another status.  Like SRS, HTTPS certificates are
    not verified."""
    from twisted.web.client import Agent, RedirectAgent
    from twisted.web.http_headers import Headers

    if agent is None:
        if url.startswith("https:"):
            from ..policy.hooks import _NoVerifyTLS

            agent = Agent(reactor, contextFactory=_NoVerifyTLS(), connectTimeout=timeout)
        else:
            agent = Agent(reactor, connectTimeout=timeout)
        agent = RedirectAgent(agent, redirectLimit=FLV_REDIRECT_LIMIT)
    headers = Headers({b"user-agent": [f"{SERVER_NAME}/{__version__}".encode()]})
    if host_header:
        headers.setRawHeaders(b"host", [host_header.encode("idna")])
    requesting = agent.request(b"GET", url.encode("ascii"), headers)

    def got(response):
        if response.code != 200:
            response.deliverBody(protocol.Protocol())  # discard, free the connection
            raise ConnectionError(f"HTTP {response.code} from {url}")
        pull = FlvPull(on_packet)
        response.deliverBody(pull)
        return pull

    requesting.addCallback(got)
    return requesting


def first_player_request(ctx, source) -> StreamRequest | None:
    """The request of the source's oldest player (SRS keeps the request of
    the client that created the source; its query reaches the origin)."""
    best = None
    for client in list(ctx.clients.values()):
        if client.source is source and not client.publish:
            if best is None or client.started < best.started:
                best = client
    return best.request if best is not None else None
