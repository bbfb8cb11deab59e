"""The RTMP server connection as a sans-I/O state machine (h11 style).

Bytes go in with :meth:`ServerSession.receive_data`; events come out of
:meth:`next_event`; bytes to write come out of :meth:`data_to_send`.  The
session answers protocol control and the routine commands itself; decisions
(connect, publish, play) are events the adapter answers with ``accept_*`` or
``reject_*``, so asynchronous checks (HTTP hooks) fit in between and a refused
publisher never sees ``NetStream.Publish.Start``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..codec import amf0, flv
from ..live.packet import AUDIO, DATA, VIDEO, MediaPacket
from . import messages as m
from .chunk import ChunkReader, RtmpMessage
from .connection import RtmpConnection
from .errors import RtmpError
from .handshake import ServerHandshake

FMS_VERSION = "3,5,3,888"
CLIENT_ID = "ASAICiss"
STREAM_ID = 1  # SRS hands out stream id 1 to every createStream
CSID_COMMAND = 3
CSID_STREAM = 5
CSID_VIDEO = 6
CSID_AUDIO = 7
CSID_DATA = 5
# Commands a client may send after connect before the connect is answered
# (pipelined in one write); they wait for the decision, then are answered in
# order.  Past either bound the connection is refused.
MAX_PENDING_COMMANDS = 64
MAX_PENDING_COMMAND_BYTES = 1024 * 1024


class ProtocolViolation(RtmpError):
    """A peer broke the command flow (e.g. publish before connect)."""


# ---- events -----------------------------------------------------------------
@dataclass
class ConnectRequested:
    app: str
    tc_url: str
    command_object: dict
    object_encoding: float


@dataclass
class PublishRequested:
    stream_id: int
    stream_name: str  # may carry '?query'
    publish_type: str  # 'live', 'record', 'append'
    fmle: bool  # the FMLE/OBS/FFmpeg flow (releaseStream, FCPublish)


@dataclass
class PlayRequested:
    stream_id: int
    stream_name: str
    start: float
    duration: float
    reset: bool


@dataclass
class MediaReceived:
    packet: MediaPacket


@dataclass
class PauseRequested:
    paused: bool
    position: float


@dataclass
class ReceiveAVChanged:
    audio: bool | None = None
    video: bool | None = None


@dataclass
class StreamClosed:
    """The client ended its publish or play (FCUnpublish, deleteStream, closeStream)."""

    stream_id: int
    reason: str


@dataclass
class UnknownMessage:
    type_id: int
    size: int


# ---- helpers ------------------------------------------------------------------
def _is_number(value) -> bool:
    """A finite AMF number (bools are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) != float("inf")


def status(code: str, description: str, level: str = "status", **extra) -> dict:
    info = {"level": level, "code": code, "description": description}
    info.update(extra)
    return info


def media_packet(msg_type: int, timestamp: int, payload: bytes) -> MediaPacket:
    """Turn an RTMP audio/video/data message into a MediaPacket."""
    if msg_type == VIDEO:
        tag = flv.parse_video(payload)
        return MediaPacket(
            VIDEO,
            timestamp,
            payload,
            codec=tag.codec,
            pts=timestamp + tag.cts,
            keyframe=tag.keyframe,
            sequence_header=tag.sequence_header,
        )
    if msg_type == AUDIO:
        tag = flv.parse_audio(payload)
        return MediaPacket(
            AUDIO, timestamp, payload, codec=tag.codec, sequence_header=tag.sequence_header
        )
    return MediaPacket(DATA, timestamp, payload)


def metadata_packet(timestamp: int, payload: bytes) -> MediaPacket | None:
    """The onMetaData packet an AMF0 data message (``@setDataFrame`` or not) carries, with
    ``server`` added; None for any other data message (dropped, as SRS does).  Raises
    CodecError on AMF0 that does not decode."""
    values = amf0.decode_all(payload)
    if values and values[0] == "@setDataFrame":
        values = values[1:]
    if len(values) < 2 or values[0] != "onMetaData":
        return None
    meta = amf0.ECMAArray(values[1] if isinstance(values[1], dict) else {})
    meta.setdefault("server", "srs-twisted")
    return MediaPacket(DATA, timestamp, amf0.encode_many("onMetaData", meta))


