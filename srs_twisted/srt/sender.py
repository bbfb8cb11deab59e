"""The sending half of an SRT connection in live mode (sans-I/O; see :mod:`.connection`).

:class:`Sender` makes one data packet per message, keeps it until ACKed, sends NAKed ones
again with the retransmitted flag, gives up packets older than ``max(peer latency, 1 s) +
20 ms`` (libsrt's sender drop) and answers a NAK for a packet no longer held with a DROPREQ.
"""

from __future__ import annotations

import struct
from collections import deque

from .packet import DropRequest, SrtError, msg_next, seq_add, seq_diff

__all__ = ["Sender", "SEND_DROP_MIN", "SYN_INTERVAL"]

SYN_INTERVAL = 10_000  # µs: ACK period
SEND_DROP_MIN = 1_000_000  # µs: libsrt's SRT_TLPKTDROP_MINTHRESHOLD_MS
_DATA_HEADER = struct.Struct(">IIII")


class Sender:
    """The sending half (see the module docstring)."""

    def __init__(self, isn: int, start_us: int, peer_latency_us: int, dest: int, capacity: int = 8192,
                 crypto=None) -> None:
        self.next = isn
        self.oldest = isn  # seq of buf[0]
        self.msgno = 1
        self.start = start_us
        self.dest = dest
        self.capacity = capacity
        self.buf: deque = deque()  # (bytes, sent time, msgno)
        self.drop_after = max(peer_latency_us, SEND_DROP_MIN) + 2 * SYN_INTERVAL
        self.crypto = crypto
        self.sent = 0
        self.bytes = 0
        self.retransmitted = 0
        self.dropped = 0  # given up before they were ACKed
        self.dropreqs = 0

    def packet(self, payload: bytes, now: int) -> bytes:
        """One message as a data packet, kept for retransmission."""
        key = 0
        if self.crypto is not None:
            key, payload = self.crypto.encrypt(self.next, payload)
        # PP=11 (solo), O=0, KK=key, R=0: the header packed directly (hot path)
        pkt = _DATA_HEADER.pack(self.next, 0xC0000000 | (key << 27) | self.msgno, (now - self.start) & 0xFFFFFFFF,
                                self.dest) + payload
        if len(self.buf) >= self.capacity:
            self.buf.popleft()
            self.oldest = seq_add(self.oldest, 1)
            self.dropped += 1
        self.buf.append((pkt, now, self.msgno))
        self.next = seq_add(self.next, 1)
        self.msgno = msg_next(self.msgno)
        self.sent += 1
        self.bytes += len(payload)
        return pkt

    def on_ack(self, seq: int) -> None:
        n = seq_diff(seq, self.oldest)
        if n <= 0:
            return
        if seq_diff(seq, self.next) > 0:
            raise SrtError(f"ACK of {seq} beyond what was sent ({self.next})")
        for _ in range(min(n, len(self.buf))):
            self.buf.popleft()
        self.oldest = seq

    def on_nak(self, ranges) -> tuple[list, list]:
        """(retransmissions, DROPREQs) for the NAKed ranges."""
        out, drops = [], []
        budget = self.capacity
        for first, last in ranges:
            span = seq_diff(last, first)
            if span < 0 or seq_diff(last, self.next) >= 0:
                raise SrtError(f"NAK of {first}..{last} beyond what was sent ({self.next})")
            start = seq_diff(first, self.oldest)
            if start < 0:  # some no longer held
                gone_last = last if seq_diff(last, self.oldest) < 0 else seq_add(self.oldest, -1)
                drops.append(DropRequest(0, first, gone_last))
                self.dropreqs += 1
                start = 0
            end = seq_diff(last, self.oldest)
            for i in range(start, min(end + 1, start + budget)):
                pkt = self.buf[i][0]
                out.append(pkt[:4] + bytes((pkt[4] | 0x04,)) + pkt[5:])
                budget -= 1
            if budget <= 0:
                break
        self.retransmitted += len(out)
        return out, drops

    def drop_late(self, now: int) -> None:
        buf = self.buf
        limit = now - self.drop_after
        while buf and buf[0][1] < limit:
            buf.popleft()
            self.oldest = seq_add(self.oldest, 1)
            self.dropped += 1
