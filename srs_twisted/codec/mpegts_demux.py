"""MPEG-2 transport stream demuxer: TS bytes in, FLV-body media packets out.

:class:`TsDemuxer` is incremental and forgiving: it finds and keeps the 0x47
sync, reads PAT and PMT, reassembles PES packets per elementary stream and
turns each access unit into the FLV tag body RTMP would carry, so the rest of
the server cannot tell an SRT/UDP publisher from an RTMP one.  Bad input is
counted in :attr:`TsDemuxer.errors` (the latest reason in ``last_error``) and
skipped; ``feed`` never raises.
"""

import struct

from . import aac, avc, hevc, mp3
from .bitreader import BitReader, unescape_rbsp
from .errors import CodecError
from .mpegts import (
    NULL_PID, PAT_PID, STREAM_TYPE_AAC, STREAM_TYPE_H264, STREAM_TYPE_H265, STREAM_TYPE_MP3,
    STREAM_TYPE_MP3_LSF, SYNC_BYTE, TS_PACKET_SIZE, TsError, crc32_mpeg2, decode_timestamp,
)

__all__ = ["TsDemuxer", "make_hevc_decoder_config"]

_CODECS = {
    STREAM_TYPE_H264: (9, "h264"),
    STREAM_TYPE_H265: (9, "h265"),
    STREAM_TYPE_AAC: (8, "aac"),
    STREAM_TYPE_MP3: (8, "mp3"),
    STREAM_TYPE_MP3_LSF: (8, "mp3"),
}
_CLOCK = 1 << 33
_CLOCK_MASK = _CLOCK - 1
_HALF_CLOCK = 1 << 32
_MAX_SECTION = 1024
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")

# H.264 / H.265 NAL unit types dropped from frames: AUD and parameter sets,
# which travel in the FLV sequence header instead.
_H264_SKIP = frozenset((7, 8, 9))
_H265_SKIP = frozenset((32, 33, 34, 35))


def _media_packet_class():
    # The packet model lives in live/ (it imports nothing from Twisted); a
    # caller may pass its own factory with the same signature instead.
    from ..live.packet import MediaPacket

    return MediaPacket


def make_hevc_decoder_config(vps: list, sps: list, pps: list, nal_length_size: int = 4) -> bytes:
    """Build an HEVCDecoderConfigurationRecord (hvcC) from VPS, SPS and PPS NAL units.

    Profile, tier, level and constraint flags are copied from the first SPS;
    chroma format and bit depths are decoded from it.
    """
    if not sps:
        raise TsError("an HEVC decoder configuration needs an SPS")
    first = bytes(sps[0])
    rbsp = unescape_rbsp(first[2:])
    if len(rbsp) < 13:
        raise TsError("H.265 SPS of %d bytes is too short" % len(first))
    sub_layers_minus1 = (rbsp[0] >> 1) & 0x07
    temporal_nesting = rbsp[0] & 0x01
    general_ptl = rbsp[1:13]  # profile space/tier/idc, compatibility, constraints, level
    info = hevc.parse_sps(first)
    r = BitReader(rbsp)
    r.skip(8)
    hevc._profile_tier_level(r, sub_layers_minus1)
    r.read_ue()  # sps_seq_parameter_set_id
    if r.read_ue() == 3:  # chroma_format_idc
        r.skip(1)
    r.read_ue()
    r.read_ue()
    if r.read_flag():  # conformance window
        for _ in range(4):
            r.read_ue()
    depth_luma = r.read_ue()
    depth_chroma = r.read_ue()
    if depth_luma > 8 or depth_chroma > 8:
        raise TsError("H.265 bit depth out of range")
    arrays = [(32, vps), (33, sps), (34, pps)]
    parts = [
        b"\x01", general_ptl,
        b"\xf0\x00",  # min_spatial_segmentation_idc 0
        b"\xfc",  # parallelismType unknown
        bytes((0xFC | info.chroma_format_idc, 0xF8 | depth_luma, 0xF8 | depth_chroma)),
        b"\x00\x00",  # avgFrameRate unknown
        bytes((((sub_layers_minus1 + 1) << 3) | (temporal_nesting << 2) | (nal_length_size - 1),)),
        bytes((sum(1 for _, nals in arrays if nals),)),
    ]
    for nal_type, nals in arrays:
        if not nals:
            continue
        parts.append(bytes((0x80 | nal_type,)) + _U16.pack(len(nals)))
        for nal in nals:
            if len(nal) > 0xFFFF:
                raise TsError("parameter set of %d bytes is too long" % len(nal))
            parts.append(_U16.pack(len(nal)) + bytes(nal))
    return b"".join(parts)


