"""The HLS recorder on a real directory with a fake clock: whole files only,
cleanup, dispose, hooks and hls_on_error."""

from __future__ import annotations

import errno
import json
import os

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest

from srs_twisted.config import load_string
from srs_twisted.context import ClientInfo, ServerContext
from srs_twisted.hls import writer as writer_mod
from srs_twisted.hls.writer import HlsRecorder, write_atomically
from srs_twisted.url import discover

from .media import stream
from .test_segmenter import KeyTests, parse_playlist


class Publisher:
    stopped = False

    def stopProducing(self):
        self.stopped = True

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass


class FakeHooks:
    def __init__(self):
        self.calls = []

    def on_hls(self, client, file, url, m3u8, m3u8_url, seq_no, duration):
        self.calls.append(("on_hls", client, file, url, m3u8, m3u8_url, seq_no, duration))
        return defer.succeed(True)

    def on_hls_notify(self, client, ts_url):
        self.calls.append(("on_hls_notify", client, ts_url))
        return defer.succeed(1)


def listing(root: str) -> set:
    """Every file below ``root``, relative to it."""
    found = set()
    for base, _, files in os.walk(root):
        for name in files:
            found.add(os.path.relpath(os.path.join(base, name), root))
    return found


class RecorderCase(unittest.TestCase):
    hls = "hls_fragment 2; hls_window 6;"
    extra = ""

    def setUp(self):
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        self.clock = Clock()
        self.clock.advance(1700000000)
        self.ctx = ServerContext(self.make_config(), self.clock)
        self.hooks = None
        self.disposed = []
        self.rec = HlsRecorder(self.ctx, "__defaultVhost__", "live", "s", on_disposed=self.disposed.append,
                               random_bytes=lambda n: b"\x07" * n)
        self.publish()

    def make_config(self):
        return load_string(
            f"vhost __defaultVhost__ {{ hls {{ enabled on; hls_path {self.root}; {self.hls} }} {self.extra} }}"
        )

    def publish(self):
        self.source = self.ctx.registry.fetch_or_create("__defaultVhost__", "live", "s")
        self.publisher = Publisher()
        self.source.registerProducer(self.publisher, True)
        client = ClientInfo("10.0.0.1", id="pub00001", request=discover("rtmp://127.0.0.1/live", "s?k=v"))
        client.request.vhost = "__defaultVhost__"
        client.source = self.source
        self.rec.start(self.source)
        self.source.publisher_info = client
        self.client = client

    def unpublish(self):
        self.rec.stop()
        self.source.unregisterProducer()

    def send(self, packets, check=None):
        for i, pkt in enumerate(packets):
            self.source.write(pkt)
            if check is not None and i % 7 == 0:
                check()

    def path(self, name: str) -> str:
        return os.path.join(self.root, "live", name)

    def playlist(self) -> dict:
        with open(self.path("s.m3u8")) as f:
            return parse_playlist(f.read())


