"""The HTTP server's front door (srs_twisted.http.server): which resource a
request path reaches, CORS and preflights, bad paths, logged errors, and
live streams that cannot be played in the asked format.  Requests go in as
exact bytes (tests/http/raw.py), so nothing rewrites them on the way."""

from __future__ import annotations

import os

from twisted.internet.error import ConnectionDone
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial import unittest

from srs_twisted.http import stream as st
from srs_twisted.http.server import make_site
from srs_twisted.live.packet import AUDIO, MediaPacket

from . import test_api
from .raw import request
from .test_api import World

SRS_CORS = test_api.CorsTests.CORS  # the same headers as the API's
# An MPEG-1 layer III frame header (128 kbps, 44.1 kHz, stereo) and a FLV MP3 audio tag byte.
MP3_FRAME = b"\xff\xfb\x90\x64" + bytes(413)
MP3_TAG = b"\x2f"


def conf(root: str, crossdomain: str = "on", hls_ctx: str = "off") -> str:
    return f"""
listen 1935;
http_server {{ enabled on; listen 8080; dir {root}; crossdomain {crossdomain}; }}
vhost __defaultVhost__ {{
    http_remux {{ enabled on; mount [vhost]/[app]/[stream].flv; }}
    hls {{ enabled on; hls_path {root}; hls_ctx {hls_ctx}; }}
}}
vhost ts.example {{ http_remux {{ enabled on; mount [vhost]/[app]/[stream].ts; }} }}
vhost aac.example {{ http_remux {{ enabled on; mount [vhost]/[app]/[stream].aac; }} }}
vhost mp3.example {{ http_remux {{ enabled on; mount [vhost]/[app]/[stream].mp3; }} }}
vhost none.example {{ http_remux {{ enabled on; mount [vhost]/[app]/[stream]; }} }}
"""


class ServerCase(unittest.TestCase):
    crossdomain = "on"
    hls_ctx = "off"

    def setUp(self):
        self.root = self.mktemp()
        os.makedirs(os.path.join(self.root, "live"))
        self.files = {"index.html": b"static ok", "live/s.m3u8": b"#EXTM3U\n#EXTINF:2,\ns-1.ts\n",
                      "live/s-1.ts": b"\x47" * 188, "live/s.flv": b"a file, not the stream"}
        for name, data in self.files.items():
            with open(os.path.join(self.root, name), "wb") as f:
                f.write(data)
        self.world = World(conf(self.root, self.crossdomain, self.hls_ctx))
        self.site = make_site(self.world.ctx, self.root, None, self.crossdomain == "on")
        self.logged = []

        def observe(event):
            msg = event.get("msg")
            if msg:
                self.logged.append(msg)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    def get(self, target: bytes, method="GET", host="127.0.0.1:8080", **headers):
        headers["Host"] = host
        response, transport, protocol = request(self.site, method, target, headers)
        self.addCleanup(protocol.connectionLost, Failure(ConnectionDone("test over")))
        return response


