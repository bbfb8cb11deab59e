"""Starts an :class:`~.writer.HlsRecorder` for every publish whose vhost has
``hls { enabled on; }`` and stops it at unpublish.  The server registers
one :class:`HlsObserver` with its stream registry::

    self.ctx.registry.observers.append(HlsObserver(self.ctx))
"""

from __future__ import annotations

from ..log import ContextLogger
from .writer import HlsRecorder

__all__ = ["HlsObserver"]


class HlsObserver:
    """A registry observer (``source_published``/``source_unpublished``).

    A stream keeps its recorder (and so its playlist and sequence numbers)
    from one publish to the next until ``hls_dispose`` removes its files.
    The vhost's ``hls`` section is read at each publish, so a reload applies
    to the next publish.  Edge vhosts make no HLS (SRS neither).  At a clean
    shutdown every open segment is finished, and the files of streams with
    a non-zero ``hls_dispose`` are removed, as SRS does when it stops.
    """

    def __init__(self, ctx, random_bytes=None) -> None:
        self.ctx = ctx
        self.random_bytes = random_bytes
        self.recorders: dict[tuple[str, str, str], HlsRecorder] = {}
        self.log = ContextLogger("hls")
        trigger = getattr(ctx.clock, "addSystemEventTrigger", None)
        if trigger is not None:
            trigger("before", "shutdown", self.stop_all)

    def config_for(self, source):
        conf = self.ctx.vhost(source.vhost)
        if conf is None or not conf.hls.enabled or conf.is_edge:
            return None
        return conf

    def source_published(self, source) -> None:
        conf = self.config_for(source)
        if conf is None:
            return
        key = (source.vhost, source.app, source.stream)
        recorder = self.recorders.get(key)
        if recorder is None:
            kwargs = {} if self.random_bytes is None else {"random_bytes": self.random_bytes}
            recorder = HlsRecorder(self.ctx, *key, on_disposed=self._disposed, **kwargs)
            self.recorders[key] = recorder
        try:
            recorder.start(source, conf)
        except Exception as e:  # noqa: BLE001 - a bad hls section never stops a publish
            self.log.error(f"hls: cannot start for {source.url}: {e!r}")
            recorder.enabled = False

    def source_unpublished(self, source) -> None:
        recorder = self.recorders.get((source.vhost, source.app, source.stream))
        if recorder is not None and recorder.source is source:
            try:
                recorder.stop()
            except Exception as e:  # noqa: BLE001 - never let HLS break an unpublish
                self.log.error(f"hls: stop failed for {source.url}: {e!r}")

    def _disposed(self, recorder: HlsRecorder) -> None:
        key = (recorder.vhost, recorder.app, recorder.stream)
        if self.recorders.get(key) is recorder:
            del self.recorders[key]

    def stop_all(self) -> None:
        for recorder in list(self.recorders.values()):
            try:
                if recorder.enabled:
                    recorder.stop()
                conf = recorder.conf
                if conf is not None and conf.hls.hls_dispose > 0:
                    recorder.dispose()
            except Exception as e:  # noqa: BLE001
                self.log.error(f"hls: shutdown of {recorder.vhost}/{recorder.app}/{recorder.stream}: {e!r}")