class PlayDuration:
    """The play command's duration on a live stream, counted as SRS does:
    the sum of the steps between the timestamps of the audio and video
    messages a player was sent (a step back restarts the count from there,
    so a new publisher's timestamps cost nothing).  The player is stopped
    once ``elapsed >= limit`` (milliseconds)."""

    __slots__ = ("limit", "elapsed", "_last")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.elapsed = 0
        self._last = None

    def add(self, timestamp: int) -> bool:
        """Count one sent message; True once the duration is reached."""
        last = self._last
        if last is not None and timestamp >= last:
            self.elapsed += timestamp - last
        self._last = timestamp
        return self.elapsed >= self.limit


class ServerSession(RtmpConnection):
    """One RTMP server-side connection."""

    def __init__(
        self,
        chunk_size: int = 60000,
        out_ack_size: int = 2500000,
        in_ack_size: int = 0,
        max_message_size: int = 16 * 1024 * 1024 - 1,
        random_bytes=None,
    ) -> None:
        kw = {} if random_bytes is None else {"random_bytes": random_bytes}
        super().__init__(ServerHandshake(**kw), ChunkReader(max_message_size=max_message_size))
        self.chunk_size = chunk_size  # what we send with, after connect
        self.out_ack_size = out_ack_size
        self.ack_window = in_ack_size
        self.state = "handshake"
        self.connected = False
        self.app = ""
        self.tc_url = ""
        self.object_encoding = 0.0
        self._connect_tid = 1.0
        self.publishing = False
        self.playing = False
        self.fmle = False
        self._pending: list = []  # (command, message) received while connecting
        self._pending_bytes = 0

    @property
    def in_ack_size(self) -> int:
        """How often we acknowledge what the peer sent (its window size)."""
        return self.ack_window

    @in_ack_size.setter
    def in_ack_size(self, value: int) -> None:
        self.ack_window = value

    def _handshake_done(self) -> None:
        self.state = "connect"

    # ---- decisions --------------------------------------------------------
    def accept_connect(self, server_info: dict | None = None) -> None:
        self._send(m.window_ack_size(self.out_ack_size))
        self._send(m.set_peer_bandwidth(self.out_ack_size, 2))
        self._send(m.set_chunk_size(self.chunk_size))
        self._out_chunk = self.chunk_size
        data = amf0.ECMAArray({"version": FMS_VERSION, "srs_server": "srs-twisted"})
        if server_info:
            data.update(server_info)
        props = {"fmsVer": "FMS/" + FMS_VERSION, "capabilities": 127.0, "mode": 1.0}
        info = status(
            "NetConnection.Connect.Success",
            "Connection succeeded",
            objectEncoding=self.object_encoding,
            data=data,
        )
        self._command(CSID_COMMAND, 0, "_result", self._connect_tid, props, info)
        self._command(CSID_COMMAND, 0, "onBWDone", 0.0, None)
        self.connected = True
        self.state = "connected"
        # Commands pipelined behind connect are answered now, in order; their
        # events (publish, play...) follow.
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        for cmd, msg in pending:
            self._on_command(cmd, msg)

    def reject_connect(self, description: str = "Connection rejected") -> None:
        info = status("NetConnection.Connect.Rejected", description, level="error")
        self._command(CSID_COMMAND, 0, "_error", self._connect_tid, None, info)
        self.state = "closed"
        self._pending, self._pending_bytes = [], 0

    def accept_publish(self, stream_id: int = STREAM_ID) -> None:
        if self.fmle:
            self._command(
                CSID_STREAM,
                stream_id,
                "onFCPublish",
                0.0,
                None,
                {"code": "NetStream.Publish.Start", "description": "Started publishing stream."},
            )
        self._on_status(stream_id, "NetStream.Publish.Start", "Started publishing stream.")
        self.publishing = True
        self.state = "publishing"

    def reject_publish(
        self,
        stream_id: int = STREAM_ID,
        code: str = "NetStream.Publish.BadName",
        description: str = "Stream is not available for publishing.",
    ) -> None:
        self._on_status(stream_id, code, description, level="error")

    def accept_play(self, stream_id: int = STREAM_ID) -> None:
        self._send(m.user_control(m.STREAM_BEGIN, stream_id, chunk_size=self._out_chunk))
        self._on_status(stream_id, "NetStream.Play.Reset", "Playing and resetting stream.", details="stream")
        self._on_status(stream_id, "NetStream.Play.Start", "Started playing stream.", details="stream")
        self._data(stream_id, "|RtmpSampleAccess", True, True)
        # No onStatus(NetStream.Data.Start): FFmpeg shows it as an extra data
        # stream (SRS stopped sending it in 6.0.153, its #3767).
        self.playing = True
        self.state = "playing"

    def reject_play(
        self,
        stream_id: int = STREAM_ID,
        code: str = "NetStream.Play.StreamNotFound",
        description: str = "Stream not found.",
    ) -> None:
        self._on_status(stream_id, code, description, level="error")

    def redirect(self, url: str) -> None:
        """SRS's RTMP 302 (legacy origin cluster): the player should play
        ``url`` instead; ``ex.redirect`` is its tcUrl, ``ex.redirect2`` the URL."""
        tc_url = url.split("?", 1)[0].rpartition("/")[0]
        ex = {"code": 302.0, "redirect": tc_url, "redirect2": url}
        info = status("NetConnection.Connect.Rejected", "RTMP 302 Redirect", level="error", ex=ex)
        self._command(CSID_COMMAND, 0, "onStatus", 0.0, None, info)

    def stop_play(self, stream_id: int = STREAM_ID) -> None:
        """The play ended on the server's side (its duration was reached)."""
        self._on_status(stream_id, "NetStream.Play.Stop", "Stopped playing stream.", details="stream")
        self.playing = False
        self.state = "connected"

    # ---- media wire format (shared by every RTMP player) -------------------
    @property
    def wire_key(self):
        return ("rtmp", self.chunk_size)

    # ---- internals --------------------------------------------------------
    def _send(self, data: bytes) -> None:
        self._out += data

    def _data(self, stream_id, *values) -> None:
        self._out += m.data_message(CSID_STREAM, stream_id, *values, chunk_size=self._out_chunk)

    def _on_status(self, stream_id, code, description, level="status", **extra) -> None:
        info = status(code, description, level=level, clientid=CLIENT_ID, **extra)
        self._command(CSID_STREAM, stream_id, "onStatus", 0.0, None, info)

    def _on_message(self, msg: RtmpMessage) -> None:
        t = msg.type_id
        if t in (VIDEO, AUDIO):
            if not self.publishing:
                return  # media before publish is started: ignored, as SRS does
            if not msg.payload:
                return
            self._events.append(MediaReceived(media_packet(t, msg.timestamp, msg.payload)))
        elif t in (m.DATA_AMF0, m.DATA_AMF3):
            self._on_data(msg)
        elif t in (m.COMMAND_AMF0, m.COMMAND_AMF3):
            self._on_command(m.parse_command(msg), msg)
        elif t == m.AGGREGATE:
            # Only media and data travel inside an aggregate (as in SRS);
            # nested aggregates and commands are dropped, never recursed into.
            for sub in m.parse_aggregate(msg.payload, msg.timestamp):
                if sub.type_id in (VIDEO, AUDIO, m.DATA_AMF0, m.DATA_AMF3):
                    self._on_message(sub)
        elif not self._on_control(msg):
            self._events.append(UnknownMessage(t, len(msg.payload)))

    def _on_data(self, msg: RtmpMessage) -> None:
        if not self.publishing:
            return
        payload = msg.payload
        if msg.type_id == m.DATA_AMF3 and payload[:1] == b"\x00":
            payload = payload[1:]
        pkt = metadata_packet(msg.timestamp, payload)
        if pkt is not None:
            self._events.append(MediaReceived(pkt))

    def _on_command(self, cmd, msg: RtmpMessage) -> None:
        name = cmd.name
        tid = cmd.transaction_id
        args = cmd.args
        if name == "connect":
            if self.state != "connect":
                raise ProtocolViolation("connect received twice")
            obj = cmd.command_object if isinstance(cmd.command_object, dict) else {}
            self.app = str(obj.get("app", ""))
            self.tc_url = str(obj.get("tcUrl", ""))
            encoding = obj.get("objectEncoding", 0)
            self.object_encoding = float(encoding) if _is_number(encoding) else 0.0
            self._connect_tid = tid
            self.state = "connecting"
            self._events.append(ConnectRequested(self.app, self.tc_url, dict(obj), self.object_encoding))
            return
        if self.state == "connecting":
            self._queue_command(cmd, msg)
            return
        if not self.connected:
            raise ProtocolViolation(f"command {name!r} before the connection was accepted")
        if name in ("releaseStream", "FCPublish"):
            if name == "FCPublish":
                self.fmle = True
            self._command(CSID_COMMAND, 0, "_result", tid, None, amf0.UNDEFINED)
        elif name == "createStream":
            self._command(CSID_COMMAND, 0, "_result", tid, None, float(STREAM_ID))
        elif name == "publish":
            stream = str(args[0]) if args else ""
            kind = str(args[1]) if len(args) > 1 and isinstance(args[1], str) else "live"
            self._events.append(PublishRequested(msg.stream_id or STREAM_ID, stream, kind, self.fmle))
        elif name == "play":
            stream = str(args[0]) if args else ""
            start = float(args[1]) if len(args) > 1 and _is_number(args[1]) else -2.0
            duration = float(args[2]) if len(args) > 2 and _is_number(args[2]) else -1.0
            reset = bool(args[3]) if len(args) > 3 else True
            self._events.append(PlayRequested(msg.stream_id or STREAM_ID, stream, start, duration, reset))
        elif name == "pause":
            paused = bool(args[0]) if args else True
            position = float(args[1]) if len(args) > 1 and _is_number(args[1]) else 0.0
            if self.playing:
                sid = msg.stream_id or STREAM_ID
                if paused:
                    self._on_status(sid, "NetStream.Pause.Notify", "Paused stream.")
                    self._send(m.user_control(m.STREAM_EOF, sid, chunk_size=self._out_chunk))
                else:
                    self._on_status(sid, "NetStream.Unpause.Notify", "Unpaused stream.")
                    self._send(m.user_control(m.STREAM_BEGIN, sid, chunk_size=self._out_chunk))
                self._events.append(PauseRequested(paused, position))
        elif name == "FCUnpublish":
            sid = msg.stream_id or STREAM_ID
            self._command(
                CSID_STREAM,
                sid,
                "onFCUnpublish",
                0.0,
                None,
                {"code": "NetStream.unpublish.Success", "description": "Stop publishing stream."},
            )
            self._command(CSID_STREAM, sid, "_result", tid, None, amf0.UNDEFINED)
            if self.publishing:
                self._on_status(sid, "NetStream.Unpublish.Success", "Stream is now unpublished")
                self._end_stream(sid, name)
        elif name in ("deleteStream", "closeStream"):
            sid = int(args[0]) if args and _is_number(args[0]) and 0 <= args[0] < 2**31 else STREAM_ID
            self._end_stream(sid, name)
        elif name == "getStreamLength":
            self._command(CSID_COMMAND, 0, "_result", tid, None, 0.0)
        elif name in ("receiveAudio", "receiveVideo"):
            flag = bool(args[0]) if args else True
            if name == "receiveAudio":
                self._events.append(ReceiveAVChanged(audio=flag))
            else:
                self._events.append(ReceiveAVChanged(video=flag))
        elif tid and name not in ("_result", "_error", "onStatus", "onBWDone", "_checkbw", "FCSubscribe"):
            # Answer unknown calls so clients waiting on a transaction go on.
            self._command(CSID_COMMAND, 0, "_result", tid, None, amf0.UNDEFINED)

    def _queue_command(self, cmd, msg: RtmpMessage) -> None:
        """Hold a command that came before the connect decision (as SRS,
        which reads the next message only after answering connect)."""
        self._pending_bytes += len(msg.payload)
        if len(self._pending) >= MAX_PENDING_COMMANDS or self._pending_bytes > MAX_PENDING_COMMAND_BYTES:
            raise ProtocolViolation(
                f"more than {MAX_PENDING_COMMANDS} commands or {MAX_PENDING_COMMAND_BYTES} bytes of commands "
                f"sent before the connect was answered (last {cmd.name!r})"
            )
        self._pending.append((cmd, msg))

    def _end_stream(self, stream_id: int, reason: str) -> None:
        if self.publishing or self.playing:
            self.publishing = False
            self.playing = False
            self.state = "connected"
            self._events.append(StreamClosed(stream_id, reason))


__all__ = [
    "ConnectRequested",
    "MediaReceived",
    "PauseRequested",
    "PlayDuration",
    "PlayRequested",
    "ProtocolViolation",
    "PublishRequested",
    "ReceiveAVChanged",
    "ServerSession",
    "StreamClosed",
    "UnknownMessage",
    "media_packet",
]
