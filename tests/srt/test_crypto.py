"""SRT encryption: RFC 3394 key wrap vectors, the KM message, AES-CTR against captured libsrt
traffic, and encrypted handshakes/data with the core's caller and listener."""

import json
import os

from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap
from twisted.trial import unittest

from srs_twisted.srt import packet as P
from srs_twisted.srt.connection import Delivered
from srs_twisted.srt.crypto import (
    CryptoError, accept_kmreq, build_km, caller_kmreq, derive_kek, parse_km,
)
from srs_twisted.srt.handshake import Accepted, ListenerSettings, Rejected, SrtCaller, SrtListener

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "libsrt_aes_ctr.json")
CALLER = ("127.0.0.1", 4000)

# RFC 3394 section 4: (KEK, key data, ciphertext)
RFC3394 = [
    ("000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF",
     "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"),
    ("000102030405060708090A0B0C0D0E0F1011121314151617", "00112233445566778899AABBCCDDEEFF",
     "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D"),
    ("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "00112233445566778899AABBCCDDEEFF",
     "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7"),
    ("000102030405060708090A0B0C0D0E0F1011121314151617", "00112233445566778899AABBCCDDEEFF0001020304050607",
     "031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2"),
    ("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
     "00112233445566778899AABBCCDDEEFF0001020304050607",
     "A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1"),
    ("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
     "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
     "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"),
]


def _rand(seed):
    import random

    rng = random.Random(seed)
    return lambda n: bytes(rng.getrandbits(8) for _ in range(n))


class KeyWrap(unittest.TestCase):
    def test_rfc3394_vectors(self):
        for kek, key, wrapped in RFC3394:
            kek, key, wrapped = bytes.fromhex(kek), bytes.fromhex(key), bytes.fromhex(wrapped)
            self.assertEqual(aes_key_wrap(kek, key), wrapped)
            self.assertEqual(aes_key_unwrap(kek, wrapped), key)

    def test_kek_is_pbkdf2_sha1_of_the_salt_tail(self):
        import hashlib

        salt = bytes(range(16))
        self.assertEqual(derive_kek("pass", salt, 24), hashlib.pbkdf2_hmac("sha1", b"pass", salt[8:], 2048, 24))


class Captured(unittest.TestCase):
    """A KMREQ and an encrypted data packet srt-live-transmit (libsrt 1.5.1) sent with
    passphrase ``srs-twisted-key``, pbkeylen 16; its input was a repeated 29-byte text."""

    def setUp(self):
        with open(FIXTURE) as f:
            self.capture = json.load(f)

    def test_km_message_fields(self):
        km = parse_km(bytes.fromhex(self.capture["kmreq"]))
        self.assertEqual((km.flags, km.cipher, km.key_len, len(km.salt), len(km.wrapped)), (1, 2, 16, 16, 24))
        self.assertEqual(build_km(km.flags, km.salt, km.key_len, km.wrapped), bytes.fromhex(self.capture["kmreq"]))

    def test_decrypts_libsrt_payload(self):
        crypto, kmrsp = accept_kmreq("srs-twisted-key", 16, bytes.fromhex(self.capture["kmreq"]))
        self.assertEqual(kmrsp, bytes.fromhex(self.capture["kmreq"]))  # KMRSP echoes the KM
        pkt = P.DataPacket.parse(bytes.fromhex(self.capture["data"]))
        self.assertEqual(pkt.key, 1)
        self.assertEqual(crypto.decrypt(pkt.key, pkt.seq, pkt.payload), b"SRS-twisted AES-CTR capture. " * 46)
        # and our encryption of that plaintext is libsrt's ciphertext
        self.assertEqual(crypto.encrypt(pkt.seq, b"SRS-twisted AES-CTR capture. " * 46), (1, pkt.payload))

    def test_wrong_passphrase(self):
        with self.assertRaises(CryptoError) as e:
            accept_kmreq("not-the-key", 16, bytes.fromhex(self.capture["kmreq"]))
        self.assertEqual(e.exception.reason, P.REJ_BADSECRET)

    def test_bad_km_messages(self):
        good = bytes.fromhex(self.capture["kmreq"])
        for bad in (b"", good[:20], b"\x13" + good[1:], good[:15] + b"\x05" + good[16:], good[:8] + b"\x04" + good[9:]):
            self.assertRaises(CryptoError, accept_kmreq, "srs-twisted-key", 16, bad)


