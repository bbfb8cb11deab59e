"""WHIP publishing and WHEP playing, with real WebRTC clients on 127.0.0.1 inside the
tests' private network namespace (tests/integration/netns.py: every test enters it
in setUp, before its server starts, so the server and all clients run there).

aiortc (its H.264 and Opus encoders; the server is the DTLS server) and FFmpeg 9's
``-f whip`` muxer (it offers ``setup:passive``: the server is the DTLS client)
publish to the real server; FFmpeg 9 plays the stream over RTMP, copying it into
Matroska, and ffprobe reads H.264 at the published size and Opus.  aiortc plays
over WHEP (an RTMP publisher's stream, and a WHIP publisher's) and decodes video
frames at the published size and audio frames.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time

from twisted.trial import unittest

from tests.integration import harness as h
from tests.integration import netns
from tests.optional import missing

HERE = os.path.dirname(os.path.abspath(__file__))


def ffmpeg9() -> str:
    """imageio-ffmpeg's FFmpeg (9.x: a WHIP muxer, Opus in Enhanced FLV)."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        raise missing("imageio-ffmpeg") from None


def h264_opus_publish(ff: str, fmt: str, target: str, seconds: int = 60) -> list:
    """FFmpeg 9 publishing 352x288 H.264 (baseline, 25 fps, 2 s GOPs, no B-frames) and
    Opus 48 kHz stereo for ``seconds`` in real time: ``fmt`` flv (Opus as Enhanced RTMP)
    or whip."""
    return [ff, "-v", "warning", "-re", "-f", "lavfi", "-i", "testsrc=size=352x288:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-pix_fmt", "yuv420p",
            "-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency", "-g", "50",
            "-bf", "0", "-c:a", "libopus", "-ar", "48000", "-ac", "2", "-t", str(seconds), "-f", fmt, target]


def need_aiortc() -> None:
    try:
        import aiortc  # noqa: F401
    except ImportError:
        raise missing("aiortc") from None


