"""A WebRTC publisher (WHIP or ``/rtc/v1/publish/``) feeding the live core.

:class:`RtcIngest` is sans-I/O: plain RTP packets in, :class:`MediaPacket`
out, the same FLV-style bodies an RTMP publisher's packets carry, so every
output (RTMP, HTTP-FLV, HLS, DVR...) serves the stream unchanged:

* Video RTP first goes through a :class:`~.reorder.ReorderBuffer` (held at most
  0.3 s behind a hole); its holes are NACKed (``nack on`` and the track's ``nack``
  feedback) and the retransmissions fill them.  A receiver report per second
  (:class:`~.reception.Reception`) tells the publisher its loss and jitter.
* Transport-wide congestion control, when negotiated (``twcc on`` and the
  offer's video section has the transport-cc extension, as SRS decides): the
  arrival of every packet carrying a transport-wide number is recorded
  (:class:`~.twcc.TwccRecorder`) and transport-cc feedback goes to the
  publisher every tick (100 ms, SRS's interval), one packet per datagram.
* H.264 (90 kHz): frames from :class:`~..codec.rtp_h264.H264Depayloader`; an
  AVC sequence header (``AVCDecoderConfigurationRecord`` of the SPS/PPS seen)
  before the first keyframe and whenever the parameter sets change, then
  ``0x17``/``0x27`` NALU bodies (4-byte lengths).  The depayloader drops
  frames until a keyframe after a loss: ``needs_keyframe`` asks for a PLI.
* Opus (48 kHz), with ``rtc_to_rtmp off``: an Enhanced-RTMP Opus sequence
  header (``OpusHead``) once, then one coded-frames body per Opus packet (Opus
  in FLV, which FFmpeg >= 6.1 reads).  With ``rtc_to_rtmp on`` (``aac_bitrate``
  given) the Opus is transcoded to AAC by an :class:`~.bridge.AacBridge`: the
  AAC sequence header, then AAC frames that also carry the Opus they replace
  for the stream's WebRTC players.  A PLI goes out every ``pli_for_rtmp``
  seconds then, so RTMP/HLS players joining find keyframes.
* Timestamps: each track's RTP timestamps are unwrapped and turned into
  milliseconds (90 or 48 per ms) from the arrival time of the track's first
  packet, so audio and video share one timeline from the first packet on
  (no audio is held back waiting for RTCP).  Once the publisher's sender
  reports of both tracks are in, they say which audio instant goes with which
  video instant (RTP -> NTP); when :data:`RESYNC_REPORTS` estimates in a row
  agree within :data:`RESYNC_AGREE_MS` and the arrival-based timeline is off
  by more than :data:`RESYNC_MS`, the audio track's base moves to their
  median (and the AAC bridge's clock with it): a publisher whose video leaves
  its encoder later than its audio is put back in sync.  Reports that
  disagree move nothing: aiortc pairs its NTP time with the RTP time of the
  last packet it sent, which on a loaded machine made the audio jump by
  hundreds of ms at almost every report.

:class:`RtcPublishPeer` is the session owner the UDP protocol drives: its
:class:`~.connection.RtcConnection` in the answered DTLS role, PLI (at most one
per :data:`PLI_INTERVAL`) while a keyframe is needed, and the stream's
publish/unpublish in the registry and the policy (hooks) as RTMP does.
"""

from __future__ import annotations

from ..codec import rtp_h264, rtp_opus
from ..codec.errors import CodecError
from ..codec.opus import make_opus_head
from ..codec.rtcp_packets import Nack, Pli, SenderReport
from ..codec.rtp import ts_diff
from ..live.packet import AUDIO, VIDEO, MediaPacket
from .bridge import AacBridge
from .connection import Peer, RtcConnection
from .reception import Reception
from .reorder import ReorderBuffer
from .twcc import TwccRecorder

__all__ = ["RtcIngest", "RtcPublishPeer", "PLI_INTERVAL"]

PLI_INTERVAL = 1.0  # seconds between PLIs while the depayloader waits for a keyframe
RR_INTERVAL = 1.0  # seconds between receiver reports to the publisher
OUR_SSRC = 1  # the sender SSRC of our RTCP feedback
# Seconds audio may wait for the first video sequence header (then it goes alone): while no video packet
# came at all, and while video packets come but no key frame made a header yet (a publisher's encoder
# still starting, a lost key frame and its PLI).  An audio header alone before the video's would cut an
# MP4 DVR file at the video's late header.
HOLD_AUDIO = 3.0
HOLD_AUDIO_VIDEO = 10.0
RESYNC_MS = 15  # an audio/video error (by the sender reports) beyond this moves the audio timeline ...
RESYNC_MAX_MS = 5000  # ... unless it is beyond this (a bogus report) ...
RESYNC_REPORTS = 3  # ... once this many estimates in a row agree ...
RESYNC_AGREE_MS = 30  # ... within this (noisy reports move nothing)


