"""``?encrypt=false&dtls=false`` (SRS's plaintext transport: no DTLS, plain RTP both ways)
and the codec choices of the API's query, against the real server inside the tests'
private network namespace.  The publisher is a raw UDP socket: one STUN check, then plain
H.264 RTP; the stream is listed with the SPS's size.  ``?codec=hevc`` and ``?acodec=pcmu``
are refused (SRS's 5018), H.264 and Opus by name are answered."""

from __future__ import annotations

import http.client
import json
import re
import socket

from twisted.trial import unittest

from srs_twisted.codec import rtp, sdp, stun
from srs_twisted.codec.rtp_h264 import H264Payloader
from tests.codec.sdp_fixtures import CHROMIUM_OFFER, FFMPEG_WHIP_OFFER
from tests.integration import harness as h
from tests.integration import netns
from tests.rtc.test_glue import IDR, PPS, SLICE, SPS

VIDEO_PT, VIDEO_SSRC = 106, 304538369  # the FFmpeg offer's


class Reply:
    def __init__(self, response):
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.getheaders()}
        self.body = response.read()


def api_request(port: int, method: str, path: str, body=None) -> Reply:
    """One request on a fresh connection to the HTTP API on 127.0.0.1:``port``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, path, body=body.encode() if isinstance(body, str) else body)
        return Reply(conn.getresponse())
    finally:
        conn.close()


class RtcPlainAndCodecs(unittest.TestCase):
    def setUp(self):
        netns.enter()
        self.api_port = h.free_port()
        self.udp_port = h.free_port()
        self.srv = h.Server(
            f"http_api {{ enabled on; listen 127.0.0.1:{self.api_port}; }}\n"
            f"rtc_server {{ enabled on; listen 127.0.0.1:{self.udp_port}; candidate 127.0.0.1; }}\n"
            "vhost __defaultVhost__ { rtc { enabled on; } }\n"
        )
        self.addCleanup(self.srv.stop)

    def post(self, path: str, body: str):
        r = api_request(self.api_port, "POST", path, body)
        return r.status, r.body

    def streams(self):
        return json.loads(api_request(self.api_port, "GET", "/api/v1/streams/").body)["streams"]

    def test_plain_rtp_without_dtls_publishes(self):
        status, body = self.post("/rtc/v1/whip/?app=live&stream=plain&encrypt=false&dtls=false", FFMPEG_WHIP_OFFER)
        self.assertEqual(status, 201, body)
        answer = sdp.parse(body.decode())
        media = answer.media[0]
        ufrag, pwd = media.ice_ufrag, media.ice_pwd
        port = media.candidates[0].port
        self.srv.wait_log(r"RTC publish __defaultVhost__/live/plain session \S+ no dtls, plain rtp")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.settimeout(5)
        server = ("127.0.0.1", port)
        sock.sendto(stun.binding_request(f"{ufrag}:6114c1fe", pwd, priority=1, controlling=1, use_candidate=True),
                    server)
        reply = stun.parse(sock.recv(2048))
        self.assertEqual(reply.msg_class, stun.SUCCESS)
        payloader = H264Payloader(max_payload=1000)
        seq = 1
        for i in range(10):  # a keyframe then slices, 40 ms apart on the 90 kHz clock
            nalus = [SPS, PPS, IDR] if i % 5 == 0 else [SLICE]
            for packet in rtp.packetize(payloader.payloads(nalus), VIDEO_PT, VIDEO_SSRC, seq, 3600 * i):
                sock.sendto(bytes(packet), server)  # plain RTP: nothing encrypted
                seq += 1

        def listed():
            mine = [s for s in self.streams() if s["name"] == "plain"]
            return mine and mine[0].get("video") and mine[0]

        stream = h.wait_for(listed, timeout=30, message="the plain RTP publisher's stream is not listed")
        self.assertEqual((stream["video"]["codec"], stream["video"]["width"], stream["video"]["height"]),
                         ("H264", 320, 240))
        self.assertEqual(self.srv.unexpected_errors(), "")

    def test_codec_choices(self):
        for query in ("codec=h264&acodec=opus", "vcodec=h264", "codec=whatever"):
            status, body = self.post(f"/rtc/v1/whip/?app=live&stream=c{len(query)}&{query}", CHROMIUM_OFFER)
            self.assertEqual(status, 201, (query, body))
            self.assertIn(b"H264/90000", body)
        for query, reason in (("codec=hevc", "m=video mid=1: codec hevc (H.265) is not relayed"),
                              ("vcodec=av1", "codec av1 (AV1) is not relayed"),
                              ("codec=vp9", "codec vp9 (VP9) is not relayed"),
                              ("acodec=pcmu", "m=audio mid=0: codec pcmu (PCMU (G.711 u-law)) is not relayed"),
                              ("acodec=pcma", "codec pcma (PCMA (G.711 A-law)) is not relayed")):
            status, body = self.post(f"/rtc/v1/whip/?app=live&stream=x&{query}", CHROMIUM_OFFER)
            self.assertNotEqual(status, 201, (query, body))
            self.assertIn(b"5018", body)
            self.srv.wait_log("code 5018: .*" + re.escape(reason))
        # the legacy API takes them from its own URL too, as SRS reads them there
        status, body = self.post("/rtc/v1/publish/?codec=hevc", json.dumps(
            {"sdp": CHROMIUM_OFFER, "streamurl": "webrtc://127.0.0.1/live/legacy"}))
        self.assertEqual(status, 200)
        self.assertNotEqual(json.loads(body)["code"], 0)
        self.srv.wait_log(r"/rtc/v1/publish/: code 5018: .*codec hevc")
