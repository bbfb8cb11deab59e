#!/usr/bin/env python3
"""The cost of one inter-worker pull (issue 14, section 4), with ``workers 2``.

K streams are published (bench/publisher.py, the 1.5 Mbit/s clip; each lands on
the worker the kernel picks).  Three phases, each a window of CPU time of both
workers (/proc/<pid>/stat):

- ``base``: publishers only;
- ``local``: one HTTP-FLV player per stream on the stream's owner worker;
- ``remote``: one HTTP-FLV player per stream on the *other* worker, so each stream
  is pulled once over loopback from its owner (the owner serves the pull as an
  RTMP player of its private port; the puller parses it and republishes it).

Players are tests/workers/players.py processes (their CPU is not the server's);
one is placed on a worker by connecting until the kernel's hash lands it there
(the workers' private APIs tell where).  Cost of one pull = (remote - local) / K
CPU-seconds per second, also given per Gbit of pulled stream.

    python bench/workers_pull.py --streams 8 --window 20 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from workers_fanout import OursWorkers2  # noqa: E402

PLAYERS = os.path.join(bench.ROOT, "tests", "workers", "players.py")


def privates(log_path: str) -> dict[int, dict]:
    out = {}
    text = bench.tail(log_path, 10_000_000)
    for m in re.finditer(r"\]\[(\d+)\]\[\w+\]\[w(\d)\] worker \d joined the supervisor, private rtmp=(\S+) api=(\S+)",
                         text):
        out[int(m.group(2))] = {"pid": int(m.group(1)), "rtmp": m.group(3), "api": m.group(4)}
    return out


def clients(api: str) -> list[dict]:
    with urllib.request.urlopen(f"http://{api}/api/v1/clients/?count=1000", timeout=10) as r:
        return json.loads(r.read())["clients"]


def cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / bench.CLK_TCK


def measure(workers: dict[int, dict], window: float) -> dict[int, float]:
    """CPU-seconds per second of each worker over ``window``."""
    before = {i: cpu(w["pid"]) for i, w in workers.items()}
    time.sleep(window)
    return {i: (cpu(w["pid"]) - before[i]) / window for i, w in workers.items()}


def place(srv, workers, stream: str, target: int, work: str, tries: int = 40):
    """A players.py HTTP-FLV player of ``stream`` held by worker ``target``."""
    for attempt in range(tries):
        known = {c["id"] for w in workers.values() for c in clients(w["api"])}
        status = os.path.join(work, f"{stream}-{attempt}.json")
        p = bench.spawn([sys.executable, PLAYERS, "--rtmp-port", str(srv.rtmp_port), "--http-port", str(srv.http_port),
                         "--stream", stream, "-n", "0", "-m", "1", "--seconds", "900", "--status", status])
        where = None
        end = time.monotonic() + 15
        while where is None and time.monotonic() < end:
            time.sleep(0.2)
            for i, w in workers.items():
                if any(c["id"] not in known and c["type"] == "flv-play" and c["name"] == stream
                       for c in clients(w["api"])):
                    where = i
        if where == target:
            return p
        bench.stop(p)
    raise RuntimeError(f"could not place a player of {stream} on worker {target}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--window", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=2)
    opts = ap.parse_args()
    clip = bench.make_clip()
    bitrate = os.path.getsize(clip) * 8 / 20.0
    work = tempfile.mkdtemp(prefix="bench-workers-pull-")
    srv = OursWorkers2(work)
    results = []
    try:
        srv.start()
        srv.wait()
        log = os.path.join(work, "srs.log")
        workers = privates(log)
        names = [f"pull{k}" for k in range(opts.streams)]
        for name in names:
            url = f"rtmp://127.0.0.1:{srv.rtmp_port}/live/{name}"
            bench.spawn([sys.executable, os.path.join(bench.BENCH, "publisher.py"), clip, url, "--duration", "900"])
        time.sleep(4)
        owners = {}
        for i, w in workers.items():
            for c in clients(w["api"]):
                if c["publish"]:
                    owners[c["name"]] = i
        missing = [n for n in names if n not in owners]
        if missing:
            raise RuntimeError(f"streams not published: {missing}")
        print(f"owners: {json.dumps(owners)}", flush=True)
        for rnd in range(1, opts.rounds + 1):
            row = {"round": rnd, "base": measure(workers, opts.window)}
            # Both orders, so a drift of the machine's load does not favour one phase.
            for phase in ("local", "remote") if rnd % 2 else ("remote", "local"):
                procs = [place(srv, workers, n, owners[n] if phase == "local" else 1 - owners[n], work) for n in names]
                time.sleep(2)
                row[phase] = measure(workers, opts.window)
                for p in procs:
                    bench.stop(p)
                time.sleep(5)  # the pulls stop 3 s after their last player
            results.append(row)
            print(json.dumps(row), flush=True)
    finally:
        bench.stop_all()
    k = opts.streams
    total = {ph: [sum(r[ph].values()) for r in results] for ph in ("base", "local", "remote")}
    players = [(lo - b) / k for lo, b in zip(total["local"], total["base"])]
    pulls = [(re_ - lo) / k for re_, lo in zip(total["remote"], total["local"])]
    ingest = [b / k for b in total["base"]]
    player, pull = statistics.mean(players), statistics.mean(pulls)
    out = {
        "streams": k, "window_s": opts.window, "rounds": opts.rounds, "stream_mbit": bitrate / 1e6,
        # CPU-s per second: one publisher's ingest, one player, one pull (each round, then the mean)
        "ingest_each": ingest, "player_each": players, "pull_each": pulls,
        "ingest_cpu_per_s": statistics.mean(ingest), "player_cpu_per_s": player, "pull_cpu_per_s": pull,
        "player_cpu_s_per_gbit": player / (bitrate / 1e9), "pull_cpu_s_per_gbit": pull / (bitrate / 1e9),
        "pull_over_player": pull / player if player > 0 else None,
        "load": os.getloadavg()[0],
    }
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
