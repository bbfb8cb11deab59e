"""The UDP port every WebRTC session shares (``rtc_server.listen``): a thin adapter.

It is also the hub of WebRTC over TCP: each :class:`~.tcp.RtcTcpProtocol`
connection hands its RFC 4571 frames to :meth:`RtcUdpProtocol.receive` with the
address ``(host, port, connection)``, and what is sent to such an address is
written framed on that connection instead of the UDP socket.

Datagrams go to the sans-I/O :class:`~.session.SessionTable` with the reactor's
time; its :class:`~.session.Send` events are written back, the rest are handed
to the session's owner (a peer such as :class:`~.publisher.RtcPublishPeer`),
which answers through :meth:`RtcUdpProtocol.send`.  A periodic tick
(:data:`TICK`) ends silent sessions and drives every peer's timers (DTLS
retransmission, PLI).
"""

from __future__ import annotations

import errno
import socket
import struct
import traceback

from twisted.internet import protocol, task

from ..log import ContextLogger
from .session import AddressChanged, DtlsIn, RtcpIn, RtpIn, Send, SessionTable, SessionTimeout

__all__ = ["RtcUdpProtocol", "TICK"]

# UDP GSO (Linux >= 4.18): one sendmsg carries a run of datagrams of one size (the last may be shorter),
# which the kernel splits; the receiver sees ordinary datagrams.
SOL_UDP = getattr(socket, "SOL_UDP", 17)
UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
GSO_MAX_SEGMENTS = 64
GSO_MAX_BYTES = 65000
_SEGMENT = struct.Struct("=H")
_NO_GSO = (errno.EINVAL, errno.EIO, errno.ENOPROTOOPT, errno.EOPNOTSUPP)

TICK = 0.1  # seconds between timer checks: DTLS retransmissions are >= 1 s apart


