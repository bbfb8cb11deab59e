"""A real hook receiver for tests: a twisted.web site on 127.0.0.1 that
records what it is sent and answers per path (or per action)."""

from __future__ import annotations

import json

from twisted.internet import defer, reactor
from twisted.web import resource, server


class HookReceiver(resource.Resource):
    isLeaf = True

    def __init__(self, clock=reactor):
        super().__init__()
        self.clock = clock
        self.requests: list[dict] = []
        # path (bytes, without query) or action -> (status, body) or ("slow", seconds)
        self.replies: dict = {}
        self.default = (200, b'{"code":0}')
        self.waiters: list[tuple] = []

    def render(self, request):
        data = request.content.read()
        try:
            body = json.loads(data) if data else None
        except ValueError:
            body = None
        action = body.get("action") if isinstance(body, dict) else None
        self.requests.append({
            "method": request.method,
            "path": request.path,
            "uri": request.uri,
            "headers": dict(request.requestHeaders.getAllRawHeaders()),
            "raw": data,
            "body": body,
            "action": action,
        })
        self._wake()
        reply = self.replies.get(request.path) or self.replies.get(action) or self.default
        if reply[0] == "slow":
            call = self.clock.callLater(reply[1], self._late, request)
            request.notifyFinish().addErrback(lambda _: call.active() and call.cancel())
            return server.NOT_DONE_YET
        request.setResponseCode(reply[0])
        return reply[1]

    def _late(self, request):
        request.write(b'{"code":0}')
        request.finish()

    def bodies(self, action):
        return [r["body"] for r in self.requests if r["action"] == action]

    def _wake(self):
        still = []
        for predicate, d in self.waiters:
            if predicate():
                d.callback(None)
            else:
                still.append((predicate, d))
        self.waiters = still

    def wait_for(self, predicate, timeout=30.0, what="hook requests"):
        """Fires once ``predicate()`` is true (checked at each request)."""
        if predicate():
            return defer.succeed(None)
        d = defer.Deferred()
        self.waiters.append((predicate, d))

        def expire():
            if not d.called:
                self.waiters = [(p, w) for (p, w) in self.waiters if w is not d]
                d.errback(AssertionError(f"timed out waiting for {what}; got {[r['action'] for r in self.requests]}"))

        call = self.clock.callLater(timeout, expire)
        d.addBoth(lambda r: (call.active() and call.cancel(), r)[1])
        return d


class TrackingSite(server.Site):
    """A Site that can wait until all its connections are gone."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.open: set = set()
        self._idle: list[defer.Deferred] = []

    def buildProtocol(self, addr):
        proto = super().buildProtocol(addr)
        site = self
        lost = proto.connectionLost

        def connectionLost(reason):
            site.open.discard(proto)
            try:
                return lost(reason)
            finally:
                if not site.open:
                    waiters, site._idle = site._idle, []
                    for d in waiters:
                        d.callback(None)

        proto.connectionLost = connectionLost
        self.open.add(proto)
        return proto

    def idle(self):
        if not self.open:
            return defer.succeed(None)
        d = defer.Deferred()
        self._idle.append(d)
        return d


def _abort(proto):
    transport = getattr(proto, "transport", None) or getattr(getattr(proto, "_channel", None), "transport", None)
    if transport is not None:
        transport.abortConnection()


def start_receiver(test, tls=None):
    """Listen on 127.0.0.1 (port 0); returns (receiver, base URL).  Cleanup
    stops listening and waits for the connections to close."""
    receiver = HookReceiver()
    site = TrackingSite(receiver)
    site.noisy = False
    if tls is None:
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        scheme = "http"
    else:
        port = reactor.listenSSL(0, site, tls, interface="127.0.0.1")
        scheme = "https"

    @defer.inlineCallbacks
    def stop():
        yield port.stopListening()
        # Hook clients close their connections (one request each); give
        # them a moment, then cut what is left.
        idle = site.idle()
        call = reactor.callLater(5, lambda: [_abort(p) for p in list(site.open)])
        yield idle
        if call.active():
            call.cancel()

    test.addCleanup(stop)
    return receiver, f"{scheme}://127.0.0.1:{port.getHost().port}"
