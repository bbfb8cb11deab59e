#!/usr/bin/env python3
"""Fan-out with ``workers 1`` and ``workers 2`` in the same run (issue 14, section 4).

Reuses bench.py's cells (``run_cell``: a fresh server per cell, the stamping Python
publisher, loadclient.py's players, CPU of the whole process tree, supervisor and
workers included) for each protocol and player count, workers 1 and workers 2 cell
by cell, and reports per configuration: CPU-s per delivered Gbit, the highest N at
which every player got >= 99 % of the stream (no failure), and latency p50/p95.

    python bench/workers_fanout.py --ns 100,300,600,900 --protos rtmp,flv --window 10
    python bench/workers_fanout.py --ns 600,1000,1400 --protos rtmp --play "mw_latency 0;"

Results: bench/results/<stamp>-workers.jsonl and .md.  Bounded: every cell has
bench.py's deadline and every child is stopped at the end.  The machine may be shared:
the load average at each cell's start is in the table."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


class OursWorkers1(bench.Ours):
    name = "workers-1"
    global_conf = "workers 1;\n"


class OursWorkers2(bench.Ours):
    name = "workers-2"
    global_conf = "workers 2;\n"

    def wait(self) -> None:
        super().wait()
        # Both workers listen (SO_REUSEPORT) once the supervisor logged its start line.
        log = os.path.join(self.dir, "srs.log")
        end = time.monotonic() + 30
        while "srs-twisted started, 2 workers" not in bench.tail(log, 100000):
            if time.monotonic() > end or self.proc.poll() is not None:
                raise RuntimeError("workers did not start: " + bench.tail(log))
            time.sleep(0.05)


CONFIGS = (OursWorkers1, OursWorkers2)
bench.SERVERS.update({c.name: c for c in CONFIGS})


def highest_ok(cells: list[dict], name: str, proto: str, floor: float = 0.99):
    """The highest N whose every run gave every player >= ``floor`` of the stream."""
    ok = None
    for n in sorted({c["n"] for c in cells if c["server"] == name and c["proto"] == proto}):
        runs = [c for c in cells if c["server"] == name and c["proto"] == proto and c["n"] == n]
        if runs and all("error" not in c and not c["failed"] and (c["ratio_min"] or 0) >= floor for c in runs):
            ok = n
    return ok


def short(cells: list[dict], name: str, proto: str, floor: float = 0.99) -> list[int]:
    """The Ns where some player got less than ``floor`` (or a player failed)."""
    return sorted({c["n"] for c in cells if c["server"] == name and c["proto"] == proto
                   and ("error" in c or c["failed"] or (c["ratio_min"] or 0) < floor)})


def summary(cells: list[dict], protos: list[str]) -> str:
    lines = ["| proto | workers | highest N with every player >= 99 % | CPU-s/Gbit at that N | N below 99 % |",
             "|---|---:|---:|---:|---|"]
    for proto in protos:
        for cls in CONFIGS:
            n = highest_ok(cells, cls.name, proto)
            at = [c["cpu_s_per_gbit"] for c in cells if c["server"] == cls.name and c["proto"] == proto
                  and c["n"] == n and c.get("cpu_s_per_gbit") is not None]
            cost = f"{sum(at) / len(at):.3f}" if at else "–"
            lines.append(f"| {'RTMP' if proto == 'rtmp' else 'HTTP-FLV'} | {cls.global_conf.split()[1].rstrip(';')} "
                         f"| {n if n is not None else 'none'} | {cost} "
                         f"| {', '.join(map(str, short(cells, cls.name, proto))) or '–'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ns", default="100,300,600,900")
    ap.add_argument("--protos", default="rtmp,flv")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--warmup", type=float, default=2.5)
    ap.add_argument("--ramp-rate", type=float, default=200.0)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--read-interval", type=float, default=10.0,
                    help="ms between a player's reads (bench.py's option; 0 = on every readiness event)")
    ap.add_argument("--play", default="", help='the vhost\'s play block, e.g. "mw_latency 0;" (a flush per packet)')
    ap.add_argument("--out", default=None)
    opts = ap.parse_args()
    if opts.play:
        for cls in CONFIGS:
            cls.play_conf = f"    play {{ {opts.play} }}\n"
    opts.publisher = "python"
    opts.cell_timeout = 600
    protos = [p for p in opts.protos.split(",") if p]
    ns = [int(x) for x in opts.ns.split(",")]
    clip = bench.make_clip()
    os.makedirs(bench.RESULTS, exist_ok=True)
    base = opts.out or os.path.join(bench.RESULTS, time.strftime("%Y%m%d-%H%M%S") + "-workers")
    meta = {"machine": bench.machine(), "argv": sys.argv[1:], "play": opts.play, "read_interval_ms": opts.read_interval, "clip": os.path.basename(clip),
            "clip_bitrate_kbit": round(os.path.getsize(clip) * 8 / 20.0 / 1000)}
    print(json.dumps(meta), flush=True)
    cells = []
    with open(base + ".jsonl", "w") as out:
        out.write(json.dumps({"meta": meta}) + "\n")
        try:
            for rep in range(1, opts.repeat + 1):
                for proto in protos:
                    for n in ns:
                        for cls in CONFIGS:  # side by side, so both see the same machine load
                            c = bench.run_cell(cls, proto, n, opts, clip, rep)
                            cells.append(c)
                            out.write(json.dumps(c) + "\n")
                            out.flush()
                            print(bench.line_summary(c), flush=True)
        except KeyboardInterrupt:
            print("interrupted: stopping children", file=sys.stderr)
        finally:
            bench.stop_all()
    md = (f"Players read every {opts.read_interval:g} ms (--read-interval {opts.read_interval:g}; 0 = on every"
          " readiness event).\n\n" + bench.table(cells) + "\n" + summary(cells, protos))
    with open(base + ".md", "w") as f:
        f.write(md)
    print()
    print(md)
    print(f"results: {base}.jsonl {base}.md")


if __name__ == "__main__":
    main()