class WhipPublish(unittest.TestCase):
    def setUp(self):
        netns.enter()
        self.ff = ffmpeg9()
        self.api_port = h.free_port()
        self.udp_port = h.free_port()
        self.srv = h.Server(
            f"http_api {{ enabled on; listen 127.0.0.1:{self.api_port}; }}\n"
            f"rtc_server {{ enabled on; listen 127.0.0.1:{self.udp_port}; candidate 127.0.0.1; }}\n"
            "vhost __defaultVhost__ { rtc { enabled on; rtmp_to_rtc on; } }\n"
            "vhost active { rtc { enabled on; dtls_role active; } }\n"
        )
        self.addCleanup(self.srv.stop)
        self.procs = []
        self.addCleanup(self._stop_procs)

    def _stop_procs(self):
        for proc in self.procs:
            h.stop_process(proc)

    def whip_url(self, stream: str) -> str:
        return f"http://127.0.0.1:{self.api_port}/rtc/v1/whip/?app=live&stream={stream}"

    def start(self, args) -> subprocess.Popen:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def played_streams(self, stream: str, proc, vhost: str = "__defaultVhost__") -> dict:
        """Play the stream over RTMP with FFmpeg 9 (copy into Matroska) and probe the file."""
        self.srv.wait_log(rf"RTC publish {vhost}/live/{stream} ", timeout=60)
        out = os.path.join(self.srv.dir, f"{stream}.mkv")
        deadline = time.monotonic() + 90
        last = ""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.fail(f"the publisher ended early: {proc.stdout.read()[-2000:]!r}")
            url = self.srv.url(stream) + ("" if vhost == "__defaultVhost__" else f"?vhost={vhost}")
            run = subprocess.run([self.ff, "-v", "error", "-rw_timeout", "20000000", "-i", url,
                                  "-t", "3", "-c", "copy", "-y", out], capture_output=True, timeout=60)
            if run.returncode == 0:
                info = h.probe(out)
                return h.assert_streams(info, [("video", "h264"), ("audio", "opus")])
            last = run.stderr.decode(errors="replace")[-500:]
        self.fail(f"no RTMP play of {stream}: {last}")

    def test_aiortc_publishes_h264_and_opus(self):
        need_aiortc()
        proc = self.start([sys.executable, os.path.join(HERE, "whip_aiortc.py"), self.whip_url("aio"), "12",
                           "320", "240"])
        streams = self.played_streams("aio", proc)
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (320, 240))
        conn = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=20)
        self.addCleanup(conn.close)
        conn.request("GET", "/api/v1/streams/")
        (listed,) = [x for x in json.loads(conn.getresponse().read())["streams"] if x["name"] == "aio"]
        self.assertTrue(listed["publish"]["active"], listed)
        self.assertEqual((listed["video"]["codec"], listed["video"]["width"], listed["video"]["height"]),
                         ("H264", 320, 240))
        self.assertEqual(listed["audio"]["codec"], "Opus")
        conn.request("GET", "/api/v1/clients/")
        clients = json.loads(conn.getresponse().read())["clients"]
        (publisher,) = [c for c in clients if c["id"] == listed["publish"]["cid"]]
        self.assertEqual(publisher["type"], "rtc-publish")
        self.assertGreater(publisher["recv_bytes"], 10000)
        output = proc.communicate(timeout=60)[0].decode(errors="replace")
        self.assertEqual(proc.returncode, 0, output)
        self.assertIn("STATUS 201 application/sdp", output)
        self.assertRegex(output, r"LOCATION http://127\.0\.0\.1:\d+/rtc/v1/whip/\?action=delete&token=[0-9a-f]+"
                                 r"&app=live&stream=aio&session=[0-9a-z]{8}:\S+")
        self.assertIn("DELETE 200", output)
        self.srv.wait_log(r"RTC session __defaultVhost__/live/aio ended: DELETE by the client")

    def test_aiortc_publishes_with_the_server_as_dtls_client(self):
        # dtls_role active: aiortc offers actpass, the server answers active and starts DTLS.
        need_aiortc()
        proc = self.start([sys.executable, os.path.join(HERE, "whip_aiortc.py"),
                           self.whip_url("act") + "&vhost=active", "10", "320", "240"])
        streams = self.played_streams("act", proc, vhost="active")
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (320, 240))
        self.assertRegex(self.srv.log(), r"RTC publish active/live/act session \S+ dtls client")
        output = proc.communicate(timeout=60)[0].decode(errors="replace")
        self.assertEqual(proc.returncode, 0, output)

    def test_ffmpeg_whip_with_the_server_as_dtls_client(self):
        proc = self.ffmpeg_publish("ff", "whip", self.whip_url("ff"))
        streams = self.played_streams("ff", proc)
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (352, 288))
        self.assertRegex(self.srv.log(), r"RTC publish __defaultVhost__/live/ff session \S+ dtls client")

    def whep_play(self, stream: str, publisher, kind: str = "whep", seconds: int = 6) -> str:
        need_aiortc()
        args = [f"http://127.0.0.1:{self.api_port}/rtc/v1/{kind}/?app=live&stream={stream}", str(seconds)]
        if kind == "play":  # SRS's legacy JSON API
            args = [f"http://127.0.0.1:{self.api_port}/rtc/v1/play/", str(seconds),
                    f"webrtc://127.0.0.1/live/{stream}"]
        player = self.start([sys.executable, os.path.join(HERE, "whep_aiortc.py"), *args])
        output = player.communicate(timeout=120)[0].decode(errors="replace")
        self.assertIsNone(publisher.poll(), "the publisher ended early")
        self.assertEqual(player.returncode, 0, output)
        if kind == "play":
            self.assertRegex(output, r"CODE 0 SESSION [0-9a-z]{8}:\S+")
        else:
            self.assertIn("STATUS 201 application/sdp", output)
            self.assertIn("DELETE 200", output)
        return output

    def assert_decoded(self, output: str, size=("352", "288")) -> None:
        match = re.search(r"VIDEO (\d+) (\d+)x(\d+)", output)
        self.assertIsNotNone(match, output)
        self.assertGreaterEqual(int(match.group(1)), 50, output)  # 6 s at 25 fps, from a keyframe
        self.assertEqual(match.group(2, 3), size)
        self.assertGreaterEqual(int(re.search(r"AUDIO (\d+)", output).group(1)), 50, output)

    def ffmpeg_publish(self, stream: str, fmt: str, target: str) -> subprocess.Popen:
        return self.start(h264_opus_publish(self.ff, fmt, target))

    def test_aiortc_whep_plays_an_rtmp_publisher(self):
        publisher = self.ffmpeg_publish("rp", "flv", self.srv.url("rp"))
        self.srv.wait_log(r"publish __defaultVhost__/live/rp\b", timeout=60)
        self.assert_decoded(self.whep_play("rp", publisher))
        self.srv.wait_log(r"RTC session __defaultVhost__/live/rp ended: DELETE by the client")

    def test_aiortc_whip_play_route_plays_a_whip_publisher(self):
        publisher = self.ffmpeg_publish("ww", "whip", self.whip_url("ww"))
        self.srv.wait_log(r"RTC publish __defaultVhost__/live/ww ", timeout=60)
        self.assert_decoded(self.whep_play("ww", publisher, kind="whip-play"))

    def test_aiortc_legacy_play_api(self):
        publisher = self.ffmpeg_publish("lp", "flv", self.srv.url("lp"))
        self.srv.wait_log(r"publish __defaultVhost__/live/lp\b", timeout=60)
        self.assert_decoded(self.whep_play("lp", publisher, kind="play"))

    def test_bad_offers_get_srs_codes(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=10)
        self.addCleanup(conn.close)
        conn.request("POST", "/rtc/v1/whip/?app=live&stream=x", body=b"not sdp")
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (400, b"5012: RtcSdpDecode"))
        conn.request("POST", "/rtc/v1/publish/", body=b'{"sdp": "v=0\\r\\n", "streamurl": "webrtc://h/live/x"}')
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.read())["code"], 400)  # SRS's legacy API answers 400 for any error
        for bad in (b"{", b"[]", b"7", b'{"sdp": 1, "streamurl": "x"}', b'{"sdp": "", "streamurl": "webrtc://[/a/b"}',
                    b"\xff"):
            conn.request("POST", "/rtc/v1/publish/", body=bad)
            r = conn.getresponse()
            self.assertEqual(json.loads(r.read())["code"], 400, bad)
        conn.request("DELETE", "/rtc/v1/whip/?app=live&stream=x&session=a:b&token=t")
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, b""))  # as SRS: no such session, nothing to end
        # Truncated and corrupted offers (bounded, seeded): an answer or SRS's error, never a failure.
        import random

        from tests.codec.sdp_fixtures import FFMPEG_WHIP_OFFER

        rng = random.Random(3)
        statuses = set()
        for i in range(150):
            body = bytearray(FFMPEG_WHIP_OFFER.encode()[:rng.randrange(len(FFMPEG_WHIP_OFFER) + 1)])
            for _ in range(i % 4):
                if body:
                    body[rng.randrange(len(body))] = rng.randrange(256)
            conn.request("POST", f"/rtc/v1/whip/?app=live&stream=f{i}", body=bytes(body))
            r = conn.getresponse()
            reply = r.read()
            self.assertIn(r.status, (201, 400), reply)
            self.assertTrue(r.status == 201 or re.fullmatch(rb"50\d\d: Rtc\w+", reply), reply)
            statuses.add(r.status)
        self.assertIn(400, statuses)
        self.assertEqual(self.srv.unexpected_errors(), "")


