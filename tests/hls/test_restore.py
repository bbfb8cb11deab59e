"""Issue 9 item 7: with hls_dispose 0 a stream's recorder is released once
the stream has been gone a while (memory bounded however many names are
published), its files stay on disk, and the next recorder of the stream
takes over the playlist it finds there (numbers go on, the old segments stay
in the window and are cleaned up as they leave it)."""

from __future__ import annotations

import os

from twisted.internet.task import Clock
from twisted.trial import unittest

from srs_twisted.config import load_string
from srs_twisted.context import ServerContext
from srs_twisted.hls.restore import read_playlist
from srs_twisted.hls.segmenter import FilesExpired, HlsSegmenter
from srs_twisted.hls.service import HlsObserver
from srs_twisted.hls.writer import release_after

from .media import feed, hls_conf, stream
from .test_segmenter import parse_playlist
from .test_writer import Publisher, listing


def make(body: str) -> HlsSegmenter:
    conf = hls_conf(body, path="/hls").hls
    return HlsSegmenter(conf, "live", "s", random_bytes=lambda n: bytes(range(n)))


def taken_over(old: HlsSegmenter, body: str) -> HlsSegmenter:
    new = make(body)
    new.restore(read_playlist(old.playlist()))
    return new


class RoundTripTests(unittest.TestCase):
    """A playlist read back gives the same playlist, then goes on."""

    def check(self, body: str, seconds: float = 13.1) -> HlsSegmenter:
        old = make(body)
        feed(old, stream(seconds))
        old.on_unpublish()
        new = taken_over(old, body)
        self.assertEqual(new.playlist(), old.playlist())
        self.assertEqual(new.sequence, old.sequence)
        self.assertEqual([(s.seq, s.path) for s in new.segments], [(s.seq, s.path) for s in old.segments])
        return new

    def test_ts(self):
        new = self.check("hls_fragment 2; hls_window 6;")
        events = feed(new, stream(3))
        info = parse_playlist(new.playlist())
        # numbers go on after the old window, the first new segment is a discontinuity
        entries = info["entries"]
        first_new = [e["uri"] for e in entries].index("s-7.ts")
        self.assertTrue(entries[first_new].get("discontinuity"))
        self.assertEqual(info["media_sequence"], 4)
        # the old segments leave the window and are cleaned up
        events += feed(new, stream(20, start=3000))
        expired = [p for e in events if isinstance(e, FilesExpired) for p in e.paths]
        self.assertIn("/hls/live/s-3.ts", expired)

    def test_keys(self):
        new = self.check("hls_fragment 2; hls_window 60; hls_keys on; hls_fragments_per_key 2;")
        self.assertEqual(sorted(k.path for k in new._keys.values()),
                         ["/hls/live/s-0.key", "/hls/live/s-2.key", "/hls/live/s-4.key", "/hls/live/s-6.key"])
        # a new key for the new segments, never a restored one (its bytes are not known)
        feed(new, stream(3))
        self.assertEqual(new.segments[-1].seq, 7)
        self.assertEqual(new.segments[-1].key.path, "/hls/live/s-7.key")

    def test_fmp4(self):
        new = self.check("hls_use_fmp4 on; hls_fragment 2; hls_window 60;")
        self.assertEqual([i.path for i in new.inits], ["/hls/live/s/init.mp4"])
        feed(new, stream(3))
        # the new init does not overwrite the one the old segments use
        self.assertEqual(new.current.init.path, "/hls/live/s/init-7.mp4")

    def test_entry_prefix(self):
        self.check("hls_fragment 2; hls_window 60; hls_entry_prefix http://cdn.example/;")
        self.check("hls_fragment 2; hls_window 60; hls_entry_prefix http://cdn.example;")

    def test_uris_outside_hls_path_are_not_taken_but_numbers_go_on(self):
        text = ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:40\n#EXT-X-TARGETDURATION:2\n"
                "#EXTINF:2.000, no desc\ns-40.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.000, no desc\n../../etc/passwd\n")
        seg = make("hls_fragment 2; hls_window 60;")
        self.assertEqual(seg.restore(read_playlist(text)), 0)
        self.assertEqual(seg.sequence, 42)
        feed(seg, stream(3))
        info = parse_playlist(seg.playlist())
        self.assertEqual(info["media_sequence"], 42)
        self.assertEqual(info["discontinuity_sequence"], 1)
        self.assertTrue(info["entries"][0].get("discontinuity"))

    def test_not_a_playlist(self):
        self.assertIsNone(read_playlist("hello"))
        self.assertIsNone(read_playlist("#EXTM3U\n#EXTINF:2,\n"))  # no media sequence
        self.assertIsNone(read_playlist("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:x\n"))
        self.assertIsNone(read_playlist("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:1\nno-extinf.ts\n"))


