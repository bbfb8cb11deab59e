"""The origin cluster's stream directory in Redis (txredisapi).

    vhost __defaultVhost__ {
        cluster {
            mode local; origin_cluster on;
            redis { enabled on; host 127.0.0.1; port 6379; password; db 0; }
        }
    }

Records (values are :class:`~.directory.Owner` JSON: node id and endpoints):

- ``srs:stream:VHOST/APP/STREAM``: the node publishing the stream, with a TTL
  (:data:`STREAM_TTL`) that the owner's heartbeat refreshes every
  :data:`HEARTBEAT` seconds; deleted at unpublish.  A crashed origin's
  streams are gone from the directory after at most the TTL.
- ``srs:node:NODE``: each node and its endpoints, with the same TTL.

A claim is one Lua script (read, compare the node, set with the TTL): two
origins publishing the same stream at the same time cannot both win.
Removal is a script too (delete only if this node holds it).

Redis down: every call fails after :data:`REDIS_TIMEOUT` with
:class:`~.directory.DirectoryUnavailable`; the connection is retried every
few seconds, and the heartbeat registers this node's streams again once
Redis answers (after a Redis restart the directory is rebuilt by the
origins' next heartbeats).
"""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.internet.error import ConnectError, ConnectionLost, TimeoutError
from zope.interface import implementer

from ..log import ContextLogger
from .directory import DirectoryUnavailable, IStreamDirectory, Owner, StreamOwned

STREAM_PREFIX = "srs:stream:"
NODE_PREFIX = "srs:node:"
# Seconds a record lives without a heartbeat, and between heartbeats.
STREAM_TTL = 10.0
HEARTBEAT = 3.0
# Seconds one Redis command may take (connecting included).
REDIS_TIMEOUT = 2.0
# Longest wait between reconnects to Redis.
RECONNECT_MAX = 2.0

# KEYS[1] stream key; ARGV: owner JSON, TTL ms, node id.  1 when claimed,
# else the holder's record.
CLAIM = """
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then
  local ok, rec = pcall(cjson.decode, v)
  if ok and type(rec) == 'table' and rec.node ~= ARGV[3] then return v end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
# KEYS[1] stream key; ARGV[1] node id.  Deletes only this node's record.
RELEASE = """
local v = redis.call('GET', KEYS[1])
if v then
  local ok, rec = pcall(cjson.decode, v)
  if ok and type(rec) == 'table' and rec.node == ARGV[1] then return redis.call('DEL', KEYS[1]) end
