"""RTMP chunk stream: incremental reader and message encoder (sans-I/O).

Wire format of one chunk::

    basic header   1-3 bytes  fmt (2 bits) + chunk stream id (csid)
    message header 11/7/3/0 bytes for fmt 0/1/2/3
    extended ts    0 or 4 bytes, present when the 24-bit time field is 0xFFFFFF
    payload        up to the current chunk size

A message longer than the chunk size is split into one chunk with a full
header followed by fmt 3 continuation chunks on the same csid; messages on
different csids may interleave.

Reader rules (modelled on what SRS's ``read_message_header`` accepts, with
timestamp semantics as FFmpeg and the specification define them):

* fmt 0 carries the absolute timestamp; its time field also becomes the
  "delta" a later fmt 3 header reuses for a new message.
* fmt 1/2 carry a delta that is added, modulo 2**32, to the previous
  timestamp of that csid.  An extended field in fmt 1/2 is a delta too.
* fmt 3 starting a new message adds the previous delta again.
* A fresh csid must start with fmt 0; fmt 1 is tolerated (librtmp sends it
  for pings, SRS accepts it) and counts from timestamp 0 and stream id 0.
  fmt 2/3 on a fresh csid is an error, and so is fmt 0 while a message is
  still incomplete on that csid.
* fmt 3 continuation chunks of a message whose header used an extended
  timestamp may or may not repeat the 4 extended bytes (Adobe/FFmpeg/SRS do,
  some encoders do not).  Like SRS we look at the next four bytes and treat
  them as the repeated field only if they equal the value read in the
  message's first chunk.
* Set Chunk Size (type 1) and Abort (type 2) take effect as soon as they are
  complete, because they change how the rest of the input parses.  They are
  still returned to the caller.
"""

import struct
from dataclasses import dataclass

from srs_twisted.rtmp.errors import ChunkError

__all__ = [
    "ChunkReader",
    "DEFAULT_CHUNK_SIZE",
    "MAX_CSID",
    "MIN_CSID",
    "RtmpMessage",
    "encode_message",
    "encode_message_delta",
    "message_pieces",
]

DEFAULT_CHUNK_SIZE = 128
MIN_CSID = 2
MAX_CSID = 65599
MAX_PEER_CHUNK_SIZE = 0xFFFFFF
# SRS refuses peer chunk sizes below 128: tiny chunks multiply header work.
MIN_PEER_CHUNK_SIZE = 128
# Real peers use a handful of chunk streams; refusing more than this keeps
# a hostile peer from making us hold state for all 65598 ids.
MAX_KNOWN_CHUNK_STREAMS = 1024
EXTENDED_TIMESTAMP = 0xFFFFFF

_TYPE_SET_CHUNK_SIZE = 1
_TYPE_ABORT = 2

_U32 = struct.Struct(">I")
_LE32 = struct.Struct("<I")
# fmt 0 message header without the trailing little-endian stream id:
# (timestamp << 8 | length >> 16), length & 0xFFFF, type id
_TS_LEN_TYPE = struct.Struct(">IHB")


@dataclass(slots=True)
class RtmpMessage:
    """One reassembled RTMP message."""

    type_id: int
    stream_id: int
    timestamp: int
    payload: bytes
    csid: int = 0


def _time_field(buf, hpos, end, header_len):
    """The time field of a fmt 0/1/2 message header of ``header_len`` bytes
    at ``hpos`` (the extended field when it is 0xFFFFFF), whether it was
    extended, and the position after the header; None if incomplete."""
    if end - hpos < header_len:
        return None
    field = (buf[hpos] << 16) | (buf[hpos + 1] << 8) | buf[hpos + 2]
    if field != EXTENDED_TIMESTAMP:
        return field, False, hpos + header_len
    if end - hpos < header_len + 4:
        return None
    return _U32.unpack_from(buf, hpos + header_len)[0], True, hpos + header_len + 4


