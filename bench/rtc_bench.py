#!/usr/bin/env python3
"""WebRTC fan-out and latency benchmark (issue 10 section 4): one WHIP publisher, N WHEP players.

Per server and player count (a *cell*): a fresh server on loopback, the lean
WHIP publisher (``rtc_publish.py``: the 1.5 Mbit/s H.264 clip + 64 kbit/s
Opus-framed audio, stamped), 2.5 s for a GOP, then the lean WHEP load client
(``rtc_load.py``) with N players, which measures over its window:

- server CPU seconds (utime + stime of the server's process tree, /proc) per
  Gbit the players received (SRTP datagram bytes);
- packets each player got vs the server sent it (RTP sequence span, per
  track) and audio packets vs what the publisher sent (50 a second);
- peak RSS and (peak - RSS before the players) / N;
- latency p50/p95: publisher stamp -> kernel receive time at
  ``--latency-players`` players spread over the join order (same machine,
  same clock), audio and video;
- session setup time (POST -> SRTP keys) and failures.

Servers: ``srs-twisted`` (this checkout) and ``srs`` (SRS built from source,
``--srs-bin``; see docs/performance.md).  By default the whole run happens in
a private network namespace (``unshare -n``, only ``lo`` up): nothing leaves
the machine.  Results: ``--out`` .jsonl (every figure, per-player rows
included) and .md (the table), and the table on stdout.

    python bench/rtc_bench.py --ns 10,100,300                   # ours, 20 s windows
    python bench/rtc_bench.py --servers srs-twisted,srs --ns 10,100,300 --repeat 2
    python bench/rtc_bench.py --ns 300 --profile bench/results/rtc-300.txt   # py-spy raw stacks
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench import ROOT, RESULTS, add_netns_options, enter_netns, free_port, percentile, spawn, stop, tail  # noqa: E402

STREAM = "bench"
SRS_BIN = "/tmp/srs-build/trunk/objs/srs"


class Server:
    name = ""

    def __init__(self, work: str, args) -> None:
        self.dir = work
        self.args = args
        self.rtmp = free_port()
        self.api = free_port()
        self.udp = free_port()
        self.proc = None

    def whip(self) -> str:
        return f"http://127.0.0.1:{self.api}/rtc/v1/whip/?app=live&stream={STREAM}"

    def whep(self) -> str:
        return f"http://127.0.0.1:{self.api}/rtc/v1/whep/?app=live&stream={STREAM}"

    def wait(self, deadline: float = 20.0) -> None:
        import socket
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.api), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name}: nothing on the API port after {deadline}s")

    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self) -> str:
        return ""


class Ours(Server):
    name = "srs-twisted"

    def start(self) -> None:
        conf = os.path.join(self.dir, "srs.conf")
        with open(conf, "w") as f:
            f.write(
                f"listen 127.0.0.1:{self.rtmp};\nmax_connections 3000;\npid {self.dir}/srs.pid;\n"
                f"srs_log_tank file;\nsrs_log_file {self.dir}/srs.log;\n"
                f"http_api {{ enabled on; listen 127.0.0.1:{self.api}; }}\n"
                f"rtc_server {{ enabled on; listen 127.0.0.1:{self.udp}; candidate 127.0.0.1; }}\n"
                "vhost __defaultVhost__ { rtc { enabled on; } }\n"
            )
        root = self.root()
        env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = spawn([sys.executable, "-m", "srs_twisted.cli", "-c", conf],
                          os.path.join(self.dir, "console.log"), cwd=self.dir, env=env)

    def root(self) -> str:
        return ROOT

    def log_tail(self) -> str:
        return tail(os.path.join(self.dir, "srs.log")) + tail(os.path.join(self.dir, "console.log"))


class OursBefore(Ours):
    """Our server from another checkout (``--before PATH``, e.g. ``git archive COMMIT | tar -x -C PATH``)."""

    name = "srs-twisted@before"

    def root(self) -> str:
        if not self.args.before:
            raise RuntimeError("srs-twisted@before needs --before PATH")
        return self.args.before


class Srs(Server):
    """SRS built from source (not committed, not installed): its own binary and defaults, our ports."""

    name = "srs"

    def start(self) -> None:
        exe = self.args.srs_bin
        if not os.path.exists(exe):
            raise RuntimeError(f"no SRS binary at {exe} (see docs/performance.md for the build)")
        conf = os.path.join(self.dir, "srs.conf")
        with open(conf, "w") as f:
            f.write(
                f"listen {self.rtmp};\nmax_connections 3000;\ndaemon off;\npid {self.dir}/srs.pid;\n"
                f"srs_log_tank file;\nsrs_log_file {self.dir}/srs.log;\n"
                f"http_api {{ enabled on; listen {self.api}; }}\n"
                f"rtc_server {{ enabled on; listen {self.udp}; candidate 127.0.0.1; }}\n"
                "vhost __defaultVhost__ { rtc { enabled on; rtmp_to_rtc off; rtc_to_rtmp off; } }\n"
            )
        # SRS wants its objs/ layout next to the working directory (./objs/nginx/html...).
        self.proc = spawn([exe, "-c", conf], os.path.join(self.dir, "console.log"),
                          cwd=os.path.dirname(os.path.dirname(exe)))

    def log_tail(self) -> str:
        return tail(os.path.join(self.dir, "srs.log")) + tail(os.path.join(self.dir, "console.log"))


SERVERS = {c.name: c for c in (Ours, OursBefore, Srs)}


def wait_line(path: str, prefix: str, proc, deadline: float) -> str:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(prefix):
                        return line.strip()
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"no {prefix!r} from {path}:\n{tail(path)}")


def run_cell(cls, n: int, args, rep: int) -> dict:
    work = tempfile.mkdtemp(prefix=f"rtcbench-{cls.name}-")
    server = cls(work, args)
    pub = load = spy = None
    try:
        server.start()
        server.wait()
        budget = args.setup_timeout + n / args.rate + args.warmup + args.window + 30
        pub_log = os.path.join(work, "publisher.log")
        pub = spawn([sys.executable, os.path.join(HERE, "rtc_publish.py"), server.whip(), "--duration",
                     str(budget + 10)], pub_log)
        up = wait_line(pub_log, "UP", pub, 30)
        time.sleep(2.5)  # a GOP in the cache
        cmd = [sys.executable, os.path.join(HERE, "rtc_load.py"), server.whep(), "--players", str(n),
               "--rate", str(args.rate), "--latency-players", str(min(n, args.latency_players)),
               "--warmup", str(args.warmup), "--window", str(args.window), "--server-pid", str(server.pid()),
               "--setup-timeout", str(args.setup_timeout), "--srtp", args.srtp]
        load_log = os.path.join(work, "load.json")
        with open(load_log, "wb") as out:
            load = spawn(cmd, stdout=out, stderr=open(os.path.join(work, "load.err"), "wb"))
            if args.profile and issubclass(cls, Ours):
                # Start py-spy for the window: after the players' setup and warmup.
                time.sleep(n / args.rate + args.warmup + 2)
                spy = spawn([shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "-p", str(server.pid()), "-d", str(int(args.window)),
                             "-r", str(args.profile_rate), "-f", "raw", "-o", args.profile, "--nonblocking"],
                            os.path.join(work, "py-spy.log"))
            load.wait(budget)
        if spy is not None:
            spy.wait(60)
        with open(load_log) as f:
            text = f.read().strip()
        if not text:
            raise RuntimeError(f"load client gave nothing:\n{tail(os.path.join(work, 'load.err'))}")
        result = json.loads(text.splitlines()[-1])
        result.update(server=cls.name, n=n, rep=rep, publisher=up, work=work)
        return summarise(result)
    except Exception as e:  # noqa: BLE001 - one failed cell is reported, the run goes on
        return {"server": cls.name, "n": n, "rep": rep, "error": f"{e}\n{server.log_tail()[-1500:]}"}
    finally:
        for p in (spy, load, pub):
            stop(p)
        stop(server.proc)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def summarise(r: dict) -> dict:
    rows = r["per_player"]
    bits = sum(row[k]["bytes"] for row in rows for k in ("audio", "video") if k in row) * 8
    cpu = r["server_user"] + r["server_system"]
    ratios, audio_vs_pub, lost = [], [], 0
    r["srtp"] = r.get("srtp_profile")
    expected_audio = 50.0 * r["window"]
    for row in rows:
        worst = 1.0
        for k in ("audio", "video"):
            t = row.get(k)
            if not t or t["expected"] <= 0:
                worst = 0.0
                continue
            worst = min(worst, t["packets"] / t["expected"])
            lost += max(0, t["expected"] - t["packets"])
        ratios.append(worst)
        audio_vs_pub.append(row.get("audio", {}).get("packets", 0) / expected_audio)
    lat = r.pop("latency_ms")
    r.update(
        delivered_mbps=bits / r["window"] / 1e6,
        cpu_s_per_gbit=cpu / (bits / 1e9) if bits else None,
        cpu_pct=100 * cpu / r["window"],
        user_share=r["server_user"] / cpu if cpu else None,
        got_min=min(ratios) if ratios else None, got_median=statistics.median(ratios) if ratios else None,
        audio_vs_pub_min=min(audio_vs_pub) if audio_vs_pub else None,
        lost=lost,
        decrypted=sum(row["decrypted"] for row in rows),
        auth_failures=sum(row["auth_failures"] for row in rows),
        rss_per_player_kb=(r["rss_peak_kb"] - r["rss_before_kb"]) / r["players"] if r["players"] else None,
        lat_audio=[percentile(lat["audio"], 0.5), percentile(lat["audio"], 0.95), len(lat["audio"])],
        lat_video=[percentile(lat["video"], 0.5), percentile(lat["video"], 0.95), len(lat["video"])],
        client_pct=100 * r["client_cpu"] / r["window"],
        players_missing_a_track=sum(1 for row in rows if "audio" not in row or "video" not in row),
    )
    return r


def fmt(v, spec=".2f"):
    return "–" if v is None else format(v, spec)


HEADER = ("| server | N | CPU-s/Gbit | server CPU % of a core | user share | delivered Mbit/s | got/sent min / median "
          "| lost pkts | audio vs publisher min | peak RSS MB | RSS/player KB | latency audio p50 / p95 ms "
          "| latency video p50 / p95 ms | setup p50 / max ms | failed | client CPU % | load (1 min) |\n"
          "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---|---|---:|---:|---|")


def row(c: dict) -> str:
    if "error" in c:
        return f"| {c['server']} | {c['n']} | error: {c['error'].splitlines()[0][:120]} |" + " |" * 14
    la, lv = c["lat_audio"], c["lat_video"]
    name = c["server"] + (" (GCM)" if "GCM" in (c.get("srtp") or "") else "")
    return (f"| {name} | {c['n']} | {fmt(c['cpu_s_per_gbit'], '.3f')} | {c['cpu_pct']:.0f} | "
            f"{fmt(c['user_share'] and 100 * c['user_share'], '.0f')}% | {c['delivered_mbps']:.0f} | "
            f"{fmt(c['got_min'], '.4f')} / {fmt(c['got_median'], '.4f')} | {c['lost']} | "
            f"{fmt(c['audio_vs_pub_min'], '.3f')} | {c['rss_peak_kb'] / 1024:.0f} | {fmt(c['rss_per_player_kb'], '.1f')} | "
            f"{fmt(la[0], '.1f')} / {fmt(la[1], '.1f')} | {fmt(lv[0], '.1f')} / {fmt(lv[1], '.1f')} | "
            f"{fmt(c['setup_p50_ms'], '.0f')} / {fmt(c['setup_max_ms'], '.0f')} | {c['failed_count']} | "
            f"{c['client_pct']:.0f} | {c['load']:.2f}–{c['load_end']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--servers", default="srs-twisted")
    parser.add_argument("--ns", default="10,100,300")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--rate", type=float, default=50.0, help="players opened per second")
    parser.add_argument("--setup-timeout", type=float, default=60.0)
    parser.add_argument("--latency-players", type=int, default=10)
    parser.add_argument("--srs-bin", default=SRS_BIN)
    parser.add_argument("--before", help="a checkout of an older srs-twisted for the srs-twisted@before server")
    parser.add_argument("--srtp", choices=("any", "gcm", "cm"), default="any",
                        help="SRTP profiles the players offer: both (the server picks; default), GCM or AES-CM only")
    parser.add_argument("--profile", help="py-spy raw stacks of our server over the window (to this file)")
    parser.add_argument("--profile-rate", type=int, default=250)
    parser.add_argument("--out", help="results prefix (default bench/results/rtc-<stamp>)")
    parser.add_argument("--keep", action="store_true", help="keep each cell's work directory (logs)")
    add_netns_options(parser)
    args = parser.parse_args()
    enter_netns(args)

    out = args.out or os.path.join(RESULTS, time.strftime("rtc-%Y%m%d-%H%M%S"))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    cells = []
    print(HEADER, flush=True)
    for n in [int(x) for x in args.ns.split(",")]:
        for name in args.servers.split(","):
            for rep in range(args.repeat):
                c = run_cell(SERVERS[name], n, args, rep)
                cells.append(c)
                print(row(c), flush=True)
                with open(out + ".jsonl", "a") as f:
                    f.write(json.dumps(c) + "\n")
    with open(out + ".md", "w") as f:
        f.write(HEADER + "\n" + "\n".join(row(c) for c in cells) + "\n")
    print(f"results: {out}.jsonl, {out}.md")


if __name__ == "__main__":
    main()
