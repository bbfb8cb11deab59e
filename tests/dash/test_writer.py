"""The DASH recorder on a real directory with a fake clock: the files it
writes and when, the MPD they make, cleanup, dispose, timestamp jumps,
republish, audio-only and video-only streams, codec changes and errors."""

from __future__ import annotations

import os

from twisted.internet.task import Clock
from twisted.trial import unittest

from srs_twisted import log as srs_log
from srs_twisted.config import load_string
from srs_twisted.context import ServerContext
from srs_twisted.dash.writer import DashRecorder
from srs_twisted.live.packet import VIDEO, MediaPacket

from ..codec.test_avc import AVCC_1280x720
from ..hls.media import audio, audio_sh, mp3, stream, video_sh
from ..hls.test_writer import Publisher, listing
from .mpdxml import parse_mpd

NOW = 1700000000.0
AVCC_OTHER = AVCC_1280x720  # another H.264 configuration


def read_mpd(path: str) -> dict:
    with open(path, "rb") as f:
        return parse_mpd(f.read())


class RecorderCase(unittest.TestCase):
    dash = "dash_fragment 2; dash_window_size 5; dash_dispose 30;"
    extra = ""  # more of the vhost

    def setUp(self):
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        self.clock = Clock()
        self.clock.advance(NOW)
        self.ctx = ServerContext(self.make_config(), self.clock)
        self.disposed = []
        self.rec = DashRecorder(self.ctx, "__defaultVhost__", "live", "s", on_disposed=self.disposed.append)
        self.publish()

    def make_config(self, dash=None):
        return load_string(f"vhost __defaultVhost__ {{ dash {{ enabled on; dash_path {self.root}; "
                           f"{self.dash if dash is None else dash} }} {self.extra} }}")

    def publish(self):
        self.source = self.ctx.registry.fetch_or_create("__defaultVhost__", "live", "s")
        self.ctx.registry.publish(self.source, Publisher())
        self.rec.start(self.source)

    def unpublish(self):
        self.rec.stop()
        self.ctx.registry.unpublish(self.source)

    def feed(self, packets):
        """Write packets to the source, moving the clock with their time."""
        last = None
        for p in packets:
            if last is not None and p.dts > last:
                self.clock.advance((p.dts - last) / 1000.0)
            last = p.dts if last is None else max(last, p.dts)
            self.source.write(p)

    def path(self, *parts):
        return os.path.join(self.root, "live", *parts)

    def mpd(self) -> dict:
        return read_mpd(self.path("s.mpd"))

    def media_files(self, rep):
        names = [n for n in os.listdir(self.path("s")) if n.startswith(rep + "-") and n.endswith(".m4s")]
        return sorted(int(n[len(rep) + 1:-4]) for n in names)

    def assertContiguous(self, entries):
        self.assertGreaterEqual(len(entries), 2, entries)  # something to compare
        for (t1, d1), (t2, _) in zip(entries, entries[1:]):
            self.assertEqual(t1 + d1, t2)


