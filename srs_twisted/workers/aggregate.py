"""The public HTTP API of a worker: the routes that describe the server (streams,
clients, vhosts, summaries, ``/metrics``) and the kick answer for every worker.

The answering worker asks the supervisor for the workers' private API ports, GETs
the same path from each (its own too) and merges (:mod:`.merge`); a kick goes to
each worker until the one holding the client answers.  Any other route is this
worker's own.  A worker that does not answer within :data:`PEER_TIMEOUT` is left
out (logged)."""

from __future__ import annotations

import json

from twisted.internet import defer
from twisted.web import resource, server

from ..log import ContextLogger
from .control import Peers
from .merge import merge, merge_metrics, merge_summaries, merge_vhosts

__all__ = ["Aggregator"]

PEER_TIMEOUT = 5.0
ERROR_RTMP_CLIENT_NOT_FOUND = 2049
ERROR_RTMP_STREAM_NOT_FOUND = 2048
ERROR_RTMP_VHOST_NOT_FOUND = 1018
_ALL = "start=0&count=1000"


class Aggregator(resource.Resource):
    """Wraps the API's router (``_ApiFront.routes``), after auth, JSONP and CORS."""

    isLeaf = True

    def __init__(self, inner, worker) -> None:
        super().__init__()
        self.inner = inner
        self.worker = worker
        self.log = ContextLogger()

    def render(self, request):
        path = request.path.decode("utf-8", "replace")
        method = request.method
        for prefix, handler, methods in (("/api/v1/streams/", self._streams, (b"GET",)),
                                         ("/api/v1/clients/", self._clients, (b"GET", b"DELETE")),
                                         ("/api/v1/vhosts/", self._vhosts, (b"GET",))):
            if (path + "/").startswith(prefix) and method in methods:
                rest = path[len(prefix):] if len(path) > len(prefix) else ""
                return self._async(request, handler(request, rest))
        if path in ("/api/v1/summaries", "/api/v1/summaries/") and method == b"GET":
            return self._async(request, self._summaries(request))
        if path == "/metrics" and method == b"GET" and self.worker.config.exporter.enabled:
            return self._async(request, self._metrics(request))
        return self.inner.render(request)

    # --- plumbing ---
    def _async(self, request, d) -> int:
        def send(result):
            body, content_type = result
            if request.finished or getattr(request, "_disconnected", False):
                return
            data = self._wrap(request, body, content_type)
            request.write(data)
            request.finish()

        def failed(failure):
            from ..log import log_unexpected

            log_unexpected(self.log, "workers: the API could not gather the workers", failure)
            if not request.finished and not getattr(request, "_disconnected", False):
                request.setResponseCode(500)
                request.finish()

        d.addCallback(send).addErrback(failed)
        return server.NOT_DONE_YET

    @staticmethod
    def _wrap(request, body: bytes, content_type: bytes) -> bytes:
        from ..http.api import SrsApi

        return SrsApi._send(request, body, content_type)

    def _reply(self, obj: dict):
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"), b"application/json"

    def _envelope(self, mine: dict, **fields) -> dict:
        out = {k: mine[k] for k in ("code", "server", "service", "pid") if k in mine}
        out.update(fields)
        return out

    @defer.inlineCallbacks
    def _peers(self):
        control = self.worker.control
        if control is None:
            return [{"index": self.worker.index, "endpoints": self.worker.private}]
        answer = yield control.callRemote(Peers)
        return json.loads(answer["peers"])

    @defer.inlineCallbacks
    def _gather(self, request, path: str, method: bytes = b"GET", as_json: bool = True):
        """[(peer, answer)] from every worker's private API (those that answered)."""
        peers = yield self._peers()
        auth = request.getHeader(b"authorization")
        calls = [self._fetch(p, path, method, auth, as_json) for p in peers]
        results = yield defer.DeferredList(calls, consumeErrors=True)
        out = []
        for peer, (ok, value) in zip(peers, results):
            if ok:
                out.append((peer, value))
            else:
                self.log.warn(f"workers: worker {peer['index']} did not answer {path}: {value.getErrorMessage()}")
        return out

    @defer.inlineCallbacks
    def _fetch(self, peer, path: str, method: bytes, auth, as_json: bool):
        from twisted.web.client import Agent, readBody
        from twisted.web.http_headers import Headers

        headers = Headers({b"authorization": [auth]} if auth else {})
        agent = Agent(self.worker.reactor, connectTimeout=PEER_TIMEOUT)
        url = f"http://{peer['endpoints']['api']}{path}".encode()
        d = agent.request(method, url, headers)
        timeout = self.worker.reactor.callLater(PEER_TIMEOUT, d.cancel)
        try:
            response = yield d
            body = yield readBody(response)
        finally:
            if timeout.active():
                timeout.cancel()
        return json.loads(body) if as_json else body.decode("utf-8", "replace")

    def _mine(self, answers):
        for peer, answer in answers:
            if peer["index"] == self.worker.index:
                return answer
        return answers[0][1] if answers else {"code": 0}

    @staticmethod
    def _private_rtmp(answers) -> list[str]:
        return [peer["endpoints"].get("rtmp", "") for peer, _a in answers]

    @defer.inlineCallbacks
    def _merged(self, request):
        streams = yield self._gather(request, f"/api/v1/streams/?{_ALL}")
        clients = yield self._gather(request, f"/api/v1/clients/?{_ALL}")
        by_peer = {peer["index"]: [answer.get("streams", []), []] for peer, answer in streams}
        for peer, answer in clients:
            by_peer.setdefault(peer["index"], [[], []])[1] = answer.get("clients", [])
        merged = merge([tuple(v) for _i, v in sorted(by_peer.items())], self._private_rtmp(streams + clients))
        return self._mine(streams), merged, clients

    @staticmethod
    def _page(request, items: list) -> list:
        from ..http.api import SrsApi

        return SrsApi._page(request, items)

    # --- routes ---
    @defer.inlineCallbacks
    def _streams(self, request, sid: str):
        mine, (streams, _clients, ids), _ = yield self._merged(request)
        if sid:
            found = next((s for s in streams if s["id"] == ids.get(sid, sid)), None)
            if found is None:
                return self._reply({"code": ERROR_RTMP_STREAM_NOT_FOUND})
            return self._reply(self._envelope(mine, stream=found))
        return self._reply(self._envelope(mine, streams=self._page(request, streams)))

    @defer.inlineCallbacks
    def _clients(self, request, cid: str):
        if request.method == b"DELETE":
            if not cid:
                return self._reply({"code": ERROR_RTMP_CLIENT_NOT_FOUND})
            answers = yield self._gather(request, f"/api/v1/clients/{cid}", b"DELETE")
            for _peer, answer in answers:
                if answer.get("code") == 0:
                    return self._reply(answer)
            return self._reply({"code": ERROR_RTMP_CLIENT_NOT_FOUND})
        mine, (_streams, clients, _ids), _ = yield self._merged(request)
        if cid:
            found = next((c for c in clients if c["id"] == cid), None)
            if found is None:
                return self._reply({"code": ERROR_RTMP_CLIENT_NOT_FOUND})
            return self._reply(self._envelope(mine, client=found))
        return self._reply(self._envelope(mine, clients=self._page(request, clients)))

    @defer.inlineCallbacks
    def _vhosts(self, request, vid: str):
        mine, (streams, clients, _ids), _ = yield self._merged(request)
        answers = yield self._gather(request, "/api/v1/vhosts/")
        vhosts = merge_vhosts([a.get("vhosts", []) for _p, a in answers], streams, clients)
        if vid:
            found = next((v for v in vhosts if v["id"] == vid), None)
            if found is None:
                return self._reply({"code": ERROR_RTMP_VHOST_NOT_FOUND})
            return self._reply(self._envelope(mine, vhost=found))
        return self._reply(self._envelope(mine, vhosts=vhosts))

    @defer.inlineCallbacks
    def _summaries(self, request):
        answers = yield self._gather(request, "/api/v1/summaries")
        mine = self._mine(answers)
        others = [a["data"] for p, a in answers if a is not mine and "data" in a]
        return self._reply(self._envelope(mine, data=merge_summaries(mine["data"], others)))

    @defer.inlineCallbacks
    def _metrics(self, request):
        answers = yield self._gather(request, "/metrics", as_json=False)
        from ..http.exporter import CONTENT_TYPE

        return merge_metrics([text for _p, text in answers]).encode(), CONTENT_TYPE.encode()
