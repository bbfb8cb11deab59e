"""max_connections and http_header_timeout on the real server: slow HTTP
clients fill the server, the next connection on any port is refused, the
slow ones are cut off by the header timeout however they trickle, and then
an FFmpeg RTMP publish and the API work.  Raw blocking sockets, every loop
bounded in count and time."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

from twisted.trial import unittest

from . import harness as h

SLOW = 40  # max_connections, all taken by slow HTTP clients
HEADER_TIMEOUT = 4  # seconds
CLOSE_WITHIN = 10.0  # seconds a refused connection may take to see EOF/reset


def closed_by_peer(sock: socket.socket, wait: float) -> bool:
    """Whether the server closed ``sock`` (EOF or reset) within ``wait`` s."""
    sock.settimeout(wait)
    try:
        return sock.recv(4096) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class ConnectionLimitLiveTests(unittest.TestCase):
    timeout = 180

    def setUp(self):
        self.http_port, self.api_port = h.free_port(), h.free_port()
        self.server = h.Server(f"""
max_connections {SLOW};
http_header_timeout {HEADER_TIMEOUT};
http_api {{ enabled on; listen 127.0.0.1:{self.api_port}; }}
http_server {{ enabled on; listen 127.0.0.1:{self.http_port}; }}
vhost __defaultVhost__ {{ }}
""")
        self.addCleanup(self.server.stop)
        for port in (self.http_port, self.api_port):
            h.wait_port(port, proc=self.server.proc)
        self.sockets: list[socket.socket] = []
        self.addCleanup(lambda: [s.close() for s in self.sockets])
        self.settle()

    def settle(self):
        """One API request answered and closed by the server: by then it has
        accepted and released wait_port's probe connections (accepted, maybe
        late, in an event-loop turn before this request's), so the count of
        open connections is 0."""
        sock = self.open(self.api_port)
        sock.sendall(b"GET /api/v1/versions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        reply = b""
        end = time.monotonic() + 30
        while time.monotonic() < end:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        self.assertIn(b'"major":', reply)

    def open(self, port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sockets.append(sock)
        return sock

    def api(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}{path}", timeout=10) as r:
            return json.loads(r.read())

    def test_slow_clients_are_bounded_and_cut_off(self):
        slow = []
        for _ in range(SLOW):
            sock = self.open(self.http_port)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            slow.append(sock)
        # Past max_connections, a connection on any port is closed at once,
        # and the slow ones are still open.
        for port in (self.http_port, self.api_port, self.server.port):
            self.assertTrue(closed_by_peer(self.open(port), CLOSE_WITHIN), f"port {port} accepted a connection")
        self.assertFalse(closed_by_peer(slow[0], 0.05))
        self.server.wait_log(r"drop http port \d+ client ip=127\.0\.0\.1:\d+, max=40, cur=40")

        # They trickle a header byte a second; the header timeout cuts them.
        started = time.monotonic()
        open_ = list(slow)
        deadline = started + HEADER_TIMEOUT + 60
        while open_ and time.monotonic() < deadline:
            for sock in list(open_):
                try:
                    sock.sendall(b"a")
                except OSError:
                    open_.remove(sock)
                    continue
                if closed_by_peer(sock, 0.01):
                    open_.remove(sock)
            time.sleep(1.0)  # the slowloris's pace, not a wait for the server
        self.assertEqual(open_, [], "slow clients still connected")
        self.assertGreaterEqual(time.monotonic() - started, HEADER_TIMEOUT - 1)
        self.server.wait_log(rf"request headers not complete in {HEADER_TIMEOUT}s \(http_header_timeout\)")

        # The server is free again: an RTMP publish and the API work.
        publisher = h.publish(self.server.url("s"), h.clip(), loop=True)
        self.addCleanup(h.stop_process, publisher)

        def published():
            streams = self.api("/api/v1/streams/")["streams"]
            return [s for s in streams if s["name"] == "s" and s["publish"]["active"] and s["video"]]

        stream = h.wait_for(published, message="the RTMP publish never showed in the API")[0]
        self.assertEqual(stream["clients"], 1)
        self.assertEqual(stream["video"]["codec"], "H264")
        self.assertIsNone(publisher.poll())
