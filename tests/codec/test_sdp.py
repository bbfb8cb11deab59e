"""Tests for srs_twisted.codec.sdp and sdp_negotiate: real offers, round trips, answers, hostile text."""

import asyncio
import random

from twisted.trial import unittest

from srs_twisted.codec import sdp
from srs_twisted.codec.sdp import (
    SDP_DECODE, SDP_EXCHANGE, Candidate, Codec, Extmap, Fingerprint, Group, Media, SdpError,
    SessionDescription, SsrcLine)
from srs_twisted.codec.sdp_negotiate import (
    TWCC_URI, answer_setup, check_offer, find_rtx, ice_credentials, pick_h264, pick_opus)

from .. import optional
from .sdp_fixtures import AIORTC_OFFER, CHROMIUM_OFFER, FFMPEG_WHIP_OFFER

try:
    import aiortc
    from aiortc import sdp as aiortc_sdp
except ImportError:  # test-only dependency (the "test" extra)
    aiortc = aiortc_sdp = None

OFFERS = {"ffmpeg": FFMPEG_WHIP_OFFER, "aiortc": AIORTC_OFFER, "chromium": CHROMIUM_OFFER}
FFMPEG_FP = ("27:5D:A2:52:80:05:97:25:86:CA:E3:41:FA:0C:46:EB:34:9F:E6:F9:77:DA:BF:F0:98:33:"
             "C9:26:6A:FD:A3:A8")


def edit(text, drop=(), replace=()):
    """``text`` without the lines starting with any of ``drop``, with replacements."""
    lines = [line for line in text.split("\r\n") if not line.startswith(tuple(drop)) or not line]
    text = "\r\n".join(lines)
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    return text


class FfmpegOfferTests(unittest.TestCase):
    def setUp(self):
        self.offer = sdp.parse(FFMPEG_WHIP_OFFER)

    def test_session(self):
        offer = self.offer
        self.assertEqual(offer.origin, "FFmpeg 4489045141692799359 2 IN IP4 127.0.0.1")
        self.assertEqual((offer.name, offer.timing), ("FFmpegPublishSession", "0 0"))
        self.assertEqual(offer.groups, [Group("BUNDLE", ["0", "1"])])
        self.assertEqual(offer.group("BUNDLE").ids, ["0", "1"])
        self.assertIsNone(offer.group("LS"))
        self.assertTrue(offer.extmap_allow_mixed)
        self.assertEqual(offer.msid_semantic, " WMS")
        self.assertFalse(offer.ice_lite)
        self.assertEqual(offer.attributes, [])
        self.assertEqual(len(offer.media), 2)

    def test_audio(self):
        audio = self.offer.media[0]
        self.assertEqual((audio.kind, audio.port, audio.proto, audio.formats),
                         ("audio", 9, "UDP/TLS/RTP/SAVPF", ["111"]))
        self.assertEqual(audio.connection, "IN IP4 0.0.0.0")
        self.assertEqual((audio.mid, audio.direction, audio.setup), ("0", "sendonly", "passive"))
        self.assertEqual((audio.ice_ufrag, audio.ice_pwd),
                         ("6114c1fe", "9c649b8f1d483c6d12255d97981a5d2e"))
        self.assertEqual(audio.fingerprints, [Fingerprint("sha-256", FFMPEG_FP)])
        self.assertTrue(audio.rtcp_mux)
        self.assertFalse(audio.rtcp_rsize)
        self.assertEqual(audio.msid, "FFmpeg audio")
        self.assertEqual(audio.codecs, [Codec(111, "opus", 48000, 2)])
        self.assertEqual(audio.ssrcs, [SsrcLine(304538368, "cname", "FFmpeg"),
                                       SsrcLine(304538368, "msid", "FFmpeg audio")])
        self.assertEqual(audio.ssrc_attributes(304538368), {"cname": "FFmpeg", "msid": "FFmpeg audio"})
        self.assertEqual(audio.attributes, [])

    def test_video(self):
        video = self.offer.media[1]
        self.assertEqual(video.formats, ["106", "105"])
        self.assertTrue(video.rtcp_rsize)
        h264 = video.codec(106)
        self.assertEqual((h264.name, h264.clock_rate, h264.channels), ("H264", 90000, None))
        self.assertEqual(h264.rtcp_fb, ["nack"])
        self.assertEqual(h264.params, {"level-asymmetry-allowed": "1", "packetization-mode": "1",
                                       "profile-level-id": "42000d"})
        self.assertEqual(video.codec(105), Codec(105, "rtx", 90000, None, "apt=106"))
        self.assertIsNone(video.codec(96))
        self.assertEqual(video.ssrc_groups, [Group("FID", [304538369, 304538370])])

    def test_negotiation(self):
        check_offer(self.offer, publish=True)
        with self.assertRaisesRegex(SdpError, "m=audio mid=0 is sendonly but play needs "
                                              "sendrecv or recvonly") as caught:
            check_offer(self.offer, publish=False)
        self.assertEqual(caught.exception.code, SDP_EXCHANGE)
        self.assertEqual(ice_credentials(self.offer), ("6114c1fe", "9c649b8f1d483c6d12255d97981a5d2e"))
        self.assertEqual(pick_opus(self.offer.media[0]).pt, 111)
        # FFmpeg offers plain baseline (42000d): accepted, as the only H.264 there is.
        self.assertEqual(pick_h264(self.offer.media[1]).pt, 106)
        self.assertEqual(find_rtx(self.offer.media[1], 106).pt, 105)
        self.assertIsNone(find_rtx(self.offer.media[1], 105))
        self.assertEqual(answer_setup(self.offer.media[0].setup), "active")


