"""The DVR plans: which streams, file names, where segments end, timestamps."""

from __future__ import annotations

import calendar
import time

from twisted.trial import unittest

from srs_twisted.config.model import DvrConfig
from srs_twisted.dvr.plan import (
    Close, DvrPlan, DvrSettings, Open, Write, applies, container_of, finish_path, full_template, render_path,
)

from . import packets as P


def run(plan: DvrPlan, pkts) -> list:
    events = []
    for p in pkts:
        events.extend(plan.feed(p))
    events.extend(plan.finish())
    return events


def files(events) -> list[list]:
    """The Write events of each file, split at Open."""
    out: list[list] = []
    for e in events:
        if isinstance(e, Open):
            out.append([])
        elif isinstance(e, Write):
            out[-1].append(e)
    return out


def closes(events) -> list[Close]:
    return [e for e in events if isinstance(e, Close)]


class ApplyTests(unittest.TestCase):
    def test_all_and_empty_record_everything(self):
        self.assertTrue(applies(["all"], "live", "s"))
        self.assertTrue(applies([], "live", "s"))
        self.assertTrue(applies(None, "live", "s"))

    def test_names_are_app_slash_stream_exactly(self):
        names = ["live/livestream", "live/s2"]
        self.assertTrue(applies(names, "live", "livestream"))
        self.assertTrue(applies(names, "live", "s2"))
        self.assertFalse(applies(names, "live", "s"))
        self.assertFalse(applies(names, "other", "livestream"))
        self.assertFalse(applies(["livestream"], "live", "livestream"))
        self.assertFalse(applies(["live"], "live", "livestream"))

    def test_all_among_other_names_is_a_name(self):
        # SRS only honours 'all' as the single argument.
        self.assertFalse(applies(["all", "live/x"], "live", "s"))
        self.assertTrue(applies(["all", "live/x"], "live", "x"))


class PathTests(unittest.TestCase):
    # 2015-01-03 03:21:08.776 UTC
    NOW = calendar.timegm((2015, 1, 3, 3, 21, 8)) + 0.776

    def test_every_variable_utc(self):
        path = render_path(
            "/data/[vhost]/[app]/[stream]/[2006]/[01]/[02]/[15].[04].[05].[999].[timestamp].flv",
            "__defaultVhost__", "live", "s", self.NOW, utc=True,
        )
        self.assertEqual(path, "/data/__defaultVhost__/live/s/2015/01/03/03.21.08.776.1420255268776.flv")

    def test_default_path_is_relative_as_configured(self):
        path = render_path(P.__name__ and DvrConfig().dvr_path, "v", "live", "s", self.NOW, utc=True)
        self.assertEqual(path, "./objs/nginx/html/live/s.1420255268776.flv")

    def test_local_time_by_default(self):
        path = render_path("[2006][01][02][15][04][05]", "v", "a", "s", self.NOW)
        self.assertEqual(path, time.strftime("%Y%m%d%H%M%S", time.localtime(int(self.NOW))) + "/[stream].[timestamp].flv"
                         .replace("[stream]", "s").replace("[timestamp]", "1420255268776"))

    def test_a_directory_gets_stream_and_timestamp(self):
        self.assertEqual(full_template("./rec/[app]"), "./rec/[app]/[stream].[timestamp].flv")
        self.assertEqual(full_template("./rec/x.mp4"), "./rec/x.mp4")
        self.assertEqual(render_path("./rec", "v", "live", "s", 1.5), "./rec/s.1500.flv")

    def test_container_by_extension(self):
        self.assertEqual(container_of("./a/[stream].mp4"), "mp4")
        self.assertEqual(container_of("./a/[stream].flv"), "flv")
        self.assertEqual(container_of("./a/dir"), "flv")
        self.assertEqual(container_of("./a/x.MP4"), "flv")  # as SRS: case matters

    def test_duration_is_filled_at_close(self):
        path = render_path("./r/[stream].[duration].flv", "v", "live", "s", self.NOW)
        self.assertEqual(path, "./r/s.[duration].flv")
        self.assertEqual(finish_path(path, 3040), "./r/s.3040.flv")

    def test_settings_from_config(self):
        conf = DvrConfig(enabled=True, dvr_apply=["live/a"], dvr_plan="segment", dvr_path="./x.mp4",
                         dvr_duration=5, dvr_wait_keyframe=False, time_jitter="zero")
        s = DvrSettings.from_config(conf)
        self.assertEqual((s.plan, s.path, s.duration, s.wait_keyframe, s.time_jitter, s.apply, s.container),
                         ("segment", "./x.mp4", 5.0, False, "zero", ("live/a",), "mp4"))
        self.assertEqual(DvrSettings.from_config(DvrConfig(dvr_plan="bogus")).plan, "session")


