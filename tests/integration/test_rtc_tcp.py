"""WebRTC over TCP (``rtc_server.tcp``, RFC 4571 framing), inside the private network
namespace, with the real server and real clients.

* The answers' candidates follow ``rtc_server.protocol`` and the request's
  ``?protocol=`` (WHIP, WHEP and the legacy JSON API; captured offers, no media).
* aiortc publishes H.264 + Opus over TCP only (``protocol tcp``): aioice has no
  ICE-TCP, so its client (whip_aiortc_tcp.py) frames its datagrams on one TCP
  connection to the answer's ``tcptype passive`` candidate; FFmpeg 9 reads the
  stream back over RTMP and ffprobe finds H.264 at the published size and Opus.
  Hostile TCP connections meanwhile (garbage, bad lengths, a stolen ufrag, idle)
  are closed without touching the publisher.
* The issue's pair: that aiortc publisher over TCP only, and Chromium (Playwright,
  tests/integration/browser.py) playing it over WHEP over TCP only: Chromium's own
  ICE-TCP (its active TCP candidate to our passive one, on 127.0.0.1) decodes >= 100
  frames at 320x240 and receives Opus, and its selected candidate pair is TCP.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import sys
import tempfile
from urllib.parse import unquote

from twisted.internet import defer
from twisted.trial import unittest

from srs_twisted.codec import stun
from tests.codec.sdp_fixtures import AIORTC_OFFER
from tests.integration import browser
from tests.integration import harness as h
from tests.integration import netns
from tests.integration import test_rtc_whip as whip

HERE = os.path.dirname(os.path.abspath(__file__))


def candidate_lines(sdp: str) -> list[str]:
    """The first media section's candidates (every section has the same)."""
    section = sdp.split("\nm=")[1]
    return [line[len("a=candidate:"):] for line in section.splitlines() if line.startswith("a=candidate:")]


