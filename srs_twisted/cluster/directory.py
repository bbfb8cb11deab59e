"""The stream directory: which node has the publisher of ``vhost/app/stream``.

One mechanism for the worker processes of one machine (a directory kept by
the master process) and for an origin cluster across machines (a directory
in Redis, :mod:`srs_twisted.cluster.redis_directory`).  A node that lacks a
stream asks the directory for its :class:`Owner` and pulls it from the
owner's endpoints (:mod:`srs_twisted.cluster.relay`).

Every method returns a Deferred.  ``register`` is a claim: it fails with
:class:`StreamOwned` when another node holds the key, which is how a second
publisher of a stream is refused cluster-wide; the holder registering again
refreshes its claim (heartbeats).  ``unregister`` removes the key only if
the given owner holds it.  A directory that cannot be reached fails with
:class:`DirectoryUnavailable`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from twisted.internet import defer
from zope.interface import Interface, implementer

from ..errors import Denied, SrsError


class IStreamDirectory(Interface):
    """Where each stream is published, for every node that shares it."""

    def register(key, owner):
        """Claim ``key`` ("vhost/app/stream") for ``owner`` (an :class:`Owner`).
        Fires with None; fails with :class:`StreamOwned` if another node
        (another ``owner.node``) holds it."""

    def unregister(key, owner):
        """Remove ``key`` if ``owner.node`` holds it.  Fires with None."""

    def lookup(key):
        """Fires with the :class:`Owner` of ``key``, or None."""


class StreamOwned(Denied):
    """A publish refused because another node publishes the stream."""

    def __init__(self, key: str, owner: "Owner") -> None:
        super().__init__(f"stream {key} is published on node {owner.node}")
        self.key = key
        self.owner = owner


class DirectoryUnavailable(SrsError):
    """The directory could not be reached (Redis down, master gone)."""


@dataclass(frozen=True)
class Owner:
    """One node as others reach it: its id and its endpoints, by kind
    ("rtmp", "http", "api", "rtc", "srt") -> "host:port"."""

    node: str
    endpoints: dict = field(default_factory=dict, hash=False, compare=False)

    def endpoint(self, kind: str) -> str | None:
        return self.endpoints.get(kind) or None

    def to_json(self) -> str:
        return json.dumps({"node": self.node, "endpoints": self.endpoints}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text) -> "Owner":
        """Parse a stored owner; ValueError if it is not one."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"bad owner record: {e}") from None
        if not isinstance(data, dict) or not isinstance(data.get("node"), str) or not data["node"]:
            raise ValueError("bad owner record: no node")
        endpoints = data.get("endpoints") or {}
        if not isinstance(endpoints, dict):
            raise ValueError("bad owner record: endpoints is not an object")
        return cls(data["node"], {str(k): str(v) for k, v in endpoints.items() if v})


def stream_key(vhost: str, app: str, stream: str) -> str:
    return f"{vhost}/{app}/{stream}"


@implementer(IStreamDirectory)
class LocalDirectory:
    """An in-memory directory: one process's (tests, or a master process
    that answers its workers from it)."""

    def __init__(self) -> None:
        self.owners: dict[str, Owner] = {}

    def register(self, key: str, owner: Owner):
        held = self.owners.get(key)
        if held is not None and held.node != owner.node:
            return defer.fail(StreamOwned(key, held))
        self.owners[key] = owner
        return defer.succeed(None)

    def unregister(self, key: str, owner: Owner):
        held = self.owners.get(key)
        if held is not None and held.node == owner.node:
            del self.owners[key]
        return defer.succeed(None)

    def lookup(self, key: str):
        return defer.succeed(self.owners.get(key))


__all__ = ["DirectoryUnavailable", "IStreamDirectory", "LocalDirectory", "Owner", "StreamOwned", "stream_key"]
