"""srs_twisted.cli.run without a running reactor: what it sets up before the
ports listen (issue 9 item 19)."""

from __future__ import annotations

import io
import os
import signal
import sys

from twisted.logger import globalLogBeginner, globalLogPublisher
from twisted.trial import unittest

from srs_twisted import cli, log
from srs_twisted import config as srs_config
from srs_twisted import service

SIGNALS = (signal.SIGHUP, signal.SIGUSR1, signal.SIGQUIT, signal.SIGINT, signal.SIGTERM)


class EarlySignalTests(unittest.TestCase):
    def setUp(self):
        saved = {sig: signal.getsignal(sig) for sig in SIGNALS}
        self.addCleanup(lambda: [signal.signal(sig, h) for sig, h in saved.items()])
        self.addCleanup(log.unconfigure)
        self.addCleanup(globalLogPublisher.removeObserver, log.report_twisted_failures)
        # run() sends Twisted's log to SRS lines: not trial's log, here.
        self.patch(globalLogBeginner, "beginLoggingTo", lambda *a, **kw: None)

    def test_handlers_are_ours_before_the_ports_listen(self):
        """A signal sent as soon as a port answers meets the server's handler,
        not Python's default (SIGTERM would kill the process, SIGINT raise
        KeyboardInterrupt)."""
        seen = {}

        def start_service(srv):
            seen.update({sig: signal.getsignal(sig) for sig in SIGNALS})
            raise service.StartError("stop here: the test runs no reactor")

        self.patch(service.SrsService, "startService", start_service)
        self.patch(sys, "stderr", io.StringIO())
        path = os.path.join(self.mktemp(), "srs.log")
        conf = srs_config.load_string(f"srs_log_tank file; srs_log_file {path}; vhost __defaultVhost__ {{}}")
        self.assertEqual(cli.run(conf, {"config": None, "env_only": True}), 1)
        self.assertEqual(set(seen), set(SIGNALS))
        handlers = set(seen.values())
        self.assertEqual(len(handlers), 1, seen)
        (handler,) = handlers
        self.assertTrue(callable(handler), handler)
        self.assertEqual(handler.__name__, "on_signal")
        with open(path) as f:
            self.assertIn("start server failed: stop here", f.read())
