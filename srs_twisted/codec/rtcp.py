"""RTCP compound packets and transport-wide congestion control feedback.

:func:`parse_compound` splits a datagram into packets and decodes each with
the parser its (packet type, format) maps to in ``_PARSERS``: sender and
receiver reports, SDES, BYE, generic NACK, transport-wide congestion
control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01), PLI,
FIR and REMB.  Anything else (APP, XR, unknown formats) comes back as a
:class:`RawRtcp` that serializes to the same bytes.  ``bytes(packet)``
writes any of them; :func:`serialize_compound` joins several.  The packet
classes other than TWCC live in :mod:`.rtcp_packets` and are re-exported.

:func:`build_transport_cc` is the receiver side of TWCC: from (transport
sequence number, arrival time) pairs it builds the feedback packets.
"""

import struct
from dataclasses import dataclass, field

from .rtcp_packets import (  # noqa: F401 - re-exported
    APP, BYE, FMT_AFB, FMT_FIR, FMT_NACK, FMT_PLI, FMT_TWCC, PSFB, RR, RTPFB, SDES, SR, XR,
    Bye, Fir, Nack, Pli, RawRtcp, Remb, ReceiverReport, ReportBlock, RtcpError, SdesChunk, Sdes,
    SenderReport, _HEADER, _need, _Rtcp, nack_lost, nack_pairs, ntp_compact, ntp_timestamp)

__all__ = [
    "RtcpError", "ReportBlock", "SenderReport", "ReceiverReport", "SdesChunk", "Sdes", "Bye",
    "Nack", "TransportCC", "Pli", "Fir", "Remb", "RawRtcp",
    "parse_compound", "serialize_compound", "is_rtcp", "nack_pairs", "nack_lost",
    "build_transport_cc", "ntp_timestamp", "ntp_compact",
    "SR", "RR", "SDES", "BYE", "APP", "RTPFB", "PSFB", "XR",
]

_TWCC_HEAD = struct.Struct(">IIHHI")
_U16 = struct.Struct(">H")
_I16 = struct.Struct(">h")
_TWCC_TICK_US = 250
_TWCC_REF_US = 64000


def _symbol(delta) -> int:
    if delta is None:
        return 0
    if 0 <= delta <= 255:
        return 1
    if -32768 <= delta <= 32767:
        return 2
    raise RtcpError("TWCC receive delta of %d ticks does not fit 16 bits" % delta)


def _encode_chunks(symbols: list) -> bytes:
    """Packet status chunks: run-length chunks for runs of 7 or more, status
    vectors (14 one-bit or 7 two-bit symbols) between them."""
    out = []
    i, n = 0, len(symbols)
    while i < n:
        first = symbols[i]
        run = 1
        while i + run < n and run < 0x1FFF and symbols[i + run] == first:
            run += 1
        if run >= 7:
            out.append((first << 13) | run)
            i += run
            continue
        window = symbols[i:i + 14]
        if 2 not in window:
            word = 0x8000
            for k, s in enumerate(window):
                word |= s << (13 - k)
            i += len(window)
        else:
            word = 0xC000
            for k, s in enumerate(symbols[i:i + 7]):
                word |= s << (12 - 2 * k)
            i += 7
        out.append(word)
    return struct.pack(">%dH" % len(out), *out)