class AiortcOfferTests(unittest.TestCase):
    def setUp(self):
        self.offer = sdp.parse(AIORTC_OFFER)

    def test_parse(self):
        offer = self.offer
        self.assertEqual(offer.msid_semantic, "WMS *")
        audio, video = offer.media
        self.assertEqual(audio.formats, ["96", "9", "0", "8"])
        self.assertEqual([c.pt for c in audio.codecs], [96, 9, 0, 8])
        self.assertEqual(audio.codec(0), Codec(0, "PCMU", 8000))
        self.assertEqual(audio.rtcp, "9 IN IP4 0.0.0.0")
        self.assertEqual([f.algorithm for f in audio.fingerprints], ["sha-256", "sha-384", "sha-512"])
        self.assertEqual(audio.setup, "actpass")
        self.assertEqual(audio.extmaps, [Extmap(1, "urn:ietf:params:rtp-hdrext:sdes:mid"),
                                         Extmap(2, "urn:ietf:params:rtp-hdrext:ssrc-audio-level")])
        self.assertEqual(audio.candidates[0], Candidate(
            "f957a2332b1715da3b0ef8ba684454eb", 1, "udp", 2130706431, "192.0.2.2", 47620, "host"))
        self.assertEqual(audio.candidates[1].host, "fd00::2")
        self.assertTrue(audio.end_of_candidates)
        self.assertEqual(video.codec(97).rtcp_fb, ["nack", "nack pli", "goog-remb"])
        self.assertEqual(len(video.ssrc_groups[0].ids), 2)

    def test_negotiation(self):
        check_offer(self.offer, publish=True)
        self.assertEqual(pick_opus(self.offer.media[0]).pt, 96)
        video = self.offer.media[1]
        self.assertEqual(pick_h264(video).params["profile-level-id"], "42e01f")
        self.assertEqual(pick_h264(video).pt, 101)
        self.assertEqual(pick_h264(video, prefer="42001f").pt, 99)
        self.assertEqual(find_rtx(video, 101).pt, 102)
        self.assertEqual(answer_setup("actpass"), "passive")
        self.assertEqual(answer_setup("actpass", preferred="active"), "active")

    def test_live_create_offer(self):
        """aiortc's own createOffer (no gathering: no sockets) parses and negotiates."""
        if aiortc is None:
            raise optional.missing("aiortc")
        from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

        async def create_offer():
            pc = aiortc.RTCPeerConnection()
            pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
            pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
            offer = await pc.createOffer()
            await pc.close()
            return offer.sdp

        text = asyncio.run(asyncio.wait_for(create_offer(), 30))
        offer = sdp.parse(text)
        check_offer(offer, publish=True)
        self.assertEqual(pick_opus(offer.media[0]).name, "opus")
        self.assertEqual(pick_h264(offer.media[1]).params["profile-level-id"], "42e01f")
        self.assertEqual(sdp.parse(sdp.render(offer)), offer)


