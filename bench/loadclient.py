#!/usr/bin/env python3
"""A lean load client: N RTMP or HTTP-FLV players in one process (epoll).

Every player parses the stream until its first video frame (time to first
frame = TCP connect start to that frame).  Then most players only count
bytes (and, over RTMP, acknowledge them), which is all a recv_into into a
shared buffer costs; a few *sample* players keep parsing and read the SEI
send-time stamp the bench publisher puts in every video frame, which gives
the server-added latency (receive time minus send time, CLOCK_MONOTONIC on
one machine).

Phases: connect the players over --ramp seconds, wait for their first
frames, settle, then a measurement window of --window seconds.  On stdout:
``WINDOW_START t`` and ``WINDOW_END t`` (monotonic seconds) as they happen,
so the caller can read the server's CPU at the same moments, then
``RESULT {json}``.  Independent of the server under test on purpose: no
Twisted, no import from srs_twisted.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import resource
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rtmpmini as r  # noqa: E402

SEI_UUID = b"srs-bench-ts-v1!"
RECV_SIZE = 256 * 1024


def sei_stamp(body) -> float | None:
    """The publisher's send time (monotonic seconds) in an FLV/RTMP video body."""
    if len(body) < 45 or body[1] != 1 or (body[9] & 0x1F) != 6 or body[10] != 5:
        return None
    if bytes(body[12:28]) != SEI_UUID:
        return None
    try:
        return int(bytes(body[28:44])) / 1e6
    except ValueError:
        return None


def is_video_frame(body) -> bool:
    """A video tag carrying a picture (not a sequence header / end of sequence)."""
    if len(body) < 2:
        return False
    if body[0] & 0x80:  # enhanced RTMP: packet type in the low nibble
        return (body[0] & 0x0F) in (1, 3)
    return body[1] == 1 if (body[0] & 0x0F) in (7, 12) else True


