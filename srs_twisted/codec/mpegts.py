"""MPEG-2 transport stream: a muxer from FLV-body packets to 188-byte TS packets.

:class:`TsMuxer` turns :class:`~srs_twisted.live.packet.MediaPacket`-shaped
objects (``kind``, ``dts``/``pts`` in ms, ``keyframe``, ``payload`` = the FLV
tag body) into TS bytes the way SRS lays them out: PMT on PID 0x1001, video
on 0x100, AAC on 0x101 and MP3 on 0x102.  H.264/H.265 frames are rewritten
from length-prefixed NAL units to Annex B with an access unit delimiter and,
on keyframes, the parameter sets; AAC frames get an ADTS header.

The demuxer lives in :mod:`srs_twisted.codec.mpegts_demux` (also reachable as
``mpegts.TsDemuxer``).  Both are sans-I/O: no clock, no logging, no Twisted.
"""

import struct

from . import aac, avc, flv, hevc, mp3
from .errors import CodecError

__all__ = [
    "TsError", "TsMuxer", "TsDemuxer", "crc32_mpeg2", "encode_timestamp", "decode_timestamp",
    "encode_pcr", "shift_timestamps", "TS_PACKET_SIZE", "PAT_PID", "PMT_PID", "VIDEO_PID", "AUDIO_PID", "MP3_PID",
    "STREAM_TYPE_H264", "STREAM_TYPE_H265", "STREAM_TYPE_AAC", "STREAM_TYPE_MP3",
    "STREAM_TYPE_MP3_LSF",
]

TS_PACKET_SIZE = 188
TS_PAYLOAD_SIZE = 184
SYNC_BYTE = 0x47

PAT_PID = 0x0000
PMT_PID = 0x1001
VIDEO_PID = 0x100
AUDIO_PID = 0x101  # AAC
MP3_PID = 0x102  # SRS gives MPEG audio its own PID
NULL_PID = 0x1FFF
PROGRAM_NUMBER = 1
TRANSPORT_STREAM_ID = 1

STREAM_TYPE_MP3 = 0x03  # ISO/IEC 11172-3 (MPEG-1 audio)
STREAM_TYPE_MP3_LSF = 0x04  # ISO/IEC 13818-3 (MPEG-2 low sampling frequencies)
STREAM_TYPE_AAC = 0x0F  # ISO/IEC 13818-7 ADTS
STREAM_TYPE_H264 = 0x1B
STREAM_TYPE_H265 = 0x24

VIDEO_STREAM_TYPES = {"h264": STREAM_TYPE_H264, "h265": STREAM_TYPE_H265}
AUDIO_STREAM_TYPES = {"aac": STREAM_TYPE_AAC, "mp3": STREAM_TYPE_MP3}

STREAM_ID_VIDEO = 0xE0
STREAM_ID_AUDIO = 0xC0

# Audio-only streams repeat PAT/PMT every this many audio frames.
AUDIO_PSI_INTERVAL = 40

_TS_CLOCK_MASK = (1 << 33) - 1
_TS_HEADER = struct.Struct(">BHB")
_U16 = struct.Struct(">H")

_H264_AUD = b"\x00\x00\x00\x01\x09\xf0"  # primary_pic_type 7: any slice type
_H265_AUD = b"\x00\x00\x00\x01\x46\x01\x50"  # NAL type 35, pic_type 2: any slice type
_START4 = b"\x00\x00\x00\x01"
_START3 = b"\x00\x00\x01"


class TsError(CodecError):
    """Raised for transport stream input or parameters that cannot be handled."""


# ---------------------------------------------------------------------------
# Shared helpers


def _crc_table() -> tuple:
    table = []
    for i in range(256):
        crc = i << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc32_mpeg2(data) -> int:
    """CRC-32/MPEG-2 (polynomial 0x04C11DB7, init all ones, no reflection, no final xor).

    A section followed by its own CRC gives 0.
    """
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in bytes(data):
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


def encode_timestamp(prefix: int, ts: int) -> bytes:
    """The 5-byte PES PTS/DTS field: 4-bit ``prefix``, 33-bit ``ts`` with marker bits."""
    ts &= _TS_CLOCK_MASK
    return bytes((
        (prefix << 4) | ((ts >> 29) & 0x0E) | 1,
        (ts >> 22) & 0xFF,
        ((ts >> 14) & 0xFE) | 1,
        (ts >> 7) & 0xFF,
        ((ts << 1) & 0xFE) | 1,
    ))


