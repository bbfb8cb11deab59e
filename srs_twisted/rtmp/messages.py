"""RTMP message types: constants, builders and payload parsers (sans-I/O).

Builders return complete chunked bytes, ready to write, produced with
:func:`srs_twisted.rtmp.chunk.encode_message`.  Protocol control messages
always fit in one 128-byte chunk, so their ``chunk_size`` only matters for
commands and data messages; pass the chunk size currently announced to the
peer.

Parsers take message payloads (or the :class:`RtmpMessage` for commands) and
raise :class:`MessageError` on anything malformed.
"""

import struct
from dataclasses import dataclass

from srs_twisted.codec import amf0
from srs_twisted.rtmp.chunk import DEFAULT_CHUNK_SIZE, RtmpMessage, encode_message
from srs_twisted.rtmp.errors import MessageError

__all__ = [
    "Command",
    "acknowledgement",
    "command",
    "data_message",
    "parse_aggregate",
    "parse_command",
    "parse_data",
    "parse_set_peer_bandwidth",
    "parse_u32",
    "parse_user_control",
    "set_chunk_size",
    "set_peer_bandwidth",
    "user_control",
    "window_ack_size",
]

# Message type ids.
SET_CHUNK_SIZE = 1
ABORT = 2
ACK = 3
USER_CONTROL = 4
WINDOW_ACK_SIZE = 5
SET_PEER_BANDWIDTH = 6
AUDIO = 8
VIDEO = 9
DATA_AMF3 = 15
SHARED_OBJECT_AMF3 = 16
COMMAND_AMF3 = 17
DATA_AMF0 = 18
SHARED_OBJECT_AMF0 = 19
COMMAND_AMF0 = 20
AGGREGATE = 22

# User control event types.
STREAM_BEGIN = 0
STREAM_EOF = 1
STREAM_DRY = 2
SET_BUFFER_LENGTH = 3
STREAM_IS_RECORDED = 4
PING_REQUEST = 6
PING_RESPONSE = 7
# FMS extension whose event data is a single byte ("00 1a 01"), see SRS.
SWF_VERIFY_REQUEST = 0x1A
BUFFER_EMPTY = 31
BUFFER_READY = 32

# Set Peer Bandwidth limit types.
LIMIT_HARD = 0
LIMIT_SOFT = 1
LIMIT_DYNAMIC = 2

# Chunk stream ids the server writes on, the same as SRS's choices.
CSID_PROTOCOL = 2  # protocol control and user control messages
CSID_COMMAND = 3  # NetConnection commands and their results
CSID_DATA = 4  # connection-level data such as onMetaData (SRS "OverConnection2")
CSID_STREAM_COMMAND = 5  # NetStream commands: onStatus, play/publish replies
CSID_VIDEO = 6
CSID_AUDIO = 7

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_U32_U8 = struct.Struct(">IB")

# Number of 4-byte values the standard user control events carry.
_EVENT_VALUES = {
    STREAM_BEGIN: 1, STREAM_EOF: 1, STREAM_DRY: 1, SET_BUFFER_LENGTH: 2,
    STREAM_IS_RECORDED: 1, PING_REQUEST: 1, PING_RESPONSE: 1,
}


@dataclass(slots=True)
class Command:
    """A decoded command message (``connect``, ``_result``, ``publish``...)."""

    name: str
    transaction_id: float
    command_object: object
    args: list


def _u32(value, what):
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{what} {value} does not fit in 32 bits")
    return _U32.pack(value)


def _control(type_id, payload):
    return encode_message(CSID_PROTOCOL, type_id, 0, 0, payload, DEFAULT_CHUNK_SIZE)


# ---- builders -------------------------------------------------------------

def set_chunk_size(size):
    """Set Chunk Size (type 1); ``size`` must be 1..0x7FFFFFFF."""
    if not 1 <= size <= 0x7FFFFFFF:
        raise ValueError(f"chunk size {size} outside 1..2147483647")
    return _control(SET_CHUNK_SIZE, _U32.pack(size))


def abort(csid):
    """Abort (type 2) the partly sent message on chunk stream ``csid``."""
    return _control(ABORT, _u32(csid, "chunk stream id"))


def acknowledgement(seq):
    """Acknowledgement (type 3) of ``seq`` bytes received so far (mod 2**32)."""
    return _control(ACK, _u32(seq, "sequence number"))


def window_ack_size(size):
    """Window Acknowledgement Size (type 5)."""
    return _control(WINDOW_ACK_SIZE, _u32(size, "window size"))


def set_peer_bandwidth(size, limit_type=LIMIT_DYNAMIC):
    """Set Peer Bandwidth (type 6): window ``size`` and limit type 0/1/2."""
    if limit_type not in (LIMIT_HARD, LIMIT_SOFT, LIMIT_DYNAMIC):
        raise ValueError(f"limit type {limit_type} is not 0, 1 or 2")
    _u32(size, "window size")
    return _control(SET_PEER_BANDWIDTH, _U32_U8.pack(size, limit_type))


def user_control(event, *values, chunk_size=DEFAULT_CHUNK_SIZE):
    """User Control (type 4): 16-bit ``event`` followed by 32-bit ``values``.

    E.g. ``user_control(STREAM_BEGIN, 1)`` or
    ``user_control(PING_RESPONSE, timestamp)``.
    """
    if not 0 <= event <= 0xFFFF:
        raise ValueError(f"user control event {event} does not fit in 16 bits")
    payload = _U16.pack(event) + b"".join(_u32(value, "event data") for value in values)
    return encode_message(CSID_PROTOCOL, USER_CONTROL, 0, 0, payload, chunk_size)


