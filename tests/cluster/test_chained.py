"""The chained directory (workers N in a Redis origin cluster): this machine's
workers first (the supervisor's directory), then the cluster's for other
machines; claims, refusals, releases and lookups across both."""

from __future__ import annotations

from twisted.trial import unittest
from zope.interface.verify import verifyObject

from srs_twisted.cluster.chained import ChainedDirectory
from srs_twisted.cluster.directory import DirectoryUnavailable, IStreamDirectory, LocalDirectory, Owner, StreamOwned

from .test_directory import DownDirectory as _Down


class DownDirectory(_Down):
    def unregister(self, key, owner):
        self._check()
        return super().unregister(key, owner)

KEY = "__defaultVhost__/live/s"
MACHINE_A = Owner("10.0.0.1:1935", {"rtmp": "10.0.0.1:1935", "http": "10.0.0.1:8080"})
MACHINE_B = Owner("10.0.0.2:1935", {"rtmp": "10.0.0.2:1935", "http": "10.0.0.2:8080"})
W0 = Owner("w0", {"rtmp": "127.0.0.1:40000"})
W1 = Owner("w1", {"rtmp": "127.0.0.1:40001"})


class Recording(LocalDirectory):
    """A LocalDirectory that records the calls it got, in order."""

    def __init__(self, calls: list, name: str) -> None:
        super().__init__()
        self.calls, self.name = calls, name

    def register(self, key, owner):
        self.calls.append((self.name, "register", owner.node))
        return super().register(key, owner)

    def unregister(self, key, owner):
        self.calls.append((self.name, "unregister", owner.node))
        return super().unregister(key, owner)


