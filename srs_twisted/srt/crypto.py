"""SRT encryption (HaiCrypt, AES-CTR) with the ``cryptography`` package, sans-I/O.

* The keying material message (KM, in KMREQ/KMRSP handshake extensions and in
  KMREQ/KMRSP control packets when the sender refreshes its key) carries the salt
  and the stream encrypting key(s) (SEK, even and/or odd) wrapped (RFC 3394 AES key
  wrap) with the key encrypting key: ``KEK = PBKDF2-HMAC-SHA1(passphrase, last 8
  bytes of the salt, 2048 iterations, key length)``.  A wrong passphrase fails the
  unwrap's integrity check.
* Payloads are AES-CTR with the IV ``salt[0:14] XOR (0^80 || packet sequence
  number (32 bits)) || 0^16``; the data packet's KK field says which key (1 even,
  2 odd).
* In HSv5 both directions use the caller's keys: the listener answers KMREQ with
  the same message (KMRSP) and encrypts what it sends with them.
"""

from __future__ import annotations

import os
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from .packet import REJ_BADSECRET, REJ_CRYPTO, SrtError

__all__ = ["KeyMaterial", "Crypto", "accept_kmreq", "caller_kmreq", "derive_kek", "parse_km", "build_km",
           "KM_SIGN", "CIPHER_AES_CTR", "PBKDF2_ITERATIONS"]

KM_SIGN = 0x2029  # 'HAI'
CIPHER_AES_CTR = 2
SE_SRT = 2
PBKDF2_ITERATIONS = 2048
EVEN, ODD = 1, 2
_HEAD = struct.Struct(">BHBIBBBBHBB")  # 16 bytes


class CryptoError(SrtError):
    def __init__(self, reason: int, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def derive_kek(passphrase: str, salt: bytes, key_len: int) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA1(), length=key_len, salt=salt[-8:], iterations=PBKDF2_ITERATIONS)
    return kdf.derive(passphrase.encode("utf-8"))


class KeyMaterial:
    """A parsed KM message: which keys (``flags``: 1 even, 2 odd, 3 both), the salt and the
    wrapped keys."""

    __slots__ = ("flags", "cipher", "salt", "key_len", "wrapped")

    def __init__(self, flags: int, cipher: int, salt: bytes, key_len: int, wrapped: bytes) -> None:
        self.flags, self.cipher, self.salt, self.key_len, self.wrapped = flags, cipher, salt, key_len, wrapped


def parse_km(data: bytes) -> KeyMaterial:
    if len(data) < 16:
        raise CryptoError(REJ_CRYPTO, f"a keying material message of {len(data)} bytes")
    (vpt, sign, kflags, _keki, cipher, _auth, _se, _r2, _r3, slen, klen) = _HEAD.unpack_from(data)
    if vpt >> 4 != 1 or vpt & 0xF != 2 or sign != KM_SIGN:
        raise CryptoError(REJ_CRYPTO, "not a keying material message (version, type or signature)")
    flags = kflags & 3
    salt_len, key_len = slen * 4, klen * 4
    keys = (flags & 1) + (flags >> 1)
    if not keys or key_len not in (16, 24, 32) or salt_len != 16:
        raise CryptoError(REJ_CRYPTO, f"keying material with keys {flags}, key length {key_len}, salt {salt_len}")
    wrapped = data[16 + salt_len:16 + salt_len + 8 + keys * key_len]
    if len(wrapped) != 8 + keys * key_len:
        raise CryptoError(REJ_CRYPTO, "keying material shorter than its keys")
    return KeyMaterial(flags, cipher, bytes(data[16:16 + salt_len]), key_len, bytes(wrapped))


def build_km(flags: int, salt: bytes, key_len: int, wrapped: bytes, cipher: int = CIPHER_AES_CTR) -> bytes:
    return _HEAD.pack(0x12, KM_SIGN, flags, 0, cipher, 0, SE_SRT, 0, 0, len(salt) // 4, key_len // 4) + salt + wrapped


class Crypto:
    """The keys of one connection (both directions) and the payload cipher."""

    required = True

    def __init__(self, salt: bytes, even: bytes | None, odd: bytes | None, key_len: int, passphrase: str = "") -> None:
        self.passphrase = passphrase
        self.salt = salt
        self.keys = {EVEN: even, ODD: odd}
        self.key_len = key_len
        self.send_key = EVEN if even is not None else ODD
        self._nonce = int.from_bytes(salt[:14], "big")

    def _iv(self, seq: int) -> bytes:
        return ((self._nonce ^ (seq & 0xFFFFFFFF)) << 16).to_bytes(16, "big")

    def _ctr(self, key: bytes, seq: int, data: bytes) -> bytes:
        encryptor = Cipher(algorithms.AES(key), modes.CTR(self._iv(seq))).encryptor()
        return encryptor.update(data) + encryptor.finalize()

    def encrypt(self, seq: int, payload: bytes) -> tuple[int, bytes]:
        return self.send_key, self._ctr(self.keys[self.send_key], seq, payload)

    def decrypt(self, kk: int, seq: int, payload: bytes) -> bytes | None:
        key = self.keys.get(kk)
        return None if key is None else self._ctr(key, seq, payload)

    def update(self, data: bytes) -> None:
        """A refreshed KM from the peer (a KMREQ control packet)."""
        new = _unwrap(self.passphrase, parse_km(data))
        for kk in (EVEN, ODD):
            if new.keys[kk] is not None:
                self.keys[kk] = new.keys[kk]
        self.salt, self._nonce = new.salt, new._nonce


def _unwrap(passphrase: str, km: KeyMaterial) -> Crypto:
    if km.cipher != CIPHER_AES_CTR:
        raise CryptoError(REJ_CRYPTO, f"cipher {km.cipher} is not AES-CTR")
    kek = derive_kek(passphrase, km.salt, km.key_len)
    try:
        keys = aes_key_unwrap(kek, km.wrapped)
    except InvalidUnwrap:
        raise CryptoError(REJ_BADSECRET, "wrong passphrase (the key does not unwrap)") from None
    even = odd = None
    if km.flags == 3:
        even, odd = keys[:km.key_len], keys[km.key_len:]
    elif km.flags == EVEN:
        even = keys
    else:
        odd = keys
    return Crypto(km.salt, even, odd, km.key_len, passphrase)


def accept_kmreq(passphrase: str, pbkeylen: int, data: bytes):
    """The listener's answer to a caller's KMREQ: ``(Crypto, KMRSP body)``; a wrong
    passphrase or an unusable KM raises :class:`CryptoError` with libsrt's reason.  The
    caller's key length is used (libsrt: the sender's ``pbkeylen`` wins)."""
    crypto = _unwrap(passphrase, parse_km(data))
    body = bytes(data)
    return crypto, body + b"\x00" * (-len(body) % 4)


def caller_kmreq(passphrase: str, key_len: int = 16, rand=os.urandom) -> tuple[bytes, Crypto]:
    """A caller's KMREQ body (one even key) and its :class:`Crypto`."""
    salt, sek = rand(16), rand(key_len)
    wrapped = aes_key_wrap(derive_kek(passphrase, salt, key_len), sek)
    return build_km(EVEN, salt, key_len, wrapped), Crypto(salt, sek, None, key_len, passphrase)
