#!/usr/bin/env python3
"""Fan-out benchmark: one publisher, N players, srs-twisted beside
nginx-rtmp and Node-Media-Server on the same machine in the same run.

Run it through ``bench/run`` (which installs the peers).  Per server,
protocol and player count (a *cell*) it starts the server fresh on
loopback, publishes the clip in real time with ``publisher.py``, connects
``loadclient.py``'s players and measures over a window:

- server CPU seconds (utime+stime of the whole process tree from /proc,
  reaped children included) per delivered Gbit;
- peak RSS of the tree and (peak - RSS before the players) per player;
- bytes each player got over the window / bytes the publisher sent over
  the same window (shifted by the median latency): min and median;
- server-added latency p50/p95 (publisher's send stamp to player receipt);
- time from TCP connect to the first video frame p50/p95;
- failures (no first frame, or disconnected).

Results go to bench/results/<stamp>.jsonl (one line per cell) and a
markdown table to bench/results/<stamp>.md (and stdout).
"""

from __future__ import annotations

import argparse
import atexit
import bisect
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
CACHE = os.path.join(BENCH, ".cache")
RESULTS = os.path.join(BENCH, "results")
CLK_TCK = os.sysconf("SC_CLK_TCK")
STREAM = "bench"

# ---- child processes: every one is stopped at exit, error or Ctrl-C ------------
_CHILDREN: list[subprocess.Popen] = []


def add_netns_options(parser: argparse.ArgumentParser) -> None:
    """--no-netns, and the internal --in-netns that :func:`enter_netns` adds."""
    parser.add_argument("--no-netns", action="store_true", help="run in this network namespace (loopback still)")
    parser.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)


def enter_netns(args) -> None:
    """Run this script again in a private network namespace (``unshare -n``, only ``lo`` up),
    unless ``--no-netns`` or already there: nothing it does leaves the machine."""
    if not args.no_netns and not args.in_netns:
        ip = shutil.which("ip") or "/usr/sbin/ip"
        inner = f"{ip} link set lo up && exec \"$0\" \"$@\""
        os.execvp("unshare", ["unshare", "-n", "sh", "-c", inner, sys.executable, *sys.argv, "--in-netns"])


def spawn(cmd, log_path=None, **kw) -> subprocess.Popen:
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL
    kw.setdefault("stdout", out)
    kw.setdefault("stderr", subprocess.STDOUT if log_path else subprocess.DEVNULL)
    p = subprocess.Popen(cmd, start_new_session=True, **kw)
    _CHILDREN.append(p)
    return p


def stop(p: subprocess.Popen | None, timeout: float = 5.0) -> None:
    if p is None:
        return
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout)
    else:
        # The leader is gone; its group (nginx workers) may not be.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if p in _CHILDREN:
        _CHILDREN.remove(p)


def stop_all() -> None:
    for p in list(reversed(_CHILDREN)):
        try:
            stop(p, 3.0)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def _on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


atexit.register(stop_all)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)
signal.signal(signal.SIGINT, _on_signal)  # also when started with SIGINT ignored (a background job)


# ---- /proc -----------------------------------------------------------------------
def tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids) -> tuple[float, float]:
    """(user, system) CPU seconds of these processes, reaped children included."""
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        # after the comm: state=0 ... utime=11 stime=12 cutime=13 cstime=14
        user += int(fields[11]) + int(fields[13])
        system += int(fields[12]) + int(fields[14])
    return user / CLK_TCK, system / CLK_TCK


def rss_kb(pids) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {deadline}s")


def tail(path: str, n: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


# ---- tools -----------------------------------------------------------------------
def ffmpeg_exe() -> str:
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as e:  # noqa: BLE001
        raise SystemExit(f"no ffmpeg: {e}")


def make_clip(seconds: int = 20, baseline: bool = False) -> str:
    """The 1.5 Mbit/s H.264+AAC clip: testsrc2 1280x720 30 fps, 2 s GOPs;
    ``baseline``: H.264 constrained baseline (no B-frames), for WebRTC."""
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, f"clip-720p30-1400k-{seconds}s{'-baseline' if baseline else ''}.flv")
    if os.path.exists(path):
        return path
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        *(["-profile:v", "baseline", "-level", "3.1"] if baseline else []),
        "-b:v", "1400k", "-maxrate", "1400k", "-bufsize", "2800k",
        "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "128k", "-ac", "2",
        "-f", "flv", path + ".tmp",
    ]
    subprocess.run(cmd, check=True, timeout=300)
    os.replace(path + ".tmp", path)
    return path


