"""MPEG-2 program stream (ISO/IEC 13818-1 PS) demuxer and a small muxer, as GB28181 cameras send it.

:class:`PsDemuxer` is incremental: bytes (RTP payloads concatenated) in,
:class:`PsFrame` access units out.  It reads the pack header (MPEG-2 and
MPEG-1 forms), skips the system header, reads the program stream map (PSM)
for each elementary stream's type, and reassembles PES packets into frames:

* video (stream ids 0xE0-0xEF): H.264 (0x1B), H.265 (0x24); a frame larger
  than one PES (64 KiB) spans several PES packets, the later ones often with
  no PTS, so a video frame ends when a PES with another PTS starts (one frame
  of delay) or at :meth:`PsDemuxer.flush`;
* audio (stream ids 0xC0-0xDF): AAC ADTS (0x0F), G.711 A-law (0x90) and
  mu-law (0x91), one PES per frame.

Before any PSM, video is taken as H.264 and audio as AAC when it starts with an
ADTS sync word (what cameras that never send a PSM carry).  Bad input (start
codes that do not parse, lengths past the limit, PES headers that do not
parse) is counted in :attr:`PsDemuxer.errors` with the latest reason in
``last_error`` and skipped to the next start code; ``feed`` never raises and
holds at most one PES (64 KiB) of unparsed bytes plus ``max_frame`` of a frame.
:meth:`PsDemuxer.discontinuity` drops what is partial after a lost packet.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .mpegts import STREAM_TYPE_AAC, STREAM_TYPE_H264, STREAM_TYPE_H265, decode_timestamp

__all__ = [
    "PsDemuxer", "PsFrame", "PsMuxer", "STREAM_TYPE_G711A", "STREAM_TYPE_G711U", "STREAM_CODECS",
]

STREAM_TYPE_G711A = 0x90
STREAM_TYPE_G711U = 0x91
#: PSM stream_type -> codec name
STREAM_CODECS = {
    STREAM_TYPE_H264: "h264", STREAM_TYPE_H265: "h265", STREAM_TYPE_AAC: "aac",
    STREAM_TYPE_G711A: "pcma", STREAM_TYPE_G711U: "pcmu",
}
VIDEO_CODECS = frozenset(("h264", "h265"))

PACK_START = 0xBA
SYSTEM_HEADER = 0xBB
PSM_ID = 0xBC
END_CODE = 0xB9
_U16 = struct.Struct(">H")
_CLOCK_MASK = (1 << 33) - 1


@dataclass
class PsFrame:
    """One access unit: ``codec`` ("h264", "h265", "aac", "pcma", "pcmu"),
    ``pts``/``dts`` on the 90 kHz clock (33-bit, as sent), ``data`` the
    elementary stream bytes (Annex B for video, ADTS for AAC, samples for G.711)."""

    codec: str
    pts: int
    dts: int
    data: bytes

    @property
    def is_video(self) -> bool:
        return self.codec in VIDEO_CODECS


class PsDemuxer:
    """Incremental program stream demuxer: ``feed(bytes) -> [PsFrame]`` (see the module docstring)."""

    def __init__(self, max_frame: int = 4 * 1024 * 1024) -> None:
        self.max_frame = max_frame
        self.errors = 0
        self.last_error = ""
        self.packs = 0
        self.types: dict = {}  # elementary stream id -> stream_type, from the PSM
        self._buf = bytearray()
        self._video = None  # [stream id, codec, pts, dts, parts, size] of the frame being assembled

    def _error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message

    def feed(self, data) -> list:
        """Parse more bytes; return the frames they completed."""
        out: list = []
        buf = self._buf
        buf += data
        pos = 0
        end = len(buf)
        while True:
            start = buf.find(b"\x00\x00\x01", pos)
            if start < 0:
                keep = max(pos, end - 2)  # a start code may straddle the next feed
                if keep > pos and any(buf[pos:keep]):
                    self._error("%d bytes outside any PS packet skipped" % (keep - pos))
                pos = keep
                break
            if start > pos and any(buf[pos:start]):  # zero stuffing between packets is allowed
                self._error("%d bytes outside any PS packet skipped" % (start - pos))
            pos = start
            if end - pos < 4:
                break
            sid = buf[pos + 3]
            size = self._packet_size(buf, pos, sid, end)
            if size is None:
                break  # wait for more bytes
            if size < 0:
                pos += 3  # not a packet here: look for the next start code
                continue
            self._packet(sid, memoryview(buf)[pos:pos + size], out)
            pos += size
        del buf[:pos]
        return out

    def _packet_size(self, buf, pos: int, sid: int, end: int):
        """Bytes of the packet at ``pos``: None when more are needed, -1 when there is no packet."""
        if sid == PACK_START:
            if end - pos < 5:
                return None
            if buf[pos + 4] & 0xC0 == 0x40:  # MPEG-2 pack header
                if end - pos < 14:
                    return None
                return 14 + (buf[pos + 13] & 0x07)
            if buf[pos + 4] & 0xF0 == 0x20:  # MPEG-1 pack header
                return 12
            self._error("bad pack header marker 0x%02x" % buf[pos + 4])
            return -1
        if sid == END_CODE:
            return 4
        if sid < END_CODE:
            self._error("unexpected start code 0x%02x" % sid)
            return -1
        if end - pos < 6:
            return None
        length = _U16.unpack_from(buf, pos + 4)[0]
        if end - pos < 6 + length:
            return None
        return 6 + length

    def _packet(self, sid: int, pkt, out: list) -> None:
        if sid == PACK_START:
            self.packs += 1
        elif sid == PSM_ID:
            self._psm(pkt)
        elif 0xE0 <= sid <= 0xEF or 0xC0 <= sid <= 0xDF:
            self._pes(sid, pkt, out)
        # system header, padding, private streams, end code: nothing to take

    def _psm(self, pkt) -> None:
        end = len(pkt) - 4  # CRC_32 (not checked: cameras get it wrong)
        if end < 12:
            self._error("PSM of %d bytes is too short" % len(pkt))
            return
        pos = 10 + _U16.unpack_from(pkt, 8)[0]
        if pos + 2 > end:
            self._error("PSM program_stream_info overruns it")
            return
        map_end = min(end, pos + 2 + _U16.unpack_from(pkt, pos)[0])
        pos += 2
        types = {}
        while pos + 4 <= map_end:
            stream_type, es_id = pkt[pos], pkt[pos + 1]
            types[es_id] = stream_type
            pos += 4 + _U16.unpack_from(pkt, pos + 2)[0]
        if types != self.types and self._video is not None:
            self._video = None
        self.types = types

    def _pes(self, sid: int, pkt, out: list) -> None:
        if len(pkt) < 9 or pkt[6] & 0xC0 != 0x80:
            self._error("bad PES header on stream 0x%02x" % sid)
            return
        flags = pkt[7]
        header_end = 9 + pkt[8]
        if header_end > len(pkt) or (flags & 0x80 and header_end < 14) or (flags & 0x40 and header_end < 19):
            self._error("PES header on stream 0x%02x overruns it" % sid)
            return
        pts = dts = None
        if flags & 0x80:
            pts = dts = decode_timestamp(pkt, 9)
            if flags & 0x40:
                dts = decode_timestamp(pkt, 14)
        payload = pkt[header_end:]
        video = sid >= 0xE0
        stream_type = self.types.get(sid)
        codec = STREAM_CODECS.get(stream_type) if stream_type is not None else None
        if codec is None:
            if stream_type is not None:
                return  # a stream type we do not take (SVAC, G.722...)
            if video:
                codec = "h264"
            elif len(payload) >= 2 and payload[0] == 0xFF and payload[1] & 0xF0 == 0xF0:
                codec = "aac"
            else:
                return
        if not video:
            if pts is None:
                self._error("audio PES without a PTS on stream 0x%02x" % sid)
            elif payload:
                out.append(PsFrame(codec, pts, dts, bytes(payload)))
            return
        current = self._video
        if current is not None and pts is not None and (pts != current[2] or sid != current[0]):
            self._emit_video(out)
            current = None
        if current is None:
            if pts is None:
                self._error("video PES without a PTS and no frame to continue")
                return
            current = self._video = [sid, codec, pts, dts, [], 0]
        current[5] += len(payload)
        if current[4] is None:
            return  # the rest of a frame dropped for its size
        current[4].append(bytes(payload))
        if current[5] > self.max_frame:
            self._error("video frame exceeds %d bytes; dropped" % self.max_frame)
            current[4] = None

    def _emit_video(self, out: list) -> None:
        current, self._video = self._video, None
        if current is not None and current[4]:
            out.append(PsFrame(current[1], current[2], current[3], b"".join(current[4])))

    def flush(self) -> list:
        """End of a frame known from outside (the RTP marker) or of the input: the pending video frame."""
        out: list = []
        self._emit_video(out)
        return out

    def discontinuity(self) -> None:
        """Input was lost: drop the partial packet and frame (the next start code resyncs)."""
        self._buf.clear()
        self._video = None


def _timestamp(marker: int, value: int) -> bytes:
    value &= _CLOCK_MASK
    return bytes((
        (marker << 4) | ((value >> 29) & 0x0E) | 1, (value >> 22) & 0xFF, ((value >> 14) & 0xFE) | 1,
        (value >> 7) & 0xFF, ((value << 1) & 0xFE) | 1))


class PsMuxer:
    """A minimal program stream muxer (what a camera sends): one pack header, a
    system header and PSM before each keyframe, and PES packets of at most
    ``pes_size`` bytes per frame.  ``video``/``audio`` are codec names of
    :data:`STREAM_CODECS` (or None)."""

    def __init__(self, video: str | None = "h264", audio: str | None = "aac", pes_size: int = 65000) -> None:
        types = {codec: t for t, codec in STREAM_CODECS.items()}
        self.video_type = types[video] if video else None
        self.audio_type = types[audio] if audio else None
        self.pes_size = pes_size
        self.psm_version = 0

    def pack_header(self, scr: int) -> bytes:
        scr &= _CLOCK_MASK
        b = bytes((
            0x44 | ((scr >> 27) & 0x38) | ((scr >> 28) & 0x03), (scr >> 20) & 0xFF,
            ((scr >> 12) & 0xF8) | 0x04 | ((scr >> 13) & 0x03), (scr >> 5) & 0xFF, ((scr << 3) & 0xF8) | 0x04,
            0x01))  # SCR extension 0, marker
        mux_rate = 6106  # 50-byte units per second
        rate = bytes((mux_rate >> 14, (mux_rate >> 6) & 0xFF, ((mux_rate << 2) & 0xFC) | 3, 0xF8))  # no stuffing
        return b"\x00\x00\x01\xba" + b + rate

    def system_header(self) -> bytes:
        streams = b""
        if self.video_type:
            streams += b"\xe0\xe0\x80"
        if self.audio_type:
            streams += b"\xc0\xc0\x20"
        body = b"\x80\x0b\xf5\x04\xe1\xff" + streams
        return b"\x00\x00\x01\xbb" + _U16.pack(len(body)) + body

    def psm(self) -> bytes:
        entries = b""
        if self.video_type:
            entries += bytes((self.video_type, 0xE0, 0, 0))
        if self.audio_type:
            entries += bytes((self.audio_type, 0xC0, 0, 0))
        body = bytes((0x80 | (self.psm_version & 0x1F), 0xFF)) + b"\x00\x00" + _U16.pack(len(entries)) + entries
        body += b"\x00\x00\x00\x00"  # CRC_32 (cameras send all kinds; the demuxer does not check it)
        return b"\x00\x00\x01\xbc" + _U16.pack(len(body)) + body

    def pes(self, sid: int, data: bytes, pts: int | None, dts: int | None = None) -> bytes:
        """PES packets carrying ``data``; only the first one has the timestamps."""
        out = []
        first = True
        pos = 0
        while first or pos < len(data):
            if first and pts is not None:
                if dts is not None and dts != pts:
                    header = b"\xc0\x0a" + _timestamp(3, pts) + _timestamp(1, dts)
                else:
                    header = b"\x80\x05" + _timestamp(2, pts)
            else:
                header = b"\x00\x00"
            chunk = data[pos:pos + self.pes_size - 7 - len(header)]
            pos += len(chunk)
            length = _U16.pack(1 + len(header) + len(chunk))
            out.append(b"\x00\x00\x01" + bytes((sid,)) + length + b"\x80" + header + chunk)
            first = False
        return b"".join(out)

    def video(self, data: bytes, pts: int, dts: int | None = None, keyframe: bool = False) -> bytes:
        head = self.pack_header(dts if dts is not None else pts)
        if keyframe:
            head += self.system_header() + self.psm()
        return head + self.pes(0xE0, data, pts, dts)

    def audio(self, data: bytes, pts: int) -> bytes:
        return self.pack_header(pts) + self.pes(0xC0, data, pts)
