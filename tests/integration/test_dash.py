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
    timeout = 300
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
        with urllib.request.urlopen(url, timeout=h.WAIT) as r:
            return r.read()

    def wait_segments(self, count: int, name="s", deadline: float = 60.0, tracks=("video", "audio")) -> dict:
        """The MPD once each of ``tracks`` lists ``count`` segments or more."""
        def ready():
            proc = self.procs[-1] if self.procs else None
            if proc is not None and proc.poll() is not None and proc.returncode != 0:
                raise AssertionError(f"publisher exited with {proc.returncode}")
            try:
                mpd = parse_mpd(self.fetch(self.mpd_url(name)))
            except (urllib.error.URLError, OSError, ET.ParseError):
                return None
            return mpd if all(len(mpd.get(t, {}).get("entries", ())) >= count for t in tracks) else None

        return h.wait_for(ready, deadline, interval=0.2, message=lambda: (
            f"no {count} segments in {self.mpd_url(name)}; log: {self.server.log()[-2000:]}"))

    def files(self, rep: str, name="s") -> list[int]:
        home = os.path.join(self.root, "live", name)
        names = [n for n in os.listdir(home) if n.startswith(rep + "-") and n.endswith(".m4s")]
        return sorted(int(n[len(rep) + 1:-4]) for n in names)


class DashTests(DashServerCase):
    def test_ffprobe_reads_the_mpd_with_both_streams(self):
        self.publish()
        self.wait_segments(1)
        streams = h.assert_streams(h.probe(self.mpd_url()), [("video", "h264"), ("audio", "aac")])
        self.assertEqual((320, 240), (streams["video"]["width"], streams["video"]["height"]))
        self.assertEqual(("44100", 2), (streams["audio"]["sample_rate"], streams["audio"]["channels"]))

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
            self.assertGreaterEqual(len(entries), 2, rep)
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
            capture_output=True, timeout=120)
        self.assertEqual(0, done.returncode, done.stderr.decode(errors="replace")[-1500:])
        info = h.probe(out)
        h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        self.assertGreaterEqual(float(info["format"]["duration"]), 3.5)


class WindowTests(DashServerCase):
    dash = "dash_window_size 3; dash_dispose 2;"

    def test_cleanup_keeps_the_window(self):
        self.publish()
        mpd = self.wait_segments(3)
        # run until the newest video segment is number 10: 20 s of media
        def newest_is_10():
            got = parse_mpd(self.fetch(self.mpd_url()))
            return got if got["video"]["start"] + len(got["video"]["entries"]) - 1 >= 10 else None

        mpd = h.wait_for(newest_is_10, 120, interval=0.5, message="no 10 segments")
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
        stopped = time.monotonic()  # the server sees the unpublish after this
        h.stop_process(publisher)
        h.wait_for(lambda: not os.path.exists(os.path.join(self.root, "live", "s.mpd")), 60, interval=0.2,
                   message=lambda: f"not disposed: {os.listdir(os.path.join(self.root, 'live'))}")
        self.assertEqual([], os.listdir(os.path.join(self.root, "live")))
        # dash_dispose 2: not before 2 s after the unpublish (a lower bound)
        self.assertGreaterEqual(time.monotonic() - stopped, 1.9)


class AudioOnlyTests(DashServerCase):
    def test_audio_only(self):
        self.publish(extra=["-vn"])
        mpd = self.wait_segments(2, tracks=("audio",))
        self.assertNotIn("video", mpd)
        h.assert_streams(h.probe(self.mpd_url()), [("audio", "aac")])
        self.assertFalse(os.path.exists(os.path.join(self.root, "live", "s", "video-init.mp4")))


class ReleaseTests(DashServerCase):
    """dash_dispose 0: the stream's recorder is released 30 s after its
    publisher left (max(30, 2 * 5 * 2 s)), its files kept; a republish then
    goes on from the MPD on disk, which players still read."""

    timeout = 180
    dash = "dash_dispose 0;"

    def test_republish_after_release(self):
        publisher = self.publish()
        first = self.wait_segments(2)
        h.stop_process(publisher)
        self.server.wait_log(r"dash: released __defaultVhost__/live/s, files kept", timeout=90)
        self.assertTrue(os.path.exists(os.path.join(self.root, "live", "s.mpd")))
        last = {rep: first[rep]["start"] + len(first[rep]["entries"]) - 1 for rep in ("video", "audio")}
        self.publish()
        self.server.wait_log(r"dash: .*s\.mpd taken over")
        end = time.monotonic() + 60
        while True:
            mpd = parse_mpd(self.fetch(self.mpd_url()))
            newest = {rep: mpd[rep]["start"] + len(mpd[rep]["entries"]) - 1 for rep in ("video", "audio")}
            if all(newest[rep] >= last[rep] + 2 for rep in newest):
                break
            self.assertLess(time.monotonic(), end, f"no new segments after the republish: {mpd}")
            time.sleep(0.5)
        # one timeline, numbers go on
        self.assertEqual(first["root"]["availabilityStartTime"], mpd["root"]["availabilityStartTime"])
        for rep in ("video", "audio"):
            self.assertIn(last[rep] + 1, self.files(rep))
            times = [t for t, _ in mpd[rep]["entries"]]
            self.assertEqual(sorted(times), times)
        h.assert_streams(h.probe(self.mpd_url()), [("video", "h264"), ("audio", "aac")])
