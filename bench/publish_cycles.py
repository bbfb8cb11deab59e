#!/usr/bin/env python3
"""Publish/unpublish cycles on every ingest other than RTMP (issue 17, section 2).

RTMP has its own (tests/integration/test_rtmp_robustness.py PublishCycleTests).  Here, for
each protocol, a fresh server in a private network namespace (loopback only) takes
``--cycles`` publishes (default 10,000), each a short burst of real media and then an end,
from ``--lanes`` concurrent publishers (each lane cycles on its own stream):

- ``srt``: a caller made of the server's own sans-I/O pieces (``SrtCaller``) publishes
  MPEG-TS (``m=publish``); 7 of 8 cycles end with a SHUTDOWN, 1 of 8 just stop sending (the
  server's ``peer_idle_timeout`` ends them) on a stream of their own;
- ``whip``: bench/rtc_lean.py's ``LeanPeer`` (ICE, DTLS, SRTP) sends an IDR frame; 7 of 8
  end with the WHIP DELETE, 1 of 8 just go silent (the server's consent timeout ends them);
- ``flv``: an HTTP POST of an FLV body to the ``flv`` stream caster; 7 of 8 complete, 1 of 8
  reset the connection half way;
- ``udp``: MPEG-TS datagrams to an ``mpegts_over_udp`` caster (one caster per lane: the
  caster has one stream); the publish ends after the vhost's ``publish.normal_timeout``
  (set to 300 ms here) of silence, so a cycle lasts about a second;
- ``gb``: a GB28181 camera (tests/integration/gb_device.py: SIP over TCP, PS over RTP over
  TCP) registers, is invited, sends media for a moment and unregisters.

Bounded: ``--seconds`` per protocol (default 600); a protocol that does not finish its cycles
in time reports how many it did.  RSS and file descriptors of the server are taken after the
warm-up (the first 5 %, at most 500 cycles) and at the end, each once the server has no
publisher or client left and ``--settle`` seconds more (past its 30 s heap trim); the log is searched for tracebacks and unexpected errors.

    python bench/publish_cycles.py --protocols srt,whip,flv,udp,gb --cycles 10000
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]  # HERE first: bench.py, not the bench/ directory

from tests.integration import harness as h  # noqa: E402
from tests.integration import netns  # noqa: E402

ABRUPT_EVERY = 8
LANES = {"srt": 4, "whip": 4, "flv": 4, "udp": 40, "gb": 16}  # udp: a cycle lasts ~1.6 s, gb ~0.5 s


def small_clip(fmt: str) -> str:
    """2 s of 160x120 H.264 (1 s GOPs, no B-frames) + AAC, as FLV or MPEG-TS; cached per run."""
    path = os.path.join(h.tempfile.gettempdir(), f"srs-cycles-clip.{fmt}")
    if not os.path.exists(path):
        subprocess.run([h.ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25",
                        "-f", "lavfi", "-i", "sine=frequency=440", "-t", "2", "-c:v", "libx264", "-preset",
                        "ultrafast", "-g", "25", "-bf", "0", "-b:v", "100k", "-c:a", "aac", "-b:a", "32k",
                        "-f", "flv" if fmt == "flv" else "mpegts", path + ".tmp"], check=True, timeout=300)
        os.rename(path + ".tmp", path)
    return path


def first_second_ts() -> bytes:
    """The clip's MPEG-TS up to its second keyframe's time (about 1 s): PAT, PMT, IDR, frames."""
    data = open(small_clip("ts"), "rb").read()
    return data[:len(data) // 2 // 188 * 188]


class Lanes:
    """``lanes`` threads share the cycle numbers 0..cycles-1 until the deadline."""

    def __init__(self, cycles: int, lanes: int) -> None:
        self.cycles, self.lanes = cycles, lanes
        self.next = 0
        self.done = 0
        self.failed = 0
        self.errors: dict = {}
        self.lock = threading.Lock()

    def run(self, cycle, upto: int, deadline: float) -> None:
        def lane(n: int) -> None:
            while time.monotonic() < deadline:
                with self.lock:
                    if self.next >= upto:
                        return
                    i = self.next
                    self.next += 1
                try:
                    cycle(n, i)
                    ok = True
                except Exception as e:  # noqa: BLE001 - counted and shown, the run goes on
                    ok = False
                    key = f"{type(e).__name__}: {e}"[:120]
                with self.lock:
                    if ok:
                        self.done += 1
                    else:
                        self.failed += 1
                        self.errors[key] = self.errors.get(key, 0) + 1

        threads = [threading.Thread(target=lane, args=(n,), daemon=True) for n in range(self.lanes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(1.0, deadline - time.monotonic() + 60))


# --- one cycle per protocol -----------------------------------------------------------------

def srt_cycle(port: int, ts: bytes):
    from srs_twisted.srt.handshake import SrtCaller

    payloads = [ts[i:i + 1316] for i in range(0, len(ts), 1316)]

    def now_us() -> int:
        return int(time.monotonic() * 1_000_000)

    def cycle(lane: int, i: int) -> None:
        abrupt = i % ABRUPT_EVERY == ABRUPT_EVERY - 1
        stream = f"abrupt{i}" if abrupt else f"cycle{lane}"
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            addr = ("127.0.0.1", port)
            caller = SrtCaller(f"#!::r=live/{stream},m=publish", latency_ms=20, peer_latency_ms=20)
            caller.start(now_us())
            end = time.monotonic() + 5
            while caller.connection is None:
                for d in caller.datagrams_to_send():
                    sock.sendto(d, addr)
                if caller.error or time.monotonic() > end:
                    raise RuntimeError(f"SRT handshake: {caller.error or 'timeout'}")
                select.select([sock], [], [], 0.05)
                while True:
                    try:
                        caller.datagram_received(sock.recv(2048), now_us())
                    except BlockingIOError:
                        break
                caller.tick(now_us())
            conn = caller.connection
            for p in payloads:
                conn.send(p, now_us())
            for d in conn.datagrams_to_send():
                sock.sendto(d, addr)
            time.sleep(0.05)  # past the 20 ms latency: the server delivers before the end
            if not abrupt:
                conn.close("done", now_us())
                for d in conn.datagrams_to_send():
                    sock.sendto(d, addr)
        finally:
            sock.close()

    return cycle


def whip_cycle(api: int, clip: str):
    import rtc_lean
    from rtc_publish import video_frames

    from srs_twisted.codec import avc

    payloader, frames = video_frames(clip)
    nals = next(n for _, n in frames if n != "config")  # the first frame: the IDR
    units = [bytes(n) for n in avc.split_nalus(nals, payloader.nal_length_size)]
    contexts = {}

    def cycle(lane: int, i: int) -> None:
        abrupt = i % ABRUPT_EVERY == ABRUPT_EVERY - 1
        stream = f"abrupt{i}" if abrupt else f"cycle{lane}"
        ctx = contexts.get(lane) or contexts.setdefault(lane, rtc_lean.make_context())
        vssrc, assrc = 0x1000 + i * 2 + 1, 0x1000 + i * 2
        peer = rtc_lean.LeanPeer(ctx, publish=True, twcc=False, ssrcs=(assrc, vssrc))
        try:
            if not peer.signal(f"http://127.0.0.1:{api}/rtc/v1/whip/?app=live&stream={stream}"):
                raise RuntimeError(peer.error)
            end = time.monotonic() + 10
            while peer.state not in ("up", "failed"):
                if time.monotonic() > end:
                    raise RuntimeError(f"WHIP: not up in 10 s ({peer.state})")
                peer.tick(time.monotonic())
                if select.select([peer.sock], [], [], 0.02)[0]:
                    while True:
                        try:
                            data = peer.sock.recv(2048)
                        except BlockingIOError:
                            break
                        if data and not 128 <= data[0] <= 191:
                            peer.on_control(data, time.monotonic())
            if peer.state == "failed":
                raise RuntimeError(peer.error)
            payloads = payloader.payloads(units)
            for n, payload in enumerate(payloads):
                marker = 0x80 if n == len(payloads) - 1 else 0
                header = struct.pack("!BBHII", 0x80, marker | rtc_lean.H264_PT, n, 0, vssrc)
                peer.send(peer.srtp.protect_rtp(header + payload))
            header = struct.pack("!BBHII", 0x80, rtc_lean.OPUS_PT, 0, 0, assrc)
            peer.send(peer.srtp.protect_rtp(header + bytes([0xFC]) + bytes(80)))
            if not abrupt:
                rtc_lean.delete(peer.location)
        finally:
            peer.close()

    return cycle


def flv_cycle(port: int, body: bytes):
    def cycle(lane: int, i: int) -> None:
        abrupt = i % ABRUPT_EVERY == ABRUPT_EVERY - 1
        stream = f"abrupt{i}" if abrupt else f"cycle{lane}"
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            s.sendall(f"POST /live/{stream}.flv HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n".encode())
            if abrupt:
                s.sendall(body[:len(body) // 2])
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            s.sendall(body)
            reply = s.recv(4096)
            if not reply.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"FLV POST: {reply[:60]!r}")
        finally:
            s.close()

    return cycle


def udp_cycle(ports: list, ts: bytes):
    datagrams = [ts[i:i + 1316] for i in range(0, len(ts), 1316)]

    def cycle(lane: int, i: int) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for d in datagrams:
                s.sendto(d, ("127.0.0.1", ports[lane]))
                time.sleep(0.001)
        finally:
            s.close()
        time.sleep(1.5)  # the caster ends the publish after 300 ms of silence (checked each second)

    return cycle


def gb_cycle(sip_port: int, ps: str):
    from tests.integration.gb_device import Camera

    def cycle(lane: int, i: int) -> None:
        cam = Camera(sip_port, sip="tcp", device_id=f"340200000013200{lane:05d}", ps=ps, loop=False)
        try:
            cam.register()
            end = time.monotonic() + 10
            while not cam.acks:
                if time.monotonic() > end:
                    raise RuntimeError("GB: no ACK to the camera's 200 OK in 10 s")
                time.sleep(0.02)
            time.sleep(0.3)  # some media
            cam.unregister()
        finally:
            cam.close()

    return cycle


# --- the server and the run ------------------------------------------------------------------

def config(proto: str, ports: dict) -> str:
    conf = [f"max_connections 3000;", f"http_api {{ enabled on; listen 127.0.0.1:{ports['api']}; }}"]
    vhost = "publish { normal_timeout 300; }" if proto == "udp" else ""
    if proto == "srt":
        conf.append(f"srt_server {{ enabled on; listen {ports['srt']}; latency 20; recvlatency 20; "
                    f"peer_idle_timeout 3000; }}")
        vhost = "srt { enabled on; srt_to_rtmp on; }"
    elif proto == "whip":
        conf.append(f"rtc_server {{ enabled on; listen {ports['rtc']}; candidate 127.0.0.1; }}")
        vhost = "rtc { enabled on; rtc_to_rtmp on; }"
    elif proto == "flv":
        conf.append(f"stream_caster {{ enabled on; caster flv; output rtmp://127.0.0.1/[app]/[stream]; "
                    f"listen {ports['flv']}; }}")
    elif proto == "udp":
        for n, port in enumerate(ports["udp"]):
            conf.append(f"stream_caster {{ enabled on; caster mpegts_over_udp; "
                        f"output rtmp://127.0.0.1/live/cycle{n}; listen {port}; }}")
    elif proto == "gb":
        conf.append(f"stream_caster {{ enabled on; caster gb28181; output rtmp://127.0.0.1/live/[stream]; "
                    f"listen {ports['gb_media']}; sip {{ enabled on; listen {ports['sip']}; "
                    f"candidate 127.0.0.1; timeout 60; reinvite 5; }} }}")
    conf.append(f"vhost __defaultVhost__ {{ {vhost} }}")
    return "\n".join(conf)


def api(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}", timeout=10) as r:
        return json.loads(r.read())


def publishers(port: int) -> int:
    """Streams with an active publisher plus clients still connected (an abrupt publisher
    lasts until the server's timeout)."""
    streams = api(port, "streams/?count=10000").get("streams", [])
    return (sum(1 for s in streams if s.get("publish", {}).get("active"))
            + len(api(port, "clients/?count=10000").get("clients", [])))


def figures(server, port: int, settle: float) -> dict:
    end = time.monotonic() + 90
    left = -1
    while time.monotonic() < end:
        left = publishers(port)
        if left == 0:
            break
        time.sleep(0.5)
    time.sleep(1.0)
    at_once = server.rss_kb()
    time.sleep(settle)  # past the server's heap trim (every 30 s, srs_twisted/memtrim.py)
    return {"rss_kb": server.rss_kb(), "rss_kb_at_once": at_once, "fds": len(os.listdir(f"/proc/{server.proc.pid}/fd")),
            "publishers_left": left, "load": round(os.getloadavg()[0], 1)}


def run(proto: str, args) -> dict:
    n_lanes = args.lanes or LANES[proto]
    ports = {k: h.free_port() for k in ("api", "srt", "rtc", "flv", "sip", "gb_media")}
    ports["udp"] = [h.free_port() for _ in range(n_lanes)]
    server = h.Server(config(proto, ports))
    try:
        if proto == "srt":
            cycle = srt_cycle(ports["srt"], first_second_ts())
        elif proto == "whip":
            cycle = whip_cycle(ports["api"], small_clip("flv"))
        elif proto == "flv":
            data = open(small_clip("flv"), "rb").read()
            cycle = flv_cycle(ports["flv"], data[:len(data) // 2])
        elif proto == "udp":
            cycle = udp_cycle(ports["udp"], first_second_ts())
        else:
            from tests.integration.gb_device import ps_file
            server.wait_log(r"GB28181 media listen")
            cycle = gb_cycle(ports["sip"], ps_file(seconds=2))
        lanes = Lanes(args.cycles, n_lanes)
        t0 = time.monotonic()
        deadline = t0 + args.seconds
        warmup = min(500, max(args.cycles // 20, 1))
        lanes.run(cycle, warmup, deadline)
        warm = figures(server, ports["api"], args.settle)
        t1 = time.monotonic()
        lanes.run(cycle, args.cycles, deadline)
        t2 = time.monotonic()
        end = figures(server, ports["api"], args.settle)
        log, console = server.log(), server.console()
        if args.keep_logs:
            with open(os.path.join(args.keep_logs, f"cycles-{proto}.log"), "w") as f:
                f.write(log + console)
        return {
            "protocol": proto, "cycles_asked": args.cycles, "cycles_done": lanes.done, "failed": lanes.failed,
            "errors": lanes.errors, "lanes": n_lanes, "seconds": round(t2 - t0, 1),
            "rate_per_s": round((lanes.done + lanes.failed - warmup) / max(t2 - t1, 0.001), 1),
            "warm": warm, "end": end, "rss_growth_kb": end["rss_kb"] - warm["rss_kb"],
            "fds_growth": end["fds"] - warm["fds"],
            "tracebacks": log.count("Traceback") + console.count("Traceback"),
            "unexpected": log.count(h.UNEXPECTED_MARKER), "errors_logged": log.count("][Error]["),
        }
    finally:
        server.stop(check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--protocols", default="srt,whip,flv,udp,gb")
    ap.add_argument("--cycles", type=int, default=10_000)
    ap.add_argument("--lanes", type=int, default=0,
                    help="concurrent publishers (udp: one caster each); default: %s" % LANES)
    ap.add_argument("--seconds", type=float, default=600.0, help="per protocol, at most 3600")
    ap.add_argument("--settle", type=float, default=32.0,
                    help="seconds between the last publisher's end and the figures (the server trims its heap every 30 s)")
    ap.add_argument("--keep-logs", metavar="DIR", help="write each server's log to DIR/cycles-PROTO.log")
    args = ap.parse_args()
    args.seconds = min(args.seconds, 3600.0)
    netns.enter()
    for proto in args.protocols.split(","):
        result = run(proto, args)
        print("RESULT " + json.dumps(result), flush=True)
        print(f"{proto}: {result['cycles_done']}/{args.cycles} cycles ({result['failed']} failed) in "
              f"{result['seconds']} s; RSS warm {result['warm']['rss_kb']} kB -> end {result['end']['rss_kb']} kB "
              f"({result['rss_growth_kb']:+d} kB); fds {result['warm']['fds']} -> {result['end']['fds']}; "
              f"tracebacks {result['tracebacks']}, unexpected {result['unexpected']}; load {result['end']['load']}",
              flush=True)


if __name__ == "__main__":
    main()