class FileTests(RecorderCase):
    def check_whole(self):
        """What a reader can see: a playlist whose segments are all there, whole."""
        files = listing(self.root)
        tmp = {f for f in files if f.endswith(".tmp")}
        current = self.rec.segmenter.current
        self.assertLessEqual(tmp, {os.path.relpath(current.tmp_path, self.root)} if current else set())
        if "live/s.m3u8" not in files:
            return
        with open(self.path("s.m3u8")) as f:
            text = f.read()
        self.assertEqual(text, self.rec.segmenter.playlist())
        sizes = {s.uri: s.size for s in self.rec.segmenter.segments}
        for entry in parse_playlist(text)["entries"]:
            self.assertEqual(os.path.getsize(self.path(entry["uri"])), sizes[entry["uri"]])

    def test_only_whole_files_are_visible(self):
        self.send(stream(15), check=self.check_whole)
        self.check_whole()
        self.assertEqual(self.playlist()["media_sequence"], 3)

    def test_segments_are_transport_streams(self):
        self.send(stream(5))
        with open(self.path("s-0.ts"), "rb") as f:
            data = f.read()
        self.assertEqual(len(data) % 188, 0)
        self.assertEqual(data[0], 0x47)

    def test_unpublish_writes_the_last_segment_and_the_playlist(self):
        self.send(stream(5))
        self.assertEqual(len(self.playlist()["entries"]), 2)
        self.unpublish()
        info = self.playlist()
        self.assertEqual([e["uri"] for e in info["entries"]], ["s-0.ts", "s-1.ts", "s-2.ts"])
        self.assertAlmostEqual(info["entries"][-1]["duration"], 1.014)
        self.assertFalse([f for f in listing(self.root) if f.endswith(".tmp")])
        with open(self.path("s.m3u8")) as f:
            self.assertNotIn("ENDLIST", f.read())

    def test_republish_continues_the_playlist(self):
        self.send(stream(5))
        self.unpublish()
        self.publish()
        self.send(stream(5))
        self.unpublish()
        info = self.playlist()
        self.assertEqual([e["uri"] for e in info["entries"]][-3:], ["s-3.ts", "s-4.ts", "s-5.ts"])
        self.assertTrue(info["entries"][-3].get("discontinuity"))

    def test_cleanup_removes_exactly_the_old_files(self):
        self.send(stream(40.1))
        seg = self.rec.segmenter
        expected = {f"live/s-{s.seq}.ts" for s in seg.segments + seg.kept}
        expected |= {"live/s.m3u8", os.path.relpath(seg.current.tmp_path, self.root)}
        self.assertEqual(listing(self.root), expected)
        self.assertEqual(sorted(s.seq for s in seg.kept), [11, 12, 13, 14, 15])
        self.assertEqual([s.seq for s in seg.segments], [16, 17, 18, 19])

    def test_no_playlist_before_the_first_segment(self):
        self.send(stream(1))
        self.assertEqual(listing(self.root), {"live/s-0.ts.tmp"})


class CleanupOffTests(RecorderCase):
    hls = "hls_fragment 2; hls_window 6; hls_cleanup off;"

    def test_nothing_is_removed(self):
        self.send(stream(20.1))
        names = listing(self.root)
        self.assertEqual({f"live/s-{i}.ts" for i in range(10)} <= names, True)


class DisposeTests(RecorderCase):
    hls = "hls_fragment 2; hls_window 6; hls_dispose 3; hls_keys on;"

    def test_dispose_removes_everything_after_n_seconds(self):
        self.send(stream(12.1))
        self.unpublish()
        before = listing(self.root)
        self.assertIn("live/s.m3u8", before)
        self.assertTrue([f for f in before if f.endswith(".key")])
        self.clock.advance(2.9)
        self.assertEqual(listing(self.root), before)
        self.assertTrue(self.rec.dispose_pending)
        self.clock.advance(0.2)
        self.assertEqual(listing(self.root), set())
        self.assertEqual(self.disposed, [self.rec])
        self.assertIsNone(self.rec.segmenter)

    def test_republish_cancels_dispose(self):
        self.send(stream(5))
        self.unpublish()
        self.clock.advance(2)
        self.publish()
        self.assertFalse(self.rec.dispose_pending)
        self.clock.advance(10)
        self.assertIn("live/s.m3u8", listing(self.root))
        self.send(stream(5))
        self.assertEqual(self.disposed, [])
        uris = [e["uri"] for e in self.playlist()["entries"]]
        self.assertEqual(uris[-2:], ["s-3.ts", "s-4.ts"])

    def test_no_dispose_while_publishing(self):
        self.send(stream(5))
        self.clock.advance(100)
        self.assertIn("live/s.m3u8", listing(self.root))

    def test_encrypted_segments_on_disk(self):
        self.send(stream(5))
        with open(self.path("s-0.key"), "rb") as f:
            key = f.read()
        self.assertEqual(key, b"\x07" * 16)
        with open(self.path("s-1.ts"), "rb") as f:
            data = f.read()
        plain = KeyTests.decrypt(None, key, (1).to_bytes(16, "big"), data)
        self.assertEqual(plain[0], 0x47)
        self.assertEqual(len(plain) % 188, 0)
        self.assertIn('URI="s-0.key",IV=0x00000000000000000000000000000001', open(self.path("s.m3u8")).read())


