"""Twisted adapters of the GB28181 caster: SIP and media, each over TCP and UDP.

They only frame bytes and hand them to the caster (:class:`~.service.GbCaster`):
SIP messages to ``caster.sip_received(peer, msg, transport, addr)``, RTP packets
to ``caster.media_received(peer, data, transport, addr)``.  A TCP peer is its
protocol object, a UDP peer its ``(host, port)``.  A SIP message that does not
parse closes a TCP connection (the stream cannot resync) and drops a datagram;
an RFC 4571 length out of range closes a media connection; both are logged
once each, never raised.
"""

from __future__ import annotations

from twisted.internet import protocol

from ..codec.sip import SipError, SipStreamParser, parse_datagram
from ..log import ContextLogger
from .media import MediaError, Rfc4571Framer

__all__ = ["SipTcpFactory", "SipUdpProtocol", "MediaTcpFactory", "MediaUdpProtocol"]


def _addr(address) -> str:
    return "%s:%d" % (address.host, address.port)


class SipTcpProtocol(protocol.Protocol):
    def connectionMade(self) -> None:
        self.caster = self.factory.caster
        self.parser = SipStreamParser()
        self.addr = _addr(self.transport.getPeer())

    def dataReceived(self, data: bytes) -> None:
        try:
            messages = self.parser.feed(data)
        except SipError as e:
            self.caster.log.warn(f"GB SIP tcp {self.addr}: {e}; closing")
            self.caster.sip_errors += 1
            self.transport.loseConnection()
            return
        for msg in messages:
            self.caster.sip_received(self, msg, "TCP", self.addr)

    def send(self, data: bytes) -> None:
        self.transport.write(data)


class _CasterFactory(protocol.ServerFactory):
    def __init__(self, caster) -> None:
        self.caster = caster


class SipTcpFactory(_CasterFactory):
    protocol = SipTcpProtocol


class _CasterDatagram(protocol.DatagramProtocol):
    def __init__(self, caster) -> None:
        self.caster = caster


class SipUdpProtocol(_CasterDatagram):
    def datagramReceived(self, data: bytes, addr) -> None:
        if data.strip(b"\r\n\x00") == b"":
            return  # a keep-alive
        try:
            msg = parse_datagram(data)
        except SipError as e:
            self.caster.sip_errors += 1
            if self.caster.sip_errors <= 10 or self.caster.sip_errors % 1000 == 0:
                self.caster.log.warn(f"GB SIP udp {addr[0]}:{addr[1]}: {e}; dropped "
                                     f"({self.caster.sip_errors} bad messages so far)")
            return
        self.caster.sip_received(addr, msg, "UDP", "%s:%d" % addr)

    def send_to(self, addr, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data, addr)


class MediaTcpProtocol(protocol.Protocol):
    def connectionMade(self) -> None:
        self.caster = self.factory.caster
        self.framer = Rfc4571Framer()
        self.addr = _addr(self.transport.getPeer())
        self.session = None

    def dataReceived(self, data: bytes) -> None:
        try:
            packets = self.framer.feed(data)
        except MediaError as e:
            self.caster.log.warn(f"GB media tcp {self.addr}: {e}; closing")
            self.transport.loseConnection()
            self.framer = Rfc4571Framer()
            return
        for pkt in packets:
            if not self.caster.media_received(self, pkt, "tcp", self.addr):
                self.transport.loseConnection()
                return

    def close(self, reason: str) -> None:
        ContextLogger(self.session.log.cid if self.session else None).trace(
            f"GB media tcp {self.addr} closed: {reason}")
        self.transport.loseConnection()

    def connectionLost(self, reason=None) -> None:
        self.caster.media_lost(self)


class MediaTcpFactory(_CasterFactory):
    protocol = MediaTcpProtocol


class MediaUdpProtocol(_CasterDatagram):
    def datagramReceived(self, data: bytes, addr) -> None:
        self.caster.media_received(addr, data, "udp", "%s:%d" % addr)
