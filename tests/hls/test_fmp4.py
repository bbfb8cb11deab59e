"""HLS with fMP4 segments (hls_use_fmp4): the init segment, the media
segments' boxes and timing, the playlist's EXT-X-MAP, codec changes,
republishing, AES-128 and cleanup."""

from __future__ import annotations

import struct

from twisted.trial import unittest

from srs_twisted.hls.segmenter import (
    FilesExpired, Fmp4SegmentFormat, HlsSegmenter, InitCreated, PartAdded, PlaylistUpdated,
    SegmentClosed, SegmentData, SegmentOpened, KeyCreated,
)
from srs_twisted.live.packet import AUDIO, VIDEO, MediaPacket

from ..codec.test_fmp4 import fragments_of, root, stsd_entry, walk
from .media import audio_sh, feed, hls_conf, metadata, mp3, stream, video, video_sh
from . import test_segmenter
from .test_segmenter import closed, durations, parse_playlist, segment_bytes

FMP4 = "hls_use_fmp4 on; hls_fragment 2; hls_window 60;"
ASC_48000_STEREO = bytes.fromhex("1190")


def make(body: str = FMP4, **kwargs) -> HlsSegmenter:
    conf = hls_conf(body).hls
    kwargs.setdefault("random_bytes", lambda n: bytes(range(n)))
    return HlsSegmenter(conf, "live", "s", **kwargs)


def inits(events) -> list:
    return [e.init for e in events if isinstance(e, InitCreated)]


def track_kinds(init: bytes) -> list:
    out = []
    for trak in root(init).find("moov").all("trak"):
        hdlr = trak.find("mdia/hdlr")
        out.append(hdlr.body[8:12])
    return out


def audio_sh_48k(dts: int = 0) -> MediaPacket:
    return MediaPacket(AUDIO, dts, b"\xaf\x00" + ASC_48000_STEREO, codec="aac", sequence_header=True)


