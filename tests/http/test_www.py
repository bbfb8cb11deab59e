"""The built-in pages (srs_twisted/www): served at /, /console/ and
/players/ when http_server.dir has no file of that path, the dir's files
winning; the player libraries at /players/lib/ from node_modules; the
console and /server.json on the API's own port too."""

from __future__ import annotations

import json
import os

from twisted.internet.task import Clock
from twisted.trial import unittest

from srs_twisted.config import load_string
from srs_twisted.context import ServerContext
from srs_twisted.http import www
from srs_twisted.http.api import api_resource
from srs_twisted.http.server import make_site

from .raw import request

CONF = """
listen 1936;
http_api { enabled on; listen 1986; auth { enabled on; username u; password p; } }
http_server { enabled on; listen 8081; }
rtc_server { enabled on; listen 8001; }
vhost __defaultVhost__ { }
"""


class WwwTests(unittest.TestCase):
    def setUp(self):
        self.ctx = ServerContext(load_string(CONF), Clock())
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.site = make_site(self.ctx, self.dir, None)
        self.api_site = make_site(self.ctx, None, api_resource(self.ctx))

    def get(self, target: bytes, site=None):
        response, _, _ = request(site or self.site, "GET", target)
        self.assertIsNotNone(response, target)
        return response

    def builtin(self, path: str) -> bytes:
        with open(os.path.join(www.WWW_DIR, path), "rb") as f:
            return f.read()

    def test_builtin_pages_fill_an_empty_dir(self):
        for target, file in ((b"/", "index.html"), (b"/console/", "console/index.html"),
                             (b"/console/console.js", "console/console.js"), (b"/players/", "players/index.html"),
                             (b"/players/whip.html", "players/whip.html"),
                             (b"/players/srs_player.html?app=live&stream=x.flv", "players/srs-compat.html"),
                             (b"/players/rtc_player.html", "players/srs-compat.html"),
                             (b"/players/whep.html", "players/srs-compat.html"),
                             (b"/players/rtc_publisher.html", "players/srs-compat.html")):
            r = self.get(target)
            self.assertEqual((r.status, r.body), (200, self.builtin(file)), target)
        self.assertEqual(self.get(b"/console").status, 302)

    def test_every_page_shares_one_head_and_header(self):
        # site.js builds the header; no page repeats it
        for page in ("index.html", "console/index.html", "players/index.html", "players/whip.html",
                     "players/latency.html"):
            text = self.builtin(page).decode()
            self.assertIn('<script src="/console/site.js"></script>', text.split("</head>")[0], page)
            self.assertIn('<link rel="stylesheet" href="/console/style.css">', text, page)
            self.assertNotIn("<header", text, page)
            self.assertNotIn("viewport", text, page)
        self.assertEqual(self.get(b"/console/site.js").status, 200)
        self.assertEqual(self.get(b"/console").header("location"), "/console/")
        self.assertEqual(self.get(b"/players/nothing.html").status, 404)
        self.assertEqual(self.get(b"/libs.json").status, 200)
        self.assertEqual(self.get(b"/lib/hls.min.js").status, 404)  # the build-time copy only via /players/lib/

    def test_files_of_the_dir_win(self):
        os.makedirs(os.path.join(self.dir, "console"))
        for path in ("index.html", "console/index.html"):
            with open(os.path.join(self.dir, path), "wb") as f:
                f.write(b"mine " + path.encode())
        self.assertEqual(self.get(b"/").body, b"mine index.html")
        self.assertEqual(self.get(b"/console/").body, b"mine console/index.html")
        # what the dir lacks still comes from the package
        self.assertEqual(self.get(b"/console/console.js").body, self.builtin("console/console.js"))
        self.assertEqual(self.get(b"/players/").body, self.builtin("players/index.html"))

    def test_player_libraries_come_from_node_modules(self):
        modules = self.mktemp()
        for name, inside in www.LIBS.items():
            os.makedirs(os.path.dirname(os.path.join(modules, inside)), exist_ok=True)
            with open(os.path.join(modules, inside), "wb") as f:
                f.write(b"// " + name.encode())
        for name in www.LIBS:
            self.assertEqual(www.lib_file(name, {"SRS_NODE_MODULES": modules}), os.path.join(modules, www.LIBS[name]))
        self.assertIsNone(www.lib_file("other.js", {"SRS_NODE_MODULES": modules}))
        self.assertEqual(set(www.LIBS), {"hls.min.js", "mpegts.js", "dash.all.min.js"})

    def test_player_library_route(self):
        modules = self.mktemp()
        inside = www.LIBS["hls.min.js"]
        os.makedirs(os.path.dirname(os.path.join(modules, inside)))
        with open(os.path.join(modules, inside), "wb") as f:
            f.write(b"var Hls;")
        self.patch(www, "lib_file", lambda name, environ=None: os.path.join(modules, inside) if name == "hls.min.js" else None)
        r = self.get(b"/players/lib/hls.min.js")
        self.assertEqual((r.status, r.body), (200, b"var Hls;"))
        self.assertIn("javascript", r.header("content-type"))
        self.assertEqual(self.get(b"/players/lib/mpegts.js").status, 404)
        self.assertEqual(self.get(b"/players/lib/../../etc/passwd").status, 404)

    def test_server_json(self):
        info = json.loads(self.get(b"/server.json").body)
        self.assertEqual(info["rtmp"], [1936])
        self.assertEqual(info["http"], [8081])
        self.assertEqual(info["api"], [1986])
        self.assertEqual(info["rtc"], [8001])
        self.assertEqual(info["srt"], [])
        self.assertEqual(info["vhosts"], ["__defaultVhost__"])
        self.assertEqual(info["srs_version"], "7.0.18")

    def test_api_port_serves_the_console_without_auth_and_guards_the_api(self):
        r = self.get(b"/console/", self.api_site)
        self.assertEqual((r.status, r.body), (200, self.builtin("console/index.html")))
        self.assertEqual(self.get(b"/console/style.css", self.api_site).status, 200)
        self.assertEqual(self.get(b"/console/site.js", self.api_site).status, 200)  # the shared header
        self.assertEqual(json.loads(self.get(b"/server.json", self.api_site).body)["api"], [1986])
        self.assertEqual(self.get(b"/api/v1/versions", self.api_site).status, 401)
        self.assertEqual(self.get(b"/players/", self.api_site).header("content-type"), "application/json")
