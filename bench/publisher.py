#!/usr/bin/env python3
"""Publish an FLV clip over RTMP in real time, in a loop, stamping every
video frame with the wall-clock time it is sent.

The stamp is an H.264 SEI NAL (user data unregistered: a 16-byte UUID and
the send time as 16 ASCII digits of CLOCK_MONOTONIC microseconds, so no
emulation-prevention bytes are needed) put in front of the frame's NAL
units.  Servers pass the payload through untouched, so a player computes
server-added latency as receive time minus stamp, whatever the server does
to timestamps.  Every tag sent is logged as ``monotonic_time cumulative_bytes``
(bytes counted as FLV tags: body + 15) so the bench knows how many bytes a
player should have got over any window.

Usage: publisher.py CLIP rtmp://127.0.0.1:1935/live/stream --log FILE [--duration S]
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rtmpmini as r  # noqa: E402

SEI_UUID = b"srs-bench-ts-v1!"
assert len(SEI_UUID) == 16
CHUNK_SIZE = 60000


def read_flv(path: str):
    """[(type, ts, body)] of an FLV file."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:3] != b"FLV":
        raise SystemExit(f"{path} is not FLV")
    pos = struct.unpack_from(">I", data, 5)[0] + 4
    tags = []
    while pos + 11 <= len(data):
        t = data[pos] & 0x1F
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | (data[pos + 7] << 24)
        body = data[pos + 11 : pos + 11 + size]
        if len(body) < size:
            break
        tags.append((t, ts, body))
        pos += 11 + size + 4
    return tags


def sei_nal(now_us: int, length_size: int) -> bytes:
    digits = b"%016d" % (now_us % 10**16)
    nal = b"\x06\x05" + bytes([32]) + SEI_UUID + digits + b"\x80"
    return len(nal).to_bytes(length_size, "big") + nal


