"""Tests for srs_twisted.rtmp.chunk: the chunk reader and encode_message."""

import random
import struct

from twisted.trial import unittest

from srs_twisted.rtmp.chunk import ChunkReader, RtmpMessage, encode_message, encode_message_delta, message_pieces
from srs_twisted.rtmp.errors import ChunkError, RtmpError


def basic(fmt, csid):
    """Basic header, written out by hand from the specification."""
    if csid < 64:
        return bytes([fmt << 6 | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    return bytes([fmt << 6 | 1, (csid - 64) % 256, (csid - 64) // 256])


def raw(fmt, csid, ts=None, length=None, type_id=None, sid=None, ext=None, data=b""):
    """One chunk with whatever header fields its fmt carries."""
    out = basic(fmt, csid)
    if fmt <= 2:
        out += ts.to_bytes(3, "big")
    if fmt <= 1:
        out += length.to_bytes(3, "big") + bytes([type_id])
    if fmt == 0:
        out += struct.pack("<I", sid)
    if ext is not None:
        out += ext.to_bytes(4, "big")
    return out + data


def set_chunk_size_chunk(size, csid=2):
    return raw(0, csid, 0, 4, 1, 0, data=struct.pack(">I", size))


def feed_whole(data, **kw):
    return ChunkReader(**kw).feed(data)


def feed_bytewise(data, **kw):
    reader = ChunkReader(**kw)
    out = []
    for i in range(len(data)):
        out.extend(reader.feed(data[i:i + 1]))
    return out


def feed_split(data, cut, **kw):
    reader = ChunkReader(**kw)
    return reader.feed(data[:cut]) + reader.feed(data[cut:])


class EncodeTests(unittest.TestCase):
    def test_single_chunk_bytes(self):
        self.assertEqual(
            encode_message(3, 20, 0, 0x123, b"abc", 128),
            bytes.fromhex("03" "000123" "000003" "14" "00000000") + b"abc",
        )

    def test_stream_id_little_endian(self):
        out = encode_message(6, 9, 0x01020304, 0, b"", 128)
        self.assertEqual(out, bytes.fromhex("06" "000000" "000000" "09" "04030201"))

    def test_continuation_headers(self):
        payload = bytes(range(256)) + bytes(44)
        out = encode_message(4, 8, 1, 40, payload, 128)
        header = bytes.fromhex("04" "000028" "00012c" "08" "01000000")
        self.assertEqual(
            out,
            header + payload[:128] + b"\xc4" + payload[128:256] + b"\xc4" + payload[256:],
        )

    def test_exact_multiple_has_no_empty_chunk(self):
        out = encode_message(3, 8, 1, 0, b"x" * 256, 128)
        self.assertEqual(len(out), 12 + 256 + 1)
        self.assertEqual(out.count(b"\xc3"), 1)

    def test_extended_timestamp_repeated(self):
        payload = b"a" * 10 + b"b" * 10 + b"c" * 5
        out = encode_message(5, 9, 1, 0x12345678, payload, 10)
        ext = b"\x12\x34\x56\x78"
        self.assertEqual(
            out,
            bytes.fromhex("05" "ffffff" "000019" "09" "01000000") + ext + b"a" * 10
            + b"\xc5" + ext + b"b" * 10 + b"\xc5" + ext + b"c" * 5,
        )

    def test_threshold_timestamp_is_extended(self):
        out = encode_message(3, 8, 1, 0xFFFFFF, b"", 128)
        self.assertEqual(out, bytes.fromhex("03ffffff000000080100000000ffffff"))
        out = encode_message(3, 8, 1, 0xFFFFFE, b"", 128)
        self.assertEqual(out, bytes.fromhex("03fffffe0000000801000000"))

    def test_timestamp_wraps_modulo_32_bits(self):
        self.assertEqual(encode_message(3, 8, 1, 2**32 + 5, b"", 128),
                         encode_message(3, 8, 1, 5, b"", 128))

    def test_csid_forms(self):
        cases = {
            2: b"\x02", 63: b"\x3f", 64: b"\x00\x00", 319: b"\x00\xff",
            320: b"\x01\x00\x01", 65599: b"\x01\xff\xff",
        }
        for csid, head in cases.items():
            out = encode_message(csid, 8, 1, 0, b"12345", 3)
            self.assertEqual(out[:len(head)], head)
            cont = bytes([0xC0 | head[0]]) + head[1:]
            self.assertEqual(out[len(head) + 11 + 3:], cont + b"45")
            [msg] = feed_whole(set_chunk_size_chunk(3) + out, min_chunk_size=1)[1:]
            self.assertEqual(msg, RtmpMessage(8, 1, 0, b"12345", csid))

    def test_bad_arguments(self):
        for csid in (0, 1, 65600):
            self.assertRaises(ValueError, encode_message, csid, 8, 1, 0, b"", 128)
        self.assertRaises(ValueError, encode_message, 3, 8, 1, 0, b"", 0)
        self.assertRaises(ValueError, encode_message, 3, 256, 1, 0, b"", 128)
        self.assertRaises(ValueError, encode_message, 3, 8, -1, 0, b"", 128)
        self.assertRaises(ValueError, encode_message, 3, 8, 1, 0, bytes(0x1000000), 128)

    def test_bytes_like_payloads(self):
        expected = encode_message(3, 8, 1, 7, b"hello world", 4)
        self.assertEqual(encode_message(3, 8, 1, 7, bytearray(b"hello world"), 4), expected)
        self.assertEqual(encode_message(3, 8, 1, 7, memoryview(b"hello world"), 4), expected)
        self.assertIsInstance(encode_message(3, 8, 1, 7, bytearray(b"hi"), 4), bytes)
        self.assertIsInstance(encode_message(3, 8, 1, 7, memoryview(b"hi" * 9), 4), bytes)


class DeltaAndPiecesTests(unittest.TestCase):
    """The forms a player's own timeline uses (issue 9 item 14)."""

    def test_fmt1_bytes_by_hand(self):
        got = encode_message_delta(6, 9, 40, b"x" * 300, 128)
        want = (raw(1, 6, ts=40, length=300, type_id=9, data=b"x" * 128) + basic(3, 6) + b"x" * 128
                + basic(3, 6) + b"x" * 44)
        self.assertEqual(got, want)

    def test_fmt1_adds_to_whatever_the_player_had(self):
        for start in (10, 2_845_000):
            reader = ChunkReader()
            data = encode_message(6, 9, 1, start, b"k" * 200, 128) + encode_message_delta(6, 9, 40, b"p" * 300, 128)
            msgs = reader.feed(data)
            self.assertEqual([(m.timestamp, m.stream_id, len(m.payload)) for m in msgs],
                             [(start, 1, 200), (start + 40, 1, 300)])

    def test_delta_range(self):
        self.assertRaises(ValueError, encode_message_delta, 6, 9, -1, b"", 128)
        self.assertRaises(ValueError, encode_message_delta, 6, 9, 0xFFFFFF, b"", 128)

    def test_pieces_join_to_the_message_and_keep_the_payload(self):
        payload = bytes(range(256)) * 3
        for ts in (0, 5, 0xFFFFFF, 2**32 + 7):
            pieces = message_pieces(7, 8, 1, ts, payload, 128)
            self.assertEqual(b"".join(pieces), encode_message(7, 8, 1, ts, payload, 128))
        small = b"s" * 10
        self.assertIs(message_pieces(7, 8, 1, 3, small, 128)[1], small)


class RoundTripTests(unittest.TestCase):
    SIZES = (0, 1, 127, 128, 129, 4095, 4096, 4097, 59999, 60000, 60001, 65536, 65537, 200000)

    def test_round_trip(self):
        rng = random.Random(1)
        blob = rng.randbytes(200000)
        for chunk_size in (128, 4096, 60000, 65536):
            stream = [set_chunk_size_chunk(chunk_size)]
            expected = [RtmpMessage(1, 0, 0, struct.pack(">I", chunk_size), 2)]
            for i, size in enumerate(self.SIZES):
                ts = (0xFFFFF0 + i * 7) if i % 2 else i * 1000
                csid = (6, 7, 400)[i % 3]
                stream.append(encode_message(csid, 9, 1, ts, blob[:size], chunk_size))
                expected.append(RtmpMessage(9, 1, ts, blob[:size], csid))
            data = b"".join(stream)
            self.assertEqual(feed_whole(data), expected)
            rng2 = random.Random(chunk_size)
            reader = ChunkReader()
            got, pos = [], 0
            while pos < len(data):
                step = rng2.randint(1, 3000)
                got.extend(reader.feed(data[pos:pos + step]))
                pos += step
            self.assertEqual(got, expected)
            self.assertEqual(reader.bytes_received, len(data))
            self.assertEqual(reader.chunk_size, chunk_size)

    def test_payloads_are_bytes(self):
        data = encode_message(3, 8, 1, 0, b"x" * 300, 128) + encode_message(3, 8, 1, 0, b"y", 128)
        for msg in feed_bytewise(data):
            self.assertIs(type(msg.payload), bytes)


class FmtTests(unittest.TestCase):
    def test_all_four_fmts(self):
        data = (
            raw(0, 4, 1000, 3, 8, 1, data=b"aaa")
            + raw(1, 4, 40, 2, 9, data=b"bb")  # delta, new length and type
            + raw(2, 4, 20, data=b"cc")  # delta only
            + raw(3, 4, data=b"dd")  # new message reusing delta 20
            + raw(3, 4, data=b"ee")
        )
        self.assertEqual(feed_whole(data), [
            RtmpMessage(8, 1, 1000, b"aaa", 4),
            RtmpMessage(9, 1, 1040, b"bb", 4),
            RtmpMessage(9, 1, 1060, b"cc", 4),
            RtmpMessage(9, 1, 1080, b"dd", 4),
            RtmpMessage(9, 1, 1100, b"ee", 4),
        ])

    def test_fmt3_after_fmt0_reuses_timestamp_as_delta(self):
        # FMLE sends 0xC4 after a fmt 0 audio chunk: 26 then 52 (SRS, FFmpeg).
        data = raw(0, 4, 26, 2, 8, 1, data=b"ab") + raw(3, 4, data=b"cd")
        self.assertEqual([m.timestamp for m in feed_whole(data)], [26, 52])

    def test_multi_chunk_with_interleaving(self):
        data = (
            raw(0, 6, 100, 200, 9, 1, data=b"v" * 128)
            + raw(0, 7, 90, 10, 8, 1, data=b"a" * 10)
            + raw(3, 6, data=b"w" * 72)
        )
        self.assertEqual(feed_whole(data), [
            RtmpMessage(8, 1, 90, b"a" * 10, 7),
            RtmpMessage(9, 1, 100, b"v" * 128 + b"w" * 72, 6),
        ])

    def test_fresh_fmt1_is_tolerated(self):
        # librtmp pings with fmt 1 on a fresh csid 2.
        data = raw(1, 2, 0, 6, 4, data=b"\x00\x06\x00\x00\x0d\x0f")
        self.assertEqual(feed_whole(data), [RtmpMessage(4, 0, 0, b"\x00\x06\x00\x00\x0d\x0f", 2)])

    def test_zero_length_message(self):
        data = raw(0, 3, 5, 0, 20, 0) + raw(3, 3) + raw(0, 3, 1, 1, 8, 0, data=b"z")
        self.assertEqual(feed_whole(data), [
            RtmpMessage(20, 0, 5, b"", 3),
            RtmpMessage(20, 0, 10, b"", 3),
            RtmpMessage(8, 0, 1, b"z", 3),
        ])

    def test_fmt1_mid_message_with_same_length_is_tolerated(self):
        data = raw(0, 6, 100, 200, 9, 1, data=b"v" * 128) + raw(1, 6, 5, 200, 9, data=b"w" * 72)
        self.assertEqual(feed_whole(data), [RtmpMessage(9, 1, 100, b"v" * 128 + b"w" * 72, 6)])

    def test_two_and_three_byte_csid(self):
        data = (raw(0, 100, 1, 1, 8, 1, data=b"x") + raw(2, 100, 1, data=b"y")
                + raw(0, 5000, 2, 1, 9, 1, data=b"z") + raw(3, 5000, data=b"w"))
        self.assertEqual(feed_whole(data), [
            RtmpMessage(8, 1, 1, b"x", 100),
            RtmpMessage(8, 1, 2, b"y", 100),
            RtmpMessage(9, 1, 2, b"z", 5000),
            RtmpMessage(9, 1, 4, b"w", 5000),
        ])


class ExtendedTimestampTests(unittest.TestCase):
    def test_continuation_repeats_extended_field(self):
        data = (raw(0, 6, 0xFFFFFF, 200, 9, 1, ext=0x01000000, data=b"v" * 128)
                + raw(3, 6, ext=0x01000000, data=b"w" * 72))
        self.assertEqual(feed_whole(data), [RtmpMessage(9, 1, 0x01000000, b"v" * 128 + b"w" * 72, 6)])

    def test_continuation_without_repeated_field(self):
        data = (raw(0, 6, 0xFFFFFF, 200, 9, 1, ext=0x01000000, data=b"v" * 128)
                + raw(3, 6, data=b"w" * 72))
        self.assertEqual(feed_whole(data), [RtmpMessage(9, 1, 0x01000000, b"v" * 128 + b"w" * 72, 6)])

    def test_delta_fmts_with_extended_field(self):
        data = (raw(0, 6, 0xFFFFFF, 1, 9, 1, ext=0x01000000, data=b"a")
                + raw(1, 6, 0xFFFFFF, 1, 9, ext=0x02000000, data=b"b")  # delta
                + raw(3, 6, ext=0x02000000, data=b"c")  # new message, same delta
                + raw(2, 6, 10, data=b"d")  # back to a small delta
                + raw(3, 6, data=b"e"))
        self.assertEqual([m.timestamp for m in feed_whole(data)],
                         [0x01000000, 0x03000000, 0x05000000, 0x0500000A, 0x05000014])

    def test_wraparound(self):
        data = (raw(0, 6, 0xFFFFFF, 1, 9, 1, ext=0xFFFFFFF0, data=b"a")
                + raw(2, 6, 0x20, data=b"b"))
        self.assertEqual([m.timestamp for m in feed_whole(data)], [0xFFFFFFF0, 0x10])


class ControlTests(unittest.TestCase):
    def test_set_chunk_size_applies_mid_buffer(self):
        data = set_chunk_size_chunk(4096) + encode_message(6, 9, 1, 0, b"q" * 3000, 4096)
        msgs = feed_whole(data)
        self.assertEqual(msgs, [
            RtmpMessage(1, 0, 0, b"\x00\x00\x10\x00", 2),
            RtmpMessage(9, 1, 0, b"q" * 3000, 6),
        ])

    def test_set_chunk_size_while_other_message_incomplete(self):
        data = (raw(0, 6, 0, 300, 9, 1, data=b"a" * 128)
                + set_chunk_size_chunk(172)
                + raw(3, 6, data=b"b" * 172))
        reader = ChunkReader()
        self.assertEqual(reader.feed(data)[1], RtmpMessage(9, 1, 0, b"a" * 128 + b"b" * 172, 6))
        self.assertEqual(reader.chunk_size, 172)

    def test_set_chunk_size_ignores_reserved_bit(self):
        reader = ChunkReader()
        reader.feed(raw(0, 2, 0, 4, 1, 0, data=b"\x80\x00\x01\x00"))
        self.assertEqual(reader.chunk_size, 256)

    def test_chunk_size_one(self):
        data = set_chunk_size_chunk(1) + encode_message(3, 20, 0, 0, b"hello", 1)
        self.assertEqual(feed_whole(data, min_chunk_size=1)[1].payload, b"hello")

    def test_peer_chunk_size_below_128_refused_as_srs_does(self):
        self.assertRaises(ChunkError, feed_whole, set_chunk_size_chunk(127))
        self.assertEqual(feed_whole(set_chunk_size_chunk(128))[0].type_id, 1)

    def test_incomplete_messages_share_a_byte_budget(self):
        reader = ChunkReader(max_pending_bytes=10_000)
        # two messages of 6000 bytes announced on two chunk streams, only
        # their first chunks sent: the second one breaks the budget
        first = encode_message(3, 9, 1, 0, bytes(6000), 128)[:140]
        second = encode_message(4, 9, 1, 0, bytes(6000), 128)[:140]
        reader.feed(first)
        self.assertRaises(ChunkError, reader.feed, second)
        # a completed message gives its budget back
        reader = ChunkReader(max_pending_bytes=10_000)
        for _ in range(5):
            self.assertEqual(len(reader.feed(encode_message(3, 9, 1, 0, bytes(6000), 128))), 1)

    def test_invalid_chunk_sizes(self):
        for payload in (b"\x00\x00\x00\x00", b"\x80\x00\x00\x00", b"\x01\x00\x00\x00", b"\x00\x10"):
            data = raw(0, 2, 0, len(payload), 1, 0, data=payload)
            self.assertRaises(ChunkError, feed_whole, data)

    def test_abort_drops_partial_message(self):
        data = (raw(0, 6, 0, 300, 9, 1, data=b"a" * 128)
                + raw(0, 2, 0, 4, 2, 0, data=b"\x00\x00\x00\x06")
                + raw(0, 6, 50, 3, 9, 1, data=b"new"))
        reader = ChunkReader(max_chunk_streams=1)
        self.assertEqual(reader.feed(data), [
            RtmpMessage(2, 0, 0, b"\x00\x00\x00\x06", 2),
            RtmpMessage(9, 1, 50, b"new", 6),
        ])

    def test_abort_unknown_csid_is_harmless(self):
        data = raw(0, 2, 0, 4, 2, 0, data=b"\x00\x00\x01\x00")
        self.assertEqual(len(feed_whole(data)), 1)

    def test_short_abort(self):
        self.assertRaises(ChunkError, feed_whole, raw(0, 2, 0, 2, 2, 0, data=b"\x00\x06"))


class ErrorTests(unittest.TestCase):
    def test_fresh_fmt2_and_fmt3(self):
        self.assertRaises(ChunkError, feed_whole, raw(2, 5, 10, data=b"x"))
        self.assertRaises(ChunkError, feed_whole, raw(3, 5, data=b"x"))

    def test_fmt0_while_incomplete(self):
        data = raw(0, 6, 0, 300, 9, 1, data=b"a" * 128) + raw(0, 6, 0, 3, 9, 1, data=b"abc")
        self.assertRaises(ChunkError, feed_whole, data)

    def test_length_change_mid_message(self):
        data = raw(0, 6, 0, 300, 9, 1, data=b"a" * 128) + raw(1, 6, 0, 301, 9, data=b"b")
        self.assertRaises(ChunkError, feed_whole, data)

    def test_oversize_message(self):
        data = raw(0, 6, 0, 1001, 9, 1)
        exc = self.assertRaises(ChunkError, feed_whole, data, max_message_size=1000)
        self.assertIn("1001", str(exc))
        self.assertEqual(len(feed_whole(raw(0, 6, 0, 1000, 9, 1), max_message_size=1000)), 0)

    def test_too_many_incomplete_messages(self):
        data = b"".join(raw(0, csid, 0, 200, 9, 1, data=b"x" * 128) for csid in (3, 4, 5))
        self.assertRaises(ChunkError, feed_whole, data, max_chunk_streams=2)
        # Completing one in between frees its slot.
        data = (raw(0, 3, 0, 200, 9, 1, data=b"x" * 128) + raw(0, 4, 0, 200, 9, 1, data=b"x" * 128)
                + raw(3, 3, data=b"y" * 72) + raw(0, 5, 0, 200, 9, 1, data=b"x" * 128))
        self.assertEqual(len(feed_whole(data, max_chunk_streams=2)), 1)

    def test_too_many_chunk_stream_ids(self):
        data = b"".join(raw(0, csid, 0, 0, 20, 0) for csid in range(2, 2 + 1024))
        self.assertEqual(len(feed_whole(data)), 1024)
        exc = self.assertRaises(ChunkError, feed_whole, data + raw(0, 5000, 0, 0, 20, 0))
        self.assertIn("1024", str(exc))

    def test_failed_reader_stays_failed(self):
        reader = ChunkReader()
        self.assertRaises(ChunkError, reader.feed, raw(3, 5))
        exc = self.assertRaises(ChunkError, reader.feed, encode_message(3, 8, 1, 0, b"", 128))
        self.assertIn("already failed", str(exc))

    def test_random_garbage_raises_only_chunk_error(self):
        rng = random.Random(7)
        for trial in range(300):
            data = rng.randbytes(rng.randint(1, 600))
            reader = ChunkReader(max_message_size=4096, max_chunk_streams=4)
            try:
                for i in range(0, len(data), 17):
                    for msg in reader.feed(data[i:i + 17]):
                        self.assertIsInstance(msg, RtmpMessage)
            except RtmpError as exc:
                self.assertIsInstance(exc, ChunkError)


class SplitTests(unittest.TestCase):
    """One stream exercising every feature gives the same messages however cut."""

    def setUp(self):
        self.data = (
            raw(0, 3, 0, 5, 20, 0, data=b"hello")
            + raw(1, 2, 0, 6, 4, data=b"\x00\x06\x00\x00\x00\x01")
            + raw(0, 6, 0xFFFFFF, 300, 9, 1, ext=0x01000000, data=b"v" * 128)
            + raw(0, 7, 33, 4, 8, 1, data=b"aaaa")
            + raw(3, 6, ext=0x01000000, data=b"w" * 128)
            + set_chunk_size_chunk(200)
            + raw(3, 6, ext=0x01000000, data=b"x" * 44)
            + raw(0, 320, 7, 250, 9, 1, data=b"y" * 200)
            + raw(0, 2, 0, 4, 2, 0, data=b"\x00\x00\x01\x40")
            + raw(2, 7, 10, data=b"bbbb")
            + raw(3, 7, data=b"cccc")
            + encode_message(65599, 18, 1, 0x7FFFFFFF, b"meta" * 100, 200)
        )
        self.expected = feed_whole(self.data)

    def test_expected(self):
        self.assertEqual(self.expected, [
            RtmpMessage(20, 0, 0, b"hello", 3),
            RtmpMessage(4, 0, 0, b"\x00\x06\x00\x00\x00\x01", 2),
            RtmpMessage(8, 1, 33, b"aaaa", 7),
            RtmpMessage(1, 0, 0, b"\x00\x00\x00\xc8", 2),
            RtmpMessage(9, 1, 0x01000000, b"v" * 128 + b"w" * 128 + b"x" * 44, 6),
            RtmpMessage(2, 0, 0, b"\x00\x00\x01\x40", 2),
            RtmpMessage(8, 1, 43, b"bbbb", 7),
            RtmpMessage(8, 1, 53, b"cccc", 7),
            RtmpMessage(18, 1, 0x7FFFFFFF, b"meta" * 100, 65599),
        ])

    def test_byte_by_byte(self):
        self.assertEqual(feed_bytewise(self.data), self.expected)

    def test_every_split(self):
        for cut in range(len(self.data) + 1):
            self.assertEqual(feed_split(self.data, cut), self.expected, f"cut at {cut}")

    def test_bytes_received(self):
        reader = ChunkReader()
        reader.feed(self.data[:10])
        reader.feed(b"")
        reader.feed(memoryview(self.data)[10:])
        self.assertEqual(reader.bytes_received, len(self.data))


class SplitEveryHeaderFormTests(unittest.TestCase):
    """Each message header form (fmt 0/1/2/3, as a new message and inside
    one, with and without the extended field, 1/2/3-byte csids) gives the
    same messages however the input is cut."""

    def check(self, data, expected, **kw):
        self.assertEqual(feed_whole(data, **kw), expected)
        self.assertEqual(feed_bytewise(data, **kw), expected)
        for cut in range(len(data) + 1):
            self.assertEqual(feed_split(data, cut, **kw), expected, f"cut at {cut}")

    def test_fmt1_and_fmt2_inside_a_message(self):
        data = (raw(0, 6, 100, 300, 9, 1, data=b"a" * 128)
                + raw(1, 6, 5, 300, 9, data=b"b" * 128)  # same length: header ignored
                + raw(2, 6, 7, data=b"c" * 44)  # header ignored
                + raw(2, 6, 10, data=b"d" * 128)  # a new message, delta 10
                + raw(3, 6, data=b"e" * 128)
                + raw(3, 6, data=b"f" * 44))
        self.check(data, [
            RtmpMessage(9, 1, 100, b"a" * 128 + b"b" * 128 + b"c" * 44, 6),
            RtmpMessage(9, 1, 110, b"d" * 128 + b"e" * 128 + b"f" * 44, 6),
        ])

    def test_extended_fields_in_every_fmt(self):
        data = (raw(0, 6, 0xFFFFFF, 200, 9, 1, ext=0x01000000, data=b"a" * 128)
                + raw(3, 6, data=b"b" * 72)  # continuation without the repeated field
                + raw(1, 6, 0xFFFFFF, 1, 8, ext=0x02000000, data=b"c")  # extended delta
                + raw(3, 6, ext=0x02000000, data=b"d")  # new message, same delta
                + raw(2, 6, 0xFFFFFF, ext=0x00FFFFFF, data=b"e")  # a delta of exactly 0xFFFFFF
                + raw(2, 6, 3, data=b"f")  # back to a small delta: fmt 3 carries no field
                + raw(3, 6, data=b"g"))
        self.check(data, [
            RtmpMessage(9, 1, 0x01000000, b"a" * 128 + b"b" * 72, 6),
            RtmpMessage(8, 1, 0x03000000, b"c", 6),
            RtmpMessage(8, 1, 0x05000000, b"d", 6),
            RtmpMessage(8, 1, 0x05FFFFFF, b"e", 6),
            RtmpMessage(8, 1, 0x06000002, b"f", 6),
            RtmpMessage(8, 1, 0x06000005, b"g", 6),
        ])

    def test_fresh_fmt1_and_zero_length_messages(self):
        data = (raw(1, 3, 5, 0, 20)  # fresh fmt 1: stream id 0, from timestamp 0
                + raw(3, 3)  # new empty message, delta 5 again
                + raw(2, 3, 1)
                + raw(0, 3, 40, 2, 20, 7, data=b"zz"))
        self.check(data, [
            RtmpMessage(20, 0, 5, b"", 3),
            RtmpMessage(20, 0, 10, b"", 3),
            RtmpMessage(20, 0, 11, b"", 3),
            RtmpMessage(20, 7, 40, b"zz", 3),
        ])

    def test_two_and_three_byte_csids_in_every_fmt(self):
        data = b"".join(
            raw(0, csid, 1, 130, 9, 1, data=b"x" * 128) + raw(3, csid, data=b"xx")
            + raw(1, csid, 2, 1, 8, data=b"y")
            + raw(2, csid, 3, data=b"z")
            + raw(3, csid, data=b"w")
            for csid in (64, 319, 320, 65599)
        )
        expected = []
        for csid in (64, 319, 320, 65599):
            expected += [
                RtmpMessage(9, 1, 1, b"x" * 130, csid),
                RtmpMessage(8, 1, 3, b"y", csid),
                RtmpMessage(8, 1, 6, b"z", csid),
                RtmpMessage(8, 1, 9, b"w", csid),
            ]
        self.check(data, expected)

    def test_abort_and_chunk_size_between_chunks(self):
        data = (raw(0, 6, 0, 300, 9, 1, data=b"a" * 128)
                + raw(0, 2, 0, 4, 2, 0, data=b"\x00\x00\x00\x06")  # abort csid 6
                + raw(0, 6, 50, 300, 9, 1, data=b"b" * 128)
                + set_chunk_size_chunk(172)
                + raw(3, 6, data=b"c" * 172))
        self.check(data, [
            RtmpMessage(2, 0, 0, b"\x00\x00\x00\x06", 2),
            RtmpMessage(1, 0, 0, b"\x00\x00\x00\xac", 2),
            RtmpMessage(9, 1, 50, b"b" * 128 + b"c" * 172, 6),
        ])

    def test_errors_whatever_the_cut(self):
        good = raw(0, 4, 0, 3, 8, 1, data=b"abc")
        bad = [
            raw(2, 5, 10, data=b"x"),  # fmt 2 on a fresh csid
            raw(3, 5, data=b"x"),  # fmt 3 on a fresh csid
            raw(0, 6, 0, 300, 9, 1, data=b"a" * 128) + raw(0, 6, 0, 3, 9, 1, data=b"abc"),
            raw(0, 6, 0, 300, 9, 1, data=b"a" * 128) + raw(1, 6, 0, 301, 9, data=b"b"),
        ]
        for tail in bad:
            data = good + tail
            for cut in range(len(data) + 1):
                reader = ChunkReader()
                got = []
                with self.assertRaises(ChunkError, msg=f"cut at {cut}"):
                    got += reader.feed(data[:cut])
                    got += reader.feed(data[cut:])
                self.assertIn(got, ([], [RtmpMessage(8, 1, 0, b"abc", 4)]))

    def test_random_three_way_cuts(self):
        rng = random.Random(18)
        data = b"".join(
            encode_message(rng.choice((3, 4, 70, 400)), rng.choice((8, 9, 18)), 1,
                           rng.choice((rng.randrange(0xFFFFFF), rng.randrange(0xFFFFFF, 1 << 32))),
                           rng.randbytes(rng.randrange(0, 700)), 128)
            for _ in range(40)
        )
        expected = feed_whole(data)
        self.assertEqual(len(expected), 40)
        for _ in range(300):
            a, b = sorted(rng.randrange(len(data) + 1) for _ in range(2))
            reader = ChunkReader()
            got = reader.feed(data[:a]) + reader.feed(data[a:b]) + reader.feed(data[b:])
            self.assertEqual(got, expected, (a, b))
