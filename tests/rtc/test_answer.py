"""The SDP answer for WHIP publish and WHEP play offers (srs_twisted/rtc/answer.py)."""

import asyncio
import random

from twisted.trial import unittest

from srs_twisted.codec import sdp
from srs_twisted.codec.sdp import SDP_DECODE, SDP_EXCHANGE, SdpError
from srs_twisted.codec.sdp_negotiate import TWCC_URI
from srs_twisted.rtc.answer import CANDIDATE_PRIORITY, build_answer, random_string

from ..codec.sdp_fixtures import AIORTC_OFFER, CHROMIUM_OFFER, FFMPEG_WHIP_OFFER
from .. import optional
from ..codec.test_sdp import edit

try:
    import aiortc
    from aiortc import sdp as aiortc_sdp
except ImportError:  # test-only dependency
    aiortc = aiortc_sdp = None

FP = "sha-256 " + "AB:" * 31 + "CD"
UDP = [("10.99.0.1", 8000, "udp")]


def play_offer(text):
    """A WHEP offer made from a publish offer: recvonly, no SSRCs or msid of its own."""
    return edit(text, drop=["a=ssrc", "a=msid:"], replace=[("a=sendonly", "a=recvonly")])


def answer(offer, publish=True, **kwargs):
    kwargs.setdefault("fingerprint", FP)
    kwargs.setdefault("candidates", UDP)
    kwargs.setdefault("rand", random.Random(7))
    kwargs.setdefault("session_id", 4242)
    return build_answer(offer, publish=publish, **kwargs)


class PublishAnswerTests(unittest.TestCase):
    def test_ffmpeg_golden(self):
        """The whole answer to FFmpeg's WHIP offer, line by line."""
        result = answer(FFMPEG_WHIP_OFFER, ice_ufrag="7x3k9s2q",
                        ice_pwd="v0a9s8d7f6g5h4j3k2l1q0w9e8r7t6y5")
        common = ("c=IN IP4 0.0.0.0\r\na=mid:{mid}\r\na=recvonly\r\na=ice-ufrag:7x3k9s2q\r\n"
                  "a=ice-pwd:v0a9s8d7f6g5h4j3k2l1q0w9e8r7t6y5\r\n"
                  "a=fingerprint:" + FP + "\r\na=setup:active\r\n"
                  "a=candidate:0 1 udp 2130706431 10.99.0.1 8000 typ host generation 0\r\n"
                  "a=rtcp-mux\r\n")
        self.assertEqual(result.sdp, (
            "v=0\r\no=SRS/7.0.18(srs-twisted) 4242 2 IN IP4 0.0.0.0\r\ns=SRSPublishSession\r\n"
            "t=0 0\r\na=ice-lite\r\na=group:BUNDLE 0 1\r\na=msid-semantic: WMS live/livestream\r\n"
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" + common.format(mid=0)
            + "a=rtpmap:111 opus/48000/2\r\n"
            "m=video 9 UDP/TLS/RTP/SAVPF 106\r\n" + common.format(mid=1) + "a=rtcp-rsize\r\n"
            "a=rtpmap:106 H264/90000\r\na=rtcp-fb:106 nack\r\n"
            "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42000d\r\n"))
        self.assertEqual(sdp.parse(result.sdp), result.description)
        # FFmpeg offers a=setup:passive: we are the DTLS client.
        self.assertEqual(result.setup, "active")
        self.assertEqual((result.remote_ufrag, result.remote_pwd),
                         ("6114c1fe", "9c649b8f1d483c6d12255d97981a5d2e"))
        self.assertEqual(result.username, "7x3k9s2q:6114c1fe")
        self.assertEqual(result.remote_fingerprints[0].value[:8], "27:5D:A2")
        audio, video = result.tracks
        self.assertEqual((audio.kind, audio.mid, audio.pt, audio.codec, audio.ssrc),
                         ("audio", "0", 111, "opus", 304538368))
        # The publisher's media SSRC, not its rtx SSRC (a=ssrc-group:FID 304538369 304538370).
        self.assertEqual((video.pt, video.ssrc, video.rtcp_fb, video.twcc_id),
                         (106, 304538369, ("nack",), None))
        self.assertTrue(video.nack)
        self.assertFalse(video.pli)

    def test_chromium_twcc_and_feedback(self):
        result = answer(CHROMIUM_OFFER)
        audio, video = result.description.media
        self.assertEqual(result.setup, "passive")   # actpass -> the vhost's dtls_role
        self.assertEqual(video.formats, ["109"])    # the 42e01f packetization-mode=1 one
        self.assertEqual(video.codecs[0].rtcp_fb, ["transport-cc", "nack", "nack pli"])
        self.assertEqual(audio.codecs[0].rtcp_fb, ["transport-cc"])
        self.assertEqual(audio.codecs[0].fmtp, "minptime=10;useinbandfec=1")
        for media in (audio, video):
            self.assertEqual([(e.id, e.uri) for e in media.extmaps], [(3, TWCC_URI)])
            self.assertTrue(media.rtcp_rsize)
            self.assertEqual(media.direction, "recvonly")
            self.assertEqual(media.ssrcs, [])
        self.assertEqual([t.twcc_id for t in result.tracks], [3, 3])
        self.assertEqual(result.track("video").ssrc, 1503281627)

    def test_twcc_off(self):
        result = answer(CHROMIUM_OFFER, twcc=False)
        for media in result.description.media:
            self.assertEqual(media.extmaps, [])
            self.assertNotIn("transport-cc", media.codecs[0].rtcp_fb)
        self.assertNotIn("transport-cc", result.sdp)
        self.assertEqual(result.track("video").rtcp_fb, ("nack", "nack pli"))

    def test_nack_off(self):
        result = answer(CHROMIUM_OFFER, nack=False)
        self.assertEqual(result.track("video").rtcp_fb, ("transport-cc",))
        self.assertNotIn("nack", result.sdp)

    def test_no_twcc_extmap_means_no_transport_cc_feedback(self):
        offer = edit(CHROMIUM_OFFER, drop=["a=extmap:3 "])
        result = answer(offer)
        self.assertEqual(result.track("video").rtcp_fb, ("nack", "nack pli"))
        self.assertIsNone(result.track("video").twcc_id)
        self.assertNotIn(TWCC_URI, result.sdp)

    def test_h264_profile_choice(self):
        self.assertEqual(answer(CHROMIUM_OFFER, h264_profile="42001f").track("video").pt, 103)
        self.assertIn("profile-level-id=42e01f", answer(AIORTC_OFFER).track("video").fmtp)

    def test_rtcp_rsize_only_where_offered(self):
        audio, video = answer(FFMPEG_WHIP_OFFER).description.media
        self.assertEqual((audio.rtcp_rsize, video.rtcp_rsize), (False, True))

    def test_offer_order_and_mids(self):
        result = answer(AIORTC_OFFER)
        self.assertEqual([m.kind for m in result.description.media], ["audio", "video"])
        self.assertEqual(result.description.group().ids, ["0", "1"])
        self.assertEqual([t.mid for t in result.tracks], ["0", "1"])

    def test_parsed_offer_is_accepted(self):
        parsed = sdp.parse(FFMPEG_WHIP_OFFER)
        self.assertEqual(answer(parsed).sdp, answer(FFMPEG_WHIP_OFFER).sdp)


