"""The stream directory of one machine's workers.

:class:`StreamTable` is the table the supervisor holds (which worker publishes
"vhost/app/stream"); :class:`MasterDirectory` is a worker's view of it, asked over
the control connection.  Owners travel as dicts ``{"node": "w1", "endpoints":
{"rtmp": "127.0.0.1:PORT", "api": ...}}``, the worker's private endpoints."""

from __future__ import annotations

import json

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


class MasterDirectory:
    """A worker's stream directory: the supervisor's :class:`StreamTable`, asked over
    AMP.  Deferred-returning ``register``/``unregister``/``lookup``."""

    def __init__(self, control) -> None:
        self.control = control  # an amp.AMP connected to the supervisor

    def register(self, key: str, owner: dict):
        from .control import Register

        d = self.control.callRemote(Register, key=key, owner=json.dumps(owner))
        return d.addCallback(lambda r: (r["ok"], json.loads(r["owner"])))

    def unregister(self, key: str, node: str):
        from .control import Unregister

        return self.control.callRemote(Unregister, key=key, node=node).addCallback(lambda r: r["ok"])

    def lookup(self, key: str):
        from .control import Lookup

        d = self.control.callRemote(Lookup, key=key)
        return d.addCallback(lambda r: json.loads(r["owner"]) if r["owner"] else None)
