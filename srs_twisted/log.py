"""SRS-style traceable logs.

Every connection gets a context id (``cid``) carried on each of its lines::

    [2026-11-22 08:13:04.123][Trace][4242][k3v9x0qa] RTMP client ip=127.0.0.1:51234

Library code logs through :class:`ContextLogger`.  Until the server
configures logging (``srs_log_tank``, ``srs_log_file``, ``srs_log_level``) the
lines go to Twisted's global log publisher, so an application embedding these
classes sees them in its own logs.
"""

from __future__ import annotations

import os
import sys
import time

from twisted.logger import ILogObserver, LogLevel, Logger, formatEvent, globalLogPublisher
from zope.interface import implementer

from .live.registry import new_id

# SRS level names, lowest first, and the Twisted level each maps to.
LEVELS = {
    "verbose": ("Verb", LogLevel.debug),
    "info": ("Debug", LogLevel.debug),
    "trace": ("Trace", LogLevel.info),
    "warn": ("Warn", LogLevel.warn),
    "error": ("Error", LogLevel.error),
}
_ORDER = ["verbose", "info", "trace", "warn", "error"]


def printable(text: str, encoding: str = "utf-8") -> str:
    """``text`` as ``encoding`` can write it: bytes that were not UTF-8 (which
    ``surrogateescape`` decoding keeps as U+DC80..U+DCFF, e.g. an RTMP app
    name) become ``\\xNN``, other lone surrogates and characters the encoding
    lacks become ``\\uNNNN``-style escapes."""
    try:
        text.encode(encoding)
        return text
    except (UnicodeEncodeError, LookupError):
        pass
    out = "".join(f"\\x{ord(ch) - 0xDC00:02x}" if "\udc80" <= ch <= "\udcff" else ch for ch in text)
    try:
        return out.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:
        return out.encode("ascii", "backslashreplace").decode("ascii")


# With ``workers N``: "[w1]" (worker 1) or "[sup]" (the supervisor) after the context id.
_tag = ""


def set_tag(tag: str) -> None:
    """Mark every line of this process with ``[tag]`` beside the context id ("" for none)."""
    global _tag
    _tag = f"[{tag}]" if tag else ""


def format_line(level: str, cid: str, message: str, when: float | None = None) -> str:
    when = time.time() if when is None else when
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
    ms = int((when - int(when)) * 1000)
    return f"[{stamp}.{ms:03d}][{LEVELS[level][0]}][{os.getpid()}][{cid}]{_tag} {message}\n"


class LogSink:
    """Where formatted lines go: the console or a file that SIGUSR1 reopens."""

    def __init__(self, tank: str = "console", path: str | None = None, level: str = "trace"):
        if level not in LEVELS:
            raise ValueError(f"srs_log_level must be one of {', '.join(_ORDER)}")
        self.tank = tank
        self.path = path
        self.min_rank = _ORDER.index(level)
        self._file = None
        if tank == "file":
            self.reopen()

    def reopen(self) -> None:
        """Reopen the log file (after logrotate moved it away)."""
        if self.tank != "file" or not self.path:
            return
        old = self._file
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self._file = open(self.path, "a", buffering=1, encoding="utf-8", errors="backslashreplace")
        if old is not None:
            old.close()

    def enabled(self, level: str) -> bool:
        return _ORDER.index(level) >= self.min_rank

    def emit(self, level: str, cid: str, message: str) -> None:
        if not self.enabled(level):
            return
        out = self._file if self._file is not None else sys.stdout
        line = printable(format_line(level, cid, message), getattr(out, "encoding", None) or "utf-8")
        try:  # a log write never raises (a closed file, a full disk...)
            out.write(line)
            if out is sys.stdout:
                out.flush()
        except Exception:
            pass

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


_sink: LogSink | None = None
_twisted_log = Logger(namespace="srs_twisted")


def configure(tank: str = "console", path: str | None = None, level: str = "trace") -> LogSink:
    """Send every ContextLogger line to an SRS-format sink."""
    global _sink
    if _sink is not None:
        _sink.close()
    _sink = LogSink(tank, path, level)
    return _sink


def unconfigure() -> None:
    global _sink
    if _sink is not None:
        _sink.close()
    _sink = None


def reopen() -> None:
    if _sink is not None:
        _sink.reopen()


def current_sink() -> LogSink | None:
    return _sink


class ContextLogger:
    """A logger bound to one context id.  Messages are plain strings,
    formatted by the caller (no per-packet logging on hot paths)."""

    __slots__ = ("cid",)

    def __init__(self, cid: str | None = None) -> None:
        self.cid = cid or new_id()

    def _emit(self, level: str, message: str) -> None:
        if _sink is not None:
            _sink.emit(level, self.cid, message)
        else:
            _twisted_log.emit(LEVELS[level][1], "[{cid}] {msg}", cid=self.cid, msg=message)

    def verbose(self, message: str) -> None:
        if _sink is None or _sink.enabled("verbose"):
            self._emit("verbose", message)

    def info(self, message: str) -> None:
        if _sink is None or _sink.enabled("info"):
            self._emit("info", message)

    def trace(self, message: str) -> None:
        self._emit("trace", message)

    def warn(self, message: str) -> None:
        self._emit("warn", message)

    def error(self, message: str) -> None:
        self._emit("error", message)


