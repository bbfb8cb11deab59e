"""srs_twisted.rtc.player: a live stream's MediaPackets to a WHEP player's RTP.

Real clips (FFmpeg-made FLV: H.264 with AAC, H.264 with Opus in Enhanced
RTMP) go through a LiveSource to RtcPlayers with identity SRTP; what they
send is depayloaded again and compared with the input byte for byte."""

import atexit
import dataclasses
import os
import random
import shutil
import subprocess
import tempfile

from twisted.internet.task import Clock
from twisted.trial import unittest

from srs_twisted.codec import avc, flv
from srs_twisted.codec.rtcp import (Fir, Nack, Pli, ReceiverReport, Remb, ReportBlock, SenderReport,
                                    TransportCC, ntp_timestamp, parse_compound)
from srs_twisted.codec.rtp import RtpPacket
from srs_twisted.codec.rtp_h264 import H264Depayloader
from srs_twisted.codec.rtp_opus import OpusDepayloader
from srs_twisted.live.packet import AUDIO, VIDEO
from srs_twisted.live.source import LiveSource, SourceOptions
from srs_twisted.rtc.answer import Track
from srs_twisted.rtc.player import SR_INTERVAL, RtcPlayer, RtpEncoder, parse_records
from srs_twisted.rtc.rtp_cache import RtpCache

CLIPS = {
    "aac": ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i",
            "sine=frequency=440:sample_rate=44100", "-t", "2", "-pix_fmt", "yuv420p",
            "-c:v", "libx264", "-g", "25", "-bf", "0", "-c:a", "aac"],
    "opus": ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i",
             "sine=frequency=440:sample_rate=48000", "-t", "2", "-pix_fmt", "yuv420p",
             "-c:v", "libx264", "-g", "25", "-bf", "0", "-c:a", "libopus"],
    "hevc": ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "2", "-pix_fmt", "yuv420p",
             "-c:v", "libx265", "-x265-params", "log-level=error", "-g", "25", "-bf", "0", "-an"],
}
_TMP = None
_CACHE = {}


def clip(name):
    """MediaPackets of an FFmpeg-made FLV clip (made once per run)."""
    global _TMP
    if name in _CACHE:
        return _CACHE[name]
    from srs_twisted.rtmp.session import media_packet
    from tests.integration import harness

    if _TMP is None:
        _TMP = tempfile.mkdtemp(prefix="rtc-player-test-")
        atexit.register(shutil.rmtree, _TMP, True)
    path = os.path.join(_TMP, name + ".flv")
    result = subprocess.run([harness.ffmpeg(), "-hide_banner", "-v", "error", "-y", *CLIPS[name], "-f", "flv",
                             path], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-800:]
    with open(path, "rb") as f:
        tags = flv.FlvReader().feed(f.read())
    _CACHE[name] = [media_packet(t.tag_type, t.timestamp, t.payload) for t in tags]
    return _CACHE[name]


def fresh(pkts):
    """Copies without the wire caches of an earlier test."""
    from srs_twisted.rtmp.session import media_packet

    return [media_packet(p.kind, p.dts, p.payload) for p in pkts]


VIDEO_TRACK = Track("video", "0", 106, "H264", 90000, None, None, ("nack", "nack pli"), None, 0x1111)
AUDIO_TRACK = Track("audio", "1", 111, "opus", 48000, 2, None, ("nack",), None, 0x2222)


class Publisher:
    def stopProducing(self):
        pass


class Fixture:
    def __init__(self):
        self.now = 1000.0
        self.source = LiveSource("v", "app", "s", Clock(), SourceOptions(mw_latency=0))

    def player(self, tracks=(VIDEO_TRACK, AUDIO_TRACK), **kw):
        sent = []
        keyframes = []
        kw.setdefault("clock", lambda: self.now)
        kw.setdefault("rng", random.Random(len(self.source.consumers)))
        p = RtcPlayer(self.source, [t for t in tracks], sent.append, request_keyframe=keyframes.append, **kw)
        p.sent, p.keyframes = sent, keyframes
        p.subscribe()
        return p

    def publish(self, pkts):
        if self.source.publisher is None:
            self.source.registerProducer(Publisher(), True)
        for pkt in pkts:
            self.source.write(pkt)


