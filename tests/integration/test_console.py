"""The built-in pages in a real browser: Chromium (/usr/bin/chromium, never a
downloaded one) driven by Playwright for Python, against the real server on
127.0.0.1 with FFmpeg publishing over RTMP.

- the landing page, the console, the player and the WHIP publisher load
  without console errors, and SRS's page names open the player;
- the console shows the published stream with its codecs and size, its
  bitrate chart moves, its Kick button disconnects the publisher, and with
  API auth on it asks for credentials and then works;
- the player plays HTTP-FLV, HLS, LL-HLS and DASH: currentTime advances and
  frames are decoded for 10 s each.

Screenshots go to $SRS_TEST_ARTIFACTS (default: console-screenshots/ in the
trial working dir, _trial_temp).  No WebRTC here, so no network namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from twisted.trial import unittest

from . import harness as h
from . import netns
from .browser import CHROMIUM, CHROMIUM_ARGS, need_chromium


def artifacts_dir() -> str:
    path = os.environ.get("SRS_TEST_ARTIFACTS") or os.path.abspath("console-screenshots")
    os.makedirs(path, exist_ok=True)
    return path


class Browser:
    """One headless Chromium with a fresh profile, in this process (Playwright's
    sync API: the server under test is another process, so blocking here is
    fine); every page's console errors and uncaught exceptions are collected
    in ``errors``.  browser.py's Driver runs the WebRTC pages in a subprocess."""

    def __init__(self) -> None:
        need_chromium()
        from playwright.sync_api import sync_playwright

        self.profile = tempfile.mkdtemp(prefix="srs-chromium-")
        self.errors: list[str] = []
        self.failed: list[tuple[str, int]] = []  # (url, status) of every answer >= 400
        self._pw = sync_playwright().start()
        try:
            self.context = self._pw.chromium.launch_persistent_context(
                self.profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
                viewport={"width": 1280, "height": 800})
        except Exception:
            self._pw.stop()
            raise
        self.context.set_default_timeout(h.WAIT * 1000)

    def page(self, url: str):
        page = self.context.new_page()
        page.on("console", lambda m: self._console(page, m))
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: uncaught {e}"))
        page.on("response", lambda r: r.status >= 400 and self.failed.append((r.url, r.status)))
        page.goto(url)
        return page

    def _console(self, page, message) -> None:
        if message.type == "error":
            self.errors.append(f"{page.url}: console.error {message.text}")

    def screenshot(self, page, name: str) -> str:
        path = os.path.join(artifacts_dir(), name)
        page.screenshot(path=path, full_page=True)
        return path

    def wait(self, page, expression: str, timeout: float = h.WAIT, message: str = ""):
        """Poll a JavaScript expression until it is truthy; its value."""
        return h.wait_for(lambda: page.evaluate(expression), timeout, interval=0.2,
                          message=message or f"{expression} on {page.url}; errors: {self.errors}")

    def close(self) -> None:
        try:
            self.context.close()
        finally:
            self._pw.stop()
            shutil.rmtree(self.profile, ignore_errors=True)