def capture(events: list) -> callable:
    """Test helper: collect (level, cid, message) of lines while no sink is set."""

    def observer(event):
        if event.get("log_namespace") == "srs_twisted" and "cid" in event:
            events.append((event["log_level"], event["cid"], event["msg"]))

    globalLogPublisher.addObserver(observer)
    return lambda: globalLogPublisher.removeObserver(observer)


# ---- unexpected exceptions (bugs) -------------------------------------------------
# Every line of the report of an exception no code path expected starts with
# this marker, so ``grep unexpected-error srs.log`` shows each report whole
# (message and traceback), and the integration harness fails any test whose
# server wrote one.  Keep it stable: scripts and tests search for it.
UNEXPECTED_MARKER = "[unexpected-error]"

_unexpected_count = 0


def unexpected_errors() -> int:
    """How many unexpected exceptions this process reported so far
    (``srs_unexpected_errors_total`` in the metrics)."""
    return _unexpected_count


def log_unexpected(logger: ContextLogger | None, what: str, error=None) -> None:
    """Report a bug that one connection or one writer survives: an error line
    ``[unexpected-error] <what>: <Type>: <message>`` then its traceback, each
    traceback line carrying the marker too, and count it.

    ``error`` is the exception or a Twisted ``Failure``; without it, the
    exception being handled (call it from an ``except`` block)."""
    global _unexpected_count
    _unexpected_count += 1
    import traceback

    if error is None:
        error = sys.exc_info()[1]
    if hasattr(error, "getTraceback"):  # a twisted.python.failure.Failure
        summary = f"{error.type.__name__}: {error.getErrorMessage()}"
        lines = error.getTraceback().splitlines()
    elif isinstance(error, BaseException):
        summary = f"{type(error).__name__}: {error}"
        lines = "".join(traceback.format_exception(type(error), error, error.__traceback__)).splitlines()
    else:
        summary, lines = repr(error), []
    logger = logger or ContextLogger()
    logger.error(f"{UNEXPECTED_MARKER} {what}: {summary}")
    for line in lines:
        logger.error(f"{UNEXPECTED_MARKER} {line}")


def report_twisted_failures(event: dict) -> None:
    """A Twisted log observer: a critical event carrying a failure (an
    unhandled error in a Deferred, an exception in a timed call) is a bug
    too; report and count it like :func:`log_unexpected` does."""
    failure = event.get("log_failure")
    if failure is None and event.get("isError"):
        # twisted.python.log.err (Klein still logs with it): "failure", no "log_failure"
        failure = event.get("failure")
    if failure is None or event.get("log_namespace") == "srs_twisted":
        return
    level = event.get("log_level")
    if level is not None and level < LogLevel.critical:
        return
    why = event.get("why") or event.get("log_format") or "unhandled error"
    log_unexpected(None, f"twisted: {why}", failure)


# ---- Twisted's own log events in SRS's format ----------------------------------------
_FROM_TWISTED = {
    LogLevel.debug: "verbose",
    LogLevel.info: "info",
    LogLevel.warn: "warn",
    LogLevel.error: "error",
    LogLevel.critical: "error",
}


@implementer(ILogObserver)
class SrsObserver:
    """Twisted's log events as SRS lines, so ``twistd -n srs`` prints what
    ``srs`` prints (the ``srs`` command observes with it too).

    * Text the program wrote to stdout or stderr, which twistd turns into log
      events (the console ``srs_log_tank`` writes there), is written as it
      was, without a second timestamp, to ``out``.
    * Twisted's own events go to the SRS sink at their level, one context id
      for all of them: its ``info`` chatter ("Starting factory ...") is SRS's
      ``info``, hidden at the default ``trace``; warnings and errors show.
    * An unhandled failure is left to :func:`report_twisted_failures`.
    """

    def __init__(self, out=None) -> None:
        # Where the raw stdout/stderr text goes (and lines while no sink is
        # set): the process's real stdout unless a file is given.
        self.out = out
        self.cid = new_id()

    def __call__(self, event: dict) -> None:
        namespace = event.get("log_namespace")
        if namespace in ("stdout", "stderr") and "log_io" in event:
            self._write(f"{event['log_io']}\n")
            return
        level = event.get("log_level") or LogLevel.info
        if event.get("log_failure") is not None and level >= LogLevel.critical:
            return
        srs_level = _FROM_TWISTED.get(level, "info")
        if namespace == "srs_twisted" and "cid" in event:  # a ContextLogger line while no sink is set
            cid, text = event["cid"], event.get("msg", "")
            srs_level = "trace" if srs_level == "info" else srs_level
        else:
            cid, text = self.cid, formatEvent(event)
        if _sink is not None:
            for line in text.splitlines() or [""]:
                _sink.emit(srs_level, cid, line)
        elif _ORDER.index(srs_level) >= _ORDER.index("trace"):
            self._write(format_line(srs_level, cid, text))

    def _write(self, text: str) -> None:
        out = self.out if self.out is not None else sys.__stdout__
        try:  # never raise into the log system
            out.write(printable(text, getattr(out, "encoding", None) or "utf-8"))
            out.flush()
        except Exception:
            pass


__all__ = [
    "ContextLogger",
    "LogSink",
    "SrsObserver",
    "capture",
    "configure",
    "current_sink",
    "format_line",
    "log_unexpected",
    "printable",
    "reopen",
    "report_twisted_failures",
    "set_tag",
    "unconfigure",
    "unexpected_errors",
    "UNEXPECTED_MARKER",
]