class _Stream:
    """Reassembly state of one elementary stream PID."""

    __slots__ = ("kind", "codec", "cc", "parts", "size", "expected", "broken")

    def __init__(self, kind: int, codec: str):
        self.kind = kind
        self.codec = codec
        self.cc = None
        self.parts = []
        self.size = 0
        self.expected = 0  # PES_packet_length + 6, or 0 when unbounded
        self.broken = True  # nothing to append to until a payload unit start


class TsDemuxer:
    """Incremental MPEG-TS demuxer: ``feed(bytes) -> [MediaPacket]``.

    Handles the first program of the PAT and its first video (H.264, H.265)
    and first audio (AAC ADTS, MPEG audio) streams.  A PES whose length field
    is 0 (usual for video) ends at the next payload unit start of its PID, so
    its frame comes out one ``feed`` later; :meth:`flush` returns what is
    still pending at the end of the input.

    Video is emitted as FLV AVC/HEVC bodies with 4-byte NAL lengths, with a
    sequence header packet whenever the in-band parameter sets first appear
    or change; H.265 uses Enhanced RTMP ``hvc1`` bodies unless
    ``enhanced_hevc`` is false (then the legacy codec id 12 that SRS reads).
    Frames before the first parameter sets are dropped.  Timestamps are
    milliseconds on a running extension of the 33-bit 90 kHz clock.
    """

    def __init__(self, max_pes_size: int = 8 * 1024 * 1024, enhanced_hevc: bool = True,
                 packet_factory=None):
        self.max_pes_size = max_pes_size
        self.enhanced_hevc = enhanced_hevc
        self.errors = 0
        self.last_error = ""
        self.program = None  # program_number in use
        self.pmt_pid = None
        self.pcr_pid = None
        self._buf = bytearray()
        self._synced = False
        self._sections = {}  # PSI pid -> bytearray of a section being assembled
        self._psi_cc = {}
        self._streams = {}  # pid -> _Stream
        self._pmt_version = None
        self._last90 = None  # last unwrapped 90 kHz value
        self._video_sets = None  # parameter sets in the current sequence header
        self._audio_config = None  # (FLV sound flags, ASC) for the current AAC header
        self._packet = packet_factory or _media_packet_class()

    # -- errors and the clock ---------------------------------------------

    def _error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message

    def _unwrap(self, value: int) -> int:
        """Extend a 33-bit clock value against the last one seen (any PID)."""
        last = self._last90
        if last is None:
            self._last90 = value
            return value
        delta = (value - last) & _CLOCK_MASK
        if delta >= _HALF_CLOCK:
            delta -= _CLOCK
        self._last90 = last + delta
        return last + delta

    # -- bytes to TS packets ------------------------------------------------

    def feed(self, data) -> list:
        """Parse more bytes; return the media packets they completed."""
        out = []
        buf = self._buf
        buf += data
        pos = self._scan(buf, out, final=False)
        del buf[:pos]
        return out

    def flush(self) -> list:
        """End of input: parse what is buffered and emit every pending PES."""
        out = []
        buf = self._buf
        pos = self._scan(buf, out, final=True)
        if len(buf) - pos:
            self._error("%d trailing bytes are not a whole TS packet" % (len(buf) - pos))
        buf.clear()
        for pid, stream in self._streams.items():
            self._finish(pid, stream, out)
        return out

    def _scan(self, buf: bytearray, out: list, final: bool) -> int:
        pos = 0
        end = len(buf)
        size = TS_PACKET_SIZE
        while end - pos >= size:
            if buf[pos] == SYNC_BYTE:
                if self._synced:
                    # a packet whose successor does not start with 0x47 is suspect:
                    # bytes were inserted or lost, so resync rather than parse it
                    if pos + size >= end or buf[pos + size] == SYNC_BYTE:
                        self._ts_packet(buf, pos, out)
                        pos += size
                        continue
                    self._synced = False
                    self._error("lost TS sync: no 0x47 one packet on")
                # confirm a new sync on the next two packets' sync bytes, when present
                confirm = [p for p in (pos + size, pos + 2 * size) if p < end]
                if not confirm and not final:
                    return pos  # wait for more bytes to confirm
                if all(buf[p] == SYNC_BYTE for p in confirm):
                    self._synced = True
                    continue
            elif self._synced:
                self._synced = False
                self._error("lost TS sync at a byte that is not 0x47")
            hit = buf.find(SYNC_BYTE, pos + 1)
            if hit < 0:
                return end
            pos = hit
        return pos

    def _ts_packet(self, buf: bytearray, pos: int, out: list) -> None:
        b1 = buf[pos + 1]
        if b1 & 0x80:
            self._error("TS packet with transport_error_indicator set")
            return
        pid = ((b1 & 0x1F) << 8) | buf[pos + 2]
        if pid == NULL_PID:
            return
        b3 = buf[pos + 3]
        if b3 & 0xC0:
            self._error("scrambled TS packet on PID 0x%x" % pid)
            return
        control = (b3 >> 4) & 0x03
        cc = b3 & 0x0F
        start = pos + 4
        end = pos + TS_PACKET_SIZE
        discontinuity = False
        if control & 0x02:
            af_len = buf[start]
            if af_len > 183 or (control == 0x02 and af_len != 183):
                self._error("bad adaptation field length %d on PID 0x%x" % (af_len, pid))
                return
            if af_len:
                discontinuity = bool(buf[start + 1] & 0x80)
            start += 1 + af_len
        if not control & 0x01:
            return
        pusi = bool(b1 & 0x40)
        stream = self._streams.get(pid)
        if stream is not None:
            self._es_packet(pid, stream, pusi, cc, discontinuity, buf[start:end], out)
        elif pid == PAT_PID or pid == self.pmt_pid:
            self._psi_packet(pid, pusi, cc, buf[start:end])

    # -- PSI ----------------------------------------------------------------

    def _psi_packet(self, pid: int, pusi: bool, cc: int, payload) -> None:
        last = self._psi_cc.get(pid)
        self._psi_cc[pid] = cc
        if last == cc:
            return  # a repeat (or a copy for a late joiner)
        section = self._sections.get(pid)
        if pusi:
            if not payload:
                return
            pointer = payload[0]
            if pointer + 1 > len(payload):
                self._error("PSI pointer_field %d overruns the packet" % pointer)
                self._sections.pop(pid, None)
                return
            if section is not None:
                section += payload[1:1 + pointer]
                self._section_done(pid, section)
            section = self._sections[pid] = bytearray(payload[1 + pointer:])
        elif section is None:
            return
        elif last is not None and cc != (last + 1) & 0x0F:
            self._error("continuity error on PSI PID 0x%x" % pid)
            del self._sections[pid]
            return
        else:
            section += payload
        self._section_done(pid, section)

    def _section_done(self, pid: int, section: bytearray) -> None:
        """Parse the section if it is complete; drop it once parsed or hopeless."""
        if len(section) < 3:
            return
        if section[0] == 0xFF:  # stuffing: no section here
            self._sections.pop(pid, None)
            return
        total = 3 + (((section[1] & 0x0F) << 8) | section[2])
        if total > _MAX_SECTION or total < 12:
            self._error("PSI section length %d out of range" % total)
            self._sections.pop(pid, None)
            return
        if len(section) < total:
            return
        self._sections.pop(pid, None)
        data = bytes(section[:total])
        if crc32_mpeg2(data):
            self._error("PSI CRC mismatch on PID 0x%x" % pid)
            return
        if not data[5] & 0x01:  # current_next_indicator: not yet applicable
            return
        if pid == PAT_PID and data[0] == 0x00:
            self._pat(data)
        elif pid == self.pmt_pid and data[0] == 0x02:
            self._pmt(data)

    def _pat(self, data: bytes) -> None:
        for pos in range(8, len(data) - 4 - 3, 4):
            program = _U16.unpack_from(data, pos)[0]
            if program == 0:
                continue  # network PID
            pmt_pid = _U16.unpack_from(data, pos + 2)[0] & 0x1FFF
            if pmt_pid != self.pmt_pid:
                self.program = program
                self.pmt_pid = pmt_pid
                self._pmt_version = None
            return

    def _pmt(self, data: bytes) -> None:
        if _U16.unpack_from(data, 3)[0] != self.program:
            return
        version = (data[5] >> 1) & 0x1F
        if version == self._pmt_version:
            return
        self._pmt_version = version
        self.pcr_pid = _U16.unpack_from(data, 8)[0] & 0x1FFF
        pos = 12 + (_U16.unpack_from(data, 10)[0] & 0x0FFF)
        end = len(data) - 4
        found = {}
        while pos + 5 <= end:
            stream_type = data[pos]
            pid = _U16.unpack_from(data, pos + 1)[0] & 0x1FFF
            pos += 5 + (_U16.unpack_from(data, pos + 3)[0] & 0x0FFF)
            known = _CODECS.get(stream_type)
            if known is not None and known[0] not in found:
                found[known[0]] = (pid, known[1])
        streams = {}
        for kind, (pid, codec) in found.items():
            old = self._streams.get(pid)
            if old is not None and old.codec == codec:
                streams[pid] = old
            else:
                streams[pid] = _Stream(kind, codec)
                if kind == 9:
                    self._video_sets = None
                else:
                    self._audio_config = None
        self._streams = streams

    # -- PES ----------------------------------------------------------------

    def _es_packet(self, pid: int, stream: _Stream, pusi: bool, cc: int, discontinuity: bool,
                   payload, out: list) -> None:
        last = stream.cc
        stream.cc = cc
        if last is not None and not discontinuity:
            if cc == last:
                return  # duplicate packet
            if cc != (last + 1) & 0x0F and not stream.broken:
                self._error("continuity error on PID 0x%x: %d after %d" % (pid, cc, last))
                self._reset(stream)
        if pusi:
            self._finish(pid, stream, out)
            if len(payload) >= 6:
                length = _U16.unpack_from(payload, 4)[0]
                stream.expected = length + 6 if length else 0
            else:
                stream.expected = 0
            stream.broken = False
        elif stream.broken:
            return
        stream.parts.append(bytes(payload))
        stream.size += len(payload)
        if stream.size > self.max_pes_size:
            self._error("PES on PID 0x%x exceeds %d bytes; dropped" % (pid, self.max_pes_size))
            self._reset(stream)
        elif stream.expected and stream.size >= stream.expected:
            self._finish(pid, stream, out)

    @staticmethod
    def _reset(stream: _Stream) -> None:
        stream.parts = []
        stream.size = 0
        stream.expected = 0
        stream.broken = True

    def _finish(self, pid: int, stream: _Stream, out: list) -> None:
        if not stream.parts:
            return
        data = b"".join(stream.parts)
        self._reset(stream)
        try:
            self._pes(stream, data, out)
        except CodecError as e:  # includes TsError
            self._error("PID 0x%x: %s" % (pid, e))

    def _pes(self, stream: _Stream, data: bytes, out: list) -> None:
        if len(data) < 9 or data[:3] != b"\x00\x00\x01":
            raise TsError("PES without a start code prefix")
        length = _U16.unpack_from(data, 4)[0]
        if length:
            if len(data) < length + 6:
                raise TsError("truncated PES: %d of %d bytes" % (len(data), length + 6))
            data = data[:length + 6]
            if length < 3:
                raise TsError("PES_packet_length %d leaves no room for a header" % length)
        flags = data[7]
        header_end = 9 + data[8]
        if data[6] & 0xC0 != 0x80 or header_end > len(data):
            raise TsError("bad PES header")
        if flags & 0x80 == 0:
            raise TsError("PES without a PTS")
        if header_end < 14 or (flags & 0x40 and header_end < 19):
            raise TsError("PES header too short for its timestamps")
        pts = decode_timestamp(data, 9)
        dts = decode_timestamp(data, 14) if flags & 0x40 else pts
        self._es(stream.codec, memoryview(data)[header_end:], pts, dts, out)

    def decode_es(self, codec: str, es, pts: int, dts: int) -> list:
        """One access unit of ``codec`` ("h264", "h265", "aac", "mp3") taken
        from another container (MPEG-PS): Annex B video or ADTS audio with its
        33-bit 90 kHz ``pts``/``dts``, as FLV-body packets (sequence headers
        included when they appear or change).  Bad data is counted, not raised."""
        out = []
        try:
            self._es(codec, memoryview(es), pts, dts, out)
        except CodecError as e:
            self._error("%s: %s" % (codec, e))
        return out

    def _es(self, codec: str, es, pts: int, dts: int, out: list) -> None:
        dts_ext = self._unwrap(dts)
        offset = (pts - dts) & _CLOCK_MASK
        if offset >= _HALF_CLOCK:
            offset -= _CLOCK
        if codec in ("h264", "h265"):
            self._video(codec, es, dts_ext // 90, (dts_ext + offset) // 90, out)
        elif codec == "aac":
            self._aac(es, dts_ext + offset, out)
        else:
            self._mp3(es, dts_ext + offset, out)

    # -- elementary streams -------------------------------------------------

    def _video(self, codec: str, es, dts: int, pts: int, out: list) -> None:
        nalus = avc.split_annexb(es)
        h264 = codec == "h264"
        skip = _H264_SKIP if h264 else _H265_SKIP
        keep = []
        keyframe = False
        vps, sps, pps = [], [], []
        for nal in nalus:
            if h264:
                nal_type = nal[0] & 0x1F
                keyframe = keyframe or nal_type == 5
            else:
                if len(nal) < 2:
                    continue
                nal_type = (nal[0] >> 1) & 0x3F
                keyframe = keyframe or 16 <= nal_type <= 23
            if nal_type in skip:
                if nal_type in (7, 33):
                    sps.append(nal)
                elif nal_type in (8, 34):
                    pps.append(nal)
                elif nal_type == 32:
                    vps.append(nal)
                continue
            keep.append(nal)
        current = self._video_sets
        if sps or pps or vps:
            old_vps, old_sps, old_pps = current or ([], [], [])
            sets = (vps or old_vps, sps or old_sps, pps or old_pps)
            if sets != current and sets[1] and sets[2] and (h264 or sets[0]):
                if h264:
                    record = avc.make_decoder_config(sets[1], sets[2])
                    avc.parse_decoder_config(record)  # refuse an SPS we cannot read
                    body = b"\x17\x00\x00\x00\x00" + record
                else:
                    record = make_hevc_decoder_config(*sets)
                    body = (b"\x90hvc1" if self.enhanced_hevc else b"\x1c\x00\x00\x00\x00") + record
                self._video_sets = current = sets
                out.append(self._packet(9, dts, body, codec=codec, pts=dts, keyframe=True,
                                        sequence_header=True))
        if current is None or not keep:
            return
        cts = (pts - dts) & 0xFFFFFF
        frame_type = 0x10 if keyframe else 0x20
        if h264:
            head = bytes((frame_type | 7, 1)) + cts.to_bytes(3, "big")
        elif self.enhanced_hevc:
            head = bytes((0x80 | frame_type | 1,)) + b"hvc1" + cts.to_bytes(3, "big")
        else:
            head = bytes((frame_type | 12, 1)) + cts.to_bytes(3, "big")
        parts = [head]
        for nal in keep:
            parts.append(_U32.pack(len(nal)))
            parts.append(nal)
        out.append(self._packet(9, dts, b"".join(parts), codec=codec, pts=pts,
                                keyframe=keyframe))

    def _aac(self, es, pts90: int, out: list) -> None:
        data = bytes(es)
        pos = 0
        end = len(data)
        index = 0
        while pos < end:
            if end - pos < 7 or data[pos] != 0xFF or data[pos + 1] & 0xF0 != 0xF0:
                raise TsError("lost ADTS sync at offset %d of a PES" % pos)
            length = ((data[pos + 3] & 0x03) << 11) | (data[pos + 4] << 3) | (data[pos + 5] >> 5)
            if length < 7 or length > end - pos:
                raise TsError("bad ADTS frame length %d at offset %d" % (length, pos))
            ((info, raw),) = aac.parse_adts(data[pos:pos + length])
            pos += length
            config = aac.make_audio_specific_config(info.object_type, info.sample_rate,
                                                    info.channels)
            ms = (pts90 + index * 1024 * 90000 // info.sample_rate) // 90
            index += 1
            if config != self._audio_config:
                self._audio_config = config
                out.append(self._packet(8, ms, b"\xaf\x00" + config, codec="aac",
                                        sequence_header=True))
            if raw:
                out.append(self._packet(8, ms, b"\xaf\x01" + raw, codec="aac"))

    def _mp3(self, es, pts90: int, out: list) -> None:
        data = bytes(es)
        if not data:
            return
        frames = []
        pos = 0
        end = len(data)
        info = None
        try:
            while pos < end:
                info = mp3.parse_frame_header(data[pos:pos + 4])
                length = info.frame_length
                if not length or length > end - pos:
                    break
                frames.append((pos, length, info))
                pos += length
        except CodecError:
            pass
        if not frames:
            if info is None:
                raise TsError("no MPEG audio frame header in the PES")
            frames = [(0, end, info)]
        elif pos < end:  # keep what did not split cleanly with the last frame
            start, _, last = frames[-1]
            frames[-1] = (start, end - start, last)
        for index, (start, length, info) in enumerate(frames):
            rate = info.sample_rate
            rate_flag = 3 if rate >= 44100 else 2 if rate >= 22050 else 1 if rate >= 11025 else 0
            flags = 0x22 | (rate_flag << 2) | (1 if info.channels == 2 else 0)
            ms = (pts90 + index * info.samples_per_frame * 90000 // rate) // 90
            out.append(self._packet(8, ms, bytes((flags,)) + data[start:start + length],
                                    codec="mp3"))
