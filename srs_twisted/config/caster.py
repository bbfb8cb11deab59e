"""The ``stream_caster`` blocks: SRS's stream converters, typed (issue 13).

A configuration may hold any number of blocks, each one listener of one kind::

    stream_caster {
        enabled on;                 # default off
        caster  mpegts_over_udp;    # mpegts_over_udp | flv | gb28181
        output  rtmp://127.0.0.1/live/livestream;
        listen  8935;               # [ip:]port (UDP for mpegts_over_udp, TCP for flv and gb28181)
        sip {                       # gb28181 only: the embedded SIP server of SRS 5/6
            enabled   on;           # default on
            listen    5060;         # [ip:]port, default 5060
            timeout   60;           # seconds, default 60
            reinvite  5;            # seconds, default 5
            candidate *;            # default *; $NAME reads the variable (* when unset)
        }
    }

``output`` is an RTMP URL; ``[app]`` and ``[stream]`` (flv: from the POSTed path; gb28181:
``[stream]`` is the device id) are replaced per stream by the casters.  Defaults are those of
SRS's getters (``get_stream_caster_*``): ``listen`` 0 and an empty ``caster``/``output``, which
SRS refuses when the block is enabled ("invalid port", "invalid caster"); here an enabled block
without them is a configuration error at ``FILE:LINE:COL`` (``srs -t`` reports it).

Environment: SRS reads no ``SRS_STREAM_CASTER_*`` variable (its getters take one block of a
repeated directive, and none calls the environment), so none overrides these settings here
either; the only variable SRS honours is the ``$NAME`` form of ``sip.candidate``, expanded by
:func:`finish_stream_caster` as SRS's ``get_stream_caster_sip_candidate`` does.

The legacy GB28181 keys of SRS 4 (``tcp_enable``, ``rtp_port_min``, ``host``...) are rewritten
or dropped by :mod:`.transform` before this module sees the tree.

Pure standard library, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

from .env import expand_dollar
from .check import parse_endpoint
from .fields import _custom, _float, _on, _only_on, _raw, _section, _str
from .parser import ConfigError, Directive

__all__ = [
    "CASTER_MPEGTS_OVER_UDP",
    "CASTER_FLV",
    "CASTER_GB28181",
    "CASTER_KINDS",
    "SipConfig",
    "StreamCasterConfig",
    "finish_stream_caster",
    "check_stream_casters",
]

CASTER_MPEGTS_OVER_UDP = "mpegts_over_udp"
CASTER_FLV = "flv"
CASTER_GB28181 = "gb28181"
#: Every ``caster`` value SRS gives a meaning to (RTSP push, ``rtsp``, was removed in SRS 4).
CASTER_KINDS = (CASTER_MPEGTS_OVER_UDP, CASTER_FLV, CASTER_GB28181)


def _endpoint(node: Directive | None) -> tuple[str, int]:
    """``listen [ip:]port`` of a block as (ip or '', port); ('', 0) when absent.  SRS reads a
    bare port only (``atoi``: ``127.0.0.1:8935`` would be port 127); here an address binds the
    port to it, as the other ``listen`` directives allow (checked by check.py)."""
    found = node.get("listen") if node is not None else None
    if found is None or not found.arg():
        return "", 0
    try:
        return parse_endpoint(found.arg())
    except ValueError:  # an unchecked tree: no port
        return "", 0


def _listen_port(node: Directive | None) -> int:
    return _endpoint(node)[1]


def _listen_ip(node: Directive | None) -> str:
    return _endpoint(node)[0]


@dataclass(frozen=True)
class SipConfig:
    """``stream_caster.sip``: the embedded GB28181 SIP server (SRS 5/6)."""

    enabled: bool = _on(True)
    listen: int = _custom(lambda node: _listen_port(node) or 5060, lambda: 5060)  # SIP port, TCP (and UDP here)
    listen_ip: str = _custom(_listen_ip, str)  # ours: the address of "listen ip:port", '' for all
    timeout: float = _float(60.0)  # seconds: SIP or media idle before a session ends
    reinvite: float = _float(5.0)  # seconds: wait after media stops before re-inviting
    # The address put in SDP ``c=`` lines: ``*`` detects, ``$NAME`` is expanded at load.
    candidate: str = _str("*")
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class StreamCasterConfig:
    """One ``stream_caster`` block."""

    enabled: bool = _only_on(False)
    caster: str = _str("", choices=CASTER_KINDS)
    output: str = _str("")  # rtmp://host[:port]/app/stream, with [app]/[stream] templates
    listen: int = _custom(_listen_port, int)  # port; 0 (unset) is refused when enabled
    listen_ip: str = _custom(_listen_ip, str)  # ours: the address of "listen ip:port", '' for all
    sip: SipConfig = _section(SipConfig)
    directive: Directive | None = _raw()

    @property
    def is_udp(self) -> bool:
        return self.caster == CASTER_MPEGTS_OVER_UDP

    @property
    def is_flv(self) -> bool:
        return self.caster == CASTER_FLV

    @property
    def is_gb28181(self) -> bool:
        return self.caster == CASTER_GB28181


def finish_stream_caster(caster: StreamCasterConfig, environ: Mapping[str, str] | None) -> StreamCasterConfig:
    """The block as SRS's getters read it: ``sip.candidate`` with ``$NAME`` expanded."""
    candidate = expand_dollar(caster.sip.candidate, environ, "*")
    return replace(caster, sip=replace(caster.sip, candidate=candidate))


def _where(caster: StreamCasterConfig, key: str) -> Directive | None:
    """The directive at dotted ``key`` in the block, else the block itself."""
    node = found = caster.directive
    for name in key.split("."):
        found = found.get(name) if found is not None else None
    return found or node


def check_stream_casters(casters: list[StreamCasterConfig], path: str = "<string>") -> None:
    """Raise :class:`ConfigError` for an enabled block SRS would refuse to start with (no
    ``caster``, no ``listen`` port, an ``output`` that is not ``rtmp://``), or for two enabled
    blocks on the same port of the same transport."""
    taken: list[tuple[str, str, int, StreamCasterConfig]] = []  # (transport, ip, port, block)
    for caster in casters:
        if not caster.enabled:
            continue
        problem = None
        if not caster.caster:
            problem, key = f'an enabled stream_caster needs "caster" ({", ".join(CASTER_KINDS)})', "caster"
        elif caster.listen <= 0:
            problem, key = f'stream_caster {caster.caster} needs "listen PORT"', "listen"
        elif not caster.output.startswith("rtmp://"):
            problem, key = (f'stream_caster {caster.caster}: "output" must be an rtmp:// URL, '
                            f"got {caster.output!r}"), "output"
        if problem is None:
            # The SIP port is TCP (and UDP) like the media port of gb28181.
            ports = [("udp" if caster.is_udp else "tcp", caster.listen_ip, caster.listen, "listen")]
            if caster.is_gb28181 and caster.sip.enabled:
                ports.append(("tcp", caster.sip.listen_ip, caster.sip.listen, "sip.listen"))
            for transport, ip, number, key in ports:
                clash = next((other for t, i, n, other in taken
                              if (t, n) == (transport, number) and (i == ip or not i or not ip)), None)
                if clash is not None:
                    problem = (f"stream_caster {caster.caster}: {transport} port {number} is already "
                               f"used by stream_caster {clash.caster}")
                    break
                taken.append((transport, ip, number, caster))
        if problem is not None:
            node = _where(caster, key)
            if node is None:
                raise ConfigError(path, 1, 1, problem)
            raise ConfigError.at(node, problem, 0 if node is not caster.directive and node.args else None)
