"""RTCP packet types (RFC 3550, 4585, 5104) and their common framing.

Each packet class parses its body (the bytes after the 4-byte header, padding
removed) with ``parse(count, body)`` and writes the whole packet with
``bytes(packet)``.  Transport-wide congestion control feedback and the
compound-packet parser that dispatches to these classes live in
:mod:`srs_twisted.codec.rtcp`, the module to import.
"""

import struct
from dataclasses import dataclass, field

from .errors import CodecError

__all__ = [
    "RtcpError", "ReportBlock", "SenderReport", "ReceiverReport", "SdesChunk", "Sdes", "Bye",
    "Nack", "Pli", "Fir", "Remb", "RawRtcp", "nack_pairs", "nack_lost",
    "ntp_timestamp", "ntp_compact", "SR", "RR", "SDES", "BYE", "APP", "RTPFB", "PSFB", "XR",
]

SR, RR, SDES, BYE, APP, RTPFB, PSFB, XR = 200, 201, 202, 203, 204, 205, 206, 207
FMT_NACK = 1
FMT_TWCC = 15
FMT_PLI = 1
FMT_FIR = 4
FMT_AFB = 15
SDES_CNAME = 1

_HEADER = struct.Struct(">BBH")
_U32 = struct.Struct(">I")
_TWO_SSRC = struct.Struct(">II")
_BLOCK = struct.Struct(">IIIIII")
_SENDER = struct.Struct(">IQIII")
_PAIR = struct.Struct(">HH")
_FIR_ENTRY = struct.Struct(">IB3x")
_REMB = struct.Struct(">IIIBBH")  # sender, media, 'REMB', count, exp|mantissa hi, mantissa lo

_NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 to 1970


class RtcpError(CodecError):
    """Malformed or unsupported RTCP bytes."""


def _need(body, n: int, what: str) -> None:
    if len(body) < n:
        raise RtcpError("RTCP %s truncated: need %d bytes, have %d" % (what, n, len(body)))


def _packet(packet_type: int, count: int, body: bytes) -> bytes:
    if len(body) % 4:
        body += bytes(-len(body) % 4)
    if not 0 <= count <= 31:
        raise RtcpError("RTCP count/format %d does not fit 5 bits" % count)
    return _HEADER.pack(0x80 | count, packet_type, len(body) >> 2) + body


class _Rtcp:
    __slots__ = ()

    def __bytes__(self) -> bytes:
        return _packet(self.packet_type, self._count(), self._body())


def ntp_timestamp(unix_time: float) -> int:
    """A 64-bit NTP timestamp for a Unix time in seconds."""
    return int(round((unix_time + _NTP_EPOCH_OFFSET) * (1 << 32))) & 0xFFFFFFFFFFFFFFFF


