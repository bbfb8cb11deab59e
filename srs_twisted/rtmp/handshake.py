"""RTMP handshake (C0/C1/C2 and S0/S1/S2) as sans-I/O state machines.

Both sides follow the same pattern: feed whatever bytes arrived to
``receive_data``, then send whatever ``data_to_send`` returns.  Once ``done``
is true, ``leftover`` holds the bytes that followed the handshake; they belong
to the chunk stream.

Two flavours exist on the wire:

* the *simple* handshake of the published RTMP specification, where S2 and
  C2 echo the peer's first packet;
* the *complex* (a.k.a. "digest") handshake that Flash Player, FMS, FFmpeg,
  OBS and SRS use.  Each 1536-byte C1/S1 packet is time (4), version (4) and
  two 764-byte blocks, one holding a 128-byte key and one holding a 32-byte
  HMAC-SHA256 digest of the rest of the packet.  The blocks come in either
  order; the position inside each block is derived from four offset bytes.
  The second packet (C2/S2) is 1504 bytes plus an HMAC over them keyed by a
  hash of the peer's digest.

The key blocks carry no meaning for unencrypted RTMP (they would hold a
Diffie-Hellman public key for RTMPE, which we do not speak), so we fill them
with random bytes.

This module does no I/O and reads no clock: randomness comes from an
injectable ``random_bytes(n)`` callable and the S1/C1 time field from the
``epoch`` argument.
"""

import hashlib
import hmac
import os

from srs_twisted.rtmp.errors import HandshakeError

__all__ = [
    "ClientHandshake",
    "DIGEST_FIRST",
    "HANDSHAKE_SIZE",
    "KEY_FIRST",
    "RTMP_VERSION",
    "ServerHandshake",
]

RTMP_VERSION = 3
HANDSHAKE_SIZE = 1536

_DIGEST_LEN = 32
_BLOCK_LEN = 764
_SECOND_PART = HANDSHAKE_SIZE - _DIGEST_LEN  # 1504 random bytes in C2/S2
# The digest sits after the block's 4 offset bytes, somewhere in the first
# 728 bytes that remain once the digest itself fits in the block.
_DIGEST_SPAN = _BLOCK_LEN - 4 - _DIGEST_LEN

# Block order inside C1/S1.  SRS calls key-first "schema0" and digest-first
# "schema1"; FFmpeg and SRS's own client send digest-first.
DIGEST_FIRST = "digest-first"
KEY_FIRST = "key-first"
_DIGEST_BLOCK_START = {DIGEST_FIRST: 8, KEY_FIRST: 8 + _BLOCK_LEN}

# The well-known constants: a readable prefix followed by 32 fixed bytes.
# The prefix alone signs C1/S1; the whole key derives the C2/S2 keys.
_KEY_TAIL = bytes.fromhex(
    "f0eec24a8068bee82e00d0d1029e7e57"
    "6eec5d2d29806fab93b8e636cfeb31ae"
)
_PLAYER_PREFIX = b"Genuine Adobe Flash Player 001"
_SERVER_PREFIX = b"Genuine Adobe Flash Media Server 001"
PLAYER_KEY = _PLAYER_PREFIX + _KEY_TAIL  # 62 bytes
SERVER_KEY = _SERVER_PREFIX + _KEY_TAIL  # 68 bytes

# Version fields we announce in complex C1/S1.  Any non-zero value selects
# the complex handshake; a server major version >= 3 makes FFmpeg check our
# S1/S2 digests, which keeps us honest.
CLIENT_VERSION = 0x09007C02  # 9.0.124.2, a Flash Player version
SERVER_VERSION = 0x04050001  # 4.5.0.1, an FMS-like version


