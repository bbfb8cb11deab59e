"""Starts a :class:`~.writer.DashRecorder` for every publish whose vhost has
``dash { enabled on; }`` and stops it at unpublish (see
:class:`~srs_twisted.recording.RecorderObserver`)."""

from __future__ import annotations

from ..recording import RecorderObserver
from .writer import DashRecorder

__all__ = ["DashObserver"]


class DashObserver(RecorderObserver):
    """At a clean shutdown the buffered samples are written."""

    name = "dash"

    def new_recorder(self, vhost: str, app: str, stream: str) -> DashRecorder:
        return DashRecorder(self.ctx, vhost, app, stream, on_disposed=self._disposed)
