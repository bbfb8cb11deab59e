"""A WHEP player on aiortc that measures audio/video sync (a test client, run by test_rtc_bridge).

Usage: python whep_sync_aiortc.py URL SECONDS

whep_aiortc.py's player (it prints ``VIDEO <frames> <w>x<h>``, ``AUDIO <frames>`` and
``DELETE <status>``), which also looks at what it decodes.  The publisher flashes the
picture white and beeps at the same instants (once a second); this client finds each
flash (a bright picture after a dark one) and each beep (a loud sample after silence),
puts both on the sender's NTP clock with the RTCP sender reports of their tracks (RTP
time -> NTP time), and pairs each flash with the nearest beep.  Prints ``SR <video SRs>
<audio SRs>``, ``FLASHES ...``/``BEEPS ...`` (seconds, modulo 1000), the offsets, and
``SYNC <median beep - flash, ms> <pairs>`` (``SYNC none 0`` when nothing paired).
"""

from __future__ import annotations

import array
import asyncio
import os
import statistics
import sys

from aiortc import RTCRtpReceiver
from aiortc.rtp import RtcpSrPacket

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from whep_aiortc import main  # noqa: E402

RATES = {"video": 90000, "audio": 48000}
SRS = {"video": [], "audio": []}  # (ntp seconds, rtp timestamp)
RECEIVERS = {}  # kind -> RTCRtpReceiver
EVENTS = {"video": [], "audio": []}  # (frame pts, on)
_handle = RTCRtpReceiver._handle_rtcp_packet


async def _recording_handle(self, packet):
    if isinstance(packet, RtcpSrPacket):
        kind = self._RTCRtpReceiver__kind
        RECEIVERS[kind] = self
        info = packet.sender_info
        SRS[kind].append((info.ntp_timestamp / 2 ** 32, info.rtp_timestamp))
    return await _handle(self, packet)


RTCRtpReceiver._handle_rtcp_packet = _recording_handle


def ntp_time(kind: str, pts: int) -> float | None:
    """The NTP time of a decoded frame: aiortc's frame pts is the RTP timestamp less
    the track's first one (its TimestampMapper's origin)."""
    if not SRS[kind]:
        return None
    origin = RECEIVERS[kind]._RTCRtpReceiver__timestamp_mapper._origin
    ntp, ref = SRS[kind][-1]
    d = (origin + pts - ref) & 0xFFFFFFFF
    if d >= 0x80000000:
        d -= 0x100000000
    return ntp + d / RATES[kind]


def onsets(events, gap: float = 0.4):
    """Times where the signal turns on after being off for ``gap`` seconds."""
    out, last_on = [], None
    for t, on in events:
        if on:
            if last_on is None or t - last_on > gap:
                out.append(t)
            last_on = t
    return out


def on_frame(kind, frame):
    if kind == "video":
        luma = bytes(frame.planes[0])[::101]
        EVENTS["video"].append((frame.pts, sum(luma) / len(luma) > 128))
    else:
        pcm = array.array("h", bytes(frame.planes[0]))
        channels = len(frame.layout.channels)
        loud = next((i for i, v in enumerate(pcm) if abs(v) > 3000), None)
        EVENTS["audio"].append((frame.pts + (loud // channels if loud is not None else 0), loud is not None))


def report():
    print("SR %d %d" % (len(SRS["video"]), len(SRS["audio"])), flush=True)
    times = {kind: [(ntp_time(kind, t), on) for t, on in EVENTS[kind]] for kind in EVENTS}
    flashes = onsets([e for e in times["video"] if e[0] is not None])
    beeps = onsets([e for e in times["audio"] if e[0] is not None])
    pairs = []
    for flash in flashes:
        near = min(beeps, key=lambda b: abs(b - flash), default=None)
        if near is not None and abs(near - flash) < 0.5:
            pairs.append((near - flash) * 1000)
    print("FLASHES %s" % " ".join("%.3f" % (f % 1000) for f in flashes), flush=True)
    print("BEEPS %s" % " ".join("%.3f" % (b % 1000) for b in beeps), flush=True)
    print("OFFSETS %s" % " ".join("%.0f" % p for p in pairs), flush=True)
    if pairs:
        print("SYNC %.0f %d" % (statistics.median(pairs), len(pairs)), flush=True)
    else:
        print("SYNC none 0", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), on_frame=on_frame, report=report))
