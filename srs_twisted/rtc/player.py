"""A WebRTC (WHEP) player of a live stream: MediaPackets in, SRTP datagrams out.

Serialize once.  :class:`RtpEncoder` (one per stream and payload size, kept
in ``source.outputs`` as the HTTP-TS muxer is) turns each MediaPacket into
RTP payloads once: H.264 FLV/AVC bodies through
:class:`~srs_twisted.codec.rtp_h264.H264Payloader` (single NAL units, FU-A,
SPS+PPS in a STAP-A before every IDR), H.265 ones through
:class:`~srs_twisted.codec.rtp_h265.H265Payloader` (single NAL units, FU,
VPS+SPS+PPS in an AP before every IRAP picture; their records are flagged
HEVC and go only to players whose video track is H.265, ``?codec=hevc``),
Opus through :class:`~srs_twisted.codec.rtp_opus.OpusPayloader`.  Other
codecs (AAC and MP3 audio, which need the transcoding bridge, AV1...) give
nothing and are counted in ``skipped``.  The encoded form is what the live core caches and
shares through ``IMediaSink.wire_key``/``encode``: a run of records, each
``>HBq`` (payload length, flags: marker and audio, pts in ms) followed by
the payload.  Players in step receive the same joined bytes object, and a
player's payloads are memoryviews into it: the payload bytes are never
copied per player except into its outgoing datagram.

Per player (:class:`RtcPlayer`, an ``IMediaSink``) only the 12-byte header
is made: the SSRC and payload type of its negotiated
:class:`~srs_twisted.rtc.answer.Track`, its own sequence numbers (random
start), an RTP timestamp ``base + t * rate`` where ``t`` is the player's own
timeline in ms (0 at its first packet, moved on by the wall clock when the
stream's time jumps or a new publisher comes) and ``base`` is random, and a
transport-cc extension with a per-player transport sequence number when the
track negotiated ``twcc``.  Then ``protect_rtp`` (SRTP) and ``send``.

Feedback (:meth:`RtcPlayer.on_rtcp`, plain RTCP after SRTCP unprotect):
generic NACKs are answered from a per-track :class:`~.rtp_cache.RtpCache`
of the last ``cache_size`` packets (``nack on``), PLI and FIR call
``request_keyframe``, RR/REMB/TWCC/SR/SDES/BYE are counted and otherwise
ignored.  :meth:`RtcPlayer.rtcp_tick` returns, at most once per
``SR_INTERVAL`` seconds, one compound datagram with an SR per sending track
(NTP time, the RTP timestamp of that instant, packet and payload octet
counts) and an SDES CNAME, for the caller to protect with SRTCP and send.

Backpressure: the player holds no queue, it sends as it is written to.  Over
UDP nothing pushes back; over TCP the caller registers ``player.consumer``
(the live core's ``IPushProducer``) with its transport, and the core keeps
its rules (bounded lag, whole GOPs dropped, players restart at a keyframe
with the sequence headers).  Errors of ``protect_rtp``/``send`` (ValueError,
OSError) are counted and cost only that packet: a player's write runs
inside the source's flush of every player.
"""

from __future__ import annotations

import random
import struct
import time
from dataclasses import dataclass

from zope.interface import implementer

from ..codec.rtcp import (Bye, Fir, Nack, Pli, RawRtcp, ReceiverReport, Remb, RtcpError, Sdes, SdesChunk,
                          SenderReport, TransportCC, ntp_timestamp, parse_compound, serialize_compound)
from ..codec.rtp import RtpError, twcc_extension_block
from ..codec.rtp_h264 import DEFAULT_MAX_PAYLOAD, H264Payloader
from ..codec.rtp_h265 import H265Payloader
from ..codec.rtp_opus import OpusPayloader
from ..interfaces import IMediaSink
from ..live.packet import AUDIO, DATA, VIDEO
from .bridge import OpusBridge
from .rtp_cache import DEFAULT_SIZE, RtpCache

__all__ = ["RtcPlayer", "RtpEncoder", "PlayerStats", "shared_encoder", "parse_records", "SR_INTERVAL"]

