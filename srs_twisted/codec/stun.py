"""STUN messages (RFC 5389/8489) as an ICE-lite server (RFC 8445) uses them.

Pure bytes in, dataclasses out.  :func:`parse` turns a datagram into a
:class:`StunMessage` whose attributes are decoded through one table
(``ATTRIBUTES``); types the table does not know are kept as raw bytes so a
message re-encodes unchanged.  :meth:`StunMessage.encode` appends a fresh
MESSAGE-INTEGRITY (HMAC-SHA1 keyed with the short-term password) and
FINGERPRINT (CRC-32 xor ``0x5354554e``), each computed over the message with
its length field covering the attribute being added, as RFC 8489 14.5/14.7 say.

:func:`check_request` verifies both on a received request, and
:func:`binding_success` builds the answer an ICE-lite server sends.
:func:`is_stun` and :func:`classify` implement the first-byte demultiplexing
of RFC 7983 (STUN 0-3, DTLS 20-63, RTP/RTCP 128-191).
"""

import hashlib
import hmac
import ipaddress
import os
import struct
import zlib
from dataclasses import dataclass, field

from .errors import CodecError

__all__ = [
    "StunError", "StunMessage", "StunErrorCode", "ATTRIBUTES", "parse", "check_request",
    "integrity_ok", "fingerprint_ok",
    "binding_request", "binding_success", "binding_error", "ice_ufrags", "is_stun", "classify",
    "MAGIC_COOKIE", "HEADER_SIZE", "BINDING", "REQUEST", "INDICATION", "SUCCESS", "ERROR",
    "MAPPED_ADDRESS", "USERNAME", "MESSAGE_INTEGRITY", "ERROR_CODE", "UNKNOWN_ATTRIBUTES",
    "XOR_MAPPED_ADDRESS", "PRIORITY", "USE_CANDIDATE", "SOFTWARE", "FINGERPRINT",
    "ICE_CONTROLLED", "ICE_CONTROLLING",
]


class StunError(CodecError):
    """A malformed STUN message, or one failing its integrity or fingerprint check."""


MAGIC_COOKIE = 0x2112A442
HEADER_SIZE = 20
FINGERPRINT_XOR = 0x5354554E
_HEADER = struct.Struct(">HHI12s")
_ATTR = struct.Struct(">HH")
_COOKIE = struct.pack(">I", MAGIC_COOKIE)

# Method and class (RFC 8489 5: the class bits C1 C0 sit at bits 8 and 4 of the type).
BINDING = 0x001
REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3

# Attribute types.
MAPPED_ADDRESS = 0x0001
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
UNKNOWN_ATTRIBUTES = 0x000A
XOR_MAPPED_ADDRESS = 0x0020
PRIORITY = 0x0024
USE_CANDIDATE = 0x0025
SOFTWARE = 0x8022
FINGERPRINT = 0x8028
ICE_CONTROLLED = 0x8029
ICE_CONTROLLING = 0x802A


@dataclass(frozen=True, slots=True)
class StunErrorCode:
    """The ERROR-CODE attribute: a code 300-699 and its reason phrase."""

    code: int
    reason: str = ""


# --- attribute codecs: decode(value, transaction_id) / encode(value, transaction_id) ---

def _fixed(fmt, what):
    layout = struct.Struct(fmt)

    def decode(value, _tid):
        if len(value) != layout.size:
            raise StunError("%s of %d bytes, expected %d" % (what, len(value), layout.size))
        return layout.unpack(value)[0]

    def encode(value, _tid):
        try:
            return layout.pack(value)
        except struct.error as exc:
            raise StunError("%s value %r does not fit: %s" % (what, value, exc)) from None
    return decode, encode


def _text(what):
    def decode(value, _tid):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise StunError("%s is not UTF-8" % what) from None
    return decode, lambda value, _tid: value.encode("utf-8")


