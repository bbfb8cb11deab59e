"""The server's DTLS certificate and SDP fingerprints (srs_twisted/rtc/cert.py)."""

import datetime
import hashlib
import re

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from twisted.trial import unittest

from srs_twisted.rtc.cert import (
    Certificate,
    FingerprintError,
    certificate_fingerprint,
    fingerprint_matches,
    parse_fingerprint,
)

SDP_SHA256 = re.compile(r"^sha-256 (?:[0-9A-F]{2}:){31}[0-9A-F]{2}$")


class GenerateTests(unittest.TestCase):
    def test_ecdsa_p256_self_signed(self):
        now = datetime.datetime(2025, 3, 1, 12, 0, tzinfo=datetime.timezone.utc)
        c = Certificate.generate(ecdsa=True, now=now)
        self.assertTrue(c.ecdsa)
        self.assertIsInstance(c.key.curve, ec.SECP256R1)
        self.assertEqual(c.cert.issuer, c.cert.subject)
        # Signed by its own key: the signature verifies with the certificate's public key.
        c.cert.public_key().verify(
            c.cert.signature, c.cert.tbs_certificate_bytes, ec.ECDSA(c.cert.signature_hash_algorithm)
        )
        self.assertEqual(c.cert.not_valid_before_utc, now - datetime.timedelta(days=1))
        self.assertEqual(c.cert.not_valid_after_utc, now + datetime.timedelta(days=365))
        self.assertEqual(c.cert.public_key().public_numbers(), c.key.public_key().public_numbers())

    def test_rsa_2048_when_ecdsa_off(self):
        c = Certificate.generate(ecdsa=False)
        self.assertFalse(c.ecdsa)
        self.assertIsInstance(c.key, rsa.RSAPrivateKey)
        self.assertEqual(c.key.key_size, 2048)
        c.cert.public_key().verify(
            c.cert.signature, c.cert.tbs_certificate_bytes, padding.PKCS1v15(), c.cert.signature_hash_algorithm
        )

    def test_fingerprint_is_sha256_of_der_in_sdp_form(self):
        c = Certificate.generate()
        self.assertRegex(c.fingerprint, SDP_SHA256)
        der = c.cert.public_bytes(serialization.Encoding.DER)
        self.assertEqual(c.fingerprint, "sha-256 " + hashlib.sha256(der).digest().hex(":").upper())

    def test_each_start_makes_a_new_key(self):
        self.assertNotEqual(Certificate.generate().fingerprint, Certificate.generate().fingerprint)


class FingerprintTests(unittest.TestCase):
    def setUp(self):
        self.c = Certificate.generate()

    def test_parse_round_trip_any_case(self):
        algorithm, digest = parse_fingerprint(self.c.fingerprint.lower().replace("sha-256", "SHA-256"))
        self.assertEqual(algorithm, "sha-256")
        self.assertEqual(digest, self.c.cert.fingerprint(hashes.SHA256()))

    def test_matches_under_other_hash_functions(self):
        for algorithm in ("sha-1", "sha-384", "sha-512"):
            text = certificate_fingerprint(self.c.cert, algorithm)
            self.assertTrue(fingerprint_matches(self.c.cert, text), text)
        self.assertFalse(fingerprint_matches(self.c.cert, Certificate.generate().fingerprint))

    def test_malformed_fingerprints_raise_fingerprint_error(self):
        good = self.c.fingerprint.split()[1]
        for text in (
            "",
            "sha-256",
            good,
            f"md5 {good}",
            f"sha-256 {good[:-3]}",  # one byte short
            f"sha-256 {good}:00",  # one byte long
            f"sha-256 {good.replace(':', '')}",  # no colons
            f"sha-256 {'ZZ' + good[2:]}",
            f"sha-256 {good} extra",
        ):
            with self.assertRaises(FingerprintError, msg=text):
                parse_fingerprint(text)
        self.assertTrue(issubclass(FingerprintError, ValueError))
        with self.assertRaises(FingerprintError):
            certificate_fingerprint(self.c.cert, "md5")
