"""Write-through for live players: media bytes go to the socket at once when nothing
is queued, instead of through Twisted's write buffer.

``transport.write`` appends to the transport's buffer and registers it with the
reactor for writing; on the next turn the reactor sends and unregisters it: two
``epoll_ctl`` calls and a pass through the reactor for every flush of every player.
A live server flushes to thousands of players many times a second, and those players
almost always have room in their socket buffer.  :func:`direct_writer` tries
``send`` first and hands Twisted only what the kernel did not take (and everything
while something is still queued, so the order of bytes never changes); a player
that cannot keep up is still paused and resumed by Twisted's producer logic.

Only plain TCP transports (``twisted.internet.tcp.Connection``, seen through the
connection-counting wrapper of :mod:`srs_twisted.limits`); TLS or anything else
gets its own ``write``.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet import tcp


def plain_tcp(transport) -> tcp.Connection | None:
    """The plain TCP connection under ``transport``, or None (TLS, a test transport...)."""
    from .limits import _Counted

    real = transport.transport if type(transport) is _Counted else transport
    if isinstance(real, tcp.Connection) and not real.TLS and getattr(real, "socket", None) is not None:
        return real
    return None


def direct_writer(transport, counter=None) -> Callable[[bytes], None]:
    """A ``write(data)`` for ``transport`` that sends at once when it can, and adds
    what it is given to ``counter.sent_bytes`` (when a counter is given)."""
    conn = plain_tcp(transport)
    if conn is not None:
        return _writer(conn, counter, None)
    if counter is None:
        return transport.write
    slow = transport.write

    def counted(data: bytes) -> None:
        counter.sent_bytes += len(data)
        slow(data)

    return counted


def response_writer(request) -> Callable[[bytes], None]:
    """``request.write`` for a live HTTP response (twisted.web), direct once the headers
    are out (see :func:`body_writer`)."""
    fast = None

    def write(data: bytes) -> None:
        nonlocal fast
        if fast is None:
            if not request.startedWriting or request.finished or request._disconnected:
                request.write(data)
                return
            fast = body_writer(request) or request.write
        fast(data)

    return write


def body_writer(request, counter=None) -> Callable[[bytes], None] | None:
    """The body ``write(data)`` of a live HTTP response whose headers are out, or None
    when it must stay ``request.write`` (headers not sent, HEAD, TLS...).  With
    ``Transfer-Encoding: chunked`` (HTTP/1.1) each chunk is framed once for all players
    (:func:`chunk_of`).  Counts into ``counter.sent_bytes`` as :func:`direct_writer`."""
    if not request.startedWriting or request.method == b"HEAD":
        return None
    conn = plain_tcp(request.channel.transport)
    return None if conn is None else _writer(conn, counter, request)


# The last chunk framed: (the shared bytes, their chunked form).  Holding the bytes
# keeps their identity from being reused.
_framed: list = [None, b""]


def chunk_of(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk, made once for a run of players sharing it."""
    if data is _framed[0]:
        return _framed[1]
    framed = b"%x\r\n%b\r\n" % (len(data), data)
    _framed[0] = data
    _framed[1] = framed
    return framed


def _writer(conn: tcp.Connection, counter, request) -> Callable[[bytes], None]:
    """The hot path of every player, one Python call per flush: count, (for an HTTP
    body) frame, send at once when nothing is queued, else queue in Twisted."""
    send = conn.socket.send
    queue = conn.write
    framed = _framed
    chunked = request is not None and request.chunked
    slow = request.write if request is not None else None

    def write(data: bytes) -> None:
        size = len(data)
        if counter is not None:
            counter.sent_bytes += size
        if request is not None:
            if request.finished or request._disconnected:
                slow(data)  # as twisted.web: nothing sent, an error if finished
                return
            if not size:
                return
            request.sentLength += size
            if chunked:
                # chunk_of's cache hit, inlined: every player after the first of a group
                data = framed[1] if data is framed[0] else chunk_of(data)
                size = len(data)
        if (conn.connected and not conn.disconnecting and not conn._writeDisconnected
                and not conn._tempDataBuffer and conn.offset >= len(conn.dataBuffer)):
            try:
                sent = send(data)
            except OSError:
                # EAGAIN: Twisted sends it when writable; anything else (reset, broken
                # pipe): Twisted's own send meets the same error and closes as usual.
                sent = 0
            if sent == size:
                return
            if sent:
                data = data[sent:]
        queue(data)

    return write
