"""LL-HLS in the segmenter (hls_low_latency): parts cut on time, their
playlist against the spec's rules (tests/hls/llhls_rules.py) after every
part, numbering, INDEPENDENT flags against the parts' content, and the
plain playlist kept for disk."""

from __future__ import annotations

from twisted.trial import unittest

from srs_twisted.hls.segmenter import (
    HlsSegmenter, InitCreated, KeyCreated, PartAdded, SegmentClosed, SegmentDropped,
)
from srs_twisted.live.packet import VIDEO

from ..codec.test_fmp4 import fragments_of
from .llhls_rules import check_ll_playlist, last_part, part_number
from .media import audio, feed, hls_conf, stream, video
from .test_segmenter import closed, parse_playlist, segment_bytes

LL = "hls_low_latency on; hls_part_duration 0.5; hls_fragment 2; hls_window 10;"


def make(body: str = LL, **kwargs) -> HlsSegmenter:
    conf = hls_conf(body).hls
    kwargs.setdefault("random_bytes", lambda n: bytes(range(n)))
    return HlsSegmenter(conf, "live", "s", **kwargs)


def parts_of(events) -> list:
    return [e for e in events if isinstance(e, PartAdded)]


def feed_checking(test, seg, packets, **rules) -> list:
    """Feed packets; after every new part the LL playlist must pass the rules."""
    events = []
    for pkt in packets:
        got = seg.on_packet(pkt)
        events.extend(got)
        if any(isinstance(e, PartAdded) for e in got) and seg.segments:
            info = check_ll_playlist(seg.ll_playlist(), **rules)
            newest = seg.latest_part
            test.assertEqual(last_part(info), (newest.msn, newest.index))
            test.assertEqual(part_number(info["hint"]), seg.next_part)
    return events


