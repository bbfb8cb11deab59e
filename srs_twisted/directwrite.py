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


def _idle(conn: tcp.Connection) -> bool:
    """Nothing queued in Twisted for this connection, and it is open for writing."""
    return (conn.connected and not conn.disconnecting and not conn._writeDisconnected
            and not conn._tempDataBuffer and conn.offset >= len(conn.dataBuffer))


def direct_writer(transport) -> Callable[[bytes], None]:
    """A ``write(data)`` for ``transport`` that sends at once when it can."""
    conn = plain_tcp(transport)
    if conn is None:
        return transport.write
    send = conn.socket.send
    queue = conn.write

    def write(data: bytes) -> None:
        if not _idle(conn):
            queue(data)
            return
        try:
            sent = send(data)
        except OSError:
            # EAGAIN: Twisted sends it when writable; anything else (reset, broken pipe):
            # Twisted's own send meets the same error and closes the connection as usual.
            sent = 0
        if sent < len(data):
            queue(data[sent:] if sent else data)

    return write


def response_writer(request) -> Callable[[bytes], None]:
    """``request.write`` for a live HTTP response (twisted.web), direct once the headers
    are out.  With ``Transfer-Encoding: chunked`` (HTTP/1.1) each body chunk is framed
    once for all players: the live core hands players in step the same bytes object,
    so the framed copy made for the first serves the others (one ``send`` each)."""
    fast = None

    def write(data: bytes) -> None:
        nonlocal fast
        if fast is None:
            if not request.startedWriting or request.finished or request._disconnected:
                request.write(data)
                return
            fast = _body_writer(request)
        fast(data)

    return write


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


def _body_writer(request) -> Callable[[bytes], None]:
    if request.method == b"HEAD" or plain_tcp(request.channel.transport) is None:
        return request.write
    send = direct_writer(request.channel.transport)
    chunked = request.chunked

    def write(data: bytes) -> None:
        if request.finished or request._disconnected:
            request.write(data)  # as twisted.web: nothing sent, an error if finished
            return
        request.sentLength += len(data)
        if data:
            send(chunk_of(data) if chunked else data)

    return write
