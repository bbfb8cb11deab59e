"""The HTTP site's header timeout (``http_header_timeout``), on task.Clock
and StringTransport."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from twisted.web import resource, server

from srs_twisted.config import ConfigError, load_string
from srs_twisted.context import ServerContext
from srs_twisted.http.server import SrsSite


class Hello(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        return b"hello"


class Forever(resource.Resource):
    """A response that never ends (a live stream)."""

    isLeaf = True

    def render_GET(self, request):
        request.write(b"chunk")
        return server.NOT_DONE_YET


class Root(resource.Resource):
    def __init__(self):
        super().__init__()
        self.putChild(b"hello", Hello())
        self.putChild(b"live", Forever())


class HeaderTimeoutTests(unittest.TestCase):
    conf = "vhost __defaultVhost__ {}"

    def setUp(self):
        self.clock = Clock()
        self.ctx = ServerContext(load_string(self.conf), self.clock)
        self.site = SrsSite(self.ctx, Root())

    def connect(self):
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        channel.makeConnection(transport)
        self.addCleanup(lambda: transport.disconnecting or channel.connectionLost(None))
        return channel, transport

    def trickle(self, channel, transport, data: bytes, every: float):
        """A slowloris: one byte every ``every`` seconds; returns the seconds
        until the server closed the connection (None if it never did)."""
        elapsed = 0.0
        for byte in data:
            channel.dataReceived(bytes([byte]))
            self.clock.advance(every)
            elapsed += every
            if transport.disconnecting:
                return elapsed
        return None

    def test_default_is_30_seconds(self):
        self.assertEqual(self.ctx.config.http_header_timeout, 30.0)

    def test_slow_headers_are_cut_off(self):
        """One byte every 2 s restarts Twisted's idle timeout forever; the
        header timeout closes the connection 30 s after it opened."""
        channel, transport = self.connect()
        closed_after = self.trickle(channel, transport, b"GET /hello HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 100, 2.0)
        self.assertEqual(closed_after, 30.0)
        self.assertTrue(transport.disconnected)  # aborted, not waiting for the peer
        self.assertEqual(transport.value(), b"")  # no response to half a request

    def test_silent_connection_is_cut_off(self):
        channel, transport = self.connect()
        self.clock.advance(29.9)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.2)
        self.assertTrue(transport.disconnecting)

    def test_headers_in_time_are_served(self):
        channel, transport = self.connect()
        closed = self.trickle(channel, transport, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r", 0.5)  # 16 s
        self.assertIsNone(closed)
        channel.dataReceived(b"\n")
        self.assertIn(b"hello", transport.value())
        self.assertFalse(transport.disconnecting)

    def test_long_response_is_not_bounded(self):
        channel, transport = self.connect()
        channel.dataReceived(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")
        self.clock.advance(600)
        self.assertFalse(transport.disconnecting)
        self.assertIn(b"chunk", transport.value())

    def test_keep_alive_waits_for_the_next_request_within_the_bound(self):
        channel, transport = self.connect()
        self.clock.advance(20)
        channel.dataReceived(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b"hello", transport.value())
        transport.clear()
        # The timer restarts when the response ends: 20 s + 25 s is fine.
        self.clock.advance(25)
        channel.dataReceived(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b"hello", transport.value())
        self.assertFalse(transport.disconnecting)
        # An idle kept-alive connection is closed after the bound.
        self.clock.advance(30.1)
        self.assertTrue(transport.disconnecting)

    def test_pipelined_requests(self):
        channel, transport = self.connect()
        channel.dataReceived(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(transport.value().count(b"hello"), 2)
        self.clock.advance(29)
        self.assertFalse(transport.disconnecting)

    def test_timer_gone_with_the_connection(self):
        channel, transport = self.connect()
        channel.connectionLost(None)
        self.assertEqual([c for c in self.clock.getDelayedCalls() if c.func == channel._headers_timed_out], [])


class ConfiguredHeaderTimeoutTests(HeaderTimeoutTests):
    conf = "http_header_timeout 5;\nvhost __defaultVhost__ {}"

    def test_default_is_30_seconds(self):
        self.assertEqual(self.ctx.config.http_header_timeout, 5.0)

    def test_slow_headers_are_cut_off(self):
        channel, transport = self.connect()
        self.assertEqual(self.trickle(channel, transport, b"GET /hello HTTP/1.1\r\n", 1.0), 5.0)

    def test_silent_connection_is_cut_off(self):
        channel, transport = self.connect()
        self.clock.advance(4.9)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.2)
        self.assertTrue(transport.disconnecting)

    def test_headers_in_time_are_served(self):
        channel, transport = self.connect()
        self.clock.advance(4)
        channel.dataReceived(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b"hello", transport.value())

    def test_keep_alive_waits_for_the_next_request_within_the_bound(self):
        channel, transport = self.connect()
        channel.dataReceived(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        self.clock.advance(5.1)
        self.assertTrue(transport.disconnecting)

    def test_pipelined_requests(self):
        pass

    def test_reload_changes_the_bound_for_new_connections(self):
        self.ctx.config = load_string("http_header_timeout 2;\nvhost __defaultVhost__ {}")
        channel, transport = self.connect()
        self.clock.advance(2.1)
        self.assertTrue(transport.disconnecting)


class NoHeaderTimeoutTests(unittest.TestCase):
    def test_zero_means_no_bound(self):
        """With 0, only Twisted's idle timeout is left (a byte every 2 s keeps it)."""
        clock = Clock()
        ctx = ServerContext(load_string("http_header_timeout 0;\nvhost __defaultVhost__ {}"), clock)
        site = SrsSite(ctx, Root())
        channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = StringTransport()
        channel.makeConnection(transport)
        for _ in range(100):
            channel.dataReceived(b"a")
            clock.advance(2)
        self.assertFalse(transport.disconnecting)
        channel.connectionLost(None)


