"""Tests for srs_twisted.rtmp.handshake.

The expected digests are recomputed here from the published algorithm
(digest offset = sum of four offset bytes mod 728, HMAC-SHA256 with the
Flash Player / Media Server keys), independently of the module's helpers.
"""

import hashlib
import hmac

from twisted.trial import unittest

from srs_twisted.rtmp.errors import HandshakeError, RtmpError
from srs_twisted.rtmp.handshake import ClientHandshake, ServerHandshake

SIZE = 1536
TAIL = bytes.fromhex("f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae")
FP_KEY = b"Genuine Adobe Flash Player 001" + TAIL
FMS_KEY = b"Genuine Adobe Flash Media Server 001" + TAIL


def seeded_random(seed):
    """A deterministic random_bytes(n) built on SHA-256 in counter mode."""
    state = {"counter": 0}

    def random_bytes(n):
        out = bytearray()
        while len(out) < n:
            block = f"{seed}:{state['counter']}".encode()
            state["counter"] += 1
            out += hashlib.sha256(block).digest()
        return bytes(out[:n])

    return random_bytes


def mac(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def digest_pos(packet, digest_first):
    base = 8 if digest_first else 772
    return sum(packet[base:base + 4]) % 728 + base + 4


def digest_at(packet, pos, key):
    return mac(key, packet[:pos] + packet[pos + 32:])


def make_c1(digest_first, seed="c1", version=b"\x09\x00\x7c\x02"):
    """A complex C1 the way FFmpeg signs it (and key-first, as Flash may)."""
    body = bytearray(b"\0\0\0\0" + version + seeded_random(seed)(SIZE - 8))
    pos = digest_pos(body, digest_first)
    body[pos:pos + 32] = digest_at(bytes(body), pos, FP_KEY[:30])
    return bytes(body), pos


def simple_c1(seed="simple"):
    return b"\0\0\0\x07" + b"\0\0\0\0" + seeded_random(seed)(SIZE - 8)


def check_server_reply(case, reply, c1, c1_digest, digest_first):
    """Verify S0S1S2 produced for a complex C1 the way FFmpeg does."""
    case.assertEqual(len(reply), 1 + 2 * SIZE)
    case.assertEqual(reply[0], 3)
    s1, s2 = reply[1:1 + SIZE], reply[1 + SIZE:]
    # FFmpeg only checks digests when the server's major version is >= 3.
    case.assertGreaterEqual(s1[4], 3)
    pos = digest_pos(s1, digest_first)
    case.assertEqual(s1[pos:pos + 32], digest_at(s1, pos, FMS_KEY[:36]))
    case.assertEqual(s2[1504:], mac(mac(FMS_KEY, c1_digest), s2[:1504]))
    case.assertNotEqual(s2[:1504], c1[:1504])


class ServerSimpleTests(unittest.TestCase):
    def test_simple_reply(self):
        server = ServerHandshake(random_bytes=seeded_random("s"), epoch=0x01020304)
        c1 = simple_c1()
        self.assertEqual(server.data_to_send(), b"")
        server.receive_data(b"\x03" + c1)
        reply = server.data_to_send()
        self.assertEqual(len(reply), 3073)
        self.assertEqual(reply[0], 3)
        s1 = reply[1:1 + SIZE]
        self.assertEqual(s1[:8], b"\x01\x02\x03\x04\0\0\0\0")
        self.assertEqual(s1[8:], seeded_random("s")(SIZE - 8))
        self.assertEqual(reply[1 + SIZE:], c1)
        self.assertFalse(server.complex)
        self.assertIsNone(server.digest_layout)
        self.assertFalse(server.done)
        self.assertEqual(server.data_to_send(), b"")
        server.receive_data(b"\xaa" * SIZE)
        self.assertTrue(server.done)
        self.assertEqual(server.leftover, b"")

    def test_version_without_valid_digest_is_simple(self):
        c1, pos = make_c1(True)
        broken = bytearray(c1)
        broken[pos] ^= 0xFF
        server = ServerHandshake(random_bytes=seeded_random("s"))
        server.receive_data(b"\x03" + bytes(broken))
        reply = server.data_to_send()
        self.assertFalse(server.complex)
        self.assertEqual(reply[1 + SIZE:], bytes(broken))
        self.assertEqual(server.client_version, 0x09007C02)

    def test_nothing_sent_before_c1_complete(self):
        server = ServerHandshake()
        server.receive_data(b"\x03" + simple_c1()[:-1])
        self.assertEqual(server.data_to_send(), b"")
        server.receive_data(b"\x00")
        self.assertEqual(len(server.data_to_send()), 3073)


class ServerComplexTests(unittest.TestCase):
    def _check_layout(self, digest_first):
        c1, pos = make_c1(digest_first)
        server = ServerHandshake(random_bytes=seeded_random("srv"))
        server.receive_data(b"\x03" + c1)
        self.assertTrue(server.complex)
        self.assertEqual(server.digest_layout, "digest-first" if digest_first else "key-first")
        check_server_reply(self, server.data_to_send(), c1, c1[pos:pos + 32], digest_first)

    def test_digest_first(self):
        self._check_layout(True)

    def test_key_first(self):
        self._check_layout(False)

    def test_reply_is_deterministic_given_randomness(self):
        c1, _ = make_c1(True)
        replies = []
        for _ in range(2):
            server = ServerHandshake(random_bytes=seeded_random("same"))
            server.receive_data(b"\x03" + c1)
            replies.append(server.data_to_send())
        self.assertEqual(replies[0], replies[1])


class ServerSplitTests(unittest.TestCase):
    """Whole, byte by byte and split at every offset give the same result."""

    def setUp(self):
        self.c1, pos = make_c1(True)
        self.c1_digest = self.c1[pos:pos + 32]
        self.c2 = seeded_random("c2")(SIZE)
        self.after = b"\x03\x00\x00\x00rest-of-stream"
        self.stream = b"\x03" + self.c1 + self.c2 + self.after
        whole = ServerHandshake(random_bytes=seeded_random("srv"))
        whole.receive_data(self.stream)
        self.expected = whole.data_to_send()
        self.assertTrue(whole.done)
        self.assertEqual(whole.leftover, self.after)

    def _check(self, server, reply):
        self.assertEqual(reply, self.expected)
        self.assertTrue(server.done)
        self.assertTrue(server.complex)
        self.assertEqual(server.leftover, self.after)
        check_server_reply(self, reply, self.c1, self.c1_digest, True)

    def test_byte_by_byte(self):
        server = ServerHandshake(random_bytes=seeded_random("srv"))
        reply = b""
        for i in range(len(self.stream)):
            server.receive_data(self.stream[i:i + 1])
            sent = server.data_to_send()
            if sent:
                # S0S1S2 leave exactly when the last byte of C1 arrives.
                self.assertEqual(i, SIZE)
            reply += sent
        self._check(server, reply)

    def test_every_split(self):
        for cut in range(len(self.stream) + 1):
            server = ServerHandshake(random_bytes=seeded_random("srv"))
            server.receive_data(self.stream[:cut])
            reply = server.data_to_send()
            server.receive_data(self.stream[cut:])
            reply += server.data_to_send()
            self._check(server, reply)

    def test_data_after_done_goes_to_leftover(self):
        server = ServerHandshake(random_bytes=seeded_random("srv"))
        server.receive_data(b"\x03" + self.c1 + self.c2)
        self.assertEqual(server.leftover, b"")
        server.receive_data(b"more")
        self.assertEqual(server.leftover, b"more")


class BadVersionTests(unittest.TestCase):
    def test_rejected_on_first_byte(self):
        for first in (0, 6, 8, 0x16, ord("G")):
            server = ServerHandshake()
            exc = self.assertRaises(HandshakeError, server.receive_data, bytes((first,)))
            self.assertIn(f"version byte is {first}", str(exc))
            self.assertIsInstance(exc, RtmpError)
            self.assertEqual(server.data_to_send(), b"")
            # The machine stays failed.
            self.assertRaises(HandshakeError, server.receive_data, b"\x03")

    def test_http_request(self):
        server = ServerHandshake()
        self.assertRaises(HandshakeError, server.receive_data, b"GET / HTTP/1.1\r\n\r\n")
        self.assertFalse(server.done)

    def test_c2_first_byte_is_not_checked(self):
        server = ServerHandshake()
        server.receive_data(b"\x03" + simple_c1())
        server.receive_data(b"\x06" + b"\0" * (SIZE - 1))
        self.assertTrue(server.done)

    def test_client_rejects_bad_s0(self):
        client = ClientHandshake(random_bytes=seeded_random("cl"))
        client.data_to_send()
        self.assertRaises(HandshakeError, client.receive_data, b"\x06")

    def test_short_random_source(self):
        self.assertRaises(ValueError, ClientHandshake, random_bytes=lambda n: b"\0" * (n - 1))


class ClientTests(unittest.TestCase):
    def test_complex_c1_is_ffmpeg_compatible(self):
        client = ClientHandshake(random_bytes=seeded_random("cl"), epoch=5)
        out = client.data_to_send()
        self.assertEqual(len(out), 1 + SIZE)
        self.assertEqual(out[0], 3)
        c1 = out[1:]
        self.assertEqual(c1[:4], b"\0\0\0\x05")
        self.assertNotEqual(c1[4:8], b"\0\0\0\0")
        pos = digest_pos(c1, True)
        self.assertEqual(c1[pos:pos + 32], digest_at(c1, pos, FP_KEY[:30]))
        # Nothing more until the server answers.
        self.assertEqual(client.data_to_send(), b"")
        self.assertFalse(client.done)

    def test_simple_c1(self):
        client = ClientHandshake(complex=False, random_bytes=seeded_random("cl"))
        c1 = client.data_to_send()[1:]
        self.assertEqual(c1[:8], b"\0" * 8)
        self.assertEqual(c1[8:], seeded_random("cl")(SIZE - 8))

    def _server_bytes(self, c1, version, sign, layout_digest_first=False):
        s1 = bytearray(b"\0\0\0\0" + version + seeded_random("s1")(SIZE - 8))
        pos = digest_pos(s1, layout_digest_first)
        if sign:
            s1[pos:pos + 32] = digest_at(bytes(s1), pos, FMS_KEY[:36])
        c1_pos = digest_pos(c1, True)
        body = seeded_random("s2")(1504)
        s2 = body + mac(mac(FMS_KEY, c1[c1_pos:c1_pos + 32]), body)
        return bytes(s1), s2, bytes(s1[pos:pos + 32])

    def test_complex_c2_signed_against_s1(self):
        for digest_first in (True, False):
            client = ClientHandshake(random_bytes=seeded_random("cl"))
            c1 = client.data_to_send()[1:]
            s1, s2, s1_digest = self._server_bytes(c1, b"\x04\x05\x00\x01", True, digest_first)
            client.receive_data(b"\x03" + s1 + s2 + b"tail")
            self.assertTrue(client.done)
            self.assertTrue(client.server_digest_ok)
            self.assertEqual(client.leftover, b"tail")
            c2 = client.data_to_send()
            self.assertEqual(len(c2), SIZE)
            self.assertEqual(c2[1504:], mac(mac(FP_KEY, s1_digest), c2[:1504]))

    def test_bad_s2_signature_recorded(self):
        client = ClientHandshake(random_bytes=seeded_random("cl"))
        c1 = client.data_to_send()[1:]
        s1, s2, _ = self._server_bytes(c1, b"\x04\x05\x00\x01", True)
        client.receive_data(b"\x03" + s1 + s2[:-1] + bytes((s2[-1] ^ 1,)))
        self.assertTrue(client.done)
        self.assertFalse(client.server_digest_ok)

    def test_unsigned_s1_with_version_gets_echo(self):
        client = ClientHandshake(random_bytes=seeded_random("cl"))
        c1 = client.data_to_send()[1:]
        s1, s2, _ = self._server_bytes(c1, b"\x04\x05\x00\x01", False)
        client.receive_data(b"\x03" + s1 + s2)
        self.assertTrue(client.done)
        self.assertFalse(client.server_digest_ok)
        self.assertEqual(client.data_to_send(), s1)

    def test_simple_server_gets_echo(self):
        client = ClientHandshake(random_bytes=seeded_random("cl"))
        client.data_to_send()
        s1 = b"\0\0\0\x09" + b"\0" * 4 + seeded_random("x")(SIZE - 8)
        stream = b"\x03" + s1 + seeded_random("y")(SIZE)
        for i in range(len(stream)):
            self.assertFalse(client.done)
            client.receive_data(stream[i:i + 1])
        self.assertTrue(client.done)
        self.assertEqual(client.server_version, 0)
        self.assertEqual(client.data_to_send(), s1)


class LoopbackTests(unittest.TestCase):
    def _loop(self, complex):
        client = ClientHandshake(complex=complex, random_bytes=seeded_random("c"))
        server = ServerHandshake(random_bytes=seeded_random("s"))
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send() + b"server-first-chunk")
        self.assertTrue(client.done)
        server.receive_data(client.data_to_send() + b"client-first-chunk")
        self.assertTrue(server.done)
        self.assertEqual(client.leftover, b"server-first-chunk")
        self.assertEqual(server.leftover, b"client-first-chunk")
        self.assertEqual(client.data_to_send(), b"")
        self.assertEqual(server.data_to_send(), b"")
        return client, server

    def test_complex(self):
        client, server = self._loop(True)
        self.assertTrue(server.complex)
        self.assertEqual(server.digest_layout, "digest-first")
        self.assertTrue(client.server_digest_ok)
        self.assertEqual(client.digest_layout, "digest-first")

    def test_simple(self):
        client, server = self._loop(False)
        self.assertFalse(server.complex)
        self.assertFalse(client.server_digest_ok)