class RtcTcpAnswers(unittest.TestCase):
    def setUp(self):
        netns.enter()
        self.api_port, self.udp_port, self.tcp_port = h.free_port(), h.free_port(), h.free_port()

    def start(self, rtc: str):
        self.srv = h.Server(
            f"http_api {{ enabled on; listen 127.0.0.1:{self.api_port}; }}\n"
            f"rtc_server {{ enabled on; listen 127.0.0.1:{self.udp_port}; candidate 127.0.0.1; {rtc} }}\n"
            "vhost __defaultVhost__ { rtc { enabled on; } }\n"
        )
        self.addCleanup(self.srv.stop)

    def post(self, path: str, body: str):
        status, reply = whip.RtcPolicy.post(self, path, body)
        return status, reply.decode()

    def whip(self, query: str = "", stream: str = "s"):
        return self.post(f"/rtc/v1/whip/?app=live&stream={stream}{query}", AIORTC_OFFER)

    def test_candidates_follow_protocol_and_the_query(self):
        self.start(f"protocol udp; tcp {{ enabled on; listen 127.0.0.1:{self.tcp_port}; }}")
        self.srv.wait_log(rf"RTC listen at tcp://127\.0\.0\.1:{self.tcp_port} ")
        udp = f"1 udp 2130706431 127.0.0.1 {self.udp_port} typ host generation 0"
        tcp = f"1 tcp 2130706431 127.0.0.1 {self.tcp_port} typ host tcptype passive"
        status, sdp = self.whip(stream="a")
        self.assertEqual((status, candidate_lines(sdp)), (201, ["0 " + udp]))
        status, sdp = self.whip("&protocol=tcp", stream="b")
        self.assertEqual((status, candidate_lines(sdp)), (201, ["0 " + tcp]))
        status, sdp = self.whip("&protocol=all", stream="c")
        self.assertEqual((status, candidate_lines(sdp)), (201, ["0 " + udp, "1 " + tcp]))
        play = AIORTC_OFFER.replace("a=sendonly", "a=recvonly")
        status, sdp = self.post("/rtc/v1/whep/?app=live&stream=a&protocol=tcp", play)
        self.assertEqual((status, candidate_lines(sdp)), (201, ["0 " + tcp]))
        body = json.dumps({"sdp": play, "streamurl": "webrtc://127.0.0.1/live/a?protocol=all"})
        status, reply = self.post("/rtc/v1/play/", body)
        self.assertEqual(json.loads(reply)["code"], 0, reply)
        self.assertEqual(candidate_lines(json.loads(reply)["sdp"]), ["0 " + udp, "1 " + tcp])
        status, reply = self.post("/rtc/v1/play/?protocol=tcp", json.dumps(
            {"sdp": play, "streamurl": "webrtc://127.0.0.1/live/a"}))
        self.assertEqual(candidate_lines(json.loads(reply)["sdp"]), ["0 " + tcp])
        status, body = self.whip("&protocol=sctp", stream="d")
        self.assertEqual((status, body), (400, "5023: RtcInvalidParams"))
        self.srv.wait_log(r"code 5023: protocol must be udp, tcp or all")
        self.assertEqual(self.srv.unexpected_errors(), "")

    def test_a_browser_ufrag_with_plus_and_slash_can_be_deleted(self):
        # Chromium's ufrags use the whole ice-char set ('+', '/'): the Location quotes '+',
        # else it reads back as a space and DELETE finds no session.
        self.start("")
        conn = whip.http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=20)
        self.addCleanup(conn.close)
        conn.request("POST", "/rtc/v1/whip/?app=live&stream=u", body=AIORTC_OFFER.replace("ice-ufrag:jvk8",
                                                                                        "ice-ufrag:j+k/").encode())
        response = conn.getresponse()
        response.read()
        location = response.getheader("Location")
        self.assertEqual(response.status, 201)
        self.assertRegex(location, r"&session=[0-9a-z]{8}:j%2Bk(/|%2F)$")
        conn.request("DELETE", location)
        response = conn.getresponse()
        response.read()
        self.assertEqual(response.status, 200)
        self.srv.wait_log(r"RTC session __defaultVhost__/live/u ended: DELETE by the client")

    def test_protocol_tcp_without_tcp_refuses_and_all_offers_udp(self):
        self.start("protocol all;")
        self.srv.wait_log(r"rtc_server.protocol all without rtc_server.tcp.enabled on: answers offer UDP")
        status, sdp = self.whip()
        self.assertEqual((status, len(candidate_lines(sdp))), (201, 1))
        self.assertIn(" udp ", candidate_lines(sdp)[0])
        status, body = self.whip("&protocol=tcp", stream="t")
        self.assertEqual((status, body), (400, "5023: RtcInvalidParams"))
        self.srv.wait_log(re.escape("code 5023: protocol tcp needs WebRTC over TCP (rtc_server.tcp.enabled on)"))
        with socket.socket() as s:
            self.assertNotEqual(s.connect_ex(("127.0.0.1", self.tcp_port)), 0)  # nothing listens


