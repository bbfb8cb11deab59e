"""Tests for srs_twisted.codec.amf3."""

from twisted.trial import unittest

from srs_twisted.codec.amf0 import UNDEFINED, AMFDate, ECMAArray, TypedObject, XMLDocument
from srs_twisted.codec.amf3 import AMF3Error, decode, encode
from srs_twisted.codec.errors import CodecError

from .bits import assert_fuzz


class IntegerTests(unittest.TestCase):
    CASES = [
        (0, b"\x04\x00"),
        (127, b"\x04\x7f"),
        (128, b"\x04\x81\x00"),
        (16383, b"\x04\xff\x7f"),
        (16384, b"\x04\x81\x80\x00"),
        (2097151, b"\x04\xff\xff\x7f"),
        (2097152, b"\x04\x80\xc0\x80\x00"),
        (2 ** 28 - 1, b"\x04\xbf\xff\xff\xff"),
        (-1, b"\x04\xff\xff\xff\xff"),
        (-(2 ** 28), b"\x04\xc0\x80\x80\x00"),
    ]

    def test_u29_encodings(self):
        for value, data in self.CASES:
            self.assertEqual(encode(value), data, value)
            self.assertEqual(decode(data), (value, len(data)), value)

    def test_out_of_range_integers_become_doubles(self):
        self.assertEqual(encode(2 ** 28), b"\x05\x41\xb0\x00\x00\x00\x00\x00\x00")
        self.assertEqual(decode(encode(2 ** 28))[0], float(2 ** 28))
        self.assertEqual(decode(encode(-(2 ** 28) - 1))[0], float(-(2 ** 28) - 1))


class DecodeTests(unittest.TestCase):
    def test_scalars(self):
        self.assertIs(decode(b"\x00")[0], UNDEFINED)
        self.assertEqual(decode(b"\x01"), (None, 1))
        self.assertEqual(decode(b"\x02"), (False, 1))
        self.assertEqual(decode(b"\x03"), (True, 1))
        self.assertEqual(decode(b"\x05\x3f\xf8\x00\x00\x00\x00\x00\x00"), (1.5, 9))
        self.assertEqual(decode(b"\x06\x07abc"), ("abc", 5))
        self.assertEqual(decode(b"\x06\x01"), ("", 2))
        self.assertEqual(decode(b"\x0c\x07\x01\x02\x03"), (b"\x01\x02\x03", 5))
        xml = decode(b"\x0b\x07<a>")[0]
        self.assertIsInstance(xml, XMLDocument)
        self.assertEqual(xml, "<a>")
        self.assertEqual(decode(b"\x07\x07<b>")[0], "<b>")
        self.assertEqual(decode(b"\x08\x01" + b"\x00" * 8), (AMFDate(0.0), 10))

    def test_offset(self):
        self.assertEqual(decode(b"xx\x04\x05", 2), (5, 4))
        self.assertRaises(AMF3Error, decode, b"\x01", -1)

    def test_string_references(self):
        # dense array ['ab', <string ref 0>]
        self.assertEqual(decode(b"\x09\x05\x01\x06\x05ab\x06\x00")[0], ["ab", "ab"])
        # the empty string is never put in the table
        self.assertRaises(AMF3Error, decode, b"\x09\x05\x01\x06\x01\x06\x00")

    def test_object_and_date_references(self):
        data = b"\x09\x07\x01\x0a\x0b\x01\x03a\x04\x05\x01\x0a\x02\x08\x00"
        items = decode(data)[0]
        self.assertEqual(items[0], {"a": 5})
        self.assertIs(items[0], items[1])
        self.assertIs(items[2], items)  # object 0 is the array itself
        dates = decode(b"\x09\x05\x01\x08\x01" + b"\x00" * 8 + b"\x08\x02")[0]
        self.assertIs(dates[0], dates[1])
        self.assertRaises(AMF3Error, decode, b"\x0a\x02")
        self.assertRaises(AMF3Error, decode, b"\x0c\x04")

    def test_sealed_traits_and_trait_reference(self):
        # two objects of class 'P' with sealed member 'x'; the second reuses the traits
        data = b"\x09\x05\x01" + b"\x0a\x13\x03P\x03x\x04\x01" + b"\x0a\x01\x04\x02"
        first, second = decode(data)[0]
        self.assertEqual((first.class_name, first), ("P", {"x": 1}))
        self.assertEqual((second.class_name, second), ("P", {"x": 2}))
        self.assertRaises(AMF3Error, decode, b"\x0a\x05")  # traits ref 1, none known

    def test_sealed_and_dynamic_members(self):
        data = b"\x0a\x1b\x01\x03x\x04\x01\x03y\x06\x03z\x01"
        self.assertEqual(decode(data), ({"x": 1, "y": "z"}, len(data)))

    def test_externalizable_is_refused(self):
        self.assertRaises(AMF3Error, decode, b"\x0a\x07\x03C")

    def test_mixed_array(self):
        value = decode(b"\x09\x03\x03k\x06\x03v\x01\x04\x05")[0]
        self.assertIsInstance(value, ECMAArray)
        self.assertEqual(value, {"k": "v", "0": 5})

    def test_unsupported_markers(self):
        for marker in range(0x0D, 0x20):
            self.assertRaises(AMF3Error, decode, bytes((marker, 1, 1)))
        self.assertRaises(AMF3Error, decode, b"")

    def test_huge_counts(self):
        self.assertRaises(AMF3Error, decode, b"\x09\xbf\xff\xff\xff\x01")
        self.assertRaises(AMF3Error, decode, b"\x0a\xbf\xff\xff\xf3\x01")
        self.assertRaises(AMF3Error, decode, b"\x06\xbf\xff\xff\xffabc")

    def test_every_cut_raises(self):
        data = encode([1, -300, 2.5, "hello", "", None, True, False, b"\x00\x01",
                       AMFDate(3.0), XMLDocument("<x/>"), {"a": [1, {"b": "c"}]},
                       TypedObject("T", z=UNDEFINED), ECMAArray(k=1)])
        for cut in range(len(data)):
            self.assertRaises(AMF3Error, decode, data[:cut])
        self.assertEqual(decode(data)[1], len(data))

    def test_fuzz_only_amf3error(self):
        seed = encode({"a": [1, "xy", {"b": b"raw"}], "c": AMFDate(1.0)})
        assert_fuzz(self, decode, seed, rng_seed=17, error=AMF3Error)

    def test_depth_bomb(self):
        self.assertRaises(AMF3Error, decode, b"\x09\x03\x01" * 1000 + b"\x01")
        self.assertRaises(AMF3Error, decode, b"\x0a\x0b\x01\x03a" * 1000 + b"\x01")
        self.assertRaises(AMF3Error, decode, b"\x09\x03\x01" * 30000 + b"\x01", 0, 10 ** 6)
        self.assertEqual(decode(b"\x09\x03\x01" * 32 + b"\x01")[1], 97)
        self.assertRaises(AMF3Error, decode, b"\x09\x03\x01" * 33 + b"\x01")