class BrowserCase(unittest.TestCase):
    """The real server (HTTP server, API, HTTP-FLV, HLS, DASH) with FFmpeg
    publishing live/s, and Chromium."""

    timeout = 300
    rtc = False  # WebRTC on, everything in a private network namespace (tests/integration/netns.py)
    rtc_extra = ""
    api_extra = ""
    hls = "hls_fragment 2; hls_window 10;"
    hls_enabled = "on"
    remux = "flv"  # the http_remux mount's extension (flv or ts: HLS must be off with ts, as SRS)
    top_extra = ""

    def setUp(self):
        h.ffmpeg()
        rtc = ""
        if self.rtc:  # Chromium refuses 127.0.0.1 candidates: the namespace's 10.99.0.1
            need_chromium()
            netns.enter()
            rtc = (f"rtc_server {{ enabled on; listen {netns.ADDRESS}:{h.free_port()}; candidate {netns.ADDRESS}; }}\n")
        self.root = tempfile.mkdtemp(prefix="srs-console-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.http, self.api = h.free_port(), h.free_port()
        conf = rtc + self.top_extra + (
            f"http_api {{ enabled on; listen 127.0.0.1:{self.api}; {self.api_extra} }}\n"
            f"http_server {{ enabled on; listen 127.0.0.1:{self.http}; dir {self.root}; }}\n"
            "vhost __defaultVhost__ {\n"
            f"  http_remux {{ enabled on; mount [vhost]/[app]/[stream].{self.remux}; }}\n"
            f"  hls {{ enabled {self.hls_enabled}; hls_path {self.root}; {self.hls} }}\n"
            f"  dash {{ enabled on; dash_path {self.root}; dash_fragment 2; dash_update_period 2; dash_window_size 5; }}\n"
            + (f"  rtc {{ enabled on; rtmp_to_rtc on; rtc_to_rtmp on; {self.rtc_extra} }}\n" if self.rtc else "")
            + "}\n"
        )
        self.server = h.Server(conf)
        self.addCleanup(self.server.stop)
        h.wait_port(self.http)
        h.wait_port(self.api)
        self.procs = []
        self.addCleanup(self._stop_procs)  # before the server stops
        self.browser = Browser()
        self.addCleanup(self.browser.close)

    def _stop_procs(self):
        for proc in self.procs:
            h.stop_process(proc)

    def publish(self, name="s"):
        proc = h.publish(self.server.url(name), h.clip("h264-aac", 12), loop=True)
        self.procs.append(proc)
        return proc

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http}{path}"

    def player_url(self, stream_url: str) -> str:
        return self.url("/players/?url=" + urllib.parse.quote(stream_url, safe="") + "&autostart=1")

    def wait_available(self, url: str) -> None:
        """Until the server answers ``url`` (a playlist or MPD is written after a few segments)."""
        if url.startswith("webrtc://"):
            return
        if url.endswith(".flv") or url.endswith(".ts"):
            h.wait_http_stream(url)
            return

        def ok():
            try:
                with urllib.request.urlopen(url, timeout=h.WAIT) as r:
                    return r.status == 200 and len(r.read()) > 0
            except (urllib.error.URLError, OSError):
                return False

        h.wait_for(ok, 60, interval=0.3, message=f"{url} never answered 200")

    def play(self, stream_url: str, kind: str, seconds: float = 10.0, size=(320, 240)):
        """Play for ``seconds`` once started: currentTime advances and frames are decoded."""
        self.wait_available(stream_url)
        page = self.browser.page(self.player_url(stream_url))
        self.assertEqual(page.evaluate("window.srsPlayer.kind"), kind)
        video = "document.getElementById('video')"
        self.browser.wait(page, f"{video}.currentTime > 0.5 && {video}.getVideoPlaybackQuality().totalVideoFrames > 5",
                          timeout=90, message=f"{kind} never started: {self.browser.errors}")
        t0, f0 = page.evaluate(f"[{video}.currentTime, {video}.getVideoPlaybackQuality().totalVideoFrames]")
        end = time.monotonic() + seconds
        while time.monotonic() < end:  # sample through the 10 s: it never stops for long
            page.wait_for_timeout(1000)
            self.assertEqual(page.evaluate("window.srsPlayer.error"), "", kind)
        t1, f1 = page.evaluate(f"[{video}.currentTime, {video}.getVideoPlaybackQuality().totalVideoFrames]")
        self.assertGreater(t1 - t0, seconds * 0.6, f"{kind}: currentTime {t0} -> {t1}")
        self.assertGreater(f1 - f0, seconds * 25 * 0.5, f"{kind}: frames {f0} -> {f1}")
        self.assertEqual(page.evaluate(f"[{video}.videoWidth, {video}.videoHeight]"), list(size))
        self.browser.screenshot(page, f"player-{kind}.png")
        page.close()

    def assertNoErrors(self):
        self.assertEqual(self.browser.errors, [])


