"""HEVC to WebRTC (``?codec=hevc``, SRS 7) against the real server, in the tests'
private network namespace.

FFmpeg publishes H.265 + AAC over RTMP (Enhanced RTMP ``hvc1``).  The player is
this test: a hand-written WHEP offer (Chromium's own offer, which lists H.265,
made recvonly), SRS's plaintext transport (``?encrypt=false&dtls=false``: no
DTLS, plain RTP) on a raw UDP socket after one STUN check.  Neither Chromium
on this machine nor aiortc can decode H.265 over WebRTC, so the RTP is checked
here: the answer's payload type is the offer's H.265 one, every video packet
is an RFC 7798 payload (single NAL, AP, FU), the frames put back together
(srs_twisted.codec.rtp_h265.depayload) decode with FFmpeg's HEVC decoder
(PyAV) at the clip's size, the first one after a VPS/SPS/PPS AP, and Opus
audio (the bridge's) comes too.  A player that offers no H.265, a play of the
H.265 stream without ``?codec=hevc`` and ``?codec=hevc`` on an H.264 stream are
refused with SRS's 5018.
"""

from __future__ import annotations

import json
import socket
import time

from twisted.trial import unittest

from srs_twisted.codec import rtp, rtp_h265, sdp, stun
from tests.codec.sdp_fixtures import AIORTC_OFFER, CHROMIUM_OFFER
from tests.integration import harness as h
from tests.integration import netns
from tests.integration.test_rtc_plain import api_request
from tests.rtc.test_answer import play_offer

H265_PT = 49  # in CHROMIUM_OFFER: a=rtpmap:49 H265/90000


