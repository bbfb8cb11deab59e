"""Tests for srs_twisted.codec.amf0."""

import datetime
import random

from twisted.trial import unittest

from srs_twisted.codec import amf0, amf3
from srs_twisted.codec.amf0 import (
    UNDEFINED, AMF0Error, AMFDate, ECMAArray, TypedObject, XMLDocument, decode, decode_all,
    encode, encode_many)
from srs_twisted.codec.errors import CodecError

ONE = b"\x3f\xf0\x00\x00\x00\x00\x00\x00"  # 1.0 as a big-endian double


def s(text):
    """AMF0 short string body (length + UTF-8), as hand-written bytes."""
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


# An FFmpeg-style RTMP connect command, written out by hand from the AMF0 spec.
CONNECT = (
    b"\x02" + s("connect")
    + b"\x00" + ONE
    + b"\x03"
    + s("app") + b"\x02" + s("live")
    + s("type") + b"\x02" + s("nonprivate")
    + s("flashVer") + b"\x02" + s("FMLE/3.0 (compatible; Lavf59.27.100)")
    + s("tcUrl") + b"\x02" + s("rtmp://127.0.0.1:1935/live")
    + s("fpad") + b"\x01\x00"
    + s("capabilities") + b"\x00" + b"\x40\x2e\x00\x00\x00\x00\x00\x00"  # 15.0
    + b"\x00\x00\x09"
)


class EncodeTests(unittest.TestCase):
    def test_scalars(self):
        self.assertEqual(encode(1), b"\x00" + ONE)
        self.assertEqual(encode(1.0), b"\x00" + ONE)
        self.assertEqual(encode(True), b"\x01\x01")
        self.assertEqual(encode(False), b"\x01\x00")
        self.assertEqual(encode(None), b"\x05")
        self.assertEqual(encode(UNDEFINED), b"\x06")
        self.assertEqual(encode("abc"), b"\x02\x00\x03abc")
        self.assertEqual(encode(""), b"\x02\x00\x00")
        self.assertEqual(encode("é"), b"\x02\x00\x02\xc3\xa9")

    def test_long_string(self):
        text = "a" * 65536
        self.assertEqual(encode(text), b"\x0c\x00\x01\x00\x00" + b"a" * 65536)
        self.assertEqual(encode("a" * 65535)[:3], b"\x02\xff\xff")

    def test_containers(self):
        self.assertEqual(encode({"a": 1}), b"\x03\x00\x01a\x00" + ONE + b"\x00\x00\x09")
        self.assertEqual(encode({}), b"\x03\x00\x00\x09")
        self.assertEqual(encode(ECMAArray(a=None)), b"\x08\x00\x00\x00\x01\x00\x01a\x05\x00\x00\x09")
        self.assertEqual(encode([1, "x"]), b"\x0a\x00\x00\x00\x02\x00" + ONE + b"\x02\x00\x01x")
        self.assertEqual(encode(("x",)), b"\x0a\x00\x00\x00\x01\x02\x00\x01x")
        self.assertEqual(encode(TypedObject("C", b=True)),
                         b"\x10\x00\x01C\x00\x01b\x01\x01\x00\x00\x09")

    def test_date_and_xml(self):
        self.assertEqual(encode(AMFDate(1.5)), b"\x0b\x3f\xf8\x00\x00\x00\x00\x00\x00\x00\x00")
        self.assertEqual(encode(AMFDate(0.0, -60)), b"\x0b" + b"\x00" * 8 + b"\xff\xc4")
        self.assertEqual(encode(XMLDocument("<a/>")), b"\x0f\x00\x00\x00\x04<a/>")

    def test_connect_command(self):
        obj = {"app": "live", "type": "nonprivate",
               "flashVer": "FMLE/3.0 (compatible; Lavf59.27.100)",
               "tcUrl": "rtmp://127.0.0.1:1935/live", "fpad": False, "capabilities": 15}
        self.assertEqual(encode_many("connect", 1, obj), CONNECT)

    def test_unencodable(self):
        self.assertRaises(AMF0Error, encode, object())
        self.assertRaises(AMF0Error, encode, b"bytes")
        self.assertRaises(AMF0Error, encode, {1: "a"})
        self.assertRaises(AMF0Error, encode, {"k" * 65536: 1})
        self.assertRaises(AMF0Error, encode, 10 ** 400)
        self.assertRaises(AMF0Error, encode, "\ud800")
        loop = {}
        loop["self"] = loop
        self.assertRaises(AMF0Error, encode, loop)
        self.assertTrue(issubclass(AMF0Error, CodecError))
        self.assertTrue(issubclass(AMF0Error, ValueError))


