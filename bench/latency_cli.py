"""Glass-to-glass latency from the command line, for what a browser cannot play
(RTMP, SRT), with the same clock pattern as /players/latency.html.

A generator draws this machine's clock (milliseconds modulo 2^24) as a row of
black and white blocks into 640x360 grey frames, 30 a second in real time, and
pipes them to FFmpeg, which encodes them (x264, zerolatency, a key frame a
second) and publishes over RTMP or SRT.  A second FFmpeg plays the stream back
(RTMP, SRT, HTTP-FLV) as raw grey frames; each frame's blocks are read and
subtracted from the clock when the frame arrives.

    python bench/latency_cli.py --server 127.0.0.1 --rtmp 1935 --srt 10080 --http 8080 \\
        --seconds 20 rtmp srt flv

Each protocol name is ``<play>`` (published over RTMP, ``srt`` over SRT);
prints one line per protocol and a JSON object {protocol: {p50, p95, n}} (ms).
The server needs ``srt_server`` and the vhost's ``srt { enabled on; srt_to_rtmp on; }``
for ``srt``, and ``http_remux`` for ``flv`` (conf/latency.conf has all).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time

W, H, BAND, X0, BLOCK, BITS = 640, 360, 72, 9, 23, 24  # as latency.js
MOD = 1 << BITS
FPS = 30
MAX_LATENCY = 60000


def clock_ms() -> int:
    return int(time.time() * 1000)


def pattern_frame(t: int) -> bytes:
    """One grey frame with ``t`` (ms) in its top band: guards, 24 bits, parity."""
    value = t % MOD
    bits = [(value >> (BITS - 1 - i)) & 1 for i in range(BITS)]
    blocks = [1, 0] + bits + [sum(bits) % 2]
    row = bytearray([64]) * W
    for i, white in enumerate(blocks):
        start = X0 + i * BLOCK
        row[start:start + BLOCK] = bytes([255 if white else 0]) * BLOCK
    moving = bytearray([64]) * W
    x = (t // 4) % (W - 16)
    moving[x:x + 16] = b"\xff" * 16  # motion, so every frame differs
    return bytes(row) * BAND + bytes([64]) * (W * 150) + bytes(moving) * 80 + bytes([64]) * (W * (H - BAND - 230))


def read_pattern(frame: bytes) -> int | None:
    """The clock value in a grey frame, None when the pattern is not readable."""
    def lum(i: int) -> float:
        x = X0 + i * BLOCK + 7
        total = 0
        for y in range(16, 56, 4):
            total += sum(frame[y * W + x:y * W + x + 9])
        return total / (10 * 9)

    levels = [lum(i) for i in range(BITS + 3)]
    if levels[0] - levels[1] < 60:
        return None
    cut = (levels[0] + levels[1]) / 2
    bits = [1 if v > cut else 0 for v in levels[2:BITS + 2]]
    if sum(bits) % 2 != (1 if levels[BITS + 2] > cut else 0):
        return None
    value = 0
    for bit in bits:
        value = value * 2 + bit
    return value


def publisher(ffmpeg: str, url: str, fmt: str, stop: threading.Event) -> subprocess.Popen:
    """FFmpeg encoding the pattern frames this process writes in real time."""
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "gray",
           "-s", f"{W}x{H}", "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "ultrafast",
           "-tune", "zerolatency", "-g", str(FPS), "-pix_fmt", "yuv420p", "-b:v", "800k",
           *([] if fmt == "flv" else ["-muxdelay", "0", "-muxpreload", "0", "-flush_packets", "1"]), "-f", fmt, url]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def feed():
        start = time.monotonic()
        n = 0
        try:
            while not stop.is_set():
                proc.stdin.write(pattern_frame(clock_ms()))
                proc.stdin.flush()
                n += 1
                delay = start + n / FPS - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        except (BrokenPipeError, ValueError):
            pass

    threading.Thread(target=feed, daemon=True).start()
    return proc


def measure(ffmpeg: str, url: str, seconds: float, extra=()) -> list[int]:
    """Latencies (ms) of the frames FFmpeg plays from ``url`` for ``seconds``."""
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-fflags", "nobuffer", "-flags", "low_delay",
           *extra, "-i", url, "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{W}x{H}", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    size = W * H
    out: list[int] = []
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            frame = proc.stdout.read(size)
            if len(frame) < size:
                break
            value = read_pattern(frame)
            if value is not None:
                latency = (clock_ms() % MOD - value) % MOD
                if latency < MAX_LATENCY:
                    out.append(latency)
    finally:
        proc.kill()
        proc.wait()
    return out


def summary(values: list[int]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "n": 0}
    ordered = sorted(values)
    return {"p50": int(statistics.median(ordered)), "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
            "n": len(ordered)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("protocols", nargs="+", choices=("rtmp", "srt", "flv"))
    parser.add_argument("--server", default="127.0.0.1")
    parser.add_argument("--rtmp", type=int, default=1935)
    parser.add_argument("--srt", type=int, default=10080)
    parser.add_argument("--http", type=int, default=8080)
    parser.add_argument("--app", default="live")
    parser.add_argument("--srt-latency", type=int, default=0,
                        help="ms: FFmpeg's SRT latency on both ends (0: libsrt's default, 120)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of publishing before playing")
    parser.add_argument("--ffmpeg", default=shutil.which("ffmpeg") or "ffmpeg")
    args = parser.parse_args(argv)
    results = {}
    for protocol in args.protocols:
        stream = f"lat{protocol}"
        stop = threading.Event()
        if protocol == "srt":
            sid = f"#!::r={args.app}/{stream}"
            opts = f"&latency={args.srt_latency * 1000}" if args.srt_latency else ""  # FFmpeg takes microseconds
            pub = publisher(args.ffmpeg, f"srt://{args.server}:{args.srt}?streamid={sid},m=publish{opts}", "mpegts", stop)
            play = f"srt://{args.server}:{args.srt}?streamid={sid},m=request{opts}"
        else:
            pub = publisher(args.ffmpeg, f"rtmp://{args.server}:{args.rtmp}/{args.app}/{stream}", "flv", stop)
            play = (f"rtmp://{args.server}:{args.rtmp}/{args.app}/{stream}" if protocol == "rtmp"
                    else f"http://{args.server}:{args.http}/{args.app}/{stream}.flv")
        try:
            time.sleep(args.warmup)
            results[protocol] = summary(measure(args.ffmpeg, play, args.seconds))
        finally:
            stop.set()
            pub.kill()
            pub.wait()
        r = results[protocol]
        print(f"{protocol:5s} p50 {r['p50']} ms  p95 {r['p95']} ms  n={r['n']}", file=sys.stderr)
    print(json.dumps(results))
    return 0 if all(r["n"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