def command(csid, stream_id, name, transaction_id, command_object, *args,
            chunk_size=DEFAULT_CHUNK_SIZE, timestamp=0):
    """An AMF0 command message (type 20): name, transaction id, object, args."""
    payload = amf0.encode_many(name, transaction_id, command_object, *args)
    return encode_message(csid, COMMAND_AMF0, stream_id, timestamp, payload, chunk_size)


def data_message(csid, stream_id, *values, chunk_size=DEFAULT_CHUNK_SIZE, timestamp=0):
    """An AMF0 data message (type 18), e.g. ``"onMetaData", ECMAArray(...)``."""
    payload = amf0.encode_many(*values)
    return encode_message(csid, DATA_AMF0, stream_id, timestamp, payload, chunk_size)


# ---- parsers --------------------------------------------------------------

def parse_u32(payload):
    """The 32-bit value of Set Chunk Size, Abort, Ack or Window Ack Size."""
    if len(payload) < 4:
        raise MessageError(f"expected a 4-byte value, got {len(payload)} bytes")
    return _U32.unpack_from(payload)[0]


def parse_set_peer_bandwidth(payload):
    """Return ``(window_size, limit_type)`` of a Set Peer Bandwidth payload."""
    if len(payload) < 5:
        raise MessageError(f"Set Peer Bandwidth needs 5 bytes, got {len(payload)}")
    return _U32_U8.unpack_from(payload)


def parse_user_control(payload):
    """Return ``(event_type, values)`` of a User Control payload.

    Standard events yield their 32-bit values (two for Set Buffer Length:
    stream id and milliseconds); the one-byte FMS event 0x1a yields that
    byte; unknown events yield every complete 32-bit value present.
    """
    size = len(payload)
    if size < 2:
        raise MessageError(f"user control message needs 2 bytes, got {size}")
    event = _U16.unpack_from(payload)[0]
    if event == SWF_VERIFY_REQUEST and size == 3:
        return event, (payload[2],)
    count = _EVENT_VALUES.get(event)
    if count is None:
        count = (size - 2) // 4
    elif size < 2 + 4 * count:
        raise MessageError(
            f"user control event {event} needs {4 * count} data bytes, got {size - 2}"
        )
    return event, struct.unpack_from(f">{count}I", payload, 2)


def _amf_values(payload, type_id, kind):
    if type_id in (COMMAND_AMF3, DATA_AMF3) and payload[:1] == b"\x00":
        # AMF3 command/data messages start with a format selector byte; the
        # values themselves are AMF0 (switching to AMF3 with the 0x11 marker).
        payload = payload[1:]
    try:
        return amf0.decode_all(payload)
    except amf0.AMF0Error as exc:
        raise MessageError(f"cannot decode {kind} message: {exc}") from exc


def parse_command(msg):
    """Decode a type 20 (AMF0) or type 17 (AMF3) command into a :class:`Command`."""
    if msg.type_id not in (COMMAND_AMF0, COMMAND_AMF3):
        raise MessageError(f"message type {msg.type_id} is not a command")
    values = _amf_values(msg.payload, msg.type_id, "command")
    if not values or not isinstance(values[0], str):
        raise MessageError(f"command does not start with a name string: {values[:1]!r}")
    transaction_id = values[1] if len(values) > 1 else 0.0
    if transaction_id is None or transaction_id is amf0.UNDEFINED:
        transaction_id = 0.0
    elif isinstance(transaction_id, bool) or not isinstance(transaction_id, (int, float)):
        raise MessageError(
            f"command {values[0]!r} has a non-numeric transaction id {transaction_id!r}"
        )
    command_object = values[2] if len(values) > 2 else None
    return Command(values[0], float(transaction_id), command_object, values[3:])


def parse_data(msg):
    """Decode the values of a type 18 (AMF0) or type 15 (AMF3) data message.

    A 4-byte payload starting with 0x00 is FFmpeg's timecode packet, which
    SRS ignores; it yields an empty list here.
    """
    if msg.type_id not in (DATA_AMF0, DATA_AMF3):
        raise MessageError(f"message type {msg.type_id} is not a data message")
    payload = msg.payload
    if len(payload) == 4 and payload[0] == 0:
        return []
    return _amf_values(payload, msg.type_id, "data")


_TAG_HEADER = struct.Struct(">B3s3sB3s")


def parse_aggregate(payload, base_timestamp, stream_id=None):
    """Split an Aggregate message (type 22) into its sub-messages.

    The payload is a run of FLV tags: type (1), size (3), timestamp (3 + 1
    high byte), stream id (3), data, previous tag size (4).  As in SRS and
    FFmpeg, the first tag's timestamp is mapped to ``base_timestamp`` (the
    aggregate message's own) and later tags keep their offset from it,
    modulo 2**32.  ``stream_id`` overrides the tags' stream id field.
    """
    messages = []
    size = len(payload)
    pos = 0
    first = None
    while pos < size:
        if size - pos < 11:
            raise MessageError(f"aggregate tag header truncated at offset {pos}")
        tag_type, length, low, high, tag_stream = _TAG_HEADER.unpack_from(payload, pos)
        length = int.from_bytes(length, "big")
        timestamp = int.from_bytes(low, "big") | (high << 24)
        start = pos + 11
        end = start + length
        if end + 4 > size:
            raise MessageError(
                f"aggregate tag at offset {pos} declares {length} bytes, "
                f"only {max(size - start - 4, 0)} remain before its back pointer"
            )
        if first is None:
            first = timestamp
        messages.append(RtmpMessage(
            tag_type & 0x1F,
            int.from_bytes(tag_stream, "big") if stream_id is None else stream_id,
            (base_timestamp + timestamp - first) & 0xFFFFFFFF,
            bytes(payload[start:end]),
        ))
        pos = end + 4
    return messages
