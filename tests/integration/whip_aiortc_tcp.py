"""A WHIP publisher on aiortc whose media goes to the server over TCP only (a test
client, run as a subprocess by test_rtc_tcp).

Usage: python whip_aiortc_tcp.py URL SECONDS WIDTH HEIGHT

aioice (aiortc's ICE) has no ICE-TCP (RFC 6544), so this client gives it one: it
POSTs the offer, takes the answer's ``tcp ... typ host tcptype passive``
candidate, opens a TCP connection to it and puts a local UDP socket in front of
that connection, written here independently of the server's code: each
datagram aiortc sends becomes one RFC 4571 frame (2-byte length, then the
bytes) on the connection, each frame the server sends becomes a datagram back.
aiortc is given that UDP socket as the answer's only candidate.  Its STUN checks,
DTLS handshake, SRTP media (generated H.264 WIDTH x HEIGHT and Opus, as
whip_aiortc.py makes them) and RTCP all cross the TCP connection; the server's
UDP port is never told to aiortc.

Prints ``CANDIDATE <line>`` for each candidate of the answer, ``STATUS``,
``LOCATION``, ``CONNECTED``, ``FRAMES <to server> <from server>``, ``DELETE``
and ``DONE``.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rtc_client import delete, exchange, peer_connection  # noqa: E402
from whip_aiortc import add_media  # noqa: E402


class FramingRelay(asyncio.DatagramProtocol):
    """aiortc's datagrams <-> RFC 4571 frames on one TCP connection."""

    def __init__(self) -> None:
        self.udp = None
        self.client = None
        self.up = self.down = 0
        self.task = None

    async def open(self, host: str, port: int) -> int:
        self.reader, self.writer = await asyncio.open_connection(host, port)
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        self.task = asyncio.ensure_future(self.pump())
        return self.udp.get_extra_info("sockname")[1]

    def connection_made(self, transport) -> None:
        self.udp = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.client = addr
        self.writer.write(len(data).to_bytes(2, "big") + data)
        self.up += 1

    async def pump(self) -> None:
        try:
            while True:
                size = int.from_bytes(await self.reader.readexactly(2), "big")
                data = await self.reader.readexactly(size)
                self.down += 1
                if self.client is not None:
                    self.udp.sendto(data, self.client)
        except (asyncio.IncompleteReadError, ConnectionError):
            print("TCP CLOSED", flush=True)

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.writer.close()
        self.udp.close()


async def main(url, seconds, width, height):
    pc = peer_connection()
    add_media(pc, width, height)
    relay = FramingRelay()

    async def via_relay(answer: str) -> str:
        candidates = re.findall(r"^a=candidate:.*$", answer, re.M)
        for line in candidates:
            print("CANDIDATE", line.strip(), flush=True)
        tcp = [line.split() for line in candidates if " tcp " in line and "tcptype passive" in line]
        local_port = await relay.open(tcp[0][4], int(tcp[0][5]))
        # aiortc gets the relay as the answer's only (UDP) candidate.
        answer = re.sub(r"^a=candidate:.*\r?\n", "", answer, flags=re.M)
        return re.sub(r"^(a=mid:.*\r?\n)", r"\1a=candidate:1 1 udp 2130706431 127.0.0.1 %d typ host\r\n" % local_port,
                      answer, flags=re.M)

    location = await exchange(pc, url, rewrite=via_relay)
    await asyncio.sleep(seconds)
    print("FRAMES", relay.up, relay.down, flush=True)
    await delete(location)
    await pc.close()
    relay.close()
    print("DONE", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