def versions() -> dict:
    def run(cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        except Exception as e:  # noqa: BLE001
            return f"? ({e})"

    v = {"python": sys.version.split()[0]}
    try:
        import twisted

        v["twisted"] = twisted.__version__
    except ImportError:
        v["twisted"] = "?"
    v["nginx"] = run(["nginx", "-v"])
    v["libnginx-mod-rtmp"] = run(["dpkg-query", "-W", "-f=${Version}", "libnginx-mod-rtmp"])
    try:
        with open(os.path.join(BENCH, ".node", "node_modules", "node-media-server", "package.json")) as f:
            v["node-media-server"] = json.load(f)["version"]
    except OSError:
        v["node-media-server"] = "not installed"
    v["node"] = run(["node", "--version"])
    v["ffmpeg"] = run([ffmpeg_exe(), "-version"])
    try:
        v["git"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    return v


def machine() -> dict:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gib": round(mem_kb / 1024 / 1024, 1), "kernel": os.uname().release}


# ---- servers -------------------------------------------------------------------
class Server:
    name = ""
    protos: tuple = ()

    def __init__(self, workdir: str) -> None:
        self.dir = workdir
        self.rtmp_port = free_port()
        self.http_port = free_port()
        self.proc: subprocess.Popen | None = None

    def url(self, proto: str) -> str:
        if proto == "rtmp":
            return f"rtmp://127.0.0.1:{self.rtmp_port}/live/{STREAM}"
        return f"http://127.0.0.1:{self.http_port}/live/{STREAM}.flv"

    def start(self) -> None:
        raise NotImplementedError

    def wait(self) -> None:
        wait_port(self.rtmp_port, self.proc)
        if "flv" in self.protos:
            wait_port(self.http_port, self.proc)

    def log_tail(self) -> str:
        return ""


class Ours(Server):
    name = "srs-twisted"
    protos = ("rtmp", "flv")
    play_conf = ""
    global_conf = ""  # e.g. "workers 2;\n" (bench/workers_fanout.py)

    def start(self) -> None:
        conf = os.path.join(self.dir, "srs.conf")
        with open(conf, "w") as f:
            f.write(
                f"listen 127.0.0.1:{self.rtmp_port};\n"
                "max_connections 12000;\n"  # room for 5,000+ players (SRS's default is 1000)

                f"{self.global_conf}"
                f"pid {self.dir}/srs.pid;\n"
                f"srs_log_tank file;\nsrs_log_file {self.dir}/srs.log;\n"
                f"http_server {{ enabled on; listen 127.0.0.1:{self.http_port}; }}\n"
                "vhost __defaultVhost__ {\n"
                "    http_remux { enabled on; mount [vhost]/[app]/[stream].flv; }\n"
                f"{self.play_conf}"
                "}\n"
            )
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = spawn([sys.executable, "-m", "srs_twisted.cli", "-c", conf], os.path.join(self.dir, "console.log"),
                          cwd=self.dir, env=env)

    def log_tail(self) -> str:
        return tail(os.path.join(self.dir, "srs.log")) + tail(os.path.join(self.dir, "console.log"))


class OursRealtime(Ours):
    """Our server with merged writes off (mw_latency 0: a flush per packet)."""

    name = "srs-twisted-mw0"
    play_conf = "    play { mw_latency 0; }\n"


class Nginx(Server):
    name = "nginx-rtmp"
    protos = ("rtmp",)

    def start(self) -> None:
        conf = os.path.join(self.dir, "nginx.conf")
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        with open(conf, "w") as f:
            f.write(
                "load_module /usr/share/nginx/modules/ngx_rtmp_module.so;\n"
                "daemon off;\nmaster_process on;\nworker_processes 1;\nworker_rlimit_nofile 16384;\n"
                f"pid {self.dir}/nginx.pid;\nerror_log {self.dir}/logs/error.log warn;\n"
                "events { worker_connections 12000; }\n"
                "rtmp {\n    server {\n"
                f"        listen 127.0.0.1:{self.rtmp_port};\n"
                "        application live { live on; }\n"
                "    }\n}\n"
            )
        self.proc = spawn(["nginx", "-c", conf, "-p", self.dir], os.path.join(self.dir, "console.log"))

    def log_tail(self) -> str:
        return tail(os.path.join(self.dir, "logs", "error.log"))


class Nms(Server):
    name = "nms"
    protos = ("rtmp", "flv")

    def start(self) -> None:
        self.proc = spawn(
            ["node", os.path.join(BENCH, "nms_start.js"), str(self.rtmp_port), str(self.http_port), self.dir],
            os.path.join(self.dir, "console.log"),
        )

    def log_tail(self) -> str:
        return tail(os.path.join(self.dir, "console.log"))


SERVERS = {"srs-twisted": Ours, "nginx-rtmp": Nginx, "nms": Nms, "srs-twisted-mw0": OursRealtime}
DEFAULT_SERVERS = "srs-twisted,nginx-rtmp,nms"


# ---- one cell -------------------------------------------------------------------
def percentile(xs, q: float):
    if not xs:
        return None
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def read_pub_log(path: str):
    ts, cum = [], []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    ts.append(float(parts[0]))
                    cum.append(int(parts[1]))
    except OSError:
        pass
    return ts, cum


def cum_at(ts, cum, t: float) -> int:
    i = bisect.bisect_right(ts, t)
    return cum[i - 1] if i else 0


def run_cell(server_cls, proto: str, n: int, opts, clip: str, rep: int, profile: str | None = None) -> dict:
    work = tempfile.mkdtemp(prefix=f"bench-{server_cls.name}-")
    srv = server_cls(work)
    pub = client = spy = None
    load_start = os.getloadavg()
    cell = {"server": srv.name, "proto": proto, "n": n, "rep": rep, "load_start": load_start[0]}
    try:
        srv.start()
        srv.wait()
        url = srv.url(proto)
        pub_log = os.path.join(work, "pub.log")
        pub_out = os.path.join(work, "pub.out")
        if opts.publisher == "python":
            pub = spawn([sys.executable, os.path.join(BENCH, "publisher.py"), clip, srv.url("rtmp"), "--log", pub_log,
                         "--duration", str(opts.cell_timeout)], pub_out)
            end = time.monotonic() + 15
            while "PUBLISHING" not in tail(pub_out):
                if pub.poll() is not None or time.monotonic() > end:
                    raise RuntimeError(f"publisher did not start: {tail(pub_out)}")
                time.sleep(0.05)
        else:
            pub = spawn([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", clip,
                         "-c", "copy", "-f", "flv", srv.url("rtmp")], pub_out)
        time.sleep(opts.warmup)
        pids = tree_pids(srv.proc.pid)
        rss_base = rss_kb(pids)
        ramp = max(1.0, n / opts.ramp_rate)
        cmd = [sys.executable, os.path.join(BENCH, "loadclient.py"), url, "-n", str(n), "--ramp", str(ramp),
               "--settle", str(opts.settle), "--window", str(opts.window), "--samples", str(opts.samples),
               "--read-interval", str(opts.read_interval)]
        client = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(os.path.join(work, "client.err"), "wb"),
                                  text=True, start_new_session=True)
        _CHILDREN.append(client)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in client.stdout] and None, daemon=True).start()
        peak = [rss_base]
        done = threading.Event()

        def sample_rss():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kb(tree_pids(srv.proc.pid)))
                done.wait(0.2)

        threading.Thread(target=sample_rss, daemon=True).start()
        deadline = time.monotonic() + ramp + 15 + opts.settle + opts.window + 30
        cpu0 = cpu1 = None
        result = None
        while result is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("load client timed out")
            try:
                line = lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                if client.poll() is not None and lines.empty():
                    raise RuntimeError(f"load client exited {client.returncode}: {tail(os.path.join(work, 'client.err'))}")
                continue
            if line.startswith("WINDOW_START"):
                cpu0 = cpu_seconds(tree_pids(srv.proc.pid))
                if profile:
                    spy = spawn(["py-spy", "record", "--pid", str(srv.proc.pid), "-d", str(int(opts.window)),
                                 "-r", str(opts.profile_rate), "-o", profile] + (["--format", "raw", "--nolineno"] if profile.endswith(".txt") else []),
                                os.path.join(work, "pyspy.log"))
            elif line.startswith("WINDOW_END"):
                cpu1 = cpu_seconds(tree_pids(srv.proc.pid))
            elif line.startswith("RESULT "):
                result = json.loads(line[7:])
        done.set()
        if spy is not None:
            try:
                spy.wait(opts.window + 30)
            except subprocess.TimeoutExpired:
                pass
            cell["profile"] = profile
            cell["pyspy_log"] = tail(os.path.join(work, "pyspy.log"), 500)
        t0, t1 = result["window"]
        dur = t1 - t0
        lat = result["latency"]
        lat50 = percentile(lat, 0.5)
        ts, cum = read_pub_log(pub_log)
        if ts:
            # What a player should have got: what the publisher sent between
            # the arrivals of the player's first and last counted bytes, less
            # the delay of the freshest packet in a write (latency p5).
            fresh = percentile(lat, 0.05) or 0.0
            expected = [
                cum_at(ts, cum, w1 - fresh) - cum_at(ts, cum, w0 - fresh) for w0, w1 in result["window_recv_times"]
            ]
        else:  # FFmpeg publisher: the clip's average rate over the window
            expected = [os.path.getsize(clip) / 20.0 * dur] * n
        ratios = [b / e for b, e in zip(result["window_bytes"], expected) if e > 0]
        delivered = sum(result["window_bytes"])
        cpu = user = None
        if cpu0 is not None and cpu1 is not None:
            user = cpu1[0] - cpu0[0]
            cpu = user + cpu1[1] - cpu0[1]
        ttff = [x for x in result["ttff"] if x is not None]
        cell.update(
            window_s=dur,
            cpu_s=cpu,
            cpu_util=cpu / dur if cpu is not None else None,
            cpu_user_share=user / cpu if cpu else None,
            delivered_gbit=delivered * 8 / 1e9,
            cpu_s_per_gbit=(cpu / (delivered * 8 / 1e9)) if cpu is not None and delivered else None,
            rss_base_mb=rss_base / 1024,
            rss_peak_mb=peak[0] / 1024,
            rss_per_player_kb=(peak[0] - rss_base) / n,
            ratio_min=min(ratios) if ratios else None,
            ratio_median=statistics.median(ratios) if ratios else None,
            expected_bytes=statistics.median(expected) if expected else None,
            latency_ms_p50=lat50 * 1000 if lat50 is not None else None,
            latency_ms_p95=percentile(lat, 0.95) * 1000 if lat else None,
            latency_samples=len(lat),
            ttff_ms_p50=percentile(ttff, 0.5) * 1000 if ttff else None,
            ttff_ms_p95=percentile(ttff, 0.95) * 1000 if ttff else None,
            failed=result["failed"],
            no_first_frame=result["no_first_frame"],
            disconnected=result["disconnected"],
            errors=result["errors"],
            ramp_s=result["ramp_s"],
            client_cpu_util=result["client_cpu_window"] / dur,
            load_end=os.getloadavg()[0],
        )
        if result["failed"]:
            cell["server_log_tail"] = srv.log_tail()[-1500:]
    except Exception as e:  # noqa: BLE001 - a broken cell is reported, the run goes on
        cell["error"] = f"{type(e).__name__}: {e}"
        cell["server_log_tail"] = srv.log_tail()[-1500:]
    finally:
        for p in (spy, client, pub):
            stop(p)
        stop(srv.proc)
        shutil.rmtree(work, ignore_errors=True)
    return cell


