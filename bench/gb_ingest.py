"""CPU cost of the GB28181 media path (RTP of MPEG-PS -> live packets), without sockets.

    PYTHONPATH=. .venv/bin/python bench/gb_ingest.py [FILE.ps SECONDS]

Without arguments it makes 12 s of 320x240 H.264 + AAC PS with GStreamer's mpegpsmux
(tests/integration/gb_device.py), cuts it into 1400-byte RTP packets as the tests' camera
does, and times :class:`srs_twisted.gb.media.PsIngest` on them (best of 3, process CPU time).
"""

from __future__ import annotations

import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from srs_twisted.gb.media import PsIngest  # noqa: E402
from tests.integration.gb_device import ps_file, ps_groups  # noqa: E402


def main() -> None:
    path, seconds = (sys.argv[1], float(sys.argv[2])) if len(sys.argv) > 2 else (ps_file(12), 12.0)
    with open(path, "rb") as f:
        data = f.read()
    packets = []
    seq = 0
    for _, chunk in ps_groups(data):
        for i in range(0, len(chunk), 1400):
            marker = 0x80 if i + 1400 >= len(chunk) else 0
            packets.append(struct.pack(">BBHII", 0x80, 96 | marker, seq & 0xFFFF, 0, 1) + chunk[i:i + 1400])
            seq += 1
    best, out = float("inf"), 0
    for _ in range(3):
        ingest = PsIngest()
        start = time.process_time()
        out = sum(len(ingest.rtp(p)) for p in packets)
        best = min(best, time.process_time() - start)
    mb = len(data) / 1e6
    print(f"{len(packets)} RTP packets, {mb:.2f} MB of PS ({seconds:.0f} s of media, {mb * 8 / seconds:.2f} Mbit/s), "
          f"{out} live packets: {best:.3f} CPU-s, {mb * 8 / best:.0f} Mbit/s per core, "
          f"{seconds / best:.0f}x real time")


if __name__ == "__main__":
    main()