class Player:
    __slots__ = (
        "idx", "sock", "fd", "kind", "state", "fast", "sample", "t_connect", "t_first", "bytes", "acked",
        "ack_window", "reader", "hbuf", "chunked", "crem", "cbuf", "fbuf", "flv_skip", "stream_id", "error",
        "closed_at", "bytes_w0", "bytes_w1", "lat", "client", "hs_got", "s1", "out", "t_last", "t_w0", "t_w1",
    )

    def __init__(self, idx: int, kind: str, sample: bool, client) -> None:
        self.idx = idx
        self.kind = kind
        self.sample = sample
        self.client = client
        self.state = "connecting"
        self.fast = False
        self.t_connect = 0.0
        self.t_first = None
        self.bytes = 0
        self.acked = 0
        self.ack_window = 0
        self.reader = None
        self.hbuf = b""
        self.chunked = False
        self.crem = 0
        self.cbuf = bytearray()
        self.fbuf = bytearray()
        self.flv_skip = 13
        self.stream_id = 0
        self.error = None
        self.closed_at = None
        self.bytes_w0 = None
        self.bytes_w1 = None
        self.t_last = None  # when the last bytes arrived (poll time)
        self.t_w0 = self.t_w1 = None
        self.lat = []
        self.hs_got = bytearray()
        self.s1 = None
        self.out = b""

    # ---- output ----------------------------------------------------------------
    def send(self, data: bytes) -> None:
        if self.out:
            self.out += data
            return
        try:
            n = self.sock.send(data)
        except BlockingIOError:
            n = 0
        if n < len(data):
            self.out = data[n:]
            self.client.want_write(self)

    def flush_out(self) -> None:
        n = self.sock.send(self.out)
        self.out = self.out[n:]
        if not self.out:
            self.client.want_read(self)

    # ---- connection established -------------------------------------------------
    def on_connected(self) -> None:
        c = self.client
        if self.kind == "rtmp":
            self.state = "handshake"
            self.send(r.c0c1())
        else:
            self.state = "headers"
            self.send(
                (
                    f"GET {c.path} HTTP/1.1\r\nHost: {c.host}:{c.port}\r\nUser-Agent: srs-bench/1\r\n"
                    "Accept: */*\r\nConnection: close\r\n\r\n"
                ).encode()
            )

    # ---- parsing (until the first frame; sample players always) -------------
    def on_data(self, data, now: float) -> None:
        if self.kind == "rtmp":
            self._rtmp(data, now)
        else:
            self._http(data, now)

    def _frame(self, body, now: float) -> None:
        if self.t_first is None:
            if not is_video_frame(body):
                return
            self.t_first = now
            if not self.sample:
                self.fast = True
                self.reader = None
                self.fbuf = self.cbuf = None
                return
        c = self.client
        if c.window_open:
            stamp = sei_stamp(body)
            if stamp is not None:
                self.lat.append(now - stamp)

    def _rtmp(self, data, now: float) -> None:
        if self.state == "handshake":
            self.hs_got += data
            if self.s1 is None and len(self.hs_got) >= 1 + r.HANDSHAKE_SIZE:
                self.s1 = bytes(self.hs_got[1 : 1 + r.HANDSHAKE_SIZE])
                c = self.client
                self.send(
                    r.c2_for(self.s1)
                    + r.command(
                        "connect", 1.0,
                        {"app": c.app, "flashVer": "LNX 9,0,124,2", "tcUrl": c.tc_url, "fpad": False,
                         "capabilities": 15.0, "audioCodecs": 4071.0, "videoCodecs": 252.0, "videoFunction": 1.0},
                    )
                )
            if len(self.hs_got) < 1 + 2 * r.HANDSHAKE_SIZE:
                return
            data = bytes(self.hs_got[1 + 2 * r.HANDSHAKE_SIZE :])
            self.hs_got = None
            self.reader = r.ChunkReader()
            self.state = "connect"
            if not data:
                return
        for type_id, _ts, _sid, payload in self.reader.feed(data):
            if type_id == 9:
                self._frame(payload, now)
                if self.fast:
                    return
            elif type_id == 8 or type_id == 18:
                continue
            elif type_id == 5 and len(payload) >= 4:
                self.ack_window = struct.unpack_from(">I", payload)[0]
            elif type_id == 4 and len(payload) >= 6 and struct.unpack_from(">H", payload)[0] == 6:
                self.send(r.user_control(7, struct.unpack_from(">I", payload, 2)[0]))
            elif type_id == 20:
                self._command(r.amf_decode_all(payload))

    def _command(self, v: list) -> None:
        if not v:
            return
        name = v[0]
        c = self.client
        if name == "_result" and len(v) >= 2 and v[1] == 1.0 and self.state == "connect":
            self.state = "create"
            self.send(r.window_ack_size(2500000) + r.command("createStream", 2.0, None))
        elif name == "_result" and len(v) >= 4 and v[1] == 2.0 and self.state == "create":
            self.stream_id = int(v[3])
            self.state = "play"
            self.send(
                r.command("play", 3.0, None, c.stream, -2000.0, stream_id=self.stream_id, csid=8)
                + r.user_control(3, self.stream_id, 3000)
            )
        elif name == "_error":
            self.error = f"rtmp _error in {self.state}"
            c.close(self, failed=True)
        elif name == "onStatus" and len(v) >= 4 and isinstance(v[3], dict):
            code = str(v[3].get("code", ""))
            if any(w in code for w in ("NotFound", "Failed", "BadName", "Denied", "Reject")):
                self.error = f"rtmp {code}"
                c.close(self, failed=True)

    def _http(self, data, now: float) -> None:
        if self.state == "headers":
            self.hbuf += bytes(data)
            end = self.hbuf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.hbuf) > 65536:
                    self.error = "http headers too long"
                    self.client.close(self, failed=True)
                return
            head = self.hbuf[:end].decode("latin-1").split("\r\n")
            parts = head[0].split(" ", 2)
            if len(parts) < 2 or parts[1] != "200":
                self.error = f"http {head[0]!r}"
                self.client.close(self, failed=True)
                return
            for line in head[1:]:
                k, _, val = line.partition(":")
                if k.strip().lower() == "transfer-encoding" and "chunked" in val.lower():
                    self.chunked = True
            data = self.hbuf[end + 4 :]
            self.hbuf = b""
            self.state = "body"
        if self.chunked:
            data = self._dechunk(data)
        fbuf = self.fbuf
        fbuf += data
        pos = 0
        n = len(fbuf)
        if self.flv_skip:
            take = min(self.flv_skip, n)
            self.flv_skip -= take
            pos = take
        while pos + 11 <= n:
            size = (fbuf[pos + 1] << 16) | (fbuf[pos + 2] << 8) | fbuf[pos + 3]
            if pos + 15 + size > n:
                break
            if fbuf[pos] & 0x1F == 9:
                self._frame(memoryview(fbuf)[pos + 11 : pos + 11 + size], now)
                if self.fast:
                    return
            pos += 15 + size
        if pos:
            del fbuf[:pos]

    def _dechunk(self, data) -> bytes:
        buf = self.cbuf
        buf += data
        out = []
        pos = 0
        n = len(buf)
        while pos < n:
            if self.crem > 0:
                take = min(self.crem, n - pos)
                out.append(bytes(buf[pos : pos + take]))
                pos += take
                self.crem -= take
                if self.crem == 0:
                    self.crem = -2  # the CRLF after the data
                continue
            if self.crem < 0:
                take = min(-self.crem, n - pos)
                pos += take
                self.crem += take
                continue
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(bytes(buf[pos:eol]).split(b";")[0] or b"0", 16)
            pos = eol + 2
            if size == 0:
                self.error = "http stream ended"
                break
            self.crem = size
        del buf[:pos]
        return b"".join(out)


