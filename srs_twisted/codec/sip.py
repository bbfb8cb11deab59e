"""SIP messages (RFC 3261) as GB28181 devices and servers exchange them: parse and serialize.

:class:`SipMessage` is a request (``method``, ``uri``) or a response
(``status``, ``reason``) with its headers in order and a body.  Header names
are matched without case and in their compact forms (``v`` Via, ``i``
Call-ID...); helpers read what a server needs: the top Via's ``branch``, the
CSeq number and method, the From/To tags, Content-Length, Expires.

:class:`SipStreamParser` frames messages on a stream (TCP: headers, an empty
line, then exactly Content-Length bytes of body); :func:`parse_datagram`
parses one UDP datagram (a missing Content-Length means the rest of the
datagram).  Both refuse what is past ``max_header``/``max_body`` bytes and
anything that does not parse with :class:`SipError` (a ``CodecError``): the
adapter logs it and drops that datagram or closes that connection.
"""

from __future__ import annotations

import re

from .errors import CodecError

__all__ = [
    "SipError", "SipMessage", "SipStreamParser", "parse_datagram", "parse_params", "MAX_HEADER", "MAX_BODY",
    "REASONS",
]

MAX_HEADER = 16 * 1024  # bytes of a start line and headers
MAX_BODY = 64 * 1024  # bytes of a body (an SDP, a MANSCDP XML)
MAX_HEADERS = 100

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
           "c": "content-type", "k": "supported", "e": "content-encoding", "s": "subject"}
REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 481: "Call/Transaction Does Not Exist",
           486: "Busy Here", 488: "Not Acceptable Here", 500: "Server Internal Error", 503: "Service Unavailable"}
_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
_TAG = re.compile(r";\s*tag=([^;>\s]+)", re.I)


class SipError(CodecError):
    """A SIP message that does not parse or is too large."""


def _key(name: str) -> str:
    name = name.strip().lower()
    return COMPACT.get(name, name)


def parse_params(value: str) -> dict:
    """``;a=b;c`` parameters after a header's main value (lower-case names)."""
    params = {}
    for part in value.split(";")[1:]:
        name, _, val = part.partition("=")
        if name.strip():
            params[name.strip().lower()] = val.strip().strip('"')
    return params


class SipMessage:
    """One SIP request or response (see the module docstring)."""

    def __init__(self, method: str = "", uri: str = "", status: int = 0, reason: str = "",
                 headers: list | None = None, body: bytes = b"") -> None:
        self.method = method
        self.uri = uri
        self.status = status
        self.reason = reason
        self.headers: list = list(headers or [])  # [(name, value)] as sent
        self.body = body

    @property
    def is_request(self) -> bool:
        return bool(self.method)

    def get(self, name: str, default: str = "") -> str:
        key = _key(name)
        for n, v in self.headers:
            if _key(n) == key:
                return v
        return default

    def get_all(self, name: str) -> list:
        key = _key(name)
        out = []
        for n, v in self.headers:
            if _key(n) == key:
                out.extend(p.strip() for p in v.split(",")) if key == "via" else out.append(v)
        return out

    def set(self, name: str, value: str) -> None:
        key = _key(name)
        self.headers = [(n, v) for n, v in self.headers if _key(n) != key]
        self.headers.append((name, value))

    def add(self, name: str, value: str) -> None:
        self.headers.append((name, value))

    # -- what a server reads -------------------------------------------------

    @property
    def call_id(self) -> str:
        return self.get("call-id").strip()

    @property
    def cseq(self) -> tuple:
        """(number, method) of the CSeq header."""
        parts = self.get("cseq").split()
        if len(parts) != 2 or not parts[0].isdigit() or len(parts[0]) > 10:
            raise SipError("bad CSeq %r" % self.get("cseq"))
        return int(parts[0]), parts[1].upper()

    @property
    def branch(self) -> str:
        vias = self.get_all("via")
        return parse_params(vias[0]).get("branch", "") if vias else ""

    @property
    def from_tag(self) -> str:
        m = _TAG.search(self.get("from"))
        return m.group(1) if m else ""

    @property
    def to_tag(self) -> str:
        m = _TAG.search(self.get("to"))
        return m.group(1) if m else ""

    @property
    def expires(self) -> int | None:
        """The Expires header, else the Contact's ``expires`` parameter, else None."""
        value = self.get("expires").strip()
        if not value:
            value = parse_params(self.get("contact")).get("expires", "")
        return int(value) if value.isdigit() and len(value) <= 10 else None

    # -- bytes ---------------------------------------------------------------

    def to_bytes(self) -> bytes:
        if self.method:
            start = "%s %s SIP/2.0" % (self.method, self.uri)
        else:
            start = "SIP/2.0 %d %s" % (self.status, self.reason or REASONS.get(self.status, ""))
        lines = [start]
        for n, v in self.headers:
            if _key(n) != "content-length":
                lines.append("%s: %s" % (n, v))
        lines.append("Content-Length: %d" % len(self.body))
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body

    def __repr__(self) -> str:
        first = "%s %s" % (self.method, self.uri) if self.method else "%d %s" % (self.status, self.reason)
        return "<SipMessage %s call-id=%s>" % (first, self.call_id)

    @classmethod
    def parse_head(cls, head: bytes) -> "SipMessage":
        """The start line and headers (without the empty line)."""
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            raise SipError("SIP headers are not UTF-8") from None
        lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
        first = lines[0].strip()
        parts = first.split(" ", 2)
        if len(parts) < 3 and not (len(parts) == 2 and parts[0] == "SIP/2.0"):
            raise SipError("bad SIP start line %r" % first[:80])
        if parts[0] == "SIP/2.0":
            if not parts[1].isdigit() or not 100 <= int(parts[1]) <= 699:
                raise SipError("bad SIP status %r" % parts[1][:20])
            msg = cls(status=int(parts[1]), reason=parts[2] if len(parts) > 2 else "")
        else:
            if parts[2] != "SIP/2.0" or not _TOKEN.match(parts[0]) or not parts[1]:
                raise SipError("bad SIP request line %r" % first[:80])
            msg = cls(method=parts[0].upper(), uri=parts[1])
        for line in lines[1:]:
            if not line.strip():
                continue
            if line[0] in " \t" and msg.headers:  # folded header line
                name, value = msg.headers[-1]
                msg.headers[-1] = (name, value + " " + line.strip())
                continue
            name, sep, value = line.partition(":")
            if not sep or not name.strip() or not _TOKEN.match(name.strip()):
                raise SipError("bad SIP header line %r" % line[:80])
            msg.headers.append((name.strip(), value.strip()))
            if len(msg.headers) > MAX_HEADERS:
                raise SipError("more than %d SIP headers" % MAX_HEADERS)
        for key in ("via", "call-id", "cseq", "from", "to"):
            if not msg.get(key):
                raise SipError("SIP message without %s" % key)
        number, method = msg.cseq
        if msg.method and method != msg.method and msg.method != "ACK" and msg.method != "CANCEL":
            raise SipError("CSeq method %s does not match %s" % (method, msg.method))
        return msg


