#!/usr/bin/env python3
"""SRT end-to-end latency through the server: a stamped SRT publisher and an SRT player in one process.

The server (this checkout) runs on loopback with ``srt_server`` on.  This process publishes an
FLV clip (generated: H.264 320x240 25 fps + AAC) in real time as MPEG-TS over SRT with the
server's own SRT core as the caller; every video frame carries an H.264 SEI stamp (the
``bench/publisher.py`` format: its send time, CLOCK_MONOTONIC µs).  A second caller plays the
stream over SRT, demuxes the TS and reads the stamps: latency = receive time - stamp.  Both
legs use SRT latency ``--latency`` (TSBPD holds each packet that long at the server and again
at the player), so the server-added part is the total minus twice the latency.

    python bench/srt_latency.py [--latency 120] [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from loadclient import sei_stamp  # noqa: E402
from publisher import sei_nal  # noqa: E402
from srs_twisted.codec.flv import FlvReader  # noqa: E402
from srs_twisted.codec.mpegts import TsMuxer  # noqa: E402
from srs_twisted.codec.mpegts_demux import TsDemuxer  # noqa: E402
from srs_twisted.live.packet import AUDIO, VIDEO, MediaPacket  # noqa: E402
from srs_twisted.srt.connection import Delivered  # noqa: E402
from srs_twisted.srt.handshake import SrtCaller  # noqa: E402
from srt_fanout import ffmpeg, free_port, wait_until  # noqa: E402


def now_us() -> int:
    return int(time.monotonic() * 1_000_000)


def make_clip(path: str) -> None:
    if os.path.exists(path):
        return
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=10",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=10", "-c:v", "libx264", "-preset",
                    "ultrafast", "-g", "25", "-bf", "0", "-c:a", "aac", "-f", "flv", path], check=True, timeout=300)


def clip_packets(path: str) -> list:
    with open(path, "rb") as f:
        tags = FlvReader().feed(f.read())
    out = []
    for tag in tags:
        if tag.tag_type == 9:
            body = bytes(tag.payload)
            sh = body[1] == 0
            out.append(MediaPacket(VIDEO, tag.timestamp, body, codec="h264", keyframe=body[0] >> 4 == 1,
                                   sequence_header=sh))
        elif tag.tag_type == 8:
            body = bytes(tag.payload)
            out.append(MediaPacket(AUDIO, tag.timestamp, body, codec="aac", sequence_header=body[1] == 0))
    return out


class Endpoint:
    def __init__(self, port: int, stream_id: str, latency: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.setblocking(False)
        self.addr = ("127.0.0.1", port)
        self.caller = SrtCaller(stream_id, latency_ms=latency, peer_latency_ms=latency)
        self.caller.start(now_us())
        self.flush()

    @property
    def conn(self):
        return self.caller.connection

    def flush(self) -> None:
        source = self.conn if self.conn is not None else self.caller
        for data in source.datagrams_to_send():
            self.sock.sendto(data, self.addr)

    def read(self) -> list:
        out = []
        while True:
            try:
                data = self.sock.recv(2048)
            except BlockingIOError:
                break
            self.caller.datagram_received(data, now_us())
        if self.conn is not None:
            out = [e.payload for e in self.conn.events() if isinstance(e, Delivered)]
        self.flush()
        return out

    def tick(self) -> None:
        if self.conn is None:
            self.caller.tick(now_us())
        else:
            self.conn.tick(now_us())
        self.flush()


def run(srt: int, clip: str, latency: int, seconds: float) -> list:
    packets = clip_packets(clip)
    pub = Endpoint(srt, "#!::r=live/lat,m=publish", latency)
    wait = time.monotonic() + 10
    while pub.conn is None and time.monotonic() < wait:
        select.select([pub.sock], [], [], 0.01)
        pub.read()
        pub.tick()
    if pub.conn is None:
        raise SystemExit(f"publisher: {pub.caller.error}")
    mux = TsMuxer(has_video=True, has_audio=True)
    pending = bytearray(mux.pat_pmt())
    player = None
    demux = TsDemuxer()
    samples = []
    start = time.monotonic()
    loop_ms = packets[-1].dts + 40
    i, loops = 0, 0
    end = start + seconds
    while time.monotonic() < end:
        # publish what is due
        while True:
            pkt = packets[i]
            due = start + (loops * loop_ms + pkt.dts) / 1000
            if due > time.monotonic():
                break
            body = pkt.payload
            if pkt.kind == VIDEO and not pkt.sequence_header:
                body = body[:5] + sei_nal(now_us(), 4) + body[5:]
            dts = loops * loop_ms + pkt.dts
            if not (loops and pkt.sequence_header):
                pending += mux.mux(MediaPacket(pkt.kind, dts, body, codec=pkt.codec, keyframe=pkt.keyframe,
                                               sequence_header=pkt.sequence_header))
            whole = len(pending) - len(pending) % 1316
            for k in range(0, whole, 1316):
                pub.conn.send(bytes(pending[k:k + 1316]), now_us())
            del pending[:whole]
            i += 1
            if i == len(packets):
                i, loops = 0, loops + 1
        pub.flush()
        if player is None and time.monotonic() - start > 2:
            player = Endpoint(srt, "#!::r=live/lat,m=request", latency)
        socks = [pub.sock] + ([player.sock] if player else [])
        select.select(socks, [], [], 0.005)
        pub.read()
        pub.tick()
        if player is not None:
            for payload in player.read():
                for media in demux.feed(payload):
                    if media.kind == VIDEO:
                        stamp = sei_stamp(media.payload)
                        if stamp is not None and time.monotonic() - start > 5:
                            samples.append((time.monotonic() - stamp) * 1000)
            player.tick()
    return samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency", type=int, default=120, help="SRT latency of both legs, ms")
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="srt-lat-")
    clip = os.path.join(tempfile.gettempdir(), "srt-latency-clip.flv")
    make_clip(clip)
    srt, rtmp = free_port(), free_port()
    conf = os.path.join(work, "srs.conf")
    with open(conf, "w") as f:
        f.write(f"listen 127.0.0.1:{rtmp};\nsrs_log_tank file;\nsrs_log_file {work}/srs.log;\n"
                f"srt_server {{ enabled on; listen 127.0.0.1:{srt}; recvlatency {args.latency}; "
                f"peerlatency {args.latency}; }}\nvhost __defaultVhost__ {{ srt {{ enabled on; }} }}\n")
    server = subprocess.Popen([sys.executable, "-m", "srs_twisted.cli", "-c", conf], cwd=work,
                              env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: os.path.exists(f"{work}/srs.log") and "SRT listen" in open(f"{work}/srs.log").read(), 60,
                   "the server")
        samples = run(srt, clip, args.latency, args.seconds)
    finally:
        server.terminate()
        server.wait(10)
    if not samples:
        raise SystemExit("no stamped frame reached the player")
    samples.sort()
    p50, p95 = statistics.median(samples), samples[int(len(samples) * 0.95)]
    print(f"frames {len(samples)}  latency {args.latency} ms per leg  end-to-end p50 {p50:.1f} ms  p95 {p95:.1f} ms  "
          f"max {samples[-1]:.1f} ms  server-added (minus 2x latency) p50 {p50 - 2 * args.latency:.1f} ms")


if __name__ == "__main__":
    main()
