"""The stream casters with the real server and real clients, inside the tests' private network
namespace (tests/integration/netns.py):

* ``mpegts_over_udp``: ``ffmpeg -re ... -f mpegts udp://127.0.0.1:PORT`` plays over RTMP and HLS,
  fires on_publish/on_unpublish, ends after the idle timeout; through a relay that drops 2 % and
  reorders 3 % of the datagrams it still plays and records; garbage datagrams are survived;
* ``flv``: ``curl -T clip.flv`` (Content-Length) and ``ffmpeg ... -f flv - | curl -T -``
  (chunked) play over RTMP and HLS for the duration of the request; garbage bodies get a 400.
"""

from __future__ import annotations

import http.server
import json
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request

from twisted.trial import unittest

from tests.integration import harness as h
from tests.integration import netns


def curl() -> str:
    return h.need("curl (apt-get install curl)", shutil.which("curl"))


class _Hooks(http.server.ThreadingHTTPServer):
    """A hook receiver in a thread: every POSTed JSON body, answered ``0`` (allow)."""

    daemon_threads = True

    def __init__(self):
        self.bodies: list[dict] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(handler):
                length = int(handler.headers.get("Content-Length") or 0)
                try:
                    self.bodies.append(json.loads(handler.rfile.read(length) or b"{}"))
                except ValueError:
                    pass
                handler.send_response(200)
                handler.send_header("Content-Length", "1")
                handler.end_headers()
                handler.wfile.write(b"0")

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/v1/hooks"

    def actions(self, stream: str) -> list[str]:
        return [b.get("action") for b in list(self.bodies) if b.get("stream") == stream]

    def close(self):
        self.shutdown()
        self.server_close()


class LossyRelay:
    """A UDP relay in a thread: what arrives on ``port`` goes to ``target``, except that a
    ``loss`` share of the datagrams is dropped and a ``reorder`` share is held back and sent
    after the next one.  Seeded, so a run is repeatable; stops with :meth:`close`."""

    def __init__(self, target: tuple[str, int], loss: float, reorder: float, seed: int = 1):
        self.rng = random.Random(seed)
        self.target, self.loss, self.reorder = target, loss, reorder
        self.counts = {"in": 0, "dropped": 0, "reordered": 0}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        held = None
        while self.running:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            self.counts["in"] += 1
            r = self.rng.random()
            if r < self.loss:
                self.counts["dropped"] += 1
                continue
            if held is None and r < self.loss + self.reorder:
                held = data
                self.counts["reordered"] += 1
                continue
            out.sendto(data, self.target)
            if held is not None:
                out.sendto(held, self.target)
                held = None
        out.close()

    def close(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()


class CasterCase(unittest.TestCase):
    timeout = 400

    def setUp(self):
        netns.enter()
        h.ffmpeg(), h.ffprobe()
        self.root = tempfile.mkdtemp(prefix="srs-casters-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.hooks = _Hooks()
        self.addCleanup(self.hooks.close)
        self.udp, self.flv, self.http = h.free_port(), h.free_port(), h.free_port()
        hook = self.hooks.url
        conf = f"""
stream_caster {{ enabled on; caster mpegts_over_udp; listen {self.udp}; output rtmp://127.0.0.1/live/udpin; }}
stream_caster {{ enabled on; caster flv; listen {self.flv}; output rtmp://127.0.0.1/[app]/[stream]; }}
http_server {{ enabled on; listen 127.0.0.1:{self.http}; dir {self.root}; }}
vhost __defaultVhost__ {{
    hls {{ enabled on; hls_path {self.root}; hls_fragment 2; hls_window 10; }}
    http_hooks {{ enabled on; on_publish {hook}; on_unpublish {hook}; }}
}}
"""
        self.server = h.Server(conf)
        self.addCleanup(self.server.stop)
        self.procs: list[subprocess.Popen] = []
        self.addCleanup(self._stop_procs)  # before the server stops
        self.server.wait_log(r"stream_caster flv listen at http://")
        self.server.wait_log(r"stream_caster mpegts_over_udp listen at udp://")

    def _stop_procs(self):
        for proc in self.procs:
            h.stop_process(proc)

    def assert_plays(self, stream: str, app: str = "live"):
        """ffprobe finds H.264 320x240 + AAC over RTMP, then over HLS."""
        info = h.probe(self.server.url(stream, app))
        streams = h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (320, 240))
        m3u8 = f"http://127.0.0.1:{self.http}/{app}/{stream}.m3u8"
        h.wait_for(lambda: os.path.exists(os.path.join(self.root, app, f"{stream}.m3u8")), 60,
                   message=f"no playlist for {app}/{stream}")
        info = h.probe(m3u8)
        streams = h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (320, 240))

    def post_status(self, path: str, body: bytes) -> int:
        req = urllib.request.Request(f"http://127.0.0.1:{self.flv}{path}", data=body, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=h.WAIT) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except (ConnectionError, urllib.error.URLError):
            return 0