# ---- reporting -------------------------------------------------------------------
def fmt(v, spec=".2f", none="–"):
    return none if v is None else format(v, spec)


def line_summary(c: dict) -> str:
    if "error" in c:
        return f"{c['server']:<12} {c['proto']:<4} N={c['n']:<5} rep{c['rep']} ERROR {c['error']}"
    return (
        f"{c['server']:<12} {c['proto']:<4} N={c['n']:<5} rep{c['rep']} "
        f"cpu/Gbit={fmt(c['cpu_s_per_gbit'], '.3f')} cpu={fmt(c['cpu_util'] * 100 if c['cpu_util'] is not None else None, '.0f')}% "
        f"(user {fmt(c['cpu_user_share'] * 100 if c.get('cpu_user_share') is not None else None, '.0f')}%) "
        f"rss={fmt(c['rss_peak_mb'], '.0f')}MB ({fmt(c['rss_per_player_kb'], '.0f')}KB/pl) "
        f"bytes min/med={fmt(c['ratio_min'], '.3f')}/{fmt(c['ratio_median'], '.3f')} "
        f"lat p50/p95={fmt(c['latency_ms_p50'], '.0f')}/{fmt(c['latency_ms_p95'], '.0f')}ms "
        f"ttff p50/p95={fmt(c['ttff_ms_p50'], '.0f')}/{fmt(c['ttff_ms_p95'], '.0f')}ms "
        f"fail={c['failed']} client={c['client_cpu_util'] * 100:.0f}% load={c['load_start']:.2f}"
    )


