"""Transcode, exec, ingest and snapshot: the FFmpeg (and other) children of
the server, as SRS runs them.

* :class:`TranscodeObserver` -- at publish, one FFmpeg per enabled engine of
  every ``transcode`` block whose scope ('', app or app/stream) matches,
  reading ``rtmp://127.0.0.1:PORT/APP?vhost=VHOST/STREAM``; stopped at
  unpublish.  A stream that is itself the output of a running transcode is
  not transcoded (SRS's loop detection).
* :class:`ExecObserver` -- at publish, each ``exec { publish CMD ARGS; }``
  line of the vhost, with SRS's variables and ``>`` redirects; killed at
  unpublish.
* :class:`IngestService` -- at start, one FFmpeg per engine of every enabled
  ``ingest`` of every enabled vhost, pulling a file (looped) or a stream.
* :class:`~srs_twisted.process.snapshot.SnapshotObserver` -- JPEG snapshots
  for ``/snapshot/[app]/[stream].jpg``.

Every child is supervised (restarted with a backoff when it exits) and
owned by :class:`ServerWorkers`, the service that stops them all at
shutdown.  :meth:`ServerWorkers.reload` re-reads ``ctx.config`` and
restarts only the children whose configuration changed.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

from twisted.application import service
from twisted.internet import defer
from zope.interface import implementer

from ..interfaces import IStreamObserver
from ..log import ContextLogger, log_unexpected
from .ffmpeg import (
    EngineError,
    FFmpegJob,
    FFmpegNotFound,
    exec_vars,
    find_ffmpeg,
    ingest_job,
    rtmp_endpoint,
    rtmp_identity,
    split_redirects,
    transcode_job,
)
from .snapshot import SnapshotObserver
from .supervisor import ProcessSupervisor, WorkersService, context_id, publisher_of


def scope_matches(scope: str, app: str, stream: str) -> bool:
    return scope in ("", app, f"{app}/{stream}")


def matching_transcodes(conf, app: str, stream: str) -> list:
    """The vhost's ``transcode`` blocks for a stream, SRS's order: vhost
    scope, then app, then app/stream (file order within each)."""
    order = {"": 0, app: 1, f"{app}/{stream}": 2}
    blocks = [t for t in conf.transcodes if scope_matches(t.scope, app, stream)]
    return sorted(blocks, key=lambda t: order[t.scope])


@implementer(IStreamObserver)
class _StreamWorkers:
    """Children that live while a stream is published.

    Subclasses give :meth:`jobs` (what to run for a source) and
    :meth:`signature` (the config those jobs depend on, compared at reload).
    The start waits for the next reactor turn so the publishing adapter has
    attached its ClientInfo to the source.
    """

    kind = "worker"

    def __init__(self, ctx, workers: WorkersService | None = None) -> None:
        self.ctx = ctx
        self.workers = workers if workers is not None else WorkersService(ctx.clock)
        self.running: dict = {}  # source -> list[ProcessSupervisor]
        self.signatures: dict = {}  # source -> signature its children run with
        self._pending: dict = {}  # source -> DelayedCall

    # ---- registry observer ------------------------------------------------------
    def source_published(self, source) -> None:
        self._cancel_pending(source)
        self._pending[source] = self.ctx.clock.callLater(0, self._start, source)

    def source_unpublished(self, source) -> defer.Deferred:
        self._cancel_pending(source)
        return self._stop(source)

    # ---- what to run (subclasses) -------------------------------------------------
    def signature(self, source):
        raise NotImplementedError

    def jobs(self, source, log: ContextLogger) -> list[dict]:
        """keyword arguments of :meth:`WorkersService.supervise`, one per child."""
        raise NotImplementedError

    def released(self, source) -> None:
        """Called when a source's children are stopped."""

    # ---- lifecycle -----------------------------------------------------------------
    def _cancel_pending(self, source) -> None:
        call = self._pending.pop(source, None)
        if call is not None and call.active():
            call.cancel()

    def _start(self, source) -> None:
        self._pending.pop(source, None)
        if not source.active or source in self.running:
            return
        log = ContextLogger(context_id(source))
        try:
            specs = self.jobs(source, log)
        except Exception as e:  # a config this code did not foresee: log, never break publish
            log_unexpected(log, f"{self.kind}: {source.url}", e)
            specs = []
        self.signatures[source] = self.signature(source)
        sups = []
        for spec in specs:
            argv = spec.pop("argv")
            sup = self.workers.supervise(argv, log=log, **spec)
            if sup is not None:
                sups.append(sup)
        if sups:
            self.running[source] = sups
        else:
            self.released(source)

    def _stop(self, source) -> defer.Deferred:
        self.signatures.pop(source, None)
        sups = self.running.pop(source, None)
        if not sups:
            return defer.succeed(None)
        self.released(source)
        d = defer.gatherResults([self.workers.release(s) for s in sups], consumeErrors=True)
        d.addBoth(lambda _: None)
        return d

    def reload(self) -> defer.Deferred:
        """Restart the children of published streams whose config changed
        (and start those the new config asks for)."""
        waits = []
        for source in self.ctx.registry.sources():
            if not source.active or source in self._pending:
                continue
            known = source in self.signatures
            if known and self.signatures[source] == self.signature(source):
                continue
            d = self._stop(source)
            d.addCallback(lambda _, s=source: s.active and s not in self._pending and self._start(s))
            waits.append(d)
        return defer.gatherResults(waits, consumeErrors=True).addBoth(lambda _: None)

    def supervisors(self, source) -> list[ProcessSupervisor]:
        return list(self.running.get(source, ()))


