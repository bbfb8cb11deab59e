#!/usr/bin/env python3
"""How long the HTTP API takes to list many streams, without sockets.

A server context with N streams, each with one publisher and P players (all
in ``ctx.clients``), answers ``GET /api/v1/streams/?count=N`` (the whole
list), ``/api/v1/streams/?count=10`` (one page), one stream by id and
``/api/v1/clients/?count=10``, each through the real API resource; the best
and median wall time of R rounds are printed per request.

    python bench/api_streams.py [--streams 1000] [--players 1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from treq.testing import StubTreq  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402

from srs_twisted.config import load_string  # noqa: E402
from srs_twisted.context import ClientInfo, ServerContext  # noqa: E402
from srs_twisted.http.api import api_resource  # noqa: E402
from srs_twisted.url import StreamRequest  # noqa: E402

CONF = "listen 1935;\nhttp_api { enabled on; }\nvhost __defaultVhost__ { }\n"


class _Producer:
    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def stopProducing(self):
        pass


class _Sink:
    wire_key = "bench"

    def encode(self, pkt):
        return pkt.payload

    def write(self, data):
        pass

    def stream_published(self):
        pass

    def stream_unpublished(self):
        pass


def build(streams: int, players: int):
    clock = Clock()
    clock.advance(1_700_000_000)
    ctx = ServerContext(load_string(CONF), clock)
    for i in range(streams):
        name = f"s{i}"
        source = ctx.registry.fetch_or_create("__defaultVhost__", "live", name)
        for j in range(players + 1):
            kind = "fmle-publish" if j == 0 else "rtmp-play"
            req = StreamRequest(host="127.0.0.1", vhost="__defaultVhost__", app="live", stream=name,
                                tc_url="rtmp://127.0.0.1/live")
            info = ClientInfo(ip="127.0.0.1", type=kind, request=req, publish=j == 0, started=clock.seconds())
            info.source = source
            ctx.add_client(info)
            if j == 0:
                ctx.registry.publish(source, _Producer(), info)
            else:
                source.subscribe(_Sink())
    return ctx


def get(stub: StubTreq, path: str) -> bytes:
    """One request through the API resource (StubTreq answers synchronously)."""
    got = []
    d = stub.get("http://127.0.0.1:1985" + path)
    d.addCallback(lambda r: r.content()).addCallback(got.append)
    stub.flush()
    return got[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--players", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    ctx = build(args.streams, args.players)
    resource = StubTreq(api_resource(ctx))
    some_id = ctx.registry.sources()[args.streams // 2].id
    print(f"{args.streams} streams, {len(ctx.clients)} clients, {args.rounds} rounds (ms: best / median)")
    for path in (f"/api/v1/streams/?count={args.streams}", "/api/v1/streams/?count=10",
                 f"/api/v1/streams/{some_id}", "/api/v1/clients/?count=10"):
        times = []
        size = 0
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            size = len(get(resource, path))
            times.append((time.perf_counter() - t0) * 1000)
        print(f"  GET {path:<40} {min(times):9.1f} / {statistics.median(times):9.1f}   ({size} bytes)")


if __name__ == "__main__":
    main()
