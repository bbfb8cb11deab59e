"""Cross-checks of codec/rtp, rtcp, rtp_h264 and rtp_opus against aiortc.

aiortc (and PyAV, which it brings) is a test-only dependency: these tests
skip when it is not installed.  Bytes go both ways: what aiortc builds we
parse, and what we build aiortc parses, depacketizes and decodes.
"""

import fractions

from twisted.trial import unittest

from srs_twisted.codec import avc, flv, rtcp, rtp
from srs_twisted.codec.rtp import RtpPacket
from srs_twisted.codec.rtp_h264 import H264Depayloader, H264Payloader
from srs_twisted.codec.rtp_opus import OpusDepayloader, OpusPayloader, opus_samples

from .. import optional

try:
    import av
    from aiortc import rtp as artp
    from aiortc.codecs.h264 import H264Encoder, h264_depayload
    from aiortc.codecs.opus import OpusDecoder, OpusEncoder
    from aiortc.jitterbuffer import JitterFrame
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
except ImportError:
    av = None

SKIP = optional.skip_reason(av is not None, "aiortc")
TWCC_URI = rtp.TRANSPORT_CC_URI
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"


def _clip_tags():
    from tests.integration import harness

    path = harness.clip("h264-aac", seconds=2)
    with open(path, "rb") as f:
        return path, flv.FlvReader().feed(f.read())


def _video_frames(tags):
    """(keyframe, dts in ms, NAL units) of the clip, and its SPS/PPS."""
    frames, config = [], None
    for tag in tags:
        if tag.tag_type != flv.TAG_VIDEO:
            continue
        header = flv.parse_video(tag.payload)
        data = tag.payload[header.data_offset:]
        if header.sequence_header:
            config = avc.parse_decoder_config(data)
        elif not header.end_of_sequence:
            frames.append((header.keyframe, tag.timestamp, [bytes(n) for n in avc.split_nalus(data)]))
    return frames, config


def _annexb(nalus):
    return b"".join(b"\x00\x00\x00\x01" + n for n in nalus)


def _decode_h264(access_units):
    """Decode Annex B access units with FFmpeg (PyAV); returns the pictures."""
    codec = av.CodecContext.create("h264", "r")
    pictures = []
    for data in access_units:
        pictures.extend(codec.decode(av.Packet(data)))
    pictures.extend(codec.decode(None))
    return pictures


class RtpInteropTests(unittest.TestCase):
    skip = SKIP

    def extension_map(self):
        params = RTCRtpParameters(headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=1, uri=MID_URI),
            RTCRtpHeaderExtensionParameters(id=3, uri=TWCC_URI)])
        ext = artp.HeaderExtensionsMap()
        ext.configure(params)
        return ext

    def test_aiortc_packets_parse_in_ours(self):
        ext = self.extension_map()
        theirs = artp.RtpPacket(payload_type=102, marker=1, sequence_number=65535, timestamp=0xFFFFFFFE,
                                ssrc=0xCAFEBABE, payload=b"\x41hello")
        theirs.csrc = [7, 8]
        theirs.extensions.mid = "0"
        theirs.extensions.transport_sequence_number = 4321
        theirs.padding_size = 3
        data = theirs.serialize(ext)
        ours = RtpPacket.parse(data)
        self.assertEqual((ours.payload_type, ours.marker, ours.sequence_number, ours.timestamp, ours.ssrc),
                         (102, True, 65535, 0xFFFFFFFE, 0xCAFEBABE))
        self.assertEqual((ours.csrcs, bytes(ours.payload), ours.padding), ([7, 8], b"\x41hello", 3))
        self.assertEqual(ours.extensions(), [(1, b"0"), (3, b"\x10\xe1")])
        self.assertEqual(ours.transport_sequence(3), 4321)
        # and back, byte for byte except aiortc's random padding bytes
        self.assertEqual(bytes(ours)[:-3], data[:-3])

    def test_our_packets_parse_in_aiortc(self):
        ext = self.extension_map()
        ours = RtpPacket(111, 17, 960, 0x01020304, True, b"\xfc\x00\x01", csrcs=[9])
        ours.set_extensions([(1, b"audio"), (3, b"\x00\x2a")])
        theirs = artp.RtpPacket.parse(bytes(ours), ext)
        self.assertEqual((theirs.payload_type, theirs.marker, theirs.sequence_number, theirs.timestamp,
                          theirs.ssrc, theirs.csrc, theirs.payload),
                         (111, 1, 17, 960, 0x01020304, [9], b"\xfc\x00\x01"))
        self.assertEqual((theirs.extensions.mid, theirs.extensions.transport_sequence_number), ("audio", 42))
        # a fanned-out copy with a per-player TWCC number, too
        copy = rtp.FanOut(RtpPacket.parse(bytes(ours))).packet(0xBEEF, 100, 5,
                                                               extension=rtp.twcc_extension_block(3, 65000))
        theirs = artp.RtpPacket.parse(copy, ext)
        self.assertEqual((theirs.ssrc, theirs.payload_type, theirs.sequence_number, theirs.csrc),
                         (0xBEEF, 100, 5, [9]))
        self.assertEqual((theirs.extensions.transport_sequence_number, theirs.extensions.mid), (65000, None))
        # two-byte extensions
        ours.set_extensions([(1, b"x" * 20), (3, b"\x00\x01")])
        theirs = artp.RtpPacket.parse(bytes(ours), ext)
        self.assertEqual((theirs.extensions.mid, theirs.extensions.transport_sequence_number), ("x" * 20, 1))


