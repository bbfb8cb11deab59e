"""The GB28181-2016 SIP server as a sans-I/O state machine: messages and the time in, messages out.

:class:`SipServer` keeps one :class:`Device` per registered camera (its id is
the REGISTER's From user, which names the stream).  ``receive(peer, msg, now)``
takes a parsed :class:`~srs_twisted.codec.sip.SipMessage` from a peer (a TCP
connection or a UDP address: opaque to the core) and ``poll(now)`` runs the
timers; both return nothing and queue :class:`Send` (bytes for a peer) and
:class:`Gone`/:class:`Invited` events that the adapter takes with
:meth:`SipServer.events`.

The flow of one device (SRS's states): REGISTER -> 200 OK (``Registered``) -> INVITE
with an SDP ``recvonly`` PS/90000 on the media port and ``y=`` the SSRC (``Inviting``;
media over TCP, ``TCP/RTP/AVP`` passive, when the device registered over TCP, else
``RTP/AVP`` over UDP) -> 100 (``Trying``) -> 200 OK, answered by an ACK (``Stable``).
MESSAGE keepalives (and any MANSCDP message) refresh the device and get a 200 OK; once
the first call is up the server asks for the DeviceInfo (a MESSAGE query) and keeps what
the device answers for the API.  A BYE from the device ends the call (no re-invite until
it registers again); REGISTER with Expires 0 or no REGISTER/keepalive for ``timeout``
seconds ends the device (:class:`Gone`; a BYE first when the call is up).  When the media
stops while the device is Stable, the server says BYE and re-invites after ``reinvite``
seconds.  Over UDP an INVITE is retransmitted (RFC 3261 timer A, from 0.5 s, doubling up
to 4 s) until a response, given up after 32 s (timer B), and every 2xx to it (a
retransmitted one too) is ACKed; a retransmitted request from the device gets the same
response again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..codec.sip import SipMessage
from .messages import SipSettings, device_info, dialog_request, invite_sdp, make_ssrc, query_message, user_host

__all__ = ["SipServer", "SipSettings", "Device", "Send", "Gone", "CallEnded", "Inviting", "Invited", "make_ssrc",
           "invite_sdp"]

T1 = 0.5
TIMER_B = 64 * T1
RESPONSE_CACHE = 32  # responses kept per device for retransmitted requests
STATES = ("Init", "Registered", "Inviting", "Trying", "Stable", "Re-inviting", "Bye")


@dataclass
class Send:
    peer: object
    data: bytes


@dataclass
class Gone:
    """A device ended (unregistered, expired, removed): its stream ends."""

    device: "Device"
    reason: str


@dataclass
class CallEnded:
    """A device's call ended by its BYE: its stream ends, the device stays registered."""

    device: "Device"
    reason: str


@dataclass
class Inviting:
    """An INVITE went out: media with ``device.ssrc`` may come (a camera may send it before its 200 OK arrives)."""

    device: "Device"


@dataclass
class Invited:
    """A device accepted the INVITE: media with ``device.ssrc`` is expected."""

    device: "Device"


@dataclass
class Device:
    id: str
    peer: object
    transport: str  # "TCP" or "UDP"
    host: str  # the device's SIP host (From's) for our request URIs
    registered_at: float
    expires: int
    last_seen: float
    state: str = "Registered"
    ssrc: int = 0
    info: dict = field(default_factory=dict)
    call_id: str = ""
    local_tag: str = ""
    remote_tag: str = ""
    cseq: int = 0
    branch: str = ""
    invite: bytes = b""  # the INVITE being sent (retransmitted over UDP)
    invite_sent: float = 0.0
    next_retransmit: float = 0.0
    interval: float = T1
    reinvite_at: float | None = None  # when to (re-)invite
    media_active: bool = False
    responses: dict = field(default_factory=dict)  # (call-id, cseq, branch) -> response bytes
    invites: int = 0
    peer_addr: str = ""
    queried: bool = False  # the DeviceInfo query went out (once per registration)