SR_INTERVAL = 1.0  # seconds between sender reports
F_MARKER = 0x01
F_AUDIO = 0x02
F_HEVC = 0x04  # an H.265 video payload (else H.264)
_REC = struct.Struct(">HBq")  # payload length, flags, pts (ms)
_FIXED = struct.Struct(">BBHII")
# The fixed header and a one-byte-form extension block holding only a transport-cc number, in one pack
# (the same bytes as _FIXED + codec.rtp.twcc_extension_block for ids 1..14).
_FIXED_TWCC = struct.Struct(">BBHIIHHBHx")
# A step of the stream's time beyond these (ms) is a jump: the player's
# timeline goes on from its last time plus the wall clock's step instead.
JUMP_BACK = 3000
JUMP_FORWARD = 10000
#: A player joined from the GOP cache gets the cache's video from its keyframe, but of its
#: audio only the last AUDIO_BACKLOG_MS before the newest packet (0: audio starts live). A
#: browser's audio jitter buffer (NetEq) plays every sample it is given, so a GOP of audio in
#: one burst put the sound up to a GOP behind the picture (Chromium, 1 s GOPs: 0.8 s), caught
#: up only by playing it about 10 % faster for seconds; its video catches up at once.
AUDIO_BACKLOG_MS = 0
SDES_CNAME = 1


