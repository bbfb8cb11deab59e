"""Tests for srs_twisted.rtmp.messages: builders and parsers."""

import struct

from twisted.trial import unittest

from srs_twisted.codec import amf0
from srs_twisted.rtmp import messages as m
from srs_twisted.rtmp.chunk import ChunkReader, RtmpMessage
from srs_twisted.rtmp.errors import MessageError, RtmpError


def control_bytes(type_id, payload):
    """A protocol control message on csid 2, header written out by hand."""
    return (bytes([2]) + b"\0\0\0" + len(payload).to_bytes(3, "big") + bytes([type_id])
            + b"\0\0\0\0" + payload)


def read_one(data, chunk_size=128):
    reader = ChunkReader()
    reader.chunk_size = chunk_size
    [msg] = reader.feed(data)
    return msg


class ConstantTests(unittest.TestCase):
    def test_values(self):
        self.assertEqual(
            (m.SET_CHUNK_SIZE, m.ABORT, m.ACK, m.USER_CONTROL, m.WINDOW_ACK_SIZE,
             m.SET_PEER_BANDWIDTH, m.AUDIO, m.VIDEO, m.DATA_AMF3, m.SHARED_OBJECT_AMF3,
             m.COMMAND_AMF3, m.DATA_AMF0, m.SHARED_OBJECT_AMF0, m.COMMAND_AMF0, m.AGGREGATE),
            (1, 2, 3, 4, 5, 6, 8, 9, 15, 16, 17, 18, 19, 20, 22),
        )
        self.assertEqual(
            (m.STREAM_BEGIN, m.STREAM_EOF, m.STREAM_DRY, m.SET_BUFFER_LENGTH,
             m.STREAM_IS_RECORDED, m.PING_REQUEST, m.PING_RESPONSE),
            (0, 1, 2, 3, 4, 6, 7),
        )
        self.assertEqual(
            (m.CSID_PROTOCOL, m.CSID_COMMAND, m.CSID_STREAM_COMMAND, m.CSID_VIDEO, m.CSID_AUDIO),
            (2, 3, 5, 6, 7),
        )


class ControlBuilderTests(unittest.TestCase):
    def test_set_chunk_size(self):
        self.assertEqual(m.set_chunk_size(60000), control_bytes(1, b"\x00\x00\xea\x60"))
        self.assertRaises(ValueError, m.set_chunk_size, 0)
        self.assertRaises(ValueError, m.set_chunk_size, 0x80000000)

    def test_set_chunk_size_applies_to_reader(self):
        reader = ChunkReader()
        reader.feed(m.set_chunk_size(4096))
        self.assertEqual(reader.chunk_size, 4096)

    def test_window_ack_size(self):
        self.assertEqual(m.window_ack_size(2500000), control_bytes(5, b"\x00\x26\x25\xa0"))

    def test_acknowledgement(self):
        self.assertEqual(m.acknowledgement(0xDEADBEEF), control_bytes(3, b"\xde\xad\xbe\xef"))
        self.assertRaises(ValueError, m.acknowledgement, 2**32)

    def test_abort(self):
        self.assertEqual(m.abort(6), control_bytes(2, b"\x00\x00\x00\x06"))

    def test_set_peer_bandwidth(self):
        self.assertEqual(m.set_peer_bandwidth(2500000), control_bytes(6, b"\x00\x26\x25\xa0\x02"))
        self.assertEqual(m.set_peer_bandwidth(5, 0), control_bytes(6, b"\x00\x00\x00\x05\x00"))
        self.assertRaises(ValueError, m.set_peer_bandwidth, 5, 3)

    def test_user_control(self):
        self.assertEqual(m.user_control(m.STREAM_BEGIN, 1),
                         control_bytes(4, b"\x00\x00\x00\x00\x00\x01"))
        self.assertEqual(m.user_control(m.PING_RESPONSE, 0x0D0F),
                         control_bytes(4, b"\x00\x07\x00\x00\x0d\x0f"))
        self.assertEqual(m.user_control(m.SET_BUFFER_LENGTH, 1, 3000),
                         control_bytes(4, b"\x00\x03\x00\x00\x00\x01\x00\x00\x0b\xb8"))
        self.assertEqual(m.user_control(m.STREAM_EOF, 1, chunk_size=4096),
                         control_bytes(4, b"\x00\x01\x00\x00\x00\x01"))
        self.assertRaises(ValueError, m.user_control, 0x10000, 1)
        self.assertRaises(ValueError, m.user_control, m.STREAM_BEGIN, -1)