class SessionPlanTests(unittest.TestCase):
    def test_one_file_per_publish_with_headers_first(self):
        events = run(DvrPlan(DvrSettings()), P.stream(40))
        self.assertEqual([type(e).__name__ for e in events][:4], ["Open", "Write", "Write", "Write"])
        self.assertEqual(len(files(events)), 1)
        (close,) = closes(events)
        self.assertEqual(close.reason, "unpublish")
        self.assertTrue(39900 <= close.duration_ms <= 40000, close)
        first = files(events)[0]
        self.assertTrue(first[0].packet.is_data and first[0].header)
        self.assertTrue(first[1].packet.is_video and first[1].packet.sequence_header and first[1].header)
        self.assertTrue(first[2].packet.is_audio and first[2].packet.sequence_header and first[2].header)
        media = [w.packet for w in first if not w.header]
        self.assertTrue(media[0].is_video and media[0].keyframe)

    def test_no_media_no_file(self):
        plan = DvrPlan(DvrSettings())
        events = run(plan, [P.metadata(), P.video_sh(), P.audio_sh()])
        self.assertEqual(events, [])

    def test_waits_for_a_keyframe_when_joining_mid_gop(self):
        pkts = P.stream(3, headers=False)
        # Start 10 frames into the first GOP; headers come first as a tap replays them.
        mid = [p for p in pkts if p.dts >= 400]
        events = run(DvrPlan(DvrSettings()), [P.metadata(), P.video_sh(), P.audio_sh()] + mid)
        media = [w.packet for w in files(events)[0] if not w.header]
        self.assertTrue(media[0].is_video and media[0].keyframe)
        self.assertEqual(media[0].dts, 9)  # full jitter: the file starts near 0

    def test_without_wait_keyframe_starts_at_once(self):
        settings = DvrSettings(wait_keyframe=False)
        pkts = [P.metadata(), P.video_sh(), P.audio_sh()] + [p for p in P.stream(3, headers=False) if p.dts >= 400]
        media = [w.packet for w in files(run(DvrPlan(settings), pkts))[0] if not w.header]
        self.assertEqual(media[0].dts, 9)
        # As SRS: video before the first keyframe is kept too.
        self.assertEqual(len(media), sum(1 for p in pkts if not p.sequence_header and not p.is_data))

    def test_metadata_once_per_file(self):
        pkts = P.stream(2)
        pkts.insert(30, P.metadata(600, width=640.0))
        writes = files(run(DvrPlan(DvrSettings()), pkts))[0]
        self.assertEqual(sum(1 for w in writes if w.packet.is_data), 1)

    def test_finish_twice_and_feed_after_finish(self):
        plan = DvrPlan(DvrSettings())
        run(plan, P.stream(1))
        self.assertEqual(plan.finish(), [])
        self.assertEqual(plan.feed(P.video(5000, True)), [])