@dataclass(slots=True)
class TransportCC(_Rtcp):
    """Transport-wide congestion control feedback.

    It reports ``status_count`` packets from ``base_seq`` on; ``received``
    lists those that arrived as ``(seq, delta)``, ``delta`` being the receive
    delta in 250 us ticks; the others were lost.  ``reference_time`` counts
    64 ms units (24 bits).  Parsing costs time in proportion to the bytes,
    whatever the status count claims.
    """

    sender_ssrc: int
    media_ssrc: int
    base_seq: int = 0
    reference_time: int = 0
    fb_count: int = 0
    status_count: int = 0
    received: list = field(default_factory=list)
    packet_type = RTPFB

    @classmethod
    def parse(cls, fmt: int, body) -> "TransportCC":
        _need(body, 16, "transport-cc feedback")
        sender, media, base, status_count, ref = _TWCC_HEAD.unpack_from(body)
        marks = []  # (index, symbol) of the received packets
        index = need = 0
        pos = 16
        while index < status_count:
            _need(body, pos + 2, "transport-cc packet chunk")
            word = _U16.unpack_from(body, pos)[0]
            pos += 2
            left = status_count - index
            if not word & 0x8000:
                symbol, n = (word >> 13) & 3, min(word & 0x1FFF, left)
                if symbol:  # check the room for its deltas before expanding a run
                    _need(body, pos + need + min(symbol, 2) * n, "transport-cc receive deltas")
                symbols = () if not symbol else [symbol] * n
            elif word & 0x4000:
                n = min(7, left)
                symbols = [(word >> (12 - 2 * k)) & 3 for k in range(n)]
            else:
                n = min(14, left)
                symbols = [(word >> (13 - k)) & 1 for k in range(n)]
            for k, symbol in enumerate(symbols):
                if symbol:
                    if symbol == 3:
                        raise RtcpError("transport-cc status symbol 3 is reserved")
                    marks.append((index + k, symbol))
                    need += symbol
            _need(body, pos + need, "transport-cc receive deltas")
            index += n
        received = []
        for k, symbol in marks:
            _need(body, pos + symbol, "transport-cc receive delta")
            delta = body[pos] if symbol == 1 else _I16.unpack_from(body, pos)[0]
            pos += symbol
            received.append(((base + k) & 0xFFFF, delta))
        return cls(sender, media, base, ref >> 8, ref & 0xFF, status_count, received)

    def arrivals(self) -> list:
        """``[(seq, arrival_us)]`` of the received packets, on the sender of
        the feedback's clock (reference time * 64 ms plus the deltas)."""
        t = self.reference_time * _TWCC_REF_US
        out = []
        for seq, delta in self.received:
            t += delta * _TWCC_TICK_US
            out.append((seq, t))
        return out

    def lost(self) -> list:
        """The sequence numbers reported as not received."""
        got = {seq for seq, _ in self.received}
        return [s for s in ((self.base_seq + k) & 0xFFFF for k in range(self.status_count)) if s not in got]

    def _count(self) -> int:
        return FMT_TWCC

    # bytes(): the last word is zero-padded without the P bit, as the draft's
    # figure ("zero padding") and SRS's encoder do; libwebrtc sets the P bit
    # and a count byte instead.  Both parse here and in libwebrtc, but only the
    # zero padding leaves the packet a whole number of words once a parser
    # that honours the P bit strips it (aiortc refuses the other form).

    def _body(self) -> bytes:
        if not 0 <= self.status_count <= 0xFFFF:
            raise RtcpError("transport-cc status count %d does not fit 16 bits" % self.status_count)
        symbols = []
        deltas = bytearray()
        for seq, delta in self.received:
            index = (seq - self.base_seq) & 0xFFFF
            if not len(symbols) <= index < self.status_count:
                raise RtcpError("transport-cc packet %d is out of order or past the status count" % seq)
            symbols.extend([0] * (index - len(symbols)))
            symbol = _symbol(delta)
            symbols.append(symbol)
            deltas += bytes((delta,)) if symbol == 1 else _I16.pack(delta)
        symbols.extend([0] * (self.status_count - len(symbols)))
        return b"".join((_TWCC_HEAD.pack(self.sender_ssrc, self.media_ssrc, self.base_seq & 0xFFFF,
                                         self.status_count,
                                         ((self.reference_time & 0xFFFFFF) << 8) | (self.fb_count & 0xFF)),
                         _encode_chunks(symbols), bytes(deltas)))


