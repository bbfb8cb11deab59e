#!/usr/bin/env python3
"""The lean WHEP load client (issue 10 section 4): N WebRTC players in one process, no aiortc.

Every player is a :class:`rtc_lean.LeanPeer` on its own UDP socket: its own
offer (Opus + H.264 recvonly, transport-cc as a browser offers it), the
WHEP POST, ICE checks with USE-CANDIDATE, DTLS (as client for an answer with
``setup:passive``, as server for ``active``), SRTP keys.  One ``select.epoll``
loop reads every socket (``recv_into`` one shared buffer) and, per player and
track (the payload type), counts packets and bytes and follows the RTP
sequence numbers, which SRTP leaves in the clear: ``expected`` is the span of
sequence numbers seen in the window, ``lost`` what of it never came.

SRTP: ordinary players unprotect one packet in ``--decrypt-every`` (default
50: libsrtp follows the rollover counter across the skipped ones) and count
authentication failures; ``--latency-players`` players, spread evenly over the
join order (the server sends in join order), unprotect
every packet, read the publisher's stamp (``rtc_publish.py``) from the
plaintext and take the datagram's kernel receive time (``SO_TIMESTAMPNS``,
CLOCK_REALTIME, mapped to CLOCK_MONOTONIC), so the latency excludes this
process's own scheduling.

Players are opened at ``--rate`` per second; once all are up (or
``--setup-timeout``), ``--warmup`` seconds pass, then the window
(``--window`` seconds): the server's CPU (utime + stime of ``--server-pid``'s
tree from /proc) and RSS, and every player's counters, are read at both ends
(RSS every 0.2 s for the peak).  The result is one JSON object on stdout.
Everything is bounded: setup, warmup and window times, reads per event.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import rtc_lean  # noqa: E402
from bench import cpu_seconds, rss_kb, tree_pids  # noqa: E402
from publisher import SEI_UUID  # noqa: E402

_TIMESPEC = struct.Struct("@qq")
_CMSG_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)
MAX_READS = 64  # datagrams read per readiness event and socket


class Track:
    __slots__ = ("packets", "bytes", "high", "first")

    def __init__(self) -> None:
        self.packets = 0
        self.bytes = 0
        self.high = -1  # extended highest sequence number
        self.first = -1

    def snapshot(self):
        return (self.packets, self.bytes, self.high)


class Player:
    __slots__ = ("peer", "tracks", "rtcp", "decrypted", "auth_failures", "latency", "n", "lat")

    def __init__(self, peer, latency: bool) -> None:
        self.peer = peer
        self.tracks: dict[int, Track] = {}
        self.rtcp = 0
        self.decrypted = 0
        self.auth_failures = 0
        self.latency = latency
        self.n = 0
        self.lat: list = []  # (kind, ms) in the window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the WHEP URL")
    parser.add_argument("--players", type=int, default=10)
    parser.add_argument("--rate", type=float, default=50.0, help="sessions opened per second")
    parser.add_argument("--latency-players", type=int, default=10)
    parser.add_argument("--decrypt-every", type=int, default=50)
    parser.add_argument("--setup-timeout", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--server-pid", type=int)
    parser.add_argument("--no-twcc", action="store_true", help="offer without transport-cc")
    parser.add_argument("--srtp", choices=("any", "gcm", "cm"), default="any",
                        help="SRTP profiles offered in DTLS: both (AES-CM and GCM, the server picks), or one")
    args = parser.parse_args()
    window = min(args.window, 600.0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    server = tree_pids(args.server_pid) if args.server_pid else []
    rss_before = rss_kb(server) if server else 0
    mono_offset = time.time_ns() - time.monotonic_ns()  # CLOCK_REALTIME - CLOCK_MONOTONIC, ns
    context = rtc_lean.make_context(rtc_lean.SRTP_CHOICES[args.srtp])
    poller = select.epoll()
    players: dict[int, Player] = {}
    order: list[Player] = []
    buf = bytearray(2048)
    view = memoryview(buf)
    state = {"counting": False}
    uuid = SEI_UUID
    ulen = len(uuid)

    def read(player: Player, now: float) -> None:
        sock = player.peer.sock
        recv = sock.recv_into
        latency = player.latency and state["counting"]
        for _ in range(MAX_READS):
            try:
                if player.latency:
                    n, anc, _flags, _addr = sock.recvmsg_into([buf], _CMSG_SPACE)
                else:
                    n = recv(buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if n < 12:
                continue
            first = buf[0]
            if first < 128 or first > 191:
                player.peer.on_control(bytes(view[:n]), now)
                continue
            b1 = buf[1]
            if 192 <= b1 <= 223:
                player.rtcp += 1
                continue
            pt = b1 & 0x7F
            track = player.tracks.get(pt)
            if track is None:
                track = player.tracks[pt] = Track()
            seq = (buf[2] << 8) | buf[3]
            track.packets += 1
            track.bytes += n
            high = track.high
            if high < 0:
                track.high = track.first = seq
            else:
                d = (seq - high) & 0xFFFF
                if d < 0x8000:
                    track.high = high + d
            player.n += 1
            if (player.latency or player.n % args.decrypt_every == 0) and player.peer.srtp is not None:
                plain = player.peer.srtp.unprotect_rtp(bytes(view[:n]))
                if plain is None:
                    player.auth_failures += 1
                    continue
                player.decrypted += 1
                if latency:
                    at = plain.find(uuid)
                    if at >= 0 and anc:
                        sec, nsec = _TIMESPEC.unpack(anc[0][2][:_TIMESPEC.size])
                        rx_us = (sec * 10**9 + nsec - mono_offset) // 1000
                        sent_us = int(plain[at + ulen:at + ulen + 16])
                        kind = "audio" if pt == rtc_lean.OPUS_PT else "video"
                        player.lat.append((kind, (rx_us % 10**16 - sent_us) / 1000.0))

    # ---- setup: open players at --rate, run ICE and DTLS ----------------------------------------------
    t_start = time.monotonic()
    deadline = t_start + args.setup_timeout + args.players / args.rate
    next_open = t_start
    opened = 0
    stride = max(1, args.players // args.latency_players) if args.latency_players > 0 else 0
    while time.monotonic() < deadline:
        now = time.monotonic()
        if opened < args.players and now >= next_open:
            # The latency players are spread evenly over the players (the server sends to its players in
            # the order they joined, so the first ones alone would show the fan-out's best case).
            timed = stride > 0 and opened % stride == 0 and opened // stride < args.latency_players
            peer = rtc_lean.LeanPeer(context, twcc=not args.no_twcc, timestamps=timed)
            player = Player(peer, timed)
            order.append(player)
            opened += 1
            next_open += 1.0 / args.rate
            if peer.signal(args.url):
                players[peer.fd] = player
                poller.register(peer.fd, select.EPOLLIN)
                peer.tick(time.monotonic())
        for fd, _ev in poller.poll(0.002 if opened < args.players else 0.02):
            read(players[fd], now)
        now = time.monotonic()
        pending = 0
        for player in order:
            if player.peer.state in ("ice", "dtls"):
                pending += 1
            player.peer.tick(now)  # consent checks of the players already up, too
        if opened == args.players and not pending:
            break
    up = [p for p in order if p.peer.state == "up"]
    setup_s = time.monotonic() - t_start

    def loop_until(t_end: float, on_tick=None) -> None:
        next_tick = 0.0
        while True:
            now = time.monotonic()
            if now >= t_end:
                return
            for fd, _ev in poller.poll(min(0.05, t_end - now)):
                read(players[fd], now)
            if now >= next_tick:
                next_tick = now + 0.2
                for player in up:
                    player.peer.tick(now)
                if on_tick:
                    on_tick()

    loop_until(time.monotonic() + args.warmup)

    # ---- the window --------------------------------------------------------------------------------
    peak = {"rss": rss_kb(server) if server else 0}

    def sample_rss() -> None:
        if server:
            peak["rss"] = max(peak["rss"], rss_kb(server))

    before = {id(p): {pt: t.snapshot() for pt, t in p.tracks.items()} for p in up}
    cpu0 = cpu_seconds(server) if server else (0.0, 0.0)
    me0 = resource.getrusage(resource.RUSAGE_SELF)
    load0 = os.getloadavg()[0]
    t0 = time.monotonic()
    state["counting"] = True
    loop_until(t0 + window, sample_rss)
    state["counting"] = False
    t1 = time.monotonic()
    cpu1 = cpu_seconds(server) if server else (0.0, 0.0)
    me1 = resource.getrusage(resource.RUSAGE_SELF)
    sample_rss()
    rss_end = rss_kb(server) if server else 0

    per_player = []
    latencies = {"audio": [], "video": []}
    for p in up:
        row = {"decrypted": p.decrypted, "auth_failures": p.auth_failures, "rtcp": p.rtcp}
        for pt, t in p.tracks.items():
            pk0, by0, hi0 = before[id(p)].get(pt, (0, 0, t.first - 1))
            kind = "audio" if pt == rtc_lean.OPUS_PT else "video" if pt == rtc_lean.H264_PT else f"pt{pt}"
            row[kind] = {"packets": t.packets - pk0, "bytes": t.bytes - by0, "expected": t.high - hi0}
        per_player.append(row)
        for kind, ms in p.lat:
            latencies[kind].append(round(ms, 3))
    failed = [{"state": p.peer.state, "error": p.peer.error} for p in order if p.peer.state != "up"]
    setups = sorted(p.peer.t_up - p.peer.t_post for p in up)
    result = {
        "players": args.players, "up": len(up), "failed": failed[:20], "failed_count": len(failed),
        "setup_seconds": round(setup_s, 3),
        "setup_p50_ms": round(setups[len(setups) // 2] * 1000, 1) if setups else None,
        "setup_max_ms": round(setups[-1] * 1000, 1) if setups else None,
        "srtp_profile": up[0].peer.profile if up else None,
        "window": round(t1 - t0, 3),
        "server_user": round(cpu1[0] - cpu0[0], 3), "server_system": round(cpu1[1] - cpu0[1], 3),
        "client_cpu": round(me1.ru_utime + me1.ru_stime - me0.ru_utime - me0.ru_stime, 3),
        "rss_before_kb": rss_before, "rss_peak_kb": peak["rss"], "rss_end_kb": rss_end,
        "load": round(load0, 2), "load_end": round(os.getloadavg()[0], 2),
        "per_player": per_player, "latency_ms": latencies,
    }
    print(json.dumps(result), flush=True)
    for p in order:
        p.peer.close()


if __name__ == "__main__":
    main()