class PlayAnswerTests(unittest.TestCase):
    def test_chromium_play(self):
        ssrcs = iter([1111, 2222])
        result = answer(play_offer(CHROMIUM_OFFER), publish=False, app="live", stream="cam",
                        new_ssrc=lambda: next(ssrcs))
        self.assertEqual(result.description.name, "SRSPlaySession")
        self.assertEqual(result.description.msid_semantic, " WMS live/cam")
        audio, video = result.description.media
        for media, ssrc in ((audio, 1111), (video, 2222)):
            self.assertEqual(media.direction, "sendonly")
            attrs = media.ssrc_attributes(ssrc)
            track_id = media.msid.split()[1]
            self.assertTrue(track_id.startswith(media.kind + "-"))
            self.assertEqual(attrs["msid"], "live/cam " + track_id)
            self.assertEqual(attrs["mslabel"], "live/cam")
            self.assertEqual(attrs["label"], track_id)
            self.assertEqual(len(attrs["cname"]), 16)
        # One cname for the whole session.
        self.assertEqual(audio.ssrc_attributes(1111)["cname"], video.ssrc_attributes(2222)["cname"])
        self.assertEqual([(t.ssrc, t.pt) for t in result.tracks], [(1111, 111), (2222, 109)])
        self.assertIn("a=ssrc:2222 cname:", result.sdp)
        self.assertIn("a=msid:live/cam video-", result.sdp)

    def test_play_ssrcs_unique_and_non_zero(self):
        ssrcs = iter([0, 5, 5, 6])
        result = answer(play_offer(AIORTC_OFFER), publish=False, new_ssrc=lambda: next(ssrcs))
        self.assertEqual([t.ssrc for t in result.tracks], [5, 6])
        stuck = iter([9] * 200)
        with self.assertRaises(ValueError):
            answer(play_offer(AIORTC_OFFER), publish=False, new_ssrc=lambda: next(stuck))

    def test_play_refuses_a_sendonly_offer(self):
        with self.assertRaisesRegex(SdpError, "is sendonly but play needs") as caught:
            answer(CHROMIUM_OFFER, publish=False)
        self.assertEqual(caught.exception.code, SDP_EXCHANGE)

    def test_publish_refuses_a_recvonly_offer(self):
        with self.assertRaisesRegex(SdpError, "is recvonly but publish needs"):
            answer(play_offer(CHROMIUM_OFFER))


