#!/usr/bin/env python3
"""What per-player timelines (``time_jitter full``, issue 9 item 14) cost the
live core's fan-out, without sockets.

One LiveSource, N players whose writes go nowhere, a stream like the bench's
clip (30 fps video of 5,800-byte frames, 43 AAC frames/s: about 1.5 Mbit/s),
merged writes at the defaults (8 packets).  It times the flushes of a 20 s
window with ``time.process_time`` and prints the CPU per flush per player and
per Gbit delivered, for RTMP and HTTP-FLV players who

- ``same``: all joined in the same GOP, so they share one timeline;
- ``distinct``: each joined in a GOP of its own, so each has its own offset
  (the worst case: every player its own timeline);
- ``off``: ``time_jitter off``, the stream's own timeline for everyone.

It uses only APIs that exist before and after the change, so running it with
PYTHONPATH pointing at an older checkout measures the "before":

    python bench/timeline_cost.py                        # this checkout
    PYTHONPATH=/path/to/old python bench/timeline_cost.py  # another one

Only the Python fan-out is measured: the kernel's send() and Twisted's
buffering are the same whatever the bytes are (see docs/performance.md).

``--frame-writes`` flushes once per video frame (the server's default when
neither ``mw_latency`` nor ``mw_msgs`` is set) instead of every 8 packets.
``--write-through`` gives each player the server's real write path
(:mod:`srs_twisted.directwrite`, with the HTTP chunk framing for HTTP-FLV)
over a stand-in connection whose ``send`` takes everything at once, so the
Python of a whole flush is timed, the system call not.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] or
                os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet.task import Clock  # noqa: E402

from srs_twisted.http.stream import HttpStreamSink  # noqa: E402
from srs_twisted.live.packet import AUDIO, DATA, VIDEO, MediaPacket  # noqa: E402
from srs_twisted.live.source import LiveSource, SourceOptions  # noqa: E402
from srs_twisted.rtmp.protocol import RtmpPlaySink  # noqa: E402

FPS = 30
VIDEO_BYTES = 5800
AUDIO_MS = 23
AUDIO_BYTES = 370


class _Transport:
    def write(self, data):
        pass


class _Proto:
    sent_bytes = 0
    transport = _Transport()


def make_sink(proto: str, source):
    if proto == "rtmp":
        return RtmpPlaySink(_Proto(), 60000)
    return HttpStreamSink(source, "flv", lambda data: None)


class _Socket:
    send = staticmethod(len)  # the kernel took everything


class _Connection:
    """What directwrite reads of a twisted.internet.tcp.Connection, nothing queued."""

    def __init__(self):
        self.socket = _Socket()
        self.connected, self.disconnecting, self._writeDisconnected = 1, False, False
        self._tempDataBuffer, self.offset, self.dataBuffer = [], 0, b""

    def write(self, data):
        raise AssertionError("write-through queued in Twisted")


class _Request:
    """What directwrite reads of a twisted.web request whose headers are out."""

    finished, _disconnected, sentLength, chunked = 0, False, 0, True

    def write(self, data):
        raise AssertionError("write-through fell back to request.write")


def make_direct_sink(proto: str, source):
    """A player with the server's write path over :class:`_Connection`."""
    from srs_twisted import directwrite

    if proto == "rtmp":
        sink = RtmpPlaySink(_Proto(), 60000)
        sink._send = sink.write = directwrite._writer(_Connection(), _Proto(), None)
        return sink
    request = _Request()
    return HttpStreamSink(source, "flv", lambda data: None,
                          direct=lambda sink: directwrite._writer(_Connection(), sink, request))