class PartTests(unittest.TestCase):
    def test_playlist_passes_the_rules_after_every_part(self):
        seg = make()
        events = feed_checking(self, seg, stream(30))
        self.assertGreater(len(parts_of(events)), 50)
        text = seg.ll_playlist()
        self.assertTrue(text.startswith(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500\n"
            "#EXT-X-PART-INF:PART-TARGET=0.500\n"), text)

    def test_part_durations_never_pass_the_target(self):
        # (frames of 1000 // fps ms; the target must hold a few of them)
        for fps, target in ((25, 0.5), (30, 0.5), (30, 0.3), (24, 0.25), (60, 1.0), (50, 0.2)):
            seg = make(f"hls_low_latency on; hls_part_duration {target}; hls_fragment 2; hls_window 10;")
            events = feed(seg, stream(12, fps=fps))
            parts = [e.part for e in parts_of(events)]
            self.assertTrue(parts)
            for part in parts:
                self.assertLessEqual(part.duration, target + 1e-9, (fps, target, part))
            # all but a segment's last part are at least 85% of the target
            self.assertTrue(closed(events), (fps, target))
            for s in closed(events):
                for part in s.parts[:-1]:
                    self.assertGreaterEqual(part.duration, 0.85 * target, (fps, target, part))

    def test_audio_only_parts(self):
        seg = make()
        events = feed_checking(self, seg, stream(20, video_on=False))
        parts = [e.part for e in parts_of(events)]
        self.assertTrue(parts)
        for part in parts:
            self.assertLessEqual(part.duration, 0.5)
            self.assertTrue(part.independent)

    def test_parts_add_up_to_their_segment(self):
        seg = make()
        events = feed(seg, stream(20)) + list(seg.on_unpublish())
        data = segment_bytes(events)
        added = parts_of(events)
        self.assertEqual(len(closed(events)), 10)  # 20 s in segments of 2 s
        for s in closed(events):
            self.assertTrue(s.parts)
            total = sum(p.duration for p in s.parts)
            self.assertLessEqual(abs(total * 1000 - s.duration_ms), 0.5)
            # the segment's bytes are its parts one after the other
            mine = [e.data for e in added if e.segment is s]
            self.assertEqual(b"".join(mine), data[s.seq])
        self.assertEqual([s.duration_ms for s in closed(events)][:9], [2000] * 9)

    def test_numbering(self):
        seg = make()
        events = feed(seg, stream(10)) + list(seg.on_unpublish())
        seg.on_publish()
        events += feed(seg, stream(6, start=50000)) + list(seg.on_unpublish())
        parts = [e.part for e in parts_of(events)]
        self.assertEqual(len(parts), 40)  # 10 s + 6 s in parts of 0.5 s (the last of each publish is cut short)
        self.assertEqual(len(closed(events)), 8)
        self.assertEqual([p.number for p in parts], list(range(len(parts))))
        self.assertEqual(seg.next_part, len(parts))
        for e in parts_of(events):
            self.assertEqual(e.part.msn, e.segment.seq)
            self.assertIs(e.part, e.segment.parts[e.part.index])
            self.assertEqual(e.part.uri, f"s-part{e.part.number}.m4s")
            self.assertEqual(e.part.path, f"/hls/live/s-part{e.part.number}.m4s")
        for s in closed(events):
            self.assertEqual([p.index for p in s.parts], list(range(len(s.parts))))
        # a republish: discontinuity before the segment's first part
        text = seg.ll_playlist()
        check_ll_playlist(text)
        self.assertEqual(text.count("#EXT-X-DISCONTINUITY\n"), 1)

    def test_independent_exactly_when_the_part_starts_with_a_keyframe(self):
        seg = make()
        # 1 s GOPs: the keyframe in the middle of a segment falls inside a part
        events = feed(seg, stream(12, gop_ms=1000))
        flags = []
        for e in parts_of(events):
            frags = fragments_of(e.data)
            self.assertEqual(len(frags), 1)
            self.assertEqual(frags[0][0], e.part.number + 1)  # mfhd sequence numbers
            rows = frags[0][1][1][1]
            starts_with_key = rows[0]["flags"] == 0x02000000
            self.assertEqual(e.part.independent, starts_with_key, e.part)
            flags.append(e.part.independent)
            if e.part.index == 0:
                self.assertTrue(e.part.independent)
        self.assertIn(False, flags)

    def test_hint_is_the_next_part(self):
        seg = make()
        feed(seg, stream(5))
        info = check_ll_playlist(seg.ll_playlist())
        self.assertEqual(info["hint"], f"s-part{seg.next_part}.m4s")
        before = seg.next_part
        events = []
        t = 5000
        while not parts_of(events):
            events = feed(seg, [video(t, key=t % 1000 == 0), audio(t + 1)])
            t += 40
        self.assertEqual(parts_of(events)[0].part.number, before)
        self.assertIn(f'URI="s-part{before}.m4s"', seg.ll_playlist())

    def test_parts_only_near_the_end(self):
        seg = make("hls_low_latency on; hls_part_duration 0.5; hls_fragment 2; hls_window 60;")
        feed(seg, stream(30.5))
        info = check_ll_playlist(seg.ll_playlist())
        with_parts = [s["msn"] for s in info["segments"] if s["parts"]]
        # target 2 s, the end at 30.48 s: the segments that start within 6 s of it
        self.assertEqual(with_parts, [13, 14])
        self.assertEqual(info["open"]["msn"], 15)
        self.assertEqual(len(info["open"]["parts"]), 1)
        self.assertEqual(len(info["segments"]), 15)
        # parts stay available for 3 more target durations (12 s from the end in all)
        needed = seg.parts_needed_from()
        self.assertEqual(needed, seg.segments[10].parts[0].number)

    def test_disk_playlist_has_no_parts(self):
        seg = make()
        feed(seg, stream(7))
        text = seg.playlist()
        self.assertNotIn("EXT-X-PART", text)
        self.assertNotIn("PRELOAD-HINT", text)
        self.assertIn('#EXT-X-MAP:URI="s/init.mp4"', text)
        parse_playlist(text)

    def test_no_playlist_before_a_whole_segment(self):
        seg = make()
        events = feed(seg, stream(1.5))
        self.assertTrue(parts_of(events))
        self.assertEqual(seg.ll_playlist(), "")

    def test_short_last_segment_with_parts_is_kept(self):
        seg = make()
        events = feed(seg, stream(4.04, audio_on=False)) + list(seg.on_unpublish())
        self.assertFalse([e for e in events if isinstance(e, SegmentDropped)])
        self.assertEqual([s.duration_ms for s in closed(events)], [2000, 2000, 40])
        check_ll_playlist(seg.ll_playlist())

    def test_keys_are_not_applied(self):
        seg = make(LL + " hls_keys on;")
        events = feed(seg, stream(5))
        self.assertFalse([e for e in events if isinstance(e, KeyCreated)])
        self.assertNotIn("EXT-X-KEY", seg.ll_playlist())

    def test_init_before_the_first_part(self):
        seg = make()
        events = feed(seg, stream(3))
        kinds = [type(e) for e in events]
        self.assertLess(kinds.index(InitCreated), kinds.index(PartAdded))
        self.assertLess(kinds.index(PartAdded), kinds.index(SegmentClosed))

    def test_video_frames_longer_than_the_target(self):
        # 2 fps: each part is one frame; a frame longer than PART-TARGET
        # cannot be split, so the part target must be above the frame duration
        seg = make("hls_low_latency on; hls_part_duration 0.6; hls_fragment 2; hls_window 10;")
        events = feed(seg, [p for p in stream(8, fps=2, audio_on=False)])
        # 16 frames of 0.5 s: a part each, the last one still open
        self.assertEqual([e.part.duration for e in parts_of(events)], [0.5] * 15)

    def test_video_only_frames_after_a_gap(self):
        seg = make()
        packets = [p for p in stream(6, audio_on=False) if not (p.kind == VIDEO and 2500 <= p.dts < 2700)]
        events = feed_checking(self, seg, packets)
        self.assertGreaterEqual(len(parts_of(events)), 10)  # 6 s in parts of at most 0.5 s
        for e in parts_of(events):
            self.assertLessEqual(e.part.duration, 0.5)