class CredentialsAndRolesTests(unittest.TestCase):
    def test_random_credentials_have_srs_lengths(self):
        result = build_answer(FFMPEG_WHIP_OFFER, publish=True, fingerprint=FP, candidates=UDP)
        self.assertEqual((len(result.local_ufrag), len(result.local_pwd)), (8, 32))
        self.assertRegex(result.local_ufrag + result.local_pwd, r"^[0-9a-z]{40}$")
        other = build_answer(FFMPEG_WHIP_OFFER, publish=True, fingerprint=FP, candidates=UDP)
        self.assertNotEqual(result.local_pwd, other.local_pwd)
        for media in result.description.media:
            self.assertEqual((media.ice_ufrag, media.ice_pwd), (result.local_ufrag, result.local_pwd))

    def test_given_credentials_are_checked(self):
        for ufrag, pwd in (("abc", None), (None, "short"), ("bad:ufrag", None), ("x" * 257, None)):
            with self.assertRaises(ValueError):
                answer(FFMPEG_WHIP_OFFER, ice_ufrag=ufrag, ice_pwd=pwd)
        result = answer(FFMPEG_WHIP_OFFER, ice_ufrag="ab+/", ice_pwd="p" * 22)
        self.assertEqual(result.username, "ab+/:6114c1fe")

    def test_setup_roles(self):
        cases = [("passive", "passive", "active"), ("passive", "active", "active"),
                 ("active", "passive", "passive"), ("actpass", "passive", "passive"),
                 ("actpass", "active", "active")]
        for offered, role, expected in cases:
            offer = FFMPEG_WHIP_OFFER.replace("a=setup:passive", "a=setup:" + offered)
            result = answer(offer, dtls_role=role)
            self.assertEqual(result.setup, expected, (offered, role))
            self.assertEqual({m.setup for m in result.description.media}, {expected})
        no_setup = edit(FFMPEG_WHIP_OFFER, drop=["a=setup"])
        self.assertEqual(answer(no_setup, dtls_role="active").setup, "active")
        with self.assertRaisesRegex(SdpError, "cannot answer a=setup:holdconn"):
            answer(FFMPEG_WHIP_OFFER.replace("a=setup:passive", "a=setup:holdconn"))

    def test_fingerprint_forms(self):
        bare = answer(FFMPEG_WHIP_OFFER, fingerprint="AB:" * 31 + "CD")
        self.assertEqual(bare.sdp, answer(FFMPEG_WHIP_OFFER).sdp)
        other = answer(FFMPEG_WHIP_OFFER, fingerprint="sha-512 " + "EF:" * 63 + "01")
        self.assertIn("a=fingerprint:sha-512 EF:", other.sdp)
        for bad in ("", "   ", None):
            with self.assertRaises(ValueError):
                answer(FFMPEG_WHIP_OFFER, fingerprint=bad)


class CandidateTests(unittest.TestCase):
    def test_udp_and_tcp_lines(self):
        result = answer(CHROMIUM_OFFER, candidates=[
            ("10.99.0.1", 8000, "udp"), ("10.99.0.1", 8000, "TCP"), ("2001:db8::1", 18000, "udp")])
        lines = [line for line in result.sdp.split("\r\n") if line.startswith("a=candidate")]
        self.assertEqual(lines, [
            "a=candidate:0 1 udp 2130706431 10.99.0.1 8000 typ host generation 0",
            "a=candidate:1 1 tcp 2130706431 10.99.0.1 8000 typ host tcptype passive",
            "a=candidate:2 1 udp 2130706431 2001:db8::1 18000 typ host generation 0"] * 2)
        self.assertEqual(CANDIDATE_PRIORITY, 2130706431)

    def test_no_candidates(self):
        result = answer(CHROMIUM_OFFER, candidates=[])
        self.assertNotIn("a=candidate", result.sdp)

    def test_bad_candidates(self):
        for bad in ([("10.0.0.1", 8000, "sctp")], [("10.0.0.1", 0, "udp")],
                    [("10.0.0.1", 65536, "tcp")]):
            with self.assertRaises(ValueError):
                answer(CHROMIUM_OFFER, candidates=bad)


