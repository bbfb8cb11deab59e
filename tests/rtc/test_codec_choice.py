"""The API's codec choices (``?codec=``/``?vcodec=``, ``?acodec=``) in the answer, and
``?encrypt=false&dtls=false`` (no DTLS, plain RTP both ways) on a session."""

from __future__ import annotations

from twisted.trial import unittest

from srs_twisted.codec import stun
from srs_twisted.codec.rtcp import Pli, parse_compound
from srs_twisted.codec.sdp import SDP_EXCHANGE, SdpError
from srs_twisted.codec.sdp_negotiate import wanted_codec
from srs_twisted.rtc.connection import Connected, RtcConnection
from srs_twisted.rtc.dtls import DtlsContext
from srs_twisted.rtc.publisher import RtcPublishPeer

from ..codec.sdp_fixtures import AIORTC_OFFER, CHROMIUM_OFFER, FFMPEG_WHIP_OFFER
from . import test_glue as glue
from .pair import certificate
from .test_answer import answer, play_offer
from .test_twcc import udp_protocol


class CodecChoiceTests(unittest.TestCase):
    def test_default_and_explicit_h264_opus(self):
        base = answer(CHROMIUM_OFFER)
        for vcodec, acodec in ((None, None), ("h264", "opus"), ("H264", "OPUS"), ("foo", "bar"), ("", "")):
            got = answer(CHROMIUM_OFFER, vcodec=vcodec, acodec=acodec)
            self.assertEqual([(t.kind, t.codec, t.pt) for t in got.tracks],
                             [(t.kind, t.codec, t.pt) for t in base.tracks], (vcodec, acodec))
        play = answer(play_offer(AIORTC_OFFER), publish=False, vcodec="h264", acodec="opus")
        self.assertEqual(sorted(t.codec.lower() for t in play.tracks), ["h264", "opus"])

    def test_codecs_we_cannot_relay_are_refused_as_srs_negotiation_errors(self):
        for offer, publish in ((CHROMIUM_OFFER, True), (play_offer(AIORTC_OFFER), False)):
            for vcodec in (("hevc", "HEVC") if publish else ()) + ("av1", "vp9"):
                with self.assertRaises(SdpError) as caught:
                    answer(offer, publish=publish, vcodec=vcodec)
                self.assertEqual(caught.exception.code, SDP_EXCHANGE)
                self.assertIn("m=video", str(caught.exception))
                self.assertIn("codec %s" % vcodec.lower(), str(caught.exception))
            for acodec in ("pcmu", "pcma"):
                with self.assertRaises(SdpError) as caught:
                    answer(offer, publish=publish, acodec=acodec)
                self.assertEqual(caught.exception.code, SDP_EXCHANGE)
                self.assertIn("m=audio", str(caught.exception))

    def test_hevc_plays_to_a_player_that_offers_h265(self):
        # SRS 7's ?codec=hevc: the offer's first H.265 payload type, its fmtp kept
        got = answer(play_offer(CHROMIUM_OFFER), publish=False, vcodec="hevc")
        video = got.track("video")
        self.assertEqual((video.codec, video.pt, video.clock_rate), ("H265", 49, 90000))
        self.assertEqual(video.fmtp, "level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST")
        self.assertIn("nack pli", video.rtcp_fb)
        self.assertEqual(got.track("audio").codec.lower(), "opus")
        self.assertIn("m=video 9 UDP/TLS/RTP/SAVPF 49\r\n", got.sdp)
        self.assertIn("a=rtpmap:49 H265/90000\r\n", got.sdp)
        self.assertIn("a=fmtp:49 level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST\r\n", got.sdp)
        # a player without H.265 (aiortc): SRS's negotiation error, saying why
        with self.assertRaises(SdpError) as caught:
            answer(play_offer(AIORTC_OFFER), publish=False, vcodec="hevc")
        self.assertEqual(caught.exception.code, SDP_EXCHANGE)
        self.assertIn("no H.265 payload type in m=video", str(caught.exception))
        self.assertIn("does not offer H.265", str(caught.exception))

    def test_a_choice_only_concerns_its_media_kind(self):
        # as in SRS, ?codec= is about video sections and ?acodec= about audio ones
        audio_only = FFMPEG_WHIP_OFFER[:FFMPEG_WHIP_OFFER.index("m=video")].replace("BUNDLE 0 1", "BUNDLE 0")
        got = answer(audio_only, vcodec="hevc")
        self.assertEqual([(t.kind, t.codec) for t in got.tracks], [("audio", "opus")])
        self.assertRaises(SdpError, answer, audio_only, acodec="pcmu")
        self.assertEqual(wanted_codec("hevc", "video"), "hevc")
        self.assertEqual(wanted_codec("hevc", "audio"), "opus")
        self.assertEqual(wanted_codec("pcma", "audio"), "pcma")
        self.assertEqual(wanted_codec("pcma", "video"), "h264")


