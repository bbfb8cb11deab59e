"""AMF0 (Action Message Format version 0) encoder and decoder.

AMF0 carries RTMP commands (``connect``, ``publish``...) and FLV script data
(``onMetaData``).  Python values map to AMF0 types as follows:

==========================  ==========================================
Python                      AMF0
==========================  ==========================================
``None``                    null (0x05)
``UNDEFINED``               undefined (0x06)
``bool``                    boolean (0x01)
``int`` / ``float``         number (0x00); numbers always decode to float
``str``                     string (0x02), long string (0x0C) past 64 KiB
``XMLDocument`` (a str)     XML document (0x0F)
``dict``                    anonymous object (0x03)
``ECMAArray`` (a dict)      ECMA array (0x08)
``TypedObject`` (a dict)    typed object (0x10), with ``class_name``
``list`` / ``tuple``        strict array (0x0A); decodes to list
``AMFDate``                 date (0x0B)
==========================  ==========================================

Decoding also resolves references (0x07) to the object seen earlier in the
same call, and switches to AMF3 for one value on the AVM+ marker (0x11).

The decoder is lenient where real encoders are sloppy, as FFmpeg and SRS
are: an ECMA array's declared count is ignored (the end marker terminates it)
and an object whose bytes stop exactly where the next key would start is
accepted without its ``00 00 09`` end marker.  Everything else that is
truncated or unknown raises :class:`AMF0Error`, and nesting deeper than
``max_depth`` is refused before it can exhaust the stack.
"""

import datetime
import struct
from dataclasses import dataclass

from .errors import CodecError

__all__ = [
    "AMF0Error", "UNDEFINED", "ECMAArray", "TypedObject", "AMFDate", "XMLDocument",
    "encode", "encode_many", "decode", "decode_all",
]

NUMBER = 0x00
BOOLEAN = 0x01
STRING = 0x02
OBJECT = 0x03
MOVIECLIP = 0x04
NULL = 0x05
UNDEFINED_MARKER = 0x06
REFERENCE = 0x07
ECMA_ARRAY = 0x08
OBJECT_END = 0x09
STRICT_ARRAY = 0x0A
DATE = 0x0B
LONG_STRING = 0x0C
UNSUPPORTED = 0x0D
RECORDSET = 0x0E
XML_DOCUMENT = 0x0F
TYPED_OBJECT = 0x10
AVMPLUS = 0x11

_OBJECT_END = b"\x00\x00\x09"
_ENCODE_DEPTH_LIMIT = 64

_DOUBLE = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_DATE = struct.Struct(">dh")


class AMF0Error(CodecError):
    """Malformed, truncated or unencodable AMF0 data."""


class _Undefined:
    """The AMF ``undefined`` value; use the :data:`UNDEFINED` singleton."""

    __slots__ = ()
    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self):
        return "UNDEFINED"

    def __bool__(self):
        return False

    def __reduce__(self):
        return (_Undefined, ())


UNDEFINED = _Undefined()


class ECMAArray(dict):
    """A dict that encodes as an AMF0 ECMA array (associative array)."""

    def __repr__(self):
        return "ECMAArray(%s)" % dict.__repr__(self)


