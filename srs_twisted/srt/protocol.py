"""The SRT listener on a UDP port: a thin Twisted adapter over :mod:`.handshake` and :mod:`.connection`.

:class:`SrtUdpProtocol` routes each datagram by its destination socket id: 0 goes to the
:class:`~.handshake.SrtListener` (inductions are answered without state; a good
conclusion makes a connection), any other id to its connection, and only when it comes
from the address that connection was made with (anything else is dropped).  One timer
ticks every connection each 10 ms.  What a connection delivers or how it ends goes to
the session object the ``on_accept`` callback returned (``delivered(payloads)``,
``closed(reason)``); sessions send with :meth:`SrtUdpProtocol.send`.

Bounds: at most ``max_connections`` connections (more callers are refused with
libsrt's "backlog exceeded"); garbage is dropped and counted, never answered.
"""

from __future__ import annotations

import errno
import struct

from twisted.internet import protocol, task

from ..log import ContextLogger
from .connection import Closed, Delivered
from .handshake import Accepted, Rejected, SrtListener
from .packet import REJ_BACKLOG, SrtError, dest_socket_id

__all__ = ["SrtUdpProtocol", "TICK", "PAYLOAD_SIZE"]

TICK = 0.01  # seconds
SOL_UDP = 17
UDP_SEGMENT = 103  # linux/udp.h
GSO_MAX_SEGMENTS = 40  # 40 x 1332 bytes stays under 64 KB
_GSO_SIZE = struct.Struct("=H")
PAYLOAD_SIZE = 1316  # 7 TS packets, as every SRT encoder sends


class _Entry:
    __slots__ = ("conn", "addr", "session")

    def __init__(self, conn, addr, session) -> None:
        self.conn, self.addr, self.session = conn, addr, session


