"""``srs``: a command that behaves like SRS's binary.

    srs -c conf/srs.conf      run with a config file
    srs -t -c conf/srs.conf   check the config (exit 0, or FILE:LINE:COL: message)
    srs -e                    all config from SRS_* environment variables
    srs -v                    print the version

In the foreground it changes into ``work_dir``, writes ``pid``, exits on
SIGINT/SIGTERM, quits gracefully on SIGQUIT, re-reads the config on SIGHUP and
reopens the log file on SIGUSR1.
"""

from __future__ import annotations

import os
import signal
import sys

from . import SRS_COMPAT_VERSION, __version__

USAGE = """Usage: srs [-h] [-v|-V] [-g] [-t] [-e] [-c FILE]
  -h          show this help
  -v, -V      print the version
  -g          print the server signature
  -t          test the config file and exit
  -e          take the config from SRS_* environment variables only
  -c FILE     the config file (default conf/srs.conf; env SRS_CONFIG_FILE)
"""


class UsageError(Exception):
    pass


def parse_args(argv: list[str]) -> dict:
    """SRS-style flags; they may be combined ('-tc FILE')."""
    opts = {"config": None, "test": False, "env_only": False, "action": None}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg == "-":
            raise UsageError(f"unexpected argument {arg!r}")
        if arg in ("--help",):
            opts["action"] = "help"
            continue
        for j, flag in enumerate(arg[1:]):
            if flag == "h":
                opts["action"] = "help"
            elif flag in "vV":
                opts["action"] = "version"
            elif flag == "g":
                opts["action"] = "signature"
            elif flag == "t":
                opts["test"] = True
            elif flag == "e":
                opts["env_only"] = True
            elif flag == "c":
                rest = arg[2 + j :]
                if rest:
                    opts["config"] = rest
                elif i < len(argv):
                    opts["config"] = argv[i]
                    i += 1
                else:
                    raise UsageError("-c needs a FILE")
                break
            else:
                raise UsageError(f"unknown option -{flag}")
    return opts


def _write_pid(path: str) -> None:
    if not path:
        return
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "w") as f:
        f.write(f"{os.getpid()}\n")


