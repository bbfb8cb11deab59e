"""H.264 RTP payload format (RFC 6184), packetization-mode 1.

:class:`H264Payloader` turns the AVC frames the live core carries (FLV
video tag bodies: an AVCDecoderConfigurationRecord as sequence header,
then length-prefixed NAL units) into RTP payloads: a single NAL unit per
packet when it fits, FU-A fragments when it does not, and SPS+PPS
aggregated in one STAP-A in front of every IDR picture.  The marker bit
belongs on the last payload of a frame.

:class:`H264Depayloader` does the reverse for a publisher's packets:
it reassembles single NAL, STAP-A and FU-A payloads into access units
(:class:`H264Frame`, whose :meth:`~H264Frame.avcc` gives length-prefixed
NAL units for FLV), drops a frame that lost a packet and every frame after
it until a keyframe, and raises ``needs_keyframe`` meanwhile (the session
sends a PLI).  It expects packets in sequence order (as a jitter buffer
delivers them); late and duplicate packets are ignored.
"""

from dataclasses import dataclass, field

from . import avc
from .bitreader import BitReader, unescape_rbsp
from .errors import CodecError
from .rtp import RtpError, seq_diff
from .rtp_nal import DEFAULT_MAX_PAYLOAD, NalPayloader, fragment

__all__ = ["H264Payloader", "H264Depayloader", "H264Frame", "CLOCK_RATE",
           "NAL_STAP_A", "NAL_FU_A", "parse_payload", "is_b_slice"]

CLOCK_RATE = 90000
NAL_STAP_A = 24
NAL_FU_A = 28
_MAX_FRAME_PACKETS = 4096
_MAX_FRAME_BYTES = 8 * 1024 * 1024
_MAX_LATE = 64


def _nal_type(nal) -> int:
    return nal[0] & 0x1F


def is_b_slice(nal) -> bool:
    """Whether a coded slice NAL unit (types 1, 2 and 5) is a B slice:
    ``slice_type`` (after ``first_mb_in_slice``) is 1 or 6, as SRS's
    ``parse_avc_b_frame`` reads it.  Other units and unreadable headers: False."""
    if not len(nal) or _nal_type(nal) not in (avc.NAL_SLICE, 2, avc.NAL_IDR):
        return False
    try:
        reader = BitReader(unescape_rbsp(bytes(nal[1:17])))
        reader.read_ue()
        return reader.read_ue() in (1, 6)
    except CodecError:
        return False


def _stap_a(nalus) -> bytes:
    """One STAP-A payload: F is the OR and NRI the maximum of the units'."""
    f = 0
    nri = 0
    parts = []
    for nal in nalus:
        f |= nal[0] & 0x80
        nri = max(nri, nal[0] & 0x60)
        parts.append(len(nal).to_bytes(2, "big"))
        parts.append(nal)
    return bytes((f | nri | NAL_STAP_A,)) + b"".join(parts)


def _fu_a(nal, max_payload: int) -> list:
    """FU-A fragments of ``nal`` of balanced sizes, none over ``max_payload``."""
    return fragment(bytes(((nal[0] & 0xE0) | NAL_FU_A,)), nal[0] & 0x1F, memoryview(nal)[1:], max_payload)


class H264Payloader(NalPayloader):
    """RTP payloads for H.264 frames; one instance per published stream."""

    CODEC = "h264"
    NAME = "H.264"
    AGGREGATION_HEADER = 1

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD, keep_bframe: bool = True, keep_sei: bool = True):
        super().__init__(max_payload)
        self.keep_bframe = keep_bframe  # False: B slices are left out (vhost rtc keep_bframe off)
        self.keep_sei = keep_sei  # False: SEI units are left out (vhost rtc keep_avc_nalu_sei off)
        self.dropped_bframes = 0
        self.dropped_sei = 0
        self.sps = []
        self.pps = []

    AGGREGATE = staticmethod(_stap_a)
    FRAGMENT = staticmethod(_fu_a)
    PARSE_CONFIG = staticmethod(avc.parse_decoder_config)

    def configure(self, info) -> None:
        self.sps = [bytes(n) for n in info.sps]
        self.pps = [bytes(n) for n in info.pps]

    def payloads(self, nalus) -> list:
        """Payloads for one frame given as NAL units (bytes or memoryviews).

        Access unit delimiters are left out, and B slices and SEI units
        when the payloader is told not to keep them.  SPS and PPS found in
        the frame replace the stored ones; an IDR frame is preceded by the
        parameter sets, aggregated in a STAP-A.
        """
        picture = []
        sps, pps = [], []
        idr = False
        for nal in nalus:
            if not len(nal):
                continue
            kind = _nal_type(nal)
            if kind == avc.NAL_SPS:
                sps.append(bytes(nal))
            elif kind == avc.NAL_PPS:
                pps.append(bytes(nal))
            elif kind == avc.NAL_SEI and not self.keep_sei:
                self.dropped_sei += 1
            elif not self.keep_bframe and is_b_slice(nal):
                self.dropped_bframes += 1
            elif kind != avc.NAL_AUD:
                idr = idr or kind == avc.NAL_IDR
                picture.append(nal)
        if sps:
            self.sps = sps
        if pps:
            self.pps = pps
        out = []
        if idr or sps or pps:
            out.extend(self.aggregate((sps or self.sps) + (pps or self.pps)))
        for nal in picture:
            out.extend(self.single_or_fragments(nal))
        return out