def _set_time_field(cs, field, extended):
    """A fmt 0/1/2 header that starts a message sets the delta a later fmt 3
    header reuses, and whether fmt 3 chunks carry the 4 extended bytes."""
    cs.delta = field
    cs.extended = extended
    if extended:
        cs.extended_value = field


class _ChunkStream:
    """Header state the reader remembers for one chunk stream id."""

    __slots__ = (
        "csid", "timestamp", "delta", "extended", "extended_value",
        "length", "type_id", "stream_id", "in_message", "counted", "remaining",
        "partial", "reserved",
    )

    def __init__(self, csid):
        self.csid = csid
        self.timestamp = 0
        self.delta = 0
        # Whether the last fmt 0/1/2 header used the extended field, so that
        # fmt 3 chunks of this csid carry 4 more bytes.
        self.extended = False
        self.extended_value = 0
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        self.in_message = False
        # Whether the message outlived its first chunk and so counts
        # against max_chunk_streams.
        self.counted = False
        self.remaining = 0
        self.partial = None
        # Bytes of the message in progress counted against max_pending_bytes.
        self.reserved = 0


class ChunkReader:
    """Turn a stream of chunk bytes into complete :class:`RtmpMessage` objects.

    ``feed`` accepts any split of the input, keeps at most one incomplete
    chunk header in its own buffer and appends chunk payloads straight to the
    message they belong to.  Limits: a message may not exceed
    ``max_message_size`` bytes and at most ``max_chunk_streams`` messages may
    be incomplete at the same time, so memory stays bounded by their product.
    """

    def __init__(self, max_message_size=16 * 1024 * 1024 - 1, max_chunk_streams=64,
                 max_pending_bytes=32 * 1024 * 1024, min_chunk_size=MIN_PEER_CHUNK_SIZE):
        self.max_message_size = max_message_size
        self.min_chunk_size = min_chunk_size
        self.max_chunk_streams = max_chunk_streams
        # All incomplete messages together may announce at most this much.
        self.max_pending_bytes = max_pending_bytes
        self._pending = 0
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.bytes_received = 0
        self._buffer = bytearray()
        self._streams = {}
        self._incomplete = 0
        # Chunk stream whose payload bytes are being read, and how many of
        # them the current chunk still holds.
        self._current = None
        self._chunk_left = 0
        self._failure = None

    def feed(self, data):
        """Consume ``data``; return the messages it completed, in order."""
        if self._failure is not None:
            raise ChunkError(f"chunk stream already failed: {self._failure}")
        if not data:
            return []
        self.bytes_received += len(data)
        buffer = self._buffer
        buffer += data
        messages = []
        view = memoryview(buffer)
        try:
            consumed = self._parse(buffer, view, messages)
        except ChunkError as exc:
            self._failure = str(exc)
            raise
        finally:
            view.release()
        if consumed:
            del buffer[:consumed]
        return messages

    # The parser is the hot path for every published stream: it works on the
    # whole buffer, and each step below returns the position after what it
    # read, or None when the buffer ends first (the step is then redone,
    # from the chunk's first byte, when more data arrives).
    def _parse(self, buf, view, messages):
        end = len(buf)
        pos = 0
        streams = self._streams
        headers = self._HEADERS
        while pos < end:
            left = self._chunk_left
            if left:
                # Payload: append what the buffer holds of the current chunk
                # to its message; complete the message with its last byte.
                cs = self._current
                available = end - pos
                take = left if available >= left else available
                partial = cs.partial
                if partial is None and take == cs.remaining:
                    payload = bytes(view[pos:pos + take])
                else:
                    if partial is None:
                        partial = cs.partial = bytearray()
                    partial += view[pos:pos + take]
                    payload = None
                pos += take
                left -= take
                self._chunk_left = left
                cs.remaining -= take
                if not cs.remaining:
                    if payload is None:
                        payload = bytes(partial)
                    self._complete(cs, payload, messages)
                elif not left and not cs.counted:
                    self._count_incomplete(cs)
                continue
            # Basic header: fmt and a 1, 2 or 3 byte chunk stream id.
            first = buf[pos]
            csid = first & 0x3F
            if csid > 1:
                hpos = pos + 1
            elif csid == 0:
                if end - pos < 2:
                    return pos
                csid = buf[pos + 1] + 64
                hpos = pos + 2
            else:
                if end - pos < 3:
                    return pos
                csid = buf[pos + 1] + (buf[pos + 2] << 8) + 64
                hpos = pos + 3
            after = headers[first >> 6](self, buf, hpos, end, csid, streams.get(csid), messages)
            if after is None:
                return pos
            pos = after
        return pos

    def _fmt0(self, buf, hpos, end, csid, cs, messages):
        """Timestamp, length, type id and stream id: a new message."""
        header = _time_field(buf, hpos, end, 11)
        if header is None:
            return None
        field, extended, after = header
        if cs is None:
            cs = self._new_stream(csid)
        elif cs.in_message:
            raise ChunkError(f"fmt 0 chunk on chunk stream {csid} while a message is incomplete")
        _set_time_field(cs, field, extended)
        cs.timestamp = field
        cs.length = (buf[hpos + 3] << 16) | (buf[hpos + 4] << 8) | buf[hpos + 5]
        cs.type_id = buf[hpos + 6]
        cs.stream_id = _LE32.unpack_from(buf, hpos + 7)[0]
        self._begin_message(cs, messages)
        return after

    def _fmt1(self, buf, hpos, end, csid, cs, messages):
        """Timestamp delta, length and type id: a new message on the
        stream id of the csid (0 on a fresh one)."""
        header = _time_field(buf, hpos, end, 7)
        if header is None:
            return None
        field, extended, after = header
        length = (buf[hpos + 3] << 16) | (buf[hpos + 4] << 8) | buf[hpos + 5]
        if cs is None:
            cs = self._new_stream(csid)
        elif cs.in_message:
            # Inside a message SRS tolerates it as long as the length is
            # unchanged; the message keeps its header.
            if length != cs.length:
                raise ChunkError(
                    f"message length on chunk stream {csid} changed from "
                    f"{cs.length} to {length} in the middle of a message"
                )
            self._start_chunk(cs)
            return after
        _set_time_field(cs, field, extended)
        cs.timestamp = (cs.timestamp + field) & 0xFFFFFFFF
        cs.length = length
        cs.type_id = buf[hpos + 6]
        self._begin_message(cs, messages)
        return after

    def _fmt2(self, buf, hpos, end, csid, cs, messages):
        """Timestamp delta only: a new message like the csid's last one."""
        header = _time_field(buf, hpos, end, 3)
        if header is None:
            return None
        field, extended, after = header
        if cs is None:
            raise ChunkError(f"fmt 2 chunk on fresh chunk stream {csid}")
        if cs.in_message:
            # Tolerated inside a message, as in SRS; the header is ignored.
            self._start_chunk(cs)
            return after
        _set_time_field(cs, field, extended)
        cs.timestamp = (cs.timestamp + field) & 0xFFFFFFFF
        self._begin_message(cs, messages)
        return after

    def _fmt3(self, buf, hpos, end, csid, cs, messages):
        """No message header: the next chunk of the message in progress, or
        a new message that repeats the csid's last header and delta."""
        if cs is None:
            raise ChunkError(f"fmt 3 chunk on fresh chunk stream {csid}")
        if cs.extended:
            if end - hpos < 4:
                return None
            value = _U32.unpack_from(buf, hpos)[0]
            if cs.in_message:
                # Continuation chunk: the extended field may be repeated.
                if value == cs.extended_value:
                    hpos += 4
                self._start_chunk(cs)
                return hpos
            cs.delta = cs.extended_value = value
            hpos += 4
        elif cs.in_message:
            self._start_chunk(cs)
            return hpos
        cs.timestamp = (cs.timestamp + cs.delta) & 0xFFFFFFFF
        self._begin_message(cs, messages)
        return hpos

    # The message header readers by fmt, as plain functions: _parse calls
    # them without making bound methods on every feed.
    _HEADERS = (_fmt0, _fmt1, _fmt2, _fmt3)

    def _new_stream(self, csid):
        if len(self._streams) >= MAX_KNOWN_CHUNK_STREAMS:
            raise ChunkError(f"more than {MAX_KNOWN_CHUNK_STREAMS} chunk stream ids in use")
        cs = self._streams[csid] = _ChunkStream(csid)
        return cs

    def _begin_message(self, cs, messages):
        length = cs.length
        if length > self.max_message_size:
            raise ChunkError(
                f"message of {length} bytes on chunk stream {cs.csid} exceeds "
                f"the limit of {self.max_message_size}"
            )
        if not length:
            self._complete(cs, b"", messages)
            return
        if self._pending + length > self.max_pending_bytes:
            raise ChunkError(
                f"incomplete messages would hold {self._pending + length} bytes, "
                f"more than the limit of {self.max_pending_bytes}"
            )
        self._pending += length
        cs.reserved = length
        cs.in_message = True
        cs.remaining = length
        cs.partial = None
        self._start_chunk(cs)

    def _count_incomplete(self, cs):
        if self._incomplete >= self.max_chunk_streams:
            raise ChunkError(
                f"more than {self.max_chunk_streams} chunk streams with incomplete messages"
            )
        self._incomplete += 1
        cs.counted = True

    def _start_chunk(self, cs):
        remaining = cs.remaining
        size = self.chunk_size
        self._current = cs
        self._chunk_left = remaining if remaining < size else size

    def _complete(self, cs, payload, messages):
        self._drop(cs)
        type_id = cs.type_id
        messages.append(RtmpMessage(type_id, cs.stream_id, cs.timestamp, payload, cs.csid))
        if type_id == _TYPE_SET_CHUNK_SIZE:
            self._set_chunk_size(payload)
        elif type_id == _TYPE_ABORT:
            self._abort(payload)

    def _set_chunk_size(self, payload):
        if len(payload) < 4:
            raise ChunkError(f"Set Chunk Size payload has {len(payload)} bytes, expected 4")
        # The top bit is reserved and must be ignored.
        size = _U32.unpack_from(payload)[0] & 0x7FFFFFFF
        if not self.min_chunk_size <= size <= MAX_PEER_CHUNK_SIZE:
            raise ChunkError(
                f"invalid chunk size {size}, expected {self.min_chunk_size}..{MAX_PEER_CHUNK_SIZE}"
            )
        self.chunk_size = size

    def _abort(self, payload):
        if len(payload) < 4:
            raise ChunkError(f"Abort payload has {len(payload)} bytes, expected 4")
        cs = self._streams.get(_U32.unpack_from(payload)[0])
        if cs is not None:
            self._drop(cs)

    def _drop(self, cs):
        """Forget the message in progress on ``cs`` (completed or aborted)."""
        cs.in_message = False
        cs.partial = None
        cs.remaining = 0
        self._pending -= cs.reserved
        cs.reserved = 0
        if cs.counted:
            cs.counted = False
            self._incomplete -= 1


