"""A lean WebRTC endpoint for the benchmarks (issue 10 section 4): no aiortc, no asyncio.

One :class:`LeanPeer` is one WHEP player or WHIP publisher on one non-blocking
UDP socket: it writes its own offer (H.264 + Opus, its ICE ufrag/pwd, the
fingerprint of the process's certificate), POSTs it, reads the answer, sends
ICE checks (STUN Binding with USE-CANDIDATE, ICE-CONTROLLING,
MESSAGE-INTEGRITY and FINGERPRINT) to the answer's first UDP candidate, runs
DTLS in the role the answer's ``a=setup`` leaves it, and then holds an SRTP
session.  The building blocks are the server's own sans-I/O pieces
(``codec/stun.py``, ``codec/sdp.py``, ``rtc/cert.py``, ``rtc/dtls.py``,
``rtc/srtp.py``): that is fine for a load tool, and the same client drives
SRS, so a shared bug would show up there as a failure.

The event loop is the caller's (``rtc_load.py``, ``rtc_publish.py``): they
own the sockets' epoll and feed :meth:`LeanPeer.on_datagram`.
"""

from __future__ import annotations

import http.client
import os
import secrets
import socket
import struct
import sys
import time
from urllib.parse import urljoin, urlsplit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from srs_twisted.codec import sdp as sdplib  # noqa: E402
from srs_twisted.codec import stun  # noqa: E402
from srs_twisted.rtc.cert import Certificate  # noqa: E402
from srs_twisted.rtc.dtls import (SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_SHA1_80, DtlsContext, Error,  # noqa: E402
                                  HandshakeComplete)
from srs_twisted.rtc.srtp import SrtpSession  # noqa: E402

__all__ = ["LeanPeer", "make_context", "offer", "post_offer", "H264_PT", "OPUS_PT", "TWCC_URI"]

H264_PT = 102
OPUS_PT = 111
TWCC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; Python names it only on some builds
SRTP_CHOICES = {"any": None, "gcm": (SRTP_AEAD_AES_128_GCM,), "cm": (SRTP_AES128_CM_SHA1_80,)}
STUN_INTERVAL = 5.0  # consent checks while playing (both servers time out silent sessions after 30 s)


def make_context(profiles=None) -> DtlsContext:
    """One certificate and DTLS context for the whole process (its fingerprint goes in every offer)."""
    cert = Certificate.generate(ecdsa=True)
    return DtlsContext(cert, srtp_profiles=profiles) if profiles else DtlsContext(cert)


def offer(ufrag: str, pwd: str, fingerprint: str, *, publish: bool, twcc: bool = True, setup: str = "actpass",
          ssrcs=(0, 0), cname: str = "lean") -> str:
    """A browser-like BUNDLE offer: audio (Opus 48000/2) then video (H.264
    42e01f, packetization-mode 1, NACK/PLI); recvonly for a player, sendonly
    with SSRCs for a publisher; the transport-cc extension when ``twcc``."""
    direction = "sendonly" if publish else "recvonly"
    lines = [
        "v=0", f"o=- {secrets.randbits(62)} 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
        "a=group:BUNDLE 0 1", "a=extmap-allow-mixed", "a=msid-semantic: WMS lean",
    ]
    common = [
        "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0", f"a=ice-ufrag:{ufrag}", f"a=ice-pwd:{pwd}",
        "a=ice-options:trickle", f"a=fingerprint:{fingerprint}", f"a=setup:{setup}",
    ]
    for mid, (kind, pt, rtpmap, fb, fmtp) in enumerate((
            ("audio", OPUS_PT, "opus/48000/2", ["transport-cc"], "minptime=10;useinbandfec=1"),
            ("video", H264_PT, "H264/90000", ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"],
             "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"))):
        lines.append(f"m={kind} 9 UDP/TLS/RTP/SAVPF {pt}")
        lines.extend(common)
        lines.append(f"a=mid:{mid}")
        if twcc:
            lines.append(f"a=extmap:3 {TWCC_URI}")
        lines.extend([f"a={direction}", "a=rtcp-mux"])
        if kind == "video":
            lines.append("a=rtcp-rsize")
        lines.append(f"a=rtpmap:{pt} {rtpmap}")
        lines.extend(f"a=rtcp-fb:{pt} {f}" for f in fb if twcc or f != "transport-cc")
        lines.append(f"a=fmtp:{pt} {fmtp}")
        if publish:
            ssrc = ssrcs[mid]
            lines.append(f"a=msid:lean {kind}")
            lines.append(f"a=ssrc:{ssrc} cname:{cname}")
            lines.append(f"a=ssrc:{ssrc} msid:lean {kind}")
    return "\r\n".join(lines) + "\r\n"