end
return 0
"""


def redis_connect(host: str, port: int, db: int, password: str):
    """A txredisapi lazy connection that keeps reconnecting."""
    import txredisapi

    handler = txredisapi.lazyConnection(host, port, dbid=db, password=password or None, reconnect=True,
                                        connectTimeout=REDIS_TIMEOUT, replyTimeout=REDIS_TIMEOUT)
    factory = getattr(handler, "_factory", None)
    if factory is not None:
        factory.maxDelay = RECONNECT_MAX
    return handler


def _unavailable_errors() -> tuple:
    try:
        import txredisapi

        return (txredisapi.ConnectionError, TimeoutError, defer.TimeoutError, ConnectError, ConnectionLost,
                defer.CancelledError)
    except ImportError:  # pragma: no cover - txredisapi is a dependency
        return (TimeoutError, defer.TimeoutError, ConnectError, ConnectionLost, defer.CancelledError)


@implementer(IStreamDirectory)
class RedisDirectory:
    """:class:`~.directory.IStreamDirectory` in one Redis database.
    ``connect()`` returns a txredisapi-like client (``eval``, ``get``,
    ``set``, ``disconnect``); tests pass a fake one."""

    def __init__(self, clock, host: str = "127.0.0.1", port: int = 6379, db: int = 0, password: str = "",
                 connect=None, ttl: float = STREAM_TTL, heartbeat: float = HEARTBEAT,
                 timeout: float = REDIS_TIMEOUT) -> None:
        self.clock = clock
        self.where = f"redis {host}:{port} db {db}"
        self._connect = connect or (lambda: redis_connect(host, port, db, password))
        self.ttl = ttl
        self.interval = heartbeat
        self.timeout = timeout
        self.log = ContextLogger("redis")
        self.client = None
        self.mine: dict[str, Owner] = {}  # streams this node registered: refreshed by the heartbeat
        self.nodes: dict[str, Owner] = {}  # this server's node records
        self.up: bool | None = None  # None: not known yet
        self._loop: task.LoopingCall | None = None
        self._beating = False

    # ---- life ----------------------------------------------------------------
    def start(self) -> None:
        if self.client is None:
            self.client = self._connect()
        if self._loop is None:
            self._loop = task.LoopingCall(self.heartbeat)
            self._loop.clock = self.clock
            self._loop.start(self.interval, now=True)

    def stop(self):
        """Remove this node's records (best effort) and disconnect."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self.client is None:
            return defer.succeed(None)
        ds = [self.unregister(key, owner) for key, owner in list(self.mine.items())]
        d = defer.DeferredList(ds, consumeErrors=True)
        client, self.client = self.client, None

        def disconnect(_):
            try:
                return client.disconnect()
            except Exception:  # noqa: BLE001 - never connected
                return None

        d.addBoth(disconnect)
        d.addErrback(lambda _f: None)
        return d

    # ---- calls ---------------------------------------------------------------
    def _call(self, what: str, method: str, *args, probe: bool = False, **kw):
        """One Redis command, bounded by ``timeout``; connection problems
        become DirectoryUnavailable (and mark Redis down).  While Redis is
        known to be down only the heartbeat (``probe``) tries: a publish or
        a lookup fails at once instead of waiting for the timeout."""
        if self.client is None:
            return defer.fail(DirectoryUnavailable(f"{self.where}: not started"))
        if self.up is False and not probe:
            return defer.fail(DirectoryUnavailable(f"{self.where}: down"))
        try:
            d = getattr(self.client, method)(*args, **kw)
        except Exception as e:  # noqa: BLE001 - e.g. "Not connected"
            d = defer.fail(e)
        d.addTimeout(self.timeout, self.clock)

        def ok(value):
            self._mark(True)
            return value

        def failed(failure):
            if failure.check(*_unavailable_errors()):
                self._mark(False, f"{what}: {failure.getErrorMessage() or failure.type.__name__}")
                raise DirectoryUnavailable(f"{self.where}: {failure.getErrorMessage() or failure.type.__name__}")
            return failure

        d.addCallbacks(ok, failed)
        return d

    def _mark(self, up: bool, why: str = "") -> None:
        if up == self.up:
            return
        was, self.up = self.up, up
        if up:
            if was is False:
                self.log.trace(f"cluster: {self.where} is back; register {len(self.mine)} stream(s) again")
                self.clock.callLater(0, self.heartbeat)
            else:
                self.log.trace(f"cluster: connected to {self.where}")
        else:
            self.log.error(f"cluster: {self.where} unreachable ({why}); local streams go on, remote lookups "
                           f"fail, retry every {self.interval:g}s")

    # ---- IStreamDirectory ----------------------------------------------------
    def register(self, key: str, owner: Owner):
        self.mine[key] = owner
        self.nodes.setdefault(owner.node, owner)
        d = self._claim(key, owner)

        def refused(failure):
            if failure.check(StreamOwned) and self.mine.get(key) is owner:
                del self.mine[key]
            return failure

        d.addErrback(refused)
        return d

    def _claim(self, key: str, owner: Owner, probe: bool = False):
        d = self._call(f"claim {key}", "eval", CLAIM, [STREAM_PREFIX + key],
                       [owner.to_json(), int(self.ttl * 1000), owner.node], probe=probe)

        def answered(value):
            if value == 1:
                return None
            try:
                holder = Owner.from_json(value)
            except ValueError:
                holder = Owner(str(value)[:64])
            raise StreamOwned(key, holder)

        d.addCallback(answered)
        return d

    def unregister(self, key: str, owner: Owner):
        if self.mine.get(key) is not None and self.mine[key].node == owner.node:
            del self.mine[key]
        d = self._call(f"release {key}", "eval", RELEASE, [STREAM_PREFIX + key], [owner.node])
        d.addCallback(lambda _: None)
        return d

    def lookup(self, key: str):
        d = self._call(f"lookup {key}", "get", STREAM_PREFIX + key)

        def parsed(value):
            if value is None:
                return None
            try:
                return Owner.from_json(value)
            except ValueError as e:
                self.log.warn(f"cluster: ignore the record of {key} in {self.where}: {e}")
                return None

        d.addCallback(parsed)
        return d

    # ---- heartbeat -----------------------------------------------------------
    @defer.inlineCallbacks
    def heartbeat(self):
        """Refresh this node's records (re-create them after a Redis restart).
        One at a time; never fails."""
        if self._beating or self.client is None:
            return
        self._beating = True
        try:
            ms = int(self.ttl * 1000)
            for node, owner in list(self.nodes.items()):
                yield self._call(f"node {node}", "set", NODE_PREFIX + node, owner.to_json(), pexpire=ms, probe=True)
            for key, owner in list(self.mine.items()):
                try:
                    yield self._claim(key, owner, probe=True)
                except StreamOwned as e:
                    # Both published it while Redis was away: the other claimed it first.
                    self.log.error(f"cluster: {e}; this node keeps publishing it locally, unlisted")
                    if self.mine.get(key) is owner:
                        del self.mine[key]
        except DirectoryUnavailable:
            pass  # logged once by _mark
        except Exception as e:  # noqa: BLE001 - a heartbeat never stops the loop
            self.log.error(f"cluster: heartbeat to {self.where}: {type(e).__name__}: {e}")
        finally:
            self._beating = False

    def add_node(self, owner: Owner) -> None:
        """List this server (``srs:node:``) even before it publishes."""
        self.nodes[owner.node] = owner


class RedisDirectories:
    """One :class:`RedisDirectory` per Redis database the vhosts name,
    made on first use; ``for_vhost`` is a ``directory_for`` for
    :class:`~.relay.ClusterRelay`."""

    def __init__(self, ctx, node: Owner, factory=RedisDirectory) -> None:
        self.ctx = ctx
        self.node = node
        self.factory = factory
        self.directories: dict[tuple, RedisDirectory] = {}
        self.running = False

    def for_vhost(self, vhost: str):
        conf = self.ctx.vhost(vhost)
        if conf is None or not conf.enabled or not conf.cluster.uses_redis:
            return None
        r = conf.cluster.redis
        where = (r.host, r.port, r.db, r.password)
        directory = self.directories.get(where)
        if directory is None:
            directory = self.factory(self.ctx.clock, r.host, r.port, r.db, r.password)
            directory.add_node(self.node)
            self.directories[where] = directory
            if self.running:
                directory.start()
        return directory

    def start(self) -> None:
        self.running = True
        for vhost in list(getattr(self.ctx.config, "vhosts", {})):
            self.for_vhost(vhost)
        for directory in self.directories.values():
            directory.start()

    def stop(self):
        self.running = False
        return defer.DeferredList([d.stop() for d in self.directories.values()], consumeErrors=True)


__all__ = ["HEARTBEAT", "REDIS_TIMEOUT", "STREAM_TTL", "RedisDirectories", "RedisDirectory", "redis_connect"]