def _basic_header(fmt, csid):
    if MIN_CSID <= csid <= 63:
        return bytes(((fmt << 6) | csid,))
    if 64 <= csid <= 319:
        return bytes((fmt << 6, csid - 64))
    if 320 <= csid <= MAX_CSID:
        rest = csid - 64
        return bytes(((fmt << 6) | 1, rest & 0xFF, rest >> 8))
    raise ValueError(f"chunk stream id {csid} outside {MIN_CSID}..{MAX_CSID}")


_FMT0_ONE_BYTE = {csid: _basic_header(0, csid) for csid in range(MIN_CSID, 64)}
_FMT1_ONE_BYTE = {csid: _basic_header(1, csid) for csid in range(MIN_CSID, 64)}
_FMT3_ONE_BYTE = {csid: _basic_header(3, csid) for csid in range(MIN_CSID, 64)}


def encode_message(csid, type_id, stream_id, timestamp, payload, chunk_size):
    """Serialize one message as a fmt 0 chunk plus fmt 3 continuations.

    ``timestamp`` is reduced modulo 2**32; from 0xFFFFFF on it goes in the
    extended field, which is repeated after every fmt 3 header (as SRS,
    FFmpeg and Flash do).  ``payload`` may be any bytes-like object.
    """
    pieces = message_pieces(csid, type_id, stream_id, timestamp, payload, chunk_size)
    if len(pieces) == 2:
        return pieces[0] + pieces[1]
    return b"".join(pieces)


