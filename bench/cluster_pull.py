#!/usr/bin/env python3
"""The cost of one origin-cluster pull (issue 14, section 2), Redis directory.

A redis-server and two origins A and B (``cluster { origin_cluster on; redis
{...} }``) on loopback.  K streams are published to A (bench/publisher.py,
the bench's 20 s clip in a loop).  Phases, each a window of CPU time of both
origins (/proc/<pid>/stat):

- ``base``: publishers only;
- ``local``: one HTTP-FLV player per stream on A (the owner);
- ``remote``: one HTTP-FLV player per stream on B, so B looks each stream up in
  Redis and pulls it once from A over RTMP (A serves it as an RTMP player; B
  parses it and republishes it to its player).

Players are tests/workers/players.py processes (their CPU is not the servers').
Cost of one pull = (remote - local) / K CPU-seconds per second (both origins
summed), also per Gbit of pulled stream, as bench/workers_pull.py reports the
inter-worker pull.  Then the time to the first video frame of an HTTP-FLV
player: on A (local), and on B while no pull runs (a cold lookup + pull), each
``--ttff`` times.

    python bench/cluster_pull.py --streams 4 --window 15 --rounds 2 --ttff 5
    python bench/cluster_pull.py --workers 2 ...   # each origin a supervisor and 2 workers

With ``--workers 2`` a player may land on either worker of B and B's pull on either
worker of A (then A adds an inter-worker pull): the pull's cost and the time to the
first frame include those hops when they happen.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

PLAYERS = os.path.join(bench.ROOT, "tests", "workers", "players.py")


class Origin(bench.Ours):
    name = "origin"

    def __init__(self, workdir: str, redis_port: int, workers: int = 1) -> None:
        os.makedirs(workdir, exist_ok=True)
        super().__init__(workdir)
        self.global_conf = f"workers {workers};\n" if workers > 1 else ""
        self.play_conf = (f"    cluster {{ mode local; origin_cluster on; redis {{ enabled on; host 127.0.0.1; "
                          f"port {redis_port}; }} }}\n")


def cpu(pid: int) -> float:
    """CPU seconds of the origin's process tree (its supervisor and workers with ``--workers``)."""
    return sum(bench.cpu_seconds(bench.tree_pids(pid)))


def measure(origins: dict, window: float) -> dict:
    before = {k: cpu(o.proc.pid) for k, o in origins.items()}
    time.sleep(window)
    return {k: (cpu(o.proc.pid) - before[k]) / window for k, o in origins.items()}


def players(origin, stream: str, work: str, tag: str):
    status = os.path.join(work, f"{tag}-{stream}.json")
    return bench.spawn([sys.executable, PLAYERS, "--rtmp-port", str(origin.rtmp_port), "--http-port",
                        str(origin.http_port), "--stream", stream, "-n", "0", "-m", "1", "--seconds", "600",
                        "--status", status])


def first_video_frame(port: int, stream: str, timeout: float = 20.0) -> float:
    """Seconds from connect to the first video frame (not a sequence header)
    of an HTTP-FLV GET."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET /live/{stream}.flv HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        buf = buf.split(b"\r\n\r\n", 1)[1]
        pos = 13
        while True:
            while len(buf) < pos + 11:
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("closed")
                buf += chunk
            kind = buf[pos]
            size = struct.unpack(">I", b"\0" + buf[pos + 1:pos + 4])[0]
            while len(buf) < pos + 11 + size + 4:
                buf += s.recv(65536)
            body = buf[pos + 11:pos + 11 + size]
            if kind == 9 and len(body) > 1 and body[1] == 1:
                return time.monotonic() - start
            pos += 11 + size + 4
            if time.monotonic() - start > timeout:
                raise RuntimeError("no video frame")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--window", type=float, default=15.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ttff", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1, help="workers N on each origin (the chained directory)")
    opts = ap.parse_args()
    redis_server = shutil.which("redis-server")
    if not redis_server:
        raise SystemExit("redis-server is needed (apt-get install redis-server)")
    clip = bench.make_clip()
    bitrate = os.path.getsize(clip) * 8 / 20.0
    work = tempfile.mkdtemp(prefix="bench-cluster-pull-")
    redis_port = bench.free_port()
    redis = bench.spawn([redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no"], os.path.join(work, "redis.log"))
    bench.wait_port(redis_port, redis)
    origins = {k: Origin(os.path.join(work, k), redis_port, opts.workers) for k in ("A", "B")}
    results, ttff = [], {"local": [], "remote": []}
    try:
        for o in origins.values():
            o.start()
        for o in origins.values():
            o.wait()
        a, b = origins["A"], origins["B"]
        names = [f"pull{k}" for k in range(opts.streams)]
        for name in names:
            bench.spawn([sys.executable, os.path.join(bench.BENCH, "publisher.py"), clip,
                         f"rtmp://127.0.0.1:{a.rtmp_port}/live/{name}", "--duration", "900"])
        time.sleep(5)
        for rnd in range(1, opts.rounds + 1):
            row = {"round": rnd, "base": measure(origins, opts.window)}
            for phase, where in (("local", a), ("remote", b)):
                procs = [players(where, n, work, f"{phase}{rnd}") for n in names]
                time.sleep(3)
                row[phase] = measure(origins, opts.window)
                for p in procs:
                    bench.stop(p)
                time.sleep(5)  # B's pulls stop 3 s after their last player
            results.append(row)
            print(json.dumps(row), flush=True)
        for _ in range(opts.ttff):
            ttff["local"].append(first_video_frame(a.http_port, names[0]))
            ttff["remote"].append(first_video_frame(b.http_port, names[0]))
            time.sleep(5)  # B's pull stops: the next remote player is a cold start again
    finally:
        bench.stop_all()
    k = opts.streams
    total = {ph: [sum(r[ph].values()) for r in results] for ph in ("base", "local", "remote")}
    player = statistics.mean((lo - ba) / k for lo, ba in zip(total["local"], total["base"]))
    pull = statistics.mean((re_ - lo) / k for re_, lo in zip(total["remote"], total["local"]))
    out = {
        "streams": k, "workers": opts.workers, "window_s": opts.window, "rounds": opts.rounds, "stream_mbit": round(bitrate / 1e6, 3),
        "base_cpu": round(statistics.mean(total["base"]), 4),
        "player_cpu_per_s": round(player, 4), "pull_cpu_per_s": round(pull, 4),
        "player_cpu_s_per_gbit": round(player / (bitrate / 1e9), 2),
        "pull_cpu_s_per_gbit": round(pull / (bitrate / 1e9), 2),
        "pull_over_player": round(pull / player, 2) if player > 0 else None,
        "ttff_local_ms": [round(x * 1000) for x in ttff["local"]],
        "ttff_remote_ms": [round(x * 1000) for x in ttff["remote"]],
        "ttff_local_median_ms": round(statistics.median(ttff["local"]) * 1000) if ttff["local"] else None,
        "ttff_remote_median_ms": round(statistics.median(ttff["remote"]) * 1000) if ttff["remote"] else None,
        "pulls_connected_on_B": bench.tail(os.path.join(work, "B", "srs.log"), 10_000_000).count(
            "edge: connected to origin"),
        "load": round(os.getloadavg()[0], 2),
    }
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
