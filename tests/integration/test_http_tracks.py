"""Issue 9 item 11: HTTP-TS (and HTTP-FLV) of an H.264 + MP3 stream carry
both tracks, for the first player and for a later one that shares the
cached muxer.  FFmpeg publishes (``-c:a libmp3lame -f flv``), ffprobe reads."""

from __future__ import annotations

import json

from twisted.internet import defer
from twisted.trial import unittest

from . import harness as h
from .receiver import ffprobe, until


def codecs(result) -> list:
    out, _, code = result
    if code != 0:
        return []
    return sorted(s.get("codec_name", "") for s in json.loads(out).get("streams", []))


class H264Mp3Tests(unittest.TestCase):
    timeout = 300

    def setUp(self):
        h.ffmpeg(), h.ffprobe()

    def start(self, ext: str) -> None:
        """The server with a mount for ``ext`` (one format per mount, as SRS), and the publisher."""
        self.port = h.free_port()
        self.server = h.Server(
            f"http_server {{ enabled on; listen 127.0.0.1:{self.port}; }}\n"
            f"vhost __defaultVhost__ {{ http_remux {{ enabled on; mount [vhost]/[app]/[stream].{ext}; }} }}"
        )
        self.addCleanup(self.server.stop)
        h.wait_port(self.port, proc=self.server.proc)
        self.pub = h.publish(self.server.url("s"), h.clip("h264-mp3"), loop=True)
        self.addCleanup(h.stop_process, self.pub)

    def url(self, ext: str) -> str:
        return f"http://127.0.0.1:{self.port}/live/s.{ext}"

    @defer.inlineCallbacks
    def test_ts_has_h264_and_mp3_for_the_first_and_a_later_player(self):
        self.start("ts")
        both = ["h264", "mp3"]
        # the first player that gets the stream (404 until it is published)
        first = yield until(lambda: ffprobe(self.url("ts")), lambda r: r[2] == 0, "the stream", timeout=90,
                            step=0.5)
        self.assertEqual(codecs(first), both, first[1][-1000:])
        # the publisher goes on; the next player (the first one gone) shares the cached muxer
        later = yield ffprobe(self.url("ts"))
        self.assertEqual(codecs(later), both, later[1][-1000:])

    @defer.inlineCallbacks
    def test_flv_has_h264_and_mp3(self):
        self.start("flv")
        result = yield until(lambda: ffprobe(self.url("flv")), lambda r: codecs(r) == ["h264", "mp3"],
                             "h264 + mp3 over HTTP-FLV", timeout=90, step=0.5)
        self.assertEqual(codecs(result), ["h264", "mp3"])
