"""The SDP answer SRS gives to a WHIP publish offer or a WHEP play offer.

Sans-I/O: an offer (text or a parsed :class:`~srs_twisted.codec.sdp.SessionDescription`)
goes in, an :class:`Answer` comes out: the rendered SDP, our ICE credentials, our
DTLS role, the peer's fingerprints and one :class:`Track` per media section saying
what was agreed (payload type, kept RTCP feedback, transport-cc extension id, SSRC).

What the answer holds, as SRS's ``negotiate_publish_capability`` /
``negotiate_play_capability`` and ``generate_*_local_sdp`` make it:

* ``a=ice-lite``, ``a=group:BUNDLE`` of the offer's mids, ``a=msid-semantic: WMS app/stream``;
* per section, in the offer's order: ``m=<kind> 9 UDP/TLS/RTP/SAVPF <pt>`` with the one
  payload type chosen (Opus 48000/2; H.264 packetization-mode=1, the wanted profile first,
  42e01f by default; the first H.265 one for a play with ``?codec=hevc``), ``c=IN IP4 0.0.0.0``,
  our ``a=ice-ufrag`` (8 characters) and ``a=ice-pwd`` (32), ``a=fingerprint``, ``a=setup`` (:func:`~.sdp_negotiate.answer_setup`
  from the offer's and the vhost's ``dtls_role``), ``a=mid``, ``a=rtcp-mux``;
* the offer's ``nack`` and ``nack pli`` feedback when ``nack on``; its ``transport-cc``
  feedback and transport-cc ``a=extmap`` (same id) when ``twcc on`` and the section offers
  that extension;
* publish: ``a=recvonly``, no SSRCs of ours; play: ``a=sendonly``, our SSRC per section with
  ``a=msid`` and ``a=ssrc`` cname/msid/mslabel/label lines;
* host candidates ``<foundation> 1 udp|tcp 2130706431 <ip> <port> typ host`` followed by
  ``generation 0`` (UDP) or ``tcptype passive`` (TCP, RFC 6544), foundations counting from 0;
  :func:`transport_candidates` makes them from the addresses as SRS does: per address its
  UDP candidate (``protocol udp``), its TCP one (``tcp``) or both, UDP first (``all``), all
  with the same priority; :func:`choose_protocol` picks that protocol.

Deviations from SRS, each on purpose: ``a=rtcp-rsize`` is answered only where offered
(RFC 5506 section 5; SRS always adds it); fmtp lines are written without SRS's stray
leading ``;`` when ``level-asymmetry-allowed``/``minptime`` is absent; the play answer's
fmtp is the offer's chosen payload type's (SRS copies the publisher's); no red/rtx/ulpfec
payload types are answered (SRS answers a publisher's red), so retransmissions use the
media payload type.

An offer we cannot serve raises :class:`~srs_twisted.codec.sdp.SdpError`: SDP_DECODE for
malformed text, SDP_EXCHANGE (SRS's ``ERROR_RTC_SDP_EXCHANGE``) for everything
:mod:`~srs_twisted.codec.sdp_negotiate` refuses.  Wrong arguments from our own code
(bad candidate protocol, empty fingerprint) raise ``ValueError``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from .. import SRS_COMPAT_VERSION
from ..codec import sdp
from ..codec.sdp import Candidate, Codec, Fingerprint, Group, Media, SessionDescription, SsrcLine
from ..codec.sdp_negotiate import (
    TWCC_URI, answer_setup, check_offer, check_relayed, ice_credentials, pick_h264, pick_h265, pick_opus,
    wanted_codec)

__all__ = [
    "Answer", "Track", "build_answer", "random_string", "UFRAG_LENGTH", "PWD_LENGTH",
    "CANDIDATE_PRIORITY", "PREFERRED_H264", "PROTOCOLS", "choose_protocol", "transport_candidates",
]

UFRAG_LENGTH = 8      # SRS's local ice-ufrag
PWD_LENGTH = 32       # SRS's local ice-pwd
PREFERRED_H264 = "42e01f"
# RFC 8445 5.1.2.1 for a host candidate of component 1: type preference 126,
# local preference 65535, 256 - component id.
CANDIDATE_PRIORITY = (126 << 24) | (65535 << 8) | (256 - 1)
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"   # ice-char (RFC 8839) and SRS's table
_ORIGIN_USER = "SRS/%d.%d.%d(srs-twisted)" % SRS_COMPAT_VERSION
_KEPT_FEEDBACK = ("nack", "nack pli")
_H264_FMTP_KEYS = ("level-asymmetry-allowed", "packetization-mode", "profile-level-id")
_H265_FMTP_KEYS = ("level-id", "profile-id", "tier-flag", "tx-mode")
_OPUS_FMTP_KEYS = ("minptime", "useinbandfec", "stereo", "usedtx")


@dataclass(frozen=True)
class Track:
    """What one media section agreed.

    ``ssrc`` is ours for play (the SSRC we send with) and the publisher's first
    ``a=ssrc`` for publish (None when the offer has none, as aiortc's may not).
    ``twcc_id`` is the transport-cc header extension id, or None when not negotiated.
    """
    kind: str
    mid: str
    pt: int
    codec: str
    clock_rate: int
    channels: int | None
    fmtp: str | None
    rtcp_fb: tuple
    twcc_id: int | None
    ssrc: int | None
    track_id: str | None = None

    @property
    def nack(self):
        return "nack" in self.rtcp_fb

    @property
    def pli(self):
        return "nack pli" in self.rtcp_fb


@dataclass
class Answer:
    """An answer and what the rest of the session needs from the negotiation."""
    description: SessionDescription
    sdp: str
    publish: bool
    local_ufrag: str
    local_pwd: str
    remote_ufrag: str
    remote_pwd: str
    setup: str                                   # our DTLS role: "active" or "passive"
    remote_fingerprints: list = field(default_factory=list)   # sdp.Fingerprint
    tracks: list = field(default_factory=list)                # Track, in m= order

    @property
    def username(self):
        """SRS's session id: ``ourufrag:theirufrag`` (the STUN USERNAME we receive)."""
        return "%s:%s" % (self.local_ufrag, self.remote_ufrag)

    def track(self, kind):
        """The first track of ``kind`` ("audio"/"video"), or None."""
        return next((track for track in self.tracks if track.kind == kind), None)


def random_string(length, rand=None):
    """``length`` characters of [0-9a-z] (SRS's ``srs_random_str`` alphabet)."""
    rand = rand or secrets.SystemRandom()
    return "".join(rand.choice(_ALPHABET) for _ in range(length))


def _normalized_fmtp(codec, keys):
    """The codec's fmtp reduced to ``keys`` in that order, or None (SRS rebuilds it so)."""
    params = codec.params
    parts = ["%s=%s" % (key, params[key]) for key in keys if params.get(key)]
    return ";".join(parts) or None


def _ice_value(value, shortest, what):
    """A caller-given ufrag/pwd checked against RFC 8839's ice-char and lengths."""
    if value is None:
        return None
    if not shortest <= len(value) <= 256 or not all(
            c.isascii() and (c.isalnum() or c in "+/") for c in value):
        raise ValueError("%s %r is not %d-256 ice-chars" % (what, value, shortest))
    return value


def _our_fingerprint(fingerprint):
    text = (fingerprint or "").strip()
    if not text:
        raise ValueError("our DTLS fingerprint is empty")
    if " " in text:
        return Fingerprint.parse(text)
    return Fingerprint("sha-256", text)


def _candidate_lines(candidates):
    out = []
    for foundation, (ip, port, protocol) in enumerate(candidates):
        protocol = str(protocol).lower()
        if protocol not in ("udp", "tcp"):
            raise ValueError("candidate protocol must be udp or tcp, not %r" % (protocol,))
        if not 0 < int(port) < 65536:
            raise ValueError("candidate port %r out of range" % (port,))
        extras = ["generation", "0"] if protocol == "udp" else ["tcptype", "passive"]
        out.append(Candidate(str(foundation), 1, protocol, CANDIDATE_PRIORITY, str(ip), int(port),
                             "host", extras))
    return out


PROTOCOLS = ("udp", "tcp", "all")


def choose_protocol(configured, requested="", tcp_served=True):
    """The candidates' transport: ``requested`` (a request's ``?protocol=``; our
    addition, SRS reads only the config) or else ``configured``
    (``rtc_server.protocol``).  Without WebRTC over TCP (``tcp_served`` False),
    ``all`` offers UDP only and ``tcp`` is a ValueError (SRS's full.conf: "Ignore"
    and "Fail"); so is a value other than udp, tcp or all."""
    protocol = (requested or configured or "udp").strip().lower()
    if protocol not in PROTOCOLS:
        raise ValueError("protocol must be udp, tcp or all, not %r" % (requested or configured,))
    if not tcp_served:
        if protocol == "tcp":
            raise ValueError("protocol tcp needs WebRTC over TCP (rtc_server.tcp.enabled on)")
        protocol = "udp"
    return protocol


def transport_candidates(addresses, protocol, udp_port, tcp_port):
    """``(host, port, "udp"|"tcp")`` for :func:`build_answer` from ``addresses``
    (``(host, port or None)`` pairs, e.g. :func:`~srs_twisted.config.rtc.resolve_candidates`'s):
    an address's own port replaces both listen ports, as SRS parses it for each."""
    if protocol not in PROTOCOLS:
        raise ValueError("protocol must be udp, tcp or all, not %r" % (protocol,))
    out = []
    for host, port in addresses:
        if protocol in ("udp", "all"):
            out.append((host, port or udp_port, "udp"))
        if protocol in ("tcp", "all"):
            out.append((host, port or tcp_port, "tcp"))
    return out


def _twcc_id(media):
    return next((ext.id for ext in media.extmaps if ext.uri == TWCC_URI), None)


def _publisher_ssrc(media):
    """The offer's first SSRC that is not a FID/FEC repair SSRC."""
    repair = {ssrc for group in media.ssrc_groups for ssrc in group.ids[1:]}
    return next((line.ssrc for line in media.ssrcs if line.ssrc not in repair), None)


def _offer_setup(desc):
    first = desc.media[0]
    return first.setup or desc.setup


def _remote_fingerprints(desc):
    first = desc.media[0]
    return list(first.fingerprints or desc.fingerprints)


def build_answer(offer, *, publish, fingerprint, candidates, app="live", stream="livestream",
                 dtls_role="passive", nack=True, twcc=True, ice_ufrag=None, ice_pwd=None,
                 h264_profile=PREFERRED_H264, stream_id=None, new_ssrc=None, rand=None,
                 session_id=None, vcodec=None, acodec=None) -> Answer:
    """Answer a WHIP (``publish=True``) or WHEP offer.

    ``fingerprint`` is ours (``sha-256 AB:..`` or bare hex, taken as sha-256);
    ``candidates`` is a list of ``(ip, port, "udp"|"tcp")``; ``dtls_role``, ``nack``
    and ``twcc`` are the vhost's ``rtc`` settings; ``ice_ufrag``/``ice_pwd`` replace
    the random ones (SRS's ``?ice-ufrag=``/``?ice-pwd=``); ``h264_profile`` is the
    profile-level-id wanted (the stream's, for play); ``stream_id`` names the play
    answer's media stream (default ``app/stream``); ``new_ssrc()`` gives our play
    SSRCs (default random non-zero); ``rand`` is a ``random.Random``-like source
    (default the system's CSPRNG); ``vcodec``/``acodec`` are the API's ``?codec=``
    (``?vcodec=``) and ``?acodec=``: SRS's names (h264, hevc, av1, vp9; opus, pcmu, pcma,
    anything else the default); a play's video section asking ``hevc`` gets the offer's first
    H.265 payload type (refused when it has none), and any other codec than H.264 and Opus
    (H.265 to publish) is refused (SDP_EXCHANGE).
    """
    desc = offer if isinstance(offer, SessionDescription) else sdp.parse(offer)
    check_offer(desc, publish)
    remote_ufrag, remote_pwd = ice_credentials(desc)
    setup = answer_setup(_offer_setup(desc), dtls_role)
    rand = rand or secrets.SystemRandom()
    local_ufrag = _ice_value(ice_ufrag, 4, "ice-ufrag") or random_string(UFRAG_LENGTH, rand)
    local_pwd = _ice_value(ice_pwd, 22, "ice-pwd") or random_string(PWD_LENGTH, rand)
    ours = _our_fingerprint(fingerprint)
    candidate_lines = _candidate_lines(candidates)
    stream_id = stream_id or "%s/%s" % (app, stream)
    new_ssrc = new_ssrc or (lambda: rand.randint(1, 0xFFFFFFFF))
    cname = random_string(16, rand)

    answer = SessionDescription(
        origin="%s %d 2 IN IP4 0.0.0.0" % (
            _ORIGIN_USER, session_id if session_id is not None else rand.randint(1, 2 ** 62)),
        name="SRSPublishSession" if publish else "SRSPlaySession",
        groups=[Group("BUNDLE", [media.mid for media in desc.media])],
        ice_lite=True, msid_semantic=" WMS " + stream_id)
    tracks = []
    used_ssrcs = set()
    for offered in desc.media:
        wanted = wanted_codec(acodec if offered.kind == "audio" else vcodec, offered.kind)
        check_relayed(offered, wanted, publish)
        if offered.kind == "audio":
            chosen = pick_opus(offered)
            fmtp = _normalized_fmtp(chosen, _OPUS_FMTP_KEYS)
        elif wanted == "hevc":
            chosen = pick_h265(offered)
            fmtp = _normalized_fmtp(chosen, _H265_FMTP_KEYS)
        else:
            chosen = pick_h264(offered, h264_profile)
            fmtp = _normalized_fmtp(chosen, _H264_FMTP_KEYS)
        twcc_id = _twcc_id(offered) if twcc else None
        feedback = [fb for fb in chosen.rtcp_fb
                    if (nack and fb in _KEPT_FEEDBACK) or (twcc_id and fb == "transport-cc")]
        codec = Codec(chosen.pt, chosen.name, chosen.clock_rate, chosen.channels, fmtp, feedback)
        media = Media(
            kind=offered.kind, port=9, proto="UDP/TLS/RTP/SAVPF", formats=[str(chosen.pt)],
            connection="IN IP4 0.0.0.0", mid=offered.mid,
            direction="recvonly" if publish else "sendonly",
            ice_ufrag=local_ufrag, ice_pwd=local_pwd, fingerprints=[ours], setup=setup,
            rtcp_mux=True, rtcp_rsize=offered.rtcp_rsize, codecs=[codec],
            candidates=list(candidate_lines))
        if twcc_id:
            media.extmaps.append(sdp.Extmap(twcc_id, TWCC_URI))
        track_id = None
        if publish:
            ssrc = _publisher_ssrc(offered)
        else:
            ssrc = _unique_ssrc(new_ssrc, used_ssrcs)
            track_id = "%s-%s" % (offered.kind, random_string(8, rand))
            media.msid = "%s %s" % (stream_id, track_id)
            media.ssrcs = [SsrcLine(ssrc, "cname", cname),
                           SsrcLine(ssrc, "msid", media.msid),
                           SsrcLine(ssrc, "mslabel", stream_id),
                           SsrcLine(ssrc, "label", track_id)]
        answer.media.append(media)
        tracks.append(Track(offered.kind, offered.mid, chosen.pt, chosen.name, chosen.clock_rate,
                            chosen.channels, fmtp, tuple(feedback), twcc_id, ssrc, track_id))
    return Answer(answer, sdp.render(answer), publish, local_ufrag, local_pwd, remote_ufrag,
                  remote_pwd, setup, _remote_fingerprints(desc), tracks)


def _unique_ssrc(new_ssrc, used):
    for _ in range(64):
        ssrc = new_ssrc()
        if ssrc and ssrc not in used:
            used.add(ssrc)
            return ssrc
    raise ValueError("new_ssrc() gave no fresh non-zero SSRC in 64 tries")