class ChromiumOfferTests(unittest.TestCase):
    def setUp(self):
        self.offer = sdp.parse(CHROMIUM_OFFER)

    def test_parse(self):
        audio, video = self.offer.media
        self.assertEqual(audio.ice_options, "trickle")
        self.assertEqual(audio.connection, "IN IP4 10.99.0.1")
        self.assertEqual(audio.port, 51742)
        opus = audio.codec(111)
        self.assertEqual(opus.params, {"minptime": "10", "useinbandfec": "1"})
        self.assertEqual(opus.rtcp_fb, ["transport-cc"])
        self.assertEqual(audio.codec(63).params, {"111/111": ""})
        self.assertEqual(len(video.codecs), 27)
        self.assertEqual(video.codec(96).rtcp_fb,
                         ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"])
        self.assertEqual(next(e.id for e in video.extmaps if e.uri == TWCC_URI), 3)
        tcp = video.candidates[1]
        self.assertEqual((tcp.transport, tcp.port, tcp.extra("tcptype")), ("tcp", 9, "active"))
        self.assertEqual(tcp.extra("network-id"), "1")
        self.assertIsNone(tcp.extra("raddr"))
        self.assertEqual(video.ssrc_groups, [Group("FID", [1503281627, 3945066218])])
        self.assertEqual(video.ssrc_attributes(1503281627)["cname"], "q7LwHk3bZ2xV9eRt")
        self.assertEqual(self.offer.msid_semantic, " WMS 8f4d3c2a-6b1e-4f7d-9a05-3c2e1d0b9a87")

    def test_h264_choice(self):
        video = self.offer.media[1]
        # 109 is 42e01f with packetization-mode=1; 115 is 42e01f with mode 0.
        self.assertEqual(pick_h264(video).pt, 109)
        self.assertEqual(pick_h264(video, prefer="4d001f").pt, 117)
        # A High 4.0 stream: the offer's High (another level) beats baseline.
        self.assertEqual(pick_h264(video, prefer="640028").pt, 119)
        # Without 42e01f: another constrained baseline, then main, then baseline.
        no_cb = edit(CHROMIUM_OFFER, replace=[("packetization-mode=1;profile-level-id=42e01f",
                                               "packetization-mode=1;profile-level-id=42c01f")])
        self.assertEqual(pick_h264(sdp.parse(no_cb).media[1]).pt, 109)
        no_cb = edit(CHROMIUM_OFFER, replace=[("packetization-mode=1;profile-level-id=42e01f",
                                               "packetization-mode=0;profile-level-id=42e01f")])
        self.assertEqual(pick_h264(sdp.parse(no_cb).media[1]).pt, 117)
        only_baseline = edit(no_cb, replace=[("packetization-mode=1;profile-level-id=4d001f",
                                              "packetization-mode=0;profile-level-id=4d001f")])
        self.assertEqual(pick_h264(sdp.parse(only_baseline).media[1]).pt, 103)

    def test_level_asymmetry_breaks_ties(self):
        text = edit(CHROMIUM_OFFER, replace=[
            ("a=fmtp:109 level-asymmetry-allowed=1;", "a=fmtp:109 "),
            ("a=fmtp:115 level-asymmetry-allowed=1;packetization-mode=0",
             "a=fmtp:115 level-asymmetry-allowed=1;packetization-mode=1")])
        self.assertEqual(pick_h264(sdp.parse(text).media[1]).pt, 115)

    def test_negotiation(self):
        check_offer(self.offer, publish=True)
        self.assertEqual(ice_credentials(self.offer), ("Gx7q", "mY3k0X9a+Lq1w/ZpR8bV2nTc"))
        self.assertEqual(pick_opus(self.offer.media[0]).pt, 111)


class RoundTripTests(unittest.TestCase):
    def test_parse_render_parse(self):
        for name, text in OFFERS.items():
            offer = sdp.parse(text)
            rendered = sdp.render(offer)
            self.assertEqual(sdp.parse(rendered), offer, name)
            self.assertEqual(sdp.render(sdp.parse(rendered)), rendered, name)
            self.assertTrue(rendered.endswith("\r\n") and "\n" not in rendered.replace("\r\n", ""))

    def test_no_line_is_lost(self):
        # We may write lines in another order, never drop or alter one.
        for name, text in OFFERS.items():
            self.assertEqual(sorted(sdp.render(sdp.parse(text)).split("\r\n")),
                             sorted(text.split("\r\n")), name)

    def test_unmodelled_lines_are_kept(self):
        text = edit(FFMPEG_WHIP_OFFER, replace=[
            ("t=0 0\r\n", "i=info\r\nu=http://example.com/\r\nt=0 0\r\nr=7d 1h 0 25h\r\n"
                          "a=ice-lite\r\na=x-session:1\r\n"),
            ("a=mid:1\r\n", "a=mid:1\r\ni=the camera\r\nb=AS:2500\r\na=sctp-port:5000\r\n"
                            "a=rtcp-fb:* nack\r\na=fmtp:99 apt=98\r\na=bundle-only\r\n"
                            "a=extmap:9/recvonly urn:x:y attr\r\na=mid\r\na=rtcp-mux:x\r\n")])
        offer = sdp.parse(text)
        self.assertTrue(offer.ice_lite)
        self.assertEqual(offer.extra_lines, [("i", "info"), ("u", "http://example.com/"),
                                             ("r", "7d 1h 0 25h")])
        self.assertEqual(offer.attributes, [("x-session", "1")])
        video = offer.media[1]
        self.assertEqual((video.title, video.bandwidths), ("the camera", ["AS:2500"]))
        self.assertEqual(video.attributes, [("sctp-port", "5000"), ("rtcp-fb", "* nack"),
                                            ("fmtp", "99 apt=98"), ("bundle-only", None),
                                            ("mid", None), ("rtcp-mux", "x")])
        self.assertEqual(video.extmaps[0], Extmap(9, "urn:x:y", "recvonly", "attr"))
        self.assertEqual(sdp.parse(sdp.render(offer)), offer)
        self.assertEqual(sorted(sdp.render(offer).split("\r\n")), sorted(text.split("\r\n")))

    def test_fmtp_before_rtpmap_and_lf_endings(self):
        text = edit(FFMPEG_WHIP_OFFER, replace=[
            ("a=rtpmap:106 H264/90000\r\na=fmtp:106 level-asymmetry-allowed=1;"
             "packetization-mode=1;profile-level-id=42000d\r\n",
             "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42000d"
             "\r\na=rtpmap:106 H264/90000\r\n")]).replace("\r\n", "\n")
        offer = sdp.parse(text.encode())
        self.assertEqual(offer, sdp.parse(FFMPEG_WHIP_OFFER))


class AnswerTests(unittest.TestCase):
    """An ICE-lite answer to FFmpeg's offer, built as the RTC layer will."""

    def answer(self, offer):
        answer = SessionDescription(
            origin="SRS/7.0 94067812345 2 IN IP4 0.0.0.0", name="SRSPublishSession",
            groups=[Group("BUNDLE", ["0", "1"])], ice_lite=True, msid_semantic=" WMS live/livestream")
        for media in offer.media:
            codec = pick_opus(media) if media.kind == "audio" else pick_h264(media)
            answer.media.append(Media(
                kind=media.kind, port=9, proto=media.proto, formats=[str(codec.pt)],
                connection="IN IP4 0.0.0.0", mid=media.mid, direction="recvonly",
                ice_ufrag="7x3k9s2q", ice_pwd="v0a9s8d7f6g5h4j3k2l1q0w9e8r7t6y5",
                fingerprints=[Fingerprint("sha-256", "AB:" * 31 + "CD")],
                setup=answer_setup(media.setup), rtcp_mux=True, rtcp_rsize=True,
                codecs=[Codec(codec.pt, codec.name, codec.clock_rate, codec.channels, codec.fmtp,
                              ["nack", "nack pli"] if media.kind == "video" else [])],
                candidates=[Candidate("0", 1, "udp", 2130706431, "10.99.0.1", 8000, "host",
                                      ["generation", "0"])]))
        return answer

    def test_rendered_answer(self):
        answer = self.answer(sdp.parse(FFMPEG_WHIP_OFFER))
        text = sdp.render(answer)
        media_common = (
            "c=IN IP4 0.0.0.0\r\na=mid:{mid}\r\na=recvonly\r\na=ice-ufrag:7x3k9s2q\r\n"
            "a=ice-pwd:v0a9s8d7f6g5h4j3k2l1q0w9e8r7t6y5\r\n"
            "a=fingerprint:sha-256 " + "AB:" * 31 + "CD\r\na=setup:active\r\n"
            "a=candidate:0 1 udp 2130706431 10.99.0.1 8000 typ host generation 0\r\n"
            "a=rtcp-mux\r\na=rtcp-rsize\r\n")
        self.assertEqual(text, (
            "v=0\r\no=SRS/7.0 94067812345 2 IN IP4 0.0.0.0\r\ns=SRSPublishSession\r\nt=0 0\r\n"
            "a=ice-lite\r\na=group:BUNDLE 0 1\r\na=msid-semantic: WMS live/livestream\r\n"
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" + media_common.format(mid=0)
            + "a=rtpmap:111 opus/48000/2\r\n"
            "m=video 9 UDP/TLS/RTP/SAVPF 106\r\n" + media_common.format(mid=1)
            + "a=rtpmap:106 H264/90000\r\na=rtcp-fb:106 nack\r\na=rtcp-fb:106 nack pli\r\n"
            "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42000d\r\n"))
        self.assertEqual(sdp.parse(text), answer)

    def test_aiortc_reads_our_answer(self):
        if aiortc_sdp is None:
            raise optional.missing("aiortc")
        parsed = aiortc_sdp.SessionDescription.parse(sdp.render(self.answer(sdp.parse(AIORTC_OFFER))))
        audio, video = parsed.media
        self.assertTrue(audio.ice.iceLite)
        self.assertEqual((audio.ice.usernameFragment, audio.ice.password),
                         ("7x3k9s2q", "v0a9s8d7f6g5h4j3k2l1q0w9e8r7t6y5"))
        self.assertEqual(audio.dtls.role, "server")   # actpass offer -> a=setup:passive: we serve DTLS
        self.assertEqual(audio.dtls.fingerprints[0].value, "AB:" * 31 + "CD")
        self.assertEqual([(c.mimeType, c.clockRate, c.channels) for c in audio.rtp.codecs],
                         [("audio/opus", 48000, 2)])
        self.assertEqual(video.rtp.codecs[0].parameters["profile-level-id"], "42e01f")
        self.assertEqual([(fb.type, fb.parameter) for fb in video.rtp.codecs[0].rtcpFeedback],
                         [("nack", None), ("nack", "pli")])
        self.assertEqual(audio.ice_candidates[0].port, 8000)
        self.assertEqual(audio.direction, "recvonly")
        self.assertTrue(audio.rtcp_mux)

    def test_aiortc_reads_our_rendering_of_its_offer(self):
        if aiortc_sdp is None:
            raise optional.missing("aiortc")
        ours = sdp.render(sdp.parse(AIORTC_OFFER))
        self.assertEqual(str(aiortc_sdp.SessionDescription.parse(ours)),
                         str(aiortc_sdp.SessionDescription.parse(AIORTC_OFFER)))


class RefusalTests(unittest.TestCase):
    def refused(self, text, message, publish=True):
        with self.assertRaisesRegex(SdpError, message) as caught:
            offer = sdp.parse(text)
            check_offer(offer, publish)
            for media in offer.media:
                pick_opus(media) if media.kind == "audio" else pick_h264(media)
        self.assertEqual(caught.exception.code, SDP_EXCHANGE)

    def test_no_ice_credentials(self):
        for drop in (["a=ice-ufrag"], ["a=ice-pwd"], ["a=ice-ufrag", "a=ice-pwd"]):
            self.refused(edit(FFMPEG_WHIP_OFFER, drop=drop),
                         r"^the offer has no ICE credentials \(a=ice-ufrag and a=ice-pwd\)$")

    def test_session_level_credentials(self):
        # OBS (libdatachannel) style: ICE credentials once, at session level.
        text = edit(FFMPEG_WHIP_OFFER, drop=["a=ice-"], replace=[
            ("t=0 0\r\n", "t=0 0\r\na=ice-ufrag:obs1\r\na=ice-pwd:0123456789012345678901\r\n")])
        offer = sdp.parse(text)
        self.assertEqual(ice_credentials(offer), ("obs1", "0123456789012345678901"))
        check_offer(offer, publish=True)

    def test_no_usable_codec(self):
        self.refused(edit(FFMPEG_WHIP_OFFER, replace=[("packetization-mode=1", "packetization-mode=0")]),
                     r"^no H.264 payload type with packetization-mode=1 in m=video mid=1$")
        self.refused(edit(FFMPEG_WHIP_OFFER, replace=[("a=rtpmap:111 opus/48000/2",
                                                       "a=rtpmap:111 opus/48000/1")]),
                     r"^no Opus 48000/2 payload type in m=audio mid=0$")
        vp8_only = edit(AIORTC_OFFER, drop=["a=rtpmap:99", "a=rtpmap:101", "a=fmtp:99",
                                            "a=fmtp:101", "a=rtcp-fb:99", "a=rtcp-fb:101"])
        self.refused(vp8_only, "no H.264 payload type")

    def test_other_refusals(self):
        cases = [
            (edit(FFMPEG_WHIP_OFFER, drop=["a=group"]), "must use a=group:BUNDLE"),
            (edit(FFMPEG_WHIP_OFFER, drop=["a=rtcp-mux"]), "m=audio mid=0 lacks a=rtcp-mux"),
            (edit(FFMPEG_WHIP_OFFER, replace=[("BUNDLE 0 1", "BUNDLE 0")]),
             "m=video mid=1 is not in the BUNDLE group"),
            (edit(FFMPEG_WHIP_OFFER, drop=["a=fingerprint"]), "no DTLS a=fingerprint"),
            (edit(FFMPEG_WHIP_OFFER, replace=[("a=sendonly\r\na=msid:FFmpeg video",
                                               "a=recvonly\r\na=msid:FFmpeg video")]),
             "m=video mid=1 is recvonly but publish needs sendrecv or sendonly"),
            (FFMPEG_WHIP_OFFER + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
             "unsupported media type in m=application mid=None"),
            ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "no media sections"),
        ]
        for text, message in cases:
            self.refused(text, message)

    def test_answer_setup(self):
        self.assertEqual([answer_setup(s) for s in (None, "actpass", "active", "passive")],
                         ["passive", "passive", "passive", "active"])
        with self.assertRaises(SdpError) as caught:
            answer_setup("holdconn")
        self.assertEqual(caught.exception.code, SDP_EXCHANGE)
        with self.assertRaises(ValueError):
            answer_setup("actpass", preferred="actpass")


