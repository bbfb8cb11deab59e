"""Who may connect, publish and play: security rules, refer checks and HTTP
hooks, chained.  Every protocol asks ``ctx.policy`` the same questions."""

from __future__ import annotations

from twisted.internet import defer

from ..context import AllowAll, ClientInfo


class ChainPolicy:
    """Asks each policy in turn; the first refusal wins.  Notifications
    (unpublish, stop, close) go to every policy."""

    def __init__(self, policies) -> None:
        self.policies = list(policies)

    def _ask(self, method: str, client: ClientInfo):
        @defer.inlineCallbacks
        def run():
            for policy in self.policies:
                yield getattr(policy, method)(client)

        return run()

    def on_connect(self, client: ClientInfo):
        return self._ask("on_connect", client)

    def on_publish(self, client: ClientInfo):
        return self._ask("on_publish", client)

    def on_play(self, client: ClientInfo):
        return self._ask("on_play", client)

    def _tell(self, method: str, client: ClientInfo) -> None:
        for policy in self.policies:
            getattr(policy, method)(client)

    def on_unpublish(self, client: ClientInfo) -> None:
        self._tell("on_unpublish", client)

    def on_stop(self, client: ClientInfo) -> None:
        self._tell("on_stop", client)

    def on_close(self, client: ClientInfo) -> None:
        self._tell("on_close", client)


__all__ = ["AllowAll", "ChainPolicy"]
