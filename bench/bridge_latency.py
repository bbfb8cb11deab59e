#!/usr/bin/env python3
"""Server-added latency through the RTMP <-> WebRTC bridge (issue 11 section 4).

Stamped publishers and players on one machine, one clock (CLOCK_MONOTONIC):
every video frame carries an SEI NAL (user data unregistered) with its send
time, put there by the publisher just before the frame leaves it; a player
takes its receive time minus the stamp.  The server passes SEI through
(``keep_avc_nalu_sei on``, the default), so the figure is what the server
adds (plus loopback, a few microseconds), whatever it does to timestamps.

- ``rtmp2rtc``: ``bench/publisher.py`` publishes the baseline clip over RTMP
  (SEI stamps), ``bench/rtc_load.py`` plays it over WHEP (DTLS, SRTP) with
  ``rtmp_to_rtc on`` (audio transcoded AAC -> Opus, video as it came) and reads
  the stamps of the decrypted video; ``bench/loadclient.py`` plays the same
  stream over RTMP beside it, for the RTMP -> RTMP figure of the same run.
- ``rtc2rtmp``: ``bench/rtc_publish.py`` publishes over WHIP (H.264 with SEI
  stamps, SRTP), ``rtc_to_rtmp on`` makes it a live stream (jitter buffer,
  frames, Opus -> AAC), ``bench/loadclient.py`` plays it over RTMP and reads the
  stamps of the FLV frames.  RTMP players get merged writes (``mw_latency``
  350 ms, ``mw_msgs`` 8, SRS's defaults) unless a WebRTC player of the stream
  is on (then every packet goes at once, see docs/webrtc.md);
  ``rtc2rtmp-min`` is the same with ``min_latency on`` (no merged writes), which
  leaves what the bridge itself adds.

The whole run happens in a private network namespace (``unshare -n``, only
``lo`` up) unless ``--no-netns``.  Prints a Markdown table (p50, p95, frames
read, per direction) and a JSON line.

    python bench/bridge_latency.py --window 20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench import ROOT, add_netns_options, enter_netns, free_port, make_clip, percentile, spawn, stop, tail  # noqa: E402
from rtc_bench import wait_line  # noqa: E402

STREAM = "bench"


class Server:
    def __init__(self, work: str, rtc: str, vhost: str = "") -> None:
        self.dir = work
        self.rtmp, self.api, self.udp = free_port(), free_port(), free_port()
        conf = os.path.join(work, "srs.conf")
        with open(conf, "w") as f:
            f.write(f"listen 127.0.0.1:{self.rtmp};\npid {work}/srs.pid;\n"
                    f"srs_log_tank file;\nsrs_log_file {work}/srs.log;\n"
                    f"http_api {{ enabled on; listen 127.0.0.1:{self.api}; }}\n"
                    f"rtc_server {{ enabled on; listen 127.0.0.1:{self.udp}; candidate 127.0.0.1; }}\n"
                    f"vhost __defaultVhost__ {{ {vhost} rtc {{ enabled on; {rtc} }} }}\n")
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = spawn([sys.executable, "-m", "srs_twisted.cli", "-c", conf], os.path.join(work, "console.log"),
                          cwd=work, env=env)
        self.wait_started()

    def wait_started(self, deadline: float = 30.0) -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if "srs-twisted started" in tail(os.path.join(self.dir, "srs.log"), 20000):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("the server did not start:\n" + self.log_tail())

    def url(self, kind: str) -> str:
        if kind == "rtmp":
            return f"rtmp://127.0.0.1:{self.rtmp}/live/{STREAM}"
        return f"http://127.0.0.1:{self.api}/rtc/v1/{kind}/?app=live&stream={STREAM}"

    def log_tail(self) -> str:
        return tail(os.path.join(self.dir, "srs.log")) + tail(os.path.join(self.dir, "console.log"))


def rtmp_players(server: Server, args, work: str, name: str):
    """bench/loadclient.py: one RTMP player that parses every frame for the stamp."""
    out = open(os.path.join(work, name + ".out"), "wb")
    return spawn([sys.executable, os.path.join(HERE, "loadclient.py"), server.url("rtmp"), "-n", "1",
                  "--samples", "1", "--settle", str(args.warmup), "--window", str(args.window)],
                 stdout=out, stderr=open(os.path.join(work, name + ".err"), "wb"))


def rtmp_result(work: str, name: str, proc, budget: float) -> list:
    proc.wait(budget)
    with open(os.path.join(work, name + ".out")) as f:
        lines = [line for line in f if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"{name} gave no result:\n{tail(os.path.join(work, name + '.err'))}")
    return [x * 1000.0 for x in json.loads(lines[-1][7:])["latency"]]


def rtmp2rtc(args, work: str) -> dict:
    server = Server(work, "rtmp_to_rtc on;")
    pub = rtmp = whep = None
    try:
        clip = make_clip(baseline=True)
        budget = args.warmup + args.window + 60
        pub = spawn([sys.executable, os.path.join(HERE, "publisher.py"), clip, server.url("rtmp"),
                     "--log", os.path.join(work, "publisher.log"), "--duration", str(budget + 10)],
                    os.path.join(work, "publisher.err"))
        time.sleep(2.5)  # a GOP in the cache
        rtmp = rtmp_players(server, args, work, "rtmp")
        load_out = os.path.join(work, "whep.json")
        with open(load_out, "wb") as out:
            whep = spawn([sys.executable, os.path.join(HERE, "rtc_load.py"), server.url("whep"), "--players", "1",
                          "--latency-players", "1", "--decrypt-every", "1", "--warmup", str(args.warmup),
                          "--window", str(args.window), "--server-pid", str(server.proc.pid)],
                         stdout=out, stderr=open(os.path.join(work, "whep.err"), "wb"))
            whep.wait(budget)
        with open(load_out) as f:
            text = f.read().strip()
        if not text:
            raise RuntimeError(f"rtc_load gave nothing:\n{tail(os.path.join(work, 'whep.err'))}")
        webrtc = json.loads(text.splitlines()[-1])["latency_ms"]
        # (audio: the clip's AAC carries no stamp, so the Opus the bridge makes has none to read)
        return {"RTMP -> WebRTC (video)": webrtc["video"],
                "RTMP -> RTMP (same run)": rtmp_result(work, "rtmp", rtmp, budget)}
    finally:
        for p in (whep, rtmp, pub):
            stop(p)
        stop(server.proc)


def rtc2rtmp(args, work: str, min_latency: bool = False) -> dict:
    server = Server(work, "rtc_to_rtmp on;", "min_latency on;" if min_latency else "")
    pub = rtmp = None
    try:
        budget = args.warmup + args.window + 60
        pub_log = os.path.join(work, "whip.log")
        pub = spawn([sys.executable, os.path.join(HERE, "rtc_publish.py"), server.url("whip"), "--duration",
                     str(budget + 10)], pub_log)
        wait_line(pub_log, "UP", pub, 30)
        time.sleep(2.5)
        rtmp = rtmp_players(server, args, work, "rtmp")
        name = "WebRTC -> RTMP (video" + (", min_latency on)" if min_latency else ")")
        return {name: rtmp_result(work, "rtmp", rtmp, budget)}
    finally:
        for p in (rtmp, pub):
            stop(p)
        stop(server.proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured per direction")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--directions", default="rtmp2rtc,rtc2rtmp,rtc2rtmp-min")
    parser.add_argument("--keep", action="store_true", help="keep the work directories (logs)")
    add_netns_options(parser)
    args = parser.parse_args()
    enter_netns(args)

    results = {}
    for direction in args.directions.split(","):
        work = tempfile.mkdtemp(prefix=f"bridge-lat-{direction}-")
        try:
            run = {"rtmp2rtc": rtmp2rtc, "rtc2rtmp": rtc2rtmp,
                   "rtc2rtmp-min": lambda a, w: rtc2rtmp(a, w, min_latency=True)}[direction]
            results.update(run(args, work))
        except Exception as e:  # noqa: BLE001 - one failed direction is reported, the run goes on
            results[direction] = f"error: {e}"
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    print("| path | p50 ms | p95 ms | frames read |\n|---|---:|---:|---:|")
    summary = {}
    for name, values in results.items():
        if isinstance(values, str):
            print(f"| {name} | {values.splitlines()[0][:100]} | | |")
            summary[name] = values
            continue
        p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
        summary[name] = {"p50": p50, "p95": p95, "n": len(values)}
        cells = ["-" if v is None else f"{v:.1f}" for v in (p50, p95)]
        print(f"| {name} | {cells[0]} | {cells[1]} | {len(values)} |")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
