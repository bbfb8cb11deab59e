"""SDP (RFC 8866) as WebRTC uses it: BUNDLE, rtcp-mux, ICE, DTLS and RTP codecs.

:func:`parse` reads an offer into a :class:`SessionDescription` of :class:`Media`
sections (mid, direction, ICE credentials, fingerprints, setup, codecs with their
rtcp-fb and fmtp, extmaps, ssrc lines and groups, msid, candidates); attributes
we do not model stay in order, so ``parse(render(parse(t))) == parse(t)``.
:func:`render` writes a model (our answer) as CRLF text.  Malformed text raises
:class:`SdpError` with ``code`` SDP_DECODE; :mod:`.sdp_negotiate` raises it with
SDP_EXCHANGE for an offer we cannot serve.
"""

from dataclasses import dataclass, field

from .errors import CodecError

__all__ = [
    "SdpError", "SDP_DECODE", "SDP_EXCHANGE", "MAX_SDP_SIZE", "DIRECTIONS", "SETUP_ROLES",
    "SessionDescription", "Media", "Codec", "Extmap", "Candidate", "Fingerprint", "SsrcLine",
    "Group", "parse", "render",
]

SDP_DECODE = 5012     # SRS ERROR_RTC_SDP_DECODE
SDP_EXCHANGE = 5018   # SRS ERROR_RTC_SDP_EXCHANGE
MAX_SDP_SIZE = 65536
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
SETUP_ROLES = ("actpass", "active", "passive", "holdconn")


class SdpError(CodecError):
    """Malformed SDP (``code`` SDP_DECODE) or an offer we cannot serve (SDP_EXCHANGE)."""

    def __init__(self, message, code=SDP_DECODE):
        super().__init__(message)
        self.code = code


def _int(text, what, low=0, high=0xFFFFFFFF):
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise SdpError("%s %r is not an integer in %d-%d" % (what, text, low, high))
    return int(text)


def _split(value, count, what, at_most=None):
    parts = value.split(None, count - 1 if at_most is None else at_most)
    if len(parts) < count:
        raise SdpError("%s %r needs %d fields" % (what, value, count))
    return parts


@dataclass
class Codec:
    """One RTP payload type: a=rtpmap with its a=rtcp-fb and a=fmtp lines."""
    pt: int
    name: str
    clock_rate: int
    channels: int | None = None
    fmtp: str | None = None
    rtcp_fb: list = field(default_factory=list)

    @classmethod
    def parse(cls, value):
        pt, _, rest = value.partition(" ")
        parts = rest.strip().split("/")
        if len(parts) not in (2, 3) or not parts[0]:
            raise SdpError("%r is not 'pt name/clock[/channels]'" % value)
        channels = _int(parts[2], "rtpmap channels", 1, 255) if len(parts) == 3 else None
        return cls(_int(pt, "payload type", 0, 127), parts[0],
                   _int(parts[1], "rtpmap clock rate", 1), channels)

    @property
    def params(self):
        """The fmtp parameters as a dict (keys lower case; a bare token maps to "")."""
        items = (item.strip().partition("=") for item in (self.fmtp or "").split(";"))
        return {key.lower(): value.strip() for key, _, value in items if key}

    def __str__(self):
        text = "%d %s/%d" % (self.pt, self.name, self.clock_rate)
        return text if self.channels is None else "%s/%d" % (text, self.channels)


@dataclass
class Extmap:
    id: int
    uri: str
    direction: str | None = None
    attributes: str | None = None

    @classmethod
    def parse(cls, value):
        parts = _split(value, 2, "value", at_most=2)
        ident, _, direction = parts[0].partition("/")
        if direction and direction not in DIRECTIONS:
            raise SdpError("direction %r is not one of %s" % (direction, "/".join(DIRECTIONS)))
        return cls(_int(ident, "extmap id", 1, 4095), parts[1], direction or None,
                   parts[2] if len(parts) > 2 else None)

    def __str__(self):
        head = str(self.id) if self.direction is None else "%d/%s" % (self.id, self.direction)
        return " ".join(p for p in (head, self.uri, self.attributes) if p is not None)