class HeaderTimeoutConfigTests(unittest.TestCase):
    def test_value_and_errors(self):
        self.assertEqual(load_string("http_header_timeout 12.5;\nvhost v {}").http_header_timeout, 12.5)
        with self.assertRaises(ConfigError) as e:
            load_string("http_header_timeout -1;\nvhost v {}")
        self.assertIn("http_header_timeout", str(e.exception))

    def test_environment(self):
        conf = load_string("vhost v {}", environ={"SRS_HTTP_HEADER_TIMEOUT": "7"})
        self.assertEqual(conf.http_header_timeout, 7.0)


class StaticFileRangeTests(unittest.TestCase):
    """Static files answer ranges, including a suffix range longer than
    the file (RFC 9110 14.1.2: the whole file), which Twisted's own File
    failed on with a traceback (tests/fuzz/crashes/http/ replays the
    request through the whole site)."""

    def setUp(self):
        self.path = self.mktemp()
        self.body = bytes(range(250)) * 2
        with open(self.path, "wb") as f:
            f.write(self.body)

    def get(self, range_value: bytes):
        from twisted.web.test.requesthelper import DummyRequest

        from srs_twisted.http.site import StaticFile

        request = DummyRequest([b""])
        request.requestHeaders.setRawHeaders(b"range", [range_value])
        self.assertEqual(StaticFile(self.path).render(request), server.NOT_DONE_YET)
        self.assertTrue(request.finished)
        return request.responseCode, request.responseHeaders.getRawHeaders(b"content-range"), b"".join(request.written)

    def test_suffix_longer_than_the_file_is_the_whole_file(self):
        self.assertEqual(self.get(b"bytes=-909"), (206, [b"bytes 0-499/500"], self.body))

    def test_suffix_within_the_file(self):
        self.assertEqual(self.get(b"bytes=-100"), (206, [b"bytes 400-499/500"], self.body[400:]))

    def test_first_bytes(self):
        self.assertEqual(self.get(b"bytes=0-9"), (206, [b"bytes 0-9/500"], self.body[:10]))
