"""Two DTLS endpoints joined by an in-memory datagram link on a fake clock (no sockets, no sleeps)."""

from __future__ import annotations

from typing import Callable

from srs_twisted.rtc.cert import Certificate
from srs_twisted.rtc.dtls import DtlsContext, DtlsEndpoint

# Generating keys costs milliseconds (RSA far more): make each kind once per test run.
_CERTS: dict[tuple[bool, int], Certificate] = {}


def certificate(ecdsa: bool = True, which: int = 0) -> Certificate:
    if (ecdsa, which) not in _CERTS:
        _CERTS[ecdsa, which] = Certificate.generate(ecdsa=ecdsa)
    return _CERTS[ecdsa, which]


# A filter sees (sender, flight, index, datagram) and returns the datagrams to deliver:
# [] drops it, [d, d] duplicates it, [changed] corrupts it.
Filter = Callable[[str, int, int, bytes], list]


class Link:
    """Endpoint "client" and endpoint "server", delivering each side's output to the other.

    Output is collected in batches ("flights": whatever one side sent since the
    other last delivered to it); ``reorder`` delivers each batch backwards.
    When nothing is in flight, the clock jumps to the earliest retransmission
    deadline.
    """

    def __init__(
        self,
        client_cert: Certificate | None = None,
        server_cert: Certificate | None = None,
        client_expects: str | None = None,
        server_expects: str | None = None,
        client_context: dict | None = None,
        server_context: dict | None = None,
        **options,
    ) -> None:
        client_cert = client_cert or certificate(True, 0)
        server_cert = server_cert or certificate(True, 1)
        self.now = 1000.0
        self.client: DtlsEndpoint = DtlsContext(client_cert, **(client_context or {})).endpoint(
            True, client_expects or server_cert.fingerprint, **options
        )
        self.server: DtlsEndpoint = DtlsContext(server_cert, **(server_context or {})).endpoint(
            False, server_expects or client_cert.fingerprint, **options
        )
        self.events: dict[str, list] = {"client": [], "server": []}
        self.flights = {"client": 0, "server": 0}
        self.sent: dict[str, list[list[bytes]]] = {"client": [], "server": []}
        self.client.start(self.now)

    def endpoint(self, name: str) -> DtlsEndpoint:
        return self.client if name == "client" else self.server

    def collect_events(self) -> None:
        for name in ("client", "server"):
            endpoint = self.endpoint(name)
            while (event := endpoint.next_event()) is not None:
                self.events[name].append(event)

    def exchange(self, keep: Filter | None = None, reorder: bool = False) -> bool:
        """Deliver one batch each way; False when neither side had anything to send."""
        moved = False
        for sender, receiver in (("client", "server"), ("server", "client")):
            batch = self.endpoint(sender).data_to_send()
            if not batch:
                continue
            moved = True
            self.sent[sender].append(batch)
            flight = self.flights[sender]
            self.flights[sender] += 1
            delivered = []
            for index, datagram in enumerate(batch):
                delivered.extend(keep(sender, flight, index, datagram) if keep else [datagram])
            for datagram in reversed(delivered) if reorder else delivered:
                self.endpoint(receiver).receive_data(datagram, self.now)
        self.collect_events()
        return moved

    def tick(self) -> bool:
        """Advance the clock to the next deadline and fire it; False when no timer is armed."""
        deadlines = [d for d in (self.client.next_timeout(), self.server.next_timeout()) if d is not None]
        if not deadlines:
            return False
        self.now = max(self.now, min(deadlines))
        self.client.handle_timeout(self.now)
        self.server.handle_timeout(self.now)
        self.collect_events()
        return True

    def run(self, keep: Filter | None = None, reorder: bool = False, steps: int = 200) -> None:
        """Exchange (and time out) until both sides settle; bounded."""
        for _ in range(steps):
            if self.exchange(keep, reorder):
                continue
            if self.settled() or not self.tick():
                return
        raise AssertionError(f"no settlement after {steps} steps: {self.client.state}/{self.server.state}")

    def settled(self) -> bool:
        return all(e.state != DtlsEndpoint.HANDSHAKING for e in (self.client, self.server))

    def only(self, name: str, kind: type):
        found = [e for e in self.events[name] if isinstance(e, kind)]
        assert len(found) == 1, f"{name}: expected one {kind.__name__}, got {self.events[name]!r}"
        return found[0]