class ControlParserTests(unittest.TestCase):
    def test_parse_u32(self):
        self.assertEqual(m.parse_u32(b"\x00\x26\x25\xa0"), 2500000)
        self.assertEqual(m.parse_u32(b"\xff\xff\xff\xff\x00"), 0xFFFFFFFF)
        exc = self.assertRaises(MessageError, m.parse_u32, b"\x00\x01")
        self.assertIsInstance(exc, RtmpError)

    def test_parse_set_peer_bandwidth(self):
        self.assertEqual(m.parse_set_peer_bandwidth(b"\x00\x26\x25\xa0\x02"), (2500000, 2))
        self.assertRaises(MessageError, m.parse_set_peer_bandwidth, b"\x00\x26\x25\xa0")

    def test_parse_user_control(self):
        self.assertEqual(m.parse_user_control(b"\x00\x06\x00\x00\x0d\x0f"), (6, (0x0D0F,)))
        self.assertEqual(m.parse_user_control(b"\x00\x03\x00\x00\x00\x01\x00\x00\x0b\xb8"),
                         (3, (1, 3000)))
        self.assertEqual(m.parse_user_control(b"\x00\x00\x00\x00\x00\x01\xff"), (0, (1,)))
        self.assertEqual(m.parse_user_control(b"\x00\x1a\x01"), (0x1A, (1,)))
        self.assertEqual(m.parse_user_control(b"\x00\x20\x00\x00\x00\x01"), (32, (1,)))
        self.assertEqual(m.parse_user_control(b"\x00\x63"), (99, ()))

    def test_parse_user_control_truncated(self):
        for payload in (b"", b"\x00", b"\x00\x06\x00\x00", b"\x00\x03\x00\x00\x00\x01"):
            self.assertRaises(MessageError, m.parse_user_control, payload)

    def test_round_trip_through_reader(self):
        msg = read_one(m.user_control(m.PING_REQUEST, 123456))
        self.assertEqual((msg.type_id, msg.csid, msg.stream_id), (4, 2, 0))
        self.assertEqual(m.parse_user_control(msg.payload), (6, (123456,)))


class CommandTests(unittest.TestCase):
    def test_builder_bytes(self):
        out = m.command(3, 0, "_result", 1.0, None, amf0.UNDEFINED)
        payload = (b"\x02\x00\x07_result" + b"\x00" + struct.pack(">d", 1.0) + b"\x05\x06")
        self.assertEqual(out, b"\x03\x00\x00\x00" + len(payload).to_bytes(3, "big")
                         + b"\x14\x00\x00\x00\x00" + payload)

    def test_round_trip_large_command(self):
        info = {"level": "status", "code": "NetConnection.Connect.Success",
                "description": "x" * 300, "data": amf0.ECMAArray({"version": "3,5,3,888"})}
        out = m.command(m.CSID_COMMAND, 0, "_result", 1.0, {"fmsVer": "FMS/3,5,3,888"}, info,
                        chunk_size=128)
        self.assertEqual(out.count(b"\xc3"), 3)  # 3 continuation chunks
        cmd = m.parse_command(read_one(out))
        self.assertEqual(cmd, m.Command("_result", 1.0, {"fmsVer": "FMS/3,5,3,888"}, [info]))

    def test_stream_command_fields(self):
        out = m.command(m.CSID_STREAM_COMMAND, 1, "onStatus", 0.0, None, {"code": "c"},
                        chunk_size=4096, timestamp=7)
        msg = read_one(out, 4096)
        self.assertEqual((msg.type_id, msg.stream_id, msg.timestamp, msg.csid), (20, 1, 7, 5))
        self.assertEqual(m.parse_command(msg).args, [{"code": "c"}])

    def test_parse_ffmpeg_connect(self):
        payload = amf0.encode_many("connect", 1.0, {"app": "live", "flashVer": "LNX 9,0,124,2",
                                                    "tcUrl": "rtmp://127.0.0.1/live"})
        cmd = m.parse_command(RtmpMessage(20, 0, 0, payload, 3))
        self.assertEqual(cmd.name, "connect")
        self.assertEqual(cmd.transaction_id, 1.0)
        self.assertEqual(cmd.command_object["tcUrl"], "rtmp://127.0.0.1/live")
        self.assertEqual(cmd.args, [])

    def test_parse_publish_args(self):
        payload = amf0.encode_many("publish", 5, None, "stream?key=1", "live")
        cmd = m.parse_command(RtmpMessage(20, 1, 0, payload))
        self.assertEqual(cmd, m.Command("publish", 5.0, None, ["stream?key=1", "live"]))
        self.assertIs(type(cmd.transaction_id), float)

    def test_amf3_command(self):
        payload = b"\x00" + amf0.encode_many("play", 4.0, None, "stream")
        cmd = m.parse_command(RtmpMessage(17, 1, 0, payload))
        self.assertEqual(cmd, m.Command("play", 4.0, None, ["stream"]))

    def test_amf3_command_with_avmplus_value(self):
        # Argument switched to AMF3 with 0x11: AMF3 string "abc" (0x06, length 3 << 1 | 1).
        payload = b"\x00" + amf0.encode_many("play", 4.0, None) + b"\x11\x06\x07abc"
        self.assertEqual(m.parse_command(RtmpMessage(17, 1, 0, payload)).args, ["abc"])

    def test_missing_or_null_transaction_id(self):
        self.assertEqual(m.parse_command(RtmpMessage(20, 0, 0, amf0.encode_many("onBWDone"))),
                         m.Command("onBWDone", 0.0, None, []))
        cmd = m.parse_command(RtmpMessage(20, 0, 0, amf0.encode_many("x", None)))
        self.assertEqual(cmd.transaction_id, 0.0)

    def test_garbage(self):
        cases = [
            b"",  # no values
            b"\x00" + struct.pack(">d", 1.0),  # number instead of a name
            b"\x02\x00\x09conn",  # truncated string
            b"\x42",  # unknown marker
            amf0.encode_many("connect", "one"),  # string transaction id
            amf0.encode_many("connect", True),  # boolean transaction id
        ]
        for payload in cases:
            exc = self.assertRaises(MessageError, m.parse_command, RtmpMessage(20, 0, 0, payload))
            self.assertTrue(str(exc))
        self.assertRaises(MessageError, m.parse_command, RtmpMessage(17, 0, 0, b"\x00"))
        self.assertRaises(MessageError, m.parse_command,
                          RtmpMessage(18, 0, 0, amf0.encode_many("x", 1.0)))