def decode_timestamp(data, pos: int = 0) -> int:
    """Read a 5-byte PES PTS/DTS field back into its 33-bit value."""
    if len(data) - pos < 5:
        raise TsError("truncated PES timestamp at offset %d" % pos)
    b0, b1, b2, b3, b4 = data[pos:pos + 5]
    return (((b0 >> 1) & 0x07) << 30) | (b1 << 22) | ((b2 >> 1) << 15) | (b3 << 7) | (b4 >> 1)


def encode_pcr(base: int, extension: int = 0) -> bytes:
    """The 6-byte program_clock_reference: 33-bit base, 6 reserved ones, 9-bit extension."""
    value = ((base & _TS_CLOCK_MASK) << 15) | (0x3F << 9) | (extension & 0x1FF)
    return value.to_bytes(6, "big")


def shift_timestamps(data, shift90: int) -> list:
    """The TS packets of one muxed PES (as :meth:`TsMuxer.mux` returns them,
    PAT/PMT first or not) with its PTS, DTS and PCR moved ``shift90`` ticks
    earlier (modulo 2**33), as pieces that join to the result: only the
    packets up to the one starting the PES are copied."""
    size = len(data)
    pos = 0
    while pos + TS_PACKET_SIZE <= size:
        b1 = data[pos + 1]
        control = data[pos + 3] >> 4
        start = pos + 4
        if b1 & 0x40 and control & 1:  # payload_unit_start with a payload
            pes = start + (1 + data[start] if control & 2 else 0)
            if data[pes:pes + 3] == b"\x00\x00\x01":
                end = pos + TS_PACKET_SIZE
                head = bytearray(data[:end])
                if control & 2 and data[start] and head[start + 1] & 0x10:  # PCR
                    value = int.from_bytes(head[start + 2:start + 8], "big")
                    base = ((value >> 15) - shift90) & _TS_CLOCK_MASK
                    head[start + 2:start + 8] = ((base << 15) | (value & 0x7FFF)).to_bytes(6, "big")
                flags = head[pes + 7] >> 6
                if flags & 2:
                    at = pes + 9
                    for _ in range(2 if flags == 3 else 1):
                        prefix = head[at] >> 4
                        head[at:at + 5] = encode_timestamp(prefix, decode_timestamp(head, at) - shift90)
                        at += 5
                return [bytes(head), memoryview(data)[end:]]
        pos += TS_PACKET_SIZE
    return [data]


def _psi_packet(pid: int, cc: int, section: bytes) -> bytes:
    """One TS packet carrying a whole PSI section (pointer_field 0, 0xFF filled)."""
    body = b"\x00" + section
    if len(body) > TS_PAYLOAD_SIZE:
        raise TsError("PSI section of %d bytes does not fit one packet" % len(section))
    return (_TS_HEADER.pack(SYNC_BYTE, 0x4000 | pid, 0x10 | (cc & 0x0F)) + body
            + b"\xff" * (TS_PAYLOAD_SIZE - len(body)))


def _section(table_id: int, extension: int, version: int, body: bytes) -> bytes:
    """A long-form PSI section (syntax indicator set) with its CRC."""
    length = 5 + len(body) + 4  # extension..last_section_number, body, CRC
    head = bytes((table_id,)) + _U16.pack(0xB000 | length) + _U16.pack(extension) + bytes(
        (0xC1 | ((version & 0x1F) << 1), 0, 0))
    section = head + body
    return section + crc32_mpeg2(section).to_bytes(4, "big")


def _stuffed_af(body: bytes, total: int) -> bytes:
    """An adaptation field of exactly ``total`` bytes holding ``body`` (flags and fields)."""
    if total == 1:
        return b"\x00"
    if not body:
        body = b"\x00"  # no flags
    return bytes((total - 1,)) + body + b"\xff" * (total - 1 - len(body))


def _flv_header(parse, payload, what: str):
    try:
        return parse(payload)
    except CodecError as e:
        raise TsError("bad %s packet: %s" % (what, e)) from None


def _coded_frames(payload) -> bool:
    """Whether an Enhanced RTMP video body (already parsed once) carries coded frames.

    Metadata packets (colour info) must not be taken for pictures.
    """
    packet_type, pos = flv._skip_modex(payload, 1, payload[0] & 0x0F, "video")
    if packet_type == flv.VIDEO_MULTITRACK:
        packet_type = payload[pos] & 0x0F
    return packet_type in (flv.VIDEO_CODED_FRAMES, flv.VIDEO_CODED_FRAMES_X)


# ---------------------------------------------------------------------------
# Muxer


