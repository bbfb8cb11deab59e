"""WebSocket players (srs_twisted.http.ws): the upgrade hands the HTTP
connection over to autobahn's protocol, whose live consumer must then be
the transport's producer (back-pressure from a player that reads slowly).
Exact bytes over a StringTransport, through the max_connections wrapper as
the server builds its listeners."""

from __future__ import annotations

import os

import txaio
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial import unittest

from srs_twisted.http.server import make_site
from srs_twisted.limits import ConnectionLimitFactory
from srs_twisted.live.packet import VIDEO, MediaPacket

from .test_api import World

CONF = """
listen 1935;
max_connections 10;
http_server { enabled on; listen 8080; dir %s; }
vhost __defaultVhost__ { http_remux { enabled on; mount [vhost]/[app]/[stream].flv; } }
"""

UPGRADE = (
    b"GET /live/s.flv HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class UpgradeTests(unittest.TestCase):
    wrapped = True

    def setUp(self):
        root = self.mktemp()
        os.makedirs(root)
        self.world = World(CONF % root)
        self.ctx = self.world.ctx
        self.patch(txaio.config, "loop", self.world.clock)  # autobahn's timers on the test clock
        site = make_site(self.ctx, root, None)
        self.factory = ConnectionLimitFactory(self.ctx, site, "http") if self.wrapped else site
        self.source, _ = self.world.publish(stream="s")

    def connect(self):
        protocol = self.factory.buildProtocol(IPv4Address("TCP", "192.168.1.10", 50000))
        transport = StringTransport()
        transport.protocol = protocol  # as a TCP transport has
        protocol.makeConnection(transport)
        protocol.dataReceived(UPGRADE)
        return protocol, transport

    def lose(self, protocol, transport):
        # What the TCP transport calls: the wrapper, or the protocol that
        # autobahn put on the transport.
        (protocol if self.wrapped else transport.protocol).connectionLost(Failure(ConnectionDone("player left")))

    def test_the_consumer_is_the_producer_after_the_upgrade(self):
        protocol, transport = self.connect()
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "), transport.value()[:100])
        consumers = list(self.source.consumers)
        self.assertEqual(len(consumers), 1)
        # The live consumer, not the HTTP channel the request came on, is
        # paused when the player's socket is full.
        self.assertIs(transport.producer, consumers[0])
        self.assertTrue(transport.streaming)
        self.assertIn(b"FLV\x01", transport.value())  # the FLV header and sequence headers
        transport.clear()
        self.source.write(MediaPacket(VIDEO, 40, b"\x17\x01\x00\x00\x00" + bytes(100), codec="h264", keyframe=True))
        self.world.clock.advance(1)
        self.assertEqual(transport.value()[:1], b"\x82")  # a binary WebSocket message
        self.assertIn(b"\x17\x01\x00\x00\x00" + bytes(100), transport.value())
        self.lose(protocol, transport)
        self.assertIsNone(transport.producer)
        self.assertEqual(list(self.source.consumers), [])
        if self.wrapped:
            self.assertEqual(self.ctx.connections, 0)


class UnwrappedUpgradeTests(UpgradeTests):
    """The same on a bare site (a transport that is not a ProtocolWrapper)."""

    wrapped = False
