"""SRT wire formats (draft-sharabayko-srt, libsrt 1.5 live mode): pure functions over bytes.

Every datagram starts with a 16-byte header.  Bit 0 tells data (0) from control (1):

* data: sequence number (31 bits); packet position (2), in-order (1), key-based
  encryption flags (2), retransmitted (1), message number (26); timestamp (32, µs
  since the sender's start); destination socket id (32); payload.
* control: control type (15 bits), subtype (16); type-specific information (32);
  timestamp; destination socket id; control information field (CIF).

Control packets here: HANDSHAKE (v5 with the HSREQ/HSRSP, KMREQ/KMRSP and SID
extensions), KEEPALIVE, ACK (full, small, light), NAK (loss list with ranges),
SHUTDOWN, ACKACK, DROPREQ.  Sequence numbers wrap at 2^31, message numbers at
2^26, timestamps at 2^32; :func:`seq_diff` and friends compare across the wrap.

Whatever does not parse raises :class:`SrtError` (and only that); callers drop
the datagram.  No Twisted, no sockets, no clock.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = [
    "SrtError", "SEQ_MASK", "MSG_MASK", "TS_MASK", "seq_add", "seq_diff", "seq_lt", "msg_next",
    "DataPacket", "ControlPacket", "parse_datagram", "is_control", "dest_socket_id",
    "HANDSHAKE", "KEEPALIVE", "ACK", "NAK", "CONGESTION", "SHUTDOWN", "ACKACK", "DROPREQ", "PEERERROR", "USER",
    "Handshake", "HsExtension", "SrtHs", "Ack", "DropRequest",
    "encode_loss_list", "decode_loss_list", "encode_sid", "decode_sid",
    "HS_INDUCTION", "HS_CONCLUSION", "HS_WAVEAHAND", "HS_AGREEMENT", "HS_DONE", "REJECT_BASE",
    "SRT_MAGIC", "EXT_HSREQ", "EXT_HSRSP", "EXT_KMREQ", "EXT_KMRSP", "EXT_SID", "EXT_CONGESTION",
    "EXT_FILTER", "EXT_GROUP", "HS_EXT_FLAG_HSREQ", "HS_EXT_FLAG_KMREQ", "HS_EXT_FLAG_CONFIG",
    "FLAG_TSBPDSND", "FLAG_TSBPDRCV", "FLAG_CRYPT", "FLAG_TLPKTDROP", "FLAG_NAKREPORT", "FLAG_REXMITFLG",
    "FLAG_STREAM", "FLAG_FILTERCAP", "SRT_VERSION", "MAX_SID_LENGTH", "HEADER_SIZE", "UDP_IP_OVERHEAD",
    "PP_SOLO", "PP_FIRST", "PP_LAST", "PP_MIDDLE",
    "REJ_UNKNOWN", "REJ_SYSTEM", "REJ_PEER", "REJ_RESOURCE", "REJ_ROGUE", "REJ_BACKLOG", "REJ_IPE",
    "REJ_CLOSE", "REJ_VERSION", "REJ_RDVCOOKIE", "REJ_BADSECRET", "REJ_UNSECURE", "REJ_MESSAGEAPI",
    "REJ_CONGESTION", "REJ_FILTER", "REJ_GROUP", "REJ_TIMEOUT", "REJ_CRYPTO", "REJX_BAD_REQUEST",
    "REJX_FORBIDDEN", "REJX_NOTFOUND", "REJX_CONFLICT", "reject_reason_text",
]


class SrtError(ValueError):
    """A datagram or handshake that is not valid SRT (it is dropped, or the peer refused)."""


SEQ_MASK = 0x7FFFFFFF
MSG_MASK = 0x03FFFFFF
TS_MASK = 0xFFFFFFFF
_SEQ_HALF = 1 << 30

HEADER_SIZE = 16
UDP_IP_OVERHEAD = 28  # IPv4 + UDP headers: payload = mss - 28 - 16

# Control types
HANDSHAKE = 0
KEEPALIVE = 1
ACK = 2
NAK = 3
CONGESTION = 4
SHUTDOWN = 5
ACKACK = 6
DROPREQ = 7
PEERERROR = 8
USER = 0x7FFF

# Handshake request types
HS_WAVEAHAND = 0
HS_INDUCTION = 1
HS_CONCLUSION = 0xFFFFFFFF
HS_AGREEMENT = 0xFFFFFFFE
HS_DONE = 0xFFFFFFFD
REJECT_BASE = 1000  # a rejection is REJECT_BASE + reason

SRT_MAGIC = 0x4A17  # extension field of a v5 listener's induction response
SRT_VERSION = 0x010503  # the SRT version we announce (1.5.3)
MAX_SID_LENGTH = 512

# Handshake extension types
EXT_HSREQ = 1
EXT_HSRSP = 2
EXT_KMREQ = 3
EXT_KMRSP = 4
EXT_SID = 5
EXT_CONGESTION = 6
EXT_FILTER = 7
EXT_GROUP = 8

# Handshake extension-field flags (conclusion)
HS_EXT_FLAG_HSREQ = 0x1
HS_EXT_FLAG_KMREQ = 0x2
HS_EXT_FLAG_CONFIG = 0x4

# HSREQ/HSRSP flags
FLAG_TSBPDSND = 0x01
FLAG_TSBPDRCV = 0x02
FLAG_CRYPT = 0x04
FLAG_TLPKTDROP = 0x08
FLAG_NAKREPORT = 0x10
FLAG_REXMITFLG = 0x20
FLAG_STREAM = 0x40
FLAG_FILTERCAP = 0x80

# Packet position of a data packet in its message
PP_MIDDLE = 0
PP_LAST = 1
PP_FIRST = 2
PP_SOLO = 3

# Rejection reasons (libsrt SRT_REJECT_REASON; 1000+ are the server's "predefined" codes)
(REJ_UNKNOWN, REJ_SYSTEM, REJ_PEER, REJ_RESOURCE, REJ_ROGUE, REJ_BACKLOG, REJ_IPE, REJ_CLOSE, REJ_VERSION,
 REJ_RDVCOOKIE, REJ_BADSECRET, REJ_UNSECURE, REJ_MESSAGEAPI, REJ_CONGESTION, REJ_FILTER, REJ_GROUP,
 REJ_TIMEOUT, REJ_CRYPTO) = range(18)
REJX_BAD_REQUEST = 1400
REJX_FORBIDDEN = 1403
REJX_NOTFOUND = 1404
REJX_CONFLICT = 1409

_REJECT_TEXT = {
    REJ_UNKNOWN: "unknown", REJ_SYSTEM: "system error", REJ_PEER: "rejected by the peer",
    REJ_RESOURCE: "resource allocation problem", REJ_ROGUE: "incorrect data in the handshake",
    REJ_BACKLOG: "listener's backlog exceeded", REJ_IPE: "internal program error", REJ_CLOSE: "socket closing",
    REJ_VERSION: "peer is older than the agent's minimum version", REJ_RDVCOOKIE: "rendezvous cookie collision",
    REJ_BADSECRET: "wrong password", REJ_UNSECURE: "password required or unexpected",
    REJ_MESSAGEAPI: "stream/message API collision", REJ_CONGESTION: "incompatible congestion controller",
    REJ_FILTER: "incompatible packet filter", REJ_GROUP: "incompatible group", REJ_TIMEOUT: "connection timeout",
    REJ_CRYPTO: "conflicting cryptographic configurations", REJX_BAD_REQUEST: "bad request (1400)",
    REJX_FORBIDDEN: "forbidden (1403)", REJX_NOTFOUND: "not found (1404)", REJX_CONFLICT: "conflict (1409)",
}


def reject_reason_text(reason: int) -> str:
    return _REJECT_TEXT.get(reason, f"reason {reason}")


# ------------------------------------------------------------------------------------------
# Sequence arithmetic


def seq_add(seq: int, n: int) -> int:
    return (seq + n) & SEQ_MASK


def seq_diff(a: int, b: int) -> int:
    """``a - b`` on the 31-bit circle, in -2^30..2^30-1."""
    d = (a - b) & SEQ_MASK
    return d - (SEQ_MASK + 1) if d >= _SEQ_HALF else d


def seq_lt(a: int, b: int) -> bool:
    return seq_diff(a, b) < 0


def msg_next(msgno: int) -> int:
    """The message number after ``msgno`` (1..2^26-1; 0 is never used)."""
    nxt = (msgno + 1) & MSG_MASK
    return nxt or 1


# ------------------------------------------------------------------------------------------
# Packets

_HEADER = struct.Struct(">IIII")
_U32 = struct.Struct(">I")


def is_control(data: bytes) -> bool:
    return bool(data[0] & 0x80)


def dest_socket_id(data: bytes) -> int:
    if len(data) < HEADER_SIZE:
        raise SrtError(f"a datagram of {len(data)} bytes is shorter than the SRT header")
    return _U32.unpack_from(data, 12)[0]


@dataclass(slots=True)
class DataPacket:
    seq: int
    msgno: int
    timestamp: int
    dest: int
    payload: bytes
    position: int = PP_SOLO
    in_order: bool = False
    key: int = 0  # 0 clear, 1 even key, 2 odd key
    rexmit: bool = False

    def __bytes__(self) -> bytes:
        word2 = (self.position << 30) | (int(self.in_order) << 29) | (self.key << 27) | (int(self.rexmit) << 26) \
            | (self.msgno & MSG_MASK)
        return _HEADER.pack(self.seq & SEQ_MASK, word2, self.timestamp & TS_MASK, self.dest) + self.payload

    @classmethod
    def parse(cls, data: bytes) -> "DataPacket":
        if len(data) < HEADER_SIZE:
            raise SrtError(f"a data packet of {len(data)} bytes is shorter than the header")
        w1, w2, ts, dest = _HEADER.unpack_from(data)
        if w1 & 0x80000000:
            raise SrtError("not a data packet")
        return cls(w1, w2 & MSG_MASK, ts, dest, bytes(data[HEADER_SIZE:]), position=w2 >> 30,
                   in_order=bool(w2 & 0x20000000), key=(w2 >> 27) & 3, rexmit=bool(w2 & 0x04000000))


@dataclass(slots=True)
class ControlPacket:
    type: int
    info: int = 0
    timestamp: int = 0
    dest: int = 0
    cif: bytes = b""
    subtype: int = 0

    def __bytes__(self) -> bytes:
        return _HEADER.pack(0x80000000 | (self.type << 16) | self.subtype, self.info & 0xFFFFFFFF,
                            self.timestamp & TS_MASK, self.dest) + self.cif

    @classmethod
    def parse(cls, data: bytes) -> "ControlPacket":
        if len(data) < HEADER_SIZE:
            raise SrtError(f"a control packet of {len(data)} bytes is shorter than the header")
        w1, info, ts, dest = _HEADER.unpack_from(data)
        if not w1 & 0x80000000:
            raise SrtError("not a control packet")
        return cls((w1 >> 16) & 0x7FFF, info, ts, dest, bytes(data[HEADER_SIZE:]), subtype=w1 & 0xFFFF)


def parse_datagram(data: bytes):
    """A :class:`DataPacket` or :class:`ControlPacket`; :class:`SrtError` if it is neither."""
    if len(data) < HEADER_SIZE:
        raise SrtError(f"a datagram of {len(data)} bytes is shorter than the SRT header")
    return ControlPacket.parse(data) if data[0] & 0x80 else DataPacket.parse(data)


# ------------------------------------------------------------------------------------------
# Handshake

_HS = struct.Struct(">IHHIIIiII16s")  # 48 bytes
_EXT_HEAD = struct.Struct(">HH")


@dataclass(slots=True)
class HsExtension:
    type: int
    data: bytes  # a multiple of 4 bytes


@dataclass(slots=True)
class Handshake:
    version: int = 5
    encryption: int = 0
    extension: int = 0
    isn: int = 0
    mtu: int = 1500
    flow_window: int = 8192
    req_type: int = HS_INDUCTION
    socket_id: int = 0
    cookie: int = 0
    peer_ip: bytes = b"\x00" * 16
    extensions: list = field(default_factory=list)

    def __bytes__(self) -> bytes:
        out = [_HS.pack(self.version, self.encryption, self.extension, self.isn & SEQ_MASK, self.mtu,
                        self.flow_window, _signed(self.req_type), self.socket_id, self.cookie & 0xFFFFFFFF,
                        self.peer_ip)]
        for ext in self.extensions:
            if len(ext.data) % 4:
                raise SrtError("a handshake extension is not a multiple of 4 bytes")
            out.append(_EXT_HEAD.pack(ext.type, len(ext.data) // 4))
            out.append(ext.data)
        return b"".join(out)

    @classmethod
    def parse(cls, cif: bytes) -> "Handshake":
        if len(cif) < _HS.size:
            raise SrtError(f"a handshake of {len(cif)} bytes is shorter than {_HS.size}")
        (version, encryption, extension, isn, mtu, window, req, sid, cookie, ip) = _HS.unpack_from(cif)
        hs = cls(version, encryption, extension, isn & SEQ_MASK, mtu, window, req & 0xFFFFFFFF, sid, cookie, ip)
        pos = _HS.size
        if version >= 5:
            count = 0
            while len(cif) - pos >= 4:
                kind, words = _EXT_HEAD.unpack_from(cif, pos)
                pos += 4
                end = pos + 4 * words
                if end > len(cif):
                    raise SrtError(f"handshake extension {kind} of {words} words overruns the packet")
                count += 1
                if count > 16:
                    raise SrtError("too many handshake extensions")
                hs.extensions.append(HsExtension(kind, bytes(cif[pos:end])))
                pos = end
        return hs

    def find(self, kind: int) -> HsExtension | None:
        for ext in self.extensions:
            if ext.type == kind:
                return ext
        return None


def _signed(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


_SRTHS = struct.Struct(">IIHH")


@dataclass(slots=True)
class SrtHs:
    """The HSREQ/HSRSP extension: version, flags and the two TSBPD delays (ms)."""

    version: int = SRT_VERSION
    flags: int = 0
    recv_delay: int = 0  # the latency the sender of this block uses to receive
    send_delay: int = 0  # the latency it proposes the other side receives with

    def __bytes__(self) -> bytes:
        return _SRTHS.pack(self.version, self.flags, self.recv_delay & 0xFFFF, self.send_delay & 0xFFFF)

    @classmethod
    def parse(cls, data: bytes) -> "SrtHs":
        if len(data) < _SRTHS.size:
            raise SrtError(f"an HSREQ/HSRSP of {len(data)} bytes is shorter than {_SRTHS.size}")
        return cls(*_SRTHS.unpack_from(data))


def encode_sid(stream_id: str) -> bytes:
    """The SID extension body: UTF-8, zero-padded to 4 bytes, each 32-bit word byte-reversed
    (libsrt copies the text into host-order words and the packet is then swapped to network order)."""
    raw = stream_id.encode("utf-8")
    if len(raw) > MAX_SID_LENGTH:
        raise SrtError(f"a stream id of {len(raw)} bytes is longer than {MAX_SID_LENGTH}")
    raw += b"\x00" * (-len(raw) % 4)
    return b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))


def decode_sid(data: bytes) -> str:
    if not data or len(data) > MAX_SID_LENGTH or len(data) % 4:
        raise SrtError(f"a stream id extension of {len(data)} bytes is empty, too long or unaligned")
    raw = b"".join(data[i:i + 4][::-1] for i in range(0, len(data), 4)).rstrip(b"\x00")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SrtError("the stream id is not UTF-8") from None


# ------------------------------------------------------------------------------------------
# ACK, NAK, DROPREQ

_ACK_FULL = struct.Struct(">IIIIIII")


@dataclass(slots=True)
class Ack:
    """An ACK's CIF: the next sequence number the receiver expects, and its measurements.
    A light ACK carries ``last_seq`` only (``light``)."""

    last_seq: int
    rtt: int = 0  # µs
    rtt_var: int = 0
    buffer: int = 0  # available receive buffer, packets
    rate: int = 0  # packets/s
    capacity: int = 0  # packets/s
    byte_rate: int = 0  # bytes/s
    light: bool = False

    def __bytes__(self) -> bytes:
        if self.light:
            return _U32.pack(self.last_seq & SEQ_MASK)
        return _ACK_FULL.pack(self.last_seq & SEQ_MASK, self.rtt, self.rtt_var, self.buffer, self.rate,
                              self.capacity, self.byte_rate)

    @classmethod
    def parse(cls, cif: bytes) -> "Ack":
        if len(cif) < 4:
            raise SrtError(f"an ACK of {len(cif)} bytes has no sequence number")
        if len(cif) < 16:
            return cls(_U32.unpack_from(cif)[0] & SEQ_MASK, light=True)
        values = list(struct.unpack_from(">IIII", cif))
        if len(cif) >= 28:
            values = list(_ACK_FULL.unpack_from(cif))
        values[0] &= SEQ_MASK
        return cls(*values)


def encode_loss_list(ranges) -> bytes:
    """``[(first, last), ...]`` (inclusive) as a NAK's CIF: a single number, or a range as the
    first with the top bit set followed by the last."""
    out = []
    for first, last in ranges:
        if first == last:
            out.append(_U32.pack(first & SEQ_MASK))
        else:
            out.append(struct.pack(">II", 0x80000000 | (first & SEQ_MASK), last & SEQ_MASK))
    return b"".join(out)


def decode_loss_list(cif: bytes, limit: int = 4096) -> list:
    """A NAK's CIF as ``[(first, last), ...]``; ranges that run backwards or a dangling range
    start raise :class:`SrtError`; at most ``limit`` entries are read."""
    if len(cif) % 4 or not cif:
        raise SrtError(f"a loss list of {len(cif)} bytes is empty or unaligned")
    words = struct.unpack(f">{len(cif) // 4}I", cif)
    out = []
    i = 0
    while i < len(words) and len(out) < limit:
        w = words[i]
        if w & 0x80000000:
            if i + 1 >= len(words) or words[i + 1] & 0x80000000:
                raise SrtError("a loss range start is not followed by its end")
            first, last = w & SEQ_MASK, words[i + 1]
            if seq_diff(last, first) < 0:
                raise SrtError(f"a loss range {first}..{last} runs backwards")
            out.append((first, last))
            i += 2
        else:
            out.append((w, w))
            i += 1
    return out


@dataclass(slots=True)
class DropRequest:
    """DROPREQ: the sender no longer has ``first..last`` (message ``msgno`` in the header info)."""

    msgno: int
    first: int
    last: int

    def cif(self) -> bytes:
        return struct.pack(">II", self.first & SEQ_MASK, self.last & SEQ_MASK)

    @classmethod
    def parse(cls, info: int, cif: bytes) -> "DropRequest":
        if len(cif) < 8:
            raise SrtError(f"a DROPREQ of {len(cif)} bytes has no range")
        first, last = struct.unpack_from(">II", cif)
        return cls(info & MSG_MASK, first & SEQ_MASK, last & SEQ_MASK)