class TranscodeObserver(_StreamWorkers):
    """SRS's ``transcode``: FFmpeg per engine while the stream is published."""

    kind = "transcode"

    def __init__(self, ctx, workers: WorkersService | None = None, find: Callable = find_ffmpeg) -> None:
        super().__init__(ctx, workers)
        self.find = find
        # (vhost, app, stream) of every running transcode output, counted:
        # a stream published there is a transcode's output, never transcoded again.
        self.outputs: Counter = Counter()
        self._outputs_of: dict = {}

    def signature(self, source):
        conf = self.ctx.vhost(source.vhost)
        if conf is None:
            return None
        blocks = tuple(matching_transcodes(conf, source.app, source.stream))
        cfg = self.ctx.config
        return blocks, rtmp_endpoint(cfg), cfg.ff_log_dir, getattr(cfg, "utc_time", False)

    def _identity(self, output: str):
        found = rtmp_identity(output)
        if found is None:
            return None
        vhost, app, stream = found
        conf = self.ctx.vhost(vhost)
        return (conf.name if conf is not None else vhost), app, stream

    def jobs(self, source, log: ContextLogger) -> list[dict]:
        conf = self.ctx.vhost(source.vhost)
        if conf is None:
            return []
        blocks = [b for b in matching_transcodes(conf, source.app, source.stream) if b.enabled]
        if not blocks:
            return []
        key = (source.vhost, source.app, source.stream)
        if self.outputs[key] > 0:
            log.trace(f"transcode: {source.url} is a transcode output, not transcoded again (loop)")
            return []
        cfg = self.ctx.config
        host, port = rtmp_endpoint(cfg)
        info = publisher_of(source)
        param = getattr(getattr(info, "request", None), "param", "") or ""
        now = self.ctx.clock.seconds()
        specs, outputs = [], []
        for block in blocks:
            try:
                binary = self.find(block.ffmpeg)
            except FFmpegNotFound as e:
                log.error(f"transcode: {source.url}: {e}")
                continue
            for engine in block.engines:
                if not engine.enabled:
                    continue
                try:
                    job: FFmpegJob = transcode_job(
                        binary,
                        engine,
                        vhost=source.vhost,
                        app=source.app,
                        stream=source.stream,
                        param=param,
                        port=port,
                        host=host,
                        ff_log_dir=cfg.ff_log_dir,
                        now=now,
                        utc=getattr(cfg, "utc_time", False),
                    )
                except EngineError as e:
                    log.error(f"transcode: {source.url} engine {engine.id or '(unnamed)'}: {e}")
                    continue
                name = f"transcode {source.url}" + (f" {engine.id}" if engine.id else "")
                specs.append({"argv": job.argv, "name": name, "log_file": job.log_file})
                identity = self._identity(job.output)
                if identity is not None:
                    outputs.append(identity)
        if specs:
            self.outputs.update(outputs)
            self._outputs_of[source] = outputs
            log.trace(f"transcode: {source.url}: {len(specs)} engine(s)")
        return specs

    def released(self, source) -> None:
        for identity in self._outputs_of.pop(source, ()):
            self.outputs[identity] -= 1
            if self.outputs[identity] <= 0:
                del self.outputs[identity]


class ExecObserver(_StreamWorkers):
    """SRS's ``exec { enabled on; publish CMD ARGS; }``: one process per
    ``publish`` line while the stream is published (restarted if it exits)."""

    kind = "exec"

    def signature(self, source):
        conf = self.ctx.vhost(source.vhost)
        return (conf.exec if conf is not None else None), rtmp_endpoint(self.ctx.config)

    def jobs(self, source, log: ContextLogger) -> list[dict]:
        conf = self.ctx.vhost(source.vhost)
        if conf is None or not conf.exec.enabled:
            return []
        info = publisher_of(source)
        req = getattr(info, "request", None)
        local_host, local_port = rtmp_endpoint(self.ctx.config)
        values = dict(
            vhost=source.vhost,
            port=getattr(req, "port", 0) or local_port,
            app=source.app,
            stream=source.stream,
            tc_url=getattr(req, "tc_url", "") or "",
            swf_url=getattr(info, "swf_url", "") or "",
            page_url=getattr(info, "page_url", "") or "",
            host=getattr(req, "host", "") or local_host,
            param=getattr(req, "param", "") or "",
            now=self.ctx.clock.seconds(),
            utc=getattr(self.ctx.config, "utc_time", False),
        )
        specs = []
        for words in conf.exec.publish:
            if not words or not words[0]:
                continue
            argv, out, err = split_redirects(list(words))
            argv = [exec_vars(w, **values) for w in argv]
            if not argv:
                continue
            specs.append(
                {
                    "argv": argv,
                    "name": f"exec {argv[0]}",
                    "stdout_file": exec_vars(out, **values) if out else "",
                    "stderr_file": exec_vars(err, **values) if err else "",
                }
            )
        return specs


