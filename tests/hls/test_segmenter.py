"""The sans-I/O HLS segmenter: where it cuts, what the playlist says, names,
keys, and streams with broken timestamps."""

from __future__ import annotations

import calendar
import os
import re
import subprocess
import sys

from twisted.trial import unittest

from srs_twisted.codec.mpegts import PAT_PID, PMT_PID, TsDemuxer
from srs_twisted.hls import segmenter as seg_mod
from srs_twisted.hls.segmenter import (
    FilesExpired, HlsSegmenter, KeyCreated, PlaylistUpdated, SegmentClosed, SegmentData,
    SegmentDropped, SegmentOpened, build_time,
)
from srs_twisted.live.packet import AUDIO, VIDEO

from .media import audio, audio_sh, feed, hls_conf, metadata, mp3, stream, video, video_sh


def make(body: str = "", app: str = "live", name: str = "s", **kwargs) -> HlsSegmenter:
    conf = hls_conf(body, path=kwargs.pop("path", "/hls")).hls
    kwargs.setdefault("random_bytes", lambda n: bytes(range(n)))
    return HlsSegmenter(conf, app, name, **kwargs)


def closed(events) -> list:
    return [e.segment for e in events if isinstance(e, SegmentClosed)]


def durations(events) -> list:
    return [s.duration_ms for s in closed(events)]


def segment_bytes(events) -> dict:
    """seq -> the whole bytes of each segment, from its SegmentData events."""
    out: dict = {}
    for e in events:
        if isinstance(e, SegmentData):
            out[e.segment.seq] = out.get(e.segment.seq, b"") + e.data
    return out


def parse_playlist(text: str) -> dict:
    """The tags and entries of a media playlist, checked for HLS validity."""
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U", lines
    info = {"entries": [], "tags": []}
    pending: dict = {}
    for line in lines[1:]:
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            info["media_sequence"] = int(line.split(":")[1])
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            info["target"] = int(line.split(":")[1])
        elif line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE:"):
            info["discontinuity_sequence"] = int(line.split(":")[1])
        elif line == "#EXT-X-DISCONTINUITY":
            pending["discontinuity"] = True
        elif line.startswith("#EXT-X-KEY:"):
            pending["key"] = line[len("#EXT-X-KEY:"):]
        elif line.startswith("#EXTINF:"):
            pending["duration"] = float(line[len("#EXTINF:"):].split(",")[0])
        elif line.startswith("#"):
            info["tags"].append(line)
        else:
            assert "duration" in pending, (line, text)
            pending["uri"] = line
            info["entries"].append(pending)
            pending = {}
    assert not pending, text
    assert "target" in info and "media_sequence" in info, text
    for entry in info["entries"]:
        assert round(entry["duration"]) <= info["target"], (entry, info["target"])
    return info


