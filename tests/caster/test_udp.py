"""The mpegts_over_udp caster without sockets: datagrams fed to UdpCaster on a fake clock
publish the output stream; loss, reordering and garbage cost frames, never an exception;
silence ends the publish; a refused publish is retried only after RETRY_AFTER."""

from __future__ import annotations

import random

from twisted.internet import defer, task
from twisted.trial import unittest

from srs_twisted.caster.udp import RETRY_AFTER, TAKEOVER_AFTER, UdpCaster
from srs_twisted.config import load_string
from srs_twisted.context import AllowAll, ServerContext
from srs_twisted.errors import Denied

from tests.srt import test_service as srt_fixtures

CONF = """
stream_caster { enabled on; caster mpegts_over_udp; listen 8935; output rtmp://127.0.0.1/live/livestream?k=v; }
vhost __defaultVhost__ { publish { normal_timeout 3000; } }
"""
PEER = ("127.0.0.1", 40000)


def datagrams():
    """A few seconds of H.264 + AAC as ffmpeg sends them: 1316-byte datagrams."""
    return srt_fixtures.ts_payloads()


class Counting(AllowAll):
    def __init__(self, deny=False):
        self.calls = []
        self.deny = deny

    def on_connect(self, client):
        self.calls.append(("connect", client.request.tc_url))
        return defer.succeed(None)

    def on_publish(self, client):
        self.calls.append(("publish", client.request.stream))
        return defer.fail(Denied("no")) if self.deny else defer.succeed(None)

    def on_unpublish(self, client):
        self.calls.append(("unpublish", client.request.stream))

    def on_close(self, client):
        self.calls.append(("close", client.ip))


class UdpCasterTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(100)
        config = load_string(CONF)
        self.policy = Counting()
        self.ctx = ServerContext(config, self.clock, self.policy)
        self.caster = UdpCaster(self.ctx, config.stream_casters[0])

    def source(self):
        return self.ctx.registry.get("__defaultVhost__", "live", "livestream")

    def active(self):
        source = self.source()
        return source is not None and source.active

    def send(self, data, peer=PEER):
        for d in data:
            self.caster.datagram(d, peer)

    def test_datagrams_publish_the_output_stream(self):
        self.send(datagrams())
        source = self.source()
        self.assertTrue(source.active)
        self.assertEqual((source.video_codec, source.audio_codec), ("h264", "aac"))
        (client,) = self.ctx.clients.values()
        self.assertEqual((client.ip, client.port, client.type, client.publish), ("127.0.0.1", 40000, "flash-publish", True))
        self.assertEqual((client.request.tc_url, client.request.stream, client.request.param),
                         ("rtmp://127.0.0.1/live?k=v", "livestream", "?k=v"))
        self.assertEqual(client.recv_bytes(), sum(map(len, datagrams())))
        self.assertEqual(self.policy.calls, [("connect", "rtmp://127.0.0.1/live?k=v"), ("publish", "livestream")])
        self.assertGreater(self.caster.session.publisher.packets, 30)

    def test_silence_ends_the_publish_and_the_next_datagram_starts_another(self):
        self.send(datagrams())
        self.clock.pump([1.0] * 2)
        self.assertTrue(self.active())
        self.clock.pump([1.0] * 2)  # normal_timeout 3 s
        self.assertFalse(self.active())
        self.assertEqual(self.ctx.clients, {})
        self.assertEqual(self.policy.calls[2:], [("unpublish", "livestream"), ("close", "127.0.0.1")])
        self.send(datagrams())
        self.assertTrue(self.active())

    def test_loss_reorder_duplicates_and_garbage_cost_frames_only(self):
        rng = random.Random(7)
        data = datagrams() * 3
        mangled = []
        for d in data:
            r = rng.random()
            if r < 0.1:
                continue  # lost
            if r < 0.2 and mangled:
                mangled.insert(len(mangled) - 1, d)  # reordered
                continue
            mangled.append(d)
            if r > 0.9:
                mangled.append(d)  # duplicated
            if r > 0.85:
                mangled.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 1500))))
        mangled += [b"", b"\x47", b"\x47" * 188, bytes(65000)]
        self.send(mangled)
        session = self.caster.session
        self.assertGreater(session.demuxer.errors, 0)
        self.assertGreater(session.publisher.packets, 0)
        self.assertTrue(self.active())
        self.send(datagrams())  # still a stream afterwards
        self.assertEqual(self.source().video_codec, "h264")

    def test_only_garbage_publishes_nothing_playable(self):
        rng = random.Random(3)
        self.send([bytes(rng.randrange(256) for _ in range(1316)) for _ in range(50)])
        self.assertEqual(self.caster.session.publisher.packets, 0)
        self.clock.pump([1.0] * 4)
        self.assertIsNone(self.caster.session)

    def test_one_sender_at_a_time_and_takeover_after_silence(self):
        self.send(datagrams()[:5])
        first = self.caster.session.demuxer
        self.send(datagrams(), ("127.0.0.1", 40001))  # while the first sends: dropped
        session = self.caster.session
        self.assertEqual((session.peer, session.foreign, session.demuxer), (PEER, len(datagrams()), first))
        self.clock.advance(TAKEOVER_AFTER)
        self.send(datagrams(), ("127.0.0.1", 40001))  # the first went silent: taken over
        self.assertIs(self.caster.session, session)  # the same publish goes on
        self.assertIsNot(session.demuxer, first)
        self.assertEqual(session.peer, ("127.0.0.1", 40001))
        self.assertTrue(self.active())
        self.assertEqual(self.source().video_codec, "h264")

    def test_refused_publish_is_retried_after_a_while(self):
        self.policy.deny = True
        self.send(datagrams())
        self.assertEqual(self.policy.calls, [("connect", "rtmp://127.0.0.1/live?k=v"), ("publish", "livestream"),
                                             ("close", "127.0.0.1")])
        self.assertEqual(self.ctx.clients, {})
        self.send(datagrams())
        self.assertEqual(len(self.policy.calls), 3)  # held off: no hook per datagram
        self.assertGreater(self.caster.dropped, 0)
        self.clock.advance(RETRY_AFTER)
        self.policy.deny = False
        self.send(datagrams())
        self.assertTrue(self.active())

    def test_kick_ends_and_holds_off(self):
        self.send(datagrams())
        (client,) = self.ctx.clients.values()
        client.kick()
        self.assertFalse(self.active())
        self.send(datagrams())
        self.assertFalse(self.active())
        self.clock.advance(RETRY_AFTER)
        self.send(datagrams())
        self.assertTrue(self.active())

    def test_busy_stream_is_refused(self):
        other = self.ctx.registry.fetch_or_create("__defaultVhost__", "live", "livestream")
        self.ctx.registry.publish(other, AllowAll())  # any producer: the stream is taken
        self.send(datagrams())
        self.assertEqual(self.ctx.clients, {})
        self.assertIsNone(self.caster.session)

    def test_unserved_vhost_is_refused(self):
        config = load_string(CONF.replace("127.0.0.1/live", "127.0.0.1/live?vhost=nope&x=1").replace(
            "vhost __defaultVhost__", "vhost only"))
        caster = UdpCaster(ServerContext(config, self.clock, self.policy), config.stream_casters[0])
        for d in datagrams():
            caster.datagram(d, PEER)
        self.assertIsNone(caster.session)
        self.assertEqual(self.policy.calls, [])
