"""Starts an :class:`~.writer.HlsRecorder` for every publish whose vhost has
``hls { enabled on; }`` and stops it at unpublish (see
:class:`~srs_twisted.recording.RecorderObserver`)."""

from __future__ import annotations

from ..recording import RecorderObserver
from .writer import HlsRecorder

__all__ = ["HlsObserver"]


class HlsObserver(RecorderObserver):
    """At a clean shutdown every open segment is finished."""

    name = "hls"

    def __init__(self, ctx, random_bytes=None) -> None:
        self.random_bytes = random_bytes
        super().__init__(ctx)

    def new_recorder(self, vhost: str, app: str, stream: str) -> HlsRecorder:
        kwargs = {} if self.random_bytes is None else {"random_bytes": self.random_bytes}
        return HlsRecorder(self.ctx, vhost, app, stream, on_disposed=self._disposed, **kwargs)
