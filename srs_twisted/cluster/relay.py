"""Lookup then pull: a node asked for a stream it lacks finds the owner in a
stream directory (:mod:`srs_twisted.cluster.directory`) and pulls the stream
from it, once per stream, with the edge's pull (:class:`RelayPull`).

:class:`ClusterRelay` is a registry observer.  For every vhost that has a
directory (``directory_for(vhost)``; the Redis origin cluster's, or the
worker processes' master one):

- a local publish registers the stream under this node (:attr:`node`), an
  unpublish removes it;
- the first player of a stream nobody publishes here makes the node look the
  stream up; if another node has it, one :class:`RelayPull` feeds every
  local player (RTMP, HTTP-FLV...), stopped some seconds after the last one
  left.  While the stream is nowhere, the lookup is retried;
- :meth:`find` answers the HTTP players (HTTP-FLV 404 or pull) and the HLS
  proxy: who has this stream.

:class:`DirectoryPolicy` is the publish check: the stream is claimed in the
directory before a publisher is accepted, so a second publisher of the same
stream on another node is refused; a claim that cannot be made because the
directory is down lets the publish go on (local streams keep working) and
the directory registers it once it is back.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet import defer
from zope.interface import implementer

from ..context import AllowAll
from ..interfaces import IStreamObserver
from ..log import ContextLogger
from ..url import StreamRequest
from .directory import DirectoryUnavailable, Owner, StreamOwned, stream_key
from .edge import EdgePull, PullBook
from .upstream import first_player_request, flv_connect, rtmp_connect

# While players wait for a stream no node has, ask again this often.
LOOKUP_RETRY = 2.0
# A pull that got nothing for this long asks the directory whether the
# stream moved to another node (then it reconnects there at once).
RELAY_SILENCE = 1.0
# A pull that does get data asks this often too: it may be getting the stream
# through a node that pulls it from its new owner itself (a detour left behind
# when the publisher moved; then it reconnects to the owner).
RELAY_RECHECK = 5.0


def is_relay(source) -> bool:
    """True when the source's publisher republishes the stream of another
    node of the cluster (a :class:`RelayPull`): recorders and forwards leave
    it alone."""
    return bool(getattr(source.publisher, "relay", False))


class NotPublished(LookupError):
    """No node publishes the stream (the pull retries)."""


class RelayPull(EdgePull):
    """An edge pull whose origin is the stream's owner in the directory,
    looked up again before each (re)connect: a stream republished on
    another node is followed there.  A relay: HLS, DASH, DVR and forward
    run where the stream is published, not here."""

    relay = True

    def __init__(self, ctx, source, request: StreamRequest, relay: "ClusterRelay", **kw) -> None:
        super().__init__(ctx, source, request, **kw)
        self.cluster = relay
        self.info.type = "relay-pull"
        self.owner: Owner | None = None
        self._asking = False
        self._asked = 0.0  # when the directory was last asked

    @property
    def key(self) -> str:
        return stream_key(self.source.vhost, self.source.app, self.source.stream)

    def _attempt(self):
        directory = self.cluster.directory_for(self.source.vhost)
        if directory is None:
            return defer.fail(RuntimeError(f"vhost {self.source.vhost} has no stream directory any more"))
        d = self.cluster.lookup(directory, self.key, self.log)
        d.addCallback(self._connect_owner, self.key)
        return d

    def _check(self) -> None:
        super()._check()
        conn, directory = self.conn, self.cluster.directory_for(self.source.vhost)
        now = self.ctx.clock.seconds()
        due = now - self._last_packet >= RELAY_SILENCE or now - self._asked >= RELAY_RECHECK
        if not self.running or conn is None or directory is None or self._asking or not due:
            return
        # Silent, or time to check: the publisher may have moved to another node.
        self._asking = True
        self._asked = now
        owner_then = self.owner

        def answered(owner):
            self._asking = False
            if (self.running and self.conn is conn and owner is not None and owner_then is not None
                    and owner.node != owner_then.node):
                self.log.trace(f"cluster: {self.key} moved from node {owner_then.node} to {owner.node}, follow it")
                self._drop(conn)

        self.cluster.lookup(directory, self.key, self.log).addCallback(answered)

    def _connect_owner(self, owner: Owner | None, key: str):
        if owner is None or owner.node == self.cluster.node.node:
            raise NotPublished(f"no other node publishes {key}")
        self.owner = owner
        self._asked = self.ctx.clock.seconds()
        conf = self.ctx.vhost(self.source.vhost)
        rtmp, http = owner.endpoint("rtmp"), owner.endpoint("http")
        # RTMP, or HTTP-FLV with the vhost's ``cluster { protocol flv; }`` (or no RTMP endpoint).
        if http and (not rtmp or (conf is not None and conf.cluster.protocol == "flv")):
            return self._connect(conf, http, "flv", self.source.vhost)
        if rtmp:
            return self._connect(conf, rtmp, "rtmp", self.source.vhost)
        raise NotPublished(f"node {owner.node} of {key} has no RTMP or HTTP endpoint")


@implementer(IStreamObserver)
class ClusterRelay(PullBook):
    """Registers local streams in the directory and pulls remote ones for
    local players (see the module's doc).  ``directory_for(vhost)`` returns
    the vhost's :class:`~.directory.IStreamDirectory` or None; ``node`` is
    this server as other nodes reach it."""

    def __init__(self, ctx, directory_for: Callable, node: Owner, *, connect_rtmp=rtmp_connect,
                 connect_flv=flv_connect, supervisor_options: dict | None = None) -> None:
        super().__init__(ctx)
        self.directory_for = directory_for
        self.node = node
        self._connect_rtmp = connect_rtmp
        self._connect_flv = connect_flv
        self._options = supervisor_options
        self.log = ContextLogger("cluster")
        self._lookups: dict = {}  # source -> Deferred or DelayedCall (a lookup under way or planned)
        self.registered: dict[str, object] = {}  # key -> source published here

    # ---- the directory -------------------------------------------------------
    def lookup(self, directory, key: str, log=None):
        """The owner of ``key``, or None; a directory that cannot be reached
        is logged and answers None (the caller retries)."""
        log = log or self.log

        def failed(failure):
            failure.trap(DirectoryUnavailable)
            log.warn(f"cluster: lookup of {key} failed, will retry: {failure.getErrorMessage()}")
            return None

        d = defer.maybeDeferred(directory.lookup, key)
        d.addErrback(failed)
        return d

    def find(self, vhost: str, app: str, stream: str):
        """Fires with the owner of a stream on another node, or None (no
        directory for the vhost, published nowhere, or here)."""
        directory = self.directory_for(vhost)
        if directory is None:
            return defer.succeed(None)
        d = self.lookup(directory, stream_key(vhost, app, stream))
        d.addCallback(lambda owner: owner if owner is not None and owner.node != self.node.node else None)
        return d

    def claim(self, vhost: str, app: str, stream: str, log=None):
        """Claim a stream for a local publisher.  Fails with StreamOwned if
        another node publishes it; a directory that is down lets it go on."""
        conf = self.ctx.vhost(vhost)
        directory = self.directory_for(vhost) if conf is not None and not conf.cluster.is_edge else None
        if directory is None:
            return defer.succeed(None)
        key = stream_key(vhost, app, stream)
        log = log or self.log

        def claimed(_):
            # A local publisher replaces this node's pull of the stream.
            source = self.ctx.registry.get(vhost, app, stream)
            pull = self.pulls.get(source) if source is not None else None
            if pull is not None:
                log.trace(f"cluster: {key} is published here now, stop pulling it from {pull.origin or '-'}")
                # A hand-over, not an end: HTTP players stay for the local publisher.
                source.handing_over = True
                try:
                    pull.stop()
                finally:
                    source.handing_over = False

        def failed(failure):
            if failure.check(StreamOwned):
                log.warn(f"cluster: refuse publish of {key}: {failure.getErrorMessage()}")
                return failure
            failure.trap(DirectoryUnavailable)
            log.warn(f"cluster: cannot claim {key} ({failure.getErrorMessage()}); publish locally, "
                     "it is registered when the directory is back")
            return None

        d = defer.maybeDeferred(directory.register, key, self.node)
        d.addCallbacks(claimed, failed)
        return d

    def _directory_of(self, source):
        """The directory of an origin's stream; None on edges (the edge's
        own pulls and pushes go through its origins)."""
        conf = self.ctx.vhost(source.vhost)
        if conf is None or conf.cluster.is_edge:
            return None
        return self.directory_for(source.vhost)

    # ---- IStreamObserver -----------------------------------------------------
    def source_published(self, source) -> None:
        if is_relay(source):
            return
        directory = self._directory_of(source)
        if directory is None:
            return
        self._cancel_lookup(source)
        key = stream_key(source.vhost, source.app, source.stream)
        self.registered[key] = source
        d = defer.maybeDeferred(directory.register, key, self.node)
        d.addErrback(self._register_failed, key)

    def _register_failed(self, failure, key: str) -> None:
        if failure.check(StreamOwned):
            self.log.error(f"cluster: {key} is published here and on node {failure.value.owner.node}")
        elif failure.check(DirectoryUnavailable):
            self.log.warn(f"cluster: cannot register {key} ({failure.getErrorMessage()}); retried when the "
                          "directory is back")
        else:
            self.log.error(f"cluster: register {key} failed: {failure.getErrorMessage()}")

    def source_unpublished(self, source) -> None:
        if is_relay(source):
            return
        key = stream_key(source.vhost, source.app, source.stream)
        if self.registered.get(key) is not source:
            return
        del self.registered[key]
        directory = self.directory_for(source.vhost)
        if directory is not None:
            d = defer.maybeDeferred(directory.unregister, key, self.node)
            d.addErrback(lambda f: self.log.warn(f"cluster: unregister {key} failed: {f.getErrorMessage()}"))
        if source.consumers:
            # Players stay: maybe another node publishes it next.
            self.ctx.clock.callLater(0, self._players_still_there, source)

    def _players_still_there(self, source) -> None:
        if self.ctx.registry.get(source.vhost, source.app, source.stream) is source:
            self.source_players_changed(source)

    def source_players_changed(self, source) -> None:
        if source.consumers:
            self._cancel_stop(source)
            if source in self.pulls or source.publisher is not None or source in self._lookups:
                return
            directory = self._directory_of(source)
            if directory is None:
                return
            self._look_for(source, directory)
        else:
            self._cancel_lookup(source)
            self._schedule_stop(source)

    # ---- pulls ---------------------------------------------------------------
    def _look_for(self, source, directory) -> None:
        key = stream_key(source.vhost, source.app, source.stream)
        d = self.lookup(directory, key)
        self._lookups[source] = d

        def found(owner):
            if self._lookups.get(source) is d:
                del self._lookups[source]
            if not source.consumers or source.publisher is not None or source in self.pulls:
                return
            if owner is None or owner.node == self.node.node:
                # Published nowhere (yet): players wait, we ask again.
                self._lookups[source] = self.ctx.clock.callLater(LOOKUP_RETRY, self._retry_lookup, source)
                return
            self._start_pull(source)

        d.addCallback(found)
        d.addErrback(lambda f: self.log.error(f"cluster: lookup of {key}: {f.getErrorMessage()}"))

    def _retry_lookup(self, source) -> None:
        self._lookups.pop(source, None)
        if self.ctx.registry.get(source.vhost, source.app, source.stream) is source:
            self.source_players_changed(source)

    def _cancel_lookup(self, source) -> None:
        pending = self._lookups.pop(source, None)
        if pending is not None and hasattr(pending, "active") and pending.active():
            pending.cancel()

    def _start_pull(self, source) -> None:
        req = first_player_request(self.ctx, source) or StreamRequest(
            vhost=source.vhost, app=source.app, stream=source.stream)
        pull = RelayPull(self.ctx, source, req, self, connect_rtmp=self._connect_rtmp,
                         connect_flv=self._connect_flv, on_stopped=self._pull_stopped,
                         supervisor_options=self._options)
        self.pulls[source] = pull
        pull.start()


    def stop(self):
        """Stop every pull (the server stops)."""
        for source in list(self._lookups):
            self._cancel_lookup(source)
        return defer.DeferredList([pull.stop() for pull in list(self.pulls.values())])


class DirectoryPolicy(AllowAll):
    """Claims a stream in the directory before a publisher is accepted
    (``ctx.cluster``, a :class:`ClusterRelay`, when the server has one)."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    def on_publish(self, client):
        relay = getattr(self.ctx, "cluster", None)
        if relay is None:
            return defer.succeed(None)
        req = client.request
        return relay.claim(req.vhost, req.app, req.stream, ContextLogger(client.id))


def install(ctx, directory_for: Callable, node: Owner, **kw) -> ClusterRelay:
    """Give the server a :class:`ClusterRelay` (``ctx.cluster``, which the
    publish check and the HTTP players ask) following every stream."""
    relay = ClusterRelay(ctx, directory_for, node, **kw)
    ctx.cluster = relay
    ctx.registry.observers.append(relay)
    return relay


__all__ = ["LOOKUP_RETRY", "RELAY_RECHECK", "RELAY_SILENCE", "ClusterRelay", "DirectoryPolicy", "NotPublished", "RelayPull", "install", "is_relay"]
