#!/usr/bin/env python3
"""What the stream casters' ingest costs (issue 13 section 2), in process, no sockets.

A clip (made with FFmpeg: H.264 + AAC, ``--seconds`` long, ``--bitrate`` video) is fed to
the casters as their clients would send it, with the server's context on a fake clock and
one live source with one HTTP-FLV player (the GOP cache, the fan-out and the FLV muxing run,
no HLS/DVR); the clock advances with the media, so the player's merged writes are flushed:

* ``mpegts_over_udp``: the clip as MPEG-TS, in 1316-byte datagrams, to ``UdpCaster.datagram``;
* ``flv``: the clip as FLV, in 16 KiB chunks, through the FLV caster's request (chunked
  transfer decoding by Twisted's HTTP channel included).

For each, the CPU time (``time.process_time``) over ``--rounds`` rounds of the whole clip gives
the cost per second of media and per megabyte, i.e. the share of one core a live stream of
that bitrate takes.

    python bench/casters_ingest.py                          # 20 s clip at 1 Mbit/s, 5 rounds
    python bench/casters_ingest.py --bitrate 4000k --rounds 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import task  # noqa: E402
from twisted.internet.address import IPv4Address  # noqa: E402
from twisted.internet.testing import StringTransport  # noqa: E402

from srs_twisted.caster.flv import FlvCaster, _Site  # noqa: E402
from srs_twisted.caster.udp import UdpCaster  # noqa: E402
from srs_twisted.config import load_string  # noqa: E402
from srs_twisted.context import ServerContext  # noqa: E402

CONF = """
stream_caster { enabled on; caster mpegts_over_udp; listen 8935; output rtmp://127.0.0.1/live/udp; }
stream_caster { enabled on; caster flv; listen 8936; output rtmp://127.0.0.1/[app]/[stream]; }
vhost __defaultVhost__ { }
"""


def make_clip(seconds: int, bitrate: str, fmt: str, out: str) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-bf", "0", "-b:v", bitrate,
         "-maxrate", bitrate, "-bufsize", bitrate, "-c:a", "aac", "-b:a", "64k", "-f", fmt, out],
        check=True, timeout=600)


def _subscribe(ctx, app, stream):
    source = ctx.registry.fetch_or_create("__defaultVhost__", app, stream)
    from srs_twisted.http.stream import HttpStreamSink

    written = [0]

    def write(data):
        written[0] += len(data)

    sink = HttpStreamSink(source, "flv", write)
    source.subscribe(sink)
    return written


def bench_udp(ts: bytes, rounds: int, seconds: int) -> float:
    clock = task.Clock()
    config = load_string(CONF)
    ctx = ServerContext(config, clock)
    caster = UdpCaster(ctx, config.stream_casters[0])
    datagrams = [ts[i:i + 1316] for i in range(0, len(ts), 1316)]
    written = _subscribe(ctx, "live", "udp")
    cpu = 0.0
    for r in range(rounds):
        start = time.process_time()
        step = seconds / len(datagrams)
        for d in datagrams:
            caster.datagram(d, ("127.0.0.1", 40000 + r))
            clock.advance(step)
        cpu += time.process_time() - start
        clock.advance(10)  # idle: the publish ends, the next round starts a new one
    return cpu, written[0]


def bench_flv(flv: bytes, rounds: int, seconds: int) -> float:
    clock = task.Clock()
    config = load_string(CONF)
    ctx = ServerContext(config, clock)
    site = _Site(FlvCaster(ctx, config.stream_casters[1]))
    written = _subscribe(ctx, "live", "flvin")
    cpu = 0.0
    for _ in range(rounds):
        channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        channel.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 2)))
        body = [flv[i:i + 16384] for i in range(0, len(flv), 16384)]
        start = time.process_time()
        channel.dataReceived(b"POST /live/flvin.flv HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        step = seconds / len(body)
        for part in body:
            channel.dataReceived(b"%x\r\n%s\r\n" % (len(part), part))
            clock.advance(step)
        channel.dataReceived(b"0\r\n\r\n")
        cpu += time.process_time() - start
        if not channel.transport.value().startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"the FLV POST failed: {channel.transport.value()[:200]!r}")
        channel.connectionLost(None)
    return cpu, written[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--bitrate", default="1000k")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="srs-bench-casters-") as tmp:
        ts_path, flv_path = os.path.join(tmp, "clip.ts"), os.path.join(tmp, "clip.flv")
        make_clip(args.seconds, args.bitrate, "mpegts", ts_path)
        make_clip(args.seconds, args.bitrate, "flv", flv_path)
        ts, flv = open(ts_path, "rb").read(), open(flv_path, "rb").read()
    media = args.seconds * args.rounds
    print(f"clip: {args.seconds} s 1280x720 H.264 {args.bitrate} + AAC 64k; {args.rounds} rounds; "
          f"TS {len(ts) / 1e6:.2f} MB, FLV {len(flv) / 1e6:.2f} MB")
    for name, size, (cpu, played) in (("mpegts_over_udp", len(ts), bench_udp(ts, args.rounds, args.seconds)),
                                      ("flv (chunked POST)", len(flv), bench_flv(flv, args.rounds, args.seconds))):
        mb = size * args.rounds / 1e6
        if played < size * args.rounds / 2:
            raise SystemExit(f"{name}: the player got {played} bytes only")
        print(f"{name:20s} cpu {cpu:6.3f} s for {media} s of media: {100 * cpu / media:5.2f} % of a core per stream, "
              f"{1000 * cpu / mb:6.1f} ms per MB ({size * 8 / args.seconds / 1e6:.2f} Mbit/s; player got "
              f"{played / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
