"""RedisDirectory with a fake client (no socket): the claim and release
scripts' answers, the heartbeat refreshing this node's records, Redis down
(calls time out into DirectoryUnavailable, one log line) and back (records
registered again); the vhost -> directory mapping; the node's endpoints.
The real Redis is exercised in tests/integration/test_cluster_redis.py."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from srs_twisted import config as srs_config
from srs_twisted.cluster.directory import DirectoryUnavailable, IStreamDirectory, Owner, StreamOwned
from srs_twisted.cluster.origin_cluster import advertised_host, node_endpoints, this_node
from srs_twisted.cluster.redis_directory import (
    CLAIM,
    HEARTBEAT,
    NODE_PREFIX,
    REDIS_TIMEOUT,
    RELEASE,
    STREAM_PREFIX,
    STREAM_TTL,
    RedisDirectories,
    RedisDirectory,
)

from .fakes import make_ctx

ME = Owner("10.0.0.1:1935", {"rtmp": "10.0.0.1:1935"})
OTHER = Owner("10.0.0.2:1935", {"rtmp": "10.0.0.2:1935"})
KEY = "__defaultVhost__/live/s"


class FakeRedis:
    """Runs the directory's two scripts in Python; ``down`` makes every call
    hang (as a lazy txredisapi connection waiting to reconnect)."""

    def __init__(self):
        self.data: dict[str, str] = {}
        self.ttl: dict[str, int] = {}
        self.down = False
        self.calls: list[tuple] = []

    def _answer(self, value):
        return defer.Deferred() if self.down else defer.succeed(value)

    def eval(self, script, keys, args):
        self.calls.append(("eval", keys[0]))
        if self.down:
            return defer.Deferred()
        key = keys[0]
        held = self.data.get(key)
        if script == CLAIM:
            if held is not None and held != args[0] and Owner.from_json(held).node != args[2]:
                return defer.succeed(held)
            self.data[key], self.ttl[key] = args[0], args[1]
            return defer.succeed(1)
        assert script == RELEASE
        if held is not None and Owner.from_json(held).node == args[0]:
            del self.data[key]
            return defer.succeed(1)
        return defer.succeed(0)

    def get(self, key):
        self.calls.append(("get", key))
        return self._answer(self.data.get(key))

    def set(self, key, value, pexpire=None):
        self.calls.append(("set", key))
        if not self.down:
            self.data[key], self.ttl[key] = value, pexpire
        return self._answer(True)

    def disconnect(self):
        return defer.succeed(None)


class RedisDirectoryTests(unittest.TestCase):
    def setUp(self):
        self.clock = Clock()
        self.redis = FakeRedis()
        self.d = RedisDirectory(self.clock, connect=lambda: self.redis)
        self.d.add_node(ME)
        self.d.start()

    def tearDown(self):
        self.redis.down = False
        return self.d.stop()

    def pass_time(self, seconds: float) -> None:
        for _ in range(int(seconds * 10)):
            self.clock.advance(0.1)

    def test_interface_and_node_record(self):
        self.assertTrue(verifyObject(IStreamDirectory, self.d))
        self.assertEqual(Owner.from_json(self.redis.data[NODE_PREFIX + ME.node]).endpoints, ME.endpoints)
        self.assertEqual(self.redis.ttl[NODE_PREFIX + ME.node], int(STREAM_TTL * 1000))

    def test_claim_lookup_release(self):
        self.successResultOf(self.d.register(KEY, ME))
        self.assertEqual(self.redis.ttl[STREAM_PREFIX + KEY], int(STREAM_TTL * 1000))
        self.assertEqual(self.successResultOf(self.d.lookup(KEY)).node, ME.node)
        self.successResultOf(self.d.unregister(KEY, ME))
        self.assertIsNone(self.successResultOf(self.d.lookup(KEY)))
        self.assertEqual(self.d.mine, {})

    def test_held_by_another_node(self):
        self.redis.data[STREAM_PREFIX + KEY] = OTHER.to_json()
        f = self.failureResultOf(self.d.register(KEY, ME), StreamOwned)
        self.assertEqual(f.value.owner.node, OTHER.node)
        self.assertEqual(self.d.mine, {})
        self.successResultOf(self.d.unregister(KEY, ME))
        self.assertIn(STREAM_PREFIX + KEY, self.redis.data)

    def test_a_bad_record_is_no_owner(self):
        self.redis.data[STREAM_PREFIX + KEY] = "garbage"
        self.assertIsNone(self.successResultOf(self.d.lookup(KEY)))

    def test_heartbeat_refreshes_and_rebuilds_after_a_restart(self):
        self.successResultOf(self.d.register(KEY, ME))
        self.redis.data.clear()  # Redis restarted, empty
        self.clock.advance(HEARTBEAT)
        self.assertEqual(Owner.from_json(self.redis.data[STREAM_PREFIX + KEY]).node, ME.node)
        self.assertIn(NODE_PREFIX + ME.node, self.redis.data)

    def test_down_then_back(self):
        self.successResultOf(self.d.register(KEY, ME))
        self.redis.down = True
        lookup = self.d.lookup("__defaultVhost__/live/other")
        self.assertNoResult(lookup)
        self.clock.advance(REDIS_TIMEOUT)
        self.failureResultOf(lookup, DirectoryUnavailable)
        self.assertIs(self.d.up, False)
        # Known down: a publish fails at once (no wait), and is remembered ...
        claim = self.d.register("__defaultVhost__/live/new", ME)
        self.failureResultOf(claim, DirectoryUnavailable)
        self.failureResultOf(self.d.lookup(KEY), DirectoryUnavailable)
        self.pass_time(HEARTBEAT + REDIS_TIMEOUT)  # heartbeats fail quietly
        # ... and registered once Redis answers again (a restart: empty).
        self.redis.down = False
        self.redis.data.clear()
        self.pass_time(HEARTBEAT + REDIS_TIMEOUT)
        self.assertIs(self.d.up, True)
        self.assertIn(STREAM_PREFIX + "__defaultVhost__/live/new", self.redis.data)
        self.assertIn(STREAM_PREFIX + KEY, self.redis.data)

    def test_another_node_took_it_while_down(self):
        self.successResultOf(self.d.register(KEY, ME))
        self.redis.data[STREAM_PREFIX + KEY] = OTHER.to_json()
        self.clock.advance(HEARTBEAT)
        self.assertNotIn(KEY, self.d.mine)
        self.assertEqual(Owner.from_json(self.redis.data[STREAM_PREFIX + KEY]).node, OTHER.node)

    def test_stop_releases_this_nodes_streams(self):
        self.successResultOf(self.d.register(KEY, ME))
        self.successResultOf(self.d.stop())
        self.assertNotIn(STREAM_PREFIX + KEY, self.redis.data)
        self.failureResultOf(self.d.lookup(KEY), DirectoryUnavailable)


CONF = """
listen 10.1.2.3:19350;
http_server { enabled on; listen 8081; }
http_api { enabled on; listen 1986; }
srt_server { enabled on; listen 10081; }
vhost __defaultVhost__ { cluster { mode local; origin_cluster on; redis { enabled on; port 6390; db 1; } } }
vhost edge.example.com { cluster { mode remote; origin 10.1.2.4; redis { enabled on; port 6390; db 1; } } }
vhost legacy.example.com { cluster { mode local; origin_cluster on; coworkers 127.0.0.1:9091; } }
vhost other.example.com { cluster { origin_cluster on; redis { enabled on; host 10.9.9.9; } } }
"""


class ConfigTests(unittest.TestCase):
    def test_redis_config_and_env(self):
        cfg = srs_config.load_string(CONF, environ={"SRS_VHOST_CLUSTER_REDIS_PASSWORD": "pw"})
        r = cfg.vhost("__defaultVhost__").cluster.redis
        self.assertEqual((r.enabled, r.host, r.port, r.password, r.db), (True, "127.0.0.1", 6390, "pw", 1))
        self.assertTrue(cfg.vhost("__defaultVhost__").cluster.uses_redis)
        self.assertTrue(cfg.vhost("edge.example.com").cluster.uses_redis)
        self.assertFalse(cfg.vhost("legacy.example.com").cluster.uses_redis)

    def test_one_directory_per_database(self):
        ctx = make_ctx(CONF)
        made = []

        def factory(clock, host, port, db, password):
            made.append((host, port, db, password))
            return RedisDirectory(clock, host, port, db, password, connect=FakeRedis)

        dirs = RedisDirectories(ctx, ME, factory)
        self.assertIs(dirs.for_vhost("__defaultVhost__"), dirs.for_vhost("edge.example.com"))
        self.assertIsNone(dirs.for_vhost("legacy.example.com"))
        self.assertIsNot(dirs.for_vhost("other.example.com"), dirs.for_vhost("__defaultVhost__"))
        self.assertEqual(sorted(made), [("10.9.9.9", 6379, 0, ""), ("127.0.0.1", 6390, 1, "")])

    def test_node_endpoints(self):
        cfg = srs_config.load_string(CONF)
        node = this_node(cfg)
        self.assertEqual(node.node, "10.1.2.3:19350")
        self.assertEqual(node.endpoints, {"rtmp": "10.1.2.3:19350", "http": "10.1.2.3:8081",
                                          "api": "10.1.2.3:1986", "srt": "10.1.2.3:10081"})
        plain = srs_config.load_string("listen 1935; vhost v {}")
        self.assertEqual(advertised_host(plain, "", ips=lambda: ["fe80::1", "192.168.1.5"]), "192.168.1.5")
        self.assertEqual(advertised_host(plain, "127.0.0.1"), "127.0.0.1")
        self.assertEqual(node_endpoints(plain, "::1")["rtmp"], "[::1]:1935")
