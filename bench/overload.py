#!/usr/bin/env python3
"""Overload: players connected before it keep the stream (issue 16, section 3).

One server (our own, fresh per run), the stamping Python publisher, then two
load clients of bench/loadclient.py:

- group A (``--before``): the players already watching. They connect, settle
  and then measure over a long window;
- group B (``--after``): as soon as A's window opens, B's players connect over
  ``--ramp-after`` seconds, more than one process can carry.

The figure that matters is A's: bytes each A player got over its window over
what the publisher sent in it (as bench.py computes it), plus A's latency and
disconnections. For B: how many got the stream and how many were refused.
Run it with the circuit breaker on (SRS's defaults) and off, same counts, same
run:

    python bench/overload.py --before 3000 --after 4000 --window 60 --breaker on,off

Results: bench/results/<stamp>-overload.jsonl and .md. Bounded: each run has a
deadline, every child is stopped at the end. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


class OursBreaker(bench.Ours):
    name = "srs-twisted"
    breaker = "on"

    def start(self) -> None:
        self.global_conf = f"circuit_breaker {{ enabled {self.breaker}; }}\n"
        super().start()


class Client:
    """A loadclient.py process whose stdout lines land in a queue."""

    def __init__(self, work: str, tag: str, url: str, n: int, ramp: float, settle: float, window: float,
                 read_interval: float, samples: int, first_frame_timeout: float) -> None:
        cmd = [sys.executable, os.path.join(bench.BENCH, "loadclient.py"), url, "-n", str(n), "--ramp", str(ramp),
               "--settle", str(settle), "--window", str(window), "--samples", str(samples),
               "--read-interval", str(read_interval), "--first-frame-timeout", str(first_frame_timeout)]
        self.err = os.path.join(work, f"client-{tag}.err")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(self.err, "wb"), text=True,
                                     start_new_session=True)
        bench._CHILDREN.append(self.proc)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(x) for x in self.proc.stdout] and None, daemon=True).start()
        self.result = None
        self.window_start = None

    def pump(self, deadline: float, until: str) -> None:
        """Read lines until one starting with ``until`` (or the result)."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"load client timed out waiting for {until}")
            try:
                line = self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    raise RuntimeError(f"load client exited {self.proc.returncode}: {bench.tail(self.err)}")
                continue
            if line.startswith("WINDOW_START"):
                self.window_start = float(line.split()[1])
            if line.startswith("RESULT "):
                self.result = json.loads(line[7:])
            if line.startswith(until) or self.result is not None:
                return


def ratios(result: dict, ts, cum) -> list[float]:
    lat = result["latency"]
    fresh = bench.percentile(lat, 0.05) or 0.0
    out = []
    for (w0, w1), got, first in zip(result["window_recv_times"], result["window_bytes"], result["ttff"]):
        if first is None:
            continue
        want = bench.cum_at(ts, cum, w1 - fresh) - bench.cum_at(ts, cum, w0 - fresh)
        # a player whose bytes stopped early was cut: its share counts from the window's end
        if want > 0:
            full = bench.cum_at(ts, cum, result["window"][1] - fresh) - bench.cum_at(ts, cum, w0 - fresh)
            out.append(got / max(want, full))
    return out