class DecodeTests(unittest.TestCase):
    def test_connect_command(self):
        values = decode_all(CONNECT)
        self.assertEqual(values[0], "connect")
        self.assertIsInstance(values[1], float)
        self.assertEqual(values[1], 1.0)
        self.assertEqual(values[2]["tcUrl"], "rtmp://127.0.0.1:1935/live")
        self.assertEqual(values[2]["capabilities"], 15.0)
        self.assertIs(values[2]["fpad"], False)
        self.assertEqual(list(values[2]), ["app", "type", "flashVer", "tcUrl", "fpad",
                                           "capabilities"])

    def test_offsets(self):
        value, offset = decode(CONNECT)
        self.assertEqual((value, offset), ("connect", 10))
        value, offset = decode(CONNECT, offset)
        self.assertEqual((value, offset), (1.0, 19))
        self.assertEqual(decode(memoryview(CONNECT), 10), (1.0, 19))
        self.assertEqual(decode(bytearray(b"\x05")), (None, 1))
        self.assertRaises(AMF0Error, decode, b"\x05", -1)

    def test_round_trip_every_type(self):
        values = [
            0.0, -2.5, 1e300, True, False, None, UNDEFINED, "", "text", "x" * 70000,
            {"a": 1.0, "nested": {"b": [1.0, "two", None]}}, {},
            ECMAArray(duration=0.0, width=1280.0), ECMAArray(),
            TypedObject("flex.Foo", x=1.0), TypedObject(""), [], [[[]]],
            AMFDate(1700000000000.0, 0), AMFDate(-1.0, 120), XMLDocument("<x>y</x>"),
        ]
        for value in values:
            data = encode(value)
            self.assertEqual(decode(data), (value, len(data)), value)
        self.assertEqual(decode_all(encode_many(*values)), values)

    def test_decoded_types(self):
        self.assertIsInstance(decode(encode(3))[0], float)
        self.assertIs(type(decode(encode({}))[0]), dict)
        self.assertIs(type(decode(encode(ECMAArray()))[0]), ECMAArray)
        typed = decode(encode(TypedObject("Point", x=1.0)))[0]
        self.assertIsInstance(typed, TypedObject)
        self.assertEqual(typed.class_name, "Point")
        self.assertNotEqual(typed, TypedObject("Other", x=1.0))
        self.assertEqual(typed, {"x": 1.0})
        xml = decode(b"\x0f\x00\x00\x00\x03<a>")[0]
        self.assertIsInstance(xml, str)
        self.assertEqual(xml, "<a>")
        self.assertIs(decode(b"\x06")[0], UNDEFINED)
        self.assertIs(decode(b"\x0d")[0], UNDEFINED)  # "unsupported" marker

    def test_date(self):
        date = decode(b"\x0b" + b"\x00" * 8 + b"\x00\x00")[0]
        self.assertEqual(date, AMFDate(0.0, 0))
        self.assertEqual(date.to_datetime(),
                         datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc))
        stamp = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
        self.assertEqual(AMFDate.from_datetime(stamp).to_datetime(), stamp)
        self.assertRaises(AMF0Error, AMFDate(1e300).to_datetime)

    def test_undefined_singleton(self):
        self.assertIs(type(UNDEFINED)(), UNDEFINED)
        self.assertFalse(UNDEFINED)
        self.assertEqual(repr(UNDEFINED), "UNDEFINED")

    def test_invalid_utf8_round_trips(self):
        data = b"\x02\x00\x02\xff\xfe"
        text = decode(data)[0]
        self.assertEqual(encode(text), data)

    def test_references(self):
        # strict array [obj, ref 1]: refs[0] is the array itself, refs[1] the object.
        data = (b"\x0a\x00\x00\x00\x02" + b"\x03\x00\x01a\x01\x01\x00\x00\x09"
                + b"\x07\x00\x01")
        items = decode(data)[0]
        self.assertEqual(items, [{"a": True}, {"a": True}])
        self.assertIs(items[0], items[1])
        self.assertIs(decode(b"\x0a\x00\x00\x00\x01\x07\x00\x00")[0][0].__class__, list)
        self.assertRaises(AMF0Error, decode, b"\x07\x00\x00")
        self.assertRaises(AMF0Error, decode, b"\x0a\x00\x00\x00\x01\x07\x00\x01")
        # References live across the values of one decode_all call.
        values = decode_all(b"\x03\x00\x00\x09\x07\x00\x00")
        self.assertIs(values[0], values[1])

    def test_avmplus_switch(self):
        self.assertEqual(decode(b"\x11\x06\x07abc"), ("abc", 6))
        self.assertEqual(decode(b"\x11\x04\x7f"), (127, 3))
        self.assertEqual(decode(b"\x11" + amf3.encode({"a": [1, 2]}))[0], {"a": [1, 2]})
        self.assertEqual(decode_all(b"\x02\x00\x01x\x11\x03\x05"), ["x", True, None])
        self.assertRaises(AMF0Error, decode, b"\x11\x06")
        self.assertRaises(AMF0Error, decode, b"\x11")

    def test_ecma_array_count_is_not_trusted(self):
        body = b"\x00\x01a\x00" + ONE + b"\x00\x00\x09"
        for count in (b"\x00\x00\x00\x00", b"\x00\x00\x00\x05", b"\xff\xff\xff\xff"):
            self.assertEqual(decode(b"\x08" + count + body), (ECMAArray(a=1.0), 20))

    def test_missing_object_end_at_end_of_data(self):
        self.assertEqual(decode(b"\x03\x00\x01a\x05"), ({"a": None}, 5))
        self.assertEqual(decode(b"\x03"), ({}, 1))
        self.assertEqual(decode(b"\x08\x00\x00\x00\x01\x00\x01a\x05"), (ECMAArray(a=None), 9))
        metadata = b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x01\x00\x05width\x00" + ONE
        self.assertEqual(decode_all(metadata), ["onMetaData", ECMAArray(width=1.0)])

    def test_empty_key(self):
        self.assertEqual(decode(b"\x03\x00\x00\x05\x00\x00\x09")[0], {"": None})

    def test_bad_markers(self):
        for data in (b"\x04", b"\x0e", b"\x09", b"\x12", b"\xff"):
            self.assertRaises(AMF0Error, decode, data)
        self.assertRaises(AMF0Error, decode, b"")
        self.assertEqual(decode_all(b""), [])

    def test_huge_declared_sizes(self):
        self.assertRaises(AMF0Error, decode, b"\x0a\xff\xff\xff\xff\x05")
        self.assertRaises(AMF0Error, decode, b"\x0c\xff\xff\xff\xffabc")
        self.assertRaises(AMF0Error, decode, b"\x0f\x7f\xff\xff\xff")
        self.assertRaises(AMF0Error, decode, b"\x02\xff\xff")