def serve(reactor, pid: str, install, stop) -> None:
    """Write the pid file (if ``pid``), run the reactor (``install()`` once it runs,
    ``stop()`` before it shuts down), then remove the pid file."""
    pid_path = os.path.abspath(pid) if pid else ""
    _write_pid(pid_path)
    reactor.callWhenRunning(install)
    reactor.addSystemEventTrigger("before", "shutdown", stop)
    reactor.run(installSignalHandlers=True)
    if pid_path and os.path.exists(pid_path):
        os.unlink(pid_path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts = parse_args(argv)
    except UsageError as e:
        sys.stderr.write(f"srs: {e}\n{USAGE}")
        return 2
    if opts["action"] == "help":
        sys.stdout.write(USAGE)
        return 0
    if opts["action"] == "version":
        sys.stdout.write(f"{'.'.join(map(str, SRS_COMPAT_VERSION))}\n")
        return 0
    if opts["action"] == "signature":
        sys.stdout.write(f"srs-twisted/{__version__}\n")
        return 0

    from .config import ConfigError
    from .tap import load_config

    env = os.environ
    if env.get("SRS_CONFIG_FILE"):
        opts["config"] = env["SRS_CONFIG_FILE"]
    if env.get("SRS_ENV_ONLY"):
        opts["env_only"] = True
    if not opts["env_only"] and opts["config"] is None:
        opts["config"] = "conf/srs.conf"
    try:
        conf = load_config(opts["config"], opts["env_only"])
    except ConfigError as e:
        sys.stderr.write(f"{e}\n")
        return 1
    except OSError as e:
        sys.stderr.write(f"srs: cannot read config {opts['config']}: {e.strerror}\n")
        return 1
    if opts["test"]:
        from .http.stream import mount_warnings

        for warning in mount_warnings(conf):
            sys.stderr.write(f"warning: {warning}\n")
        sys.stdout.write(f"the config file {opts['config'] or '<env>'} syntax is ok\n")
        sys.stdout.write(f"config file {opts['config'] or '<env>'} test is successful\n")
        return 0
    return run(conf, opts)


def run(conf, opts, worker: int | None = None) -> int:
    """Run the server; with ``workers N`` (N > 1) the supervisor of N worker processes;
    ``worker`` is the index of the worker process this is (which inherits the
    supervisor's work_dir and writes no pid file)."""
    from twisted.internet import reactor

    from . import log
    from .service import SrsService
    from .workers import worker_count

    config_path = os.path.abspath(opts["config"]) if opts["config"] else None
    if conf.work_dir and worker is None:
        os.chdir(conf.work_dir)
    log.configure(conf.srs_log_tank, conf.srs_log_file, conf.srs_log_level)
    if worker is None and worker_count(conf) > 1:
        from .workers.supervisor import run_supervisor

        return run_supervisor(conf, config_path, opts["env_only"], worker_count(conf))
    if worker is not None:
        log.set_tag(f"w{worker}")
    from twisted.logger import globalLogBeginner, globalLogPublisher

    # Unhandled errors in Deferreds and timed calls are bugs: marked and counted.
    globalLogPublisher.addObserver(log.report_twisted_failures)
    # Twisted's own warnings and errors as SRS lines (as under twistd).
    globalLogBeginner.beginLoggingTo([log.SrsObserver()], redirectStandardIO=False)
    logger = log.ContextLogger()
    from .http.stream import mount_warnings

    for warning in mount_warnings(conf):
        logger.warn(warning)
    if worker is not None:
        from .workers.worker import WorkerService

        srv = WorkerService(conf, reactor, worker)
    else:
        srv = SrsService(conf, reactor)

    def reload_config():
        from .tap import load_config

        try:
            srv.reload(load_config(config_path, opts["env_only"]))
        except Exception as e:
            logger.error(f"reload config failed, keep the old one: {e}")

    def graceful_quit():
        logger.trace(f"graceful quit, wait {conf.grace_final_wait}ms for clients")
        for child in list(srv):
            if child.name and child.name.startswith("rtmp-"):
                child.stopService()
        reactor.callLater(conf.grace_final_wait / 1000.0, reactor.stop)

    def on_signal(signum, frame):
        if signum == signal.SIGHUP:
            reactor.callFromThread(reload_config)
        elif signum == signal.SIGUSR1:
            reactor.callFromThread(log.reopen)
        elif signum == signal.SIGQUIT:
            reactor.callFromThread(graceful_quit)
        else:
            logger.trace(f"signal {signum}: fast quit")
            reactor.callFromThread(reactor.stop)

    def install_handlers():
        # After Twisted's own (which reap FFmpeg children on SIGCHLD): ours
        # add reload, log reopening and the graceful quit.
        for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGQUIT, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)

    # Ours before the ports listen, so a signal sent as soon as a port
    # answers is never met by Python's defaults (SIGTERM killing the process,
    # SIGINT raising KeyboardInterrupt); reactor.run() then puts Twisted's
    # SIGINT/SIGTERM handlers in (they stop the reactor too), and ours go
    # back on top once it runs.
    install_handlers()
    from .service import StartError

    try:
        srv.startService()
    except StartError as e:  # a port in use, a bad interface...
        logger.error(f"start server failed: {e}")
        if conf.srs_log_tank == "file":
            sys.stderr.write(f"srs: start server failed: {e}\n")
        return 1
    except Exception:  # a bug: its traceback
        log.log_unexpected(logger, "start server failed")
        return 1
    serve(reactor, conf.pid if worker is None else "", install_handlers, srv.stopService)
    logger.trace("srs-twisted stopped")
    log.unconfigure()
    return 0


if __name__ == "__main__":
    sys.exit(main())
