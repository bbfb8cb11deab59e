"""The live core: fan-out, GOP cache, headers, slow players, release."""

import struct

from twisted.internet.task import Clock
from twisted.trial import unittest

from srs_twisted.errors import StreamBusy
from srs_twisted.live.jitter import MixQueue, TimeJitter
from srs_twisted.live.packet import AUDIO, DATA, VIDEO, MediaPacket
from srs_twisted.live.registry import StreamRegistry
from srs_twisted.live.source import TRIM_SLACK, LiveSource, SourceOptions


class Sink:
    """Records what a player would be sent; the encoding names each packet."""

    wire_key = "test"

    def __init__(self):
        self.writes = []
        self.encoded = 0
        self.events = []

    def encode(self, pkt):
        self.encoded += 1
        return struct.pack(">BI", pkt.kind, pkt.dts) + b";"

    def write(self, data):
        self.writes.append(data)

    def packets(self):
        data = b"".join(self.writes)
        return [struct.unpack(">BI", data[i : i + 5]) for i in range(0, len(data), 6)]

    def stream_published(self):
        self.events.append("published")

    def stream_unpublished(self):
        self.events.append("unpublished")


def video(dts, key=False, sh=False):
    return MediaPacket(VIDEO, dts, b"v" * 100, codec="h264", keyframe=key or sh, sequence_header=sh)


def audio(dts, sh=False):
    return MediaPacket(AUDIO, dts, b"a" * 10, codec="aac", sequence_header=sh)


def meta():
    return MediaPacket(DATA, 0, b"meta")


class Publisher:
    stopped = False

    def stopProducing(self):
        self.stopped = True


def make_source(**kw):
    clock = Clock()
    opts = SourceOptions(time_jitter="off", mw_latency=0, **kw)
    return LiveSource("__defaultVhost__", "live", "s", clock, opts), clock


def publish_gop(src, start, frames=5, step=40):
    src.write(video(start, key=True))
    for i in range(1, frames):
        src.write(video(start + i * step))