class SipServer:
    """The SIP side of the GB28181 caster (see the module docstring)."""

    def __init__(self, settings: SipSettings, rng=None) -> None:
        self.settings = settings
        self.rng = rng or random.Random()
        self.devices: dict = {}  # id -> Device
        self._events: list = []
        self.errors = 0
        self.last_error = ""

    def events(self) -> list:
        out, self._events = self._events, []
        return out

    def _token(self, n: int = 10) -> str:
        return "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))

    def _send(self, peer, msg: SipMessage) -> bytes:
        data = msg.to_bytes()
        self._events.append(Send(peer, data))
        return data

    def _reject(self, reason: str) -> None:
        self.errors += 1
        self.last_error = reason

    # -- responses ------------------------------------------------------------

    def _respond(self, peer, req: SipMessage, status: int, device: Device | None = None,
                 extra: list | None = None, body: bytes = b"") -> None:
        res = SipMessage(status=status)
        for name in ("via", "from", "to", "call-id", "cseq"):
            for value in (req.get_all("via") if name == "via" else [req.get(name)]):
                res.add({"via": "Via", "from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq"}[name], value)
        if status != 100 and not req.to_tag:
            res.set("To", req.get("to") + ";tag=" + self._token(8))
        res.add("User-Agent", "srs-twisted")
        for name, value in extra or []:
            res.add(name, value)
        res.body = body
        data = self._send(peer, res)
        if device is not None and status >= 200:
            key = (req.call_id, req.get("cseq"), req.branch)
            device.responses[key] = data
            while len(device.responses) > RESPONSE_CACHE:
                del device.responses[next(iter(device.responses))]

    # -- input ----------------------------------------------------------------

    def receive(self, peer, msg: SipMessage, now: float, transport: str = "TCP", peer_addr: str = "") -> None:
        if not msg.is_request:
            self._response(msg, now)
            return
        user, host = user_host(msg.get("from"))
        device = self.devices.get(user)
        if device is not None and msg.method != "ACK":
            cached = device.responses.get((msg.call_id, msg.get("cseq"), msg.branch))
            if cached is not None:  # a retransmission: the same answer
                self._events.append(Send(peer, cached))
                return
        method = msg.method
        if method == "REGISTER":
            self._register(peer, msg, user, host, now, transport, peer_addr)
        elif device is None:
            if method != "ACK":
                self._respond(peer, msg, 403 if method == "MESSAGE" else 481)
        elif method == "MESSAGE":
            device.last_seen = now
            device.peer = peer
            device.info.update(device_info(msg.body))
            self._respond(peer, msg, 200, device)
        elif method == "BYE":
            self._respond(peer, msg, 200, device)
            if msg.call_id == device.call_id:
                self._end_call(device, "Bye")
                self._events.append(CallEnded(device, "BYE from the device"))
        elif method == "ACK":
            pass
        elif method in ("OPTIONS", "INFO", "NOTIFY", "SUBSCRIBE"):
            self._respond(peer, msg, 200, device)
        elif method == "INVITE":
            self._respond(peer, msg, 488, device)  # a camera does not call the server
        else:
            self._respond(peer, msg, 405, device, [("Allow", "REGISTER, MESSAGE, INVITE, ACK, BYE, OPTIONS")])

    def _register(self, peer, msg: SipMessage, user: str, host: str, now: float, transport: str,
                  peer_addr: str) -> None:
        if not user or len(user) > 64 or not user.replace("_", "").replace("-", "").isalnum():
            self._reject("REGISTER with a bad device id %r" % user[:64])
            self._respond(peer, msg, 400)
            return
        expires = msg.expires
        if expires is None:
            expires = 3600
        device = self.devices.get(user)
        if expires == 0:
            self._respond(peer, msg, 200, None, [("Expires", "0")])
            if device is not None:
                self._remove(device, "unregistered (Expires: 0)")
            return
        if device is None:
            if len(self.devices) >= self.settings.max_devices:
                self._reject("REGISTER from %s refused: %d devices registered" % (user, len(self.devices)))
                self._respond(peer, msg, 503)
                return
            device = self.devices[user] = Device(user, peer, transport, host, now, expires, now)
        # A call being set up with another peer (the INVITE went where the device no longer is),
        # or a change of transport (the media transport follows it), needs a new INVITE; a
        # stable call survives a new connection of the same transport (a TCP reconnect).
        moved = (device.peer != peer and device.state != "Stable") or device.transport != transport
        device.peer, device.transport, device.host, device.peer_addr = peer, transport, host, peer_addr
        device.registered_at = device.last_seen = now
        device.expires = expires
        self._respond(peer, msg, 200, device, [("Contact", msg.get("contact") or "<sip:%s@%s>" % (user, host)),
                                               ("Expires", str(expires))])
        if device.state in ("Registered", "Bye", "Init") or moved:
            device.state = "Registered"
            device.reinvite_at = None
            self._invite(device, now)

    def _response(self, msg: SipMessage, now: float) -> None:
        try:
            number, method = msg.cseq
        except ValueError:
            return
        user, _ = user_host(msg.get("to"))
        device = self.devices.get(user)
        if device is None or method != "INVITE" or msg.call_id != device.call_id or number != device.cseq:
            return  # not ours (a BYE's 200, a stale answer)
        if msg.status < 200:
            if device.state == "Inviting":
                device.state = "Trying"
            device.invite = b""  # a provisional response stops the retransmissions (not the timeout)
            return
        device.remote_tag = msg.to_tag
        if msg.status < 300:
            self._ack(device, msg)
            if device.state in ("Inviting", "Trying", "Re-inviting"):
                device.state = "Stable"
                device.invite = b""
                device.invite_sent = 0.0
                self._events.append(Invited(device))
                if not device.queried:
                    device.queried = True
                    self._query(device, "DeviceInfo")
            return
        self._ack(device, msg)
        if device.state in ("Inviting", "Trying", "Re-inviting"):
            self._reject("INVITE of %s refused: %d %s" % (device.id, msg.status, msg.reason))
            self._end_call(device, "Registered")
            device.reinvite_at = now + self.settings.reinvite

    # -- requests we send -----------------------------------------------------

    def _request(self, device: Device, method: str, cseq: int, branch: str, body: bytes = b"") -> SipMessage:
        return dialog_request(self.settings, device, method, cseq, branch, body)

    def _invite(self, device: Device, now: float, again: bool = False) -> None:
        taken = {d.ssrc for d in self.devices.values() if d is not device}
        if not device.ssrc or device.ssrc in taken:
            device.ssrc = make_ssrc(self.settings.server_id, taken, self.rng)
        if not device.ssrc:
            self._reject("no free SSRC for %s" % device.id)
            device.reinvite_at = now + self.settings.reinvite
            return
        device.call_id = self._token(16)
        device.local_tag = self._token(8)
        device.remote_tag = ""
        device.cseq = self.rng.randrange(1, 1000)
        device.branch = "z9hG4bK" + self._token(10)
        device.state = "Re-inviting" if again else "Inviting"
        device.invites += 1
        device.reinvite_at = None
        sdp = invite_sdp(self.settings, device.ssrc, device.transport != "UDP")
        req = self._request(device, "INVITE", device.cseq, device.branch, sdp)
        self._events.append(Inviting(device))
        device.invite = self._send(device.peer, req)
        device.invite_sent = now
        device.interval = T1
        device.next_retransmit = now + T1
        if device.transport != "UDP":
            device.invite = b""  # a reliable transport retransmits for us

    def _query(self, device: Device, cmd: str) -> None:
        """A MANSCDP query (DeviceInfo): the device answers 200, then with a MESSAGE whose
        Manufacturer, Model... the server keeps for the API.  Its own dialog, sent once."""
        self._send(device.peer, query_message(self.settings, device, cmd, "z9hG4bK" + self._token(10), self._token(8),
                                              self._token(16), self.rng.randrange(1, 1000),
                                              self.rng.randrange(1, 100000)))

    def _ack(self, device: Device, response: SipMessage) -> None:
        req = self._request(device, "ACK", device.cseq, "z9hG4bK" + self._token(10))
        self._send(device.peer, req)

    def bye(self, device: Device) -> None:
        """End the device's call from our side (the API, or the media stopped)."""
        if device.state in ("Stable", "Trying") and device.call_id:
            device.cseq += 1
            self._send(device.peer, self._request(device, "BYE", device.cseq, "z9hG4bK" + self._token(10)))
        self._end_call(device, "Registered")

    def _end_call(self, device: Device, state: str) -> None:
        device.state = state
        device.invite = b""
        device.invite_sent = 0.0
        device.media_active = False

    def _remove(self, device: Device, reason: str) -> None:
        if self.devices.get(device.id) is device:
            del self.devices[device.id]
            self._end_call(device, "Bye")
            self._events.append(Gone(device, reason))

    def remove(self, device_id: str, reason: str) -> bool:
        """End a device (the API): a BYE if it has a call, then forget it until it registers again."""
        device = self.devices.get(device_id)
        if device is None:
            return False
        self.bye(device)
        self._remove(device, reason)
        return True

    # -- the media side tells us ----------------------------------------------

    def media_started(self, device_id: str) -> None:
        device = self.devices.get(device_id)
        if device is not None:
            device.media_active = True
            device.reinvite_at = None

    def media_stopped(self, device_id: str, now: float) -> None:
        """The device's media stopped: BYE, and a re-INVITE in ``reinvite`` seconds if it stays registered."""
        device = self.devices.get(device_id)
        if device is None or device.state not in ("Stable", "Trying", "Re-inviting"):
            return
        self.bye(device)
        device.reinvite_at = now + self.settings.reinvite

    # -- time -----------------------------------------------------------------

    def poll(self, now: float) -> None:
        timeout = self.settings.timeout
        for device in list(self.devices.values()):
            if now - device.last_seen >= timeout:
                self.bye(device)  # it may still be streaming: hang up
                self._remove(device, "no REGISTER or keepalive for %ds" % (now - device.last_seen))
                continue
            if now >= device.registered_at + device.expires + 0.5:
                self.bye(device)
                self._remove(device, "registration expired after %ds" % device.expires)
                continue
            if device.state in ("Inviting", "Trying", "Re-inviting") and device.invite_sent:
                if now - device.invite_sent >= TIMER_B:
                    self._reject("INVITE of %s not answered in %ds" % (device.id, TIMER_B))
                    self._end_call(device, "Registered")
                    device.reinvite_at = now + self.settings.reinvite
                elif device.invite and now >= device.next_retransmit:
                    self._events.append(Send(device.peer, device.invite))
                    device.interval = min(device.interval * 2, 4.0)
                    device.next_retransmit = now + device.interval
            elif device.reinvite_at is not None and now >= device.reinvite_at and device.state == "Registered":
                self._invite(device, now, again=True)

