"""Exceptions raised by the sans-I/O RTMP layer.

Every problem caused by bytes coming from a peer is reported as a subclass of
:class:`RtmpError`, so adapters can catch one type, log it and drop the
connection.  Programming mistakes on our own side (bad arguments to an
encoder) stay ``ValueError``.
"""


class RtmpError(Exception):
    """The peer sent something that is not valid RTMP."""


class HandshakeError(RtmpError):
    """The C0/C1/C2 (or S0/S1/S2) exchange is invalid."""


class ChunkError(RtmpError):
    """The chunk stream is malformed or exceeds a configured limit."""


class MessageError(RtmpError):
    """A complete message has a payload that cannot be decoded."""
