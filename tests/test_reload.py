"""SrsService.reload: listeners diffed by name on a MemoryReactor."""

from __future__ import annotations

from twisted.internet import error, task
from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest

from srs_twisted import config as srs_config
from srs_twisted.heartbeat import HeartbeatService
from srs_twisted.service import SrsService


class PortReactor(MemoryReactorClock):
    """A MemoryReactorClock whose ports are exclusive: listening on a port
    that is open (or in ``busy``) fails as the kernel would, and
    ``stopListening`` frees it on the next reactor turn, as Twisted's does."""

    def __init__(self) -> None:
        super().__init__()
        self.open: dict[int, object] = {}
        self.busy: set[int] = set()
        self.refused: set[tuple[int, str]] = set()  # (port, interface) that never binds
        self.stopped: list[int] = []

    def listenTCP(self, port, factory, backlog=50, interface=""):
        if port in self.open or port in self.busy or (port, interface) in self.refused:
            raise error.CannotListenError(interface, port, OSError(98, "Address already in use"))
        fake = super().listenTCP(port, factory, backlog, interface)
        reactor = self

        def stop():
            reactor.stopped.append(port)
            return task.deferLater(reactor, 0, reactor.open.pop, port, None).addCallback(lambda _: None)

        fake.stopListening = stop
        self.open[port] = factory
        return fake


class _Log:
    def __init__(self, lines: list) -> None:
        self.lines = lines

    def __getattr__(self, level: str):
        return lambda message: self.lines.append(f"{level}: {message}")


BASE = "vhost __defaultVhost__ {}\n"


def conf(body: str):
    return srs_config.load_string(BASE + body)


