"""The heap trimmer (srs_twisted/memtrim.py): gc then malloc_trim(0), logs what came back, env knob."""

from twisted.trial import unittest

from srs_twisted import memtrim
from srs_twisted.memtrim import LOG_ABOVE_KB, MemoryTrimmer, interval_from_env


class MemoryTrimmerTests(unittest.TestCase):
    def make(self, rss_values):
        calls, lines = [], []
        values = iter(rss_values)
        clock = iter(range(0, 1000, 2))
        trimmer = MemoryTrimmer(lambda pad: calls.append(("trim", pad)) or 1, lines.append, rss=lambda: next(values),
                                collect=lambda: calls.append("gc"), timer=lambda: next(clock) / 1000,
                                freeze=lambda: calls.append("freeze"))
        trimmer()  # the timer's first call, at start-up: objects alive then are frozen, nothing else
        self.assertEqual((calls, lines, trimmer.runs), (["freeze"], [], 1))
        del calls[:]
        return trimmer, calls, lines

    def test_trims_with_no_padding_and_logs_a_large_return(self):
        trimmer, calls, lines = self.make([200_000, 100_000])
        trimmer()
        self.assertEqual(calls, ["gc", ("trim", 0)])  # cycles freed first, then the heap trimmed
        self.assertEqual(trimmer.returned_kb, 100_000)
        self.assertEqual(lines, ["memory: 97 MB of freed heap returned to the system, RSS 97 MB "
                                 "(gc 2.0 ms, trim 2.0 ms)"])

    def test_a_small_return_is_not_logged(self):
        trimmer, calls, lines = self.make([100_000, 100_000 - LOG_ABOVE_KB + 1, 100_000, 100_100])
        trimmer()
        trimmer()  # RSS grew meanwhile: nothing returned, nothing negative counted
        self.assertEqual((calls.count("gc"), calls.count("freeze"), lines, trimmer.runs), (2, 0, [], 3))
        self.assertEqual(trimmer.returned_kb, LOG_ABOVE_KB - 1)

    def test_a_slow_pass_is_logged(self):
        trimmer, calls, lines = self.make([100_000, 100_000])
        trimmer.timer = iter([0.0, 0.055, 0.056]).__next__
        trimmer()
        self.assertEqual(lines, ["memory: 0 MB of freed heap returned to the system, RSS 97 MB (gc 55.0 ms, trim 1.0 ms)"])

    def test_interval_from_env(self):
        self.assertEqual(interval_from_env({}), memtrim.INTERVAL)
        self.assertEqual(interval_from_env({"SRS_MALLOC_TRIM": "0"}), 0.0)
        self.assertEqual(interval_from_env({"SRS_MALLOC_TRIM": "5"}), 5.0)
        self.assertEqual(interval_from_env({"SRS_MALLOC_TRIM": "-3"}), 0.0)
        self.assertEqual(interval_from_env({"SRS_MALLOC_TRIM": "soon"}), memtrim.INTERVAL)

    def test_glibc_trim_runs_here(self):
        trim = memtrim.libc_trim()
        if trim is None:
            raise unittest.SkipTest("no malloc_trim in this C library")
        self.assertIn(trim(0), (0, 1))
        self.assertGreater(memtrim.rss_kb(), 0)
