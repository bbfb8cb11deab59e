"""srs_twisted.codec.rtp_h265: the RFC 7798 payloader (single NAL units, AP
for VPS/SPS/PPS before IRAP pictures, FU for large units) and its reverse,
byte for byte, with no aiortc (aiortc has no H.265)."""

from twisted.trial import unittest

from srs_twisted.codec import rtp_h265
from srs_twisted.codec.rtp import RtpError
from srs_twisted.codec.rtp_h265 import H265Payloader, depayload, nal_type

from .test_hevc import HVCC_1280x720


def nal(kind: int, size: int, layer_id: int = 0, tid: int = 1, fill: int = 0xAB) -> bytes:
    """An H.265 NAL unit of ``size`` bytes: the two-byte header, then ``fill``."""
    return bytes(((kind << 1) | (layer_id >> 5), ((layer_id & 0x1F) << 3) | tid)) + bytes([fill]) * (size - 2)


VPS, SPS, PPS = nal(32, 24), nal(33, 40), nal(34, 8)
IDR = nal(19, 5000, fill=0x11)  # IDR_W_RADL
CRA = nal(21, 300)
TRAIL = nal(1, 900, fill=0x22)


def hvcc(*nalus: bytes, length_size: int = 4) -> bytes:
    return b"".join(len(n).to_bytes(length_size, "big") + n for n in nalus)


def flv_hevc(data: bytes, key: bool = False, header: bool = False) -> bytes:
    """A legacy FLV video body, codec id 12 (HEVC, as SRS and FFmpeg write it)."""
    return bytes(((1 if key else 2) << 4 | 12, 0 if header else 1, 0, 0, 0)) + data


class PayloaderTests(unittest.TestCase):
    def test_nal_type(self):
        self.assertEqual([nal_type(n) for n in (VPS, SPS, PPS, IDR, TRAIL)], [32, 33, 34, 19, 1])

    def test_small_unit_is_a_single_nal_packet(self):
        p = H265Payloader()
        self.assertEqual(p.payloads([TRAIL]), [TRAIL])

    def test_irap_gets_the_parameter_sets_in_one_aggregation_packet(self):
        p = H265Payloader()
        out = p.payloads([VPS, SPS, PPS, CRA])
        ap = out[0]
        self.assertEqual(nal_type(ap), rtp_h265.NAL_AP)
        self.assertEqual(ap[1] & 0x07, 1)  # TID: the lowest of the units'
        self.assertEqual(ap[2:], b"".join(len(n).to_bytes(2, "big") + n for n in (VPS, SPS, PPS)))
        self.assertEqual(out[1:], [CRA])
        # the next IRAP frame without parameter sets gets the stored ones
        again = p.payloads([nal(20, 100)])
        self.assertEqual(again[0], ap)
        # a non-IRAP frame gets none
        self.assertEqual(p.payloads([TRAIL]), [TRAIL])

    def test_large_unit_is_fragmented(self):
        p = H265Payloader(max_payload=1200)
        out = p.payloads([TRAIL, IDR])  # no parameter sets known: nothing before the IDR
        self.assertEqual(out[0], TRAIL)
        fus = out[1:]
        self.assertEqual(len(fus), 5)  # 4998 body bytes in fragments of at most 1197
        for i, fu in enumerate(fus):
            self.assertLessEqual(len(fu), 1200)
            self.assertEqual(nal_type(fu), rtp_h265.NAL_FU)
            self.assertEqual(fu[1], IDR[1])  # LayerId and TID kept
            self.assertEqual(fu[2] & 0x3F, 19)  # FuType
            self.assertEqual(bool(fu[2] & 0x80), i == 0)  # S
            self.assertEqual(bool(fu[2] & 0x40), i == len(fus) - 1)  # E
        self.assertEqual(b"".join(fu[3:] for fu in fus), IDR[2:])
        self.assertLessEqual(max(len(f) for f in fus) - min(len(f) for f in fus), 1)  # balanced

    def test_round_trip(self):
        p = H265Payloader(max_payload=600)
        frame = [nal(35, 3), VPS, SPS, PPS, nal(39, 30), IDR, nal(19, 2000, fill=0x33)]
        out = p.payloads(frame)
        # the AUD is dropped; everything else comes back in order
        self.assertEqual(depayload(out), [VPS, SPS, PPS, nal(39, 30), IDR, nal(19, 2000, fill=0x33)])

    def test_sei_dropped_when_told(self):
        p = H265Payloader(keep_sei=False)
        self.assertEqual(p.payloads([nal(39, 30), TRAIL, nal(40, 10)]), [TRAIL])
        self.assertEqual(p.dropped_sei, 2)

    def test_flv_sequence_header_and_frames(self):
        p = H265Payloader()
        self.assertEqual(p.payload_flv(flv_hevc(HVCC_1280x720, key=True, header=True)), [])
        self.assertEqual(p.nal_length_size, 4)
        out = p.payload_flv(flv_hevc(hvcc(IDR), key=True))
        units = depayload(out)
        self.assertEqual([nal_type(u) for u in units], [32, 33, 34, 19])
        self.assertEqual(units[1][:2], b"\x42\x01")
        self.assertEqual(units[3], IDR)
        self.assertEqual(depayload(p.payload_flv(flv_hevc(hvcc(TRAIL)))), [TRAIL])

    def test_enhanced_rtmp_hvc1(self):
        p = H265Payloader()
        # Enhanced RTMP: IsExHeader | key frame | PacketTypeCodedFramesX (3, no composition time), 'hvc1'
        body = bytes((0x80 | 0x10 | 3,)) + b"hvc1" + hvcc(TRAIL)
        self.assertEqual(p.payload_flv(body), [TRAIL])

    def test_errors(self):
        p = H265Payloader()
        with self.assertRaises(RtpError):
            p.payload_flv(bytes((0x17, 1, 0, 0, 0)) + hvcc(TRAIL))  # H.264, not H.265
        with self.assertRaises(RtpError):
            p.payload_flv(flv_hevc(b"\x00\x00\x10\x00\x02"))  # a length past the data
        with self.assertRaises(RtpError):
            p.payload_flv(flv_hevc(b"\x02\x01", header=True))  # not a decoder configuration
        with self.assertRaises(RtpError):
            H265Payloader(max_payload=32)
        with self.assertRaises(RtpError):
            depayload([bytes((49 << 1, 1, 0x01)) + b"x"])  # FU without its start
        with self.assertRaises(RtpError):
            depayload([bytes((48 << 1, 1, 0, 40)) + b"xy"])  # AP unit overruns
