"""Transport-wide congestion control feedback to a WebRTC publisher, with a real client:
aiortc publishing over WHIP with the transport-cc extension (tests/integration/twcc_aiortc.py
adds it to aiortc, which has no TWCC of its own) inside the tests' private network namespace.
The server answers the extension, numbers are read from every packet, and transport-cc
feedback comes back every 100 ms: aiortc's RTCP parser takes it, and it reports the packets
the client sent."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from twisted.trial import unittest

from tests.integration import harness as h
from tests.integration import netns
from tests.integration.test_rtc_whip import need_aiortc

HERE = os.path.dirname(os.path.abspath(__file__))


class RtcTwcc(unittest.TestCase):
    def setUp(self):
        netns.enter()
        need_aiortc()
        self.api_port = h.free_port()
        self.srv = h.Server(
            f"http_api {{ enabled on; listen 127.0.0.1:{self.api_port}; }}\n"
            f"rtc_server {{ enabled on; listen 127.0.0.1:{h.free_port()}; candidate 127.0.0.1; }}\n"
            "vhost __defaultVhost__ { rtc { enabled on; } }\n"
            "vhost notwcc { rtc { enabled on; twcc off; } }\n"
        )
        self.addCleanup(self.srv.stop)

    def publish(self, stream: str, query: str = "") -> str:
        url = f"http://127.0.0.1:{self.api_port}/rtc/v1/whip/?app=live&stream={stream}{query}"
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "twcc_aiortc.py"), url, "6"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(h.stop_process, proc)
        output = proc.communicate(timeout=120)[0].decode(errors="replace")
        self.assertEqual(proc.returncode, 0, output)
        return output

    def counts(self, output: str) -> dict:
        match = re.search(r"TWCC (sent=\d+ feedbacks=\d+ received=\d+ lost=\d+ aiortc_errors=\d+ wrong=\d+)", output)
        self.assertIsNotNone(match, output)
        return {k: int(v) for k, v in (item.split("=") for item in match.group(1).split())}

    def test_feedback_reaches_an_aiortc_publisher(self):
        output = self.publish("tw")
        self.assertIn("OFFER_TWCC True", output)
        self.assertIn("ANSWER_TWCC True", output)
        c = self.counts(output)
        self.assertGreater(c["sent"], 300, c)  # 6 s of 30 fps video and 50 Opus packets a second
        # every 100 ms: about 60 in 6 s (at least 20 on a busy machine)
        self.assertGreater(c["feedbacks"], 20, c)
        self.assertEqual((c["aiortc_errors"], c["wrong"]), (0, 0), c)
        # loopback: nearly every packet sent was reported received
        self.assertGreater(c["received"], c["sent"] * 0.9, c)
        self.assertLessEqual(c["lost"], c["sent"] * 0.05, c)
        ended = self.srv.wait_log(r"RTC session __defaultVhost__/live/tw ended: .* twcc=(\d+)", timeout=30)
        self.assertGreater(int(ended.group(1)), 20, ended.group(0))

    def test_no_feedback_when_the_vhost_has_twcc_off(self):
        output = self.publish("off", "&vhost=notwcc")
        self.assertIn("OFFER_TWCC True", output)
        self.assertIn("ANSWER_TWCC False", output)
        c = self.counts(output)
        self.assertEqual(c["feedbacks"], 0, c)
