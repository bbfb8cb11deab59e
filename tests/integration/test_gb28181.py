"""GB28181 end to end: the real server, a camera simulator (tests/integration/gb_device.py: SIP
over TCP or UDP, GStreamer's mpegpsmux PS over RTP over TCP or UDP), FFmpeg/ffprobe players
over RTMP and HLS, HTTP hooks, the API (sessions, DELETE, the external-SIP publish) and bad
input.  Everything runs inside the tests' private network namespace (tests/integration/netns.py).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from twisted.trial import unittest

from tests.integration import harness as h
from tests.integration import netns
from tests.integration.gb_device import Camera, ps_file, ps_file_hevc_g711
from tests.integration.test_rtc_whip import need_aiortc

DEVICE = "34020000001320000001"


class Hooks:
    """An HTTP hook receiver in a thread: every body by action, answering code 0."""

    def __init__(self) -> None:
        bodies = self.bodies = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                data = self.rfile.read(int(self.headers.get("content-length") or 0))
                bodies.append(json.loads(data))
                self.send_response(200)
                self.send_header("content-length", "1")
                self.end_headers()
                self.wfile.write(b"0")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def actions(self, stream: str = DEVICE) -> list:
        return [b["action"] for b in self.bodies if b.get("stream") == stream]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class GbCase(unittest.TestCase):
    timeout = 400
    sip_extra = "timeout 60; reinvite 2;"
    sip_enabled = "on"
    extra_conf = ""  # more top-level directives
    extra_vhost = ""  # more directives of the default vhost

    def setUp(self):
        netns.enter()
        h.ffmpeg(), h.ffprobe()
        self.ps = ps_file()
        self.sip_port, self.media_port = h.free_port(), h.free_port()
        self.http, self.api = h.free_port(), h.free_port()
        self.hls = tempfile.mkdtemp(prefix="srs-gb-hls-")
        self.addCleanup(shutil.rmtree, self.hls, True)
        self.hooks = Hooks()
        self.addCleanup(self.hooks.close)
        base = f"http://127.0.0.1:{self.hooks.port}/hooks"
        conf = (f"{self.extra_conf.format(rtc=h.free_port())}\n"
                f"http_api {{ enabled on; listen 127.0.0.1:{self.api}; }}\n"
                f"http_server {{ enabled on; listen 127.0.0.1:{self.http}; dir {self.hls}; }}\n"
                f"stream_caster {{ enabled on; caster gb28181; output rtmp://127.0.0.1/live/[stream]; "
                f"listen {self.media_port}; sip {{ enabled {self.sip_enabled}; listen {self.sip_port}; "
                f"candidate 127.0.0.1; {self.sip_extra} }} }}\n"
                f"vhost __defaultVhost__ {{ hls {{ enabled on; hls_path {self.hls}; hls_fragment 2; }} "
                f"http_remux {{ enabled on; mount [vhost]/[app]/[stream].flv; }} "
                f"dvr {{ enabled on; dvr_plan session; dvr_path {self.hls}/dvr/[app]/[stream].[timestamp].flv; }} "
                f"{self.extra_vhost} "
                f"http_hooks {{ enabled on; on_publish {base}; on_unpublish {base}; }} }}\n")
        self.server = h.Server(conf)
        self.addCleanup(self.server.stop)
        self.server.wait_log(r"GB28181 media listen")
        self.cameras = []
        self.addCleanup(self._close_cameras)

    def _close_cameras(self):
        for cam in self.cameras:
            cam.close()

    def camera(self, **kw) -> Camera:
        kw.setdefault("ps", self.ps)
        cam = Camera(self.sip_port, **kw)
        self.cameras.append(cam)
        return cam

    def api_get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api}{path}", timeout=10) as r:
            return json.loads(r.read())

    def api_call(self, method: str, path: str, body: bytes | None = None) -> dict:
        req = urllib.request.Request(f"http://127.0.0.1:{self.api}{path}", data=body, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def session(self, device: str = DEVICE) -> dict:
        found = [s for s in self.api_get("/gb/v1/sessions/")["sessions"] if s["id"] == device]
        return found[0] if found else {}

    def rtmp(self, device: str = DEVICE) -> str:
        return self.server.url(device)

    def assert_plays(self, url: str, seconds: float = 10.0, video: str = "h264", rate: int = 44100) -> None:
        """FFmpeg records ``seconds`` of the stream; the file has ``video`` 320x240 and AAC that long."""
        out = os.path.join(self.hls, "rec-%d.mkv" % random.randrange(10 ** 6))
        result = h.record(url, seconds, out)
        self.assertEqual(result.returncode, 0, result.stderr[-500:])
        info = h.probe(out)
        streams = h.assert_streams(info, [("video", video), ("audio", "aac")])
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (320, 240))
        self.assertEqual(int(streams["audio"]["sample_rate"]), rate)
        self.assertGreaterEqual(float(info["format"]["duration"]), seconds - 0.5)

    def assert_hls(self, device: str = DEVICE, video: str = "h264") -> None:
        """The HLS playlist holds >= 10 s of segments, which ffprobe reads with the right codecs and size."""
        playlist = os.path.join(self.hls, "live", f"{device}.m3u8")

        def seconds() -> float:
            if not os.path.exists(playlist):
                return 0.0
            with open(playlist) as f:
                return sum(float(line[8:].split(",")[0]) for line in f if line.startswith("#EXTINF:"))

        h.wait_for(lambda: seconds() >= 10, 60, message=lambda: f"HLS playlist of {seconds():.1f} s, not 10")
        info = h.probe(f"http://127.0.0.1:{self.http}/live/{device}.m3u8")
        streams = h.assert_streams(info, [("video", video), ("audio", "aac")])
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (320, 240))


class EmbeddedSip(GbCase):
    def check_camera(self, sip: str, media: str) -> None:
        cam = self.camera(sip=sip)
        cam.register()
        h.wait_for(lambda: cam.acks, message="no ACK to the camera's 200 OK")
        self.assertEqual(cam.invites[0][1:3], (media, self.media_port))
        self.assert_plays(self.rtmp(), 10)
        s = self.session()
        self.assertEqual((s["sip_state"], s["sip_transport"], s["media"], s["media_transport"], s["publishing"]),
                         ("Stable", sip.upper(), True, media, True))
        self.assertEqual((s["ssrc"], s["codecs"], s["lost"]), (cam.invites[0][3], {"video": "h264", "audio": "aac"}, 0))
        self.assertGreater(s["recv_bytes"], 500_000)
        self.assertEqual(s["info"], {"status": "OK", "manufacturer": "TestCam", "model": "PS-1",
                                     "firmware": "1.0"})  # from the keepalives and the DeviceInfo answer
        self.assert_hls()  # HLS of the same stream
        flv = f"http://127.0.0.1:{self.http}/live/{DEVICE}.flv"  # and HTTP-FLV
        h.assert_streams(h.probe(flv), [("video", "h264"), ("audio", "aac")])
        self.assertEqual(self.hooks.actions(), ["on_publish"])
        # the device unregisters: the stream ends and on_unpublish fires
        cam.unregister()
        h.wait_for(lambda: self.hooks.actions() == ["on_publish", "on_unpublish"], 30,
                   message=lambda: f"hooks {self.hooks.actions()}")
        h.wait_for(lambda: not self.session(), 10)
        self.server.wait_log(r"unregistered \(Expires: 0\)")
        # DVR recorded the publish, one file for the session
        dvr = os.path.join(self.hls, "dvr", "live")
        (name,) = [n for n in os.listdir(dvr) if n.startswith(DEVICE)]
        info = h.probe(os.path.join(dvr, name))
        h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        self.assertGreaterEqual(float(info["format"]["duration"]), 10)

    def test_tcp_camera_plays_over_rtmp_and_hls(self):
        self.check_camera("tcp", "tcp")

    def test_udp_camera_plays_over_rtmp_and_hls(self):
        self.check_camera("udp", "udp")

    def test_udp_loss_and_reordering_lose_frames_not_the_stream(self):
        """1 % of the RTP packets lost and 5 % reordered: 10 s still play and decode."""
        cam = self.camera(sip="udp", loss=0.01, reorder=0.05)
        cam.register()
        self.assert_plays(self.rtmp(), 10)
        s = self.session()
        self.assertGreater(cam.dropped, 10)
        self.assertGreater(s["lost"], 0)
        self.assertLessEqual(s["lost"], cam.dropped)
        out = os.path.join(self.hls, "lossy.flv")
        self.assertEqual(h.record(self.rtmp(), 4, out).returncode, 0)
        decoded = subprocess.run([h.ffmpeg(), "-v", "error", "-i", out, "-f", "null", "-"], capture_output=True,
                                 timeout=120)
        self.assertEqual(decoded.returncode, 0)  # damaged frames are reported, the file decodes to its end

    def test_h265_and_g711_camera(self):
        """H.265 passes through (Enhanced RTMP, HLS); G.711 A-law becomes AAC 48 kHz."""
        cam = self.camera(sip="tcp", ps=ps_file_hevc_g711())
        cam.register()
        self.assert_plays(self.rtmp(), 10, video="hevc", rate=48000)
        self.assertEqual(self.session()["codecs"], {"video": "h265", "audio": "pcma"})
        self.assert_hls(video="hevc")

    def test_media_stops_and_resumes_after_a_reinvite(self):
        cam = self.camera(sip="tcp")
        cam.register()
        h.probe(self.rtmp())
        player = h.start_player(self.rtmp(), 25, os.path.join(self.hls, "long.mkv"))
        self.addCleanup(h.stop_process, player)
        time.sleep(3)  # the player plays a while before the camera pauses
        cam.stop_media()  # its TCP media connection closes
        self.server.wait_log(r"GB media of device \d+ stopped: media connection closed; re-invite in 2s")
        h.wait_for(lambda: cam.byes, 20, message="no BYE after the media stopped")
        h.wait_for(lambda: len(cam.invites) == 2, 20, message="no re-INVITE")
        self.assertEqual(cam.invites[1][3], cam.invites[0][3])  # the same SSRC
        self.assertNotEqual(cam.invites[1][0], cam.invites[0][0])  # a new call
        h.wait_for(lambda: len(cam.acks) == 2, 20)
        h.wait_for(lambda: self.session().get("media"), 20)
        self.assertEqual(self.hooks.actions(), ["on_publish"])  # one publish across the gap
        player.wait(120)
        info = h.probe(os.path.join(self.hls, "long.mkv"))
        h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        self.assertGreaterEqual(float(info["format"]["duration"]), 20)

    def test_bye_from_the_device_ends_the_stream(self):
        cam = self.camera(sip="udp")
        cam.register()
        h.probe(self.rtmp())
        cam.bye()
        h.wait_for(lambda: self.hooks.actions() == ["on_publish", "on_unpublish"], 30,
                   message=lambda: f"hooks {self.hooks.actions()}")
        self.assertEqual(self.session()["sip_state"], "Bye")
        time.sleep(4)  # longer than reinvite: a BYE is not followed by a re-invite
        self.assertEqual(len(cam.invites), 1)
        cam.register()  # until the device registers again
        h.wait_for(lambda: len(cam.invites) == 2, 20)
        h.probe(self.rtmp())

    def test_api_lists_and_ends_sessions(self):
        cam = self.camera(sip="tcp")
        cam.register()
        h.probe(self.rtmp())
        clients = self.api_get("/api/v1/clients/")["clients"]
        (gb,) = [c for c in clients if c["type"] == "gb28181-publish"]
        self.assertEqual(gb["id"], self.session()["client_id"])
        self.assertEqual(self.api_call("DELETE", f"/gb/v1/sessions/{DEVICE}")["code"], 0)
        h.wait_for(lambda: cam.byes, 20, message="no BYE from the API's DELETE")
        h.wait_for(lambda: self.hooks.actions() == ["on_publish", "on_unpublish"], 30)
        self.assertEqual(self.api_call("DELETE", f"/gb/v1/sessions/{DEVICE}")["code"], 2049)


class GbWebRtc(GbCase):
    extra_conf = "rtc_server {{ enabled on; listen 127.0.0.1:{rtc}; candidate 127.0.0.1; }}"
    extra_vhost = "rtc { enabled on; rtmp_to_rtc on; }"

    def test_camera_plays_over_whep(self):
        """The camera's H.264 and AAC (as Opus) play over WebRTC (aiortc's WHEP player)."""
        need_aiortc()
        cam = self.camera(sip="tcp")
        cam.register()
        h.probe(self.rtmp())
        client = os.path.join(os.path.dirname(os.path.abspath(__file__)), "whep_aiortc.py")
        url = f"http://127.0.0.1:{self.api}/rtc/v1/whep/?app=live&stream={DEVICE}"
        player = subprocess.run([sys.executable, client, url, "6"], capture_output=True, timeout=180)
        output = player.stdout.decode(errors="replace")
        self.assertEqual(player.returncode, 0, output + player.stderr.decode(errors="replace")[-1500:])
        video = re.search(r"VIDEO (\d+) (\d+)x(\d+)", output)
        audio = re.search(r"AUDIO (\d+)", output)
        self.assertGreaterEqual(int(video.group(1)), 50, output)
        self.assertEqual(video.group(2, 3), ("320", "240"), output)
        self.assertGreaterEqual(int(audio.group(1)), 100, output)
        self.assertIn("DELETE 200", output)


class KeepaliveTimeout(GbCase):
    sip_extra = "timeout 6; reinvite 2;"

    def test_no_keepalive_expires_the_device(self):
        cam = self.camera(sip="udp", keepalive=0)
        cam.register()
        h.probe(self.rtmp())
        start = time.monotonic()
        h.wait_for(lambda: self.hooks.actions() == ["on_publish", "on_unpublish"], 30,
                   message=lambda: f"hooks {self.hooks.actions()}")
        self.assertGreaterEqual(time.monotonic() - start, 3)
        self.server.wait_log(r"no REGISTER or keepalive for 6s")
        self.assertEqual(self.session(), {})


class ExternalSip(GbCase):
    sip_enabled = "off"

    def test_publish_api_then_media(self):
        body = json.dumps({"id": "cam7", "ssrc": "1234567"}).encode()
        self.assertEqual(self.api_call("POST", "/gb/v1/publish/", body),
                         {"code": 0, "port": self.media_port, "is_tcp": True})
        self.assertEqual(self.api_call("POST", "/gb/v1/publish/", body)["code"], 1028)
        self.assertEqual(self.api_call("POST", "/gb/v1/publish/", b"{}")["code"], 3008)
        self.assertEqual(self.api_call("POST", "/gb/v1/publish/", b"[1")["code"], 3008)
        cam = self.camera(sip=None)
        cam.start_media("tcp", self.media_port, 1234567)
        info = h.probe(self.rtmp("cam7"))
        h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        s = self.session("cam7")
        self.assertEqual((s["sip_state"], s["ssrc"], s["publishing"]), ("External", 1234567, True))


class BadInput(GbCase):
    def test_hostile_sip_and_media_leave_a_device_streaming(self):
        cam = self.camera(sip="tcp")
        cam.register()
        h.probe(self.rtmp())
        rng = random.Random(9)
        rss0 = self.server.rss_kb()
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(udp.close)
        # bad PS (bad start codes and lengths) from a second device (registered before the flood
        # below fills the registrations): dropped, no harm
        bad = self.camera(sip="udp", device_id="34020000001320000099", ps=None)
        bad.register()
        h.wait_for(lambda: bad.acks, message="the second device was not invited")
        for i in range(300):
            junk = b"\x00\x00\x01" + bytes([rng.choice((0xBA, 0xBC, 0xE0, 0xC0, 0x42))]) + \
                bytes(rng.randrange(256) for _ in range(rng.randrange(1, 1200)))
            udp.sendto(struct.pack(">BBHII", 0x80, 96, i, 0, bad.invites[0][3]) + junk, ("127.0.0.1", self.media_port))
        h.wait_for(lambda: self.session("34020000001320000099").get("errors", 0) > 10, 20,
                   message="the bad PS was not counted")
        # random SIP over UDP and TCP, and oversized headers
        for i in range(300):
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 1400)))
            udp.sendto(junk if i % 2 else b"REGISTER sip:x SIP/2.0\r\n" + junk, ("127.0.0.1", self.sip_port))
        for payload in (b"INVITE x\r\n\r\n", b"X" * 70000, b"REGISTER sip:a SIP/2.0\r\nContent-Length: 99999999\r\n"
                        b"Via: a\r\nFrom: <sip:a@b>\r\nTo: <sip:a@b>\r\nCall-ID: 1\r\nCSeq: 1 REGISTER\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", self.sip_port), timeout=10) as s:
                try:
                    s.sendall(payload)
                    s.settimeout(10)
                    while s.recv(65536):
                        pass  # the server closes it
                except OSError:
                    pass
        # thousands of registrations (over UDP, in batches answered before the next), bounded by
        # max_connections (1000): two real devices and 998 others, then 503
        flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(flood.close)
        flood.bind(("127.0.0.1", 0))
        flood.settimeout(2)
        answers = {"200": 0, "503": 0}
        for batch in range(12):
            for i in range(batch * 100, batch * 100 + 100):
                reg = (f"REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\n"
                       f"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{i}\r\nFrom: <sip:9{i:019d}@3402000000>;tag=t{i}\r\n"
                       f"To: <sip:9{i:019d}@3402000000>\r\nCall-ID: flood{i}\r\nCSeq: 1 REGISTER\r\nExpires: 3600\r\n"
                       f"Content-Length: 0\r\n\r\n").encode()
                flood.sendto(reg, ("127.0.0.1", self.sip_port))
            got = 0
            while got < 100:
                try:
                    data = flood.recv(65536)
                except socket.timeout:
                    break
                status = data[8:11].decode(errors="replace")
                if data.startswith(b"SIP/2.0 ") and b"REGISTER" in data.split(b"CSeq:")[1][:20]:
                    answers[status] = answers.get(status, 0) + 1
                    got += 1
        self.assertEqual(answers, {"200": 998, "503": 202})
        # RTP with unknown SSRCs over UDP, and over TCP (the connection is closed)
        for i in range(500):
            udp.sendto(struct.pack(">BBHII", 0x80, 96, i, 0, 0xDEAD0000 + i) + b"\x00" * 100, ("127.0.0.1", self.media_port))
        with socket.create_connection(("127.0.0.1", self.media_port), timeout=10) as s:
            rtp = struct.pack(">BBHII", 0x80, 96, 1, 0, 0xBADBAD) + b"\x00" * 100
            s.sendall(struct.pack(">H", len(rtp)) + rtp)
            s.settimeout(10)
            self.assertEqual(s.recv(10), b"")
        # an oversized RFC 4571 length closes that media connection
        with socket.create_connection(("127.0.0.1", self.media_port), timeout=10) as s:
            s.sendall(b"\xff\xff" + b"\x00" * 1000)
            s.settimeout(10)
            self.assertEqual(s.recv(10), b"")
        # the camera's SSRC from another peer: dropped while its media flows
        for i in range(50):
            udp.sendto(struct.pack(">BBHII", 0x80, 96, i, 0, cam.invites[0][3]) + b"\x00" * 100,
                       ("127.0.0.1", self.media_port))
        self.server.wait_log(r"with the SSRC %d of device %s, whose media comes from" % (cam.invites[0][3], DEVICE))
        self.server.wait_log(r"RFC 4571 length 65535 out of range")
        self.server.wait_log(r"unknown SSRC")
        self.server.wait_log(r"refused: 1000 devices registered")
        sessions = self.api_get("/gb/v1/sessions/")["sessions"]
        self.assertEqual(len(sessions), 1000)
        self.assertIn(DEVICE, [s["id"] for s in sessions])
        self.assert_plays(self.rtmp(), 10)  # the real camera is unaffected
        grown = self.server.rss_kb() - rss0
        self.assertLess(grown, 50_000, f"RSS grew by {grown} kB")  # measured: ~5.4 MB