class PagesTests(BrowserCase):
    def test_pages_load_without_console_errors(self):
        self.publish()
        for path, name, here, ready in (
            ("/", "landing.png", "Home", "document.querySelectorAll('#publish tr').length >= 1"),
            ("/console/", "console-empty.png", "Console", "window.srsConsole && window.srsConsole.polls >= 2"),
            ("/players/", "player-empty.png", "Player", "window.srsPlayer && typeof window.srsKindOf === 'function'"),
            ("/players/whip.html", "whip.png", "WHIP publisher",
             "window.srsPublisher && document.getElementById('url').value"),
            ("/players/latency.html", "latency-idle.png", "Latency", "window.srsLatencyState.state === 'idle'"),
        ):
            page = self.browser.page(self.url(path))
            self.browser.wait(page, ready)
            # the shared header (/console/site.js): every page's links, this one's marked
            nav = page.evaluate("Array.from(document.querySelectorAll('body > header a')).map(a => [a.textContent, a.className])")
            self.assertEqual([n for n, _ in nav], ["Home", "Console", "Player", "WHIP publisher", "Latency"], path)
            self.assertEqual([n for n, c in nav if c == "here"], [here], path)
            self.assertEqual(page.evaluate("document.querySelector('meta[name=viewport]').content"),
                             "width=device-width, initial-scale=1")
            self.browser.screenshot(page, name)
            page.close()
        self.assertNoErrors()

    def test_landing_page_shows_this_hosts_urls_and_version(self):
        page = self.browser.page(self.url("/"))
        self.browser.wait(page, "document.querySelectorAll('#play tr').length >= 3")
        text = page.inner_text("main")
        self.assertIn(f"rtmp://127.0.0.1:{self.server.port}/live/livestream", text)
        self.assertIn(f"http://127.0.0.1:{self.http}/live/livestream.flv", text)
        self.assertNotIn("WHIP", text)  # rtc_server is off
        self.assertIn("srs-twisted 0.1.0 (SRS 7.0.18)", page.inner_text("header"))
        self.assertNoErrors()

    def test_srs_page_names_open_the_player(self):
        self.publish()
        h.wait_http_stream(self.url("/live/s.flv"))
        page = self.browser.page(self.url(
            f"/players/srs_player.html?app=live&stream=s.flv&server=127.0.0.1&port={self.http}&autostart=true"))
        self.browser.wait(page, "location.pathname === '/players/' && window.srsPlayer && window.srsPlayer.url")
        self.assertEqual(page.evaluate("window.srsPlayer.url"), f"http://127.0.0.1:{self.http}/live/s.flv")
        self.assertIn("autostart=1", page.url)
        page.goto(self.url("/players/rtc_player.html?app=live&stream=s&server=127.0.0.1&api=1985"))
        self.browser.wait(page, "location.pathname === '/players/'")
        self.assertEqual(page.evaluate("document.getElementById('url').value"), "webrtc://127.0.0.1:1985/live/s")
        page.goto(self.url("/players/whep.html?app=live&stream=s&server=127.0.0.1"))
        self.browser.wait(page, "location.pathname === '/players/'")
        self.assertEqual(page.evaluate("document.getElementById('url').value"),
                         "http://127.0.0.1:1985/rtc/v1/whep/?app=live&stream=s")
        # whip.html: SRS's queries; without ?api= the API port is this server's (from /server.json)
        page.goto(self.url("/players/whip.html?app=live&stream=s&server=127.0.0.1&api=1985"))
        self.assertEqual(self.browser.wait(page, "document.getElementById('url').value"),
                         "http://127.0.0.1:1985/rtc/v1/whip/?app=live&stream=s")
        page.goto(self.url("/players/whip.html?app=live&stream=s"))
        self.assertEqual(self.browser.wait(page, "document.getElementById('url').value"),
                         f"http://127.0.0.1:{self.api}/rtc/v1/whip/?app=live&stream=s")
        self.assertIn("WebRTC is off", page.inner_text("#status"))
        page.goto(self.url("/players/"))
        kinds = page.evaluate("""['http://h/a/s.flv', 'ws://h/a/s.flv?x=1', 'http://h/a/s.ts', 'http://h/a/s.m3u8',
            'http://h/a/s.mpd', 'webrtc://h/a/s', 'http://h:1985/rtc/v1/whep/?app=a&stream=s'].map(window.srsKindOf)""")
        self.assertEqual(kinds, ["flv", "flv", "mpegts", "hls", "dash", "whep", "whep"])
        self.assertNoErrors()