def _vals(cells, key):
    return [c[key] for c in cells if c.get(key) is not None]


def _mean(cells, key, spec):
    v = _vals(cells, key)
    return fmt(statistics.mean(v), spec) if v else "–"


def _each(cells, key, spec):
    v = _vals(cells, key)
    return " / ".join(fmt(x, spec) for x in v) if v else "–"


def table(cells: list[dict]) -> str:
    groups: dict = {}
    for c in cells:
        groups.setdefault((c["server"], c["proto"], c["n"]), []).append(c)
    head = (
        "| server | proto | N | CPU-s/Gbit (each run) | server CPU % of a core | user share | peak RSS MB | RSS/player KB "
        "| bytes min | bytes median | latency p50 / p95 ms | TTFF p50 / p95 ms | failures | load avg (1 min) |\n"
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|---|---|\n"
    )
    rows = []
    order = {name: i for i, name in enumerate(SERVERS)}
    for key in sorted(groups, key=lambda k: (k[1], k[2], order.get(k[0], 9))):
        g = [c for c in groups[key] if "error" not in c]
        errs = [c for c in groups[key] if "error" in c]
        if not g:
            rows.append(f"| {key[0]} | {key[1]} | {key[2]} | error: {errs[0]['error'][:80]} |" + " |" * 10)
            continue
        util = [c["cpu_util"] * 100 for c in g if c.get("cpu_util") is not None]
        share = _vals(g, "cpu_user_share")
        rmin = _vals(g, "ratio_min")
        fails = "+".join(str(c["failed"]) for c in g) + (f" ({len(errs)} cell error)" if errs else "")
        loads = _vals(g, "load_start")
        rows.append(
            f"| {key[0]} | {'RTMP' if key[1] == 'rtmp' else 'HTTP-FLV'} | {key[2]} "
            f"| {_each(g, 'cpu_s_per_gbit', '.3f')} "
            f"| {fmt(statistics.mean(util), '.0f') if util else '–'} "
            f"| {fmt(statistics.mean(share) * 100, '.0f') + '%' if share else '–'} "
            f"| {fmt(max(_vals(g, 'rss_peak_mb')), '.0f')} "
            f"| {_mean(g, 'rss_per_player_kb', '.0f')} "
            f"| {fmt(min(rmin), '.3f') if rmin else '–'} "
            f"| {_mean(g, 'ratio_median', '.3f')} "
            f"| {_mean(g, 'latency_ms_p50', '.0f')} / {_mean(g, 'latency_ms_p95', '.0f')} "
            f"| {_mean(g, 'ttff_ms_p50', '.0f')} / {_mean(g, 'ttff_ms_p95', '.0f')} "
            f"| {fails} "
            f"| {fmt(min(loads), '.2f')}–{fmt(max(loads), '.2f')} |"
        )
    return head + "\n".join(rows) + "\n"


