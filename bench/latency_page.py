#!/usr/bin/env python3
"""Glass-to-glass latency in Chromium with /players/latency.html, from the command line.

Starts the server (this checkout) with what the meter needs (WebRTC with
``rtc_to_rtmp on`` and ``pli_for_rtmp 1``, HTTP-FLV, LL-HLS with 2 s segments
and 0.5 s parts, DASH with 2 s fragments: the settings of conf/latency.conf) in a
private network namespace (Chromium refuses 127.0.0.1 ICE candidates: the
namespace's 10.99.0.1, see tests/integration/netns.py), opens
``latency.html?autostart=1&protocols=...`` in headless Debian Chromium
(Playwright), waits until every protocol reads the pattern, measures for
``--seconds`` and prints ``window.srsLatency`` (ms: the page's p50/p95 over every
frame it read, the last 3000 per protocol) as a table and a JSON line.

    python bench/latency_page.py --protocols webrtc --seconds 30     # WHIP -> WHEP alone
    python bench/latency_page.py --protocols webrtc,flv,llhls,hls,dash
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.integration import harness as h  # noqa: E402
from tests.integration import netns  # noqa: E402
from tests.integration.test_console import Browser  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--protocols", default="webrtc,flv,llhls,hls,dash")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured, after every protocol reads")
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    parser.add_argument("--screenshot", help="a PNG of the page at the end")
    args = parser.parse_args()
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]

    netns.enter()
    root = tempfile.mkdtemp(prefix="srs-latency-page-")
    http, api = h.free_port(), h.free_port()
    server = h.Server(
        f"rtc_server {{ enabled on; listen {netns.ADDRESS}:{h.free_port()}; candidate {netns.ADDRESS}; }}\n"
        f"http_api {{ enabled on; listen 127.0.0.1:{api}; }}\n"
        f"http_server {{ enabled on; listen 127.0.0.1:{http}; dir {root}; }}\n"
        "vhost __defaultVhost__ {\n"
        "  rtc { enabled on; rtmp_to_rtc on; rtc_to_rtmp on; pli_for_rtmp 1; }\n"
        "  http_remux { enabled on; mount [vhost]/[app]/[stream].flv; }\n"
        f"  hls {{ enabled on; hls_path {root}; hls_fragment 2; hls_window 10; hls_low_latency on;"
        " hls_part_duration 0.5; }\n"
        f"  dash {{ enabled on; dash_path {root}; dash_fragment 2; dash_update_period 2; dash_window_size 5; }}\n"
        "}\n")
    browser = None
    try:
        h.wait_port(http)
        browser = Browser()
        page = browser.page(f"http://127.0.0.1:{http}/players/latency.html?autostart=1&stream=live/lat"
                            f"&protocols={','.join(protocols)}")
        ready = " && ".join(f"(window.srsLatency.{p} || {{}}).n > 0" for p in protocols)
        browser.wait(page, ready, timeout=args.ready_timeout,
                     message=lambda: page.evaluate("JSON.stringify([window.srsLatency, window.srsLatencyState])"))
        start = page.evaluate("JSON.parse(JSON.stringify(window.srsLatency))")
        time.sleep(args.seconds)
        figures = page.evaluate("JSON.parse(JSON.stringify(window.srsLatency))")
        if args.screenshot:
            page.screenshot(path=args.screenshot, full_page=True)
        print("| protocol | p50 ms | p95 ms | frames read (in the window) |\n|---|---:|---:|---:|")
        for p in protocols:
            f = figures[p]
            print(f"| {p} | {f['p50']} | {f['p95']} | {f['n']} ({f['n'] - start[p]['n']}) |")
        print(json.dumps({"protocols": figures, "load": os.getloadavg()[0], "errors": browser.errors[:5]}))
    finally:
        if browser is not None:
            browser.close()
        server.stop(check=False)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
