"""The sans-I/O DTLS-SRTP endpoint (srs_twisted/rtc/dtls.py): two of ours over an in-memory link, fake clock."""

import random

from twisted.trial import unittest

from srs_twisted.rtc.cert import FingerprintError
from srs_twisted.rtc.dtls import (
    SRTP_AEAD_AES_128_GCM,
    SRTP_AES128_CM_SHA1_80,
    Closed,
    DtlsContext,
    DtlsEndpoint,
    Error,
    HandshakeComplete,
)
from tests.rtc.pair import Link, certificate

CONNECTED = DtlsEndpoint.CONNECTED

# Flights of a full DTLS 1.2 handshake as the Link numbers them per sender (no HelloVerifyRequest):
# client 0 = ClientHello; server 0 = ServerHello..ServerHelloDone; client 1 = Certificate..Finished;
# server 1 = ChangeCipherSpec, Finished (the final flight).


def drop_first(sender_flight):
    """A filter dropping every datagram of the first transmission of one (sender, flight)."""
    def keep(sender, flight, index, datagram):
        return [] if (sender, flight) == sender_flight else [datagram]

    return keep


def records(datagram):
    """(type, epoch, start, end) of each record in a datagram."""
    out, pos = [], 0
    while pos < len(datagram):
        end = pos + 13 + int.from_bytes(datagram[pos + 11 : pos + 13], "big")
        out.append((datagram[pos], int.from_bytes(datagram[pos + 3 : pos + 5], "big"), pos, end))
        pos = end
    return out