def _content_length(msg: SipMessage, max_body: int) -> int | None:
    value = msg.get("content-length").strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 10:
        raise SipError("bad Content-Length %r" % value[:20])
    length = int(value)
    if length > max_body:
        raise SipError("SIP body of %d bytes is over the limit of %d" % (length, max_body))
    return length


def _split_head(data: bytes):
    for sep in (b"\r\n\r\n", b"\n\n"):
        pos = data.find(sep)
        if pos >= 0:
            return pos, len(sep)
    return -1, 0


def parse_datagram(data: bytes, max_header: int = MAX_HEADER, max_body: int = MAX_BODY) -> SipMessage:
    """One SIP message in a UDP datagram."""
    pos, sep = _split_head(data)
    if pos < 0:
        if len(data) > max_header:
            raise SipError("SIP headers over %d bytes" % max_header)
        pos, sep = len(data.rstrip(b"\r\n")), 0
    if pos > max_header:
        raise SipError("SIP headers over %d bytes" % max_header)
    msg = SipMessage.parse_head(data[:pos])
    rest = data[pos + sep:]
    length = _content_length(msg, max_body)
    if length is None:
        if len(rest) > max_body:
            raise SipError("SIP body over %d bytes" % max_body)
        msg.body = rest
    elif length > len(rest):
        raise SipError("SIP body of %d bytes truncated at %d" % (length, len(rest)))
    else:
        msg.body = rest[:length]
    return msg


class SipStreamParser:
    """Frames SIP messages on a byte stream: ``feed(bytes) -> [SipMessage]``; raises
    :class:`SipError` for a message that does not parse or is too large (the
    stream cannot be resynchronized then: close it).  Keep-alive CRLFs between
    messages (RFC 5626) are skipped."""

    def __init__(self, max_header: int = MAX_HEADER, max_body: int = MAX_BODY) -> None:
        self.max_header = max_header
        self.max_body = max_body
        self._buf = bytearray()
        self._head: SipMessage | None = None
        self._need = 0

    def feed(self, data: bytes) -> list:
        buf = self._buf
        buf += data
        out = []
        while True:
            if self._head is None:
                while buf[:2] == b"\r\n" or buf[:1] == b"\n":
                    del buf[:2 if buf[:2] == b"\r\n" else 1]
                pos, sep = _split_head(bytes(buf[:self.max_header + 4]))
                if pos < 0:
                    if len(buf) > self.max_header:
                        raise SipError("SIP headers over %d bytes" % self.max_header)
                    return out
                msg = SipMessage.parse_head(bytes(buf[:pos]))
                length = _content_length(msg, self.max_body)
                if length is None:
                    length = 0  # a stream needs Content-Length; none means no body
                del buf[:pos + sep]
                self._head, self._need = msg, length
            if len(buf) < self._need:
                return out
            msg, self._head = self._head, None
            msg.body = bytes(buf[:self._need])
            del buf[:self._need]
            out.append(msg)
