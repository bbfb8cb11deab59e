"""What the aiortc test clients (whip_aiortc.py, whep_aiortc.py) share: loopback-only
ICE, and the WHIP/WHEP exchange (POST the offer, apply the answer, DELETE at the end).

The tests run them inside their private network namespace (tests/integration/netns.py),
as children of a test process that entered it."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from urllib.parse import urljoin

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription


def pin_loopback() -> None:
    """aioice gathers every interface but 127.0.0.1 by default; inside the tests'
    namespace that is 10.99.0.1 alone, outside it the machine's real interfaces.
    Pinned to 127.0.0.1: the address the server listens on and answers as its
    candidate in these tests (and the relays of test_rtc_whip bind), the same in
    and out of the namespace."""
    aioice.ice.get_host_addresses = lambda *a, **k: ["127.0.0.1"]


def peer_connection():
    """A peer connection that prints its states and sets ``pc.connected`` when connected."""
    pin_loopback()
    pc = RTCPeerConnection()
    pc.connected = asyncio.Event()

    @pc.on("connectionstatechange")
    def changed():
        print("STATE", pc.connectionState, flush=True)
        if pc.connectionState == "connected":
            pc.connected.set()

    return pc


async def _http(request):
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, lambda: urllib.request.urlopen(request, timeout=20))


async def exchange(pc, url: str, streamurl: str | None = None, rewrite=None) -> str | None:
    """POST our offer to ``url``, apply the answer, wait until connected; returns the
    Location.  With ``streamurl``, SRS's legacy JSON API instead (no Location: None).
    ``rewrite``: an async function applied to the answer's text before it is applied."""
    await pc.setLocalDescription(await pc.createOffer())
    if streamurl:
        body = json.dumps({"api": url, "clientip": None, "sdp": pc.localDescription.sdp, "streamurl": streamurl,
                           "tid": "t1"}).encode()
        response = await _http(urllib.request.Request(url, data=body, method="POST"))
        reply = json.loads(response.read())
        print("CODE", reply["code"], "SESSION", reply.get("sessionid"), flush=True)
        answer, location = reply["sdp"], None
    else:
        request = urllib.request.Request(url, data=pc.localDescription.sdp.encode(), method="POST",
                                         headers={"Content-Type": "application/sdp"})
        response = await _http(request)
        answer = response.read().decode()
        location = urljoin(url, response.headers["Location"])
        print("STATUS", response.status, response.headers["Content-Type"], flush=True)
        print("LOCATION", location, flush=True)
    if rewrite is not None:
        answer = await rewrite(answer)
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await asyncio.wait_for(pc.connected.wait(), 30)
    print("CONNECTED", flush=True)
    return location


async def delete(location: str | None) -> None:
    if location is None:
        return
    result = await _http(urllib.request.Request(location, method="DELETE"))
    print("DELETE", result.status, flush=True)
