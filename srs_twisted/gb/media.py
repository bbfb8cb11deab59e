"""GB28181 media without I/O: RTP over TCP (RFC 4571) framing, UDP reordering, MPEG-PS to live packets.

* :class:`Rfc4571Framer` cuts a TCP byte stream into RTP packets by their
  two-byte length; a length under an RTP header or over ``max_packet`` is a
  :class:`MediaError` (the connection is closed: the stream cannot resync).
* :class:`ReorderBuffer` puts UDP packets back in sequence order, holding at
  most ``size`` of them for at most ``max_wait`` seconds: then the oldest gap is
  given up (the frame it held is lost, never the stream).
* :class:`PsIngest` takes the RTP packets of one SSRC in order, notices lost
  ones (the PS demuxer drops what is partial), demuxes the PS and returns
  :class:`~srs_twisted.live.packet.MediaPacket` s: H.264/H.265 and AAC as they
  are, G.711 A-law/mu-law decoded and encoded to AAC-LC 48 kHz stereo with
  PyAV so RTMP/HLS players get audio.  The RTP marker ends a video frame.
"""

from __future__ import annotations

from ..codec.mpegts_demux import TsDemuxer
from ..codec.ps import PsDemuxer
from ..codec.rtp import RtpError, RtpPacket, seq_diff
from ..live.packet import AUDIO, MediaPacket

__all__ = ["MediaError", "Rfc4571Framer", "ReorderBuffer", "PsIngest", "MAX_PACKET"]

MAX_PACKET = 16 * 1024  # bytes of one RTP packet over TCP (cameras send ~1400)
_CLOCK = 1 << 33


class MediaError(ValueError):
    """Media bytes that end the connection (a framing error)."""


class Rfc4571Framer:
    """``feed(bytes) -> [bytes]``: RTP packets of an RFC 4571 stream."""

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self.max_packet = max_packet
        self._buf = bytearray()

    def feed(self, data) -> list:
        buf = self._buf
        buf += data
        out = []
        pos = 0
        end = len(buf)
        while end - pos >= 2:
            size = (buf[pos] << 8) | buf[pos + 1]
            if size < 12 or size > self.max_packet:
                raise MediaError("RFC 4571 length %d out of range (12..%d)" % (size, self.max_packet))
            if end - pos - 2 < size:
                break
            out.append(bytes(buf[pos + 2:pos + 2 + size]))
            pos += 2 + size
        del buf[:pos]
        return out


class ReorderBuffer:
    """UDP packets (:class:`RtpPacket`) back in order: ``push(pkt, now) -> [pkt]`` ready to use.
    A gap is given up when ``size`` packets wait behind it, or (:meth:`release`) when the
    oldest has waited ``max_wait`` seconds."""

    def __init__(self, size: int = 64, max_wait: float = 0.2) -> None:
        self.size = size
        self.max_wait = max_wait
        self.next = None  # the sequence number we wait for
        self._held: dict = {}
        self._since = 0.0  # when the current gap began to hold packets
        self.late = 0

    def release(self, now: float) -> list:
        """The packets held behind a gap older than ``max_wait`` (the gap is a loss)."""
        if not self._held or now - self._since < self.max_wait:
            return []
        out = []
        while self._held:
            self.next = min(self._held, key=lambda s: seq_diff(s, self.next))
            while self.next in self._held:
                out.append(self._held.pop(self.next))
                self.next = (self.next + 1) & 0xFFFF
        return out

    def push(self, pkt: RtpPacket, now: float = 0.0) -> list:
        seq = pkt.sequence_number
        if self.next is None:
            self.next = seq
        diff = seq_diff(seq, self.next)
        if diff < 0:
            if diff < -1000:  # the sender restarted its numbering
                self._held.clear()
                self.next = seq
            else:
                self.late += 1
                return []
        if not self._held:
            self._since = now
        self._held[seq] = pkt
        out = []
        while True:
            while self.next in self._held:
                out.append(self._held.pop(self.next))
                self.next = (self.next + 1) & 0xFFFF
            if len(self._held) <= self.size:
                if self._held and out:
                    self._since = now  # a new gap
                return out
            self.next = min(self._held, key=lambda s: seq_diff(s, self.next))  # give the gap up


