"""GStreamer's SRT elements (libsrt) against the server: ``srtsink`` publishes MPEG-TS (clear and
encrypted), ``srtsrc`` plays an SRT publish (relayed) and an RTMP publish (remuxed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from tests.integration import harness as h
from tests.integration.test_srt import SrtCase, srt_url


def gst_launch() -> str:
    tool = h.need("gst-launch-1.0 (apt-get install gstreamer1.0-tools gstreamer1.0-plugins-bad)",
                  shutil.which("gst-launch-1.0"))
    inspect = shutil.which("gst-inspect-1.0")
    present = inspect and subprocess.run([inspect, "--exists", "srtsink"], timeout=60).returncode == 0
    h.need("GStreamer's srtsink (apt-get install gstreamer1.0-plugins-bad)", tool if present else None)
    return tool


def ts_clip(test) -> str:
    """The harness clip (H.264 320x240 + AAC) as MPEG-TS for filesrc."""
    out = os.path.join(tempfile.mkdtemp(prefix="srs-gst-"), "clip.ts")
    test.addCleanup(shutil.rmtree, os.path.dirname(out), True)
    subprocess.run([h.ffmpeg(), "-v", "error", "-y", "-i", h.clip("h264-aac"), "-c", "copy", "-f", "mpegts", out],
                   check=True, timeout=120)
    return out


def srtsink_publish(port: int, stream_id: str, clip: str, **props) -> subprocess.Popen:
    """gst-launch: the TS file, paced by its timestamps (tsparse + the sink's clock sync), into srtsink."""
    extra = [f"{k}={v}" for k, v in props.items()]
    cmd = [gst_launch(), "-q", "filesrc", f"location={clip}", "!", "tsparse", "set-timestamps=true", "!",
           "srtsink", f"uri=srt://127.0.0.1:{port}", f"streamid={stream_id}", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def srtsrc_play(port: int, stream_id: str, out: str, seconds: int = 6) -> None:
    """gst-launch: srtsrc into a file for ``seconds`` (SIGINT, then EOS with -e)."""
    cmd = ["timeout", "-s", "INT", "-k", "20", str(seconds), gst_launch(), "-q", "-e", "srtsrc",
           f"uri=srt://127.0.0.1:{port}", f"streamid={stream_id}", "!", "filesink", f"location={out}"]
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds + 60)


class GStreamer(SrtCase):
    def test_srtsink_publishes_and_srtsrc_plays(self):
        clip = ts_clip(self)
        self.procs.append(srtsink_publish(self.srt, "#!::r=live/gst,m=publish", clip))
        info = h.probe(self.server.url("gst"))  # over RTMP
        streams = h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (320, 240))
        self.server.wait_log(r"SRT publish __defaultVhost__/live/gst from 127\.0\.0\.1:\d+, latency rcv=125ms")
        out = os.path.join(os.path.dirname(clip), "play.ts")
        srtsrc_play(self.srt, "#!::r=live/gst,m=request", out)  # relayed: GStreamer's own TS back
        self.assertGreater(h.file_size(out), 50_000)
        self.assertEqual(h.file_size(out) % 188, 0)
        h.assert_streams(h.probe(out), [("video", "h264"), ("audio", "aac")])

    def test_srtsrc_plays_an_rtmp_publish(self):
        gst_launch()
        self.procs.append(h.publish(self.server.url("fromrtmp"), h.clip("h264-aac"), loop=True))
        h.probe(self.server.url("fromrtmp"))
        out = os.path.join(tempfile.mkdtemp(prefix="srs-gst-"), "play.ts")
        self.addCleanup(shutil.rmtree, os.path.dirname(out), True)
        srtsrc_play(self.srt, "#!::r=live/fromrtmp,m=request", out)
        self.assertGreater(h.file_size(out), 50_000)
        h.assert_streams(h.probe(out), [("video", "h264"), ("audio", "aac")])


class GStreamerEncrypted(SrtCase):
    vhost = "srt { enabled on; }"
    server_extra = "passphrase srs-twisted-gst; pbkeylen 32;"

    def test_srtsink_publishes_encrypted(self):
        clip = ts_clip(self)
        self.procs.append(srtsink_publish(self.srt, "#!::r=live/gstenc,m=publish", clip,
                                          passphrase="srs-twisted-gst", pbkeylen=32))
        h.assert_streams(h.probe(self.server.url("gstenc")), [("video", "h264"), ("audio", "aac")])
        wrong = srtsink_publish(self.srt, "#!::r=live/gstbad,m=publish", clip, passphrase="not-the-passphrase")
        self.procs.append(wrong)
        self.server.wait_log(r"refused: wrong passphrase")  # (srtsink keeps retrying)
        self.assertNotIn("live/gstbad", self.server.log())  # never accepted
