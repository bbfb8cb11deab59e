"""Workers and the Redis origin cluster together: a chained stream directory.

With ``workers N`` and a vhost in a Redis origin cluster, each worker asks two
directories, this machine's first:

- ``local``: the supervisor's (:class:`~srs_twisted.workers.directory.MasterDirectory`),
  whose owners are workers (node ``w0``, ``w1``..., their private loopback
  endpoints);
- ``remote``: the cluster's (:class:`~.redis_directory.RedisDirectory`), whose
  owners are machines (``machine``: node id and the endpoints every worker
  shares, e.g. ``10.0.0.5:1935``).

A publish claims the stream in the supervisor (a second publisher on another
worker is refused there), then for the whole machine in Redis (one on another
machine is refused there, and the local claim is given back).  The worker that
holds the stream is its only registrant in Redis: its heartbeat refreshes the
record, its unpublish removes it.  A lookup answers the owner worker when the
stream is on this machine, else the machine Redis names (its shared ports: the
pull lands on any of its workers, which pulls from its owner worker in turn);
a Redis record naming this machine with no worker of it holding the stream
(a worker that just died) is treated as "published nowhere", so a worker never
pulls from its own machine's shared ports.  A worker that dies cannot release
its records: the supervisor asks a live worker to (:meth:`release_orphan`).
"""

from __future__ import annotations

from twisted.internet import defer
from zope.interface import implementer

from .directory import DirectoryUnavailable, IStreamDirectory, Owner, StreamOwned

__all__ = ["ChainedDirectory"]


@implementer(IStreamDirectory)
class ChainedDirectory:
    """``local`` (this machine's workers) first, then ``remote`` (other machines)."""

    def __init__(self, local, remote, machine: Owner) -> None:
        self.local = local
        self.remote = remote
        self.machine = machine

    @defer.inlineCallbacks
    def register(self, key: str, owner: Owner):
        """Claim ``key`` for the worker ``owner``: locally, then for the machine.
        StreamOwned from either (a refusal by Redis gives the local claim back);
        Redis unreachable keeps the local claim (the Redis directory registers it
        when it is back) and fails with DirectoryUnavailable, as the relay expects."""
        yield defer.maybeDeferred(self.local.register, key, owner)
        try:
            yield defer.maybeDeferred(self.remote.register, key, self.machine)
        except StreamOwned:
            try:
                yield defer.maybeDeferred(self.local.unregister, key, owner)
            except Exception:  # noqa: BLE001 - the refusal is what matters
                pass
            raise

    @defer.inlineCallbacks
    def unregister(self, key: str, owner: Owner):
        """Release the machine's record first (the local claim still keeps the
        other workers of this machine from claiming the stream meanwhile), then
        the local claim, whatever Redis answered (its failure is passed on)."""
        try:
            held = yield defer.maybeDeferred(self.local.lookup, key)
            ours = held is not None and held.node == owner.node
        except DirectoryUnavailable:
            ours = True  # the supervisor is gone: drop what this worker registered
        try:
            if ours:  # another worker of this machine may hold it now: its record stays
                yield defer.maybeDeferred(self.remote.unregister, key, self.machine)
        finally:
            yield defer.maybeDeferred(self.local.unregister, key, owner)

    @defer.inlineCallbacks
    def release_orphan(self, key: str):
        """The worker that held ``key`` died (the supervisor dropped its claim): drop
        the machine's record unless another worker of this machine holds the stream
        now.  Fires with True when a record was released."""
        held = yield defer.maybeDeferred(self.local.lookup, key)
        if held is not None:
            return False
        yield defer.maybeDeferred(self.remote.unregister, key, self.machine)
        return True

    def lookup(self, key: str):
        d = defer.maybeDeferred(self.local.lookup, key)

        def local_failed(failure):
            failure.trap(DirectoryUnavailable)
            return None  # the supervisor is away: other machines may still have it

        def next_(owner):
            if owner is not None:
                return owner
            return defer.maybeDeferred(self.remote.lookup, key).addCallback(self._other_machine)

        d.addErrback(local_failed)
        d.addCallback(next_)
        return d

    def _other_machine(self, owner):
        if owner is None or owner.node == self.machine.node:
            return None
        return owner

