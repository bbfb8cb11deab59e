#!/usr/bin/env python3
"""What relaying one RTP packet to N WebRTC players costs in codec/rtp.py,
without sockets or SRTP (issue 10, "serialize once").

A publisher's packet (1,200-byte payload, a one-byte extension block with a
transport-cc number) is parsed once and prepared once (``FanOut``); every
player then gets its own copy with its SSRC, payload type and sequence
number rewritten, sharing the payload bytes:

- ``keep``: the publisher's extension block is kept as it is;
- ``twcc``: each player gets its own transport-wide sequence number
  (``twcc_extension_block``), as when the player negotiated transport-cc.

It prints CPU microseconds per packet per player (``time.process_time``),
and the once-per-packet parse + prepare cost:

    python bench/rtp_fanout.py                 # 100 players, 2,000 packets
    python bench/rtp_fanout.py --players 300 --packets 1000
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from srs_twisted.codec import rtp  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, default=100)
    parser.add_argument("--packets", type=int, default=2000)
    parser.add_argument("--payload", type=int, default=1200)
    args = parser.parse_args()

    source = rtp.RtpPacket(102, 1000, 90000, 0x1234, False, os.urandom(args.payload))
    source.set_extensions([(3, b"\x00\x01")])
    datagram = bytes(source)
    players = [(0x10000 + i, 96 + i % 8, i * 7) for i in range(args.players)]

    start = time.process_time()
    for _ in range(args.packets):
        rtp.FanOut(rtp.RtpPacket.parse(datagram))
    once = (time.process_time() - start) / args.packets * 1e6

    fan = rtp.FanOut(rtp.RtpPacket.parse(datagram))
    results = {}
    for mode in ("keep", "twcc"):
        sink = []
        start = time.process_time()
        for n in range(args.packets):
            for ssrc, pt, seq in players:
                if mode == "keep":
                    sink.append(fan.packet(ssrc, pt, seq + n))
                else:
                    sink.append(fan.packet(ssrc, pt, seq + n, extension=rtp.twcc_extension_block(3, seq + n)))
            sink.clear()
        results[mode] = (time.process_time() - start) / (args.packets * args.players) * 1e6

    print("python %s, payload %d bytes, %d players x %d packets"
          % (sys.version.split()[0], args.payload, args.players, args.packets))
    print("parse + prepare (once per packet): %.2f us" % once)
    for mode, us in results.items():
        print("rewrite + copy, %-4s: %.2f us per packet per player" % (mode, us))


if __name__ == "__main__":
    main()