def _hmac_sha256(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def _digest_position(packet, layout):
    """Where the 32-byte digest starts in ``packet`` for ``layout``."""
    start = _DIGEST_BLOCK_START[layout]
    offset = sum(packet[start:start + 4]) % _DIGEST_SPAN
    return start + 4 + offset


def _packet_digest(packet, position, key):
    """HMAC of a C1/S1 packet with the digest bytes themselves left out."""
    return _hmac_sha256(key, bytes(packet[:position]) + bytes(packet[position + _DIGEST_LEN:]))


def _find_digest(packet, key):
    """Return ``(layout, digest)`` if ``packet`` carries a valid digest.

    Key-first is tried first, as SRS and FFmpeg do; a false match in the
    other layout would need an HMAC collision.
    """
    for layout in (KEY_FIRST, DIGEST_FIRST):
        position = _digest_position(packet, layout)
        digest = bytes(packet[position:position + _DIGEST_LEN])
        if hmac.compare_digest(digest, _packet_digest(packet, position, key)):
            return layout, digest
    return None


def _signed_packet(time, version, layout, key, random_bytes):
    """Build a complex C1/S1: random blocks with a digest placed by layout."""
    packet = bytearray(time.to_bytes(4, "big") + version.to_bytes(4, "big"))
    packet += _random(random_bytes, HANDSHAKE_SIZE - 8)
    position = _digest_position(packet, layout)
    digest = _packet_digest(packet, position, key)
    packet[position:position + _DIGEST_LEN] = digest
    return bytes(packet), digest


def _signed_reply(peer_digest, full_key, random_bytes):
    """Build a complex C2/S2: random bytes signed with a key tied to the peer."""
    body = _random(random_bytes, _SECOND_PART)
    return body + _reply_signature(peer_digest, full_key, body)


def _reply_signature(peer_digest, full_key, body):
    return _hmac_sha256(_hmac_sha256(full_key, peer_digest), body)


def _random(random_bytes, size):
    data = bytes(random_bytes(size))
    if len(data) != size:
        raise ValueError(f"random_bytes({size}) returned {len(data)} bytes")
    return data


def _check_time(epoch):
    if not 0 <= epoch <= 0xFFFFFFFF:
        raise ValueError(f"epoch {epoch} does not fit in 32 bits")
    return epoch


class _Handshake:
    """Buffering shared by both sides; subclasses consume the packets."""

    def __init__(self):
        self._buffer = bytearray()
        self._outgoing = []
        self._failed = None
        self.done = False
        self.leftover = b""

    def data_to_send(self):
        """Return (and forget) everything that must be written to the peer."""
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        return data

    def receive_data(self, data):
        """Consume bytes from the peer; may raise :class:`HandshakeError`."""
        if self._failed is not None:
            raise HandshakeError(f"handshake already failed: {self._failed}")
        if self.done:
            # The caller should now feed the chunk reader; keep bytes anyway.
            self.leftover += bytes(data)
            return
        self._buffer += data
        try:
            self._advance()
        except HandshakeError as exc:
            self._failed = str(exc)
            self._buffer.clear()
            raise

    def _check_version_byte(self, who):
        if self._buffer and self._buffer[0] != RTMP_VERSION:
            raise HandshakeError(
                f"{who} version byte is {self._buffer[0]}, only {RTMP_VERSION} "
                "(plain RTMP) is supported"
            )

    def _finish(self, consumed):
        self.leftover = bytes(self._buffer[consumed:])
        self._buffer = bytearray()
        self.done = True

    def _advance(self):
        raise NotImplementedError


class ServerHandshake(_Handshake):
    """Server side: read C0C1, answer S0S1S2 at once, then read C2.

    ``complex`` tells whether the client's C1 carried a valid digest (and we
    therefore answered with signed S1/S2); ``digest_layout`` says which block
    order it used.  C2 is read but not verified, like SRS does: FFmpeg's C2
    does not validate against every server S1.
    """

    def __init__(self, random_bytes=os.urandom, epoch=0):
        super().__init__()
        self._random_bytes = random_bytes
        self._epoch = _check_time(epoch)
        self._replied = False
        self.complex = False
        self.digest_layout = None
        self.client_version = None

    def _advance(self):
        if not self._replied:
            self._check_version_byte("C0")
            if len(self._buffer) < 1 + HANDSHAKE_SIZE:
                return
            self._reply(bytes(self._buffer[1:1 + HANDSHAKE_SIZE]))
            del self._buffer[:1 + HANDSHAKE_SIZE]
            self._replied = True
        if len(self._buffer) >= HANDSHAKE_SIZE:
            self._finish(HANDSHAKE_SIZE)

    def _reply(self, c1):
        self.client_version = int.from_bytes(c1[4:8], "big")
        found = _find_digest(c1, _PLAYER_PREFIX)
        if found is None:
            # Simple handshake: our own S1, then C1 echoed back as S2.
            s1 = (self._epoch.to_bytes(4, "big") + b"\0\0\0\0"
                  + _random(self._random_bytes, HANDSHAKE_SIZE - 8))
            s2 = c1
        else:
            self.complex = True
            self.digest_layout, c1_digest = found
            s1, _ = _signed_packet(self._epoch, SERVER_VERSION, self.digest_layout,
                                   _SERVER_PREFIX, self._random_bytes)
            s2 = _signed_reply(c1_digest, SERVER_KEY, self._random_bytes)
        self._outgoing.append(bytes((RTMP_VERSION,)) + s1 + s2)


class ClientHandshake(_Handshake):
    """Client side, shaped like FFmpeg's: send C0C1, read S0S1S2, send C2.

    With ``complex=True`` C1 is signed (digest-first layout).  If S1 announces
    a version and carries a valid digest, C2 is signed against it, otherwise
    C2 echoes S1.  ``server_digest_ok`` records whether S1's digest and S2's
    signature both checked out; a plain server is accepted either way.
    """

    def __init__(self, complex=True, random_bytes=os.urandom, epoch=0):
        super().__init__()
        self._random_bytes = random_bytes
        self.complex = complex
        self.server_digest_ok = False
        self.server_version = None
        self.digest_layout = None
        epoch = _check_time(epoch)
        if complex:
            c1, self._c1_digest = _signed_packet(epoch, CLIENT_VERSION, DIGEST_FIRST,
                                                 _PLAYER_PREFIX, random_bytes)
        else:
            c1 = epoch.to_bytes(4, "big") + b"\0\0\0\0" + _random(random_bytes, HANDSHAKE_SIZE - 8)
            self._c1_digest = None
        self.c1 = c1
        self._outgoing.append(bytes((RTMP_VERSION,)) + c1)

    def _advance(self):
        self._check_version_byte("S0")
        if len(self._buffer) < 1 + 2 * HANDSHAKE_SIZE:
            return
        s1 = bytes(self._buffer[1:1 + HANDSHAKE_SIZE])
        s2 = bytes(self._buffer[1 + HANDSHAKE_SIZE:1 + 2 * HANDSHAKE_SIZE])
        self._outgoing.append(self._make_c2(s1, s2))
        self._finish(1 + 2 * HANDSHAKE_SIZE)

    def _make_c2(self, s1, s2):
        self.server_version = int.from_bytes(s1[4:8], "big")
        if not self.complex or self.server_version == 0:
            return s1
        found = _find_digest(s1, _SERVER_PREFIX)
        if found is None:
            return s1
        self.digest_layout, s1_digest = found
        expected = _reply_signature(self._c1_digest, SERVER_KEY, s2[:_SECOND_PART])
        self.server_digest_ok = hmac.compare_digest(expected, s2[_SECOND_PART:])
        return _signed_reply(s1_digest, PLAYER_KEY, self._random_bytes)
