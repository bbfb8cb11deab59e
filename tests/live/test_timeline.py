"""Per-player timelines (``time_jitter full``, issue 9 item 14): a player that
joins a stream 2,845 s old starts near 0 like SRS's, while the wire bytes stay
shared ("serialize once, write many")."""

from twisted.internet.task import Clock
from twisted.trial import unittest

from srs_twisted.codec import flv
from srs_twisted.http.stream import encode_flv, retime_flv
from srs_twisted.live.jitter import player_offset
from srs_twisted.live.packet import AUDIO, DATA, VIDEO, MediaPacket
from srs_twisted.live.source import LiveSource, SourceOptions
from srs_twisted.rtmp.chunk import ChunkReader
from srs_twisted.rtmp.protocol import media_encoder

AGE_MS = 2_845_000  # the stream age from the report
FRAME_MS = 200  # frames every 200 ms (under the 250 ms jitter limit)
GOP = 10  # a keyframe every 2 s


class DecodingSink:
    """A player: records its writes and decodes them into (type, ts, payload)."""

    def __init__(self):
        self.writes = []
        self.messages = []

    def write(self, data):
        self.writes.append(data)
        self.messages.extend(self.decode(data))

    def stream_published(self):
        pass

    def stream_unpublished(self):
        pass


class RtmpSink(DecodingSink):
    """What an RTMP player receives, decoded by a real chunk reader."""

    def __init__(self, chunk_size=128):
        super().__init__()
        self.wire_key = ("rtmp", chunk_size)
        self.encode, self.retime, self.chained = media_encoder(chunk_size)
        self.reader = ChunkReader()
        self.reader.chunk_size = chunk_size

    def decode(self, data):
        return [(m.type_id, m.timestamp, m.payload) for m in self.reader.feed(data)]


class FlvSink(DecodingSink):
    """What an HTTP-FLV player receives, decoded by the FLV reader."""

    wire_key = "flv"

    def __init__(self):
        super().__init__()
        self.encode = encode_flv
        self.retime = retime_flv
        self.reader = flv.FlvReader()
        self.reader.feed(flv.file_header())

    def decode(self, data):
        return [(t.tag_type, t.timestamp, t.payload) for t in self.reader.feed(data)]


class Publisher:
    def stopProducing(self):
        pass


def frame(dts, n, key=False):
    return MediaPacket(VIDEO, dts, b"\x17\x01" + n.to_bytes(4, "big") + bytes(300), codec="h264", keyframe=key)


def sound(dts, n):
    return MediaPacket(AUDIO, dts, b"\xaf\x01" + n.to_bytes(4, "big") + bytes(40), codec="aac")


class Stream:
    """A publisher whose frames carry their number, so a player's timestamps
    can be checked against the stream's for the very same frame."""

    def __init__(self, time_jitter="full", **kw):
        opts = SourceOptions(time_jitter=time_jitter, mw_latency=0, **kw)
        self.src = LiveSource("v", "live", "s", Clock(), opts)
        self.src.registerProducer(Publisher())
        self.n = 0
        self.dts = 0  # the publisher's own time
        self.src.write(MediaPacket(DATA, 0, flv.encode_metadata({"duration": 0})))
        self.src.write(MediaPacket(VIDEO, 0, b"\x17\x00\x00\x00\x00avcC", codec="h264", keyframe=True,
                                   sequence_header=True))
        self.src.write(MediaPacket(AUDIO, 0, b"\xaf\x00\x12\x10", codec="aac", sequence_header=True))
        self.stream_dts = {}  # frame number -> dts the source gave it

    def run_until(self, ms):
        while self.dts < ms:
            self.step()

    def step(self):
        self.n += 1
        v = frame(self.dts, self.n, key=self.n % GOP == 1)
        self.src.write(v)
        # audio a little behind the video frame, as FFmpeg interleaves it
        self.n += 1
        self.src.write(sound(self.dts - 20 if self.dts >= 20 else self.dts, self.n))
        self.dts += FRAME_MS

    def numbered(self, messages):
        """(frame number, player timestamp) of every numbered media message."""
        return [(int.from_bytes(p[2:6], "big"), ts) for t, ts, p in messages
                if t in (AUDIO, VIDEO) and p[1] == 1]


