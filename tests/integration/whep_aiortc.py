"""A WHEP player on aiortc (a test client, run as a subprocess by test_rtc_whip).

Usage: python whep_aiortc.py URL SECONDS [STREAMURL]

With STREAMURL (``webrtc://host/app/stream``), SRS's legacy JSON API at URL
(``/rtc/v1/play/``) instead of WHEP.

Plays (recvonly H.264 video and Opus audio) for SECONDS, decoding every frame
aiortc gives, then DELETEs the session.  aioice is pinned to 127.0.0.1.
Prints ``STATUS``, ``LOCATION``, ``CONNECTED``, then ``VIDEO <frames> <width>x<height>``,
``SIZES <width>x<height>=<frames> ...`` (every video size decoded, in order of first
appearance), ``AUDIO <frames>`` and ``DELETE <status>``.
"""

from __future__ import annotations

import asyncio
import sys
import os

from aiortc import RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rtc_client import delete, exchange, peer_connection  # noqa: E402


async def main(url, seconds, streamurl=None, on_frame=None, report=None):
    """``on_frame(kind, frame)`` sees every decoded frame; ``report()`` runs after
    the counts are printed, before the DELETE (whep_sync_aiortc.py uses both)."""
    pc = peer_connection()
    counts = {"video": 0, "audio": 0}
    size = [0, 0]
    sizes = {}
    tasks = []

    async def consume(track):
        try:
            while True:
                frame = await track.recv()
                counts[track.kind] += 1
                if track.kind == "video":
                    size[:] = [frame.width, frame.height]
                    key = "%dx%d" % (frame.width, frame.height)
                    sizes[key] = sizes.get(key, 0) + 1
                if on_frame is not None:
                    on_frame(track.kind, frame)
        except MediaStreamError:
            pass

    @pc.on("track")
    def on_track(track):
        tasks.append(asyncio.ensure_future(consume(track)))

    pc.addTransceiver("audio", direction="recvonly")
    video = pc.addTransceiver("video", direction="recvonly")
    video.setCodecPreferences([c for c in RTCRtpReceiver.getCapabilities("video").codecs
                               if c.mimeType == "video/H264"])
    location = await exchange(pc, url, streamurl)
    await asyncio.sleep(seconds)
    print("VIDEO %d %dx%d" % (counts["video"], size[0], size[1]), flush=True)
    print("SIZES " + " ".join("%s=%d" % item for item in sizes.items()), flush=True)
    print("AUDIO %d" % counts["audio"], flush=True)
    if report is not None:
        report()
    await delete(location)
    await pc.close()
    for task in tasks:
        task.cancel()
    print("DONE", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), *sys.argv[3:4]))