def targets(cells: list[dict], n: int = 1000) -> str:
    def pick(server, proto):
        return [c for c in cells if c["server"] == server and c["proto"] == proto and c["n"] == n and "error" not in c]

    out = [f"| target (N={n}) | measured | verdict |", "|---|---|---|"]

    def mean(g, key):
        v = _vals(g, key)
        return statistics.mean(v) if v else None

    ours_r, ours_f, ngx = pick("srs-twisted", "rtmp"), pick("srs-twisted", "flv"), pick("nginx-rtmp", "rtmp")
    a, b = mean(ours_r, "cpu_s_per_gbit"), mean(ngx, "cpu_s_per_gbit")
    if a is not None and b is not None:
        out.append(f"| RTMP CPU-s/Gbit <= nginx-rtmp's | {a:.3f} vs nginx-rtmp {b:.3f} | {'met' if a <= b else 'not met'} |")
    a = mean(ours_f, "cpu_s_per_gbit")
    if a is not None:
        out.append(f"| HTTP-FLV CPU-s/Gbit <= 0.20 | {a:.3f} | {'met' if a <= 0.20 else 'not met'} |")
    for proto, g in (("RTMP", ours_r), ("HTTP-FLV", ours_f)):
        if not g:
            continue
        v = mean(g, "latency_ms_p50")
        if v is not None:
            out.append(f"| {proto} latency p50 <= 100 ms | {v:.0f} ms | {'met' if v <= 100 else 'not met'} |")
        v = mean(g, "ttff_ms_p50")
        if v is not None:
            out.append(f"| {proto} TTFF p50 <= 100 ms | {v:.0f} ms | {'met' if v <= 100 else 'not met'} |")
        v = mean(g, "rss_per_player_kb")
        if v is not None:
            out.append(f"| {proto} RSS/player <= 64 KB | {v:.0f} KB | {'met' if v <= 64 else 'not met'} |")
        rmin = min(_vals(g, "ratio_min") or [0])
        fails = sum(c["failed"] for c in g)
        ok = rmin >= 0.99 and fails == 0
        out.append(f"| {proto} every player >= 99% of bytes, none disconnected | min {rmin:.3f}, {fails} failed | {'met' if ok else 'not met'} |")
    if n < 1000:
        out.append(f"\nThe targets are set at N=1000; at N={n} the per-stream fixed cost weighs more in CPU-s/Gbit. "
                   "Compare with the same N in docs/performance.md.")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="regression guard: our server, 300 RTMP + 300 HTTP-FLV players, 5 s windows")
    ap.add_argument("--servers", default=None, help="comma list of " + ",".join(SERVERS))
    ap.add_argument("--protos", default="rtmp,flv")
    ap.add_argument("--ns", default=None, help="player counts, e.g. 10,100,300,1000")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--window", type=float, default=None)
    ap.add_argument("--settle", type=float, default=None)
    ap.add_argument("--warmup", type=float, default=2.5, help="seconds of publishing before players (fills the GOP cache)")
    ap.add_argument("--ramp-rate", type=float, default=200.0, help="players connected per second")
    ap.add_argument("--samples", type=int, default=30, help="players per cell that parse for latency")
    ap.add_argument("--read-interval", type=float, default=0.0,
                    help="ms between the players' reads (0: on every readiness event; 10 or 50: batched, as real players)")
    ap.add_argument("--publisher", choices=("python", "ffmpeg"), default="python",
                    help="python stamps frames (latency); ffmpeg -re -stream_loop -1 -c copy measures no latency")
    ap.add_argument("--profile", metavar="OUT", help="py-spy our server during the window of each cell (.svg, or .txt for raw)")
    ap.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second")
    ap.add_argument("--out", default=None, help="results basename (default bench/results/<stamp>)")
    opts = ap.parse_args()
    if opts.quick:
        servers = opts.servers or "srs-twisted"
        ns = opts.ns or "300"
        opts.repeat = opts.repeat or 1
        opts.window = opts.window or 5.0
        opts.settle = opts.settle if opts.settle is not None else 1.0
    else:
        servers = opts.servers or DEFAULT_SERVERS
        ns = opts.ns or "10,100,300,1000"
        opts.repeat = opts.repeat or 2
        opts.window = opts.window or 20.0
        opts.settle = opts.settle if opts.settle is not None else 3.0
    opts.cell_timeout = 600
    server_list = [SERVERS[s.strip()] for s in servers.split(",") if s.strip()]
    protos = [p.strip() for p in opts.protos.split(",") if p.strip()]
    n_list = [int(x) for x in ns.split(",")]
    clip = make_clip()
    os.makedirs(RESULTS, exist_ok=True)
    base = opts.out or os.path.join(RESULTS, time.strftime("%Y%m%d-%H%M%S") + ("-quick" if opts.quick else ""))
    meta = {"machine": machine(), "versions": versions(), "argv": sys.argv[1:], "clip": os.path.basename(clip),
            "clip_bitrate_kbit": round(os.path.getsize(clip) * 8 / 20.0 / 1000)}
    print(json.dumps(meta), flush=True)
    cells = []
    with open(base + ".jsonl", "w") as out:
        out.write(json.dumps({"meta": meta}) + "\n")
        try:
            for rep in range(1, opts.repeat + 1):
                for cls in server_list:
                    for proto in protos:
                        if proto not in cls.protos:
                            continue
                        for n in n_list:
                            prof = None
                            if opts.profile and issubclass(cls, Ours):
                                prof = opts.profile
                            c = run_cell(cls, proto, n, opts, clip, rep, prof)
                            cells.append(c)
                            out.write(json.dumps(c) + "\n")
                            out.flush()
                            print(line_summary(c), flush=True)
        except KeyboardInterrupt:
            print("interrupted: stopping children", file=sys.stderr)
        finally:
            stop_all()
    md = (f"Players read {'on every readiness event' if not opts.read_interval else f'every {opts.read_interval:g} ms'}"
          f" (--read-interval {opts.read_interval:g}).\n\n" + table(cells))
    tg = targets(cells, max(n_list)) if cells else ""
    with open(base + ".md", "w") as f:
        f.write(md + "\n" + tg)
    print()
    print(md)
    print(tg)
    print(f"results: {base}.jsonl {base}.md")


if __name__ == "__main__":
    main()
