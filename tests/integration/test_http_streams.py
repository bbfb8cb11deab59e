"""HTTP-FLV/TS/AAC/MP3, WebSocket-FLV and HTTPS-FLV from the real server,
read by ffprobe and an autobahn client, with an FFmpeg publisher."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile

from twisted.internet import defer, reactor, task, threads, utils
from twisted.trial import unittest

from srs_twisted.codec import flv
from srs_twisted.rtc.cert import Certificate

from . import harness as h


def self_signed(directory: str) -> tuple[str, str]:
    """server.key and server.crt: the self-signed certificate the WebRTC
    server makes at start (rtc/cert.py), for 127.0.0.1."""
    from cryptography.hazmat.primitives import serialization

    made = Certificate.generate(common_name="127.0.0.1")
    key_path, cert_path = os.path.join(directory, "server.key"), os.path.join(directory, "server.crt")
    with open(key_path, "wb") as f:
        f.write(made.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(made.cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


AV = [("video", "h264"), ("audio", "aac")]


class HttpStreamTests(unittest.TestCase):
    timeout = 300
    kind = "h264-aac"

    def setUp(self):
        h.ffmpeg(), h.ffprobe()
        self.tmp = tempfile.mkdtemp(prefix="srs-http-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        with open(os.path.join(self.tmp, "index.html"), "w") as f:
            f.write("static ok")
        self.key, self.cert = self_signed(self.tmp)
        self.http_port, self.https_port = h.free_port(), h.free_port()
        conf = f"""