def _check(length, chunk_size, type_id):
    if length > 0xFFFFFF:
        raise ValueError(f"payload of {length} bytes does not fit a 24-bit length")
    if chunk_size < 1:
        raise ValueError(f"chunk size must be positive, got {chunk_size}")
    if not 0 <= type_id <= 0xFF:
        raise ValueError(f"invalid type id {type_id}")


def _basic_headers(csid):
    fmt0 = _FMT0_ONE_BYTE.get(csid)
    if fmt0 is None:
        return _basic_header(0, csid), _basic_header(1, csid), _basic_header(3, csid)
    return fmt0, _FMT1_ONE_BYTE[csid], _FMT3_ONE_BYTE[csid]


def _chunked(header, fmt3, payload, chunk_size):
    """``header`` + payload, split into chunks with ``fmt3`` between them."""
    length = len(payload)
    if length <= chunk_size:
        return [header, payload]
    view = memoryview(payload)
    pieces = [header, view[:chunk_size]]
    for offset in range(chunk_size, length, chunk_size):
        pieces.append(fmt3)
        pieces.append(view[offset:offset + chunk_size])
    return pieces


def message_pieces(csid, type_id, stream_id, timestamp, payload, chunk_size):
    """:func:`encode_message` as a list of bytes-like pieces that join to
    it, with the payload not copied: a caller that joins several messages
    copies each payload once."""
    _check(len(payload), chunk_size, type_id)
    if not 0 <= stream_id <= 0xFFFFFFFF:
        raise ValueError(f"invalid stream id {stream_id}")
    fmt0, _, fmt3 = _basic_headers(csid)
    length = len(payload)
    timestamp &= 0xFFFFFFFF
    if timestamp < EXTENDED_TIMESTAMP:
        header = fmt0 + _TS_LEN_TYPE.pack((timestamp << 8) | (length >> 16),
                                          length & 0xFFFF, type_id) + _LE32.pack(stream_id)
    else:
        extended = _U32.pack(timestamp)
        header = (fmt0 + _TS_LEN_TYPE.pack(0xFFFFFF00 | (length >> 16), length & 0xFFFF, type_id)
                  + _LE32.pack(stream_id) + extended)
        fmt3 += extended
    return _chunked(header, fmt3, payload, chunk_size)


def encode_message_delta(csid, type_id, delta, payload, chunk_size):
    """Serialize one message as a fmt 1 chunk (timestamp delta, length and
    type; the stream id and the base time are the previous message's on this
    csid) plus fmt 3 continuations.  The receiver adds ``delta`` to the
    timestamp of the previous message on ``csid``, so the bytes are the same
    whatever that timestamp is.  ``delta`` must be in 0..0xFFFFFE."""
    length = len(payload)
    _check(length, chunk_size, type_id)
    if not 0 <= delta < EXTENDED_TIMESTAMP:
        raise ValueError(f"timestamp delta {delta} outside 0..{EXTENDED_TIMESTAMP - 1}")
    _, fmt1, fmt3 = _basic_headers(csid)
    header = fmt1 + _TS_LEN_TYPE.pack((delta << 8) | (length >> 16), length & 0xFFFF, type_id)
    pieces = _chunked(header, fmt3, payload, chunk_size)
    if len(pieces) == 2:
        return pieces[0] + pieces[1]
    return b"".join(pieces)
