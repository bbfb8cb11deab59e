"""Worker processes on one machine (``workers N;``): a supervisor and N workers.

* :mod:`.supervisor`: the supervisor process (spawns, restarts and signals the
  workers, holds the stream directory, writes the pid file).
* :mod:`.worker`: a worker process (the whole server, its TCP ports shared with
  the other workers through ``SO_REUSEPORT``, its UDP ports its own).
* :mod:`.control`: the AMP commands between them, over a Unix socket.
* :mod:`.merge` / :mod:`.aggregate`: the HTTP API answering for every worker.

See docs/scaling.md.
"""

from __future__ import annotations

import dataclasses
import os

# Set by the supervisor in each worker's environment (not SRS_*: those are config overrides).
INDEX_ENV = "SRSTW_WORKER_INDEX"
CONTROL_ENV = "SRSTW_WORKER_CONTROL"

__all__ = ["INDEX_ENV", "CONTROL_ENV", "worker_count", "worker_index", "per_worker_config", "offset_listen"]


def worker_count(conf, cpus: int | None = None) -> int:
    """``workers`` as a number: ``auto`` is the number of CPUs this process may use."""
    value = (getattr(conf, "workers", "1") or "1").strip()
    if value == "auto":
        if cpus is None:
            try:
                cpus = len(os.sched_getaffinity(0))
            except (AttributeError, OSError):
                cpus = os.cpu_count() or 1
        return max(1, cpus)
    return max(1, int(value))


def worker_index(environ=None) -> int | None:
    """This process's worker index, None outside a worker."""
    value = (os.environ if environ is None else environ).get(INDEX_ENV)
    return int(value) if value not in (None, "") else None


def offset_listen(listen: str, offset: int) -> str:
    """An SRS listen value ('8000', '0.0.0.0:8000', '[::]:8000') with its port plus ``offset``."""
    if not offset:
        return listen
    text = listen.strip()
    head, sep, port = text.rpartition(":")
    if sep and not text.endswith("]"):
        return f"{head}:{int(port) + offset}"
    return str(int(text) + offset)


def per_worker_config(conf, index: int):
    """The config worker ``index`` runs: the UDP services (WebRTC, SRT) and WebRTC over
    TCP on the configured port plus the index, so every session's datagrams (and its
    RFC 4571 connection) reach the worker that holds it; the answer's candidate names
    that worker's port; the stream casters only in worker 0.  Everything else is unchanged."""
    if not index:
        return conf
    rtc = conf.rtc_server
    tcp = dataclasses.replace(rtc.tcp, listens=[offset_listen(x, index) for x in rtc.tcp.listens])
    rtc = dataclasses.replace(rtc, listens=[offset_listen(x, index) for x in rtc.listens], tcp=tcp)
    srt = conf.srt_server
    srt = dataclasses.replace(srt, listens=[offset_listen(x, index) for x in srt.listens])
    # The stream casters run in worker 0 only: a caster's port carries one stream (UDP) or
    # must reach the process holding the device (GB28181), and a second bind would fail.
    return dataclasses.replace(conf, rtc_server=rtc, srt_server=srt, stream_casters=[])
