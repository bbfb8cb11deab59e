"""The casters' shared publish (srs_twisted/caster/publisher.py): the output URL's stream
with SRS's substitutions, and a publish that holds packets (bounded) while the policy decides."""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.trial import unittest

from srs_twisted.caster.publisher import PENDING_LIMIT, CasterPublisher, output_request
from srs_twisted.config import load_string
from srs_twisted.context import AllowAll, ServerContext
from srs_twisted.errors import InvalidStreamName
from srs_twisted.live.packet import AUDIO, MediaPacket


class OutputRequestTests(unittest.TestCase):
    def test_fixed_and_templated_outputs(self):
        req = output_request("rtmp://127.0.0.1/live/livestream")
        self.assertEqual((req.host, req.port, req.vhost, req.app, req.stream, req.param, req.tc_url),
                         ("127.0.0.1", 1935, "127.0.0.1", "live", "livestream", "", "rtmp://127.0.0.1/live"))
        req = output_request("rtmp://127.0.0.1:19350/[app]/[stream]", "a/b", "cam.flv")
        self.assertEqual((req.port, req.app, req.stream), (19350, "a/b", "cam"))  # .flv dropped, as SRS
        req = output_request("rtmp://127.0.0.1/live/[stream]?vhost=v.example&token=1", stream="dev1")
        self.assertEqual((req.vhost, req.app, req.stream, req.param), ("v.example", "live", "dev1", "?vhost=v.example&token=1"))
        req = output_request("rtmp://h/[app]/x_[stream]_y", "live", "s")
        self.assertEqual(req.stream, "x_s_y")

    def test_unusable_outputs(self):
        for output, app, stream in (("rtmp://127.0.0.1/[app]/[stream]", "", "s.flv"),  # [app] stays: SRS's too
                                    ("rtmp://127.0.0.1/live/[stream]", "", ""),
                                    ("rtmp://127.0.0.1", "", ""),
                                    ("live/s", "", ""),
                                    ("rtmp://127.0.0.1/[app]/[stream]", "live", "../etc.flv")):
            with self.assertRaises(InvalidStreamName, msg=(output, app, stream)):
                output_request(output, app, stream)


class SlowPolicy(AllowAll):
    def __init__(self):
        self.pending = defer.Deferred()

    def on_publish(self, client):
        return self.pending


class PublisherTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.policy = SlowPolicy()
        self.ctx = ServerContext(load_string("vhost __defaultVhost__ {}"), self.clock, self.policy)
        self.ends = []
        self.pub = CasterPublisher(self.ctx, output_request("rtmp://127.0.0.1/live/s"), ("10.0.0.1", 5), "flash-publish",
                                   "rtmp", self.ends.append)

    def packet(self, size=1000, dts=0):
        return MediaPacket(AUDIO, dts, b"\xaf\x01" + bytes(size - 2), codec="aac")

    def test_packets_held_while_the_policy_decides_within_the_limit(self):
        self.pub.start()
        count = PENDING_LIMIT // 1000 + 50
        for i in range(count):
            self.pub.write(self.packet(dts=i))
        self.assertEqual(self.pub.packets, 0)
        self.assertFalse(self.pub.source.active)
        self.policy.pending.callback(None)
        self.assertTrue(self.pub.source.active)
        self.assertEqual(self.pub.packets, PENDING_LIMIT // 1000)  # the excess was dropped
        self.pub.write(self.packet())
        self.assertEqual(self.pub.packets, PENDING_LIMIT // 1000 + 1)

    def test_close_before_the_policy_answers(self):
        self.pub.start()
        self.pub.write(self.packet())
        self.pub.close()
        self.policy.pending.callback(None)  # too late: nothing is published
        self.assertIsNone(self.ctx.registry.get("__defaultVhost__", "live", "s"))
        self.assertEqual((self.ctx.clients, self.ends), ({}, []))

    def test_registry_stop_ends_once(self):
        self.pub.start()
        self.policy.pending.callback(None)
        self.pub.stopProducing()
        self.pub.stopProducing()
        self.assertEqual((self.ends, self.pub.refusal), (["stopped by the stream"], None))
        self.pub.close()
        self.pub.close()
        self.assertEqual(self.ctx.clients, {})