class _Unwrap:
    def __init__(self) -> None:
        self.last = None

    def __call__(self, value: int) -> int:
        if self.last is None:
            self.last = value
        else:
            delta = (value - self.last) % _CLOCK
            if delta >= _CLOCK // 2:
                delta -= _CLOCK
            self.last += delta
        return self.last


class PsIngest:
    """One SSRC's RTP packets (in order) to media packets (see the module docstring)."""

    def __init__(self, aac_bitrate: int = 48000) -> None:
        self.ps = PsDemuxer()
        self.es = TsDemuxer()
        self.aac_bitrate = aac_bitrate
        self.packets = 0
        self.lost = 0
        self.bytes = 0
        self.frames = 0
        self.codecs: dict = {}  # "video"/"audio" -> codec name
        self._seq = None
        self._g711 = None
        self._g711_codec = ""
        self._g711_header = False
        self._unwrap = _Unwrap()

    def restart(self) -> None:
        """New media from the same device (a re-invite): the PS and RTP state start over, the
        codec state goes on, so an unchanged sequence header is not sent again (a player would
        take it for new tracks)."""
        self.ps = PsDemuxer()
        self._seq = None

    @property
    def errors(self) -> int:
        return self.ps.errors + self.es.errors + (self._g711.errors if self._g711 is not None else 0)

    @property
    def last_error(self) -> str:
        return self.ps.last_error or self.es.last_error

    def rtp(self, data) -> list:
        """One RTP packet's bytes (in sequence order): the media packets it completed."""
        try:
            pkt = data if isinstance(data, RtpPacket) else RtpPacket.parse(data)
        except RtpError as e:
            self.ps._error(str(e))
            return []
        self.packets += 1
        if self._seq is not None:
            gap = seq_diff(pkt.sequence_number, (self._seq + 1) & 0xFFFF)
            if gap > 0:
                self.lost += gap
                self.ps.discontinuity()
        self._seq = pkt.sequence_number
        self.bytes += len(pkt.payload)
        frames = self.ps.feed(pkt.payload)
        if pkt.marker:
            frames += self.ps.flush()
        return self._packets(frames)

    def flush(self) -> list:
        return self._packets(self.ps.flush())

    def _packets(self, frames) -> list:
        out = []
        for f in frames:
            self.frames += 1
            self.codecs["video" if f.is_video else "audio"] = f.codec
            if f.codec in ("pcma", "pcmu"):
                out += self._transcode(f)
            else:
                out += self.es.decode_es(f.codec, f.data, f.pts, f.dts)
        return out

    def _transcode(self, frame) -> list:
        if self._g711 is None or self._g711_codec != frame.codec:
            from ..transcode.audio import TRANSCODE_ERRORS, AudioTranscoder

            try:
                self._g711 = AudioTranscoder("pcm_alaw" if frame.codec == "pcma" else "pcm_mulaw", None, "aac",
                                             rate=48000, frame_size=1024, bitrate=self.aac_bitrate,
                                             input_rate=8000, input_channels=1)
            except TRANSCODE_ERRORS as e:
                self.ps._error("cannot transcode G.711 to AAC: %s" % e)
                return []
            self._g711_codec = frame.codec
            self._g711_header = False
        out = []
        ms = self._unwrap(frame.pts) // 90
        for data, pts in self._g711.push(frame.data, ms):
            if not self._g711_header:
                self._g711_header = True
                out.append(MediaPacket(AUDIO, max(0, pts), b"\xaf\x00" + self._g711.extradata, codec="aac",
                                       sequence_header=True))
            out.append(MediaPacket(AUDIO, max(0, pts), b"\xaf\x01" + data, codec="aac"))
        return out

    def close(self) -> None:
        if self._g711 is not None:
            self._g711.close()
            self._g711 = None
