"""The supervisor process of ``workers N``: spawns N workers, restarts one that dies,
passes reload / log reopening / quit signals on to all of them, and holds the stream
directory the workers share (over AMP on a private Unix socket).

It binds no media port itself: every worker listens on the shared TCP ports with
``SO_REUSEPORT`` (:mod:`.reuseport`); the supervisor only checks, before spawning,
that no other program holds them, so a port in use is one clear start error."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import tempfile

from twisted.application import service
from twisted.internet import defer, protocol
from twisted.protocols import amp

from ..log import ContextLogger
from . import CONTROL_ENV, INDEX_ENV, offset_listen
from .control import Hello, Lookup, Orphaned, Peers, Register, ReloadAll, Unregister
from .directory import StreamTable
from .reuseport import check_bindable

__all__ = ["SupervisorService", "ports_to_check"]

# Restart delays after a worker died: first, doubling up to the cap; a worker that
# ran this long before dying starts again from the first delay.
RESTART_FIRST = 0.5
RESTART_MAX = 10.0
RESTART_RESET_AFTER = 30.0
# SIGTERM, then SIGKILL for a worker still running this long after.
KILL_AFTER = 10.0


def ports_to_check(conf, count: int) -> list[tuple[str, str, int, int]]:
    """(what, interface, port, socket type) of every port the workers will bind."""
    from ..rtc.service import udp_listen_address

    tcp, udp = socket.SOCK_STREAM, socket.SOCK_DGRAM
    out: list[tuple[str, str, int, int]] = []

    def add(what, listens, kind, per_worker=False):
        for listen in listens:
            for i in range(count if per_worker else 1):
                host, port = udp_listen_address(offset_listen(listen, i))
                out.append((what, host, port, kind))

    add("rtmp", conf.listen, tcp)
    if conf.http_server.enabled:
        add("http_server", conf.http_server.listens, tcp)
        if conf.http_server.https.enabled:
            add("https", conf.http_server.https.listens, tcp)
    if conf.http_api.enabled:
        add("http_api", conf.http_api.listens, tcp)
        if conf.http_api.https.enabled:
            add("http_api https", conf.http_api.https.listens, tcp)
    if conf.exporter.enabled:
        add("exporter", [conf.exporter.listen], tcp)
    rtc = conf.rtc_server
    if rtc.enabled:
        add("rtc udp", rtc.listens[:1], udp, per_worker=True)
        if rtc.tcp.enabled:
            add("rtc tcp", rtc.tcp.listens, tcp, per_worker=True)
    if conf.srt_server.enabled:
        add("srt udp", conf.srt_server.listens[:1], udp, per_worker=True)
    seen, unique = set(), []
    for item in out:  # the API may share the HTTP server's port
        if item[1:] not in seen:
            seen.add(item[1:])
            unique.append(item)
    return unique


class _Control(amp.AMP):
    """The supervisor's end of one worker's control connection."""

    def __init__(self, sup: "SupervisorService") -> None:
        super().__init__()
        self.sup = sup
        self.index: int | None = None

    @Hello.responder
    def hello(self, index, pid, endpoints):
        self.index = index
        self.sup.worker_hello(index, pid, json.loads(endpoints), self)
        return {}

    @Register.responder
    def register(self, key, owner):
        ok, holder = self.sup.table.register(key, json.loads(owner))
        return {"ok": ok, "owner": json.dumps(holder)}

    @Unregister.responder
    def unregister(self, key, node):
        return {"ok": self.sup.table.unregister(key, node)}

    @Lookup.responder
    def lookup(self, key):
        holder = self.sup.table.lookup(key)
        return {"owner": json.dumps(holder) if holder else ""}

    @Peers.responder
    def peers(self):
        return {"peers": json.dumps(self.sup.peers())}

    @ReloadAll.responder
    def reload_all(self):
        self.sup.reactor.callLater(0, self.sup.reload, None)
        return {}

    def connectionLost(self, reason):
        super().connectionLost(reason)
        if self.index is not None:
            self.sup.worker_gone(self.index, self)


class _ControlFactory(protocol.Factory):
    def __init__(self, sup) -> None:
        self.sup = sup

    def buildProtocol(self, addr):
        return _Control(self.sup)


class _Child(protocol.ProcessProtocol):
    """One worker process."""

    def __init__(self, sup: "SupervisorService", index: int) -> None:
        self.sup = sup
        self.index = index
        self.pid: int | None = None
        self.started = 0.0
        self.ended = defer.Deferred()

    def connectionMade(self):
        self.pid = self.transport.pid
        self.started = self.sup.reactor.seconds()

    def processEnded(self, reason):
        code = getattr(reason.value, "exitCode", None)
        sig = getattr(reason.value, "signal", None)
        self.sup.child_ended(self, f"signal {sig}" if sig else f"status {code}")
        self.ended.callback(None)

    def signal(self, name: str) -> None:
        try:
            self.transport.signalProcess(name)
        except Exception:  # already gone
            pass


class SupervisorService(service.Service):
    """The supervisor.  ``started`` fires once every worker said hello, or fails
    (with the reason) when a worker died before it did."""

    def __init__(self, conf, reactor, count: int, config_path: str | None, env_only: bool = False) -> None:
        self.conf = conf
        self.reactor = reactor
        self.count = count
        self.config_path = config_path
        self.env_only = env_only
        self.log = ContextLogger()
        self.table = StreamTable()
        self.children: dict[int, _Child] = {}
        self.hellos: dict[int, dict] = {}
        self.delays = {i: RESTART_FIRST for i in range(count)}
        self.stopping = False
        self.started = defer.Deferred()
        self.rundir = ""
        self.control_path = ""
        self._listening = None

    # --- start ---
    def privilegedStartService(self) -> None:
        """Check that no other program holds a port the workers will bind (StartError)."""
        from ..service import StartError

        for what, host, port, kind in ports_to_check(self.conf, self.count):
            try:
                check_bindable(host, port, kind)
            except OSError as e:
                raise StartError(f"{what} cannot listen on {host or '0.0.0.0'}:{port}: {e.strerror}") from None
        super().privilegedStartService()

    def startService(self) -> None:
        super().startService()
        self.rundir = tempfile.mkdtemp(prefix="srs-workers-")
        self.control_path = os.path.join(self.rundir, "control.sock")
        self._listening = self.reactor.listenUNIX(self.control_path, _ControlFactory(self), mode=0o600)
        self.log.trace(f"supervisor pid={os.getpid()}: starting {self.count} workers, control {self.control_path}")
        self.reactor.callWhenRunning(self._spawn_all)

    def _spawn_all(self) -> None:
        for index in range(self.count):
            self.spawn(index)

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "srs_twisted.workers.worker"]
        if self.env_only:
            args.append("-e")
        elif self.config_path:
            args += ["-c", self.config_path]
        return args

    def spawn(self, index: int) -> None:
        if self.stopping:
            return
        env = dict(os.environ)
        env[INDEX_ENV] = str(index)
        env[CONTROL_ENV] = self.control_path
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        child = _Child(self, index)
        self.children[index] = child
        args = self.command()
        self.reactor.spawnProcess(child, args[0], args, env=env, childFDs={0: "w", 1: 1, 2: 2})
        self.log.trace(f"worker {index} started, pid={child.pid}")

    def worker_hello(self, index: int, pid: int, endpoints: dict, control) -> None:
        self.hellos[index] = {"index": index, "pid": pid, "endpoints": endpoints, "control": control}
        if not self.started.called and len(self.hellos) == self.count:
            self.log.trace(f"srs-twisted started, {self.count} workers: "
                           + ", ".join(f"w{i} pid={h['pid']}" for i, h in sorted(self.hellos.items())))
            self.started.callback(self)

    def worker_gone(self, index: int, control) -> None:
        hello = self.hellos.get(index)
        if hello is not None and hello["control"] is control:
            del self.hellos[index]
        dropped = self.table.drop(f"w{index}")
        if dropped:
            self.log.trace(f"worker {index} left: its streams {', '.join(dropped)} leave the directory")
            self._release_orphans(dropped)

    def _release_orphans(self, keys: list[str]) -> None:
        """A live worker releases the dead one's records in the origin cluster's Redis
        (the supervisor does not talk to Redis), so another machine may publish them at
        once instead of after the records' TTL."""
        for hello in sorted(self.hellos.values(), key=lambda h: h["index"]):
            control = hello["control"]
            if getattr(control, "callRemote", None) is None:
                continue
            d = control.callRemote(Orphaned, keys=json.dumps(keys))
            d.addErrback(lambda f: self.log.warn(f"release of {keys} by worker {hello['index']}: "
                                                 f"{f.getErrorMessage()}"))
            return

    def peers(self) -> list[dict]:
        return [{"index": i, "pid": h["pid"], "endpoints": h["endpoints"]} for i, h in sorted(self.hellos.items())]

    # --- a worker ended ---
    def child_ended(self, child: _Child, why: str) -> None:
        if self.children.get(child.index) is child:
            del self.children[child.index]
        if self.stopping:
            self.log.trace(f"worker {child.index} pid={child.pid} stopped ({why})")
            return
        if not self.started.called:
            self.log.error(f"worker {child.index} pid={child.pid} exited ({why}) while starting: stop all")
            self.started.errback(RuntimeError(f"worker {child.index} exited ({why}) while starting"))
            return
        ran = self.reactor.seconds() - child.started
        if ran >= RESTART_RESET_AFTER:
            self.delays[child.index] = RESTART_FIRST
        delay = self.delays[child.index]
        self.delays[child.index] = min(RESTART_MAX, delay * 2)
        self.log.error(f"worker {child.index} pid={child.pid} exited ({why}) after {ran:.1f}s, restart in {delay:g}s")
        self.reactor.callLater(delay, self.spawn, child.index)

    # --- signals ---
    def signal_all(self, name: str) -> None:
        for child in list(self.children.values()):
            child.signal(name)

    def reload(self, conf) -> None:
        """SIGHUP (or the raw API's reload): every worker re-reads the config."""
        if conf is not None and conf.workers != self.conf.workers:
            self.log.warn(f"reload: workers {self.conf.workers} -> {conf.workers} cannot be reloaded, restart to apply")
        self.log.trace(f"reload: signal {len(self.children)} workers")
        self.signal_all("HUP")

    def reopen(self) -> None:
        self.signal_all("USR1")

    def graceful(self) -> None:
        """SIGQUIT: every worker quits gracefully; the supervisor stops once all did."""
        self.stopping = True
        self.signal_all("QUIT")
        ended = [c.ended for c in self.children.values()]
        defer.DeferredList(ended).addCallback(lambda _: self.reactor.stop())

    def stopService(self):
        super().stopService()
        self.stopping = True
        children = list(self.children.values())
        for child in children:
            child.signal("TERM")
        kill = self.reactor.callLater(KILL_AFTER, lambda: [c.signal("KILL") for c in children])
        done = defer.DeferredList([c.ended for c in children])

        def finished(_):
            if kill.active():
                kill.cancel()
            if self._listening is not None:
                self._listening.stopListening()
            shutil.rmtree(self.rundir, ignore_errors=True)

        return done.addCallback(finished)

    def pids(self) -> dict[int, int]:
        return {i: c.pid for i, c in self.children.items()}