class HevcToWebRtc(unittest.TestCase):
    timeout = 240

    def setUp(self):
        h.ffmpeg()
        netns.enter()
        self.api = h.free_port()
        self.udp = h.free_port()
        self.srv = h.Server(
            f"http_api {{ enabled on; listen 127.0.0.1:{self.api}; }}\n"
            f"rtc_server {{ enabled on; listen 127.0.0.1:{self.udp}; candidate 127.0.0.1; }}\n"
            "vhost __defaultVhost__ { rtc { enabled on; rtmp_to_rtc on; } }\n")
        self.addCleanup(self.srv.stop)
        self.procs = []
        self.addCleanup(lambda: [h.stop_process(p) for p in self.procs])

    def publish(self, kind: str, name: str) -> None:
        self.procs.append(h.publish(self.srv.url(name), h.clip(kind, 12), loop=True))

        def listed():
            streams = json.loads(api_request(self.api, "GET", "/api/v1/streams/").body)["streams"]
            found = [s for s in streams if s["name"] == name and s.get("video")]
            return found and found[0]

        return h.wait_for(listed, 60, interval=0.2, message=f"{name} never listed with its video")

    def whep(self, name: str, query: str, offer: str):
        return api_request(self.api, "POST", f"/rtc/v1/whep/?app=live&stream={name}{query}", offer)

    def test_hevc_stream_plays_over_whep_as_rfc7798_rtp(self):
        stream = self.publish("hevc-aac", "hevc")
        self.assertEqual(stream["video"]["codec"], "HEVC")  # SRS's API name
        offer = play_offer(CHROMIUM_OFFER)
        reply = self.whep("hevc", "&codec=hevc&encrypt=false&dtls=false", offer)
        self.assertEqual(reply.status, 201, reply.body)
        answer = sdp.parse(reply.body.decode())
        video = next(m for m in answer.media if m.kind == "video")
        self.assertEqual([(c.pt, c.name, c.clock_rate) for c in video.codecs], [(H265_PT, "H265", 90000)])
        self.assertEqual(video.codecs[0].fmtp, "level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST")
        audio = next(m for m in answer.media if m.kind == "audio")
        audio_pt = audio.codecs[0].pt
        self.assertEqual(audio.codecs[0].name.lower(), "opus")

        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.settimeout(5)
        server = ("127.0.0.1", video.candidates[0].port)
        theirs = sdp.parse(offer).media[0].ice_ufrag
        sock.sendto(stun.binding_request(f"{video.ice_ufrag}:{theirs}", video.ice_pwd, priority=1, controlling=1,
                                         use_candidate=True), server)
        video_packets, audio_packets = {}, 0
        end = time.monotonic() + 8.0
        while time.monotonic() < end:  # 8 s of plain RTP (no STUN consent needed that soon)
            try:
                data = sock.recv(2048)
            except socket.timeout:
                break
            if not data or data[0] >> 6 != 2:
                continue  # the STUN answer
            packet = rtp.RtpPacket.parse(data)
            if packet.payload_type == H265_PT:
                video_packets[packet.sequence_number] = packet
            elif packet.payload_type == audio_pt:
                audio_packets += 1
        self.assertGreater(audio_packets, 200, f"no Opus audio (8 s at 50 packets a second); video {len(video_packets)}; "
                           f"log: {self.srv.log()[-3000:]}")
        frames = self.frames(video_packets)
        self.assertGreater(len(frames), 150, "8 s of 25 fps")
        first = frames[0]
        self.assertEqual([rtp_h265.nal_type(u) for u in first[:3]], [32, 33, 34])  # an AP of VPS, SPS, PPS ...
        self.assertIn(rtp_h265.nal_type(first[3]), rtp_h265.IRAP_TYPES)  # ... before a key frame
        kinds = {rtp_h265.nal_type(p.payload) for p in video_packets.values()}
        self.assertIn(rtp_h265.NAL_AP, kinds)
        self.assertIn(rtp_h265.NAL_FU, kinds)
        self.assertLessEqual(max(len(p.payload) for p in video_packets.values()), 1200)
        import av

        decoder = av.CodecContext.create("hevc", "r")
        decoded = []
        for units in frames:
            decoded += decoder.decode(av.Packet(b"".join(b"\x00\x00\x00\x01" + u for u in units)))
        decoded += decoder.decode(None)
        self.assertGreaterEqual(len(decoded), len(frames) - 2)
        self.assertEqual({(f.width, f.height) for f in decoded}, {(320, 240)})
        self.assertEqual(self.srv.unexpected_errors(), "")

    @staticmethod
    def frames(packets: dict) -> list:
        """The NAL units of each whole frame (a marker ends one), in sequence order from
        the first packet of a key frame's AP (loopback: nothing lost)."""
        ordered = [packets[s] for s in sorted(packets, key=lambda s: (s - min(packets)) & 0xFFFF)]
        start = next(i for i, p in enumerate(ordered) if rtp_h265.nal_type(p.payload) == rtp_h265.NAL_AP)
        frames, current = [], []
        for packet in ordered[start:]:
            current.append(packet.payload)
            if packet.marker:
                frames.append(rtp_h265.depayload(current))
                current = []
        return frames

    def test_refusals(self):
        self.publish("hevc-aac", "hevc")
        self.publish("h264-aac", "avc")
        for name, query, offer, reason in (
                ("hevc", "&codec=hevc", play_offer(AIORTC_OFFER), "no H.265 payload type in m=video"),
                ("hevc", "", play_offer(CHROMIUM_OFFER), "live/hevc is H.265: play it with ?codec=hevc"),
                ("avc", "&codec=hevc", play_offer(CHROMIUM_OFFER), "live/avc is H.264: play it without ?codec=hevc")):
            reply = self.whep(name, query, offer)
            self.assertEqual((reply.status, reply.body), (400, b"5018: RtcSdpNegotiate"), (name, query))
            self.srv.wait_log("code 5018: .*" + reason.replace("?", r"\?").replace(".", r"\."))
        # H.264 stays as it was
        self.assertEqual(self.whep("avc", "", play_offer(CHROMIUM_OFFER)).status, 201)
