"""HLS from the real server: FFmpeg publishes over RTMP, the server writes
the playlist and segments, its HTTP server serves them and FFmpeg/ffprobe
read them back (plain and AES-128), after a clean stop and after SIGKILL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request


from . import harness as h

def parse_m3u8(text: str) -> dict:
    entries = []
    duration = None
    key = None
    info = {"discontinuities": text.count("#EXT-X-DISCONTINUITY\n")}
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            info["media_sequence"] = int(line.split(":")[1])
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            info["target"] = int(line.split(":")[1])
        elif line.startswith("#EXT-X-KEY:"):
            key = line
        elif line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line and not line.startswith("#"):
            entries.append({"uri": line, "duration": duration, "key": key})
    info["entries"] = entries
    info["total"] = sum(e["duration"] for e in entries)
    return info


class HlsServerCase(h.FileServerCase):
    timeout = 300
    prefix = "srs-hls-"
    hls = ""
    extra_vhost = ""

    def vhost_body(self) -> str:
        # the first of a repeated directive wins (SRS): the class's own come first
        return (
            f"hls {{ enabled on; hls_path {self.root}; {self.hls} "
            f"hls_fragment 2; hls_window 10; }} {self.extra_vhost}"
        )

    # ---- helpers --------------------------------------------------------------------------
    def publish(self, kind="h264-aac", loop=True, extra=(), seconds=12, name="s"):
        proc = h.publish(self.server.url(name), h.clip(kind, seconds), loop=loop, extra=list(extra))
        self.procs.append(proc)
        return proc

    def m3u8_url(self, name="s") -> str:
        return f"http://127.0.0.1:{self.http}/live/{name}.m3u8"

    def m3u8_path(self, name="s") -> str:
        return os.path.join(self.root, "live", f"{name}.m3u8")

    def fetch(self, url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=h.WAIT) as r:
            return r.read()

    def playlist(self, name="s") -> dict:
        with open(self.m3u8_path(name)) as f:
            return parse_m3u8(f.read())

    def wait_segments(self, count: int, name="s", deadline: float = 60.0) -> dict:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            try:
                info = parse_m3u8(self.fetch(self.m3u8_url(name)).decode())
                if len(info["entries"]) >= count:
                    return info
            except (urllib.error.URLError, OSError):
                pass
            proc = self.procs[-1] if self.procs else None
            if proc is not None and proc.poll() is not None and proc.returncode != 0:
                raise AssertionError(f"publisher exited with {proc.returncode}")
            time.sleep(0.2)
        raise AssertionError(f"no {count} segments in {self.m3u8_url(name)} after {deadline}s; log: "
                             f"{self.server.log()[-2000:]}")

    def wait_unpublished(self, name="s", deadline: float = 60.0) -> dict:
        """The playlist once the publisher is gone: no temporary segment left."""
        h.wait_for(lambda: not [f for f in self.files() if f.endswith(".tmp")], deadline, interval=0.2,
                   message=lambda: f"a segment is still open: {self.files()}")
        return self.playlist(name)

    def wait_open_segment(self) -> str:
        """Wait until the server has a segment open (its .tmp file)."""
        return h.wait_for(lambda: next((f for f in self.files() if f.endswith(".tmp")), None),
                          message=lambda: f"no open segment: {self.files()}")

    def files(self) -> set:
        found = set()
        for base, _, names in os.walk(self.root):
            for n in names:
                found.add(os.path.relpath(os.path.join(base, n), self.root))
        return found

    def read_to_end(self, out: str, extra=()) -> subprocess.CompletedProcess:
        """FFmpeg reads the whole (live, ended) playlist from its first segment."""
        return subprocess.run(
            [h.ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-live_start_index", "0",
             "-m3u8_hold_counters", "2", *extra, "-i", self.m3u8_url(), "-c", "copy", out],
            capture_output=True, timeout=90,
        )

    def fetch_init(self, name="s") -> bytes:
        """The fMP4 init segment, which is never encrypted."""
        init = self.fetch(f"http://127.0.0.1:{self.http}/live/{name}/init.mp4")
        self.assertEqual(init[4:8], b"ftyp")
        return init

    def copy_from_playlist(self, out: str, seconds: float = 4.0) -> subprocess.CompletedProcess:
        """FFmpeg plays the live playlist for ``seconds``, copying both streams to ``out``."""
        return subprocess.run(
            [h.ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-i", self.m3u8_url(), "-t", str(seconds),
             "-c", "copy", out],
            capture_output=True, timeout=90,
        )

    def duration_of(self, path: str) -> float:
        return float(h.probe(path)["format"]["duration"])

    def assertClose(self, first: float, second: float, tolerance: float) -> None:
        self.assertLessEqual(abs(first - second), tolerance, f"{first} != {second} +- {tolerance}")


class HlsTests(HlsServerCase):
    def test_ffprobe_reads_the_playlist_with_both_streams(self):
        self.publish()
        info = self.wait_segments(2)
        self.assertEqual(info["media_sequence"], 0)
        # the longest segment rounded (the first is 2.023 s: audio leads by a frame); SRS: its ceiling, 3
        self.assertEqual(info["target"], max(2, round(max(e["duration"] for e in info["entries"]))))
        self.assertEqual(info["target"], 2)
        probed = h.assert_streams(h.probe(self.m3u8_url()), [("video", "h264"), ("audio", "aac")])
        self.assertEqual((probed["video"]["width"], probed["video"]["height"]), (320, 240))
        self.assertGreaterEqual(len(info["entries"]), 2)
        for entry in info["entries"]:
            self.assertClose(entry["duration"], 2.0, 0.05)  # 1 s GOPs: cut at 2 s
            data = self.fetch(f"http://127.0.0.1:{self.http}/live/{entry['uri']}")
            self.assertEqual(len(data) % 188, 0)
            self.assertEqual(data[0], 0x47)

    def test_playlist_duration_matches_the_published_media(self):
        proc = self.publish(loop=False, seconds=10)
        proc.wait(120)
        info = self.wait_unpublished()
        self.assertEqual(proc.returncode, 0)
        # within one fragment of what was published (the clip is 10 s); not
        # compared with the wall clock, which a busy machine stretches
        self.assertClose(info["total"], 10.0, 2.0)
        self.assertEqual(len(info["entries"]), 5)
        out = os.path.join(self.root, "all.ts")
        result = self.read_to_end(out)
        self.assertEqual(result.returncode, 0, result.stderr[-1000:])
        self.assertClose(self.duration_of(out), info["total"], 0.5)

    def test_publisher_killed_leaves_a_playlist_ffmpeg_reads_to_the_end(self):
        proc = self.publish()
        self.wait_segments(3)
        self.wait_open_segment()  # killed while a segment is open
        proc.send_signal(signal.SIGKILL)
        proc.wait(h.WAIT)
        info = self.wait_unpublished()
        names = self.files()
        for entry in info["entries"]:
            self.assertIn(f"live/{entry['uri']}", names)
        self.assertNotIn("ENDLIST", open(self.m3u8_path()).read())
        out = os.path.join(self.root, "killed.ts")
        result = self.read_to_end(out)
        self.assertEqual(result.returncode, 0, result.stderr[-1000:])
        h.assert_streams(h.probe(out), [("video", "h264"), ("audio", "aac")])
        self.assertClose(self.duration_of(out), info["total"], 0.5)

    def test_republish_continues_after_a_discontinuity(self):
        proc = self.publish()
        self.wait_segments(2)
        h.stop_process(proc)
        first = self.wait_unpublished()
        self.publish()
        info = self.wait_segments(len(first["entries"]) + 2)
        self.assertEqual(info["discontinuities"], 1)
        self.assertEqual(info["media_sequence"], 0)
        h.assert_streams(h.probe(self.m3u8_url()), [("video", "h264"), ("audio", "aac")])


class HlsAesTests(HlsServerCase):
    hls = "hls_keys on; hls_fragments_per_key 2;"

    def test_ffmpeg_decrypts_with_the_served_key(self):
        self.publish()
        info = self.wait_segments(3)
        # one key per two fragments, named after the first fragment it encrypts
        key_uris = [re.search(r'URI="([^"]+)"', e["key"]).group(1) for e in info["entries"]]
        first = info["media_sequence"]
        self.assertEqual(key_uris, [f"s-{(first + i) // 2 * 2}.key" for i in range(len(key_uris))])
        key = self.fetch(f"http://127.0.0.1:{self.http}/live/s-0.key")
        self.assertEqual(len(key), 16)
        with open(os.path.join(self.root, "live", "s-0.ts"), "rb") as f:
            data = f.read()
        self.assertEqual(len(data) % 16, 0)
        self.assertNotEqual(data[:1] + data[188:189], b"\x47\x47")  # not plain TS
        out = os.path.join(self.root, "out.ts")
        result = self.copy_from_playlist(out)
        self.assertEqual(result.returncode, 0, result.stderr[-1000:])
        h.assert_streams(h.probe(out), [("video", "h264"), ("audio", "aac")])
        self.assertClose(self.duration_of(out), 4.0, 0.5)


class HlsCleanupTests(HlsServerCase):
    hls = "hls_window 4; hls_dispose 3;"

    def test_cleanup_keeps_the_window_and_one_more(self):
        self.publish()
        self.wait_segments(1)
        info = h.wait_for(lambda: (lambda i: i if i["media_sequence"] >= 6 else None)(self.playlist()), 120,
                          interval=0.5, message="the playlist did not slide to sequence 6")
        ts = sorted(int(re.search(r"s-(\d+)\.ts$", f).group(1)) for f in self.files() if f.endswith(".ts"))
        last = int(re.search(r"s-(\d+)", info["entries"][-1]["uri"]).group(1))
        # contiguous, ending with the playlist's last segment (the open one is a .tmp)
        self.assertEqual(ts, list(range(ts[0], ts[-1] + 1)))
        self.assertIn(ts[-1], (last, last + 1))
        # what left the playlist stays for one more window (4 s: two or three 2 s segments)
        kept = info["media_sequence"] - ts[0]
        self.assertTrue(1 <= kept <= 4, (kept, info, ts))
        self.assertNotIn("live/s-0.ts", self.files())

    def test_dispose_removes_every_file(self):
        proc = self.publish()
        self.wait_segments(2)
        stopped = time.monotonic()  # the server sees the unpublish after this
        h.stop_process(proc)
        self.wait_unpublished()
        self.assertIn("live/s.m3u8", self.files())
        h.wait_for(lambda: not self.files(), 60, interval=0.2, message=lambda: f"not disposed: {self.files()}")
        # hls_dispose 3: not before 3 s after the unpublish (a lower bound,
        # which a busy machine cannot break)
        self.assertGreaterEqual(time.monotonic() - stopped, 2.9)


class HlsSingleTrackTests(HlsServerCase):
    def test_audio_only(self):
        self.publish(extra=["-vn"])
        info = self.wait_segments(2)
        self.assertGreaterEqual(len(info["entries"]), 2)
        for entry in info["entries"]:
            # pure audio is cut at hls_aof_ratio (2.1) * hls_fragment
            self.assertClose(entry["duration"], 4.2, 0.1)
        h.assert_streams(h.probe(self.m3u8_url()), [("audio", "aac")])

    def test_video_only(self):
        self.publish(extra=["-an"])
        info = self.wait_segments(2)
        self.assertGreaterEqual(len(info["entries"]), 2)
        for entry in info["entries"]:
            self.assertClose(entry["duration"], 2.0, 0.05)
        h.assert_streams(h.probe(self.m3u8_url()), [("video", "h264")])

    def test_mp3_audio(self):
        self.publish(kind="h264-mp3")
        self.wait_segments(2)
        h.assert_streams(h.probe(self.m3u8_url()), [("video", "h264"), ("audio", "mp3")])


class HlsFmp4Tests(HlsSingleTrackTests):
    """fMP4 segments; also the single-track and MP3 cases, with fMP4."""

    hls = "hls_use_fmp4 on;"

    def test_ffmpeg_reads_the_fmp4_playlist(self):
        self.publish()
        info = self.wait_segments(2)
        text = self.fetch(self.m3u8_url()).decode()
        self.assertIn("#EXT-X-VERSION:7\n", text)
        self.assertIn('#EXT-X-MAP:URI="s/init.mp4"\n', text)
        self.fetch_init()
        self.assertGreaterEqual(len(info["entries"]), 2)
        for entry in info["entries"]:
            self.assertRegex(entry["uri"], r"^s-\d+\.m4s$")
            self.assertClose(entry["duration"], 2.0, 0.05)
            data = self.fetch(f"http://127.0.0.1:{self.http}/live/{entry['uri']}")
            self.assertEqual(data[4:8], b"moof")
        probed = h.assert_streams(h.probe(self.m3u8_url()), [("video", "h264"), ("audio", "aac")])
        self.assertEqual((probed["video"]["width"], probed["video"]["height"]), (320, 240))
        out = os.path.join(self.root, "out.mp4")
        result = self.copy_from_playlist(out)
        self.assertEqual(result.returncode, 0, result.stderr[-1000:])
        h.assert_streams(h.probe(out), [("video", "h264"), ("audio", "aac")])
        self.assertGreaterEqual(self.duration_of(out), 3.5)

    def test_republish_keeps_one_init(self):
        proc = self.publish()
        self.wait_segments(2)
        h.stop_process(proc)
        first = self.wait_unpublished()
        self.publish()
        info = self.wait_segments(len(first["entries"]) + 2)
        self.assertEqual(info["discontinuities"], 1)
        text = self.fetch(self.m3u8_url()).decode()
        self.assertEqual(text.count("#EXT-X-MAP"), 1)
        self.assertEqual([f for f in self.files() if f.endswith(".mp4")], ["live/s/init.mp4"])
        h.assert_streams(h.probe(self.m3u8_url()), [("video", "h264"), ("audio", "aac")])

    def test_read_to_the_end_after_unpublish(self):
        proc = self.publish(loop=False, seconds=10)
        proc.wait(120)
        info = self.wait_unpublished()
        self.assertClose(info["total"], 10.0, 2.0)
        out = os.path.join(self.root, "all.mp4")
        result = self.read_to_end(out)
        self.assertEqual(result.returncode, 0, result.stderr[-1000:])
        self.assertClose(self.duration_of(out), info["total"], 0.5)


class HlsFmp4AesTests(HlsServerCase):
    hls = "hls_use_fmp4 on; hls_keys on; hls_fragments_per_key 2;"

    def test_ffmpeg_decrypts_fmp4_with_the_served_key(self):
        self.publish()
        info = self.wait_segments(3)
        text = self.fetch(self.m3u8_url()).decode()
        # the init segment is clear: its MAP comes before any key
        self.assertLess(text.index("#EXT-X-MAP"), text.index("#EXT-X-KEY"))
        self.fetch_init()
        key = self.fetch(f"http://127.0.0.1:{self.http}/live/s-0.key")
        self.assertEqual(len(key), 16)
        data = self.fetch(f"http://127.0.0.1:{self.http}/live/{info['entries'][0]['uri']}")
        self.assertEqual(len(data) % 16, 0)
        self.assertNotEqual(data[4:8], b"moof")
        out = os.path.join(self.root, "out.mp4")
        result = self.copy_from_playlist(out)
        self.assertEqual(result.returncode, 0, result.stderr[-1000:])
        h.assert_streams(h.probe(out), [("video", "h264"), ("audio", "aac")])
        self.assertClose(self.duration_of(out), 4.0, 0.5)
