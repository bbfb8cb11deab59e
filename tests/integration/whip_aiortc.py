"""A WHIP publisher on aiortc (a test client, run as a subprocess by test_rtc_whip).

Usage: python whip_aiortc.py URL SECONDS WIDTH HEIGHT

Publishes a generated H.264 video (WIDTH x HEIGHT, 30 fps, a moving bar) and
Opus audio (a tone) for SECONDS, then DELETEs the session with the Location
the server gave.  aioice is pinned to 127.0.0.1 (see rtc_client.pin_loopback).
Prints ``LOCATION <url>`` and ``CONNECTED`` / ``DONE`` lines.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import struct
import sys
import time
import os

from aiortc import MediaStreamTrack, RTCRtpSender
from av import AudioFrame, VideoFrame

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rtc_client import delete, exchange, peer_connection  # noqa: E402


class Bars(MediaStreamTrack):
    kind = "video"

    def __init__(self, width, height):
        super().__init__()
        self.width, self.height, self.n, self.start = width, height, 0, None

    async def recv(self):
        if self.start is None:
            self.start = time.monotonic()
        self.n += 1
        wait = self.start + self.n / 30 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = VideoFrame(self.width, self.height, "yuv420p")
        x = (self.n * 4) % self.width
        row = bytes(16 if not x <= i < x + 16 else 235 for i in range(self.width))
        luma = row * self.height
        for plane, data in zip(frame.planes, (luma, bytes([128]) * (self.width * self.height // 4),
                                              bytes([128]) * (self.width * self.height // 4))):
            if plane.line_size == plane.width:
                plane.update(data)
            else:  # padded rows
                width = plane.width
                rows = [data[i:i + width] + bytes(plane.line_size - width) for i in range(0, len(data), width)]
                plane.update(b"".join(rows))
        frame.pts, frame.time_base = self.n * 3000, fractions.Fraction(1, 90000)
        return frame


class Tone(MediaStreamTrack):
    kind = "audio"

    def __init__(self):
        super().__init__()
        self.n, self.start = 0, None

    async def recv(self):
        if self.start is None:
            self.start = time.monotonic()
        self.n += 1
        wait = self.start + self.n * 0.02 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        base = self.n * 960
        pcm = struct.pack("<960h", *(int(8000 * math.sin(2 * math.pi * 440 * (base + i) / 48000))
                                     for i in range(960)))
        frame = AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(pcm)
        frame.sample_rate, frame.pts, frame.time_base = 48000, self.n * 960, fractions.Fraction(1, 48000)
        return frame


def add_media(pc, width, height) -> None:
    """The tone (Opus) and the bars (H.264 only), send-only."""
    pc.addTransceiver(Tone(), direction="sendonly")
    video = pc.addTransceiver(Bars(width, height), direction="sendonly")
    video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                               if c.mimeType == "video/H264"])


async def main(url, seconds, width, height):
    pc = peer_connection()
    add_media(pc, width, height)
    location = await exchange(pc, url)
    await asyncio.sleep(seconds)
    await delete(location)
    await pc.close()
    print("DONE", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
