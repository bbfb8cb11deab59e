"""The RTMP server session (sans-I/O) driven with raw client bytes: what it
answers, in which order, and when it refuses."""

from __future__ import annotations

from twisted.trial import unittest

from srs_twisted.codec import amf0
from srs_twisted.rtmp import messages as m
from srs_twisted.rtmp import session as s
from srs_twisted.rtmp.chunk import ChunkReader
from srs_twisted.rtmp.handshake import ClientHandshake

CONNECT_OBJ = {"app": "live", "tcUrl": "rtmp://127.0.0.1/live", "objectEncoding": 0.0}


def cmd(name, tid, *args, stream_id=0, obj=None):
    """One AMF0 command message from the client, chunked at 128 bytes."""
    return m.command(3, stream_id, name, tid, obj, *args)


def handshaken(**kw):
    """A server session past the handshake, and a reader for what it sends."""
    server = s.ServerSession(random_bytes=lambda n: bytes(n), **kw)
    client = ClientHandshake(random_bytes=lambda n: bytes(n))
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    assert server.state == "connect"
    return server, ChunkReader()


def replies(server, reader):
    """The messages the server wants to send, decoded: (type_id, values)."""
    out = []
    for msg in reader.feed(server.data_to_send()):
        if msg.type_id in (m.COMMAND_AMF0, m.DATA_AMF0):
            out.append((msg.type_id, amf0.decode_all(msg.payload)))
        else:
            out.append((msg.type_id, msg.payload))
    return out


def events(server):
    return list(server.events())


class PlayStartTests(unittest.TestCase):
    def test_play_start_sends_no_data_start_status(self):
        """SRS 6.0.153+ (its #3767) no longer sends onStatus(NetStream.Data.Start):
        FFmpeg shows it as a phantom data stream before video and audio."""
        server, reader = handshaken()
        server.receive_data(cmd("connect", 1.0, obj=CONNECT_OBJ))
        self.assertIsInstance(events(server)[0], s.ConnectRequested)
        server.accept_connect()
        server.receive_data(cmd("createStream", 2.0))
        server.receive_data(cmd("play", 3.0, "s", -1000.0, stream_id=1))
        (play,) = events(server)
        self.assertIsInstance(play, s.PlayRequested)
        replies(server, reader)
        server.accept_play(play.stream_id)
        got = replies(server, reader)
        data = [values for kind, values in got if kind == m.DATA_AMF0]
        self.assertEqual(data, [["|RtmpSampleAccess", True, True]])
        statuses = [values[3]["code"] for kind, values in got if kind == m.COMMAND_AMF0]
        self.assertEqual(statuses, ["NetStream.Play.Reset", "NetStream.Play.Start"])
        self.assertEqual([kind for kind, _ in got], [m.USER_CONTROL, m.COMMAND_AMF0, m.COMMAND_AMF0, m.DATA_AMF0])