class RtcTcpPublish(unittest.TestCase):
    def setUp(self):
        netns.enter()
        whip.need_aiortc()
        self.ff = whip.ffmpeg9()
        self.api_port, udp_port, self.tcp_port = h.free_port(), h.free_port(), h.free_port()
        self.srv = h.Server(
            f"http_api {{ enabled on; listen 127.0.0.1:{self.api_port}; }}\n"
            f"rtc_server {{ enabled on; listen 127.0.0.1:{udp_port}; candidate 127.0.0.1; protocol tcp;\n"
            f"  tcp {{ enabled on; listen 127.0.0.1:{self.tcp_port}; }} }}\n"
            "vhost __defaultVhost__ { rtc { enabled on; } }\n"
        )
        self.addCleanup(self.srv.stop)
        self.procs = []
        self.addCleanup(self._stop_procs)

    # The clients' helpers, shared with WhipPublish (not its tests).
    start, _stop_procs = whip.WhipPublish.start, whip.WhipPublish._stop_procs
    whip_url, played_streams = whip.WhipPublish.whip_url, whip.WhipPublish.played_streams

    def hostile_connections(self, username: str) -> int:
        """TCP connections that must be closed by the server: garbage, bad lengths, RTP
        first, a (wrongly signed) check for the publisher's session, which has its
        connection already."""
        rng = random.Random(4571)
        garbage = bytes([100]) + bytes(rng.randrange(256) for _ in range(1499))
        check = stun.binding_request(username, "x" * 32, priority=1, controlling=1, use_candidate=True)
        bodies = [b"\x05\xdc" + garbage, b"\xff\xff" + bytes(100), b"\x00\x00\x80", b"\x00\x15\x80" + bytes(20),
                  len(check).to_bytes(2, "big") + check]
        closed = 0
        for body in bodies:
            with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=30) as s:
                s.sendall(body)
                try:
                    answered = s.recv(100)
                except ConnectionResetError:
                    answered = b""
                closed += answered == b""  # the server closed it, having answered nothing
        return closed

    def test_aiortc_publishes_over_tcp_only_and_rtmp_plays_it(self):
        proc = self.start([sys.executable, os.path.join(HERE, "whip_aiortc_tcp.py"), self.whip_url("tcp"), "14",
                           "320", "240"])
        bound = self.srv.wait_log(r"RTC tcp 127\.0\.0\.1:\d+ carries session (\S+)", timeout=60)
        idle = socket.create_connection(("127.0.0.1", self.tcp_port), timeout=30)
        self.addCleanup(idle.close)
        self.assertEqual(self.hostile_connections(bound.group(1)), 5)
        for reason in ("a frame that is neither STUN, DTLS nor RTP/RTCP (first byte 100)",
                       "frame length 65535 is not in 1..1500", "frame length 0 is not in 1..1500",
                       "the first frame is not STUN", f"session {bound.group(1)} has a TCP connection already"):
            self.srv.wait_log(r"RTC tcp 127\.0\.0\.1:\d+ closed: " + re.escape(reason))
        streams = self.played_streams("tcp", proc)
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (320, 240))
        output = proc.communicate(timeout=90)[0].decode(errors="replace")
        self.assertEqual(proc.returncode, 0, output)
        candidates = set(re.findall(r"^CANDIDATE a=candidate:(.*)$", output, re.M))
        self.assertEqual(candidates, {f"0 1 tcp 2130706431 127.0.0.1 {self.tcp_port} typ host tcptype passive"})
        up, down = map(int, re.search(r"^FRAMES (\d+) (\d+)$", output, re.M).groups())
        self.assertGreater(up, 500, output)  # 14 s of H.264 + Opus went over the TCP connection
        self.assertGreater(down, 5, output)  # STUN answers, DTLS, receiver reports came back on it
        self.assertIn("DELETE 200", output)
        self.srv.wait_log(r"RTC session __defaultVhost__/live/tcp ended: DELETE by the client; frames=(\d+)")
        self.srv.wait_log(rf"RTC tcp 127\.0\.0\.1:\d+ of session {re.escape(bound.group(1))} closed: session ended")
        # The idle connection never sent a check: closed after 10 s.
        idle.settimeout(30)
        self.assertEqual(idle.recv(10), b"")
        self.assertEqual(self.srv.unexpected_errors(), "")


