"""The flv caster without sockets: HTTP requests written into its site's channel on a
StringTransport and a fake clock.  A POST (Content-Length or chunked) publishes for the
duration of the request; bad paths, methods and bodies get their status and a closed
connection; hooks refusals, busy streams and silence end the publish."""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from srs_twisted.caster.flv import FlvCaster, _Site, split_post_path
from srs_twisted.codec import flv
from srs_twisted.config import load_string
from srs_twisted.context import AllowAll, ServerContext
from srs_twisted.errors import Denied

from tests.codec.test_avc import AVCC_320x240

CONF = """
stream_caster { enabled on; caster flv; listen 8936; output rtmp://127.0.0.1/[app]/[stream]; }
vhost __defaultVhost__ { publish { normal_timeout 3000; } }
"""


def flv_body(frames=20) -> bytes:
    out = flv.file_header()
    out += flv.encode_tag(18, 0, flv.encode_metadata({"width": 320.0, "height": 240.0}))
    out += flv.encode_tag(18, 0, flv.encode_metadata({}).replace(b"onMetaData", b"onCuePoint"))
    out += flv.encode_tag(9, 0, b"\x17\x00\x00\x00\x00" + AVCC_320x240)
    out += flv.encode_tag(8, 0, b"\xaf\x00\x12\x10")
    for i in range(frames):
        nal = (b"\x65" if i % 10 == 0 else b"\x41") + bytes(300)
        body = (b"\x17" if i % 10 == 0 else b"\x27") + b"\x01\x00\x00\x00" + len(nal).to_bytes(4, "big") + nal
        out += flv.encode_tag(9, i * 40, body)
        out += flv.encode_tag(8, i * 40, b"\xaf\x01" + bytes(80))
    return out


def chunked(body: bytes, size=1000) -> bytes:
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b"%x\r\n%s\r\n" % (len(part), part)
    return out + b"0\r\n\r\n"


class Policy(AllowAll):
    def __init__(self):
        self.calls = []
        self.deny = False

    def on_publish(self, client):
        self.calls.append(("publish", client.request.app, client.request.stream))
        return defer.fail(Denied("no")) if self.deny else defer.succeed(None)

    def on_unpublish(self, client):
        self.calls.append(("unpublish", client.request.app, client.request.stream))


class FlvCasterTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(100)
        config = load_string(CONF)
        self.policy = Policy()
        self.ctx = ServerContext(config, self.clock, self.policy)
        self.caster = FlvCaster(self.ctx, config.stream_casters[0])
        self.site = _Site(self.caster)

    def connect(self):
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.5", 50123))
        channel.makeConnection(transport)
        self.addCleanup(lambda: channel.connectionLost(None) if not transport.disconnecting else None)
        return channel, transport

    def request(self, head: bytes, body: bytes = b"", channel=None):
        if channel is None:
            channel, transport = self.connect()
        else:
            transport = channel.transport
        channel.dataReceived(head + body)
        return channel, transport

    def active(self, app="live", stream="s"):
        source = self.ctx.registry.get("__defaultVhost__", app, stream)
        return source is not None and source.active

    def status(self, transport) -> int:
        return int(transport.value().split(b" ", 2)[1])

    def test_split_post_path(self):
        self.assertEqual(split_post_path("/live/livestream.flv?token=1"), ("live", "livestream.flv"))
        self.assertEqual(split_post_path("/a/b/c.flv"), ("a/b", "c.flv"))
        self.assertEqual(split_post_path("/s.flv"), ("", "s.flv"))

    def test_content_length_post_publishes_until_the_body_ends(self):
        body = flv_body()
        channel, transport = self.connect()
        head = b"POST /live/s.flv HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        channel.dataReceived(head + body[:-100])
        self.assertTrue(self.active())
        source = self.ctx.registry.get("__defaultVhost__", "live", "s")
        self.assertEqual((source.video_codec, source.audio_codec), ("h264", "aac"))
        (client,) = self.ctx.clients.values()
        self.assertEqual((client.ip, client.port, client.type), ("10.0.0.5", 50123, "flash-publish"))
        self.assertEqual(transport.value(), b"")  # no answer while the body flows
        channel.dataReceived(body[-100:])
        self.assertFalse(self.active())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK\r\n"), transport.value())
        self.assertEqual(self.policy.calls, [("publish", "live", "s"), ("unpublish", "live", "s")])
        self.assertEqual(self.ctx.clients, {})
        # The connection stays usable: another POST on it.
        transport.clear()
        self.request(b"PUT /live/t.flv HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body), body, channel)
        self.assertEqual(self.status(transport), 200)
        self.assertEqual(self.policy.calls[2:], [("publish", "live", "t"), ("unpublish", "live", "t")])

    def test_chunked_post_and_metadata(self):
        body = flv_body()
        pieces = chunked(body)
        channel, transport = self.request(b"POST /app/sub/cam1.flv HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                                          pieces[:-20])
        self.assertTrue(self.active("app/sub", "cam1"))
        post = next(iter(self.caster.posts))
        channel.dataReceived(pieces[-20:])
        self.assertEqual(self.status(transport), 200)
        self.assertFalse(self.active("app/sub", "cam1"))
        # onMetaData, two sequence headers, 40 frames; the other script tag is dropped.
        self.assertEqual((post.publisher.packets, post.tag_errors), (43, 0))

    def test_disconnect_ends_the_publish(self):
        body = flv_body()
        channel, transport = self.request(b"POST /live/s.flv HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", body)
        self.assertTrue(self.active())
        channel.connectionLost(None)
        self.assertFalse(self.active())
        self.assertEqual(self.caster.posts, set())

    def test_garbage_body_is_400_and_closes(self):
        channel, transport = self.request(b"POST /live/s.flv HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", b"GARBAGE" * 100)
        self.assertEqual(self.status(transport), 400)
        self.assertIn(b"not an FLV stream", transport.value())
        self.assertTrue(transport.disconnecting)
        self.assertFalse(self.active())
        self.assertEqual(self.ctx.clients, {})

    def test_corrupt_tag_mid_stream(self):
        body = flv_body()
        bad = body + flv.encode_tag(9, 900, b"\x17\x01") + flv.encode_tag(8, 900, b"")
        head = b"POST /live/s.flv HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (len(bad) + 1000)
        channel, transport = self.request(head, bad)
        post = next(iter(self.caster.posts))
        self.assertEqual(post.tag_errors, 1)  # the short video tag; the empty audio tag is skipped
        self.assertTrue(self.active())
        channel.dataReceived(b"\x29\x00\x00\x10" + bytes(100))  # an encrypted tag
        self.assertEqual(self.status(transport), 400)
        self.assertIn(b"encrypted", transport.value())
        self.assertFalse(self.active())

    def test_bad_method_and_path(self):
        _, transport = self.request(b"GET /live/s.flv HTTP/1.1\r\n\r\n")
        self.assertEqual(self.status(transport), 405)
        _, transport = self.request(b"POST /s.flv HTTP/1.1\r\nContent-Length: 10\r\n\r\n", b"FLV")
        self.assertEqual(self.status(transport), 400)
        _, transport = self.request(b"POST /live/..%2f..%2fetc.flv HTTP/1.1\r\nContent-Length: 10\r\n\r\n")
        self.assertEqual(self.status(transport), 400)
        self.assertEqual(self.ctx.clients, {})

    def test_denied_busy_and_silent(self):
        self.policy.deny = True
        body = flv_body()
        head = b"POST /live/s.flv HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (len(body) * 10)
        _, transport = self.request(head, body)
        self.assertEqual(self.status(transport), 403)
        self.policy.deny = False
        self.request(head, body)
        self.assertTrue(self.active())
        _, second = self.request(head, body)
        self.assertEqual(self.status(second), 409)
        self.assertTrue(self.active())  # the first goes on
        self.clock.pump([1.0] * 4)  # normal_timeout 3 s without a byte
        self.assertFalse(self.active())

    def test_kick_closes_with_503(self):
        body = flv_body()
        _, transport = self.request(b"POST /live/s.flv HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", body)
        (client,) = self.ctx.clients.values()
        client.kick()
        self.assertEqual(self.status(transport), 503)
        self.assertFalse(self.active())
