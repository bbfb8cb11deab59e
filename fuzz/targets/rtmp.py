"""RTMP: the server's handshake, the chunk reader with every message parser,
and a whole server session (handshake, chunks, commands, media tags)."""

from __future__ import annotations

from srs_twisted.codec.errors import CodecError
from srs_twisted.rtmp import messages as m
from srs_twisted.rtmp import session as s
from srs_twisted.rtmp.client_session import ClientSession
from srs_twisted.rtmp.chunk import ChunkReader
from srs_twisted.rtmp.errors import RtmpError
from srs_twisted.rtmp.handshake import ServerHandshake

from ..base import pieces, target

_RANDOM = bytes(range(256)) * 8


def _random(n: int) -> bytes:
    return _RANDOM[:n]


@target("rtmp_handshake", allowed=(RtmpError,), max_len=4000)
def rtmp_handshake(data: bytes):
    hs = ServerHandshake(random_bytes=_random)
    for piece in pieces(data):
        hs.receive_data(piece)
        hs.data_to_send()
    return hs.done


def _parse(msg) -> None:
    t = msg.type_id
    if t in (m.COMMAND_AMF0, m.COMMAND_AMF3):
        m.parse_command(msg)
    elif t in (m.DATA_AMF0, m.DATA_AMF3):
        m.parse_data(msg)
    elif t == m.AGGREGATE:
        for inner in m.parse_aggregate(msg.payload, msg.timestamp, msg.stream_id):
            _parse(inner)
    elif t == m.USER_CONTROL:
        m.parse_user_control(msg.payload)
    elif t == m.SET_PEER_BANDWIDTH:
        m.parse_set_peer_bandwidth(msg.payload)
    elif t in (m.ACK, m.WINDOW_ACK_SIZE, m.SET_CHUNK_SIZE, m.ABORT):
        m.parse_u32(msg.payload)
    elif t in (m.AUDIO, m.VIDEO) and msg.payload:
        s.media_packet(t, msg.timestamp, msg.payload)


@target("rtmp_chunk", allowed=(RtmpError, CodecError), max_len=16384)
def rtmp_chunk(data: bytes):
    # Small limits so a hostile length field hits them inside one input.
    reader = ChunkReader(max_message_size=64 * 1024, max_pending_bytes=256 * 1024)
    count = 0
    for piece in pieces(data):
        for msg in reader.feed(piece):
            count += 1
            _parse(msg)
        assert len(reader._buffer) <= 18 + 4, "the chunk reader buffers more than one chunk header"
    return count


@target("rtmp_session", allowed=(RtmpError, CodecError), max_len=16384)
def rtmp_session(data: bytes):
    """What RtmpServerProtocol does with a session's events, decided at once:
    every connect, publish and play is accepted."""
    session = s.ServerSession(random_bytes=_random, max_message_size=256 * 1024)
    for piece in pieces(data):
        session.receive_data(piece)
        for event in session.events():
            if isinstance(event, s.ConnectRequested):
                session.accept_connect()
            elif isinstance(event, s.PublishRequested):
                session.accept_publish()
            elif isinstance(event, s.PlayRequested):
                session.accept_play()
        session.data_to_send()
    return session.state


@target("rtmp_client", allowed=(RtmpError, CodecError), max_len=16384)
def rtmp_client(data: bytes):
    """What an upstream server sends to our RTMP client (edge pulls, forwards):
    byte 0 picks play or publish, then the server's bytes."""
    if not data:
        return None
    session = ClientSession("rtmp://127.0.0.1/live", "s", mode="play" if data[0] & 1 else "publish",
                            random_bytes=_random)
    session.data_to_send()
    for piece in pieces(data):
        session.receive_data(piece)
        for _ in session.events():
            pass
        session.data_to_send()
    return session.started