@dataclass
class Candidate:
    """An ICE candidate (RFC 8839 5.1); ``extras`` are the tokens after the type."""
    foundation: str
    component: int
    transport: str
    priority: int
    host: str
    port: int
    type: str
    extras: list = field(default_factory=list)

    @classmethod
    def parse(cls, value):
        """Parse an a=candidate value (a trickled ``candidate:...`` string too)."""
        parts = value.removeprefix("candidate:").split()
        if len(parts) < 8 or parts[6] != "typ":
            raise SdpError("candidate %r is not 'foundation component transport priority "
                           "address port typ type'" % value)
        return cls(parts[0], _int(parts[1], "candidate component", 1, 256), parts[2],
                   _int(parts[3], "candidate priority"), parts[4],
                   _int(parts[5], "candidate port", 0, 65535), parts[7], parts[8:])

    def extra(self, name):
        """The value after an extension name such as ``raddr`` or ``tcptype``."""
        for index in range(0, len(self.extras) - 1, 2):
            if self.extras[index] == name:
                return self.extras[index + 1]
        return None

    def __str__(self):
        return " ".join([self.foundation, str(self.component), self.transport, str(self.priority),
                         self.host, str(self.port), "typ", self.type] + list(self.extras))


@dataclass
class Fingerprint:
    algorithm: str
    value: str

    @classmethod
    def parse(cls, value):
        return cls(*_split(value, 2, "value", at_most=1))

    def __str__(self):
        return "%s %s" % (self.algorithm, self.value)


@dataclass
class SsrcLine:
    ssrc: int
    attribute: str
    value: str | None = None

    @classmethod
    def parse(cls, value):
        ssrc, _, rest = value.partition(" ")
        attribute, sep, attr_value = rest.partition(":")
        if not attribute:
            raise SdpError("%r has no attribute" % value)
        return cls(_int(ssrc, "ssrc"), attribute, attr_value if sep else None)

    def __str__(self):
        text = "%d %s" % (self.ssrc, self.attribute)
        return text if self.value is None else "%s:%s" % (text, self.value)


@dataclass
class Group:
    """a=group (``ids`` are mids) or a=ssrc-group (``ids`` are SSRCs)."""
    semantics: str
    ids: list

    @classmethod
    def parse(cls, value, ssrcs=False):
        semantics, *ids = value.split()
        return cls(semantics, [_int(i, "ssrc-group ssrc") for i in ids] if ssrcs else ids)

    def __str__(self):
        return " ".join([self.semantics] + [str(i) for i in self.ids])


@dataclass
class _Section:
    """What the session and media levels share."""
    connection: str | None = None
    bandwidths: list = field(default_factory=list)
    direction: str | None = None
    ice_ufrag: str | None = None
    ice_pwd: str | None = None
    ice_options: str | None = None
    fingerprints: list = field(default_factory=list)
    setup: str | None = None
    extmaps: list = field(default_factory=list)
    extmap_allow_mixed: bool = False
    attributes: list = field(default_factory=list)   # (name, value or None) we do not model


@dataclass
class Media(_Section):
    """One m= section."""
    kind: str = "audio"
    port: int = 9
    proto: str = "UDP/TLS/RTP/SAVPF"
    formats: list = field(default_factory=list)
    port_count: int | None = None
    title: str | None = None
    mid: str | None = None
    rtcp: str | None = None
    rtcp_mux: bool = False
    rtcp_rsize: bool = False
    msid: str | None = None
    codecs: list = field(default_factory=list)
    ssrcs: list = field(default_factory=list)
    ssrc_groups: list = field(default_factory=list)
    candidates: list = field(default_factory=list)
    end_of_candidates: bool = False

    def codec(self, pt):
        return next((codec for codec in self.codecs if codec.pt == pt), None)

    def ssrc_attributes(self, ssrc):
        """{attribute: value} of one SSRC's a=ssrc lines (e.g. cname, msid)."""
        return {line.attribute: line.value for line in self.ssrcs if line.ssrc == ssrc}


@dataclass
class SessionDescription(_Section):
    origin: str = "- 0 0 IN IP4 127.0.0.1"
    name: str = "-"
    timing: str = "0 0"
    groups: list = field(default_factory=list)
    ice_lite: bool = False
    msid_semantic: str | None = None   # verbatim after "msid-semantic:", e.g. " WMS" or "WMS *"
    extra_lines: list = field(default_factory=list)   # (letter, value): i u e p r z k
    media: list = field(default_factory=list)

    def group(self, semantics="BUNDLE"):
        return next((g for g in self.groups if g.semantics == semantics), None)


