"""SRS's heartbeat: the body, the timer, errors that do not stop it."""

from __future__ import annotations

import json
import os

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial import unittest

from srs_twisted import config as srs_config
from srs_twisted import log as srs_log
from srs_twisted.context import ServerContext
from srs_twisted.heartbeat import HeartbeatService, local_ips

BASE = "heartbeat { enabled on; interval 10; url http://127.0.0.1:12025/api/v1/srs/register; %s }\n"


# The system fields of SRS's summaries, in its order.
SYSTEM_FIELDS = (
    "cpu_percent disk_read_KBps disk_write_KBps disk_busy_percent mem_ram_kbyte mem_ram_percent "
    "mem_swap_kbyte mem_swap_percent cpus cpus_online uptime ilde_time load_1m load_5m load_15m "
    "net_sample_time net_recv_bytes net_send_bytes net_recvi_bytes net_sendi_bytes "
    "srs_sample_time srs_recv_bytes srs_send_bytes conn_sys conn_sys_et conn_sys_tw conn_sys_udp conn_srs"
).split()


class Recorder:
    """A poster that records (time, url, body) and replies 200."""

    def __init__(self, clock):
        self.clock = clock
        self.calls = []

    def __call__(self, url, body):
        self.calls.append((self.clock.seconds(), url, body))
        return defer.succeed((200, b'{"code":0}'))


def make(heartbeat: str = "", extra: str = "", environ=None, ips=("10.0.0.1", "10.0.0.2")):
    clock = Clock()
    ctx = ServerContext(srs_config.load_string(BASE % heartbeat + extra), clock)
    poster = Recorder(clock)
    svc = HeartbeatService(ctx, poster=poster, environ=environ or {}, ips=lambda: list(ips))
    return ctx, clock, poster, svc


class TimerTests(unittest.TestCase):
    def test_posts_every_interval_the_first_after_one(self):
        ctx, clock, poster, svc = make()
        svc.startService()
        clock.advance(9.9)
        self.assertEqual(poster.calls, [])
        clock.advance(0.1)
        self.assertEqual([t for t, _, _ in poster.calls], [10.0])
        clock.advance(10)
        clock.advance(10)
        self.assertEqual([t for t, _, _ in poster.calls], [10.0, 20.0, 30.0])
        self.assertEqual({url for _, url, _ in poster.calls}, {"http://127.0.0.1:12025/api/v1/srs/register"})
        self.assertEqual(svc.sent, 3)
        svc.stopService()
        clock.advance(100)
        self.assertEqual(len(poster.calls), 3)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_disabled_posts_nothing(self):
        clock = Clock()
        ctx = ServerContext(srs_config.load_string("heartbeat { enabled off; }"), clock)
        poster = Recorder(clock)
        svc = HeartbeatService(ctx, poster=poster)
        svc.startService()
        clock.advance(100)
        self.assertEqual(poster.calls, [])
        self.assertIsNone(svc.loop)
        svc.stopService()

    def test_failures_are_logged_and_the_loop_goes_on(self):
        ctx, clock, _, svc = make()
        calls = []

        def poster(url, body):
            calls.append(clock.seconds())
            if len(calls) == 1:
                raise ConnectionRefusedError("refused")
            if len(calls) == 2:
                return defer.fail(TimeoutError("no answer"))
            if len(calls) == 3:
                return defer.succeed((500, b"oops"))
            return defer.succeed((200, b""))

        svc.poster = poster
        events = []
        stop = srs_log.capture(events)
        self.addCleanup(stop)
        svc.startService()
        self.addCleanup(svc.stopService)
        for _ in range(4):
            clock.advance(10)
        self.assertEqual(calls, [10.0, 20.0, 30.0, 40.0])
        self.assertEqual((svc.failed, svc.sent), (2, 2))
        self.assertTrue(svc.loop.running)
        messages = [m for _, cid, m in events if cid == svc.log.cid]
        self.assertTrue(any("refused" in m for m in messages), messages)
        self.assertTrue(any("no answer" in m for m in messages), messages)
        self.assertTrue(any("status=500" in m for m in messages), messages)

    def test_a_slow_post_delays_the_next_beat(self):
        ctx, clock, _, svc = make()
        pending = []

        def poster(url, body):
            pending.append(defer.Deferred())
            return pending[-1]

        svc.poster = poster
        svc.startService()
        self.addCleanup(svc.stopService)
        clock.advance(10)
        clock.advance(10)
        clock.advance(5)
        self.assertEqual(len(pending), 1)
        pending[0].errback(TimeoutError("slow"))
        clock.advance(5)
        self.assertEqual(len(pending), 2)
        self.assertEqual(svc.failed, 1)


