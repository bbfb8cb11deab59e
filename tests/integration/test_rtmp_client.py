"""The Twisted RTMP client against the real server: publish a real clip with
it, read it back with ffprobe, and play with it."""

from __future__ import annotations

import json

from twisted.internet import defer, reactor, task, utils
from twisted.trial import unittest

from srs_twisted.codec import flv
from srs_twisted.errors import Denied
from srs_twisted.live.packet import AUDIO, DATA, VIDEO, MediaPacket
from srs_twisted.rtmp import client
from srs_twisted.rtmp.session import media_packet

from . import harness as h


def clip_packets(path: str) -> list[MediaPacket]:
    reader = flv.FlvReader()
    with open(path, "rb") as f:
        tags = reader.feed(f.read())
    return [media_packet(t.tag_type, t.timestamp, bytes(t.payload)) for t in tags]


class TwistedClientTests(unittest.TestCase):
    timeout = 300

    def setUp(self):
        self.server = h.Server("vhost __defaultVhost__ { play { mw_latency 0; } }")
        self.addCleanup(self.server.stop)
        self.tc_url = f"rtmp://127.0.0.1:{self.server.port}/live"

    @defer.inlineCallbacks
    def pace(self, pub, packets):
        """Send packets in real time (as -re would), bounded by the clip length."""
        start = reactor.seconds()
        for p in packets:
            due = start + p.dts / 1000.0
            if due > reactor.seconds():
                yield task.deferLater(reactor, max(0.0, due - reactor.seconds()), lambda: None)
            pub.write(p)

    @defer.inlineCallbacks
    def test_publish_a_clip_and_ffprobe_reads_it(self):
        packets = clip_packets(h.clip("h264-aac", 12))
        self.assertEqual({p.kind for p in packets}, {AUDIO, VIDEO, DATA})
        pub = yield client.connect(reactor, self.tc_url, "fromclient", "publish")
        self.assertIn("NetStream.Publish.Start", pub.status_codes)
        sending = self.pace(pub, packets)
        # ffprobe runs as a child process while the reactor keeps publishing
        out, err, code = yield utils.getProcessOutputAndValue(
            h.ffprobe(),
            ["-v", "error", "-rw_timeout", "30000000", "-show_streams", "-of", "json", self.server.url("fromclient")],
        )
        self.assertEqual(code, 0, err)
        info = json.loads(out)
        streams = h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (320, 240))
        pub.transport.loseConnection()
        sending.cancel()
        sending.addErrback(lambda f: None)

    @defer.inlineCallbacks
    def test_play_with_the_client_receives_headers_and_frames(self):
        packets = clip_packets(h.clip("h264-aac", 12))
        pub = yield client.connect(reactor, self.tc_url, "s2", "publish")
        for p in packets[:60]:
            pub.write(p)
        got = []
        player = yield client.connect(reactor, self.tc_url, "s2", "play", on_packet=got.append)
        self.assertEqual(player.status_codes[:2], ["NetStream.Play.Reset", "NetStream.Play.Start"])
        for p in packets[60:120]:
            pub.write(p)
        end = reactor.seconds() + h.WAIT
        while reactor.seconds() < end:
            if any(p.dts >= packets[119].dts - 100 for p in got if p.kind == VIDEO):
                break
            yield task.deferLater(reactor, 0.05, lambda: None)
        seq = [p for p in got if p.sequence_header]
        self.assertEqual({p.kind for p in seq}, {AUDIO, VIDEO})
        self.assertEqual({p.codec for p in got if p.kind == VIDEO}, {"h264"})
        self.assertTrue(any(p.keyframe and not p.sequence_header for p in got))
        self.assertTrue(any(p.kind == VIDEO and p.dts >= packets[119].dts - 100 for p in got))
        player.close()
        pub.close()
        yield player.done

    @defer.inlineCallbacks
    def test_second_publish_is_denied(self):
        pub = yield client.connect(reactor, self.tc_url, "busy", "publish")
        with self.assertRaises(Denied):
            yield client.connect(reactor, self.tc_url, "busy", "publish")
        pub.close()
        yield pub.done