class ReloadTests(unittest.TestCase):
    def start(self, body: str):
        self.reactor = PortReactor()
        self.srv = SrsService(conf(body), self.reactor)
        self.srv.startService()
        self.addCleanup(self.stop)
        self.logs: list[str] = []
        self.srv.log = _Log(self.logs)
        return self.srv

    def stop(self):
        d = self.srv.stopService()
        self.reactor.advance(0)
        return d

    def reload(self, body: str):
        d = self.srv.reload(conf(body))
        self.reactor.advance(0)  # closed ports are freed on the next turn
        self.reactor.advance(0)
        results = []
        d.addBoth(results.append)
        self.assertEqual(len(results), 1, "the reload's Deferred fired")
        return results[0]

    def names(self):
        return {c.name: c.spec.description.split(":")[1] for c in self.srv if hasattr(c, "spec")}

    def listens(self):
        return [port for port, _, _, _ in self.reactor.tcpServers]

    def test_unchanged_config_keeps_every_listener(self):
        self.start("listen 19350; http_api { enabled on; listen 19850; }")
        before = {c.name: c for c in self.srv}
        self.reload("listen 19350; http_api { enabled on; listen 19850; }")
        self.assertEqual(self.listens(), [19350, 19850])
        self.assertEqual(self.reactor.stopped, [])
        self.assertEqual({c.name: c for c in self.srv}, before)
        self.assertIn("no listener or heartbeat change", self.logs[-1])

    def test_rtmp_port_changed(self):
        self.start("listen 19350;")
        factory = self.srv.rtmp_factory
        self.reload("listen 19351;")
        self.assertEqual(self.listens(), [19350, 19351])
        self.assertEqual(self.reactor.stopped, [19350])
        self.assertEqual(self.names(), {"rtmp-0": "19351"})
        self.assertEqual(list(self.reactor.open), [19351])
        # The one shared factory serves the new port, with the new config.
        self.assertIs(self.reactor.open[19351].wrappedFactory, factory)
        self.assertIs(factory.ctx.config, self.srv.config)
        self.assertIn("rtmp-0 tcp:19350", self.logs[-1])

    def test_rtmp_listen_added_and_removed(self):
        self.start("listen 19350;")
        self.reload("listen 19350 19352;")
        self.assertEqual(self.listens(), [19350, 19352])
        self.assertEqual(self.names(), {"rtmp-0": "19350", "rtmp-1": "19352"})
        self.reload("listen 19352;")
        self.assertEqual(self.names(), {"rtmp-0": "19352"})
        self.assertEqual(sorted(self.reactor.open), [19352])
        self.assertEqual(sorted(self.reactor.stopped), [19350, 19352])  # rtmp-0 moved to 19352, rtmp-1 closed
        self.assertEqual(self.listens(), [19350, 19352, 19352])

    def test_http_api_listen_changed(self):
        self.start("listen 19350; http_api { enabled on; listen 19850; }")
        self.reload("listen 19350; http_api { enabled on; listen 19851; }")
        self.assertEqual(self.names(), {"rtmp-0": "19350", "http-0": "19851"})
        self.assertEqual(self.reactor.stopped, [19850])

    def test_http_api_disabled_then_enabled(self):
        self.start("listen 19350; http_api { enabled on; listen 19850; }")
        self.reload("listen 19350; http_api { enabled off; }")
        self.assertEqual(self.names(), {"rtmp-0": "19350"})
        self.reload("listen 19350; http_api { enabled on; listen 19850; }")
        self.assertEqual(self.names(), {"rtmp-0": "19350", "http-0": "19850"})
        self.assertEqual(sorted(self.reactor.open), [19350, 19850])

    def test_http_server_enabled_and_disabled(self):
        self.start("listen 19350;")
        self.assertEqual(self.names(), {"rtmp-0": "19350"})
        self.reload("listen 19350; http_server { enabled on; listen 18080; dir ./objs/nginx/html; }")
        self.assertEqual(self.names(), {"rtmp-0": "19350", "http-0": "18080"})
        self.assertEqual(self.listens(), [19350, 18080])
        self.reload("listen 19350; http_server { enabled off; }")
        self.assertEqual(self.names(), {"rtmp-0": "19350"})
        self.assertEqual(self.reactor.stopped, [18080])

    def test_api_joins_the_http_server_port_without_rebinding(self):
        self.start("listen 19350; http_server { enabled on; listen 18080; }")
        site = self.reactor.open[18080]
        self.reload("listen 19350; http_server { enabled on; listen 18080; } http_api { enabled on; listen 18080; }")
        self.assertEqual(self.listens(), [19350, 18080])
        self.assertIs(self.reactor.open[18080], site)
        self.assertIsNotNone(site.wrappedFactory.resource.api)

    def test_a_busy_new_port_keeps_the_old_listener(self):
        self.start("listen 19350;")
        self.reactor.busy.add(19351)
        self.reload("listen 19351;")
        self.assertEqual(self.names(), {"rtmp-0": "19350"})
        self.assertEqual(self.reactor.stopped, [])
        self.assertEqual(list(self.reactor.open), [19350])
        self.assertTrue(any(m.startswith("error: reload: rtmp-0 cannot listen") for m in self.logs), self.logs)
        self.assertTrue(self.srv.running)

    def test_same_port_new_interface_rebinds_after_the_old_one_closes(self):
        self.start("listen 19350;")
        self.reload("listen 127.0.0.1:19350;")
        self.assertEqual(self.reactor.stopped, [19350])
        self.assertEqual(self.reactor.tcpServers[-1][::3], (19350, "127.0.0.1"))
        self.assertEqual(list(self.reactor.open), [19350])

    def test_same_port_that_still_fails_listens_on_the_old_endpoint_again(self):
        self.start("listen 19350;")
        self.reactor.refused.add((19350, "127.0.0.1"))
        self.reload("listen 127.0.0.1:19350;")
        [svc] = [c for c in self.srv if c.name == "rtmp-0"]
        self.assertNotIn("interface", svc.spec.description)
        self.assertEqual(self.reactor.tcpServers[-1][::3], (19350, ""))
        self.assertEqual(list(self.reactor.open), [19350])
        self.assertTrue(any(m.startswith("error: reload: rtmp-0 cannot listen") for m in self.logs), self.logs)

    def test_heartbeat_enabled_interval_disabled(self):
        self.start("listen 19350;")
        beats = lambda: [c for c in self.srv if isinstance(c, HeartbeatService)]  # noqa: E731
        self.assertEqual(beats(), [])
        self.reload("listen 19350; heartbeat { enabled on; interval 5; url http://127.0.0.1:1/x; }")
        [hb] = beats()
        self.assertTrue(hb.running)
        self.assertEqual(hb.loop.interval, 5)
        self.reload("listen 19350; heartbeat { enabled on; interval 7; url http://127.0.0.1:1/x; }")
        [hb2] = beats()
        self.assertIsNot(hb2, hb)
        self.assertFalse(hb.running)
        self.assertEqual(hb2.loop.interval, 7)
        self.reload("listen 19350; heartbeat { enabled off; }")
        self.assertEqual(beats(), [])
        self.assertFalse(hb2.running)

    def test_log_settings_are_not_reloaded(self):
        self.start("listen 19350; srs_log_level trace;")
        self.reload("listen 19350; srs_log_level warn;")
        self.assertTrue(any("srs_log_level changed but cannot be reloaded" in m for m in self.logs), self.logs)
