"""With dash_dispose 0 a stream's DASH recorder is released once the stream
has been gone a while (memory bounded however many names are published),
its files stay on disk, and the next recorder of the stream takes over the
MPD it finds there: one timeline, numbers go on, the old segments stay in
the window and are cleaned up as they leave it (the same as HLS, issue 9
item 7)."""

from __future__ import annotations

import os

from twisted.internet.task import Clock
from twisted.trial import unittest

from srs_twisted.config import load_string
from srs_twisted.context import ServerContext
from srs_twisted.dash.mpd import MpdTimes, Representation, Segment, build_mpd
from srs_twisted.dash.restore import parse_datetime, read_mpd
from srs_twisted.dash.service import DashObserver
from srs_twisted.live.packet import VIDEO
from srs_twisted.recording import MIN_RELEASE_SECONDS, release_after

from ..codec.test_avc import AVCC_1280x720
from ..hls.media import stream, video_sh
from ..hls.test_writer import Publisher, listing
from .mpdxml import parse_mpd

NOW = 1700000000.0
RELEASE = 30.0  # max(30 s, 2 * dash_window_size 3 * dash_fragment 2)


class ReadMpdTests(unittest.TestCase):
    def mpd(self, prefix="s/") -> bytes:
        class Track:
            kind, codec_string, width, height, timescale = "video", "avc1.42c01e", 320, 240, 90000

        segments = [Segment(7 + i, 180000 * i, 180000, 90000, 1000, f"/x/video-{7 + i}.m4s") for i in range(3)]
        times = MpdTimes(NOW + 0.25, NOW + 10, 2, 0, 2, 4)
        return build_mpd([Representation("video", Track(), segments)], times, prefix).encode()

    def test_what_build_mpd_writes_reads_back(self):
        read = read_mpd(self.mpd(), "s/")
        self.assertEqual(read.availability_start, NOW + 0.25)
        (rep,) = read.representations.values()
        self.assertEqual((rep.rep_id, rep.timescale, rep.start_number, rep.last_number, rep.ours),
                         ("video", 90000, 7, 9, True))
        self.assertEqual(rep.entries, [(0, 180000), (180000, 180000), (360000, 180000)])

    def test_another_prefix_keeps_the_numbers_not_the_segments(self):
        rep = read_mpd(self.mpd("t/"), "s/").representations["video"]
        self.assertEqual((rep.last_number, rep.ours), (9, False))

    def test_not_ours(self):
        for data in (b"hello", b"<MPD/>", self.mpd().replace(b'type="dynamic"', b'type="static"'),
                     self.mpd().replace(b"availabilityStartTime", b"x"), b"<a>" * 10 + b"x" * (1024 * 1024)):
            self.assertIsNone(read_mpd(data, "s/"), data[:60])
        # a timeline we cannot count leaves the representation out
        bad = self.mpd().replace(b'<S t="0"', b'<S t="x"', 1)
        self.assertEqual(read_mpd(bad, "s/").representations, {})

    def test_parse_datetime(self):
        self.assertEqual(parse_datetime("2023-11-14T22:13:20.000Z"), NOW)
        self.assertEqual(parse_datetime("2023-11-14T22:13:20Z"), NOW)
        self.assertEqual(parse_datetime("2023-11-14T22:13:20.5Z"), NOW + 0.5)
        for bad in ("", "2023-11-14 22:13:20Z", "2023-13-14T22:13:20Z", "2023-11-14T22:13:20+01:00"):
            self.assertIsNone(parse_datetime(bad), bad)


class ObserverCase(unittest.TestCase):
    dash = "dash_fragment 2; dash_window_size 3; dash_dispose 0;"

    def setUp(self):
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        self.clock = Clock()
        self.clock.advance(NOW)
        self.ctx, self.observer = self.server(self.clock)

    def server(self, clock):
        text = f"vhost __defaultVhost__ {{ dash {{ enabled on; dash_path {self.root}; {self.dash} }} }}"
        ctx = ServerContext(load_string(text), clock)
        observer = DashObserver(ctx)
        ctx.registry.observers.append(observer)
        return ctx, observer

    def publish(self, name="s", seconds=5.0, packets=None, ctx=None, clock=None, move=True):
        """Publish ``seconds`` of media (the clock moving with it, unless not
        ``move``) and unpublish."""
        ctx, clock = ctx or self.ctx, clock or self.clock
        source = ctx.registry.fetch_or_create("__defaultVhost__", "live", name)
        ctx.registry.publish(source, Publisher())
        last = None
        for pkt in packets if packets is not None else stream(seconds):
            if move and last is not None and pkt.dts > last:
                clock.advance((pkt.dts - last) / 1000.0)
            last = pkt.dts if last is None else max(last, pkt.dts)
            source.write(pkt)
        ctx.registry.unpublish(source)

    def mpd(self, name="s") -> dict:
        with open(os.path.join(self.root, "live", f"{name}.mpd"), "rb") as f:
            return parse_mpd(f.read())

    def numbers(self, rep, name="s") -> list[int]:
        home = os.path.join(self.root, "live", name)
        names = [n for n in os.listdir(home) if n.startswith(rep + "-") and n.endswith(".m4s")]
        return sorted(int(n[len(rep) + 1:-4]) for n in names)

    @staticmethod
    def listed(info) -> list[int]:
        return list(range(info["start"], info["start"] + len(info["entries"])))