class CuttingTests(unittest.TestCase):
    def test_cuts_at_the_first_keyframe_after_the_fragment(self):
        seg = make("hls_fragment 2; hls_window 60;")
        events = feed(seg, stream(11, gop_ms=1000))
        events += seg.on_unpublish()
        # the last one ends with its last audio frame (10994 + 23 ms)
        self.assertEqual(durations(events), [2000, 2000, 2000, 2000, 2000, 1017])
        for s in closed(events):
            self.assertEqual(s.start_dts % 1000, 0)

    def test_long_gop_waits_for_the_keyframe(self):
        seg = make("hls_fragment 2; hls_window 60;")
        events = feed(seg, stream(10, gop_ms=1500, audio_on=False))
        self.assertEqual(durations(events), [3000, 3000, 3000])

    def test_td_ratio_scales_the_cut(self):
        seg = make("hls_fragment 2; hls_td_ratio 1.5; hls_window 60;")
        events = feed(seg, stream(10, gop_ms=1000))
        self.assertEqual(durations(events)[:3], [3000, 3000, 3000])

    def test_wait_keyframe_off_cuts_on_time(self):
        seg = make("hls_fragment 2; hls_wait_keyframe off; hls_window 60;")
        events = feed(seg, stream(9, gop_ms=5000, audio_on=False))
        self.assertEqual(durations(events), [2000, 2000, 2000, 2000])

    def test_audio_only_cuts_at_aof_ratio(self):
        seg = make("hls_fragment 2; hls_aof_ratio 2.1; hls_window 60;")
        events = feed(seg, stream(20, video_on=False))
        got = durations(events)
        self.assertEqual(len(got), 4)
        for d in got:
            self.assertGreaterEqual(d, 4200)
            self.assertLess(d, 4200 + 23)

    def test_audio_bounds_a_long_gop_stream(self):
        # SRS's absolute overflow: audio cuts at hls_aof_ratio * hls_fragment.
        seg = make("hls_fragment 2; hls_window 60;")
        events = feed(seg, stream(12, gop_ms=10000))
        # 12 s in one GOP: cut by audio at 4.2 s and 8.4 s, the rest still open
        self.assertEqual(durations(events), [4200, 4200])

    def test_video_without_keyframes_is_still_cut(self):
        seg = make("hls_fragment 2; hls_window 60;")
        events = feed(seg, stream(15, audio_on=False, keyframes=False))
        events += seg.on_unpublish()
        got = durations(events)
        self.assertEqual(got[:3], [4200, 4200, 4200])
        self.assertEqual(sum(got), 15000)
        parse_playlist(seg.playlist())

    def test_no_cut_before_200ms(self):
        seg = make("hls_fragment 0.1; hls_window 60;")
        events = feed(seg, stream(2, gop_ms=40, audio_on=False))
        # a keyframe every 40 ms, a fragment of 100 ms: cut every 200 ms, the last still open
        self.assertEqual(durations(events), [200] * 9)

    def test_durations_tile_the_stream(self):
        seg = make("hls_fragment 2; hls_window 600;")
        events = feed(seg, stream(30, start=5000))
        events += seg.on_unpublish()
        segs = closed(events)
        self.assertEqual(len(segs), 15)
        for a, b in zip(segs, segs[1:]):
            self.assertEqual(a.start_dts + a.duration_ms, b.start_dts)
        # the last one ends with its last frame's duration: audio at 34992 + 23 ms
        self.assertEqual(sum(durations(events)), 30015)

    def test_short_final_segment_is_dropped_and_its_number_reused(self):
        seg = make("hls_fragment 2; hls_window 60;")
        events = feed(seg, stream(4.04, audio_on=False))
        # 0-2, 2-4, then one 40 ms frame at 4000
        events += seg.on_unpublish()
        self.assertEqual(durations(events), [2000, 2000])
        dropped = [e.segment for e in events if isinstance(e, SegmentDropped)]
        self.assertEqual([s.seq for s in dropped], [2])
        self.assertEqual(seg.sequence, 2)
        events = seg.on_publish()
        events = feed(seg, stream(3, start=10000, audio_on=False)) + list(seg.on_unpublish())
        self.assertEqual([s.seq for s in closed(events)], [2, 3])


