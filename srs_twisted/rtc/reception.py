"""Reception statistics of a publisher's streams and the RTCP receiver reports from them (RFC 3550 6.4.2, A.3).

Sans-I/O.  :meth:`Reception.on_rtp` per received packet (its arrival time and the
track's clock rate), :meth:`Reception.on_sender_report` per SR from the publisher,
:meth:`Reception.report` builds one :class:`ReceiverReport` with a block per SSRC
heard (fraction and cumulative lost since the last report, extended highest
sequence number, interarrival jitter, LSR/DLSR of the last SR).
"""

from __future__ import annotations

from ..codec.rtcp import ReceiverReport, ReportBlock, ntp_compact
from ..codec.rtp import SeqUnwrapper

__all__ = ["Reception", "MAX_SOURCES"]

MAX_SOURCES = 8  # SSRCs reported on (a publisher has two, three with RTX)


class _Source:
    __slots__ = ("unwrap", "base", "received", "expected_prior", "received_prior", "jitter", "transit",
                 "lsr", "sr_arrival")

    def __init__(self, seq: int) -> None:
        self.unwrap = SeqUnwrapper()
        self.base = self.unwrap.unwrap(seq)
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.jitter = 0.0
        self.transit = None
        self.lsr = 0
        self.sr_arrival = None


class Reception:
    def __init__(self, ssrc: int) -> None:
        self.ssrc = ssrc  # ours, the reporter's
        self.sources: dict[int, _Source] = {}

    def on_rtp(self, packet, arrival: float, clock_rate: int) -> None:
        source = self.sources.get(packet.ssrc)
        if source is None:
            if len(self.sources) >= MAX_SOURCES:
                return
            source = self.sources[packet.ssrc] = _Source(packet.sequence_number)
        else:
            source.unwrap.unwrap(packet.sequence_number)
        source.received += 1
        transit = arrival * clock_rate - packet.timestamp
        if source.transit is not None:
            d = abs(transit - source.transit)
            if d < clock_rate * 10:  # a timestamp jump is not jitter
                source.jitter += (d - source.jitter) / 16
        source.transit = transit

    def on_sender_report(self, report, arrival: float) -> None:
        source = self.sources.get(report.ssrc)
        if source is not None:
            source.lsr = ntp_compact(report.ntp_timestamp)
            source.sr_arrival = arrival

    def report(self, now: float) -> ReceiverReport | None:
        """A receiver report of every source heard, or None before any."""
        blocks = []
        for ssrc, s in self.sources.items():
            highest = s.unwrap.last
            expected = highest - s.base + 1
            lost = expected - s.received
            expected_interval = expected - s.expected_prior
            received_interval = s.received - s.received_prior
            s.expected_prior, s.received_prior = expected, s.received
            lost_interval = expected_interval - received_interval
            fraction = 0 if expected_interval <= 0 or lost_interval <= 0 else (lost_interval << 8) // expected_interval
            dlsr = int((now - s.sr_arrival) * 65536) & 0xFFFFFFFF if s.sr_arrival is not None else 0
            blocks.append(ReportBlock(ssrc, min(fraction, 255), lost, highest & 0xFFFFFFFF, int(s.jitter),
                                      s.lsr, dlsr))
        return ReceiverReport(self.ssrc, blocks) if blocks else None