def _setup(value):
    if value not in SETUP_ROLES:
        raise SdpError("%r is not one of %s" % (value, "/".join(SETUP_ROLES)))
    return value


# The attributes we model, in the order render() writes them: a=name -> (field
# of the section, where it may appear, parser of its value).  A list field
# collects every line; "flag" attributes have no value; "direction" is
# a=sendrecv/sendonly/recvonly/inactive.  Other attributes, and a=fmtp /
# a=rtcp-fb lines naming no a=rtpmap, stay verbatim in ``attributes``.
_SESSION, _MEDIA, _ANY = SessionDescription, Media, _Section
_ATTRIBUTES = {
    "ice-lite": ("ice_lite", _SESSION, "flag"),
    "group": ("groups", _SESSION, Group.parse),
    "msid-semantic": ("msid_semantic", _SESSION, str),
    "mid": ("mid", _MEDIA, str),
    "direction": ("direction", _ANY, "flag"),
    "ice-ufrag": ("ice_ufrag", _ANY, str),
    "ice-pwd": ("ice_pwd", _ANY, str),
    "ice-options": ("ice_options", _ANY, str),
    "fingerprint": ("fingerprints", _ANY, Fingerprint.parse),
    "setup": ("setup", _ANY, _setup),
    "candidate": ("candidates", _MEDIA, Candidate.parse),
    "end-of-candidates": ("end_of_candidates", _MEDIA, "flag"),
    "rtcp": ("rtcp", _MEDIA, str),
    "rtcp-mux": ("rtcp_mux", _MEDIA, "flag"),
    "rtcp-rsize": ("rtcp_rsize", _MEDIA, "flag"),
    "msid": ("msid", _MEDIA, str),
    "extmap-allow-mixed": ("extmap_allow_mixed", _ANY, "flag"),
    "extmap": ("extmaps", _ANY, Extmap.parse),
    "rtpmap": ("codecs", _MEDIA, Codec.parse),
    "ssrc-group": ("ssrc_groups", _MEDIA, lambda value: Group.parse(value, ssrcs=True)),
    "ssrc": ("ssrcs", _MEDIA, SsrcLine.parse),
}


def _attribute(section, value):
    name, sep, rest = value.partition(":")
    if not name:
        raise SdpError("empty attribute name")
    key = "direction" if name in DIRECTIONS else None if name == "direction" else name
    entry = _ATTRIBUTES.get(key)
    if entry is None or not isinstance(section, entry[1]) or (entry[2] == "flag") == bool(sep):
        section.attributes.append((name, rest if sep else None))
        return
    attr, _level, parse_value = entry
    if parse_value == "flag":
        setattr(section, attr, name if key == "direction" else True)
        return
    if not rest.strip():
        raise SdpError("a=%s needs a value" % name)
    try:
        parsed = parse_value(rest)
    except SdpError as exc:
        raise SdpError("a=%s: %s" % (name, exc)) from None
    if isinstance(getattr(section, attr), list):
        getattr(section, attr).append(parsed)
    else:
        setattr(section, attr, parsed)


def _finish_media(media):
    """Check a=rtpmap against the m= line, then move a=fmtp and a=rtcp-fb
    lines (which may precede their a=rtpmap) onto their codecs."""
    pts = set()
    for codec in media.codecs:
        if str(codec.pt) not in media.formats:
            raise SdpError("a=rtpmap:%d is not listed in the m=%s line" % (codec.pt, media.kind))
        if codec.pt in pts:
            raise SdpError("a=rtpmap:%d appears twice" % codec.pt)
        pts.add(codec.pt)
    kept = []
    for name, value in media.attributes:
        pt, _, rest = (value or "").partition(" ")
        codec = pt.isascii() and pt.isdigit() and rest.strip() and media.codec(int(pt))
        if name not in ("fmtp", "rtcp-fb") or not codec:
            kept.append((name, value))
        elif name == "rtcp-fb":
            codec.rtcp_fb.append(rest.strip())
        elif codec.fmtp is not None:
            raise SdpError("a=fmtp:%s appears twice" % pt)
        else:
            codec.fmtp = rest.strip()
    media.attributes = kept