class RtpEncoder:
    """RTP payload records for the MediaPackets of one stream (shared).

    ``keep_bframe``/``keep_sei`` are the vhost's ``rtc.keep_bframe`` and
    ``keep_avc_nalu_sei`` (both kept by default here).  The vhost's
    ``rtmp_to_rtc on`` is ``audio_bridge=True``: AAC or MP3 audio is
    transcoded to Opus (``opus_bitrate``) by one :class:`~.bridge.OpusBridge`
    (else skipped); ``rtmp_to_rtc off`` is ``rtc_only=True`` (with
    ``source``): the stream of a publisher that is not WebRTC gives WebRTC
    players nothing, as in SRS.  A WebRTC publisher's stream always gets
    through, its Opus as it came (see :class:`~.bridge.BridgedAudio`).
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD, *, keep_bframe: bool = True, keep_sei: bool = True,
                 audio_bridge: bool = False, rtc_only: bool = False, opus_bitrate: int = 48000,
                 source=None) -> None:
        self.h264 = H264Payloader(max_payload, keep_bframe=keep_bframe, keep_sei=keep_sei)
        self.h265 = H265Payloader(max_payload, keep_sei=keep_sei)
        self.opus = OpusPayloader()
        self.rtc_only = rtc_only and source is not None
        self.source = source
        self.bridge = OpusBridge(opus_bitrate) if audio_bridge else None
        self.skipped = 0  # packets of codecs WebRTC does not get (HEVC...) or of a refused publisher
        self.errors = 0  # packets whose bodies could not be payloaded
        self._parsed_data = None  # the last joined records handed to players, and their parse
        self._parsed: list = []

    def encode(self, pkt) -> bytes:
        """The records of one MediaPacket (b"" for headers, data, other codecs)."""
        kind = pkt.kind
        if self.rtc_only and kind != DATA and not getattr(self.source.publisher, "rtc_publisher", False):
            self.skipped += 1
            return b""
        try:
            if kind == VIDEO:
                if pkt.codec == "h264":
                    return self._records(self.h264.payload_flv(pkt.payload), 0, pkt.pts)
                if pkt.codec == "h265":
                    return self._records(self.h265.payload_flv(pkt.payload), F_HEVC, pkt.pts)
                self.skipped += 1
                return b""
            if kind != AUDIO:
                return b""
            rtc_frames = getattr(pkt, "rtc_frames", None)
            if rtc_frames is not None:
                return self._audio_records(rtc_frames)
            if pkt.codec == "opus":
                payload = self.opus.payload_flv(pkt.payload)
                return self._records([payload] if payload is not None else [], F_AUDIO, pkt.pts)
            if self.bridge is not None and pkt.codec in ("aac", "mp3"):
                return self._audio_records(self.bridge.frames(pkt))
            self.skipped += 1
            return b""
        except RtpError:
            self.errors += 1
            return b""

    @staticmethod
    def _records(payloads, flags: int, pts: int) -> bytes:
        if not payloads:
            return b""
        parts = []
        last = len(payloads) - 1
        for i, payload in enumerate(payloads):
            # The marker ends a video frame; audio leaves it clear.
            marker = F_MARKER if i == last and not flags & F_AUDIO else 0
            parts.append(_REC.pack(len(payload), flags | marker, pts))
            parts.append(payload)
        return b"".join(parts)

    @staticmethod
    def _audio_records(frames) -> bytes:
        """Records of ``[(opus bytes, pts ms)]``, each at its own time."""
        parts = []
        for payload, pts in frames:
            parts.append(_REC.pack(len(payload), F_AUDIO, pts))
            parts.append(payload)
        return b"".join(parts)

    def records(self, data) -> list:
        """``parse_records(data)``, once for every player given the same joined bytes (the live core's
        serialize-once): the payload memoryviews are shared too, so a player's NACK cache holds no
        views of its own."""
        if data is not self._parsed_data:
            if type(data) is not bytes:  # only immutable bytes can be remembered by identity
                return parse_records(data)
            self._parsed = parse_records(data)
            self._parsed_data = data
        return self._parsed

    def stop_bridge(self) -> None:
        """No WebRTC player is left: free the AAC/MP3 -> Opus transcoder."""
        if self.bridge is not None:
            self.bridge.stop()


def shared_encoder(source, max_payload: int = DEFAULT_MAX_PAYLOAD, **options):
    """``(wire_key, encoder)`` every RTC player of ``source`` with this
    payload size and these :class:`RtpEncoder` options uses; a new encoder
    is primed with the current AVC and AAC sequence headers."""
    key = ("rtc", max_payload, *sorted(options.items()))
    encoder = source.outputs.get(key)
    if encoder is None:
        encoder = source.outputs[key] = RtpEncoder(max_payload, source=source, **options)
        for header in (source.video_sh, source.audio_sh):
            if header is not None:
                header.wire(key, encoder.encode)
    return key, encoder


def parse_records(data):
    """``[(payload memoryview, flags, pts)]`` of joined records."""
    view = memoryview(data)
    out = []
    pos, end = 0, len(view)
    size = _REC.size
    while pos + size <= end:
        n, flags, pts = _REC.unpack_from(view, pos)
        pos += size
        out.append((view[pos:pos + n], flags, pts))
        pos += n
    return out


@dataclass
class PlayerStats:
    """What one RTC player sent and was told (for the API and metrics)."""

    packets: int = 0
    octets: int = 0  # payload bytes
    nacks: int = 0  # NACK packets received
    nack_seqs: int = 0  # sequence numbers asked for
    retransmits: int = 0  # packets sent again
    nack_misses: int = 0  # asked for but no longer (or never) cached
    plis: int = 0
    firs: int = 0
    keyframe_requests: int = 0
    receiver_reports: int = 0
    remb: int = 0
    remb_bitrate: int = 0
    twcc: int = 0
    rtcp_ignored: int = 0  # SR, SDES, BYE, APP/XR...
    rtcp_errors: int = 0
    send_errors: int = 0
    sender_reports: int = 0
    fraction_lost: int = 0  # from the latest receiver report
    jitter: int = 0


class _Out:
    """One sending track of a player."""

    __slots__ = ("track", "ssrc", "pt", "rate_ms", "seq", "base", "twcc_id", "twcc_byte", "cache", "packets",
                 "octets")

    def __init__(self, track, seq: int, base: int, cache_size: int) -> None:
        self.track = track
        self.ssrc = track.ssrc & 0xFFFFFFFF
        self.pt = track.pt & 0x7F
        self.rate_ms = track.clock_rate // 1000
        self.seq = seq & 0xFFFF
        self.base = base & 0xFFFFFFFF
        self.twcc_id = track.twcc_id
        # the one-byte extension element's first byte (id, length 2), or None for the two-byte form
        self.twcc_byte = (track.twcc_id << 4) | 1 if track.twcc_id and 1 <= track.twcc_id <= 14 else None
        self.cache = RtpCache(cache_size)
        self.packets = 0
        self.octets = 0

    def rtp_time(self, t_ms: float) -> int:
        return (self.base + int(t_ms * self.rate_ms)) & 0xFFFFFFFF


@implementer(IMediaSink)
class RtcPlayer:
    """One WHEP session's media out: see the module docstring.

    ``tracks`` are the negotiated :class:`~.answer.Track` objects of the play
    answer (an H.264 or H.265 video and an Opus audio one are used, others ignored);
    ``send(datagram)`` puts one datagram on the session's path;
    ``protect_rtp(bytes) -> bytes`` is SRTP (identity by default);
    ``protector(header, payload) -> bytes`` (the SRTP session's
    ``rtp_protector()``) is the same protection without joining the packet
    first, used for every packet sent when given; ``send_many(datagrams)``,
    when given, sends the datagrams of one ``write`` (a video frame's
    packets) in one call, so the transport can batch them (UDP GSO);
    ``request_keyframe(reason)`` asks the publisher for a keyframe (reason
    "join", "pli" or "fir"); ``clock()`` gives Unix seconds;
    ``encoder_options`` are the shared :class:`RtpEncoder`'s (``keep_bframe``,
    ``keep_sei``, ``audio_bridge``, ``rtc_only``, ``opus_bitrate``): players
    with the same options share one encoder (and one audio transcoder), which
    frees its transcoder when the last of them closes.
    """

    #: every packet at once (IMediaSink.realtime): no merged writes while a
    #: WebRTC player plays, as SRS's RTC path has none
    realtime = True

    def __init__(self, source, tracks, send, *, protect_rtp=None, request_keyframe=None,
                 protector=None, send_many=None, clock=time.time, nack: bool = True, cache_size: int = DEFAULT_SIZE,
                 max_payload: int = DEFAULT_MAX_PAYLOAD, cname: str = "", rng=None,
                 encoder_options: dict | None = None, breaker=None) -> None:
        self.source = source
        # SRS's circuit breaker: no NACK answered at its critical level.
        self.breaker = breaker
        self.wire_key, self.encoder = shared_encoder(source, max_payload, **(encoder_options or {}))
        self.encode = self.encoder.encode
        self._send = self._send_one = send
        self._send_many = send_many
        self._protect = protect_rtp
        # (header, payload) -> datagram: the SRTP session's rtp_protector() when given (the send path's
        # fast form), else protect_rtp over the joined packet.
        self._seal = protector or (
            (lambda header, payload: protect_rtp(b"".join((header, payload)))) if protect_rtp is not None
            else (lambda header, payload: b"".join((header, payload))))
        self._request_keyframe = request_keyframe
        self._backlog = False  # writing the GOP cache (see AUDIO_BACKLOG_MS)
        self._clock = clock
        self.nack = nack
        self.cname = cname.encode() if isinstance(cname, str) else bytes(cname)
        rng = rng or random.Random()
        self.video = self.audio = None
        self._video_flag = 0  # the F_HEVC of the records this player's video track takes
        for track in tracks:
            if track.ssrc is None:
                continue
            codec = track.codec.lower()
            if track.kind == "video" and codec in ("h264", "h265") and self.video is None:
                self.video = _Out(track, rng.getrandbits(16), rng.getrandbits(32), cache_size)
                self._video_flag = F_HEVC if codec == "h265" else 0
            elif track.kind == "audio" and codec == "opus" and self.audio is None:
                self.audio = _Out(track, rng.getrandbits(16), rng.getrandbits(32), cache_size)
        self._outs = {o.ssrc: o for o in (self.video, self.audio) if o is not None}
        self._twcc_seq = 0
        self._offset = None  # stream pts - player time, None until anchored
        self._last_pts = 0
        self._last_t = 0  # the newest player time sent (ms) ...
        self._last_wall = 0.0  # ... and the wall clock then
        self._last_sr = None
        self.stats = PlayerStats()
        self.consumer = None
        self._handlers = {
            Nack: self._on_nack, Pli: self._on_pli, Fir: self._on_fir, ReceiverReport: self._on_rr,
            Remb: self._on_remb, TransportCC: self._on_twcc, SenderReport: self._ignore,
            Sdes: self._ignore, Bye: self._ignore, RawRtcp: self._ignore,
        }

    # ---- life cycle ---------------------------------------------------------
    def subscribe(self):
        """Join the source and ask the publisher for a keyframe; returns the
        live core's consumer.

        A publisher that sends a keyframe on request (a WebRTC one: PLI) is
        joined live, at that keyframe, as SRS's RTC players are (no GOP cache):
        such a publisher (Chromium's encoder) sends keyframes only when asked,
        so its cached GOP may hold many seconds, which would reach the player in
        one burst (Chromium then drops most of it and conceals the audio).
        Other publishers (RTMP, SRT...) are joined from the GOP cache's keyframe
        with SPS/PPS."""
        if self.consumer is None:
            publisher = getattr(self.source, "publisher", None)
            on_request = (self._request_keyframe is not None and self.video is not None
                          and callable(getattr(publisher, "request_keyframe", None)))
            self._backlog = not on_request  # what subscribe writes at once is the GOP cache
            try:
                self.consumer = self.source.subscribe(self, gop_cache=not on_request)
            finally:
                self._backlog = False
            self.consumer.accept_audio = self.audio is not None
            self.consumer.accept_video = self.video is not None
            self._keyframe("join")
        return self.consumer

    def close(self) -> None:
        """Leave the source; the last player of the shared encoder stops its
        audio transcoder."""
        if self.consumer is None:
            return
        if not self.consumer.closed:
            self.consumer.close()
        key = self.wire_key  # (also when the live core closed the consumer first)
        if not any(getattr(c.sink, "wire_key", None) == key for c in self.source.consumers):
            self.encoder.stop_bridge()

    # ---- IMediaSink -----------------------------------------------------------
    def write(self, data) -> None:
        if not data:
            return
        now = self._clock()
        video, audio = self.video, self.audio
        records = self.encoder.records(data)
        audio_from = None
        if self._backlog and records:
            audio_from = max(pts for _, _, pts in records) - AUDIO_BACKLOG_MS
        send_many = self._send_many
        if send_many is not None:  # this write's datagrams go out in one call (see send_many)
            batch = []
            self._send = batch.append
        try:
            last_pts = t = None
            video_flag = self._video_flag
            for payload, flags, pts in records:
                # audio, or video of this player's codec (an H.264 player gets no H.265 and back)
                out = audio if flags & F_AUDIO else (video if flags & F_HEVC == video_flag else None)
                if out is not None:
                    if audio_from is not None and out is audio and pts < audio_from:
                        continue  # the GOP cache's older audio (AUDIO_BACKLOG_MS)
                    if pts != last_pts:  # a frame's packets share their time: mapped once
                        t = self._player_time(pts, now)
                        last_pts = pts
                    self._send_rtp(out, payload, flags & F_MARKER, t)
        finally:
            if send_many is not None:
                self._send = self._send_one
        if send_many is not None and batch:
            try:
                send_many(batch)
            except (ValueError, OSError):
                self.stats.send_errors += len(batch)

    def stream_published(self) -> None:
        self._offset = None  # a new publisher's time: re-anchored at its first packet

    def stream_unpublished(self) -> None:
        self._offset = None

    # ---- sending ----------------------------------------------------------------
    def _player_time(self, pts: int, now: float) -> int:
        offset = self._offset
        if offset is None or not -JUMP_BACK <= pts - self._last_pts <= JUMP_FORWARD:
            if offset is None and not self.stats.packets:
                t = 0
            else:
                t = self._last_t + max(1, int((now - self._last_wall) * 1000))
            offset = self._offset = pts - t
            self._last_t, self._last_wall = t, now
        self._last_pts = pts
        t = pts - offset
        if t > self._last_t:
            self._last_t, self._last_wall = t, now
        return t

    def _send_rtp(self, out: _Out, payload, marker: int, t: int) -> None:
        # The hot path of the fan-out (every packet, every player): kept flat on purpose.
        seq = out.seq
        out.seq = (seq + 1) & 0xFFFF
        b1 = (0x80 if marker else 0) | out.pt
        rtp_time = (out.base + int(t * out.rate_ms)) & 0xFFFFFFFF
        if out.twcc_byte is not None:
            header = _FIXED_TWCC.pack(0x90, b1, seq, rtp_time, out.ssrc, 0xBEDE, 1, out.twcc_byte, self._twcc_seq)
            self._twcc_seq = (self._twcc_seq + 1) & 0xFFFF
        elif out.twcc_id:
            header = _FIXED.pack(0x90, b1, seq, rtp_time, out.ssrc) + twcc_extension_block(
                out.twcc_id, self._twcc_seq)
            self._twcc_seq = (self._twcc_seq + 1) & 0xFFFF
        else:
            header = _FIXED.pack(0x80, b1, seq, rtp_time, out.ssrc)
        out.cache.put(seq, header, payload)
        size = len(payload)
        out.packets += 1
        out.octets += size
        stats = self.stats
        stats.packets += 1
        stats.octets += size
        try:
            self._send(self._seal(header, payload))
        except (ValueError, OSError):
            stats.send_errors += 1

    def _emit(self, header: bytes, payload) -> None:
        try:
            self._send(self._seal(header, payload))
        except (ValueError, OSError):
            self.stats.send_errors += 1

    # ---- RTCP from the player ---------------------------------------------------
    def on_rtcp(self, data) -> None:
        """Handle one plain (SRTCP-unprotected) RTCP compound datagram."""
        try:
            packets = parse_compound(data)
        except RtcpError:
            self.stats.rtcp_errors += 1
            return
        for packet in packets:
            self._handlers.get(type(packet), self._ignore)(packet)

    def _ignore(self, packet) -> None:
        self.stats.rtcp_ignored += 1

    def _on_nack(self, packet) -> None:
        self.stats.nacks += 1
        out = self._outs.get(packet.media_ssrc)
        lost = list(dict.fromkeys(packet.lost))
        self.stats.nack_seqs += len(lost)
        if out is None or not self.nack or (self.breaker is not None and self.breaker.critical):
            self.stats.nack_misses += len(lost)
            return
        for seq in lost[:out.cache.size]:
            entry = out.cache.get(seq)
            if entry is None:
                self.stats.nack_misses += 1
                continue
            self.stats.retransmits += 1
            self._emit(*entry)

    def _on_pli(self, packet) -> None:
        self.stats.plis += 1
        self._keyframe("pli")

    def _on_fir(self, packet) -> None:
        self.stats.firs += 1
        self._keyframe("fir")

    def _keyframe(self, reason: str) -> None:
        if self._request_keyframe is not None and self.video is not None:
            self.stats.keyframe_requests += 1
            self._request_keyframe(reason)

    def _on_rr(self, packet) -> None:
        self.stats.receiver_reports += 1
        for block in packet.reports:
            if block.ssrc in self._outs:
                self.stats.fraction_lost = block.fraction_lost
                self.stats.jitter = block.jitter

    def _on_remb(self, packet) -> None:
        self.stats.remb += 1
        self.stats.remb_bitrate = packet.bitrate

    def _on_twcc(self, packet) -> None:
        self.stats.twcc += 1

    # ---- RTCP to the player ------------------------------------------------------
    def rtcp_tick(self, now: float) -> list:
        """Plain RTCP datagrams due at ``now`` (Unix seconds): a compound SR +
        SDES per ``SR_INTERVAL`` once something was sent; protect each with
        SRTCP and send it."""
        if self._last_sr is not None and now - self._last_sr < SR_INTERVAL:
            return []
        outs = [o for o in (self.video, self.audio) if o is not None and o.packets]
        if not outs:
            return []
        self._last_sr = now
        ntp = ntp_timestamp(now)
        t = self._last_t + max(0.0, now - self._last_wall) * 1000
        packets = [SenderReport(o.ssrc, ntp, o.rtp_time(t), o.packets & 0xFFFFFFFF, o.octets & 0xFFFFFFFF)
                   for o in outs]
        packets.append(Sdes([SdesChunk(o.ssrc, [(SDES_CNAME, self.cname)]) for o in outs]))
        self.stats.sender_reports += len(outs)
        return [serialize_compound(packets)]