def rtp(sent, ssrc=None):
    packets = [RtpPacket.parse(d) for d in sent]
    return [p for p in packets if ssrc is None or p.ssrc == ssrc]


def video_frames(pkts):
    """Input pictures as NAL unit lists (no AUD/SPS/PPS), with keyframe flags."""
    out = []
    for p in pkts:
        if p.kind != VIDEO or p.sequence_header:
            continue
        tag = flv.parse_video(p.payload)
        if tag.end_of_sequence:
            continue
        nalus = [bytes(n) for n in avc.split_nalus(p.payload[tag.data_offset:], 4)
                 if n[0] & 0x1F not in (avc.NAL_AUD, avc.NAL_SPS, avc.NAL_PPS)]
        out.append((nalus, p.keyframe))
    return out


def depayload_video(packets):
    dep = H264Depayloader()
    frames = []
    for packet in packets:
        frames.extend(dep.push(packet))
    return frames, dep


class VideoTests(unittest.TestCase):
    def test_frames_round_trip_byte_exact(self):
        pkts = fresh(clip("aac"))
        fx = Fixture()
        player = fx.player()
        fx.publish(pkts)
        packets = rtp(player.sent, VIDEO_TRACK.ssrc)
        self.assertTrue(all(p.payload_type == 106 for p in packets))
        seqs = [p.sequence_number for p in packets]
        self.assertEqual(seqs, [(seqs[0] + i) & 0xFFFF for i in range(len(seqs))])
        frames, dep = depayload_video(packets)
        expected = video_frames(pkts)
        self.assertEqual(len(frames), 50)
        self.assertEqual([([bytes(n) for n in f.nalus], f.keyframe) for f in frames], expected)
        self.assertEqual(dep.dropped, 0)
        # 25 fps on the 90 kHz clock, from the player's own random base
        self.assertEqual({(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in zip(frames, frames[1:])}, {3600})
        # the marker ends each frame
        self.assertEqual(sum(p.marker for p in packets), 50)
        # a keyframe brings SPS/PPS in a STAP-A, as the sequence header has them
        sh = avc.parse_decoder_config(flv_body(pkts[1 if pkts[0].kind != VIDEO else 0]))
        self.assertEqual(frames[0].sps, [bytes(n) for n in sh.sps])
        self.assertEqual(frames[0].pps, [bytes(n) for n in sh.pps])
        self.assertEqual(packets[0].payload[0] & 0x1F, 24)

    def test_aac_is_skipped(self):
        fx = Fixture()
        player = fx.player()
        fx.publish(fresh(clip("aac")))
        self.assertEqual(rtp(player.sent, AUDIO_TRACK.ssrc), [])
        self.assertGreater(player.encoder.skipped, 0)
        self.assertTrue(rtp(player.sent, VIDEO_TRACK.ssrc))

    def test_two_players_share_payloads(self):
        pkts = fresh(clip("aac"))
        fx = Fixture()
        a = fx.player()
        b = fx.player()
        fx.publish(pkts)
        pa, pb = rtp(a.sent, VIDEO_TRACK.ssrc), rtp(b.sent, VIDEO_TRACK.ssrc)
        self.assertEqual(len(pa), len(pb))
        self.assertEqual([bytes(p.payload) for p in pa], [bytes(p.payload) for p in pb])
        self.assertNotEqual(pa[0].sequence_number, pb[0].sequence_number)
        self.assertNotEqual(pa[0].timestamp, pb[0].timestamp)
        # the payload each player sent is a view of the same shared bytes object
        for i in range(len(pa)):
            ha, va = a.video.cache.get(pa[i].sequence_number)
            hb, vb = b.video.cache.get(pb[i].sequence_number)
            self.assertIs(va.obj, vb.obj)
            self.assertNotEqual(ha, hb)
        # and payloading ran once per packet: both keys' forms are the same object
        key = a.wire_key
        self.assertEqual(key, b.wire_key)
        frame = next(p for p in pkts if p.kind == VIDEO and not p.sequence_header)
        self.assertIs(frame.wire(key, lambda p: self.fail("encoded twice")),
                      frame.wire(key, lambda p: self.fail("encoded twice")))

    @staticmethod
    def join_late(name):
        """A player joining inside the clip's second GOP: (fixture, packets, keyframe indexes,
        the cut, the player)."""
        pkts = fresh(clip(name))
        fx = Fixture()
        keyframes = [i for i, p in enumerate(pkts) if p.kind == VIDEO and p.keyframe and not p.sequence_header]
        cut = keyframes[1] + 10
        fx.publish(pkts[:cut])
        return fx, pkts, keyframes, cut, fx.player()

    def test_late_player_starts_with_sps_pps_and_idr(self):
        fx, pkts, keyframes, cut, late = self.join_late("aac")
        self.assertEqual(late.keyframes, ["join"])
        first = rtp(late.sent, VIDEO_TRACK.ssrc)[0]
        self.assertEqual(first.payload[0] & 0x1F, 24)  # STAP-A ...
        fx.publish(pkts[cut:])
        packets = rtp(late.sent, VIDEO_TRACK.ssrc)
        frames, dep = depayload_video(packets)
        self.assertTrue(frames[0].keyframe)
        self.assertTrue(frames[0].sps and frames[0].pps)
        self.assertEqual([([bytes(n) for n in f.nalus], f.keyframe) for f in frames],
                         video_frames(pkts[keyframes[1]:]))
        self.assertEqual(dep.dropped, 0)

    def test_late_player_gets_the_cached_gop_video_but_live_audio(self):
        # A browser plays every audio sample it is given: a GOP of audio in one burst would put
        # the sound a GOP behind the picture (AUDIO_BACKLOG_MS).
        fx, pkts, keyframes, cut, late = self.join_late("opus")
        newest = max(p.dts for p in pkts[:cut])
        joined_audio = rtp(late.sent, AUDIO_TRACK.ssrc)
        frames, _ = depayload_video(rtp(late.sent, VIDEO_TRACK.ssrc))
        self.assertEqual(len(frames), len(video_frames(pkts[keyframes[1]:cut])))  # the whole cached GOP
        cached_audio = [p for p in pkts[keyframes[1]:cut] if p.kind == AUDIO and not p.sequence_header]
        self.assertGreater(len(cached_audio), 5)
        self.assertEqual(len(joined_audio), len([p for p in cached_audio if p.dts >= newest]))  # 0 or 1
        fx.publish(pkts[cut:])
        later_audio = [p for p in pkts[cut:] if p.kind == AUDIO and not p.sequence_header]
        self.assertEqual(len(rtp(late.sent, AUDIO_TRACK.ssrc)), len(joined_audio) + len(later_audio))

    def test_late_player_of_a_webrtc_publisher_starts_at_the_keyframe_it_asked_for(self):
        # A WebRTC publisher (Chromium) sends keyframes only when asked: its cached GOP may be
        # many seconds, which a late player would get in one burst.  It is asked (PLI) instead.
        class WebRtcPublisher(Publisher):
            def request_keyframe(self):
                pass

        pkts = fresh(clip("opus"))
        fx = Fixture()
        fx.source.registerProducer(WebRtcPublisher(), True)
        keyframes = [i for i, p in enumerate(pkts) if p.kind == VIDEO and p.keyframe and not p.sequence_header]
        fx.publish(pkts[:keyframes[0] + 10])
        late = fx.player()
        self.assertEqual(late.keyframes, ["join"])
        fx.publish(pkts[keyframes[0] + 10:keyframes[1]])
        self.assertEqual(late.sent, [])  # nothing of the cached GOP, nothing before the next keyframe
        fx.publish(pkts[keyframes[1]:])
        frames, dep = depayload_video(rtp(late.sent, VIDEO_TRACK.ssrc))
        self.assertTrue(frames[0].keyframe and frames[0].sps and frames[0].pps)
        self.assertEqual([([bytes(n) for n in f.nalus], f.keyframe) for f in frames],
                         video_frames(pkts[keyframes[1]:]))
        self.assertTrue(rtp(late.sent, AUDIO_TRACK.ssrc))
        self.assertEqual(dep.dropped, 0)

    def test_decodes_at_the_clip_size_with_aiortc_and_pyav(self):
        try:
            import av
            from aiortc.codecs.h264 import H264PayloadDescriptor
        except ImportError:
            from tests.optional import missing

            raise missing("aiortc")
        fx = Fixture()
        player = fx.player()
        fx.publish(fresh(clip("aac")))
        codec = av.CodecContext.create("h264", "r")
        data = b""
        decoded = []
        for packet in rtp(player.sent, VIDEO_TRACK.ssrc):
            data += H264PayloadDescriptor.parse(bytes(packet.payload))[1]
            if packet.marker:
                decoded.extend(codec.decode(av.Packet(data)))
                data = b""
        decoded.extend(codec.decode(None))
        self.assertEqual(len(decoded), 50)
        self.assertEqual({(f.width, f.height) for f in decoded}, {(320, 240)})


def flv_body(pkt):
    return pkt.payload[flv.parse_video(pkt.payload).data_offset:]


HEVC_TRACK = Track("video", "0", 49, "H265", 90000, None, "level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST",
                   ("nack", "nack pli"), None, 0x3333)


class HevcTests(unittest.TestCase):
    """?codec=hevc: an H.265 stream's frames go out as RFC 7798 payloads to a player whose
    video track is H.265, and to no H.264 player."""

    def test_hevc_frames_round_trip_to_an_h265_player_only(self):
        from srs_twisted.codec import hevc, rtp_h265

        pkts = fresh(clip("hevc"))
        fx = Fixture()
        h265 = fx.player(tracks=(HEVC_TRACK, AUDIO_TRACK))
        h264 = fx.player()
        fx.publish(pkts)
        self.assertEqual(rtp(h264.sent), [])  # an H.264 player gets no H.265
        packets = rtp(h265.sent, HEVC_TRACK.ssrc)
        self.assertTrue(all(p.payload_type == 49 for p in packets))
        self.assertLessEqual(max(len(p.payload) for p in packets), 1200)
        frames, current = [], []
        for packet in packets:  # a frame ends at the marker
            current.append(packet.payload)
            if packet.marker:
                frames.append((packet.timestamp, rtp_h265.depayload(current)))
                current = []
        self.assertEqual(current, [])
        config = hevc.parse_decoder_config(flv_body(next(p for p in pkts if p.sequence_header)))
        expected = []
        for p in pkts:
            tag = flv.parse_video(p.payload) if p.kind == VIDEO else None
            if tag and not (tag.sequence_header or tag.end_of_sequence or tag.frame_type == flv.FRAME_COMMAND):
                units = [bytes(n) for n in avc.split_nalus(flv_body(p), config.nal_length_size)
                         if rtp_h265.nal_type(n) not in (32, 33, 34, 35)]
                expected.append((units, p.keyframe))
        self.assertEqual(len(frames), 50)
        self.assertEqual(len(expected), 50)
        for (timestamp, units), (picture, keyframe) in zip(frames, expected):
            sets = [u for u in units if rtp_h265.nal_type(u) in (32, 33, 34)]
            self.assertEqual([u for u in units if rtp_h265.nal_type(u) not in (32, 33, 34)], picture)
            irap = any(rtp_h265.nal_type(u) in rtp_h265.IRAP_TYPES for u in picture)
            self.assertEqual(irap, keyframe)
            if irap:  # VPS, SPS and PPS of the sequence header in an AP before every key frame
                self.assertEqual(sets, [bytes(n) for n in config.vps + config.sps + config.pps])
            else:
                self.assertEqual(sets, [])
        self.assertEqual(sum(keyframe for _, keyframe in expected), 2)
        self.assertEqual(rtp_h265.nal_type(packets[0].payload), rtp_h265.NAL_AP)
        self.assertIn(rtp_h265.NAL_FU, {rtp_h265.nal_type(p.payload) for p in packets})
        # 25 fps on the 90 kHz clock
        self.assertEqual({(b[0] - a[0]) & 0xFFFFFFFF for a, b in zip(frames, frames[1:])}, {3600})
        # and a decoder (FFmpeg's, through PyAV) decodes every frame at the clip's size
        import av

        decoder = av.CodecContext.create("hevc", "r")
        decoded = []
        for _, units in frames:
            annexb = b"".join(b"\x00\x00\x00\x01" + u for u in units)
            decoded += decoder.decode(av.Packet(annexb))
        decoded += decoder.decode(None)
        self.assertEqual(len(decoded), 50)
        self.assertEqual({(f.width, f.height) for f in decoded}, {(320, 240)})


class OpusTests(unittest.TestCase):
    def test_opus_round_trip(self):
        pkts = fresh(clip("opus"))
        fx = Fixture()
        player = fx.player()
        fx.publish(pkts)
        packets = rtp(player.sent, AUDIO_TRACK.ssrc)
        self.assertTrue(all(p.payload_type == 111 and not p.marker for p in packets))
        dep = OpusDepayloader()
        frames = [f for f in (dep.push(p) for p in packets) if f is not None]
        # Enhanced RTMP coded frames (packet type 1); the OpusHead and the
        # multichannel config (type 4) are not media
        coded = [p for p in pkts if p.kind == AUDIO and p.payload[0] & 0x0F == 1]
        self.assertEqual([f.data for f in frames],
                         [bytes(p.payload[flv.parse_audio(p.payload).data_offset:]) for p in coded])
        self.assertEqual(dep.lost, 0)
        # the 48 kHz clock follows the packets' times (ms) from the player's base
        base = (frames[0].timestamp - coded[0].pts * 48) & 0xFFFFFFFF
        self.assertEqual([f.timestamp for f in frames], [(base + p.pts * 48) & 0xFFFFFFFF for p in coded])
        self.assertEqual(len(depayload_video(rtp(player.sent, VIDEO_TRACK.ssrc))[0]), 50)

    def test_video_only_player_gets_no_audio(self):
        fx = Fixture()
        player = fx.player(tracks=(VIDEO_TRACK,))
        self.assertFalse(player.consumer.accept_audio)
        fx.publish(fresh(clip("opus")))
        self.assertEqual({p.ssrc for p in rtp(player.sent)}, {VIDEO_TRACK.ssrc})


class FeedbackTests(unittest.TestCase):
    def setUp(self):
        self.fx = Fixture()
        self.player = self.fx.player()
        self.fx.publish(fresh(clip("aac")))

    def test_nack_retransmits_the_exact_packets(self):
        p = self.player
        sent = list(p.sent)
        by_seq = {RtpPacket.parse(d).sequence_number: d for d in sent
                  if RtpPacket.parse(d).ssrc == VIDEO_TRACK.ssrc}
        last = RtpPacket.parse(sent[-1]).sequence_number
        want = [(last - 3) & 0xFFFF, (last - 1) & 0xFFFF, (last - 20) & 0xFFFF]
        gone = (last - 600) & 0xFFFF  # older than the 512-packet cache
        p.on_rtcp(bytes(Nack(1, VIDEO_TRACK.ssrc, want + [gone])))
        self.assertEqual(p.sent[len(sent):], [by_seq[s] for s in want])
        self.assertEqual((p.stats.nacks, p.stats.nack_seqs, p.stats.retransmits, p.stats.nack_misses),
                         (1, 4, 3, 1))

    def test_nack_off_or_unknown_ssrc_retransmits_nothing(self):
        p = self.player
        n = len(p.sent)
        seq = RtpPacket.parse(p.sent[-1]).sequence_number
        p.on_rtcp(bytes(Nack(1, 0xDEAD, [seq])))
        p.nack = False
        p.on_rtcp(bytes(Nack(1, VIDEO_TRACK.ssrc, [seq])))
        self.assertEqual(len(p.sent), n)
        self.assertEqual(p.stats.nack_misses, 2)

    def test_no_nack_answered_while_the_circuit_breaker_is_critical(self):
        from srs_twisted.breaker import CircuitBreaker
        from srs_twisted.config.model import CircuitBreakerConfig

        p = self.player
        p.breaker = CircuitBreaker(CircuitBreakerConfig())
        seq = RtpPacket.parse(p.sent[-1]).sequence_number
        n = len(p.sent)
        p.breaker.sample(96)
        p.on_rtcp(bytes(Nack(1, VIDEO_TRACK.ssrc, [seq])))
        self.assertEqual((len(p.sent), p.stats.retransmits), (n, 0))
        p.breaker.sample(10)  # high: NACKs are answered again (SRS stops asking, not answering)
        p.on_rtcp(bytes(Nack(1, VIDEO_TRACK.ssrc, [seq])))
        self.assertEqual((len(p.sent), p.stats.retransmits), (n + 1, 1))

    def test_pli_and_fir_ask_for_a_keyframe(self):
        p = self.player
        p.on_rtcp(bytes(Pli(1, VIDEO_TRACK.ssrc)) + bytes(Fir(1, [(VIDEO_TRACK.ssrc, 1)])))
        self.assertEqual(p.keyframes, ["join", "pli", "fir"])
        self.assertEqual((p.stats.plis, p.stats.firs, p.stats.keyframe_requests), (1, 1, 3))

    def test_reports_are_counted_and_garbage_is_harmless(self):
        p = self.player
        rr = ReceiverReport(1, [ReportBlock(VIDEO_TRACK.ssrc, fraction_lost=12, jitter=34)])
        p.on_rtcp(bytes(rr) + bytes(Remb(1, 1_500_000, [VIDEO_TRACK.ssrc]))
                  + bytes(TransportCC(1, VIDEO_TRACK.ssrc, 0, 0, 0, 1, [(0, 4)])))
        self.assertEqual((p.stats.receiver_reports, p.stats.fraction_lost, p.stats.jitter), (1, 12, 34))
        self.assertEqual((p.stats.remb, p.stats.remb_bitrate, p.stats.twcc), (1, 1_500_000, 1))
        rng = random.Random(7)
        for _ in range(500):
            p.on_rtcp(bytes(rng.randrange(256) for _ in range(rng.randrange(40))))
        self.assertGreater(p.stats.rtcp_errors, 400)

    def test_sender_reports(self):
        p = self.player
        video = [x for x in rtp(p.sent) if x.ssrc == VIDEO_TRACK.ssrc]
        now = self.fx.now
        (datagram,) = p.rtcp_tick(now)
        sr = parse_compound(datagram)
        self.assertEqual(len(sr), 2)  # the video SR and the SDES (AAC sent no audio)
        self.assertIsInstance(sr[0], SenderReport)
        self.assertEqual(sr[0].ssrc, VIDEO_TRACK.ssrc)
        self.assertEqual(sr[0].packet_count, len(video))
        self.assertEqual(sr[0].octet_count, sum(len(x.payload) for x in video))
        self.assertEqual(sr[0].ntp_timestamp, ntp_timestamp(now))
        # the whole clip went out "now": the SR time is the newest frame's
        self.assertEqual(sr[0].rtp_timestamp, max(x.timestamp for x in video))
        self.assertEqual(p.rtcp_tick(now + SR_INTERVAL / 2), [])
        (later,) = p.rtcp_tick(now + SR_INTERVAL)
        self.assertEqual(parse_compound(later)[0].rtp_timestamp, (sr[0].rtp_timestamp + 90000) & 0xFFFFFFFF)

    def test_no_sender_report_before_media(self):
        fx = Fixture()
        self.assertEqual(fx.player().rtcp_tick(fx.now), [])


class RobustnessTests(unittest.TestCase):
    def test_protect_and_send_errors_cost_one_packet(self):
        fx = Fixture()

        def protect(data):
            if len(data) % 3 == 0:
                raise ValueError("srtp")
            return b"P" + data

        bad = fx.player(protect_rtp=protect)
        good = fx.player()
        fx.publish(fresh(clip("aac")))
        self.assertGreater(bad.stats.send_errors, 0)
        self.assertEqual(bad.stats.send_errors + len(bad.sent), bad.stats.packets)
        self.assertTrue(all(d[:1] == b"P" for d in bad.sent))
        self.assertEqual(len(depayload_video(rtp(good.sent, VIDEO_TRACK.ssrc))[0]), 50)

    def test_new_publisher_keeps_the_timeline_going(self):
        pkts = fresh(clip("aac"))
        fx = Fixture()
        player = fx.player()
        fx.publish(pkts)
        last = rtp(player.sent, VIDEO_TRACK.ssrc)[-1]
        fx.source.unregisterProducer()
        fx.now += 5
        n = len(player.sent)
        fx.publish(fresh(pkts))  # timestamps from 0 again
        first = rtp(player.sent[n:], VIDEO_TRACK.ssrc)[0]
        self.assertEqual(first.sequence_number, (last.sequence_number + 1) & 0xFFFF)
        step = (first.timestamp - last.timestamp) & 0xFFFFFFFF
        self.assertEqual(step, 5000 * 90)

    def test_records_and_cache(self):
        cache = RtpCache(4)
        cache.put(1, b"h1", b"p1")
        cache.put(5, b"h5", b"p5")  # takes slot 1
        self.assertIsNone(cache.get(1))
        self.assertEqual(cache.get(5), (b"h5", b"p5"))
        self.assertRaises(ValueError, RtpCache, 0)
        pkts = fresh(clip("aac"))
        fx = Fixture()
        player = fx.player()
        frame = next(p for p in pkts if p.kind == VIDEO and not p.sequence_header)
        fx.publish([p for p in pkts if p.sequence_header])
        records = parse_records(frame.wire(player.wire_key, player.encode))
        self.assertEqual({pts for _, _, pts in records}, {frame.pts})
        self.assertEqual([flags for _, flags, _ in records], [0] * (len(records) - 1) + [1])


class TransportTests(unittest.TestCase):
    def test_transport_cc_numbers_span_both_tracks(self):
        fx = Fixture()
        tracks = [dataclasses.replace(VIDEO_TRACK, twcc_id=3), dataclasses.replace(AUDIO_TRACK, twcc_id=3)]
        player = fx.player(tracks=tracks)
        fx.publish(fresh(clip("opus")))
        packets = rtp(player.sent)
        self.assertEqual({p.ssrc for p in packets}, {VIDEO_TRACK.ssrc, AUDIO_TRACK.ssrc})
        self.assertEqual([p.transport_sequence(3) for p in packets], list(range(len(packets))))
        # the extension does not disturb the media
        self.assertEqual(len(depayload_video(rtp(player.sent, VIDEO_TRACK.ssrc))[0]), 50)

    def test_transport_cc_header_bytes_one_and_two_byte_ids(self):
        from srs_twisted.codec.rtp import twcc_extension_block

        for ext_id in (3, 14, 15):  # 15: the two-byte form
            fx = Fixture()
            tracks = [dataclasses.replace(VIDEO_TRACK, twcc_id=ext_id), dataclasses.replace(AUDIO_TRACK, twcc_id=ext_id)]
            player = fx.player(tracks=tracks)
            fx.publish(fresh(clip("opus"))[:40])
            for n, datagram in enumerate(player.sent):
                block = twcc_extension_block(ext_id, n)
                self.assertEqual(datagram[0], 0x90)
                self.assertEqual(datagram[12:12 + len(block)], block, ext_id)
            self.assertEqual([p.transport_sequence(ext_id) for p in rtp(player.sent)], list(range(len(player.sent))))

    def test_srtp_loss_recovered_by_nack(self):
        from srs_twisted.rtc.dtls import SRTP_AES128_CM_SHA1_80
        from srs_twisted.rtc.srtp import SrtpSession

        ours, theirs = bytes(range(30)), bytes(range(100, 130))
        server = SrtpSession(SRTP_AES128_CM_SHA1_80, ours, theirs)
        client = SrtpSession(SRTP_AES128_CM_SHA1_80, theirs, ours)
        fx = Fixture()
        player = fx.player(protect_rtp=server.protect_rtp)
        fx.publish(fresh(clip("aac")))
        got = {}
        lost = []
        for i, datagram in enumerate(player.sent):
            if i % 10 == 5:  # the network drops every tenth packet
                lost.append(RtpPacket.parse(datagram).sequence_number)  # the header is in clear
                continue
            plain = client.unprotect_rtp(datagram)
            self.assertIsNotNone(plain)
            got[RtpPacket.parse(plain).sequence_number] = plain
        n = len(player.sent)
        nack = client.protect_rtcp(bytes(Nack(1, VIDEO_TRACK.ssrc, lost)))
        player.on_rtcp(server.unprotect_rtcp(nack))
        self.assertEqual(player.stats.retransmits, len(lost))
        for datagram in player.sent[n:]:
            plain = client.unprotect_rtp(datagram)
            self.assertIsNotNone(plain)
            got[RtpPacket.parse(plain).sequence_number] = plain
        first = RtpPacket.parse(player.sent[0]).sequence_number  # headers travel in clear
        ordered = [RtpPacket.parse(got[(first + i) & 0xFFFF]) for i in range(len(got))]
        frames, dep = depayload_video(ordered)
        self.assertEqual(len(frames), 50)
        self.assertEqual(dep.dropped, 0)
        (sr,) = player.rtcp_tick(fx.now)
        report = parse_compound(client.unprotect_rtcp(server.protect_rtcp(sr)))[0]
        self.assertEqual(report.packet_count, len(got))


class SendManyTests(unittest.TestCase):
    """send_many gets each write's datagrams in one call (the transport batches them), the same datagrams
    send would have got one by one; NACK retransmissions still go through send."""

    def test_one_call_per_write_same_datagrams(self):
        pkts = fresh(clip("aac"))
        fx = Fixture()
        one = fx.player(rng=random.Random(7))
        batches = []
        many = fx.player(rng=random.Random(7), send_many=batches.append)
        fx.publish(pkts)
        self.assertEqual(many.sent, [])
        self.assertEqual([d for batch in batches for d in batch], one.sent)
        self.assertTrue(any(len(batch) > 1 for batch in batches))
        self.assertEqual(many.stats.packets, one.stats.packets)
        video = rtp(one.sent, VIDEO_TRACK.ssrc)
        seq = video[-1].sequence_number
        many.on_rtcp(bytes(Nack(1, VIDEO_TRACK.ssrc, [seq])))
        self.assertEqual(many.sent, [d for d in one.sent
                                     if RtpPacket.parse(d).ssrc == VIDEO_TRACK.ssrc
                                     and RtpPacket.parse(d).sequence_number == seq])

    def test_a_failed_batch_counts_its_datagrams(self):
        pkts = fresh(clip("aac"))
        fx = Fixture()

        def refuse(batch):
            raise BlockingIOError(11, "full")

        player = fx.player(send_many=refuse)
        fx.publish(pkts)
        self.assertEqual(player.stats.send_errors, player.stats.packets)
        self.assertGreater(player.stats.packets, 0)


class SharedParseTests(unittest.TestCase):
    def test_players_given_the_same_bytes_share_one_parse(self):
        pkts = fresh(clip("aac"))
        fx = Fixture()
        a, b = fx.player(), fx.player()
        fx.publish(pkts)
        self.assertIs(a.encoder, b.encoder)
        ha, pa = a.video.cache.get((a.video.seq - 1) & 0xFFFF)
        hb, pb = b.video.cache.get((b.video.seq - 1) & 0xFFFF)
        self.assertIs(pa, pb)  # one payload view for both players' NACK caches
        self.assertNotEqual(ha, hb)  # each its own header

    def test_a_mutable_buffer_is_parsed_each_time(self):
        encoder = Fixture().player().encoder
        data = bytearray(RtpEncoder._records([b"abc"], 0, 5))
        first = [(bytes(p), f, t) for p, f, t in encoder.records(data)]
        data[-3:] = b"xyz"
        self.assertEqual(first, [(b"abc", 1, 5)])
        self.assertEqual([(bytes(p), f, t) for p, f, t in encoder.records(data)], [(b"xyz", 1, 5)])
