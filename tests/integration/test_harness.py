"""The harness itself: test ports never collide, and a test whose server
logged an unexpected exception fails."""

from __future__ import annotations

import socket

from twisted.trial import unittest

from . import harness as h

# Patched into the server: bytes with this marker make the RTMP session raise
# a KeyError (a stand-in for any bug that one connection survives).
PROVOKE = b"srs-it-provoke-a-bug"
BUGGY_SESSION = f"""\
from srs_twisted.rtmp import session as _s
_real = _s.ServerSession.receive_data
def _buggy(self, data):
    if {PROVOKE!r} in bytes(data):
        raise KeyError("provoked")
    return _real(self, data)
_s.ServerSession.receive_data = _buggy
"""


def provoke(server: h.Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=h.WAIT) as sock:
        sock.sendall(b"\x03" + PROVOKE + bytes(1536 - len(PROVOKE)))
        sock.settimeout(h.WAIT)
        try:
            while sock.recv(65536):  # the server closes (aborts) this connection
                pass
        except ConnectionResetError:
            pass


class PortTests(unittest.TestCase):
    def test_ports_are_distinct_bindable_and_not_ephemeral(self):
        ports = [h.free_port() for _ in range(2 * h.PORT_BLOCK + 5)]  # crosses block boundaries
        self.assertEqual(len(set(ports)), len(ports))
        low = h._ephemeral_low()
        self.assertTrue(all(h.PORT_FLOOR <= p < low for p in ports), ports)
        with socket.socket() as s:
            s.bind(("127.0.0.1", ports[-1]))


class UnexpectedErrorTests(unittest.TestCase):
    timeout = 120

    def test_a_server_that_logged_an_unexpected_error_fails_the_test(self):
        server = h.Server(sitecustomize=BUGGY_SESSION)
        self.addCleanup(server.stop, False)
        provoke(server)
        line = server.wait_log(r"\[unexpected-error\] RTMP client 127\.0\.0\.1:\d+: KeyError: 'provoked'")
        self.assertIsNotNone(line)
        self.assertIn("[unexpected-error] Traceback (most recent call last):", server.log())
        h.wait_port(server.port)  # the server goes on
        with self.assertRaises(AssertionError) as caught:
            server.stop()
        self.assertIn("KeyError: 'provoked'", str(caught.exception))

    def test_a_test_that_provokes_one_on_purpose_says_so(self):
        server = h.Server(sitecustomize=BUGGY_SESSION, expect_unexpected=True)
        self.addCleanup(server.stop)
        provoke(server)
        server.wait_log(r"\[unexpected-error\] Traceback")
        self.assertEqual(server.stop(), 0)

    def test_a_clean_server_passes(self):
        server = h.Server(sitecustomize=BUGGY_SESSION)
        self.addCleanup(server.stop, False)
        with socket.create_connection(("127.0.0.1", server.port), timeout=h.WAIT) as sock:
            sock.sendall(b"\x03" + bytes(1536))
            sock.settimeout(h.WAIT)
            self.assertEqual(len(sock.recv(1)), 1)  # S0 back: a handshake, no bug
        self.assertEqual(server.unexpected_errors(), "")
        self.assertEqual(server.stop(), 0)