def ring_dts(src):
    return {int.from_bytes(p.payload[2:6], "big"): p.dts for p in src._ring
            if not p.is_data and not p.sequence_header}


class OffsetTests(unittest.TestCase):
    def test_new_player_of_an_old_stream_starts_at_10_ms(self):
        self.assertEqual(player_offset(AGE_MS), AGE_MS - 10)

    def test_player_from_the_start_keeps_the_stream_time(self):
        self.assertEqual(player_offset(0), 0)
        self.assertEqual(player_offset(240), 0)

    def test_restart_goes_on_10_ms_after_the_last_packet(self):
        # last packet at stream 5000 shown as 1000 (offset 4000); new stream at 0
        offset = player_offset(0, last_dts=5000, last_offset=4000)
        self.assertEqual(0 - offset, 1010)
        # a small step is kept
        self.assertEqual(5100 - player_offset(5100, 5000, 4000), 1100)


class LateJoinTests(unittest.TestCase):
    def late_player(self, sink, time_jitter="full"):
        s = Stream(time_jitter)
        s.run_until(AGE_MS)
        s.src.subscribe(sink)
        return s

    def check_late_join(self, sink):
        s = self.late_player(sink)
        kinds = [(t, ts) for t, ts, _ in sink.messages[:3]]
        got = s.numbered(sink.messages)
        first_ts = got[0][1]
        # metadata at 0, sequence headers at the first frame's time, which is near 0
        self.assertEqual(kinds[0], (DATA, 0))
        self.assertEqual(kinds[1:], [(VIDEO, first_ts), (AUDIO, first_ts)])
        self.assertLessEqual(min(ts for _, ts in got), 20)
        self.assertLess(first_ts, 1000)
        # every frame is exactly offset from the stream's time: steps are kept
        stream = ring_dts(s.src)
        offsets = {stream[n] - ts for n, ts in got}
        self.assertEqual(len(offsets), 1, offsets)
        # and live packets go on on the same timeline
        before = len(got)
        for _ in range(3 * GOP):
            s.step()
        got = s.numbered(sink.messages)
        self.assertGreater(len(got), before)
        stream = ring_dts(s.src)
        self.assertEqual({stream[n] - ts for n, ts in got if n in stream}, offsets)
        return s, offsets.pop()

    def test_rtmp_player_joining_at_2845_s_starts_near_0(self):
        self.check_late_join(RtmpSink())

    def test_rtmp_with_chunks_split(self):
        self.check_late_join(RtmpSink(chunk_size=128))  # 306-byte frames: 3 chunks each
        self.check_late_join(RtmpSink(chunk_size=4096))

    def test_flv_player_joining_at_2845_s_starts_near_0(self):
        self.check_late_join(FlvSink())

    def test_player_from_the_start_gets_the_stream_time(self):
        s = Stream()
        sink = RtmpSink()
        s.src.subscribe(sink)
        s.run_until(10_000)
        stream = ring_dts(s.src)
        self.assertEqual({stream[n] - ts for n, ts in s.numbered(sink.messages) if n in stream}, {0})

    def test_off_and_zero_keep_the_stream_time(self):
        # SRS's off keeps the publisher's time; zero subtracts the first
        # timestamp the stream had, which is ~0 for a publisher starting at 0.
        for mode in ("off", "zero"):
            sink = RtmpSink()
            s = self.late_player(sink, time_jitter=mode)
            got = s.numbered(sink.messages)
            self.assertGreater(min(ts for _, ts in got), AGE_MS - 3000, mode)

    def test_atc_keeps_the_stream_time(self):
        s = Stream(atc=True)
        s.run_until(AGE_MS)
        sink = FlvSink()
        s.src.subscribe(sink)
        self.assertGreater(min(ts for _, ts in s.numbered(sink.messages)), AGE_MS - 3000)


