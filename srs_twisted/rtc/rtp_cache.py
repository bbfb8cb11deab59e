"""The packets a WebRTC player was sent, kept to answer its NACKs.

:class:`RtpCache` is a fixed ring of the last ``size`` packets of one
track, indexed by sequence number modulo the size: storing is one list
assignment, a lookup checks that the slot still holds that sequence number
(a newer packet may have taken it).  Entries are ``(header, payload)``
pairs: the player's own header bytes and the payload shared by every
player of the stream, so the memory a cache holds per player is the
headers only.
"""

from __future__ import annotations

__all__ = ["RtpCache", "DEFAULT_SIZE"]

DEFAULT_SIZE = 512


class RtpCache:
    """The last ``size`` packets of one track (plain RTP, before SRTP)."""

    __slots__ = ("size", "_seqs", "_packets")

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError("an RTP cache holds at least one packet, not %d" % size)
        self.size = size
        self._seqs = [-1] * size
        self._packets: list = [None] * size

    def put(self, seq: int, header: bytes, payload) -> None:
        slot = seq % self.size
        self._seqs[slot] = seq
        self._packets[slot] = (header, payload)

    def get(self, seq: int):
        """``(header, payload)`` of packet ``seq``, or None when it is gone."""
        slot = seq % self.size
        if self._seqs[slot] != seq:
            return None
        return self._packets[slot]

    def clear(self) -> None:
        self._seqs = [-1] * self.size
        self._packets = [None] * self.size
