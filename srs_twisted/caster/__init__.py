"""SRS's stream casters (``stream_caster`` blocks): listeners that turn a foreign push into a
live stream.

Each enabled block becomes one Twisted service, made by the factory registered for its
``caster`` kind in :data:`CASTERS`.  A factory is named ``"module:attribute"`` (imported when
a block of that kind is enabled, so a kind costs nothing until used) and is called as
``factory(ctx, conf, bind_host)`` where ``ctx`` is the server's
:class:`~srs_twisted.context.ServerContext`, ``conf`` the block's
:class:`~srs_twisted.config.caster.StreamCasterConfig` and ``bind_host`` the address the
server binds to ('' for all); it returns an ``IService`` whose ``startService`` listens (raising
:class:`~srs_twisted.service.StartError` when it cannot) and whose ``stopService`` closes its
ports and ends its streams.

Kinds:

* ``mpegts_over_udp``: :mod:`.udp`, MPEG-TS datagrams on a UDP port;
* ``flv``: :mod:`.flv`, an FLV body POSTed to ``/app/stream.flv`` on a TCP port;
* ``gb28181``: ``srs_twisted.gb.service:GbCaster``, the GB28181 helper's (SIP + PS over RTP).

:func:`register` replaces or adds a kind (tests, plugins).
"""

from __future__ import annotations

import importlib
from typing import Callable

__all__ = ["CASTERS", "register", "caster_factory", "CasterUnavailable"]

#: caster kind -> "module:attribute" of its service factory, or the factory itself.
CASTERS: dict[str, str | Callable] = {
    "mpegts_over_udp": "srs_twisted.caster.udp:UdpCaster",
    "flv": "srs_twisted.caster.flv:FlvCaster",
    "gb28181": "srs_twisted.gb.service:GbCaster",
}


class CasterUnavailable(Exception):
    """No factory can be found for a caster kind (unknown kind, or its module is missing)."""


def register(kind: str, factory: str | Callable) -> None:
    """Serve ``stream_caster { caster KIND; }`` with ``factory`` (see the module docstring)."""
    CASTERS[kind] = factory


def caster_factory(kind: str) -> Callable:
    """The factory of ``kind``, imported if named; raises :class:`CasterUnavailable`."""
    factory = CASTERS.get(kind)
    if factory is None:
        raise CasterUnavailable(f"invalid caster {kind!r}")
    if callable(factory):
        return factory
    module_name, _, attribute = factory.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        if e.name is None or not module_name.startswith(e.name):
            raise
        raise CasterUnavailable(f"caster {kind} is not available in this build ({module_name} is missing)") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise CasterUnavailable(f"caster {kind} is not available in this build ({factory} is missing)") from None