class MountTests(ServerCase):
    """Issue 9.12: a mount serves its own extension only, as in SRS."""

    def test_mount_regex_has_the_mount_extension_only(self):
        regex = st.mount_regex("[vhost]/[app]/[stream].flv")
        self.assertTrue(regex.match("/live/livestream.flv"))
        for path in ("/live/livestream.ts", "/live/livestream-3.ts", "/live/livestream.aac", "/live/s.mp3"):
            self.assertIsNone(regex.match(path), path)
        self.assertTrue(st.mount_regex("[vhost]/[app]/[stream].ts").match("/live/livestream-3.ts"))
        self.assertIsNone(st.mount_regex("[vhost]/[app]/[stream]"))
        self.assertIsNone(st.mount_regex("[vhost]/[app]/[stream].m3u8"))

    def test_match_request_by_host(self):
        ctx = self.world.ctx
        m = st.match_request(ctx, "127.0.0.1", "/live/s.flv")
        self.assertEqual((m.vhost, m.app, m.stream, m.fmt), ("__defaultVhost__", "live", "s", "flv"))
        self.assertIsNone(st.match_request(ctx, "127.0.0.1", "/live/s-1.ts"))
        self.assertIsNone(st.match_request(ctx, "127.0.0.1", "/live/s.aac"))
        m = st.match_request(ctx, "ts.example", "/live/s.ts")
        self.assertEqual((m.vhost, m.fmt, m.content_type), ("ts.example", "ts", b"video/MP2T"))
        self.assertIsNone(st.match_request(ctx, "ts.example", "/live/s.flv"))
        self.assertEqual(st.match_request(ctx, "mp3.example", "/live/s.mp3").fmt, "mp3")
        self.assertIsNone(st.match_request(ctx, "none.example", "/live/s.flv"))

    def test_hls_segments_and_playlists_are_static_files_beside_a_flv_mount(self):
        self.world.publish(stream="s")
        for name in ("live/s-1.ts", "live/s.m3u8"):
            r = self.get(b"/" + name.encode())
            self.assertEqual(r.status, 200, name)
            self.assertEqual(r.body, self.files[name], name)
        r = self.get(b"/live/s.ts")  # no such file, and no .ts mount here: 404, not a live stream
        self.assertEqual(r.status, 404)
        self.assertNotEqual(r.header("content-type"), "video/MP2T")

    def test_flv_is_the_live_stream(self):
        self.world.publish(stream="s")
        r = self.get(b"/live/s.flv")
        self.assertEqual((r.status, r.header("content-type")), (200, "video/x-flv"))
        self.assertTrue(r.body.startswith(b"FLV\x01"))

    def test_the_other_vhosts_serve_their_own_format(self):
        self.world.publish("ts.example", stream="s")
        r = self.get(b"/live/s.ts", host="ts.example")
        self.assertEqual((r.status, r.header("content-type")), (200, "video/MP2T"))
        self.assertEqual(r.body[:1], b"\x47")
        r = self.get(b"/live/s.flv", host="ts.example")  # not this vhost's format: the static file
        self.assertEqual((r.status, r.body), (200, self.files["live/s.flv"]))


class PathTests(ServerCase):
    def test_nul_and_undecodable_paths_are_400(self):
        # Issue 9.5: "/index.html%00.txt" answered 500 with a traceback.
        for target in (b"/index.html%00.txt", b"/live/s%00.flv", b"/%ff.html", b"/index.html%0a"):
            r = self.get(target)
            self.assertEqual(r.status, 400, target)
            self.assertNotIn(b"Traceback", r.body)
            self.assertNotIn(b"Processing Failed", r.body)

    def test_paths_are_normalized_before_routing(self):
        self.world.publish(stream="s")
        for target in (b"/x/../live/s.flv", b"//live//s.flv", b"/live/./s%2Eflv", b"/%6Cive/s.flv"):
            r = self.get(target)
            self.assertEqual((r.status, r.header("content-type")), (200, "video/x-flv"), target)
        r = self.get(b"/../../live/%2e%2e/index.html")
        self.assertEqual((r.status, r.body), (200, b"static ok"))

    def test_errors_are_logged(self):
        self.get(b"/live/nothing-here.m3u8")
        self.get(b"/index.html%00.txt")
        lines = [m for m in self.logged if m.startswith("http GET")]
        self.assertEqual(len(lines), 2, self.logged)
        self.assertIn("/live/nothing-here.m3u8 -> 404", lines[0])
        self.assertIn("/index.html%00.txt -> 400", lines[1])
        self.get(b"/index.html")
        self.assertEqual(len([m for m in self.logged if m.startswith("http GET")]), 2)


