"""AMF3 decoder and a reference-free AMF3 encoder.

RTMP peers rarely speak AMF3, but AMF0 may switch to it for one value with
the AVM+ marker and Flash clients send AMF3 command messages (type 17).

Decoding yields the same Python types as :mod:`amf0`: ``UNDEFINED``, None,
bool, int (29-bit signed integers), float, str, :class:`XMLDocument` (XML and
XMLDocument), :class:`AMFDate`, bytes (ByteArray), list (dense arrays),
:class:`ECMAArray` (arrays with an associative part; dense items then use the
keys ``"0"``, ``"1"``...), dict (anonymous objects) and :class:`TypedObject`.
String, object and trait reference tables live for one :func:`decode` call.
Externalizable objects, vectors and dictionaries raise :class:`AMF3Error`.
"""

import struct

from .amf0 import UNDEFINED, AMFDate, ECMAArray, TypedObject, XMLDocument, encode_utf8
from .errors import CodecError

__all__ = ["AMF3Error", "decode", "encode"]

UNDEFINED_MARKER = 0x00
NULL = 0x01
FALSE = 0x02
TRUE = 0x03
INTEGER = 0x04
DOUBLE = 0x05
STRING = 0x06
XML_DOC = 0x07
DATE = 0x08
ARRAY = 0x09
OBJECT = 0x0A
XML = 0x0B
BYTE_ARRAY = 0x0C

_DOUBLE = struct.Struct(">d")
_INT_MIN = -(1 << 28)
_INT_MAX = (1 << 28) - 1
_U29_MAX = (1 << 29) - 1
_ENCODE_DEPTH_LIMIT = 64
_INLINE = object()


class AMF3Error(CodecError):
    """Malformed, truncated, unsupported or unencodable AMF3 data."""


# ---------------------------------------------------------------------------
# Decoding


