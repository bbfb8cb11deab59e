#!/usr/bin/env python3
"""What the WebRTC player's send path costs per packet and player, in process (issue 10 section 4).

``RtcPlayer.write`` (srs_twisted/rtc/player.py) gets the shared records of
one second of a 1.5 Mbit/s stream (30 video frames of 6 packets of 1,200
bytes, 50 Opus packets of 160 bytes) for each of N players, as the live core
hands them out, and the CPU time (``time.process_time``) is split by adding
one stage at a time:

- ``rewrite``: header rewrite, NACK cache, counters (no SRTP, send dropped);
- ``+srtp``: plus SRTP protect (AES-CM-SHA1-80 keys, the session's
  ``rtp_protector()``);
- ``+send``: plus the UDP send through ``RtcUdpProtocol.send`` to a socket on
  127.0.0.1 that drains nothing (the kernel drops what overflows), one
  ``sendto`` per datagram;
- ``+send gso``: the same with each write's datagrams batched by UDP GSO
  (one ``sendmsg`` per run of same-size datagrams), as the server does.

    python bench/rtc_sendpath.py                 # 100 players, 3 seconds of stream
    python bench/rtc_sendpath.py --players 300 --seconds 2
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from srs_twisted.rtc.answer import Track  # noqa: E402
from srs_twisted.rtc.dtls import SRTP_AES128_CM_SHA1_80  # noqa: E402
from srs_twisted.rtc.player import F_AUDIO, RtcPlayer, RtpEncoder  # noqa: E402
from srs_twisted.rtc.protocol import RtcUdpProtocol  # noqa: E402
from srs_twisted.rtc.srtp import SrtpSession  # noqa: E402

VIDEO = Track("video", "0", 102, "H264", 90000, None, None, ("nack", "nack pli"), 3, 0x1111)
AUDIO = Track("audio", "1", 111, "opus", 48000, 2, None, ("nack",), 3, 0x2222)


class Source:
    outputs: dict = {}
    video_sh = audio_sh = None


class Port:
    """Enough of twisted's udp.Port for RtcUdpProtocol._write: the socket."""

    def __init__(self, sock):
        self.socket = sock

    def write(self, data, addr):
        self.socket.sendto(data, addr)


class Session:
    def __init__(self, address):
        self.address = address


def second_of_stream():
    """The records the live core hands a player in one second: (records bytes) per MediaPacket."""
    out = []
    for i in range(50):
        out.append(RtpEncoder._audio_records([(b"\xfc" + os.urandom(159), i * 20)]))
        if i < 30:
            out.append(RtpEncoder._records([os.urandom(1200) for _ in range(6)], 0, i * 33))
    return out


def run(players: int, seconds: int, stage: str) -> float:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.setblocking(False)
    proto = RtcUdpProtocol(None)
    proto.transport = Port(out)
    session = Session(sink.getsockname())
    stream = second_of_stream()
    ps = []
    for _ in range(players):
        key, peer_key = os.urandom(30), os.urandom(30)
        srtp = SrtpSession(SRTP_AES128_CM_SHA1_80, key, peer_key)
        if stage == "rewrite":
            send, protector = (lambda datagram: None), (lambda header, payload: header)
        elif stage == "+srtp":
            send, protector = (lambda datagram: None), srtp.rtp_protector()
        else:
            def send(datagrams, session=session):
                try:
                    proto.send(session, datagrams)
                except OSError:
                    pass
            protector = srtp.rtp_protector()
        Source.outputs = {}
        kw = {"send_many": send} if stage.startswith("+send") else {}
        proto.gso = stage == "+send gso"
        ps.append(RtcPlayer(Source(), [VIDEO, AUDIO], lambda d: send((d,)), protector=protector, clock=lambda: 0.0,
                            **kw))
    packets = 0
    start = time.process_time()
    for s in range(seconds):
        for records in stream:
            for p in ps:
                p.write(records)
    cpu = time.process_time() - start
    packets = sum(p.stats.packets for p in ps)
    sink.close()
    out.close()
    return cpu / packets * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {args.players} players, {args.seconds} s of a 1.5 Mbit/s stream "
          f"(230 packets/s), transport-cc on, load {os.getloadavg()[0]:.2f}")
    for stage in ("rewrite", "+srtp", "+send", "+send gso"):
        us = run(args.players, args.seconds, stage)
        # CPU-s per Gbit if this were all: us per packet / (bits per packet)
        bits = (30 * 6 * (1200 + 20 + 10) + 50 * (160 + 20 + 10)) * 8 / 230
        print(f"{stage:10} {us:6.2f} us per packet per player  (alone: {us / bits * 1e3:.2f} CPU-s/Gbit)")


if __name__ == "__main__":
    main()