class HandshakeTests(unittest.TestCase):
    def assertHandshook(self, link, profile=SRTP_AES128_CM_SHA1_80, key_len=30):
        self.assertEqual((link.client.state, link.server.state), (CONNECTED, CONNECTED))
        c = link.only("client", HandshakeComplete)
        s = link.only("server", HandshakeComplete)
        self.assertEqual((c.client, s.client), (True, False))
        self.assertEqual((c.srtp_profile, s.srtp_profile), (profile, profile))
        self.assertEqual((c.version, s.version), ("DTLSv1.2", "DTLSv1.2"))
        # What one side sends with is what the other receives with, and the two directions differ.
        self.assertEqual(c.local_key, s.remote_key)
        self.assertEqual(c.remote_key, s.local_key)
        self.assertNotEqual(c.local_key, c.remote_key)
        self.assertEqual(len(c.local_key), key_len)
        self.assertEqual(link.client.next_timeout(), None)
        self.assertEqual(link.server.next_timeout(), None)
        return c, s

    def test_both_roles_and_key_kinds(self):
        ecdsa, rsa = certificate(True), certificate(False)
        for client_cert, server_cert in ((ecdsa, rsa), (rsa, ecdsa), (ecdsa, certificate(True, 1))):
            link = Link(client_cert, server_cert)
            link.run()
            c, s = self.assertHandshook(link)
            self.assertEqual(c.peer_fingerprint, server_cert.fingerprint)
            self.assertEqual(s.peer_fingerprint, client_cert.fingerprint)
            self.assertEqual((link.client.retransmits, link.server.retransmits), (0, 0))
            self.assertEqual(link.now, 1000.0)  # no timer fired

    def test_keys_are_rfc5764_exporter_split(self):
        link = Link()
        link.run()
        c, s = self.assertHandshook(link)
        material = link.client._conn.export_keying_material(b"EXTRACTOR-dtls_srtp", 60)
        # client key (16), server key (16), client salt (14), server salt (14)
        self.assertEqual(c.local_key, material[0:16] + material[32:46])
        self.assertEqual(c.remote_key, material[16:32] + material[46:60])

    def test_gcm_profile_and_server_preference(self):
        link = Link(server_context={"srtp_profiles": [SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_SHA1_80]})
        link.run()
        self.assertHandshook(link, SRTP_AEAD_AES_128_GCM, key_len=28)
        link = Link(client_context={"srtp_profiles": [SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_SHA1_80]})
        link.run()
        self.assertHandshook(link, SRTP_AES128_CM_SHA1_80)

    def test_no_common_srtp_profile_fails(self):
        link = Link(
            client_context={"srtp_profiles": [SRTP_AEAD_AES_128_GCM]},
            server_context={"srtp_profiles": [SRTP_AES128_CM_SHA1_80]},
        )
        link.run()
        self.assertIn(DtlsEndpoint.FAILED, (link.client.state, link.server.state))
        self.assertEqual([e for e in link.events["client"] + link.events["server"] if isinstance(e, HandshakeComplete)], [])

    def test_pinned_dtls12(self):
        link = Link(client_context={"version": "dtls1.2"}, server_context={"version": "dtls1.2"})
        link.run()
        self.assertHandshook(link)

    def test_pinned_dtls10(self):
        link = Link(client_context={"version": "dtls1.0"}, server_context={"version": "dtls1.0"})
        link.run()
        c = link.only("client", HandshakeComplete)
        self.assertEqual((c.version, link.only("server", HandshakeComplete).version), ("DTLSv1", "DTLSv1"))
        self.assertEqual(c.local_key, link.only("server", HandshakeComplete).remote_key)

    def test_dtls10_peer_meets_dtls12_only(self):
        link = Link(client_context={"version": "dtls1.0"}, server_context={"version": "dtls1.2"})
        link.run()
        self.assertEqual((link.client.state, link.server.state), (DtlsEndpoint.FAILED, DtlsEndpoint.FAILED))
        self.assertIn("unsupported protocol", link.only("server", Error).message)

    def test_flights_are_cut_to_the_mtu(self):
        # An RSA 2048 certificate makes the server's first flight ~1.5 kB: at MTU 300 it takes six datagrams.
        link = Link(certificate(False), certificate(False, 1), mtu=300)
        link.run()
        self.assertHandshook(link)
        sent = [d for name in ("client", "server") for batch in link.sent[name] for d in batch]
        self.assertLessEqual(max(map(len, sent)), 300)
        self.assertGreaterEqual(len(link.sent["server"][0]), 5)
        for datagram in sent:  # whole records only
            self.assertEqual(records(datagram)[-1][3], len(datagram))

    def test_small_flights_share_a_datagram(self):
        link = Link(mtu=1200)
        link.run()
        self.assertEqual([len(b) for b in link.sent["server"]], [1, 1])
        self.assertEqual([len(b) for b in link.sent["client"]], [1, 1])


class LossTests(unittest.TestCase):
    """A lost flight comes back when the retransmission timer fires on the caller's (fake) clock."""

    def lose(self, sender, flight, **options):
        link = Link(**options)
        link.run(keep=drop_first((sender, flight)))
        HandshakeTests.assertHandshook(self, link)
        return link

    def test_lost_client_hello(self):
        link = self.lose("client", 0)
        self.assertEqual(link.client.retransmits, 1)
        self.assertGreaterEqual(link.now, 1001.0)  # recovered by the timer, one second on

    def test_lost_server_flight(self):
        link = self.lose("server", 0, mtu=300, client_cert=certificate(False), server_cert=certificate(False, 1))
        self.assertGreaterEqual(link.server.retransmits + link.client.retransmits, 1)

    def test_lost_client_certificate_flight(self):
        link = self.lose("client", 1)
        self.assertEqual(link.client.retransmits, 1)

    def test_lost_final_flight(self):
        # The server is done; the client's repeat of its last flight must make the server send its final one again.
        link = self.lose("server", 1)
        self.assertEqual(link.client.retransmits, 1)
        self.assertEqual(link.server.replays, 1)

    def test_heavy_loss_backs_off_and_recovers(self):
        rng = random.Random(7)
        for _ in range(20):
            link = Link(mtu=300, client_cert=certificate(False), server_cert=certificate(False, 1))
            link.run(keep=lambda s, f, i, d: [d] if rng.random() > 0.3 else [], steps=400)
            HandshakeTests.assertHandshook(self, link)

    def test_backoff_doubles_then_gives_up(self):
        link = Link()
        link.client.data_to_send()  # the ClientHello vanishes, and so does everything after
        deadlines = []
        while link.client.state == DtlsEndpoint.HANDSHAKING:
            deadline = link.client.next_timeout()
            deadlines.append(round(deadline - link.now, 2))
            link.now = deadline
            link.client.handle_timeout(link.now - 0.001)  # early: nothing happens
            self.assertEqual(link.client.data_to_send(), [])
            link.client.handle_timeout(link.now)
            if link.client.state == DtlsEndpoint.HANDSHAKING:
                self.assertEqual(len(link.client.data_to_send()), 1)
        self.assertEqual(deadlines, [1.02, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0])
        self.assertEqual(link.client.retransmits, 12)
        link.collect_events()
        error = link.only("client", Error)
        self.assertIn("timed out", error.message)
        self.assertIsNone(link.client.next_timeout())


