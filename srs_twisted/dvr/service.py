"""Starts a :class:`~.recorder.DvrRecorder` for every publish whose vhost
records (``dvr { enabled on; }`` and ``dvr_apply`` naming the stream) and
stops it at unpublish.  The server registers one :class:`DvrObserver` with
its stream registry::

    self.ctx.registry.observers.append(DvrObserver(self.ctx))
"""

from __future__ import annotations

import time

from zope.interface import implementer

from ..interfaces import IStreamObserver
from ..log import ContextLogger
from .plan import DvrSettings, applies
from .recorder import DvrRecorder

__all__ = ["DvrObserver"]


@implementer(IStreamObserver)
class DvrObserver:
    """A registry observer (``source_published``/``source_unpublished``).

    The vhost's ``dvr`` section is read at each publish, so a reload applies
    to the next publish (SRS does not reload ``dvr_apply`` at all).  On a
    clean server shutdown the files being written are closed and reaped.
    """

    def __init__(self, ctx, wallclock=time.time) -> None:
        self.ctx = ctx
        self.wallclock = wallclock
        self.recorders: dict = {}  # source -> DvrRecorder
        self.log = ContextLogger("dvr")
        trigger = getattr(ctx.clock, "addSystemEventTrigger", None)
        if trigger is not None:
            trigger("before", "shutdown", self.stop_all)
        # Once the server runs: finish what a killed server left (.tmp files).
        ctx.clock.callLater(0, self.recover)

    def recover(self) -> list:
        """Finish the recordings a server that was killed left unfinished
        (see :mod:`.recover`); returns their paths."""
        from .recover import recover_leftovers

        try:
            return recover_leftovers(self.ctx, self.ctx.hooks, self.log)
        except Exception as e:  # noqa: BLE001 - never stop the server over leftovers
            self.log.error(f"dvr: finishing unfinished recordings failed: {e!r}")
            return []

    def settings_for(self, source) -> DvrSettings | None:
        conf = self.ctx.vhost(source.vhost)
        if conf is None or not conf.dvr.enabled or conf.is_edge:
            return None
        settings = DvrSettings.from_config(conf.dvr)
        if not applies(settings.apply, source.app, source.stream):
            return None
        return settings

    def source_published(self, source) -> None:
        self._stop(source)
        try:
            settings = self.settings_for(source)
        except Exception as e:  # noqa: BLE001 - a bad dvr section never stops a publish
            self.log.error(f"dvr: no recording for {source.url}: {e!r}")
            return
        if settings is None:
            return
        recorder = DvrRecorder(
            source,
            settings,
            self.ctx.clock,
            hooks=self.ctx.hooks,
            wallclock=self.wallclock,
            utc=bool(getattr(self.ctx.config, "utc_time", False)),
            client=source.publisher_info,
        )
        self.recorders[source] = recorder
        recorder.start()

    def source_unpublished(self, source) -> None:
        self._stop(source)

    def _stop(self, source) -> None:
        recorder = self.recorders.pop(source, None)
        if recorder is not None:
            recorder.stop()

    def stop_all(self) -> None:
        for source in list(self.recorders):
            self._stop(source)