class ChainedDirectoryTests(unittest.TestCase):
    def setUp(self):
        self.calls = []
        self.redis = Recording(self.calls, "redis")  # shared by both machines
        self.local_a = Recording(self.calls, "local")  # machine A's supervisor
        self.local_b = LocalDirectory()
        # Two workers of machine A share its supervisor's directory and the Redis.
        self.a0 = ChainedDirectory(self.local_a, self.redis, MACHINE_A)
        self.a1 = ChainedDirectory(self.local_a, self.redis, MACHINE_A)
        self.b0 = ChainedDirectory(self.local_b, self.redis, MACHINE_B)

    def test_interface(self):
        self.assertTrue(verifyObject(IStreamDirectory, self.a0))

    def test_publish_claims_locally_for_the_worker_then_in_redis_for_the_machine(self):
        self.successResultOf(self.a0.register(KEY, W0))
        self.assertEqual(self.calls, [("local", "register", "w0"), ("redis", "register", MACHINE_A.node)])
        self.assertEqual(self.local_a.owners[KEY], W0)
        self.assertEqual(self.redis.owners[KEY].endpoints, MACHINE_A.endpoints)
        # A heartbeat-like second claim by the holder is fine.
        self.successResultOf(self.a0.register(KEY, W0))

    def test_lookup_on_the_machine_answers_the_owner_worker(self):
        self.successResultOf(self.a0.register(KEY, W0))
        self.assertEqual(self.successResultOf(self.a1.lookup(KEY)).endpoints, W0.endpoints)

    def test_lookup_on_another_machine_answers_the_machine_shared_ports(self):
        self.successResultOf(self.a0.register(KEY, W0))
        owner = self.successResultOf(self.b0.lookup(KEY))
        self.assertEqual(owner.node, MACHINE_A.node)
        self.assertEqual(owner.endpoint("rtmp"), "10.0.0.1:1935")
        self.assertIsNone(self.successResultOf(self.b0.lookup("__defaultVhost__/live/other")))

    def test_own_machine_in_redis_without_a_local_owner_is_published_nowhere(self):
        # A worker that died: the supervisor dropped its stream, Redis still has the record.
        self.successResultOf(self.redis.register(KEY, MACHINE_A))
        self.assertIsNone(self.successResultOf(self.a1.lookup(KEY)))

    def test_second_publisher_on_another_worker_refused_locally(self):
        self.successResultOf(self.a0.register(KEY, W0))
        del self.calls[:]
        failure = self.failureResultOf(self.a1.register(KEY, W1), StreamOwned)
        self.assertEqual(failure.value.owner.node, "w0")
        self.assertEqual(self.calls, [("local", "register", "w1")])  # Redis not asked
        self.assertEqual(self.local_a.owners[KEY], W0)

    def test_second_publisher_on_another_machine_refused_and_local_claim_given_back(self):
        self.successResultOf(self.b0.register(KEY, Owner("w1", {})))
        failure = self.failureResultOf(self.a0.register(KEY, W0), StreamOwned)
        self.assertEqual(failure.value.owner.node, MACHINE_B.node)
        self.assertNotIn(KEY, self.local_a.owners)  # another worker of A is not blocked by a refused claim
        self.assertEqual(self.redis.owners[KEY].node, MACHINE_B.node)

    def test_unpublish_releases_redis_first_then_locally(self):
        self.successResultOf(self.a0.register(KEY, W0))
        del self.calls[:]
        self.successResultOf(self.a0.unregister(KEY, W0))
        self.assertEqual(self.calls, [("redis", "unregister", MACHINE_A.node), ("local", "unregister", "w0")])
        self.assertEqual(self.redis.owners, {})
        self.assertEqual(self.local_a.owners, {})
        # Then another machine may publish it, and A's workers find it there.
        self.successResultOf(self.b0.register(KEY, Owner("w0", {})))
        self.assertEqual(self.successResultOf(self.a1.lookup(KEY)).node, MACHINE_B.node)

    def test_unregister_by_a_worker_that_does_not_hold_it_keeps_the_machine_record(self):
        self.successResultOf(self.a0.register(KEY, W0))
        self.successResultOf(self.a1.unregister(KEY, W1))
        self.assertEqual(self.redis.owners[KEY].node, MACHINE_A.node)
        self.assertEqual(self.local_a.owners[KEY], W0)

    def test_a_dead_workers_record_is_released_by_another_worker(self):
        self.successResultOf(self.a0.register(KEY, W0))
        del self.local_a.owners[KEY]  # w0 died: the supervisor dropped its claim
        self.assertTrue(self.successResultOf(self.a1.release_orphan(KEY)))
        self.assertEqual(self.redis.owners, {})
        # Not when another worker of the machine publishes it by then.
        self.successResultOf(self.a1.register(KEY, W1))
        self.assertFalse(self.successResultOf(self.a0.release_orphan(KEY)))
        self.assertEqual(self.redis.owners[KEY].node, MACHINE_A.node)
        # Never another machine's record.
        self.successResultOf(self.a1.unregister(KEY, W1))
        self.successResultOf(self.b0.register(KEY, Owner("w0", {})))
        self.successResultOf(self.a1.release_orphan(KEY))
        self.assertEqual(self.redis.owners[KEY].node, MACHINE_B.node)

    def test_redis_down_keeps_the_local_claim_and_fails_unavailable(self):
        redis = DownDirectory()
        a0 = ChainedDirectory(self.local_a, redis, MACHINE_A)
        a1 = ChainedDirectory(self.local_a, redis, MACHINE_A)
        self.failureResultOf(a0.register(KEY, W0), DirectoryUnavailable)
        self.assertEqual(self.local_a.owners[KEY], W0)
        # Workers of the machine still find it; another worker's publish is still refused.
        self.assertEqual(self.successResultOf(a1.lookup(KEY)).node, "w0")
        self.failureResultOf(a1.register(KEY, W1), StreamOwned)
        # Remote lookups fail as the directory is down (the relay logs and retries).
        self.failureResultOf(a1.lookup("__defaultVhost__/live/other"), DirectoryUnavailable)
        # Unpublish still frees the local claim.
        self.failureResultOf(a0.unregister(KEY, W0), DirectoryUnavailable)
        self.assertEqual(self.local_a.owners, {})

    def test_supervisor_away_still_finds_other_machines(self):
        self.successResultOf(self.b0.register(KEY, Owner("w0", {})))
        gone = DownDirectory()
        a0 = ChainedDirectory(gone, self.redis, MACHINE_A)
        self.assertEqual(self.successResultOf(a0.lookup(KEY)).node, MACHINE_B.node)
        self.failureResultOf(a0.register("__defaultVhost__/live/t", W0), DirectoryUnavailable)
        self.assertNotIn("__defaultVhost__/live/t", self.redis.owners)