class ReleaseTests(ObserverCase):
    def test_the_bound(self):
        self.assertEqual(release_after(2 * 3 * 2.0), RELEASE)
        self.assertEqual(release_after(120.0), 120.0)
        self.assertEqual(MIN_RELEASE_SECONDS, 30.0)

    def test_many_names_are_released_and_their_files_kept(self):
        for i in range(20):
            self.publish(f"n{i}", seconds=3, move=False)
        self.assertEqual(len(self.observer.recorders), 20)
        self.clock.advance(RELEASE)
        self.assertEqual(self.observer.recorders, {})  # was 20 for ever
        self.assertEqual(self.clock.getDelayedCalls(), [])
        names = listing(self.root)
        for i in range(20):
            for name in ("n.mpd", "n/video-init.mp4", "n/audio-init.mp4", "n/video-1.m4s", "n/audio-2.m4s"):
                self.assertIn("live/" + name.replace("n", f"n{i}", 1), names)

    def test_republish_within_the_bound_keeps_the_recorder(self):
        self.publish()
        recorder = self.observer.recorders[("__defaultVhost__", "live", "s")]
        self.clock.advance(RELEASE - 1)
        self.publish()
        self.assertIs(self.observer.recorders[("__defaultVhost__", "live", "s")], recorder)
        self.clock.advance(RELEASE - 1)
        self.assertIs(self.observer.recorders[("__defaultVhost__", "live", "s")], recorder)
        self.clock.advance(1)
        self.assertEqual(self.observer.recorders, {})

    def test_release_removes_what_the_mpd_no_longer_lists(self):
        self.publish(seconds=13)
        mpd = self.mpd()
        self.assertEqual(self.listed(mpd["video"]), [5, 6, 7])
        self.assertIn(3, self.numbers("video"))  # in the keep window (2 * 3 * 2 s)
        self.clock.advance(RELEASE)
        self.assertEqual(self.numbers("video"), self.listed(mpd["video"]))
        self.assertEqual(self.numbers("audio"), self.listed(mpd["audio"]))
        self.assertEqual(mpd, self.mpd())



class NoCleanupReleaseTests(ObserverCase):
    dash = "dash_fragment 2; dash_window_size 3; dash_dispose 0; dash_cleanup off;"

    def test_every_file_stays(self):
        self.publish(seconds=13)
        before = listing(self.root)
        self.assertEqual(len([n for n in before if n.startswith("live/s/video-")]), 8)  # init and 1..7
        self.clock.advance(RELEASE)
        self.assertEqual(self.observer.recorders, {})
        self.assertEqual(listing(self.root), before)


class TakeOverTests(ObserverCase):
    def test_republish_after_release_goes_on_from_the_mpd(self):
        self.publish(seconds=9)
        first = self.mpd()
        self.assertEqual(self.listed(first["video"]), [3, 4, 5])
        self.clock.advance(100)
        self.assertEqual(self.observer.recorders, {})
        self.publish(seconds=3)
        mpd = self.mpd()
        # one timeline: the same availabilityStartTime, the new segments after the old ones, at the wall clock
        self.assertEqual(mpd["root"]["availabilityStartTime"], first["root"]["availabilityStartTime"])
        for rep in ("video", "audio"):
            entries, old = mpd[rep]["entries"], first[rep]["entries"]
            self.assertEqual(mpd[rep]["start"], first[rep]["start"] + len(old) + 2 - len(entries))
            self.assertEqual(entries[0], old[-1])  # the old window's last segment, still listed
            scale = mpd[rep]["timescale"]
            self.assertLess(abs(entries[1][0] / scale - (9 + 100)), 0.1)
        # numbers go on: no file name is reused
        self.assertEqual(self.listed(mpd["video"]), [5, 6, 7])
        self.assertEqual(self.numbers("video"), [3, 4, 5, 6, 7])
        # later the old segments leave the window and their files go
        self.publish(seconds=15)
        self.assertFalse({3, 4, 5} & set(self.numbers("video")))

    def test_a_new_configuration_lists_only_the_new_segments(self):
        self.publish(seconds=5)
        self.clock.advance(100)
        packets = [video_sh(0, AVCC_1280x720) if p.kind == VIDEO and p.sequence_header else p for p in stream(3)]
        self.publish(packets=packets)
        mpd = self.mpd()
        self.assertEqual(self.listed(mpd["video"]), [4, 5])  # 1..3 were the old configuration's
        self.assertEqual(mpd["video"]["rep"]["width"], "1280")
        self.assertEqual(self.listed(mpd["audio"]), [3, 4, 5])  # the same audio configuration: its window goes on

    def test_missing_files_leave_their_segments_out(self):
        self.publish(seconds=9)
        self.clock.advance(100)
        os.unlink(os.path.join(self.root, "live", "s", "video-4.m4s"))
        self.publish(seconds=1.5)
        mpd = self.mpd()
        self.assertEqual(self.listed(mpd["video"]), [5, 6])  # 3 is before the hole
        self.assertEqual(self.listed(mpd["audio"]), [4, 5, 6])

    def test_a_restart_goes_on_from_the_mpd(self):
        self.publish(seconds=5)
        first = self.mpd()
        clock = Clock()
        clock.advance(self.clock.seconds() + 60)
        ctx, _ = self.server(clock)  # a new server, same directory
        self.publish(seconds=3, ctx=ctx, clock=clock)
        mpd = self.mpd()
        self.assertEqual(mpd["root"]["availabilityStartTime"], first["root"]["availabilityStartTime"])
        self.assertEqual(self.listed(mpd["video"]), [3, 4, 5])

    def test_an_mpd_not_ours_is_left_and_numbers_start_at_one(self):
        os.makedirs(os.path.join(self.root, "live"))
        with open(os.path.join(self.root, "live", "s.mpd"), "w") as f:
            f.write("not an mpd")
        self.publish(seconds=3)
        self.assertEqual(self.listed(self.mpd()["video"]), [1, 2])