class EncodeTests(unittest.TestCase):
    def test_exact_bytes(self):
        self.assertEqual(encode(None), b"\x01")
        self.assertEqual(encode(UNDEFINED), b"\x00")
        self.assertEqual(encode(True), b"\x03")
        self.assertEqual(encode(False), b"\x02")
        self.assertEqual(encode("abc"), b"\x06\x07abc")
        self.assertEqual(encode([1]), b"\x09\x03\x01\x04\x01")
        self.assertEqual(encode({"a": 1}), b"\x0a\x0b\x01\x03a\x04\x01\x01")
        self.assertEqual(encode(TypedObject("C")), b"\x0a\x0b\x03C\x01")
        self.assertEqual(encode(ECMAArray(k=None)), b"\x09\x01\x03k\x01\x01")
        self.assertEqual(encode(bytearray(b"\x09")), b"\x0c\x03\x09")
        self.assertEqual(encode(XMLDocument("<a/>")), b"\x07\x09<a/>")
        self.assertEqual(encode(AMFDate(0.0)), b"\x08\x01" + b"\x00" * 8)

    def test_round_trips(self):
        values = [None, UNDEFINED, True, False, 0, -1, 2 ** 28 - 1, 1.25, "", "héllo",
                  "x" * 300, [], [1, [2, [3]]], {}, {"a": {"b": None}},
                  TypedObject("flex.Point", x=1, y=2), ECMAArray(k="v"), b"", b"\xff" * 200,
                  AMFDate(1700000000000.0), XMLDocument("<doc/>")]
        for value in values:
            data = encode(value)
            decoded, offset = decode(data)
            self.assertEqual(decoded, value)
            self.assertEqual(type(decoded), type(value) if not isinstance(value, bytes) else bytes)
            self.assertEqual(offset, len(data))
            if isinstance(value, TypedObject):
                self.assertEqual(decoded.class_name, value.class_name)

    def test_unencodable(self):
        self.assertRaises(AMF3Error, encode, object())
        self.assertRaises(AMF3Error, encode, {"": 1})
        self.assertRaises(AMF3Error, encode, {2: 1})
        self.assertRaises(AMF3Error, encode, 10 ** 400)
        loop = []
        loop.append(loop)
        self.assertRaises(AMF3Error, encode, loop)
        self.assertTrue(issubclass(AMF3Error, CodecError))
