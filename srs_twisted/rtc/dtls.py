"""DTLS-SRTP (RFC 5763/5764) as a sans-I/O endpoint over pyOpenSSL memory BIOs.

One :class:`DtlsContext` per server holds the certificate and OpenSSL context;
each session gets a :class:`DtlsEndpoint` in either role (``client=False`` for
``setup:passive``: wait for the ClientHello; ``client=True`` for
``setup:active``, as when FFmpeg's WHIP muxer offers ``passive``).  Feed
datagrams to ``receive_data(datagram, now)``, send what ``data_to_send()``
returns, read ``next_event()`` (:class:`HandshakeComplete` with the SRTP
profile and keys, :class:`ApplicationData`, :class:`Closed`, :class:`Error`)
and call ``handle_timeout(now)`` at ``next_timeout()``.  No socket, no clock.

How this wraps OpenSSL, and why:

* Datagrams.  A memory BIO is a byte stream: what OpenSSL writes for a flight
  comes out as one run of records.  The MTU is set on the connection
  (``set_ciphertext_mtu`` with ``OP_NO_QUERY_MTU``, as SRS does), so OpenSSL
  fragments handshake messages into records that each fit; we cut the run at
  record boundaries and pack whole records into datagrams of at most ``mtu``
  bytes.  Incoming records are checked before OpenSSL sees them: a malformed
  record header or handshake-fragment header (which OpenSSL would answer with
  a fatal illegal_parameter alert) is dropped and counted in ``malformed``.
  OpenSSL itself silently discards well-framed records that fail its checks
  (a bad MAC, a replayed sequence number), as RFC 6347 4.1.2.7 asks.
* Retransmission.  OpenSSL times its DTLS retransmissions with the wall clock
  (``gettimeofday``) and pyOpenSSL does not expose ``DTLS_set_timer_cb``.  So
  the schedule is ours, on the caller's clock (RFC 6347 4.2.4.1: 1 s, doubled
  up to 60 s, 12 tries), set a little after OpenSSL's own deadline; when it
  fires we first ask OpenSSL (``DTLSv1_handle_timeout``), which retransmits if
  its timer has expired too, and when the two clocks disagree (the wall clock
  jumped, or the caller's clock is not real time) we resend our copy of the
  last flight.  Epoch 0 carries no MAC, so we number every epoch-0 record we
  send from our own counter: a resent copy is as new to the peer's replay
  window as OpenSSL's own retransmission.  The encrypted Finished in a resent
  copy is an unchanged duplicate the peer drops if it has it, so the side that
  sent the final flight (the DTLS server in a full handshake) answers a repeat
  of the peer's Finished by sending its final flight again (RFC 6347 4.2.4).
* The peer is authenticated by its certificate's fingerprint, not by a CA:
  the verify callback accepts any certificate (WebRTC certificates are
  self-signed) and the fingerprint is compared with the SDP's once the
  handshake is done; a mismatch is an :class:`Error`.
* Keys.  ``export_keying_material(b"EXTRACTOR-dtls_srtp", 2 * (key + salt))``
  splits into client key, server key, client salt, server salt (RFC 5764
  4.2); ``local_key``/``remote_key`` are key||salt for each direction.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable, Union

from OpenSSL import SSL

from srs_twisted.rtc.cert import Certificate, certificate_fingerprint, fingerprint_matches, parse_fingerprint

__all__ = ["ApplicationData", "Closed", "DtlsContext", "DtlsEndpoint", "DtlsEvent", "Error", "HandshakeComplete"]

SRTP_AES128_CM_SHA1_80 = "SRTP_AES128_CM_SHA1_80"
SRTP_AEAD_AES_128_GCM = "SRTP_AEAD_AES_128_GCM"
# Master key and master salt lengths: RFC 5764 4.1.2, RFC 7714 12.
SRTP_KEY_SALT = {SRTP_AES128_CM_SHA1_80: (16, 14), SRTP_AEAD_AES_128_GCM: (16, 12)}
# In preference order (the server's order decides).  AES-CM first as SRS, the
# profile every WebRTC peer and FFmpeg's WHIP muxer offer; GCM as well.
DEFAULT_SRTP_PROFILES = (SRTP_AES128_CM_SHA1_80, SRTP_AEAD_AES_128_GCM)
EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"

# SRS's dtls_version -> the one version allowed; "auto" is whatever OpenSSL offers by default (here DTLS 1.2).
_VERSIONS = {"auto": None, "dtls1.0": 0xFEFF, "dtls1.2": 0xFEFD}

DEFAULT_MTU = 1200  # what browsers use for DTLS; leaves room for any tunnel under UDP
MIN_MTU = 256  # OpenSSL refuses smaller
INITIAL_TIMEOUT = 1.0  # RFC 6347 4.2.4.1
MAX_TIMEOUT = 60.0
MAX_RETRANSMITS = 12  # per flight; OpenSSL gives up after 12 timeouts too
# Our deadline lands this much after OpenSSL's, so that with a real clock its
# timer has expired when ours fires and it retransmits with fresh sequence numbers;
# if it is still a little early (a busy process), we wait for it once.
_SLACK = 0.02
_CLOCK_SKEW = 0.25

_HEADER = 13  # type(1) version(2) epoch(2) sequence(6) length(2)
_HANDSHAKE_HEADER = 12  # type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3)
_HANDSHAKE = 22
_CONTENT_TYPES = frozenset((20, 21, _HANDSHAKE, 23))  # change_cipher_spec, alert, handshake, application_data
_READ_SIZE = 1 << 16
_MAX_READS = 64  # application records drained per datagram, a bound and no more


@dataclass(frozen=True)
class HandshakeComplete:
    """The handshake finished and the peer's certificate matched the SDP fingerprint."""

    client: bool  # our role: True when we were the DTLS client (setup:active)
    srtp_profile: str  # e.g. "SRTP_AES128_CM_SHA1_80"
    local_key: bytes  # master key || master salt protecting what we send
    remote_key: bytes  # master key || master salt protecting what the peer sends
    peer_fingerprint: str  # the peer certificate's sha-256 fingerprint, SDP form
    version: str  # "DTLSv1.2"
    cipher: str


