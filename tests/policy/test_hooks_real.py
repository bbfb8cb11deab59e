"""The real HttpHooksClient against a real hook receiver (twisted.web on
127.0.0.1, port 0): allow, deny, 404, a slow reply past a short timeout,
a closed port, HTTPS with a self-signed certificate, and GET for
on_hls_notify."""

from __future__ import annotations

import json

from twisted.internet import defer, reactor
from twisted.trial import unittest

from srs_twisted.errors import Denied
from srs_twisted.policy.hooks import HooksPolicy, HttpHooksClient

from .common import make_client, make_ctx
from .receiver import start_receiver


class RealReceiverTests(unittest.TestCase):
    timeout = 30

    def setUp(self):
        self.receiver, self.base = start_receiver(self)
        self.http = HttpHooksClient(reactor, timeout=5)

    @defer.inlineCallbacks
    def test_allow(self):
        body = {"action": "on_publish", "client_id": "c1", "stream": "s"}
        yield self.http.call_blocking([self.base + "/api/v1/streams?k=v"], body)
        (req,) = self.receiver.requests
        self.assertEqual(req["method"], b"POST")
        self.assertEqual(req["uri"], b"/api/v1/streams?k=v")
        self.assertEqual(req["raw"], b'{"action":"on_publish","client_id":"c1","stream":"s"}')
        self.assertEqual(req["headers"][b"Content-Type"], [b"application/json"])
        self.assertEqual(req["headers"][b"Content-Length"], [str(len(req["raw"])).encode()])

    @defer.inlineCallbacks
    def test_literal_zero_and_201(self):
        self.receiver.replies[b"/zero"] = (200, b"0")
        self.receiver.replies[b"/created"] = (201, b'{"code":0,"data":null}')
        yield self.http.call_blocking([self.base + "/zero", self.base + "/created"], {"action": "on_play"})
        self.assertEqual([r["path"] for r in self.receiver.requests], [b"/zero", b"/created"])

    @defer.inlineCallbacks
    def test_deny_code_1(self):
        self.receiver.replies[b"/deny"] = (200, b'{"code":1}')
        with self.assertRaises(Denied) as caught:
            yield self.http.call_blocking([self.base + "/ok", self.base + "/deny", self.base + "/never"],
                                          {"action": "on_play"})
        self.assertIn("code 1", str(caught.exception))
        self.assertEqual([r["path"] for r in self.receiver.requests], [b"/ok", b"/deny"])

    @defer.inlineCallbacks
    def test_404(self):
        self.receiver.replies[b"/missing"] = (404, b"not found")
        with self.assertRaises(Denied) as caught:
            yield self.http.call_blocking([self.base + "/missing"], {"action": "on_connect"})
        self.assertIn("status=404", str(caught.exception))

    @defer.inlineCallbacks
    def test_slow_reply_beyond_the_timeout_denies(self):
        self.receiver.replies[b"/slow"] = ("slow", 5.0)
        http = HttpHooksClient(reactor, timeout=0.3)
        start = reactor.seconds()
        with self.assertRaises(Denied) as caught:
            yield http.call_blocking([self.base + "/slow"], {"action": "on_publish"})
        self.assertLess(reactor.seconds() - start, 3.0)
        self.assertIn("no reply", str(caught.exception))

    @defer.inlineCallbacks
    def test_closed_port_denies(self):
        from twisted.web import server, resource

        port = reactor.listenTCP(0, server.Site(resource.Resource()), interface="127.0.0.1")
        number = port.getHost().port
        yield port.stopListening()
        with self.assertRaises(Denied):
            yield self.http.call_blocking([f"http://127.0.0.1:{number}/x"], {"action": "on_publish"})

    @defer.inlineCallbacks
    def test_large_reply_is_refused(self):
        self.receiver.replies[b"/big"] = (200, b'{"code":0,"pad":"' + b"x" * 100_000 + b'"}')
        with self.assertRaises(Denied) as caught:
            yield self.http.call_blocking([self.base + "/big"], {"action": "on_publish"})
        self.assertIn("larger than 65536", str(caught.exception))

    @defer.inlineCallbacks
    def test_notify_never_fails(self):
        self.receiver.replies[b"/bad"] = (500, b"")
        yield self.http.notify([self.base + "/bad", self.base + "/good"], {"action": "on_stop"})
        self.assertEqual([r["path"] for r in self.receiver.requests], [b"/bad", b"/good"])

    @defer.inlineCallbacks
    def test_policy_posts_srs_bodies(self):
        ctx = make_ctx(f"""vhost __defaultVhost__ {{ http_hooks {{ enabled on;
            on_publish {self.base}/a {self.base}/b; on_unpublish {self.base}/u;
            on_hls_notify {self.base}/notify/[app]/[stream]/[ts_url]; }} hls {{ hls_nb_notify 16; }} }}""")
        ctx.clock = reactor
        policy = HooksPolicy(ctx)
        client = make_client(ctx)
        yield policy.on_publish(client)
        yield policy.on_unpublish(client)
        self.assertEqual([r["path"] for r in self.receiver.requests], [b"/a", b"/b", b"/u"])
        self.assertEqual(self.receiver.requests[0]["body"]["stream_id"], client.source.id)
        self.assertEqual(self.receiver.requests[2]["body"]["action"], "on_unpublish")
        self.receiver.replies[b"/notify/live/livestream/s-1.ts"] = (200, b"y" * 5000)
        answered = yield policy.on_hls_notify(client, "s-1.ts")
        self.assertEqual(answered, 1)
        self.assertEqual(self.receiver.requests[3]["method"], b"GET")


class HttpsTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_self_signed_https_hook_is_accepted(self):
        from twisted.internet import ssl

        cert = ssl.KeyPair.generate(size=2048).selfSignedCert(1, CN="hooks.invalid")
        receiver, base = start_receiver(self, tls=cert.options())
        http = HttpHooksClient(reactor, timeout=10)
        yield http.call_blocking([base + "/secure"], {"action": "on_connect", "client_id": "c"})
        self.assertEqual(receiver.requests[0]["raw"], b'{"action":"on_connect","client_id":"c"}')
        self.assertEqual(json.loads(receiver.requests[0]["raw"])["action"], "on_connect")
