#!/usr/bin/env python3
"""What DTLS handshakes and SRTP cost in srs_twisted/rtc/ (issue 10), in memory, no sockets.

Handshakes: two of our endpoints (srs_twisted/rtc/dtls.py) shake hands over an
in-memory exchange, N times per certificate kind.  The wall time gives
handshakes/s for the pair; the CPU time spent inside each endpoint's calls
(``time.process_time`` around receive_data/start) splits it by role, i.e. what
one WebRTC session's handshake costs the server as DTLS server (the SDP said
``setup:active``) and as DTLS client (FFmpeg's WHIP, ``setup:passive``).

SRTP: protect and unprotect of 1,200-byte RTP packets (srs_twisted/rtc/srtp.py)
per profile, in packets/s and CPU microseconds per packet.

    python bench/dtls_srtp.py                       # 200 handshakes per kind, 20,000 packets
    python bench/dtls_srtp.py --handshakes 500 --packets 100000
"""

import argparse
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from srs_twisted.rtc.cert import Certificate  # noqa: E402
from srs_twisted.rtc.dtls import (  # noqa: E402
    SRTP_AEAD_AES_128_GCM,
    SRTP_AES128_CM_SHA1_80,
    DtlsContext,
    DtlsEndpoint,
    HandshakeComplete,
)
from srs_twisted.rtc.srtp import SrtpSession  # noqa: E402


def handshake(client: DtlsEndpoint, server: DtlsEndpoint, cpu: dict) -> HandshakeComplete:
    """One handshake; adds each role's CPU seconds to ``cpu``."""
    t = time.process_time()
    client.start(0.0)
    cpu["client"] += time.process_time() - t
    for _ in range(20):
        moved = False
        for name, sender, receiver in (("server", client, server), ("client", server, client)):
            datagrams = sender.data_to_send()
            if not datagrams:
                continue
            moved = True
            t = time.process_time()
            for datagram in datagrams:
                receiver.receive_data(datagram, 0.0)
            cpu[name] += time.process_time() - t
        if not moved:
            break
    event = client.next_event()
    assert isinstance(event, HandshakeComplete), event
    assert isinstance(server.next_event(), HandshakeComplete)
    return event


def bench_handshakes(count: int, ecdsa: bool) -> None:
    a, b = Certificate.generate(ecdsa=ecdsa), Certificate.generate(ecdsa=ecdsa)
    ca, cb = DtlsContext(a), DtlsContext(b)
    cpu = {"client": 0.0, "server": 0.0}
    wall = time.perf_counter()
    for _ in range(count):
        handshake(ca.endpoint(True, b.fingerprint), cb.endpoint(False, a.fingerprint), cpu)
    wall = time.perf_counter() - wall
    kind = "ECDSA P-256" if ecdsa else "RSA 2048"
    print(
        f"{kind:12} {count} handshakes: {count / wall:7.1f} handshakes/s (both ends in one process), "
        f"CPU per handshake: server role {cpu['server'] / count * 1e3:.2f} ms, "
        f"client role {cpu['client'] / count * 1e3:.2f} ms"
    )


def bench_srtp(count: int, profile: str) -> None:
    key_len = 30 if profile == SRTP_AES128_CM_SHA1_80 else 28
    local, remote = os.urandom(key_len), os.urandom(key_len)
    sender, receiver = SrtpSession(profile, local, remote), SrtpSession(profile, remote, local)
    payload = os.urandom(1200)
    packets = [struct.pack("!BBHII", 0x80, 96, seq & 0xFFFF, seq * 3000, 0x1234) + payload for seq in range(count)]
    t = time.process_time()
    protected = [sender.protect_rtp(p) for p in packets]
    protect = time.process_time() - t
    t = time.process_time()
    for p in protected:
        receiver.unprotect_rtp(p)
    unprotect = time.process_time() - t
    assert receiver.stats.dropped == 0
    print(
        f"{profile:24} protect {count / protect:9.0f} pkt/s ({protect / count * 1e6:.2f} us), "
        f"unprotect {count / unprotect:9.0f} pkt/s ({unprotect / count * 1e6:.2f} us), 1,212-byte RTP"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--handshakes", type=int, default=200)
    parser.add_argument("--packets", type=int, default=20000)
    args = parser.parse_args()
    bench_handshakes(args.handshakes, ecdsa=True)
    bench_handshakes(max(1, args.handshakes // 4), ecdsa=False)
    bench_srtp(args.packets, SRTP_AES128_CM_SHA1_80)
    bench_srtp(args.packets, SRTP_AEAD_AES_128_GCM)


if __name__ == "__main__":
    main()
