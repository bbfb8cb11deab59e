"""max_connections over every listener, and the open-file limit at start:
SrsService on a MemoryReactorClock, connections on StringTransports."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial import unittest

from srs_twisted import config as srs_config
from srs_twisted import service as service_module
from srs_twisted.limits import FileLimitError, check_file_limit, raise_file_limit
from srs_twisted.service import SrsService, StartError

RTMP, HTTP, API, EXPORTER = 19350, 18080, 19850, 19720

CONF = f"""
max_connections 3;
listen {RTMP};
http_server {{ enabled on; listen {HTTP}; }}
http_api {{ enabled on; listen {API}; }}
exporter {{ enabled on; listen {EXPORTER}; }}
vhost __defaultVhost__ {{ }}
"""


class ConnectionLimitTests(unittest.TestCase):
    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.srv = SrsService(srs_config.load_string(CONF), self.reactor)
        self.srv.startService()
        self.addCleanup(self.srv.stopService)
        self.factories = {port: factory for port, factory, _, _ in self.reactor.tcpServers}
        self.peer = 50000

    def connect(self, port):
        """A TCP connection accepted on ``port``: (protocol, transport)."""
        self.peer += 1
        addr = IPv4Address("TCP", "127.0.0.1", self.peer)
        proto = self.factories[port].buildProtocol(addr)
        transport = StringTransport(peerAddress=addr, hostAddress=IPv4Address("TCP", "127.0.0.1", port))
        proto.makeConnection(transport)
        return proto, transport

    def test_every_listener_counts(self):
        """Two RTMP connections and an HTTP one reach max_connections 3: the
        next connection, on any port (the API's here), is closed at once
        without reaching its protocol; when one leaves, one more gets in."""
        rtmp1, _ = self.connect(RTMP)
        self.connect(RTMP)
        http, http_transport = self.connect(HTTP)
        self.assertEqual(self.srv.ctx.connections, 3)
        self.assertEqual(len(self.srv.ctx.clients), 2)  # the RTMP ones
        for port in (API, HTTP, RTMP, EXPORTER):
            clients = len(self.srv.ctx.clients)
            refused, transport = self.connect(port)
            self.assertTrue(transport.disconnecting, port)
            self.assertEqual(transport.value(), b"")
            self.assertEqual(len(self.srv.ctx.clients), clients)  # never reached RTMP
            refused.connectionLost(None)
            self.assertEqual(self.srv.ctx.connections, 3)
        http.connectionLost(None)
        self.assertEqual(self.srv.ctx.connections, 2)
        api, transport = self.connect(API)
        self.assertFalse(transport.disconnecting)
        api.dataReceived(b"GET /api/v1/versions HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b'"major":', transport.value())
        rtmp1.connectionLost(None)
        self.assertEqual(self.srv.ctx.connections, 2)
        self.assertEqual(len(self.srv.ctx.clients), 1)

    def test_an_upgraded_connection_counts_until_its_socket_closes(self):
        """A WebSocket upgrade hands the socket to another protocol (autobahn
        swaps the wrapper's protocol): the connection is counted until the
        socket closes, whoever then owns it."""
        http, _ = self.connect(HTTP)
        http.wrappedProtocol = Protocol()  # what autobahn's WebSocketResource does
        self.assertEqual(self.srv.ctx.connections, 1)
        http.connectionLost(None)
        self.assertEqual(self.srv.ctx.connections, 0)

    def test_reload_changes_the_limit(self):
        for _ in range(3):
            self.connect(HTTP)
        self.assertTrue(self.connect(API)[1].disconnecting)
        self.srv.reload(srs_config.load_string(CONF.replace("max_connections 3", "max_connections 4")))
        self.reactor.advance(0)
        self.assertFalse(self.connect(API)[1].disconnecting)
        self.assertTrue(self.connect(API)[1].disconnecting)

    def test_refusal_is_logged(self):
        lines = []
        for factory in self.factories.values():
            factory.log = type("L", (), {"warn": lambda _self, m: lines.append(m)})()
        for _ in range(4):
            self.connect(RTMP)
        self.assertEqual(len(lines), 1)
        self.assertRegex(lines[0], r"^drop rtmp port 19350 client ip=127\.0\.0\.1:\d+, max=3, cur=3 ")


class FakeResource:
    RLIMIT_NOFILE = 7
    RLIM_INFINITY = -1

    def __init__(self, soft, hard, settable=True):
        self.limits = (soft, hard)
        self.settable = settable
        self.calls = []

    def getrlimit(self, which):
        assert which == self.RLIMIT_NOFILE
        return self.limits

    def setrlimit(self, which, value):
        self.calls.append(value)
        if not self.settable:
            raise ValueError("not allowed")
        self.limits = value


class FileLimitTests(unittest.TestCase):
    def test_soft_limit_raised_to_hard(self):
        rl = FakeResource(1024, 65536)
        self.assertEqual(raise_file_limit(rl), (65536, 65536))
        self.assertEqual(rl.calls, [(65536, 65536)])

    def test_already_at_hard(self):
        rl = FakeResource(4096, 4096)
        self.assertEqual(raise_file_limit(rl), (4096, 4096))
        self.assertEqual(rl.calls, [])

    def test_hard_limit_the_kernel_refuses(self):
        rl = FakeResource(1024, FakeResource.RLIM_INFINITY, settable=False)
        self.assertEqual(raise_file_limit(rl), (1024, -1))

    def test_real_process_limit(self):
        import resource

        soft, hard = raise_file_limit()
        self.assertEqual(resource.getrlimit(resource.RLIMIT_NOFILE)[0], soft if soft >= 0 else resource.RLIM_INFINITY)
        self.assertTrue(hard < 0 or soft == hard)

    def test_check_like_srs(self):
        check_file_limit(1000, 1129)
        check_file_limit(1000, -1)
        with self.assertRaises(FileLimitError) as e:
            check_file_limit(1000, 1024)
        self.assertIn("max_connections=1000", str(e.exception))
        self.assertIn("ulimit -HSn 10000", str(e.exception))
        with self.assertRaises(FileLimitError):
            check_file_limit(1000, 1128)

    def test_service_refuses_to_start_when_max_connections_does_not_fit(self):
        self.patch(service_module, "raise_file_limit", lambda: (1024, 1024))
        reactor = MemoryReactorClock()
        srv = SrsService(srs_config.load_string(f"listen {RTMP};\nvhost __defaultVhost__ {{}}"), reactor)
        with self.assertRaises(StartError) as e:
            srv.startService()
        self.assertIn("max_connections=1000 needs 1128 open files, system limit to 1024", str(e.exception))
        self.assertEqual(reactor.tcpServers, [])
        # twistd binds its ports in privilegedStartService: refused there too
        srv = SrsService(srs_config.load_string(f"listen {RTMP};\nvhost __defaultVhost__ {{}}"), reactor)
        self.assertRaises(StartError, srv.privilegedStartService)
        self.assertEqual(reactor.tcpServers, [])

    def test_service_raises_the_limit_at_start(self):
        seen = []
        self.patch(service_module, "raise_file_limit", lambda: seen.append(1) or (4096, 4096))
        srv = SrsService(srs_config.load_string(f"listen {RTMP};\nvhost __defaultVhost__ {{}}"), MemoryReactorClock())
        srv.privilegedStartService()
        srv.startService()
        self.addCleanup(srv.stopService)
        self.assertEqual(seen, [1])
