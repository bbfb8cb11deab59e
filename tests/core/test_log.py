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