class SharingTests(unittest.TestCase):
    def test_rtmp_players_joining_at_different_times_share_bytes(self):
        s = Stream()
        s.run_until(AGE_MS)
        a = RtmpSink(chunk_size=4096)
        s.src.subscribe(a)
        s.run_until(AGE_MS + 3000)
        b = RtmpSink(chunk_size=4096)
        s.src.subscribe(b)
        s.step()
        gap = dict(s.numbered(a.messages))[s.n] - dict(s.numbered(b.messages))[s.n]
        self.assertGreater(gap, 2000)  # two timelines
        # from now on every write is one bytes object shared by both players
        for _ in range(2 * GOP):
            s.step()
            self.assertIs(a.writes[-1], b.writes[-1])
        # and both timelines are still right
        self.assertEqual(dict(s.numbered(a.messages))[s.n] - dict(s.numbered(b.messages))[s.n], gap)

    def test_flv_players_share_payloads_and_differ_only_in_tag_timestamps(self):
        s = Stream()
        s.run_until(AGE_MS)
        a, b = FlvSink(), FlvSink()
        s.src.subscribe(a)
        s.run_until(AGE_MS + 3000)
        s.src.subscribe(b)
        a.writes.clear()
        b.writes.clear()
        s.step()
        for x, y in zip(a.writes, b.writes):
            self.assertEqual(len(x), len(y))
            diff = {i for i in range(len(x)) if x[i] != y[i]}
            # only bytes 4..7 of a tag header (timestamp and its extension) differ
            tags = []
            pos = 0
            while pos < len(x):
                size = int.from_bytes(x[pos + 1 : pos + 4], "big")
                tags.append(pos)
                pos += 11 + size + 4
            allowed = {t + i for t in tags for i in range(4, 8)}
            self.assertTrue(diff and diff <= allowed, diff - allowed)

    def test_each_packet_is_encoded_once_whatever_the_number_of_timelines(self):
        s = Stream()
        s.run_until(10_000)
        sinks = []
        calls = []

        def counting(pkt):
            calls.append(pkt)
            return encode_flv(pkt)

        for i in range(5):
            sink = FlvSink()
            sink.encode = counting
            s.src.subscribe(sink)
            sinks.append(sink)
            s.run_until(10_000 + 2000 * (i + 1))
        calls.clear()
        s.step()
        # audio and video: FLV restamps headers over the shared payload and
        # never encodes a packet per player
        self.assertLessEqual(len(calls), 2)


class ContinuityTests(unittest.TestCase):
    def test_lagging_rtmp_player_jumps_without_a_gap_and_decodes(self):
        s = Stream(queue_length=5.0)
        s.run_until(100_000)
        sink = RtmpSink()
        c = s.src.subscribe(sink)
        c.pauseProducing()
        s.run_until(130_000)  # 30 s behind: it jumps to the newest GOP
        c.resumeProducing()
        self.assertGreater(c.dropped, 0)
        got = s.numbered(sink.messages)
        video_ts = [ts for n, ts in got if n % 2 == 1]
        steps = [b - a for a, b in zip(video_ts, video_ts[1:])]
        # the jump costs one 10 ms step, never a 25 s one
        self.assertEqual(sorted(set(steps)), [10, FRAME_MS])
        self.assertLess(max(ts for _, ts in got), 20_000)

    def test_republish_goes_on_after_the_last_timestamp(self):
        s = Stream()
        s.run_until(AGE_MS)
        sink = RtmpSink()
        s.src.subscribe(sink)
        s.run_until(AGE_MS + 4000)
        last = s.numbered(sink.messages)[-1][1]
        s.src.unregisterProducer()
        s.src.registerProducer(Publisher())
        s.dts = 0
        s.src.write(MediaPacket(VIDEO, 0, b"\x17\x00\x00\x00\x00avcC", codec="h264", keyframe=True,
                                sequence_header=True))
        for _ in range(GOP):
            s.step()
        after = [ts for _, ts, p in sink.messages if p[:2] == b"\x17\x00"][-1]
        self.assertGreater(after, last)
        self.assertLess(after, last + 100)

    def test_receive_audio_off_and_on_keeps_audio_timestamps_right(self):
        s = Stream()
        s.run_until(AGE_MS)
        sink = RtmpSink()
        c = s.src.subscribe(sink)
        offset = {ring_dts(s.src)[n] - ts for n, ts in s.numbered(sink.messages)}
        c.accept_audio = False
        for _ in range(5):
            s.step()
        c.accept_audio = True
        for _ in range(5):
            s.step()
        stream = ring_dts(s.src)
        self.assertEqual({stream[n] - ts for n, ts in s.numbered(sink.messages) if n in stream}, offset)


