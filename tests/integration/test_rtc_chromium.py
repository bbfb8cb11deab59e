"""Chromium (the Debian package, driven by Playwright for Python) as a WebRTC publisher
and player of the real server, inside the tests' private network namespace.

Chromium refuses 127.0.0.1 candidates, so the server listens for WebRTC on
10.99.0.1 (netns.ADDRESS, on ``lo`` of the namespace) and answers it as its
candidate; the page comes from the server's ``http_server`` (http://127.0.0.1, a
secure context for getUserMedia) and signals cross-origin to the HTTP API port
(CORS and preflight).  Chromium's fake camera (320x240) and microphone are published;
its OpenH264 encodes H.264 (the server's answer picks it from Chromium's default
offer) and its Opus the audio.  The player passes when ``getStats()`` shows >= 100
video frames decoded at the published size and audio packets received.
See tests/integration/browser.py for the driver and the page.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

from twisted.internet import defer
from twisted.trial import unittest

from tests.integration import browser
from tests.integration import harness as h
from tests.integration import netns
from tests.integration.test_rtc_whip import LossyRelay, ffmpeg9, h264_opus_publish

FRAMES = 100
WAIT = 90  # seconds for each step in Chromium (connect, then the frames): a busy 2-core box


class ChromiumCase:
    """The server and the Chromium driver (the test cases below add their tests)."""

    timeout = 8 * WAIT
    vhosts = ("vhost __defaultVhost__ { rtc { enabled on; rtmp_to_rtc on; } }\n"
              "vhost active { rtc { enabled on; dtls_role active; } }\n")  # the server's vhosts (test_rtc_bridge_chromium)

    def candidate(self, udp_port: int) -> str:
        """The server's rtc_server candidate."""
        return netns.ADDRESS

    def setUp(self):
        browser.need_chromium()
        netns.enter()
        self.pages = tempfile.mkdtemp(prefix="srs-pages-")
        self.addCleanup(shutil.rmtree, self.pages, True)
        self.page = browser.write_page(self.pages)
        self.api_port, self.http_port, udp_port = h.free_port(), h.free_port(), h.free_port()
        self.srv = h.Server(
            f"http_api {{ enabled on; listen 127.0.0.1:{self.api_port}; }}\n"
            f"http_server {{ enabled on; listen 127.0.0.1:{self.http_port}; dir {self.pages}; }}\n"
            f"rtc_server {{ enabled on; listen {netns.ADDRESS}:{udp_port}; candidate {self.candidate(udp_port)}; }}\n"
            + self.vhosts
        )
        self.addCleanup(self.srv.stop)

    def drive(self, play: dict, publish: dict | None = None, **options):
        """Run the Chromium driver (a subprocess polled on the reactor); a Deferred of its result."""
        spec = {"page": f"http://127.0.0.1:{self.http_port}/{self.page}", "api": f"http://127.0.0.1:{self.api_port}",
                "app": "live", "publish": publish, "play": play, "frames": FRAMES, "timeout": WAIT, **options}
        driver = browser.Driver(spec)
        self.addCleanup(driver.kill)
        return driver.result(deadline=4 * WAIT)

    def assert_played(self, result: dict, size: tuple) -> dict:
        self.assertNotIn("error", result, result.get("log", "")[-8000:])
        video, audio = result["player"]["inbound"]["video"], result["player"]["inbound"]["audio"]
        self.assertGreaterEqual(video["framesDecoded"], FRAMES, video)
        self.assertEqual((video["frameWidth"], video["frameHeight"]), size, video)
        self.assertEqual(video["codec"]["mimeType"], "video/H264", video)
        self.assertGreater(audio["packetsReceived"], 0, audio)
        self.assertEqual(audio["codec"]["mimeType"], "audio/opus", audio)
        self.assertEqual(result["player"]["transport"]["dtlsState"], "connected")
        self.assertEqual(result["player"]["transport"]["srtpCipher"], "SRTP_AES128_CM_HMAC_SHA1_80")
        return video

    def assert_published(self, result: dict) -> None:
        sent = result["publisher"]["outbound"]["video"]
        self.assertEqual(result["publish"]["settings"]["width"], 320)
        self.assertEqual(sent["codec"]["mimeType"], "video/H264", sent)
        self.assertIn("profile-level-id=42e01f", sent["codec"]["fmtp"])
        self.assertIn("packetization-mode=1", sent["codec"]["fmtp"])
        self.assertEqual(result["publisher"]["outbound"]["audio"]["codec"]["mimeType"], "audio/opus")
        answer = result["publish"]["answer"]
        self.assertRegex(answer, r"a=candidate:0 1 udp \d+ 10\.99\.0\.1 \d+ typ host")
        self.assertIn("a=ice-lite", answer)

    @defer.inlineCallbacks
    def publish_and_play(self, stream: str, publish_mode: str, play_mode: str, **options):
        """Chromium publishes its fake camera (320x240) and microphone, a second page plays."""
        result = yield self.drive({"stream": stream, "mode": play_mode},
                                  {"stream": stream, "mode": publish_mode, "width": 320, "height": 240}, **options)
        self.assert_played(result, (320, 240))
        self.assert_published(result)
        return result