class _Clock:
    """One track's RTP timestamps as milliseconds on the publisher's timeline."""

    def __init__(self, rate: int, base_ms: float) -> None:
        self.rate = rate
        self.base_ms = base_ms
        self.last = None
        self.ticks = 0

    def ticks_at(self, timestamp: int) -> int:
        """Ticks since the track's first packet at RTP ``timestamp`` (near the last one)."""
        return self.ticks + ts_diff(timestamp, self.last)

    def ms(self, timestamp: int) -> int:
        if self.last is not None:
            self.ticks += ts_diff(timestamp, self.last)
        self.last = timestamp
        return max(0, int(self.base_ms + self.ticks * 1000 // self.rate))


class RtcIngest:
    """RTP of one publisher's agreed tracks -> live-core packets (see the module docstring)."""

    def __init__(self, video_pt: int | None, audio_pt: int | None, start: float,
                 aac_bitrate: int | None = None) -> None:
        self.video_pt = video_pt
        self.audio_pt = audio_pt
        self.start = start
        self.h264 = rtp_h264.H264Depayloader()
        self.opus = rtp_opus.OpusDepayloader()
        self.reorder = ReorderBuffer()
        self.video_ssrc = None
        self.malformed = 0
        self.frames = 0
        self._clocks: dict[int, _Clock] = {}
        self._avc_config = None
        self._opus_head = False
        self.aac = AacBridge(aac_bitrate) if aac_bitrate else None
        self.audio_ssrc = None
        self._reports: dict[int, tuple] = {}  # kind -> (NTP seconds, RTP timestamp) of its latest SR
        self.resyncs = 0
        self.resync_ms = 0.0  # the latest audio move
        self._estimates: list = []  # where the audio timeline should start (ms), by the latest report pairs
        # With rtc_to_rtmp (AAC), both sequence headers before any media, as an RTMP publisher sends
        # them (an MP4 DVR file cannot take a header after media): audio waits (bounded) for the
        # video header when both tracks were agreed, and the AAC header goes out with the video one.
        self._holding = self.aac is not None and video_pt is not None and audio_pt is not None
        self._held: list = []
        self._hold_since = None
        self._video_seen = False  # a video packet came (its header may still be on its way)
        self.audio_alone = False  # the audio went on without waiting any more for the video header

    @property
    def needs_keyframe(self) -> bool:
        return self.video_pt is not None and self.h264.needs_keyframe

    def push(self, packet, now: float) -> list:
        if packet.payload_type == self.video_pt and self.video_pt is not None:
            self.video_ssrc = packet.ssrc
            self._video_seen = True
            out = []
            for ready in self.reorder.push(packet, now):
                out += self._video(ready, now)
            return out
        if packet.payload_type == self.audio_pt and self.audio_pt is not None:
            self.audio_ssrc = packet.ssrc
            return self._audio(packet, now)
        return []

    def sender_report(self, ssrc: int, ntp: int, rtp_timestamp: int) -> None:
        """A publisher's SR (64-bit NTP, RTP): may move the audio timeline (module docstring)."""
        kind = VIDEO if ssrc == self.video_ssrc else AUDIO if ssrc == self.audio_ssrc else None
        if kind is None:
            return
        self._reports[kind] = (ntp / 2 ** 32, rtp_timestamp)
        video, audio = self._clocks.get(VIDEO), self._clocks.get(AUDIO)
        if len(self._reports) < 2 or video is None or audio is None or video.last is None or audio.last is None:
            return
        ntp_v, rtp_v = self._reports[VIDEO]
        ntp_a, rtp_a = self._reports[AUDIO]
        audio_start = ntp_a - audio.ticks_at(rtp_a) / audio.rate  # NTP time of the first audio sample
        # the video timeline's time at that NTP instant is where the audio timeline should start
        want = video.base_ms + video.ticks_at(rtp_v) * 1000 / video.rate + (audio_start - ntp_v) * 1000
        estimates = self._estimates
        estimates.append(want)
        del estimates[:-RESYNC_REPORTS]
        if len(estimates) < RESYNC_REPORTS or max(estimates) - min(estimates) > RESYNC_AGREE_MS:
            return  # not yet, or reports that disagree (a sender pairing NTP with a late packet's RTP time)
        want = sorted(estimates)[len(estimates) // 2]
        move = want - audio.base_ms
        if RESYNC_MS < abs(move) < RESYNC_MAX_MS:
            audio.base_ms = want
            self.resyncs += 1
            self.resync_ms = move
            estimates.clear()
            if self.aac is not None:
                self.aac.shift(move)

    def flush(self, now: float) -> list:
        """Video packets held past a hole for too long, depayloaded now (call on a timer)."""
        out = []
        for ready in self.reorder.release(now):
            out += self._video(ready, now)
        return out

    def _clock(self, kind: int, rate: int, now: float) -> _Clock:
        clock = self._clocks.get(kind)
        if clock is None:
            clock = self._clocks[kind] = _Clock(rate, (now - self.start) * 1000.0)
        return clock

    def _video(self, packet, now: float) -> list:
        try:
            frames = self.h264.push(packet)
        except CodecError:
            self.malformed += 1
            return []
        clock = self._clock(VIDEO, rtp_h264.CLOCK_RATE, now)
        out = []
        for frame in frames:
            dts = clock.ms(frame.timestamp)
            config = self.h264.decoder_config()
            if config is None:
                continue
            if config != self._avc_config:
                if not frame.keyframe:
                    continue
                first = self._avc_config is None
                self._avc_config = config
                out.append(MediaPacket(VIDEO, dts, b"\x17\x00\x00\x00\x00" + config, codec="h264",
                                       keyframe=True, sequence_header=True))
                if first and self.aac is not None and self.audio_pt is not None:
                    out += self.aac.header(dts)
                    out += self._held
                    self._held, self._holding = [], False
            head = b"\x17\x01\x00\x00\x00" if frame.keyframe else b"\x27\x01\x00\x00\x00"
            out.append(MediaPacket(VIDEO, dts, head + frame.avcc(), codec="h264", keyframe=frame.keyframe))
            self.frames += 1
        return out

    def _audio(self, packet, now: float) -> list:
        try:
            frame = self.opus.push(packet)
        except CodecError:
            self.malformed += 1
            return []
        if frame is None:
            return []
        dts = self._clock(AUDIO, rtp_opus.CLOCK_RATE, now).ms(frame.timestamp)
        out = self._audio_header(dts)
        if self.aac is not None:
            out += self.aac.push(frame.data, dts)
        else:
            out.append(MediaPacket(AUDIO, dts, b"\x91Opus" + frame.data, codec="opus"))
        if self._holding:
            if self._hold_since is None:
                self._hold_since = now
            if now - self._hold_since < (HOLD_AUDIO_VIDEO if self._video_seen else HOLD_AUDIO):
                self._held += out
                return []
            out, self._held, self._holding = self._held + out, [], False  # no video header came: audio alone
            self.audio_alone = True
        return out

    def _audio_header(self, dts: int) -> list:
        """The audio sequence header, once: AAC's (rtc_to_rtmp) or an Enhanced-RTMP OpusHead."""
        if self.aac is not None:
            return self.aac.header(dts)
        if self._opus_head:
            return []
        self._opus_head = True
        return [MediaPacket(AUDIO, dts, b"\x90Opus" + make_opus_head(2, 48000), codec="opus", sequence_header=True)]


class RtcPublishPeer(Peer):
    """One publishing session: transport, ingest and the stream (see the module docstring).

    ``aac_bitrate`` (``rtc_to_rtmp on``): transcode Opus to AAC at that rate;
    ``pli_for_rtmp``: seconds between the periodic PLIs then."""

    #: the stream's players can tell a WebRTC publisher (rtmp_to_rtc off plays only these)
    rtc_publisher = True

    def __init__(self, answer, connection: RtcConnection, source, transmit, on_close, now: float,
                 nack: bool = True, aac_bitrate: int | None = None, pli_for_rtmp: float | None = None,
                 breaker=None) -> None:
        super().__init__(answer, connection, source, transmit, on_close)
        # SRS's circuit breaker: no NACK asked at its high level, no TWCC feedback at critical.
        self.breaker = breaker
        self.nack = nack and bool(answer.track("video") and answer.track("video").nack)
        self.nacks_sent = 0
        self.reception = Reception(OUR_SSRC)
        self._rates = {t.pt: t.clock_rate for t in answer.tracks}
        self._last_rr = None
        self.rrs = 0
        video, audio = answer.track("video"), answer.track("audio")
        self.ingest = RtcIngest(video.pt if video else None, audio.pt if audio else None, now, aac_bitrate)
        self.pli_for_rtmp = pli_for_rtmp
        self._last_periodic_pli = now
        self._last_pli = None
        self._pli_wanted = False
        self.plis = 0
        # SRS takes the transport-cc extension id of the video section only (audio has none in some offers)
        twcc_id = video.twcc_id if video is not None else None
        self.twcc = TwccRecorder(twcc_id, OUR_SSRC, video.ssrc or 0) if twcc_id else None

    # --- IPushProducer, for the source ---

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        self.closed("stopped by the stream")

    def summary(self) -> str:
        ingest = self.ingest
        return (f"frames={ingest.frames} dropped_frames={ingest.h264.dropped} lost_audio={ingest.opus.lost} "
                f"plis={self.plis} nacks={self.nacks_sent} recovered={ingest.reorder.recovered} "
                f"given_up={ingest.reorder.given_up} rrs={self.rrs} "
                f"av_resyncs={ingest.resyncs} av_resync_ms={ingest.resync_ms:.0f}"
                + (" audio_alone=1" if ingest.audio_alone else "")
                + (f" aac_frames={ingest.aac.frames}" if ingest.aac is not None else "")
                + (f" twcc={self.twcc.feedbacks}" if self.twcc is not None else ""))

    def on_closed(self, reason: str) -> None:
        if self.ingest.aac is not None:
            self.ingest.aac.close()

    def request_keyframe(self) -> None:
        """A player joined or lost a picture: PLI now (still at most one per PLI_INTERVAL)."""
        self._pli_wanted = True

    # --- from the UDP protocol ---

    def rtp_in(self, data: bytes, now: float) -> None:
        self.recv_bytes += len(data)
        if self.twcc is not None and self.connection.srtp is not None and not self.ended:
            # before SRTP: a packet it refuses (a duplicate retransmission) still arrived
            self.twcc.on_rtp(data, now)
            if self.twcc.full:
                self._send_twcc()
        packet = self.connection.receive_rtp(data)
        if packet is None or self.ended:
            return
        rate = self._rates.get(packet.payload_type)
        if rate:
            self.reception.on_rtp(packet, now, rate)
        for media in self.ingest.push(packet, now):
            self.source.write(media)
        self._maybe_nack(now)
        self._maybe_pli(now)
        self._flush(now)

    def rtcp_in(self, data: bytes, now: float) -> None:
        self.recv_bytes += len(data)
        for packet in self.connection.receive_rtcp(data):  # SDES/REMB/TWCC from a publisher: unused
            if isinstance(packet, SenderReport):
                self.reception.on_sender_report(packet, now)
                self.ingest.sender_report(packet.ssrc, packet.ntp_timestamp, packet.rtp_timestamp)

    def on_tick(self, now: float) -> None:
        for media in self.ingest.flush(now):
            self.source.write(media)
        if self.pli_for_rtmp and now - self._last_periodic_pli >= self.pli_for_rtmp:
            self._last_periodic_pli = now
            self._pli_wanted = True
        self._maybe_nack(now)
        self._maybe_pli(now)
        self._send_twcc()
        if self._last_rr is None or now - self._last_rr >= RR_INTERVAL:
            report = self.reception.report(now)
            if report is not None:
                self._last_rr = now
                self.rrs += 1
                self.connection.send_rtcp([report])

    def on_connected(self, now: float) -> None:
        self._maybe_pli(now)

    # --- inside ---

    def _maybe_nack(self, now: float) -> None:
        if not self.nack or self.connection.srtp is None or self.ingest.video_ssrc is None:
            return
        if self.breaker is not None and self.breaker.high:
            return
        lost = self.ingest.reorder.nacks(now)
        if lost:
            self.nacks_sent += 1
            self.connection.send_rtcp([Nack(OUR_SSRC, self.ingest.video_ssrc, lost)])

    def _send_twcc(self) -> None:
        if self.twcc is None:
            return
        if self.breaker is not None and self.breaker.critical:
            self.twcc.drop()
            return
        if self.ingest.video_ssrc is not None:
            self.twcc.media_ssrc = self.ingest.video_ssrc
        for feedback in self.twcc.feedback():  # one per datagram, as SRS sends them
            self.connection.send_rtcp([feedback])

    def _maybe_pli(self, now: float) -> None:
        if self.connection.srtp is None or self.ingest.video_ssrc is None:
            return
        if not (self.ingest.needs_keyframe or self._pli_wanted):
            return
        if self._last_pli is not None and now - self._last_pli < PLI_INTERVAL:
            return
        self._last_pli = now
        self._pli_wanted = False
        self.plis += 1
        self.connection.send_rtcp([Pli(OUR_SSRC, self.ingest.video_ssrc)])
