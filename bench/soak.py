#!/usr/bin/env python3
"""A bounded cross-protocol soak of the real server (issue 17, section 2).

Runs inside a private network namespace (loopback only) for ``--minutes`` (at most 60):

- stable publishers that stay for the whole run: RTMP (FFmpeg), SRT (FFmpeg, mpegts) and
  WHIP (bench/rtc_publish.py, the lean client);
- stable players of them: RTMP and HTTP-FLV (bench/loadclient.py, one process each), SRT
  (srt-live-transmit to a counting pipe) and WHEP (bench/rtc_load.py), plus HLS pollers;
- churn: every few seconds a publisher on RTMP, SRT or WHIP comes for a few seconds and goes;
  short-lived HTTP-FLV players leave abruptly (RST, half-open, stalled readers that never read);
- the HTTP API polled every second; a reload (SIGHUP) every minute.

Phases: steady (stable publishers and players only) -> churn -> quiet (churn stopped, and the
server has ended the last churn publisher, which for a killed WHIP one takes its 30 s
stun_timeout; then 5 s more).
Printed at the end, as one JSON line (``RESULT {...}``) and a short table: RSS after warm-up and at
the end of the churn, file descriptors in the steady and quiet phases, tracebacks and
unexpected-exception lines in the log, and whether every stable player still receives.

    sudo-less, as root: python bench/soak.py --minutes 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from tests.integration import netns  # noqa: E402

PORTS = {"rtmp": 19350, "http": 18080, "api": 11985, "rtc": 18000, "srt": 10080}
CONF = """
listen 127.0.0.1:{rtmp};
max_connections 2000;
srs_log_tank file;
srs_log_file {dir}/srs.log;
pid {dir}/srs.pid;
http_api {{ enabled on; listen 127.0.0.1:{api}; }}
http_server {{ enabled on; listen 127.0.0.1:{http}; dir {dir}/html; }}
rtc_server {{ enabled on; listen {rtc}; candidate 127.0.0.1; }}
srt_server {{ enabled on; listen {srt}; }}
vhost __defaultVhost__ {{
    hls {{ enabled on; hls_path {dir}/html; hls_fragment 2; hls_window 10; hls_dispose 10; }}
    http_remux {{ enabled on; mount [vhost]/[app]/[stream].flv; }}
    rtc {{ enabled on; rtmp_to_rtc off; rtc_to_rtmp off; }}
    srt {{ enabled on; srt_to_rtmp on; }}
}}
"""


def ffmpeg() -> str:
    return os.environ.get("FFMPEG", "ffmpeg")


def make_clip(path: str) -> str:
    """A light 10 s clip (640x360 25 fps, 500 kbit/s, H.264 baseline, AAC): soak, not throughput."""
    if not os.path.exists(path):
        subprocess.run([ffmpeg(), "-hide_banner", "-loglevel", "error", "-y",
                        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=10",
                        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=10",
                        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline", "-g", "50",
                        "-b:v", "500k", "-maxrate", "500k", "-bufsize", "1000k", "-c:a", "aac", "-b:a", "64k",
                        "-f", "flv", path], check=True, timeout=300)
    return path


class Soak:
    def __init__(self, args) -> None:
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="srs-soak-")
        os.makedirs(os.path.join(self.dir, "html"))
        self.clip = make_clip(os.path.join(self.dir, "clip.flv"))
        self.procs: list[subprocess.Popen] = []
        self.stop = threading.Event()
        self.samples: list[dict] = []
        self.counts = {"churn_publishers": 0, "churn_players": 0, "api_polls": 0, "api_errors": 0, "reloads": 0,
                       "hls_polls": 0, "hls_errors": 0}
        self.rng = random.Random(args.seed)

    # --- processes ---

    def spawn(self, cmd, **kw) -> subprocess.Popen:
        p = subprocess.Popen(cmd, stdout=kw.pop("stdout", subprocess.DEVNULL), stderr=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def start_server(self) -> None:
        conf = os.path.join(self.dir, "srs.conf")
        with open(conf, "w") as f:
            f.write(CONF.format(dir=self.dir, **PORTS))
        env = dict(os.environ, PYTHONPATH=ROOT)
        self.server = self.spawn([sys.executable, "-m", "srs_twisted.cli", "-c", conf], cwd=self.dir, env=env,
                                 stdout=open(os.path.join(self.dir, "console.log"), "wb"))
        self.wait(lambda: "srs-twisted started" in self.log(), 60, "server start")

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "srs.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    @staticmethod
    def wait(predicate, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return
            time.sleep(0.2)
        raise SystemExit(f"soak: {what} did not happen in {timeout} s")

    def rtmp(self, stream: str) -> str:
        return f"rtmp://127.0.0.1:{PORTS['rtmp']}/live/{stream}"

    def srt(self, stream: str, mode: str) -> str:
        return f"srt://127.0.0.1:{PORTS['srt']}?streamid=#!::r=live/{stream},m={mode}"

    def whip(self, stream: str, kind: str = "whip") -> str:
        return f"http://127.0.0.1:{PORTS['api']}/rtc/v1/{kind}/?app=live&stream={stream}"

    def publisher(self, proto: str, stream: str, seconds: float | None) -> subprocess.Popen:
        if proto == "rtmp":
            loop = ["-stream_loop", "-1"] if seconds is None or seconds > 10 else []
            t = ["-t", str(seconds)] if seconds else []
            return self.spawn([ffmpeg(), "-hide_banner", "-loglevel", "error", "-re", *loop, "-i", self.clip, *t,
                               "-c", "copy", "-f", "flv", self.rtmp(stream)])
        if proto == "srt":
            t = ["-t", str(seconds)] if seconds else []
            return self.spawn([ffmpeg(), "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
                               "-i", self.clip, *t, "-c", "copy", "-pes_payload_size", "0", "-f", "mpegts",
                               self.srt(stream, "publish")])
        duration = seconds or self.args.minutes * 60 + 120
        return self.spawn([sys.executable, os.path.join(HERE, "rtc_publish.py"), self.whip(stream),
                           "--duration", str(duration), "--clip", self.clip])

    # --- the server's figures ---

    def fd_kinds(self) -> dict:
        """The server's file descriptors by kind: ``tcp:PORT STATE`` / ``udp:PORT`` (the local port:
        the listener a connection came to), file paths (the run's dir as ``.``), pipes, epoll."""
        pid = self.server.pid
        sockets = {}
        tcp_states = {"01": "ESTABLISHED", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "0A": "LISTEN",
                      "04": "FIN_WAIT1", "05": "FIN_WAIT2", "09": "LAST_ACK"}
        for proto in ("tcp", "tcp6", "udp", "udp6"):
            try:
                with open(f"/proc/{pid}/net/{proto}") as f:
                    next(f)
                    for line in f:
                        cols = line.split()
                        port = int(cols[1].rsplit(":", 1)[1], 16)
                        state = " " + tcp_states.get(cols[3], cols[3]) if proto.startswith("tcp") else ""
                        sockets[cols[9]] = f"{proto.rstrip('6')}:{port}{state}"
            except OSError:
                pass
        kinds: dict = {}
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                target = sockets.get(target[8:-1], "unix or other socket")
            elif target.startswith("pipe:"):
                target = "pipe"
            else:
                target = target.replace(self.dir, ".")
            kinds[target] = kinds.get(target, 0) + 1
        return kinds

    def sample(self, phase: str) -> dict:
        pid = self.server.pid
        rss = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        s = {"t": round(time.monotonic() - self.t0, 1), "phase": phase, "rss_kb": rss,
             "fds": len(os.listdir(f"/proc/{pid}/fd")), "load": os.getloadavg()[0]}
        self.samples.append(s)
        return s

    # --- background activity ---

    def api_poller(self) -> None:
        base = f"http://127.0.0.1:{PORTS['api']}/api/v1/"
        while not self.stop.wait(1.0):
            for path in ("streams/?count=100", "clients/?count=100", "summaries"):
                try:
                    with urllib.request.urlopen(base + path, timeout=10) as r:
                        json.loads(r.read())
                    self.counts["api_polls"] += 1
                except Exception:  # noqa: BLE001 - counted, the soak goes on
                    self.counts["api_errors"] += 1

    def hls_poller(self, stream: str) -> None:
        url = f"http://127.0.0.1:{PORTS['http']}/live/{stream}.m3u8"
        while not self.stop.wait(2.0):
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    text = r.read().decode()
                segments = [line for line in text.splitlines() if line and not line.startswith("#")]
                if segments:
                    seg = urllib.request.urljoin(url, segments[-1])
                    with urllib.request.urlopen(seg, timeout=10) as r:
                        r.read()
                self.counts["hls_polls"] += 1
            except Exception:  # noqa: BLE001
                self.counts["hls_errors"] += 1

    def churn_publishers(self) -> None:
        i = 0
        live: list[subprocess.Popen] = []
        while not self.stop.wait(self.rng.uniform(2.0, 5.0)):
            proto = self.rng.choice(("rtmp", "srt", "whip"))
            live.append(self.publisher(proto, f"churn{i % 20}-{proto}", self.rng.uniform(3.0, 9.0)))
            i += 1
            self.counts["churn_publishers"] += 1
            for p in [p for p in live if p.poll() is None and self.rng.random() < 0.2]:
                p.kill()  # abrupt: no unpublish from the client
            live = [p for p in live if p.poll() is None]
        for p in live:
            p.kill()

    def churn_players(self) -> None:
        """HTTP-FLV players of the stable stream that leave abruptly; at most 40 held at once."""
        held: list[tuple[float, socket.socket]] = []
        request = (f"GET /live/stable.flv HTTP/1.1\r\nHost: 127.0.0.1:{PORTS['http']}\r\n\r\n").encode()
        while not self.stop.wait(0.3):
            now = time.monotonic()
            for end, s in [x for x in held if x[0] <= now]:
                s.close()
            held = [x for x in held if x[0] > now]
            if len(held) >= 40:
                continue
            try:
                s = socket.create_connection(("127.0.0.1", PORTS["http"]), timeout=5)
                s.sendall(request)
                s.recv(self.rng.choice((100, 5000, 60000)))
            except OSError:
                continue
            self.counts["churn_players"] += 1
            how = self.rng.choice(("rst", "rst", "half-open", "stalled"))
            if how == "rst":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            elif how == "half-open":
                s.shutdown(socket.SHUT_WR)
                held.append((now + self.rng.uniform(5, 20), s))
            else:  # stalled: never reads again, small receive buffer
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                held.append((now + self.rng.uniform(10, 30), s))
        for _, s in held:
            s.close()

    def churn_publishing(self) -> int:
        """Churn publishers the server still holds (by the clients API)."""
        url = f"http://127.0.0.1:{PORTS['api']}/api/v1/clients/?count=2000"
        with urllib.request.urlopen(url, timeout=10) as r:
            clients = json.loads(r.read()).get("clients", [])
        return sum(1 for c in clients if c.get("publish") and str(c.get("name", "")).startswith("churn"))

    def wait_for_quiet(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if not self.churn_publishing():
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(1.0)

    def reloader(self) -> None:
        while not self.stop.wait(60.0):
            self.server.send_signal(signal.SIGHUP)
            self.counts["reloads"] += 1

    # --- the run ---

    def run(self) -> dict:
        a = self.args
        self.t0 = time.monotonic()
        self.start_server()
        self.publisher("rtmp", "stable", None)
        self.publisher("srt", "stable-srt", None)
        self.publisher("whip", "stable-rtc", None)
        time.sleep(4)  # a GOP in the cache before players join
        total = a.minutes * 60 + a.steady + 30
        out = {}
        loaders = {}
        for kind, url, n in (("rtmp", self.rtmp("stable"), a.rtmp_players),
                             ("flv", f"http://127.0.0.1:{PORTS['http']}/live/stable.flv", a.flv_players)):
            loaders[kind] = self.spawn([sys.executable, os.path.join(HERE, "loadclient.py"), url, "-n", str(n),
                                        "--ramp", "5", "--settle", "2", "--window", str(total), "--samples", "0"],
                                       stdout=subprocess.PIPE, text=True)
        whep = self.spawn([sys.executable, os.path.join(HERE, "rtc_load.py"), self.whip("stable-rtc", "whep"),
                           "--players", str(a.whep_players), "--latency-players", "0", "--warmup", "5",
                           "--window", str(total - 10)], stdout=subprocess.PIPE, text=True)
        for i in range(a.srt_players):
            self.spawn(["srt-live-transmit", "-q", self.srt("stable-srt", "request"), "file://con"],
                       stdout=open(f"{self.dir}/srt{i}.ts", "wb"))
        threads = [threading.Thread(target=self.hls_poller, args=(s,), daemon=True)
                   for s in ["stable"] * a.hls_players]
        threads.append(threading.Thread(target=self.api_poller, daemon=True))
        for t in threads:
            t.start()
        time.sleep(a.steady)
        steady = self.sample("steady")
        steady_fds = self.fd_kinds()
        churn = [threading.Thread(target=f, daemon=True)
                 for f in (self.churn_publishers, self.churn_players, self.reloader)]
        for t in churn:
            t.start()
        warm_end = time.monotonic() + min(120.0, a.minutes * 60 / 5)
        end = time.monotonic() + a.minutes * 60
        warm = None
        while time.monotonic() < end:
            time.sleep(5)
            s = self.sample("churn")
            if warm is None and time.monotonic() >= warm_end:
                warm = s
        last = self.samples[-1]
        self.stop.set()
        for t in churn + threads:
            t.join(40)
        quiet_from = time.monotonic()
        # A churn publisher killed at the stop lasts until the server's timeout for it (WebRTC's
        # stun_timeout is 30 s, SRT's peer_idle_timeout 10 s): the quiet figures wait for them.
        self.wait_for_quiet(60)
        time.sleep(5)
        quiet = self.sample("quiet")
        quiet["after_s"] = round(time.monotonic() - quiet_from, 1)
        quiet_fds = self.fd_kinds()
        sizes = [os.path.getsize(f"{self.dir}/srt{i}.ts") if os.path.exists(f"{self.dir}/srt{i}.ts") else 0
                 for i in range(a.srt_players)]
        time.sleep(3)
        sizes_later = [os.path.getsize(f"{self.dir}/srt{i}.ts") if os.path.exists(f"{self.dir}/srt{i}.ts") else 0
                       for i in range(a.srt_players)]
        for kind, p in loaders.items():
            stdout, _ = p.communicate(timeout=total + 120)
            res = next((json.loads(line[7:]) for line in stdout.splitlines() if line.startswith("RESULT ")), None)
            out[kind] = None if res is None else {
                "players": res["n"], "failed": res["failed"], "disconnected": res["disconnected"],
                "min_window_kbit_s": round(min(res["window_bytes"]) * 8 / 1000 / (res["window"][1] - res["window"][0]), 1)}
        stdout, _ = whep.communicate(timeout=total + 120)
        res = next((json.loads(line) for line in reversed(stdout.splitlines()) if line.startswith("{")), None)
        if res is not None:
            ratios = [row["video"]["packets"] / row["video"]["expected"] for row in res["per_player"]
                      if row.get("video") and row["video"]["expected"]]
            res = {"players": res["players"], "up": res["up"], "failed": res["failed_count"],
                   "video_got_vs_sent_min": round(min(ratios), 4) if ratios else None}
        out["whep"] = res
        out["srt"] = {"players": a.srt_players, "receiving_at_end": sum(1 for x, y in zip(sizes, sizes_later) if y > x)}
        log = self.log()
        console = open(os.path.join(self.dir, "console.log"), errors="replace").read()
        result = {
            "minutes": a.minutes, "dir": self.dir, "counts": self.counts, "players": out,
            "steady": steady, "warm": warm, "end_of_churn": last, "quiet": quiet,
            "rss_end_vs_warm": None if warm is None else round(last["rss_kb"] / warm["rss_kb"], 3),
            "fds_quiet_minus_steady": quiet["fds"] - steady["fds"],
            "fds_changed": {k: quiet_fds.get(k, 0) - steady_fds.get(k, 0) for k in set(steady_fds) | set(quiet_fds)
                            if quiet_fds.get(k, 0) != steady_fds.get(k, 0)},
            "tracebacks": console.count("Traceback") + log.count("Traceback"),
            "unexpected": log.count("Unexpected"),
            "errors_logged": log.count("][Error]["),
        }
        return result

    def cleanup(self) -> None:
        self.stop.set()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="churn phase length (at most 60)")
    ap.add_argument("--steady", type=float, default=30.0, help="seconds of the steady phase")
    ap.add_argument("--rtmp-players", type=int, default=100)
    ap.add_argument("--flv-players", type=int, default=100)
    ap.add_argument("--whep-players", type=int, default=40)
    ap.add_argument("--srt-players", type=int, default=20)
    ap.add_argument("--hls-players", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    args.minutes = min(args.minutes, 60.0)
    netns.enter()
    soak = Soak(args)
    try:
        result = soak.run()
    finally:
        soak.cleanup()
    print("RESULT " + json.dumps(result), flush=True)
    for key in ("counts", "players", "steady", "warm", "end_of_churn", "quiet", "fds_changed"):
        print(f"{key}: {json.dumps(result[key])}")
    print(f"RSS end/warm {result['rss_end_vs_warm']}, fds quiet-steady {result['fds_quiet_minus_steady']}, "
          f"tracebacks {result['tracebacks']}, unexpected {result['unexpected']}")


if __name__ == "__main__":
    main()