class AudioVideoTests(RecorderCase):
    def test_files_and_mpd(self):
        self.feed(stream(9))
        self.unpublish()
        files = listing(self.root)
        self.assertEqual({"live/s.mpd", "live/s/video-init.mp4", "live/s/audio-init.mp4"},
                         {f for f in files if not f.endswith(".m4s")})
        self.assertEqual([1, 2, 3, 4, 5], self.media_files("video"))
        self.assertEqual([1, 2, 3, 4, 5], self.media_files("audio"))
        mpd = self.mpd()
        self.assertEqual("dynamic", mpd["root"]["type"])
        video_, audio_ = mpd["video"], mpd["audio"]
        self.assertEqual((1, 90000), (video_["start"], video_["timescale"]))
        self.assertEqual((1, 44100), (audio_["start"], audio_["timescale"]))
        # 2 s video segments at the keyframes, the last one what was left at unpublish
        self.assertEqual([(0, 180000), (180000, 180000), (360000, 180000), (540000, 180000), (720000, 90000)],
                         video_["entries"])
        self.assertContiguous(audio_["entries"])
        self.assertEqual(len(audio_["entries"]), 5)
        for (vt, _), (at, _) in zip(video_["entries"], audio_["entries"]):
            self.assertLess(abs(vt / 90000 - at / 44100), 0.024)  # audio cut at its first frame from the keyframe
        self.assertEqual({"codecs": "avc1.42c01e", "width": "320", "height": "240", "id": "video"},
                         {k: video_["rep"][k] for k in ("codecs", "width", "height", "id")})
        self.assertEqual(("mp4a.40.2", "44100"), (audio_["rep"]["codecs"], audio_["rep"]["audioSamplingRate"]))
        self.assertEqual("2023-11-14T22:13:20.000Z", mpd["root"]["availabilityStartTime"])
        self.assertEqual(0, self.rec.errors)

    def test_segments_are_fmp4_of_one_track(self):
        self.feed(stream(5))
        self.unpublish()
        with open(self.path("s", "video-init.mp4"), "rb") as f:
            init = f.read()
        self.assertEqual(b"ftyp", init[4:8])
        self.assertEqual(1, init.count(b"trak"))
        self.assertIn(b"avcC", init)
        with open(self.path("s", "audio-init.mp4"), "rb") as f:
            self.assertIn(b"esds", f.read())
        for rep, number in (("video", 1), ("audio", 2)):
            with open(self.path("s", f"{rep}-{number}.m4s"), "rb") as f:
                data = f.read()
            self.assertEqual(b"styp", data[4:8])
            self.assertEqual(1, data.count(b"traf"))
            # mfhd sequence number = the segment's number
            at = data.index(b"mfhd")
            self.assertEqual(number, int.from_bytes(data[at + 8:at + 12], "big"))

    def test_first_video_segment_starts_with_its_keyframe(self):
        self.feed(stream(5))
        self.unpublish()
        with open(self.path("s", "video-2.m4s"), "rb") as f:
            data = f.read()
        trun = data.index(b"trun")
        # type, version+flags, sample count, data offset, then duration, size, flags
        first_flags = int.from_bytes(data[trun + 24:trun + 28], "big")
        self.assertEqual(0x02000000, first_flags)  # depends on no other sample: a keyframe

    def test_mpd_waits_for_both_tracks_then_follows_each_segment(self):
        packets = stream(7)
        cut = next(i for i, p in enumerate(packets) if p.kind == VIDEO and p.keyframe and p.dts == 2000
                   and not p.sequence_header)
        self.feed(packets[:cut + 1])
        self.assertFalse(os.path.exists(self.path("s.mpd")))  # video cut, audio's first frame from 2 s not yet here
        self.assertEqual([1], self.media_files("video"))
        self.feed(packets[cut + 1:cut + 3])
        mpd = self.mpd()
        self.assertEqual((1, 1), (len(mpd["video"]["entries"]), len(mpd["audio"]["entries"])))
        self.feed([p for p in packets[cut + 3:] if p.dts <= 4100])
        mpd = self.mpd()
        self.assertEqual((2, 2), (len(mpd["video"]["entries"]), len(mpd["audio"]["entries"])))
        self.assertEqual([], [f for f in listing(self.root) if f.endswith(".tmp")])

    def test_publish_time_is_the_write_time(self):
        self.feed(stream(5))
        # written when the audio frame that closed the second segments came (4002 ms)
        self.assertEqual("2023-11-14T22:13:24.002Z", self.mpd()["root"]["publishTime"])

    def test_repeated_sequence_header_changes_nothing(self):
        packets = stream(5)
        self.feed(packets[:60])
        self.source.write(video_sh(packets[59].dts))
        self.source.write(audio_sh(packets[59].dts))
        self.feed(packets[60:])
        self.unpublish()
        self.assertEqual([1, 2, 3], self.media_files("video"))
        self.assertEqual([0, 180000, 360000], [t for t, _ in self.mpd()["video"]["entries"]])


