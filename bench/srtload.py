#!/usr/bin/env python3
"""A lean SRT load client: N SRT players in one process and one thread (epoll).

Fifty ``srt-live-transmit`` processes (four threads each) starve a server on a small shared
machine of CPU, and SRT, being real time, then loses datagrams: this client costs one
thread.  Each player does the SRT handshake with the server's own caller core
(``srs_twisted.srt.handshake.SrtCaller``), then only what a live receiver must do for the
sender: a full ACK every 10 ms (the first missing sequence number; the server's ACKACK
gives the RTT), a NAK at once for each gap and again every max(20 ms, RTT + 4 RTTVar)
while it is missing (as libsrt's periodic NAK report); it counts packets and bytes, losses
(gaps), recovered losses (retransmissions that filled a gap) and unrecovered ones (still
missing after 1 s: given up).  No TSBPD, no decoding.  ``--drop P`` discards a share P of
the data datagrams as they arrive (seeded; retransmissions too), as a lossy link would, so
the server's retransmissions to many players are exercised.

    python bench/srtload.py 127.0.0.1:10080 '#!::r=live/livestream,m=request' -n 50 --seconds 20

Prints ``RESULT {json}`` at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from srs_twisted.srt.packet import (  # noqa: E402
    ACK, ACKACK, NAK, SHUTDOWN, Ack, ControlPacket, encode_loss_list, seq_add, seq_diff,
)
from srs_twisted.srt.handshake import SrtCaller  # noqa: E402

ACK_PERIOD = 10_000  # µs
MIN_RENAK = 20_000
GIVE_UP = 1_000_000
MAX_MISSING = 8192


def now_us() -> int:
    return int(time.monotonic() * 1_000_000)


class LeanPlayer:
    def __init__(self, addr, stream_id: str, latency: int, drop: float = 0.0, rng=None) -> None:
        self.drop, self.rng = drop, rng
        self.addr = addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.setblocking(False)
        self.sock.connect(addr)
        self.caller = SrtCaller(stream_id, latency_ms=latency, peer_latency_ms=latency)
        self.caller.start(now_us())
        self.peer_id = None
        self.start = 0
        self.expected = 0
        self.missing: dict[int, list] = {}  # seq -> [lost at, last NAKed]
        self.ack_no = 0
        self.last_ack = 0
        self.acks: dict[int, int] = {}  # ack number -> when sent
        self.rtt, self.rtt_var = 100_000, 50_000
        self.closed = False
        self.packets = self.bytes = self.lost = self.recovered = self.unrecovered = self.duplicates = 0
        self.dropped_here = 0
        self._send(self.caller.datagrams_to_send())

    def _send(self, datagrams) -> None:
        for d in datagrams:
            try:
                self.sock.send(d)
            except OSError:
                pass

    def _control(self, kind: int, now: int, info: int = 0, cif: bytes = b"") -> None:
        self._send([bytes(ControlPacket(kind, info, (now - self.start) & 0xFFFFFFFF, self.peer_id, cif))])

    def readable(self, now: int) -> None:
        while True:
            try:
                data = self.sock.recv(2048)
            except (BlockingIOError, ConnectionRefusedError):
                return
            if self.peer_id is None:
                self.caller.datagram_received(data, now)
                conn = self.caller.connection
                if conn is not None:
                    self.peer_id, self.start, self.expected = conn.peer_id, conn.start, conn.receiver.next
                    self._send(conn.datagrams_to_send())
                else:
                    self._send(self.caller.datagrams_to_send())
                continue
            if data[0] & 0x80:
                kind = (data[0] << 8 | data[1]) & 0x7FFF
                if kind == SHUTDOWN:
                    self.closed = True
                elif kind == ACKACK:
                    sent = self.acks.pop(int.from_bytes(data[4:8], "big"), None)
                    if sent is not None:
                        sample = now - sent
                        self.rtt_var = (3 * self.rtt_var + abs(self.rtt - sample)) // 4
                        self.rtt = (7 * self.rtt + sample) // 8
                continue
            if self.drop and self.rng.random() < self.drop:
                self.dropped_here += 1
                continue
            self._data(int.from_bytes(data[:4], "big") & 0x7FFFFFFF, len(data) - 16, now)

    def _data(self, seq: int, size: int, now: int) -> None:
        ahead = seq_diff(seq, self.expected)
        if ahead >= 0:
            if ahead:
                first = self.expected
                self.lost += ahead
                s = first
                for _ in range(min(ahead, MAX_MISSING - len(self.missing))):
                    self.missing[s] = [now, now]
                    s = seq_add(s, 1)
                self._control(NAK, now, cif=encode_loss_list([(first, seq_add(seq, -1))]))
            self.expected = seq_add(seq, 1)
        elif self.missing.pop(seq, None) is not None:
            self.recovered += 1
        else:
            self.duplicates += 1
            return
        self.packets += 1
        self.bytes += size

    def tick(self, now: int) -> None:
        if self.peer_id is None:
            self.caller.tick(now)
            self._send(self.caller.datagrams_to_send())
            return
        if now - self.last_ack < ACK_PERIOD:
            return
        self.last_ack = now
        missing = self.missing
        renak = []
        for seq, times in list(missing.items()):
            if now - times[0] > GIVE_UP:
                del missing[seq]
                self.unrecovered += 1
            elif now - times[1] >= max(MIN_RENAK, self.rtt + 4 * self.rtt_var) and len(renak) < 200:
                times[1] = now
                renak.append((seq, seq))
        if renak:
            self._control(NAK, now, cif=encode_loss_list(renak))
        ack_seq = next(iter(missing)) if missing else self.expected
        self.ack_no = self.ack_no % 0x7FFFFFFF + 1
        self.acks[self.ack_no] = now
        if len(self.acks) > 1000:
            self.acks.pop(next(iter(self.acks)))
        self._control(ACK, now, info=self.ack_no, cif=bytes(Ack(ack_seq, self.rtt, self.rtt_var, 8192, 1000, 10000, 0)))

    def shutdown(self, now: int) -> None:
        if self.peer_id is not None:
            self._control(SHUTDOWN, now, cif=b"\x00\x00\x00\x00")
        self.sock.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("server", help="host:port of the SRT listener")
    ap.add_argument("stream_id")
    ap.add_argument("-n", type=int, default=50, help="players")
    ap.add_argument("--seconds", type=float, default=20.0, help="how long to play (from the first connection)")
    ap.add_argument("--ramp", type=float, default=2.0, help="seconds over which the players connect")
    ap.add_argument("--latency", type=int, default=120)
    ap.add_argument("--drop", type=float, default=0.0, help="share of data datagrams discarded on arrival")
    args = ap.parse_args()
    host, port = args.server.rsplit(":", 1)
    poll = select.epoll()
    rng = random.Random(12)
    players: dict[int, LeanPlayer] = {}
    start = time.monotonic()
    end = start + args.seconds
    last_tick = 0
    while time.monotonic() < end:
        due = min(args.n, int(args.n * (time.monotonic() - start) / args.ramp) + 1) if args.ramp else args.n
        while len(players) < due:
            p = LeanPlayer((host, int(port)), args.stream_id, args.latency, args.drop, rng)
            players[p.sock.fileno()] = p
            poll.register(p.sock.fileno(), select.EPOLLIN)
        for fd, _ in poll.poll(0.002):
            players[fd].readable(now_us())
        now = now_us()
        if now - last_tick >= 2000:
            last_tick = now
            for p in players.values():
                p.tick(now)
    now = now_us()
    for p in players.values():
        p.shutdown(now)
    total = {k: sum(getattr(p, k) for p in players.values())
             for k in ("packets", "bytes", "lost", "recovered", "unrecovered", "duplicates", "dropped_here")}
    total["players"] = len(players)
    total["connected"] = sum(p.peer_id is not None for p in players.values())
    total["shut_down_by_server"] = sum(p.closed for p in players.values())
    total["mbps"] = round(total["bytes"] * 8 / 1e6 / args.seconds, 1)
    print("RESULT " + json.dumps(total), flush=True)


if __name__ == "__main__":
    main()
