"""bench/latency_cli.py, the command-line twin of /players/latency.html: its
clock pattern reads back exactly from the frames it draws, and through a
real encode (x264), the server and a real player (FFmpeg over RTMP and
HTTP-FLV) it measures a finite latency for every frame read."""

from __future__ import annotations

import importlib.util
import os
import tempfile
import threading

from twisted.trial import unittest

from . import harness as h

_SPEC = importlib.util.spec_from_file_location(
    "latency_cli", os.path.join(h.ROOT, "bench", "latency_cli.py"))
latency_cli = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(latency_cli)


class PatternTests(unittest.TestCase):
    def test_every_value_reads_back(self):
        for t in (0, 1, 12345, latency_cli.MOD - 1, latency_cli.MOD + 77, 1_733_000_000_123):
            frame = latency_cli.pattern_frame(t)
            self.assertEqual(len(frame), latency_cli.W * latency_cli.H)
            self.assertEqual(latency_cli.read_pattern(frame), t % latency_cli.MOD)

    def test_a_frame_without_the_pattern_or_with_a_bad_parity_reads_none(self):
        self.assertIsNone(latency_cli.read_pattern(bytes([64]) * (latency_cli.W * latency_cli.H)))
        frame = bytearray(latency_cli.pattern_frame(5))
        # flip the last bit's block (value 5 -> 4): parity no longer matches
        x0 = latency_cli.X0 + (latency_cli.BITS + 1) * latency_cli.BLOCK
        for y in range(latency_cli.BAND):
            start = y * latency_cli.W + x0
            frame[start:start + latency_cli.BLOCK] = bytes(latency_cli.BLOCK)
        self.assertIsNone(latency_cli.read_pattern(bytes(frame)))

    def test_summary(self):
        self.assertEqual(latency_cli.summary([]), {"p50": None, "p95": None, "n": 0})
        self.assertEqual(latency_cli.summary(list(range(1, 101))), {"p50": 50, "p95": 96, "n": 100})


class CommandLineTests(unittest.TestCase):
    timeout = 180

    def test_rtmp_and_http_flv_latency(self):
        ffmpeg = h.ffmpeg()
        http = h.free_port()
        server = h.Server(
            f"http_server {{ enabled on; listen 127.0.0.1:{http}; dir {tempfile.mkdtemp(prefix='srs-lat-')}; }}\n"
            "vhost __defaultVhost__ { http_remux { enabled on; mount [vhost]/[app]/[stream].flv; } }\n")
        self.addCleanup(server.stop)
        h.wait_port(http)
        results = {}
        for protocol in ("rtmp", "flv"):
            stop = threading.Event()
            pub = latency_cli.publisher(ffmpeg, f"rtmp://127.0.0.1:{server.port}/live/lat{protocol}", "flv", stop)
            self.addCleanup(h.stop_process, pub)
            self.addCleanup(stop.set)
            play = (f"rtmp://127.0.0.1:{server.port}/live/lat{protocol}" if protocol == "rtmp"
                    else f"http://127.0.0.1:{http}/live/lat{protocol}.flv")
            if protocol == "flv":
                h.wait_http_stream(play)
            else:
                server.wait_log(f"publish __defaultVhost__/live/lat{protocol}", timeout=60)
            results[protocol] = latency_cli.summary(latency_cli.measure(ffmpeg, play, 8.0))
            stop.set()
            h.stop_process(pub)
        for protocol, r in results.items():
            self.assertGreater(r["n"], 30, results)  # 8 s at 30 fps: most frames read
            self.assertLess(r["p50"], 3000, results)  # loopback: well under the 1 s target when idle
