"""ICE-lite sessions on one UDP port: STUN checks, address binding, demultiplexing.

Sans-I/O: :meth:`SessionTable.receive_datagram` takes bytes, the sender's address
and the time, and returns events for the adapter to act on; :meth:`SessionTable.tick`
ends silent sessions.  Nothing here opens sockets, reads a clock or logs.

How a datagram is handled (RFC 7983 first-byte demultiplexing, RFC 8445 ICE-lite):

* STUN Binding request: the USERNAME ``ourufrag:theirufrag`` names the session (by
  our ufrag, then the peer's must match the offer's); FINGERPRINT and
  MESSAGE-INTEGRITY (our ICE password) must verify.  A valid check is answered with
  a Binding success (XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY, FINGERPRINT), refreshes
  the session and binds the sender's address to it.  Until the peer nominates
  (USE-CANDIDATE) the session sends to the latest checked address; afterwards only a
  nominating check moves it, so checks on other candidate pairs do not flip media
  between addresses.  A client that changes address is followed only after such a
  valid check (:class:`AddressChanged`).  Invalid, unknown or malformed STUN is
  dropped and counted, never answered (no reflection, as SRS).
* STUN Binding indication from a bound address: a keepalive (refreshes the session).
* DTLS (20-63) and RTP/RTCP (128-191, RTCP by RFC 5761's payload types 192-223) from a
  bound address go to its session as :class:`DtlsIn`, :class:`RtpIn`, :class:`RtcpIn`
  and refresh it; from any other address they are dropped and counted.

Any valid traffic keeps a session alive; :meth:`SessionTable.tick` ends one silent for
its ``stun_timeout`` seconds (SRS: alive while ``last + timeout > now``) with a
:class:`SessionTimeout`.  A session that never receives a check times out the same way.

Bounds: at most ``max_sessions`` sessions (:class:`SessionError` beyond) and
``max_addresses`` addresses per session (the least recently checked other than the
current one is forgotten); a datagram from an unknown address allocates nothing; the
counters in :attr:`SessionTable.stats` have the fixed names of :data:`COUNTERS`.

Addresses are opaque hashable tuples whose first two items are host and port (what
XOR-MAPPED-ADDRESS reports); an adapter may append items, e.g. a transport tag to
keep a TCP peer (RFC 4571 framing) apart from a UDP one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..codec import stun
from ..codec.rtcp import is_rtcp

__all__ = [
    "SessionTable", "IceSession", "SessionError", "Send", "DtlsIn", "RtpIn", "RtcpIn",
    "AddressChanged", "SessionTimeout", "COUNTERS",
]

#: What :attr:`SessionTable.stats` counts (datagrams unless said otherwise).
COUNTERS = (
    "stun_checks",          # valid Binding requests answered
    "stun_malformed",       # STUN (first byte 0-3) that does not parse
    "stun_ignored",         # parsed STUN that is not a Binding request or indication
    "stun_unknown_ufrag",   # a check for a ufrag no session has
    "stun_rejected",        # a check failing USERNAME, FINGERPRINT, MESSAGE-INTEGRITY or strictness
    "keepalives",           # Binding indications from a bound address
    "unknown_address",      # non-check datagrams from an address no session has
    "unknown_kind",         # a first byte that is neither STUN, DTLS nor RTP/RTCP
    "dtls", "rtp", "rtcp",  # datagrams routed to a session
    "address_changes",      # a session's send address set or moved
    "timeouts",             # sessions ended by tick()
)


class SessionError(ValueError):
    """A session cannot be added: the table is full or the ufrag is taken."""


@dataclass(eq=False)
class IceSession:
    """The ICE-lite state of one session; ``owner`` is for the caller (its connection)."""
    local_ufrag: str
    local_pwd: str
    remote_ufrag: str
    stun_timeout: float
    last_seen: float
    owner: object = None
    strict_check: bool = False          # SRS's stun_strict_check: refuse ICE-CONTROLLED peers
    address: tuple | None = None        # where we send: the selected pair's remote address
    addresses: list = field(default_factory=list)   # every checked address, oldest first
    nominated: bool = False             # a check with USE-CANDIDATE was seen
    closed: bool = False

    @property
    def username(self):
        """SRS's session id, ``ourufrag:theirufrag``."""
        return "%s:%s" % (self.local_ufrag, self.remote_ufrag)

    @property
    def deadline(self):
        return self.last_seen + self.stun_timeout


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``data`` to ``addr`` (a STUN response)."""
    data: bytes
    addr: tuple


@dataclass(frozen=True, slots=True)
class _Routed:
    """A datagram from one of ``session``'s addresses, for its next layer."""
    session: IceSession
    data: bytes