class IngestService(service.Service):
    """SRS's ``ingest``: FFmpeg children started with the server."""

    def __init__(self, ctx, workers: WorkersService | None = None, find: Callable = find_ffmpeg) -> None:
        self.ctx = ctx
        self.workers = workers if workers is not None else WorkersService(ctx.clock)
        self.find = find
        # (vhost, ingest id, index) -> (signature, [supervisors])
        self.groups: dict = {}
        self.log = ContextLogger()

    def _wanted(self) -> dict:
        cfg = self.ctx.config
        wanted = {}
        common = (rtmp_endpoint(cfg), cfg.ff_log_dir, cfg.ff_log_level, getattr(cfg, "utc_time", False))
        for conf in cfg.vhosts.values():
            if not conf.enabled:
                continue
            for i, ingest in enumerate(conf.ingests):
                if ingest.enabled:
                    wanted[(conf.name, ingest.id, i)] = ((ingest, common), conf.name, ingest)
        return wanted

    def _start(self, key, vhost: str, ingest) -> list[ProcessSupervisor]:
        cfg = self.ctx.config
        log = ContextLogger()
        where = f"ingest {vhost}/{ingest.id}"
        try:
            binary = self.find(ingest.ffmpeg)
        except FFmpegNotFound as e:
            log.error(f"{where}: {e}")
            return []
        _, port = rtmp_endpoint(cfg)
        sups = []
        for engine in ingest.engines or [None]:
            try:
                job = ingest_job(
                    binary,
                    ingest,
                    engine,
                    vhost=vhost,
                    port=port,
                    ff_log_dir=cfg.ff_log_dir,
                    ff_log_level=cfg.ff_log_level,
                    now=self.ctx.clock.seconds(),
                    utc=getattr(cfg, "utc_time", False),
                )
            except EngineError as e:
                log.error(f"{where}: {e}")
                continue
            sup = self.workers.supervise(job.argv, name=where, log=log, log_file=job.log_file)
            if sup is not None:
                sups.append(sup)
        if sups:
            log.trace(f"{where}: {ingest.input.type} {ingest.input.url} -> {len(sups)} FFmpeg")
        return sups

    def apply(self) -> defer.Deferred:
        """Start what the config asks for, stop what it no longer does."""
        wanted = self._wanted()
        waits = []
        for key, (sig, sups) in list(self.groups.items()):
            if key in wanted and wanted[key][0] == sig:
                continue
            del self.groups[key]
            waits += [self.workers.release(s) for s in sups]
        started = defer.gatherResults(waits, consumeErrors=True)

        def start_new(_):
            if not self.running:
                return
            for key, (sig, vhost, ingest) in wanted.items():
                if key not in self.groups:
                    self.groups[key] = (sig, self._start(key, vhost, ingest))

        return started.addBoth(start_new)

    def startService(self) -> None:
        super().startService()
        self.apply()

    def stopService(self):
        super().stopService()
        sups = [s for _, group in self.groups.values() for s in group]
        self.groups.clear()
        d = defer.gatherResults([self.workers.release(s) for s in sups], consumeErrors=True)
        return d.addBoth(lambda _: None)

    def reload(self) -> defer.Deferred:
        if not self.running:
            return defer.succeed(None)
        return self.apply()

    def supervisors(self) -> list[ProcessSupervisor]:
        return [s for _, group in self.groups.values() for s in group]


class ServerWorkers(WorkersService):
    """Every child process of the server, as one service.

    Wire it with::

        workers = ServerWorkers(ctx)
        workers.setServiceParent(server)
        ctx.registry.observers.extend(workers.observers)

    and call :meth:`reload` after ``ctx.config`` changed.
    """

    def __init__(self, ctx, spawner: Callable | None = None) -> None:
        super().__init__(ctx.clock, spawner)
        self.ctx = ctx
        self.setName("workers")
        self.transcode = TranscodeObserver(ctx, self)
        self.exec = ExecObserver(ctx, self)
        self.snapshot = SnapshotObserver(ctx, self)
        self.ingest = IngestService(ctx, self)
        self.ingest.setServiceParent(self)

    @property
    def observers(self) -> list:
        return [self.transcode, self.exec, self.snapshot]

    def reload(self) -> defer.Deferred:
        waits = [o.reload() for o in self.observers] + [self.ingest.reload()]
        return defer.gatherResults(waits, consumeErrors=True).addBoth(lambda _: None)


__all__ = [
    "ExecObserver",
    "IngestService",
    "ServerWorkers",
    "SnapshotObserver",
    "TranscodeObserver",
    "rtmp_endpoint",
]