@dataclass(frozen=True)
class ApplicationData:
    data: bytes


@dataclass(frozen=True)
class Closed:
    by_peer: bool  # the peer sent close_notify (else close() was called)


@dataclass(frozen=True)
class Error:
    """The session failed: a fatal alert, a handshake timeout, a fingerprint mismatch."""

    message: str


DtlsEvent = Union[HandshakeComplete, ApplicationData, Closed, Error]


def _accept_any_certificate(connection, x509, errno, depth, ok) -> bool:
    # WebRTC peers present self-signed certificates; the SDP fingerprint is the check.
    return True


class DtlsContext:
    """The OpenSSL context every endpoint of a server shares: certificate, SRTP profiles, version."""

    def __init__(
        self,
        certificate: Certificate,
        version: str = "auto",
        srtp_profiles: Iterable[str] = DEFAULT_SRTP_PROFILES,
    ) -> None:
        if version not in _VERSIONS:
            raise ValueError(f"dtls_version {version!r} is not one of {', '.join(_VERSIONS)}")
        profiles = tuple(srtp_profiles)
        unknown = [p for p in profiles if p not in SRTP_KEY_SALT]
        if not profiles or unknown:
            raise ValueError(f"SRTP profiles {unknown or profiles!r}: choose from {', '.join(SRTP_KEY_SALT)}")
        self.certificate = certificate
        self.srtp_profiles = profiles
        ctx = SSL.Context(SSL.DTLS_METHOD)
        ctx.use_certificate(certificate.cert)
        ctx.use_privatekey(certificate.key)
        ctx.check_privatekey()
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _accept_any_certificate)
        # No tickets, no cache: every session is one full handshake, and the final flight is smaller.
        ctx.set_options(SSL.OP_NO_QUERY_MTU | SSL.OP_NO_TICKET)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        pinned = _VERSIONS[version]
        if pinned is not None:
            ctx.set_min_proto_version(pinned)
            ctx.set_max_proto_version(pinned)
        if version == "dtls1.0":
            # OpenSSL 3+ refuses DTLS 1.0's SHA-1/MD5 PRF above security level 0; asking for it is asking for that.
            ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
        ctx.set_tlsext_use_srtp(":".join(profiles).encode("ascii"))
        self._ctx = ctx

    def endpoint(self, client: bool, remote_fingerprints: str | Iterable[str], **options) -> DtlsEndpoint:
        return DtlsEndpoint(self, client, remote_fingerprints, **options)


