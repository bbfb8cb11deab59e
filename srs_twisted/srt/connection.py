"""One SRT connection in live mode, sans-I/O: datagrams and time in, datagrams and events out.

Time is an integer count of microseconds passed by the caller (any monotonic origin).
:class:`SrtConnection` is made by the handshake (:mod:`.handshake`) once both sides agreed;
feed it with :meth:`~SrtConnection.datagram_received`, call :meth:`~SrtConnection.tick`
every few milliseconds (10 ms is SRT's SYN interval), and take what it produced with
:meth:`~SrtConnection.datagrams_to_send` and :meth:`~SrtConnection.events`.

Receiving (:class:`Receiver`):

* TSBPD: a packet is released at ``peer_start + timestamp + latency`` (by :meth:`tick`, so
  within one tick period after it), where
  ``peer_start`` is our time at the peer's clock zero (taken from the handshake's
  timestamp, as libsrt does, then kept in step with the peer's clock: each ACKACK is a
  drift sample, see :meth:`Receiver.drift_sample`) and the 32-bit timestamp is unwrapped;
  with ``tsbpd`` off packets are released in order as soon as they are there.
* Losses: a gap in sequence numbers is NAKed at once, and every loss still missing is
  NAKed again each ``max(20 ms, RTT + 4 RTTVar)`` (periodic NAK reports).
* Too-late drop (``tlpktdrop``): when the packet after a hole is due, the hole is given
  up and counted (:attr:`Receiver.dropped`).
* Full ACKs every 10 ms while the ACK point moves (and again after RTT + 4 RTTVar when
  it did not), numbered; the peer's ACKACK gives the RTT.
* Bounded: at most ``buffer_packets`` packets ahead of the delivery point are kept; a
  packet further ahead, a duplicate or one behind the delivery point is dropped.

Sending (:class:`Sender`), for players: each :meth:`~SrtConnection.send` is one message
in one packet (live mode); packets stay in the buffer until ACKed, NAKed ones are sent
again with the retransmitted flag, and packets older than ``max(peer latency, 1 s) +
20 ms`` are given up (libsrt's sender drop); a NAK for a packet no longer held is
answered with a DROPREQ.

Pacing (``max_bw`` bytes/s, SRT's ``maxbw`` when above 0): data packets, retransmissions
included, leave at most at that rate (a token bucket holding 20 ms of it, at least two
packets); the others wait in order and leave on later calls (:meth:`~SrtConnection.tick`),
or are given up with the sender's too-late drop.  Control packets are never held.  With
``max_bw_relative`` (SRT's ``maxbw 0``) the rate is the input's, measured over each second
(the bytes of new data packets given to :meth:`~SrtConnection.send`), plus 25% (libsrt's
default ``oheadbw``) for retransmissions; unpaced until the first second is measured.

Connection: a KEEPALIVE after 1 s without sending, SHUTDOWN both ways, and the
connection ends (:class:`Closed`) after ``peer_idle_us`` without a datagram from the peer.
"""

from __future__ import annotations

import struct
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from .packet import (
    ACK, ACKACK, DROPREQ, EXT_KMREQ, EXT_KMRSP, HANDSHAKE, KEEPALIVE, NAK, SHUTDOWN, USER, Ack, ControlPacket, DataPacket, DropRequest,
    SrtError, decode_loss_list, encode_loss_list, msg_next, seq_add, seq_diff,
)

__all__ = ["SrtConnection", "ConnectionParams", "Receiver", "Sender", "Delivered", "Closed",
           "SYN_INTERVAL", "MIN_NAK_INTERVAL", "KEEPALIVE_INTERVAL"]

SYN_INTERVAL = 10_000  # µs: ACK period
MIN_NAK_INTERVAL = 20_000  # µs: shortest periodic NAK report period (live mode)
KEEPALIVE_INTERVAL = 1_000_000  # µs
SEND_DROP_MIN = 1_000_000  # µs: libsrt's SRT_TLPKTDROP_MINTHRESHOLD_MS
DRIFT_SPAN = 1000  # drift samples (ACKACKs: 10 s at one ACK each 10 ms) averaged ...
DRIFT_MAX = 5000  # µs: ... and a mean drift beyond this moves the TSBPD time base
ACK_HISTORY = 1024
MAX_NAK_WORDS = 300  # loss list words in one NAK (fits any MSS >= 1300)
INITIAL_RTT = 100_000
_TS_WRAP = 1 << 32
_DATA_HEADER = struct.Struct(">IIII")