class RtcPolicy(unittest.TestCase):
    """WebRTC sessions go through RTMP's chain: one publisher per stream whatever the
    protocol, the vhost's security rules, the vhost's rtc switch (captured offers, no media)."""

    def setUp(self):
        netns.enter()
        self.api_port = h.free_port()
        self.srv = h.Server(
            f"http_api {{ enabled on; listen 127.0.0.1:{self.api_port}; }}\n"
            f"rtc_server {{ enabled on; listen 127.0.0.1:{h.free_port()}; candidate 127.0.0.1; }}\n"
            "vhost __defaultVhost__ { rtc { enabled on; } }\n"
            "vhost locked { rtc { enabled on; } security { enabled on; deny publish all; deny play all; } }\n"
            "vhost plain { }\n"
            "vhost short { rtc { enabled on; stun_timeout 1; } }\n"
        )
        self.addCleanup(self.srv.stop)

    def post(self, path: str, body: str):
        conn = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=20)
        self.addCleanup(conn.close)
        conn.request("POST", path, body=body.encode())
        r = conn.getresponse()
        return r.status, r.read()

    def test_an_rtmp_publisher_makes_the_stream_busy_for_whip(self):
        from tests.codec.sdp_fixtures import FFMPEG_WHIP_OFFER

        proc = h.publish(self.srv.url("busy"), h.clip(), loop=True)
        self.addCleanup(h.stop_process, proc)
        self.srv.wait_log(r"publish __defaultVhost__/live/busy\b", timeout=60)
        status, body = self.post("/rtc/v1/whip/?app=live&stream=busy", FFMPEG_WHIP_OFFER)
        self.assertEqual((status, body), (409, b"1028: StreamBusy"), body)
        status, body = self.post("/rtc/v1/publish/", json.dumps(
            {"sdp": FFMPEG_WHIP_OFFER, "streamurl": "webrtc://127.0.0.1/live/busy"}))
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["code"], 400)  # SRS's legacy API answers 400 for any error
        self.assertIsNone(proc.poll(), "the RTMP publisher was disturbed")
        status, body = self.post("/rtc/v1/whip/?app=live&stream=free", FFMPEG_WHIP_OFFER)
        self.assertEqual(status, 201, body)

    def test_security_rules_and_the_rtc_switch(self):
        from tests.codec.sdp_fixtures import AIORTC_OFFER, FFMPEG_WHIP_OFFER

        status, body = self.post("/rtc/v1/whip/?app=live&stream=s&vhost=locked", FFMPEG_WHIP_OFFER)
        self.assertEqual((status, body), (401, b"1102: SystemAuth"), body)
        play_offer = AIORTC_OFFER.replace("a=sendonly", "a=recvonly")
        status, body = self.post("/rtc/v1/whep/?app=live&stream=s&vhost=locked", play_offer)
        self.assertEqual((status, body), (401, b"1102: SystemAuth"), body)
        status, body = self.post("/rtc/v1/whep/?app=live&stream=s", play_offer)
        self.assertEqual(status, 201, body)
        self.assertIn(b"a=sendonly", body)
        status, body = self.post("/rtc/v1/whip/?app=live&stream=s&vhost=plain", FFMPEG_WHIP_OFFER)
        self.assertEqual((status, body), (500, b"5021: RtcDisabled"), body)

    def request(self, method: str, path: str):
        conn = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=20)
        self.addCleanup(conn.close)
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, r.read()

    def test_rtc_clients_are_listed_and_kicked_like_rtmp_ones(self):
        from tests.codec.sdp_fixtures import FFMPEG_WHIP_OFFER

        status, body = self.post("/rtc/v1/whip/?app=live&stream=k", FFMPEG_WHIP_OFFER)
        self.assertEqual(status, 201, body)
        clients = json.loads(self.request("GET", "/api/v1/clients/")[1])["clients"]
        mine = [c for c in clients if c["name"] == "k"]
        self.assertEqual([(c["type"], c["publish"], c["tcUrl"], c["url"]) for c in mine],
                         [("rtc-publish", True, "webrtc://127.0.0.1/live", "/live/k")])
        status, body = self.post("/rtc/v1/whip/?app=live&stream=k", FFMPEG_WHIP_OFFER)
        self.assertEqual((status, body), (409, b"1028: StreamBusy"), body)
        status, body = self.request("DELETE", f"/api/v1/clients/{mine[0]['id']}")
        self.assertEqual(json.loads(body)["code"], 0)
        self.srv.wait_log(r"RTC session __defaultVhost__/live/k ended: kicked by the API")
        status, body = self.post("/rtc/v1/whip/?app=live&stream=k", FFMPEG_WHIP_OFFER)
        self.assertEqual(status, 201, body)  # the stream is free again

    def test_a_session_whose_ice_ufrag_has_a_plus_is_deleted_by_its_location(self):
        # Chromium's ufrags often hold "+" (an ice-char), which reads as a space in a query.
        from tests.codec.sdp_fixtures import FFMPEG_WHIP_OFFER

        offer = re.sub(r"a=ice-ufrag:\S+", "a=ice-ufrag:k+o/", FFMPEG_WHIP_OFFER)
        conn = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=20)
        self.addCleanup(conn.close)
        conn.request("POST", "/rtc/v1/whip/?app=live&stream=plus", body=offer.encode())
        r = conn.getresponse()
        self.assertEqual(r.status, 201, r.read())
        location = r.getheader("Location")
        r.read()
        self.assertIn("&session=", location)
        self.assertTrue(location.endswith(":k%2Bo/"), location)
        status, body = self.request("DELETE", location)
        self.assertEqual(status, 200, body)
        self.srv.wait_log(r"RTC session __defaultVhost__/live/plus ended: DELETE by the client")

    def test_stun_timeout_ends_a_silent_session_and_frees_the_stream(self):
        from tests.codec.sdp_fixtures import FFMPEG_WHIP_OFFER

        status, body = self.post("/rtc/v1/whip/?app=live&stream=t&vhost=short", FFMPEG_WHIP_OFFER)
        self.assertEqual(status, 201, body)
        status, body = self.post("/rtc/v1/whip/?app=live&stream=t&vhost=short", FFMPEG_WHIP_OFFER)
        self.assertEqual((status, body), (409, b"1028: StreamBusy"), body)
        self.srv.wait_log(r"RTC session short/live/t ended: stun_timeout: no valid traffic", timeout=30)
        status, body = self.post("/rtc/v1/whip/?app=live&stream=t&vhost=short", FFMPEG_WHIP_OFFER)
        self.assertEqual(status, 201, body)

    def test_eip_is_the_first_candidate(self):
        from tests.codec.sdp_fixtures import FFMPEG_WHIP_OFFER

        status, body = self.post("/rtc/v1/whip/?app=live&stream=e&eip=192.0.2.7:4444", FFMPEG_WHIP_OFFER)
        self.assertEqual(status, 201, body)
        candidates = [line for line in body.decode().splitlines() if line.startswith("a=candidate:")]
        self.assertTrue(candidates[0].startswith("a=candidate:0 1 udp 2130706431 192.0.2.7 4444 typ host"),
                        candidates)
        self.assertIn(" 127.0.0.1 ", candidates[-1])


