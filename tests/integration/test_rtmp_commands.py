"""RTMP command handling against the real server: commands pipelined behind
connect, and the play command's duration (rtmpdump --stop)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from srs_twisted.codec import amf0
from srs_twisted.rtmp import messages as m
from srs_twisted.rtmp.chunk import encode_message

from . import harness as h
from .test_rtmp_robustness import (
    BlockingRtmp,
    _ServerTest,
    expect_closed,
    handshaken,
    headers_and_keyframe,
    local_port,
    read_until,
)

CONNECT = {"app": "live", "tcUrl": "rtmp://127.0.0.1/live", "flashVer": "FMLE/3.0", "objectEncoding": 0.0}


def cmd(name: str, tid: float, *args, stream_id: int = 0, obj=None) -> bytes:
    return m.command(3, stream_id, name, tid, obj, *args)


class PipelinedCommandTests(_ServerTest):
    def test_fmle_publish_pipelined_behind_connect_is_answered(self):
        sock = handshaken(self.server.port)
        self.addCleanup(sock.close)
        # connect and the whole FMLE publish flow in one write
        sock.sendall(
            cmd("connect", 1.0, obj=CONNECT)
            + cmd("releaseStream", 2.0, "pipe")
            + cmd("FCPublish", 3.0, "pipe")
            + cmd("createStream", 4.0)
            + cmd("publish", 5.0, "pipe", "live", stream_id=1)
        )
        got = read_until(sock, b"NetStream.Publish.Start", 10)
        self.assertIn(b"NetStream.Publish.Start", got, self.server.log()[-2000:])
        self.assertNotIn("before the connection was accepted", self.server.log())
        # and it really publishes: a player gets the keyframe
        player = BlockingRtmp(self.server.port, "pipe", "play").start(10)
        self.addCleanup(player.close, False)
        sock.sendall(b"".join(encode_message(6, p.kind, 1, p.dts, p.payload, 128) for p in headers_and_keyframe(0)))
        self.assertTrue(player.pump(lambda: player.video_count >= 1), player.statuses)

    def test_too_many_commands_before_the_connect_answer_close_with_a_log_line(self):
        sock = handshaken(self.server.port)
        port = local_port(sock)
        sock.sendall(cmd("connect", 1.0, obj=CONNECT) + cmd("getStreamLength", 2.0, "s") * 65)
        expect_closed(sock)
        self.server.error_line_for(port, r"ProtocolViolation: more than 64 commands .* before the connect was answered")


class PlayDurationTests(_ServerTest):
    def test_rtmpdump_stop_ends_the_play_after_that_much_media(self):
        rtmpdump = h.need("rtmpdump", shutil.which("rtmpdump"))
        pub = h.publish(self.server.url("dur"), h.clip(), loop=True)
        self.addCleanup(h.stop_process, pub)
        self.server.wait_log(r"fmle-publish __defaultVhost__/live/dur", 60)
        out = os.path.join(self.tmp, "dur.flv")
        # --stop 6: play(name, -1000, 6000) -- 6 s of a live stream, then stop
        start = time.monotonic()
        try:
            result = subprocess.run([rtmpdump, "-r", self.server.url("dur"), "--live", "--stop", "6",
                                     "--timeout", "20", "-o", out], capture_output=True, timeout=60)
        except subprocess.TimeoutExpired:
            self.fail(f"rtmpdump --stop 6 still played after 60 s; log tail:\n{self.server.log()[-1500:]}")
        elapsed = time.monotonic() - start
        err = result.stderr.decode(errors="replace")
        self.assertEqual(result.returncode, 0, err[-1500:])
        self.assertIn("Download complete", err)
        self.assertNotIn("ERROR", err)  # ended by NetStream.Play.Stop, not a dropped socket
        self.assertLess(elapsed, 30)
        line = self.server.wait_log(r"RTMP play duration reached: time \d+ms up 6000ms")
        self.assertGreaterEqual(int(line.split("time ")[1].split("ms")[0]), 6000)
        info = h.probe(out)
        self.assertEqual(sorted(st["codec_type"] for st in info["streams"]), ["audio", "video"])
        self.assertGreaterEqual(float(info["format"]["duration"]), 5.8)
        self.assertLessEqual(float(info["format"]["duration"]), 6.5)
        self.assertIsNone(pub.poll(), "the publisher stopped with the player")