class DisposeOffTests(RecorderCase):
    hls = "hls_fragment 2; hls_dispose 0;"

    def test_files_stay(self):
        self.send(stream(5))
        self.unpublish()
        self.clock.advance(10000)
        self.assertIn("live/s.m3u8", listing(self.root))
        self.assertFalse(self.rec.dispose_pending)


class HookTests(RecorderCase):
    extra = "http_hooks { enabled on; on_hls http://127.0.0.1:9/hls; on_hls_notify http://127.0.0.1:9/n/[ts_url]; }"

    def setUp(self):
        super().setUp()
        self.ctx.hooks = self.hooks = FakeHooks()

    def test_on_hls_and_notify_per_segment(self):
        self.send(stream(5))
        self.unpublish()
        calls = self.hooks.calls
        self.assertEqual([c[0] for c in calls], ["on_hls", "on_hls_notify"] * 3)
        first = calls[0]
        self.assertIs(first[1], self.client)
        self.assertEqual(first[2:], ("on_hls", self.path("s-0.ts"), "s-0.ts", self.path("s.m3u8"),
                                     "live/s.m3u8", 0, 2.0)[1:])
        self.assertEqual(calls[1], ("on_hls_notify", self.client, "s-0.ts"))
        last = calls[4]
        self.assertEqual((last[6], last[7]), (2, 1.014))

    def test_hooks_come_after_the_files(self):
        seen = []

        def on_hls(client, file, url, m3u8, m3u8_url, seq_no, duration):
            seen.append((os.path.exists(file), url in open(m3u8).read()))
            return defer.succeed(True)

        self.hooks.on_hls = on_hls
        self.send(stream(5))
        self.assertEqual(seen, [(True, True), (True, True)])


class NoNotifyTests(RecorderCase):
    extra = "http_hooks { enabled on; on_hls http://127.0.0.1:9/hls; }"

    def test_notify_only_when_configured(self):
        self.ctx.hooks = hooks = FakeHooks()
        self.send(stream(5))
        self.assertEqual([c[0] for c in hooks.calls], ["on_hls", "on_hls"])


class RealHooksTests(RecorderCase):
    extra = "http_hooks { enabled on; on_hls http://127.0.0.1:9/hls; }"

    def test_on_hls_body(self):
        from srs_twisted.policy.hooks import HooksPolicy

        from ..policy.common import ScriptedHttp

        http = ScriptedHttp(self.clock)
        self.ctx.hooks = HooksPolicy(self.ctx, client=http, cwd="/srv")
        self.send(stream(3))
        self.assertEqual(http.urls(), ["http://127.0.0.1:9/hls"])
        body = json.loads(http.requests[0][2])
        self.assertEqual(body["action"], "on_hls")
        self.assertEqual(body["client_id"], "pub00001")
        self.assertEqual((body["app"], body["stream"], body["param"]), ("live", "s", "?k=v"))
        self.assertEqual(body["duration"], 2.0)
        self.assertEqual(body["file"], self.path("s-0.ts"))
        self.assertEqual(body["url"], "live/s-0.ts")
        self.assertEqual(body["m3u8"], self.path("s.m3u8"))
        self.assertEqual(body["m3u8_url"], "live/s.m3u8")
        self.assertEqual(body["seq_no"], 0)
        self.assertEqual(body["cwd"], "/srv")
        self.assertEqual(body["stream_id"], self.source.id)