class Publisher:
    def __init__(self, source, gop_frames):
        self.src = source
        self.gop = gop_frames
        self.frame = 0
        self.t_audio = 0
        self.video = b"\x17\x01\x00\x00\x00" + bytes(VIDEO_BYTES - 5)
        self.keyframe = b"\x17\x01\x00\x00\x00" + bytes(VIDEO_BYTES * 3 - 5)
        self.audio = b"\xaf\x01" + bytes(AUDIO_BYTES - 2)
        source.registerProducer(self)
        source.write(MediaPacket(DATA, 0, b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00\x00\x00\x09"))
        source.write(MediaPacket(VIDEO, 0, b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f", codec="h264",
                                 keyframe=True, sequence_header=True))
        source.write(MediaPacket(AUDIO, 0, b"\xaf\x00\x12\x10", codec="aac", sequence_header=True))

    def stopProducing(self):
        pass

    def run_for(self, ms: int, clock) -> None:
        """Publish ``ms`` of stream time, audio and video interleaved."""
        end = self.frame * 1000 // FPS + ms
        while self.frame * 1000 // FPS < end:
            t = self.frame * 1000 // FPS
            while self.t_audio <= t:
                self.src.write(MediaPacket(AUDIO, self.t_audio, self.audio, codec="aac"))
                self.t_audio += AUDIO_MS
            key = self.frame % self.gop == 0
            self.src.write(MediaPacket(VIDEO, t, self.keyframe if key else self.video, codec="h264", keyframe=key))
            self.frame += 1
            clock.advance(1 / FPS)


def measure(proto: str, n: int, mode: str, window_s: float, frame_writes=False, direct=False) -> dict:
    clock = Clock()
    jitter = "off" if mode == "off" else "full"
    options = SourceOptions(time_jitter=jitter)
    if frame_writes:  # an older checkout without it fails here, not silently
        options.mw_by_frame = True
    src = LiveSource("__defaultVhost__", "live", "bench", clock, options)
    new_sink = make_direct_sink if direct else make_sink
    pub = Publisher(src, gop_frames=2 * FPS)
    pub.run_for(10_000, clock)  # the stream is 10 s old before anyone joins
    if mode == "distinct":
        # one player per GOP: every player gets its own offset
        pub.gop = 3
        for _ in range(n):
            src.subscribe(new_sink(proto, src))
            pub.run_for(100, clock)
        pub.gop = 2 * FPS
    else:
        for _ in range(n):
            src.subscribe(new_sink(proto, src))
    pub.run_for(3000, clock)  # settle
    sent = sum(c.sent_bytes for c in src.consumers)
    flushes = 0
    original = src.flush

    def counting():
        nonlocal flushes
        flushes += 1
        original()

    src.flush = counting
    t0 = time.process_time()
    pub.run_for(int(window_s * 1000), clock)
    cpu = time.process_time() - t0
    src.flush = original
    sent = sum(c.sent_bytes for c in src.consumers) - sent
    offsets = {getattr(c, "offset", 0) for c in src.consumers}
    return {
        "proto": proto, "n": n, "mode": mode, "timelines": len(offsets), "flushes": flushes,
        "cpu_s": cpu, "us_per_player_flush": cpu / max(1, flushes * n) * 1e6,
        "cpu_s_per_gbit": cpu / max(1, sent * 8 / 1e9),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ns", default="100,1000", help="player counts (default 100,1000)")
    ap.add_argument("--protos", default="rtmp,flv")
    ap.add_argument("--modes", default="off,same,distinct")
    ap.add_argument("--window", type=float, default=20.0, help="seconds of stream timed (default 20)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per cell; the fastest is shown (default 3)")
    ap.add_argument("--frame-writes", action="store_true", help="a flush per video frame (the server's default)")
    ap.add_argument("--write-through", action="store_true",
                    help="players write through srs_twisted.directwrite (send stubbed), not into nothing")
    args = ap.parse_args()
    print("| proto | N | players' timelines | mode | flushes | CPU µs per player per flush | CPU-s/Gbit (fan-out only) |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for proto in args.protos.split(","):
        for n in (int(x) for x in args.ns.split(",")):
            for mode in args.modes.split(","):
                best = min((measure(proto, n, mode, args.window, args.frame_writes, args.write_through)
                            for _ in range(args.repeat)),
                           key=lambda r: r["cpu_s"])
                print(f"| {proto} | {n} | {best['timelines']} | {mode} | {best['flushes']} | "
                      f"{best['us_per_player_flush']:.2f} | {best['cpu_s_per_gbit']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
