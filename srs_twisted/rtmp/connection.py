"""What both ends of an RTMP connection share, sans-I/O: the handshake
first, then the chunk stream; acknowledgements, pings, the event queue and
the output buffer."""

from __future__ import annotations

from collections import deque

from . import messages as m
from .chunk import ChunkReader, RtmpMessage


class RtmpConnection:
    """Base of :class:`~srs_twisted.rtmp.session.ServerSession` and
    :class:`~srs_twisted.rtmp.client_session.ClientSession`.

    Subclasses implement ``_on_message(msg)`` and may override
    ``_handshake_done()``."""

    def __init__(self, handshake, reader: ChunkReader) -> None:
        self._handshake = handshake
        self._reader = reader
        self._out = bytearray(handshake.data_to_send())
        self._events: deque = deque()
        self._out_chunk = 128  # the chunk size the peer expects from us now
        self.ack_window = 0  # acknowledge the peer every this many bytes (0: never)
        self._acked = 0

    # ---- the sans-I/O surface ---------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer.  Raises RtmpError (or a codec error) on
        input this connection cannot recover from."""
        if self._handshake is not None:
            hs = self._handshake
            hs.receive_data(data)
            self._out += hs.data_to_send()
            if not hs.done:
                return
            data = hs.leftover
            self._handshake = None
            self._handshake_done()
            if not data:
                return
        for msg in self._reader.feed(data):
            self._on_message(msg)
        self._maybe_ack()

    def next_event(self):
        return self._events.popleft() if self._events else None

    def events(self):
        while self._events:
            yield self._events.popleft()

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    @property
    def bytes_received(self) -> int:
        return self._reader.bytes_received

    # ---- shared internals -------------------------------------------------
    def _handshake_done(self) -> None:
        pass

    def _on_message(self, msg: RtmpMessage) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _command(self, csid, stream_id, name, tid, obj, *args) -> None:
        self._out += m.command(csid, stream_id, name, tid, obj, *args, chunk_size=self._out_chunk)

    def _maybe_ack(self) -> None:
        if self.ack_window <= 0:
            return
        received = self._reader.bytes_received
        if received - self._acked >= self.ack_window:
            self._acked = received
            self._out += m.acknowledgement(received & 0xFFFFFFFF)

    def _on_control(self, msg: RtmpMessage) -> bool:
        """Protocol control and user control messages; True when handled.
        (The chunk reader itself applies Set Chunk Size and Abort.)"""
        t = msg.type_id
        if t == m.WINDOW_ACK_SIZE:
            self.ack_window = m.parse_u32(msg.payload)
        elif t == m.USER_CONTROL:
            event, values = m.parse_user_control(msg.payload)
            if event == m.PING_REQUEST and values:
                self._out += m.user_control(m.PING_RESPONSE, values[0], chunk_size=self._out_chunk)
        elif t not in (m.SET_CHUNK_SIZE, m.ABORT, m.ACK, m.SET_PEER_BANDWIDTH):
            return False
        return True
