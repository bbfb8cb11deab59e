"""Exception hierarchy of the sans-I/O codec layer.

Every parser in :mod:`srs_twisted.codec` reports malformed, truncated or
unsupported input by raising a subclass of :class:`CodecError`; no
``IndexError`` or ``struct.error`` is allowed to escape.  ``CodecError`` is a
``ValueError`` so callers that only care about "bad bytes" can catch that.
"""


class CodecError(ValueError):
    """Raised when bytes cannot be parsed or a value cannot be encoded."""