def run(breaker: str, opts, clip: str) -> dict:
    work = tempfile.mkdtemp(prefix="bench-overload-")
    cls = type("OursBreaker_" + breaker, (OursBreaker,), {"breaker": breaker})
    srv = cls(work)
    pub = a = b = None
    cell = {"breaker": breaker, "before": opts.before, "after": opts.after, "proto": opts.proto,
            "load_start": os.getloadavg()[0]}
    try:
        srv.start()
        srv.wait()
        url = srv.url(opts.proto)
        pub_log = os.path.join(work, "pub.log")
        pub_out = os.path.join(work, "pub.out")
        pub = bench.spawn([sys.executable, os.path.join(bench.BENCH, "publisher.py"), clip, srv.url("rtmp"),
                           "--log", pub_log, "--duration", "900"], pub_out)
        end = time.monotonic() + 15
        while "PUBLISHING" not in bench.tail(pub_out):
            if pub.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"publisher did not start: {bench.tail(pub_out)}")
            time.sleep(0.05)
        time.sleep(opts.warmup)
        ramp_a = max(1.0, opts.before / opts.ramp_rate)
        a = Client(work, "a", url, opts.before, ramp_a, opts.settle, opts.window, opts.read_interval, 30, 20)
        deadline = time.monotonic() + ramp_a + 20 + opts.settle + opts.window + 60
        a.pump(deadline, "WINDOW_START")
        cpu0 = bench.cpu_seconds(bench.tree_pids(srv.proc.pid))
        t_b = time.monotonic()
        b_window = max(5.0, opts.window - opts.ramp_after - 25)
        b = Client(work, "b", url, opts.after, opts.ramp_after, 0, b_window, opts.read_interval, 30, 10)
        peak = [bench.rss_kb(bench.tree_pids(srv.proc.pid))]
        cpu_marks = []
        while a.result is None:
            try:
                a.pump(min(deadline, time.monotonic() + 1.0), "RESULT")
            except RuntimeError:
                if time.monotonic() >= deadline:
                    raise
            peak[0] = max(peak[0], bench.rss_kb(bench.tree_pids(srv.proc.pid)))
            cpu_marks.append((time.monotonic() - t_b, bench.cpu_seconds(bench.tree_pids(srv.proc.pid))))
        cpu1 = bench.cpu_seconds(bench.tree_pids(srv.proc.pid))
        b.pump(deadline + 60, "RESULT")
        ts, cum = bench.read_pub_log(pub_log)
        ra = ratios(a.result, ts, cum)
        rb = ratios(b.result, ts, cum)
        dur = a.result["window"][1] - a.result["window"][0]
        cpu = sum(cpu1) - sum(cpu0)
        lat = a.result["latency"]
        log = bench.tail(os.path.join(work, "srs.log"), 50_000_000)
        levels = [line.split("CircuitBreaker: ", 1)[1][:80] for line in log.splitlines() if "CircuitBreaker: " in line]
        # the busiest second of the window, from the 1 s samples
        busiest = max(((c1[0] + c1[1] - c0[0] - c0[1]) / (t1 - t0)
                       for (t0, c0), (t1, c1) in zip(cpu_marks, cpu_marks[1:]) if t1 > t0), default=None)
        cell.update(
            window_s=dur,
            cpu_util=cpu / dur,
            cpu_util_busiest_s=busiest,
            rss_peak_mb=peak[0] / 1024,
            a_players=len(ra),
            a_failed=a.result["failed"],
            a_disconnected_in_window=a.result["disconnected_in_window"],
            a_ratio_min=min(ra) if ra else None,
            a_ratio_p1=sorted(ra)[len(ra) // 100] if ra else None,
            a_ratio_median=statistics.median(ra) if ra else None,
            a_below_99=sum(1 for r in ra if r < 0.99),
            a_latency_ms_p50=(bench.percentile(lat, 0.5) or 0) * 1000 if lat else None,
            a_latency_ms_p95=(bench.percentile(lat, 0.95) or 0) * 1000 if lat else None,
            b_served=sum(1 for x in b.result["ttff"] if x is not None),
            b_refused_or_failed=b.result["no_first_frame"],
            b_ratio_median=statistics.median(rb) if rb else None,
            b_errors=b.result["errors"],
            breaker_levels=levels[:20],
            refused_in_log=log.count("refused: circuit breaker"),
            client_cpu_util=(a.result["client_cpu_window"]) / dur,
            load_end=os.getloadavg()[0],
        )
    except Exception as e:  # noqa: BLE001 - reported, the next run goes on
        cell["error"] = f"{type(e).__name__}: {e}"
        cell["server_log_tail"] = srv.log_tail()[-1500:]
    finally:
        for p in (b and b.proc, a and a.proc, pub):
            bench.stop(p)
        bench.stop(srv.proc)
        shutil.rmtree(work, ignore_errors=True)
    return cell


def table(cells: list[dict]) -> str:
    f = bench.fmt
    rows = ["| breaker | before + after | server CPU (window / busiest s) | peak RSS MB | A: bytes min / 1st pct / median "
            "| A: players < 99% | A: cut | A: latency p50 / p95 ms | B: served / refused | refusals logged | load avg |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        if "error" in c:
            rows.append(f"| {c['breaker']} | {c['before']} + {c['after']} | error: {c['error'][:60]} ||||||||")
            continue
        rows.append(
            f"| {c['breaker']} | {c['before']} + {c['after']} | {f(c['cpu_util'] * 100, '.0f')}% / "
            f"{f((c['cpu_util_busiest_s'] or 0) * 100, '.0f')}% | {f(c['rss_peak_mb'], '.0f')} | "
            f"{f(c['a_ratio_min'], '.3f')} / {f(c['a_ratio_p1'], '.3f')} / {f(c['a_ratio_median'], '.3f')} | "
            f"{c['a_below_99']} of {c['a_players']} | {c['a_failed']} | "
            f"{f(c['a_latency_ms_p50'], '.0f')} / {f(c['a_latency_ms_p95'], '.0f')} | "
            f"{c['b_served']} / {c['b_refused_or_failed']} | {c['refused_in_log']} | {c['load_start']:.2f}–{c['load_end']:.2f} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=int, default=3000, help="players connected before the overload (group A)")
    ap.add_argument("--after", type=int, default=4000, help="players that then try to join (group B)")
    ap.add_argument("--proto", default="rtmp", choices=("rtmp", "flv"))
    ap.add_argument("--window", type=float, default=60.0, help="group A's measurement window, seconds")
    ap.add_argument("--ramp-after", type=float, default=20.0, help="seconds over which group B connects")
    ap.add_argument("--ramp-rate", type=float, default=500.0, help="group A's players per second")
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--read-interval", type=float, default=10.0, help="ms between the players' reads")
    ap.add_argument("--breaker", default="on,off", help="runs, in order: on and/or off")
    ap.add_argument("--out", default=None)
    opts = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    out = opts.out or os.path.join(bench.BENCH, "results", time.strftime("%Y%m%d-%H%M%S") + "-overload")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    clip = bench.make_clip()
    cells = []
    with open(out + ".jsonl", "w") as f:
        f.write(json.dumps({"argv": sys.argv[1:], "machine": bench.machine()}) + "\n")
        for breaker in opts.breaker.split(","):
            c = run(breaker, opts, clip)
            cells.append(c)
            f.write(json.dumps(c) + "\n")
            f.flush()
            print(json.dumps({k: v for k, v in c.items() if k != "server_log_tail"}), flush=True)
            if "server_log_tail" in c:
                print(c["server_log_tail"], flush=True)
    md = table(cells)
    with open(out + ".md", "w") as f:
        f.write(f"`python bench/overload.py {' '.join(sys.argv[1:])}`\n\n{md}\n")
    print(md)


if __name__ == "__main__":
    main()
