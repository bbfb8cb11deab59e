"""Give the heap's free memory back to the system every 30 s (glibc's ``malloc_trim``).

The server frees what a session used when the session ends, but glibc keeps freed chunks
in its heap for reuse and returns pages to the system only from the top of the heap.  After
churn (codec contexts, DTLS and SRTP state, buffers of thousands of short sessions freed
in whatever order) the process's RSS stays at its high-water mark although the memory is
free: bench/publish_cycles.py's 600 WHIP publish/unpublish cycles left RSS 86 MB above
its value after the warm-up, and ``malloc_trim(0)`` brought it back to 3.6 MB above it in
under a millisecond.  So a timer calls it every :data:`INTERVAL` seconds and logs (trace)
when more than :data:`LOG_ABOVE_KB` came back.

``SRS_MALLOC_TRIM`` (seconds, ``0`` = off) changes the interval; without glibc (musl,
macOS) there is nothing to call and the timer is not started.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import time
from typing import Callable

__all__ = ["MemoryTrimmer", "INTERVAL", "LOG_ABOVE_KB", "LOG_SLOWER_THAN", "interval_from_env", "libc_trim", "rss_kb"]

INTERVAL = 30.0
LOG_ABOVE_KB = 8 * 1024
LOG_SLOWER_THAN = 0.05  # seconds: a pass that held the reactor this long is logged too


def libc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where there is none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def rss_kb() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def interval_from_env(environ=os.environ) -> float:
    """``SRS_MALLOC_TRIM`` in seconds (0 turns the trimming off); :data:`INTERVAL` if unset or not a number."""
    try:
        return max(0.0, float(environ.get("SRS_MALLOC_TRIM", INTERVAL)))
    except ValueError:
        return INTERVAL


class MemoryTrimmer:
    """Call it (from a timer): trims the heap, logs what came back when it is worth a line."""

    def __init__(self, trim: Callable[[int], int], log: Callable[[str], None],
                 rss: Callable[[], int] = rss_kb, collect: Callable[[], object] = gc.collect,
                 timer: Callable[[], float] = time.perf_counter, freeze: Callable[[], object] = gc.freeze) -> None:
        self.trim = trim
        self.log = log
        self.rss = rss
        self.collect = collect
        self.timer = timer
        self.freeze = freeze
        self.runs = 0
        self.returned_kb = 0

    def __call__(self) -> None:
        if not self.runs:  # the timer's first call, at start-up: only the freeze
            self.freeze()
            self.runs = 1
            return
        before = self.rss()
        t0 = self.timer()
        self.collect()
        t1 = self.timer()
        self.trim(0)
        t2 = self.timer()
        after = self.rss()
        self.runs += 1
        gain = max(0, before - after)
        self.returned_kb += gain
        if gain >= LOG_ABOVE_KB or t2 - t0 >= LOG_SLOWER_THAN:
            self.log(f"memory: {gain // 1024} MB of freed heap returned to the system, RSS {after // 1024} MB "
                     f"(gc {(t1 - t0) * 1000:.1f} ms, trim {(t2 - t1) * 1000:.1f} ms)")