class LandingAllServicesTests(BrowserCase):
    """With SRT and WebRTC on, the landing page lists their publish URLs too."""

    def setUp(self):
        self.srt, self.udp = h.free_port(), h.free_port()
        self.top_extra = (f"srt_server {{ enabled on; listen 127.0.0.1:{self.srt}; }}\n"
                          f"rtc_server {{ enabled on; listen 127.0.0.1:{self.udp}; candidate 127.0.0.1; }}\n")
        super().setUp()

    def test_publish_urls_for_rtmp_srt_and_whip(self):
        page = self.browser.page(self.url("/"))
        self.browser.wait(page, "document.querySelectorAll('#publish tr').length >= 3")
        rows = page.evaluate("Array.from(document.querySelectorAll('#publish tr')).map(r => [r.cells[0].textContent,"
                             " r.cells[1].textContent])")
        self.assertEqual(rows, [
            ["RTMP", f"rtmp://127.0.0.1:{self.server.port}/live/livestream"],
            ["SRT", f"srt://127.0.0.1:{self.srt}?streamid=#!::r=live/livestream,m=publish"],
            ["WHIP", f"http://127.0.0.1:{self.api}/rtc/v1/whip/?app=live&stream=livestream"]])
        # the stream box changes every URL
        page.fill("#stream", "app2/cam")
        self.browser.wait(page, "document.querySelector('#publish tr td').textContent.endsWith('/app2/cam')")
        self.assertIn(f"http://127.0.0.1:{self.http}/app2/cam.m3u8", page.inner_text("#play"))
        self.assertNoErrors()


class ConsoleTests(BrowserCase):
    def stream_in_api(self, name="s") -> dict:
        """The stream once the API knows its video codec and size."""
        def ready():
            with urllib.request.urlopen(f"http://127.0.0.1:{self.api}/api/v1/streams/", timeout=h.WAIT) as r:
                streams = json.load(r)["streams"]
            found = [s for s in streams if s["name"] == name and s.get("video") and s["video"].get("width")]
            return found[0] if found else None

        return h.wait_for(ready, 60, interval=0.2, message="the API never listed the stream with its video")

    def test_console_shows_the_stream_its_chart_moves_and_kick_disconnects(self):
        page = self.browser.page(self.url("/console/"))
        self.browser.wait(page, "window.srsConsole.polls >= 1")
        self.assertEqual(page.evaluate("window.srsConsole.api"), f"http://127.0.0.1:{self.api}")
        publisher = self.publish()
        stream = self.stream_in_api()
        # Within 3 s of the API knowing the stream, the console shows its codecs and size.
        row = f"#streams tr[data-stream='{stream['id']}']"
        started = time.monotonic()
        self.browser.wait(page, f"""(() => {{ const r = document.querySelector("{row}");
            return r && r.cells[1].textContent.includes('320x240') && r.cells[2].textContent.includes('AAC'); }})()""",
                          timeout=3.0)
        self.assertLess(time.monotonic() - started, 3.0)
        cells = page.evaluate(f"""Array.from(document.querySelector("{row}").cells).map(c => c.textContent)""")
        self.assertEqual(cells[0], "live/s")
        self.assertIn("H264", cells[1])
        self.assertIn("AAC 44100 Hz 2 ch", cells[2])
        self.assertIn("fmle-publish 127.0.0.1", cells[6])
        self.assertEqual(cells[9], "Kick publisher")
        # fps, players and uptime fill in; the summaries and the vhost list too
        h.wait_for(lambda: 20 <= float(page.evaluate(f"document.querySelector(\"{row}\").cells[3].textContent")
                                       or 0) <= 30, 20, interval=0.2, message="no ~25 fps in the stream row")
        self.assertEqual(page.evaluate(f"document.querySelector(\"{row}\").cells[7].textContent"), "0")  # players
        self.assertRegex(page.evaluate(f"document.querySelector(\"{row}\").cells[8].textContent"), r"^\d+s$")
        summary = page.evaluate("Object.fromEntries(['s-cpu', 's-mem', 's-in', 's-out', 's-conn', 's-uptime',"
                                " 's-config'].map(id => [id, document.getElementById(id).textContent]))")
        self.assertRegex(summary["s-cpu"], r"^\d+\.\d% / \d+\.\d%$")
        self.assertRegex(summary["s-mem"], r"^\d+ MB$")
        self.assertRegex(summary["s-in"], r"\d+ kbps$")
        self.assertRegex(summary["s-out"], r"\d+ kbps$")
        self.assertEqual(summary["s-conn"], "1")
        self.assertNotEqual(summary["s-uptime"], "-")
        self.assertNotEqual(summary["s-config"], "-")
        vhosts = page.evaluate("Array.from(document.querySelectorAll('#vhosts tbody tr')).map(r => r.cells[0].textContent"
                               " + ' ' + r.cells[1].textContent + ' ' + r.cells[2].textContent)")
        self.assertEqual(vhosts, ["__defaultVhost__ yes 1"])
        clients = page.evaluate("Array.from(document.querySelectorAll('#clients tbody tr')).map(r => r.cells[1].textContent)")
        self.assertEqual(clients, ["fmle-publish"])
        # The chart moves: its pixels change as samples come in.
        chart = f"document.querySelector(\"{row} canvas\").toDataURL()"
        first = page.evaluate(chart)
        self.browser.wait(page, f"{chart} !== {first!r}", timeout=10)
        h.wait_for(lambda: int(page.evaluate(f"document.querySelector(\"{row}\").cells[4].textContent") or 0) > 50,
                   20, interval=0.2, message="no input bitrate shown")
        self.browser.screenshot(page, "console.png")
        # Kick the publisher from the console: FFmpeg is disconnected.
        page.click(f"{row} button.kick")
        h.wait_for(lambda: publisher.poll() is not None, h.WAIT, message="the kicked publisher is still connected")
        self.browser.wait(page, f"!document.querySelector(\"{row}\")", timeout=h.WAIT)
        self.assertNoErrors()


