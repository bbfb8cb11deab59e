"""The RTMP <-> WebRTC bridge with Chromium (tests/integration/browser.py), inside the tests'
private network namespace.

* FFmpeg publishes H.264 + AAC over RTMP (``rtmp_to_rtc on``); Chromium plays it over WHEP:
  >= 100 frames decoded at 320x240 and Opus audio decoded (samples received, most of them
  not concealment), and audio and video in sync as Chromium plays them: the picture flashes
  white when the audio beeps, once every 3 s, for 30 s: the flashes shown
  (requestVideoFrameCallback) and the beeps heard (Web Audio, at the audio output) are never
  400 ms apart, and a median of at most 150 ms apart in the last third, once Chromium's lip
  sync has settled.
  (test_rtc_bridge's aiortc player checks the same on the sender reports' NTP clock.)
* Chromium publishes its fake camera and microphone over WHIP (``rtc_to_rtmp on``): ffprobe
  reads the stream over RTMP, HTTP-FLV and HLS as exactly h264 + aac; a 10 s RTMP recording
  lasts >= 9.5 s with its first audio within 1 s of its first video; a second Chromium page
  plays it over WHEP with the publisher's Opus.
"""

from __future__ import annotations

import os
import subprocess

from twisted.internet import defer, threads
from twisted.trial import unittest

from tests.integration import harness as h
from tests.integration import test_rtc_bridge, test_rtc_chromium

FLASH, BEEP = test_rtc_bridge.FLASH, test_rtc_bridge.BEEP
# Once every 3 s: a flash and its beep cannot be paired with their neighbours' (1 s could be)
FLASH3, BEEP3 = FLASH.replace("mod(t,1)", "mod(t,3)"), BEEP.replace("mod(t,1)", "mod(t,3)")
WAIT = test_rtc_chromium.WAIT


def av_offsets(sync: dict) -> list:
    """Beep heard minus flash shown (ms) for each flash that has a beep within 1.5 s (they
    come every 3 s, at the same instants of the published stream)."""
    offsets = []
    for flash in sync["video"]:
        near = [beep - flash for beep in sync["audio"] if abs(beep - flash) < 1500]
        if near:
            offsets.append(round(min(near, key=abs), 1))
    return offsets


class ChromiumBridge(test_rtc_chromium.ChromiumCase, unittest.TestCase):
    # hls_path is relative to the server's work dir (self.srv.dir)
    vhosts = ("vhost __defaultVhost__ { rtc { enabled on; rtmp_to_rtc on; rtc_to_rtmp on; }\n"
              "  http_remux { enabled on; mount [vhost]/[app]/[stream].flv; }\n"
              "  hls { enabled on; hls_path hls; hls_fragment 2; hls_window 10; } }\n")

    def assert_opus_decoded(self, result: dict) -> None:
        audio = result["player"]["inbound"]["audio"]
        decoded = audio["totalSamplesReceived"] - audio["concealedSamples"]
        self.assertGreater(decoded, 48000, audio)  # more than a second of real Opus samples
        self.assertLess(audio["concealedSamples"], audio["totalSamplesReceived"] / 2, audio)

    @defer.inlineCallbacks
    def test_rtmp_h264_aac_plays_in_chromium_with_opus(self):
        publisher = subprocess.Popen(
            [h.ffmpeg(), "-hide_banner", "-v", "error", "-re", "-f", "lavfi", "-i", FLASH3, "-f", "lavfi",
             "-i", BEEP3, "-c:v", "libx264", "-profile:v", "baseline", "-preset", "ultrafast", "-tune",
             "zerolatency", "-g", "25", "-bf", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
             "-ac", "2", "-t", str(4 * WAIT), "-f", "flv", self.srv.url("aac")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(h.stop_process, publisher)
        self.srv.wait_log(r"publish __defaultVhost__/live/aac\b", timeout=60)
        result = yield self.drive({"stream": "aac", "mode": "whep"}, play_seconds=30, sync=True)
        self.assertIsNone(publisher.poll(), "the RTMP publisher ended early")
        self.assert_played(result, (320, 240))
        self.assert_opus_decoded(result)
        self.assertEqual(result["player_delete"], 200)
        offsets = av_offsets(result["sync"])
        print(f"Chromium A/V sync, beep heard minus flash shown (ms): {offsets}",
              {k: v for k, v in result["sync"].items() if k not in ("video", "audio")})
        self.assertGreaterEqual(len(offsets), 5, result["sync"])
        # Chromium's lip sync (from the server's sender reports) converges over tens of seconds
        # from where its jitter buffers start (here: 100-230 ms audio-late, then 40-100 ms after
        # 20-30 s; without the GOP cache 105 ms, then 40). Its last third stays within 150 ms; no
        # beep is ever heard a GOP late (the GOP cache's audio in one burst put it 800 ms behind
        # at first, see rtc/player.py AUDIO_BACKLOG_MS). The server's own timestamps are checked
        # to 100 ms by test_rtc_bridge's aiortc player.
        settled = sorted(offsets[-max(3, len(offsets) // 3):])
        self.assertLessEqual(abs(settled[len(settled) // 2]), 150, (offsets, result["sync"]))
        self.assertLessEqual(max(abs(x) for x in offsets), 400, (offsets, result["sync"]))

    @defer.inlineCallbacks
    def test_whip_publish_plays_as_h264_and_aac_everywhere(self):
        # The publisher page publishes for play_after seconds before the player page starts:
        # the probes run meanwhile (in a thread, the driver is polled on the reactor).
        done = self.drive({"stream": "cam", "mode": "whep"},
                          {"stream": "cam", "mode": "whip", "width": 320, "height": 240}, play_after=75)
        yield threads.deferToThread(self.srv.wait_log, r"RTC publish __defaultVhost__/live/cam ", 2 * WAIT)
        probed = yield threads.deferToThread(self.probe_everything, "cam")
        result = yield done
        self.assert_played(result, (320, 240))
        self.assert_opus_decoded(result)  # the publisher's own Opus, carried beside the AAC
        rtmp, first = probed
        self.assertEqual((rtmp["video"]["width"], rtmp["video"]["height"]), (320, 240))
        self.assertLessEqual(first["audio"] - first["video"], 1.0, first)

    def probe_everything(self, stream: str):
        expected = [("video", "h264"), ("audio", "aac")]
        rtmp = h.assert_streams(h.probe(self.srv.url(stream)), expected)
        h.assert_streams(h.probe(f"http://127.0.0.1:{self.http_port}/live/{stream}.flv"), expected)
        m3u8 = os.path.join(self.srv.dir, "hls", "live", f"{stream}.m3u8")
        h.wait_for(lambda: os.path.exists(m3u8) and open(m3u8).read().count("#EXTINF") >= 2, 60,
                   message="no HLS segments")
        h.assert_streams(h.probe(m3u8), expected)
        out = os.path.join(self.srv.dir, f"{stream}.flv")
        run = h.record(self.srv.url(stream), 10, out)
        assert run.returncode == 0, run.stderr[-800:]
        info = h.probe(out)
        assert float(info["format"]["duration"]) >= 9.5, info["format"]
        lines = subprocess.run([h.ffprobe(), "-v", "error", "-show_entries", "packet=codec_type,pts_time", "-of",
                                "csv=p=0", out], capture_output=True, timeout=60).stdout.decode().split()
        first = {}
        for line in lines:
            kind, _, pts = line.partition(",")
            if pts and pts != "N/A":
                first.setdefault(kind, float(pts))
        return rtmp, first