def install_signals(sup: SupervisorService, reactor, load, fast_quit: bool) -> None:
    """SIGHUP reload (``load()`` re-reads the config), SIGUSR1 log reopening, SIGQUIT
    graceful quit and, with ``fast_quit``, SIGINT/SIGTERM stopping the reactor (whose
    shutdown stops every worker)."""
    from .. import log

    logger = ContextLogger()

    def reload():
        try:
            conf = load()
        except Exception as e:
            logger.error(f"reload config failed, keep the old one: {e}")
            return
        sup.reload(conf)

    def reopen():
        log.reopen()
        sup.reopen()

    def on_signal(signum, frame):
        if signum == signal.SIGHUP:
            reactor.callFromThread(reload)
        elif signum == signal.SIGUSR1:
            reactor.callFromThread(reopen)
        elif signum == signal.SIGQUIT:
            reactor.callFromThread(sup.graceful)
        else:
            logger.trace(f"signal {signum}: stop the workers and quit")
            reactor.callFromThread(reactor.stop)

    sigs = [signal.SIGHUP, signal.SIGUSR1, signal.SIGQUIT] + ([signal.SIGINT, signal.SIGTERM] if fast_quit else [])
    for sig in sigs:
        signal.signal(sig, on_signal)


def run_supervisor(conf, config_path: str | None, env_only: bool, count: int) -> int:
    """``srs`` with ``workers N``: the supervisor in the foreground; the exit status."""
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, globalLogPublisher

    from .. import log
    from ..cli import serve
    from ..service import StartError
    from ..tap import load_config

    log.set_tag("sup")
    globalLogPublisher.addObserver(log.report_twisted_failures)
    globalLogBeginner.beginLoggingTo([log.SrsObserver()], redirectStandardIO=False)
    logger = ContextLogger()
    # One server id for all workers (the API's "server" field).
    os.environ.setdefault("SRS_SERVER_ID", conf.server_id)
    sup = SupervisorService(conf, reactor, count, config_path, env_only)
    status = [0]

    def install():
        install_signals(sup, reactor, lambda: load_config(config_path, env_only), fast_quit=True)

    install()
    try:
        sup.privilegedStartService()
    except StartError as e:
        logger.error(f"start server failed: {e}")
        if conf.srs_log_tank == "file":
            sys.stderr.write(f"srs: start server failed: {e}\n")
        return 1
    sup.startService()

    def failed(why):
        status[0] = 1
        logger.error(f"start server failed: {why.getErrorMessage()}")
        reactor.stop()

    sup.started.addErrback(failed)
    serve(reactor, conf.pid, install, sup.stopService)
    logger.trace("srs-twisted supervisor stopped")
    log.unconfigure()
    return status[0]


def twistd_supervisor(conf, options, twistd: dict, count: int):
    """``twistd srs`` with ``workers N``: the supervisor as the application's service
    (twistd writes the pid file; SIGINT/SIGTERM stop the reactor, which stops the workers)."""
    from twisted.internet import reactor

    from .. import log
    from ..tap import load_config, twistd_mixin

    log.set_tag("sup")
    config_path = os.path.abspath(options["config"]) if options["config"] else None
    os.environ.setdefault("SRS_SERVER_ID", conf.server_id)

    class TwistdSupervisor(twistd_mixin(twistd), SupervisorService):
        def startService(self):
            super().startService()
            self.started.addErrback(lambda f: (self.log.error(f"start server failed: {f.getErrorMessage()}"),
                                               self.reactor.stop()))
            self.reactor.callWhenRunning(install_signals, self, self.reactor,
                                         lambda: load_config(config_path, options["env-only"]), True)

    return TwistdSupervisor(conf, reactor, count, config_path, options["env-only"])
