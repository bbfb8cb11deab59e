"""SRS-style log lines: format, context ids, levels, file tank and reopen."""

import os
import re
import tempfile

from twisted.trial import unittest

from srs_twisted import log

LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\]\[(\w+)\]\[(\d+)\]\[(\w+)\] (.*)$")


class LogTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "objs", "srs.log")
        self.addCleanup(log.unconfigure)

    def lines(self):
        with open(self.path) as f:
            return [LINE.match(line).groups() for line in f.read().splitlines()]

    def test_file_tank_context_ids_and_levels(self):
        log.configure("file", self.path, "trace")
        a, b = log.ContextLogger(), log.ContextLogger("fixedcid")
        a.trace("hello")
        b.warn("careful")
        b.info("hidden at trace level")
        a.error("bad")
        got = self.lines()
        self.assertEqual([(lvl, cid, msg) for lvl, _, cid, msg in got],
                         [("Trace", a.cid, "hello"), ("Warn", "fixedcid", "careful"), ("Error", a.cid, "bad")])
        self.assertEqual(got[0][1], str(os.getpid()))
        self.assertEqual(len(a.cid), 8)

    def test_reopen_after_rotation(self):
        log.configure("file", self.path, "warn")
        logger = log.ContextLogger()
        logger.warn("one")
        os.rename(self.path, self.path + ".1")
        log.reopen()
        logger.warn("two")
        self.assertEqual([m for *_, m in self.lines()], ["two"])

    def test_bad_level_rejected(self):
        self.assertRaises(ValueError, log.LogSink, "console", None, "loud")

    def test_unconfigured_lines_go_to_twisted_logging(self):
        log.unconfigure()
        events = []
        stop = log.capture(events)
        self.addCleanup(stop)
        logger = log.ContextLogger("abc12345")
        logger.trace("via twisted")
        self.assertEqual([(cid, msg) for _, cid, msg in events], [("abc12345", "via twisted")])


class EncodingTests(unittest.TestCase):
    """A log write never throws: what the output cannot encode is escaped (issue 9 item 4)."""

    def setUp(self):
        self.path = os.path.join(tempfile.mkdtemp(), "srs.log")
        self.addCleanup(log.unconfigure)

    def test_file_tank_escapes_undecodable_bytes_and_lone_surrogates(self):
        log.configure("file", self.path, "trace")
        logger = log.ContextLogger("cid00001")
        logger.trace("app=li\udcfeve stream=s\udcff")  # bytes 0xfe, 0xff kept by surrogateescape
        logger.warn("lone \ud800 surrogate, caf\u00e9 ok")
        logger.trace("after")
        with open(self.path, "rb") as f:
            lines = f.read().decode("utf-8").splitlines()
        self.assertEqual([line.split("] ", 1)[1] for line in lines],
                         ["app=li\\xfeve stream=s\\xff", "lone \\ud800 surrogate, caf\u00e9 ok", "after"])

    def test_console_tank_escapes_what_stdout_cannot_encode(self):
        import io
        import sys

        raw = io.BytesIO()
        out = io.TextIOWrapper(raw, encoding="ascii", write_through=True)
        self.patch(sys, "stdout", out)
        log.configure("console", None, "trace")
        log.ContextLogger("cid00002").trace("caf\u00e9 \udcff")
        self.assertTrue(raw.getvalue().endswith(b"] caf\\xe9 \\xff\n"), raw.getvalue())

    def test_a_failing_write_does_not_raise(self):
        sink = log.configure("file", self.path, "trace")
        sink._file.close()  # e.g. the disk went away: writes raise ValueError/OSError
        log.ContextLogger().error("still no exception")


