"""SRTP/SRTCP for a WebRTC session: a thin layer over pylibsrtp (libsrtp 2).

A session has two libsrtp contexts built from the DTLS handshake's exported
keys (RFC 5764 4.2): the outbound one protects what we send with our side's
master key and salt, the inbound one checks and decrypts what the peer sends
with the peer's.

Plain RTP, for testing, as SRS allows it (``srs_app_rtc_api.cpp``):

* ``rtc_server.encrypt off`` (or ``?encrypt=false``): the DTLS handshake still
  runs and what the peer sends is still SRTP (browsers always encrypt), but
  what we send is plain RTP: SRS's "semi-security" transport.  That is
  ``SrtpSession(..., encrypt_outbound=False)``, which :func:`session_for`
  builds.
* ``?dtls=false``: no DTLS at all, plain RTP both ways: :class:`PlainSession`,
  the same interface passing packets through.

Failure policy: protecting our own packets should never fail; when it does
(a packet too large for libsrtp's buffer, a malformed header we built) it
raises :class:`SrtpError`, the one exception type this module raises.
Unprotecting is fed by the network: a packet that fails authentication, is a
replay or is too short returns None and is counted in :attr:`stats`, so the
caller's caller never sees an exception for hostile input.
"""

from __future__ import annotations

from dataclasses import dataclass

import pylibsrtp

from srs_twisted.rtc.dtls import SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_SHA1_80, SRTP_KEY_SALT, HandshakeComplete

__all__ = ["PlainSession", "SrtpError", "SrtpSession", "SrtpStats", "session_for"]

_PROFILES = {
    SRTP_AES128_CM_SHA1_80: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    SRTP_AEAD_AES_128_GCM: pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
}
# Replay window, in packets.  libsrtp's default (128) refuses a NACKed packet
# resent (or received) more than 128 packets late: under a second of 1.5 Mbit/s
# video.  SRS uses 8192 both ways too; libsrtp allows up to 0x7FFF.
REPLAY_WINDOW = 8192
_RTP_HEADER, _RTCP_HEADER = 12, 8
_BUFFER, _TRAILER = 1500, 16  # pylibsrtp's buffer and room for libsrtp's largest RTP trailer (SRTP_MAX_TRAILER_LEN)

# libsrtp's status text (pylibsrtp raises Error(text)) -> the counter it lands in.
_AUTH = "authentication failure"
_REPLAY = ("replay check failed (bad index)", "replay check failed (index too old)", "packet index is too old to consider")


class SrtpError(ValueError):
    """SRTP set-up or protection failed (bad keys, an unknown profile, a packet libsrtp refuses)."""


@dataclass
class SrtpStats:
    """Inbound packets dropped, by reason."""

    auth_failures: int = 0
    replays: int = 0
    malformed: int = 0  # too short, or another libsrtp refusal

    @property
    def dropped(self) -> int:
        return self.auth_failures + self.replays + self.malformed