class MpegtsOverUdp(CasterCase):
    def ffmpeg_udp(self, loop=True, port=None) -> subprocess.Popen:
        cmd = [h.ffmpeg(), "-hide_banner", "-loglevel", "error", "-re"]
        cmd += ["-stream_loop", "-1"] if loop else []
        cmd += ["-i", h.clip("h264-aac"), "-c", "copy", "-f", "mpegts",
                f"udp://127.0.0.1:{port or self.udp}?pkt_size=1316"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(proc)
        return proc

    def test_ffmpeg_udp_plays_over_rtmp_and_hls_with_hooks(self):
        proc = self.ffmpeg_udp()
        self.assert_plays("udpin")
        h.wait_for(lambda: "on_publish" in self.hooks.actions("udpin"), 30, message="no on_publish hook")
        (body,) = [b for b in self.hooks.bodies if b.get("action") == "on_publish"]
        self.assertEqual((body["app"], body["stream"], body["tcUrl"], body["ip"]),
                         ("live", "udpin", "rtmp://127.0.0.1/live", "127.0.0.1"))
        h.stop_process(proc)
        # The publish ends after publish.normal_timeout (5 s) without a datagram.
        self.server.wait_log(r"mpegts_over_udp: publish ended \(no datagram for")
        h.wait_for(lambda: "on_unpublish" in self.hooks.actions("udpin"), 30, message="no on_unpublish hook")
        # A new sender starts a new publish.
        self.ffmpeg_udp()
        h.probe(self.server.url("udpin"))

    def test_lost_and_reordered_datagrams_cost_frames_not_the_stream(self):
        relay = LossyRelay(("127.0.0.1", self.udp), loss=0.02, reorder=0.03)
        self.addCleanup(relay.close)
        proc = self.ffmpeg_udp(port=relay.port)
        info = h.probe(self.server.url("udpin"))
        streams = h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (320, 240))
        # A few seconds of play through the damage: FFmpeg records it and it decodes.
        out = os.path.join(self.root, "lossy.flv")
        result = h.record(self.server.url("udpin"), 6, out)
        self.assertEqual(result.returncode, 0, result.stderr[-500:])
        self.assertGreater(float(h.probe(out)["format"]["duration"]), 4.0)
        h.stop_process(proc)
        self.assertGreater(relay.counts["dropped"], 0)
        self.assertGreater(relay.counts["reordered"], 0)
        self.server.wait_log(r"mpegts_over_udp: publish ended \(no datagram for .*ts_errors=[1-9]")

    def test_garbage_datagrams_then_a_real_stream(self):
        rng = random.Random(13)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(300):
                size = rng.choice((1, 188, 1316, 1500, 9000))
                data = bytes(rng.randrange(256) for _ in range(size))
                if i % 3 == 0:
                    data = b"\x47" + data[1:]  # looks like a TS packet start
                sock.sendto(data, ("127.0.0.1", self.udp))
        self.server.wait_log(r"mpegts_over_udp: 127\.0\.0\.1:\d+ -> publish")
        self.server.wait_log(r"mpegts_over_udp: publish ended \(no datagram for .*ts_errors=[1-9]", timeout=60)
        self.ffmpeg_udp()
        h.probe(self.server.url("udpin"))