@dataclass(frozen=True)
class Delivered:
    """A message released by TSBPD (or in order, with TSBPD off)."""

    payload: bytes


@dataclass(frozen=True)
class Closed:
    reason: str


@dataclass
class ConnectionParams:
    """What the handshake agreed."""

    local_id: int
    peer_id: int
    rcv_isn: int  # the peer's initial sequence number
    snd_isn: int  # ours
    start_us: int  # our time at our timestamp zero
    peer_start_us: int  # our time at the peer's timestamp zero
    recv_latency_us: int = 120_000
    send_latency_us: int = 120_000
    tsbpd: bool = True
    tlpktdrop: bool = True
    mss: int = 1500
    peer_idle_us: int = 10_000_000
    buffer_packets: int = 8192
    stream_id: str = ""
    peer_addr: object = None
    crypto: object = None  # a .crypto.Crypto when the stream is encrypted
    max_bw: int = 0  # bytes/s our data packets may leave at; 0: not paced
    max_bw_relative: bool = False  # paced at the measured input rate + 25% (libsrt's maxbw 0)
    extra: dict = field(default_factory=dict)


class _Rtt:
    __slots__ = ("rtt", "var", "samples")

    def __init__(self) -> None:
        self.rtt = INITIAL_RTT
        self.var = INITIAL_RTT // 2
        self.samples = 0

    def sample(self, value: int) -> None:
        value = max(0, min(value, 60_000_000))
        if not self.samples:
            self.rtt, self.var = value, value // 2
        else:
            self.var = (3 * self.var + abs(self.rtt - value)) // 4
            self.rtt = (7 * self.rtt + value) // 8
        self.samples += 1