class WindowTests(RecorderCase):
    dash = "dash_fragment 2; dash_window_size 3; dash_dispose 30;"

    def test_window_and_cleanup(self):
        self.feed(stream(30))
        mpd = self.mpd()
        self.assertEqual([12, 13, 14], [mpd["video"]["start"] + i for i in range(len(mpd["video"]["entries"]))])
        self.assertEqual(3, len(mpd["audio"]["entries"]))
        self.assertEqual(mpd["video"]["start"], mpd["audio"]["start"])
        # files: the segments with at most 2 * 3 * 2 s after them
        self.assertEqual(list(range(8, 15)), self.media_files("video"))
        audio_files = self.media_files("audio")  # audio segments last 1.97 to 2.02 s
        self.assertIn(audio_files, (list(range(8, 15)), list(range(9, 15))))
        self.assertLess(abs(6.0 - float(mpd["root"]["timeShiftBufferDepth"][2:-1])), 0.05)

    def test_listed_files_exist(self):
        self.feed(stream(30))
        mpd = self.mpd()
        for rep in ("video", "audio"):
            start = mpd[rep]["start"]
            self.assertEqual(len(mpd[rep]["entries"]), 3, rep)  # dash_window_size 3
            for i in range(len(mpd[rep]["entries"])):
                self.assertTrue(os.path.exists(self.path("s", f"{rep}-{start + i}.m4s")))


class NoCleanupTests(RecorderCase):
    dash = "dash_fragment 2; dash_window_size 3; dash_cleanup off;"

    def test_files_stay(self):
        self.feed(stream(30))
        self.assertEqual(list(range(1, 15)), self.media_files("video"))
        self.assertEqual(3, len(self.mpd()["video"]["entries"]))


class DisposeTests(RecorderCase):
    def test_dispose_after_the_publisher_left(self):
        self.feed(stream(5))
        self.unpublish()
        self.assertTrue(self.rec.dispose_pending)
        self.clock.advance(29)
        self.assertTrue(os.path.exists(self.path("s.mpd")))
        self.clock.advance(1)
        self.assertEqual(set(), listing(self.root))
        self.assertFalse(os.path.exists(self.path("s")))
        self.assertEqual([self.rec], self.disposed)
        self.assertFalse(self.rec.dispose_pending)

    def test_republish_cancels_dispose(self):
        self.feed(stream(5))
        self.unpublish()
        self.clock.advance(20)
        self.publish()
        self.assertFalse(self.rec.dispose_pending)
        self.clock.advance(60)
        self.assertTrue(os.path.exists(self.path("s.mpd")))
        self.assertEqual([], self.disposed)

    def test_dispose_while_publishing_stops_first(self):
        self.feed(stream(5))
        self.rec.dispose()
        self.assertEqual(set(), listing(self.root))
        self.assertFalse(self.rec.enabled)
        self.assertNotIn(self.rec.on_packet, self.source._taps)


class NeverDisposeTests(RecorderCase):
    dash = "dash_fragment 2; dash_dispose 0;"

    def test_files_stay(self):
        self.feed(stream(5))
        self.unpublish()
        files = listing(self.root)
        # the recorder is released after a while (memory); the files stay
        self.assertTrue(self.rec.dispose_pending)
        self.clock.advance(3600)
        self.assertEqual([self.rec], self.disposed)
        self.assertFalse(self.rec.dispose_pending)
        self.assertEqual(files, listing(self.root))
        self.assertTrue(os.path.exists(self.path("s.mpd")))