def build_transport_cc(sender_ssrc: int, media_ssrc: int, arrivals, fb_count: int = 0,
                       max_size: int = 1200, first_seq=None) -> list:
    """Feedback packets for ``arrivals``, an iterable of ``(seq, arrival_us)``.

    Sequence numbers are unwrapped (monotonic) ints, see ``rtp.SeqUnwrapper``;
    numbers missing between the lowest and highest are reported lost, and
    those from ``first_seq`` (when given, at most the lowest) to the lowest
    too.  A new packet (with the next ``fb_count``) starts when a delta does
    not fit 16 bits or the packet would pass ``max_size`` bytes.
    """
    packets = []
    current = None
    base = prev_ticks = delta_bytes = 0
    for seq, arrival in sorted(dict(arrivals).items()):
        ticks = arrival // _TWCC_TICK_US
        if current is not None:
            delta = ticks - prev_ticks
            n = seq - base + 1
            size = 24 + 2 * -(-n // 7) + delta_bytes + (1 if 0 <= delta <= 255 else 2)
            if not -32768 <= delta <= 32767 or size > max_size or n > 0xFFFF:
                current = None
        if current is None:
            ref = arrival // _TWCC_REF_US
            current = TransportCC(sender_ssrc, media_ssrc, seq & 0xFFFF, ref & 0xFFFFFF,
                                  (fb_count + len(packets)) & 0xFF)
            packets.append(current)
            base = seq
            if first_seq is not None and not packets[:-1] and 0 <= seq - first_seq < 0xFFFF:
                base = first_seq
                current.base_seq = first_seq & 0xFFFF
            prev_ticks = ref * (_TWCC_REF_US // _TWCC_TICK_US)
            delta_bytes = 0
        delta = ticks - prev_ticks
        current.received.append((seq & 0xFFFF, delta))
        current.status_count = seq - base + 1
        delta_bytes += 1 if 0 <= delta <= 255 else 2
        prev_ticks = ticks
    return packets


# --- compound packets ---------------------------------------------------------

# (packet type, count/format) -> parser; a format of None matches any count.
_PARSERS = {
    (SR, None): SenderReport.parse,
    (RR, None): ReceiverReport.parse,
    (SDES, None): Sdes.parse,
    (BYE, None): Bye.parse,
    (RTPFB, FMT_NACK): Nack.parse,
    (RTPFB, FMT_TWCC): TransportCC.parse,
    (PSFB, FMT_PLI): Pli.parse,
    (PSFB, FMT_FIR): Fir.parse,
    (PSFB, FMT_AFB): Remb.parse,
}


def is_rtcp(data) -> bool:
    """RTCP rather than RTP on a muxed port (RFC 5761: types 192..223)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def parse_compound(data) -> list:
    """Every packet of an RTCP compound datagram, decoded where known."""
    view = memoryview(data)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    end = len(view)
    if not end:
        raise RtcpError("empty RTCP datagram")
    packets = []
    pos = 0
    while pos < end:
        if end - pos < 4:
            raise RtcpError("RTCP header truncated at offset %d" % pos)
        b0, packet_type, words = _HEADER.unpack_from(view, pos)
        if b0 >> 6 != 2:
            raise RtcpError("RTCP version %d is not 2" % (b0 >> 6))
        size = 4 + 4 * words
        if pos + size > end:
            raise RtcpError("RTCP packet type %d of %d bytes overruns the datagram" % (packet_type, size))
        body = bytes(view[pos + 4:pos + size])
        if b0 & 0x20:
            pad = body[-1] if body else 0
            if not pad or pad > len(body):
                raise RtcpError("RTCP padding count %d is invalid" % pad)
            body = body[:-pad]
        count = b0 & 0x1F
        parser = _PARSERS.get((packet_type, count)) or _PARSERS.get((packet_type, None))
        packet = parser(count, body) if parser else None
        packets.append(packet if packet is not None
                       else RawRtcp(packet_type, count, body + bytes(-len(body) % 4)))
        pos += size
    return packets


def serialize_compound(packets) -> bytes:
    """One datagram holding every packet, in order."""
    return b"".join(bytes(p) for p in packets)
