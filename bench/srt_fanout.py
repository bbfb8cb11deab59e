#!/usr/bin/env python3
"""SRT fan-out cost: one SRT publish, N SRT players, beside the same N players over RTMP.

Starts the server (this checkout) on loopback with ``srt_server`` on, publishes a generated
H.264+AAC clip of about ``--mbps`` Mbit/s with FFmpeg (libsrt) as MPEG-TS over SRT, then:

1. ``srt``: N SRT players (``--client lean``, the default: ``bench/srtload.py``, all N in one
   thread, it ACKs and NAKs and counts losses; ``--client slt``: N ``srt-live-transmit``
   processes writing to /dev/null, 4 threads each); over a ``--window``
   second window, the server's CPU seconds (utime+stime from /proc), the bytes it sent to
   the SRT players (``/api/v1/clients``), CPU seconds per delivered Gbit, its RSS; when the
   players end, their connections' counters from the server's log (packets sent, NAKs
   received, retransmitted, given up: ``loss recovered`` means every NAKed packet was
   sent again and none was given up), and the publisher's (lost, recovered, dropped);
2. ``rtmp``: the same with N RTMP players of ``bench/loadclient.py`` on the same stream.

Numbers from a busy shared machine are indicative only; run it twice.

    python bench/srt_fanout.py [--players 50] [--mbps 10] [--window 20] [--server-nice -10]

On a machine shared with other work, ``--server-nice`` (negative: root) lets the server keep
up: SRT is real time, a server starved of CPU loses datagrams and gives packets up where an
RTMP server would only fall behind.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ffmpeg() -> str:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        return shutil.which("ffmpeg") or "ffmpeg"


def make_clip(path: str, mbps: float, seconds: int = 20) -> None:
    if os.path.exists(path):
        return
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-preset",
                    "ultrafast", "-g", "60", "-bf", "0", "-b:v", f"{mbps}M", "-maxrate", f"{mbps}M", "-bufsize",
                    f"{mbps}M", "-x264-params", "nal-hrd=cbr", "-c:a", "aac", "-b:a", "128k", "-f", "mpegts", path],
                   check=True, timeout=900)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def sent_bytes(api: int, kind: str) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{api}/api/v1/clients/?count=10000", timeout=30) as r:
        clients = json.loads(r.read())["clients"]
    return sum(c.get("send_bytes", 0) for c in clients if c["type"] == kind)


def wait_until(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = predicate()
        if got:
            return got
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def closed_counters(log: str, kind: str) -> dict:
    """Sums of the counters the server logs when each ``kind`` connection ends."""
    keys = ("sent_packets", "naks_received", "retransmitted", "send_dropped", "recv_packets", "lost", "recovered",
            "dropped")
    total = dict.fromkeys(keys, 0)
    total["connections"] = 0
    with open(log) as f:
        for line in f:
            if "SRT client closed" in line and f"type={kind} " in line:
                total["connections"] += 1
                fields = dict(w.split("=", 1) for w in line.rsplit(";", 1)[1].split() if "=" in w)
                for k in keys:
                    total[k] += int(float(fields.get(k, 0)))
    return total


def measure(pid: int, api: int, kind: str, window: float) -> dict:
    cpu0, bytes0, t0 = cpu_seconds(pid), sent_bytes(api, kind), time.monotonic()
    time.sleep(window)
    cpu1, bytes1, t1 = cpu_seconds(pid), sent_bytes(api, kind), time.monotonic()
    gbit = (bytes1 - bytes0) * 8 / 1e9
    return {"players": kind, "window_s": round(t1 - t0, 1), "cpu_s": round(cpu1 - cpu0, 2),
            "cpu_pct": round(100 * (cpu1 - cpu0) / (t1 - t0), 1), "delivered_mbps": round(gbit * 1000 / (t1 - t0), 1),
            "cpu_s_per_gbit": round((cpu1 - cpu0) / gbit, 2) if gbit else None, "rss_mb": rss_kb(pid) // 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--players", type=int, default=50)
    ap.add_argument("--mbps", type=float, default=10.0)
    ap.add_argument("--window", type=float, default=20.0)
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--client", choices=("lean", "slt"), default="lean",
                    help="lean: bench/srtload.py (one process); slt: one srt-live-transmit per player")
    ap.add_argument("--drop", type=float, default=0.0, help="lean players discard this share of data datagrams")
    ap.add_argument("--server-nice", type=int, default=0, help="the server's nice value (negative needs root)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="srt-bench-")
    clip = os.path.join(tempfile.gettempdir(), f"srt-bench-{args.mbps:g}M.ts")
    make_clip(clip, args.mbps)
    rtmp, api, srt = free_port(), free_port(), free_port()
    conf = os.path.join(work, "srs.conf")
    with open(conf, "w") as f:
        f.write(f"listen 127.0.0.1:{rtmp};\nmax_connections 2000;\nsrs_log_tank file;\nsrs_log_file {work}/srs.log;\n"
                f"http_api {{ enabled on; listen 127.0.0.1:{api}; }}\n"
                f"srt_server {{ enabled on; listen 127.0.0.1:{srt}; }}\n"
                "vhost __defaultVhost__ { srt { enabled on; } }\n")
    env = dict(os.environ, PYTHONPATH=ROOT)
    procs = []
    server = subprocess.Popen([sys.executable, "-m", "srs_twisted.cli", "-c", conf], cwd=work, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(server)
    if args.server_nice:
        os.setpriority(os.PRIO_PROCESS, server.pid, args.server_nice)
    results = []
    try:
        wait_until(lambda: os.path.exists(f"{work}/srs.log") and "SRT listen" in open(f"{work}/srs.log").read(), 60,
                   "the server")
        pub_url = f"srt://127.0.0.1:{srt}?streamid=#!::r=live/bench,m=publish"
        procs.append(subprocess.Popen([ffmpeg(), "-v", "error", "-re", "-stream_loop", "-1", "-i", clip, "-c", "copy",
                                       "-f", "mpegts", pub_url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_until(lambda: "SRT publish __defaultVhost__/live/bench" in open(f"{work}/srs.log").read(), 60,
                   "the publisher")
        play_url = f"srt://127.0.0.1:{srt}?streamid=#!::r=live/bench,m=request"
        if args.client == "slt":
            players = [subprocess.Popen(["srt-live-transmit", "-q", play_url, "file://con"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                       for _ in range(args.players)]
        else:
            players = [subprocess.Popen(
                [sys.executable, os.path.join(ROOT, "bench", "srtload.py"), f"127.0.0.1:{srt}",
                 "#!::r=live/bench,m=request", "-n", str(args.players), "--seconds",
                 str(args.window + 2 * args.settle), "--drop", str(args.drop)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)]
        procs += players
        time.sleep(args.settle)
        results.append(measure(server.pid, api, "srt-play", args.window))
        results[-1]["client"] = args.client
        if args.client == "slt":
            for p in players:
                p.terminate()
        else:
            out = players[0].communicate(timeout=120)[0]
            lean = next((json.loads(line[7:]) for line in out.splitlines() if line.startswith("RESULT ")), {})
            results[-1]["players_saw"] = {k: lean.get(k) for k in ("connected", "mbps", "dropped_here", "lost",
                                                                   "recovered", "unrecovered")}
        for p in players:
            p.wait(30)
        log = f"{work}/srs.log"
        wait_until(lambda: closed_counters(log, "srt-play")["connections"] >= args.players, 60, "the players' ends")
        play = closed_counters(log, "srt-play")
        results[-1]["srt_players"] = {k: play[k] for k in ("connections", "sent_packets", "naks_received",
                                                           "retransmitted", "send_dropped")}
        saw = results[-1].get("players_saw")
        # lean players count what they gave up; libsrt players do not say: nothing given up by the server
        results[-1]["loss_recovered"] = (saw["unrecovered"] == 0) if saw else play["send_dropped"] == 0
        time.sleep(args.settle)
        load = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "loadclient.py"),
                                 f"rtmp://127.0.0.1:{rtmp}/live/bench", "-n", str(args.players), "--window",
                                 str(args.window + 2 * args.settle), "--settle", "1", "--samples", "0"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(load)
        time.sleep(args.settle)
        results.append(measure(server.pid, api, "rtmp-play", args.window))
        procs[1].terminate()  # the publisher: its counters
        wait_until(lambda: closed_counters(log, "srt-publish")["connections"], 60, "the publisher's end")
        pub = closed_counters(log, "srt-publish")
        results.append({"publisher": {k: pub[k] for k in ("recv_packets", "lost", "recovered", "dropped")}})
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    for r in results:
        print(json.dumps({"mbps": args.mbps, "n": args.players, **r}))
    shutil.rmtree(work, True)


if __name__ == "__main__":
    main()