class RtcCandidateDetection(unittest.TestCase):
    def test_candidate_star_answers_a_host_address_and_the_udp_port(self):
        from tests.codec.sdp_fixtures import FFMPEG_WHIP_OFFER

        netns.enter()
        api_port, udp_port = h.free_port(), h.free_port()
        srv = h.Server(
            f"http_api {{ enabled on; listen 127.0.0.1:{api_port}; }}\n"
            f"rtc_server {{ enabled on; listen 127.0.0.1:{udp_port}; candidate *; }}\n"
            "vhost __defaultVhost__ { rtc { enabled on; } }\n"
        )
        self.addCleanup(srv.stop)
        conn = http.client.HTTPConnection("127.0.0.1", api_port, timeout=20)
        self.addCleanup(conn.close)
        conn.request("POST", "/rtc/v1/whip/?app=live&stream=c", body=FFMPEG_WHIP_OFFER.encode())
        r = conn.getresponse()
        body = r.read().decode()
        self.assertEqual(r.status, 201, body)
        found = re.findall(r"a=candidate:\d+ 1 udp \d+ (\d+\.\d+\.\d+\.\d+) (\d+) typ host", body)
        self.assertTrue(found, body)
        self.assertTrue(all(port == str(udp_port) for _, port in found), found)


class RtcReload(unittest.TestCase):
    """SIGHUP with a new rtc_server.listen moves the UDP port (the old one closes, STUN
    checks are answered on the new one); a candidate change applies to the next answer."""

    def setUp(self):
        netns.enter()
        self.api_port, self.udp_port = h.free_port(), h.free_port()
        self.srv = h.Server(
            f"http_api {{ enabled on; listen 127.0.0.1:{self.api_port}; }}\n"
            f"rtc_server {{ enabled on; listen 127.0.0.1:{self.udp_port}; candidate 127.0.0.1; }}\n"
            "vhost __defaultVhost__ { rtc { enabled on; } }\n"
        )
        self.addCleanup(self.srv.stop)

    def offer(self, stream):
        from tests.codec.sdp_fixtures import FFMPEG_WHIP_OFFER

        conn = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=20)
        self.addCleanup(conn.close)
        conn.request("POST", f"/rtc/v1/whip/?app=live&stream={stream}", body=FFMPEG_WHIP_OFFER.encode())
        r = conn.getresponse()
        body = r.read().decode()
        self.assertEqual(r.status, 201, body)
        remote = re.search(r"a=ice-ufrag:(\S+)", FFMPEG_WHIP_OFFER).group(1)
        local = re.search(r"a=ice-ufrag:(\S+)", body).group(1)
        pwd = re.search(r"a=ice-pwd:(\S+)", body).group(1)
        candidate = re.search(r"a=candidate:0 1 udp \d+ (\S+) (\d+) typ host", body).group(1, 2)
        return f"{local}:{remote}", pwd, candidate

    def stun_answered(self, port, username, pwd) -> bool:
        import socket

        from srs_twisted.codec import stun

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.sendto(stun.binding_request(username, pwd, priority=1, controlling=1), ("127.0.0.1", port))
            try:
                data = s.recv(2048)
            except OSError:  # timeout, or refused (nothing listens)
                return False
        return stun.parse(data).msg_class == stun.SUCCESS

    def reload(self, old: str, new: str):
        with open(self.srv.conf_path) as f:
            text = f.read()
        self.assertIn(old, text)
        with open(self.srv.conf_path, "w") as f:
            f.write(text.replace(old, new))
        mark = len(self.srv.log())
        self.srv.proc.send_signal(signal.SIGHUP)
        self.srv.wait_log(r"reload config ok", after=mark)

    def test_sighup_moves_the_udp_port_and_changes_candidates(self):
        username, pwd, candidate = self.offer("a")
        self.assertEqual(candidate, ("127.0.0.1", str(self.udp_port)))
        self.assertTrue(self.stun_answered(self.udp_port, username, pwd))
        new_port = h.free_port()
        self.reload(f"listen 127.0.0.1:{self.udp_port};", f"listen 127.0.0.1:{new_port};")
        username, pwd, candidate = self.offer("b")
        self.assertEqual(candidate, ("127.0.0.1", str(new_port)))
        self.assertTrue(self.stun_answered(new_port, username, pwd))
        self.assertFalse(self.stun_answered(self.udp_port, username, pwd))
        self.reload("candidate 127.0.0.1;", "candidate 127.0.0.2;")
        username, pwd, candidate = self.offer("c")
        self.assertEqual(candidate, ("127.0.0.2", str(new_port)))
        self.assertTrue(self.stun_answered(new_port, username, pwd))
        # A new certificate kind on the same port: a new server, the port closed and bound again.
        self.reload("candidate 127.0.0.2;", "candidate 127.0.0.2; ecdsa off;")
        self.srv.wait_log(r"RTC listen at udp://127\.0\.0\.1:%d" % new_port, after=0)
        username, pwd, candidate = self.offer("d")
        self.assertTrue(self.stun_answered(new_port, username, pwd))
        self.assertEqual(self.srv.log().count(f"RTC listen at udp://127.0.0.1:{new_port}"), 2)
        self.assertNotIn("Traceback", self.srv.console())