class LoadClient:
    def __init__(self, args) -> None:
        self.args = args
        self.read_interval = max(0.0, getattr(args, "read_interval", 0.0)) / 1000.0
        self.next_read = 0.0
        url = args.url
        scheme, rest = url.split("://", 1)
        hostport, path = rest.split("/", 1)
        host, _, port = hostport.partition(":")
        self.kind = "rtmp" if scheme == "rtmp" else "flv"
        self.host = host
        self.port = int(port or (1935 if self.kind == "rtmp" else 80))
        self.path = "/" + path
        if self.kind == "rtmp":
            self.app, self.stream = path.rsplit("/", 1)
            self.tc_url = f"rtmp://{hostport}/{self.app}"
        self.ep = select.epoll()
        self.players: dict[int, Player] = {}
        self.all: list[Player] = []
        self.window_open = False
        self.buf = bytearray(RECV_SIZE)
        self.view = memoryview(self.buf)

    def want_write(self, p: Player) -> None:
        self.ep.modify(p.fd, select.EPOLLOUT)

    def want_read(self, p: Player) -> None:
        self.ep.modify(p.fd, select.EPOLLIN)

    def open(self, p: Player) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        p.sock = s
        p.fd = s.fileno()
        p.t_connect = time.monotonic()
        err = s.connect_ex((self.host, self.port))
        if err not in (0, errno.EINPROGRESS):
            p.error = f"connect: {os.strerror(err)}"
            p.closed_at = p.t_connect
            s.close()
            return
        self.players[p.fd] = p
        self.ep.register(p.fd, select.EPOLLOUT)

    def close(self, p: Player, failed: bool = False) -> None:
        if p.closed_at is not None:
            return
        p.closed_at = time.monotonic()
        if failed and p.error is None:
            p.error = "failed"
        try:
            self.ep.unregister(p.fd)
        except (OSError, ValueError):
            pass
        self.players.pop(p.fd, None)
        p.sock.close()

    def poll(self, timeout: float) -> None:
        interval = self.read_interval
        if interval:
            # Read in batches, as FFmpeg, OBS and browsers do: sockets are read at most once
            # every ``interval`` seconds (level-triggered epoll keeps what waits readable).
            wait = self.next_read - time.monotonic()
            if wait > 0:
                time.sleep(wait)
                timeout = 0
            self.next_read = max(time.monotonic(), self.next_read) + interval
        events = self.ep.poll(timeout)
        now = time.monotonic()
        players = self.players
        recv_size = RECV_SIZE
        view = self.view
        for fd, ev in events:
            p = players.get(fd)
            if p is None:
                continue
            if p.fast and ev & select.EPOLLIN:
                try:
                    n = p.sock.recv_into(view, recv_size)
                except BlockingIOError:
                    continue
                except OSError as e:
                    p.error = f"recv: {e}"
                    self.close(p, failed=True)
                    continue
                if n == 0:
                    p.error = p.error or "closed by server"
                    self.close(p, failed=True)
                    continue
                p.bytes += n
                p.t_last = now
                if p.ack_window and p.bytes - p.acked >= p.ack_window:
                    p.acked = p.bytes
                    p.send(r.acknowledgement(p.bytes))
                continue
            try:
                if ev & select.EPOLLOUT:
                    if p.state == "connecting":
                        err = p.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            p.error = f"connect: {os.strerror(err)}"
                            self.close(p, failed=True)
                            continue
                        self.ep.modify(fd, select.EPOLLIN)
                        p.on_connected()
                    elif p.out:
                        p.flush_out()
                    continue
                if ev & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                    data = p.sock.recv(recv_size)
                    if not data:
                        p.error = p.error or "closed by server"
                        self.close(p, failed=True)
                        continue
                    p.bytes += len(data)
                    p.t_last = t = time.monotonic()
                    p.on_data(data, t)
                    if p.ack_window and p.bytes - p.acked >= p.ack_window and p.closed_at is None:
                        p.acked = p.bytes
                        p.send(r.acknowledgement(p.bytes))
            except BlockingIOError:
                continue
            except (OSError, ValueError, IndexError, struct.error) as e:
                p.error = p.error or f"{type(e).__name__}: {e}"
                self.close(p, failed=True)

    def run(self) -> dict:
        a = self.args
        n = a.n
        samples = max(1, min(n, a.samples))
        step = n / samples
        sample_idx = {int(i * step) for i in range(samples)}
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t_begin = time.monotonic()
        rate = n / a.ramp if a.ramp > 0 else float("inf")
        opened = 0
        deadline = t_begin + a.ramp + a.first_frame_timeout
        while True:
            now = time.monotonic()
            due = n if rate == float("inf") else min(n, int((now - t_begin) * rate) + 1)
            while opened < due:
                p = Player(opened, self.kind, opened in sample_idx, self)
                self.all.append(p)
                self.open(p)
                opened += 1
            if opened >= n and all(p.t_first is not None or p.closed_at is not None for p in self.all):
                break
            if now > deadline:
                break
            self.poll(0.005 if opened < n else 0.05)
        t_ready = time.monotonic()
        settle_end = t_ready + a.settle
        while time.monotonic() < settle_end:
            self.poll(min(0.05, max(0.0, settle_end - time.monotonic())))
        # ---- the measurement window ------------------------------------------
        t0 = time.monotonic()
        ru_w0 = resource.getrusage(resource.RUSAGE_SELF)
        for p in self.all:
            p.bytes_w0 = p.bytes
            p.t_w0 = p.t_last if p.t_last is not None else t0
        self.window_open = True
        print(f"WINDOW_START {t0:.6f}", flush=True)
        t_end = t0 + a.window
        while True:
            now = time.monotonic()
            if now >= t_end:
                break
            self.poll(min(0.05, t_end - now))
        t1 = time.monotonic()
        self.window_open = False
        for p in self.all:
            p.bytes_w1 = p.bytes
            p.t_w1 = p.t_last if p.t_last is not None else t1
        ru_w1 = resource.getrusage(resource.RUSAGE_SELF)
        print(f"WINDOW_END {t1:.6f}", flush=True)
        errors: dict[str, int] = {}
        for p in self.all:
            if p.error:
                key = p.error[:80]
                errors[key] = errors.get(key, 0) + 1
        result = {
            "url": a.url,
            "n": n,
            "window": [t0, t1],
            "ramp_s": t_ready - t_begin,
            "ttff": [None if p.t_first is None else p.t_first - p.t_connect for p in self.all],
            "window_bytes": [p.bytes_w1 - p.bytes_w0 for p in self.all],
            # per player: when the bytes counted at each end of the window had arrived
            "window_recv_times": [[p.t_w0, p.t_w1] for p in self.all],
            "total_bytes": [p.bytes for p in self.all],
            "no_first_frame": sum(1 for p in self.all if p.t_first is None),
            "disconnected": sum(1 for p in self.all if p.closed_at is not None),
            "disconnected_in_window": sum(1 for p in self.all if p.closed_at is not None and p.closed_at >= t0),
            "failed": sum(1 for p in self.all if p.t_first is None or p.closed_at is not None),
            "errors": errors,
            "latency": [x for p in self.all for x in p.lat],
            "samples": samples,
            "client_cpu_window": (ru_w1.ru_utime + ru_w1.ru_stime) - (ru_w0.ru_utime + ru_w0.ru_stime),
            "client_cpu_total": (ru_w1.ru_utime + ru_w1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
        }
        for p in list(self.players.values()):
            self.close(p)
        return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", help="rtmp://host:port/app/stream or http://host:port/app/stream.flv")
    ap.add_argument("-n", type=int, default=10, help="players")
    ap.add_argument("--ramp", type=float, default=2.0, help="seconds over which players connect")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds between the last first frame and the window")
    ap.add_argument("--window", type=float, default=20.0, help="measurement window, seconds")
    ap.add_argument("--samples", type=int, default=30, help="players that keep parsing for latency")
    ap.add_argument("--first-frame-timeout", type=float, default=15.0)
    ap.add_argument("--read-interval", type=float, default=0.0,
                    help="ms between reads of the players' sockets (0: on every readiness event)")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, args.n + 256))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    result = LoadClient(args).run()
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