class FanOutTests(unittest.TestCase):
    def test_headers_then_gop_cache_then_live(self):
        src, _ = make_source()
        src.registerProducer(Publisher())
        src.write(meta())
        src.write(video(0, sh=True))
        src.write(audio(0, sh=True))
        publish_gop(src, 0)
        publish_gop(src, 200)
        sink = Sink()
        src.subscribe(sink)
        got = sink.packets()
        # metadata (at its own time), video and audio sh (moved to the GOP start), the GOP
        self.assertEqual(got[:3], [(DATA, 0), (VIDEO, 200), (AUDIO, 200)])
        self.assertEqual([d for _, d in got[3:]], [200, 240, 280, 320, 360])
        src.write(video(400))
        self.assertEqual(sink.packets()[-1], (VIDEO, 400))

    def test_players_in_step_share_one_encoding(self):
        src, _ = make_source()
        src.registerProducer(Publisher())
        sinks = [Sink() for _ in range(50)]
        for s in sinks:
            src.subscribe(s)
        publish_gop(src, 0, frames=10)
        # each packet encoded once for the first sink's encoder, never by the others
        self.assertEqual(sinks[0].encoded, 10)
        self.assertEqual(sum(s.encoded for s in sinks[1:]), 0)
        for s in sinks:
            self.assertEqual(len(s.packets()), 10)
        # and the very same bytes object went to every player
        self.assertTrue(all(s.writes[-1] is sinks[0].writes[-1] for s in sinks))

    def test_merged_writes_by_count_and_latency(self):
        clock = Clock()
        src = LiveSource("v", "a", "s", clock, SourceOptions(time_jitter="off", mw_latency=350, mw_msgs=8))
        src.registerProducer(Publisher())
        sink = Sink()
        src.subscribe(sink)
        for i in range(7):
            src.write(audio(i * 23))
        self.assertEqual(sink.writes, [])
        src.write(audio(7 * 23))
        self.assertEqual(len(sink.writes), 1)
        self.assertEqual(len(sink.packets()), 8)
        src.write(audio(500))
        clock.advance(0.349)
        self.assertEqual(len(sink.writes), 1)
        clock.advance(0.002)
        self.assertEqual(len(sink.writes), 2)

    def test_a_write_per_video_frame_with_the_audio_before_it(self):
        clock = Clock()
        src = LiveSource("v", "a", "s", clock, SourceOptions(time_jitter="off", mw_by_frame=True))
        src.registerProducer(Publisher())
        sink = Sink()
        src.subscribe(sink)
        src.write(audio(0, sh=True))  # no video yet: audio goes at once
        self.assertEqual(len(sink.writes), 1)
        src.write(video(0, key=True, sh=True))
        src.write(video(0, key=True))
        self.assertEqual(len(sink.writes), 3)
        src.write(audio(10))
        src.write(audio(33))
        self.assertEqual(len(sink.writes), 3)  # audio waits for the next video frame ...
        src.write(video(40))
        self.assertEqual(len(sink.writes), 4)  # ... and goes out with it, in one write
        self.assertEqual(len(sink.packets()), 6)
        src.write(audio(56))
        clock.advance(0.039)
        self.assertEqual(len(sink.writes), 4)
        clock.advance(0.002)  # video stalls: the audio goes after FRAME_WAIT
        self.assertEqual(len(sink.writes), 5)

    def test_a_realtime_player_turns_merged_writes_off_while_it_plays(self):
        clock = Clock()
        src = LiveSource("v", "a", "s", clock, SourceOptions(time_jitter="off", mw_latency=350, mw_msgs=8))
        src.registerProducer(Publisher())
        merged, realtime = Sink(), Sink()
        realtime.realtime = True
        src.subscribe(merged)
        c = src.subscribe(realtime)
        for i in range(3):
            src.write(audio(i * 23))
            # every packet goes out at once, to both players
            self.assertEqual(len(realtime.packets()), i + 1)
            self.assertEqual(len(merged.packets()), i + 1)
        self.assertEqual(clock.getDelayedCalls(), [])
        src.unsubscribe(c)
        src.write(audio(3 * 23))
        self.assertEqual(len(merged.packets()), 3)  # merged again
        clock.advance(0.351)
        self.assertEqual(len(merged.packets()), 4)

    def test_new_player_without_gop_cache_waits_for_keyframe(self):
        src, _ = make_source(gop_cache=False)
        src.registerProducer(Publisher())
        src.write(video(0, sh=True))
        publish_gop(src, 0)
        sink = Sink()
        src.subscribe(sink)
        self.assertEqual(sink.packets(), [(VIDEO, 0)])  # just the sequence header
        src.write(video(200))
        src.write(audio(210))
        self.assertEqual(len(sink.packets()), 1)
        src.write(video(240, key=True))
        self.assertEqual(sink.packets()[-1], (VIDEO, 240))

    def test_a_player_may_skip_the_gop_cache_and_wait_for_the_next_keyframe(self):
        src, _ = make_source()
        src.registerProducer(Publisher())
        src.write(video(0, sh=True))
        src.write(audio(0, sh=True))
        publish_gop(src, 0)
        sink, cached = Sink(), Sink()
        src.subscribe(sink, gop_cache=False)
        src.subscribe(cached)
        self.assertEqual(sink.packets(), [(VIDEO, 0), (AUDIO, 0)])  # the sequence headers only
        self.assertEqual(len(cached.packets()), 2 + 5)
        src.write(video(200))
        src.write(audio(210))
        self.assertEqual(len(sink.packets()), 2)
        src.write(video(240, key=True))
        src.write(audio(250))
        self.assertEqual(sink.packets()[2:], [(VIDEO, 240), (AUDIO, 250)])
        self.assertEqual(len(src.gop_cache_packets()), 2)  # the cache itself goes on

    def test_gop_cache_max_frames_clears_cache(self):
        src, _ = make_source(gop_cache_max_frames=3)
        src.registerProducer(Publisher())
        publish_gop(src, 0, frames=5)
        self.assertEqual(src.gop_cache_packets(), [])
        publish_gop(src, 200, frames=2)
        self.assertEqual(len(src.gop_cache_packets()), 2)


