"""The DASH names, segment windows and MPD text (sans-I/O): parsed back with
xml.etree, attribute by attribute."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

from twisted.trial import unittest

import srs_twisted
from srs_twisted.codec.fmp4 import Track
from srs_twisted.dash.mpd import (
    DashLayout,
    MpdTimes,
    Representation,
    Segment,
    TrackWindow,
    build_mpd,
    iso_datetime,
    iso_duration,
)

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
VIDEO = Track(1, "video", "h264", 90000, b"", width=320, height=240, codec_string="avc1.64000d")
AUDIO = Track(2, "audio", "aac", 44100, b"", sample_rate=44100, channels=2, codec_string="mp4a.40.2")
TIMES = MpdTimes(availability_start=1700000000.0, publish=1700000030.25, update_period=5.0, timeshift=300.0,
                 min_buffer=2.0, presentation_delay=6.0)


def segments(track, count, first=1, start=0, seconds=2.0, size=1000):
    ticks = int(seconds * track.timescale)
    return [Segment(first + i, start + i * ticks, ticks, track.timescale, size, f"/x/{first + i}.m4s")
            for i in range(count)]


def parse(text: str):
    return ET.fromstring(text.encode())


def seconds(duration: str) -> float:
    match = re.fullmatch(r"PT([0-9.]+)S", duration)
    assert match, duration
    return float(match.group(1))


class LayoutTests(unittest.TestCase):
    def test_srs_default_layout(self):
        layout = DashLayout.build("/html", "[app]/[stream].mpd", "__defaultVhost__", "live", "livestream")
        self.assertEqual("/html/live/livestream.mpd", layout.mpd_path)
        self.assertEqual("/html/live/livestream", layout.home)
        self.assertEqual("livestream/", layout.prefix)
        self.assertEqual("/html/live/livestream/video-init.mp4", layout.init_path("video"))
        self.assertEqual("/html/live/livestream/audio-12.m4s", layout.segment_path("audio", 12))

    def test_vhost_and_nested_directories(self):
        layout = DashLayout.build("./objs/nginx/html/", "[vhost]/[app]/dash/[stream].mpd", "v.com", "live", "s")
        self.assertEqual("./objs/nginx/html/v.com/live/dash/s.mpd", layout.mpd_path)
        self.assertEqual("./objs/nginx/html/v.com/live/dash/s", layout.home)

    def test_mpd_at_the_root(self):
        layout = DashLayout.build("/d", "[stream].mpd", "v", "live", "s")
        self.assertEqual(("/d/s.mpd", "/d/s"), (layout.mpd_path, layout.home))

    def test_prefix_is_a_url(self):
        self.assertEqual("a%20b/", DashLayout.build("/d", "[app]/[stream].mpd", "v", "live", "a b").prefix)


class FormatTests(unittest.TestCase):
    def test_durations(self):
        self.assertEqual("PT2.000S", iso_duration(2))
        self.assertEqual("PT300.000S", iso_duration(300))
        self.assertEqual("PT0.123S", iso_duration(0.1234))
        self.assertEqual("PT0.000S", iso_duration(-1))

    def test_datetimes_are_utc_with_milliseconds(self):
        self.assertEqual("2023-11-14T22:13:20.000Z", iso_datetime(1700000000))
        self.assertEqual("2023-11-14T22:13:20.250Z", iso_datetime(1700000000.25))
        self.assertEqual("2023-11-14T22:13:21.000Z", iso_datetime(1700000000.9996))


class WindowTests(unittest.TestCase):
    def window(self, count, seconds=2.0):
        w = TrackWindow()
        for s in segments(VIDEO, count, seconds=seconds):
            w.append(s)
        return w

    def test_listed_is_the_newest_of_the_epoch(self):
        w = self.window(7)
        self.assertEqual([3, 4, 5, 6, 7], [s.number for s in w.listed(5)])
        self.assertEqual([7], [s.number for s in w.listed(1)])
        self.assertEqual([], w.listed(0))
        self.assertEqual(7, len(w.listed(100)))

    def test_end_in_milliseconds_rounds_up(self):
        w = TrackWindow()
        self.assertIsNone(w.end_ms())
        w.append(Segment(1, 0, 90001, 90000, 1, "/a"))
        self.assertEqual(1001, w.end_ms())

    def test_expire_keeps_the_keep_window_like_srs(self):
        w = self.window(12)  # 24 s of 2 s segments
        gone = w.expire(keep_seconds=10.0, window_size=3)
        # kept: the segments with no more than 10 s after them (SRS shrink)
        self.assertEqual([1, 2, 3, 4, 5, 6], [s.number for s in gone])
        self.assertEqual([7, 8, 9, 10, 11, 12], [s.number for s in w.segments])
        self.assertEqual([], w.expire(keep_seconds=10.0, window_size=3))

    def test_expire_never_removes_a_listed_segment(self):
        w = self.window(8)
        gone = w.expire(keep_seconds=0.0, window_size=5)
        self.assertEqual([1, 2, 3], [s.number for s in gone])
        self.assertEqual([4, 5, 6, 7, 8], [s.number for s in w.listed(5)])

    def test_a_track_out_of_the_mpd_protects_nothing(self):
        w = self.window(4)
        self.assertEqual([1, 2, 3], [s.number for s in w.expire(keep_seconds=1.0, window_size=0)])

    def test_new_epoch_unlists_older_segments_but_keeps_their_files(self):
        w = self.window(3)
        w.new_epoch()
        self.assertEqual([], w.listed(5))
        w.append(Segment(4, 540000, 180000, 90000, 1, "/x/4.m4s"))
        self.assertEqual([4], [s.number for s in w.listed(5)])
        self.assertEqual([], w.expire(keep_seconds=10.0, window_size=5))
        self.assertEqual([1, 2], [s.number for s in w.expire(keep_seconds=3.0, window_size=5)])

    def test_drop_all(self):
        w = self.window(3)
        self.assertEqual(3, len(w.drop_all()))
        self.assertEqual([], w.segments)


class MpdTests(unittest.TestCase):
    def build(self, reps=None, times=TIMES, prefix="s/"):
        if reps is None:
            reps = [Representation("audio", AUDIO, segments(AUDIO, 5, first=3)),
                    Representation("video", VIDEO, segments(VIDEO, 5, first=3, start=90000))]
        return parse(build_mpd(reps, times, prefix))

    def test_root_is_a_dynamic_mpd(self):
        text = build_mpd([Representation("video", VIDEO, segments(VIDEO, 1))], TIMES, "s/")
        self.assertTrue(text.startswith('<?xml version="1.0" encoding="utf-8"?>\n<MPD '))
        root = parse(text)
        self.assertEqual("{urn:mpeg:dash:schema:mpd:2011}MPD", root.tag)
        self.assertEqual("dynamic", root.get("type"))
        self.assertEqual("urn:mpeg:dash:profile:isoff-live:2011", root.get("profiles"))
        self.assertEqual("2023-11-14T22:13:20.000Z", root.get("availabilityStartTime"))
        self.assertEqual("2023-11-14T22:13:50.250Z", root.get("publishTime"))
        self.assertEqual("PT5.000S", root.get("minimumUpdatePeriod"))
        self.assertEqual("PT2.000S", root.get("minBufferTime"))
        self.assertEqual("PT6.000S", root.get("suggestedPresentationDelay"))
        self.assertEqual("PT2.000S", root.get("maxSegmentDuration"))
        timing = root.find("d:UTCTiming", NS)
        self.assertEqual("urn:mpeg:dash:utc:direct:2014", timing.get("schemeIdUri"))
        self.assertEqual(root.get("publishTime"), timing.get("value"))

    def test_timeshift_is_capped_by_the_listed_window(self):
        root = self.build()
        self.assertEqual(10.0, seconds(root.get("timeShiftBufferDepth")))
        short = MpdTimes(**{**TIMES.__dict__, "timeshift": 4.0})
        self.assertEqual(4.0, seconds(self.build(times=short).get("timeShiftBufferDepth")))
        off = MpdTimes(**{**TIMES.__dict__, "timeshift": 0.0})
        self.assertEqual(10.0, seconds(self.build(times=off).get("timeShiftBufferDepth")))

    def test_one_period_video_first(self):
        root = self.build()
        periods = root.findall("d:Period", NS)
        self.assertEqual(1, len(periods))
        self.assertEqual("PT0S", periods[0].get("start"))
        sets = periods[0].findall("d:AdaptationSet", NS)
        self.assertEqual(["video", "audio"], [s.get("contentType") for s in sets])
        self.assertEqual(["video/mp4", "audio/mp4"], [s.get("mimeType") for s in sets])
        for s in sets:
            self.assertEqual("true", s.get("segmentAlignment"))
            self.assertEqual("1", s.get("startWithSAP"))
            self.assertEqual(1, len(s.findall("d:Representation", NS)))

    def test_video_representation(self):
        rep = self.build().find("d:Period/d:AdaptationSet[@contentType='video']/d:Representation", NS)
        self.assertEqual("video", rep.get("id"))
        self.assertEqual("avc1.64000d", rep.get("codecs"))
        self.assertEqual(("320", "240"), (rep.get("width"), rep.get("height")))
        self.assertEqual(str(1000 * 8 // 2), rep.get("bandwidth"))  # 1000 bytes every 2 s
        self.assertIsNone(rep.get("audioSamplingRate"))

    def test_audio_representation(self):
        rep = self.build().find("d:Period/d:AdaptationSet[@contentType='audio']/d:Representation", NS)
        self.assertEqual("audio", rep.get("id"))
        self.assertEqual("mp4a.40.2", rep.get("codecs"))
        self.assertEqual("44100", rep.get("audioSamplingRate"))
        self.assertIsNone(rep.get("width"))
        channels = rep.find("d:AudioChannelConfiguration", NS)
        self.assertEqual("urn:mpeg:dash:23003:3:audio_channel_configuration:2011", channels.get("schemeIdUri"))
        self.assertEqual("2", channels.get("value"))

    def test_segment_template_and_timeline(self):
        rep = self.build().find("d:Period/d:AdaptationSet[@contentType='video']/d:Representation", NS)
        template = rep.find("d:SegmentTemplate", NS)
        self.assertEqual("90000", template.get("timescale"))
        self.assertEqual("s/$RepresentationID$-init.mp4", template.get("initialization"))
        self.assertEqual("s/$RepresentationID$-$Number$.m4s", template.get("media"))
        self.assertEqual("3", template.get("startNumber"))
        entries = template.findall("d:SegmentTimeline/d:S", NS)
        self.assertEqual([(90000 + i * 180000, 180000) for i in range(5)],
                         [(int(s.get("t")), int(s.get("d"))) for s in entries])
        self.assertTrue(all(s.get("r") is None for s in entries))

    def test_templates_name_the_files_the_layout_writes(self):
        layout = DashLayout.build("/html", "[app]/[stream].mpd", "v", "live", "s")
        segs = [Segment(7 + i, i * 88064, 88064, 44100, 10, layout.segment_path("audio", 7 + i)) for i in range(3)]
        root = self.build([Representation("audio", AUDIO, segs)], prefix=layout.prefix)
        rep = root.find("d:Period/d:AdaptationSet/d:Representation", NS)
        template = rep.find("d:SegmentTemplate", NS)
        number = int(template.get("startNumber"))
        for i, seg in enumerate(segs):
            url = template.get("media").replace("$RepresentationID$", rep.get("id"))
            url = url.replace("$Number$", str(number + i))
            self.assertEqual(seg.path, "/html/live/" + url)
        init = template.get("initialization").replace("$RepresentationID$", rep.get("id"))
        self.assertEqual(layout.init_path("audio"), "/html/live/" + init)

    def test_only_representations_with_segments(self):
        root = self.build([Representation("video", VIDEO, []), Representation("audio", AUDIO, segments(AUDIO, 2))])
        self.assertEqual(["audio"], [s.get("contentType") for s in root.findall("d:Period/d:AdaptationSet", NS)])

    def test_attributes_are_escaped(self):
        root = self.build([Representation("video", VIDEO, segments(VIDEO, 1))], prefix='a"&<b/')
        template = root.find("d:Period/d:AdaptationSet/d:Representation/d:SegmentTemplate", NS)
        self.assertEqual('a"&<b/$RepresentationID$-init.mp4', template.get("initialization"))


class PurityTests(unittest.TestCase):
    def test_mpd_module_imports_no_twisted(self):
        root = os.path.dirname(os.path.dirname(os.path.abspath(srs_twisted.__file__)))
        script = ("import sys, srs_twisted.dash.mpd\n"
                  "print(' '.join(m for m in ('twisted', 'socket', 'asyncio') if m in sys.modules))\n")
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                env=dict(os.environ, PYTHONPATH=root), cwd=root, timeout=60)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertEqual("", result.stdout.strip())
