"""Just enough RTMP for the benchmark's publisher and load client.

Hand-rolled on purpose: the bench must not share code with the server it
measures.  Plain handshake, AMF0 for the few commands a publisher and a
player send, a chunk writer and an incremental chunk reader.  No I/O here.
"""

from __future__ import annotations

import os
import struct
import time

# ---- handshake ---------------------------------------------------------------
HANDSHAKE_SIZE = 1536


def c0c1() -> bytes:
    """C0 + C1 of the plain (version 0) handshake every server accepts."""
    t = int(time.monotonic() * 1000) & 0xFFFFFFFF
    return b"\x03" + struct.pack(">II", t, 0) + os.urandom(HANDSHAKE_SIZE - 8)


def c2_for(s1: bytes) -> bytes:
    """C2 echoes S1."""
    return bytes(s1)


# ---- AMF0 --------------------------------------------------------------------
def amf_encode(value) -> bytes:
    if value is None:
        return b"\x05"
    if isinstance(value, bool):
        return b"\x01" + (b"\x01" if value else b"\x00")
    if isinstance(value, (int, float)):
        return b"\x00" + struct.pack(">d", float(value))
    if isinstance(value, str):
        raw = value.encode()
        return b"\x02" + struct.pack(">H", len(raw)) + raw
    if isinstance(value, dict):
        out = [b"\x03"]
        for k, v in value.items():
            kb = k.encode()
            out.append(struct.pack(">H", len(kb)) + kb + amf_encode(v))
        out.append(b"\x00\x00\x09")
        return b"".join(out)
    raise TypeError(f"cannot AMF0-encode {type(value).__name__}")


def amf_encode_all(*values) -> bytes:
    return b"".join(amf_encode(v) for v in values)


def _amf_decode_one(data: bytes, i: int):
    marker = data[i]
    i += 1
    if marker == 0x00:
        return struct.unpack_from(">d", data, i)[0], i + 8
    if marker == 0x01:
        return data[i] != 0, i + 1
    if marker == 0x02:
        n = struct.unpack_from(">H", data, i)[0]
        return data[i + 2 : i + 2 + n].decode("utf-8", "replace"), i + 2 + n
    if marker == 0x0C:
        n = struct.unpack_from(">I", data, i)[0]
        return data[i + 4 : i + 4 + n].decode("utf-8", "replace"), i + 4 + n
    if marker in (0x03, 0x08):
        if marker == 0x08:
            i += 4
        obj = {}
        while i + 3 <= len(data):
            n = struct.unpack_from(">H", data, i)[0]
            if n == 0 and data[i + 2] == 0x09:
                return obj, i + 3
            key = data[i + 2 : i + 2 + n].decode("utf-8", "replace")
            obj[key], i = _amf_decode_one(data, i + 2 + n)
        return obj, i
    if marker == 0x0A:
        n = struct.unpack_from(">I", data, i)[0]
        i += 4
        arr = []
        for _ in range(n):
            v, i = _amf_decode_one(data, i)
            arr.append(v)
        return arr, i
    if marker in (0x05, 0x06):
        return None, i
    raise ValueError(f"AMF0 marker {marker:#x} not handled")


def amf_decode_all(data: bytes) -> list:
    out = []
    i = 0
    try:
        while i < len(data):
            v, i = _amf_decode_one(data, i)
            out.append(v)
    except (ValueError, IndexError, struct.error):
        pass
    return out


# ---- chunk writer --------------------------------------------------------------
def encode_message(csid: int, type_id: int, stream_id: int, ts: int, payload: bytes, chunk_size: int) -> bytes:
    """One message as chunks: a type-0 header, then type-3 continuations."""
    ts &= 0xFFFFFFFF
    ext = ts >= 0xFFFFFF
    head = bytes([csid & 0x3F])  # csid 2..63
    head += struct.pack(">I", 0xFFFFFF if ext else ts)[1:]
    head += struct.pack(">I", len(payload))[1:] + bytes([type_id]) + struct.pack("<I", stream_id)
    ext_bytes = struct.pack(">I", ts) if ext else b""
    first = payload[:chunk_size]
    parts = [head, ext_bytes, first]
    cont = bytes([0xC0 | (csid & 0x3F)]) + ext_bytes
    for off in range(chunk_size, len(payload), chunk_size):
        parts.append(cont)
        parts.append(payload[off : off + chunk_size])
    return b"".join(parts)


def set_chunk_size(size: int) -> bytes:
    return encode_message(2, 1, 0, 0, struct.pack(">I", size), 128)


