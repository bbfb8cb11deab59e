#!/usr/bin/env python3
"""Light players for the workers test: N RTMP and M HTTP-FLV players in one process
(one selector loop, no FFmpeg), each parsing its whole stream and counting audio and
video tags and bytes.  Every 0.5 s (and at the end) the status of every player is
written as JSON to ``--status`` (replaced atomically):

    {"t": monotonic, "players": [{"kind", "state", "bytes", "audio", "video",
                                  "last": monotonic of the last bytes, "error"}]}

``state`` is connecting, playing (bytes flowing) or closed (by the server or an
error).  Bounded: the process exits after ``--seconds``.  No srs_twisted import."""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import rtmpmini as r  # noqa: E402


class Player:
    def __init__(self, kind: str, host: str, port: int, app: str, stream: str) -> None:
        self.kind, self.host, self.port, self.app, self.stream = kind, host, port, app, stream
        self.state = "connecting"
        self.bytes = self.audio = self.video = 0
        self.last = None
        self.error = ""
        self.sock = socket.socket()
        self.sock.setblocking(False)
        self.sock.connect_ex((host, port))
        self.out = b""
        self.hs = bytearray()
        self.reader = None
        self.acked = 0
        self.ack_window = 0
        self.head = b""
        self.fbuf = bytearray()
        self.skip = 13
        self.step = "handshake" if kind == "rtmp" else "headers"

    def status(self) -> dict:
        return {"kind": self.kind, "state": self.state, "bytes": self.bytes, "audio": self.audio,
                "video": self.video, "last": self.last, "error": self.error}

    def connected(self) -> None:
        if self.kind == "rtmp":
            self.send(r.c0c1())
        else:
            self.send(f"GET /{self.app}/{self.stream}.flv HTTP/1.0\r\nHost: {self.host}:{self.port}\r\n"
                      "Connection: close\r\n\r\n".encode())

    def send(self, data: bytes) -> None:
        self.out += data
        try:
            n = self.sock.send(self.out)
        except BlockingIOError:
            n = 0
        self.out = self.out[n:]

    def received(self, data: bytes, now: float) -> None:
        self.bytes += len(data)
        self.last = now
        if self.kind == "rtmp":
            self._rtmp(data)
        else:
            self._flv(data)
        if self.audio or self.video:
            self.state = "playing"

    def _rtmp(self, data: bytes) -> None:
        if self.step == "handshake":
            self.hs += data
            if len(self.hs) < 1 + 2 * r.HANDSHAKE_SIZE:
                return
            s1 = bytes(self.hs[1:1 + r.HANDSHAKE_SIZE])
            tc_url = f"rtmp://{self.host}:{self.port}/{self.app}"
            self.send(r.c2_for(s1) + r.command("connect", 1.0, {"app": self.app, "tcUrl": tc_url, "fpad": False,
                                                                "capabilities": 15.0, "audioCodecs": 4071.0,
                                                                "videoCodecs": 252.0, "videoFunction": 1.0}))
            data = bytes(self.hs[1 + 2 * r.HANDSHAKE_SIZE:])
            self.hs = None
            self.reader = r.ChunkReader()
            self.step = "connect"
        for type_id, _ts, _sid, payload in self.reader.feed(data):
            if type_id == 8:
                self.audio += 1
            elif type_id == 9:
                self.video += 1
            elif type_id in (4, 5):
                window, reply = r.control_message(type_id, payload)
                self.ack_window = window or self.ack_window
                if reply:
                    self.send(reply)
            elif type_id == 20:
                self._command(r.amf_decode_all(payload))
        if self.ack_window and self.bytes - self.acked >= self.ack_window // 2:
            self.acked = self.bytes
            self.send(r.acknowledgement(self.bytes & 0xFFFFFFFF))

    def _command(self, v: list) -> None:
        if not v:
            return
        if v[0] == "_result" and len(v) >= 2 and v[1] == 1.0 and self.step == "connect":
            self.step = "create"
            self.send(r.window_ack_size(2500000) + r.command("createStream", 2.0, None))
        elif v[0] == "_result" and len(v) >= 4 and v[1] == 2.0 and self.step == "create":
            sid = int(v[3])
            self.step = "play"
            self.send(r.command("play", 3.0, None, self.stream, -2000.0, stream_id=sid, csid=8)
                      + r.user_control(3, sid, 3000))
        elif v[0] == "_error":
            self.error = f"rtmp _error in {self.step}"

    def _flv(self, data: bytes) -> None:
        if self.step == "headers":
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self.head.split(b"\r\n", 1)[0]
            if b" 200 " not in status + b" ":
                self.error = status.decode("latin-1")
            data = self.head[end + 4:]
            self.step = "body"
        buf = self.fbuf
        buf += data
        pos = min(self.skip, len(buf))
        self.skip -= pos
        while pos + 11 <= len(buf):
            size = (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]
            if pos + 15 + size > len(buf):
                break
            kind = buf[pos] & 0x1F
            if kind == 8:
                self.audio += 1
            elif kind == 9:
                self.video += 1
            pos += 15 + size
        del buf[:pos]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--rtmp-port", type=int, required=True)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--app", default="live")
    ap.add_argument("--stream", default="livestream")
    ap.add_argument("-n", type=int, default=60, help="RTMP players")
    ap.add_argument("-m", type=int, default=60, help="HTTP-FLV players")
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--status", required=True)
    args = ap.parse_args()
    sel = selectors.DefaultSelector()
    players = []
    kinds = [k for i in range(max(args.n, args.m)) for k, count in (("rtmp", args.n), ("flv", args.m)) if i < count]
    for kind in kinds:
        p = Player(kind, args.host, args.rtmp_port if kind == "rtmp" else args.http_port, args.app, args.stream)
        players.append(p)
        sel.register(p.sock, selectors.EVENT_WRITE, p)
    end = time.monotonic() + args.seconds
    next_status = 0.0
    buf = bytearray(256 * 1024)
    while True:
        now = time.monotonic()
        if now >= next_status or now >= end:
            tmp = args.status + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"t": now, "players": [p.status() for p in players]}, f)
            os.replace(tmp, args.status)
            next_status = now + 0.5
        if now >= end:
            return 0
        for key, events in sel.select(0.2):
            p = key.data
            if p.state == "connecting" and events & selectors.EVENT_WRITE:
                err = p.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    p.state, p.error = "closed", os.strerror(err)
                    sel.unregister(p.sock)
                    p.sock.close()
                    continue
                p.state = "connected"
                sel.modify(p.sock, selectors.EVENT_READ, p)
                p.connected()
                continue
            try:
                n = p.sock.recv_into(buf)
            except BlockingIOError:
                continue
            except OSError as e:
                n, p.error = 0, str(e)
            if n == 0:
                p.state = "closed"
                sel.unregister(p.sock)
                p.sock.close()
                continue
            p.received(bytes(buf[:n]), time.monotonic())
            if p.out:
                try:
                    p.send(b"")
                except OSError:
                    pass


if __name__ == "__main__":
    sys.exit(main())