class RtcUdpProtocol(protocol.DatagramProtocol):
    """One UDP socket, every session (see the module docstring).

    A peer (``IceSession.owner``) has ``address_changed(now)``, ``dtls_in(data, now)``,
    ``rtp_in(data, now)``, ``rtcp_in(data, now)``, ``tick(now)`` and ``closed(reason)``.
    """

    def __init__(self, clock, table: SessionTable | None = None, gso: bool = True) -> None:
        self.clock = clock
        self.table = table or SessionTable()
        self.log = ContextLogger()
        self.sent_bytes = 0
        self.recv_bytes = 0
        self.gso = gso  # batch a session's datagrams with UDP GSO where the kernel takes it
        self._ticker: task.LoopingCall | None = None

    # --- life ---

    def startProtocol(self) -> None:
        self._ticker = task.LoopingCall(self.tick)
        self._ticker.clock = self.clock
        self._ticker.start(TICK, now=False)

    def stopProtocol(self) -> None:
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()
        self._ticker = None
        for session in list(self.table):
            self.remove(session, "the RTC port closed")

    # --- sessions ---

    def add(self, answer, peer, stun_timeout: float, strict_check: bool = False):
        """Register the ICE-lite session of an answer, owned by ``peer``."""
        session = self.table.add(answer.local_ufrag, answer.local_pwd, answer.remote_ufrag,
                                 self.clock.seconds(), stun_timeout, peer, strict_check)
        peer.session = session
        return session

    def remove(self, session, reason: str) -> None:
        """End a session (DELETE, kick, failure); its peer hears ``closed``."""
        if session.closed:
            return
        self.table.remove(session)
        if session.owner is not None:
            session.owner.closed(reason)

    def send(self, session, datagrams) -> None:
        address = session.address
        if address is not None:
            self._write(datagrams, address)

    def _write(self, datagrams, address) -> None:
        if len(address) > 2:  # a TCP connection (rtc/tcp.py): framed on it
            self.sent_bytes += address[2].send_frames(datagrams)
            return
        transport = self.transport
        if transport is None:
            return
        sock = getattr(transport, "socket", None)
        if sock is None:  # not a udp.Port (tests' fake transports)
            for data in datagrams:
                self.sent_bytes += len(data)
                transport.write(data, address[:2])
            return
        # Straight to the socket: udp.Port.write checks the address (isIPAddress) on every call, which
        # cost the fan-out more than the sendto itself.  The address was checked when the session bound
        # it.  As udp.Port.write does, errors are raised (a full buffer: BlockingIOError, an OSError the
        # sender counts) except a refused port (ICMP from a client gone), which is dropped.
        if self.gso and len(datagrams) > 1:
            self._write_gso(sock, datagrams, address)
            return
        sendto = sock.sendto
        for data in datagrams:
            self.sent_bytes += len(data)
            try:
                sendto(data, address)
            except ConnectionRefusedError:
                pass

    def _write_gso(self, sock, datagrams, address) -> None:
        """Send runs of same-size datagrams (a video frame's FU-A packets) with one sendmsg each (UDP GSO);
        a kernel that refuses GSO turns it off and the datagrams go one by one."""
        i, n = 0, len(datagrams)
        while i < n:
            size = len(datagrams[i])
            j, total = i + 1, size
            while j < n and len(datagrams[j]) == size and j - i < GSO_MAX_SEGMENTS and total + size <= GSO_MAX_BYTES:
                total += size
                j += 1
            if j < n and len(datagrams[j]) < size and j - i < GSO_MAX_SEGMENTS and total + size <= GSO_MAX_BYTES:
                total += len(datagrams[j])  # a shorter last segment ends a run
                j += 1
            try:
                if j - i == 1:
                    sock.sendto(datagrams[i], address)
                else:
                    sock.sendmsg([b"".join(datagrams[i:j])], [(SOL_UDP, UDP_SEGMENT, _SEGMENT.pack(size))], 0,
                                 address)
            except ConnectionRefusedError:
                pass
            except OSError as e:
                if e.errno not in _NO_GSO or j - i == 1:
                    raise
                self.gso = False
                self.log.warn(f"RTC: UDP GSO refused ({e}); sending datagrams one by one")
                self._write(datagrams[i:], address)
                return
            self.sent_bytes += total
            i = j

    def drop_address(self, address, reason: str) -> None:
        """A TCP connection closed: its session follows another checked address,
        or ends when it has none left (SRS expires it)."""
        session = self.table.by_address(address)
        if session is None:
            return
        now = self.clock.seconds()
        for event in self.table.forget_address(address):
            if event.address is None:
                self.remove(session, reason)
            elif session.owner is not None:
                session.owner.address_changed(now)

    # --- the socket ---

    def datagramReceived(self, data: bytes, addr) -> None:
        self.receive(data, addr)

    def receive(self, data: bytes, addr) -> None:
        """One datagram (UDP) or frame (TCP, ``addr`` with its connection third)."""
        self.recv_bytes += len(data)
        now = self.clock.seconds()
        for event in self.table.receive_datagram(data, addr, now):
            try:
                self._dispatch(event, now)
            except Exception:  # one session's bug must not stop the others
                self.log.error(f"RTC datagram from {addr[0]}:{addr[1]}: {traceback.format_exc()}")

    def _dispatch(self, event, now: float) -> None:
        if isinstance(event, Send):
            self._write([event.data], event.addr)
            return
        peer = event.session.owner
        if peer is None:
            return
        if isinstance(event, DtlsIn):
            peer.dtls_in(event.data, now)
        elif isinstance(event, RtpIn):
            peer.rtp_in(event.data, now)
        elif isinstance(event, RtcpIn):
            peer.rtcp_in(event.data, now)
        elif isinstance(event, AddressChanged) and event.address is not None:
            peer.address_changed(now)

    def tick(self) -> None:
        now = self.clock.seconds()
        for event in self.table.tick(now):
            if isinstance(event, SessionTimeout) and event.session.owner is not None:
                event.session.owner.closed("stun_timeout: no valid traffic")
        for session in self.table:
            try:
                session.owner.tick(now)
            except Exception:
                self.log.error(f"RTC session tick: {traceback.format_exc()}")