def _records(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each record in OpenSSL's output, which is well formed."""
    spans = []
    pos = 0
    while pos + _HEADER <= len(data):
        end = pos + _HEADER + int.from_bytes(data[pos + 11 : pos + 13], "big")
        spans.append((pos, end))
        pos = end
    return spans


def _handshake_fragments_ok(body: bytes) -> bool:
    """A plaintext handshake record holds whole fragments whose offsets fit their messages."""
    pos = 0
    while pos < len(body):
        if pos + _HANDSHAKE_HEADER > len(body):
            return False
        length = int.from_bytes(body[pos + 1 : pos + 4], "big")
        offset = int.from_bytes(body[pos + 6 : pos + 9], "big")
        fragment = int.from_bytes(body[pos + 9 : pos + 12], "big")
        pos += _HANDSHAKE_HEADER + fragment
        if offset + fragment > length or pos > len(body):
            return False
    return bool(body)


def _check_records(datagram: bytes) -> tuple[bytes, int, bool]:
    """The well-formed records of a datagram, how many were dropped, and whether one was an encrypted handshake."""
    kept = []
    dropped = 0
    protected_handshake = False
    pos = 0
    while pos < len(datagram):
        if len(datagram) - pos < _HEADER:
            return b"".join(kept), dropped + 1, protected_handshake
        kind = datagram[pos]
        end = pos + _HEADER + int.from_bytes(datagram[pos + 11 : pos + 13], "big")
        if kind not in _CONTENT_TYPES or datagram[pos + 1] != 0xFE or end > len(datagram):
            return b"".join(kept), dropped + 1, protected_handshake  # framing lost: the rest is unreadable
        epoch = int.from_bytes(datagram[pos + 3 : pos + 5], "big")
        if kind == _HANDSHAKE and epoch == 0 and not _handshake_fragments_ok(datagram[pos + _HEADER : end]):
            dropped += 1
        else:
            protected_handshake = protected_handshake or (kind == _HANDSHAKE and epoch > 0)
            kept.append(datagram[pos:end])
        pos = end
    return b"".join(kept), dropped, protected_handshake


class DtlsEndpoint:
    """One DTLS association of a WebRTC session (see the module docstring)."""

    HANDSHAKING, CONNECTED, CLOSED, FAILED = "handshaking", "connected", "closed", "failed"

    def __init__(
        self,
        context: DtlsContext,
        client: bool,
        remote_fingerprints: str | Iterable[str],
        mtu: int = DEFAULT_MTU,
        initial_timeout: float = INITIAL_TIMEOUT,
        max_timeout: float = MAX_TIMEOUT,
        max_retransmits: int = MAX_RETRANSMITS,
    ) -> None:
        if isinstance(remote_fingerprints, str):
            remote_fingerprints = [remote_fingerprints]
        self._fingerprints = tuple(remote_fingerprints)
        if not self._fingerprints:
            raise ValueError("the peer's SDP fingerprint is required to authenticate its certificate")
        for text in self._fingerprints:
            parse_fingerprint(text)  # FingerprintError now rather than a mismatch later
        if mtu < MIN_MTU:
            raise ValueError(f"DTLS MTU {mtu} is below OpenSSL's minimum {MIN_MTU}")
        self.client = client
        self.mtu = mtu
        self.initial_timeout = initial_timeout
        self.max_timeout = max_timeout
        self.max_retransmits = max_retransmits
        self.state = self.HANDSHAKING
        self.retransmits = 0  # flights sent again, by either way, over the whole handshake
        self.replays = 0  # of which: our stored copy resent unchanged
        self.malformed = 0  # incoming records dropped before OpenSSL saw them
        self._profiles = context.srtp_profiles
        self._conn = SSL.Connection(context._ctx, None)
        self._conn.set_ciphertext_mtu(mtu)
        if client:
            self._conn.set_connect_state()
        else:
            self._conn.set_accept_state()
        self._outbox: list[bytes] = []
        self._events: deque[DtlsEvent] = deque()
        self._flight: list[bytes] = []  # our last flight, as sent
        self._sent_final_flight = False
        self._epoch0_sequence = 0
        self._interval = initial_timeout
        self._tries = 0  # retransmissions of the current flight
        self._waited = False
        self._deadline: float | None = None

    # -- the caller's side ---------------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Begin: the client sends its ClientHello; the server waits for one."""
        if self.client and self.state == self.HANDSHAKING and not self._flight:
            self._step(now)

    def receive_data(self, datagram: bytes, now: float) -> None:
        """Feed one UDP datagram (or RFC 4571 frame) that carries DTLS records."""
        if self.state in (self.CLOSED, self.FAILED):
            return
        records, dropped, protected_handshake = _check_records(bytes(datagram))
        self.malformed += dropped
        if not records:
            return
        self._conn.bio_write(records)
        answered = self._step(now)
        if (
            not answered
            and protected_handshake
            and self._sent_final_flight
            and self.state == self.CONNECTED
            and self.replays < self.max_retransmits
        ):
            # The peer repeated its last flight: our final flight was lost.
            self._send(self._flight)
            self.replays += 1
            self.retransmits += 1

    def data_to_send(self) -> list[bytes]:
        """The datagrams to send now, each at most ``mtu`` bytes."""
        out, self._outbox = self._outbox, []
        return out

    def next_event(self) -> DtlsEvent | None:
        return self._events.popleft() if self._events else None

    def next_timeout(self) -> float | None:
        """When (on the caller's clock) ``handle_timeout`` must be called, or None."""
        return self._deadline if self.state == self.HANDSHAKING else None

    def handle_timeout(self, now: float) -> None:
        """Retransmit the last flight if its answer is overdue."""
        if self.state != self.HANDSHAKING or self._deadline is None or now < self._deadline:
            return
        if self._tries >= self.max_retransmits:
            self._fail(f"DTLS handshake timed out: no answer after {self._tries} retransmissions")
            return
        try:
            self._conn.DTLSv1_handle_timeout()
        except SSL.Error as e:
            self._fail(f"DTLS handshake timed out: {_describe(e)}")
            return
        fresh = self._drain()
        if fresh:
            self._flight = fresh
            self._send(fresh)
        else:
            remaining = self._conn.DTLSv1_get_timeout()
            if remaining is not None and remaining < _CLOCK_SKEW and not self._waited:
                self._waited = True  # OpenSSL's timer is about to expire: let it retransmit
                self._deadline = now + remaining + _SLACK
                return
            self._send(self._flight)
            self.replays += 1
        self._waited = False
        self.retransmits += 1
        self._tries += 1
        self._interval = min(self._interval * 2, self.max_timeout)
        self._arm(now)

    def close(self) -> None:
        """Send close_notify (once connected) and stop; emits Closed(by_peer=False)."""
        if self.state in (self.CLOSED, self.FAILED):
            return
        if self.state == self.CONNECTED:
            self._shutdown()
        self.state = self.CLOSED
        self._deadline = None
        self._events.append(Closed(by_peer=False))

    # -- inside ----------------------------------------------------------------------------------------------------

    def _step(self, now: float) -> bool:
        """Let OpenSSL consume what the memory BIO holds; True if it wrote anything."""
        wrote = False
        if self.state == self.HANDSHAKING:
            try:
                self._conn.do_handshake()
            except SSL.WantReadError:
                return self._flush_flight(now, finished=False)
            except SSL.Error as e:
                self._fail(f"DTLS handshake failed: {_describe(e)}")
                return True
            wrote = self._flush_flight(now, finished=True)
            self._handshake_done()
            if self.state != self.CONNECTED:
                return True
        for _ in range(_MAX_READS):
            try:
                data = self._conn.recv(_READ_SIZE)
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:
                self._shutdown()
                self.state = self.CLOSED
                self._events.append(Closed(by_peer=True))
                break
            except SSL.Error as e:
                self._fail(f"DTLS session failed: {_describe(e)}")
                break
            self._events.append(ApplicationData(data))
        extra = self._drain()  # e.g. OpenSSL answering a repeated Finished with its own again
        self._send(extra)
        return wrote or bool(extra)

    def _flush_flight(self, now: float, finished: bool) -> bool:
        """Queue what a handshake step wrote; a new flight restarts the retransmission timer."""
        out = self._drain()
        if finished:
            # Output on the step that finished the handshake is the final flight: no answer is due.
            self._sent_final_flight = bool(out)
            self._deadline = None
        if not out:
            return False
        self._flight = out
        self._send(out)
        if not finished:
            self._interval = self.initial_timeout
            self._tries = 0
            self._arm(now)
        return True

    def _arm(self, now: float) -> None:
        openssl = self._conn.DTLSv1_get_timeout()
        wait = self._interval if openssl is None else max(self._interval, openssl + _SLACK)
        self._deadline = now + wait

    def _handshake_done(self) -> None:
        self._deadline = None
        peer = self._conn.get_peer_certificate(as_cryptography=True)
        if peer is None:
            self._fail("DTLS peer sent no certificate")
            return
        if not any(fingerprint_matches(peer, expected) for expected in self._fingerprints):
            got = certificate_fingerprint(peer, parse_fingerprint(self._fingerprints[0])[0])
            self._shutdown()
            self._fail(
                f"DTLS peer certificate fingerprint {got} does not match the SDP's "
                f"{' or '.join(self._fingerprints)}"
            )
            return
        profile = self._conn.get_selected_srtp_profile().decode("ascii", "replace")
        if profile not in SRTP_KEY_SALT:
            self._fail(f"DTLS peer negotiated no SRTP profile we offered ({', '.join(self._profiles)}): {profile!r}")
            return
        key_len, salt_len = SRTP_KEY_SALT[profile]
        material = self._conn.export_keying_material(EXPORTER_LABEL, 2 * (key_len + salt_len))
        client_key, server_key = material[:key_len], material[key_len : 2 * key_len]
        salts = material[2 * key_len :]
        client_salt, server_salt = salts[:salt_len], salts[salt_len:]
        client_side, server_side = client_key + client_salt, server_key + server_salt
        self.state = self.CONNECTED
        self._events.append(
            HandshakeComplete(
                client=self.client,
                srtp_profile=profile,
                local_key=client_side if self.client else server_side,
                remote_key=server_side if self.client else client_side,
                peer_fingerprint=certificate_fingerprint(peer),
                version=self._conn.get_protocol_version_name(),
                cipher=self._conn.get_cipher_name() or "",
            )
        )

    def _drain(self) -> list[bytes]:
        """What OpenSSL wrote, cut at record boundaries into datagrams of at most ``mtu`` bytes."""
        chunks = []
        while True:
            try:
                chunks.append(self._conn.bio_read(_READ_SIZE))
            except SSL.WantReadError:
                break
        if not chunks:
            return []
        data = b"".join(chunks)
        datagrams: list[bytes] = []
        start = last = 0
        for _, end in _records(data):
            if end - start > self.mtu and last > start:
                datagrams.append(data[start:last])
                start = last
            last = end
        if last > start:
            datagrams.append(data[start:last])
        return datagrams

    def _send(self, datagrams: list[bytes]) -> None:
        """Queue datagrams, numbering their epoch-0 records from our own counter.

        Epoch 0 is unprotected, so its record sequence numbers are ours to
        choose: numbering every epoch-0 record we send afresh makes a resent
        copy of a flight as new to the peer's replay window as a retransmission
        by OpenSSL (which numbers its records itself).
        """
        for datagram in datagrams:
            stamped = bytearray(datagram)
            for start, _ in _records(datagram):
                if stamped[start + 3] == 0 and stamped[start + 4] == 0:
                    stamped[start + 5 : start + 11] = self._epoch0_sequence.to_bytes(6, "big")
                    self._epoch0_sequence += 1
            self._outbox.append(bytes(stamped))

    def _shutdown(self) -> None:
        try:
            self._conn.shutdown()
        except SSL.Error:
            pass
        self._send(self._drain())

    def _fail(self, message: str) -> None:
        self._send(self._drain())  # a fatal alert OpenSSL wrote, if any
        self.state = self.FAILED
        self._deadline = None
        self._events.append(Error(message))


def _describe(error: SSL.Error) -> str:
    """The reasons in OpenSSL's error queue, e.g. 'unsupported protocol'; else the exception's text."""
    queue = error.args[0] if error.args and isinstance(error.args[0], list) else []
    reasons = [str(item[2]) for item in queue if isinstance(item, tuple) and len(item) == 3]
    return "; ".join(reasons) or str(error) or type(error).__name__