http_server {{
    enabled on; listen 127.0.0.1:{self.http_port}; dir {self.tmp};
    https {{ enabled on; listen 127.0.0.1:{self.https_port}; key {self.key}; cert {self.cert}; }}
}}
vhost __defaultVhost__ {{
    http_remux {{ enabled on; mount [vhost]/[app]/[stream].flv; }}
    play {{ mw_latency 100; }}
}}
"""
        self.server = h.Server(conf)
        self.addCleanup(self.server.stop)
        h.wait_port(self.http_port)
        self.pub = h.publish(self.server.url("s"), h.clip(self.kind), loop=True)
        self.addCleanup(h.stop_process, self.pub)
        self.base = f"http://127.0.0.1:{self.http_port}"
        h.wait_http_stream(f"{self.base}/live/s.flv")  # served once the publisher is live

    def probe(self, url, extra=()):
        return utils.getProcessOutputAndValue(
            h.ffprobe(), ["-v", "error", *extra, "-show_streams", "-of", "json", url]
        ).addCallback(self._parse)

    def _parse(self, result):
        out, err, code = result
        self.assertEqual(code, 0, err.decode(errors="replace"))
        return json.loads(out)

    @defer.inlineCallbacks
    def test_flv_has_both_streams(self):
        streams = h.assert_streams((yield self.probe(f"{self.base}/live/s.flv")), AV)
        self.assertEqual((streams["video"]["width"], streams["video"]["height"]), (320, 240))

    @defer.inlineCallbacks
    def test_twenty_players_all_get_every_track(self):
        results = yield defer.gatherResults([self.probe(f"{self.base}/live/s.flv") for _ in range(20)])
        self.assertEqual(len(results), 20)
        for info in results:
            h.assert_streams(info, AV)

    @defer.inlineCallbacks
    def test_https_flv_with_self_signed_certificate(self):
        h.assert_streams((yield self.probe(f"https://127.0.0.1:{self.https_port}/live/s.flv")), AV)

    @defer.inlineCallbacks
    def test_websocket_flv(self):
        from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol, connectWS

        received = bytearray()
        done = defer.Deferred()
        closed = defer.Deferred()

        class Player(WebSocketClientProtocol):
            def onMessage(self, payload, isBinary):
                received.extend(payload)
                if len(received) > 100_000 and not done.called:
                    done.callback(None)
                    self.sendClose()

            def onClose(self, wasClean, code, reason):
                if not done.called:
                    done.errback(AssertionError(f"closed early: {code} {reason}"))
                closed.callback(None)

        url = f"ws://127.0.0.1:{self.http_port}/live/s.flv"
        factory = WebSocketClientFactory(url)
        factory.protocol = Player
        connector = connectWS(factory)
        self.addCleanup(connector.disconnect)
        timeout = reactor.callLater(h.WAIT * 2, connector.disconnect)
        yield done
        yield closed
        timeout.cancel()
        # autobahn's close timers end soon after the close: wait them out
        end = reactor.seconds() + h.WAIT
        while any("autobahn" in getattr(c.func, "__module__", "") or "autobahn" in repr(c.func)
                  for c in reactor.getDelayedCalls()) and reactor.seconds() < end:
            yield task.deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(bytes(received[:3]), b"FLV")
        self.assertEqual(received[4] & 0x05, 0x05)  # has audio and video
        tags = flv.FlvReader().feed(bytes(received))
        kinds = {t.tag_type for t in tags}
        self.assertTrue({8, 9} <= kinds)
        video = [flv.parse_video(t.payload) for t in tags if t.tag_type == 9]
        self.assertTrue(video[0].sequence_header)
        self.assertTrue(any(v.keyframe and not v.sequence_header for v in video))

    @defer.inlineCallbacks
    def test_unknown_stream_is_404_and_static_files_are_served(self):
        import treq

        r = yield treq.get(f"{self.base}/live/nope.flv", persistent=False)
        self.assertEqual(r.code, 404)
        yield r.content()
        r = yield treq.get(f"{self.base}/index.html", persistent=False)
        self.assertEqual(r.code, 200)
        self.assertEqual((yield r.content()), b"static ok")

    @defer.inlineCallbacks
    def test_bad_http_input_leaves_players_unaffected(self):
        port = self.http_port

        def abuse():
            for payload in (b"GARBAGE\r\n\r\n", b"GET /live/s.flv HTTP/1.1\r\nX: " + b"a" * 100_000 + b"\r\n\r\n",
                            b"GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", b"\x16\x03\x01" + os.urandom(500)):
                with socket.create_connection(("127.0.0.1", port), timeout=h.WAIT) as s:
                    s.sendall(payload)
                    try:
                        s.recv(1024)
                    except OSError:
                        pass
            for _ in range(1000):
                with socket.create_connection(("127.0.0.1", port), timeout=h.WAIT):
                    pass

        rss_before = self.server.rss_kb()
        yield task.deferLater(reactor, 0, abuse)
        h.assert_streams((yield self.probe(f"{self.base}/live/s.flv")), AV)
        self.assertLess(self.server.rss_kb() - rss_before, 30_000)
        self.assertIsNone(self.server.proc.poll())

    @defer.inlineCallbacks
    def test_websocket_client_that_never_reads(self):
        port = self.http_port
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        self.addCleanup(sock.close)
        sock.sendall(
            b"GET /live/s.flv HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        rss_before = self.server.rss_kb()
        # Not a wait for an event: how long the client stalls while the
        # publisher keeps sending (5 s of media at least, however busy).
        yield task.deferLater(reactor, 5, lambda: None)
        h.assert_streams((yield self.probe(f"{self.base}/live/s.flv")), AV)
        self.assertLess(self.server.rss_kb() - rss_before, 30_000)


class MountFormatTests(unittest.TestCase):
    """As in SRS, a mount serves its own extension only: .ts, .aac and .mp3
    each come from a mount of theirs (and that mount's server has no .flv)."""

    timeout = 300

    @defer.inlineCallbacks
    def play(self, ext: str, kind: str) -> dict:
        h.ffmpeg(), h.ffprobe()
        port = h.free_port()
        server = h.Server(
            f"http_server {{ enabled on; listen 127.0.0.1:{port}; }}\n"
            f"vhost __defaultVhost__ {{ http_remux {{ enabled on; mount [vhost]/[app]/[stream].{ext}; }} }}"
        )
        self.addCleanup(server.stop)
        pub = h.publish(server.url("m"), h.clip(kind), loop=True)
        self.addCleanup(h.stop_process, pub)
        yield threads.deferToThread(h.wait_http_stream, f"http://127.0.0.1:{port}/live/m.{ext}")
        out, err, code = yield utils.getProcessOutputAndValue(
            h.ffprobe(), ["-v", "error", "-show_streams", "-of", "json", f"http://127.0.0.1:{port}/live/m.{ext}"]
        )
        self.assertEqual(code, 0, err)
        import treq

        r = yield treq.get(f"http://127.0.0.1:{port}/live/m.flv", persistent=False)
        self.assertEqual(r.code, 404)
        yield r.content()
        return json.loads(out)

    @defer.inlineCallbacks
    def test_ts_has_both_streams(self):
        h.assert_streams((yield self.play("ts", "h264-aac")), AV)

    @defer.inlineCallbacks
    def test_aac_is_one_audio_stream(self):
        streams = h.assert_streams((yield self.play("aac", "h264-aac")), [("audio", "aac")])
        self.assertEqual(int(streams["audio"]["sample_rate"]), 44100)

    @defer.inlineCallbacks
    def test_mp3_is_one_audio_stream(self):
        streams = h.assert_streams((yield self.play("mp3", "h264-mp3")), [("audio", "mp3")])
        self.assertEqual(int(streams["audio"]["sample_rate"]), 44100)