def acknowledgement(seq: int) -> bytes:
    return encode_message(2, 3, 0, 0, struct.pack(">I", seq & 0xFFFFFFFF), 128)


def window_ack_size(size: int) -> bytes:
    return encode_message(2, 5, 0, 0, struct.pack(">I", size), 128)


def user_control(event: int, *args: int) -> bytes:
    body = struct.pack(">H", event) + b"".join(struct.pack(">I", a) for a in args)
    return encode_message(2, 4, 0, 0, body, 128)


def command(name: str, tid: float, *args, stream_id: int = 0, csid: int = 3, chunk_size: int = 128) -> bytes:
    return encode_message(csid, 20, stream_id, 0, amf_encode_all(name, tid, *args), chunk_size)


# ---- chunk reader --------------------------------------------------------------
def control_message(type_id: int, payload) -> tuple[int | None, bytes]:
    """What a player does with a protocol control message: (the new window
    acknowledgement size, or None; the reply to send, or b"")."""
    if type_id == 5 and len(payload) >= 4:
        return struct.unpack_from(">I", payload)[0], b""
    if type_id == 4 and len(payload) >= 6 and struct.unpack_from(">H", payload)[0] == 6:  # ping request
        return None, user_control(7, struct.unpack_from(">I", payload, 2)[0])
    return None, b""


class _Stream:
    __slots__ = ("ts", "delta", "length", "type_id", "stream_id", "ext", "buf", "left")

    def __init__(self) -> None:
        self.ts = self.delta = self.length = self.type_id = self.stream_id = 0
        self.ext = False
        self.buf: list = []
        self.left = 0


class ChunkReader:
    """Incremental RTMP chunk reader: ``feed(bytes)`` returns complete
    messages as ``(type_id, timestamp, stream_id, payload)`` tuples and
    honours Set Chunk Size itself."""

    def __init__(self) -> None:
        self.chunk_size = 128
        self._buf = bytearray()
        self._streams: dict[int, _Stream] = {}

    def feed(self, data) -> list:
        buf = self._buf
        buf += data
        out = []
        pos = 0
        n = len(buf)
        streams = self._streams
        while pos < n:
            start = pos
            b0 = buf[pos]
            fmt = b0 >> 6
            csid = b0 & 0x3F
            pos += 1
            if csid == 0:
                if pos + 1 > n:
                    pos = start
                    break
                csid = 64 + buf[pos]
                pos += 1
            elif csid == 1:
                if pos + 2 > n:
                    pos = start
                    break
                csid = 64 + buf[pos] + buf[pos + 1] * 256
                pos += 2
            st = streams.get(csid)
            if st is None:
                st = streams[csid] = _Stream()
            hlen = (11, 7, 3, 0)[fmt]
            if pos + hlen > n:
                pos = start
                break
            if fmt < 3:
                tsf = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
                if fmt < 2:
                    length = (buf[pos + 3] << 16) | (buf[pos + 4] << 8) | buf[pos + 5]
                    type_id = buf[pos + 6]
                    if fmt == 0:
                        stream_id = struct.unpack_from("<I", buf, pos + 7)[0]
                pos += hlen
                ext = tsf == 0xFFFFFF
                if ext:
                    if pos + 4 > n:
                        pos = start
                        break
                    tsf = struct.unpack_from(">I", buf, pos)[0]
                    pos += 4
                if st.left and st.buf:
                    # A new header mid-message: the old one is abandoned.
                    st.buf = []
                    st.left = 0
                st.ext = ext
                if fmt == 0:
                    st.ts = tsf
                    st.delta = 0
                    st.stream_id = stream_id
                else:
                    st.delta = tsf
                    st.ts = (st.ts + tsf) & 0xFFFFFFFF
                if fmt < 2:
                    st.length = length
                    st.type_id = type_id
                st.left = st.length
            else:
                if st.ext:
                    if pos + 4 > n:
                        pos = start
                        break
                    pos += 4
                if st.left == 0:
                    # A new message with the previous header (type 3 start).
                    if fmt == 3 and st.delta:
                        st.ts = (st.ts + st.delta) & 0xFFFFFFFF
                    st.left = st.length
            take = min(st.left, self.chunk_size)
            if pos + take > n:
                pos = start
                break
            st.buf.append(bytes(buf[pos : pos + take]))
            pos += take
            st.left -= take
            if st.left == 0:
                payload = st.buf[0] if len(st.buf) == 1 else b"".join(st.buf)
                st.buf = []
                if st.type_id == 1 and len(payload) >= 4:
                    self.chunk_size = struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF
                out.append((st.type_id, st.ts, st.stream_id, payload))
        if pos:
            del buf[:pos]
        return out