class SlowPlayerTests(unittest.TestCase):
    def test_paused_player_catches_up_on_resume(self):
        src, _ = make_source()
        src.registerProducer(Publisher())
        sink = Sink()
        c = src.subscribe(sink)
        c.pauseProducing()
        publish_gop(src, 0)
        self.assertEqual(sink.writes, [])
        c.resumeProducing()
        self.assertEqual(len(sink.packets()), 5)

    def test_lagging_player_drops_whole_gops_and_memory_is_bounded(self):
        src, _ = make_source(queue_length=1.0)
        src.registerProducer(Publisher())
        src.write(video(0, sh=True))
        src.write(audio(0, sh=True))
        sink = Sink()
        c = src.subscribe(sink)
        sink.writes.clear()
        c.pauseProducing()
        for g in range(100):  # 100 GOPs of 25 frames, 1 s each
            publish_gop(src, g * 1000, frames=25)
            src.write(audio(g * 1000 + 5))
        # the ring keeps at most queue_length plus a GOP, plus the trim slack
        self.assertLessEqual(len(src._ring), 3 * 26 + TRIM_SLACK)
        self.assertGreater(c.dropped, 2000)
        c.resumeProducing()
        got = sink.packets()
        # sequence headers again, then a keyframe-started GOP: never half a GOP
        self.assertEqual([k for k, _ in got[:2]], [VIDEO, AUDIO])
        first_media_dts = got[2][1]
        self.assertEqual(first_media_dts % 1000, 0)
        self.assertEqual(got[-1], (AUDIO, 99005))

    def test_pure_audio_lagging_player_bounded(self):
        src, _ = make_source(queue_length=1.0)
        src.registerProducer(Publisher())
        c = src.subscribe(Sink())
        c.pauseProducing()
        for i in range(10000):
            src.write(audio(i * 23))
        self.assertLess(len(src._ring), 200)

    def test_receive_video_false_filters(self):
        src, _ = make_source()
        src.registerProducer(Publisher())
        sink = Sink()
        c = src.subscribe(sink)
        c.accept_video = False
        src.write(video(0, key=True))
        src.write(audio(5))
        self.assertEqual(sink.packets(), [(AUDIO, 5)])

    def test_video_back_on_after_a_filter_is_shared_again(self):
        # ``filtered`` is state kept by the setters: turning a kind back on must put the
        # player back with the others (the shared bytes), getting both kinds.
        src, _ = make_source()
        src.registerProducer(Publisher())
        sink = Sink()
        c = src.subscribe(sink)
        self.assertFalse(c.filtered)
        c.accept_video = False
        self.assertTrue(c.filtered)
        src.write(video(0, key=True))
        src.write(audio(5))
        c.accept_video = True
        self.assertFalse(c.filtered)
        c.accept_audio = False
        self.assertTrue(c.filtered)
        c.accept_audio = True
        self.assertFalse(c.filtered)
        src.write(video(40))
        src.write(audio(45))
        self.assertEqual(sink.packets(), [(AUDIO, 5), (VIDEO, 40), (AUDIO, 45)])


class PublishTests(unittest.TestCase):
    def test_second_publisher_refused(self):
        src, _ = make_source()
        src.registerProducer(Publisher())
        self.assertRaises(StreamBusy, src.registerProducer, Publisher())

    def test_republish_players_wait_and_get_new_stream(self):
        src, _ = make_source()
        src.registerProducer(Publisher())
        src.write(video(0, sh=True))
        publish_gop(src, 0)
        sink = Sink()
        src.subscribe(sink)
        src.unregisterProducer()
        self.assertEqual(sink.events, ["unpublished"])
        self.assertIsNone(src.video_sh)
        self.assertEqual(src.gop_cache_packets(), [])
        n = len(sink.packets())
        src.registerProducer(Publisher())
        src.write(video(0, sh=True))
        publish_gop(src, 0)
        self.assertEqual(sink.events, ["unpublished", "published"])
        self.assertEqual(len(sink.packets()), n + 6)

    def test_registry_releases_idle_sources(self):
        reg = StreamRegistry(Clock(), lambda v: SourceOptions(mw_latency=0))
        for i in range(10000):
            src = reg.fetch_or_create("v", "live", "s")
            reg.publish(src, Publisher())
            src.write(video(i, key=True))
            reg.unpublish(src)
        self.assertEqual(len(reg), 0)
        src = reg.fetch_or_create("v", "live", "s")
        c = src.subscribe(Sink())
        self.assertEqual(len(reg), 1)
        c.close()
        self.assertEqual(len(reg), 0)

    def test_observers_hear_publish_and_unpublish(self):
        reg = StreamRegistry(Clock())
        heard = []

        class Obs:
            def source_published(self, s):
                heard.append(("pub", s.url))

            def source_unpublished(self, s):
                heard.append(("unpub", s.url))

        reg.observers.append(Obs())
        src = reg.fetch_or_create("v", "a", "s")
        reg.publish(src, Publisher())
        reg.unpublish(src)
        self.assertEqual(heard, [("pub", "v/a/s"), ("unpub", "v/a/s")])


class JitterTests(unittest.TestCase):
    def correct(self, mode, stamps, kind=VIDEO):
        j = TimeJitter(mode)
        return [j.correct(MediaPacket(kind, t, b"")) for t in stamps]

    def test_full_starts_near_zero_and_smooths_jumps(self):
        self.assertEqual(
            self.correct("full", [34000, 34040, 34080, 90000, 90040, 89990]),
            [9, 49, 89, 99, 139, 89],
        )

    def test_full_stamps_data_zero(self):
        self.assertEqual(self.correct("full", [5000], kind=DATA), [0])

    def test_zero_and_off(self):
        self.assertEqual(self.correct("zero", [1000, 1040, 900]), [0, 40, -100])
        self.assertEqual(self.correct("off", [1000, 1040, 900]), [1000, 1040, 900])

    def test_mix_queue_interleaves_by_dts(self):
        q = MixQueue()
        out = []
        for p in [video(0), video(40), video(80), audio(10), audio(50), video(120), audio(90)]:
            out.extend(q.push(p))
        out.extend(q.drain())
        self.assertEqual([p.dts for p in out], [0, 10, 40, 50, 80, 90, 120])

    def test_source_applies_jitter_once(self):
        clock = Clock()
        src = LiveSource("v", "a", "s", clock, SourceOptions(mw_latency=0))
        src.registerProducer(Publisher())
        a, b = Sink(), Sink()
        src.subscribe(a)
        src.subscribe(b)
        src.write(video(50000, key=True))
        src.write(video(50040))
        self.assertEqual(a.packets(), [(VIDEO, 9), (VIDEO, 49)])
        self.assertEqual(a.packets(), b.packets())


