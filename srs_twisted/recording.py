"""What the per-stream file writers (HLS, DASH) share: an observer that
keeps one recorder per stream across publishes, and the timer that, after
the publisher left, disposes of a stream's files (``<name>_dispose N``) or,
with ``<name>_dispose 0`` (files kept for ever), releases its recorder so
that memory stays bounded however many stream names come and go."""

from __future__ import annotations

import os

from zope.interface import implementer

from .interfaces import IStreamObserver
from .log import ContextLogger, log_unexpected


# <name>_dispose 0: a recorder is released this long at least after its stream left.
MIN_RELEASE_SECONDS = 30.0


def release_after(keep_seconds: float) -> float:
    """How long after its publisher left a stream's recorder is kept with
    ``<name>_dispose 0``: ``keep_seconds`` (what players may still ask
    for), at least :data:`MIN_RELEASE_SECONDS`.  A republish until then goes
    on in memory; later a new recorder takes over the files on disk."""
    return max(MIN_RELEASE_SECONDS, keep_seconds)


def unlink(path: str) -> bool:
    """Remove a file; False when it was already gone."""
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


class DisposeTimer:
    """Mixed into a recorder: ``dispose()`` after the publisher has been gone
    ``seconds`` (SRS's ``hls_dispose``/``dash_dispose``), or ``release()``.
    Needs ``self.ctx``, ``self._dispose_call`` (None), ``self.enabled``,
    ``self.log``, ``self.on_disposed``, ``vhost``/``app``/``stream``, a
    ``dispose()`` method and, for ``release()``, ``_forget()``; ``kind``
    names it in the log (``hls``, ``dash``)."""

    kind = ""

    def _schedule_dispose(self, seconds: float, action=None) -> None:
        """Call ``action`` (``dispose``) in ``seconds``."""
        if seconds and seconds > 0 and self._dispose_call is None:
            self._dispose_call = self.ctx.clock.callLater(seconds, action or self.dispose)

    def _cancel_dispose(self) -> None:
        call, self._dispose_call = self._dispose_call, None
        if call is not None and call.active():
            call.cancel()

    @property
    def dispose_pending(self) -> bool:
        return self._dispose_call is not None

    def _after_unpublish(self, dispose_seconds: float, keep_seconds: float) -> None:
        """The publisher left: ``dispose()`` in ``dispose_seconds``, or with
        0 (files kept for ever) ``release()`` in :func:`release_after`
        ``(keep_seconds)``."""
        if dispose_seconds > 0:
            self._schedule_dispose(dispose_seconds)
        else:
            self._schedule_dispose(release_after(keep_seconds), self.release)

    def release(self) -> None:
        """``<name>_dispose 0``: the stream has been gone a while; forget it.
        Its files stay on disk for the next recorder of the stream to take
        over (``_forget()`` removes, with cleanup on, only what the playlist
        or MPD on disk no longer names), and ``on_disposed`` drops the
        recorder.  A publish in between (``enabled``) keeps it."""
        self._cancel_dispose()
        if self.enabled:
            return
        self._forget()
        self.log.trace(f"{self.kind}: released {self.vhost}/{self.app}/{self.stream}, "
                       f"files kept ({self.kind}_dispose 0)")
        if self.on_disposed is not None:
            self.on_disposed(self)

    def _forget(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


@implementer(IStreamObserver)
class RecorderObserver:
    """A registry observer (``source_published``/``source_unpublished``)
    that starts a recorder for every publish whose vhost enables the
    ``name`` section (``hls``, ``dash``) and stops it at unpublish.

    A stream keeps its recorder (playlist, timeline, sequence numbers) from
    one publish to the next until ``<name>_dispose`` removes its files.  The
    vhost's section is read at each publish, so a reload applies to the next
    publish.  Edge vhosts record nothing (SRS neither).  At a clean shutdown
    every recorder is stopped, and the files of streams with a non-zero
    ``<name>_dispose`` are removed, as SRS does when it stops."""

    name = ""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.recorders: dict[tuple[str, str, str], object] = {}
        self.log = ContextLogger(self.name)
        trigger = getattr(ctx.clock, "addSystemEventTrigger", None)
        if trigger is not None:
            trigger("before", "shutdown", self.stop_all)

    def _report(self, error: Exception, what: str) -> None:
        """A disk error is logged; anything else is a bug (traceback, counted)."""
        if isinstance(error, OSError):
            self.log.error(f"{what}: {error!r}")
        else:
            log_unexpected(self.log, what, error)

    def new_recorder(self, vhost: str, app: str, stream: str):  # pragma: no cover - abstract
        raise NotImplementedError

    def config_for(self, source):
        conf = self.ctx.vhost(source.vhost)
        if conf is None or not getattr(conf, self.name).enabled or conf.is_edge:
            return None
        if getattr(source.publisher, "relay", False):  # recorded where it is published
            return None
        return conf

    def source_published(self, source) -> None:
        conf = self.config_for(source)
        if conf is None:
            return
        key = (source.vhost, source.app, source.stream)
        recorder = self.recorders.get(key)
        if recorder is None:
            recorder = self.recorders[key] = self.new_recorder(*key)
        try:
            recorder.start(source, conf)
        except Exception as e:  # noqa: BLE001 - a bad section never stops a publish
            self._report(e, f"{self.name}: cannot start for {source.url}")
            recorder.enabled = False

    def source_unpublished(self, source) -> None:
        recorder = self.recorders.get((source.vhost, source.app, source.stream))
        if recorder is not None and recorder.source is source:
            try:
                recorder.stop()
            except Exception as e:  # noqa: BLE001 - never let a recorder break an unpublish
                self._report(e, f"{self.name}: stop failed for {source.url}")

    def _disposed(self, recorder) -> None:
        key = (recorder.vhost, recorder.app, recorder.stream)
        if self.recorders.get(key) is recorder:
            del self.recorders[key]

    def stop_all(self) -> None:
        for recorder in list(self.recorders.values()):
            try:
                if recorder.enabled:
                    recorder.stop()
                conf = recorder.conf
                if conf is not None and getattr(getattr(conf, self.name), f"{self.name}_dispose") > 0:
                    recorder.dispose()
            except Exception as e:  # noqa: BLE001
                self._report(e, f"{self.name}: shutdown of {recorder.vhost}/{recorder.app}/{recorder.stream}")