class DtlsIn(_Routed):
    __slots__ = ()


class RtpIn(_Routed):
    __slots__ = ()


class RtcpIn(_Routed):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class AddressChanged:
    """The session now sends to ``address`` (``previous`` None: the first valid
    check, when an active DTLS side starts its handshake, as SRS does; None as
    ``address``: the address went to another session and none is left)."""
    session: IceSession
    address: tuple | None
    previous: tuple | None


@dataclass(frozen=True, slots=True)
class SessionTimeout:
    """The session was silent for its ``stun_timeout`` and is removed."""
    session: IceSession


class SessionTable:
    """Every ICE-lite session of one server, by local ufrag and by peer address."""

    def __init__(self, max_sessions=1000, max_addresses=4, require_fingerprint=True):
        if max_sessions < 1 or max_addresses < 1:
            raise ValueError("max_sessions and max_addresses must be at least 1")
        self.max_sessions = max_sessions
        self.max_addresses = max_addresses
        self.require_fingerprint = require_fingerprint
        self.stats = Counter({name: 0 for name in COUNTERS})
        self._by_ufrag = {}
        self._by_address = {}

    # --- the sessions ---

    def __len__(self):
        return len(self._by_ufrag)

    def __iter__(self):
        return iter(list(self._by_ufrag.values()))

    def get(self, local_ufrag):
        return self._by_ufrag.get(local_ufrag)

    def by_address(self, addr):
        return self._by_address.get(addr)

    @property
    def address_count(self):
        return len(self._by_address)

    def unused_ufrag(self, make, tries=16):
        """A ufrag from ``make()`` no session has (SRS regenerates on a clash)."""
        for _ in range(tries):
            ufrag = make()
            if ufrag not in self._by_ufrag:
                return ufrag
        raise SessionError("no unused ufrag in %d tries" % tries)

    def add(self, local_ufrag, local_pwd, remote_ufrag, now, stun_timeout=30, owner=None,
            strict_check=False) -> IceSession:
        """Register a session answered with ``local_ufrag``/``local_pwd`` for a peer
        whose offer had ``remote_ufrag``; it expires ``stun_timeout`` s after ``now``
        unless a valid check or routed datagram refreshes it."""
        if not local_ufrag or not local_pwd or not remote_ufrag:
            raise SessionError("a session needs our ufrag and pwd and the peer's ufrag")
        if ":" in local_ufrag or ":" in remote_ufrag:
            raise SessionError("ufrags cannot contain ':'")
        if local_ufrag in self._by_ufrag:
            raise SessionError("ufrag %r is in use" % local_ufrag)
        if len(self._by_ufrag) >= self.max_sessions:
            raise SessionError("the table is full (%d sessions)" % self.max_sessions)
        if stun_timeout <= 0:
            raise SessionError("stun_timeout must be positive, not %r" % (stun_timeout,))
        session = IceSession(local_ufrag, local_pwd, remote_ufrag, stun_timeout, now, owner,
                             strict_check)
        self._by_ufrag[local_ufrag] = session
        return session

    def remove(self, session) -> None:
        """Forget a session and its addresses (idempotent)."""
        if self._by_ufrag.get(session.local_ufrag) is session:
            del self._by_ufrag[session.local_ufrag]
        for addr in session.addresses:
            if self._by_address.get(addr) is session:
                del self._by_address[addr]
        session.addresses = []
        session.address = None
        session.closed = True

    def forget_address(self, addr) -> list:
        """``addr`` is gone (its TCP connection closed): the session holding it stops
        using it; an :class:`AddressChanged` when that was where it sent."""
        session = self._by_address.get(addr)
        if session is None:
            return []
        return self._forget(session, addr)

    # --- time ---

    def tick(self, now) -> list:
        """End every session silent for its ``stun_timeout``."""
        expired = [s for s in self._by_ufrag.values() if s.deadline <= now]
        for session in expired:
            self.remove(session)
        self.stats["timeouts"] += len(expired)
        return [SessionTimeout(session) for session in expired]

    def next_deadline(self):
        """When the next session would time out, or None with no sessions."""
        return min((s.deadline for s in self._by_ufrag.values()), default=None)

    # --- datagrams ---

    def receive_datagram(self, data, addr, now) -> list:
        """Handle one datagram from ``addr``; return the events it causes."""
        kind = stun.classify(data)
        if kind == "stun":
            return self._stun(bytes(data), addr, now)
        session = self._by_address.get(addr)
        if kind is None:
            self.stats["unknown_kind"] += 1
            return []
        if session is None:
            self.stats["unknown_address"] += 1
            return []
        session.last_seen = now
        if kind == "dtls":
            self.stats["dtls"] += 1
            return [DtlsIn(session, data)]
        if is_rtcp(data):
            self.stats["rtcp"] += 1
            return [RtcpIn(session, data)]
        self.stats["rtp"] += 1
        return [RtpIn(session, data)]

    def _stun(self, data, addr, now):
        try:
            message = stun.parse(data)
        except stun.StunError:
            self.stats["stun_malformed"] += 1
            return []
        if message.method != stun.BINDING or message.msg_class not in (stun.REQUEST,
                                                                      stun.INDICATION):
            self.stats["stun_ignored"] += 1
            return []
        if message.msg_class == stun.INDICATION:
            session = self._by_address.get(addr)
            if session is None:
                self.stats["unknown_address"] += 1
            else:
                session.last_seen = now
                self.stats["keepalives"] += 1
            return []
        session = self._checked_session(message)
        if session is None:
            return []
        session.last_seen = now
        self.stats["stun_checks"] += 1
        events = [Send(stun.binding_success(message, addr, session.local_pwd), addr)]
        events.extend(self._bind(session, addr, message.use_candidate))
        return events

    def _checked_session(self, message):
        """The session a Binding request is a valid check for, or None (counted)."""
        try:
            local, remote = stun.ice_ufrags(message)
        except stun.StunError:
            self.stats["stun_rejected"] += 1
            return None
        session = self._by_ufrag.get(local)
        if session is None:
            self.stats["stun_unknown_ufrag"] += 1
            return None
        if remote != session.remote_ufrag or (session.strict_check
                                              and message.ice_controlled is not None):
            self.stats["stun_rejected"] += 1
            return None
        try:
            stun.check_request(message, session.local_pwd, self.require_fingerprint)
        except stun.StunError:
            self.stats["stun_rejected"] += 1
            return None
        return session

    def _bind(self, session, addr, nominating):
        events = []
        holder = self._by_address.get(addr)
        if holder is not None and holder is not session:
            events.extend(self._forget(holder, addr))
        if addr in session.addresses:
            session.addresses.remove(addr)
        session.addresses.append(addr)
        self._by_address[addr] = session
        previous = session.address
        follow = previous is None or nominating or not session.nominated
        session.nominated = session.nominated or nominating
        if follow and addr != previous:
            session.address = addr
            self.stats["address_changes"] += 1
            events.append(AddressChanged(session, addr, previous))
        while len(session.addresses) > self.max_addresses:
            oldest = next(a for a in session.addresses if a != session.address)
            session.addresses.remove(oldest)
            del self._by_address[oldest]
        return events

    def _forget(self, session, addr):
        """``addr`` was checked for another session: it is no longer ``session``'s."""
        session.addresses.remove(addr)
        del self._by_address[addr]
        if session.address != addr:
            return []
        session.address = session.addresses[-1] if session.addresses else None
        self.stats["address_changes"] += 1
        return [AddressChanged(session, session.address, addr)]
