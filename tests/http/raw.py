"""Exact request bytes into a Twisted site over a StringTransport, and the
response bytes parsed back: what a test needs when a client library would
rewrite the request line (percent-encodings, dot segments, odd methods)."""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet import _producer_helpers
from twisted.internet.task import Clock, Cooperator
from twisted.internet.testing import StringTransport


@dataclass
class RawResponse:
    status: int
    reason: bytes
    headers: dict = field(default_factory=dict)  # lower-case name -> [values]
    body: bytes = b""
    complete: bool = True

    def header(self, name: str):
        values = self.headers.get(name.lower())
        return values[0] if values else None


def parse(data: bytes) -> RawResponse:
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError(f"no complete response head in {data[:200]!r}")
    lines = head.decode("latin-1").split("\r\n")
    _, status, reason = (lines[0].split(" ", 2) + [""])[:3]
    headers: dict = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    response = RawResponse(int(status), reason.encode("latin-1"), headers)
    if headers.get("transfer-encoding") == ["chunked"]:
        body, complete = b"", False
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                complete = True
                break
            body, rest = body + rest[:size], rest[size + 2 :]
        response.body, response.complete = body, complete
    else:
        response.body = rest
    return response


class _Scheduler:
    """Runs a cooperator's steps on demand (static files are pull producers)."""

    def __init__(self) -> None:
        self.pending: list = []

    def __call__(self, step):
        self.pending.append(step)
        return _Scheduled(self, step)

    def run(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            if not self.pending:
                return
            self.pending.pop(0)()
        raise AssertionError("a producer never finished")


class _Scheduled:
    def __init__(self, scheduler: _Scheduler, step) -> None:
        self.scheduler, self.step = scheduler, step

    def cancel(self) -> None:
        if self.step in self.scheduler.pending:
            self.scheduler.pending.remove(self.step)


def request(site, method: str, target: bytes, headers: dict | None = None, body: bytes = b""):
    """Send one request; return (response, transport, protocol).  The
    connection stays open, so a streaming response can be read on."""
    protocol = site.buildProtocol(None)
    protocol.callLater = Clock().callLater  # its idle timeout never fires in a test
    transport = StringTransport()
    protocol.makeConnection(transport)
    headers = dict(headers or {})
    headers.setdefault("Host", "127.0.0.1:8080")
    lines = [method.encode() + b" " + target + b" HTTP/1.1"]
    for name, value in headers.items():
        lines.append(f"{name}: {value}".encode("latin-1"))
    if body:
        lines.append(b"Content-Length: %d" % len(body))
    scheduler = _Scheduler()
    cooperator = Cooperator(terminationPredicateFactory=lambda: (lambda: False), scheduler=scheduler)
    real = _producer_helpers.cooperate
    _producer_helpers.cooperate = cooperator.cooperate
    try:
        protocol.dataReceived(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        scheduler.run()
    finally:
        _producer_helpers.cooperate = real
    data = transport.value()
    return (parse(data) if data else None), transport, protocol