class Receiver:
    """The receiving half (see the module docstring)."""

    def __init__(self, isn: int, latency_us: int, peer_start_us: int, tsbpd: bool = True, tlpktdrop: bool = True,
                 buffer_packets: int = 8192) -> None:
        self.next = isn  # next sequence number to release
        self.last = seq_add(isn, -1)  # highest sequence number received
        self.latency = latency_us
        self.peer_start = peer_start_us
        self.tsbpd = tsbpd
        self.tlpktdrop = tlpktdrop
        self.capacity = buffer_packets
        self.buf: dict[int, tuple] = {}  # seq -> (release time, payload)
        self.loss: dict[int, int] = {}  # missing seq -> when last NAKed (ascending insertion)
        self._ts_last = None
        self._ts_base = 0  # unwrapped value of _ts_last
        self._first_rtt = None
        self._drift_sum = self._drift_count = 0
        self.drift_corrections = 0  # times the time base moved
        self.drift_us = 0  # by this much in all
        # counters
        self.received = 0
        self.bytes = 0
        self.lost = 0  # sequence numbers found missing
        self.recovered = 0  # ... that arrived later
        self.dropped = 0  # ... given up (too late or DROPREQ)
        self.duplicates = 0
        self.too_late = 0  # arrived behind the release point
        self.overflow = 0  # arrived too far ahead
        self.delivered = 0

    # --- time ---

    def _unwrap(self, ts: int) -> int:
        if self._ts_last is None:
            self._ts_last, self._ts_base = ts, ts
            return ts
        delta = (ts - self._ts_last) & 0xFFFFFFFF
        if delta >= 1 << 31:
            delta -= _TS_WRAP
        value = self._ts_base + delta
        if delta > 0:
            self._ts_last, self._ts_base = ts, value
        return value

    def drift_sample(self, ts: int, now: int, rtt: int) -> bool:
        """One clock drift sample: a control packet the peer stamped ``ts`` (an ACKACK) came
        at ``now``.  Over :data:`DRIFT_SPAN` samples the mean of ``now - (peer_start + ts)``,
        less half the change of the RTT since the first sample (the path's own delay), tells
        how far the peer's clock has drifted from ours; beyond :data:`DRIFT_MAX` the time base
        moves by the mean, so packets keep being released ``latency`` after they were sent.
        True when it moved."""
        if self._ts_last is None or not self.tsbpd:
            return False
        delta = (ts - self._ts_last) & 0xFFFFFFFF
        if delta >= 1 << 31:
            delta -= _TS_WRAP
        if self._first_rtt is None:
            self._first_rtt = rtt
        self._drift_sum += now - (self.peer_start + self._ts_base + delta) - (rtt - self._first_rtt) // 2
        self._drift_count += 1
        if self._drift_count < DRIFT_SPAN:
            return False
        mean = self._drift_sum // self._drift_count
        self._drift_sum = self._drift_count = 0
        if abs(mean) <= DRIFT_MAX:
            return False
        self.peer_start += mean
        self.drift_corrections += 1
        self.drift_us += mean
        return True

    def release_time(self, ts_unwrapped: int) -> int:
        return self.peer_start + ts_unwrapped + self.latency

    # --- input ---

    def on_data(self, pkt: DataPacket, payload: bytes, now: int) -> list:
        """Store one data packet; returns the ``(first, last)`` ranges that just went missing."""
        seq = pkt.seq
        ahead = seq_diff(seq, self.next)
        if ahead < 0:
            self.too_late += 1
            return []
        if ahead >= self.capacity:
            self.overflow += 1
            return []
        new_losses = []
        gap = seq_diff(seq, self.last)
        if gap > 0:
            if gap > 1:
                first = seq_add(self.last, 1)
                last = seq_add(seq, -1)
                count = gap - 1
                self.lost += count
                loss = self.loss
                s = first
                for _ in range(count):
                    loss[s] = now
                    s = seq_add(s, 1)
                new_losses.append((first, last))
            self.last = seq
        else:
            if seq in self.buf:
                self.duplicates += 1
                return []
            if self.loss.pop(seq, None) is not None:
                self.recovered += 1
            else:
                self.duplicates += 1
                return []
        self.received += 1
        self.bytes += len(payload)
        self.buf[seq] = (self.release_time(self._unwrap(pkt.timestamp)), payload)
        return new_losses

    def drop_range(self, first: int, last: int) -> None:
        """The sender gave up ``first..last`` (DROPREQ): stop asking; skip them at the head."""
        span = seq_diff(last, first)
        if span < 0 or span >= self.capacity:
            return
        s = first
        for _ in range(span + 1):
            if self.loss.pop(s, None) is not None:
                self.dropped += 1
            s = seq_add(s, 1)
        while seq_diff(self.next, first) >= 0 and seq_diff(self.next, last) <= 0 and self.next not in self.buf \
                and seq_diff(self.next, self.last) <= 0:
            self.next = seq_add(self.next, 1)

    # --- output ---

    def release(self, now: int) -> list:
        """Payloads due now, in order."""
        out = []
        buf = self.buf
        while True:
            item = buf.get(self.next)
            if item is not None:
                if self.tsbpd and item[0] > now:
                    break
                del buf[self.next]
                out.append(item[1])
                self.next = seq_add(self.next, 1)
                continue
            if not buf or not self.tlpktdrop:
                break
            # A hole at the head: give it up once the packet after it is due.
            s = self.next
            for _ in range(seq_diff(self.last, self.next) + 1):
                if s in buf:
                    break
                s = seq_add(s, 1)
            else:
                break
            if buf[s][0] > now:
                break
            skipped = seq_diff(s, self.next)
            self.dropped += skipped
            h = self.next
            for _ in range(skipped):
                self.loss.pop(h, None)
                h = seq_add(h, 1)
            self.next = s
        self.delivered += len(out)
        return out

    @property
    def ack_seq(self) -> int:
        """The sequence number up to which (exclusive) everything arrived or was given up."""
        for first in self.loss:
            return first
        return seq_add(self.last, 1)

    def nak_ranges(self, now: int, interval: int) -> list:
        """Losses not NAKed for ``interval`` µs, as ranges (marked NAKed now), bounded."""
        ranges = []
        words = 0
        start = prev = None
        loss = self.loss
        for s, when in loss.items():
            if now - when < interval:
                continue
            if words >= MAX_NAK_WORDS:
                break
            loss[s] = now
            if start is not None and seq_diff(s, prev) == 1:
                prev = s
                continue
            if start is not None:
                ranges.append((start, prev))
                words += 1 if start == prev else 2
            start = prev = s
        if start is not None:
            ranges.append((start, prev))
        return ranges

    @property
    def available(self) -> int:
        return max(2, self.capacity - len(self.buf))

    @property
    def timespan_ms(self) -> int:
        return self.latency // 1000


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


