"""Issue 17 section 3: the real server is SIGKILLed while two streams
publish with HLS, DASH and DVR (one stream to FLV, one to MP4) and every
hook on; it is started again in the same directory and the streams are
published again.  Then: every file on disk reads with ffprobe, the DVR
leftovers were finished and announced, the HLS playlists go on with a
discontinuity and the DASH MPDs keep their numbers, and every hook SRS
would have sent arrived (SRS sends nothing for a session a kill ended).

The hook receiver runs in this process on the trial reactor; FFmpeg and
ffprobe run without blocking it; every wait is bounded."""

from __future__ import annotations

import os
import re
import signal
import xml.etree.ElementTree as ET

from twisted.internet import defer
from twisted.trial import unittest

from . import harness as h
from .receiver import start_receiver, until, wait_exit
from .test_dvr import probe
from .test_hls import parse_m3u8

ACTIONS = ("on_connect", "on_close", "on_publish", "on_unpublish", "on_hls", "on_dvr")
# stream name -> (vhost, DVR container)
STREAMS = {"f": ("__defaultVhost__", "flv"), "m": ("mp4.test", "mp4")}
MPD_NS = "{urn:mpeg:dash:schema:mpd:2011}"


def vhost(name: str, ext: str, hook: str) -> str:
    hooks = " ".join(f"{a} {hook};" for a in ACTIONS)
    return f"""
vhost {name} {{
    http_hooks {{ enabled on; {hooks} }}
    hls {{ enabled on; hls_path ./html; hls_fragment 2; hls_window 60; }}
    dash {{ enabled on; dash_path ./html; dash_fragment 2; dash_window_size 60; dash_update_period 2; }}
    dvr {{ enabled on; dvr_path ./rec/[stream].[timestamp].{ext}; }}
}}"""


