#!/usr/bin/env python3
"""CPU cost of the RTMP <-> WebRTC audio bridge, per bridged stream (issue 11).

Usage: python bench/bridge_cpu.py [--seconds 30] [--repeat 3]

Makes ``--seconds`` of audio with PyAV (a 440 Hz tone plus quiet noise, so the
encoders have something to do): AAC-LC 44.1 kHz stereo at 128 kbit/s (what OBS/FFmpeg
publish over RTMP), MP3 44.1 kHz stereo, and Opus 48 kHz stereo 20 ms (what a browser
publishes over WHIP).  Then runs each through the server's own bridge code, in process,
timing only the bridge with ``time.process_time()``:

* AAC -> Opus: :class:`srs_twisted.rtc.bridge.OpusBridge` (FLV AAC bodies in, Opus
  frames out, ``opus_bitrate`` 48000), as the shared RTP encoder of a stream runs it
  once for all its WebRTC players;
* MP3 -> Opus: the same with MP3 bodies;
* Opus -> AAC: :class:`srs_twisted.rtc.bridge.AacBridge` (``aac_bitrate`` 48000), as a
  WHIP publisher with ``rtc_to_rtmp on`` runs it.

Prints, per direction, the CPU seconds per second of audio, i.e. the share of one core a
bridged stream takes (best and median of ``--repeat`` runs), and the stream count one
core could bridge.  No network, no server: the figure is the transcoding itself (decode,
resample, encode, FLV wrapping); a stream without WebRTC players runs no transcoder.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import av  # noqa: E402

from srs_twisted.live.packet import AUDIO, MediaPacket  # noqa: E402
from srs_twisted.rtc.bridge import AacBridge, OpusBridge  # noqa: E402


def encode(codec: str, rate: int, seconds: float, fmt: str, frame_size: int, bitrate: int):
    """(extradata, [(frame bytes, pts ms)]) of a tone with noise encoded by PyAV."""
    enc = av.CodecContext.create(codec, "w")
    enc.sample_rate, enc.layout, enc.format, enc.bit_rate = rate, "stereo", fmt, bitrate
    enc.open()
    size = enc.frame_size or frame_size
    res = av.AudioResampler(format=fmt, layout="stereo", rate=rate, frame_size=size)
    rng = random.Random(1)
    out, t = [], 0
    packets = []
    while t < seconds * rate:
        values = []
        for i in range(size):
            v = int(8000 * math.sin(2 * math.pi * 440 * (t + i) / rate) + rng.randint(-800, 800))
            values += (v, -v)
        frame = av.AudioFrame(format="s16", layout="stereo", samples=size)
        frame.planes[0].update(struct.pack(f"<{len(values)}h", *values))
        frame.sample_rate, frame.pts = rate, t
        t += size
        for chunk in res.resample(frame):
            packets += enc.encode(chunk)
    packets += enc.encode(None)
    for n, p in enumerate(packets):
        out.append((bytes(p), n * size * 1000 // rate))
    return bytes(enc.extradata or b""), out


def run_opus(header: bytes, kind_byte: int, frames, codec: str) -> float:
    bridge = OpusBridge(48000)
    pkts = []
    if codec == "aac":
        pkts.append(MediaPacket(AUDIO, 0, bytes((0xAF, 0)) + header, codec="aac", sequence_header=True))
        prefix = bytes((0xAF, 1))
    else:
        prefix = bytes((kind_byte,))
    pkts += [MediaPacket(AUDIO, pts, prefix + data, codec=codec) for data, pts in frames]
    start = time.process_time()
    n = 0
    for pkt in pkts:
        n += len(bridge.frames(pkt))
    spent = time.process_time() - start
    bridge.stop()
    assert n > 0
    return spent


def run_aac(frames) -> float:
    bridge = AacBridge(48000)
    start = time.process_time()
    n = 0
    for data, pts in frames:
        n += len(bridge.push(data, pts))
    spent = time.process_time() - start
    bridge.close()
    assert n > 0
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    asc, aac = encode("aac", 44100, args.seconds, "fltp", 1024, 128000)
    _, mp3 = encode("libmp3lame", 44100, args.seconds, "s16p", 1152, 128000)
    _, opus = encode("libopus", 48000, args.seconds, "s16", 960, 64000)
    cases = {
        "AAC 44.1k 128k -> Opus 48k 48k (rtmp_to_rtc)": lambda: run_opus(asc, 0, aac, "aac"),
        "MP3 44.1k 128k -> Opus 48k 48k (rtmp_to_rtc)": lambda: run_opus(b"", 0x2F, mp3, "mp3"),
        "Opus 48k 64k -> AAC 48k 48k (rtc_to_rtmp)": lambda: run_aac(opus),
    }
    print(f"PyAV {av.__version__}, libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}, "
          f"{args.seconds:.0f} s of audio, {args.repeat} runs")
    for name, run in cases.items():
        shares = sorted(run() / args.seconds * 100 for _ in range(args.repeat))
        best, median = shares[0], statistics.median(shares)
        print(f"{name:48s} best {best:5.2f}% of a core, median {median:5.2f}%  (~{100 / median:.0f} streams/core)")


if __name__ == "__main__":
    main()