class ConsoleAuthTests(BrowserCase):
    api_extra = "auth { enabled on; username admin; password s3cret; }"

    def test_console_asks_for_credentials(self):
        self.publish()
        page = self.browser.page(self.url("/console/"))
        self.browser.wait(page, "window.srsConsole.needAuth")
        self.assertTrue(page.is_visible("#login"))
        self.browser.screenshot(page, "console-login.png")
        page.fill("#username", "admin")
        page.fill("#password", "wrong")
        page.click("#login button")
        self.browser.wait(page, "document.getElementById('login-error').textContent.includes('wrong')")
        page.fill("#password", "s3cret")
        page.click("#login button")
        # Cross-origin (HTTP port -> API port) with Basic auth: the preflight allows Authorization.
        self.browser.wait(page, "window.srsConsole.polls >= 2 && !window.srsConsole.needAuth")
        self.browser.wait(page, "document.querySelector('#streams tr[data-stream]')")
        self.assertFalse(page.is_visible("#login"))
        # On the API's own port it is same-origin.
        page.goto(f"http://127.0.0.1:{self.api}/console/")
        self.browser.wait(page, "window.srsConsole && window.srsConsole.needAuth")
        self.assertEqual(page.evaluate("window.srsConsole.api"), "")
        # The 401s the browser logs as failed resource loads are the API's answer, not page errors.
        self.browser.errors = [e for e in self.browser.errors if "status of 401" not in e]
        self.assertNoErrors()


class PlayerTests(BrowserCase):
    def test_http_flv_hls_and_dash(self):
        self.publish()
        self.play(self.url("/live/s.flv"), "flv")
        self.play(self.url("/live/s.m3u8"), "hls")
        self.play(self.url("/live/s.mpd"), "dash")
        self.assertNoErrors()


class HttpTsPlayerTests(BrowserCase):
    """HTTP-TS (a .ts mount; HLS off with it, as SRS) through mpegts.js."""

    remux = "ts"
    hls_enabled = "off"

    def test_http_ts(self):
        self.publish()
        self.play(self.url("/live/s.ts"), "mpegts")
        self.assertNoErrors()


class LowLatencyPlayerTests(BrowserCase):
    hls = "hls_low_latency on; hls_part_duration 0.5; hls_fragment 2; hls_window 10;"

    def test_llhls(self):
        self.publish()
        self.play(self.url("/live/s.m3u8"), "hls")
        self.assertNoErrors()


