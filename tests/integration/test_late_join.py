"""A player that joins a stream late starts near timestamp 0 (issue 9 item 14).

VLC's recording jumped by the stream's age and ffprobe reported ``start: 196``
for a player that joined a 196 s old stream: metadata came at 0 and media at
the stream's age.  With ``time_jitter full`` (the default) SRS starts every
player near 0, and so do we, over RTMP, HTTP-FLV and HTTP-TS.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

from twisted.trial import unittest

from . import harness as h

AGE_S = 6.0  # how old the stream is when the players join


class LateJoinTests(unittest.TestCase):
    timeout = 180

    def setUp(self):
        h.ffmpeg(), h.ffprobe()
        self.tmp = tempfile.mkdtemp(prefix="srs-late-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def start_server(self, ext: str) -> None:
        """The server with one HTTP stream mount (a mount serves its own
        extension only, as in SRS)."""
        self.http_port = h.free_port()
        conf = f"""
http_server {{ enabled on; listen 127.0.0.1:{self.http_port}; }}
vhost __defaultVhost__ {{
    http_remux {{ enabled on; mount [vhost]/[app]/[stream].{ext}; }}
}}
"""
        self.server = h.Server(conf)
        self.addCleanup(self.server.stop)
        h.wait_port(self.http_port)

    def publish_until_age(self, stream: str, seconds: float) -> None:
        """Publish in real time and wait until FFmpeg reports ``seconds`` of
        media sent (its -progress output), with a generous deadline."""
        progress = os.path.join(self.tmp, f"{stream}.progress")
        cmd = [
            h.ffmpeg(), "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
            "-i", h.clip("h264-aac"), "-c", "copy", "-progress", progress, "-f", "flv", self.server.url(stream),
        ]
        pub = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(h.stop_process, pub)
        deadline = time.monotonic() + 60 + seconds
        sent = 0.0
        while time.monotonic() < deadline:
            if pub.poll() is not None:
                raise AssertionError(f"publisher exited: {pub.stderr.read().decode(errors='replace')[-500:]}")
            sent = _progress_seconds(progress)
            if sent >= seconds:
                return
            time.sleep(0.2)
        raise AssertionError(f"publisher sent only {sent:.1f}s of media in time")

    def start_time(self, url: str) -> float:
        """ffprobe's start_time of a live URL, retried while the stream is
        not there yet (bounded)."""
        deadline = time.monotonic() + 60
        last = None
        while time.monotonic() < deadline:
            try:
                info = h.probe(url, timeout=30)
            except (AssertionError, subprocess.TimeoutExpired) as e:
                last = e
                time.sleep(0.5)
                continue
            h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
            self.assertNotIn("subtitle", [s["codec_type"] for s in info["streams"]])
            return float(info["format"]["start_time"])
        raise AssertionError(f"ffprobe never read {url}: {last}")

    def assert_start_near_0(self, starts: dict) -> None:
        # Before the fix each was the stream's age (>= 5 s here: the GOP cache
        # starts at the last 1 s keyframe).
        for name, start in starts.items():
            self.assertTrue(0.0 <= start < 1.0, f"{name} starts at {start}s: {starts}")

    def test_rtmp_and_http_flv_players_of_an_old_stream_start_near_0(self):
        self.start_server("flv")
        self.publish_until_age("late", AGE_S)
        self.assert_start_near_0({
            "rtmp": self.start_time(self.server.url("late")),
            "flv": self.start_time(f"http://127.0.0.1:{self.http_port}/live/late.flv"),
        })

    def test_http_ts_player_of_an_old_stream_starts_near_0(self):
        self.start_server("ts")
        self.publish_until_age("late", AGE_S)
        self.assert_start_near_0({"ts": self.start_time(f"http://127.0.0.1:{self.http_port}/live/late.ts")})


def _progress_seconds(path: str) -> float:
    """The newest ``out_time_us`` in an FFmpeg -progress file, in seconds."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return 0.0
    for line in reversed(lines):
        if line.startswith("out_time_us="):
            try:
                return int(line.split("=", 1)[1]) / 1e6
            except ValueError:
                return 0.0
    return 0.0