def parse_payload(payload) -> tuple:
    """Check one RTP payload; returns ``(kind, nal_units, fu)``.

    ``kind`` is the payload's NAL type (1..23 single, 24 STAP-A, 28 FU-A).
    For single and STAP-A payloads ``nal_units`` lists the NAL units; for
    FU-A ``fu`` is ``(start, end, nal_header, fragment)``.
    """
    payload = memoryview(payload)
    if not len(payload):
        raise RtpError("empty H.264 RTP payload")
    head = payload[0]
    if head & 0x80:
        raise RtpError("H.264 NAL unit with the forbidden bit set")
    kind = head & 0x1F
    if 1 <= kind <= 23:
        return kind, [payload], None
    if kind == NAL_STAP_A:
        nalus = []
        pos = 1
        while pos < len(payload):
            if pos + 2 > len(payload):
                raise RtpError("STAP-A unit size truncated at offset %d" % pos)
            n = (payload[pos] << 8) | payload[pos + 1]
            pos += 2
            if not n or pos + n > len(payload):
                raise RtpError("STAP-A unit of %d bytes at offset %d is invalid" % (n, pos))
            nalus.append(payload[pos:pos + n])
            pos += n
        if not nalus:
            raise RtpError("STAP-A payload without NAL units")
        return kind, nalus, None
    if kind == NAL_FU_A:
        if len(payload) < 3:
            raise RtpError("FU-A payload of %d bytes is too short" % len(payload))
        fu = payload[1]
        start, end, inner = bool(fu & 0x80), bool(fu & 0x40), fu & 0x1F
        if start and end:
            raise RtpError("FU-A with both start and end bits")
        if not 1 <= inner <= 23:
            raise RtpError("FU-A carries NAL type %d" % inner)
        return kind, [], (start, end, (head & 0xE0) | inner, payload[2:])
    raise RtpError("H.264 payload type %d is not supported in packetization-mode 1" % kind)


@dataclass(slots=True)
class H264Frame:
    """One access unit: ``timestamp`` is the 90 kHz RTP timestamp, ``nalus``
    the picture's NAL units; ``sps``/``pps`` the parameter sets that came
    with it (kept out of ``nalus``)."""

    timestamp: int
    nalus: list
    keyframe: bool
    sps: list = field(default_factory=list)
    pps: list = field(default_factory=list)

    def avcc(self, length_size: int = 4) -> bytes:
        """The NAL units, each prefixed by its length (an FLV/AVCC frame)."""
        return b"".join(len(n).to_bytes(length_size, "big") + n for n in self.nalus)


