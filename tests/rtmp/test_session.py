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


def command_names(got):
    """(name, transaction id) of each command the server sent."""
    return [(values[0], values[1]) for kind, values in got if kind == m.COMMAND_AMF0]


FMLE_PUBLISH = (
    cmd("connect", 1.0, obj=CONNECT_OBJ)
    + cmd("releaseStream", 2.0, "s")
    + cmd("FCPublish", 3.0, "s")
    + cmd("createStream", 4.0)
    + cmd("publish", 5.0, "s", "live", stream_id=1)
)


class PipelinedCommandTests(unittest.TestCase):
    """Commands sent behind connect in one write wait for the connect
    decision, then are answered in order (SRS answers them all)."""

    def test_fmle_publish_in_one_write(self):
        server, reader = handshaken()
        server.receive_data(FMLE_PUBLISH)
        (connect,) = events(server)
        self.assertIsInstance(connect, s.ConnectRequested)
        self.assertEqual(replies(server, reader), [])  # nothing answered before the decision
        server.accept_connect()
        got = replies(server, reader)
        self.assertEqual(
            command_names(got),
            [("_result", 1.0), ("onBWDone", 0.0), ("_result", 2.0), ("_result", 3.0), ("_result", 4.0)],
        )
        self.assertEqual([v[3] for k, v in got if k == m.COMMAND_AMF0 and v[1] == 4.0], [1.0])  # stream id 1
        (publish,) = events(server)
        self.assertEqual((publish.stream_id, publish.stream_name, publish.publish_type, publish.fmle),
                         (1, "s", "live", True))

    def test_decision_may_come_later_and_more_commands_keep_their_order(self):
        server, reader = handshaken()
        server.receive_data(cmd("connect", 1.0, obj=CONNECT_OBJ) + cmd("createStream", 2.0))
        self.assertEqual(len(events(server)), 1)
        # an on_connect hook is still running when the play arrives
        server.receive_data(cmd("getStreamLength", 3.0, "s", stream_id=1) + cmd("play", 4.0, "s", stream_id=1))
        self.assertEqual(events(server), [])
        self.assertEqual(replies(server, reader), [])
        server.accept_connect()
        self.assertEqual(command_names(replies(server, reader)),
                         [("_result", 1.0), ("onBWDone", 0.0), ("_result", 2.0), ("_result", 3.0)])
        (play,) = events(server)
        self.assertIsInstance(play, s.PlayRequested)
        self.assertEqual(play.stream_name, "s")
        # commands after the decision are answered at once
        server.receive_data(cmd("createStream", 5.0))
        self.assertEqual(command_names(replies(server, reader)), [("_result", 5.0)])

    def test_rejected_connect_answers_no_queued_command(self):
        server, reader = handshaken()
        server.receive_data(FMLE_PUBLISH)
        events(server)
        server.reject_connect("no")
        self.assertEqual(command_names(replies(server, reader)), [("_error", 1.0)])
        self.assertEqual(events(server), [])

    def test_queue_is_bounded(self):
        server, _ = handshaken()
        server.receive_data(cmd("connect", 1.0, obj=CONNECT_OBJ) + cmd("createStream", 2.0) * s.MAX_PENDING_COMMANDS)
        with self.assertRaisesRegex(s.ProtocolViolation, "commands sent before the connect was answered"):
            server.receive_data(cmd("createStream", 2.0))

    def test_queue_is_bounded_in_bytes(self):
        server, _ = handshaken()
        server.receive_data(cmd("connect", 1.0, obj=CONNECT_OBJ))
        big = cmd("FCPublish", 2.0, "x" * 60000)
        with self.assertRaisesRegex(s.ProtocolViolation, "bytes of commands sent before the connect was answered"):
            for _ in range(s.MAX_PENDING_COMMAND_BYTES // 60000 + 1):
                server.receive_data(big)

    def test_command_before_connect_is_still_refused(self):
        server, _ = handshaken()
        with self.assertRaisesRegex(s.ProtocolViolation, "before the connection was accepted"):
            server.receive_data(cmd("createStream", 2.0))

    def test_second_connect_while_connecting_is_refused(self):
        server, _ = handshaken()
        with self.assertRaisesRegex(s.ProtocolViolation, "connect received twice"):
            server.receive_data(cmd("connect", 1.0, obj=CONNECT_OBJ) + cmd("connect", 2.0, obj=CONNECT_OBJ))


class PlayDurationTests(unittest.TestCase):
    """SRS's count: the steps between successive sent timestamps; a step back
    starts again from there."""

    def test_steps_add_up_to_the_limit(self):
        d = s.PlayDuration(100)
        self.assertEqual([d.add(ts) for ts in (1000, 1040, 1060, 1099)], [False] * 4)
        self.assertEqual(d.elapsed, 99)
        self.assertTrue(d.add(1100))
        self.assertEqual(d.elapsed, 100)

    def test_a_step_back_costs_nothing(self):
        d = s.PlayDuration(100)
        for ts in (5000, 5060, 0, 30):
            self.assertFalse(d.add(ts))
        self.assertEqual(d.elapsed, 90)
        self.assertTrue(d.add(40))

    def test_a_single_message_is_no_time(self):
        d = s.PlayDuration(1)
        self.assertFalse(d.add(123456))
        self.assertEqual(d.elapsed, 0)
