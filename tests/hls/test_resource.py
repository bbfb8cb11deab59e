"""LL-HLS served from memory (srs_twisted/hls/resource.py): blocking
playlist reloads and preload hints with twisted.web's DummyRequest and a
task.Clock, the recorder feeding it from a live source, and the HTTP root
routing to it."""

from __future__ import annotations

import os

from twisted.internet.task import Clock
from twisted.trial import unittest
from twisted.web import server
from twisted.web.test.requesthelper import DummyRequest

from srs_twisted.config import load_string
from srs_twisted.context import ServerContext
from srs_twisted.hls.resource import HlsMemory, hls_memory
from srs_twisted.hls.service import HlsObserver
from srs_twisted.http.server import HttpRoot

from .llhls_rules import check_ll_playlist, find_part, next_part
from .media import stream
from .test_writer import Publisher, listing


def request(path: str, **args) -> DummyRequest:
    req = DummyRequest([p.encode() for p in path.strip("/").split("/")])
    req.path = path.encode()
    req.uri = req.path
    for k, v in args.items():
        req.addArg(k.encode(), str(v).encode())
    return req


def render(resource, req):
    """Render like twisted.web does: bytes are written and finished at once."""
    result = resource.render(req)
    if result is not server.NOT_DONE_YET:
        req.write(result)
        req.finish()
    return result


def body(req) -> bytes:
    return b"".join(req.written)


class FakePlaylist:
    """The states a LowLatencyStream is told about, without a segmenter:
    segments of 4 parts of 0.5 s, part numbers counting from 0."""

    def __init__(self, stream, parts_per_segment=4, target=2):
        self.stream = stream
        self.per = parts_per_segment
        self.target = target
        self.parts = []  # (msn, index)
        self.closed = -1

    def add_part(self, close=False):
        msn = self.closed + 1
        index = sum(1 for m, _ in self.parts if m == msn)
        number = len(self.parts)
        self.parts.append((msn, index))
        self.stream.add_part(number, f"/live/s-part{number}.m4s", b"part%d" % number)
        if close or index + 1 == self.per:
            self.closed = msn
        self.publish()

    def publish(self):
        self.stream.update(
            f"#EXTM3U\n# closed={self.closed} last={self.parts[-1]}\n", self.closed, self.parts[-1],
            len(self.parts), f"/live/s-part{len(self.parts)}.m4s", self.target, max(0, len(self.parts) - 24))


