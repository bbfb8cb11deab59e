"""Every configuration file shipped in conf/, end to end (issue 9.12).

For each file: copy conf/ into a temp work dir with every ``listen`` moved to
a free loopback port (relative paths such as ./objs/nginx/html then land in
the temp dir), run the server on it, publish once with FFmpeg (one process,
one RTMP output per vhost that can take a publisher), then play with ffprobe
every output the file enables: RTMP on each vhost, its HTTP live mount
(FLV/TS/AAC/MP3), HLS and DASH, and check the codecs.  A file that enables
WebRTC is checked to answer a bad WHIP offer with SRS's error code.  ``srs -t`` alone
would not have caught a ``.flv`` mount that swallowed the HLS segments.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from twisted.trial import unittest

from srs_twisted.config import load
from srs_twisted.http.stream import FORMATS
from srs_twisted.url import DEFAULT_VHOST

from . import harness as h

CONF_DIR = os.path.join(h.ROOT, "conf")
# Files only meant to be included by another (checked through it).
FRAGMENTS = {"include.vhost.conf": "include.conf"}
CLIP_SECONDS = 12
READ_RATE = "4"  # publish at 4x real time: a 10 s HLS fragment is ready in about 3 s
DEADLINE = 60.0


def conf_files() -> list[str]:
    return sorted(n for n in os.listdir(CONF_DIR) if n.endswith(".conf"))


def relocate(text: str, ports: dict) -> str:
    """Every ``listen`` endpoint moved to 127.0.0.1 and a free port; one old
    port always maps to the same new one, so shared ports stay shared."""

    def endpoint(token: str) -> str:
        old = token.rpartition(":")[2] if ":" in token else token
        if old not in ports:
            taken = set(ports.values())
            new = h.free_port()
            while new in taken:
                new = h.free_port()
            ports[old] = new
        return f"127.0.0.1:{ports[old]}"

    def directive(m: re.Match) -> str:
        return m.group(1) + " ".join(endpoint(t) for t in m.group(2).split()) + ";"

    return re.sub(r"(?m)^(\s*listen\s+)([^;#\n]+);", directive, text)


def http_get(url: str, host: str | None, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # follows the hls_ctx 302
            return r.status, r.read(65536)
    except urllib.error.HTTPError as e:
        return e.code, b""
    except OSError:
        return 0, b""


class Output:
    def __init__(self, vhost: str, kind: str, url: str, host: str | None, expect: dict, ready=None):
        self.vhost, self.kind, self.url, self.host, self.expect, self.ready = vhost, kind, url, host, expect, ready

    def __repr__(self) -> str:
        return f"{self.kind} of {self.vhost} at {self.url}"


AV = {"video": "h264", "audio": "aac"}


def outputs(conf, rtmp_port: int) -> tuple[list[str], list[Output]]:
    """(the vhosts to publish to, every output to play) for a loaded config."""
    srv = conf.http_server
    http_port = int(srv.listen.rpartition(":")[2]) if srv.enabled else None
    root = os.path.abspath(srv.dir) if srv.enabled else None
    vhosts, plays = [], []
    for name, v in conf.vhosts.items():
        if not v.enabled or v.is_edge:  # an edge needs an origin to pull from
            continue
        vhosts.append(name)
        host = None if name == DEFAULT_VHOST else name
        query = "" if host is None else f"?vhost={name}"
        plays.append(Output(name, "rtmp", f"rtmp://127.0.0.1:{rtmp_port}/live/livestream{query}", None, AV))
        if http_port is None:
            continue
        base = f"http://127.0.0.1:{http_port}"
        if v.http_remux.enabled:
            ext = os.path.splitext(v.http_remux.mount)[1]
            if ext not in FORMATS:
                continue  # serves nothing (srs -t warns)
            path = v.http_remux.mount.replace("[vhost]/", "").replace("[app]", "live").replace("[stream]", "livestream")
            expect = {"audio": FORMATS[ext][0]} if ext in (".aac", ".mp3") else AV
            plays.append(Output(name, FORMATS[ext][0], f"{base}/{path.lstrip('/')}", host, expect))
        for enabled, directory, file, kind in (
            (v.hls.enabled, v.hls.hls_path, v.hls.hls_m3u8_file, "hls"),
            (v.dash.enabled, v.dash.dash_path, v.dash.dash_mpd_file, "dash"),
        ):
            if not enabled:
                continue
            where = os.path.abspath(os.path.join(directory, file.replace("[vhost]", name).replace(
                "[app]", "live").replace("[stream]", "livestream")))
            if os.path.commonpath([root, where]) != root:
                continue  # written where the HTTP server does not look
            url = f"{base}/{os.path.relpath(where, root)}"
            plays.append(Output(name, kind, url, host, AV, ready=url))
    return vhosts, plays


class ConfFileTests(unittest.TestCase):
    timeout = 240

    def setUp(self):
        h.ffmpeg(), h.ffprobe()
        self.procs: list[subprocess.Popen] = []

    def test_every_file_is_tested(self):
        names = conf_files()
        self.assertIn("srs.conf", names)
        for name in names:
            if name in FRAGMENTS:
                with open(os.path.join(CONF_DIR, FRAGMENTS[name])) as f:
                    self.assertIn(f"include ./conf/{name};", f.read())
                continue
            self.assertTrue(hasattr(self, "test_" + name[: -len(".conf")].replace(".", "_")), name)

    # ---- the run ----------------------------------------------------------------------------
    def run_conf(self, name: str) -> None:
        work = tempfile.mkdtemp(prefix="srs-conf-")
        self.addCleanup(shutil.rmtree, work, True)
        os.makedirs(os.path.join(work, "conf"))
        ports: dict = {}
        for other in conf_files():
            with open(os.path.join(CONF_DIR, other)) as f:
                text = relocate(f.read(), ports)
            with open(os.path.join(work, "conf", other), "w") as f:
                f.write(text)
        path = os.path.join(work, "conf", name)
        here = os.getcwd()
        os.chdir(work)  # includes and relative paths resolve as the server will resolve them
        try:
            conf = load(path, environ={})
        finally:
            os.chdir(here)
        check = subprocess.run([sys.executable, "-m", "srs_twisted.cli", "-t", "-c", f"conf/{name}"], cwd=work,
                               env=self.env(), capture_output=True, timeout=60)
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertNotIn(b"warning", check.stderr)

        rtmp_port = int(conf.listen[0].rpartition(":")[2])
        console = open(os.path.join(work, "console.log"), "wb")
        self.addCleanup(console.close)
        server = subprocess.Popen([sys.executable, "-m", "srs_twisted.cli", "-c", f"conf/{name}"], cwd=work,
                                  env=self.env(), stdout=console, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop, server)
        h.wait_port(rtmp_port, 30, server)
        if conf.http_server.enabled:
            h.wait_port(int(conf.http_server.listen.rpartition(":")[2]), 30, server)

        vhosts, plays = outputs(conf, rtmp_port)
        self.assertTrue(plays)
        cmd = [h.ffmpeg(), "-hide_banner", "-loglevel", "error", "-readrate", READ_RATE, "-stream_loop", "-1",
               "-i", h.clip("h264-aac", CLIP_SECONDS)]
        for vhost in vhosts:
            query = "" if vhost == DEFAULT_VHOST else f"?vhost={vhost}"
            cmd += ["-map", "0", "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{rtmp_port}/live/livestream{query}"]
        publisher = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(publisher)

        for out in plays:
            streams = self.play(out, publisher)
            got = {kind: s["codec_name"] for kind, s in streams.items()}
            self.assertEqual(got, out.expect, out)
            if out.kind != "rtmp" and conf.http_server.crossdomain:
                self.check_cors(out)
        if conf.http_api.enabled:  # the API sees what was published
            api = f"http://127.0.0.1:{conf.http_api.listen.rpartition(':')[2]}/api/v1/streams/?count=100"
            code, body = http_get(api, None)
            self.assertEqual(code, 200, api)
            listed = sorted(s["name"] for s in json.loads(body)["streams"] if s["publish"]["active"])
            self.assertEqual(listed, ["livestream"] * len(vhosts))
        if publisher.poll() is not None:
            self.fail(f"the publisher died: {publisher.stderr.read(2000)!r}")
        with open(os.path.join(work, "console.log"), errors="replace") as f:
            log = f.read()
        self.assertNotIn("Traceback", log, log[-3000:])
        if conf.rtc_server.enabled:
            self.check_rtc_served(conf, log)

    def check_rtc_served(self, conf, log: str) -> None:
        """WebRTC is served (WHIP publishing, issue 10): no "not served" warning, and
        a WHIP offer that is not SDP gets SRS's SDP decode error (5012), not an answer."""
        self.assertNotIn("WebRTC is not served yet", log, log[-3000:])
        if conf.http_api.enabled:
            port = int(conf.http_api.listen.rpartition(":")[2])
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("POST", "/rtc/v1/whip/?app=live&stream=livestream", body=b"v=0\r\n",
                             headers={"Content-Type": "application/sdp"})
                r = conn.getresponse()
                body = r.read(65536)
                self.assertEqual(r.status, 400, body)
                self.assertEqual(body, b"5012: RtcSdpDecode")  # SRS 7's WHIP error body
            finally:
                conn.close()

    def play(self, out: Output, publisher) -> dict:
        """ffprobe the output, retried until it answers with every expected
        track (a new stream takes a moment, HLS its first fragment)."""
        end = time.monotonic() + DEADLINE
        last = ""
        while time.monotonic() < end:
            if publisher.poll() is not None:
                self.fail(f"the publisher died: {publisher.stderr.read(2000)!r}")
            if out.ready is not None:
                code, body = http_get(out.ready, out.host)
                if code != 200 or not (b"#EXTINF" in body or b"<MPD" in body):
                    last = f"{out.ready} answered {code}"
                    time.sleep(0.5)
                    continue
            args = [h.ffprobe(), "-v", "error", "-show_streams", "-of", "json"]
            if out.host:
                args += ["-headers", f"Host: {out.host}\r\n"]
            if out.kind == "rtmp":
                args += ["-rw_timeout", "10000000"]
            try:
                result = subprocess.run(args + [out.url], capture_output=True, timeout=20)
            except subprocess.TimeoutExpired:
                last = "ffprobe timed out"
                continue
            if result.returncode == 0:
                info = json.loads(result.stdout)
                kinds = sorted(kind for kind, _ in h.av_streams(info))
                if kinds == sorted(out.expect):  # exactly these tracks, as players see them
                    return h.streams_by_type(info)
                last = f"tracks {h.av_streams(info)}"
            else:
                last = result.stderr.decode(errors="replace")[-300:]
            time.sleep(0.5)
        raise AssertionError(f"{out}: no playable output within {DEADLINE}s: {last}")

    def check_cors(self, out: Output) -> None:
        """A page on another origin can use the output: a preflight answers
        200, and every answer on the way (the HLS session 302, the playlist,
        a segment, a live stream) allows any origin."""
        parts = urllib.parse.urlsplit(out.url)
        headers = {"Host": out.host or parts.netloc, "Origin": "http://player.example"}

        def ask(method: str, target: str):
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            try:
                conn.request(method, target, headers=headers)
                r = conn.getresponse()
                body = r.read(65536) if method == "GET" and out.kind in ("hls", "dash") else b""
                return r.status, r.getheader("access-control-allow-origin"), r.getheader("location"), body
            finally:
                conn.close()

        status, allow, _, _ = ask("OPTIONS", parts.path)
        self.assertEqual((status, allow), (200, "*"), f"preflight of {out}")
        target = parts.path
        for _ in range(3):  # the playlist, after the session redirect if any
            status, allow, location, body = ask("GET", target)
            self.assertEqual(allow, "*", f"GET {target} of {out}")
            if status != 302:
                break
            target = urllib.parse.urljoin(target, location)
        self.assertEqual(status, 200, f"GET {target} of {out}")
        if out.kind == "hls":
            segment = next(line for line in body.decode().splitlines() if line and not line.startswith("#"))
            status, allow, _, _ = ask("GET", urllib.parse.urljoin(target, segment))
            self.assertEqual((status, allow), (200, "*"), f"segment {segment} of {out}")

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SRS_")}
        env["PYTHONPATH"] = h.ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
        return env

    def stop(self, server) -> None:
        for proc in self.procs:
            h.stop_process(proc)
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)

    # ---- one test per file -----------------------------------------------------------------
    def test_full(self):
        self.run_conf("full.conf")

    def test_hls(self):
        self.run_conf("hls.conf")

    def test_http_flv_live(self):
        self.run_conf("http.flv.live.conf")

    def test_include(self):
        self.run_conf("include.conf")

    def test_realtime(self):
        self.run_conf("realtime.conf")

    def test_rtmp(self):
        self.run_conf("rtmp.conf")

    def test_rtc(self):
        # RTMP and HTTP-FLV play; WHIP answers a bad offer with SRS's error (check_rtc_served).
        self.run_conf("rtc.conf")

    def test_rtmp2rtc(self):
        # SRS's bridge sample (rtmp_to_rtc and rtc_to_rtmp on): served as rtc.conf is.
        self.run_conf("rtmp2rtc.conf")

    def test_rtc2rtmp(self):
        self.run_conf("rtc2rtmp.conf")

    def test_latency(self):
        # The latency meter's config (docs/latency.md): RTMP, HTTP-FLV, LL-HLS, DASH, WHIP, SRT.
        self.run_conf("latency.conf")

    def test_srs(self):
        self.run_conf("srs.conf")

    # The stream casters' samples (docs/casters.md): the caster listens beside RTMP, which
    # plays; tests/integration/test_casters.py feeds the casters themselves.
    def test_push_flv(self):
        self.run_conf("push.flv.conf")

    def test_push_mpegts_over_udp(self):
        self.run_conf("push.mpegts.over.udp.conf")

    def test_gb28181(self):
        # SIP and media ports beside RTMP; tests/integration/test_gb28181.py drives cameras.
        self.run_conf("gb28181.conf")

    # The origin clusters (docs/scaling.md): each origin alone here (the Redis ones with no
    # Redis: local streams play); tests/integration/test_cluster_redis.py runs whole clusters.
    def test_origin_cluster_serverA(self):
        self.run_conf("origin.cluster.serverA.conf")

    def test_origin_cluster_serverB(self):
        self.run_conf("origin.cluster.serverB.conf")

    def test_origin_cluster_redis_serverA(self):
        self.run_conf("origin.cluster.redis.serverA.conf")

    def test_origin_cluster_redis_serverB(self):
        self.run_conf("origin.cluster.redis.serverB.conf")

    def test_origin_cluster_redis_workers(self):
        self.run_conf("origin.cluster.redis.workers.conf")

    def check_conf(self, name: str) -> None:
        """``srs -t``: an edge needs its origins to play anything."""
        result = subprocess.run([sys.executable, "-m", "srs_twisted.cli", "-t", "-c", os.path.join(CONF_DIR, name)],
                                capture_output=True, timeout=60, cwd=h.ROOT, text=True)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("test is successful", result.stdout + result.stderr)

    def test_origin_cluster_edge(self):
        self.check_conf("origin.cluster.edge.conf")

    def test_origin_cluster_redis_edge(self):
        self.check_conf("origin.cluster.redis.edge.conf")

    def test_workers(self):
        # Two workers here (auto = the CPUs); the HLS session check crosses workers
        # (tests/integration/test_workers_multi.py drives them harder).
        self.run_conf("workers.conf")