class PlaintextTests(unittest.TestCase):
    """``?encrypt=false&dtls=false``: SRS's plaintext transport (no DTLS), on the UDP protocol."""

    def setUp(self):
        udp_protocol(self)
        self.source = glue.Source()

    def publisher(self, setup, encrypt, dtls):
        ours, theirs = certificate(True, 0), certificate(True, 1)
        conn = RtcConnection(DtlsContext(ours), setup == "active", [theirs.fingerprint], encrypt, dtls)
        peer = RtcPublishPeer(glue.answer(setup), conn, self.source, self.proto.send, lambda p, r: None,
                              self.clock.seconds())
        self.proto.add(glue.answer(setup), peer, stun_timeout=30)
        return peer

    def check(self):
        request = stun.binding_request(f"{glue.UFRAG}:{glue.PEER_UFRAG}", glue.PWD, priority=1, controlling=1,
                                       use_candidate=True)
        self.proto.datagramReceived(request, glue.PEER)

    def sent(self):
        out, self.transport.written = self.transport.written, []
        return [data for data, _ in out]

    def test_plain_rtp_both_ways_after_the_first_check_in_either_role(self):
        for setup in ("passive", "active"):
            self.source.packets.clear()
            peer = self.publisher(setup, encrypt=False, dtls=False)
            self.assertTrue(peer.connection.plaintext)
            self.check()
            replies = self.sent()
            self.assertEqual(len(replies), 1, setup)  # the STUN answer: no DTLS ClientHello even when active
            self.assertEqual(peer.connection.state, RtcConnection.CONNECTED)
            self.proto.datagramReceived(bytes([22, 254, 253]) + bytes(40), glue.PEER)  # a DTLS record: ignored
            self.assertEqual(self.sent(), [])
            for data in glue.video_packets([glue.SLICE], 1, 0):  # plain RTP, no keyframe yet
                self.proto.datagramReceived(data, glue.PEER)
            (pli,) = [parse_compound(d) for d in self.sent()]
            self.assertEqual([type(p) for p in pli], [Pli])  # plain RTCP out
            for data in glue.video_packets([glue.SPS, glue.PPS, glue.IDR], 3, 3000):
                self.proto.datagramReceived(data, glue.PEER)
            self.assertEqual([(p.sequence_header, p.keyframe) for p in self.source.packets],
                             [(True, True), (False, True)], setup)
            self.proto.remove(peer.session, "done")

    def test_dtls_false_counts_only_without_encryption(self):
        # as SRS: ?dtls=false with encryption on is still DTLS + SRTP
        ours, theirs = certificate(True, 0), certificate(True, 1)
        conn = RtcConnection(DtlsContext(ours), True, [theirs.fingerprint], encrypt=True, dtls=False)
        self.assertFalse(conn.plaintext)
        conn.start(0.0)
        self.assertIsNone(conn.next_event())
        self.assertTrue(conn.data_to_send())  # a ClientHello
        plain = RtcConnection(DtlsContext(ours), True, [theirs.fingerprint], encrypt=False, dtls=False)
        plain.start(0.0)
        self.assertEqual((plain.next_event(), plain.data_to_send()), (Connected("none"), []))
        plain.close()
        self.assertEqual(plain.data_to_send(), [])
