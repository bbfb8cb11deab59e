"""The circuit breaker in the real server: while its CPU reading is critical, new
RTMP and HTTP-FLV players are refused (RTMP: play fails; HTTP: 503) and logged, the
player already connected keeps getting the stream, and players are welcome again once
the reading falls.  The reading comes from a file the test writes (the server's
ProcStats is patched at start-up): the test decides the load, not the busy machine."""

from __future__ import annotations

import os
import subprocess
import tempfile
import urllib.error
import urllib.request

from twisted.trial import unittest

from . import harness as h

PATCH = """
import os
from srs_twisted.http import procstats

_real = procstats.ProcStats.self_stat

def self_stat(self):
    r = dict(_real(self))
    try:
        with open(os.environ["SRS_TEST_CPU_FILE"]) as f:
            r["percent"] = float(f.read() or 0)
    except (OSError, ValueError):
        pass
    return r

procstats.ProcStats.self_stat = self_stat
"""


class BreakerTests(unittest.TestCase):
    def setUp(self):
        self.http_port = h.free_port()
        self.cpu = os.path.join(tempfile.mkdtemp(prefix="srs-cpu-"), "cpu")
        self.set_cpu(5)
        self.server = h.Server(
            f"http_server {{ enabled on; listen 127.0.0.1:{self.http_port}; }}\n"
            "vhost __defaultVhost__ { http_remux { enabled on; mount [vhost]/[app]/[stream].flv; } }",
            extra_env={"SRS_CIRCUIT_BREAKER_ENABLED": "on", "SRS_TEST_CPU_FILE": self.cpu},
            sitecustomize=PATCH)
        self.addCleanup(self.server.stop)
        self.pub = h.publish(self.server.url(), h.clip("h264-aac", 6), loop=True)
        self.addCleanup(h.stop_process, self.pub)
        self.flv = f"http://127.0.0.1:{self.http_port}/live/livestream.flv"

    def set_cpu(self, percent: float) -> None:
        with open(self.cpu + ".tmp", "w") as f:
            f.write(str(percent / 100))  # the API's unit: a fraction of one core
        os.replace(self.cpu + ".tmp", self.cpu)

    def flv_status(self) -> int:
        try:
            with urllib.request.urlopen(self.flv, timeout=h.WAIT) as r:
                r.read(1000)
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def test_new_players_refused_while_critical_the_connected_one_keeps_playing(self):
        h.wait_http_stream(self.flv)
        out = os.path.join(self.server.dir, "early.flv")
        early = h.start_player(self.server.url(), 14, out)
        self.addCleanup(h.stop_process, early)
        h.wait_growing(out, 20_000)

        self.set_cpu(97)
        self.server.wait_log(r"CircuitBreaker: cpu=97\.00%, level normal -> critical")
        self.assertEqual(self.flv_status(), 503)
        refused = subprocess.run([h.ffprobe(), "-v", "error", "-rw_timeout", "15000000", self.server.url()],
                                 capture_output=True, timeout=60)
        self.assertNotEqual(refused.returncode, 0)
        self.server.wait_log(r"flv-play .*livestream from 127\.0\.0\.1 refused: circuit breaker: cpu 97% is above "
                             r"critical_threshold 95%")
        self.server.wait_log(r"rtmp-play .*refused: circuit breaker")
        size = h.file_size(out)
        h.wait_growing(out, size + 20_000)  # the connected player still gets the stream

        self.set_cpu(20)
        self.server.wait_log(r"level high -> normal")
        self.assertEqual(self.flv_status(), 200)
        info = h.probe(self.server.url())
        h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        self.assertEqual(early.wait(60), 0)
        h.assert_streams(h.probe(out), [("video", "h264"), ("audio", "aac")])
