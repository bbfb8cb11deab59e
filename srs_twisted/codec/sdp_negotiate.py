"""What of a WebRTC offer SRS can serve: checks, codec choice, DTLS role.

Pure functions over :mod:`.sdp` models.  Each refusal is one
:class:`~.sdp.SdpError` with ``code`` SDP_EXCHANGE (SRS's
``ERROR_RTC_SDP_EXCHANGE``) whose message names what is missing.
"""

from .sdp import SDP_EXCHANGE, Codec, Media, SdpError, SessionDescription

__all__ = ["TWCC_URI", "VIDEO_CODECS", "AUDIO_CODECS", "RELAYED_CODECS", "ice_credentials", "check_offer",
           "wanted_codec", "check_relayed", "pick_h264", "pick_h265", "pick_opus", "find_rtx", "answer_setup"]

TWCC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

# The codec choices SRS offers in the API query (``?codec=`` or ``?vcodec=``, and SRS 7's
# ``?acodec=``), as its negotiate_publish/play_capability read them, with the rtpmap name each
# means.  Any other value (or none) is the default, H.264 and Opus, as in SRS.
VIDEO_CODECS = {"h264": "H.264", "hevc": "H.265", "av1": "AV1", "vp9": "VP9"}
AUDIO_CODECS = {"opus": "Opus", "pcmu": "PCMU (G.711 u-law)", "pcma": "PCMA (G.711 A-law)"}
RELAYED_CODECS = ("h264", "opus")   # what this server relays over WebRTC both ways
PLAYED_CODECS = RELAYED_CODECS + ("hevc",)   # and what it plays out only (HEVC streams, ?codec=hevc)


def _refuse(message):
    return SdpError(message, SDP_EXCHANGE)


def _label(media):
    return "m=%s mid=%s" % (media.kind, media.mid)


def ice_credentials(desc: SessionDescription):
    """(ufrag, pwd) of a BUNDLE offer: the first media section's, else the
    session's (OBS puts them there), as SRS does."""
    first = desc.media[0] if desc.media else desc
    ufrag = first.ice_ufrag or desc.ice_ufrag
    pwd = first.ice_pwd or desc.ice_pwd
    if not ufrag or not pwd:
        raise _refuse("the offer has no ICE credentials (a=ice-ufrag and a=ice-pwd)")
    return ufrag, pwd


def check_offer(desc: SessionDescription, publish: bool) -> None:
    """Refuse, with one precise error, an offer SRS could not serve: no media,
    no BUNDLE, a section that is not audio/video, lacks rtcp-mux, is outside
    the BUNDLE group or has the wrong direction, no ICE credentials, no
    DTLS fingerprint."""
    if not desc.media:
        raise _refuse("the offer has no media sections")
    bundle = desc.group("BUNDLE")
    if bundle is None:
        raise _refuse("the offer must use a=group:BUNDLE")
    wanted = ("sendrecv", "sendonly") if publish else ("sendrecv", "recvonly")
    for media in desc.media:
        if media.kind not in ("audio", "video"):
            raise _refuse("unsupported media type in %s" % _label(media))
        if not media.rtcp_mux:
            raise _refuse("%s lacks a=rtcp-mux" % _label(media))
        if media.mid is None or media.mid not in bundle.ids:
            raise _refuse("%s is not in the BUNDLE group" % _label(media))
        direction = media.direction or desc.direction or "sendrecv"
        if direction not in wanted:
            raise _refuse("%s is %s but %s needs %s" % (
                _label(media), direction, "publish" if publish else "play", " or ".join(wanted)))
    ice_credentials(desc)
    if not desc.fingerprints and not all(media.fingerprints for media in desc.media):
        raise _refuse("the offer has no DTLS a=fingerprint")


def wanted_codec(value, kind: str) -> str:
    """The codec a query value asks for in ``kind``'s sections ("audio"/"video"):
    a key of :data:`VIDEO_CODECS`/:data:`AUDIO_CODECS`, the default when unknown."""
    table, default = (VIDEO_CODECS, "h264") if kind == "video" else (AUDIO_CODECS, "opus")
    value = (value or "").strip().lower()
    return value if value in table else default