class OneTrackTests(RecorderCase):
    def test_audio_only(self):
        self.feed(stream(9, video_on=False))
        self.unpublish()
        mpd = self.mpd()
        self.assertNotIn("video", mpd)
        entries = mpd["audio"]["entries"]
        self.assertEqual(5, len(entries))
        self.assertContiguous(entries)
        for _, d in entries[:-1]:
            self.assertLess(abs(d / 44100 - 2.0), 0.024)
        self.assertFalse(os.path.exists(self.path("s", "video-init.mp4")))

    def test_video_only(self):
        self.feed(stream(9, audio_on=False))
        self.unpublish()
        mpd = self.mpd()
        self.assertNotIn("audio", mpd)
        self.assertEqual(5, len(mpd["video"]["entries"]))

    def test_mp3_audio(self):
        packets = [p for p in stream(5) if p.kind != 8]
        frames = [mp3(t) for t in range(0, 5000, 26)]
        self.feed(sorted(packets + frames, key=lambda p: p.dts))
        self.unpublish()
        mpd = self.mpd()
        self.assertEqual("mp4a.6b", mpd["audio"]["rep"]["codecs"])
        self.assertEqual(3, len(mpd["audio"]["entries"]))
        self.assertEqual(3, len(mpd["video"]["entries"]))

    def test_unsupported_video_codec_leaves_audio(self):
        # Sorenson H.263 (FLV codec id 2): no fMP4 track
        h263 = [MediaPacket(VIDEO, t, b"\x22" + b"\x00" * 20, codec="sorenson", keyframe=t % 1000 == 0)
                for t in range(0, 5000, 40)]
        h263_sh = MediaPacket(VIDEO, 0, b"\x12\x00", codec="sorenson", keyframe=True, sequence_header=True)
        audio_packets = stream(5, video_on=False)
        self.feed([h263_sh] + sorted(h263 + audio_packets, key=lambda p: p.dts))
        self.unpublish()
        mpd = self.mpd()
        self.assertEqual(["audio"], [k for k in mpd if k != "root"])
        self.assertEqual(0, self.rec.errors)


class TimestampTests(RecorderCase):
    extra = "play { time_jitter off; }"  # the source would smooth the jumps itself
    def test_backward_jump_goes_on_from_the_newest(self):
        self.feed(stream(5))
        self.feed(stream(5, headers=False))  # 0..5 s again
        self.unpublish()
        self.assertEqual(1, self.rec.jumps)
        for rep in ("video", "audio"):
            entries = self.mpd()[rep]["entries"]
            self.assertContiguous(entries)
            total = sum(d for _, d in entries) / self.mpd()[rep]["timescale"]
            self.assertLess(abs(total - 10.0), 0.2)

    def test_forward_jump_goes_on_from_the_newest(self):
        self.feed(stream(5))
        self.feed(stream(5, start=3600000, headers=False))
        self.unpublish()
        self.assertEqual(1, self.rec.jumps)
        entries = self.mpd()["video"]["entries"]
        self.assertContiguous(entries)
        self.assertLess(max(d for _, d in entries), 3 * 90000)

    def test_small_jitter_is_no_jump(self):
        packets = stream(5)
        # audio 300 ms behind the video it is interleaved with
        late = [p if p.kind == VIDEO or p.sequence_header else audio(max(0, p.dts - 300)) for p in packets]
        self.feed(late)
        self.unpublish()
        self.assertEqual(0, self.rec.jumps)