class ChromiumWebRTC(ChromiumCase, unittest.TestCase):
    @defer.inlineCallbacks
    def test_whip_publish_and_whep_play(self):
        result = yield self.publish_and_play("cam", "whip", "whep")
        self.assertEqual((result["publish"]["status"], result["publish"]["contentType"]), (201, "application/sdp"))
        self.assertRegex(result["publish"]["location"],
                         r"^http://127\.0\.0\.1:\d+/rtc/v1/whip/\?action=delete&token=\w+&app=live&stream=cam&session=")
        self.assertEqual(result["play"]["status"], 201)
        self.assertEqual((result["player_delete"], result["publisher_delete"]), (200, 200), self.srv.log()[-4000:])
        self.srv.wait_log(r"RTC publish __defaultVhost__/live/cam session \S+ dtls server")
        self.srv.wait_log(r"RTC session __defaultVhost__/live/cam ended: DELETE by the client; frames=\d+")
        self.assertEqual(self.srv.unexpected_errors(), "")

    @defer.inlineCallbacks
    def test_whip_and_whep_with_the_server_as_dtls_client(self):
        # dtls_role active: Chromium offers actpass, the server answers active and starts DTLS.
        result = yield self.drive({"stream": "act", "mode": "whep", "vhost": "active"},
                                  {"stream": "act", "mode": "whip", "width": 320, "height": 240, "vhost": "active"})
        self.assert_played(result, (320, 240))
        self.assert_published(result)
        for side, page in (("publish", "publisher"), ("play", "player")):
            self.assertIn("a=setup:active", result[side]["answer"])
            self.assertEqual(result[page]["transport"]["dtlsRole"], "server", result[page]["transport"])
        self.srv.wait_log(r"RTC publish active/live/act session \S+ dtls client")
        self.srv.wait_log(r"RTC play active/live/act session \S+ dtls client")

    @defer.inlineCallbacks
    def test_legacy_api_publish_and_play(self):
        result = yield self.publish_and_play("old", "legacy", "legacy")
        for side in ("publish", "play"):
            self.assertEqual((result[side]["status"], result[side]["code"]), (200, 0), result[side])
            self.assertRegex(result[side]["sessionid"], r"^[0-9a-z]{8}:\S+$")
        self.assertEqual(self.srv.unexpected_errors(), "")

    @defer.inlineCallbacks
    def test_a_late_player_starts_at_a_keyframe_asked_for_not_from_the_cached_gop(self):
        # Chromium's encoder sends a keyframe only when asked (PLI): 8 s after it started the
        # cached GOP holds 8 s of frames.  A late WHEP player gets only frames encoded after
        # it came (from the keyframe its PLI brought), not that GOP in one burst.
        result = yield self.publish_and_play("late", "whip", "whep", play_after=8)
        before = result["publisher_before_play"]["outbound"]["video"]
        after = result["publisher"]["outbound"]["video"]
        received = result["player"]["inbound"]["video"]["framesReceived"]
        self.assertGreater(before["framesEncoded"], 60, before)  # a long GOP was there to burst
        self.assertLessEqual(received, after["framesEncoded"] - before["framesEncoded"], (before, after, received))
        self.assertGreater(after["keyFramesEncoded"], before["keyFramesEncoded"])  # the player's PLI

    @defer.inlineCallbacks
    def test_a_player_waiting_before_the_publisher_plays_it_and_the_next_one(self):
        # The WHEP player comes first (the stream is not published yet); a page publishes, leaves
        # (DELETE), and another page publishes the same stream: the player decodes both.
        result = yield self.publish_and_play("wait", "whip", "whep", play_first=True, play_after=3, republish=True)
        first = result["player_first"]["inbound"]["video"]
        self.assertGreaterEqual(first["framesDecoded"], FRAMES, first)
        self.assertGreaterEqual(result["player"]["inbound"]["video"]["framesDecoded"],
                                first["framesDecoded"] + FRAMES)
        self.assertEqual((result["publisher_first_delete"], result["publisher_delete"], result["player_delete"]),
                         (200, 200, 200))
        self.assertEqual(len(re.findall(r"RTC publish __defaultVhost__/live/wait ", self.srv.log())), 2)

    @defer.inlineCallbacks
    def test_whep_plays_an_rtmp_publisher_with_h264_and_opus(self):
        ff = ffmpeg9()
        publisher = subprocess.Popen(h264_opus_publish(ff, "flv", self.srv.url("rtmp"), seconds=4 * WAIT),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(h.stop_process, publisher)
        self.srv.wait_log(r"publish __defaultVhost__/live/rtmp\b", timeout=60)
        result = yield self.drive({"stream": "rtmp", "mode": "whep"})
        self.assertIsNone(publisher.poll(), "the RTMP publisher ended early")
        video = self.assert_played(result, (352, 288))
        self.assertRegex(video["codec"]["fmtp"], r"profile-level-id=42[0-9a-f]{4}")
        self.assertEqual(result["player_delete"], 200, self.srv.log()[-4000:])
        self.srv.wait_log(r"RTC session __defaultVhost__/live/rtmp ended: DELETE by the client")


class ChromiumPublisherLoss(ChromiumCase, unittest.TestCase):
    """A relay (the server's only candidate) loses 5% of Chromium's RTP to the server."""

    def candidate(self, udp_port: int) -> str:
        self.relay = LossyRelay(udp_port, 0.05, up=True, host=netns.ADDRESS, seconds=4 * WAIT)
        self.addCleanup(self.relay.close)
        return f"{netns.ADDRESS}:{self.relay.port}"

    @defer.inlineCallbacks
    def test_nack_recovers_chromiums_losses(self):
        # Chromium resends what the server NACKs (no RTX negotiated: on the video SSRC); it also
        # pads there to probe bandwidth and never resends lost padding, which is no loss.
        result = yield self.drive(None, {"stream": "lossy", "mode": "whip", "width": 640, "height": 480},
                                  play_seconds=12)
        self.assertNotIn("error", result, result.get("log", "")[-8000:])
        sent = result["publisher"]["outbound"]["video"]
        self.assertGreater(sent["nackCount"], 0, sent)
        self.assertGreater(sent["retransmittedPacketsSent"], 0, sent)
        self.assertEqual(result["publisher_delete"], 200)
        match = self.srv.wait_log(r"RTC session __defaultVhost__/live/lossy ended: DELETE by the client; "
                                  r"frames=(\d+) dropped_frames=(\d+) .* nacks=(\d+) recovered=(\d+)")
        frames, dropped, nacks, recovered = (int(x) for x in match.groups())
        self.assertGreater(self.relay.dropped, 0)
        self.assertGreater(recovered, 0, match.group(0))
        self.assertGreater(frames, 100, match.group(0))
        self.assertLess(dropped, frames // 10, match.group(0))