class BlockingReloadTests(unittest.TestCase):
    def setUp(self):
        self.clock = Clock()
        self.memory = HlsMemory(self.clock, max_waiters=5)
        self.stream = self.memory.open_stream("/live/s.m3u8", 0.5, 2)
        self.fake = FakePlaylist(self.stream)
        for _ in range(6):  # segment 0 whole, segment 1 has two parts
            self.fake.add_part()

    def get(self, path="/live/s.m3u8", **args):
        req = request(path, **args)
        resource = self.memory.resource_for(req)
        self.assertIsNotNone(resource, path)
        return req, render(resource, req)

    def test_plain_request_answers_at_once(self):
        req, result = self.get()
        self.assertEqual(result, self.stream.text)
        self.assertEqual(req.responseHeaders.getRawHeaders(b"content-type"), [b"application/vnd.apple.mpegurl"])
        self.assertEqual(req.responseHeaders.getRawHeaders(b"access-control-allow-origin"), [b"*"])

    def test_no_playlist_yet_is_404(self):
        stream = self.memory.open_stream("/live/t.m3u8", 0.5, 2)
        self.assertEqual(stream.text, b"")
        req, _ = self.get("/live/t.m3u8")
        self.assertEqual(req.responseCode, 404)

    def test_waits_for_the_part_and_answers_when_it_is_added(self):
        req, result = self.get(_HLS_msn=1, _HLS_part=2)
        self.assertIs(result, server.NOT_DONE_YET)
        self.clock.advance(1.0)
        self.assertEqual(req.finished, 0)
        self.fake.add_part()  # part 2 of segment 1
        self.assertEqual(req.finished, 1)
        self.assertEqual(req.responseCode, 200)
        self.assertIn(b"last=(1, 2)", body(req))
        self.assertEqual(self.stream.waiting, 0)
        # no polling: nothing left on the clock
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_only_the_satisfied_requests_are_answered(self):
        first, _ = self.get(_HLS_msn=1, _HLS_part=2)
        second, _ = self.get(_HLS_msn=1, _HLS_part=3)
        self.fake.add_part()
        self.assertEqual((first.finished, second.finished), (1, 0))
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.fake.add_part()
        self.assertEqual(second.finished, 1)

    def test_already_there_answers_at_once(self):
        for args in ({"_HLS_msn": 1, "_HLS_part": 1}, {"_HLS_msn": 0}, {"_HLS_msn": 0, "_HLS_part": 9}):
            req, result = self.get(**args)
            self.assertEqual(result, self.stream.text, args)

    def test_part_past_the_last_of_a_segment_is_part_0_of_the_next(self):
        # segment 0 has parts 0-3: part 4 of segment 0 is part 0 of segment 1 (there)
        req, result = self.get(_HLS_msn=0, _HLS_part=4)
        self.assertEqual(result, self.stream.text)
        for _ in range(2):
            self.fake.add_part()  # segment 1 closes with 4 parts
        req, result = self.get(_HLS_msn=1, _HLS_part=4)
        self.assertIs(result, server.NOT_DONE_YET)
        self.fake.add_part()  # part 0 of segment 2
        self.assertEqual(req.finished, 1)
        self.assertIn(b"last=(2, 0)", body(req))

    def test_msn_alone_waits_for_the_whole_segment(self):
        req, result = self.get(_HLS_msn=1)
        self.assertIs(result, server.NOT_DONE_YET)
        self.fake.add_part()
        self.assertEqual(req.finished, 0)
        self.fake.add_part()
        self.assertEqual(req.finished, 1)
        self.assertIn(b"closed=1", body(req))

    def test_times_out_after_three_target_durations(self):
        req, _ = self.get(_HLS_msn=1, _HLS_part=2)
        self.clock.advance(5.99)
        self.assertEqual(req.finished, 0)
        self.clock.advance(0.02)
        self.assertEqual(req.finished, 1)
        self.assertEqual(req.responseCode, 503)
        self.assertEqual(self.stream.waiting, 0)
        self.fake.add_part()  # nothing more happens to it
        self.assertEqual(len(req.written), 1)

    def test_bad_requests(self):
        cases = [
            {"_HLS_part": 1},  # part without msn
            {"_HLS_msn": "x"},
            {"_HLS_msn": -1},
            {"_HLS_msn": 1, "_HLS_part": "1.5"},
            {"_HLS_msn": 3},  # beyond the last whole segment (0) + 2
            {"_HLS_msn": 3, "_HLS_part": 0},
        ]
        for args in cases:
            req, _ = self.get(**args)
            self.assertEqual(req.responseCode, 400, args)
        for args in ({"_HLS_msn": 2}, {"_HLS_msn": 1, "_HLS_part": 3}, {"_HLS_msn": 2, "_HLS_part": 3}):
            req, result = self.get(**args)
            self.assertIs(result, server.NOT_DONE_YET, args)

    def test_a_part_past_what_a_segment_holds_waits_for_the_segments_end(self):
        # hls.js without lowLatencyMode asks for the next segment with the previous one's last
        # part index: _HLS_msn=2&_HLS_part=7 after a segment of 8 parts.  A 2 s segment holds 4
        # parts of 0.5 s: part 7 of segment 2 is its end, as _HLS_msn=2 alone (was a 400).
        self.assertEqual(self.stream.parts_per_segment, 4)
        held = []
        for args in ({"_HLS_msn": 1, "_HLS_part": 8}, {"_HLS_msn": 2, "_HLS_part": 7},
                     {"_HLS_msn": 2, "_HLS_part": 40}):
            req, result = self.get(**args)
            self.assertIs(result, server.NOT_DONE_YET, args)
            held.append(req)
        for _ in range(3):
            self.fake.add_part()  # segment 1 ends (parts 0-3) and part 0 of segment 2 comes
        self.assertEqual([r.finished for r in held], [1, 0, 0])
        for _ in range(4):
            self.fake.add_part()  # segment 2 ends, part 0 of segment 3
        self.assertEqual([r.finished for r in held], [1, 1, 1])
        self.assertEqual([r.responseCode for r in held], [200, 200, 200])
        self.assertIn(b"last=(3, 0)", body(held[2]))

    def test_advance_part_limit_with_long_segments(self):
        # 4 s segments of 0.5 s parts: 8 parts a segment, the limit (6) applies within them
        stream = self.memory.open_stream("/live/t.m3u8", 0.5, 4)
        fake = FakePlaylist(stream, parts_per_segment=8, target=4)
        for _ in range(10):  # segment 0 whole, segment 1 has two parts: the last is (1, 1)
            fake.add_part()
        self.assertEqual(stream.parts_per_segment, 8)
        for args, code in (({"_HLS_msn": 2, "_HLS_part": 7}, 400), ({"_HLS_msn": 2, "_HLS_part": 6}, None),
                           ({"_HLS_msn": 1, "_HLS_part": 7}, None), ({"_HLS_msn": 2, "_HLS_part": 8}, None)):
            req, result = self.get("/live/t.m3u8", **args)
            if code is None:
                self.assertIs(result, server.NOT_DONE_YET, args)
            else:
                self.assertEqual(req.responseCode, code, args)

    def test_held_requests_are_bounded(self):
        held = [self.get(_HLS_msn=1, _HLS_part=3)[0] for _ in range(5)]
        req, _ = self.get(_HLS_msn=1, _HLS_part=3)
        self.assertEqual(req.responseCode, 503)
        self.assertEqual(self.stream.waiting, 5)
        # a client that leaves makes room
        held[0].processingFailed(Exception("gone"))
        self.assertEqual(self.stream.waiting, 4)
        self.assertEqual(len(self.clock.getDelayedCalls()), 4)
        req, result = self.get(_HLS_msn=1, _HLS_part=3)
        self.assertIs(result, server.NOT_DONE_YET)
        self.fake.add_part()
        self.fake.add_part()
        self.assertEqual([r.finished for r in held[1:]], [1, 1, 1, 1])
        self.assertEqual(self.stream.waiting, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_existing_part(self):
        req, result = self.get("/live/s-part3.m4s")
        self.assertEqual(result, b"part3")
        self.assertEqual(req.responseHeaders.getRawHeaders(b"content-type"), [b"video/mp4"])

    def test_hinted_part_waits(self):
        req, result = self.get("/live/s-part6.m4s")
        self.assertIs(result, server.NOT_DONE_YET)
        self.fake.add_part()
        self.assertEqual(body(req), b"part6")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        # the hint moved on
        self.assertIsNotNone(self.memory.resource_for(request("/live/s-part7.m4s")))

    def test_hinted_part_that_never_comes_is_404(self):
        req, _ = self.get("/live/s-part6.m4s")
        self.clock.advance(6.01)
        self.assertEqual(req.responseCode, 404)

    def test_other_unknown_parts_are_not_routed(self):
        self.assertIsNone(self.memory.resource_for(request("/live/s-part7.m4s")))
        self.assertIsNone(self.memory.resource_for(request("/live/other.m3u8")))

    def test_old_parts_are_pruned(self):
        for _ in range(30):
            self.fake.add_part()
        self.assertNotIn(0, self.stream.parts)
        self.assertIsNone(self.memory.resource_for(request("/live/s-part0.m4s")))
        self.assertIn(35, self.stream.parts)

    def test_segments_from_their_parts(self):
        self.stream.add_segment("/live/s-0.m4s", [0, 1, 2, 3])
        req, result = self.get("/live/s-0.m4s")
        self.assertEqual(result, b"part0part1part2part3")

    def test_close_answers_everything_with_404(self):
        playlist, _ = self.get(_HLS_msn=1, _HLS_part=3)
        part, _ = self.get("/live/s-part6.m4s")
        self.stream.close()
        self.assertEqual((playlist.responseCode, part.responseCode), (404, 404))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertIsNone(self.memory.resource_for(request("/live/s.m3u8")))

    def test_advance_part_limit(self):
        self.assertEqual(self.stream.advance_part_limit, 6)
        self.stream.part_target = 0.3
        self.assertEqual(self.stream.advance_part_limit, 10)
        self.stream.part_target = 1.0
        self.assertEqual(self.stream.advance_part_limit, 3)


class RecorderTests(unittest.TestCase):
    """The recorder feeds the memory from a live source."""

    hls = "hls_low_latency on; hls_part_duration 0.5; hls_fragment 2; hls_window 10; hls_dispose 5;"

    def setUp(self):
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        self.clock = Clock()
        text = f"vhost __defaultVhost__ {{ hls {{ enabled on; hls_path {self.root}; {self.hls} }} }}\n"
        self.ctx = ServerContext(load_string(text), self.clock)
        self.assertIsNone(self.ctx.hls_memory)
        self.observer = HlsObserver(self.ctx)
        self.ctx.registry.observers.append(self.observer)
        self.source = self.ctx.registry.fetch_or_create("__defaultVhost__", "live", "s")
        self.ctx.registry.publish(self.source, Publisher())
        self.packets = stream(20)
        self.sent = 0

    def send_until(self, dts: int) -> None:
        while self.sent < len(self.packets) and self.packets[self.sent].dts <= dts:
            self.source.write(self.packets[self.sent])
            self.sent += 1

    def get(self, path, **args):
        req = request(path, **args)
        found = self.ctx.hls_memory.resource_for(req)
        self.assertIsNotNone(found, path)
        return req, render(found, req)

    def test_memory_playlist_parts_and_disk(self):
        self.send_until(7000)
        memory = self.ctx.hls_memory
        self.assertIs(memory, hls_memory(self.ctx))
        req, text = self.get("/live/s.m3u8")
        info = check_ll_playlist(text.decode())
        self.assertEqual(info["media_sequence"], 0)
        # the disk has the plain playlist, the init and whole segments, no parts
        files = listing(self.root)
        self.assertIn("live/s/init.mp4", files)
        self.assertIn("live/s-2.m4s", files)
        self.assertFalse([f for f in files if "part" in f])
        with open(os.path.join(self.root, "live", "s.m3u8")) as f:
            self.assertNotIn("EXT-X-PART", f.read())
        # a listed part and a listed segment come from memory
        part = info["segments"][-1]["parts"][0]["uri"]
        req, data = self.get(f"/live/{part}")
        self.assertEqual(data[4:8], b"moof")
        req, data = self.get("/live/s-2.m4s")
        with open(os.path.join(self.root, "live", "s-2.m4s"), "rb") as f:
            self.assertEqual(data, f.read())

    def test_blocking_request_answers_when_the_part_is_complete(self):
        self.send_until(5000)
        _, text = self.get("/live/s.m3u8")
        info = check_ll_playlist(text.decode())
        msn, index = next_part(info)
        req, result = self.get("/live/s.m3u8", _HLS_msn=msn, _HLS_part=index)
        self.assertIs(result, server.NOT_DONE_YET)
        hint, hinted = self.get(f"/live/{info['hint']}")
        self.assertIs(hinted, server.NOT_DONE_YET)
        # frame by frame: it is answered with the packet that completes the part
        t = 5000
        while not req.finished:
            t += 1
            self.send_until(t)
            self.assertLess(t, 6000)
        answered = check_ll_playlist(body(req).decode())
        part = find_part(answered, msn, index)
        self.assertIsNotNone(part)
        # answered with the frame that starts where the part ends (it gives
        # the part's last frame its duration), not a frame later
        segment_start = sum(s["duration"] for s in answered["segments"] if s["msn"] < msn)
        before = sum(p["duration"] for p in (answered["open"] or answered["segments"][-1])["parts"][:index])
        self.assertEqual(t, round((segment_start + before + part["duration"]) * 1000))
        self.assertEqual(t, 5440)
        self.assertEqual(hint.finished, 1)
        self.assertEqual(body(hint)[4:8], b"moof")

    def test_republish_keeps_the_stream_and_dispose_closes_it(self):
        self.send_until(5000)
        memory = self.ctx.hls_memory
        ll = memory.streams["/live/s.m3u8"]
        self.ctx.registry.unpublish(self.source)
        self.source = self.ctx.registry.fetch_or_create("__defaultVhost__", "live", "s")
        self.ctx.registry.publish(self.source, Publisher())
        self.assertIs(memory.streams["/live/s.m3u8"], ll)
        for pkt in stream(5, start=100000):
            self.source.write(pkt)
        _, text = self.get("/live/s.m3u8")
        info = check_ll_playlist(text.decode())
        self.assertEqual(text.count(b"#EXT-X-DISCONTINUITY\n"), 1)
        waiting, _ = self.get("/live/s.m3u8", _HLS_msn=next_part(info)[0] + 1)
        self.ctx.registry.unpublish(self.source)
        self.clock.advance(5)
        self.assertEqual(waiting.responseCode, 404)
        self.assertNotIn("/live/s.m3u8", memory.streams)
        self.assertEqual(listing(self.root), set())

    def test_http_root_routes_to_memory_before_static_files(self):
        self.send_until(5000)
        root = HttpRoot(self.ctx, self.root)
        req = request("/live/s.m3u8")
        child = root.getChildWithDefault(b"live", req)
        self.assertTrue(child.isLeaf)
        check_ll_playlist(render(child, req).decode())
        # the init segment is a static file
        req = request("/live/s/init.mp4")
        child = root.getChildWithDefault(b"live", req)
        self.assertFalse(getattr(child, "isLeaf", False))
