"""DashObserver: which publishes get DASH, one recorder per stream across
publishes, dispose, and what happens at shutdown."""

from __future__ import annotations

import os

from twisted.internet.task import Clock
from twisted.trial import unittest

from srs_twisted.config import load_string
from srs_twisted.context import ServerContext
from srs_twisted.dash import service
from srs_twisted.dash.service import DashObserver

from ..hls.media import stream
from ..hls.test_writer import Publisher, listing


class Triggers(Clock):
    """A clock that also records the observer's shutdown trigger."""

    def __init__(self):
        super().__init__()
        self.triggers = []

    def addSystemEventTrigger(self, phase, event, fn):
        self.triggers.append((phase, event, fn))


class ObserverTests(unittest.TestCase):
    def setUp(self):
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        self.clock = Triggers()
        self.clock.advance(1700000000)
        dash = f"enabled on; dash_path {self.root}; dash_fragment 2;"
        text = (
            f"vhost __defaultVhost__ {{ dash {{ {dash} dash_dispose 5; }} }}\n"
            f"vhost nodash {{ }}\n"
            f"vhost keep {{ dash {{ enabled on; dash_path {self.root}/keep; dash_fragment 2; dash_dispose 0; }} }}\n"
            f"vhost edge {{ cluster {{ mode remote; origin 127.0.0.1:19350; }} dash {{ {dash} }} }}\n"
        )
        self.ctx = ServerContext(load_string(text), self.clock)
        self.observer = DashObserver(self.ctx)
        self.ctx.registry.observers.append(self.observer)

    def publish(self, vhost="__defaultVhost__", name="s", seconds=5.0):
        source = self.ctx.registry.fetch_or_create(vhost, "live", name)
        self.ctx.registry.publish(source, Publisher())
        for pkt in stream(seconds):
            source.write(pkt)
        return source

    def test_publish_records_and_unpublish_finishes(self):
        source = self.publish()
        recorder = self.observer.recorders[("__defaultVhost__", "live", "s")]
        self.assertTrue(recorder.enabled)
        self.ctx.registry.unpublish(source)
        self.assertFalse(recorder.enabled)
        self.assertEqual({"live/s.mpd", "live/s/video-init.mp4", "live/s/audio-init.mp4",
                          "live/s/video-1.m4s", "live/s/video-2.m4s", "live/s/video-3.m4s",
                          "live/s/audio-1.m4s", "live/s/audio-2.m4s", "live/s/audio-3.m4s"}, listing(self.root))

    def test_one_recorder_across_publishes(self):
        source = self.publish()
        recorder = self.observer.recorders[("__defaultVhost__", "live", "s")]
        self.ctx.registry.unpublish(source)
        self.clock.advance(4)
        source = self.publish()
        self.assertIs(self.observer.recorders[("__defaultVhost__", "live", "s")], recorder)
        self.ctx.registry.unpublish(source)
        self.assertIn("live/s/video-6.m4s", listing(self.root))

    def test_dispose_forgets_the_recorder(self):
        source = self.publish()
        self.ctx.registry.unpublish(source)
        self.clock.advance(5)
        self.assertEqual({}, self.observer.recorders)
        self.assertEqual(set(), listing(self.root))

    def test_vhost_without_dash_and_edges_make_none(self):
        for vhost in ("nodash", "edge"):
            source = self.publish(vhost)
            self.ctx.registry.unpublish(source)
        self.assertEqual({}, self.observer.recorders)
        self.assertEqual(set(), listing(self.root))

    def test_unpublish_of_another_source_is_ignored(self):
        self.publish()
        other = self.ctx.registry.fetch_or_create("__defaultVhost__", "live", "t")
        self.observer.source_unpublished(other)
        self.assertTrue(self.observer.recorders[("__defaultVhost__", "live", "s")].enabled)

    def test_a_failing_start_never_stops_the_publish(self):
        def broken(*args, **kwargs):
            raise RuntimeError("boom")

        self.patch(service.DashRecorder, "start", broken)
        source = self.publish()
        self.assertTrue(source.active)
        recorder = self.observer.recorders[("__defaultVhost__", "live", "s")]
        self.assertFalse(recorder.enabled)

    def test_shutdown_finishes_and_disposes(self):
        (phase, event, stop_all), = self.clock.triggers
        self.assertEqual(("before", "shutdown"), (phase, event))
        self.publish()
        self.publish("keep")
        stop_all()
        files = listing(self.root)
        self.assertFalse([f for f in files if not f.startswith("keep/")])  # dash_dispose 5: removed
        self.assertIn("keep/live/s.mpd", files)  # dash_dispose 0: kept
        self.assertFalse(any(r.enabled for r in self.observer.recorders.values()))
