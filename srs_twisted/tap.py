"""``twistd srs``: command-line options and the service maker."""

from __future__ import annotations

import os
import sys

from twisted.python import usage

from . import __version__

# What `twistd -n srs` runs with when no config file is given: RTMP on
# 1935, the HTTP API on 1985, HTTP-FLV/TS and static files on 8080, one
# default vhost with SRS's defaults (no files written: HLS and DVR are off).
DEFAULT_CONFIG = """
listen              1935;
max_connections     1000;
daemon              off;
srs_log_tank        console;
http_api {
    enabled         on;
    listen          1985;
}
http_server {
    enabled         on;
    listen          8080;
    dir             ./objs/nginx/html;
}
vhost __defaultVhost__ {
    http_remux {
        enabled     on;
        mount       [vhost]/[app]/[stream].flv;
    }
}
"""


class Options(usage.Options):
    synopsis = "[-c FILE] [-e] [-t]"
    longdesc = "Run srs-twisted, an SRS-compatible live video server. Without -c it runs on built-in defaults."
    optParameters = [["config", "c", None, "SRS config file (default: built-in defaults; env SRS_CONFIG_FILE)"]]
    optFlags = [
        ["env-only", "e", "Take all config from SRS_* environment variables"],
        ["test", "t", "Check the config and exit"],
    ]

    def opt_version(self):
        print(f"srs-twisted {__version__}")
        sys.exit(0)

    def postOptions(self):
        environ = os.environ
        if environ.get("SRS_CONFIG_FILE"):
            self["config"] = environ["SRS_CONFIG_FILE"]
        if environ.get("SRS_ENV_ONLY"):
            self["env-only"] = True


def load_config(path, env_only=False, environ=None):
    from . import config

    environ = os.environ if environ is None else environ
    if env_only:
        return config.load(None, environ=environ, env_only=True)
    if path is None:
        return config.load_string(DEFAULT_CONFIG, environ=environ, path="<built-in defaults>")
    return config.load(path, environ=environ)


def makeService(options):
    from .config import ConfigError
    from . import log

    try:
        conf = load_config(options["config"], options["env-only"])
    except (ConfigError, OSError) as e:
        raise SystemExit(f"srs: {e}")
    if options["test"]:
        print(f"srs: config {options['config'] or '<built-in defaults>'} is ok")
        raise SystemExit(0)
    log.configure(conf.srs_log_tank, conf.srs_log_file, conf.srs_log_level)
    from twisted.logger import globalLogPublisher

    globalLogPublisher.addObserver(log.report_twisted_failures)
    from .workers import worker_count

    if worker_count(conf) > 1:
        from .workers.supervisor import twistd_supervisor

        return twistd_supervisor(conf, options, getattr(options, "parent", None) or {}, worker_count(conf))
    return _twistd_service(conf, getattr(options, "parent", None) or {})


def log_target(twistd: dict):
    """Where twistd would write its log (stdout, or a file), or None where
    twistd's own choice must stand (``--syslog``, ``--logger``, a daemon
    asked to log to stdout)."""
    logfile = twistd.get("logfile") or ""
    if twistd.get("syslog") or twistd.get("logger") or (logfile == "-" and not twistd.get("nodaemon")):
        return None
    if logfile in ("", "-") and twistd.get("nodaemon"):
        return sys.stdout
    from twisted.python.logfile import LogFile

    return LogFile.fromFullPath(logfile or "twistd.log")


def twistd_mixin(twistd: dict) -> type:
    """A mixin for the application's service as twistd runs it: its lines written as
    ``srs`` writes them (not wrapped in twistd's own timestamp), and a port that
    cannot be bound one error line and exit status 1, not a traceback."""
    from twisted.logger import ILogObserver
    from twisted.python.components import Componentized

    from . import log
    from .service import StartError

    class TwistdService:
        def setServiceParent(self, parent):
            # twistd makes the application right after makeService and
            # starts logging with the observer set on it, if any.
            if isinstance(parent, Componentized) and parent.getComponent(ILogObserver) is None:
                out = log_target(twistd)
                if out is not None:
                    parent.setComponent(ILogObserver, log.SrsObserver(out))
            super().setServiceParent(parent)

        def privilegedStartService(self):
            try:
                super().privilegedStartService()
            except StartError as e:
                self.log.error(f"start server failed: {e}")
                pidfile = twistd.get("pidfile")
                try:  # twistd wrote it and removes it only after a run
                    with open(pidfile) as f:
                        if int(f.read().strip() or 0) == os.getpid():
                            os.unlink(pidfile)
                except (OSError, TypeError, ValueError):
                    pass
                raise SystemExit(1) from None

    return TwistdService


def _twistd_service(conf, twistd: dict):
    """The server as twistd runs it (see :func:`twistd_mixin`)."""
    from .service import SrsService

    class TwistdSrsService(twistd_mixin(twistd), SrsService):
        pass

    return TwistdSrsService(conf)
