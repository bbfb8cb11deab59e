"""SRT: every packet and handshake field parser, and a whole listening port
(handshakes, connections, ARQ, the stream id, the MPEG-TS a publisher sends)
driven by datagrams from one peer."""

from __future__ import annotations

import itertools

from twisted.internet.task import Clock

from srs_twisted.codec.errors import CodecError
from srs_twisted.codec.mpegts_demux import TsDemuxer
from srs_twisted.srt import packet as p
from srs_twisted.srt.crypto import accept_kmreq, parse_km
from srs_twisted.srt.handshake import ListenerSettings, SrtListener
from srs_twisted.srt.protocol import SrtUdpProtocol
from srs_twisted.srt.streamid import parse_stream_id

from ..base import datagrams, target

PEER = ("127.0.0.1", 40000)
SECRET = b"fuzz-cookie-secret".ljust(32, b".")
# The listener's clock when seeds were made: a conclusion's cookie is valid for it.
START_US = 1_000_000_000


def deterministic_rand():
    counter = itertools.count(1)
    return lambda n: b"".join(next(counter).to_bytes(4, "big") for _ in range((n + 3) // 4))[:n]


@target("srt_packet", allowed=(p.SrtError,), max_len=1500)
def srt_packet(data: bytes):
    pkt = p.parse_datagram(data)
    if isinstance(pkt, p.ControlPacket):
        cif = pkt.cif
        if pkt.type == p.HANDSHAKE:
            hs = p.Handshake.parse(cif)
            for ext in hs.extensions:
                if ext.type in (p.EXT_HSREQ, p.EXT_HSRSP):
                    p.SrtHs.parse(ext.data)
                elif ext.type == p.EXT_SID:
                    try:
                        parse_stream_id(p.decode_sid(ext.data))
                    except p.SrtError:
                        raise
                    except ValueError:
                        pass  # the service refuses the caller (REJ_PEER)
            bytes(hs)
        elif pkt.type == p.ACK:
            p.Ack.parse(cif)
        elif pkt.type == p.NAK:
            p.decode_loss_list(cif)
        elif pkt.type == p.DROPREQ:
            p.DropRequest.parse(pkt.info, cif)
    return pkt


class _Transport:
    def __init__(self):
        self.sent = 0

    def write(self, data, addr):
        self.sent += 1


class _Publisher:
    """What the SRT service does with a publisher's payloads: MPEG-TS in."""

    def __init__(self, stream_id: str):
        try:
            parse_stream_id(stream_id)
        except ValueError:
            pass
        self.demux = TsDemuxer(max_pes_size=512 * 1024)

    def closed(self, reason):
        self.demux.flush()

    def delivered(self, payloads):
        for payload in payloads:
            try:
                self.demux.feed(payload)
            except CodecError:
                pass


@target("srt_port", max_len=16384)
def srt_port(data: bytes):
    clock = Clock()
    clock.advance(START_US / 1_000_000)
    listener = SrtListener(ListenerSettings(), secret=SECRET, rand=deterministic_rand())
    port = SrtUdpProtocol(clock, listener, lambda conn, addr, accepted: _Publisher(accepted.stream_id),
                          max_connections=4)
    port.transport = _Transport()
    port.startProtocol()
    try:
        for datagram in datagrams(data):
            port.datagramReceived(datagram, PEER)
            clock.advance(0.01)
        clock.advance(1.0)
    finally:
        port.stopProtocol()
    return port.dropped


@target("srt_km", allowed=(p.SrtError,), max_len=512)
def srt_km(data: bytes):
    """The KMREQ extension of an encrypting caller: key material, unwrapped with the passphrase."""
    parse_km(data)
    return accept_kmreq("fuzz-passphrase", 16, data)