class CorsTests(ServerCase):
    """Issue 9.13: SRS's CORS headers on streams, static files, redirects and
    preflights (SrsHttpCorsMux), with crossdomain on (the default)."""

    def assertCors(self, r, what):
        for name, value in SRS_CORS.items():
            self.assertEqual(r.headers.get(name), [value], (what, name))

    def test_static_files_streams_and_errors(self):
        self.world.publish(stream="s")
        for target in (b"/live/s.m3u8", b"/live/s-1.ts", b"/index.html", b"/live/s.flv", b"/live/none.m3u8",
                       b"/live/none.flv"):
            self.assertCors(self.get(target, Origin="http://player.example"), target)

    def test_preflight(self):
        for target in (b"/live/s.flv", b"/live/s.m3u8", b"/live/s-1.ts", b"/nothing"):
            r = self.get(target, "OPTIONS", Origin="http://player.example", **{
                "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range"})
            self.assertEqual((r.status, r.body, r.header("content-length")), (200, b"", "0"), target)
            self.assertCors(r, target)


class HlsCtxCorsTests(ServerCase):
    hls_ctx = "on"

    def test_session_redirect_and_playlist(self):
        r = self.get(b"/live/s.m3u8", Origin="http://player.example")
        self.assertEqual(r.status, 302)
        for name, value in SRS_CORS.items():
            self.assertEqual(r.headers.get(name), [value], name)
        location = r.header("location").encode()
        r = self.get(location, Origin="http://player.example")
        self.assertEqual(r.status, 200)
        self.assertIn(b"s-1.ts?hls_ctx=", r.body)
        self.assertEqual(r.header("access-control-allow-origin"), "*")
        r = self.get(b"/live/s-1.ts?" + location.partition(b"?")[2], Origin="http://player.example")
        self.assertEqual((r.status, r.header("access-control-allow-origin")), (200, "*"))


class NoCrossdomainTests(ServerCase):
    crossdomain = "off"

    def test_no_cors_and_no_preflight(self):
        self.world.publish(stream="s")
        for target in (b"/live/s.m3u8", b"/live/s.flv"):
            r = self.get(target, Origin="http://player.example")
            self.assertEqual(r.status, 200)
            self.assertIsNone(r.header("access-control-allow-origin"), target)
        r = self.get(b"/live/s.flv", "OPTIONS", Origin="http://player.example")
        self.assertEqual(r.status, 405)
        self.assertIsNone(r.header("access-control-allow-origin"))


class AudioFormatTests(ServerCase):
    """Issue 9.15: an audio-only format of a stream with other audio answers
    at once with a status saying so, instead of hanging without headers."""

    def test_mp3_of_an_aac_stream_is_415_at_once(self):
        self.world.publish("mp3.example", stream="s")  # H.264 + AAC sequence headers
        r = self.get(b"/live/s.mp3", host="mp3.example")
        self.assertIsNotNone(r, "no answer at all")
        self.assertEqual(r.status, 415)
        self.assertIn(b"AAC", r.body)
        self.assertTrue(r.complete)
        self.assertEqual(self.world.ctx.clients.keys() - {c.id for c in self.publishers()}, set())

    def test_refused_before_the_play_hook(self):
        policy = self.world.ctx.policy
        calls = []
        self.patch(policy, "on_play", lambda client: calls.append(client) or policy.__class__.on_play(policy, client))
        self.world.publish("mp3.example", stream="s")
        self.assertEqual(self.get(b"/live/s.mp3", host="mp3.example").status, 415)
        self.assertEqual(calls, [])
        self.world.publish("aac.example", stream="s")
        self.assertEqual(self.get(b"/live/s.aac", host="aac.example").status, 200)
        self.assertEqual(len(calls), 1)

    def test_aac_of_an_mp3_stream_is_415(self):
        source, _ = self.world.publish("aac.example", stream="s", headers=False)
        source.write(MediaPacket(AUDIO, 0, MP3_TAG + MP3_FRAME, codec="mp3"))
        r = self.get(b"/live/s.aac", host="aac.example")
        self.assertEqual(r.status, 415)
        self.assertIn(b"MP3", r.body)

    def test_matching_audio_plays(self):
        source, _ = self.world.publish("mp3.example", stream="s", headers=False)
        source.write(MediaPacket(AUDIO, 0, MP3_TAG + MP3_FRAME, codec="mp3"))
        r = self.get(b"/live/s.mp3", host="mp3.example")
        self.assertEqual((r.status, r.header("content-type")), (200, "audio/mpeg"))
        self.world.publish("aac.example", stream="s")
        r = self.get(b"/live/s.aac", host="aac.example")
        self.assertEqual((r.status, r.header("content-type")), (200, "audio/x-aac"))

    def test_headers_are_sent_before_the_first_frame(self):
        self.world.publish("mp3.example", stream="s", headers=False)  # nothing known yet: it waits
        r = self.get(b"/live/s.mp3", host="mp3.example")
        self.assertIsNotNone(r, "no headers while waiting for the first frame")
        self.assertEqual((r.status, r.header("content-type"), r.body), (200, "audio/mpeg", b""))

    def publishers(self):
        return [c for c in self.world.ctx.clients.values() if c.publish]