class SrtConnection:
    """One connected SRT socket (see the module docstring)."""

    def __init__(self, params: ConnectionParams, now: int, handshake_response: bytes = b"") -> None:
        self.params = params
        self.local_id = params.local_id
        self.peer_id = params.peer_id
        self.start = params.start_us
        self.crypto = params.crypto
        self.receiver = Receiver(params.rcv_isn, params.recv_latency_us, params.peer_start_us, params.tsbpd,
                                 params.tlpktdrop, params.buffer_packets)
        self.sender = Sender(params.snd_isn, params.start_us, params.send_latency_us, params.peer_id,
                             params.buffer_packets, crypto=self.crypto)
        self.handshake_response = handshake_response
        self.rtt = _Rtt()
        self.closed = False
        self.close_reason = ""
        self._out: list = []
        self._events: list = []
        self._last_recv = now
        self._last_sent = now
        self._last_ack = now
        self._last_ack_seq = None
        self._ackacked_seq = None
        self._ack_no = 0
        self._acks: OrderedDict[int, tuple] = OrderedDict()  # ack number -> (seq, time)
        self._last_nak = now
        self._rate_window = now
        self._rate_count = 0
        self._rate_bytes = 0
        self.rate_pkts = 0
        self.rate_bytes = 0
        self.recv_bytes = 0  # datagram bytes in
        self.sent_bytes = 0  # datagram bytes out
        self.bad_datagrams = 0
        self.undecryptable = 0
        self.naks_sent = 0
        self.naks_received = 0
        self.acks_sent = 0
        self.max_bw = params.max_bw
        self._burst = max(params.max_bw // 50, 2 * params.mss)  # 20 ms of the rate, at least two packets
        self._tokens = self._burst
        self._refilled = now
        self._paced: deque = deque()  # (data packet, when queued) waiting for the rate
        self.paced = 0  # data packets that had to wait
        self.pace_dropped = 0  # ... and were given up before they could leave
        self.relative = params.max_bw_relative
        self._input_mark = 0  # data bytes given to send() when the rate window began
        if not self.max_bw and not self.relative:
            self._emit_data = self._emit  # not paced: no check per packet

    # --- output ---

    def datagrams_to_send(self) -> list:
        out, self._out = self._out, []
        return out

    def events(self) -> list:
        out, self._events = self._events, []
        return out

    def _emit(self, data: bytes, now: int) -> None:
        self._out.append(data)
        self.sent_bytes += len(data)
        self._last_sent = now

    def _emit_data(self, data: bytes, now: int) -> None:
        """A data packet, within ``max_bw`` when set."""
        if not self.max_bw:
            self._emit(data, now)
            return
        self._refill(now)
        if not self._paced and self._tokens >= len(data):
            self._tokens -= len(data)
            self._emit(data, now)
        else:
            self.paced += 1
            self._paced.append((data, now))

    def _set_rate(self, rate: int) -> None:
        self.max_bw = rate
        self._burst = max(rate // 50, 2 * self.params.mss)

    def _refill(self, now: int) -> None:
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self.max_bw // 1_000_000)
        self._refilled = now

    def _drain_paced(self, now: int) -> None:
        self._refill(now)
        paced, limit = self._paced, now - self.sender.drop_after
        while paced:
            data, queued = paced[0]
            if queued < limit:
                paced.popleft()
                self.pace_dropped += 1
                continue
            if self._tokens < len(data):
                break
            paced.popleft()
            self._tokens -= len(data)
            self._emit(data, now)

    def _control(self, kind: int, now: int, info: int = 0, cif: bytes = b"") -> None:
        self._emit(bytes(ControlPacket(kind, info, now - self.start, self.peer_id, cif)), now)

    # --- API ---

    def send(self, payload: bytes, now: int) -> None:
        """Send one message (at most the payload size) to the peer."""
        if not self.closed:
            self._emit_data(self.sender.packet(payload, now), now)

    def close(self, reason: str, now: int) -> None:
        """Close from our side: a SHUTDOWN to the peer, then :class:`Closed`."""
        if self.closed:
            return
        self._control(SHUTDOWN, now, cif=b"\x00\x00\x00\x00")
        self._closed(reason)

    def _closed(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            self._events.append(Closed(reason))

    def datagram_received(self, data: bytes, now: int) -> None:
        """One datagram addressed to this socket; bad ones are counted and dropped."""
        if self.closed:
            return
        self.recv_bytes += len(data)
        try:
            if data[0] & 0x80:
                self._control_in(ControlPacket.parse(data), now)
            else:
                self._data_in(DataPacket.parse(data), now)
        except SrtError:
            self.bad_datagrams += 1
            return
        self._last_recv = now

    def _data_in(self, pkt: DataPacket, now: int) -> None:
        payload = pkt.payload
        if pkt.key:
            if self.crypto is None:
                self.undecryptable += 1
                raise SrtError("an encrypted packet on a clear connection")
            payload = self.crypto.decrypt(pkt.key, pkt.seq, payload)
            if payload is None:
                self.undecryptable += 1
                raise SrtError("no key for an encrypted packet")
        elif self.crypto is not None and self.crypto.required:
            self.undecryptable += 1
            raise SrtError("a clear packet on an encrypted connection")
        self._rate_count += 1
        self._rate_bytes += len(payload)
        receiver = self.receiver
        losses = receiver.on_data(pkt, payload, now)
        if losses:
            self.naks_sent += 1
            self._control(NAK, now, cif=encode_loss_list(losses))
        if not receiver.tsbpd:
            self._deliver(now)  # in order as soon as possible
        # With TSBPD, due packets are released by tick(): every SYN interval, in runs (a relay
        # then sends each player one run in one system call, not one packet per call).

    def _flush_received(self) -> None:
        """The peer left: what arrived in order is delivered now rather than lost."""
        receiver = self.receiver
        while receiver.next in receiver.buf:
            self._events.append(Delivered(receiver.buf.pop(receiver.next)[1]))
            receiver.delivered += 1
            receiver.next = seq_add(receiver.next, 1)

    def _deliver(self, now: int) -> None:
        for payload in self.receiver.release(now):
            self._events.append(Delivered(payload))

    def _control_in(self, pkt: ControlPacket, now: int) -> None:
        kind = pkt.type
        if kind == ACK:
            ack = Ack.parse(pkt.cif)
            self.sender.on_ack(ack.last_seq)
            if not ack.light and pkt.info:
                self._control(ACKACK, now, info=pkt.info, cif=b"\x00\x00\x00\x00")
                if ack.rtt and not self.rtt.samples:
                    self.rtt.rtt, self.rtt.var = ack.rtt, ack.rtt_var
        elif kind == NAK:
            self.naks_received += 1
            again, drops = self.sender.on_nak(decode_loss_list(pkt.cif))
            for data in again:
                self._emit_data(data, now)
            for drop in drops:
                self._control(DROPREQ, now, info=drop.msgno, cif=drop.cif())
        elif kind == ACKACK:
            sent = self._acks.pop(pkt.info, None)
            if sent is not None:
                self.rtt.sample(now - sent[1])
                self._ackacked_seq = sent[0]
                self.receiver.drift_sample(pkt.timestamp, now, self.rtt.rtt)
        elif kind == KEEPALIVE:
            pass
        elif kind == SHUTDOWN:
            self._flush_received()
            self._closed("the peer shut down")
        elif kind == DROPREQ:
            drop = DropRequest.parse(pkt.info, pkt.cif)
            self.receiver.drop_range(drop.first, drop.last)
            self._deliver(now)
        elif kind == USER and pkt.subtype == EXT_KMREQ:
            # The peer refreshed its key: take it and answer with the same message (KMRSP).
            if self.crypto is None:
                raise SrtError("a key refresh on a clear connection")
            self.crypto.update(pkt.cif)
            self._emit(bytes(ControlPacket(USER, 0, now - self.start, self.peer_id, pkt.cif, subtype=EXT_KMRSP)), now)
        elif kind == HANDSHAKE:
            # The peer did not get our conclusion response: send it again.
            if self.handshake_response:
                self._emit(self.repeated_handshake(now), now)
        # CONGESTION, PEERERROR, user-defined: ignored

    def tick(self, now: int) -> None:
        """Timers: TSBPD release, ACK, periodic NAK, sender drop, keepalive, idle timeout."""
        if self.closed:
            return
        if now - self._last_recv > self.params.peer_idle_us:
            self._closed(f"no datagram from the peer for {(now - self._last_recv) // 1000} ms")
            return
        self._deliver(now)
        receiver = self.receiver
        if now - self._rate_window >= 1_000_000:
            span = now - self._rate_window
            self.rate_pkts = self._rate_count * 1_000_000 // span
            self.rate_bytes = self._rate_bytes * 1_000_000 // span
            self._rate_window, self._rate_count, self._rate_bytes = now, 0, 0
            if self.relative:
                sender = self.sender
                data = sender.bytes + 16 * sender.sent
                self._set_rate((data - self._input_mark) * 1_000_000 // span * 5 // 4)
                self._input_mark = data
        if now - self._last_ack >= SYN_INTERVAL and receiver.received:
            seq = receiver.ack_seq
            resend = seq != self._ackacked_seq and now - self._last_ack >= self.rtt.rtt + 4 * self.rtt.var
            if seq != self._last_ack_seq or resend:
                self._send_ack(seq, now)
        rtt = self.rtt
        nak_interval = max(MIN_NAK_INTERVAL, rtt.rtt + 4 * rtt.var)
        if receiver.loss and now - self._last_nak >= MIN_NAK_INTERVAL:
            ranges = receiver.nak_ranges(now, nak_interval)
            if ranges:
                self._last_nak = now
                self.naks_sent += 1
                self._control(NAK, now, cif=encode_loss_list(ranges))
        self.sender.drop_late(now)
        if self._paced:
            self._drain_paced(now)
        if now - self._last_sent >= KEEPALIVE_INTERVAL:
            self._control(KEEPALIVE, now, cif=b"\x00\x00\x00\x00")

    def _send_ack(self, seq: int, now: int) -> None:
        self._ack_no = (self._ack_no % 0x7FFFFFFF) + 1
        self._acks[self._ack_no] = (seq, now)
        if len(self._acks) > ACK_HISTORY:
            self._acks.popitem(last=False)
        rate = self.rate_pkts
        ack = Ack(seq, self.rtt.rtt, self.rtt.var, self.receiver.available, rate, max(rate, 1000), self.rate_bytes)
        self._control(ACK, now, info=self._ack_no, cif=bytes(ack))
        self._last_ack = now
        self._last_ack_seq = seq
        self.acks_sent += 1

    def repeated_handshake(self, now: int) -> bytes:
        """Our conclusion response again, stamped with our clock now: the peer takes its
        TSBPD time base from the response it accepts."""
        data = self.handshake_response
        return data[:8] + ((now - self.start) & 0xFFFFFFFF).to_bytes(4, "big") + data[12:]

    def stats(self) -> dict:
        r, s = self.receiver, self.sender
        return {
            "rtt_ms": self.rtt.rtt / 1000, "recv_packets": r.received, "lost": r.lost, "recovered": r.recovered,
            "dropped": r.dropped, "duplicates": r.duplicates, "too_late": r.too_late, "sent_packets": s.sent,
            "retransmitted": s.retransmitted, "send_dropped": s.dropped, "naks_sent": self.naks_sent,
            "naks_received": self.naks_received, "bad_datagrams": self.bad_datagrams,
            "drift_ms": r.drift_us / 1000,
            **({"paced": self.paced, "pace_dropped": self.pace_dropped} if self.max_bw or self.relative else {}),
        }

    def summary(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.stats().items())

