"""Errors shared across the server.  Each carries a precise message."""


class SrsError(Exception):
    """Base of the server's own errors."""


class StreamBusy(SrsError):
    """A second publisher for a stream that already has one (SRS refuses it)."""

    def __init__(self, url: str) -> None:
        super().__init__(f"stream {url} is busy: it already has a publisher")
        self.url = url


class InvalidStreamName(SrsError):
    """An app or stream name with characters SRS does not allow."""


class Denied(SrsError):
    """A connect, publish or play refused by policy (hooks, security, vhost)."""


class Overloaded(Denied):
    """A new player refused because the circuit breaker is at its critical level."""