class RefusalTests(unittest.TestCase):
    def refused(self, offer, message, code=SDP_EXCHANGE, publish=True):
        with self.assertRaisesRegex(SdpError, message) as caught:
            answer(offer, publish=publish)
        self.assertEqual(caught.exception.code, code)

    def test_no_ice_credentials(self):
        self.refused(edit(FFMPEG_WHIP_OFFER, drop=["a=ice-ufrag"]), "no ICE credentials")
        self.refused(play_offer(edit(CHROMIUM_OFFER, drop=["a=ice-pwd"])), "no ICE credentials",
                     publish=False)

    def test_no_usable_codec(self):
        no_h264 = edit(FFMPEG_WHIP_OFFER, replace=[("H264/90000", "VP8/90000")])
        self.refused(no_h264, "no H.264 payload type with packetization-mode=1")
        mode0 = edit(FFMPEG_WHIP_OFFER, replace=[("packetization-mode=1", "packetization-mode=0")])
        self.refused(mode0, "no H.264 payload type with packetization-mode=1")
        no_opus = edit(FFMPEG_WHIP_OFFER, replace=[("opus/48000/2", "PCMU/8000")])
        self.refused(no_opus, "no Opus 48000/2 payload type")

    def test_no_bundle_no_mux_no_fingerprint(self):
        self.refused(edit(CHROMIUM_OFFER, drop=["a=group:BUNDLE"]), "BUNDLE")
        self.refused(edit(CHROMIUM_OFFER, drop=["a=rtcp-mux"]), "lacks a=rtcp-mux")
        self.refused(edit(CHROMIUM_OFFER, drop=["a=fingerprint"]), "no DTLS a=fingerprint")

    def test_malformed(self):
        self.refused("not sdp", "must start with v=0", code=SDP_DECODE)
        self.refused(b"\xff\xfe", "not UTF-8", code=SDP_DECODE)

    def test_hostile_offers_raise_only_sdp_error(self):
        rng = random.Random(10)
        base = CHROMIUM_OFFER.split("\r\n")
        for _ in range(300):
            lines = list(base)
            for _ in range(rng.randint(1, 4)):
                index = rng.randrange(len(lines))
                op = rng.randrange(3)
                if op == 0:
                    del lines[index]
                elif op == 1:
                    lines[index] = lines[index][:rng.randrange(len(lines[index]) + 1)]
                else:
                    lines.insert(index, rng.choice(base)[:rng.randint(0, 40)] + random_string(3, rng))
            try:
                result = answer("\r\n".join(lines))
            except SdpError:
                continue
            self.assertEqual(sdp.parse(result.sdp), result.description)


class AiortcTests(unittest.TestCase):
    def setUp(self):
        if aiortc is None:
            raise optional.missing("aiortc")

    def aiortc_offer(self, direction):
        from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

        async def create_offer():
            pc = aiortc.RTCPeerConnection()
            if direction == "sendonly":
                pc.addTransceiver(AudioStreamTrack(), direction=direction)
                pc.addTransceiver(VideoStreamTrack(), direction=direction)
            else:
                pc.addTransceiver("audio", direction=direction)
                pc.addTransceiver("video", direction=direction)
            offer = await pc.createOffer()   # no setLocalDescription: no gathering, no sockets
            await pc.close()
            return offer.sdp
        return asyncio.run(asyncio.wait_for(create_offer(), 30))

    def test_aiortc_reads_our_publish_answer(self):
        result = answer(self.aiortc_offer("sendonly"), candidates=[
            ("10.99.0.1", 8000, "udp"), ("10.99.0.1", 8000, "tcp")])
        audio, video = aiortc_sdp.SessionDescription.parse(result.sdp).media
        self.assertTrue(audio.ice.iceLite)
        self.assertEqual((audio.ice.usernameFragment, audio.ice.password),
                         (result.local_ufrag, result.local_pwd))
        self.assertEqual(audio.dtls.role, "server")
        self.assertEqual(audio.direction, "recvonly")
        self.assertEqual([(c.mimeType, c.clockRate, c.channels) for c in audio.rtp.codecs],
                         [("audio/opus", 48000, 2)])
        self.assertEqual(video.rtp.codecs[0].mimeType, "video/H264")
        self.assertEqual(video.rtp.codecs[0].parameters["packetization-mode"], "1")
        self.assertEqual([(fb.type, fb.parameter) for fb in video.rtp.codecs[0].rtcpFeedback],
                         [("nack", None), ("nack", "pli")])
        candidates = [(c.protocol, c.port, c.tcpType) for c in audio.ice_candidates]
        self.assertEqual(candidates, [("udp", 8000, None), ("tcp", 8000, "passive")])

    def test_aiortc_reads_our_play_answer(self):
        result = answer(self.aiortc_offer("recvonly"), publish=False, stream="cam")
        audio, video = aiortc_sdp.SessionDescription.parse(result.sdp).media
        self.assertEqual((audio.direction, video.direction), ("sendonly", "sendonly"))
        self.assertEqual([s.ssrc for s in video.ssrc], [result.track("video").ssrc])
        self.assertEqual(video.ssrc[0].cname, audio.ssrc[0].cname)
        self.assertEqual(video.msid, "live/cam " + result.track("video").track_id)