class SrtpSession:
    """Protect what we send and unprotect what we receive, for one DTLS-SRTP association."""

    def __init__(
        self,
        profile: str,
        local_key: bytes,
        remote_key: bytes,
        replay_window: int = REPLAY_WINDOW,
        encrypt_outbound: bool = True,
    ) -> None:
        if profile not in _PROFILES:
            raise SrtpError(f"SRTP profile {profile!r} is not one of {', '.join(_PROFILES)}")
        key_len, salt_len = SRTP_KEY_SALT[profile]
        for name, key in (("local", local_key), ("remote", remote_key)):
            if len(key) != key_len + salt_len:
                raise SrtpError(f"{profile} needs a {key_len + salt_len}-byte {name} key and salt, got {len(key)}")
        self.profile = profile
        self.encrypted = encrypt_outbound
        self.stats = SrtpStats()
        try:
            outbound = self._policy(profile, local_key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND, replay_window)
            self._outbound = pylibsrtp.Session(outbound)
            inbound = self._policy(profile, remote_key, pylibsrtp.Policy.SSRC_ANY_INBOUND, replay_window)
            self._inbound = pylibsrtp.Session(inbound)
        except (pylibsrtp.Error, ValueError, TypeError) as e:
            raise SrtpError(f"libsrtp refused the {profile} keys: {e}") from None

    @staticmethod
    def _policy(profile: str, key: bytes, ssrc_type: int, window: int) -> pylibsrtp.Policy:
        policy = pylibsrtp.Policy(key=bytes(key), ssrc_type=ssrc_type, srtp_profile=_PROFILES[profile])
        # A NACKed packet is sent again with its own sequence number: allow it on the way out, and keep a
        # window as wide as the inbound one, since libsrtp applies it to what we send too.
        policy.allow_repeat_tx = True
        policy.window_size = window
        return policy

    @classmethod
    def from_handshake(cls, event: HandshakeComplete, **options) -> SrtpSession:
        return cls(event.srtp_profile, event.local_key, event.remote_key, **options)

    def protect_rtp(self, packet: bytes) -> bytes:
        if not self.encrypted:
            return bytes(packet)
        return self._protect(self._outbound.protect, packet, "RTP")

    def protect_rtcp(self, packet: bytes) -> bytes:
        if not self.encrypted:
            return bytes(packet)
        return self._protect(self._outbound.protect_rtcp, packet, "RTCP")

    def rtp_protector(self):
        """A function ``(header, payload) -> SRTP datagram`` for the send path of a player.

        The same result as ``protect_rtp(header + payload)`` with less per packet (the fan-out calls it
        for every packet of every player): header and payload are copied straight into one reused
        buffer, and libsrtp's ``srtp_protect`` is called on it without pylibsrtp's per-call checks
        and allocations.  Falls back to :meth:`protect_rtp` when pylibsrtp's internals are not what
        this expects.  Raises :class:`SrtpError` as ``protect_rtp`` does.
        """
        if not self.encrypted:
            return _plain_rtp
        try:
            from pylibsrtp._binding import ffi, lib

            outbound = self._outbound
            srtp = outbound._srtp[0]
            protect = lib.srtp_protect
        except (ImportError, AttributeError, TypeError):
            return lambda header, payload: self.protect_rtp(b"".join((header, payload)))
        cdata = ffi.new("char[]", _BUFFER)
        buf = ffi.buffer(cdata)
        size = ffi.new("int *")
        limit = _BUFFER - _TRAILER

        def protect_rtp(header, payload, _keep=outbound) -> bytes:
            n = len(header)
            end = n + len(payload)
            if end > limit:
                raise SrtpError(f"SRTP could not protect a {end}-byte RTP packet: packet is too long")
            buf[0:n] = header
            buf[n:end] = payload
            size[0] = end
            status = protect(srtp, cdata, size)
            if status:
                raise SrtpError(f"SRTP could not protect a {end}-byte RTP packet: libsrtp status {status}")
            return buf[0:size[0]]

        return protect_rtp

    def unprotect_rtp(self, packet: bytes) -> bytes | None:
        """The plain RTP packet, or None (counted) when it is forged, replayed or malformed."""
        if len(packet) < _RTP_HEADER:
            self.stats.malformed += 1
            return None
        return self._unprotect(self._inbound.unprotect, packet)

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        """The plain RTCP compound packet, or None (counted) when it is forged, replayed or malformed."""
        if len(packet) < _RTCP_HEADER:
            self.stats.malformed += 1
            return None
        return self._unprotect(self._inbound.unprotect_rtcp, packet)

    @staticmethod
    def _protect(function, packet: bytes, kind: str) -> bytes:
        try:
            return function(bytes(packet))
        except (pylibsrtp.Error, ValueError, TypeError) as e:
            raise SrtpError(f"SRTP could not protect a {len(packet)}-byte {kind} packet: {e}") from None

    def _unprotect(self, function, packet: bytes) -> bytes | None:
        try:
            return function(bytes(packet))
        except pylibsrtp.Error as e:
            reason = str(e)
            if reason == _AUTH:
                self.stats.auth_failures += 1
            elif reason in _REPLAY:
                self.stats.replays += 1
            else:
                self.stats.malformed += 1
        except (ValueError, TypeError):  # longer than libsrtp's buffer
            self.stats.malformed += 1
        return None


def _plain_rtp(header, payload) -> bytes:
    return b"".join((header, payload))


class PlainSession:
    """No DTLS (``?dtls=false``): the same interface, packets pass through unchanged (too-short ones are dropped)."""

    encrypted = False
    profile = None

    def __init__(self) -> None:
        self.stats = SrtpStats()

    def protect_rtp(self, packet: bytes) -> bytes:
        return bytes(packet)

    def protect_rtcp(self, packet: bytes) -> bytes:
        return bytes(packet)

    def rtp_protector(self):
        return _plain_rtp

    def unprotect_rtp(self, packet: bytes) -> bytes | None:
        return self._check(packet, _RTP_HEADER)

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        return self._check(packet, _RTCP_HEADER)

    def _check(self, packet: bytes, minimum: int) -> bytes | None:
        if len(packet) < minimum:
            self.stats.malformed += 1
            return None
        return bytes(packet)


def session_for(event: HandshakeComplete, encrypt: bool = True) -> SrtpSession:
    """The session a finished handshake leads to; ``encrypt=False`` (``rtc_server.encrypt off``) sends plain RTP."""
    return SrtpSession.from_handshake(event, encrypt_outbound=encrypt)
