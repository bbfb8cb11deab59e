"""WebRTC: SDP offers (parsed and answered), STUN checks, RTP with the
publisher's depayloaders, RTCP compounds, the server's DTLS record handling,
RFC 4571 framing of WebRTC over TCP."""

from __future__ import annotations

from srs_twisted.codec import rtcp, rtp, sdp, stun
from srs_twisted.codec.errors import CodecError
from srs_twisted.codec.rtp_h264 import H264Depayloader
from srs_twisted.codec.rtp_opus import OpusDepayloader
from srs_twisted.rtc.answer import build_answer
from srs_twisted.rtc.tcp import FrameDecoder, FramingError

from ..base import datagrams, pieces, target

FINGERPRINT = "sha-256 " + ":".join(["AB"] * 32)
ICE_PWD = "0123456789abcdef0123456789abcdef"


@target("sdp", allowed=(CodecError,), max_len=8192)
def sdp_target(data: bytes):
    # The API reads the body as UTF-8 with replacement (rtc/api.py).
    offer = sdp.parse(data.decode("utf-8", "replace"))
    sdp.render(offer)
    for publish in (True, False):
        try:
            answer = build_answer(offer, publish=publish, fingerprint=FINGERPRINT,
                                  candidates=[("127.0.0.1", 8000, "udp")], rand=None)
        except ValueError:  # SdpError, or a ValueError rtc/api.py answers with 5018
            continue
        sdp.parse(answer.sdp)  # our own answer parses
    return offer


@target("stun", allowed=(CodecError,), max_len=1500)
def stun_target(data: bytes):
    stun.classify(data)
    message = stun.parse(data)
    try:
        stun.ice_ufrags(message)
        stun.check_request(message, ICE_PWD, require_fingerprint=False)
    except stun.StunError:
        pass
    for kind, _ in message.attributes:
        message.get(kind)
    message.priority, message.use_candidate, message.error_code, message.xor_mapped_address
    stun.binding_success(message, ("127.0.0.1", 9), ICE_PWD)
    return message


@target("rtp", allowed=(CodecError,), max_len=8192)
def rtp_target(data: bytes):
    """A publisher's stream of RTP datagrams into the H.264 and Opus depayloaders."""
    video, audio = H264Depayloader(), OpusDepayloader()
    frames = 0
    for datagram in datagrams(data):
        try:
            packet = rtp.RtpPacket.parse(datagram)
            packet.extensions
            packet.transport_sequence(3)
            frames += len(video.push(packet)) if packet.payload_type != 111 else bool(audio.push(packet))
        except rtp.RtpError:
            continue  # one dropped packet, as RtcIngest counts it
    video.decoder_config()
    return frames


@target("rtcp", allowed=(CodecError,), max_len=1500)
def rtcp_target(data: bytes):
    packets = rtcp.parse_compound(data)
    for packet in packets:
        if isinstance(packet, rtcp.TransportCC):
            packet.arrivals()
            packet.lost()
    rtcp.serialize_compound(packets)
    return packets


@target("rtc_tcp_framing", allowed=(FramingError,))
def rtc_tcp_framing(data: bytes):
    decoder = FrameDecoder()
    frames = 0
    for piece in pieces(data):
        frames += len(decoder.feed(piece))
        assert decoder.pending <= decoder.max_frame + 1
    return frames


_DTLS = None


def _dtls_context():
    global _DTLS
    if _DTLS is None:
        from srs_twisted.rtc.cert import Certificate
        from srs_twisted.rtc.dtls import DtlsContext

        _DTLS = DtlsContext(Certificate.generate())
    return _DTLS


@target("dtls", max_len=8192)
def dtls_target(data: bytes):
    """Datagrams to the server's (passive) DTLS endpoint: its record checks,
    then OpenSSL; every outcome is an event, never an exception."""
    endpoint = _dtls_context().endpoint(False, FINGERPRINT)
    endpoint.start(0.0)
    now = 0.0
    for datagram in datagrams(data):
        endpoint.receive_data(datagram, now)
        endpoint.data_to_send()
        while endpoint.next_event() is not None:
            pass
        now += 0.5
        if endpoint.next_timeout() is not None and endpoint.next_timeout() <= now:
            endpoint.handle_timeout(now)
    return endpoint.state
