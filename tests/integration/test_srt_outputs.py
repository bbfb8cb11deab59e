"""An SRT publish through the live core's other outputs: DASH segments, a DVR recording, and
WebRTC (an aiortc WHEP player decodes its H.264 and the AAC bridged to Opus)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile

from tests.integration import harness as h
from tests.integration.test_rtc_bridge import BridgeCase
from tests.integration.test_srt import SrtCase, srt_publish, srt_url


class SrtDashAndDvr(SrtCase):
    timeout = 300

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="srs-srt-out-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.vhost = (f"srt {{ enabled on; }} "
                      f"dash {{ enabled on; dash_path {self.root}; dash_fragment 2; dash_update_period 2; }} "
                      f"dvr {{ enabled on; dvr_plan session; dvr_path {self.root}/[app]/[stream].flv; }}")
        super().setUp()

    def test_srt_publish_makes_dash_and_a_recording(self):
        clip = h.clip("h264-aac")
        proc = srt_publish(srt_url(self.srt, "#!::r=live/out,m=publish"), clip)
        self.procs.append(proc)
        mpd = os.path.join(self.root, "live", "out.mpd")
        segments = os.path.join(self.root, "live", "out", "*.m4s")
        h.wait_for(lambda: os.path.exists(mpd) and len(glob.glob(segments)) >= 4, 90,
                   message="DASH segments of the SRT publish")
        h.assert_streams(h.probe(mpd), [("video", "h264"), ("audio", "aac")])
        tmp = os.path.join(self.root, "live", "out.flv.tmp")
        h.wait_for(lambda: os.path.exists(tmp) and h.file_size(tmp) > 100_000, 60, message="the DVR file growing")
        h.stop_process(proc)  # the publish ends: the session's recording is closed
        flv = os.path.join(self.root, "live", "out.flv")
        h.wait_for(lambda: os.path.exists(flv), 60, message="the DVR file closed")
        info = h.probe(flv)
        h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        self.assertGreater(float(info["format"]["duration"]), 3.0)
        dec = subprocess.run([h.ffmpeg(), "-v", "error", "-i", flv, "-f", "null", "-"], capture_output=True,
                             timeout=120)
        self.assertEqual(dec.returncode, 0, dec.stderr[-500:])


class SrtToWebRtc(BridgeCase):
    def setUp(self):
        self.srt = h.free_port()
        self.vhost = (f"srt_server {{ enabled on; listen 127.0.0.1:{self.srt}; }}\n"
                      "vhost __defaultVhost__ { srt { enabled on; } rtc { enabled on; rtmp_to_rtc on; } }\n")
        super().setUp()

    def test_srt_publish_plays_over_webrtc(self):
        self.procs.append(srt_publish(srt_url(self.srt, "#!::r=live/srtrtc,m=publish"), h.clip("h264-aac")))
        self.srv.wait_log(r"SRT publish __defaultVhost__/live/srtrtc from", timeout=60)
        frames, size, audio = self.counts(self.play("srtrtc", seconds=8))
        self.assertGreaterEqual(frames, 50)
        self.assertEqual(size, ("320", "240"))
        self.assertGreaterEqual(audio, 50)  # Opus frames decoded