class LossyRelay:
    """A UDP relay on ``host`` (127.0.0.1; 10.99.0.1 for Chromium) between a WebRTC client
    and the server (on the same host) that drops a seeded ``loss`` share of the server's RTP
    to the client (``up``: of the client's RTP to the server); STUN, DTLS and RTCP pass."""

    def __init__(self, server_port: int, loss: float, seed: int = 7, seconds: float = 120.0, up: bool = False,
                 host: str = "127.0.0.1") -> None:
        import random
        import socket
        import threading

        self.server = (host, server_port)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((host, 0))
        self.port = self.front.getsockname()[1]
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind((host, 0))
        self.rng, self.loss, self.up = random.Random(seed), loss, up
        self.client = None
        self.forwarded = self.dropped = 0
        self.stopping = threading.Event()
        self.deadline = time.monotonic() + seconds
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        import select

        while not self.stopping.is_set() and time.monotonic() < self.deadline:
            ready, _, _ = select.select([self.front, self.back], [], [], 0.2)
            for sock in ready:
                data, addr = sock.recvfrom(65536)
                if sock is self.front:
                    self.client = addr
                if sock is self.back and self.client is None:
                    continue
                rtp = len(data) > 1 and 128 <= data[0] <= 191 and not 192 <= data[1] <= 223
                if rtp and (sock is self.front) == self.up and self.rng.random() < self.loss:
                    self.dropped += 1
                    continue
                self.forwarded += 1
                if sock is self.front:
                    self.back.sendto(data, self.server)
                else:
                    self.front.sendto(data, self.client)

    def inject(self, count: int, seed: int = 1) -> int:
        """Send ``count`` hostile datagrams to the server from the session's own
        (relayed) address: random and truncated STUN, DTLS, RTP and RTCP."""
        import random

        rng = random.Random(seed)
        firsts = (0, 1, 22, 23, 20, 0x80, 0x90, 0xBF)
        for i in range(count):
            size = rng.choice((1, 2, 4, 12, 13, 20, 28, 100, 1200))
            data = bytearray(rng.randrange(256) for _ in range(size))
            data[0] = firsts[i % len(firsts)]
            if i % 3 == 0 and size > 1:
                data[1] = rng.choice((200, 201, 205, 206))  # RTCP types
            self.back.sendto(bytes(data), self.server)
        return count

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.front.close()
        self.back.close()


