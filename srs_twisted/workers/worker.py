"""One worker process of ``workers N``: the whole server, with

* every TCP listener bound with ``SO_REUSEPORT`` (the kernel spreads connections
  over the workers), WebRTC and SRT on their configured UDP port plus the index;
* two private listeners on 127.0.0.1 (an RTMP port other workers pull streams
  from, and the plain HTTP API the answering worker gathers every worker's
  streams and clients from);
* a control connection to the supervisor (hello, the stream directory, peers);
  the worker stops when it is lost (and when the supervisor dies: PDEATHSIG).

Run by the supervisor as ``python -m srs_twisted.workers.worker [-c FILE | -e]``."""

from __future__ import annotations

import hashlib
import json
import os
import sys

from twisted.internet import endpoints
from twisted.protocols import amp

from ..service import SrsService
from . import CONTROL_ENV, per_worker_config, worker_index
from .control import Hello, Orphaned, ReloadAll
from .directory import MasterDirectory
from .reuseport import ReusePortEndpoint

__all__ = ["WorkerService", "main", "stable_vhost_id"]


def stable_vhost_id(server_id: str, name: str) -> str:
    """The API's id of a vhost, the same in every worker ("vid-" and 7 characters)."""
    digest = hashlib.sha1(f"{server_id}/{name}".encode()).hexdigest()
    return "vid-" + digest[:7]


class _ControlClient(amp.AMP):
    def __init__(self, worker: "WorkerService") -> None:
        super().__init__()
        self.worker = worker

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.worker.control_lost()

    @Orphaned.responder
    def orphaned(self, keys):
        self.worker.release_orphans(json.loads(keys))
        return {}