class FlvPost(CasterCase):
    def test_curl_upload_with_content_length(self):
        clip = h.clip("h264-aac", 20)
        # About 360 kbit/s of media sent at 40 KB/s: the request lasts ~ 20 s, like a live feed.
        proc = subprocess.Popen([curl(), "-sS", "--limit-rate", "40k", "-o", "/dev/null", "-w", "%{http_code}",
                                 "-T", clip, f"http://127.0.0.1:{self.flv}/live/curlin.flv"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(proc)
        self.assert_plays("curlin")
        out, err = proc.communicate(timeout=120)
        self.assertEqual(out, b"200", err)
        self.server.wait_log(r"flv caster: publish ended \(the request body ended\)")
        h.wait_for(lambda: "on_unpublish" in self.hooks.actions("curlin"), 30, message="no on_unpublish hook")

    def test_chunked_post_from_a_live_encoder(self):
        ffmpeg = subprocess.Popen([h.ffmpeg(), "-hide_banner", "-loglevel", "error", "-re", "-i", h.clip("h264-aac"),
                                   "-c", "copy", "-f", "flv", "-"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.procs.append(ffmpeg)
        # curl -T - sends its stdin with Transfer-Encoding: chunked.
        proc = subprocess.Popen([curl(), "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T", "-",
                                 f"http://127.0.0.1:{self.flv}/app1/chunked.flv"],
                                stdin=ffmpeg.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ffmpeg.stdout.close()
        self.procs.append(proc)
        self.assert_plays("chunked", "app1")
        out, err = proc.communicate(timeout=120)
        self.assertEqual(out, b"200", err)
        self.server.wait_log(r"POST /app1/chunked\.flv -> publish rtmp://127\.0\.0\.1/app1/chunked")

    def test_garbage_bodies_get_400(self):
        rng = random.Random(5)
        for i in range(20):
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20000)))
            self.assertEqual(self.post_status(f"/live/g{i}.flv", body), 400)
        # A valid header then garbage tags: the tag reader rejects it.
        self.assertEqual(self.post_status("/live/g.flv", b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00" + b"\x29" * 50), 400)
        self.assertEqual(self.post_status("/nostream.flv", b"FLV"), 400)
        with self.assertRaises(urllib.error.HTTPError) as ctx:
            urllib.request.urlopen(f"http://127.0.0.1:{self.flv}/live/x.flv", timeout=h.WAIT)
        self.assertEqual(ctx.exception.code, 405)
        self.server.wait_log(r"publish ended \(bad FLV body")
        # The caster still works afterwards.
        clip = h.clip("h264-aac")
        with open(clip, "rb") as f:
            self.assertEqual(self.post_status("/live/after.flv", f.read()), 200)



class CasterCodecs(CasterCase):
    def record_streams(self, stream: str, app: str = "live") -> list:
        """The streams of 3 s recorded over RTMP (HEVC is Enhanced RTMP: the modern FFmpeg records
        it into MPEG-TS, which the system's ffprobe reads whatever its version)."""
        out = os.path.join(self.root, f"{stream}.ts")
        result = h.record(self.server.url(stream, app), 3, out)
        self.assertEqual(result.returncode, 0, result.stderr[-500:])
        return h.av_streams(h.probe(out))

    def test_hevc_and_mp3_over_udp_and_post(self):
        for kind, expected in (("hevc-aac", [("video", "hevc"), ("audio", "aac")]),
                               ("h264-mp3", [("video", "h264"), ("audio", "mp3")])):
            clip = h.clip(kind)
            udp = subprocess.Popen([h.ffmpeg(), "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
                                    "-i", clip, "-c", "copy", "-f", "mpegts", f"udp://127.0.0.1:{self.udp}?pkt_size=1316"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append(udp)
            self.assertEqual(sorted(self.record_streams("udpin")), sorted(expected), kind)
            h.stop_process(udp)
            name = kind.replace("-", "")
            post = subprocess.Popen([curl(), "-sS", "--limit-rate", "40k", "-o", "/dev/null", "-T", clip,
                                     f"http://127.0.0.1:{self.flv}/live/{name}.flv"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append(post)
            self.assertEqual(sorted(self.record_streams(name)), sorted(expected), kind)
            h.stop_process(post)
            # The UDP publish ends (idle timeout) before the next clip is sent.
            h.wait_for(lambda: self.server.log().count("mpegts_over_udp: publish ended")
                       == len(re.findall(r"mpegts_over_udp: \S+ -> publish", self.server.log())), 30,
                       message="the UDP publish did not end")
