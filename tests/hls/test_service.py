"""HlsObserver: which publishes get HLS, one recorder per stream across
publishes, and what happens at shutdown."""

from __future__ import annotations

import os

from twisted.internet.task import Clock
from twisted.trial import unittest

from srs_twisted.config import load_string
from srs_twisted.context import ServerContext
from srs_twisted.hls.service import HlsObserver

from .media import stream
from .test_writer import Publisher, listing


class ObserverTests(unittest.TestCase):
    def setUp(self):
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        self.clock = Clock()
        text = (
            f"vhost __defaultVhost__ {{ hls {{ enabled on; hls_path {self.root}; hls_fragment 2; hls_dispose 5; }} }}\n"
            f"vhost nohls {{ }}\n"
            f"vhost edge {{ cluster {{ mode remote; origin 127.0.0.1:19350; }} hls {{ enabled on; hls_path {self.root}; }} }}\n"
        )
        self.ctx = ServerContext(load_string(text), self.clock)
        self.observer = HlsObserver(self.ctx)
        self.ctx.registry.observers.append(self.observer)

    def publish(self, vhost="__defaultVhost__", name="s", seconds=5.0):
        source = self.ctx.registry.fetch_or_create(vhost, "live", name)
        publisher = Publisher()
        self.ctx.registry.publish(source, publisher)
        for pkt in stream(seconds):
            source.write(pkt)
        return source

    def test_publish_records_and_unpublish_finishes(self):
        source = self.publish()
        recorder = self.observer.recorders[("__defaultVhost__", "live", "s")]
        self.assertTrue(recorder.enabled)
        self.ctx.registry.unpublish(source)
        self.assertFalse(recorder.enabled)
        self.assertEqual({"live/s.m3u8", "live/s-0.ts", "live/s-1.ts", "live/s-2.ts"}, listing(self.root))
        with open(os.path.join(self.root, "live", "s.m3u8")) as f:
            self.assertIn("s-2.ts", f.read())

    def test_one_recorder_across_publishes(self):
        source = self.publish()
        recorder = self.observer.recorders[("__defaultVhost__", "live", "s")]
        self.ctx.registry.unpublish(source)
        self.clock.advance(4)
        source = self.publish()
        self.assertIs(self.observer.recorders[("__defaultVhost__", "live", "s")], recorder)
        self.ctx.registry.unpublish(source)
        with open(os.path.join(self.root, "live", "s.m3u8")) as f:
            text = f.read()
        self.assertIn("#EXT-X-DISCONTINUITY\n#EXTINF:2.000, no desc\ns-3.ts", text)

    def test_dispose_forgets_the_recorder(self):
        source = self.publish()
        self.ctx.registry.unpublish(source)
        self.clock.advance(5)
        self.assertEqual(self.observer.recorders, {})
        self.assertEqual(listing(self.root), set())
        source = self.publish()
        self.ctx.registry.unpublish(source)
        self.assertIn("live/s-0.ts", listing(self.root))

    def test_streams_are_separate(self):
        a = self.publish(name="a")
        b = self.publish(name="b")
        self.ctx.registry.unpublish(a)
        self.ctx.registry.unpublish(b)
        names = listing(self.root)
        self.assertIn("live/a.m3u8", names)
        self.assertIn("live/b-2.ts", names)

    def test_vhosts_without_hls_and_edges_get_none(self):
        self.publish(vhost="nohls")
        self.publish(vhost="edge")
        self.assertEqual(self.observer.recorders, {})
        self.assertEqual(listing(self.root), set())

    def test_reload_applies_at_the_next_publish(self):
        source = self.publish()
        self.ctx.registry.unpublish(source)
        self.ctx.config = load_string(
            f"vhost __defaultVhost__ {{ hls {{ enabled on; hls_path {self.root}; hls_fragment 1; hls_dispose 5; }} }}")
        source = self.publish(seconds=3)
        self.ctx.registry.unpublish(source)
        with open(os.path.join(self.root, "live", "s.m3u8")) as f:
            text = f.read()
        self.assertIn("#EXT-X-DISCONTINUITY\n#EXTINF:1.000, no desc\ns-3.ts", text)

    def test_stop_all_finishes_and_disposes(self):
        self.publish()
        self.assertIn("live/s-0.ts", listing(self.root))
        self.observer.stop_all()
        self.assertEqual(listing(self.root), set())

    def test_stop_all_keeps_files_without_dispose(self):
        self.ctx.config = load_string(
            f"vhost __defaultVhost__ {{ hls {{ enabled on; hls_path {self.root}; hls_fragment 2; hls_dispose 0; }} }}")
        self.publish()
        self.observer.stop_all()
        self.assertEqual(listing(self.root), {"live/s.m3u8", "live/s-0.ts", "live/s-1.ts", "live/s-2.ts"})

    def test_a_broken_section_does_not_stop_the_publish(self):
        self.ctx.config = load_string(
            "vhost __defaultVhost__ { hls { enabled on; hls_path /proc/no/such/dir; hls_fragment 2; } }")
        source = self.publish()
        self.assertTrue(source.active)
        self.ctx.registry.unpublish(source)
        self.assertFalse(source.active)