class PlaylistTests(unittest.TestCase):
    def test_playlist_text(self):
        seg = make("hls_fragment 2; hls_window 60;")
        feed(seg, stream(6.1))
        self.assertEqual(
            seg.playlist(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-TARGETDURATION:2\n"
            "#EXTINF:2.000, no desc\ns-0.ts\n#EXTINF:2.000, no desc\ns-1.ts\n"
            "#EXTINF:2.000, no desc\ns-2.ts\n",
        )

    def test_no_playlist_before_the_first_segment(self):
        seg = make()
        events = feed(seg, stream(1))
        self.assertEqual(seg.playlist(), "")
        self.assertFalse([e for e in events if isinstance(e, PlaylistUpdated)])

    def test_window_slides_and_media_sequence_follows(self):
        seg = make("hls_fragment 2; hls_window 6;")
        events = feed(seg, stream(30.1))
        updates = [e.text for e in events if isinstance(e, PlaylistUpdated)]
        self.assertEqual(len(updates), 15)
        for text in updates:
            info = parse_playlist(text)
            seqs = [int(re.search(r"s-(\d+)\.ts", e["uri"]).group(1)) for e in info["entries"]]
            self.assertEqual(seqs, list(range(info["media_sequence"], info["media_sequence"] + len(seqs))))
            total = sum(e["duration"] for e in info["entries"])
            # SRS's window: newest segments until their total passes hls_window
            self.assertLessEqual(total - info["entries"][0]["duration"], 6)
        last = parse_playlist(updates[-1])
        self.assertEqual(last["media_sequence"], 11)
        self.assertEqual(len(last["entries"]), 4)

    def test_target_duration_is_the_rounded_longest_and_never_shrinks(self):
        seg = make("hls_fragment 2; hls_window 4;")
        packets = stream(3, gop_ms=2520, audio_on=False)  # 2.52 s first segment
        events = feed(seg, packets)
        events += feed(seg, [video(t, key=t % 1000 == 0) for t in range(3000, 20000, 40)])
        self.assertEqual(durations(events)[0], 2520)
        self.assertEqual(parse_playlist(seg.playlist())["target"], 3)
        self.assertEqual(seg.playlist().count("EXTINF:2.520"), 0)  # left the window
        self.assertEqual(seg.target_duration, 3)

    def test_a_segment_a_little_over_the_fragment_keeps_the_target(self):
        # RFC 8216 4.3.3.1: the EXTINF rounded to the nearest integer; SRS's ceiling would say 3
        seg = make("hls_fragment 2; hls_window 10;")
        events = feed(seg, stream(3, gop_ms=2480, audio_on=False))  # 2.48 s first segment
        events += feed(seg, [video(t, key=t % 1000 == 480) for t in range(3000, 9000, 40)])
        self.assertEqual(durations(events)[0], 2480)
        self.assertIn("#EXTINF:2.480", seg.playlist())
        self.assertEqual(parse_playlist(seg.playlist())["target"], 2)

    def test_target_duration_is_at_least_the_fragment(self):
        seg = make("hls_fragment 5; hls_window 60;")
        feed(seg, stream(3))
        seg.on_unpublish()
        self.assertEqual(parse_playlist(seg.playlist())["target"], 5)

    def test_republish_continues_with_a_discontinuity(self):
        seg = make("hls_fragment 2; hls_window 60;")
        first = feed(seg, stream(4.5)) + list(seg.on_unpublish())
        self.assertNotIn("DISCONTINUITY", seg.playlist())
        seg.on_publish()
        # the new publisher's timestamps start again at 0
        second = feed(seg, stream(4.5)) + list(seg.on_unpublish())
        self.assertEqual([s.seq for s in closed(first)], [0, 1, 2])
        self.assertEqual([s.seq for s in closed(second)], [3, 4, 5])
        info = parse_playlist(seg.playlist())
        flags = [e.get("discontinuity", False) for e in info["entries"]]
        self.assertEqual(flags, [False, False, False, True, False, False])
        self.assertEqual(info["media_sequence"], 0)

    def test_discontinuity_sequence_counts_removed_discontinuities(self):
        seg = make("hls_fragment 2; hls_window 4;")
        feed(seg, stream(4.5))
        seg.on_unpublish()
        seg.on_publish()
        feed(seg, stream(12))
        info = parse_playlist(seg.playlist())
        self.assertEqual(info["discontinuity_sequence"], 1)
        self.assertFalse(any(e.get("discontinuity") for e in info["entries"]))

    def test_no_segment_is_lost_between_publishes(self):
        seg = make("hls_fragment 2; hls_window 600;")
        for _ in range(3):
            seg.on_publish()
            feed(seg, stream(5))
            seg.on_unpublish()
        info = parse_playlist(seg.playlist())
        # each publish ends with its last audio frame (4991 + 23 ms)
        self.assertAlmostEqual(sum(e["duration"] for e in info["entries"]), 3 * 5.014, places=3)


class NameTests(unittest.TestCase):
    def test_default_names(self):
        seg = make("hls_fragment 2;", app="live", name="livestream")
        self.assertEqual(seg.m3u8_url, "live/livestream.m3u8")
        self.assertEqual(seg.m3u8_path, "/hls/live/livestream.m3u8")
        events = feed(seg, stream(3))
        first = closed(events)[0]
        self.assertEqual(first.path, "/hls/live/livestream-0.ts")
        self.assertEqual(first.tmp_path, "/hls/live/livestream-0.ts.tmp")
        self.assertEqual(first.uri, "livestream-0.ts")

    def test_time_variables(self):
        now = calendar.timegm((2024, 3, 9, 7, 5, 4)) + 0.321
        seg = make(
            "hls_fragment 2; hls_m3u8_file [vhost]/[app]/[stream]/index.m3u8; "
            "hls_ts_file [vhost]/[app]/[stream]/[2006]-[01]-[02]/[15][04][05]-[999]-[timestamp]-[seq]-[duration].ts;",
            wallclock=lambda: now, utc=True,
        )
        events = feed(seg, stream(3))
        first = closed(events)[0]
        self.assertEqual(
            first.path,
            "/hls/__defaultVhost__/live/s/2024-03-09/070504-321-1709967904321-0-2000.ts",
        )
        self.assertEqual(first.tmp_path,
                         "/hls/__defaultVhost__/live/s/2024-03-09/070504-321-1709967904321-0-[duration].ts.tmp")
        self.assertEqual(first.uri, "2024-03-09/070504-321-1709967904321-0-2000.ts")
        self.assertIn("\n2024-03-09/070504-321-1709967904321-0-2000.ts\n", seg.playlist())

    def test_build_time_local_and_utc(self):
        now = calendar.timegm((2006, 1, 2, 15, 4, 5)) + 0.999
        self.assertEqual(build_time("[2006][01][02][15][04][05][999]", now, utc=True), "20060102150405999")
        self.assertEqual(build_time("plain", now), "plain")

    def test_segments_outside_the_playlist_directory(self):
        seg = make("hls_m3u8_file [app]/m3u8/[stream].m3u8; hls_ts_file [app]/ts/[stream]-[seq].ts;")
        events = feed(seg, stream(11))
        self.assertEqual(closed(events)[0].uri, "../ts/s-0.ts")

    def test_entry_prefix_without_slash_adds_the_playlist_directory(self):
        seg = make("hls_entry_prefix http://cdn.example.com;")
        events = feed(seg, stream(11))
        self.assertEqual(closed(events)[0].uri, "http://cdn.example.com/live/s-0.ts")

    def test_entry_prefix_with_slash_is_used_as_is(self):
        # SRS adds the directory only when the prefix has no trailing slash.
        seg = make("hls_entry_prefix http://cdn.example.com/hls/;")
        events = feed(seg, stream(11))
        self.assertEqual(closed(events)[0].uri, "http://cdn.example.com/hls/s-0.ts")

    def test_ts_floor(self):
        now = [1000.0]
        seg = make("hls_fragment 2; hls_ts_floor on; hls_ts_file [app]/[stream]-[timestamp].ts;",
                   wallclock=lambda: now[0])
        events = []
        for packet in stream(9, audio_on=False):
            now[0] = 1000.0 + packet.dts / 1000.0
            events.extend(seg.on_packet(packet))
        names = [s.uri for s in closed(events)]
        self.assertEqual(names, ["s-499.ts", "s-500.ts", "s-501.ts", "s-502.ts"])


class KeyTests(unittest.TestCase):
    def decrypt(self, key: bytes, iv: bytes, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        plain = dec.update(data) + dec.finalize()
        unpad = padding.PKCS7(128).unpadder()
        return unpad.update(plain) + unpad.finalize()

    def test_rotation_names_and_tags(self):
        keys = iter(bytes([i]) * 16 for i in range(1, 100))
        seg = make("hls_fragment 2; hls_window 60; hls_keys on; hls_fragments_per_key 2;",
                   random_bytes=lambda n: next(keys))
        events = feed(seg, stream(10.1))
        created = [e.key for e in events if isinstance(e, KeyCreated)]
        self.assertEqual([(k.seq, k.key[0], k.path, k.uri) for k in created], [
            (0, 1, "/hls/live/s-0.key", "s-0.key"),
            (2, 2, "/hls/live/s-2.key", "s-2.key"),
            (4, 3, "/hls/live/s-4.key", "s-4.key"),
        ])
        # The key comes before the segment it encrypts.
        kinds = [type(e).__name__ for e in events]
        self.assertLess(kinds.index("KeyCreated"), kinds.index("SegmentOpened"))
        text = seg.playlist()
        self.assertIn('#EXT-X-KEY:METHOD=AES-128,URI="s-0.key",IV=0x00000000000000000000000000000000\n'
                      "#EXTINF:2.000, no desc\ns-0.ts\n", text)
        self.assertIn('#EXT-X-KEY:METHOD=AES-128,URI="s-2.key",IV=0x00000000000000000000000000000003\n'
                      "#EXTINF:2.000, no desc\ns-3.ts\n", text)
        self.assertEqual(text.count("#EXT-X-KEY"), 5)

    def test_segments_decrypt_to_transport_streams(self):
        seg = make("hls_fragment 2; hls_keys on; hls_fragments_per_key 3;",
                   random_bytes=lambda n: b"\x42" * n)
        events = feed(seg, stream(8.1))
        data = segment_bytes(events)
        self.assertEqual([s.seq for s in closed(events)], [0, 1, 2, 3])
        for s in closed(events):
            blob = data[s.seq]
            self.assertEqual(len(blob) % 16, 0)
            self.assertEqual(len(blob), s.size)
            plain = self.decrypt(b"\x42" * 16, s.seq.to_bytes(16, "big"), blob)
            self.assertEqual(len(plain) % 188, 0)
            self.assertEqual(plain[0], 0x47)
            self.assertNotEqual(blob[:188], plain[:188])

    def test_key_url_and_path(self):
        seg = make("hls_keys on; hls_key_file keys/[stream]-[seq].key; hls_key_file_path /keys; "
                   "hls_key_url https://k.example.com/hls;")
        events = feed(seg, stream(3))
        key = [e.key for e in events if isinstance(e, KeyCreated)][0]
        self.assertEqual(key.path, "/keys/keys/s-0.key")
        self.assertEqual(key.uri, "https://k.example.com/hls/keys/s-0.key")

    def test_rotate_key_on_request(self):
        seg = make("hls_fragment 2; hls_keys on; hls_fragments_per_key 100;")
        events = feed(seg, stream(3))
        seg.rotate_key()
        events += feed(seg, stream(4, start=3000, headers=False))
        # segment 1 was open already: the next one gets the new key
        self.assertEqual([e.key.seq for e in events if isinstance(e, KeyCreated)], [0, 2])


class TimestampTests(unittest.TestCase):
    def check_valid(self, seg, events):
        info = parse_playlist(seg.playlist())
        self.assertTrue(durations(events), "no segment was closed")
        for d in durations(events):
            self.assertGreater(d, 0)
            self.assertLessEqual(d, 4200 + 1000)
        return info

    def test_backward_jump_starts_a_new_segment_after_a_discontinuity(self):
        seg = make("hls_fragment 2; hls_window 600;")
        events = feed(seg, stream(5, start=60000))
        events += feed(seg, stream(5, start=1000, headers=False))
        events += seg.on_unpublish()
        info = self.check_valid(seg, events)
        flags = [e.get("discontinuity", False) for e in info["entries"]]
        self.assertEqual(flags.count(True), 1)
        # each part ends with its last audio frame (4991 + 23 ms)
        self.assertAlmostEqual(sum(e["duration"] for e in info["entries"]), 10.028, places=3)

    def test_hours_long_forward_jump(self):
        seg = make("hls_fragment 2; hls_window 600;")
        events = feed(seg, stream(5))
        events += feed(seg, stream(5, start=5 * 3600 * 1000, headers=False))
        events += seg.on_unpublish()
        info = self.check_valid(seg, events)
        self.assertEqual([e.get("discontinuity", False) for e in info["entries"]].count(True), 1)
        self.assertAlmostEqual(sum(e["duration"] for e in info["entries"]), 10.028, places=3)
        self.assertEqual(info["target"], 2)

    def test_small_jitter_is_not_a_jump(self):
        seg = make("hls_fragment 2; hls_window 600;")
        packets = stream(10)
        # audio 300 ms behind video now and then
        for p in packets:
            if p.kind == AUDIO and not p.sequence_header and (p.dts // 1000) % 2:
                p.dts = p.pts = max(0, p.dts - 300)
        events = feed(seg, packets) + list(seg.on_unpublish())
        self.assertNotIn("DISCONTINUITY", seg.playlist())
        self.check_valid(seg, events)

    def test_random_timestamps_give_a_valid_playlist(self):
        import random

        rng = random.Random(7)
        seg = make("hls_fragment 2; hls_window 20;")
        events = feed(seg, [metadata(), video_sh(), audio_sh()])
        t = 0
        for i in range(3000):
            t += rng.choice([40, 40, 40, 23, 0, -5, 2000, -3000, 10 ** 7, -(10 ** 6)])
            t = max(t, -(2 ** 31))
            packet = video(t, key=rng.random() < 0.05) if rng.random() < 0.5 else audio(t)
            events.extend(seg.on_packet(packet))
        events += seg.on_unpublish()
        info = parse_playlist(seg.playlist())
        self.assertTrue(info["entries"])
        self.assertTrue(durations(events), "no segment was closed")
        for d in durations(events):
            self.assertGreater(d, 0)
            self.assertLessEqual(d, 4200 + 2000)

    def test_33_bit_wrap_is_muxed(self):
        seg = make("hls_fragment 2; hls_window 600;")
        start = (1 << 33) // 90 - 3000  # the 90 kHz clock wraps in the middle
        events = feed(seg, stream(8, start=start)) + list(seg.on_unpublish())
        self.assertEqual(sum(durations(events)), 8000 + 4)  # the last audio frame ends at +8004
        self.assertNotIn("DISCONTINUITY", seg.playlist())


class TrackTests(unittest.TestCase):
    def pids(self, data: bytes) -> set:
        return {((data[i + 1] & 0x1F) << 8) | data[i + 2] for i in range(0, len(data), 188)}

    def test_segment_bytes_round_trip(self):
        seg = make("hls_fragment 2;")
        packets = stream(4.5)
        events = feed(seg, packets)
        data = segment_bytes(events)
        first = closed(events)[0]
        blob = data[first.seq]
        self.assertEqual(len(blob), first.size)
        self.assertEqual(len(blob) % 188, 0)
        self.assertEqual(((blob[1] & 0x1F) << 8) | blob[2], PAT_PID)
        self.assertEqual(((blob[189] & 0x1F) << 8) | blob[190], PMT_PID)
        demuxer = TsDemuxer()
        out = demuxer.feed(blob) + demuxer.flush()
        self.assertEqual(demuxer.errors, 0)
        frames = [p for p in out if not p.sequence_header]
        sent = [p for p in packets if p.kind in (AUDIO, VIDEO) and not p.sequence_header and p.dts < 2000]
        self.assertEqual(len(frames), len(sent))
        self.assertEqual(sorted(p.dts for p in frames), sorted(p.dts for p in sent))
        self.assertTrue([p for p in frames if p.kind == VIDEO][0].keyframe)

    def test_every_segment_starts_with_pat_and_pmt(self):
        seg = make("hls_fragment 2;")
        events = feed(seg, stream(12, gop_ms=10000))  # cut by audio, mid-GOP
        self.assertEqual(len(segment_bytes(events)), 2)
        for blob in segment_bytes(events).values():
            self.assertEqual(((blob[1] & 0x1F) << 8) | blob[2], PAT_PID)

    def test_video_only_has_no_audio_pid(self):
        seg = make("hls_fragment 2;")
        events = feed(seg, stream(4.5, audio_on=False))
        blob = list(segment_bytes(events).values())[0]
        self.assertEqual(closed(events)[0].tracks.audio, None)
        self.assertEqual(self.pids(blob), {0, 0x1001, 0x100})

    def test_audio_only_has_no_video_pid(self):
        seg = make("hls_fragment 2;")
        events = feed(seg, stream(9, video_on=False))
        blob = list(segment_bytes(events).values())[0]
        self.assertEqual(self.pids(blob), {0, 0x1001, 0x101})

    def test_mp3_announced_by_metadata_needs_no_cut(self):
        seg = make("hls_fragment 2;")
        packets = [metadata(7, 2), video_sh()]
        for t in range(0, 5000, 40):
            packets.append(video(t, key=t % 1000 == 0))
            if t % 80 == 0:
                packets.append(mp3(t + 1))
        events = feed(seg, packets)
        self.assertEqual(durations(events), [2000, 2000])
        self.assertEqual(closed(events)[0].tracks.audio, "mp3")
        self.assertIn(0x102, self.pids(list(segment_bytes(events).values())[0]))

    def test_acodec_an_does_not_assume_an_announced_track(self):
        seg = make("hls_fragment 2; hls_acodec an;")
        packets = [metadata(7, 10), video_sh()] + [video(t, key=t % 1000 == 0) for t in range(0, 5000, 40)]
        events = feed(seg, packets)
        self.assertEqual(closed(events)[0].tracks.audio, None)

    def test_announced_track_that_never_comes_is_dropped(self):
        seg = make("hls_fragment 2;")
        packets = [metadata(7, 10), video_sh()] + [video(t, key=t % 1000 == 0) for t in range(0, 7000, 40)]
        events = feed(seg, packets)
        tracks = [s.tracks.audio for s in closed(events)]
        self.assertEqual(tracks, ["aac", None, None])

    def test_late_audio_header_of_an_announced_track_needs_no_cut(self):
        seg = make("hls_fragment 2;")
        packets = [metadata(7, 10), video_sh(), video(0, key=True), audio_sh(10)]
        packets += stream(5, headers=False)[1:]
        events = feed(seg, packets)
        self.assertEqual(durations(events), [2000, 2000])
        self.assertNotIn("DISCONTINUITY", seg.playlist())

    def test_new_track_cuts_with_a_discontinuity(self):
        seg = make("hls_fragment 2;")
        packets = [video_sh()] + [video(t, key=t % 1000 == 0) for t in range(0, 3000, 40)]
        packets += [audio_sh(3000)] + stream(4, start=3000, headers=False)
        events = feed(seg, packets)
        self.assertEqual([s.tracks for s in closed(events)][:3],
                         [seg_mod.Tracks("h264", None), seg_mod.Tracks("h264", None), seg_mod.Tracks("h264", "aac")])
        self.assertEqual(durations(events)[:2], [2000, 1000])
        entries = parse_playlist(seg.playlist())["entries"]
        self.assertEqual([e.get("discontinuity", False) for e in entries[:3]], [False, False, True])

    def test_changed_sequence_header_cuts_with_a_discontinuity(self):
        from tests.codec.test_avc import AVCC_1280x720

        seg = make("hls_fragment 2;")
        events = feed(seg, stream(3))
        events += feed(seg, [video_sh(3000, AVCC_1280x720), video_sh(3000, AVCC_1280x720)])
        events += feed(seg, stream(5, start=3000, headers=False))
        # the segment ends with its last audio frame (2990 + 23 ms)
        self.assertEqual(durations(events)[:2], [2000, 1013])
        flags = [e.get("discontinuity", False) for e in parse_playlist(seg.playlist())["entries"]]
        self.assertEqual(flags[:3], [False, False, True])

    def test_unsupported_codecs_are_ignored(self):
        from srs_twisted.live.packet import MediaPacket

        seg = make("hls_fragment 2;")
        events = feed(seg, [MediaPacket(VIDEO, 0, b"\x1d\x00", codec="av1", keyframe=True),
                            MediaPacket(AUDIO, 0, b"\xd0\x00", codec="opus")])
        self.assertEqual(events, [])

    def test_malformed_packet_is_dropped_and_counted(self):
        from srs_twisted.live.packet import MediaPacket

        seg = make("hls_fragment 2;")
        packets = stream(5)
        packets.insert(20, MediaPacket(VIDEO, 400, b"\x27\x01\x00\x00\x00\x00\x00\xff\xff\x41", codec="h264"))
        events = feed(seg, packets)
        self.assertEqual(seg.format.errors, 1)
        self.assertEqual(durations(events), [2000, 2000])


class CleanupTests(unittest.TestCase):
    def test_expired_files_after_one_more_window(self):
        seg = make("hls_fragment 2; hls_window 6;")
        events = feed(seg, stream(40.1))
        removed = [p for e in events if isinstance(e, FilesExpired) for p in e.paths]
        in_playlist = [s.seq for s in seg.segments]
        kept = [s.seq for s in seg.kept]
        self.assertEqual(in_playlist, [16, 17, 18, 19])
        # each kept for its own duration plus the playlist's (about 8 s)
        self.assertEqual(kept, [11, 12, 13, 14, 15])
        self.assertEqual(removed, [f"/hls/live/s-{i}.ts" for i in range(11)])

    def test_cleanup_off_forgets_them(self):
        seg = make("hls_fragment 2; hls_window 6; hls_cleanup off;")
        events = feed(seg, stream(40.1))
        self.assertFalse([e for e in events if isinstance(e, FilesExpired)])
        self.assertEqual(seg.kept, [])
        # with the open segment's temporary file
        self.assertEqual([os.path.basename(p) for p in seg.dispose()],
                         ["s-16.ts", "s-17.ts", "s-18.ts", "s-19.ts", "s-20.ts.tmp", "s.m3u8"])

    def test_keys_go_with_their_last_segment(self):
        seg = make("hls_fragment 2; hls_window 6; hls_keys on; hls_fragments_per_key 4;")
        events = feed(seg, stream(40.1))
        removed = [os.path.basename(p) for e in events if isinstance(e, FilesExpired) for p in e.paths]
        self.assertEqual([p for p in removed if p.endswith(".key")], ["s-0.key", "s-4.key"])
        self.assertLess(removed.index("s-3.ts"), removed.index("s-0.key"))
        self.assertEqual(sorted(os.path.basename(p) for p in seg.dispose() if p.endswith(".key")),
                         ["s-12.key", "s-16.key", "s-20.key", "s-8.key"])

    def test_dispose_lists_everything(self):
        seg = make("hls_fragment 2; hls_window 6;")
        feed(seg, stream(20.1))
        seg.on_unpublish()
        paths = seg.dispose()
        self.assertEqual(paths[-1], "/hls/live/s.m3u8")
        # s-1..s-5 left the playlist but are kept; s-6..s-10 are in it
        self.assertEqual(sorted(int(re.search(r"(\d+)", os.path.basename(p)).group(1)) for p in paths[:-1]),
                         list(range(1, 11)))
        self.assertEqual(seg.playlist(), "")
        self.assertEqual(seg.dispose(), ["/hls/live/s.m3u8"])

    def test_discard_takes_a_segment_out(self):
        seg = make("hls_fragment 2; hls_window 60;")
        feed(seg, stream(6.1))
        self.assertTrue(seg.discard(1))
        self.assertFalse(seg.discard(1))
        info = parse_playlist(seg.playlist())
        self.assertEqual([e["uri"] for e in info["entries"]], ["s-0.ts", "s-2.ts"])
        self.assertEqual([e.get("discontinuity", False) for e in info["entries"]], [False, True])


class PurityTests(unittest.TestCase):
    def test_segmenter_imports_no_twisted(self):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(seg_mod.__file__))))
        script = ("import sys, srs_twisted.hls.segmenter\n"
                  "print(' '.join(m for m in ('twisted', 'socket', 'asyncio') if m in sys.modules))\n")
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                env=dict(os.environ, PYTHONPATH=root), cwd=root, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "")

    def test_events_are_the_documented_kinds(self):
        seg = make("hls_fragment 2; hls_keys on;")
        events = feed(seg, stream(5)) + list(seg.on_unpublish())
        kinds = {type(e) for e in events}
        self.assertLessEqual(kinds, {SegmentOpened, SegmentData, SegmentClosed, PlaylistUpdated, KeyCreated})