class RepublishTests(RecorderCase):
    def test_republish_continues_timeline_and_numbers(self):
        self.feed(stream(5))
        self.unpublish()
        first = self.mpd()
        self.clock.advance(10)
        self.publish()
        self.feed(stream(5))
        self.unpublish()
        mpd = self.mpd()
        self.assertEqual(first["root"]["availabilityStartTime"], mpd["root"]["availabilityStartTime"])
        self.assertEqual([1, 2, 3, 4, 5], self.media_files("video")[:5])
        video_ = mpd["video"]
        self.assertEqual(2, video_["start"])  # the window of 5: segments 2..6
        times = [t for t, _ in video_["entries"]]
        self.assertEqual(sorted(times), times)
        # the new publish starts at the wall clock: 5 s of media + 10 s away
        self.assertLess(abs(times[2] / 90000 - 15.0), 0.05)
        self.assertEqual(0, self.rec.errors)

    def test_new_video_configuration_starts_a_new_epoch(self):
        self.feed(stream(5))
        self.unpublish()
        with open(self.path("s", "video-init.mp4"), "rb") as f:
            old_init = f.read()
        self.publish()
        packets = [video_sh(0, AVCC_OTHER) if p.kind == VIDEO and p.sequence_header else p for p in stream(5)]
        self.feed(packets)
        self.unpublish()
        mpd = self.mpd()
        self.assertEqual(4, mpd["video"]["start"])  # only the new configuration's segments
        self.assertEqual(3, len(mpd["video"]["entries"]))
        # the audio configuration is the same: its window spans both publishes (segments 2 to 6)
        self.assertEqual((2, 5), (mpd["audio"]["start"], len(mpd["audio"]["entries"])))
        with open(self.path("s", "video-init.mp4"), "rb") as f:
            self.assertNotEqual(old_init, f.read())
        self.assertEqual("1280", mpd["video"]["rep"]["width"])

    def test_video_configuration_change_mid_stream(self):
        packets = stream(6)
        mid = next(i for i, p in enumerate(packets) if p.dts >= 3000)
        self.feed(packets[:mid])
        self.source.write(video_sh(packets[mid].dts, AVCC_OTHER))
        self.feed(packets[mid:])
        self.unpublish()
        mpd = self.mpd()
        self.assertEqual(3, mpd["video"]["start"])  # 1: 0-2 s, 2: 2-3 s flushed at the change
        self.assertEqual(3 * 90000, mpd["video"]["entries"][0][0])
        self.assertEqual([1, 2, 3, 4], self.media_files("video"))


class ErrorTests(RecorderCase):
    def test_unwritable_directory_is_counted_not_raised(self):
        os.makedirs(self.path())
        with open(self.path("s"), "w") as f:
            f.write("not a directory")
        self.feed(stream(5))
        self.unpublish()
        self.assertGreater(self.rec.errors, 0)
        self.assertFalse(os.path.exists(self.path("s.mpd")))

    def test_bad_frame_is_dropped(self):
        packets = stream(5)
        broken = MediaPacket(VIDEO, 1020, b"\x27\x01\x00\x00\x00\x00\x00\x00\x99\x41", codec="h264")
        self.feed(packets[:40] + [broken] + packets[40:])
        self.unpublish()
        self.assertEqual(1, self.rec.errors)
        self.assertEqual(3, len(self.mpd()["video"]["entries"]))

    def test_a_flood_of_bad_frames_is_logged_a_few_times(self):
        events = []
        self.addCleanup(srs_log.capture(events))
        self.feed(stream(1))
        broken = [MediaPacket(VIDEO, 1000 + i, b"\x27\x01\x00\x00\x00\x00\x00\x00\x99\x41", codec="h264")
                  for i in range(500)]
        self.feed(broken)
        self.assertEqual(500, self.rec.errors)
        errors = [e for e in events if "dropped" in e[2]]
        self.assertEqual(10, len(errors))
        self.assertIn("(1 errors)", errors[0][2])

    def test_tap_survives_errors(self):
        os.makedirs(self.path())
        with open(self.path("s"), "w") as f:
            f.write("x")
        self.feed(stream(3))
        self.assertIn(self.rec.on_packet, self.source._taps)


class ShortPublishTests(RecorderCase):
    def test_unpublish_writes_the_mpd_without_waiting_for_a_silent_track(self):
        # an audio sequence header, then no audio frame at all
        self.feed([p for p in stream(1.5) if p.kind == VIDEO or p.sequence_header])
        self.assertFalse(os.path.exists(self.path("s.mpd")))
        self.unpublish()
        mpd = self.mpd()
        self.assertEqual(1, len(mpd["video"]["entries"]))
        self.assertNotIn("audio", mpd)