class MalformedTests(unittest.TestCase):
    def assertDecodeError(self, text, message):
        with self.assertRaisesRegex(SdpError, message) as caught:
            sdp.parse(text)
        self.assertEqual(caught.exception.code, SDP_DECODE)

    def test_errors(self):
        head = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        audio = head + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        cases = [
            ("", "must start with v=0"),
            ("v=1\r\n", "must start with v=0"),
            ("o=- 1 1 IN IP4 0.0.0.0\r\nv=0\r\n", "must start with v=0"),
            ("v=0\r\ns=-\r\nt=0 0\r\n", "no o= line"),
            ("v=0\r\n", "no o/s/t= line"),
            (head + "hello\r\n", r"line 5 is not <type>=<value>: 'hello'"),
            (head + "=x\r\n", "line 5 is not"),
            (head + "x=1\r\n", "unexpected x= line"),
            (head + "o=- 1 1 IN IP4 0.0.0.0\r\n", "line 5: unexpected o= line"),
            ("v=0\r\no=- 1 1 IN IP4\r\ns=-\r\nt=0 0\r\n", "o= .* needs 6 fields"),
            (head + "c=IN IP4\r\n", "c= .* needs 3 fields"),
            (head + "m=audio 9 UDP/TLS/RTP/SAVPF\r\n", "needs media, port, proto and formats"),
            (head + "m=audio x UDP/TLS/RTP/SAVPF 0\r\n", "m= port 'x' is not an integer"),
            (head + "m=audio 70000 UDP/TLS/RTP/SAVPF 0\r\n", "m= port '70000'"),
            (head + "m=audio 9/0 UDP/TLS/RTP/SAVPF 0\r\n", "m= port count '0'"),
            (audio + "s=x\r\n", "line 6: s= is not allowed in a media section"),
            (audio + "a=rtpmap:111 opus\r\n", "line 6: a=rtpmap: '111 opus' is not 'pt name/clock"),
            (audio + "a=rtpmap:128 opus/48000/2\r\n", "payload type '128'"),
            (audio + "a=rtpmap:111 opus/x/2\r\n", "rtpmap clock rate 'x'"),
            (audio + "a=rtpmap:96 opus/48000/2\r\n", "a=rtpmap:96 is not listed in the m=audio line"),
            (audio + "a=rtpmap:111 opus/48000/2\r\na=rtpmap:111 opus/48000/2\r\n",
             "a=rtpmap:111 appears twice"),
            (audio + "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 a=1\r\na=fmtp:111 a=2\r\n",
             "a=fmtp:111 appears twice"),
            (audio + "a=candidate:1 1 udp 1 10.0.0.1 9 host\r\n", "is not 'foundation component"),
            (audio + "a=candidate:1 0 udp 1 10.0.0.1 9 typ host\r\n", "candidate component '0'"),
            (audio + "a=candidate:1 1 udp 1 10.0.0.1 99999 typ host\r\n", "candidate port"),
            (audio + "a=ssrc:12\r\n", "a=ssrc: '12' has no attribute"),
            (audio + "a=ssrc:x cname:y\r\n", "ssrc 'x'"),
            (audio + "a=ssrc:4294967296 cname:y\r\n", "ssrc '4294967296'"),
            (audio + "a=ssrc-group:FID 1 x\r\n", "ssrc-group ssrc 'x'"),
            (audio + "a=extmap:0 urn:x\r\n", "extmap id '0'"),
            (audio + "a=extmap:1/sideways urn:x\r\n", "a=extmap: direction 'sideways' is not one of"),
            (audio + "a=extmap:1\r\n", "a=extmap: value '1' needs 2 fields"),
            (audio + "a=setup:bogus\r\n", "'bogus' is not one of actpass/active/passive/holdconn"),
            (audio + "a=ice-ufrag:\r\n", "a=ice-ufrag needs a value"),
            (audio + "a=fingerprint:sha-256\r\n", "a=fingerprint: value 'sha-256' needs 2 fields"),
            (audio + "a=:x\r\n", "empty attribute name"),
            (b"v=0\r\n\xff\r\n", "SDP is not UTF-8"),
            ("v=0\r\n" + "a=x\r\n" * 20000, "exceeds 65536"),
            (5, "SDP must be text, not int"),
        ]
        for text, message in cases:
            self.assertDecodeError(text, message)

    def test_misplaced_attributes_are_kept_not_modelled(self):
        text = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=mid:0\r\na=rtpmap:0 PCMU/8000\r\n"
                "m=audio 9 RTP/AVP 0\r\na=group:BUNDLE 0\r\na=ice-lite\r\na=msid-semantic:WMS\r\n"
                "a=direction\r\na=sendonly:x\r\n")
        offer = sdp.parse(text)
        self.assertEqual(offer.attributes, [("mid", "0"), ("rtpmap", "0 PCMU/8000")])
        self.assertEqual(offer.media[0].attributes, [("group", "BUNDLE 0"), ("ice-lite", None),
                                                     ("msid-semantic", "WMS"), ("direction", None),
                                                     ("sendonly", "x")])
        self.assertIsNone(offer.media[0].mid)
        self.assertIsNone(offer.media[0].direction)
        self.assertEqual(offer.groups, [])
        self.assertEqual(sdp.parse(sdp.render(offer)), offer)

    def test_candidate_strings(self):
        value = "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.2 " \
                "rport 46154 generation 0 ufrag sXJ3 network-cost 999"
        candidate = Candidate.parse(value)
        self.assertEqual((candidate.type, candidate.extra("raddr"), candidate.extra("rport")),
                         ("srflx", "10.0.0.2", "46154"))
        self.assertEqual("candidate:%s" % candidate, value)


