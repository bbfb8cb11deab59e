"""The RTMP client side (publish or play) as a sans-I/O state machine.

Same surface as the server session: ``receive_data``, ``events()``,
``data_to_send``.  Forward, edge and tests drive it through
:mod:`srs_twisted.rtmp.client`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..codec import amf0
from ..live.packet import AUDIO, VIDEO, MediaPacket
from ..url import parse_tc_url, split_query
from . import messages as m
from .chunk import ChunkReader, encode_message
from .connection import RtmpConnection
from .errors import RtmpError
from .handshake import ClientHandshake
from .session import CSID_AUDIO, CSID_COMMAND, CSID_DATA, CSID_STREAM, CSID_VIDEO, media_packet

TID_CONNECT = 1.0
TID_RELEASE = 2.0
TID_FCPUBLISH = 3.0
TID_CREATE = 4.0


@dataclass
class Started:
    """The server accepted the publish or play."""

    mode: str
    stream_id: int


@dataclass
class Rejected:
    code: str
    description: str
    redirect: str = ""  # SRS's RTMP 302: the URL to play instead


@dataclass
class StatusReceived:
    code: str
    info: dict


@dataclass
class PacketReceived:
    packet: MediaPacket


class ClientSession(RtmpConnection):
    """Connects to ``tc_url`` and publishes or plays ``stream``."""

    def __init__(
        self,
        tc_url: str,
        stream: str,
        mode: str = "play",
        chunk_size: int = 60000,
        connect_extra: dict | None = None,
        complex_handshake: bool = True,
        random_bytes=None,
    ) -> None:
        if mode not in ("play", "publish"):
            raise ValueError("mode is 'play' or 'publish'")
        self.tc_url = tc_url
        req = parse_tc_url(tc_url)
        self.app = req.app + req.param
        self.stream = stream
        self.mode = mode
        self.chunk_size = chunk_size
        self.connect_extra = connect_extra or {}
        kw = {} if random_bytes is None else {"random_bytes": random_bytes}
        super().__init__(ClientHandshake(complex=complex_handshake, **kw), ChunkReader())
        self.stream_id = 0
        self.started = False

    def _handshake_done(self) -> None:
        self._connect()

    def send_packet(self, pkt: MediaPacket) -> None:
        """Queue one media packet for the server (publish mode, once started)."""
        if not self.started or self.mode != "publish":
            raise RtmpError("send_packet before the publish started")
        csid = CSID_VIDEO if pkt.kind == VIDEO else CSID_AUDIO if pkt.kind == AUDIO else CSID_DATA
        payload = pkt.payload
        if pkt.is_data:
            values = amf0.decode_all(payload)
            if values and values[0] != "@setDataFrame":
                payload = amf0.encode_many("@setDataFrame", *values)
        self._out += encode_message(csid, pkt.kind, self.stream_id, pkt.dts & 0xFFFFFFFF, payload, self._out_chunk)

    def close(self) -> None:
        """Politely end the publish or play."""
        if self.stream_id:
            if self.mode == "publish":
                name, _ = split_query(self.stream)
                self._command(CSID_COMMAND, 0, "FCUnpublish", 0.0, None, name)
            self._command(CSID_COMMAND, 0, "deleteStream", 0.0, None, float(self.stream_id))

    # ---- internals --------------------------------------------------------
    def _connect(self) -> None:
        self._out += m.set_chunk_size(self.chunk_size)
        self._out_chunk = self.chunk_size
        obj = {
            "app": self.app,
            "flashVer": "FMLE/3.0 (compatible; srs-twisted)",
            "tcUrl": self.tc_url,
            "fpad": False,
            "capabilities": 239.0,
            "audioCodecs": 3575.0,
            "videoCodecs": 252.0,
            "videoFunction": 1.0,
            "objectEncoding": 0.0,
        }
        if self.mode == "publish":
            obj["type"] = "nonprivate"
        obj.update(self.connect_extra)
        self._command(CSID_COMMAND, 0, "connect", TID_CONNECT, obj)

    def _on_message(self, msg) -> None:
        t = msg.type_id
        if t in (AUDIO, VIDEO, m.DATA_AMF0):
            if self.mode == "play" and msg.payload:
                if t == m.DATA_AMF0 and not msg.payload.startswith(b"\x02\x00\x0aonMetaData"):
                    return  # |RtmpSampleAccess, onStatus data...
                self._events.append(PacketReceived(media_packet(t, msg.timestamp, msg.payload)))
        elif t in (m.COMMAND_AMF0, m.COMMAND_AMF3):
            self._on_command(m.parse_command(msg))
        elif t == m.AGGREGATE:
            for sub in m.parse_aggregate(msg.payload, msg.timestamp):
                self._on_message(sub)
        else:
            self._on_control(msg)

    def _on_command(self, cmd) -> None:
        name, tid = cmd.name, cmd.transaction_id
        if name == "_result":
            if tid == TID_CONNECT:
                name_only, _ = split_query(self.stream)
                if self.mode == "publish":
                    self._command(CSID_COMMAND, 0, "releaseStream", TID_RELEASE, None, name_only)
                    self._command(CSID_COMMAND, 0, "FCPublish", TID_FCPUBLISH, None, name_only)
                self._command(CSID_COMMAND, 0, "createStream", TID_CREATE, None)
            elif tid == TID_CREATE:
                sid = cmd.args[0] if cmd.args else 1
                self.stream_id = int(sid) if isinstance(sid, (int, float)) else 1
                if self.mode == "publish":
                    self._command(CSID_STREAM, self.stream_id, "publish", 5.0, None, self.stream, "live")
                else:
                    self._command(CSID_STREAM, self.stream_id, "play", 5.0, None, self.stream, -2000.0)
        elif name == "_error":
            info = cmd.args[0] if cmd.args and isinstance(cmd.args[0], dict) else {}
            self._events.append(Rejected(str(info.get("code", "_error")), str(info.get("description", ""))))
        elif name == "onStatus":
            info = cmd.args[0] if cmd.args and isinstance(cmd.args[0], dict) else {}
            code = str(info.get("code", ""))
            self._events.append(StatusReceived(code, info))
            if info.get("level") == "error":
                ex = info.get("ex") if isinstance(info.get("ex"), dict) else {}
                redirect = ex.get("redirect2") or ex.get("redirect") or ""
                self._events.append(Rejected(code, str(info.get("description", "")),
                                             redirect if isinstance(redirect, str) else ""))
            elif code in ("NetStream.Publish.Start", "NetStream.Play.Start") and not self.started:
                self.started = True
                self._events.append(Started(self.mode, self.stream_id))
