"""MPEG-DASH from the real server: FFmpeg publishes over RTMP, the server
writes the MPD and fMP4 segments, its HTTP server serves them and
ffprobe/FFmpeg read them back over HTTP; the window, audio-only streams and
dash_dispose are checked on disk."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET


from ..dash.mpdxml import parse_mpd
from . import harness as h

class DashServerCase(h.FileServerCase):
    timeout = 120
    prefix = "srs-dash-"
    dash = ""

    def vhost_body(self) -> str:
        # the first of a repeated directive wins (SRS): the class's own come first
        return (
            f"dash {{ enabled on; dash_path {self.root}; {self.dash} "
            "dash_fragment 2; dash_window_size 5; dash_update_period 2; }"
        )

    # ---- helpers --------------------------------------------------------------------------
    def publish(self, kind="h264-aac", extra=(), name="s"):
        proc = h.publish(self.server.url(name), h.clip(kind), loop=True, extra=list(extra))
        self.procs.append(proc)
        return proc

    def mpd_url(self, name="s") -> str:
        return f"http://127.0.0.1:{self.http}/live/{name}.mpd"

    def fetch(self, url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read()

    def wait_segments(self, count: int, name="s", deadline: float = 60.0, tracks=("video", "audio")) -> dict:
        """The MPD once each of ``tracks`` lists ``count`` segments or more."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            try:
                mpd = parse_mpd(self.fetch(self.mpd_url(name)))
                if all(len(mpd.get(t, {}).get("entries", ())) >= count for t in tracks):
                    return mpd
            except (urllib.error.URLError, OSError, ET.ParseError):
                pass
            proc = self.procs[-1] if self.procs else None
            if proc is not None and proc.poll() is not None and proc.returncode != 0:
                raise AssertionError(f"publisher exited with {proc.returncode}")
            time.sleep(0.2)
        raise AssertionError(f"no {count} segments in {self.mpd_url(name)} after {deadline}s; log: "
                             f"{self.server.log()[-2000:]}")

    def files(self, rep: str, name="s") -> list[int]:
        home = os.path.join(self.root, "live", name)
        names = [n for n in os.listdir(home) if n.startswith(rep + "-") and n.endswith(".m4s")]
        return sorted(int(n[len(rep) + 1:-4]) for n in names)


class DashTests(DashServerCase):
    def test_ffprobe_reads_the_mpd_with_both_streams(self):
        self.publish()
        self.wait_segments(1)
        streams = h.streams_by_type(h.probe(self.mpd_url()))
        self.assertEqual(("h264", 320, 240), (streams["video"]["codec_name"], streams["video"]["width"],
                                              streams["video"]["height"]))
        self.assertEqual(("aac", "44100", 2), (streams["audio"]["codec_name"], streams["audio"]["sample_rate"],
                                               streams["audio"]["channels"]))

    def test_mpd_describes_what_is_served(self):
        self.publish()
        mpd = self.wait_segments(2)
        root = mpd["root"]
        self.assertEqual(("dynamic", "PT2.000S"), (root["type"], root["minimumUpdatePeriod"]))
        self.assertEqual("320", mpd["video"]["rep"]["width"])
        self.assertTrue(mpd["video"]["rep"]["codecs"].startswith("avc1."))
        audio = mpd["audio"]["rep"]
        self.assertEqual(("mp4a.40.2", "44100"), (audio["codecs"], audio["audioSamplingRate"]))
        for rep in ("video", "audio"):
            info = mpd[rep]
            entries = info["entries"]
            for (t1, d1), (t2, _) in zip(entries, entries[1:]):
                self.assertEqual(t1 + d1, t2)
            for _, d in entries:
                self.assertLess(abs(d / info["timescale"] - 2.0), 0.1)  # 1 s GOPs, dash_fragment 2
            init = self.fetch(f"http://127.0.0.1:{self.http}/live/s/{rep}-init.mp4")
            self.assertEqual(b"ftyp", init[4:8])
            last = info["start"] + len(entries) - 1
            segment = self.fetch(f"http://127.0.0.1:{self.http}/live/s/{rep}-{last}.m4s")
            self.assertEqual(b"styp", segment[4:8])

    def test_ffmpeg_copies_four_seconds(self):
        self.publish()
        self.wait_segments(3)
        out = os.path.join(self.root, "out.mp4")
        done = subprocess.run(
            [h.ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-i", self.mpd_url(), "-t", "4",
             "-c", "copy", out],
            capture_output=True, timeout=60)
        self.assertEqual(0, done.returncode, done.stderr.decode(errors="replace")[-1500:])
        info = h.probe(out)
        streams = h.streams_by_type(info)
        self.assertEqual({"video", "audio"}, set(streams))
        self.assertEqual(("h264", "aac"), (streams["video"]["codec_name"], streams["audio"]["codec_name"]))
        self.assertGreaterEqual(float(info["format"]["duration"]), 3.5)


class WindowTests(DashServerCase):
    dash = "dash_window_size 3; dash_dispose 2;"

    def test_cleanup_keeps_the_window(self):
        self.publish()
        mpd = self.wait_segments(3)
        # run until the newest video segment is number 10: 20 s of media
        end = time.monotonic() + 60
        while mpd["video"]["start"] + len(mpd["video"]["entries"]) - 1 < 10:
            self.assertLess(time.monotonic(), end, "no 10 segments in 60 s")
            time.sleep(0.5)
            mpd = parse_mpd(self.fetch(self.mpd_url()))
        for rep in ("video", "audio"):
            self.assertEqual(3, len(mpd[rep]["entries"]))
            listed = list(range(mpd[rep]["start"], mpd[rep]["start"] + 3))
            on_disk = self.files(rep)
            self.assertTrue(set(listed) <= set(on_disk), (listed, on_disk))
            # files of the segments with at most 2 * 3 * 2 s after them, and one being renamed
            self.assertLessEqual(len(on_disk), 8, on_disk)
            self.assertNotIn(1, on_disk)

    def test_dispose_after_unpublish(self):
        publisher = self.publish()
        self.wait_segments(1)
        h.stop_process(publisher)
        end = time.monotonic() + 20
        while os.path.exists(os.path.join(self.root, "live", "s.mpd")):
            self.assertLess(time.monotonic(), end, f"not disposed: {os.listdir(os.path.join(self.root, 'live'))}")
            time.sleep(0.2)
        self.assertEqual([], os.listdir(os.path.join(self.root, "live")))


class AudioOnlyTests(DashServerCase):
    def test_audio_only(self):
        self.publish(extra=["-vn"])
        mpd = self.wait_segments(2, tracks=("audio",))
        self.assertNotIn("video", mpd)
        streams = h.streams_by_type(h.probe(self.mpd_url()))
        self.assertEqual({"audio"}, set(streams))
        self.assertEqual("aac", streams["audio"]["codec_name"])
        self.assertFalse(os.path.exists(os.path.join(self.root, "live", "s", "video-init.mp4")))