class WorkerService(SrsService):
    """The server as worker ``index`` runs it."""

    def __init__(self, config, reactor=None, index: int = 0, control_path: str | None = None) -> None:
        self.index = index
        self.node = f"w{index}"
        self.control_path = control_path if control_path is not None else os.environ.get(CONTROL_ENV, "")
        self.control = None
        self.directory = MasterDirectory()
        self.private: dict[str, str] = {}  # filled in place at start (the relay's node shares it)
        self._private_ports: list = []
        self._machine_config = config  # worker 0's ports: the machine as other machines reach it
        super().__init__(per_worker_config(config, index), reactor)
        self.ctx.worker = self
        self._seed_vhost_ids()

    def _endpoint(self, description: str):
        return ReusePortEndpoint(self.reactor, description)

    def _seed_vhost_ids(self) -> None:
        from ..http.api import _state_for
        from ..url import DEFAULT_VHOST

        ids = _state_for(self.ctx).vhost_ids
        for name in [*self.config.vhosts, DEFAULT_VHOST]:
            ids.setdefault(name, stable_vhost_id(self.ctx.server_id, name))

    def _api(self):
        """The public API answers for every worker (:mod:`.aggregate`)."""
        if getattr(self, "_api_resource", None) is None:
            from .aggregate import Aggregator

            front = super()._api()
            front.routes = Aggregator(front.routes, self)
        return self._api_resource

    # --- life ---
    def startService(self) -> None:
        super().startService()
        self._listen_private()
        self._install_relay()
        if self.control_path:
            ep = endpoints.UNIXClientEndpoint(self.reactor, self.control_path, timeout=10)
            endpoints.connectProtocol(ep, _ControlClient(self)).addCallbacks(self._connected, self._no_control)

    def _listen_private(self) -> None:
        from ..http.api import api_resource
        from ..http.server import make_site

        rtmp = self.reactor.listenTCP(0, self.rtmp_factory, interface="127.0.0.1")
        site = make_site(self.ctx, None, api_resource(self.ctx, reload=self.reload_from_disk), False)
        api = self.reactor.listenTCP(0, site, interface="127.0.0.1")
        self._private_ports = [rtmp, api]
        self.private.clear()
        self.private.update(rtmp=f"127.0.0.1:{rtmp.getHost().port}", api=f"127.0.0.1:{api.getHost().port}")
        srv = self.config.http_server
        if srv.enabled:  # HLS (LL-HLS from memory) of the streams published here, for the other workers
            http = self.reactor.listenTCP(0, self._make_site(srv.dir, False, srv.crossdomain), interface="127.0.0.1")
            self._private_ports.append(http)
            self.private["http"] = f"127.0.0.1:{http.getHost().port}"

    def _local_directory_for(self, vhost):
        conf = self.ctx.vhost(vhost)
        return None if conf is not None and conf.is_edge else self.directory

    def _origin_cluster(self):
        """The Redis origin cluster in a worker: this machine's workers first (the
        supervisor's directory), then Redis (:mod:`srs_twisted.cluster.chained`)."""
        from ..cluster.directory import Owner
        from ..cluster.origin_cluster import OriginClusterService, this_node

        return OriginClusterService(self.ctx, self.bind_host, node=this_node(self._machine_config, self.bind_host),
                                    local_for=self._local_directory_for, local_node=Owner(self.node, self.private))

    def _install_relay(self) -> None:
        """Streams published here are registered in the supervisor's directory; a player
        of a stream another worker publishes makes this worker pull it (once) from
        that worker's private RTMP port (:mod:`srs_twisted.cluster.relay`)."""
        from ..cluster import relay
        from ..cluster.directory import Owner

        if self.ctx.cluster is not None:  # the origin cluster's relay, chained (_origin_cluster)
            return
        relay.install(self.ctx, self._local_directory_for, Owner(self.node, self.private))

    def _connected(self, control) -> None:
        self.control = control
        self.directory.control = control
        d = control.callRemote(Hello, index=self.index, pid=os.getpid(), endpoints=json.dumps(self.private))
        d.addCallback(lambda _: self.log.trace(f"worker {self.index} joined the supervisor, private "
                                               f"rtmp={self.private['rtmp']} api={self.private['api']}"))
        d.addErrback(lambda f: self.log.error(f"worker {self.index}: hello failed: {f.getErrorMessage()}"))

    def release_orphans(self, keys: list) -> None:
        """The streams of a worker that died: release this machine's records of them in
        the origin cluster (:meth:`~srs_twisted.cluster.chained.ChainedDirectory.release_orphan`)."""
        relay = self.ctx.cluster
        for key in keys:
            directory = relay.directory_for(str(key).split("/", 1)[0]) if relay is not None else None
            release = getattr(directory, "release_orphan", None)
            if release is not None:
                d = release(key)
                d.addCallback(lambda done, key=key: done and self.log.trace(
                    f"cluster: released {key} of a worker that died"))
                d.addErrback(lambda f, key=key: self.log.warn(f"cluster: release of {key}: {f.getErrorMessage()}"))

    def _no_control(self, failure) -> None:
        self.log.error(f"worker {self.index}: cannot reach the supervisor at {self.control_path}: "
                       f"{failure.getErrorMessage()}; stop")
        self.reactor.stop()

    def control_lost(self) -> None:
        self.directory.control = None
        if self.running:
            self.log.error(f"worker {self.index}: the supervisor is gone; stop")
            self.reactor.stop()

    def stopService(self):
        ports = self._private_ports
        self._private_ports = []
        for port in ports:
            port.stopListening()
        if self.ctx.cluster is not None:
            self.ctx.cluster.stop()
        if self.control is not None and self.control.transport is not None:
            control, self.control = self.control, None
            self.running = False  # the lost connection is ours: no "supervisor is gone"
            control.transport.loseConnection()
        return super().stopService()

    # --- reload ---
    def reload(self, config):
        done = super().reload(per_worker_config(config, self.index))
        self._seed_vhost_ids()
        return done

    def reload_from_disk(self) -> None:
        """The raw API's reload reloads every worker (the supervisor signals them)."""
        if self.control is None:
            return super().reload_from_disk()
        return self.control.callRemote(ReloadAll)


def _die_with_parent() -> None:
    """SIGTERM this process when the supervisor dies, however it dies (Linux)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def main(argv: list[str] | None = None) -> int:
    from ..cli import parse_args, run
    from ..config import ConfigError
    from ..tap import load_config

    index = worker_index()
    if index is None:
        sys.stderr.write("srs worker: run by the supervisor only (workers N; in the config)\n")
        return 2
    _die_with_parent()
    if os.getppid() == 1:  # the supervisor died before the line above
        return 1
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        conf = load_config(opts["config"], opts["env_only"])
    except (ConfigError, OSError) as e:
        sys.stderr.write(f"srs worker {index}: {e}\n")
        return 1
    return run(conf, opts, worker=index)


if __name__ == "__main__":
    sys.exit(main())
