"""HLS sessions (hls_ctx) end to end: the real server writing HLS into its
http_server dir, an FFmpeg publisher, ffprobe following the 302 to the
session's playlist, and a hook receiver in this test process that sees
on_play and, once the session expired (2 x hls_window), on_stop with SRS's
fields.  The API lists the session and DELETE kicks it."""

from __future__ import annotations

import os
import json
import shutil
import tempfile

from twisted.internet import defer
from twisted.trial import unittest

from . import harness as h
from .receiver import HOOK_KEYS, api_request, ffprobe, start_receiver, until

ACTIONS = ("on_publish", "on_play", "on_stop")


class HlsCtxTests(unittest.TestCase):
    timeout = 300

    def setUp(self):
        h.ffmpeg(), h.ffprobe()
        self.root = tempfile.mkdtemp(prefix="srs-hls-ctx-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.receiver, base = start_receiver(self)
        hooks = "".join(f"{a} {base}/hooks/{a}; " for a in ACTIONS)
        http_port, api_port = h.free_port(), h.free_port()
        # no http_remux here: its .ts mount would take the segment URLs
        self.server = h.Server(f"""
http_api {{ enabled on; listen 127.0.0.1:{api_port}; }}
http_server {{ enabled on; listen 127.0.0.1:{http_port}; dir {self.root}; }}
vhost __defaultVhost__ {{
    hls {{ enabled on; hls_path {self.root}; hls_ctx on; hls_ts_ctx on; hls_fragment 2; hls_window 4; }}
    http_hooks {{ enabled on; {hooks}}}
}}
""")
        self.addCleanup(self.server.stop)
        for port in (http_port, api_port):
            h.wait_port(port, proc=self.server.proc)
        self.server.http_port, self.server.api_port = http_port, api_port
        self.base = f"http://127.0.0.1:{self.server.http_port}"

    def api(self, path, method="GET"):
        return api_request(f"http://127.0.0.1:{self.server.api_port}{path}", method)

    @defer.inlineCallbacks
    def published(self):
        proc = h.publish(self.server.url("s"), h.clip("h264-aac"), loop=True)
        self.addCleanup(h.stop_process, proc)
        yield self.receiver.wait_for(lambda: self.receiver.bodies("on_publish"), 60, "on_publish")
        m3u8 = os.path.join(self.root, "live", "s.m3u8")

        def segments():
            try:
                with open(m3u8) as f:
                    return f.read().count("#EXTINF")
            except OSError:
                return 0
        yield until(segments, lambda n: n >= 2, "two segments", timeout=90)

    @defer.inlineCallbacks
    def test_ffprobe_plays_with_hooks_and_the_session_expires(self):
        yield self.published()
        out, err, code = yield ffprobe(f"{self.base}/live/s.m3u8?token=abc")
        self.assertEqual(code, 0, err[-1000:])
        kinds = {s["codec_type"]: s["codec_name"] for s in json.loads(out)["streams"]}
        self.assertEqual(kinds, {"video": "h264", "audio": "aac"})

        plays = self.receiver.bodies("on_play")
        self.assertEqual(len(plays), 1, plays)
        play = plays[0]
        self.assertEqual(list(play), HOOK_KEYS["on_play"])
        self.assertEqual((play["ip"], play["vhost"], play["app"], play["stream"], play["param"]),
                         ("127.0.0.1", "__defaultVhost__", "live", "s", "?token=abc"))
        self.assertEqual(play["stream_url"], "/live/s")
        self.assertTrue(play["client_id"] and play["stream_id"] and play["server_id"], play)
        cid = play["client_id"]

        # the session is a client of the API while it lives
        r, body, obj = yield self.api(f"/api/v1/clients/{cid}")
        self.assertEqual(r.code, 200, body)
        self.assertEqual(obj["client"]["id"], cid)
        self.assertEqual(obj["client"]["type"], "hls-play")

        # nobody asks any more: on_stop after 2 x hls_window (8 s) at a 5 s tick
        yield self.receiver.wait_for(lambda: self.receiver.bodies("on_stop"), 60, "on_stop")
        stop = self.receiver.bodies("on_stop")[0]
        self.assertEqual(list(stop), HOOK_KEYS["on_stop"])
        self.assertEqual((stop["client_id"], stop["stream"], stop["param"]), (cid, "s", "?token=abc"))
        _, _, obj = yield self.api(f"/api/v1/clients/{cid}")
        self.assertEqual(obj["code"], 2049)  # ERROR_RTMP_CLIENT_NOT_FOUND, as SRS

    @defer.inlineCallbacks
    def test_kicked_session_gets_404(self):
        yield self.published()
        r, _, _ = yield api_request(f"{self.base}/live/s.m3u8")
        self.assertEqual(r.code, 302)
        location = r.headers.getRawHeaders(b"location")[0].decode()
        cid = location.split("hls_ctx=")[1].split("&")[0]
        r, body, _ = yield api_request(self.base + location)
        self.assertEqual(r.code, 200)
        self.assertIn(f".ts?hls_ctx={cid}".encode(), body)
        segment = next(line for line in body.decode().splitlines() if line.endswith(f"?hls_ctx={cid}"))
        r, data, _ = yield api_request(f"{self.base}/live/{segment}")
        self.assertEqual((r.code, data[:1]), (200, b"\x47"))

        r, body, _ = yield self.api(f"/api/v1/clients/{cid}", "DELETE")
        self.assertEqual(r.code, 200, body)
        r, body, _ = yield api_request(self.base + location)
        self.assertEqual(r.code, 404, body)
        _, _, obj = yield self.api(f"/api/v1/clients/{cid}")
        self.assertEqual(obj["code"], 2049)  # ERROR_RTMP_CLIENT_NOT_FOUND, as SRS
