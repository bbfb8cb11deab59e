"""What the H.264 (RFC 6184) and H.265 (RFC 7798) RTP payloaders share.

Both take the frames the live core carries (FLV video tag bodies: a decoder
configuration record as sequence header, then length-prefixed NAL units),
send a NAL unit that fits as one payload, split a larger one into
fragmentation units and put the parameter sets in aggregation packets in
front of every key picture.  :class:`NalPayloader` holds that; a subclass
says how its codec's aggregation packet and fragments are made
(``AGGREGATE``, ``FRAGMENT``), how its decoder configuration is read
(``PARSE_CONFIG``, :meth:`~NalPayloader.configure`), what an aggregation header costs (``AGGREGATION_HEADER``), which FLV codec it takes
(``CODEC``) and how a frame's NAL units become payloads
(:meth:`~NalPayloader.payloads`).
"""

from . import flv
from .avc import split_nalus
from .errors import CodecError
from .rtp import RtpError, flv_media

__all__ = ["NalPayloader", "DEFAULT_MAX_PAYLOAD", "fragment"]

DEFAULT_MAX_PAYLOAD = 1200


def fragment(indicator: bytes, kind: int, body, max_payload: int) -> list:
    """Fragmentation units of a NAL unit's ``body`` (the unit after its header), of
    balanced sizes, none over ``max_payload``: each is ``indicator`` (the payload
    header), one FU header byte (S, E and the unit's ``kind``) and a piece."""
    body = memoryview(body)
    room = max_payload - len(indicator) - 1
    count = -(-len(body) // room)
    size, extra = divmod(len(body), count)
    out = []
    pos = 0
    for i in range(count):
        n = size + (1 if i < extra else 0)
        header = kind | (0x80 if i == 0 else 0) | (0x40 if i == count - 1 else 0)
        out.append(indicator + bytes((header,)) + body[pos:pos + n])
        pos += n
    return out


class NalPayloader:
    """The codec-independent half of an H.264/H.265 payloader (see the module docstring)."""

    CODEC = ""  # the FLV codec name ("h264", "h265")
    NAME = ""  # for messages ("H.264", "H.265")
    AGGREGATION_HEADER = 1  # bytes before the first unit size of an aggregation packet

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        if max_payload < 64:
            raise RtpError("an RTP payload of %d bytes is too small for %s" % (max_payload, self.NAME))
        self.max_payload = max_payload
        self.nal_length_size = 4

    # ---- what a codec says -------------------------------------------------------------------
    # staticmethods: (units) -> aggregation packet, (unit, max_payload) -> fragments,
    # (record) -> the parsed decoder configuration (with .nal_length_size)
    AGGREGATE = None
    FRAGMENT = None
    PARSE_CONFIG = None

    def configure(self, info) -> None:  # pragma: no cover - abstract
        """Keep the parameter sets of a parsed decoder configuration."""
        raise NotImplementedError

    def payloads(self, nalus) -> list:  # pragma: no cover - abstract
        raise NotImplementedError

    def aggregation(self, nalus) -> bytes:
        return self.AGGREGATE(nalus)

    def fragments(self, nal) -> list:
        return self.FRAGMENT(nal, self.max_payload)

    def set_config(self, record) -> None:
        """Take the parameter sets and the NAL length size from a decoder configuration record."""
        try:
            info = self.PARSE_CONFIG(record)
        except CodecError as e:
            raise RtpError(str(e)) from e
        self.nal_length_size = info.nal_length_size
        self.configure(info)

    # ---- shared ----------------------------------------------------------------------------
    def single_or_fragments(self, nal) -> list:
        """One payload for a unit that fits, else its fragments."""
        if len(nal) <= self.max_payload:
            return [bytes(nal)]
        return self.fragments(nal)

    def aggregate(self, nalus) -> list:
        """Payloads for parameter sets: as few aggregation packets as fit, a unit alone
        as itself, a unit too large for any as fragments."""
        out = []
        group = []
        size = self.AGGREGATION_HEADER
        for nal in nalus:
            big = len(nal) + self.AGGREGATION_HEADER + 2 > self.max_payload
            if group and (big or size + 2 + len(nal) > self.max_payload):
                out.append(self.aggregation(group) if len(group) > 1 else group[0])
                group, size = [], self.AGGREGATION_HEADER
            if big:
                out.extend(self.fragments(nal))
                continue
            group.append(nal)
            size += 2 + len(nal)
        if group:
            out.append(self.aggregation(group) if len(group) > 1 else group[0])
        return out

    def payload_avcc(self, data) -> list:
        """Payloads for one frame of length-prefixed NAL units."""
        try:
            nalus = split_nalus(data, self.nal_length_size)
        except CodecError as e:
            raise RtpError(str(e)) from e
        return self.payloads(nalus)

    def payload_flv(self, body) -> list:
        """Payloads for an FLV/RTMP video tag body (legacy or Enhanced RTMP).
        A sequence header updates the configuration and yields no payload."""
        tag, data = flv_media(flv.parse_video, body, self.CODEC, "video codec %%s is not %s" % self.NAME)
        if tag.sequence_header:
            self.set_config(data)
            return []
        if tag.end_of_sequence or tag.frame_type == flv.FRAME_COMMAND:
            return []
        return self.payload_avcc(data)