class Publisher:
    def __init__(self, url: str, log_path: str | None) -> None:
        # rtmp://host:port/app/stream
        rest = url.split("://", 1)[1]
        hostport, app, stream = rest.split("/", 2)
        host, _, port = hostport.partition(":")
        self.host, self.port = host, int(port or 1935)
        self.app, self.stream = app, stream
        self.tc_url = f"rtmp://{hostport}/{app}"
        self.reader = r.ChunkReader()
        self.sock: socket.socket | None = None
        self.stream_id = 1
        self.log = open(log_path, "w", buffering=1) if log_path else None
        self.sent_bytes = 0

    # ---- setup -----------------------------------------------------------------
    def _recv_until(self, pred, timeout: float = 10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            data = self.sock.recv(65536)
            if not data:
                raise SystemExit("publisher: server closed the connection during setup")
            for msg in self.reader.feed(data):
                found = pred(msg)
                if found is not None:
                    return found
        raise SystemExit("publisher: server did not answer in time")

    def connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(r.c0c1())
        got = b""
        while len(got) < 1 + 2 * r.HANDSHAKE_SIZE:
            chunk = self.sock.recv(8192)
            if not chunk:
                raise SystemExit("publisher: handshake refused")
            got += chunk
            if len(got) >= 1 + r.HANDSHAKE_SIZE and not hasattr(self, "_c2"):
                self._c2 = True
                self.sock.sendall(r.c2_for(got[1 : 1 + r.HANDSHAKE_SIZE]))
        leftover = got[1 + 2 * r.HANDSHAKE_SIZE :]
        if leftover:
            self.reader.feed(leftover)
        self.sock.sendall(
            r.set_chunk_size(CHUNK_SIZE)
            + r.command(
                "connect", 1.0,
                {"app": self.app, "type": "nonprivate", "flashVer": "FMLE/3.0 (compatible; srs-bench)",
                 "tcUrl": self.tc_url},
                chunk_size=CHUNK_SIZE,
            )
        )
        self._recv_until(lambda m: True if m[0] == 20 and r.amf_decode_all(m[3])[:2] == ["_result", 1.0] else None)
        self.sock.sendall(
            r.command("releaseStream", 2.0, None, self.stream, chunk_size=CHUNK_SIZE)
            + r.command("FCPublish", 3.0, None, self.stream, chunk_size=CHUNK_SIZE)
            + r.command("createStream", 4.0, None, chunk_size=CHUNK_SIZE)
        )

        def created(m):
            if m[0] == 20:
                v = r.amf_decode_all(m[3])
                if v[:2] == ["_result", 4.0] and len(v) >= 4:
                    return int(v[3])
            return None

        self.stream_id = self._recv_until(created)
        self.sock.sendall(
            r.command("publish", 5.0, None, self.stream, "live", stream_id=self.stream_id, csid=5, chunk_size=CHUNK_SIZE)
        )

        def started(m):
            if m[0] == 20:
                v = r.amf_decode_all(m[3])
                if v and v[0] == "onStatus" and len(v) >= 4 and isinstance(v[3], dict):
                    code = v[3].get("code", "")
                    if code == "NetStream.Publish.Start":
                        return True
                    if "Publish" in code and ("Bad" in code or "Fail" in code or "Denied" in code):
                        raise SystemExit(f"publisher: refused: {code}")
            return None

        self._recv_until(started)
        self.sock.settimeout(10)

    def _drain(self) -> None:
        """Read what the server sends (acks, pings) so it never blocks."""
        while True:
            ready, _, _ = select.select([self.sock], [], [], 0)
            if not ready:
                return
            data = self.sock.recv(65536)
            if not data:
                raise SystemExit("publisher: server closed the connection")
            for type_id, _ts, _sid, payload in self.reader.feed(data):
                if type_id == 4 and len(payload) >= 6 and struct.unpack_from(">H", payload)[0] == 6:
                    self.sock.sendall(r.user_control(7, struct.unpack_from(">I", payload, 2)[0]))

    def send(self, type_id: int, ts: int, body: bytes) -> None:
        csid = {8: 4, 9: 6, 18: 5}.get(type_id, 5)
        self.sock.sendall(r.encode_message(csid, type_id, self.stream_id, ts, body, CHUNK_SIZE))
        self.sent_bytes += len(body) + 15
        if self.log is not None:
            self.log.write("%.6f %d\n" % (time.monotonic(), self.sent_bytes))

    # ---- run -------------------------------------------------------------------
    def run(self, tags, duration: float | None) -> None:
        meta = [t for t in tags if t[0] == 18]
        vsh = next((t for t in tags if t[0] == 9 and len(t[2]) > 1 and t[2][0] & 0x0F == 7 and t[2][1] == 0), None)
        ash = next((t for t in tags if t[0] == 8 and len(t[2]) > 1 and t[2][0] >> 4 == 10 and t[2][1] == 0), None)
        media = [t for t in tags if t[0] in (8, 9) and t is not vsh and t is not ash]
        if not media or vsh is None:
            raise SystemExit("publisher: the clip has no H.264 video")
        length_size = (vsh[2][5 + 4] & 3) + 1 if len(vsh[2]) > 9 else 4
        last = max(t[1] for t in media)
        period = last + 33  # one loop, in ms (a frame past the last dts)
        first_ts = min(t[1] for t in media)
        if meta:
            self.send(18, 0, r.amf_encode("@setDataFrame") + meta[0][2])
        self.send(9, 0, vsh[2])
        if ash is not None:
            self.send(8, 0, ash[2])
        if self.log is not None:
            self.log.flush()
        print("PUBLISHING", flush=True)
        start = time.monotonic()
        end = start + duration if duration else None
        loop = 0
        last_flush = start
        while True:
            base = loop * period
            for t, ts, body in media:
                dts = base + ts - first_ts
                target = start + dts / 1000.0
                now = time.monotonic()
                if target > now:
                    if end is not None and target > end:
                        return
                    self._drain()
                    time.sleep(max(0.0, target - time.monotonic()))
                if t == 9 and len(body) > 5 and body[0] & 0x0F == 7 and body[1] == 1:
                    body = body[:5] + sei_nal(time.monotonic_ns() // 1000, length_size) + body[5:]
                self.send(t, dts, body)
                if self.log is not None and now - last_flush > 0.5:
                    self.log.flush()
                    last_flush = now
            loop += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip")
    ap.add_argument("url")
    ap.add_argument("--log", help="write 'monotonic cumulative_bytes' per tag here")
    ap.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    args = ap.parse_args()
    tags = read_flv(args.clip)
    pub = Publisher(args.url, args.log)
    pub.connect()
    try:
        pub.run(tags, args.duration)
    except (BrokenPipeError, ConnectionResetError) as e:
        raise SystemExit(f"publisher: connection lost: {e}")
    except KeyboardInterrupt:
        pass
    finally:
        if pub.log is not None:
            pub.log.close()


if __name__ == "__main__":
    main()