class BodyTests(unittest.TestCase):
    def test_identity_only(self):
        ctx, clock, poster, svc = make("device_id my-box;")
        body = svc.body()
        self.assertEqual(
            body,
            {
                "device_id": "my-box",
                "ip": "10.0.0.1",
                "server": ctx.server_id,
                "service": ctx.service_id,
                "pid": str(os.getpid()),
            },
        )
        self.assertEqual(list(body), ["device_id", "ip", "server", "service", "pid"])

    def test_device_id_defaults_to_empty(self):
        _, _, _, svc = make()
        self.assertEqual(svc.body()["device_id"], "")

    def test_ip_from_stats_network_index(self):
        _, _, _, svc = make(extra="stats { network 1; }")
        self.assertEqual(svc.body()["ip"], "10.0.0.2")
        _, _, _, svc = make(extra="stats { network 3; }")  # modulo the count, as SRS
        self.assertEqual(svc.body()["ip"], "10.0.0.2")

    def test_ip_from_environment(self):
        _, _, _, svc = make(environ={"SRS_DEVICE_IP": "203.0.113.9"})
        self.assertEqual(svc.body()["ip"], "203.0.113.9")

    def test_no_local_address(self):
        _, _, _, svc = make(ips=())
        self.assertEqual(svc.body()["ip"], "")

    def test_ports_with_only_rtmp(self):
        _, _, _, svc = make("ports on;", "listen 19352 19353;")
        body = svc.body()
        self.assertEqual(body["rtmp"], ["19352", "19353"])
        for key in ("http", "api", "srt", "rtc", "summaries"):
            self.assertNotIn(key, body)

    def test_ports_of_every_enabled_server(self):
        extra = """
        listen 1935;
        http_server { enabled on; listen 8080; }
        http_api { enabled on; listen 1985; }
        srt_server { enabled on; listen 10080; }
        rtc_server { enabled on; listen 8000; tcp { enabled on; listen 8001; } }
        """
        _, _, _, svc = make("ports on;", extra)
        body = svc.body()
        self.assertEqual(
            list(body),
            ["device_id", "ip", "server", "service", "pid", "rtmp", "http", "api", "srt", "rtc"],
        )
        self.assertEqual(body["rtmp"], ["1935"])
        self.assertEqual(body["http"], ["8080"])
        self.assertEqual(body["api"], ["1985"])
        self.assertEqual(body["srt"], ["udp://0.0.0.0:10080"])
        self.assertEqual(body["rtc"], ["udp://0.0.0.0:8000", "tcp://0.0.0.0:8001"])

    def test_rtc_without_tcp(self):
        _, _, _, svc = make("ports on;", "rtc_server { enabled on; listen 8100; }")
        self.assertEqual(svc.body()["rtc"], ["udp://0.0.0.0:8100"])

    def test_summaries_are_the_api_summaries(self):
        ctx, clock, _, svc = make("summaries on;")
        clock.advance(1234.5)
        body = svc.body()
        self.assertEqual(list(body)[-1], "summaries")
        data = body["summaries"]["data"]
        self.assertEqual(data["now_ms"], 1234500)
        me = data["self"]
        self.assertEqual(me["version"], "7.0.18")
        self.assertEqual(me["pid"], os.getpid())
        self.assertEqual(me["ppid"], os.getppid())
        self.assertEqual(me["cwd"], os.getcwd())
        self.assertEqual(me["srs_uptime"], 1234)
        self.assertGreater(me["mem_kbyte"], 0)
        self.assertIsInstance(me["cpu_percent"], float)
        self.assertIsInstance(data["ok"], bool)
        self.assertEqual(list(data), ["ok", "now_ms", "self", "system"])
        self.assertEqual(
            list(me),
            ["version", "pid", "ppid", "argv", "cwd", "mem_kbyte", "mem_percent", "cpu_percent", "srs_uptime"],
        )
        self.assertEqual(list(data["system"]), SYSTEM_FIELDS)
        self.assertEqual(data["system"]["srs_sample_time"], 1234500)
        self.assertEqual(data["system"]["conn_srs"], 0)
        json.dumps(body)  # all of it is JSON

    def test_summaries_source_is_injectable(self):
        ctx, clock, poster, svc = make("summaries on;")
        svc.summaries = lambda: {"ok": True}
        self.assertEqual(svc.body()["summaries"], {"data": {"ok": True}})

    def test_the_posted_body_is_the_body(self):
        ctx, clock, poster, svc = make("ports on; device_id d;")
        svc.startService()
        self.addCleanup(svc.stopService)
        clock.advance(10)
        self.assertEqual(poster.calls[0][2], svc.body())


class DefaultPosterTests(unittest.TestCase):
    """Without a poster the service POSTs JSON through the HTTP hooks' client."""

    def make(self):
        reactor = MemoryReactorClock()
        conf = BASE % "ports on; device_id d;" + "listen 1935;"
        ctx = ServerContext(srs_config.load_string(conf), reactor)
        svc = HeartbeatService(ctx, environ={}, ips=lambda: ["10.0.0.1"])
        return reactor, svc

    def test_posts_the_body_as_json(self):
        reactor, svc = self.make()
        results = []
        svc.beat().addBoth(results.append)
        host, port, factory, _, _ = reactor.tcpClients[0]
        self.assertEqual((host, port), ("127.0.0.1", 12025))
        proto = factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        head, _, body = transport.value().partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"POST /api/v1/srs/register HTTP/1.1\r\n"))
        self.assertIn(b"Content-Type: application/json", head)
        self.assertEqual(json.loads(body), svc.body())
        self.assertEqual(json.loads(body)["rtmp"], ["1935"])
        proto.dataReceived(b'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{"code":0}')
        self.assertEqual(results, [None])
        self.assertEqual((svc.sent, svc.failed), (1, 0))
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_no_reply_in_30_seconds_is_a_failure(self):
        reactor, svc = self.make()
        svc.beat()
        reactor.advance(29)
        self.assertEqual(svc.failed, 0)
        reactor.advance(1)
        self.assertEqual((svc.sent, svc.failed), (0, 1))


class LocalIpsTests(unittest.TestCase):
    def test_addresses(self):
        ips = local_ips()
        self.assertTrue(ips)
        self.assertTrue(all(isinstance(ip, str) and ip for ip in ips))
        if ips != ["127.0.0.1"]:
            self.assertNotIn("127.0.0.1", ips)
            self.assertNotIn("::1", ips)
