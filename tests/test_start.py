"""Starting the server: a port that cannot be bound is one clear error (issue 9 item 16),
and the start-up lines name every service with its URLs."""

from __future__ import annotations

from twisted.trial import unittest

from srs_twisted import log
from srs_twisted.service import SrsService, StartError

from .test_reload import PortReactor, conf


class StartTests(unittest.TestCase):
    def test_busy_port_is_one_clear_error(self):
        for body, busy, message in (
            ("listen 127.0.0.1:19350;\nhttp_api { enabled on; listen 1985; }\n", 1985,
             "http-0 cannot listen on 0.0.0.0:1985: Address already in use"),
            ("listen [::1]:1936;\n", 1936, "rtmp-0 cannot listen on [::1]:1936: Address already in use"),
        ):
            reactor = PortReactor()
            reactor.busy.add(busy)
            srv = SrsService(conf(body), reactor)
            with self.assertRaises(StartError) as ctx:
                srv.startService()
            self.assertEqual(str(ctx.exception), message)

    def test_start_lines_name_the_urls_not_listener_names(self):
        events = []
        self.addCleanup(log.capture(events))
        reactor = PortReactor()
        srv = SrsService(conf("listen 127.0.0.1:19350;\nhttp_api { enabled on; listen 1985; }\n"), reactor)
        srv.startService()

        def stop():
            d = srv.stopService()
            reactor.advance(0)
            return d

        self.addCleanup(stop)
        lines = [msg for _, cid, msg in events if cid == srv.log.cid]
        self.assertTrue(lines[0].startswith("srs-twisted started, server_id="), lines)
        self.assertIn("rtmp://127.0.0.1:19350/live/livestream", lines[1])
        self.assertIn("HTTP API listen=1985: http://127.0.0.1:1985/api/v1/versions", lines)
        self.assertFalse(any("http-0" in line for line in lines), lines)