def ntp_compact(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp (the LSR field of a report block)."""
    return (ntp >> 16) & 0xFFFFFFFF


# --- reports ----------------------------------------------------------------


@dataclass(slots=True)
class ReportBlock:
    """A reception report block; ``packets_lost`` is signed (24 bits)."""

    ssrc: int
    fraction_lost: int = 0
    packets_lost: int = 0
    highest_seq: int = 0
    jitter: int = 0
    lsr: int = 0
    dlsr: int = 0

    @classmethod
    def parse(cls, data, pos: int) -> "ReportBlock":
        ssrc, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, pos)
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 0x1000000
        return cls(ssrc, lost >> 24, cumulative, highest, jitter, lsr, dlsr)

    def __bytes__(self) -> bytes:
        lost = max(-0x800000, min(self.packets_lost, 0x7FFFFF)) & 0xFFFFFF
        return _BLOCK.pack(self.ssrc, ((self.fraction_lost & 0xFF) << 24) | lost, self.highest_seq,
                           self.jitter, self.lsr, self.dlsr)


def _blocks(body, pos: int, count: int, what: str) -> list:
    _need(body, pos + 24 * count, what + " report blocks")
    return [ReportBlock.parse(body, pos + 24 * i) for i in range(count)]


@dataclass(slots=True)
class SenderReport(_Rtcp):
    ssrc: int
    ntp_timestamp: int = 0
    rtp_timestamp: int = 0
    packet_count: int = 0
    octet_count: int = 0
    reports: list = field(default_factory=list)
    extension: bytes = b""  # profile-specific extension, kept raw
    packet_type = SR

    @classmethod
    def parse(cls, count: int, body) -> "SenderReport":
        _need(body, 24, "sender report")
        reports = _blocks(body, 24, count, "sender report")
        return cls(*_SENDER.unpack_from(body), reports, bytes(body[24 + 24 * count:]))

    def _count(self) -> int:
        return len(self.reports)

    def _body(self) -> bytes:
        return b"".join([_SENDER.pack(self.ssrc, self.ntp_timestamp, self.rtp_timestamp,
                                      self.packet_count, self.octet_count)]
                        + [bytes(r) for r in self.reports] + [self.extension])


@dataclass(slots=True)
class ReceiverReport(_Rtcp):
    ssrc: int
    reports: list = field(default_factory=list)
    extension: bytes = b""
    packet_type = RR

    @classmethod
    def parse(cls, count: int, body) -> "ReceiverReport":
        _need(body, 4, "receiver report")
        reports = _blocks(body, 4, count, "receiver report")
        return cls(_U32.unpack_from(body)[0], reports, bytes(body[4 + 24 * count:]))

    def _count(self) -> int:
        return len(self.reports)

    def _body(self) -> bytes:
        return b"".join([_U32.pack(self.ssrc)] + [bytes(r) for r in self.reports] + [self.extension])


# --- SDES and BYE -----------------------------------------------------------


@dataclass(slots=True)
class SdesChunk:
    """One source's SDES items as ``[(type, bytes)]`` (1 is CNAME)."""

    ssrc: int
    items: list = field(default_factory=list)

    @property
    def cname(self):
        for kind, value in self.items:
            if kind == SDES_CNAME:
                return value
        return None


@dataclass(slots=True)
class Sdes(_Rtcp):
    chunks: list = field(default_factory=list)
    packet_type = SDES

    @classmethod
    def parse(cls, count: int, body) -> "Sdes":
        chunks = []
        pos = 0
        for _ in range(count):
            _need(body, pos + 4, "SDES chunk")
            chunk = SdesChunk(_U32.unpack_from(body, pos)[0])
            pos += 4
            while True:
                _need(body, pos + 1, "SDES item")
                kind = body[pos]
                if kind == 0:
                    pos = (pos + 4) & ~3  # the null item, then padding to a word
                    break
                _need(body, pos + 2, "SDES item")
                n = body[pos + 1]
                _need(body, pos + 2 + n, "SDES item value")
                chunk.items.append((kind, bytes(body[pos + 2:pos + 2 + n])))
                pos += 2 + n
            chunks.append(chunk)
        return cls(chunks)

    def _count(self) -> int:
        return len(self.chunks)

    def _body(self) -> bytes:
        out = bytearray()
        for chunk in self.chunks:
            out += _U32.pack(chunk.ssrc)
            for kind, value in chunk.items:
                if not 1 <= kind <= 255 or len(value) > 255:
                    raise RtcpError("SDES item type %d of %d bytes cannot be encoded" % (kind, len(value)))
                out += bytes((kind, len(value))) + bytes(value)
            out += bytes(4 - len(out) % 4)  # null item and padding
        return bytes(out)


@dataclass(slots=True)
class Bye(_Rtcp):
    ssrcs: list = field(default_factory=list)
    reason: bytes = b""
    packet_type = BYE

    @classmethod
    def parse(cls, count: int, body) -> "Bye":
        _need(body, 4 * count, "BYE")
        ssrcs = list(struct.unpack_from(">%dI" % count, body))
        reason = b""
        pos = 4 * count
        if pos < len(body) and body[pos]:
            n = body[pos]
            _need(body, pos + 1 + n, "BYE reason")
            reason = bytes(body[pos + 1:pos + 1 + n])
        return cls(ssrcs, reason)

    def _count(self) -> int:
        return len(self.ssrcs)

    def _body(self) -> bytes:
        body = struct.pack(">%dI" % len(self.ssrcs), *self.ssrcs)
        if self.reason:
            if len(self.reason) > 255:
                raise RtcpError("BYE reason of %d bytes is too long" % len(self.reason))
            body += bytes((len(self.reason),)) + bytes(self.reason)
        return body


# --- transport layer feedback (RTPFB) ---------------------------------------


def nack_pairs(lost) -> list:
    """Generic NACK FCI entries ``[(pid, blp)]`` for 16-bit sequence numbers."""
    pairs = []
    pid = blp = None
    for seq in lost:
        seq &= 0xFFFF
        if pid is not None:
            d = (seq - pid - 1) & 0xFFFF
            if d < 16:
                blp |= 1 << d
                continue
            if seq == pid:
                continue
            pairs.append((pid, blp))
        pid, blp = seq, 0
    if pid is not None:
        pairs.append((pid, blp))
    return pairs


def nack_lost(pairs) -> list:
    """The sequence numbers a list of ``(pid, blp)`` entries reports lost."""
    lost = []
    for pid, blp in pairs:
        lost.append(pid)
        lost.extend((pid + 1 + d) & 0xFFFF for d in range(16) if blp >> d & 1)
    return lost


def _two_ssrcs(body, what: str):
    _need(body, 8, what)
    return _TWO_SSRC.unpack_from(body)


@dataclass(slots=True)
class Nack(_Rtcp):
    """Generic NACK (RFC 4585 6.2.1): the media sequence numbers lost."""

    sender_ssrc: int
    media_ssrc: int
    lost: list = field(default_factory=list)
    packet_type = RTPFB

    @classmethod
    def parse(cls, fmt: int, body) -> "Nack":
        sender, media = _two_ssrcs(body, "NACK")
        if len(body) % 4:
            raise RtcpError("NACK FCI of %d bytes is not a list of words" % (len(body) - 8))
        pairs = [_PAIR.unpack_from(body, pos) for pos in range(8, len(body), 4)]
        return cls(sender, media, nack_lost(pairs))

    def _count(self) -> int:
        return FMT_NACK

    def _body(self) -> bytes:
        return b"".join([_TWO_SSRC.pack(self.sender_ssrc, self.media_ssrc)]
                        + [_PAIR.pack(pid, blp) for pid, blp in nack_pairs(self.lost)])


# --- payload-specific feedback (PSFB) ---------------------------------------


@dataclass(slots=True)
class Pli(_Rtcp):
    """Picture loss indication: the publisher should send a keyframe."""

    sender_ssrc: int
    media_ssrc: int
    packet_type = PSFB

    @classmethod
    def parse(cls, fmt: int, body) -> "Pli":
        return cls(*_two_ssrcs(body, "PLI"))

    def _count(self) -> int:
        return FMT_PLI

    def _body(self) -> bytes:
        return _TWO_SSRC.pack(self.sender_ssrc, self.media_ssrc)


@dataclass(slots=True)
class Fir(_Rtcp):
    """Full intra request (RFC 5104): ``entries`` are ``(ssrc, command seq)``."""

    sender_ssrc: int
    entries: list = field(default_factory=list)
    media_ssrc: int = 0
    packet_type = PSFB

    @classmethod
    def parse(cls, fmt: int, body) -> "Fir":
        sender, media = _two_ssrcs(body, "FIR")
        if (len(body) - 8) % 8:
            raise RtcpError("FIR FCI of %d bytes is not a list of entries" % (len(body) - 8))
        return cls(sender, [_FIR_ENTRY.unpack_from(body, pos) for pos in range(8, len(body), 8)], media)

    def _count(self) -> int:
        return FMT_FIR

    def _body(self) -> bytes:
        return b"".join([_TWO_SSRC.pack(self.sender_ssrc, self.media_ssrc)]
                        + [_FIR_ENTRY.pack(ssrc, seq & 0xFF) for ssrc, seq in self.entries])


@dataclass(slots=True)
class Remb(_Rtcp):
    """Receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb)."""

    sender_ssrc: int
    bitrate: int
    ssrcs: list = field(default_factory=list)
    media_ssrc: int = 0
    packet_type = PSFB

    @classmethod
    def parse(cls, fmt: int, body):
        if len(body) < 16 or bytes(body[8:12]) != b"REMB":
            return None  # another application layer feedback: kept raw
        sender, media, _, n, hi, lo = _REMB.unpack_from(body)
        _need(body, 16 + 4 * n, "REMB SSRC list")
        mantissa = ((hi & 0x03) << 16) | lo
        return cls(sender, mantissa << (hi >> 2), list(struct.unpack_from(">%dI" % n, body, 16)), media)

    def _count(self) -> int:
        return FMT_AFB

    def _body(self) -> bytes:
        mantissa, exp = self.bitrate, 0
        while mantissa > 0x3FFFF:
            mantissa >>= 1
            exp += 1
        if exp > 63 or len(self.ssrcs) > 255:
            raise RtcpError("REMB of %d bps for %d SSRCs cannot be encoded" % (self.bitrate, len(self.ssrcs)))
        return (_REMB.pack(self.sender_ssrc, self.media_ssrc, 0x52454D42, len(self.ssrcs),
                           (exp << 2) | (mantissa >> 16), mantissa & 0xFFFF)
                + struct.pack(">%dI" % len(self.ssrcs), *self.ssrcs))


@dataclass(slots=True)
class RawRtcp(_Rtcp):
    """A packet this module does not decode (APP, XR, other feedback formats)."""

    packet_type: int
    count: int
    body: bytes = b""

    def _count(self) -> int:
        return self.count

    def _body(self) -> bytes:
        if len(self.body) % 4:
            raise RtcpError("RTCP body of %d bytes is not a list of words" % len(self.body))
        return self.body
