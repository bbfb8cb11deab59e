"""H.265 RTP payload format (RFC 7798), for WebRTC players of HEVC streams.

:class:`H265Payloader` turns the HEVC frames the live core carries (FLV
video tag bodies, legacy codec id 12 or Enhanced RTMP ``hvc1``: an
HEVCDecoderConfigurationRecord as sequence header, then length-prefixed NAL
units) into RTP payloads, as :class:`~.rtp_h264.H264Payloader` does for
H.264:

* a NAL unit that fits is one payload (a single NAL unit packet, 4.4.1);
* VPS, SPS and PPS are aggregated in one Aggregation Packet (AP, type 48,
  4.4.2) in front of every IRAP picture (NAL types 16-23: BLA, IDR, CRA), so
  a player joining at any key frame can decode;
* a NAL unit too large is split into Fragmentation Units (FU, type 49,
  4.4.3) of balanced sizes.

The marker bit belongs on the last payload of a frame (the caller sets it).
Without ``sprop-max-don-diff`` in the SDP there are no DONL/DOND fields.
:func:`depayload` is the reverse, for tests and tools: payloads of one frame
in, NAL units out.
"""

from . import hevc
from .rtp import RtpError
from .rtp_nal import DEFAULT_MAX_PAYLOAD, NalPayloader, fragment

__all__ = ["H265Payloader", "depayload", "nal_type", "CLOCK_RATE", "NAL_AP", "NAL_FU", "IRAP_TYPES",
           "DEFAULT_MAX_PAYLOAD"]

CLOCK_RATE = 90000
NAL_AP = 48
NAL_FU = 49
NAL_AUD = 35
NAL_SEI_PREFIX = 39
NAL_SEI_SUFFIX = 40
IRAP_TYPES = range(16, 24)  # BLA_W_LP .. RSV_IRAP_VCL23
_PARAMETER_SETS = (hevc.NAL_VPS, hevc.NAL_SPS, hevc.NAL_PPS)


def nal_type(nal) -> int:
    """The type of an H.265 NAL unit (or payload header): bits 1-6 of its first byte."""
    return (nal[0] >> 1) & 0x3F


def _header(nal_kind: int, f: int, layer_id: int, tid: int) -> bytes:
    """A two-byte NAL unit / payload header."""
    return bytes((f | (nal_kind << 1) | (layer_id >> 5), ((layer_id & 0x1F) << 3) | tid))


def _ap(nalus) -> bytes:
    """One Aggregation Packet: F is the OR, LayerId and TID the lowest of the units' (4.4.2)."""
    f = 0
    layer_id = tid = 0x7F
    parts = []
    for nal in nalus:
        f |= nal[0] & 0x80
        layer_id = min(layer_id, ((nal[0] & 1) << 5) | (nal[1] >> 3))
        tid = min(tid, nal[1] & 0x07)
        parts.append(len(nal).to_bytes(2, "big"))
        parts.append(nal)
    return _header(NAL_AP, f, layer_id, tid) + b"".join(parts)


def _fu(nal, max_payload: int) -> list:
    """FU fragments of ``nal`` of balanced sizes, none over ``max_payload``: the payload
    header keeps the unit's F, LayerId and TID."""
    return fragment(bytes(((nal[0] & 0x81) | (NAL_FU << 1), nal[1])), nal_type(nal), memoryview(nal)[2:],
                    max_payload)


class H265Payloader(NalPayloader):
    """RTP payloads for H.265 frames; one instance per published stream."""

    CODEC = "h265"
    NAME = "H.265"
    AGGREGATION_HEADER = 2

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD, keep_sei: bool = True):
        super().__init__(max_payload)
        self.keep_sei = keep_sei
        self.dropped_sei = 0
        self.parameter_sets = {kind: [] for kind in _PARAMETER_SETS}

    AGGREGATE = staticmethod(_ap)
    FRAGMENT = staticmethod(_fu)
    PARSE_CONFIG = staticmethod(hevc.parse_decoder_config)

    def configure(self, info) -> None:
        self.parameter_sets = {hevc.NAL_VPS: [bytes(n) for n in info.vps],
                               hevc.NAL_SPS: [bytes(n) for n in info.sps],
                               hevc.NAL_PPS: [bytes(n) for n in info.pps]}

    def payloads(self, nalus) -> list:
        """Payloads for one frame given as NAL units (bytes or memoryviews).

        Access unit delimiters are left out, and SEI units when told not to
        keep them.  Parameter sets found in the frame replace the stored
        ones; an IRAP picture is preceded by VPS, SPS and PPS in an AP.
        """
        picture = []
        found = {kind: [] for kind in _PARAMETER_SETS}
        irap = False
        for nal in nalus:
            if len(nal) < 3:  # a header and at least one byte
                continue
            kind = nal_type(nal)
            if kind in found:
                found[kind].append(bytes(nal))
            elif kind == NAL_AUD:
                continue
            elif kind in (NAL_SEI_PREFIX, NAL_SEI_SUFFIX) and not self.keep_sei:
                self.dropped_sei += 1
            else:
                irap = irap or kind in IRAP_TYPES
                picture.append(nal)
        for kind, units in found.items():
            if units:
                self.parameter_sets[kind] = units
        out = []
        if irap or any(found.values()):
            out.extend(self.aggregate([nal for kind in _PARAMETER_SETS
                                       for nal in (found[kind] or self.parameter_sets[kind])]))
        for nal in picture:
            out.extend(self.single_or_fragments(nal))
        return out


def depayload(payloads) -> list:
    """The NAL units of one frame's RTP payloads (single NAL, AP and FU; no
    DONL).  A broken FU sequence or a malformed payload raises RtpError."""
    out = []
    fu = None
    for payload in payloads:
        payload = bytes(payload)
        if len(payload) < 3:
            raise RtpError("an H.265 payload of %d bytes is too short" % len(payload))
        kind = nal_type(payload)
        if kind == NAL_AP:
            pos = 2
            while pos < len(payload):
                if pos + 2 > len(payload):
                    raise RtpError("truncated AP unit size at offset %d" % pos)
                n = int.from_bytes(payload[pos:pos + 2], "big")
                pos += 2
                if n < 2 or pos + n > len(payload):
                    raise RtpError("AP unit of %d bytes overruns the payload at offset %d" % (n, pos))
                out.append(payload[pos:pos + n])
                pos += n
        elif kind == NAL_FU:
            start, end, fu_kind = payload[2] & 0x80, payload[2] & 0x40, payload[2] & 0x3F
            if start:
                fu = bytearray(_header(fu_kind, payload[0] & 0x80, ((payload[0] & 1) << 5) | (payload[1] >> 3),
                                       payload[1] & 0x07))
            elif fu is None:
                raise RtpError("an FU continues a unit that never started")
            fu += payload[3:]
            if end:
                out.append(bytes(fu))
                fu = None
        elif kind == 50:
            raise RtpError("PACI payloads are not supported")
        else:
            out.append(payload)
    if fu is not None:
        raise RtpError("the frame ends inside an FU")
    return out