class WebRtcTests(BrowserCase):
    """WHEP in the player and the WHIP publisher page, in the private network namespace."""

    rtc = True

    def test_player_plays_webrtc_whep(self):
        self.publish()  # RTMP H.264 + AAC: the bridge gives WebRTC players Opus
        h.wait_http_stream(self.url("/live/s.flv"))
        self.play(f"webrtc://127.0.0.1:{self.api}/live/s", "whep")
        self.assertNoErrors()

    def test_whip_publisher_page_publishes_and_the_player_plays_it(self):
        whip = f"http://127.0.0.1:{self.api}/rtc/v1/whip/?app=live&stream=w"
        page = self.browser.page(self.url("/players/whip.html?autostart=1&url=" + urllib.parse.quote(whip, safe="")))
        self.browser.wait(page, "window.srsPublisher.state === 'connected'", timeout=90,
                          message=lambda: f"WHIP page: {page.evaluate('JSON.stringify(window.srsPublisher)')}")
        self.browser.screenshot(page, "whip-publishing.png")
        def published():
            with urllib.request.urlopen(f"http://127.0.0.1:{self.api}/api/v1/streams/", timeout=h.WAIT) as r:
                found = [s for s in json.load(r)["streams"] if s["name"] == "w" and s.get("video")]
            return found[0] if found else None

        stream = h.wait_for(published, 60, interval=0.3, message="the WHIP stream never showed in the API")
        self.assertEqual(stream["video"]["codec"], "H264")
        self.play(f"webrtc://127.0.0.1:{self.api}/live/w", "whep", size=(640, 360))
        page.click("#stop")
        self.assertEqual(page.evaluate("window.srsPublisher.state"), "idle")

        def unpublished():  # Stop DELETEs the WHIP session: the stream has no publisher
            with urllib.request.urlopen(f"http://127.0.0.1:{self.api}/api/v1/streams/", timeout=h.WAIT) as r:
                return not [s for s in json.load(r)["streams"] if s["name"] == "w" and s["publish"]["active"]]

        h.wait_for(unpublished, h.WAIT, interval=0.3, message="the WHIP stream still has its publisher after Stop")
        page.close()
        self.assertNoErrors()


class LatencyMeterTests(BrowserCase):
    """/players/latency.html publishes its clock over WHIP and reads it back
    over WebRTC, HTTP-FLV, LL-HLS, HLS and DASH (section 2 of issue 15)."""

    rtc = True
    hls = "hls_low_latency on; hls_part_duration 0.5; hls_fragment 2; hls_window 10;"
    rtc_extra = "pli_for_rtmp 1;"  # a key frame a second from the WHIP publisher: 2 s segments
    PROTOCOLS = ("webrtc", "flv", "llhls", "hls", "dash")

    def test_latency_meter_reports_every_protocol(self):
        page = self.browser.page(self.url("/players/latency.html?autostart=1&stream=live/lat&protocols="
                                          + ",".join(self.PROTOCOLS)))
        self.browser.wait(page, "window.srsLatencyState.state === 'connected'", timeout=90,
                          message=lambda: page.evaluate("JSON.stringify(window.srsLatencyState)"))
        # Every protocol reads the pattern (HLS needs a few 2 s segments first) ...
        ready = " && ".join(f"(window.srsLatency.{p} || {{}}).n > 0" for p in self.PROTOCOLS)
        self.browser.wait(page, ready, timeout=120,
                          message=lambda: f"latency: {page.evaluate('JSON.stringify([window.srsLatency, window.srsLatencyState])')}"
                                          f" errors: {self.browser.errors}")
        # ... and keeps reading for 20 s.
        before = page.evaluate("JSON.parse(JSON.stringify(window.srsLatency))")
        page.wait_for_timeout(20000)
        figures = page.evaluate("JSON.parse(JSON.stringify(window.srsLatency))")
        self.browser.screenshot(page, "latency.png")
        for p in self.PROTOCOLS:
            self.assertGreater(figures[p]["n"], before[p]["n"], (p, figures))
            self.assertIsInstance(figures[p]["p50"], int, (p, figures))
            self.assertLess(figures[p]["p95"], 60000, (p, figures))
        self.assertLess(figures["webrtc"]["p50"], 1000, figures)
        self.assertLess(figures["flv"]["p50"], 3000, figures)
        with open(os.path.join(artifacts_dir(), "latency.json"), "w") as f:
            json.dump(figures, f, indent=1)
        # The players start with the publisher: until the first segments are written the
        # stream URLs answer 404, which the players log; the meter restarts them.  Nothing else:
        # no 400 for hls.js's blocking reloads (_HLS_msn=7&_HLS_part=7 after a long segment was one).
        self.assertEqual([r for r in self.browser.failed if r[1] != 404], [])
        self.browser.errors = [e for e in self.browser.errors if "status of 404" not in e]
        self.assertNoErrors()