class RtcLoss(unittest.TestCase):
    """5% of the server's RTP to a WHEP player is lost on the way: aiortc NACKs, the
    server answers from its packet cache (counted in the session's end line), and
    the player still decodes."""

    def setUp(self):
        netns.enter()
        self.ff = ffmpeg9()
        self.api_port, udp_port = h.free_port(), h.free_port()
        self.relay = LossyRelay(udp_port, 0.05)
        self.addCleanup(self.relay.close)
        self.srv = h.Server(
            f"http_api {{ enabled on; listen 127.0.0.1:{self.api_port}; }}\n"
            f"rtc_server {{ enabled on; listen 127.0.0.1:{udp_port}; candidate 127.0.0.1:{self.relay.port}; }}\n"
            "vhost __defaultVhost__ { rtc { enabled on; nack on; rtmp_to_rtc on; } }\n"
        )
        self.addCleanup(self.srv.stop)
        self.procs = []
        self.addCleanup(self._stop_procs)

    def test_nack_recovers_losses_to_a_whep_player(self):
        publisher = self.ffmpeg_publish("loss", "flv", self.srv.url("loss"))
        self.srv.wait_log(r"publish __defaultVhost__/live/loss\b", timeout=60)
        self.assert_decoded(self.whep_play("loss", publisher, seconds=8))
        line, (packets, nacks, seqs, retransmits) = self.end_counters(
            "loss", r"packets=(\d+) nacks=(\d+) nack_seqs=(\d+) retransmits=(\d+)")
        self.assertGreater(nacks, 0, line)
        self.assertGreater(retransmits, 0, line)
        self.assertLessEqual(retransmits, seqs)

    def test_hostile_datagrams_from_the_session_address_change_nothing(self):
        need_aiortc()
        publisher = self.ffmpeg_publish("bad", "flv", self.srv.url("bad"))
        self.srv.wait_log(r"publish __defaultVhost__/live/bad\b", timeout=60)
        url = f"http://127.0.0.1:{self.api_port}/rtc/v1/whep/?app=live&stream=bad"
        player = self.start([sys.executable, os.path.join(HERE, "whep_aiortc.py"), url, "8"])
        self.srv.wait_log(r"RTC play __defaultVhost__/live/bad ", timeout=60)
        h.wait_for(lambda: self.relay.forwarded > 50, 30)  # media flows: the relay's address is bound
        self.relay.inject(3000)
        output = player.communicate(timeout=120)[0].decode(errors="replace")
        self.assertEqual(player.returncode, 0, output)
        self.assert_decoded(output)
        self.assertIsNone(publisher.poll())
        self.assertEqual(self.srv.unexpected_errors(), "")

    def test_nack_recovers_a_whip_publishers_losses(self):
        # The relay now loses 5% of aiortc's RTP to the server: the server NACKs, aiortc resends.
        need_aiortc()
        self.relay.up = True
        proc = self.start([sys.executable, os.path.join(HERE, "whip_aiortc.py"), self.whip_url("up"), "10",
                           "320", "240"])
        streams = self.played_streams("up", proc)
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (320, 240))
        output = proc.communicate(timeout=60)[0].decode(errors="replace")
        self.assertEqual(proc.returncode, 0, output)
        line, (frames, nacks, recovered, given_up) = self.end_counters(
            "up", r"frames=(\d+) .* nacks=(\d+) recovered=(\d+) given_up=(\d+)")
        self.assertGreater(nacks, 0, line)
        self.assertGreater(recovered, 0, line)
        self.assertGreater(frames, 100, line)

    def end_counters(self, stream: str, counters: str):
        """The session's end line (after the client's DELETE) and its counters; the relay dropped some."""
        match = self.srv.wait_log(rf"RTC session __defaultVhost__/live/{stream} ended: DELETE by the client; "
                                  + counters)
        self.assertGreater(self.relay.dropped, 0)
        return match.group(0), [int(x) for x in match.groups()]

    # The clients' helpers, shared with WhipPublish (not its tests).
    start, _stop_procs, whep_play = WhipPublish.start, WhipPublish._stop_procs, WhipPublish.whep_play
    ffmpeg_publish, assert_decoded = WhipPublish.ffmpeg_publish, WhipPublish.assert_decoded
    whip_url, played_streams = WhipPublish.whip_url, WhipPublish.played_streams