def _media_line(value):
    parts = value.split()
    if len(parts) < 4:
        raise SdpError("m=%s needs media, port, proto and formats" % value)
    port, _, count = parts[1].partition("/")
    return Media(kind=parts[0], port=_int(port, "m= port", 0, 65535), proto=parts[2],
                 formats=parts[3:], port_count=_int(count, "m= port count", 1, 65535) if count else None)


def parse(text) -> SessionDescription:
    """Parse SDP text (str or UTF-8 bytes); raise :class:`SdpError` if malformed."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise SdpError("SDP is not UTF-8") from None
    if not isinstance(text, str):
        raise SdpError("SDP must be text, not %s" % type(text).__name__)
    if len(text) > MAX_SDP_SIZE:
        raise SdpError("SDP of %d characters exceeds %d" % (len(text), MAX_SDP_SIZE))
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    lines = [line for line in lines if line.strip()]
    if not lines or lines[0] != "v=0":
        raise SdpError("SDP must start with v=0")
    desc = section = SessionDescription()
    seen = set()
    for number, line in enumerate(lines[1:], 2):
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise SdpError("line %d is not <type>=<value>: %r" % (number, line[:80]))
        letter, value = line[0], line[2:]
        try:
            if letter == "m":
                section = _media_line(value)
                desc.media.append(section)
            elif letter == "a":
                _attribute(section, value)
            elif letter == "c":
                _split(value, 3, "c=")
                section.connection = value
            elif letter == "b":
                section.bandwidths.append(value)
            elif section is not desc:
                if letter != "i":
                    raise SdpError("%s= is not allowed in a media section" % letter)
                section.title = value
            elif letter in "ost" and letter not in seen:
                seen.add(letter)
                if letter == "o":
                    _split(value, 6, "o=")
                    desc.origin = value
                elif letter == "s":
                    desc.name = value
                else:
                    desc.timing = " ".join(_split(value, 2, "t="))
            elif letter in "iuepzkr":
                desc.extra_lines.append((letter, value))
            else:
                raise SdpError("unexpected %s= line" % letter)
        except SdpError as exc:
            raise SdpError("line %d: %s" % (number, exc)) from None
    for media in desc.media:
        _finish_media(media)
    missing = [letter for letter in "ost" if letter not in seen]
    if missing:
        raise SdpError("SDP has no %s= line" % "/".join(missing))
    return desc


def _render_attributes(out, section):
    for name, (attr, level, kind) in _ATTRIBUTES.items():
        value = getattr(section, attr) if isinstance(section, level) else None
        if kind == "flag":
            if value:
                out.append("a=" + (value if name == "direction" else name))
            continue
        for item in value if isinstance(value, list) else [] if value is None else [value]:
            out.append("a=%s:%s" % (name, item))
            if name == "rtpmap":
                out.extend("a=rtcp-fb:%d %s" % (item.pt, fb) for fb in item.rtcp_fb)
                if item.fmtp is not None:
                    out.append("a=fmtp:%d %s" % (item.pt, item.fmtp))
    out.extend("a=" + name if value is None else "a=%s:%s" % (name, value)
               for name, value in section.attributes)


def render(desc: SessionDescription) -> str:
    """The SDP text of a model, CRLF line endings, session level first."""
    out = ["v=0", "o=" + desc.origin, "s=" + desc.name]
    out.extend("%s=%s" % line for line in desc.extra_lines if line[0] in "iuep")
    if desc.connection:
        out.append("c=" + desc.connection)
    out.extend("b=" + b for b in desc.bandwidths)
    out.append("t=" + desc.timing)
    out.extend("%s=%s" % line for line in desc.extra_lines if line[0] in "rzk")
    _render_attributes(out, desc)
    for media in desc.media:
        port = str(media.port) if media.port_count is None else "%d/%d" % (media.port,
                                                                            media.port_count)
        out.append("m=%s %s %s %s" % (media.kind, port, media.proto, " ".join(media.formats)))
        if media.title is not None:
            out.append("i=" + media.title)
        if media.connection:
            out.append("c=" + media.connection)
        out.extend("b=" + b for b in media.bandwidths)
        _render_attributes(out, media)
    return "\r\n".join(out) + "\r\n"
