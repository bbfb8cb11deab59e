"""Reload on the real server: SIGHUP moves the RTMP port without dropping
the connections the old port accepted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import tempfile
import time
import urllib.request

from twisted.trial import unittest

from . import harness as h


def refuses(port: int, deadline: float = h.WAIT) -> bool:
    """True once nothing accepts on ``port`` (within ``deadline``)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
        except ConnectionRefusedError:
            return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


class ReloadTests(unittest.TestCase):
    timeout = 300

    def start(self, conf: str = "vhost __defaultVhost__ { play { mw_latency 100; } }"):
        h.ffmpeg(), h.ffprobe()
        self.server = h.Server(conf)
        self.addCleanup(self.server.stop)
        self.tmp = tempfile.mkdtemp(prefix="srs-reload-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        return self.server

    def move_rtmp_port(self) -> int:
        """Rewrite the config with a new RTMP port; returns it."""
        new_port = h.free_port()
        with open(self.server.conf_path) as f:
            body = f.read()
        old = f"listen 127.0.0.1:{self.server.port};"
        self.assertIn(old, body)
        with open(self.server.conf_path, "w") as f:
            f.write(body.replace(old, f"listen 127.0.0.1:{new_port};"))
        return new_port

    def publish(self, url: str):
        pub = h.publish(url, h.clip(), loop=True)
        self.addCleanup(h.stop_process, pub)
        return pub

    def play_then_move(self):
        """Publish and play on the old port, then rewrite the config with a
        new RTMP port; returns what :meth:`check_moved` needs."""
        old_port = self.server.port
        pub = self.publish(self.server.url("before"))
        out = os.path.join(self.tmp, "before.flv")
        player = h.start_player(self.server.url("before"), 8, out)
        self.addCleanup(h.stop_process, player)
        h.wait_growing(out, 50_000)  # the player gets the stream before the reload
        return old_port, self.move_rtmp_port(), player, pub, out

    def check_moved(self, old_port: int, new_port: int, player, pub, out: str) -> None:
        """The new port serves, the old one refuses, earlier clients kept going."""
        h.wait_port(new_port, proc=self.server.proc)
        self.assertTrue(refuses(old_port), f"port {old_port} still accepts after the reload")
        # The new port takes an FFmpeg publish, playable there.
        self.publish(f"rtmp://127.0.0.1:{new_port}/live/after")
        info = h.probe(f"rtmp://127.0.0.1:{new_port}/live/after")  # waits for the publisher
        h.assert_streams(info, [("video", "h264"), ("audio", "aac")])
        # The player (and publisher) connected before the reload kept going.
        player.wait(120)
        self.assertEqual(player.returncode, 0, player.stderr.read().decode(errors="replace"))
        self.assertIsNone(pub.poll(), "the publisher on the old port was dropped")
        duration = float(h.probe(out)["format"]["duration"])
        self.assertGreaterEqual(duration, 7.5)
        self.assertIsNone(self.server.proc.poll())
        self.assertIn("rtmp-0", self.server.log())
        self.assertNotIn("Traceback", self.server.console())

    def test_sighup_moves_the_rtmp_port_and_keeps_connected_clients(self):
        server = self.start()
        moved = self.play_then_move()
        server.proc.send_signal(signal.SIGHUP)
        self.check_moved(*moved)
        self.assertIn("reload config ok", server.log())

    def test_raw_api_reload_moves_the_rtmp_port(self):
        api = h.free_port()
        server = self.start(
            f"http_api {{ enabled on; listen 127.0.0.1:{api}; raw_api {{ enabled on; allow_reload on; }} }}\n"
            "vhost __defaultVhost__ { play { mw_latency 100; } }"
        )
        h.wait_port(api, proc=server.proc)
        moved = self.play_then_move()
        with urllib.request.urlopen(f"http://127.0.0.1:{api}/api/v1/raw?rpc=reload", timeout=h.WAIT) as r:
            self.assertEqual(json.loads(r.read())["code"], 0)
        self.check_moved(*moved)
        # The API port itself was kept.
        with urllib.request.urlopen(f"http://127.0.0.1:{api}/api/v1/versions", timeout=h.WAIT) as r:
            self.assertEqual(json.loads(r.read())["code"], 0)
