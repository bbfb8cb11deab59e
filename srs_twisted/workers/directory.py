"""The stream directory of one machine's workers.

:class:`StreamTable` is the table the supervisor holds (which worker publishes
"vhost/app/stream"); :class:`MasterDirectory` is a worker's view of it, asked over
the control connection.  Owners travel as dicts ``{"node": "w1", "endpoints":
{"rtmp": "127.0.0.1:PORT", "api": ...}}``, the worker's private endpoints."""

from __future__ import annotations

from twisted.internet import defer, error
from zope.interface import implementer

from ..cluster.directory import DirectoryUnavailable, IStreamDirectory, Owner, StreamOwned
from .control import Lookup, Register, Unregister

__all__ = ["StreamTable", "MasterDirectory"]


class StreamTable:
    """key -> owner dict; the first claim of a key wins until its owner lets go."""

    def __init__(self) -> None:
        self.owners: dict[str, dict] = {}

    def register(self, key: str, owner: dict) -> tuple[bool, dict]:
        held = self.owners.get(key)
        if held is not None and held.get("node") != owner.get("node"):
            return False, held
        self.owners[key] = owner
        return True, owner

    def unregister(self, key: str, node: str) -> bool:
        held = self.owners.get(key)
        if held is None or held.get("node") != node:
            return False
        del self.owners[key]
        return True

    def lookup(self, key: str) -> dict | None:
        return self.owners.get(key)

    def drop(self, node: str) -> list[str]:
        """Forget every key ``node`` held (its worker died); the keys dropped."""
        gone = [k for k, v in self.owners.items() if v.get("node") == node]
        for key in gone:
            del self.owners[key]
        return gone


@implementer(IStreamDirectory)
class MasterDirectory:
    """A worker's stream directory: the supervisor's :class:`StreamTable`, asked over
    AMP (:mod:`.control`).  Without a control connection (not yet, or lost) every
    call fails with DirectoryUnavailable."""

    def __init__(self) -> None:
        self.control = None  # an amp.AMP connected to the supervisor

    def _call(self, command, **kw):
        if self.control is None or self.control.transport is None:
            return defer.fail(DirectoryUnavailable("the supervisor is not connected"))
        d = self.control.callRemote(command, **kw)

        def lost(failure):
            failure.trap(error.ConnectionDone, error.ConnectionLost)
            raise DirectoryUnavailable(f"the supervisor connection was lost: {failure.getErrorMessage()}")

        return d.addErrback(lost)

    def register(self, key: str, owner: Owner):
        def answered(r):
            if not r["ok"]:
                raise StreamOwned(key, Owner.from_json(r["owner"]))

        return self._call(Register, key=key, owner=owner.to_json()).addCallback(answered)

    def unregister(self, key: str, owner: Owner):
        return self._call(Unregister, key=key, node=owner.node).addCallback(lambda _: None)

    def lookup(self, key: str):
        d = self._call(Lookup, key=key)
        return d.addCallback(lambda r: Owner.from_json(r["owner"]) if r["owner"] else None)