def post_offer(url: str, body: str, timeout: float = 20.0):
    """POST an SDP offer (WHIP/WHEP): ``(status, answer text, absolute Location or None)``."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        path = parts.path + ("?" + parts.query if parts.query else "")
        conn.request("POST", path, body=body.encode(), headers={"Content-Type": "application/sdp"})
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        location = response.getheader("Location")
        return response.status, text, urljoin(url, location) if location else None
    finally:
        conn.close()


def delete(location: str | None, timeout: float = 5.0) -> None:
    if not location:
        return
    parts = urlsplit(location)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.request("DELETE", parts.path + ("?" + parts.query if parts.query else ""))
        conn.getresponse().read()
    except OSError:
        pass
    finally:
        conn.close()


class LeanPeer:
    """ICE + DTLS + SRTP of one session on one socket (see the module docstring).

    States: ``new`` -> ``ice`` (checks sent) -> ``dtls`` -> ``up`` (SRTP keys), or ``failed``.
    """

    def __init__(self, context: DtlsContext, *, publish: bool = False, twcc: bool = True,
                 timestamps: bool = False, ssrcs=(0, 0)) -> None:
        self.context = context
        self.publish = publish
        self.twcc = twcc
        self.ufrag = secrets.token_hex(4)
        self.pwd = secrets.token_hex(16)
        self.ssrcs = ssrcs
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        if timestamps:  # kernel receive time of each datagram (CLOCK_REALTIME), for latency
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.fd = self.sock.fileno()
        self.state = "new"
        self.error = ""
        self.location = None
        self.remote = None
        self.remote_ufrag = self.remote_pwd = ""
        self.dtls = None
        self.srtp: SrtpSession | None = None
        self.answer = None
        self.t_post = self.t_answer = self.t_ice = self.t_up = 0.0
        self._tid = b""
        self._next_check = 0.0

    # ---- signalling ------------------------------------------------------------------
    def offer(self) -> str:
        return offer(self.ufrag, self.pwd, self.context.certificate.fingerprint, publish=self.publish,
                     twcc=self.twcc, ssrcs=self.ssrcs)

    def signal(self, url: str) -> bool:
        """POST the offer and apply the answer; False (``error`` set) when refused."""
        self.t_post = time.monotonic()
        try:
            status, text, self.location = post_offer(url, self.offer())
        except OSError as e:
            return self._fail(f"POST: {e}")
        self.t_answer = time.monotonic()
        if status not in (200, 201):
            return self._fail(f"POST {status}: {text[:200]}")
        try:
            self.answer = desc = sdplib.parse(text)
        except sdplib.SdpError as e:
            return self._fail(f"answer: {e}")
        media = desc.media[0]
        self.remote_ufrag = media.ice_ufrag or desc.ice_ufrag
        self.remote_pwd = media.ice_pwd or desc.ice_pwd
        fingerprints = [str(f) for f in (media.fingerprints or desc.fingerprints)]
        setup = media.setup or desc.setup or "active"
        udp = [c for m in desc.media for c in m.candidates if c.transport.lower() == "udp"]
        if not udp or not fingerprints:
            return self._fail("answer without a UDP candidate or a fingerprint")
        self.remote = (udp[0].host, udp[0].port)
        # The answer's active means the server connects: we are the DTLS server.
        self.dtls = self.context.endpoint(setup != "active", fingerprints)
        self.state = "ice"
        return True

    def ssrc_of(self, kind: str):
        for m in self.answer.media:
            if m.kind == kind and m.ssrcs:
                return m.ssrcs[0].ssrc
        return None

    # ---- time and datagrams ------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Send an ICE check when due (every 0.5 s until the answer, then every STUN_INTERVAL)."""
        if self.state in ("new", "failed") or self.remote is None:
            return
        if now >= self._next_check:
            self._tid = os.urandom(12)
            request = stun.binding_request(f"{self.remote_ufrag}:{self.ufrag}", self.remote_pwd,
                                           priority=2130706431, controlling=secrets.randbits(63),
                                           use_candidate=True, transaction_id=self._tid)
            self.send(request)
            self._next_check = now + (STUN_INTERVAL if self.state == "up" else 0.5)
        if self.dtls is not None and self.state == "dtls":
            deadline = self.dtls.next_timeout()
            if deadline is not None and now >= deadline:
                self.dtls.handle_timeout(now)
                self._pump(now)

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendto(data, self.remote)
        except (BlockingIOError, OSError):
            pass

    def on_control(self, data: bytes, now: float) -> None:
        """A STUN or DTLS datagram (the caller handles RTP/RTCP itself once ``up``)."""
        first = data[0]
        if first <= 3:
            try:
                message = stun.parse(data)
            except stun.StunError:
                return
            if message.msg_class == stun.SUCCESS and message.transaction_id == self._tid and self.state == "ice":
                self.t_ice = now
                self.state = "dtls"
                self.dtls.start(now)
                self._pump(now)
            elif message.msg_class == stun.REQUEST:
                # A full-ICE server (not ICE-lite) checks us too: answer it.
                self.send(stun.binding_success(message, self.sock.getsockname(), self.pwd))
        elif 20 <= first <= 63 and self.dtls is not None:
            if self.state == "ice":  # a DTLS client server may beat our STUN response
                self.state = "dtls"
            self.dtls.receive_data(data, now)
            self._pump(now)

    def _pump(self, now: float) -> None:
        for datagram in self.dtls.data_to_send():
            self.send(datagram)
        while True:
            event = self.dtls.next_event()
            if event is None:
                return
            if isinstance(event, HandshakeComplete) and self.state != "up":
                self.srtp = SrtpSession.from_handshake(event)
                self.state = "up"
                self.t_up = time.monotonic()
                self.profile = event.srtp_profile
            elif isinstance(event, Error):
                self._fail(f"DTLS: {event.message}")

    def _fail(self, message: str) -> bool:
        self.state = "failed"
        self.error = message
        return False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# RTP header helpers shared by the load client and the publisher.
_HDR = struct.Struct("!BBHII")


def rtp_header_len(data) -> int:
    """Fixed header + CSRCs + extension block length of an RTP packet."""
    b0 = data[0]
    n = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10 and len(data) >= n + 4:
        n += 4 + 4 * ((data[n + 2] << 8) | data[n + 3])
    return n
