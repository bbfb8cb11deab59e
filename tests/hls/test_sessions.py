"""HLS sessions (hls_ctx): the first playlist request runs on_play and is
sent to the URL with ?hls_ctx=, the playlist is rewritten, segments keep the
session alive, it expires with on_stop, the API kicks it, the policy denies
it, and there is a bound."""

from __future__ import annotations

import os
import shutil
import tempfile

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest
from twisted.web import server
from twisted.web.test.requesthelper import DummyRequest

from srs_twisted.config import load_string
from srs_twisted.context import ServerContext
from srs_twisted.errors import Denied
from srs_twisted.hls import sessions as hs
from srs_twisted.http.server import HttpRoot

PLAYLIST = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-MEDIA-SEQUENCE:3
#EXT-X-TARGETDURATION:2
#EXTINF:2.000, no desc
s-3.ts
#EXTINF:2.000, no desc
s-4.ts?k=v
"""


class FakePolicy:
    def __init__(self):
        self.events = []
        self.deny = False
        self.pending = None

    def on_play(self, client):
        self.events.append(("on_play", client.id, client.type, client.request.stream, client.request.param))
        if self.pending is not None:
            return self.pending
        if self.deny:
            return defer.fail(Denied("hook says no"))
        return defer.succeed(None)

    def on_stop(self, client):
        self.events.append(("on_stop", client.id))


def conf(root: str, hls: str = "") -> str:
    return (f"http_server {{ enabled on; dir {root}; }}\n"
            f"vhost __defaultVhost__ {{ hls {{ enabled on; hls_path {root}; hls_fragment 2; hls_window 10; {hls} }} }}")


class SessionTests(unittest.TestCase):
    hls = ""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="srs-hls-ctx-")
        self.addCleanup(shutil.rmtree, self.root, True)
        os.makedirs(os.path.join(self.root, "live"))
        with open(os.path.join(self.root, "live", "s.m3u8"), "w") as f:
            f.write(PLAYLIST)
        with open(os.path.join(self.root, "live", "s-3.ts"), "wb") as f:
            f.write(b"\x47" * 188)
        self.clock = Clock()
        self.policy = FakePolicy()
        self.ctx = ServerContext(load_string(conf(self.root, self.hls)), self.clock, self.policy)
        self.http = HttpRoot(self.ctx, self.root)
        self.addCleanup(lambda: getattr(self.ctx, "hls_sessions", None) and self.ctx.hls_sessions.stop())

    def get(self, uri: bytes):
        path, _, query = uri.partition(b"?")
        request = DummyRequest(path.lstrip(b"/").split(b"/"))
        request.uri, request.path = uri, path
        request.args = {}
        for pair in filter(None, query.split(b"&")):
            k, _, v = pair.partition(b"=")
            request.args.setdefault(k, []).append(v)
        request.requestHeaders.setRawHeaders(b"host", [b"127.0.0.1:8080"])
        name = request.postpath.pop(0)
        request.prepath.append(name)
        child = self.http.getChildWithDefault(name, request)
        if not isinstance(child, hs.resource.Resource) or not getattr(child, "isLeaf", False):
            return None, request  # not ours: the static files answer
        body = child.render(request)
        if body is not server.NOT_DONE_YET:
            request.write(body)
            request.finish()
        return child, request

    def new_session(self, uri=b"/live/s.m3u8?token=abc") -> str:
        _, request = self.get(uri)
        self.assertEqual(request.responseCode, 302)
        location = request.responseHeaders.getRawHeaders(b"location")[0].decode()
        self.assertTrue(location.startswith("/live/s.m3u8?hls_ctx="), location)
        return location.split("hls_ctx=")[1].split("&")[0]

    def body(self, request) -> str:
        return b"".join(request.written).decode()


class NewSessionTests(SessionTests):
    def test_first_request_plays_and_redirects_with_the_id_and_query(self):
        _, request = self.get(b"/live/s.m3u8?token=abc")
        self.assertEqual(request.responseCode, 302)
        location = request.responseHeaders.getRawHeaders(b"location")[0].decode()
        cid = location.split("hls_ctx=")[1].split("&")[0]
        self.assertEqual(location, f"/live/s.m3u8?hls_ctx={cid}&token=abc")
        self.assertEqual(self.policy.events, [("on_play", cid, "hls-play", "s", "?token=abc")])
        client = self.ctx.clients[cid]
        self.assertEqual((client.protocol, client.type, client.request.vhost, client.request.app),
                         ("http", "hls-play", "__defaultVhost__", "live"))
        self.assertEqual(client.request.tc_url, "http://127.0.0.1/live")

    def test_known_id_serves_the_rewritten_playlist(self):
        cid = self.new_session()
        _, request = self.get(f"/live/s.m3u8?hls_ctx={cid}&token=abc".encode())
        self.assertEqual(request.responseCode or 200, 200)
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-type"), [b"application/vnd.apple.mpegurl"])
        text = self.body(request)
        self.assertIn(f"\ns-3.ts?hls_ctx={cid}\n", text)
        self.assertIn(f"\ns-4.ts?hls_ctx={cid}&k=v\n", text)
        self.assertIn("#EXT-X-MEDIA-SEQUENCE:3\n", text)
        self.assertEqual(len(self.policy.events), 1)  # no second on_play
        self.assertGreater(self.ctx.clients[cid].send_bytes(), 0)

    def test_unknown_id_starts_a_new_session(self):
        _, request = self.get(b"/live/s.m3u8?hls_ctx=nosuchid")
        self.assertEqual(request.responseCode, 302)
        location = request.responseHeaders.getRawHeaders(b"location")[0].decode()
        self.assertNotIn("nosuchid", location)

    def test_a_worker_takes_an_id_another_worker_made_and_answers_the_playlist(self):
        self.ctx.worker = object()  # a worker process of `workers N`
        _, request = self.get(b"/live/s.m3u8?hls_ctx=ab12cd34&token=abc")
        self.assertEqual(request.responseCode or 200, 200)
        self.assertIn("\ns-3.ts?hls_ctx=ab12cd34\n", self.body(request))
        self.assertEqual(self.policy.events, [("on_play", "ab12cd34", "hls-play", "s", "?token=abc")])
        _, again = self.get(b"/live/s.m3u8?hls_ctx=ab12cd34")
        self.assertIn("\ns-3.ts?hls_ctx=ab12cd34\n", self.body(again))
        self.assertEqual(len(self.policy.events), 1)  # a known session from now on
        _, odd = self.get(b"/live/s.m3u8?hls_ctx=NOT-OURS")  # not an id we make: a new one
        self.assertEqual(odd.responseCode, 302)

    def test_denied_is_403_and_no_client(self):
        self.policy.deny = True
        _, request = self.get(b"/live/s.m3u8")
        self.assertEqual(request.responseCode, 403)
        self.assertEqual(self.ctx.clients, {})
        self.assertEqual(self.ctx.hls_sessions.sessions, {})

    def test_client_is_listed_while_on_play_is_pending(self):
        self.policy.pending = defer.Deferred()
        _, request = self.get(b"/live/s.m3u8")
        self.assertFalse(request.finished)
        self.assertEqual(len(self.ctx.clients), 1)
        self.policy.pending.callback(None)
        self.assertEqual(request.responseCode, 302)

    def test_bound(self):
        hs.sessions_of(self.ctx).max_sessions = 2
        self.new_session()
        self.new_session()
        _, request = self.get(b"/live/s.m3u8")
        self.assertEqual(request.responseCode, 503)
        self.assertEqual(len(self.ctx.clients), 2)

    def test_a_stream_without_a_playlist_gets_404_and_no_session(self):
        # Issue 9 item 6: requests for a stream that does not exist made
        # sessions (and on_play) until the cap, refusing real viewers.
        hs.sessions_of(self.ctx).max_sessions = 3
        for i in range(5):
            child, request = self.get(f"/live/nosuch{i}.m3u8?token=abc".encode())
            self.assertIsNone(child)  # the static files answer it: 404
        self.assertEqual(self.policy.events, [])
        self.assertEqual(self.ctx.clients, {})
        self.assertEqual(self.ctx.hls_sessions.sessions, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])
        # a real viewer still gets its session
        self.new_session()

    def test_bad_names_are_refused(self):
        _, request = self.get(b"/live/bad%20name.m3u8")
        self.assertEqual(request.responseCode, 403)
        self.assertEqual(self.policy.events, [])


class LifetimeTests(SessionTests):
    def test_expires_after_twice_the_window_with_on_stop(self):
        cid = self.new_session()
        self.clock.advance(15)
        self.assertIn(cid, self.ctx.clients)
        self.clock.advance(10)  # 25 s > 2 x hls_window (20 s), at a 5 s tick
        self.assertEqual(self.policy.events[-1], ("on_stop", cid))
        self.assertNotIn(cid, self.ctx.clients)
        self.assertEqual(self.ctx.hls_sessions.sessions, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])  # no timer without sessions
        # its next playlist request starts again, with on_play
        _, request = self.get(f"/live/s.m3u8?hls_ctx={cid}".encode())
        self.assertEqual(request.responseCode, 302)
        self.assertEqual(self.policy.events[-1][0], "on_play")

    def test_playlist_and_segment_requests_keep_it_alive(self):
        cid = self.new_session()
        for step in range(6):
            self.clock.advance(8)
            uri = f"/live/s-3.ts?hls_ctx={cid}" if step % 2 else f"/live/s.m3u8?hls_ctx={cid}"
            child, _ = self.get(uri.encode())
            if uri.endswith(".ts?hls_ctx=" + cid):
                self.assertIsNone(child)  # the static files serve segments
        self.assertIn(cid, self.ctx.clients)
        self.assertEqual([e[0] for e in self.policy.events], ["on_play"])
        self.assertGreaterEqual(self.ctx.clients[cid].send_bytes(), 3 * 188)
        self.clock.advance(30)
        self.assertEqual([e[0] for e in self.policy.events], ["on_play", "on_stop"])

    def test_kick(self):
        cid = self.new_session()
        self.assertTrue(self.ctx.kick(cid))
        self.assertNotIn(cid, self.ctx.clients)
        _, request = self.get(f"/live/s.m3u8?hls_ctx={cid}".encode())
        self.assertEqual(request.responseCode, 404)
        self.assertIn("EOF", self.body(request))
        # requests do not keep a kicked session: on_stop once it expires
        self.clock.advance(12)
        self.get(f"/live/s.m3u8?hls_ctx={cid}".encode())
        self.clock.advance(12)
        self.assertEqual(self.policy.events[-1], ("on_stop", cid))
        self.assertEqual(self.ctx.hls_sessions.sessions, {})


class TsCtxOffTests(SessionTests):
    hls = "hls_ts_ctx off;"

    def test_playlist_served_as_is(self):
        cid = self.new_session()
        child, _ = self.get(f"/live/s.m3u8?hls_ctx={cid}".encode())
        self.assertIsNone(child)  # the static file, untouched
        self.assertIn(cid, self.ctx.clients)


class CtxOffTests(SessionTests):
    hls = "hls_ctx off;"

    def test_static_files(self):
        child, _ = self.get(b"/live/s.m3u8")
        self.assertIsNone(child)
        self.assertEqual(self.policy.events, [])


class RewriteTests(unittest.TestCase):
    def test_only_ts_uris(self):
        text = '#EXTM3U\n#EXT-X-MAP:URI="s/init.mp4"\n#EXTINF:2,\ns-1.m4s\n#EXTINF:2,\ns-2.ts\n'
        self.assertEqual(hs.rewrite_playlist(text, "x"),
                         '#EXTM3U\n#EXT-X-MAP:URI="s/init.mp4"\n#EXTINF:2,\ns-1.m4s\n#EXTINF:2,\ns-2.ts?hls_ctx=x\n')
