"""The RTMP <-> WebRTC bridge with real clients, inside the tests' private network namespace.

* RTMP -> WebRTC (``rtmp_to_rtc on``): FFmpeg publishes H.264 + AAC over RTMP (a picture
  that flashes white and a beep, both once a second); an aiortc WHEP player decodes the
  video at its size and the Opus audio, and finds each beep within 100 ms of its flash on
  the sender reports' NTP clock (whep_sync_aiortc.py).  MP3 plays as Opus; a stream without
  audio or without video plays.  A publisher whose H.264 changes size mid-stream (a new
  sequence header in the same RTMP session) keeps two WHEP players decoding at both sizes.
  ``rtmp_to_rtc off`` refuses the play (5021), as SRS.
* WebRTC -> RTMP (``rtc_to_rtmp on``): an aiortc WHIP publisher (H.264 + Opus) is read by
  ffprobe over RTMP, HTTP-FLV and HLS as h264 + aac; a 10 s RTMP recording lasts >= 9.5 s
  with audio in its first second; a WHEP player of that stream gets the publisher's Opus.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time

from twisted.trial import unittest

from srs_twisted.codec import flv
from tests.integration import harness as h
from tests.integration import netns
from tests.integration import test_rtc_whip
from tests.integration.test_rtc_whip import need_aiortc

HERE = os.path.dirname(os.path.abspath(__file__))

FLASH = "color=c=black:s=320x240:r=25,drawbox=x=0:y=0:w=320:h=240:color=white:t=fill:enable='lt(mod(t,1),0.2)'"
BEEP = "aevalsrc='if(lt(mod(t,1),0.2),0.5*sin(2*PI*880*t),0)':s=44100"


class BridgeCase(unittest.TestCase):
    timeout = 400
    vhost = ""

    def setUp(self):
        netns.enter()
        need_aiortc()
        self.api_port, self.udp_port, self.http_port = h.free_port(), h.free_port(), h.free_port()
        self.srv = h.Server(
            f"http_api {{ enabled on; listen 127.0.0.1:{self.api_port}; }}\n"
            f"http_server {{ enabled on; listen 127.0.0.1:{self.http_port}; }}\n"
            f"rtc_server {{ enabled on; listen 127.0.0.1:{self.udp_port}; candidate 127.0.0.1; }}\n"
            + self.vhost
        )
        self.addCleanup(self.srv.stop)
        self.procs = []
        self.addCleanup(self._stop_procs)

    _stop_procs = test_rtc_whip.WhipPublish._stop_procs
    start = test_rtc_whip.WhipPublish.start  # start(args): a client whose stdout and stderr are piped

    def api_url(self, kind: str, stream: str, vhost: str = "") -> str:
        query = f"&vhost={vhost}" if vhost else ""
        return f"http://127.0.0.1:{self.api_port}/rtc/v1/{kind}/?app=live&stream={stream}{query}"

    def play(self, stream: str, seconds: int = 8, client: str = "whep_aiortc.py") -> str:
        player = self.start([sys.executable, os.path.join(HERE, client), self.api_url("whep", stream),
                             str(seconds)])
        output = player.communicate(timeout=180)[0].decode(errors="replace")
        self.assertEqual(player.returncode, 0, output)
        self.assertIn("DELETE 200", output)
        return output

    @staticmethod
    def counts(output: str) -> tuple:
        video = re.search(r"VIDEO (\d+) (\d+)x(\d+)", output)
        audio = re.search(r"AUDIO (\d+)", output)
        return int(video.group(1)), (video.group(2), video.group(3)), int(audio.group(1))


class RtmpToRtc(BridgeCase):
    vhost = ("vhost __defaultVhost__ { rtc { enabled on; rtmp_to_rtc on; } }\n"
             "vhost strict { rtc { enabled on; } }\n")

    def publish_clip(self, stream: str, kind: str, extra=()):
        proc = h.publish(self.srv.url(stream), h.clip(kind, 12), loop=True, extra=list(extra))
        self.procs.append(proc)
        self.srv.wait_log(rf"publish __defaultVhost__/live/{stream}\b", timeout=60)
        return proc

    def test_aac_plays_as_opus_in_sync_with_the_video(self):
        publisher = self.start([h.ffmpeg(), "-hide_banner", "-v", "error", "-re", "-f", "lavfi", "-i", FLASH,
                                "-f", "lavfi", "-i", BEEP, "-c:v", "libx264", "-preset", "ultrafast",
                                "-tune", "zerolatency", "-g", "25", "-bf", "0", "-pix_fmt", "yuv420p",
                                "-c:a", "aac", "-b:a", "64k", "-ac", "2", "-t", "120", "-f", "flv",
                                self.srv.url("sync")])
        self.srv.wait_log(r"publish __defaultVhost__/live/sync\b", timeout=60)
        output = self.play("sync", seconds=10, client="whep_sync_aiortc.py")
        self.assertIsNone(publisher.poll(), output)
        frames, size, audio = self.counts(output)
        self.assertGreaterEqual(frames, 100, output)
        self.assertEqual(size, ("320", "240"), output)
        self.assertGreaterEqual(audio, 100, output)  # Opus frames decoded (aiortc's audio is Opus only)
        sync = re.search(r"SYNC (\S+) (\d+)", output)
        self.assertGreaterEqual(int(sync.group(2)), 3, output)
        self.assertLessEqual(abs(float(sync.group(1))), 100, output)

    def test_mp3_plays_as_opus(self):
        self.publish_clip("mp3", "h264-mp3")
        frames, size, audio = self.counts(self.play("mp3", seconds=6))
        self.assertGreaterEqual(frames, 50)
        self.assertGreaterEqual(audio, 100)

    def test_a_stream_without_audio_or_without_video_plays(self):
        self.publish_clip("noaudio", "h264-aac", extra=["-an"])
        frames, size, audio = self.counts(self.play("noaudio", seconds=6))
        self.assertGreaterEqual(frames, 50)
        self.assertEqual((size, audio), (("320", "240"), 0))
        self.publish_clip("novideo", "h264-aac", extra=["-vn"])
        frames, size, audio = self.counts(self.play("novideo", seconds=6))
        self.assertEqual(frames, 0)
        self.assertGreaterEqual(audio, 100)

    def test_a_resolution_change_keeps_every_player_decoding(self):
        # One FLV whose H.264 goes from 320x240 to 176x144 (a second AVC sequence header), looped:
        # FFmpeg (-c copy) sends the new sequence header in the same RTMP session at each change.
        path = os.path.join(self.srv.dir, "two-sizes.flv")
        with open(path, "wb") as out:
            out.write(flv.file_header())
            offset = 0
            for size in ("320x240", "176x144"):
                clip = h.clip("h264-aac", 4, size=size)
                with open(clip, "rb") as f:
                    tags = flv.FlvReader().feed(f.read())
                for tag in tags:
                    if tag.tag_type != 18:  # one onMetaData (the first's) is enough
                        out.write(flv.encode_tag(tag.tag_type, tag.timestamp + offset, tag.payload))
                offset += max(t.timestamp for t in tags) + 40
        proc = h.publish(self.srv.url("resize"), path, loop=True)
        self.procs.append(proc)
        self.srv.wait_log(r"publish __defaultVhost__/live/resize\b", timeout=60)
        players = [self.start([sys.executable, os.path.join(HERE, "whep_aiortc.py"), self.api_url("whep", "resize"),
                               "14"]) for _ in range(2)]
        for player in players:
            output = player.communicate(timeout=180)[0].decode(errors="replace")
            self.assertEqual(player.returncode, 0, output)
            sizes = {k: int(v) for k, v in re.findall(r"(\d+x\d+)=(\d+)", re.search(r"SIZES(.*)", output).group(1))}
            print(f"resolution change, frames decoded per size: {sizes}")
            # 14 s of a stream that changes size every 4 s: at least one change each way is decoded
            self.assertEqual(set(sizes), {"320x240", "176x144"}, output)
            self.assertGreaterEqual(min(sizes.values()), 50, output)
            self.assertGreaterEqual(sum(sizes.values()), 250, output)
        self.assertIsNone(proc.poll())

    def test_rtmp_to_rtc_off_refuses_an_rtmp_stream_as_srs(self):
        proc = h.publish(self.srv.url("off") + "?vhost=strict", h.clip("h264-aac", 12), loop=True)
        self.procs.append(proc)
        self.srv.wait_log(r"publish strict/live/off\b", timeout=60)
        from tests.codec.sdp_fixtures import AIORTC_OFFER

        play_offer = AIORTC_OFFER.replace("a=sendonly", "a=recvonly")
        conn = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=30)
        conn.request("POST", "/rtc/v1/whep/?app=live&stream=off&vhost=strict", body=play_offer.encode())
        response = conn.getresponse()
        # SRS 7: ERROR_RTC_DISABLED, HTTP 500 on the WHIP/WHEP route, {"code": 400} on the legacy one
        self.assertEqual((response.status, response.read()), (500, b"5021: RtcDisabled"))
        conn.request("POST", "/rtc/v1/play/", body=json.dumps({"sdp": play_offer,
                                                               "streamurl": "webrtc://strict/live/off"}).encode())
        self.assertEqual(json.loads(conn.getresponse().read())["code"], 400)
        self.assertEqual(len(re.findall(r"code 5021: rtmp_to_rtc is off in vhost strict", self.srv.log())), 2)
        # a stream nobody publishes over RTMP is answered (a WebRTC publisher may come)
        conn.request("POST", "/rtc/v1/whep/?app=live&stream=other&vhost=strict", body=play_offer.encode())
        response = conn.getresponse()
        self.assertEqual(response.status, 201, response.read())
        response.read()


class RtcToRtmp(BridgeCase):
    def setUp(self):
        import shutil
        import tempfile

        self.hls_dir = tempfile.mkdtemp(prefix="srs-bridge-hls-")
        self.addCleanup(shutil.rmtree, self.hls_dir, True)
        self.vhost = ("vhost __defaultVhost__ { rtc { enabled on; rtc_to_rtmp on; rtmp_to_rtc off; }\n"
                      "  http_remux { enabled on; mount [vhost]/[app]/[stream].flv; }\n"
                      f"  hls {{ enabled on; hls_path {self.hls_dir}; hls_fragment 2; hls_window 10; }} }}\n"
                      "vhost dvr { rtc { enabled on; rtc_to_rtmp on; }\n"
                      f"  dvr {{ enabled on; dvr_plan session; dvr_path {self.hls_dir}/[app]/[stream].mp4; }} }}\n")
        super().setUp()

    def whip(self, stream: str, seconds: int = 120):
        proc = self.start([sys.executable, os.path.join(HERE, "whip_aiortc.py"), self.api_url("whip", stream),
                           str(seconds), "320", "240"])
        self.srv.wait_log(rf"RTC publish __defaultVhost__/live/{stream} ", timeout=60)
        return proc

    def probe(self, url: str) -> dict:
        deadline = time.monotonic() + 90
        while True:
            try:
                return h.probe(url)
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def test_whip_plays_as_h264_and_aac_over_rtmp_flv_hls_and_records_from_the_first_second(self):
        publisher = self.whip("w")
        expected = [("video", "h264"), ("audio", "aac")]
        rtmp = h.assert_streams(self.probe(self.srv.url("w")), expected)
        self.assertEqual((rtmp["video"]["width"], rtmp["video"]["height"]), (320, 240))
        self.assertEqual(rtmp["audio"]["sample_rate"], "48000")
        h.assert_streams(self.probe(f"http://127.0.0.1:{self.http_port}/live/w.flv"), expected)
        m3u8 = os.path.join(self.hls_dir, "live", "w.m3u8")
        h.wait_for(lambda: os.path.exists(m3u8) and open(m3u8).read().count("#EXTINF") >= 2, 60,
                   message="no HLS segments")
        h.assert_streams(self.probe(m3u8), expected)
        # a 10 s recording over RTMP: all of it, with audio from its first second
        out = os.path.join(self.srv.dir, "w.flv")
        run = h.record(self.srv.url("w"), 10, out)
        self.assertEqual(run.returncode, 0, run.stderr[-800:])
        info = h.probe(out)
        self.assertGreaterEqual(float(info["format"]["duration"]), 9.5, info["format"])
        packets = subprocess.run([h.ffprobe(), "-v", "error", "-show_entries", "packet=codec_type,pts_time",
                                  "-of", "csv=p=0", out], capture_output=True, timeout=60).stdout.decode().split()
        first = {}
        for line in packets:
            kind, _, pts = line.partition(",")
            if pts and pts != "N/A":
                first.setdefault(kind, float(pts))
        self.assertLessEqual(first["audio"] - first["video"], 1.0, first)
        audio_packets = sum(1 for line in packets if line.startswith("audio"))
        self.assertGreaterEqual(audio_packets, 9.5 * 48000 / 1024 * 0.95)  # AAC all along
        # WebRTC players of the stream get the publisher's Opus (passed through)
        frames, size, audio = self.counts(self.play("w", seconds=6))
        self.assertEqual(size, ("320", "240"))
        self.assertGreaterEqual(frames, 50)
        self.assertGreaterEqual(audio, 100)
        self.assertIsNone(publisher.poll())


    def test_dvr_of_a_whip_publish_is_a_playable_mp4_with_aac(self):
        proc = self.start([sys.executable, os.path.join(HERE, "whip_aiortc.py"),
                           self.api_url("whip", "rec", vhost="dvr"), "8", "320", "240"])
        self.srv.wait_log(r"RTC publish dvr/live/rec ", timeout=60)
        output = proc.communicate(timeout=120)[0].decode(errors="replace")
        self.assertEqual(proc.returncode, 0, output)  # published 8 s, then DELETE
        self.srv.wait_log(r"RTC session dvr/live/rec ended: DELETE by the client", timeout=60)
        mp4 = os.path.join(self.hls_dir, "live", "rec.mp4")
        h.wait_for(lambda: h.file_size(mp4) > 10000, 60,
                   message=lambda: f"no DVR file: {h.file_size(mp4)} bytes; {self.srv.log()[-3000:]}")
        streams = h.assert_streams(h.probe(mp4), [("video", "h264"), ("audio", "aac")])
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (320, 240))
        decoded = subprocess.run([h.ffmpeg(), "-v", "error", "-i", mp4, "-f", "null", "-"], capture_output=True,
                                 timeout=120)
        self.assertEqual((decoded.returncode, decoded.stderr), (0, b""))  # plays to the end without an error
        self.assertGreaterEqual(float(h.probe(mp4)["format"]["duration"]), 5.0)