class RtcpInteropTests(unittest.TestCase):
    skip = SKIP

    def test_aiortc_compound_parses_in_ours(self):
        block = artp.RtcpReceiverInfo(ssrc=2, fraction_lost=12, packets_lost=-3, highest_sequence=70000,
                                      jitter=55, lsr=0x1234, dlsr=0x5678)
        packets = [
            artp.RtcpSrPacket(ssrc=1, sender_info=artp.RtcpSenderInfo(
                ntp_timestamp=0x1122334455667788, rtp_timestamp=90000, packet_count=10, octet_count=12000),
                reports=[block]),
            artp.RtcpRrPacket(ssrc=1, reports=[block]),
            artp.RtcpSdesPacket(chunks=[artp.RtcpSourceInfo(ssrc=1, items=[(1, b"{cname-aiortc}")])]),
            artp.RtcpRtpfbPacket(fmt=1, ssrc=1, media_ssrc=2, lost=[1000, 1001, 1003, 1016, 1017, 1040]),
            artp.RtcpPsfbPacket(fmt=1, ssrc=1, media_ssrc=2),
            artp.RtcpPsfbPacket(fmt=15, ssrc=1, media_ssrc=0, fci=artp.pack_remb_fci(2_000_000, [2, 3])),
            artp.RtcpByePacket(sources=[1, 2]),
        ]
        ours = rtcp.parse_compound(b"".join(bytes(p) for p in packets))
        expected_block = rtcp.ReportBlock(2, 12, -3, 70000, 55, 0x1234, 0x5678)
        self.assertEqual(ours, [
            rtcp.SenderReport(1, 0x1122334455667788, 90000, 10, 12000, [expected_block]),
            rtcp.ReceiverReport(1, [expected_block]),
            rtcp.Sdes([rtcp.SdesChunk(1, [(1, b"{cname-aiortc}")])]),
            rtcp.Nack(1, 2, [1000, 1001, 1003, 1016, 1017, 1040]),
            rtcp.Pli(1, 2),
            rtcp.Remb(1, 2_000_000 >> 3 << 3, [2, 3]),
            rtcp.Bye([1, 2]),
        ])

    def test_our_compound_parses_in_aiortc(self):
        block = rtcp.ReportBlock(2, 1, -100, 123456, 7, 8, 9)
        data = rtcp.serialize_compound([
            rtcp.SenderReport(1, rtcp.ntp_timestamp(1_700_000_000.25), 1234, 5, 6000, [block]),
            rtcp.ReceiverReport(1, [block]),
            # one chunk: aiortc's SDES parser does not align chunks to words
            rtcp.Sdes([rtcp.SdesChunk(1, [(1, b"srs"), (2, b"name")])]),
            rtcp.Nack(1, 2, [10, 11, 26, 27, 100]),
            rtcp.Pli(1, 2),
            rtcp.Remb(1, 750_000, [2]),
            rtcp.Bye([1]),
        ])
        sr, rr, sdes, nack, pli, remb, bye = artp.RtcpPacket.parse(data)
        self.assertEqual((sr.ssrc, sr.sender_info.ntp_timestamp >> 32, sr.sender_info.rtp_timestamp,
                          sr.sender_info.packet_count, sr.sender_info.octet_count),
                         (1, 1_700_000_000 + 2208988800, 1234, 5, 6000))
        for report in (sr.reports[0], rr.reports[0]):
            self.assertEqual((report.ssrc, report.fraction_lost, report.packets_lost, report.highest_sequence,
                              report.jitter, report.lsr, report.dlsr), (2, 1, -100, 123456, 7, 8, 9))
        self.assertEqual([(c.ssrc, c.items) for c in sdes.chunks], [(1, [(1, b"srs"), (2, b"name")])])
        self.assertEqual((nack.fmt, nack.media_ssrc, nack.lost), (1, 2, [10, 11, 26, 27, 100]))
        self.assertEqual((pli.fmt, pli.ssrc, pli.media_ssrc), (1, 1, 2))
        self.assertEqual(artp.unpack_remb_fci(remb.fci), (750_000, [2]))
        self.assertEqual(bye.sources, [1])