class SrtUdpProtocol(protocol.DatagramProtocol):
    def __init__(self, clock, listener: SrtListener, on_accept, max_connections: int = 1000) -> None:
        self.clock = clock
        self.listener = listener
        self.on_accept = on_accept  # (connection, addr, Accepted) -> session or None (refused)
        self.max_connections = max_connections
        self.log = ContextLogger()
        self.by_id: dict[int, _Entry] = {}
        self.by_peer: dict[tuple, _Entry] = {}
        self.dropped = 0
        self.rejected = 0
        self.gso = True  # UDP generic segmentation offload for runs of data packets (Linux)
        self._loop = None

    def now(self) -> int:
        return int(self.clock.seconds() * 1_000_000)

    # --- life ---

    def startProtocol(self) -> None:
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = self.clock
        self._loop.start(TICK, now=False)

    def stopProtocol(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        for entry in list(self.by_id.values()):
            self._end(entry, "the server stopped", send=False)

    def close_all(self, reason: str) -> None:
        """Shut every connection down (SHUTDOWN to each peer)."""
        for entry in list(self.by_id.values()):
            entry.conn.close(reason, self.now())
            self._flush(entry)

    # --- datagrams ---

    def datagramReceived(self, data: bytes, addr) -> None:
        try:
            dest = dest_socket_id(data)
        except SrtError:
            self.dropped += 1
            return
        now = self.now()
        if dest == 0:
            self._handshake(data, addr, now)
            return
        entry = self.by_id.get(dest)
        if entry is None or entry.addr != addr:
            self.dropped += 1
            return
        entry.conn.datagram_received(data, now)
        self._flush(entry)

    def _existing(self, addr, peer_id):
        entry = self.by_peer.get((addr, peer_id))
        return entry.conn.repeated_handshake(self.now()) if entry is not None else None

    def _handshake(self, data: bytes, addr, now: int) -> None:
        try:
            result = self.listener.handshake(data, addr, now, existing=self._existing,
                                             full=len(self.by_id) >= self.max_connections)
        except SrtError:
            self.dropped += 1
            return
        if result is None:
            return
        if isinstance(result, bytes):
            self.transport.write(result, addr)
            return
        if isinstance(result, Rejected):
            self.rejected += 1
            if result.reason != REJ_BACKLOG or self.rejected % 100 == 1:
                self.log.warn(f"SRT caller {addr[0]}:{addr[1]} refused: {result.message}")
            self.transport.write(result.response, addr)
            return
        assert isinstance(result, Accepted)
        conn = result.connection(now)
        entry = _Entry(conn, addr, None)
        self.by_id[conn.local_id] = entry
        self.by_peer[(addr, conn.peer_id)] = entry
        self.transport.write(result.response, addr)
        try:
            entry.session = self.on_accept(conn, addr, result)
        except Exception as e:  # a session that cannot start ends its connection, not the port
            self.log.error(f"SRT session from {addr[0]}:{addr[1]} failed to start: {e!r}")
            entry.session = None
        if entry.session is None:
            conn.close("refused", now)
        self._flush(entry)

    # --- output and timers ---

    def send(self, conn, payloads, now: int | None = None) -> None:
        """Send messages (each at most :data:`PAYLOAD_SIZE` bytes) on ``conn``."""
        entry = self.by_id.get(conn.local_id)
        if entry is None or conn.closed:
            return
        now = self.now() if now is None else now
        for payload in payloads:
            conn.send(payload, now)
        self._flush(entry)

    def close(self, conn, reason: str) -> None:
        entry = self.by_id.get(conn.local_id)
        if entry is not None:
            conn.close(reason, self.now())
            self._flush(entry)

    def _flush(self, entry: _Entry) -> None:
        conn = entry.conn
        out = conn.datagrams_to_send()
        if out and self.transport is not None:
            # The port's socket directly when there is one: Port.write checks the address
            # text of every datagram, a large share of the cost of a fan-out.
            sock = getattr(self.transport, "socket", None)
            if sock is None:
                self._write_each(self.transport.write, out, entry.addr)
            elif self.gso and len(out) > 1:
                self._write_gso(sock, out, entry.addr)
            else:
                self._write_each(sock.sendto, out, entry.addr)
        events = conn.events()
        if not events:
            return
        payloads = [e.payload for e in events if type(e) is Delivered]
        session = entry.session
        if payloads and session is not None:
            session.delivered(payloads)
        for e in events:
            if type(e) is Closed:
                self._end(entry, e.reason)

    @staticmethod
    def _write_each(write, out: list, addr) -> None:
        for data in out:
            try:
                write(data, addr)
            except OSError:  # a full socket buffer: SRT retransmits what matters
                break

    def _write_gso(self, sock, out: list, addr) -> None:
        """Runs of datagrams of one size (full data packets; the last of a run may be
        shorter) in one ``sendmsg`` with UDP generic segmentation offload (Linux >= 4.18):
        the kernel cuts them, one system call instead of one per datagram."""
        i, n = 0, len(out)
        while i < n:
            size = len(out[i])
            j = i + 1
            while j < n and j - i < GSO_MAX_SEGMENTS and len(out[j]) == size:
                j += 1
            if j < n and j - i < GSO_MAX_SEGMENTS and len(out[j]) < size:
                j += 1  # a shorter last segment is allowed
            try:
                if j - i == 1:
                    sock.sendto(out[i], addr)
                else:
                    sock.sendmsg([b"".join(out[i:j])], [(SOL_UDP, UDP_SEGMENT, _GSO_SIZE.pack(size))], 0, addr)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in (errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP):
                    self.gso = False  # no UDP GSO here: one datagram per call from now on
                    self.log.warn(f"SRT: UDP segmentation offload unavailable ({e}); one send per datagram")
                    self._write_each(sock.sendto, out[i:], addr)
                return
            i = j

    def _end(self, entry: _Entry, reason: str, send: bool = True) -> None:
        conn = entry.conn
        if self.by_id.pop(conn.local_id, None) is None:
            return
        self.by_peer.pop((entry.addr, conn.peer_id), None)
        if not conn.closed:
            conn.close(reason, self.now())
            if send:
                self._flush_out(entry)
        if entry.session is not None:
            entry.session.closed(reason)

    def _flush_out(self, entry: _Entry) -> None:
        for data in entry.conn.datagrams_to_send():
            try:
                self.transport.write(data, entry.addr)
            except OSError:
                break

    def _tick(self) -> None:
        now = self.now()
        for entry in list(self.by_id.values()):
            entry.conn.tick(now)
            self._flush(entry)
