"""Prometheus metrics: SRS's ``/metrics`` exposition, plus per-stream series.

:func:`render` is what both ``/metrics`` routes serve: the API's (when
``exporter.enabled`` is on) and the separate ``exporter.listen`` listener,
whose resource :func:`metrics_resource` builds.  Each
:class:`~srs_twisted.context.ServerContext` gets its own
``CollectorRegistry`` holding one :class:`SrsCollector`, so nothing is added
to prometheus_client's global registry.

The SRS set (same names, types, labels and help texts as SRS 7.0.18)::

    srs_node_uname_info{sysname,nodename,release,version,machine} 1   gauge
    srs_build_info{server,service,pid,build_date,major,minor,revision,
                   version,code[,label,tag]} 1                        gauge
    srs_cpu_percent          gauge    CPU of this process, 100 = one core
    srs_memory               gauge    resident pages x 4 (kB with 4 KiB pages)
    srs_send_bytes_total     counter
    srs_receive_bytes_total  counter
    srs_streams              gauge
    srs_clients              gauge
    srs_clients_total        counter
    srs_clients_errs_total   counter

Extensions (not in SRS), labelled ``{vhost,app,stream}``::

    srs_stream_recv_bytes_total        counter  payload bytes from the publisher
    srs_stream_send_bytes_total        counter  bytes written to its players
    srs_stream_players                 gauge    consumers of the source
    srs_stream_fps                     gauge    video frames/s between scrapes
    srs_stream_dropped_packets_total   counter  packets skipped for lagging players
    srs_stream_gop_length_frames       gauge    video frames in the last complete GOP

and ``srs_protocol_connections{protocol}`` (gauge), ``srs_unexpected_errors_total``
(counter: exceptions logged with the ``[unexpected-error]`` marker).  At most
:data:`MAX_STREAM_SERIES` streams get series of their own; the rest are
summed into one series whose three labels are ``_other_``.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from twisted.web import resource

from .. import SRS_COMPAT_VERSION
from .. import log
from .procstats import ProcStats

# Streams that get per-stream series of their own; the oldest sources win (a
# stream keeps its series for as long as it lives) and any further ones are
# summed into a single {vhost="_other_",app="_other_",stream="_other_"} series.
# A module constant rather than a directive: the config check rejects unknown
# directives, and SRS has none for this.
MAX_STREAM_SERIES = 1000
OTHER = "_other_"

# The text format generate_latest writes (SRS sends "text/plain; charset=utf-8").
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# The code name SRS 7 puts in srs_build_info{code}.
CODE_NAME = "Hang"

# srs_stream_fps is the frame rate over the scrapes of the last FPS_WINDOW
# seconds (or since the previous scrape, when scrapes are further apart).
FPS_WINDOW = 30.0

# The exporter is disabled (SRS's ERROR_EXPORTER_DISABLED).
ERROR_EXPORTER_DISABLED = 1090

_STREAM_LABELS = ["vhost", "app", "stream"]


def _build_date() -> str:
    """When this package was installed or built, as SRS_BUILD_DATE reads."""
    from .. import __file__ as package_file

    try:
        when = os.stat(package_file).st_mtime
    except OSError:
        when = time.time()
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


BUILD_DATE = _build_date()


class _FrameRates:
    """Video frames per second of each source, from its frame counter sampled
    at each scrape (no per-packet cost, nothing added to the live core)."""

    def __init__(self, window: float = FPS_WINDOW) -> None:
        self.window = window
        self._samples: dict[str, deque] = {}

    def rate(self, key: str, now: float, frames: int) -> float:
        samples = self._samples.get(key)
        if samples is None:
            samples = self._samples[key] = deque()
        if not samples or now - samples[-1][0] >= 1.0:
            samples.append((now, frames))
        # The base is the newest sample at least a window old, else the oldest.
        while len(samples) > 1 and now - samples[1][0] >= self.window:
            samples.popleft()
        t0, f0 = samples[0]
        if now <= t0 or frames < f0:
            return 0.0
        return (frames - f0) / (now - t0)

    def keep_only(self, keys: set) -> None:
        for key in [k for k in self._samples if k not in keys]:
            del self._samples[key]


class SrsCollector:
    """A prometheus_client custom collector over one ServerContext."""

    def __init__(self, ctx, stats: ProcStats | None = None, uname=None) -> None:
        self.ctx = ctx
        # Its own /proc sampler: scrapes do not shorten the API's CPU interval.
        self.stats = stats or ProcStats()
        self._uname = uname or os.uname()
        self._fps = _FrameRates()
        # Protocols seen so far keep their series (at 0) when their last client leaves.
        self._protocols = {"rtmp"}

    def describe(self):
        # Nothing to check at registration (and collect() must not run then).
        return []

    def collect(self):
        yield from self._srs_metrics()
        yield from self._stream_metrics()
        yield self._protocol_metric()
        yield CounterMetricFamily(
            "srs_unexpected_errors",
            "Unexpected exceptions (bugs) logged with a traceback since the process started.",
            value=log.unexpected_errors(),
        )

    # ---- SRS's set --------------------------------------------------------
    def _srs_metrics(self):
        ctx = self.ctx
        u = self._uname
        yield _info(
            "srs_node_uname_info",
            "Labeled system information as provided by the uname system call.",
            {
                "sysname": u.sysname,
                "nodename": u.nodename,
                "release": u.release,
                "version": u.version,
                "machine": u.machine,
            },
        )
        major, minor, revision = SRS_COMPAT_VERSION
        build = {
            "server": ctx.server_id,
            "service": ctx.service_id,
            "pid": str(os.getpid()),
            "build_date": BUILD_DATE,
            "major": str(major),
            "minor": str(minor),
            "revision": str(revision),
            "version": f"{major}.{minor}.{revision}",
            "code": CODE_NAME,
        }
        exporter = getattr(ctx.config, "exporter", None)
        if exporter is not None and exporter.label:
            build["label"] = exporter.label
        if exporter is not None and exporter.tag:
            build["tag"] = exporter.tag
        yield _info(
            "srs_build_info",
            "A metric with a constant '1' value labeled by build_date, version from which SRS was built.",
            build,
        )
        # SRS: the process's CPU time over wall time between samples x 100, and
        # the resident set in pages x 4 (kB with 4 KiB pages).
        me = self.stats.self_stat()
        yield GaugeMetricFamily("srs_cpu_percent", "SRS cpu used percent.", value=me["percent"] * 100)
        yield GaugeMetricFamily("srs_memory", "SRS memory used.", value=int(me["rss"] * 4))
        yield CounterMetricFamily(
            "srs_send_bytes_total", "SRS total sent bytes.", value=ctx.send_bytes()
        )
        yield CounterMetricFamily(
            "srs_receive_bytes_total", "SRS total received bytes.", value=ctx.recv_bytes()
        )
        yield GaugeMetricFamily(
            "srs_streams", "The number of SRS concurrent streams.", value=len(ctx.registry)
        )
        yield GaugeMetricFamily(
            "srs_clients", "The number of SRS concurrent clients.", value=len(ctx.clients)
        )
        yield CounterMetricFamily(
            "srs_clients_total",
            "The total counts of SRS clients.",
            value=ctx.totals["clients"],
        )
        yield CounterMetricFamily(
            "srs_clients_errs_total",
            "The total errors of SRS clients.",
            value=ctx.totals["client_errors"],
        )

    # ---- extensions -------------------------------------------------------
    def _stream_metrics(self):
        now = self.ctx.clock.seconds()
        sources = sorted(
            self.ctx.registry.sources(), key=lambda s: (s.stats.created, s.vhost, s.app, s.stream)
        )
        rows: dict[tuple, list] = {}
        for i, src in enumerate(sources):
            stats = src.stats
            fps = self._fps.rate(src.id or src.url, now, stats.frames)
            if not src.active:
                fps = 0.0
            row = (
                stats.recv_bytes,
                stats.send_bytes,
                len(src.consumers),
                fps,
                stats.dropped,
                stats.gop_frames,
            )
            if i < MAX_STREAM_SERIES:
                rows[(src.vhost, src.app, src.stream)] = list(row)
            else:
                other = rows.setdefault((OTHER, OTHER, OTHER), [0, 0, 0, 0.0, 0, 0])
                for j, value in enumerate(row):
                    other[j] += value
        self._fps.keep_only({src.id or src.url for src in sources})

        families = [
            CounterMetricFamily(
                "srs_stream_recv_bytes_total",
                "Bytes received from the stream's publisher (media payload).",
                labels=_STREAM_LABELS,
            ),
            CounterMetricFamily(
                "srs_stream_send_bytes_total",
                "Bytes sent to the stream's players.",
                labels=_STREAM_LABELS,
            ),
            GaugeMetricFamily(
                "srs_stream_players", "Players of the stream.", labels=_STREAM_LABELS
            ),
            GaugeMetricFamily(
                "srs_stream_fps",
                "Video frames per second received by the stream.",
                labels=_STREAM_LABELS,
            ),
            CounterMetricFamily(
                "srs_stream_dropped_packets_total",
                "Packets skipped for players that fell behind.",
                labels=_STREAM_LABELS,
            ),
            GaugeMetricFamily(
                "srs_stream_gop_length_frames",
                "Video frames in the stream's last complete GOP (0 until two keyframes arrived).",
                labels=_STREAM_LABELS,
            ),
        ]
        for labels, row in rows.items():
            for family, value in zip(families, row):
                family.add_metric(list(labels), value)
        return families

    def _protocol_metric(self):
        counts: dict[str, int] = {}
        for client in self.ctx.clients.values():
            counts[client.protocol] = counts.get(client.protocol, 0) + 1
        self._protocols.update(counts)
        family = GaugeMetricFamily(
            "srs_protocol_connections",
            "Connected clients by protocol.",
            labels=["protocol"],
        )
        for protocol in sorted(self._protocols):
            family.add_metric([protocol], counts.get(protocol, 0))
        return family


def _info(name: str, documentation: str, labels: dict) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    family.add_metric(list(labels.values()), 1)
    return family


_registries: "WeakKeyDictionary" = WeakKeyDictionary()


def registry_for(ctx) -> CollectorRegistry:
    """The CollectorRegistry of ``ctx`` (made, with its SrsCollector, on first use)."""
    registry = _registries.get(ctx)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(SrsCollector(ctx))
        _registries[ctx] = registry
    return registry


def render(ctx) -> tuple[bytes, str]:
    """The metrics of ``ctx`` in the Prometheus text format, and its content
    type.  Whether the exporter is enabled is the caller's business."""
    return generate_latest(registry_for(ctx)), CONTENT_TYPE


class MetricsPage(resource.Resource):
    """``/metrics``: the exposition, or SRS's ``{"code":1090}`` when the
    exporter is disabled."""

    isLeaf = True

    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx = ctx

    def render_GET(self, request):
        exporter = getattr(self.ctx.config, "exporter", None)
        if exporter is None or not exporter.enabled:
            request.setHeader(b"content-type", b"application/json")
            return json.dumps({"code": ERROR_EXPORTER_DISABLED}).encode()
        body, content_type = render(self.ctx)
        request.setHeader(b"content-type", content_type.encode("ascii"))
        return body

    render_POST = render_GET


def metrics_resource(ctx) -> resource.IResource:
    """The root resource of the ``exporter.listen`` listener: ``/metrics``,
    and 404 for every other path."""
    root = resource.Resource()
    root.putChild(b"metrics", MetricsPage(ctx))
    return root


__all__ = [
    "CONTENT_TYPE",
    "MAX_STREAM_SERIES",
    "OTHER",
    "MetricsPage",
    "SrsCollector",
    "metrics_resource",
    "registry_for",
    "render",
]