def _flag(what):
    def decode(value, _tid):
        if value:
            raise StunError("%s carries %d bytes, expected none" % (what, len(value)))
        return True
    return decode, lambda _value, _tid: b""


def _raw(size, what):
    def decode(value, _tid):
        if size is not None and len(value) != size:
            raise StunError("%s of %d bytes, expected %d" % (what, len(value), size))
        return bytes(value)

    def encode(value, _tid):
        value = bytes(value)
        if size is not None and len(value) != size:
            raise StunError("%s of %d bytes, expected %d" % (what, len(value), size))
        return value
    return decode, encode


def _address(xor, what):
    def mask(tid, size):
        return (_COOKIE + tid)[:size] if xor else bytes(size)

    def decode(value, tid):
        if len(value) < 4:
            raise StunError("%s of %d bytes is truncated" % (what, len(value)))
        family, port = value[1], struct.unpack_from(">H", value, 2)[0]
        size = {1: 4, 2: 16}.get(family)
        if size is None or len(value) != 4 + size:
            raise StunError("%s with family %d and %d bytes" % (what, family, len(value)))
        if xor:
            port ^= MAGIC_COOKIE >> 16
        packed = bytes(a ^ b for a, b in zip(value[4:], mask(tid, size)))
        return str(ipaddress.ip_address(packed)), port

    def encode(value, tid):
        host, port = value
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise StunError("%s host %r is not an IP address" % (what, host)) from None
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
        if not 0 <= port <= 0xFFFF:
            raise StunError("%s port %r out of range" % (what, port))
        packed = address.packed
        if xor:
            port ^= MAGIC_COOKIE >> 16
        packed = bytes(a ^ b for a, b in zip(packed, mask(tid, len(packed))))
        return struct.pack(">BBH", 0, 1 if address.version == 4 else 2, port) + packed
    return decode, encode


def _decode_error_code(value, _tid):
    if len(value) < 4:
        raise StunError("ERROR-CODE of %d bytes is truncated" % len(value))
    klass, number = value[2] & 0x07, value[3]
    if not 3 <= klass <= 6 or number > 99:
        raise StunError("ERROR-CODE class %d number %d out of range" % (klass, number))
    try:
        reason = value[4:].decode("utf-8")
    except UnicodeDecodeError:
        raise StunError("ERROR-CODE reason is not UTF-8") from None
    return StunErrorCode(klass * 100 + number, reason)