class _Decoder:
    __slots__ = ("data", "end", "strings", "objects", "traits", "max_depth")

    def __init__(self, data, max_depth: int):
        self.data = data if isinstance(data, bytes) else bytes(data)
        self.end = len(self.data)
        self.strings: list = []
        self.objects: list = []
        self.traits: list = []
        self.max_depth = max_depth

    def need(self, pos: int, n: int, what: str) -> None:
        if self.end - pos < n:
            raise AMF3Error("truncated %s at offset %d: need %d bytes, have %d"
                            % (what, pos, n, max(self.end - pos, 0)))

    def u29(self, pos: int):
        data, end = self.data, self.end
        value = 0
        for _ in range(3):
            if pos >= end:
                raise AMF3Error("truncated U29 at offset %d" % pos)
            byte = data[pos]
            pos += 1
            if byte < 0x80:
                return (value << 7) | byte, pos
            value = (value << 7) | (byte & 0x7F)
        if pos >= end:
            raise AMF3Error("truncated U29 at offset %d" % pos)
        return (value << 8) | data[pos], pos + 1

    def header(self, pos: int):
        """Read a U29 header whose low bit says inline (1) or object reference (0).

        Returns ``(referenced_object, header, pos)``; the object is ``_INLINE``
        when the value follows inline.
        """
        start = pos
        header, pos = self.u29(pos)
        if header & 1:
            return _INLINE, header, pos
        return self.lookup(self.objects, header >> 1, "object", start), header, pos

    def lookup(self, table: list, index: int, what: str, pos: int):
        if index >= len(table):
            raise AMF3Error("%s reference %d at offset %d but only %d known"
                            % (what, index, pos, len(table)))
        return table[index]

    def string(self, pos: int):
        start = pos
        header, pos = self.u29(pos)
        if not header & 1:
            return self.lookup(self.strings, header >> 1, "string", start), pos
        n = header >> 1
        self.need(pos, n, "string")
        text = self.data[pos:pos + n].decode("utf-8", "surrogateescape")
        if n:
            self.strings.append(text)
        return text, pos + n

    def enter(self, depth: int, pos: int) -> int:
        depth += 1
        if depth > self.max_depth:
            raise AMF3Error("AMF3 nesting deeper than %d at offset %d" % (self.max_depth, pos))
        return depth

    def value(self, pos: int, depth: int):
        if pos >= self.end:
            raise AMF3Error("truncated AMF3 data: no type marker at offset %d" % pos)
        marker = self.data[pos]
        start = pos
        pos += 1
        if marker == UNDEFINED_MARKER:
            return UNDEFINED, pos
        if marker == NULL:
            return None, pos
        if marker == FALSE:
            return False, pos
        if marker == TRUE:
            return True, pos
        if marker == INTEGER:
            value, pos = self.u29(pos)
            if value & 0x10000000:
                value -= 0x20000000
            return value, pos
        if marker == DOUBLE:
            self.need(pos, 8, "double")
            return _DOUBLE.unpack_from(self.data, pos)[0], pos + 8
        if marker == STRING:
            return self.string(pos)
        if marker in (XML_DOC, XML, DATE, BYTE_ARRAY):
            return self.simple_object(marker, pos)
        if marker == ARRAY:
            return self.array(pos, self.enter(depth, start))
        if marker == OBJECT:
            return self.object(pos, self.enter(depth, start))
        raise AMF3Error("unsupported AMF3 marker 0x%02x at offset %d" % (marker, start))

    def simple_object(self, marker: int, pos: int):
        ref, header, pos = self.header(pos)
        if ref is not _INLINE:
            return ref, pos
        if marker == DATE:
            self.need(pos, 8, "date")
            value = AMFDate(_DOUBLE.unpack_from(self.data, pos)[0], 0)
            pos += 8
        else:
            n = header >> 1
            self.need(pos, n, "byte array" if marker == BYTE_ARRAY else "XML")
            raw = self.data[pos:pos + n]
            pos += n
            if marker == BYTE_ARRAY:
                value = raw
            else:
                value = XMLDocument(raw.decode("utf-8", "surrogateescape"))
        self.objects.append(value)
        return value, pos

    def array(self, pos: int, depth: int):
        ref, header, pos = self.header(pos)
        if ref is not _INLINE:
            return ref, pos
        count = header >> 1
        if count > self.end - pos:
            raise AMF3Error("dense array of %d items cannot fit in %d bytes"
                            % (count, self.end - pos))
        assoc = ECMAArray()
        slot = len(self.objects)
        self.objects.append(assoc)
        while True:
            key, pos = self.string(pos)
            if not key:
                break
            assoc[key], pos = self.value(pos, depth)
        if assoc:
            for index in range(count):
                assoc[str(index)], pos = self.value(pos, depth)
            return assoc, pos
        items: list = []
        self.objects[slot] = items
        for _ in range(count):
            item, pos = self.value(pos, depth)
            items.append(item)
        return items, pos

    def object(self, pos: int, depth: int):
        start = pos
        ref, header, pos = self.header(pos)
        if ref is not _INLINE:
            return ref, pos
        if not header & 2:
            class_name, dynamic, members = self.lookup(self.traits, header >> 2, "traits", start)
        else:
            if header & 4:
                raise AMF3Error("externalizable AMF3 object at offset %d is not supported" % start)
            dynamic = bool(header & 8)
            count = header >> 4
            class_name, pos = self.string(pos)
            if count > self.end - pos:
                raise AMF3Error("%d sealed members cannot fit in %d bytes" % (count, self.end - pos))
            members = []
            for _ in range(count):
                name, pos = self.string(pos)
                members.append(name)
            self.traits.append((class_name, dynamic, members))
        obj = TypedObject(class_name) if class_name else {}
        self.objects.append(obj)
        for name in members:
            obj[name], pos = self.value(pos, depth)
        if dynamic:
            while True:
                name, pos = self.string(pos)
                if not name:
                    break
                obj[name], pos = self.value(pos, depth)
        return obj, pos


