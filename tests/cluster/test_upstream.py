"""Where forward and edge connect and what they send: SRS's URL rules."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial import unittest

from srs_twisted.cluster.forward import destination_target
from srs_twisted.cluster.upstream import flv_url, parse_hostport, rtmp_target, target_from_url
from srs_twisted.live.source import LiveSource
from srs_twisted.url import StreamRequest


class HostPortTests(unittest.TestCase):
    def test_forms(self):
        self.assertEqual(parse_hostport("127.0.0.1:19350"), ("127.0.0.1", 19350, ""))
        self.assertEqual(parse_hostport("origin.example.com"), ("origin.example.com", 1935, ""))
        self.assertEqual(parse_hostport("10.0.0.1:1936/app/s"), ("10.0.0.1", 1936, "app/s"))
        self.assertEqual(parse_hostport("[::1]:1937"), ("::1", 1937, ""))
        self.assertEqual(parse_hostport("[::1]"), ("::1", 1935, ""))
        self.assertEqual(parse_hostport("h", 8080), ("h", 8080, ""))
        self.assertEqual(parse_hostport("rtmp://h:1/x"), ("h", 1, "x"))


class RtmpTargetTests(unittest.TestCase):
    def test_default_vhost_goes_to_the_server_address(self):
        t = rtmp_target("10.0.0.2", 19350, "127.0.0.1", "__defaultVhost__", "live", "s", "?token=abc")
        self.assertEqual((t.host, t.port), ("10.0.0.2", 19350))
        self.assertEqual(t.tc_url, "rtmp://10.0.0.2:19350/live")
        self.assertEqual(t.stream, "s?token=abc")
        self.assertEqual(t.url, "rtmp://10.0.0.2:19350/live/s?token=abc")

    def test_a_vhost_travels_in_the_tcurl_not_in_the_stream(self):
        t = rtmp_target("10.0.0.2", 1935, "127.0.0.1", "cdn.example.com", "live", "s", "?vhost=cdn.example.com&k=1")
        self.assertEqual(t.tc_url, "rtmp://cdn.example.com/live")
        self.assertEqual(t.stream, "s?k=1")
        self.assertEqual(t.vhost, "cdn.example.com")
        t = rtmp_target("10.0.0.2", 1936, "127.0.0.1", "v.example.com", "live", "s", "")
        self.assertEqual((t.tc_url, t.stream), ("rtmp://v.example.com:1936/live", "s"))

    def test_a_host_name_is_guessed_as_the_vhost(self):
        t = rtmp_target("10.0.0.2", 1935, "play.example.com", "__defaultVhost__", "live", "s", "")
        self.assertEqual(t.tc_url, "rtmp://play.example.com/live")

    def test_backend_urls(self):
        t = target_from_url("rtmp://127.0.0.1:19350/test/teststream?auth_token=123456")
        self.assertEqual((t.host, t.port, t.tc_url, t.stream),
                         ("127.0.0.1", 19350, "rtmp://127.0.0.1:19350/test", "teststream?auth_token=123456"))
        t = target_from_url("rtmp://10.0.0.3/live/s?vhost=v.com&a=b")
        self.assertEqual((t.host, t.port, t.tc_url, t.stream), ("10.0.0.3", 1935, "rtmp://v.com/live", "s?a=b"))

    def test_flv_url(self):
        self.assertEqual(flv_url("http", "10.0.0.1", 8080, "live", "s", "?t=1"), "http://10.0.0.1:8080/live/s.flv?t=1")
        self.assertEqual(flv_url("https", "::1", 443, "live", "s.flv", ""), "https://[::1]:443/live/s.flv")


class DestinationTests(unittest.TestCase):
    def setUp(self):
        self.source = LiveSource("__defaultVhost__", "live", "cam", Clock())
        self.req = StreamRequest(host="127.0.0.1", vhost="__defaultVhost__", app="live", stream="cam", param="?t=9")

    def test_the_source_names_by_default(self):
        t = destination_target("127.0.0.1:19350", self.source, self.req)
        self.assertEqual(t.url, "rtmp://127.0.0.1:19350/live/cam?t=9")

    def test_app_and_stream_can_be_renamed(self):
        self.assertEqual(destination_target("h:1/archive/[stream]-copy", self.source, self.req).url,
                         "rtmp://h:1/archive/cam-copy?t=9")
        self.assertEqual(destination_target("h:1/backup", self.source, self.req).url, "rtmp://h:1/backup/cam?t=9")
        self.assertEqual(destination_target("h:1/a/b/c", self.source, self.req).url, "rtmp://h:1/a/b/c?t=9")


class FlvConnectTests(unittest.TestCase):
    """The HTTP-FLV upstream against a twisted.web server in this process."""

    def setUp(self):
        from twisted.internet import reactor
        from twisted.web import resource, server

        from srs_twisted.codec import flv

        body = flv.file_header() + b"".join(
            flv.encode_tag(kind, dts, payload)
            for kind, dts, payload in [(9, 0, b"\x17\x00\x00\x00\x00\x01\x64"), (8, 0, b"\xaf\x00\x12\x10"),
                                       (9, 40, b"\x17\x01\x00\x00\x00abc"), (8, 23, b"\xaf\x01xyz")]
        )

        class Stream(resource.Resource):
            isLeaf = True

            def render_GET(self, request):
                path = request.path.decode()
                if path == "/moved/s.flv":
                    request.redirect(b"/live/s.flv")
                    return b""
                if path != "/live/s.flv":
                    request.setResponseCode(404)
                    return b"no"
                request.setHeader(b"content-type", b"video/x-flv")
                self.seen_host = request.getHeader(b"host")
                request.write(body)  # and keep the response open, as a live stream
                return server.NOT_DONE_YET

        self.resource = Stream()
        self.port = reactor.listenTCP(0, server.Site(self.resource), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.reactor = reactor
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"

    async def wait_until(self, predicate, timeout=30.0):
        """Poll ``predicate`` on the real reactor; fail after ``timeout`` s."""
        from twisted.internet import task

        end = self.reactor.seconds() + timeout
        while not predicate():
            if self.reactor.seconds() > end:
                self.fail(f"not after {timeout}s: {predicate}")
            await task.deferLater(self.reactor, 0.02, lambda: None)

    async def test_a_live_body_becomes_packets_and_close_ends_it(self):
        from twisted.internet import defer

        from srs_twisted.cluster.upstream import flv_connect

        got = []
        pull = await defer.ensureDeferred(flv_connect(self.reactor, self.base + "/moved/s.flv", got.append,
                                                      host_header="v.example.com"))
        await self.wait_until(lambda: len(got) >= 4)
        self.assertEqual([(p.kind, p.dts, p.sequence_header, p.keyframe) for p in got],
                         [(9, 0, True, True), (8, 0, True, False), (9, 40, False, True), (8, 23, False, False)])
        self.assertEqual(self.resource.seen_host, b"v.example.com")
        pull.close()
        await pull.done

    async def test_not_found_fails(self):
        from twisted.internet import defer

        from srs_twisted.cluster.upstream import flv_connect

        with self.assertRaises(ConnectionError):
            await defer.ensureDeferred(flv_connect(self.reactor, self.base + "/live/none.flv"))


class RtmpConnectTests(unittest.TestCase):
    """Cancelling an RTMP upstream attempt closes its socket (a server that
    accepts TCP but never answers the handshake)."""

    async def test_cancel_closes_the_connection(self):
        from twisted.internet import defer, protocol, reactor

        from srs_twisted.cluster.upstream import Target, rtmp_connect

        made, lost = defer.Deferred(), defer.Deferred()

        class Silent(protocol.Protocol):
            def connectionMade(self):
                made.callback(None)

            def connectionLost(self, reason=None):
                lost.callback(None)

        factory = protocol.Factory.forProtocol(Silent)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        target = Target("127.0.0.1", port.getHost().port, "rtmp://127.0.0.1/live", "s")
        d = rtmp_connect(reactor, target, "play", timeout=60.0)
        # Cancel once the server holds the connection (not after a fixed
        # delay: on a busy machine the connect may not be done by then, and
        # a cancelled connect attempt never reaches the server at all).
        await made.addTimeout(30, reactor)
        self.assertFalse(d.called)
        d.cancel()
        with self.assertRaises(defer.CancelledError):
            await d
        await lost.addTimeout(30, reactor)