class HttpTsTests(unittest.TestCase):
    """HTTP-TS restamps PES headers and PCRs over the shared TS packets."""

    def test_ts_player_joining_late_starts_near_0_and_keeps_steps(self):
        from srs_twisted.codec.mpegts import TsDemuxer
        from srs_twisted.http.stream import HttpStreamSink

        src = LiveSource("v", "live", "s", Clock(), SourceOptions(mw_latency=0, gop_cache=False))
        src.registerProducer(Publisher())
        src.write(MediaPacket(AUDIO, 0, b"\xaf\x00\x12\x10", codec="aac", sequence_header=True))

        def aac(n):
            return MediaPacket(AUDIO, n * 23, b"\xaf\x01" + n.to_bytes(4, "big") + bytes(60), codec="aac")

        n = 0
        while n * 23 < 600_000:  # ten minutes of audio
            n += 1
            src.write(aac(n))
        late, early = bytearray(), bytearray()
        src.subscribe(HttpStreamSink(src, "ts", late.extend))
        for _ in range(50):
            n += 1
            src.write(aac(n))
        early_sink = HttpStreamSink(src, "ts", early.extend)
        early_sink.retime = None  # the stream's own time, for comparison
        src.subscribe(early_sink)
        for _ in range(50):
            n += 1
            src.write(aac(n))

        def frames(data):
            demux = TsDemuxer()
            pkts = demux.feed(bytes(data)) + demux.flush()
            self.assertEqual(demux.errors, 0, demux.last_error)
            return {int.from_bytes(p.payload[2:6], "big"): p.dts for p in pkts if not p.sequence_header}

        got, stream = frames(late), frames(early)
        self.assertLessEqual(min(got.values()), 20)
        self.assertGreater(min(stream.values()), 590_000)
        common = set(got) & set(stream)
        self.assertGreater(len(common), 40)
        self.assertEqual(len({stream[k] - got[k] for k in common}), 1)

    def test_shift_moves_pts_and_pcr_and_copies_only_the_first_packets(self):
        from srs_twisted.codec import mpegts

        mux = mpegts.TsMuxer(has_video=False)
        mux.mux(MediaPacket(AUDIO, 0, b"\xaf\x00\x12\x10", codec="aac", sequence_header=True))
        data = mux.mux(MediaPacket(AUDIO, 5000, b"\xaf\x01" + bytes(1000), codec="aac"))
        pieces = mpegts.shift_timestamps(data, 4990 * 90)
        out = b"".join(pieces)
        self.assertEqual(len(out), len(data))

        def fields(ts):
            for pos in range(0, len(ts), 188):
                if ts[pos + 1] & 0x40 and ts[pos + 2] != 0 and ts[pos + 1] & 0x1F == 1:
                    af = ts[pos + 4]
                    pcr = int.from_bytes(ts[pos + 6:pos + 12], "big") >> 15
                    pes = pos + 5 + af
                    return pcr, mpegts.decode_timestamp(ts, pes + 9)

        self.assertEqual(fields(data), (5000 * 90, 5000 * 90))
        self.assertEqual(fields(out), (10 * 90, 10 * 90))
        # the payload after the PES's first packet is the shared bytes, not a copy
        self.assertIsInstance(pieces[-1], memoryview)
        self.assertIs(pieces[-1].obj, data)
