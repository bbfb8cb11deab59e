"""The receiving half of an SRT connection in live mode (sans-I/O; see :mod:`.connection`).

:class:`Receiver` keeps the packets ahead of the release point (at most ``buffer_packets``),
the losses (NAKed at once, then again periodically), and releases packets by TSBPD at
``peer_start + timestamp + latency`` (with ``tlpktdrop``: holes given up when the packet
after them is due).  ``peer_start``, our time at the peer's clock zero, comes from the
handshake and then follows the peer's clock (:meth:`Receiver.drift_sample`).
"""

from __future__ import annotations

from .packet import DataPacket, seq_add, seq_diff

__all__ = ["Receiver", "DRIFT_SPAN", "DRIFT_MAX", "MAX_NAK_WORDS"]

DRIFT_SPAN = 1000  # drift samples (ACKACKs: 10 s at one ACK each 10 ms) averaged ...
DRIFT_MAX = 5000  # µs: ... and a mean drift beyond this moves the TSBPD time base
MAX_NAK_WORDS = 300  # loss list words in one NAK (fits any MSS >= 1300)
_TS_WRAP = 1 << 32


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
