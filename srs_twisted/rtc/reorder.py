"""A publisher's RTP put back in order, with the holes to NACK (sans-I/O).

:class:`ReorderBuffer` hands packets on in sequence order.  A packet after a
hole is held until the hole is filled (a retransmission answering our NACK,
or a late packet) or for at most ``wait`` seconds, or while fewer than
``max_held`` packets wait; then the hole is given up and the depayloader sees
the loss.  :meth:`ReorderBuffer.nacks` lists the missing sequence numbers to
ask for: each once when first missed and again every ``renack`` seconds,
at most ``tries`` times, at most :data:`MAX_MISSING` at once.
"""

from __future__ import annotations

from ..codec.rtp import seq_add, seq_diff

__all__ = ["ReorderBuffer", "MAX_MISSING"]

MAX_MISSING = 128  # holes remembered at once (a bigger jump is a restart, not a loss)


class ReorderBuffer:
    def __init__(self, wait: float = 0.3, max_held: int = 256, renack: float = 0.09, tries: int = 3) -> None:
        self.wait = wait
        self.max_held = max_held
        self.renack = renack
        self.tries = tries
        self.next = None  # the sequence number to hand on next
        self.held: dict[int, tuple] = {}  # seq -> (packet, arrival)
        self.missing: dict[int, list] = {}  # seq -> [last nack time or None, tries]
        self.late = 0  # packets behind what was already handed on (duplicates, too late)
        self.recovered = 0  # holes filled after they were missed
        self.given_up = 0  # holes skipped

    def push(self, packet, now: float) -> list:
        seq = packet.sequence_number
        if self.next is None:
            self.next = seq
        ahead = seq_diff(seq, self.next)
        if ahead < 0 or seq in self.held:
            self.late += 1
            return []
        if ahead > MAX_MISSING + self.max_held:  # a jump: the sender restarted, follow it
            self._skip_all()
            self.next = seq
        if self.missing.pop(seq, None) is not None:
            self.recovered += 1
        self.held[seq] = (packet, now)
        if seq != self.next:
            for i in range(seq_diff(seq, self.next)):
                hole = seq_add(self.next, i)
                if hole not in self.held and hole not in self.missing and len(self.missing) < MAX_MISSING:
                    self.missing[hole] = [None, 0]
        return self.release(now)

    def release(self, now: float) -> list:
        """What can go on now (also call it on a timer: held packets time out)."""
        out = []
        while self.held:
            entry = self.held.pop(self.next, None)
            if entry is not None:
                out.append(entry[0])
                self.next = seq_add(self.next, 1)
                continue
            oldest = min(arrival for _, arrival in self.held.values())
            if now - oldest < self.wait and len(self.held) < self.max_held:
                break
            first = min(self.held, key=lambda s: seq_diff(s, self.next))  # give up the hole
            for i in range(seq_diff(first, self.next)):
                if self.missing.pop(seq_add(self.next, i), None) is not None:
                    self.given_up += 1
            self.next = first
        return out

    def nacks(self, now: float) -> list:
        """The missing sequence numbers to NACK now."""
        out = []
        for seq, state in self.missing.items():
            last, tries = state
            if tries < self.tries and (last is None or now - last >= self.renack):
                state[0], state[1] = now, tries + 1
                out.append(seq)
        return out

    def _skip_all(self) -> None:
        self.given_up += len(self.missing)
        self.missing.clear()
        self.held.clear()