def _connect(listener_pw, caller_pw, key_len=16, seed=9):
    listener = SrtListener(ListenerSettings(passphrase=listener_pw, pbkeylen=16), secret=b"k" * 32,
                           kmreq=accept_kmreq)
    kmreq = caller_kmreq(caller_pw, key_len, rand=_rand(seed)) if caller_pw else None
    caller = SrtCaller("live/enc", rand=_rand(seed), kmreq=kmreq)
    caller.start(0)
    caller.datagram_received(listener.handshake(caller.datagrams_to_send()[0], CALLER, 0), 0)
    result = listener.handshake(caller.datagrams_to_send()[0], CALLER, 0)
    if isinstance(result, Rejected):
        caller.datagram_received(result.response, 0)
    else:
        caller.datagram_received(result.response, 0)
    return caller, result


class EncryptedConnections(unittest.TestCase):
    def test_each_key_length_both_ways(self):
        for key_len in (16, 24, 32):
            caller, result = _connect("pass-phrase", "pass-phrase", key_len)
            self.assertIsInstance(result, Accepted)
            server = result.connection(0)
            self.assertEqual(server.crypto.key_len, key_len)
            client = caller.connection
            client.send(b"secret payload", 0)
            (data,) = client.datagrams_to_send()
            self.assertNotIn(b"secret payload", data)
            self.assertEqual(P.DataPacket.parse(data).key, 1)
            server.datagram_received(data, 0)
            server.tick(200_000)
            self.assertEqual([e.payload for e in server.events() if isinstance(e, Delivered)], [b"secret payload"])
            server.send(b"to the player", 0)
            out = [d for d in server.datagrams_to_send() if not d[0] & 0x80]
            client.datagram_received(out[0], 0)
            client.tick(300_000)
            self.assertEqual([e.payload for e in client.events() if isinstance(e, Delivered)], [b"to the player"])

    def test_wrong_passphrase_rejected(self):
        caller, result = _connect("right-passphrase", "wrong-passphrase")
        self.assertIsInstance(result, Rejected)
        self.assertEqual(result.reason, P.REJ_BADSECRET)
        self.assertEqual(caller.reject_reason, P.REJ_BADSECRET)

    def test_clear_caller_refused_by_encrypting_listener(self):
        caller, result = _connect("right-passphrase", "")
        self.assertEqual((result.reason, caller.reject_reason), (P.REJ_UNSECURE, P.REJ_UNSECURE))

    def test_clear_packets_dropped_on_encrypted_connection(self):
        caller, result = _connect("pass-phrase", "pass-phrase")
        server = result.connection(0)
        server.datagram_received(bytes(P.DataPacket(caller.isn, 1, 0, server.local_id, b"clear")), 0)
        server.tick(500_000)
        self.assertEqual(server.undecryptable, 1)
        self.assertEqual([e for e in server.events() if isinstance(e, Delivered)], [])

    def test_key_refresh(self):
        caller, result = _connect("pass-phrase", "pass-phrase")
        server = result.connection(0)
        body, fresh = caller_kmreq("pass-phrase", 16, rand=_rand(77))
        server.datagram_received(bytes(P.ControlPacket(P.USER, 0, 0, server.local_id, body, subtype=P.EXT_KMREQ)), 0)
        (rsp,) = server.datagrams_to_send()
        parsed = P.ControlPacket.parse(rsp)
        self.assertEqual((parsed.type, parsed.subtype, parsed.cif), (P.USER, P.EXT_KMRSP, body))
        key, data = fresh.encrypt(caller.isn, b"after refresh")
        server.datagram_received(bytes(P.DataPacket(caller.isn, 1, 0, server.local_id, data, key=key)), 0)
        server.tick(500_000)
        self.assertEqual([e.payload for e in server.events() if isinstance(e, Delivered)], [b"after refresh"])