class DisorderTests(unittest.TestCase):
    def test_reordered_flights(self):
        link = Link(mtu=300, client_cert=certificate(False), server_cert=certificate(False, 1))
        link.run(reorder=True)
        HandshakeTests.assertHandshook(self, link)

    def test_every_datagram_twice(self):
        link = Link(mtu=300, client_cert=certificate(False), server_cert=certificate(False, 1))
        link.run(keep=lambda s, f, i, d: [d, d])
        HandshakeTests.assertHandshook(self, link)
        self.assertEqual((link.client.malformed, link.server.malformed), (0, 0))

    def test_old_flights_replayed_after_the_handshake(self):
        link = Link()
        link.run()
        for name, receiver in (("client", link.server), ("server", link.client)):
            for batch in link.sent[name]:
                for datagram in batch:
                    receiver.receive_data(datagram, link.now)
        link.collect_events()
        self.assertEqual((link.client.state, link.server.state), (CONNECTED, CONNECTED))
        self.assertEqual([type(e) for e in link.events["client"] + link.events["server"]], [HandshakeComplete] * 2)


class CorruptionTests(unittest.TestCase):
    def test_corrupt_finished_is_dropped_and_retransmitted(self):
        def keep(sender, flight, index, datagram):
            if (sender, flight) != ("client", 1):
                return [datagram]
            changed = bytearray(datagram)
            kind, epoch, start, end = records(datagram)[-1]
            assert (kind, epoch) == (22, 1)  # the encrypted Finished
            changed[end - 1] ^= 0x40  # its authentication tag no longer matches
            return [bytes(changed)]

        link = Link()
        link.run(keep=keep)
        HandshakeTests.assertHandshook(self, link)
        self.assertEqual(link.client.retransmits, 1)

    def test_garbage_and_truncated_datagrams_are_ignored(self):
        rng = random.Random(10)

        def keep(sender, flight, index, datagram):
            garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
            dtls_like = bytes([22, 0xFE, 0xFD]) + garbage
            return [garbage, dtls_like, datagram[: len(datagram) // 2], datagram]

        link = Link()
        link.run(keep=keep)
        HandshakeTests.assertHandshook(self, link)
        self.assertGreater(link.client.malformed + link.server.malformed, 0)

    def test_bad_fragment_header_is_dropped_not_fatal(self):
        def keep(sender, flight, index, datagram):
            if (sender, flight) != ("server", 0):
                return [datagram]
            changed = bytearray(datagram)
            start = records(datagram)[0][2]
            changed[start + 13 + 9 : start + 13 + 12] = (0xFFFF).to_bytes(3, "big")  # fragment beyond the record
            return [bytes(changed), datagram]

        link = Link()
        link.run(keep=keep)
        HandshakeTests.assertHandshook(self, link)
        self.assertEqual(link.client.malformed, 1)

    def test_random_input_never_raises_and_never_kills_a_session(self):
        link = Link()
        link.run()
        rng = random.Random(1234)
        for _ in range(2000):
            n = rng.randrange(0, 200)
            datagram = bytes(rng.randrange(256) for _ in range(n))
            if rng.random() < 0.5 and n >= 13:  # plausible record headers reach OpenSSL
                head = bytes([rng.choice((20, 21, 22, 23)), 0xFE, 0xFD, 0, rng.randrange(3)]) + bytes(6)
                datagram = head + (n - 13).to_bytes(2, "big") + datagram[13:]
            link.client.receive_data(datagram, link.now)
            link.server.receive_data(datagram, link.now)
        link.collect_events()
        self.assertEqual((link.client.state, link.server.state), (CONNECTED, CONNECTED))
        self.assertEqual([type(e) for e in link.events["client"] + link.events["server"]], [HandshakeComplete] * 2)
        link.client.close()
        link.exchange()
        self.assertEqual(link.events["server"][-1], Closed(by_peer=True))


class FingerprintTests(unittest.TestCase):
    def test_mismatch_is_refused_on_both_sides(self):
        stranger = certificate(True, 2).fingerprint
        for side in ("client", "server"):
            link = Link(**{f"{side}_expects": stranger})
            link.run()
            self.assertEqual(link.endpoint(side).state, DtlsEndpoint.FAILED)
            error = link.only(side, Error)
            self.assertIn("does not match", error.message)
            self.assertIn(stranger, error.message)
            presented = certificate(True, 1 if side == "client" else 0).fingerprint
            self.assertIn(f"fingerprint {presented} does not match", error.message)
            self.assertEqual([e for e in link.events[side] if isinstance(e, HandshakeComplete)], [])

    def test_any_listed_fingerprint_and_hash_function_matches(self):
        from srs_twisted.rtc.cert import certificate_fingerprint

        server = certificate(True, 1)
        link = Link(client_expects=None)
        link.client._fingerprints = (certificate(True, 2).fingerprint, certificate_fingerprint(server.cert, "sha-512"))
        link.run()
        HandshakeTests.assertHandshook(self, link)

    def test_bad_arguments(self):
        context = DtlsContext(certificate())
        with self.assertRaises(FingerprintError):
            context.endpoint(False, "sha-256 00:11")
        with self.assertRaises(ValueError):
            context.endpoint(False, [])
        with self.assertRaises(ValueError):
            context.endpoint(False, certificate().fingerprint, mtu=100)
        with self.assertRaises(ValueError):
            DtlsContext(certificate(), version="tls1.3")
        with self.assertRaises(ValueError):
            DtlsContext(certificate(), srtp_profiles=["SRTP_NULL"])


class CloseTests(unittest.TestCase):
    def test_close_notify_both_ways(self):
        for closer, other in (("client", "server"), ("server", "client")):
            link = Link()
            link.run()
            link.endpoint(closer).close()
            link.exchange()
            self.assertEqual(link.events[closer][-1], Closed(by_peer=False))
            self.assertEqual(link.events[other][-1], Closed(by_peer=True))
            self.assertEqual((link.client.state, link.server.state), (DtlsEndpoint.CLOSED, DtlsEndpoint.CLOSED))
            # A closed endpoint ignores what still arrives, and closing twice is harmless.
            link.endpoint(closer).close()
            link.endpoint(other).receive_data(b"\x17\xfe\xfd" + bytes(20), link.now)
            link.collect_events()
            self.assertEqual(len([e for e in link.events[closer] if isinstance(e, Closed)]), 1)

    def test_close_during_handshake_sends_nothing(self):
        link = Link()
        link.client.data_to_send()
        link.client.close()
        self.assertEqual(link.client.data_to_send(), [])
        self.assertIsNone(link.client.next_timeout())
        self.assertEqual(link.client.next_event(), Closed(by_peer=False))
