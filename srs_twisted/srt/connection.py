"""One SRT connection in live mode, sans-I/O: datagrams and time in, datagrams and events out.

Time is an integer count of microseconds passed by the caller (any monotonic origin).
:class:`SrtConnection` is made by the handshake (:mod:`.handshake`) once both sides agreed;
feed it with :meth:`~SrtConnection.datagram_received`, call :meth:`~SrtConnection.tick`
every few milliseconds (10 ms is SRT's SYN interval), and take what it produced with
:meth:`~SrtConnection.datagrams_to_send` and :meth:`~SrtConnection.events`.

Receiving (:class:`~.receiver.Receiver`):

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

Sending (:class:`~.sender.Sender`), for players: each :meth:`~SrtConnection.send` is one message
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

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from .packet import (
    ACK, ACKACK, DROPREQ, EXT_KMREQ, EXT_KMRSP, HANDSHAKE, KEEPALIVE, NAK, SHUTDOWN, USER, Ack, ControlPacket, DataPacket,
    DropRequest, SrtError, decode_loss_list, encode_loss_list, seq_add,
)
from .receiver import Receiver
from .sender import SYN_INTERVAL, Sender

__all__ = ["SrtConnection", "ConnectionParams", "Receiver", "Sender", "Delivered", "Closed",
           "SYN_INTERVAL", "MIN_NAK_INTERVAL", "KEEPALIVE_INTERVAL"]

MIN_NAK_INTERVAL = 20_000  # µs: shortest periodic NAK report period (live mode)
KEEPALIVE_INTERVAL = 1_000_000  # µs
ACK_HISTORY = 1024
INITIAL_RTT = 100_000


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