def decode(data, offset: int = 0, max_depth: int = 32):
    """Decode one AMF3 value at ``offset``; return ``(value, new_offset)``."""
    if offset < 0:
        raise AMF3Error("negative offset %d" % offset)
    try:
        return _Decoder(data, max_depth).value(offset, 0)
    except RecursionError as e:
        raise AMF3Error("AMF3 nesting too deep for the interpreter stack") from e


# ---------------------------------------------------------------------------
# Encoding


def _u29(value: int) -> bytes:
    if value < 0 or value > _U29_MAX:
        raise AMF3Error("U29 value %d out of range" % value)
    if value < 0x80:
        return bytes((value,))
    if value < 0x4000:
        return bytes(((value >> 7) | 0x80, value & 0x7F))
    if value < 0x200000:
        return bytes(((value >> 14) | 0x80, ((value >> 7) & 0x7F) | 0x80, value & 0x7F))
    return bytes(((value >> 22) | 0x80, ((value >> 15) & 0x7F) | 0x80,
                  ((value >> 8) & 0x7F) | 0x80, value & 0xFF))


def _inline(raw: bytes) -> bytes:
    if len(raw) > (_U29_MAX >> 1):
        raise AMF3Error("AMF3 value of %d bytes is too long" % len(raw))
    return _u29((len(raw) << 1) | 1) + raw


def _utf8(text: str) -> bytes:
    return encode_utf8(text, AMF3Error)


def _pairs(mapping, parts: list, depth: int) -> None:
    for name, item in mapping.items():
        if not isinstance(name, str) or not name:
            raise AMF3Error("AMF3 member names must be non-empty str, got %r" % (name,))
        parts.append(_inline(_utf8(name)))
        _encode(item, parts, depth)
    parts.append(b"\x01")


def _encode(value, parts: list, depth: int) -> None:
    if depth > _ENCODE_DEPTH_LIMIT:
        raise AMF3Error("value nested deeper than %d levels (cycle?)" % _ENCODE_DEPTH_LIMIT)
    if value is None:
        parts.append(b"\x01")
    elif value is UNDEFINED:
        parts.append(b"\x00")
    elif value is True or value is False:
        parts.append(b"\x03" if value else b"\x02")
    elif isinstance(value, int) and _INT_MIN <= value <= _INT_MAX:
        parts.append(b"\x04" + _u29(value & _U29_MAX))
    elif isinstance(value, (int, float)):
        try:
            parts.append(b"\x05" + _DOUBLE.pack(float(value)))
        except OverflowError as e:
            raise AMF3Error("number %r does not fit a double" % (value,)) from e
    elif isinstance(value, XMLDocument):
        parts.append(b"\x07" + _inline(_utf8(value)))
    elif isinstance(value, str):
        parts.append(b"\x06" + _inline(_utf8(value)))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        parts.append(b"\x0c" + _inline(bytes(value)))
    elif isinstance(value, AMFDate):
        parts.append(b"\x08\x01" + _DOUBLE.pack(float(value.ms)))
    elif isinstance(value, (list, tuple)):
        parts.append(b"\x09" + _u29((len(value) << 1) | 1) + b"\x01")
        for item in value:
            _encode(item, parts, depth + 1)
    elif isinstance(value, ECMAArray):
        parts.append(b"\x09\x01")
        _pairs(value, parts, depth + 1)
    elif isinstance(value, dict):
        # Inline traits, dynamic, no sealed members: U29 = 0b1011.
        name = value.class_name if isinstance(value, TypedObject) else ""
        parts.append(b"\x0a\x0b" + _inline(_utf8(name)))
        _pairs(value, parts, depth + 1)
    else:
        raise AMF3Error("cannot encode %s as AMF3" % type(value).__name__)


def encode(value) -> bytes:
    """Encode one Python value as AMF3 bytes (no reference tables)."""
    parts: list = []
    _encode(value, parts, 0)
    return b"".join(parts)
