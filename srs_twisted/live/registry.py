"""The one registry that maps vhost/app/stream to its live source."""

from __future__ import annotations

import secrets
import string
from typing import Callable

from zope.interface import implementer

from ..interfaces import IStreamRegistry
from .source import LiveSource, SourceOptions

_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_id(prefix: str = "", length: int = 8) -> str:
    """An SRS-style short random id (context ids, stream ids)."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


@implementer(IStreamRegistry)
class StreamRegistry:
    """Creates sources on first use and releases them once they have neither
    a publisher nor a player.

    ``options_for(vhost)`` returns the :class:`SourceOptions` a new source of
    that vhost runs with.  ``observers`` (each an
    :class:`~srs_twisted.interfaces.IStreamObserver`: HLS, DVR, forward...)
    are told about every publish and unpublish.
    """

    def __init__(self, clock, options_for: Callable[[str], SourceOptions] | None = None):
        self.clock = clock
        self._options_for = options_for or (lambda vhost: SourceOptions())
        self._sources: dict[tuple[str, str, str], LiveSource] = {}
        self._by_id: dict[str, LiveSource] = {}
        self.observers: list = []

    def fetch_or_create(self, vhost: str, app: str, stream: str) -> LiveSource:
        key = (vhost, app, stream)
        source = self._sources.get(key)
        if source is None:
            source = LiveSource(
                vhost,
                app,
                stream,
                self.clock,
                options=self._options_for(vhost),
                on_idle=self._release,
                source_id=new_id("vid-", 7),
                on_players=self._players_changed,
            )
            self._sources[key] = source
            self._by_id[source.id] = source
        return source

    def get(self, vhost: str, app: str, stream: str) -> LiveSource | None:
        return self._sources.get((vhost, app, stream))

    def by_id(self, source_id: str) -> LiveSource | None:
        return self._by_id.get(source_id)

    def sources(self) -> list[LiveSource]:
        return list(self._sources.values())

    def __len__(self) -> int:
        return len(self._sources)

    def _release(self, source: LiveSource) -> None:
        key = (source.vhost, source.app, source.stream)
        if self._sources.get(key) is source:
            del self._sources[key]
            if self._by_id.get(source.id) is source:
                del self._by_id[source.id]

    def _players_changed(self, source: LiveSource) -> None:
        """Observers with ``source_players_changed(source)`` hear when a
        source gains or loses a player (an edge starts or stops its pull)."""
        for observer in list(self.observers):
            hook = getattr(observer, "source_players_changed", None)
            if hook is not None:
                hook(source)

    # Publishing goes through the registry so observers hear about it.
    def publish(self, source: LiveSource, producer, info=None) -> None:
        """Start ``producer`` publishing on ``source`` (StreamBusy if taken);
        ``info`` (the publisher's ClientInfo) is attached before observers
        hear of it, so they see who publishes."""
        source.registerProducer(producer, True)
        if info is not None:
            source.publisher_info = info
        for observer in list(self.observers):
            observer.source_published(source)

    def unpublish(self, source: LiveSource) -> None:
        if not source.active:
            return
        for observer in list(self.observers):
            observer.source_unpublished(source)
        source.unregisterProducer()
