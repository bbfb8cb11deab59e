"""A WebRTC player session (WHEP or ``/rtc/v1/play/``): the transport glue around
:class:`~.player.RtcPlayer`.

Once DTLS is done the player joins the stream (a WebRTC publisher is asked for a
keyframe with a PLI and joined live at it; other publishers from the GOP cache's
keyframe, see RtcPlayer.subscribe); its RTP leaves protected by the session's
SRTP, the peer's SRTCP (NACK, PLI, FIR, RR...) goes to the player, and the
player's SR/SDES go out each tick.
"""

from __future__ import annotations

from .connection import Peer, RtcConnection
from .player import RtcPlayer

__all__ = ["RtcPlayPeer", "encoder_options"]


def encoder_options(rtc) -> dict:
    """The shared RTP encoder's options from a vhost's ``rtc`` config: B-frames
    and SEI as ``keep_bframe``/``keep_avc_nalu_sei`` say; ``rtmp_to_rtc on``
    transcodes AAC/MP3 to Opus at ``opus_bitrate``, ``off`` plays only
    WebRTC publishers (SRS)."""
    return {"keep_bframe": rtc.keep_bframe, "keep_sei": rtc.keep_avc_nalu_sei, "audio_bridge": rtc.rtmp_to_rtc,
            "rtc_only": not rtc.rtmp_to_rtc, "opus_bitrate": rtc.opus_bitrate}


class RtcPlayPeer(Peer):
    def __init__(self, answer, connection: RtcConnection, source, transmit, on_close, *, nack: bool = True,
                 clock=None, encoder_options: dict | None = None, breaker=None) -> None:
        super().__init__(answer, connection, source, transmit, on_close)
        self.nack = nack
        self.breaker = breaker
        self.clock = clock
        self.encoder_options = encoder_options
        self.player: RtcPlayer | None = None

    def on_connected(self, now: float) -> None:
        srtp = self.connection.srtp
        kwargs = {"clock": self.clock} if self.clock is not None else {}
        self.player = RtcPlayer(self.source, self.answer.tracks, self._send_one, protect_rtp=srtp.protect_rtp,
                                protector=srtp.rtp_protector(), send_many=self._send_many,
                                request_keyframe=self._keyframe, nack=self.nack,
                                encoder_options=self.encoder_options, breaker=self.breaker, **kwargs)
        consumer = self.player.subscribe()
        address = self.session.address if self.session is not None else None
        if address is not None and len(address) > 2:  # over TCP: the live core pauses (drops GOPs) for a slow peer
            address[2].register_producer(consumer)

    def _send_one(self, datagram) -> None:
        # Peer._send for one datagram, without its list and sum (every packet of every player comes here).
        session = self.session
        if session is not None:
            self.sent_bytes += len(datagram)
            self.transmit(session, (datagram,))

    def _send_many(self, datagrams) -> None:
        session = self.session
        if session is not None:
            self.sent_bytes += sum(map(len, datagrams))
            self.transmit(session, datagrams)

    def _keyframe(self, reason: str) -> None:
        publisher = self.source.publisher
        ask = getattr(publisher, "request_keyframe", None)
        if ask is not None:
            ask()

    def rtcp_in(self, data: bytes, now: float) -> None:
        self.recv_bytes += len(data)
        srtp = self.connection.srtp
        if srtp is None or self.player is None:
            return
        plain = srtp.unprotect_rtcp(data)
        if plain is not None:
            self.player.on_rtcp(plain)
            self._flush(now)

    def on_tick(self, now: float) -> None:
        if self.player is None:
            return
        when = self.clock() if self.clock is not None else now
        for report in self.player.rtcp_tick(when):
            self._send([self.connection.srtp.protect_rtcp(report)])

    def summary(self) -> str:
        if self.player is None:
            return "never connected"
        st = self.player.stats
        return (f"packets={st.packets} nacks={st.nacks} nack_seqs={st.nack_seqs} retransmits={st.retransmits} "
                f"nack_misses={st.nack_misses} plis={st.plis} firs={st.firs}")

    def on_closed(self, reason: str) -> None:
        if self.player is not None:
            self.player.close()