class Fmp4SegmentTests(unittest.TestCase):
    def test_playlist_version_7_and_map(self):
        seg = make()
        feed(seg, stream(6.1))
        self.assertEqual(
            seg.playlist(),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-TARGETDURATION:2\n"
            '#EXT-X-MAP:URI="s/init.mp4"\n'
            "#EXTINF:2.000, no desc\ns-0.m4s\n#EXTINF:2.000, no desc\ns-1.m4s\n"
            "#EXTINF:2.000, no desc\ns-2.m4s\n",
        )

    def test_init_once_with_both_tracks_before_the_first_segment(self):
        seg = make()
        events = feed(seg, stream(10.1)) + list(seg.on_unpublish())
        made = inits(events)
        self.assertEqual(len(made), 1)
        init = made[0]
        self.assertEqual((init.path, init.uri, init.seq), ("/hls/live/s/init.mp4", "s/init.mp4", 0))
        self.assertEqual([b.kind for b in walk(init.data)], [b"ftyp", b"moov"])
        self.assertEqual(track_kinds(init.data), [b"vide", b"soun"])
        self.assertEqual(stsd_entry(init.data, 0).kind, b"avc1")
        self.assertEqual(stsd_entry(init.data, 1).kind, b"mp4a")
        kinds = [type(e) for e in events]
        self.assertLess(kinds.index(InitCreated), kinds.index(SegmentClosed))
        for s in closed(events):
            self.assertIs(s.init, init)
            self.assertTrue(s.path.endswith(f"/live/s-{s.seq}.m4s"))

    def test_segments_are_fragments_that_tile_the_stream(self):
        seg = make()
        events = feed(seg, stream(10.1)) + list(seg.on_unpublish())
        data = segment_bytes(events)
        segs = closed(events)
        self.assertEqual(durations(events)[:5], [2000] * 5)
        video_start = 0
        for s in segs:
            blob = data[s.seq]
            self.assertEqual(len(blob), s.size)
            self.assertEqual({b.kind for b in walk(blob)}, {b"moof", b"mdat"})
            frags = fragments_of(blob)
            self.assertEqual(len(frags), 1)
            tfdt, rows = frags[0][1][1]
            # video continues where the last segment ended, and starts with a keyframe
            self.assertEqual(tfdt, video_start)
            self.assertEqual(rows[0]["flags"], 0x02000000)
            total = sum(r["duration"] for r in rows)
            self.assertEqual(total, s.duration_ms * 90)
            video_start += total
            self.assertIn(2, frags[0][1])  # audio in every segment

    def test_republish_with_the_same_config_reuses_the_init(self):
        seg = make()
        events = feed(seg, stream(4.1)) + list(seg.on_unpublish())
        seg.on_publish()
        events += feed(seg, stream(4.1, start=100000)) + list(seg.on_unpublish())
        self.assertEqual(len(inits(events)), 1)
        text = seg.playlist()
        self.assertEqual(text.count("#EXT-X-MAP"), 1)
        info = parse_playlist(text)
        self.assertEqual([e.get("discontinuity", False) for e in info["entries"]],
                         [False, False, False, True, False, False])

    def test_codec_change_makes_a_new_init_after_a_discontinuity(self):
        seg = make()
        events = feed(seg, stream(4.1))
        events += feed(seg, [audio_sh_48k(4100)] + stream(4.1, start=4100, headers=False))
        made = inits(events)
        self.assertEqual([(i.seq, i.uri) for i in made], [(0, "s/init.mp4"), (3, "s/init-3.mp4")])
        text = seg.playlist()
        # segment 2 holds the frames at 4000, 4040 and 4080 ms
        self.assertIn('#EXTINF:0.120, no desc\ns-2.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="s/init-3.mp4"\n'
                      "#EXTINF:", text)
        self.assertIn(b"\x11\x90", made[1].data)

    def test_republish_with_another_config_makes_a_new_init(self):
        seg = make()
        events = feed(seg, stream(4.1)) + list(seg.on_unpublish())
        seg.on_publish()
        events += feed(seg, [metadata(), video_sh(100000), audio_sh_48k(100000)]
                       + stream(4.1, start=100000, headers=False))
        self.assertEqual([i.uri for i in inits(events)], ["s/init.mp4", "s/init-3.mp4"])
        info = parse_playlist(seg.playlist())
        self.assertTrue(info["entries"][3]["discontinuity"])

    def test_mp3_track_comes_from_its_first_frame(self):
        seg = make()
        packets = [metadata(audiocodecid=2), video_sh()]
        for t in range(0, 4100, 40):
            packets.append(video(t, key=t % 1000 == 0))
            packets.append(mp3(t + 5))
        events = feed(seg, packets)
        made = inits(events)
        self.assertEqual(len(made), 1)
        self.assertEqual(track_kinds(made[0].data), [b"vide", b"soun"])
        esds = stsd_entry(made[0].data, 1).children[0]
        self.assertIn(b"\x6b", esds.body)  # objectTypeIndication MPEG-1 audio
        frags = fragments_of(segment_bytes(events)[0])
        self.assertGreater(len(frags[0][1][2][1]), 40)  # no MP3 frame lost

    def test_late_audio_header_of_an_announced_track(self):
        seg = make()
        packets = [metadata(), video_sh()]
        packets += [video(t, key=t == 0) for t in range(0, 200, 40)]
        packets.append(audio_sh(200))
        packets += stream(4, start=200, headers=False)[5:]
        events = feed(seg, packets)
        made = inits(events)
        self.assertEqual(len(made), 1)
        self.assertEqual(track_kinds(made[0].data), [b"vide", b"soun"])
        self.assertNotIn("DISCONTINUITY", seg.playlist())

    def test_announced_track_that_never_comes(self):
        packets = [metadata()] + [p for p in stream(6.1, audio_on=False) if p.kind == VIDEO]
        seg = make()
        events = feed(seg, packets)
        made = inits(events)
        self.assertEqual(len(made), 1)
        self.assertEqual(track_kinds(made[0].data), [b"vide"])
        self.assertEqual(durations(events)[:2], [2000, 2000])

    def test_audio_only(self):
        seg = make()
        events = feed(seg, stream(10, video_on=False))
        made = inits(events)
        self.assertEqual(track_kinds(made[0].data), [b"soun"])
        for s in closed(events):
            self.assertGreaterEqual(s.duration_ms, 4200)
            self.assertLess(s.duration_ms, 4200 + 25)

    def test_timestamp_jump_restarts_the_timeline(self):
        seg = make("hls_use_fmp4 on; hls_fragment 2; hls_window 600;")
        events = feed(seg, stream(5))
        events += feed(seg, stream(5, start=5 * 3600 * 1000, headers=False))
        events += seg.on_unpublish()
        info = parse_playlist(seg.playlist())
        self.assertEqual([e.get("discontinuity", False) for e in info["entries"]].count(True), 1)
        self.assertEqual(len(inits(events)), 1)
        data = segment_bytes(events)
        jumped = [s for s in closed(events) if s.discontinuity][0]
        self.assertEqual(fragments_of(data[jumped.seq])[0][1][1][0], 5 * 3600 * 1000 * 90)
        for s in closed(events):
            self.assertLessEqual(s.duration_ms, 2100)

    def test_malformed_frame_is_dropped_and_counted(self):
        seg = make()
        packets = stream(3)
        bad = MediaPacket(VIDEO, 1010, b"\x27\x01\x00\x00\x00\x00\x00\x00\x50\x41", codec="h264")
        packets.insert(60, bad)
        events = feed(seg, packets)
        self.assertEqual(seg.format.errors, 1)
        self.assertTrue(closed(events))

    def test_segment_names_from_hls_fmp4_file(self):
        seg = make(FMP4 + " hls_fmp4_file [app]/frag/[stream]-[seq]-[duration].m4s; "
                   "hls_init_file [app]/frag/[stream]-init-[seq].mp4;")
        events = feed(seg, stream(4.1))
        self.assertEqual([s.uri for s in closed(events)], ["frag/s-0-2000.m4s", "frag/s-1-2000.m4s"])
        self.assertEqual(inits(events)[0].uri, "frag/s-init-0.mp4")

    def test_events_are_the_documented_kinds(self):
        seg = make(FMP4 + " hls_keys on;")
        events = feed(seg, stream(5)) + list(seg.on_unpublish())
        kinds = {type(e) for e in events}
        self.assertLessEqual(kinds, {SegmentOpened, SegmentData, SegmentClosed, PlaylistUpdated, KeyCreated,
                                     InitCreated})
        self.assertNotIn(PartAdded, kinds)
        self.assertIsInstance(seg.format, Fmp4SegmentFormat)


