"""SRT to SRT as a relay: an SRT publisher's MPEG-TS messages go to SRT players as they come.

This is what SRS does (its ``SrsSrtSource`` hands each received message to every SRT
consumer): a player of an SRT publish gets the publisher's own bytes once the server's
receive TSBPD released them, with no demuxing and remuxing on the way, so the server
adds its receive latency and nothing else (a remuxed video frame could leave only when
the next one began: a PES of unknown length ends at the next PES start).

:class:`TsRelay` is sans-I/O: ``feed(messages)`` returns nothing and calls each player's
``send(messages)``.  Unlike SRS, which has no GOP cache for SRT, a joining player gets a
start: the latest PAT and PMT, then the TS packets since the latest video random access
point (a video PES start with the adaptation field's random access indicator, or whose
first bytes hold an H.264 SPS/IDR or H.265 VPS/IRAP NAL unit), at most
:data:`START_CACHE_BYTES` (beyond that the cache is dropped and players join live).
"""

from __future__ import annotations

__all__ = ["TsRelay", "START_CACHE_BYTES", "is_video_random_access"]

TS = 188
START_CACHE_BYTES = 16 * 1024 * 1024
_VIDEO_TYPES = {0x1B: "h264", 0x24: "h265"}
_H264_START = frozenset((5, 7))  # IDR slice, SPS
_H265_START = frozenset(range(16, 22)) | {32, 33}  # IRAP slices, VPS, SPS


def _payload_offset(pkt) -> int:
    """Where a TS packet's payload begins (188 when it has none)."""
    afc = (pkt[3] >> 4) & 3
    if afc == 1:
        return 4
    if afc == 3:
        return min(TS, 5 + pkt[4])
    return TS


def is_video_random_access(pkt, codec: str) -> bool:
    """Whether a video TS packet that starts a PES starts a keyframe."""
    if (pkt[3] & 0x20) and pkt[4] and (pkt[5] & 0x40):
        return True  # random_access_indicator
    start = _payload_offset(pkt)
    es = bytes(pkt[start:])
    if len(es) < 9 or es[:3] != b"\x00\x00\x01":
        return False
    es = es[9 + es[8]:]  # past the PES header
    types = _H264_START if codec == "h264" else _H265_START
    i = es.find(b"\x00\x00\x01")
    while 0 <= i < len(es) - 3:
        b = es[i + 3]
        nal = b & 0x1F if codec == "h264" else (b >> 1) & 0x3F
        if nal in types:
            return True
        i = es.find(b"\x00\x00\x01", i + 3)
    return False


class TsRelay:
    """The SRT players of one SRT publish (see the module docstring)."""

    def __init__(self, start_cache: bool = True, max_cache: int = START_CACHE_BYTES) -> None:
        self.players: dict = {}  # key -> send(list of messages)
        self.start_cache = start_cache
        self.max_cache = max_cache
        self._pat = b""
        self._pmt: dict[int, bytes] = {}  # PMT PID -> its latest (one-packet) section
        self._video: dict[int, str] = {}  # video PID -> codec
        self._cache: list = []
        self._cache_bytes = 0
        self._caching = False
        self.messages = 0
        self.bytes = 0

    # --- players ---

    def add(self, key, send) -> None:
        """A player joins: it gets the start (PSI and the cache), then every message."""
        self.players[key] = send
        start = self.start()
        if start:
            send(start)

    def remove(self, key) -> None:
        self.players.pop(key, None)

    def start(self) -> list:
        """What a joining player gets first: PAT, PMT and the packets since the keyframe."""
        if not self._cache:
            return []
        psi = self._pat + b"".join(self._pmt.values())
        out = [psi[i:i + 7 * TS] for i in range(0, len(psi), 7 * TS)]
        return out + self._cache

    # --- the publisher ---

    def feed(self, messages: list) -> None:
        for m in messages:
            self.messages += 1
            self.bytes += len(m)
            if self.start_cache:
                self._inspect(m)
        for send in list(self.players.values()):
            send(messages)

    def _inspect(self, m: bytes) -> None:
        """Note PSI and keyframe starts in one message; add it to the start cache."""
        cut = None
        for off in range(0, len(m) - TS + 1, TS):
            if m[off] != 0x47 or not m[off + 1] & 0x40:
                continue  # not a PES/section start
            pid = ((m[off + 1] & 0x1F) << 8) | m[off + 2]
            pkt = m[off:off + TS]
            if pid == 0:
                self._on_pat(pkt)
            elif pid in self._pmt:
                self._on_pmt(pid, pkt)
            elif pid in self._video and is_video_random_access(pkt, self._video[pid]):
                cut = off
        if cut is not None:
            self._cache, self._cache_bytes, self._caching = [m[cut:]], len(m) - cut, True
            return
        if self._caching:
            self._cache.append(m)
            self._cache_bytes += len(m)
            if self._cache_bytes > self.max_cache:
                self._cache, self._cache_bytes, self._caching = [], 0, False

    @staticmethod
    def _section(pkt):
        start = _payload_offset(pkt)
        if start >= TS:
            return None
        pointer = pkt[start]
        sec = pkt[start + 1 + pointer:]
        if len(sec) < 3:
            return None
        length = ((sec[1] & 0x0F) << 8) | sec[2]
        return sec[:3 + length] if 3 + length <= len(sec) else None  # one-packet sections only

    def _on_pat(self, pkt) -> None:
        sec = self._section(pkt)
        if sec is None or sec[0] != 0 or len(sec) < 12:
            return
        pmts = {}
        for i in range(8, len(sec) - 4 - 3, 4):
            program = (sec[i] << 8) | sec[i + 1]
            if program:
                pid = ((sec[i + 2] & 0x1F) << 8) | sec[i + 3]
                pmts[pid] = self._pmt.get(pid, b"")
        if pmts:
            self._pat = bytes(pkt)
            self._pmt = dict(list(pmts.items())[:8])

    def _on_pmt(self, pid: int, pkt) -> None:
        sec = self._section(pkt)
        if sec is None or sec[0] != 2 or len(sec) < 16:
            return
        info = ((sec[10] & 0x0F) << 8) | sec[11]
        i = 12 + info
        video = {}
        while i + 5 <= len(sec) - 4:
            kind, es_pid = sec[i], ((sec[i + 1] & 0x1F) << 8) | sec[i + 2]
            if kind in _VIDEO_TYPES:
                video[es_pid] = _VIDEO_TYPES[kind]
            i += 5 + (((sec[i + 3] & 0x0F) << 8) | sec[i + 4])
        self._pmt[pid] = bytes(pkt)
        self._video = video