class TypedObject(dict):
    """A dict that encodes as an AMF0 typed object with ``class_name``."""

    def __init__(self, class_name="", *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.class_name = class_name

    def __eq__(self, other):
        if isinstance(other, TypedObject) and other.class_name != self.class_name:
            return False
        return dict.__eq__(self, other)

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        return "TypedObject(%r, %s)" % (self.class_name, dict.__repr__(self))


class XMLDocument(str):
    """A str that encodes as an AMF0 XML document (AMF3 XMLDocument)."""


@dataclass(frozen=True, slots=True)
class AMFDate:
    """An AMF date: milliseconds since the Unix epoch (UTC) and a time zone.

    ``tz`` is the signed 16-bit time-zone field of AMF0, in minutes; the
    specification says it should be 0 and readers should ignore it.
    """

    ms: float
    tz: int = 0

    def to_datetime(self) -> datetime.datetime:
        """Return the instant as an aware UTC datetime."""
        epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        try:
            return epoch + datetime.timedelta(milliseconds=self.ms)
        except (OverflowError, ValueError) as e:
            raise AMF0Error("date %r out of datetime range" % (self.ms,)) from e

    @classmethod
    def from_datetime(cls, value: datetime.datetime) -> "AMFDate":
        """Build a date from a datetime (naive values are taken as UTC)."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return cls(value.timestamp() * 1000.0, 0)


# ---------------------------------------------------------------------------
# Encoding


def encode_utf8(text: str, error=AMF0Error) -> bytes:
    """UTF-8 bytes of ``text``; non-UTF-8 bytes kept as surrogates by decoding come back."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as e:
        raise error("string is not encodable as UTF-8: %s" % e) from e


def _key(name, parts: list) -> None:
    if not isinstance(name, str):
        raise AMF0Error("object keys must be str, not %s" % type(name).__name__)
    raw = encode_utf8(name)
    if len(raw) > 0xFFFF:
        raise AMF0Error("object key of %d bytes exceeds 65535" % len(raw))
    parts.append(_U16.pack(len(raw)))
    parts.append(raw)


def _props(mapping, parts: list, depth: int) -> None:
    for name, item in mapping.items():
        _key(name, parts)
        _encode(item, parts, depth)
    parts.append(_OBJECT_END)


def _encode(value, parts: list, depth: int) -> None:
    if depth > _ENCODE_DEPTH_LIMIT:
        raise AMF0Error("value nested deeper than %d levels (cycle?)" % _ENCODE_DEPTH_LIMIT)
    if value is None:
        parts.append(b"\x05")
    elif value is UNDEFINED:
        parts.append(b"\x06")
    elif value is True or value is False:
        parts.append(b"\x01\x01" if value else b"\x01\x00")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            parts.append(b"\x00" + _DOUBLE.pack(float(value)))
        except OverflowError as e:
            raise AMF0Error("number %r does not fit a double" % (value,)) from e
    elif isinstance(value, str):
        raw = encode_utf8(value)
        if isinstance(value, XMLDocument):
            parts.append(b"\x0f" + _U32.pack(len(raw)))
        elif len(raw) > 0xFFFF:
            parts.append(b"\x0c" + _U32.pack(len(raw)))
        else:
            parts.append(b"\x02" + _U16.pack(len(raw)))
        parts.append(raw)
    elif isinstance(value, TypedObject):
        parts.append(b"\x10")
        _key(value.class_name, parts)
        _props(value, parts, depth + 1)
    elif isinstance(value, ECMAArray):
        parts.append(b"\x08" + _U32.pack(len(value)))
        _props(value, parts, depth + 1)
    elif isinstance(value, dict):
        parts.append(b"\x03")
        _props(value, parts, depth + 1)
    elif isinstance(value, (list, tuple)):
        parts.append(b"\x0a" + _U32.pack(len(value)))
        for item in value:
            _encode(item, parts, depth + 1)
    elif isinstance(value, AMFDate):
        try:
            parts.append(b"\x0b" + _DATE.pack(float(value.ms), int(value.tz)))
        except (struct.error, OverflowError, TypeError, ValueError) as e:
            raise AMF0Error("invalid date %r: %s" % (value, e)) from e
    else:
        raise AMF0Error("cannot encode %s as AMF0" % type(value).__name__)


def encode(value) -> bytes:
    """Encode one Python value as AMF0 bytes."""
    parts: list = []
    _encode(value, parts, 0)
    return b"".join(parts)


def encode_many(*values) -> bytes:
    """Encode consecutive values, e.g. an RTMP command and its arguments."""
    parts: list = []
    for value in values:
        _encode(value, parts, 0)
    return b"".join(parts)


# ---------------------------------------------------------------------------
# Decoding


class _Decoder:
    __slots__ = ("data", "end", "refs", "max_depth")

    def __init__(self, data, max_depth: int):
        self.data = data if isinstance(data, bytes) else bytes(data)
        self.end = len(self.data)
        self.refs: list = []
        self.max_depth = max_depth

    def need(self, pos: int, n: int, what: str) -> None:
        if self.end - pos < n:
            raise AMF0Error("truncated %s at offset %d: need %d bytes, have %d"
                            % (what, pos, n, max(self.end - pos, 0)))

    def text(self, pos: int, n: int, what: str):
        self.need(pos, n, what)
        return self.data[pos:pos + n].decode("utf-8", "surrogateescape"), pos + n

    def short_string(self, pos: int, what: str):
        self.need(pos, 2, what + " length")
        (n,) = _U16.unpack_from(self.data, pos)
        return self.text(pos + 2, n, what)

    def enter(self, depth: int, pos: int) -> int:
        depth += 1
        if depth > self.max_depth:
            raise AMF0Error("AMF0 nesting deeper than %d at offset %d" % (self.max_depth, pos))
        return depth

    def props(self, pos: int, obj: dict, depth: int) -> int:
        data, end = self.data, self.end
        while pos != end:
            self.need(pos, 2, "property name length")
            (n,) = _U16.unpack_from(data, pos)
            pos += 2
            if n == 0:
                self.need(pos, 1, "object end marker")
                if data[pos] == OBJECT_END:
                    return pos + 1
                key = ""
            else:
                key, pos = self.text(pos, n, "property name")
            obj[key], pos = self.value(pos, depth)
        # Lenient: the data ended exactly where another key would start.
        return pos

    def value(self, pos: int, depth: int):
        if pos >= self.end:
            raise AMF0Error("truncated AMF0 data: no type marker at offset %d" % pos)
        data = self.data
        marker = data[pos]
        pos += 1
        if marker == NUMBER:
            self.need(pos, 8, "number")
            return _DOUBLE.unpack_from(data, pos)[0], pos + 8
        if marker == BOOLEAN:
            self.need(pos, 1, "boolean")
            return data[pos] != 0, pos + 1
        if marker == STRING:
            return self.short_string(pos, "string")
        if marker == NULL:
            return None, pos
        if marker == UNDEFINED_MARKER or marker == UNSUPPORTED:
            return UNDEFINED, pos
        if marker == OBJECT or marker == ECMA_ARRAY or marker == TYPED_OBJECT:
            depth = self.enter(depth, pos - 1)
            if marker == OBJECT:
                obj = {}
            elif marker == ECMA_ARRAY:
                self.need(pos, 4, "ECMA array count")
                pos += 4  # the count is unreliable in the wild; the end marker rules
                obj = ECMAArray()
            else:
                name, pos = self.short_string(pos, "class name")
                obj = TypedObject(name)
            self.refs.append(obj)
            return obj, self.props(pos, obj, depth)
        if marker == STRICT_ARRAY:
            depth = self.enter(depth, pos - 1)
            self.need(pos, 4, "strict array count")
            (count,) = _U32.unpack_from(data, pos)
            pos += 4
            if count > self.end - pos:
                raise AMF0Error("strict array of %d items cannot fit in %d bytes"
                                % (count, self.end - pos))
            items: list = []
            self.refs.append(items)
            for _ in range(count):
                item, pos = self.value(pos, depth)
                items.append(item)
            return items, pos
        if marker == REFERENCE:
            self.need(pos, 2, "reference")
            (index,) = _U16.unpack_from(data, pos)
            if index >= len(self.refs):
                raise AMF0Error("reference %d at offset %d but only %d objects seen"
                                % (index, pos - 1, len(self.refs)))
            return self.refs[index], pos + 2
        if marker == DATE:
            self.need(pos, 10, "date")
            ms, tz = _DATE.unpack_from(data, pos)
            return AMFDate(ms, tz), pos + 10
        if marker == LONG_STRING or marker == XML_DOCUMENT:
            self.need(pos, 4, "long string length")
            (n,) = _U32.unpack_from(data, pos)
            text, pos = self.text(pos + 4, n, "long string")
            return (XMLDocument(text) if marker == XML_DOCUMENT else text), pos
        if marker == AVMPLUS:
            from . import amf3

            try:
                return amf3.decode(data, pos, max_depth=max(self.max_depth - depth, 0))
            except amf3.AMF3Error as e:
                raise AMF0Error("bad AMF3 value after AVM+ marker: %s" % e) from e
        if marker == OBJECT_END:
            raise AMF0Error("unexpected object end marker at offset %d" % (pos - 1))
        if marker == MOVIECLIP or marker == RECORDSET:
            raise AMF0Error("reserved AMF0 marker 0x%02x at offset %d" % (marker, pos - 1))
        raise AMF0Error("unknown AMF0 marker 0x%02x at offset %d" % (marker, pos - 1))


def decode(data, offset: int = 0, max_depth: int = 32):
    """Decode one AMF0 value at ``offset``; return ``(value, new_offset)``."""
    if offset < 0:
        raise AMF0Error("negative offset %d" % offset)
    decoder = _Decoder(data, max_depth)
    try:
        return decoder.value(offset, 0)
    except RecursionError as e:
        raise AMF0Error("AMF0 nesting too deep for the interpreter stack") from e


def decode_all(data, max_depth: int = 32) -> list:
    """Decode consecutive AMF0 values until the end of ``data``.

    References may point to objects decoded earlier in the same call.
    """
    decoder = _Decoder(data, max_depth)
    values = []
    pos = 0
    try:
        while pos < decoder.end:
            value, pos = decoder.value(pos, 0)
            values.append(value)
    except RecursionError as e:
        raise AMF0Error("AMF0 nesting too deep for the interpreter stack") from e
    return values