def failing_for(suffix, real):
    """A _write_all that fails for the file whose name ends with ``suffix``."""

    def write_all(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(suffix):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    return write_all


class ContinueOnErrorTests(RecorderCase):
    def test_a_failed_segment_is_left_out(self):
        self.patch(writer_mod, "_write_all", failing_for("s-1.ts.tmp", writer_mod._write_all))
        self.send(stream(9))
        info = self.playlist()
        self.assertEqual([e["uri"] for e in info["entries"]], ["s-0.ts", "s-2.ts", "s-3.ts"])
        self.assertEqual([e.get("discontinuity", False) for e in info["entries"]], [False, True, False])
        self.assertNotIn("live/s-1.ts", listing(self.root))
        self.assertNotIn("live/s-1.ts.tmp", listing(self.root))
        self.assertEqual(self.rec.errors, 1)
        self.assertTrue(self.rec.enabled)
        self.assertIn("No space left", self.rec.last_error)

    def test_failed_playlist_write_is_retried_at_the_next_segment(self):
        real = writer_mod.write_atomically
        calls = []

        def flaky(path, data, tmp_suffix=".tmp"):
            calls.append(path)
            if len(calls) == 1:
                raise OSError(errno.EIO, "I/O error")
            return real(path, data, tmp_suffix)

        self.patch(writer_mod, "write_atomically", flaky)
        self.send(stream(3))
        self.assertNotIn("live/s.m3u8", listing(self.root))
        self.send(stream(2, start=3000, headers=False))
        self.assertEqual([e["uri"] for e in self.playlist()["entries"]], ["s-0.ts", "s-1.ts"])

    def test_failed_key_leaves_its_segment_out(self):
        self.rec.stop()
        self.source.unregisterProducer()
        self.ctx.config = load_string(
            f"vhost __defaultVhost__ {{ hls {{ enabled on; hls_path {self.root}; hls_fragment 2; "
            f"hls_keys on; hls_fragments_per_key 2; }} }}")
        self.rec.dispose()
        self.rec = HlsRecorder(self.ctx, "__defaultVhost__", "live", "s", random_bytes=lambda n: b"\x01" * n)
        real = writer_mod.write_atomically

        def no_key_2(path, data, tmp_suffix=".tmp"):
            if path.endswith("s-2.key"):
                raise OSError(errno.EACCES, "Permission denied")
            return real(path, data, tmp_suffix)

        self.patch(writer_mod, "write_atomically", no_key_2)
        self.publish()
        self.send(stream(11))
        info = self.playlist()
        self.assertEqual([e["uri"] for e in info["entries"]], ["s-0.ts", "s-1.ts", "s-3.ts", "s-4.ts"])
        self.assertEqual([e["key"].split('"')[1] for e in info["entries"]], ["s-0.key", "s-0.key", "s-3.key", "s-4.key"])
        self.assertEqual(self.rec.errors, 1)


class IgnoreOnErrorTests(RecorderCase):
    hls = "hls_fragment 2; hls_window 60; hls_on_error ignore;"

    def test_hls_stops_for_this_publish(self):
        self.patch(writer_mod, "_write_all", failing_for("s-1.ts.tmp", writer_mod._write_all))
        self.send(stream(9))
        self.assertFalse(self.rec.enabled)
        self.assertEqual([e["uri"] for e in self.playlist()["entries"]], ["s-0.ts"])
        self.assertFalse([f for f in listing(self.root) if f.endswith(".tmp")])
        self.assertFalse(self.publisher.stopped)
        self.unpublish()
        self.publish()
        self.assertTrue(self.rec.enabled)
        self.send(stream(3))
        self.assertEqual(len(self.playlist()["entries"]), 2)


class DisconnectOnErrorTests(RecorderCase):
    hls = "hls_fragment 2; hls_on_error disconnect;"

    def test_the_publisher_is_kicked(self):
        self.patch(writer_mod, "_write_all", failing_for("s-1.ts.tmp", writer_mod._write_all))
        self.send(stream(5))
        self.assertFalse(self.publisher.stopped)
        self.clock.advance(0)
        self.assertTrue(self.publisher.stopped)


class WriteAtomicallyTests(unittest.TestCase):
    def test_replaces_whole(self):
        root = self.mktemp()
        path = os.path.join(root, "a", "b.m3u8")
        write_atomically(path, b"one")
        write_atomically(path, b"two")
        self.assertEqual(open(path, "rb").read(), b"two")
        self.assertEqual(os.listdir(os.path.dirname(path)), ["b.m3u8"])