class AtcAndMixTests(unittest.TestCase):
    def source(self, **kw):
        src = LiveSource("v", "a", "s", Clock(), SourceOptions(mw_latency=0, **kw))
        src.registerProducer(Publisher())
        sink = Sink()
        src.subscribe(sink)
        return src, sink

    def test_atc_keeps_absolute_timestamps(self):
        src, sink = self.source(atc=True)
        src.write(video(50000, key=True))
        src.write(video(90000))
        self.assertEqual(sink.packets(), [(VIDEO, 50000), (VIDEO, 90000)])

    def test_atc_auto_follows_bravo_atc_metadata(self):
        from srs_twisted.codec import amf0

        src, sink = self.source(atc_auto=True)
        src.write(MediaPacket(DATA, 0, amf0.encode_many("onMetaData", amf0.ECMAArray({"bravo_atc": "true"}))))
        src.write(video(50000, key=True))
        self.assertEqual(sink.packets()[-1], (VIDEO, 50000))

    def test_mix_correct_interleaves_at_the_source(self):
        src, sink = self.source(mix_correct=True, time_jitter="off")
        for p in [video(0, key=True), video(40), audio(10), audio(30), video(80), audio(60)]:
            src.write(p)
        src.unregisterProducer()  # drains what the mix queue still holds
        self.assertEqual([d for _, d in sink.packets()], [0, 10, 30, 40, 60, 80])


class TapTests(unittest.TestCase):
    def test_taps_see_headers_then_every_packet_and_a_broken_tap_is_removed(self):
        src, _ = make_source()
        src.registerProducer(Publisher())
        src.write(video(0, sh=True))
        src.write(audio(0, sh=True))
        seen = []
        src.add_tap(seen.append)

        def broken(pkt):
            raise RuntimeError("disk full")

        from srs_twisted import log

        events = []
        self.addCleanup(log.capture(events))
        before = log.unexpected_errors()
        src.add_tap(broken, replay_headers=False)
        src.write(video(0, key=True))
        src.write(audio(10))
        msgs = [msg for _, _, msg in events]
        self.assertTrue(msgs[0].startswith(f"[unexpected-error] stream {src.url}: tap "), msgs)
        self.assertTrue(msgs[0].endswith("failed and was removed: RuntimeError: disk full"), msgs)
        self.assertIn("[unexpected-error] Traceback (most recent call last):", msgs)
        self.assertEqual(log.unexpected_errors(), before + 1)
        self.assertEqual([(p.kind, p.sequence_header) for p in seen],
                         [(VIDEO, True), (AUDIO, True), (VIDEO, False), (AUDIO, False)])
        self.assertEqual(src._taps, [seen.append])
        src.remove_tap(seen.append)
        src.write(video(40))
        self.assertEqual(len(seen), 4)


class PlayersChangedTests(unittest.TestCase):
    def test_observers_hear_players_come_and_go(self):
        reg = StreamRegistry(Clock(), lambda v: SourceOptions(mw_latency=0))
        counts = []

        class Edge:
            def source_published(self, s):
                pass

            def source_unpublished(self, s):
                pass

            def source_players_changed(self, s):
                counts.append(len(s.consumers))

        reg.observers.append(Edge())
        src = reg.fetch_or_create("v", "live", "s")
        a = src.subscribe(Sink())
        b = src.subscribe(Sink())
        a.close()
        b.close()
        self.assertEqual(counts, [1, 2, 1, 0])


class StatsTests(unittest.TestCase):
    def test_gop_length_counts_frames_between_keyframes(self):
        src, _ = make_source()
        src.registerProducer(Publisher())
        publish_gop(src, 0, frames=5)
        self.assertEqual(src.stats.gop_frames, 0)  # one keyframe so far
        publish_gop(src, 200, frames=3)
        self.assertEqual(src.stats.gop_frames, 5)
        publish_gop(src, 400, frames=2)
        self.assertEqual(src.stats.gop_frames, 3)
        self.assertEqual(src.stats.frames, 10)
