"""Issue 9 item 11: the shared HTTP stream encoders decide which tracks a
stream has from metadata and the codecs seen (as HLS does), not from sequence
headers only: MP3 has none, and an H.264 + MP3 stream lost its audio in
HTTP-TS, for every later player too."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial import unittest

from srs_twisted.codec import flv
from srs_twisted.codec.mpegts import MP3_PID, TsDemuxer
from srs_twisted.http.stream import HttpStreamSink, stream_tracks
from srs_twisted.live.source import LiveSource, SourceOptions

from ..hls.media import metadata, mp3, video, video_sh


class Publisher:
    def stopProducing(self):
        pass

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass


class Player:
    """A sink's bytes, as one HTTP player gets them."""

    def __init__(self, source, fmt):
        self.data = bytearray()
        self.sink = HttpStreamSink(source, fmt, self.data.extend)
        self.consumer = source.subscribe(self.sink)

    def ts_codecs(self) -> list:
        demuxer = TsDemuxer()
        packets = demuxer.feed(bytes(self.data)) + demuxer.flush()
        return sorted({(p.kind, p.codec) for p in packets if not p.sequence_header})


def h264_mp3(seconds: float, meta: bool = True, start: int = 0) -> list:
    out = [metadata(7, 2)] if meta else []
    if start == 0:
        out.append(video_sh(0))
    for t in range(start, start + int(seconds * 1000), 40):
        out.append(video(t, key=t % 1000 == 0))
        if t % 80 == 0:
            out.append(mp3(t))
    return out


class TrackTests(unittest.TestCase):
    def setUp(self):
        self.source = LiveSource("__defaultVhost__", "live", "s", Clock(), SourceOptions(mw_latency=0))
        self.source.registerProducer(Publisher())

    def send(self, packets):
        for pkt in packets:
            self.source.write(pkt)

    def test_ts_of_h264_and_mp3_has_both_for_every_player(self):
        self.send(h264_mp3(2))
        first = Player(self.source, "ts")
        self.send(h264_mp3(2, meta=False, start=2000))
        second = Player(self.source, "ts")
        self.send(h264_mp3(2, meta=False, start=4000))
        h264, mp3_audio = (flv.TAG_VIDEO, "h264"), (flv.TAG_AUDIO, "mp3")
        self.assertEqual(first.ts_codecs(), sorted([h264, mp3_audio]))
        self.assertEqual(second.ts_codecs(), sorted([h264, mp3_audio]))
        # the PMT lists MP3 on its PID
        pids = {((b1 & 0x1F) << 8) | b2 for b1, b2 in zip(first.data[1::188], first.data[2::188])}
        self.assertIn(MP3_PID, pids)

    def test_mp3_frames_without_metadata_are_a_track(self):
        self.send(h264_mp3(1, meta=False))
        self.assertEqual(stream_tracks(self.source), ("h264", "mp3"))
        player = Player(self.source, "flv")
        self.send(h264_mp3(1, meta=False, start=1000))
        self.assertEqual(bytes(player.data[:3]), b"FLV")
        self.assertEqual(player.data[4] & 0x05, 0x05)  # TypeFlagsAudio and TypeFlagsVideo

    def test_metadata_announces_what_has_not_come_yet(self):
        self.send([metadata(7, 2), video_sh(0)])
        self.assertEqual(stream_tracks(self.source), ("h264", "mp3"))

    def test_a_later_player_gets_a_track_the_first_muxer_left_out(self):
        # Video first, nothing announced: the first TS player's muxer is video-only ...
        self.send([video_sh(0), video(0, key=True)])
        first = Player(self.source, "ts")
        # ... then MP3 frames show there is audio: a new player gets it.
        self.send(h264_mp3(2, meta=False, start=40))
        second = Player(self.source, "ts")
        self.send(h264_mp3(2, meta=False, start=2040))
        self.assertEqual(first.ts_codecs(), [(flv.TAG_VIDEO, "h264")])
        self.assertEqual(second.ts_codecs(), sorted([(flv.TAG_VIDEO, "h264"), (flv.TAG_AUDIO, "mp3")]))

    def test_a_republish_forgets_the_codecs(self):
        self.send(h264_mp3(1))
        self.source.unregisterProducer()
        self.assertEqual(stream_tracks(self.source), (None, None))
