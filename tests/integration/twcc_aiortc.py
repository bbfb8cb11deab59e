"""A WHIP publisher on aiortc that speaks transport-wide congestion control (a test
client, run as a subprocess by test_rtc_twcc).

Usage: python twcc_aiortc.py URL SECONDS

aiortc has no TWCC of its own; this client adds what a browser has: the offer
carries ``a=extmap:5`` transport-cc and ``a=rtcp-fb:* transport-cc`` on both
sections, every RTP packet it sends gets the next transport-wide number, and
the RTCP it receives is looked at before aiortc's own handling: every
transport-cc feedback (PT 205 FMT 15) is counted, decoded with the server's
codec (to compare with what was sent) and also handed to aiortc's RTCP parser,
which must take it without error.  Publishes the H.264 bars and Opus tone of
whip_aiortc.py for SECONDS, then DELETEs the session.  Prints the exchange
lines of rtc_client and at the end
``TWCC sent=N feedbacks=F received=R lost=L aiortc_errors=E wrong=W``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(os.path.dirname(HERE)))  # the checkout, for srs_twisted's RTCP codec

import aiortc.codecs  # noqa: E402
from aiortc import RTCRtpSender  # noqa: E402
from aiortc.rtcdtlstransport import RTCDtlsTransport  # noqa: E402
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpHeaderExtensionParameters  # noqa: E402
from aiortc.rtp import HeaderExtensionsMap, RtcpPacket  # noqa: E402

from rtc_client import delete, exchange, peer_connection  # noqa: E402
from whip_aiortc import Bars, Tone  # noqa: E402

from srs_twisted.codec.rtcp import TransportCC, parse_compound  # noqa: E402

TWCC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
TWCC_ID = 5
stats = {"sent": 0, "feedbacks": 0, "aiortc_errors": 0, "wrong": 0}
sent_at: dict[int, float] = {}   # transport-wide number -> when it was numbered
reported: dict[int, bool] = {}   # number -> received (True) or lost (False), the latest report


def add_twcc() -> None:
    for kind in ("audio", "video"):
        aiortc.codecs.HEADER_EXTENSIONS[kind].append(RTCRtpHeaderExtensionParameters(id=TWCC_ID, uri=TWCC_URI))
        for codec in aiortc.codecs.CODECS[kind]:
            if codec.mimeType.lower() != f"{kind}/rtx":
                codec.rtcpFeedback.append(RTCRtcpFeedback(type="transport-cc"))

    numbers = itertools.count()
    original_set = HeaderExtensionsMap.set

    def numbered_set(self, values):
        if self._HeaderExtensionsMap__ids.transport_sequence_number and values.transport_sequence_number is None:
            seq = next(numbers) & 0xFFFF
            values.transport_sequence_number = seq
            sent_at[seq] = time.monotonic()
            stats["sent"] += 1
        return original_set(self, values)

    HeaderExtensionsMap.set = numbered_set
    original_rtcp = RTCDtlsTransport._handle_rtcp_data

    async def look(self, data):
        if len(data) > 1 and data[1] == 205 and data[0] & 0x1F == 15:  # the server sends one per datagram
            try:
                RtcpPacket.parse(data)
            except ValueError:
                stats["aiortc_errors"] += 1
            for packet in parse_compound(data):
                if isinstance(packet, TransportCC):
                    stats["feedbacks"] += 1
                    got = {seq for seq, _ in packet.received}
                    for k in range(packet.status_count):
                        seq = (packet.base_seq + k) & 0xFFFF
                        reported[seq] = seq in got
                    stats["wrong"] += sum(1 for seq in got if seq not in sent_at)
        await original_rtcp(self, data)

    RTCDtlsTransport._handle_rtcp_data = look


async def main(url, seconds):
    add_twcc()
    pc = peer_connection()
    pc.addTransceiver(Tone(), direction="sendonly")
    video = pc.addTransceiver(Bars(320, 240), direction="sendonly")
    video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                               if c.mimeType == "video/H264"])
    location = await exchange(pc, url)
    print("OFFER_TWCC", f"a=extmap:{TWCC_ID} {TWCC_URI}" in pc.localDescription.sdp, flush=True)
    print("ANSWER_TWCC", f"a=extmap:{TWCC_ID} {TWCC_URI}" in pc.remoteDescription.sdp, flush=True)
    await asyncio.sleep(seconds)
    await delete(location)
    await pc.close()
    received = sum(1 for v in reported.values() if v)
    print(f"TWCC sent={stats['sent']} feedbacks={stats['feedbacks']} received={received} "
          f"lost={len(reported) - received} aiortc_errors={stats['aiortc_errors']} wrong={stats['wrong']}",
          flush=True)
    print("DONE", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
