"""Starts a :class:`~.writer.DashRecorder` for every publish whose vhost has
``dash { enabled on; }`` and stops it at unpublish.  The server registers
one :class:`DashObserver` with its stream registry::

    self.ctx.registry.observers.append(DashObserver(self.ctx))
"""

from __future__ import annotations

from ..log import ContextLogger
from .writer import DashRecorder

__all__ = ["DashObserver"]


class DashObserver:
    """A registry observer (``source_published``/``source_unpublished``).

    A stream keeps its recorder (so its MPD timeline and file names go on)
    from one publish to the next until ``dash_dispose`` removes its files.
    The vhost's ``dash`` section is read at each publish, so a reload applies
    to the next publish.  Edge vhosts make no DASH (SRS neither).  At a clean
    shutdown the buffered samples are written, and the files of streams with
    a non-zero ``dash_dispose`` are removed, as SRS does when it stops.
    """

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.recorders: dict[tuple[str, str, str], DashRecorder] = {}
        self.log = ContextLogger("dash")
        trigger = getattr(ctx.clock, "addSystemEventTrigger", None)
        if trigger is not None:
            trigger("before", "shutdown", self.stop_all)

    def config_for(self, source):
        conf = self.ctx.vhost(source.vhost)
        if conf is None or not conf.dash.enabled or conf.is_edge:
            return None
        return conf

    def source_published(self, source) -> None:
        conf = self.config_for(source)
        if conf is None:
            return
        key = (source.vhost, source.app, source.stream)
        recorder = self.recorders.get(key)
        if recorder is None:
            recorder = DashRecorder(self.ctx, *key, on_disposed=self._disposed)
            self.recorders[key] = recorder
        try:
            recorder.start(source, conf)
        except Exception as e:  # noqa: BLE001 - a bad dash section never stops a publish
            self.log.error(f"dash: cannot start for {source.url}: {e!r}")
            recorder.enabled = False

    def source_unpublished(self, source) -> None:
        recorder = self.recorders.get((source.vhost, source.app, source.stream))
        if recorder is not None and recorder.source is source:
            try:
                recorder.stop()
            except Exception as e:  # noqa: BLE001 - never let DASH break an unpublish
                self.log.error(f"dash: stop failed for {source.url}: {e!r}")

    def _disposed(self, recorder: DashRecorder) -> None:
        key = (recorder.vhost, recorder.app, recorder.stream)
        if self.recorders.get(key) is recorder:
            del self.recorders[key]

    def stop_all(self) -> None:
        for recorder in list(self.recorders.values()):
            try:
                if recorder.enabled:
                    recorder.stop()
                conf = recorder.conf
                if conf is not None and conf.dash.dash_dispose > 0:
                    recorder.dispose()
            except Exception as e:  # noqa: BLE001
                self.log.error(f"dash: shutdown of {recorder.vhost}/{recorder.app}/{recorder.stream}: {e!r}")