class TruncationTests(unittest.TestCase):
    def test_every_cut_of_scalars_and_arrays(self):
        values = ["connect", 2.0, None, True, [1.0, "ab", [UNDEFINED]], AMFDate(5.0),
                  "x" * 70000, XMLDocument("<a/>")]
        boundaries = {}
        offset = 0
        for count, value in enumerate(values):
            boundaries[offset] = values[:count]
            offset += len(encode(value))
        data = encode_many(*values)
        for cut in range(len(data)):
            if cut in boundaries:
                self.assertEqual(decode_all(data[:cut]), boundaries[cut])
            else:
                with self.assertRaises(AMF0Error, msg="cut at %d" % cut):
                    decode_all(data[:cut])
        self.assertEqual(decode_all(data), values)

    def test_every_cut_of_an_object(self):
        items = [("a", 1.0), ("bb", "x"), ("c", [True]), ("d", None)]
        data = encode(dict(items))
        # Lenient cuts: exactly where the next key would start.
        lenient = {len(encode(dict(items[:k]))) - 3: dict(items[:k]) for k in range(len(items) + 1)}
        for cut in range(len(data)):
            if cut in lenient:
                self.assertEqual(decode(data[:cut]), (lenient[cut], cut))
            else:
                self.assertRaises(AMF0Error, decode, data[:cut])
        self.assertEqual(decode(data), (dict(items), len(data)))

    def test_every_cut_of_connect_raises_only_amf0error(self):
        for cut in range(len(CONNECT)):
            try:
                decode_all(CONNECT[:cut])
            except AMF0Error:
                pass

    def test_fuzz_only_amf0error(self):
        rng = random.Random(1935)
        seed = encode_many("publish", 5.0, None, "stream", {"k": [1.0, {"z": "q"}]},
                           ECMAArray(a=AMFDate(1.0)), TypedObject("T", v=False))
        for _ in range(3000):
            data = bytearray(seed)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            try:
                decode_all(bytes(data[:rng.randint(0, len(data))]))
            except AMF0Error:
                pass
        for _ in range(2000):
            junk = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
            try:
                decode_all(junk)
            except AMF0Error:
                pass


class DepthTests(unittest.TestCase):
    def test_object_depth_bomb(self):
        bomb = b"\x03\x00\x01a" * 1000 + b"\x05"
        self.assertRaises(AMF0Error, decode, bomb)
        self.assertRaises(AMF0Error, decode_all, bomb)

    def test_array_depth_bomb(self):
        bomb = b"\x0a\x00\x00\x00\x01" * 1000 + b"\x05"
        self.assertRaises(AMF0Error, decode, bomb)

    def test_mixed_bomb_with_huge_max_depth(self):
        bomb = (b"\x08\x00\x00\x00\x01\x00\x01a" + b"\x0a\x00\x00\x00\x01") * 20000 + b"\x05"
        self.assertRaises(AMF0Error, decode, bomb, 0, 10 ** 6)

    def test_depth_limit_is_exact(self):
        value = None
        for _ in range(32):
            value = {"a": value}
        data = encode(value)
        self.assertEqual(decode(data)[0], value)
        self.assertRaises(AMF0Error, decode, encode({"a": value}))
        self.assertRaises(AMF0Error, decode, data, 0, 31)
        self.assertEqual(decode(encode(1.0), 0, 0)[0], 1.0)
        self.assertRaises(AMF0Error, decode, encode([]), 0, 0)

    def test_avmplus_inherits_remaining_depth(self):
        inner = amf3.encode([[[]]])
        self.assertEqual(decode(b"\x11" + inner, 0, 3)[0], [[[]]])
        self.assertRaises(AMF0Error, decode, b"\x11" + inner, 0, 2)
        self.assertRaises(AMF0Error, decode, encode([None])[:-1] + b"\x11" + inner, 0, 3)

    def test_module_exports(self):
        for name in amf0.__all__:
            self.assertTrue(hasattr(amf0, name), name)