class ObserverCase(unittest.TestCase):
    hls = "hls_fragment 2; hls_window 6; hls_dispose 0;"

    def setUp(self):
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        self.clock = Clock()
        self.ctx = ServerContext(self.config(), self.clock)
        self.observer = HlsObserver(self.ctx)
        self.ctx.registry.observers.append(self.observer)

    def config(self):
        return load_string(f"vhost __defaultVhost__ {{ hls {{ enabled on; hls_path {self.root}; {self.hls} }} }}")

    def publish(self, name="s", seconds=5.0):
        source = self.ctx.registry.fetch_or_create("__defaultVhost__", "live", name)
        self.ctx.registry.publish(source, Publisher())
        for pkt in stream(seconds):
            source.write(pkt)
        return source

    def playlist(self, name="s") -> dict:
        with open(os.path.join(self.root, "live", f"{name}.m3u8")) as f:
            return parse_playlist(f.read())



class ReleaseTests(ObserverCase):
    def test_many_names_are_released_and_their_files_kept(self):
        for i in range(20):
            self.ctx.registry.unpublish(self.publish(f"n{i}", seconds=3))
        self.assertEqual(len(self.observer.recorders), 20)
        self.clock.advance(release_after(self.ctx.vhost("__defaultVhost__").hls) + 0.1)
        self.assertEqual(self.observer.recorders, {})  # was 20 forever
        self.assertEqual(self.clock.getDelayedCalls(), [])
        names = listing(self.root)
        for i in range(20):
            self.assertIn(f"live/n{i}.m3u8", names)
            self.assertIn(f"live/n{i}-0.ts", names)

    def test_republish_within_the_bound_keeps_the_recorder(self):
        self.ctx.registry.unpublish(self.publish())
        recorder = self.observer.recorders[("__defaultVhost__", "live", "s")]
        self.clock.advance(release_after(self.ctx.vhost("__defaultVhost__").hls) - 1)
        self.publish()
        self.assertIs(self.observer.recorders[("__defaultVhost__", "live", "s")], recorder)
        self.clock.advance(1000)
        self.assertIs(self.observer.recorders[("__defaultVhost__", "live", "s")], recorder)

    def test_republish_after_release_goes_on_from_the_playlist(self):
        self.ctx.registry.unpublish(self.publish(seconds=13.1))
        before = self.playlist()
        self.assertEqual([e["uri"] for e in before["entries"]], ["s-3.ts", "s-4.ts", "s-5.ts", "s-6.ts"])
        self.clock.advance(1000)
        self.assertEqual(self.observer.recorders, {})
        # what had left the playlist is cleaned up at release; the playlist's segments stay
        self.assertEqual(listing(self.root), {"live/s.m3u8"} | {f"live/s-{i}.ts" for i in range(3, 7)})
        source = self.publish(seconds=5)
        after = self.playlist()
        uris = [e["uri"] for e in after["entries"]]
        # the old segments, then the new ones, numbered on (they were s-0.ts... again, overwriting)
        self.assertEqual(uris, ["s-5.ts", "s-6.ts", "s-7.ts", "s-8.ts"])
        self.assertTrue(after["entries"][2].get("discontinuity"))
        self.assertEqual(after["media_sequence"], 5)
        for pkt in stream(20, start=5000):
            source.write(pkt)
        # the old segments left the window and their files went
        self.assertFalse({f"live/s-{i}.ts" for i in range(3, 7)} & listing(self.root))

    def test_a_restart_goes_on_from_the_playlist(self):
        self.ctx.registry.unpublish(self.publish(seconds=5))
        ctx = ServerContext(self.config(), Clock())  # a new server, same directory
        observer = HlsObserver(ctx)
        ctx.registry.observers.append(observer)
        source = ctx.registry.fetch_or_create("__defaultVhost__", "live", "s")
        ctx.registry.publish(source, Publisher())
        for pkt in stream(5):
            source.write(pkt)
        ctx.registry.unpublish(source)
        entries = self.playlist()["entries"]
        self.assertEqual([e["uri"] for e in entries], ["s-2.ts", "s-3.ts", "s-4.ts", "s-5.ts"])
        self.assertTrue(entries[1].get("discontinuity"))


class DisposeStillDisposesTests(ObserverCase):
    hls = "hls_fragment 2; hls_window 6; hls_dispose 5;"

    def test_dispose_removes_the_files_and_the_recorders(self):
        for i in range(3):
            self.ctx.registry.unpublish(self.publish(f"n{i}", seconds=3))
        self.clock.advance(5.1)
        self.assertEqual(self.observer.recorders, {})
        self.assertEqual(listing(self.root), set())