class MountWarningTests(unittest.TestCase):
    """Issue 9.12: ``srs -t`` warns about mounts that overlap the files the
    server writes under http_server.dir, and about mounts that serve nothing."""

    BASE = "listen 1935;\nhttp_server { enabled on; listen 8080; dir ./objs/nginx/html; }\n"

    def warnings(self, body: str) -> list[str]:
        from srs_twisted.config import load_string

        return st.mount_warnings(load_string(self.BASE + body))

    def test_shipped_layout_has_none(self):
        body = ("vhost __defaultVhost__ { http_remux { enabled on; mount [vhost]/[app]/[stream].flv; }\n"
                "hls { enabled on; hls_path ./objs/nginx/html; } }")
        self.assertEqual(self.warnings(body), [])

    def test_ts_mount_over_the_hls_segments_of_another_vhost(self):
        body = ("vhost __defaultVhost__ { http_remux { enabled on; mount [vhost]/[app]/[stream].ts; } }\n"
                "vhost hls.example { hls { enabled on; } }")
        [warning] = self.warnings(body)
        self.assertIn("overlaps hls_ts_file of vhost hls.example", warning)
        self.assertIn("/live/livestream-1.ts", warning)

    def test_flv_mount_over_dvr_files(self):
        body = "vhost __defaultVhost__ { http_remux { enabled on; } dvr { enabled on; } }"
        [warning] = self.warnings(body)
        self.assertIn("overlaps dvr_path", warning)
        # files outside the served directory overlap nothing
        body = "vhost __defaultVhost__ { http_remux { enabled on; } dvr { enabled on; dvr_path /tmp/[stream].flv; } }"
        self.assertEqual(self.warnings(body), [])

    def test_mount_without_a_format(self):
        [warning] = self.warnings("vhost __defaultVhost__ { http_remux { enabled on; mount [vhost]/[app]/[stream]; } }")
        self.assertIn("serves nothing", warning)

    def test_srs_t_prints_them_and_still_passes(self):
        import io
        import sys

        from srs_twisted import cli

        path = self.mktemp()
        with open(path, "w") as f:
            f.write(self.BASE + "vhost __defaultVhost__ { http_remux { enabled on; } dvr { enabled on; } }\n")
        out, err = io.StringIO(), io.StringIO()
        self.patch(sys, "stdout", out)
        self.patch(sys, "stderr", err)
        self.assertEqual(cli.main(["-t", "-c", path]), 0)
        self.assertIn("test is successful", out.getvalue())
        self.assertRegex(err.getvalue(), r"^warning: vhost __defaultVhost__: http_remux mount .* overlaps dvr_path")