class Fmp4KeyTests(unittest.TestCase):
    decrypt = test_segmenter.KeyTests.decrypt

    def test_segments_decrypt_to_fragments_and_the_init_is_clear(self):
        seg = make(FMP4 + " hls_keys on; hls_fragments_per_key 2;", random_bytes=lambda n: b"\x42" * n)
        events = feed(seg, stream(8.1))
        init = inits(events)[0]
        self.assertEqual(init.data[4:8], b"ftyp")
        data = segment_bytes(events)
        for s in closed(events):
            blob = data[s.seq]
            self.assertEqual(len(blob) % 16, 0)
            plain = self.decrypt(b"\x42" * 16, s.seq.to_bytes(16, "big"), blob)
            self.assertEqual(plain[4:8], b"moof")
            self.assertNotEqual(blob[4:8], b"moof")
        text = seg.playlist()
        # the MAP comes before any key: the init segment is not encrypted
        self.assertLess(text.index("#EXT-X-MAP"), text.index("#EXT-X-KEY"))

    def test_a_later_map_is_clear_too(self):
        seg = make(FMP4 + " hls_keys on;")
        feed(seg, stream(4.1))
        feed(seg, [audio_sh_48k(4100)] + stream(4.1, start=4100, headers=False))
        text = seg.playlist()
        later = text.index('#EXT-X-MAP:URI="s/init-3.mp4"')
        self.assertTrue(text[:later].endswith("#EXT-X-DISCONTINUITY\n#EXT-X-KEY:METHOD=NONE\n"), text)
        self.assertTrue(text[later:].split("\n")[1].startswith("#EXT-X-KEY:METHOD=AES-128"), text)


class Fmp4CleanupTests(unittest.TestCase):
    def test_an_unused_init_goes_with_its_last_segment(self):
        seg = make("hls_use_fmp4 on; hls_fragment 2; hls_window 4;")
        events = feed(seg, stream(4.1))
        events += feed(seg, [audio_sh_48k(4100)] + stream(30, start=4100, headers=False))
        expired = [p for e in events if isinstance(e, FilesExpired) for p in e.paths]
        self.assertIn("/hls/live/s/init.mp4", expired)
        self.assertNotIn("/hls/live/s/init-3.mp4", expired)
        # removed after its last segment
        self.assertGreater(expired.index("/hls/live/s/init.mp4"), expired.index("/hls/live/s-2.m4s"))
        self.assertEqual([i.uri for i in seg.inits], ["s/init-3.mp4"])

    def test_dispose_lists_the_init(self):
        seg = make()
        feed(seg, stream(4.1))
        paths = seg.dispose()
        self.assertIn("/hls/live/s/init.mp4", paths)
        self.assertEqual(seg.inits, [])


class Fmp4FormatTests(unittest.TestCase):
    def test_cut_gives_exactly_the_frames_before_the_next_one(self):
        fmt = Fmp4SegmentFormat()
        from srs_twisted.hls.segmenter import Tracks

        fmt.begin_segment(Tracks("h264", None), [video_sh()])
        for t in range(0, 2000, 40):
            fmt.add_packet(video(t, key=t == 0))
        nxt = video(2000, key=True)
        fmt.end_segment(nxt)
        self.assertIsNotNone(fmt.take_init())
        self.assertIsNone(fmt.take_init())
        frags = fmt.take_fragments()
        self.assertEqual(len(frags), 1)
        self.assertEqual((frags[0].start, frags[0].duration, frags[0].independent), (0.0, 2.0, True))
        fmt.begin_segment(Tracks("h264", None), [video_sh()])
        fmt.add_packet(nxt)  # already in: not added twice
        fmt.end_segment(None)
        frags = fmt.take_fragments()
        self.assertEqual((frags[0].start, frags[0].duration), (2.0, 0.04))
        self.assertEqual(struct.unpack(">I", frags[0].data[4:8])[0], 0x6D6F6F66)  # moof