class CrashRecoveryTests(unittest.TestCase):
    timeout = 420

    def setUp(self):
        h.ffmpeg(), h.ffprobe()
        self.receiver, base = start_receiver(self)
        hook = base + "/api/v1/hooks"
        self.server = h.Server("".join(vhost(v, ext, hook) for v, ext in STREAMS.values()))
        self.addCleanup(self.server.stop)

    # ---- helpers ---------------------------------------------------------------------------
    def path(self, *parts) -> str:
        return os.path.join(self.server.dir, *parts)

    def publish(self):
        procs = {}
        for stream, (vh, _) in STREAMS.items():
            url = self.server.url(stream) + ("" if vh == "__defaultVhost__" else f"?vhost={vh}")
            procs[stream] = h.publish(url, h.clip("h264-aac", 12), loop=True)
            self.addCleanup(h.stop_process, procs[stream])
        return procs

    def playlist(self, stream) -> dict:
        try:
            with open(self.path("html", "live", f"{stream}.m3u8")) as f:
                return parse_m3u8(f.read())
        except OSError:
            return {"entries": [], "discontinuities": 0}

    def mpd(self, stream):
        """(start number, segment count) per representation of the MPD on disk."""
        try:
            root = ET.parse(self.path("html", "live", f"{stream}.mpd")).getroot()
        except (OSError, ET.ParseError):
            return {}
        reps = {}
        for rep in root.iter(MPD_NS + "Representation"):
            tmpl = rep.find(MPD_NS + "SegmentTemplate")
            if tmpl is None:
                tmpl = next(root.iter(MPD_NS + "SegmentTemplate"))
            count = sum(1 + int(s.get("r", "0")) for s in tmpl.iter(MPD_NS + "S"))
            reps[rep.get("id")] = (int(tmpl.get("startNumber", "1")), count)
        return reps

    def files(self, *suffixes) -> list[str]:
        found = []
        for base, _, names in os.walk(self.server.dir):
            found += [os.path.join(base, n) for n in names if n.endswith(suffixes)]
        return sorted(found)

    def hooks(self, action) -> list[dict]:
        return self.receiver.bodies(action)

    def segments_hooked(self, stream) -> bool:
        """Every segment in the stream's playlist has had its on_hls."""
        entries = self.playlist(stream)["entries"]
        hooked = {os.path.basename(b["file"]) for b in self.hooks("on_hls") if b["stream"] == stream}
        return len(entries) >= 2 and all(e["uri"].rsplit("/", 1)[-1] in hooked for e in entries)

    def recording(self, stream) -> int:
        return sum(os.path.getsize(p) for p in self.files(".tmp") if f"/rec/{stream}." in p)

    def ready(self) -> bool:
        return all(self.segments_hooked(s) and len(self.mpd(s)) == 2 and min(c for _, c in self.mpd(s).values()) >= 2
                   and self.recording(s) > 100_000 for s in STREAMS)

    @defer.inlineCallbacks
    def readable(self, path: str, expect=("aac", "h264")):
        info = yield probe(path)
        codecs = sorted({s["codec_name"] for s in info["streams"]})
        self.assertEqual(codecs, sorted(expect), path)
        return info

    # ---- the test --------------------------------------------------------------------------
    @defer.inlineCallbacks
    def test_sigkill_while_publishing_then_restart_and_republish(self):
        pubs = self.publish()
        yield until(lambda: None, lambda _: self.ready(), "2 hooked HLS segments, 2 DASH segments per track "
                    "and 100 KB of DVR per stream", timeout=120)
        # Killed while segments and recordings are open.
        self.assertTrue(self.files(".ts.tmp") or self.files(".m4s.tmp"), self.files(".tmp"))
        before = {s: self.playlist(s) for s in STREAMS}
        mpd_before = {s: self.mpd(s) for s in STREAMS}
        self.server.proc.send_signal(signal.SIGKILL)
        yield wait_exit(self.server.proc, 10)
        for proc in pubs.values():
            h.stop_process(proc)
        sent_before_kill = {a: len(self.hooks(a)) for a in ACTIONS}
        self.assertEqual((sent_before_kill["on_publish"], sent_before_kill["on_unpublish"],
                          sent_before_kill["on_dvr"]), (2, 0, 0))

        # The restart finishes the DVR leftovers and announces them.
        self.server.restart()
        yield self.receiver.wait_for(lambda: len(self.hooks("on_dvr")) >= 2, 60, "on_dvr for both leftovers")
        self.assertEqual([p for p in self.files(".tmp") if "/rec/" in p], [])
        recovered = {b["stream"]: b for b in self.hooks("on_dvr")}
        self.assertEqual(sorted(recovered), sorted(STREAMS))
        for stream, (vh, ext) in STREAMS.items():
            body = recovered[stream]
            self.assertEqual((body["vhost"], body["app"]), (vh, "live"))
            self.assertRegex(body["file"], rf"^\./rec/{stream}\.\d+\.{ext}$")
            info = yield self.readable(self.path(body["file"]))
            self.assertGreaterEqual(float(info["format"]["duration"]), 3.0, body["file"])

        # Republished: the playlists go on after a discontinuity, the MPDs keep their numbers.
        pubs = self.publish()
        yield until(lambda: None, lambda _: all(
            len(self.playlist(s)["entries"]) >= len(before[s]["entries"]) + 2 and self.segments_hooked(s)
            for s in STREAMS), "2 new hooked HLS segments per stream", timeout=120)
        for proc in pubs.values():
            h.stop_process(proc)
        yield until(lambda: None, lambda _: len(self.hooks("on_unpublish")) >= 2 and len(self.hooks("on_dvr")) >= 4
                    and not self.files(".tmp"), "unpublish, on_dvr and no open file", timeout=60)

        for stream in STREAMS:
            now = self.playlist(stream)
            old = [e["uri"] for e in before[stream]["entries"]]
            self.assertEqual([e["uri"] for e in now["entries"]][:len(old)], old, "the old segments stay listed")
            self.assertEqual(now["media_sequence"], before[stream]["media_sequence"])
            self.assertGreaterEqual(now["discontinuities"], 1)
            with open(self.path("html", "live", f"{stream}.m3u8")) as f:
                text = f.read()
            first_new = now["entries"][len(old)]["uri"]
            self.assertIn(f"#EXT-X-DISCONTINUITY\n#EXTINF:", text.split(first_new)[0][-200:],
                          "the first segment after the restart starts a discontinuity")
            numbers = [int(m) for m in re.findall(r"(\d+)\.ts", "\n".join(e["uri"] for e in now["entries"]))]
            self.assertEqual(numbers, sorted(set(numbers)), "no segment name reused")
            for rep, (start, count) in mpd_before[stream].items():
                new_start, new_count = self.mpd(stream)[rep]
                self.assertEqual(new_start, start, rep)
                self.assertGreater(new_count, count, rep)
            # Every listed segment had exactly one on_hls.
            hooked = [os.path.basename(b["file"]) for b in self.hooks("on_hls") if b["stream"] == stream]
            listed = [e["uri"].rsplit("/", 1)[-1] for e in now["entries"]]
            self.assertEqual(sorted(hooked), sorted(listed), stream)
        # SRS's hooks: nothing for the killed sessions, the whole set for the new ones.
        self.assertEqual(len(self.hooks("on_publish")), 4)
        self.assertEqual(sorted(b["stream"] for b in self.hooks("on_unpublish")), sorted(STREAMS))
        self.assertEqual(len(self.hooks("on_dvr")), 4)
        connects = self.hooks("on_connect")
        self.assertEqual(len(connects), 4)
        self.assertEqual(len(self.hooks("on_close")), 2)

        # Every file on disk reads: recordings, TS segments, playlists, MPDs, and each DASH
        # segment behind its track's init segment.
        for path in self.files(".flv", ".ts", ".m3u8", ".mpd") + [p for p in self.files(".mp4") if "/rec/" in p]:
            yield self.readable(path)
        dash = [p for p in self.files(".m4s")]
        self.assertTrue(dash)
        for path in dash:
            track = os.path.basename(path).split("-")[0]
            joined = os.path.join(self.server.dir, "joined.mp4")
            with open(joined, "wb") as out:
                for part in (os.path.join(os.path.dirname(path), f"{track}-init.mp4"), path):
                    with open(part, "rb") as f:
                        out.write(f.read())
            yield self.readable(joined, {"video": ("h264",), "audio": ("aac",)}[track])
        self.assertEqual(self.files(".tmp"), [], "a file the kill left open is still there")