class UnexpectedErrorTests(unittest.TestCase):
    """Bugs that a connection or a writer survives are logged with their
    traceback, every line marked, and counted."""

    def setUp(self):
        self.events = []
        self.addCleanup(log.capture(self.events))

    def messages(self):
        return [msg for _, _, msg in self.events]

    def test_report_has_marker_summary_and_traceback_and_is_counted(self):
        before = log.unexpected_errors()

        def buggy():
            return {}["missing"]

        try:
            buggy()
        except KeyError:
            log.log_unexpected(log.ContextLogger("cid00001"), "RTMP client 127.0.0.1:5000")
        msgs = self.messages()
        self.assertEqual(msgs[0], "[unexpected-error] RTMP client 127.0.0.1:5000: KeyError: 'missing'")
        self.assertEqual(msgs[1], "[unexpected-error] Traceback (most recent call last):")
        self.assertTrue(all(m.startswith(log.UNEXPECTED_MARKER + " ") for m in msgs), msgs)
        self.assertTrue(any("in buggy" in m for m in msgs), msgs)
        self.assertEqual(msgs[-1], "[unexpected-error] KeyError: 'missing'")
        self.assertEqual({cid for _, cid, _ in self.events}, {"cid00001"})
        self.assertEqual(log.unexpected_errors(), before + 1)

    def test_a_failure_is_reported_with_its_traceback(self):
        from twisted.python.failure import Failure

        try:
            1 / 0
        except ZeroDivisionError:
            failure = Failure()
        log.log_unexpected(None, "hls writer", failure)
        msgs = self.messages()
        self.assertEqual(msgs[0], "[unexpected-error] hls writer: ZeroDivisionError: division by zero")
        self.assertIn("Traceback (most recent call last):", msgs[1])
        self.assertTrue(any("1 / 0" in m for m in msgs), msgs)

    def test_twisted_critical_failures_are_reported_others_ignored(self):
        from twisted.logger import LogLevel
        from twisted.python.failure import Failure

        try:
            raise ValueError("lost in a Deferred")
        except ValueError:
            failure = Failure()
        before = log.unexpected_errors()
        log.report_twisted_failures({"log_level": LogLevel.info, "log_format": "hi"})
        log.report_twisted_failures({"log_level": LogLevel.warn, "log_failure": failure, "log_format": "meh"})
        self.assertEqual((self.messages(), log.unexpected_errors()), ([], before))
        log.report_twisted_failures({"log_level": LogLevel.critical, "log_failure": failure,
                                     "log_format": "Unhandled error in Deferred:"})
        msgs = self.messages()
        self.assertEqual(msgs[0], "[unexpected-error] twisted: Unhandled error in Deferred:: ValueError: lost in a Deferred")
        self.assertIn("Traceback", msgs[1])
        self.assertEqual(log.unexpected_errors(), before + 1)

    def test_a_legacy_log_err_is_reported(self):
        from twisted.logger import globalLogPublisher
        from twisted.python import log as legacy

        globalLogPublisher.addObserver(log.report_twisted_failures)
        self.addCleanup(globalLogPublisher.removeObserver, log.report_twisted_failures)
        before = log.unexpected_errors()
        try:
            raise KeyError("from a Klein handler")
        except KeyError:
            legacy.err(None, "Exception rendering:")
        self.flushLoggedErrors(KeyError)
        self.assertEqual(log.unexpected_errors(), before + 1)
        self.assertTrue(any("twisted: Exception rendering:" in m and "KeyError" in m for m in self.messages()),
                        self.messages())

    def test_an_unhandled_deferred_error_reaches_the_observer(self):
        from twisted.internet import defer
        from twisted.logger import globalLogPublisher

        globalLogPublisher.addObserver(log.report_twisted_failures)
        self.addCleanup(globalLogPublisher.removeObserver, log.report_twisted_failures)
        before = log.unexpected_errors()
        d = defer.fail(RuntimeError("nobody listens"))
        del d
        import gc

        gc.collect()
        self.flushLoggedErrors(RuntimeError)
        self.assertEqual(log.unexpected_errors(), before + 1)
        self.assertTrue(any("RuntimeError: nobody listens" in m for m in self.messages()), self.messages())


class SrsObserverTests(unittest.TestCase):
    """Twisted's events in SRS's format: what twistd -n srs prints (issue 9 item 16)."""

    def setUp(self):
        import io

        self.out = io.StringIO()
        self.path = os.path.join(tempfile.mkdtemp(), "srs.log")
        self.addCleanup(log.unconfigure)
        self.observer = log.SrsObserver(self.out)

    def event(self, **fields):
        from twisted.logger import LogLevel

        fields.setdefault("log_level", LogLevel.info)
        fields.setdefault("log_namespace", "twisted.web.server.Site")
        fields.setdefault("log_format", "")
        self.observer(fields)

    def sink_lines(self):
        with open(self.path) as f:
            return [LINE.match(line).groups() for line in f.read().splitlines()]

    def test_stdout_text_is_written_as_it_was(self):
        from twisted.logger import LogLevel

        line = "[2026-11-22 08:13:04.123][Trace][42][abcd1234] srs-twisted started"
        self.event(log_namespace="stdout", log_format="{log_io}", log_io=line)
        self.event(log_namespace="stderr", log_level=LogLevel.error, log_format="{log_io}", log_io="caf\udcff")
        self.assertEqual(self.out.getvalue(), line + "\ncaf\\xff\n")

    def test_twisted_events_become_srs_lines_at_their_level(self):
        from twisted.logger import LogLevel

        log.configure("file", self.path, "trace")
        self.event(log_format="Starting factory {f!r}", f="x")  # info: hidden at trace
        self.event(log_level=LogLevel.warn, log_format="careful {what}", what="now")
        self.event(log_level=LogLevel.error, log_format="two\nlines")
        got = self.sink_lines()
        self.assertEqual([(lvl, msg) for lvl, _, _, msg in got], [("Warn", "careful now"), ("Error", "two"), ("Error", "lines")])
        self.assertEqual({cid for _, _, cid, _ in got}, {self.observer.cid})
        self.assertEqual(self.out.getvalue(), "")

    def test_info_level_shows_twisted_chatter(self):
        log.configure("file", self.path, "info")
        self.event(log_format="Site starting on {port}", port=8080)
        self.assertEqual([(lvl, msg) for lvl, _, _, msg in self.sink_lines()], [("Debug", "Site starting on 8080")])

    def test_unhandled_failures_are_left_to_the_unexpected_error_report(self):
        from twisted.logger import LogLevel
        from twisted.python.failure import Failure

        log.configure("file", self.path, "trace")
        self.event(log_level=LogLevel.critical, log_format="Unhandled error in Deferred:",
                   log_failure=Failure(ValueError("boom")))
        self.assertEqual(self.sink_lines(), [])

    def test_without_a_sink_lines_go_to_out(self):
        from twisted.logger import LogLevel

        log.unconfigure()
        self.event(log_level=LogLevel.warn, log_format="careful")
        self.event(log_namespace="srs_twisted", log_format="[{cid}] {msg}", cid="cid00009", msg="ours")
        got = [LINE.match(line).groups() for line in self.out.getvalue().splitlines()]
        self.assertEqual([(lvl, cid, msg) for lvl, _, cid, msg in got],
                         [("Warn", self.observer.cid, "careful"), ("Trace", "cid00009", "ours")])