class H264Depayloader:
    """Reassemble a publisher's H.264 RTP packets into :class:`H264Frame`.

    ``needs_keyframe`` is true from the start and after any loss until a
    complete keyframe comes out; ``dropped`` counts frames thrown away.
    """

    def __init__(self):
        self.needs_keyframe = True
        self.dropped = 0
        self.sps = []
        self.pps = []
        self._last_seq = None  # the last sequence number of the previous frame
        self._frame_ts = None  # the timestamp of the previous frame (not padding)
        self._frame_num = None  # (frame_num, a reference picture?) of the previous frame given out
        self._sps_info = None  # the latest SPS, parsed (for slice headers' frame_num)
        self._ts = None
        self._first = 0
        self._packets = {}
        self._bytes = 0
        self._late = 0

    def decoder_config(self):
        """An AVCDecoderConfigurationRecord of the latest SPS/PPS (None before any)."""
        if not self.sps or not self.pps:
            return None
        try:
            return avc.make_decoder_config(self.sps, self.pps)
        except CodecError:
            return None

    def push(self, packet) -> list:
        """Take one RTP packet; returns the frames it completes (0 to 2).

        A malformed payload raises :class:`RtpError` and is otherwise
        treated as lost.  An empty payload (a padding-only packet, as
        Chrome sends to probe bandwidth) only keeps the sequence unbroken.
        A lost padding packet (never resent) is no loss: between a frame and
        padding with that frame's timestamp, or before a picture whose slice
        header shows nothing was lost (first macroblock 0, the next frame_num).
        """
        parsed = parse_payload(packet.payload) if len(packet.payload) else None
        seq = packet.sequence_number
        out = []
        if ((self._last_seq is not None and seq_diff(seq, self._last_seq) <= 0)
                or (self._ts is not None and packet.timestamp != self._ts
                    and seq_diff(seq, self._first) < 0)):
            # Late or duplicate: its frame is gone.  A long run of them is a
            # sender that restarted its sequence numbers: follow it.
            self._late += 1
            if self._late <= _MAX_LATE:
                return out
            self._last_seq = None
            if self._packets:
                self._reset()
                self._drop()
        self._late = 0
        if self._ts is not None and packet.timestamp != self._ts:
            out.extend(self._finish(seq))
        if seq in self._packets:
            return out
        if not self._packets or seq_diff(seq, self._first) < 0:
            self._first = seq
        self._ts = packet.timestamp
        self._packets[seq] = (parsed, packet.marker)
        self._bytes += len(packet.payload)
        if len(self._packets) > _MAX_FRAME_PACKETS or self._bytes > _MAX_FRAME_BYTES:
            self._last_seq = seq
            self._reset()
            self._drop()
        elif packet.marker:
            out.extend(self._finish(None))
        return out

    def _reset(self) -> None:
        self._ts = None
        self._packets = {}
        self._bytes = 0

    def _drop(self) -> list:
        self.dropped += 1
        self.needs_keyframe = True
        return []

    def _finish(self, next_seq) -> list:
        packets = self._packets
        ts = self._ts
        anchor = self._first
        order = sorted(packets, key=lambda s: seq_diff(s, anchor))
        first, last = order[0], order[-1]
        gap_before = self._last_seq is not None and seq_diff(first, self._last_seq) != 1
        self._reset()
        if all(packets[s][0] is None for s in order):
            # Padding only.  A sender pads only after a frame's marker, with that
            # frame's timestamp, and never resends padding: so the holes between
            # the previous frame and padding that has its timestamp were padding
            # too.  Padding with another timestamp after a hole follows a frame
            # we never saw: the next frame sees the gap.
            if ts == self._frame_ts or (not gap_before and seq_diff(last, first) + 1 == len(order)):
                self._last_seq = last
            return []
        self._last_seq = last
        self._frame_ts = ts
        complete = (seq_diff(last, first) + 1 == len(order)
                    and (packets[last][1] or (next_seq is not None and seq_diff(next_seq, last) == 1)))
        nalus = self._assemble([packets[s][0] for s in order]) if complete else None
        if nalus is None:
            return self._drop()
        sps = [n for n in nalus if _nal_type(n) == avc.NAL_SPS]
        pps = [n for n in nalus if _nal_type(n) == avc.NAL_PPS]
        if sps and sps != self.sps:
            try:
                self._sps_info = avc.parse_sps(sps[0])
            except CodecError:
                self._sps_info = None
        self.sps = sps or self.sps
        self.pps = pps or self.pps
        picture = [n for n in nalus if _nal_type(n) not in (avc.NAL_SPS, avc.NAL_PPS)]
        if not picture:
            return []
        keyframe = any(_nal_type(n) == avc.NAL_IDR for n in picture) and bool(self.sps and self.pps)
        start = self._slice_start(picture)
        if not keyframe and (self.needs_keyframe or (gap_before and not self._follows(start))):
            self._frame_num = None
            return self._drop()
        self.needs_keyframe = False
        self._frame_num = start[1:] if start is not None else None
        return [H264Frame(ts, picture, keyframe, sps, pps)]

    def _slice_start(self, picture):
        """(first_mb_in_slice, frame_num, a reference picture?) of the picture's
        first slice header, or None when it cannot be read."""
        info = self._sps_info
        nal = next((n for n in picture if _nal_type(n) in (avc.NAL_SLICE, avc.NAL_IDR)), None)
        if info is None or nal is None:
            return None
        try:
            r = BitReader(unescape_rbsp(bytes(nal[1:32])))
            first_mb = r.read_ue()
            r.read_ue()  # slice_type
            r.read_ue()  # pic_parameter_set_id
            if info.separate_colour_planes:
                r.read_bits(2)
            frame_num = r.read_bits(info.log2_max_frame_num)
        except CodecError:
            return None
        return first_mb, frame_num, bool(nal[0] & 0x60)

    def _follows(self, start) -> bool:
        """Whether a picture after a sequence hole still decodes: it starts at
        its first macroblock and its frame_num is the one after the previous
        picture's (no reference picture was lost), so the hole held only
        padding (or non-reference pictures)."""
        if start is None or self._frame_num is None or start[0] != 0:
            return False
        previous, reference = self._frame_num
        expected = (previous + 1) % (1 << self._sps_info.log2_max_frame_num) if reference else previous
        return start[1] == expected

    @staticmethod
    def _assemble(parsed) -> list:
        """NAL units from the payloads of one frame in order, None if broken."""
        nalus = []
        fu = None
        for item in parsed:
            if item is None:  # padding-only packet
                continue
            kind, units, frag = item
            if frag is None:
                if fu is not None:
                    return None
                nalus.extend(bytes(u) for u in units)
                continue
            start, end, header, data = frag
            if start:
                if fu is not None:
                    return None
                fu = bytearray((header,))
            elif fu is None or fu[0] != header:
                return None
            fu += data
            if end:
                nalus.append(bytes(fu))
                fu = None
        return None if fu is not None else nalus