def _encode_error_code(value, _tid):
    if not 300 <= value.code <= 699:
        raise StunError("ERROR-CODE %d out of range 300-699" % value.code)
    return struct.pack(">HBB", 0, value.code // 100, value.code % 100) + value.reason.encode("utf-8")


def _decode_unknown(value, _tid):
    if len(value) % 2:
        raise StunError("UNKNOWN-ATTRIBUTES of odd length %d" % len(value))
    return tuple(struct.unpack(">%dH" % (len(value) // 2), value))


# type -> (name, decode, encode); anything else stays raw bytes.
ATTRIBUTES = {
    MAPPED_ADDRESS: ("MAPPED-ADDRESS",) + _address(False, "MAPPED-ADDRESS"),
    USERNAME: ("USERNAME",) + _text("USERNAME"),
    MESSAGE_INTEGRITY: ("MESSAGE-INTEGRITY",) + _raw(20, "MESSAGE-INTEGRITY"),
    ERROR_CODE: ("ERROR-CODE", _decode_error_code, _encode_error_code),
    UNKNOWN_ATTRIBUTES: ("UNKNOWN-ATTRIBUTES", _decode_unknown,
                         lambda value, _tid: struct.pack(">%dH" % len(value), *value)),
    XOR_MAPPED_ADDRESS: ("XOR-MAPPED-ADDRESS",) + _address(True, "XOR-MAPPED-ADDRESS"),
    PRIORITY: ("PRIORITY",) + _fixed(">I", "PRIORITY"),
    USE_CANDIDATE: ("USE-CANDIDATE",) + _flag("USE-CANDIDATE"),
    SOFTWARE: ("SOFTWARE",) + _text("SOFTWARE"),
    FINGERPRINT: ("FINGERPRINT",) + _fixed(">I", "FINGERPRINT"),
    ICE_CONTROLLED: ("ICE-CONTROLLED",) + _fixed(">Q", "ICE-CONTROLLED"),
    ICE_CONTROLLING: ("ICE-CONTROLLING",) + _fixed(">Q", "ICE-CONTROLLING"),
}


def _message_type(method, msg_class):
    if not 0 <= method <= 0xFFF or msg_class not in (REQUEST, INDICATION, SUCCESS, ERROR):
        raise StunError("method 0x%x class %r cannot be encoded" % (method, msg_class))
    return ((method & 0xF80) << 2) | ((method & 0x070) << 1) | (method & 0x00F) \
        | ((msg_class & 2) << 7) | ((msg_class & 1) << 4)


def _split_type(message_type):
    method = ((message_type >> 2) & 0xF80) | ((message_type >> 1) & 0x070) | (message_type & 0x00F)
    msg_class = ((message_type >> 7) & 2) | ((message_type >> 4) & 1)
    return method, msg_class


def _pad(size):
    return -size % 4


@dataclass(slots=True)
class StunMessage:
    """One STUN message; ``attributes`` keeps (type, value) pairs in wire order.

    A parsed message remembers its bytes (``raw``) and where MESSAGE-INTEGRITY
    and FINGERPRINT started, which :func:`check_request` needs.
    """

    method: int = BINDING
    msg_class: int = REQUEST
    transaction_id: bytes = field(default_factory=lambda: os.urandom(12))
    attributes: list = field(default_factory=list)
    raw: bytes = field(default=b"", repr=False, compare=False)
    integrity_offset: int | None = field(default=None, repr=False, compare=False)
    fingerprint_offset: int | None = field(default=None, repr=False, compare=False)

    def get(self, attr_type, default=None):
        """The value of the first attribute of ``attr_type``, or ``default``."""
        for kind, value in self.attributes:
            if kind == attr_type:
                return value
        return default

    def __contains__(self, attr_type):
        return any(kind == attr_type for kind, _ in self.attributes)

    def add(self, attr_type, value=True):
        self.attributes.append((attr_type, value))
        return self

    @property
    def username(self):
        return self.get(USERNAME)

    @property
    def priority(self):
        return self.get(PRIORITY)

    @property
    def use_candidate(self):
        return USE_CANDIDATE in self

    @property
    def ice_controlling(self):
        return self.get(ICE_CONTROLLING)

    @property
    def ice_controlled(self):
        return self.get(ICE_CONTROLLED)

    @property
    def error_code(self):
        return self.get(ERROR_CODE)

    @property
    def xor_mapped_address(self):
        return self.get(XOR_MAPPED_ADDRESS)

    def encode(self, integrity_key=None, fingerprint=False) -> bytes:
        """Serialize; with ``integrity_key`` (the short-term password, str or
        bytes) and/or ``fingerprint``, fresh MESSAGE-INTEGRITY / FINGERPRINT
        attributes replace any the message carries and are appended last."""
        if len(self.transaction_id) != 12:
            raise StunError("transaction id of %d bytes, expected 12" % len(self.transaction_id))
        parts = []
        dropped = set()
        if integrity_key is not None:  # a new MESSAGE-INTEGRITY makes an old FINGERPRINT stale
            dropped = {MESSAGE_INTEGRITY, FINGERPRINT}
        elif fingerprint:
            dropped = {FINGERPRINT}
        for kind, value in self.attributes:
            if kind in dropped:
                continue
            parts.append(_encode_attribute(kind, value, self.transaction_id))
        body = b"".join(parts)
        if integrity_key is not None:
            if isinstance(integrity_key, str):
                integrity_key = integrity_key.encode("utf-8")
            head = self._header(len(body) + 24)
            digest = hmac.new(integrity_key, head + body, hashlib.sha1).digest()
            body += _ATTR.pack(MESSAGE_INTEGRITY, 20) + digest
        if fingerprint:
            head = self._header(len(body) + 8)
            crc = zlib.crc32(head + body) ^ FINGERPRINT_XOR
            body += _ATTR.pack(FINGERPRINT, 4) + struct.pack(">I", crc)
        if len(body) > 0xFFFF - 3:
            raise StunError("STUN message body of %d bytes is too long" % len(body))
        return self._header(len(body)) + body

    def __bytes__(self):
        return self.encode()

    def _header(self, length):
        return _HEADER.pack(_message_type(self.method, self.msg_class), length, MAGIC_COOKIE,
                            self.transaction_id)


def _encode_attribute(kind, value, tid):
    if not 0 <= kind <= 0xFFFF:
        raise StunError("attribute type %r out of range" % (kind,))
    entry = ATTRIBUTES.get(kind)
    if entry:
        data = entry[2](value, tid)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    else:
        raise StunError("attribute 0x%04x is not in the table: its value must be bytes" % kind)
    if len(data) > 0xFFFF:
        raise StunError("attribute 0x%04x of %d bytes is too long" % (kind, len(data)))
    return _ATTR.pack(kind, len(data)) + data + bytes(_pad(len(data)))


def parse(data) -> StunMessage:
    """Parse one whole STUN message (a UDP datagram or an RFC 4571 frame)."""
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise StunError("STUN message of %d bytes is shorter than its 20-byte header" % len(data))
    message_type, length, cookie, tid = _HEADER.unpack_from(data)
    if message_type & 0xC000:
        raise StunError("first two bits of a STUN message must be zero (type 0x%04x)" % message_type)
    if cookie != MAGIC_COOKIE:
        raise StunError("bad magic cookie 0x%08x" % cookie)
    if length % 4 or HEADER_SIZE + length != len(data):
        raise StunError("STUN length field %d does not match %d body bytes"
                        % (length, len(data) - HEADER_SIZE))
    method, msg_class = _split_type(message_type)
    message = StunMessage(method, msg_class, tid, [], data)
    offset = HEADER_SIZE
    while offset < len(data):
        if offset + 4 > len(data):
            raise StunError("attribute header truncated at offset %d" % offset)
        kind, size = _ATTR.unpack_from(data, offset)
        end = offset + 4 + size
        if end + _pad(size) > len(data):
            raise StunError("attribute 0x%04x of %d bytes overruns the message" % (kind, size))
        if message.fingerprint_offset is not None:
            raise StunError("attribute 0x%04x follows FINGERPRINT" % kind)
        value = data[offset + 4:end]
        if kind == FINGERPRINT:
            message.fingerprint_offset = offset
        elif message.integrity_offset is not None:
            offset = end + _pad(size)  # RFC 8489 14.5: ignore what follows MESSAGE-INTEGRITY
            continue
        elif kind == MESSAGE_INTEGRITY:
            message.integrity_offset = offset
        entry = ATTRIBUTES.get(kind)
        message.attributes.append((kind, entry[1](value, tid) if entry else value))
        offset = end + _pad(size)
    return message


def _covered(raw, offset, size):
    """The bytes before the attribute at ``offset``, with the header's length
    field counting up to the end of that ``size``-byte attribute."""
    return raw[:2] + struct.pack(">H", offset + size - HEADER_SIZE) + raw[4:offset]


def integrity_ok(message: StunMessage, key) -> bool:
    """True when the parsed message's MESSAGE-INTEGRITY matches ``key``."""
    offset = message.integrity_offset
    if offset is None:
        return False
    if isinstance(key, str):
        key = key.encode("utf-8")
    expected = hmac.new(key, _covered(message.raw, offset, 24), hashlib.sha1).digest()
    return hmac.compare_digest(expected, message.raw[offset + 4:offset + 24])


def fingerprint_ok(message: StunMessage) -> bool:
    """True when the parsed message's FINGERPRINT matches its bytes."""
    offset = message.fingerprint_offset
    if offset is None:
        return False
    return zlib.crc32(_covered(message.raw, offset, 8)) ^ FINGERPRINT_XOR == message.get(FINGERPRINT)


def check_request(message: StunMessage, password, require_fingerprint=True) -> None:
    """Raise :class:`StunError` unless a received request carries a
    FINGERPRINT that matches (when present, or always if required) and a
    MESSAGE-INTEGRITY made with ``password`` (our ICE password)."""
    if message.fingerprint_offset is not None:
        if not fingerprint_ok(message):
            raise StunError("FINGERPRINT does not match the message")
    elif require_fingerprint:
        raise StunError("no FINGERPRINT in the STUN request")
    if message.integrity_offset is None:
        raise StunError("no MESSAGE-INTEGRITY in the STUN request")
    if not integrity_ok(message, password):
        raise StunError("MESSAGE-INTEGRITY does not match the ICE password")


def ice_ufrags(message: StunMessage):
    """Split an ICE check's USERNAME ``receiver:sender`` into its two ufrags;
    a server receiving a check gets (our ufrag, the peer's ufrag)."""
    username = message.username
    if username is None:
        raise StunError("no USERNAME in the STUN request")
    local, sep, remote = username.partition(":")
    if not sep or not local or not remote:
        raise StunError("USERNAME %r is not ufrag:ufrag" % username)
    return local, remote


def binding_request(username, password, *, priority=None, controlling=None, controlled=None,
                    use_candidate=False, transaction_id=None) -> bytes:
    """A connectivity check as an ICE client sends it (tests and load clients)."""
    message = StunMessage(BINDING, REQUEST, transaction_id or os.urandom(12))
    message.add(USERNAME, username)
    if priority is not None:
        message.add(PRIORITY, priority)
    if controlling is not None:
        message.add(ICE_CONTROLLING, controlling)
    if controlled is not None:
        message.add(ICE_CONTROLLED, controlled)
    if use_candidate:
        message.add(USE_CANDIDATE)
    return message.encode(password, fingerprint=True)


def binding_success(request: StunMessage, source, password) -> bytes:
    """The Binding success response of an ICE-lite server: the request's
    transaction id, the source (host, port) as XOR-MAPPED-ADDRESS,
    MESSAGE-INTEGRITY with our (local) ICE password, and FINGERPRINT."""
    response = StunMessage(request.method, SUCCESS, request.transaction_id)
    response.add(XOR_MAPPED_ADDRESS, tuple(source[:2]))
    return response.encode(password, fingerprint=True)


def binding_error(request: StunMessage, code, reason, password=None) -> bytes:
    """An error response (e.g. 400 Bad Request, 401 Unauthorized, 487 Role
    Conflict); signed only when ``password`` is given (RFC 8489 10.1.2)."""
    response = StunMessage(request.method, ERROR, request.transaction_id)
    response.add(ERROR_CODE, StunErrorCode(code, reason))
    return response.encode(password, fingerprint=True)


def is_stun(data) -> bool:
    """RFC 7983: a datagram whose first byte is 0-3 is STUN."""
    return bool(data) and data[0] <= 3


def classify(data):
    """RFC 7983 demultiplexing by first byte: ``"stun"`` (0-3), ``"dtls"``
    (20-63), ``"rtp"`` (128-191: RTP or RTCP), otherwise ``None``."""
    if not data:
        return None
    first = data[0]
    if first <= 3:
        return "stun"
    if 20 <= first <= 63:
        return "dtls"
    if 128 <= first <= 191:
        return "rtp"
    return None