class TsMuxer:
    """Turn FLV-body media packets into 188-byte MPEG-TS packets.

    ``mux(pkt)`` returns the TS bytes for one packet (possibly empty).
    Sequence headers are remembered and produce nothing; frames before the
    first sequence header of their codec are skipped.  PAT and PMT come first
    in the output, before every video keyframe, whenever a codec changes, and
    every :data:`AUDIO_PSI_INTERVAL` frames of an audio-only stream.

    Malformed FLV bodies raise :class:`TsError` (a :class:`CodecError`) and
    leave the muxer state unchanged, so the caller can drop the packet and
    go on.
    """

    def __init__(self, has_video: bool = True, has_audio: bool = True, video_codec: str = "h264",
                 audio_codec: str = "aac", pcr_on_video: bool = True):
        if not has_video and not has_audio:
            raise TsError("a transport stream needs audio or video")
        if has_video and video_codec not in VIDEO_STREAM_TYPES:
            raise TsError("video codec %r cannot be muxed into TS" % (video_codec,))
        if has_audio and audio_codec not in AUDIO_STREAM_TYPES:
            raise TsError("audio codec %r cannot be muxed into TS" % (audio_codec,))
        self.has_video = has_video
        self.has_audio = has_audio
        self.video_codec = video_codec if has_video else None
        self.audio_codec = audio_codec if has_audio else None
        self.pcr_on_video = pcr_on_video
        self._video_type = VIDEO_STREAM_TYPES.get(video_codec) if has_video else None
        self._audio_type = AUDIO_STREAM_TYPES.get(audio_codec) if has_audio else None
        self._cc = {}
        self._cont_headers = {}
        self._pmt_version = 0
        self._pat = _section(0x00, TRANSPORT_STREAM_ID, 0,
                             _U16.pack(PROGRAM_NUMBER) + _U16.pack(0xE000 | PMT_PID))
        self._pmt = b""
        self._need_psi = True
        self._audio_frames = 0
        # video config: codec name, NAL length size, Annex B parameter sets
        self._video_config = None
        # audio config: the ADTS header word with a zero frame length
        self._adts_base = None
        self._build_pmt()

    # -- configuration ------------------------------------------------------

    @property
    def audio_pid(self) -> int:
        return MP3_PID if self.audio_codec == "mp3" else AUDIO_PID

    @property
    def pcr_pid(self) -> int:
        if self.has_video and (self.pcr_on_video or not self.has_audio):
            return VIDEO_PID
        return self.audio_pid

    def _build_pmt(self) -> None:
        body = [_U16.pack(0xE000 | self.pcr_pid), b"\xf0\x00"]  # program_info_length 0
        if self.has_video:
            body.append(bytes((self._video_type,)) + _U16.pack(0xE000 | VIDEO_PID) + b"\xf0\x00")
        if self.has_audio:
            body.append(bytes((self._audio_type,)) + _U16.pack(0xE000 | self.audio_pid)
                        + b"\xf0\x00")
        self._pmt = _section(0x02, PROGRAM_NUMBER, self._pmt_version, b"".join(body))

    def _set_stream_types(self, video_codec=None, audio_codec=None, audio_type=None) -> None:
        """Switch a codec (and the PMT, with a new version) when it changes."""
        changed = False
        if video_codec is not None and video_codec != self.video_codec:
            self.video_codec = video_codec
            self._video_type = VIDEO_STREAM_TYPES[video_codec]
            changed = True
        if audio_codec is not None and audio_codec != self.audio_codec:
            self.audio_codec = audio_codec
            self._audio_type = AUDIO_STREAM_TYPES[audio_codec]
            changed = True
        if audio_type is not None and audio_type != self._audio_type:
            self._audio_type = audio_type
            changed = True
        if changed:
            self._pmt_version = (self._pmt_version + 1) & 0x1F
            self._build_pmt()
            self._need_psi = True

    # -- PSI ----------------------------------------------------------------

    def _next_cc(self, pid: int) -> int:
        cc = self._cc.get(pid, 0)
        self._cc[pid] = (cc + 1) & 0x0F
        return cc

    def _psi(self) -> bytes:
        self._need_psi = False
        return (_psi_packet(PAT_PID, self._next_cc(PAT_PID), self._pat)
                + _psi_packet(PMT_PID, self._next_cc(PMT_PID), self._pmt))

    def pat_pmt(self) -> bytes:
        """PAT and PMT for a player that joins mid-stream.

        They repeat the continuity counters last used on those PIDs (a
        duplicate, as far as the counters go), so the next PAT/PMT in the
        shared stream follows on without a discontinuity.  The muxer state
        does not change.
        """
        pat_cc = (self._cc.get(PAT_PID, 0) - 1) & 0x0F
        pmt_cc = (self._cc.get(PMT_PID, 0) - 1) & 0x0F
        return _psi_packet(PAT_PID, pat_cc, self._pat) + _psi_packet(PMT_PID, pmt_cc, self._pmt)

    # -- packetizing --------------------------------------------------------

    def _continuation_headers(self, pid: int) -> tuple:
        headers = self._cont_headers.get(pid)
        if headers is None:
            headers = self._cont_headers[pid] = tuple(
                _TS_HEADER.pack(SYNC_BYTE, pid, 0x10 | cc) for cc in range(16))
        return headers

    def _packetize(self, pid: int, pes: bytes, af_body: bytes) -> bytes:
        """Slice one PES into TS packets; ``af_body`` goes into the first one's adaptation field."""
        view = memoryview(pes)
        size = len(pes)
        cc = self._cc.get(pid, 0)
        af_len = 1 + len(af_body) if af_body else 0
        room = TS_PAYLOAD_SIZE - af_len
        if size < room or (not af_body and size < TS_PAYLOAD_SIZE):
            af = _stuffed_af(af_body, TS_PAYLOAD_SIZE - size)
            take = size
        else:
            af = bytes((af_len - 1,)) + af_body if af_body else b""
            take = room
        control = 0x30 if af else 0x10
        parts = [_TS_HEADER.pack(SYNC_BYTE, 0x4000 | pid, control | cc), af, view[:take]]
        cc = (cc + 1) & 0x0F
        pos = take
        headers = self._continuation_headers(pid)
        full_end = pos + (size - pos) // TS_PAYLOAD_SIZE * TS_PAYLOAD_SIZE
        append = parts.append
        for start in range(pos, full_end, TS_PAYLOAD_SIZE):
            append(headers[cc])
            append(view[start:start + TS_PAYLOAD_SIZE])
            cc = (cc + 1) & 0x0F
        if full_end < size:
            left = size - full_end
            append(_TS_HEADER.pack(SYNC_BYTE, pid, 0x30 | cc))
            append(_stuffed_af(b"", TS_PAYLOAD_SIZE - left))
            append(view[full_end:])
            cc = (cc + 1) & 0x0F
        self._cc[pid] = cc
        return b"".join(parts)

    @staticmethod
    def _pes(stream_id: int, dts90: int, pts90: int, payload_parts: list, payload_size: int,
             allow_zero_length: bool) -> list:
        if pts90 == dts90:
            header = b"\x80\x80\x05" + encode_timestamp(0x2, pts90)
        else:
            header = b"\x80\xc0\x0a" + encode_timestamp(0x3, pts90) + encode_timestamp(0x1, dts90)
        length = len(header) + payload_size
        if length > 0xFFFF:
            if not allow_zero_length:
                raise TsError("PES of %d bytes is too long for stream 0x%02x" % (length, stream_id))
            length = 0
        payload_parts.insert(0, b"\x00\x00\x01" + bytes((stream_id,)) + _U16.pack(length) + header)
        return payload_parts

    # -- media --------------------------------------------------------------

    def mux(self, pkt) -> bytes:
        """TS packets for one media packet (b'' for headers, metadata and skipped frames)."""
        kind = pkt.kind
        if kind == flv.TAG_VIDEO:
            return self._mux_video(pkt) if self.has_video else b""
        if kind == flv.TAG_AUDIO:
            return self._mux_audio(pkt) if self.has_audio else b""
        return b""

    def _video_sequence_header(self, tag, payload) -> bytes:
        record = payload[tag.data_offset:]
        try:
            if tag.codec == "h264":
                info = avc.parse_decoder_config(record)
                sets = info.sps + info.pps
            else:
                info = hevc.parse_decoder_config(record)
                sets = info.vps + info.sps + info.pps
        except CodecError as e:
            raise TsError("bad %s sequence header: %s" % (tag.codec, e)) from None
        params = b"".join(_START4 + bytes(nal) for nal in sets)
        self._set_stream_types(video_codec=tag.codec)
        self._video_config = (tag.codec, info.nal_length_size, params)
        return b""

    def _mux_video(self, pkt) -> bytes:
        payload = pkt.payload
        tag = _flv_header(flv.parse_video, payload, "video")
        if tag.codec not in VIDEO_STREAM_TYPES:
            return b""
        if tag.sequence_header:
            return self._video_sequence_header(tag, payload)
        config = self._video_config
        if tag.end_of_sequence or config is None or config[0] != tag.codec:
            return b""
        codec, nal_length_size, params = config
        if tag.frame_type == flv.FRAME_COMMAND or (tag.enhanced and not _coded_frames(payload)):
            return b""
        try:
            nalus = avc.split_nalus(memoryview(payload)[tag.data_offset:], nal_length_size)
        except CodecError as e:
            raise TsError("bad %s frame: %s" % (codec, e)) from None
        if not nalus:
            return b""
        if codec == "h264":
            types = [nal[0] & 0x1F for nal in nalus]
            aud, has_params = 9, 7 in types
            keyframe = pkt.keyframe or 5 in types
            aud_bytes = _H264_AUD
        else:
            types = [(nal[0] >> 1) & 0x3F for nal in nalus]
            aud, has_params = 35, 33 in types
            keyframe = pkt.keyframe or any(16 <= t <= 23 for t in types)
            aud_bytes = _H265_AUD
        parts = []
        index = 0
        if types[0] == aud:
            parts.append(_START4)
            parts.append(nalus[0])
            index = 1
        else:
            parts.append(aud_bytes)
        if keyframe and not has_params:
            parts.append(params)
        for nal in nalus[index:]:
            parts.append(_START3)
            parts.append(nal)
        es = b"".join(parts)
        dts90 = pkt.dts * 90
        pts90 = pkt.pts * 90
        pes = b"".join(self._pes(STREAM_ID_VIDEO, dts90, pts90, [es], len(es), True))
        af = 0x40 if keyframe else 0  # random_access_indicator
        pcr = b""
        if self.pcr_pid == VIDEO_PID:
            af |= 0x10
            pcr = encode_pcr(dts90)
        af_body = bytes((af,)) + pcr if af else b""
        head = self._psi() if keyframe or self._need_psi else b""
        return head + self._packetize(VIDEO_PID, pes, af_body)

    def _mux_audio(self, pkt) -> bytes:
        payload = pkt.payload
        tag = _flv_header(flv.parse_audio, payload, "audio")
        if tag.codec == "aac":
            if tag.sequence_header:
                try:
                    info = aac.parse_audio_specific_config(payload[tag.data_offset:])
                    base = int.from_bytes(aac.adts_header(info, 0), "big") & ~(0x1FFF << 13)
                except CodecError as e:
                    raise TsError("bad AAC sequence header: %s" % e) from None
                self._set_stream_types(audio_codec="aac")
                self._adts_base = base
                return b""
            if self._adts_base is None or self.audio_codec != "aac":
                return b""
            raw = memoryview(payload)[tag.data_offset:]
            size = len(raw) + 7
            if not len(raw):
                return b""
            if size > 0x1FFF:
                raise TsError("AAC frame of %d bytes does not fit ADTS" % len(raw))
            parts = [(self._adts_base | (size << 13)).to_bytes(7, "big"), raw]
            return self._audio_pes(pkt, parts, size)
        if tag.codec == "mp3":
            if tag.sequence_header:
                return b""
            frame = memoryview(payload)[tag.data_offset:]
            if not len(frame):
                return b""
            if self.audio_codec != "mp3" or self._audio_frames == 0:
                try:
                    lsf = mp3.parse_frame_header(frame).version != 1.0
                except CodecError:
                    lsf = False
                self._set_stream_types(audio_codec="mp3",
                                       audio_type=STREAM_TYPE_MP3_LSF if lsf else STREAM_TYPE_MP3)
            return self._audio_pes(pkt, [frame], len(frame))
        return b""

    def _audio_pes(self, pkt, parts: list, size: int) -> bytes:
        pid = self.audio_pid
        pts90 = pkt.pts * 90
        dts90 = pkt.dts * 90
        pes = b"".join(self._pes(STREAM_ID_AUDIO, dts90, pts90, parts, size, False))
        audio_only = not self.has_video
        if audio_only and self._audio_frames % AUDIO_PSI_INTERVAL == 0:
            self._need_psi = True
        self._audio_frames += 1
        head = self._psi() if self._need_psi else b""
        af_body = b""
        if self.pcr_pid == pid:
            # random access on every frame of an audio-only stream, PCR = DTS
            af_body = bytes((0x50 if audio_only else 0x10,)) + encode_pcr(dts90)
        return head + self._packetize(pid, pes, af_body)


def __getattr__(name):
    if name == "TsDemuxer":
        from .mpegts_demux import TsDemuxer

        return TsDemuxer
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