class ChromiumOverTcp(unittest.TestCase):
    """aiortc publishes over TCP only, Chromium plays it over WHEP over TCP only."""

    FRAMES = 100
    WAIT = 90  # seconds for each step in Chromium: a busy 2-core box
    timeout = 8 * WAIT

    def setUp(self):
        browser.need_chromium()
        whip.need_aiortc()
        netns.enter()
        pages = tempfile.mkdtemp(prefix="srs-pages-")
        self.addCleanup(shutil.rmtree, pages, True)
        self.page = browser.write_page(pages)
        self.api_port, self.http_port, udp_port, self.tcp_port = (h.free_port(), h.free_port(), h.free_port(),
                                                                  h.free_port())
        # 127.0.0.1: Chromium takes a loopback TCP candidate (its UDP tests need 10.99.0.1). With
        # 10.99.0.1, a player page (no getUserMedia, so Chromium's default-route network only,
        # 127.0.0.1 here) connected and closed at once without a byte: its TCP socket's source
        # was 10.99.0.1, an address outside that network, which libwebrtc drops.
        address = "127.0.0.1"
        self.srv = h.Server(
            f"http_api {{ enabled on; listen 127.0.0.1:{self.api_port}; }}\n"
            f"http_server {{ enabled on; listen 127.0.0.1:{self.http_port}; dir {pages}; }}\n"
            f"rtc_server {{ enabled on; listen {address}:{udp_port}; candidate {address}; protocol tcp;\n"
            f"  tcp {{ enabled on; listen {address}:{self.tcp_port}; }} }}\n"
            "vhost __defaultVhost__ { rtc { enabled on; } }\n"
        )
        self.addCleanup(self.srv.stop)
        self.procs = []
        self.addCleanup(self._stop_procs)

    start, _stop_procs, whip_url = whip.WhipPublish.start, whip.WhipPublish._stop_procs, whip.WhipPublish.whip_url

    @defer.inlineCallbacks
    def test_chromium_plays_an_aiortc_publisher_both_over_tcp_only(self):
        publisher = self.start([sys.executable, os.path.join(HERE, "whip_aiortc_tcp.py"), self.whip_url("both"),
                                str(3 * self.WAIT), "320", "240"])
        self.srv.wait_log(r"RTC tcp [\d.]+:\d+ carries session", timeout=60)
        spec = {"page": f"http://127.0.0.1:{self.http_port}/{self.page}", "api": f"http://127.0.0.1:{self.api_port}",
                "app": "live", "publish": None, "play": {"stream": "both", "mode": "whep"}, "frames": self.FRAMES,
                "timeout": self.WAIT}
        driver = browser.Driver(spec)
        self.addCleanup(driver.kill)
        result = yield driver.result(deadline=4 * self.WAIT)
        self.assertNotIn("error", result, result.get("log", "")[-6000:] + "\nserver log:\n" + self.srv.log()[-4000:])
        self.assertIsNone(publisher.poll(), "the aiortc publisher ended early")
        video, audio = result["player"]["inbound"]["video"], result["player"]["inbound"]["audio"]
        self.assertGreaterEqual(video["framesDecoded"], self.FRAMES, video)
        self.assertEqual((video["frameWidth"], video["frameHeight"]), (320, 240), video)
        self.assertEqual(video["codec"]["mimeType"], "video/H264", video)
        self.assertGreater(audio["packetsReceived"], 0, audio)
        self.assertEqual(audio["codec"]["mimeType"], "audio/opus", audio)
        self.assertEqual(result["player"]["transport"]["dtlsState"], "connected")
        pair = result["player"]["pair"]
        self.assertEqual((pair["local"]["protocol"], pair["local"].get("tcpType")), ("tcp", "active"), pair)
        self.assertEqual(pair["remote"]["candidateType"], "host", pair)
        self.assertEqual((pair["remote"]["protocol"], pair["remote"]["port"]), ("tcp", self.tcp_port), pair)
        answer = result["play"]["answer"]
        self.assertEqual(candidate_lines(answer),
                         [f"0 1 tcp 2130706431 127.0.0.1 {self.tcp_port} typ host tcptype passive"])
        self.assertEqual(result["player_delete"], 200)
        # Chromium's own TCP connection carried the play session.
        session = unquote(re.search(r"&session=([^&]+)", result["play"]["location"]).group(1))
        self.srv.wait_log(rf"RTC tcp 127\.0\.0\.1:(\d+) carries session {re.escape(session)}")
        self.srv.wait_log(r"RTC session __defaultVhost__/live/both ended: DELETE by the client; packets=(\d+)")
        self.assertEqual(self.srv.unexpected_errors(), "")
