"""HLS of a stream another origin publishes: which stream a file names,
when a request is served here or passed on, and the owner's answer passed
through (status, headers, body) with a fake HTTP agent."""

from __future__ import annotations

import os
import tempfile

from twisted.internet import defer
from twisted.trial import unittest
from twisted.web.http_headers import Headers
from twisted.web.test.requesthelper import DummyRequest

from srs_twisted.cluster import hls_proxy
from srs_twisted.cluster.directory import LocalDirectory, Owner
from srs_twisted.cluster.hls_proxy import HlsProxy, remote_hls, stream_of
from srs_twisted.cluster.relay import install

from .fakes import make_ctx

A = Owner("10.0.0.1:1935", {"rtmp": "10.0.0.1:1935", "http": "10.0.0.1:8080"})


class Response:
    def __init__(self, code, headers, body):
        self.code, self.headers, self.body = code, Headers(headers), body

    def deliverBody(self, proto):
        proto.dataReceived(self.body)
        proto.connectionLost(None)


class Agent:
    def __init__(self, response):
        self.response = response
        self.asked = []

    def request(self, method, url, headers):
        self.asked.append((method, url, headers))
        if isinstance(self.response, Exception):
            return defer.fail(self.response)
        return defer.succeed(self.response)


class HlsProxyTests(unittest.TestCase):
    def setUp(self):
        self.ctx = make_ctx("vhost __defaultVhost__ { } vhost other.example.com { }")
        self.directory = LocalDirectory()
        self.relay = install(self.ctx, lambda v: self.directory if v == "__defaultVhost__" else None,
                             Owner("me", {}))
        self.root = tempfile.mkdtemp()
        self.addCleanup(lambda: __import__("shutil").rmtree(self.root, True))
        hls_proxy._recent.owners.clear()

    def test_stream_of(self):
        self.assertEqual(stream_of("/live/s.m3u8"), ("live", "s"))
        self.assertEqual(stream_of("/live/s-12.ts"), ("live", "s"))
        self.assertEqual(stream_of("/live/s-init.mp4"), ("live", "s"))
        self.assertEqual(stream_of("/live/my-cam.m3u8"), ("live", "my-cam"))
        self.assertEqual(stream_of("/a/b/s-3.m4s"), ("a/b", "s"))

    def test_served_here_when_the_file_is_here_or_no_directory(self):
        os.makedirs(os.path.join(self.root, "live"))
        open(os.path.join(self.root, "live", "s.m3u8"), "w").close()
        req = DummyRequest([b""])
        self.assertIsNone(remote_hls(self.ctx, req, "/live/s.m3u8", self.root, "127.0.0.1"))
        self.assertIsNone(remote_hls(self.ctx, req, "/live/s.flv", self.root, "127.0.0.1"))
        self.assertIsNone(remote_hls(self.ctx, req, "/live/t.m3u8", self.root, "other.example.com"))
        self.assertIsInstance(remote_hls(self.ctx, req, "/live/t.m3u8", self.root, "127.0.0.1"), HlsProxy)

    def render(self, path, agent, query=b""):
        req = DummyRequest([b""])
        req.uri = path.encode() + (b"?" + query if query else b"")
        proxy = HlsProxy(self.ctx, self.relay, "__defaultVhost__", path, agent=agent)
        proxy.render_GET(req)
        return req

    def test_playlist_then_segment_passed_through(self):
        self.directory.owners["__defaultVhost__/live/s"] = A
        agent = Agent(Response(302, {b"location": [b"/live/s.m3u8?hls_ctx=abc"], b"x-other": [b"no"]}, b""))
        req = self.render("/live/s.m3u8", agent)
        self.assertEqual(agent.asked[0][1], b"http://10.0.0.1:8080/live/s.m3u8")
        self.assertEqual(req.responseCode, 302)
        self.assertEqual(req.responseHeaders.getRawHeaders(b"location"), [b"/live/s.m3u8?hls_ctx=abc"])
        self.assertIsNone(req.responseHeaders.getRawHeaders(b"x-other"))
        self.assertEqual(req.finished, 1)
        # A segment whose name is not the stream's: the owner of the directory's last playlist.
        agent = Agent(Response(200, {b"content-type": [b"video/MP2T"]}, b"G" * 188))
        req = self.render("/live/odd_name_7.ts", agent, b"hls_ctx=abc")
        self.assertEqual(agent.asked[0][1], b"http://10.0.0.1:8080/live/odd_name_7.ts?hls_ctx=abc")
        self.assertEqual(b"".join(req.written), b"G" * 188)
        self.assertEqual(req.responseHeaders.getRawHeaders(b"content-type"), [b"video/MP2T"])

    def test_unknown_stream_is_404_and_an_unreachable_owner_502(self):
        req = self.render("/live/nothing.m3u8", Agent(AssertionError("not asked")))
        self.assertEqual((req.responseCode, b"".join(req.written)), (404, b"Not Found"))
        self.directory.owners["__defaultVhost__/live/s"] = A
        req = self.render("/live/s.m3u8", Agent(ConnectionRefusedError()))
        self.assertEqual(req.responseCode, 502)