class DetourTests(unittest.TestCase):
    """A pull that gets data through a detour (it is connected to a node that itself
    pulls the stream from its new owner, after the publisher moved) follows the
    stream to its owner within RELAY_RECHECK seconds."""

    def test_a_pull_with_data_follows_the_owner_when_the_directory_names_another_node(self):
        from srs_twisted.cluster.relay import RELAY_RECHECK, install

        from .fakes import FakeConnector, add_player, make_ctx, video

        ctx = make_ctx("vhost __defaultVhost__ { play { mw_latency 0; } }")
        directory = LocalDirectory()
        rtmp = FakeConnector()
        install(ctx, lambda vhost: directory, Owner("w1", {}), connect_rtmp=rtmp,
                supervisor_options={"rng": lambda: 0.5})
        directory.owners[KEY] = MACHINE_A
        add_player(ctx, ctx.registry.fetch_or_create("__defaultVhost__", "live", "s"))
        a = rtmp.last
        a.succeed()
        directory.owners[KEY] = W0  # moved to worker 0 of this machine; A now relays it from here
        for i in range(int(RELAY_RECHECK * 10) - 5):
            a.on_packet(video(i * 100, key=not i))
            ctx.clock.advance(0.1)
        self.assertFalse(a.conn.transport.aborted)  # data flows: not before RELAY_RECHECK
        for i in range(20):
            a.on_packet(video(10000 + i * 100))
            ctx.clock.advance(0.1)
        self.assertTrue(a.conn.transport.aborted)
        ctx.clock.advance(2)
        self.assertEqual(rtmp.last.target.endpoint, "127.0.0.1:40000")
        self.assertEqual(len(rtmp.attempts), 2)
        # Connected to the owner: the checks leave it alone.
        b = rtmp.last
        b.succeed()
        for i in range(200):
            b.on_packet(video(20000 + i * 100, key=not i))
            ctx.clock.advance(0.1)
        self.assertFalse(b.conn.transport.aborted)
        self.assertEqual(len(rtmp.attempts), 2)


class HandOverTests(unittest.TestCase):
    """A stream pulled from another node then published here (the publisher moved
    to this node): the pull stops and hands the source over, and an HTTP-FLV
    player stays (an RTMP one always did).  A real unpublish still ends it."""

    def setUp(self):
        from srs_twisted.cluster.relay import install

        from .fakes import FakeConnector, make_ctx

        self.ctx = make_ctx("vhost __defaultVhost__ { play { mw_latency 0; } }")
        self.directory = LocalDirectory()
        self.rtmp = FakeConnector()
        self.relay = install(self.ctx, lambda vhost: self.directory, Owner("w1", {}), connect_rtmp=self.rtmp,
                             supervisor_options={"rng": lambda: 0.5})

    def http_player(self, source):
        from srs_twisted.http.stream import HttpStreamSink

        ended = []
        sink = HttpStreamSink(source, "flv", lambda data: None, on_unpublish=lambda: ended.append(True))
        source.subscribe(sink)
        self.ctx.registry._players_changed(source)
        return ended

    def test_http_player_stays_when_a_local_publisher_takes_the_stream_over(self):
        from srs_twisted.cluster.relay import DirectoryPolicy
        from srs_twisted.context import ClientInfo
        from srs_twisted.url import StreamRequest

        from ..live.test_source import Publisher

        self.directory.owners[KEY] = MACHINE_B
        source = self.ctx.registry.fetch_or_create("__defaultVhost__", "live", "s")
        ended = self.http_player(source)
        self.assertEqual(len(self.rtmp.attempts), 1)
        self.rtmp.last.succeed()
        del self.directory.owners[KEY]  # B's publisher stopped; it is published here next
        req = StreamRequest(vhost="__defaultVhost__", app="live", stream="s")
        self.successResultOf(DirectoryPolicy(self.ctx).on_publish(ClientInfo(ip="127.0.0.1", request=req, publish=True)))
        self.assertIsNone(source.publisher)
        self.assertEqual(ended, [])
        self.assertFalse(getattr(source, "handing_over", False))
        pub = Publisher()
        self.ctx.registry.publish(source, pub)
        self.assertEqual(ended, [])
        # The local publisher leaving is an end, as in SRS.
        self.ctx.registry.unpublish(source)
        self.assertEqual(ended, [True])