class HostileInputTests(unittest.TestCase):
    """Random and damaged offers: SdpError is the only exception, and whatever
    parses also renders, parses back equal and goes through negotiation."""

    def survive(self, text):
        try:
            offer = sdp.parse(text)
        except SdpError:
            return
        except Exception as exc:  # noqa: BLE001 - report the input
            self.fail("%r leaked from parse(%r)" % (exc, text[:300]))
        try:
            self.assertEqual(sdp.parse(sdp.render(offer)), offer)
            for media in offer.media:
                for pick in (pick_h264, pick_opus):
                    try:
                        pick(media)
                    except SdpError:
                        pass
            ice_credentials(offer)
            check_offer(offer, publish=True)
        except SdpError:
            pass

    def test_random_bytes(self):
        rng = random.Random(4566)
        for _ in range(1500):
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 120)))
            self.survive(rng.choice((data, b"v=0\r\n" + data)))

    def test_truncated_offers(self):
        rng = random.Random(8866)
        for text in OFFERS.values():
            lines = text.split("\r\n")
            for end in range(len(lines)):
                self.survive("\r\n".join(lines[:end]))
            for _ in range(150):
                self.survive(text[:rng.randrange(len(text))])

    def test_mutated_offers(self):
        rng = random.Random(3264)
        alphabet = " :=/;\r\n\t0123456789abcdefmavtocsx*-\x00\u00e9\u2028"
        for _ in range(1500):
            text = list(rng.choice(list(OFFERS.values())))
            for _ in range(rng.randint(1, 4)):
                text[rng.randrange(len(text))] = rng.choice(alphabet)
            self.survive("".join(text))

    def test_shuffled_lines(self):
        rng = random.Random(5764)
        for _ in range(300):
            lines = rng.choice(list(OFFERS.values())).split("\r\n")
            head, rest = lines[:1], lines[1:]
            for _ in range(rng.randint(1, 3)):
                i, j = rng.randrange(len(rest)), rng.randrange(len(rest))
                action = rng.randrange(3)
                if action == 0:
                    rest[i], rest[j] = rest[j], rest[i]
                elif action == 1:
                    rest.insert(i, rest[j])
                else:
                    del rest[i]
            self.survive("\r\n".join(head + rest))