class DataTests(unittest.TestCase):
    def test_data_message_round_trip(self):
        meta = amf0.ECMAArray({"width": 1280.0, "height": 720.0})
        out = m.data_message(m.CSID_DATA, 1, "@setDataFrame", "onMetaData", meta, chunk_size=60000)
        msg = read_one(out, 60000)
        self.assertEqual((msg.type_id, msg.stream_id, msg.csid), (18, 1, 4))
        self.assertEqual(msg.payload, amf0.encode_many("@setDataFrame", "onMetaData", meta))
        values = m.parse_data(msg)
        self.assertEqual(values, ["@setDataFrame", "onMetaData", meta])
        self.assertIsInstance(values[2], amf0.ECMAArray)

    def test_amf3_data_and_ffmpeg_timecode(self):
        payload = b"\x00" + amf0.encode_many("onMetaData", {"a": 1.0})
        self.assertEqual(m.parse_data(RtmpMessage(15, 1, 0, payload)), ["onMetaData", {"a": 1.0}])
        self.assertEqual(m.parse_data(RtmpMessage(18, 1, 0, b"\x00\x00\x00\x01")), [])

    def test_bad_data(self):
        self.assertRaises(MessageError, m.parse_data, RtmpMessage(18, 1, 0, b"\x02\x00"))
        self.assertRaises(MessageError, m.parse_data, RtmpMessage(20, 1, 0, b""))


def flv_tag(type_id, timestamp, data, stream_id=0):
    return (bytes([type_id]) + len(data).to_bytes(3, "big")
            + (timestamp & 0xFFFFFF).to_bytes(3, "big") + bytes([timestamp >> 24])
            + stream_id.to_bytes(3, "big") + data + (11 + len(data)).to_bytes(4, "big"))


class AggregateTests(unittest.TestCase):
    def test_offsets_relative_to_first(self):
        payload = (flv_tag(9, 5000, b"\x17\x01video") + flv_tag(8, 5023, b"\xafaudio")
                   + flv_tag(9, 5040, b"\x27\x01more"))
        self.assertEqual(m.parse_aggregate(payload, 100), [
            RtmpMessage(9, 0, 100, b"\x17\x01video"),
            RtmpMessage(8, 0, 123, b"\xafaudio"),
            RtmpMessage(9, 0, 140, b"\x27\x01more"),
        ])

    def test_high_timestamp_byte_and_wrap(self):
        payload = flv_tag(9, 0x01000010, b"a") + flv_tag(9, 0x01000030, b"b")
        self.assertEqual([x.timestamp for x in m.parse_aggregate(payload, 0xFFFFFFF0)],
                         [0xFFFFFFF0, 0x10])

    def test_stream_id(self):
        payload = flv_tag(8, 0, b"a", stream_id=3)
        self.assertEqual(m.parse_aggregate(payload, 0)[0].stream_id, 3)
        self.assertEqual(m.parse_aggregate(payload, 0, stream_id=1)[0].stream_id, 1)

    def test_empty_and_zero_size(self):
        self.assertEqual(m.parse_aggregate(b"", 0), [])
        self.assertEqual(m.parse_aggregate(flv_tag(18, 0, b""), 9), [RtmpMessage(18, 0, 9, b"")])

    def test_truncated(self):
        good = flv_tag(9, 0, b"abcdef")
        for cut in range(1, len(good)):
            self.assertRaises(MessageError, m.parse_aggregate, good[:cut], 0)
        self.assertRaises(MessageError, m.parse_aggregate, good + good[:5], 0)
