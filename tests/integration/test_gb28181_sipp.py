"""GB28181 SIP scenarios played by sipp (Debian's sip-tester) as the device, over UDP and TCP.

The main scenario (sipp/register.xml) registers, sends a keepalive, waits ``-d`` ms and
unregisters; the server's INVITE has another Call-ID, so sipp plays it with the out-of-call
scenario (``-oocsf``): answered (answer.xml), never answered (noanswer.xml), answered late
and twice (lost200.xml), hung up by the device (bye.xml), or hung up by the server after the
keepalive timeout (expire.xml).  sipp's exit code judges the main scenario; the message trace
(every message sent and received, in order) judges the out-of-call one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

from twisted.trial import unittest

from tests.integration import harness as h
from tests.integration import netns

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sipp")
MESSAGE_START = re.compile(r"^(?:(REGISTER|MESSAGE|INVITE|ACK|BYE) sip:\S+ SIP/2\.0|SIP/2\.0 (\d{3}) .*)$", re.M)


def sipp() -> str:
    return h.need("sipp (apt-get install sip-tester)", shutil.which("sipp"))


class SippCase(unittest.TestCase):
    timeout = 240
    sip_timeout = 60

    def setUp(self):
        netns.enter()
        sipp()
        self.sip_port, self.media_port, self.api = h.free_port(), h.free_port(), h.free_port()
        conf = (f"http_api {{ enabled on; listen 127.0.0.1:{self.api}; }}\n"
                f"stream_caster {{ enabled on; caster gb28181; output rtmp://127.0.0.1/live/[stream]; "
                f"listen {self.media_port}; sip {{ enabled on; listen {self.sip_port}; candidate 127.0.0.1; "
                f"timeout {self.sip_timeout}; reinvite 2; }} }}\n"
                f"vhost __defaultVhost__ {{ }}\n")
        self.server = h.Server(conf)
        self.addCleanup(self.server.stop)
        self.server.wait_log(r"GB28181 media listen")
        self.tmp = tempfile.mkdtemp(prefix="srs-gb-sipp-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def play(self, ooc: str, device: str, pause_ms: int, transport: str = "u1") -> list:
        """Run the main scenario with ``ooc`` as the out-of-call one; the messages (kind, text) in order."""
        trace = os.path.join(self.tmp, f"{device}.log")
        cmd = [sipp(), "-sf", os.path.join(HERE, "register.xml"), "-oocsf", os.path.join(HERE, ooc),
               "-key", "device", device, "-d", str(pause_ms), "-t", transport, "-i", "127.0.0.1",
               "-p", str(h.free_port()), "-m", "1", "-timeout", "60", "-nostdin", "-trace_msg",
               "-message_file", trace, f"127.0.0.1:{self.sip_port}"]
        result = subprocess.run(cmd, capture_output=True, timeout=120, cwd=self.tmp)
        with open(trace, errors="replace") as f:
            text = f.read()
        self.assertEqual(result.returncode, 0, f"sipp failed: {result.stdout[-1500:]!r}\n{text[-3000:]}")
        messages = []
        starts = list(MESSAGE_START.finditer(text))
        for i, m in enumerate(starts):
            end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
            messages.append((m.group(1) or m.group(2), text[m.start():end]))
        return messages

    @staticmethod
    def kinds(messages) -> list:
        return [k for k, _ in messages]

    def invite(self, messages) -> str:
        return next(text for k, text in messages if k == "INVITE")


class SippScenarios(SippCase):
    def check_answered(self, transport: str, media: str) -> None:
        device = "34020000001320000011" if transport == "u1" else "34020000001320000012"
        messages = self.play("answer.xml", device, 2000, transport)
        kinds = self.kinds(messages)
        self.assertEqual(kinds[:2], ["REGISTER", "200"])
        invite = self.invite(messages)
        self.assertIn(f"m=video {self.media_port} {media} 96", invite)
        for line in ("a=recvonly", "a=rtpmap:96 PS/90000", "c=IN IP4 127.0.0.1"):
            self.assertIn(line, invite)
        ssrc = re.search(r"^y=(\d{10})\s*$", invite, re.M)
        self.assertIsNotNone(ssrc, invite)
        self.assertRegex(invite, rf"Subject: {device}:{ssrc.group(1)},34020000002000000001:0")
        i = kinds.index("INVITE")
        self.assertIn("ACK", kinds[i:])
        queries = [t for k, t in messages[i:] if k == "MESSAGE" and "<CmdType>DeviceInfo</CmdType>" in t]
        # once the call is up, the server asks for the device info (one query; sipp logs it twice,
        # as received and as unexpected: the out-of-call scenario only plays INVITEs)
        self.assertEqual(len({re.search(r"Call-ID: (\S+)", q).group(1) for q in queries}), 1)
        self.assertEqual(kinds[-2:], ["REGISTER", "200"])  # the unregister
        self.server.wait_log(rf"GB SIP device {device} accepted the INVITE, ssrc={int(ssrc.group(1))}")
        self.server.wait_log(rf"GB SIP device {device}: unregistered \(Expires: 0\)")

    def test_register_invite_answered_unregister_udp(self):
        self.check_answered("u1", "RTP/AVP")

    def test_register_invite_answered_unregister_tcp(self):
        self.check_answered("t1", "TCP/RTP/AVP")

    def test_invite_not_answered_is_retransmitted(self):
        messages = self.play("noanswer.xml", "34020000001320000013", 4500)
        invites = [text for k, text in messages if k == "INVITE"]
        self.assertGreaterEqual(len(invites), 3)  # 0, 0.5, 1.5, 3.5 s
        call_ids = {re.search(r"Call-ID: (\S+)", t).group(1) for t in invites}
        self.assertEqual(len(call_ids), 1)
        self.assertNotIn("ACK", self.kinds(messages))

    def test_lost_200_ok(self):
        messages = self.play("lost200.xml", "34020000001320000014", 4000)
        kinds = self.kinds(messages)
        first_answer = next(i for i, (k, t) in enumerate(messages) if k == "200" and "INVITE" in t.split("CSeq:")[1][:20])
        self.assertGreaterEqual(kinds[:first_answer].count("INVITE"), 2)  # retransmitted while no answer came
        self.assertEqual(kinds[first_answer:].count("ACK"), 2)  # each 200 OK is ACKed
        self.server.wait_log(r"GB SIP device 34020000001320000014 accepted the INVITE")

    def test_bye_from_the_device(self):
        messages = self.play("bye.xml", "34020000001320000015", 4000)
        kinds = self.kinds(messages)
        i = kinds.index("BYE")
        self.assertEqual(kinds[i + 1], "200")
        self.server.wait_log(r"GB SIP device 34020000001320000015: BYE from the device")


class SippKeepaliveTimeout(SippCase):
    sip_timeout = 4

    def test_no_keepalive_ends_the_device_with_a_bye(self):
        messages = self.play("expire.xml", "34020000001320000016", 8000)
        kinds = self.kinds(messages)
        self.assertIn("BYE", kinds)
        self.assertEqual(kinds[kinds.index("BYE") + 1], "200")
        self.server.wait_log(r"GB SIP device 34020000001320000016: no REGISTER or keepalive for 4s")