class H264InteropTests(unittest.TestCase):
    skip = SKIP

    def test_our_payloads_depacketized_and_decoded_by_aiortc(self):
        _, tags = _clip_tags()
        frames, config = _video_frames(tags)
        pay = H264Payloader()
        units = []
        for tag in tags:
            payloads = pay.payload_flv(tag.payload) if tag.tag_type == flv.TAG_VIDEO else []
            if payloads:
                # what aiortc's receiver does per packet, then per frame
                units.append(b"".join(h264_depayload(p) for p in payloads))
        self.assertEqual(len(units), len(frames))
        for (key, _, nalus), unit in zip(frames, units):
            expected = ([bytes(n) for n in config.sps + config.pps] if key else []) + nalus
            self.assertEqual(avc.split_annexb(unit), expected)
        pictures = _decode_h264(units)
        self.assertEqual(len(pictures), len(frames))
        self.assertEqual({(p.width, p.height) for p in pictures}, {(320, 240)})

    def test_aiortc_packetizer_depayloaded_by_ours(self):
        _, tags = _clip_tags()
        frames, config = _video_frames(tags)
        encoder = H264Encoder()
        dep = H264Depayloader()
        seq, got = 65000, []
        for key, dts, nalus in frames:
            data = _annexb((config.sps + config.pps if key else []) + nalus)
            packet = av.Packet(data)
            packet.pts, packet.time_base = dts, fractions.Fraction(1, 1000)
            payloads, timestamp = encoder.pack(packet)
            self.assertEqual(timestamp, dts * 90)
            for p in rtp.packetize(payloads, 102, 1, seq, timestamp):
                got.extend(dep.push(RtpPacket.parse(bytes(p))))
            seq = (seq + len(payloads)) & 0xFFFF
        self.assertEqual([(f.keyframe, f.nalus) for f in got], [(k, n) for k, _, n in frames])
        self.assertEqual(got[0].sps, [bytes(config.sps[0])])
        self.assertEqual(dep.dropped, 0)

    def test_aiortc_encoder_output_depayloaded_by_ours_and_decoded(self):
        path, _ = _clip_tags()
        encoder = H264Encoder()
        dep = H264Depayloader()
        seq, got, count = 1, [], 0
        with av.open(path) as container:
            for picture in container.decode(video=0):
                payloads, timestamp = encoder.encode(picture, force_keyframe=count == 0)
                for p in rtp.packetize(payloads, 102, 1, seq, timestamp):
                    got.extend(dep.push(RtpPacket.parse(bytes(p))))
                seq += len(payloads)
                count += 1
                if count == 30:
                    break
        self.assertEqual(len(got), 30)
        self.assertTrue(got[0].keyframe)
        self.assertGreater(seq, 30)  # an IDR of a real picture needs FU-A fragments
        # length-prefixed output: what FLV carries; FFmpeg decodes it as Annex B
        units = [_annexb(avc.split_nalus(f.avcc())) for f in got]
        units[0] = _annexb(got[0].sps + got[0].pps) + units[0]
        pictures = _decode_h264(units)
        self.assertEqual(len(pictures), 30)
        self.assertEqual({(p.width, p.height) for p in pictures}, {(320, 240)})


class OpusInteropTests(unittest.TestCase):
    skip = SKIP

    def test_aiortc_encoder_to_ours_and_back_to_aiortc_decoder(self):
        path, _ = _clip_tags()
        encoder, decoder = OpusEncoder(), OpusDecoder()
        pay, dep = OpusPayloader(), OpusDepayloader()
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=48000)
        seq, frames = 100, []
        with av.open(path) as container:
            for audio in container.decode(audio=0):
                for chunk in resampler.resample(audio):
                    payloads, timestamp = encoder.encode(chunk)
                    for p in rtp.packetize(payloads, 111, 5, seq, timestamp or 0, marker=False):
                        frames.append(dep.push(RtpPacket.parse(bytes(p))))
                        seq += 1
                if len(frames) >= 40:
                    break
        self.assertGreaterEqual(len(frames), 40)
        self.assertEqual({f.samples for f in frames}, {960})
        self.assertEqual(dep.lost, 0)
        decoded = 0
        for frame in frames:
            payload = pay.payload(frame.data)
            self.assertEqual(opus_samples(payload), 960)
            for pcm in decoder.decode(JitterFrame(data=payload, timestamp=frame.timestamp)):
                decoded += pcm.samples
        self.assertEqual(decoded, 960 * len(frames))
