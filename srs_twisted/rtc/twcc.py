"""Transport-wide congestion control: the receiver side, for a WebRTC publisher.

Sans-I/O (draft-holmer-rmcat-transport-wide-cc-extensions-01).  When the
publisher's offer has the transport-cc header extension (and the vhost has
``rtc { twcc on; }``), each RTP packet it sends carries a 16-bit
transport-wide sequence number.  :class:`TwccRecorder` reads it from the
packet's header, as it arrived (SRTP leaves the header in the clear; SRS reads
it before unprotecting too, so that padding probes and duplicate
retransmissions that SRTP refuses still count as arrived), records the arrival
time, and :meth:`TwccRecorder.feedback` turns what arrived since the last call
into RTCP transport-cc feedback packets (PT 205, FMT 15) for the publisher's
bandwidth estimator.  The publisher session calls it on its tick, every 100 ms,
SRS's interval (its ``timer100ms``).

Sequence numbers are unwrapped (16-bit wrap).  Each feedback starts where the
previous one ended, so packets lost at the start of a window are reported lost;
a packet arriving after its number was reported is dropped (``late``), a
number seen twice once (``duplicates``).  A backward jump of more than
:data:`RESTART` numbers is a sender that restarted its count: the window starts
again.  Memory is bounded: at most ``max_pending`` arrivals wait for the next
feedback (``full`` tells the caller to send it early; beyond, ``overflow``).
"""

from __future__ import annotations

import struct

from ..codec.rtcp import build_transport_cc
from ..codec.rtp import RtpError, SeqUnwrapper, parse_extensions

__all__ = ["TwccRecorder", "transport_sequence", "INTERVAL", "MAX_PENDING", "RESTART"]

INTERVAL = 0.1       # seconds between feedbacks (SRS's 100 ms timer)
MAX_PENDING = 4096   # arrivals held between feedbacks
MAX_LEADING = 1000   # at most this many numbers before the first arrival are reported lost
RESTART = 2048       # a jump back by more than this restarts the window

_EXT_HEADER = struct.Struct(">HH")


def transport_sequence(data, ext_id: int):
    """The transport-wide sequence number that RTP ``data`` carries in header
    extension ``ext_id`` (one-byte or two-byte form), or None when it has none
    or its header is malformed.  Only the header is read: ``data`` may be SRTP."""
    n = len(data)
    if n < 16 or data[0] >> 6 != 2 or not data[0] & 0x10:
        return None
    pos = 12 + 4 * (data[0] & 0x0F)
    if pos + 4 > n:
        return None
    profile, words = _EXT_HEADER.unpack_from(data, pos)
    end = pos + 4 + 4 * words
    if end > n:
        return None
    try:
        items = parse_extensions(profile, memoryview(data)[pos + 4:end])
    except RtpError:
        return None
    for item_id, value in items:
        if item_id == ext_id:
            return int.from_bytes(value, "big") if len(value) == 2 else None
    return None


class TwccRecorder:
    """Arrival times of one publisher's packets and the feedback about them."""

    def __init__(self, ext_id: int, sender_ssrc: int, media_ssrc: int = 0,
                 max_pending: int = MAX_PENDING) -> None:
        self.ext_id = ext_id
        self.sender_ssrc = sender_ssrc
        self.media_ssrc = media_ssrc
        self.max_pending = max_pending
        self.fb_count = 0            # the next feedback packet count (8 bits on the wire)
        self.received = 0            # packets recorded
        self.late = self.duplicates = self.overflow = self.restarts = 0
        self.feedbacks = 0           # feedback packets built
        self._unwrap = SeqUnwrapper()
        self._pending: dict[int, int] = {}   # unwrapped sequence number -> arrival in microseconds
        self._next = None            # the first number the next feedback reports

    @property
    def full(self) -> bool:
        return len(self._pending) >= self.max_pending

    def on_rtp(self, data, arrival: float) -> bool:
        """Record an RTP datagram that arrived at ``arrival`` (seconds); False when it has no number."""
        seq = transport_sequence(data, self.ext_id)
        if seq is None:
            return False
        self.record(seq, arrival)
        return True

    def record(self, seq: int, arrival: float) -> None:
        """Record transport-wide number ``seq`` (16 bits) arriving at ``arrival`` (seconds)."""
        number = self._unwrap.unwrap(seq & 0xFFFF)
        if self._next is not None and number < self._next:
            if number >= self._next - RESTART:
                self.late += 1
                return
            self.restarts += 1       # the sender started counting again
            self._unwrap = SeqUnwrapper()
            number = self._unwrap.unwrap(seq & 0xFFFF)
            self._next = None
            self._pending.clear()
        if number in self._pending:
            self.duplicates += 1
            return
        if len(self._pending) >= self.max_pending:
            self.overflow += 1
            return
        self._pending[number] = int(arrival * 1_000_000)
        self.received += 1

    def drop(self) -> None:
        """Forget what arrived since the last feedback (none is sent for it)."""
        self._pending.clear()

    def feedback(self) -> list:
        """Transport-cc feedback (:class:`~..codec.rtcp.TransportCC`) for what arrived since the
        last call, in order; [] when nothing did."""
        if not self._pending:
            return []
        first = min(self._pending)
        start = self._next if self._next is not None and first - self._next <= MAX_LEADING else None
        packets = build_transport_cc(self.sender_ssrc, self.media_ssrc, self._pending.items(),
                                     fb_count=self.fb_count, first_seq=start)
        self._next = max(self._pending) + 1
        self._pending.clear()
        self.fb_count = (self.fb_count + len(packets)) & 0xFF
        self.feedbacks += len(packets)
        return packets