class SegmentPlanTests(unittest.TestCase):
    def segments(self, seconds, duration=3, gop=25, wait=True, **kw):
        settings = DvrSettings(plan="segment", duration=duration, wait_keyframe=wait)
        events = run(DvrPlan(settings, **kw), P.stream(seconds, gop=gop))
        return events, files(events), closes(events)

    def test_cuts_at_the_keyframe_after_the_duration(self):
        # 1 s GOPs: a 3 s segment ends at the keyframe 3 s after its start.
        events, fs, cs = self.segments(10.5)
        self.assertEqual(len(fs), 4)
        for writes in fs:
            media = [w.packet for w in writes if not w.header]
            self.assertTrue(media[0].is_video and media[0].keyframe, media[0])
            headers = [w.packet for w in writes if w.header]
            self.assertEqual([h.kind for h in headers], [18, 9, 8])
        self.assertEqual([c.reason for c in cs], ["segment", "segment", "segment", "unpublish"])
        # last dts - first dts: the last frame's own 40 ms are not counted
        for c in cs[:-1]:
            self.assertTrue(2950 <= c.duration_ms < 3000, c)

    def test_long_gops_make_longer_segments(self):
        # 2.4 s GOPs and 3 s segments: cuts at 4.8 s, 9.6 s ...
        _, fs, cs = self.segments(12, gop=60)
        self.assertEqual(len(fs), 3)
        self.assertTrue(all(4700 <= c.duration_ms < 4900 for c in cs[:-1]), cs)

    def test_without_wait_keyframe_cuts_at_the_duration(self):
        _, fs, cs = self.segments(10, gop=250, wait=False)
        self.assertEqual(len(fs), 4)
        self.assertTrue(all(2950 <= c.duration_ms < 3000 for c in cs[:-1]), cs)

    def test_each_segment_starts_near_zero_with_full_jitter(self):
        _, fs, _ = self.segments(10)
        for writes in fs:
            media = [w.packet for w in writes if not w.header]
            self.assertLessEqual(min(p.dts for p in media), 10)
            self.assertLess(max(p.dts for p in media), 3200)

    def test_zero_jitter_subtracts_the_first_time(self):
        settings = DvrSettings(plan="segment", duration=3, time_jitter="zero")
        fs = files(run(DvrPlan(settings), P.stream(7, start=100000)))
        starts = [[w.packet for w in f if not w.header][0].dts for f in fs]
        self.assertEqual(starts, [0, 0, 0])

    def test_off_keeps_timestamps(self):
        settings = DvrSettings(plan="segment", duration=3, time_jitter="off")
        fs = files(run(DvrPlan(settings), P.stream(7, start=100000)))
        starts = [[w.packet for w in f if not w.header][0].dts for f in fs]
        self.assertEqual(starts, [100000, 103000, 106000])
        # The headers of a later file are stamped at its first packet.
        self.assertEqual([w.packet.dts for w in fs[1] if w.header and not w.packet.is_data], [103000, 103000])

    def test_audio_only_cuts_on_audio(self):
        settings = DvrSettings(plan="segment", duration=2)
        fs = files(run(DvrPlan(settings), P.stream(7, video_on=False)))
        self.assertEqual(len(fs), 4)

    def test_video_only(self):
        settings = DvrSettings(plan="segment", duration=2)
        fs = files(run(DvrPlan(settings), P.stream(7, audio_on=False)))
        self.assertEqual(len(fs), 4)
        self.assertTrue(all(not w.packet.is_audio for f in fs for w in f))

    def test_a_new_sequence_header_is_written_in_flv(self):
        pkts = P.stream(2)
        pkts.insert(40, P.video_sh(800, P.AVC_CONFIG[:-1] + b"\xc9"))
        events = run(DvrPlan(DvrSettings()), pkts)
        self.assertEqual(len(files(events)), 1)
        self.assertEqual(sum(1 for w in files(events)[0] if w.packet.sequence_header and w.packet.is_video), 2)

    def test_a_new_sequence_header_starts_a_new_mp4_file(self):
        pkts = P.stream(2)
        new = P.video_sh(800, P.AVC_CONFIG[:-1] + b"\xc9")
        pkts.insert(next(i for i, p in enumerate(pkts) if p.dts >= 800), new)
        events = run(DvrPlan(DvrSettings(), reopen_on_new_header=True), pkts)
        self.assertEqual([c.reason for c in closes(events)], ["codec", "unpublish"])
        second = files(events)[1]
        self.assertEqual([w.packet.payload for w in second if w.packet.is_video and w.header], [new.payload])
        self.assertTrue([w for w in second if not w.header][0].packet.keyframe)

    def test_a_repeated_sequence_header_is_dropped(self):
        pkts = P.stream(2)
        pkts.insert(40, P.video_sh(800))
        events = run(DvrPlan(DvrSettings(), reopen_on_new_header=True), pkts)
        self.assertEqual(len(closes(events)), 1)
        self.assertEqual(sum(1 for w in files(events)[0] if w.packet.sequence_header), 2)
