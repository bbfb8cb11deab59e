"""The DTLS certificate a WebRTC server presents, and SDP fingerprints.

SRS makes one self-signed certificate when it starts (ECDSA P-256, or RSA when
``rtc_server.ecdsa off``) and puts its SHA-256 fingerprint in every answer as
``a=fingerprint:sha-256 AB:CD:...``.  The peer's certificate is self-signed
too; what authenticates it is that its fingerprint matches the one in the
peer's SDP (RFC 8122 section 5, RFC 8842).

Only the certificate's validity dates read a clock, and that clock can be
passed in.
"""

from __future__ import annotations

import datetime
import hmac
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

__all__ = [
    "Certificate",
    "FingerprintError",
    "certificate_fingerprint",
    "fingerprint_matches",
    "parse_fingerprint",
]

# The hash functions RFC 8122 names for a=fingerprint, by their SDP token.
_HASHES = {
    "sha-1": hashes.SHA1,
    "sha-224": hashes.SHA224,
    "sha-256": hashes.SHA256,
    "sha-384": hashes.SHA384,
    "sha-512": hashes.SHA512,
}

RSA_BITS = 2048
VALIDITY = datetime.timedelta(days=365)  # SRS: 365 days
# Backdated a day, so a peer whose clock runs behind ours still finds it valid.
BACKDATE = datetime.timedelta(days=1)


class FingerprintError(ValueError):
    """An ``a=fingerprint`` value that is not ``<hash> <hex:hex:...>`` with a known hash."""


def parse_fingerprint(text: str) -> tuple[str, bytes]:
    """``"sha-256 AB:CD:..."`` -> ``("sha-256", b"\\xab\\xcd...")``; hex case does not matter."""
    parts = text.split()
    if len(parts) != 2:
        raise FingerprintError(f"fingerprint {text!r} is not '<hash-function> <hex bytes>'")
    algorithm = parts[0].lower()
    factory = _HASHES.get(algorithm)
    if factory is None:
        raise FingerprintError(f"fingerprint hash function {parts[0]!r} is not one of {', '.join(_HASHES)}")
    octets = parts[1].split(":")
    if any(len(octet) != 2 for octet in octets):
        raise FingerprintError(f"fingerprint {parts[1]!r} is not colon-separated two-digit hex bytes")
    try:
        digest = bytes.fromhex("".join(octets))
    except ValueError:
        raise FingerprintError(f"fingerprint {parts[1]!r} is not hexadecimal") from None
    if len(digest) != factory.digest_size:
        raise FingerprintError(
            f"a {algorithm} fingerprint has {factory.digest_size} bytes, {parts[1]!r} has {len(digest)}"
        )
    return algorithm, digest


def certificate_fingerprint(cert: x509.Certificate, algorithm: str = "sha-256") -> str:
    """The certificate's fingerprint in SDP form: ``sha-256 AB:CD:...`` (upper-case hex, as SRS and browsers)."""
    factory = _HASHES.get(algorithm.lower())
    if factory is None:
        raise FingerprintError(f"fingerprint hash function {algorithm!r} is not one of {', '.join(_HASHES)}")
    digest = cert.fingerprint(factory())
    return f"{algorithm.lower()} {digest.hex(':').upper()}"


def fingerprint_matches(cert: x509.Certificate, expected: str) -> bool:
    """Whether the certificate's digest under ``expected``'s hash function equals ``expected``'s."""
    algorithm, digest = parse_fingerprint(expected)
    return hmac.compare_digest(cert.fingerprint(_HASHES[algorithm]()), digest)


@dataclass(frozen=True)
class Certificate:
    """A private key, its self-signed certificate and the certificate's SHA-256 fingerprint in SDP form."""

    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    cert: x509.Certificate
    fingerprint: str

    @property
    def ecdsa(self) -> bool:
        return isinstance(self.key, ec.EllipticCurvePrivateKey)

    @classmethod
    def generate(
        cls, ecdsa: bool = True, now: datetime.datetime | None = None, common_name: str = "srs-twisted"
    ) -> Certificate:
        """A fresh key (ECDSA P-256, or RSA 2048 when ``ecdsa`` is false) and a self-signed certificate for it."""
        if ecdsa:
            key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = ec.generate_private_key(ec.SECP256R1())
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        return cls.from_key(key, now=now, common_name=common_name)

    @classmethod
    def from_key(
        cls,
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
        now: datetime.datetime | None = None,
        common_name: str = "srs-twisted",
    ) -> Certificate:
        if now is None:
            now = datetime.datetime.now(datetime.timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + VALIDITY)
            .sign(key, hashes.SHA256())
        )
        return cls(key=key, cert=cert, fingerprint=certificate_fingerprint(cert))
