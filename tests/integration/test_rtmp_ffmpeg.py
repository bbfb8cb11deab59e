"""The real server with real FFmpeg and ffprobe over RTMP on loopback."""

from __future__ import annotations

import os
import shutil
import tempfile

from twisted.trial import unittest

from . import harness as h


class ServerCase(unittest.TestCase):
    timeout = 300
    conf = "vhost __defaultVhost__ { play { mw_latency 100; } }"

    def setUp(self):
        h.ffmpeg(), h.ffprobe()
        self.server = h.Server(self.conf)
        self.addCleanup(self.server.stop)
        self.tmp = tempfile.mkdtemp(prefix="srs-out-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def start_publisher(self, kind="h264-aac", stream="livestream", loop=True):
        pub = h.publish(self.server.url(stream), h.clip(kind), loop=loop)
        self.addCleanup(h.stop_process, pub)
        return pub

    def assert_av(self, info, vcodec="h264", acodec="aac"):
        # exactly one video and one audio stream: no phantom data stream
        # (SRS stopped sending onStatus NetStream.Data.Start for this, its #3767)
        self.assertEqual(sorted(st["codec_type"] for st in info["streams"]), ["audio", "video"], info["streams"])
        streams = h.assert_streams(info, [("video", vcodec), ("audio", acodec)])
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (320, 240))
        self.assertEqual(streams["audio"]["codec_name"], acodec)
        self.assertEqual(int(streams["audio"]["sample_rate"]), 44100)
        self.assertEqual(streams["audio"]["channels"], 2)



class CoreFlows:
    """Publish-then-play checks run for every server chunk size."""

    def test_publish_then_play_shows_codecs_and_resolution(self):
        self.start_publisher()
        self.assert_av(h.probe(self.server.url()))  # ffprobe waits for the publisher

    def test_recording_of_10s_lasts_10s_with_both_streams(self):
        self.start_publisher()
        out = os.path.join(self.tmp, "rec.flv")
        result = h.record(self.server.url(), 10, out)
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace"))
        info = h.probe(out)
        self.assert_av(info)
        self.assertGreaterEqual(float(info["format"]["duration"]), 9.5)



class RtmpFFmpegTests(CoreFlows, ServerCase):
    def test_mp3_audio(self):
        self.start_publisher("h264-mp3")
        out = os.path.join(self.tmp, "rec.flv")
        result = h.record(self.server.url(), 4, out)
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace"))
        self.assert_av(h.probe(out), acodec="mp3")

    def test_hevc_over_enhanced_rtmp(self):
        self.start_publisher("hevc-aac")
        out = os.path.join(self.tmp, "rec.mkv")
        result = h.record(self.server.url(), 4, out)
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace"))
        self.assert_av(h.probe(out), vcodec="hevc")

    def test_the_wire_uses_the_default_chunk_size_60000(self):
        from .test_rtmp_robustness import assert_wire_chunk_size

        assert_wire_chunk_size(self, self.server.port, 60000)

    def test_second_publisher_refused(self):
        self.start_publisher()
        self.assert_av(h.probe(self.server.url()))  # the first one is live
        second = h.publish(self.server.url(), h.clip(), loop=True)
        self.addCleanup(h.stop_process, second)
        second.wait(h.WAIT * 2)
        self.assertNotEqual(second.returncode, 0)
        self.assertRegex(self.server.log(), r"\[Error\].* closed: .*busy")
        # the first publisher's stream still plays
        self.assert_av(h.probe(self.server.url()))

    def test_fifty_players_all_receive_the_stream(self):
        self.start_publisher()
        players = []
        for i in range(50):
            out = os.path.join(self.tmp, f"p{i}.flv")
            players.append((h.start_player(self.server.url(), 4, out), out))
        for proc, _ in players:
            self.addCleanup(h.stop_process, proc)
        for proc, out in players:
            proc.wait(180)
        for proc, out in players:
            self.assertEqual(proc.returncode, 0, proc.stderr.read().decode(errors="replace"))
            info = h.probe(out)
            h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
            self.assertGreaterEqual(float(info["format"]["duration"]), 3.5)

    def test_publisher_drops_mid_gop_and_republishes_while_players_wait(self):
        pub = self.start_publisher()
        self.assert_av(h.probe(self.server.url()))  # live
        out = os.path.join(self.tmp, "wait.flv")
        player = h.start_player(self.server.url(), 8, out)
        self.addCleanup(h.stop_process, player)
        h.wait_growing(out, 20_000)  # the player gets media (GOPs are 1 s: it stops mid-GOP)
        pub.kill()
        pub.wait(h.WAIT)
        self.server.wait_log(r"RTMP client closed .*type=fmle-publish")
        self.assertIsNone(player.poll(), "the player must keep waiting for a new publisher")
        self.start_publisher()
        player.wait(120)
        self.assertEqual(player.returncode, 0, player.stderr.read().decode(errors="replace"))
        info = h.probe(out)
        self.assert_av(info)
        # 8 s in all: the second publisher's media came to the same player.
        self.assertGreaterEqual(float(info["format"]["duration"]), 7.0)


class SmallChunkTests(CoreFlows, ServerCase):
    """The same flows with the server's chunk size at its minimum, 128."""

    conf = "chunk_size 128;\nvhost __defaultVhost__ { play { mw_latency 100; } }"

    def test_the_wire_uses_chunk_size_128(self):
        from .test_rtmp_robustness import assert_wire_chunk_size

        assert_wire_chunk_size(self, self.server.port, 128)
