"""The AMP commands between the supervisor and its workers (over one Unix socket).

Worker -> supervisor: ``Hello`` (who I am, my private endpoints), the stream
directory (``Register``, ``Unregister``, ``Lookup``), ``Peers`` (every worker's
private endpoints, for the API that answers for all) and ``ReloadAll`` (the raw
API's reload).  Supervisor -> worker: ``Orphaned`` (the streams of a worker that
died, whose cluster records a live worker releases).  Endpoints and owners travel as JSON text."""

from __future__ import annotations

from twisted.protocols import amp

__all__ = ["Hello", "Register", "Unregister", "Lookup", "Orphaned", "Peers", "ReloadAll"]


class Hello(amp.Command):
    arguments = [(b"index", amp.Integer()), (b"pid", amp.Integer()), (b"endpoints", amp.Unicode())]
    response = []


class Register(amp.Command):
    """Claim ``key`` ("vhost/app/stream") for the caller; ``owner`` answers who holds
    it now (JSON; the caller's own owner when the claim succeeded)."""

    arguments = [(b"key", amp.Unicode()), (b"owner", amp.Unicode())]
    response = [(b"ok", amp.Boolean()), (b"owner", amp.Unicode())]


class Unregister(amp.Command):
    arguments = [(b"key", amp.Unicode()), (b"node", amp.Unicode())]
    response = [(b"ok", amp.Boolean())]


class Lookup(amp.Command):
    arguments = [(b"key", amp.Unicode())]
    response = [(b"owner", amp.Unicode())]  # "" when nobody holds the key


class Peers(amp.Command):
    arguments = []
    response = [(b"peers", amp.Unicode())]  # JSON list of {"index", "pid", "endpoints"}


class ReloadAll(amp.Command):
    arguments = []
    response = []


class Orphaned(amp.Command):
    """Supervisor -> a live worker: ``keys`` (JSON list) were published by a worker that
    died; their records in the origin cluster's directory are this machine's to release."""

    arguments = [(b"keys", amp.Unicode())]
    response = []