def check_relayed(media: Media, codec: str, publish: bool = False) -> None:
    """Refuse a section whose requested codec this server cannot relay (SRS would
    answer it with that codec; here H.264 and Opus go through both ways, and H.265
    is played out to players that ask ``?codec=hevc``)."""
    if codec not in (RELAYED_CODECS if publish else PLAYED_CODECS):
        names = VIDEO_CODECS if media.kind == "video" else AUDIO_CODECS
        raise _refuse("%s: codec %s (%s) is not relayed by this server, which %s"
                      % (_label(media), codec, names.get(codec, codec),
                         "takes H.264 and Opus from publishers" if publish else "plays H.264, H.265 and Opus"))


def _profile(codec):
    """(profile_idc, profile-iop, level_idc) of an H.264 payload type, or None."""
    plid = codec.params.get("profile-level-id", "420010")   # RFC 6184 8.1 default
    if len(plid) != 6 or not all(c in "0123456789abcdefABCDEF" for c in plid):
        return None
    return tuple(bytes.fromhex(plid))


def pick_h264(media: Media, prefer: str = "42e01f") -> Codec:
    """The H.264 payload type (packetization-mode=1) to use: ``prefer``'s
    profile-level-id, else the same profile at another level, else
    constrained baseline, main, baseline, then any other (high...); ties go
    to level-asymmetry-allowed=1, then to the offer's order."""
    wanted = tuple(bytes.fromhex(prefer))
    ranked = []
    for order, codec in enumerate(media.codecs):
        params, profile = codec.params, _profile(codec)
        if codec.name.upper() != "H264" or codec.clock_rate != 90000 \
                or params.get("packetization-mode") != "1" or profile is None:
            continue
        idc, iop, _level = profile
        if profile == wanted:
            rank = 0
        elif (idc, iop) == wanted[:2]:
            rank = 1
        elif idc == 0x42 and iop & 0x40:   # constraint_set1: constrained baseline
            rank = 2
        else:
            rank = {0x4D: 3, 0x42: 4}.get(idc, 5)
        ranked.append((rank, params.get("level-asymmetry-allowed") != "1", order, codec))
    if not ranked:
        raise _refuse("no H.264 payload type with packetization-mode=1 in %s" % _label(media))
    return min(ranked, key=lambda item: item[:3])[3]


def pick_h265(media: Media) -> Codec:
    """The first H.265 payload type (``?codec=hevc``, as SRS 7 picks it); a player
    that offers none is refused: its browser has no H.265 decoder for WebRTC."""
    for codec in media.codecs:
        if codec.name.upper() == "H265" and codec.clock_rate == 90000:
            return codec
    raise _refuse("no H.265 payload type in %s: the player does not offer H.265 (asked by ?codec=hevc)"
                  % _label(media))


def pick_opus(media: Media) -> Codec:
    """The first Opus 48000/2 payload type."""
    for codec in media.codecs:
        if codec.name.lower() == "opus" and codec.clock_rate == 48000 and codec.channels == 2:
            return codec
    raise _refuse("no Opus 48000/2 payload type in %s" % _label(media))


def find_rtx(media: Media, pt: int):
    """The rtx payload type whose apt= is ``pt``, or None."""
    return next((codec for codec in media.codecs if codec.name.lower() == "rtx"
                 and codec.params.get("apt") == str(pt)), None)


def answer_setup(offer_setup, preferred="passive"):
    """Our a=setup for an offer's (RFC 5763): actpass or none -> ``preferred``
    (SRS's dtls_role), passive -> active (FFmpeg's WHIP muxer), active -> passive."""
    if preferred not in ("active", "passive"):
        raise ValueError("our DTLS role must be active or passive, not %r" % preferred)
    roles = {None: preferred, "actpass": preferred, "passive": "active", "active": "passive"}
    if offer_setup not in roles:
        raise _refuse("cannot answer a=setup:%s" % offer_setup)
    return roles[offer_setup]
