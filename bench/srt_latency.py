#!/usr/bin/env python3
"""SRT latency through the server: a stamped SRT publisher, an SRT player and an RTMP player.

The server (this checkout) runs on loopback with ``srt_server`` on.  This process publishes an
FLV clip (generated: H.264 320x240 25 fps + AAC) in real time as MPEG-TS over SRT with the
server's own SRT core as the caller; every video frame carries an H.264 SEI stamp (the
``bench/publisher.py`` format: its send time, CLOCK_MONOTONIC µs) and its TS packets are sent
at once (whole TS packets, the last message of a frame shorter), so the stamp is the time the
frame's last byte left.  A second caller plays the stream over SRT and reads the stamps; a
video frame counts as received when its last TS packet arrived (not when the next frame's
first packet tells the demuxer it ended).  Both SRT legs use latency ``--latency``: the
server's receive TSBPD is the server's, the player's TSBPD is the player's own buffer, so

* SRT->SRT server-added = end to end - the player's latency (target: latency + 20 ms), and,
  more directly, the time the frame's last datagram reached the player's socket - the stamp
  (the player's TSBPD is the player's own);
* SRT->RTMP: ``bench/loadclient.py`` (one RTMP player, ``mw_latency`` 0 unless
  ``--mw-latency``) in the same run; server-added = end to end (no player-side buffer).

    python bench/srt_latency.py [--latency 120] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
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
from srs_twisted.codec.mpegts import VIDEO_PID, TsMuxer  # noqa: E402
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


def zero_video_pes_length(ts: bytearray) -> None:
    """Write 0 as the length of every video PES, as FFmpeg and most encoders do: a receiver then
    knows a frame ended only when the next one starts."""
    for off in range(0, len(ts) - 187, 188):
        if ts[off + 1] & 0x40 and ((ts[off + 1] & 0x1F) << 8 | ts[off + 2]) == VIDEO_PID:
            start = off + (5 + ts[off + 4] if ts[off + 3] & 0x20 else 4)
            ts[start + 4:start + 6] = b"\x00\x00"


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
        self.arrivals: dict = {}  # data packet seq -> arrival (monotonic s), until delivered
        self.delivered_arrivals: list = []  # arrival of each payload the latest read() returned
        self._next = None
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
            if self.conn is not None and not data[0] & 0x80 and len(self.arrivals) < 100_000:
                self.arrivals.setdefault(int.from_bytes(data[:4], "big") & 0x7FFFFFFF, time.monotonic())
            self.caller.datagram_received(data, now_us())
        if self.conn is not None:
            out = [e.payload for e in self.conn.events() if isinstance(e, Delivered)]
            # which packets were delivered: from the old release point to the new, less those that
            # never came (given up); each payload's arrival time
            r = self.conn.receiver
            first = r.next if self._next is None else self._next
            span = (r.next - first) & 0x7FFFFFFF
            seqs = [q for q in ((first + i) & 0x7FFFFFFF for i in range(span)) if q in self.arrivals]
            self.delivered_arrivals = [self.arrivals.pop(q) for q in seqs] if len(seqs) == len(out) else []
            self._next = r.next
        self.flush()
        return out

    def tick(self) -> None:
        if self.conn is None:
            self.caller.tick(now_us())
        else:
            self.conn.tick(now_us())
        self.flush()


def run(srt: int, clip: str, latency: int, seconds: float, pes_length: bool = False) -> tuple:
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
    samples, at_socket = [], []
    video_done = video_arrival = 0.0
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
            if not pes_length:
                zero_video_pes_length(pending)
            for k in range(0, len(pending), 1316):  # the whole frame now (the last message shorter)
                pub.conn.send(bytes(pending[k:k + 1316]), now_us())
            del pending[:]
            i += 1
            if i == len(packets):
                i, loops = 0, loops + 1
        pub.flush()
        if player is None and time.monotonic() - start > 2:
            player = Endpoint(srt, "#!::r=live/lat,m=request", latency)
        socks = [pub.sock] + ([player.sock] if player else [])
        select.select(socks, [], [], 0.002)
        pub.read()
        pub.tick()
        if player is not None:
            player.tick()  # TSBPD releases due now, then what came
            payloads = player.read()
            arrived = time.monotonic()
            arrivals = player.delivered_arrivals
            for k, payload in enumerate(payloads):
                for off in range(0, len(payload) - 187, 188):
                    pkt = payload[off:off + 188]
                    for media in demux.feed(pkt):  # a frame ends when the next PES starts
                        if media.kind == VIDEO:
                            stamp = sei_stamp(media.payload)
                            if stamp is not None and arrived - start > 5:
                                samples.append((video_done - stamp) * 1000)
                                if video_arrival:
                                    at_socket.append((video_arrival - stamp) * 1000)
                    if ((pkt[1] & 0x1F) << 8 | pkt[2]) == VIDEO_PID:
                        video_done = arrived  # the latest video packet: the frame's end so far
                        video_arrival = arrivals[k] if arrivals else 0.0
    return samples, at_socket


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency", type=int, default=120, help="SRT latency of both legs, ms")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--mw-latency", type=int, default=0,
                    help="the RTMP players' merged-write latency, ms (the server's default is 350)")
    ap.add_argument("--pes-length", action="store_true",
                    help="write video PES lengths (default: 0, as FFmpeg's mpegts muxer and most encoders)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="srt-lat-")
    clip = os.path.join(tempfile.gettempdir(), "srt-latency-clip.flv")
    make_clip(clip)
    srt, rtmp = free_port(), free_port()
    conf = os.path.join(work, "srs.conf")
    with open(conf, "w") as f:
        f.write(f"listen 127.0.0.1:{rtmp};\nsrs_log_tank file;\nsrs_log_file {work}/srs.log;\n"
                f"srt_server {{ enabled on; listen 127.0.0.1:{srt}; recvlatency {args.latency}; "
                f"peerlatency {args.latency}; }}\nvhost __defaultVhost__ {{ srt {{ enabled on; }} "
                f"play {{ mw_latency {args.mw_latency}; }} }}\n")
    server = subprocess.Popen([sys.executable, "-m", "srs_twisted.cli", "-c", conf], cwd=work,
                              env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: os.path.exists(f"{work}/srs.log") and "SRT listen" in open(f"{work}/srs.log").read(), 60,
                   "the server")
        rtmp_player = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "bench", "loadclient.py"), f"rtmp://127.0.0.1:{rtmp}/live/lat", "-n", "1",
             "--samples", "1", "--ramp", "0", "--settle", "1", "--window", str(max(5.0, args.seconds - 8))],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        samples, at_socket = run(srt, clip, args.latency, args.seconds, args.pes_length)
        out = rtmp_player.communicate(timeout=60)[0]
        rtmp_samples = next(([x * 1000 for x in json.loads(line[7:])["latency"]] for line in out.splitlines() if line.startswith("RESULT ")),
                            [])
    finally:
        server.terminate()
        server.wait(10)
    if not samples:
        raise SystemExit("no stamped frame reached the player")
    samples.sort()
    p50, p95 = statistics.median(samples), samples[int(len(samples) * 0.95)]
    print(f"SRT->SRT   frames {len(samples)}  latency {args.latency} ms per leg  end-to-end p50 {p50:.1f} ms  "
          f"p95 {p95:.1f} ms  max {samples[-1]:.1f} ms  server-added (minus the player's latency) "
          f"p50 {p50 - args.latency:.1f} ms  p95 {p95 - args.latency:.1f} ms  (target {args.latency + 20} ms)")
    if at_socket:
        at_socket.sort()
        print(f"SRT->SRT   server-added, frame's last datagram at the player's socket - stamp: "
              f"p50 {statistics.median(at_socket):.1f} ms  p95 {at_socket[int(len(at_socket) * 0.95)]:.1f} ms")
    if rtmp_samples:
        rtmp_samples.sort()
        print(f"SRT->RTMP  frames {len(rtmp_samples)}  server-added p50 {statistics.median(rtmp_samples):.1f} ms  "
              f"p95 {rtmp_samples[int(len(rtmp_samples) * 0.95)]:.1f} ms")
    else:
        print("SRT->RTMP  no sample from bench/loadclient.py")


if __name__ == "__main__":
    main()
