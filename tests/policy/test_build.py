"""build_policy: security, then refer, then hooks."""

from __future__ import annotations

from twisted.trial import unittest

from srs_twisted.cluster.relay import DirectoryPolicy
from srs_twisted.errors import Denied
from srs_twisted.policy import ChainPolicy
from srs_twisted.policy.build import build_policy
from srs_twisted.policy.hooks import HooksPolicy
from srs_twisted.policy.overload import OverloadPolicy
from srs_twisted.policy.refer import ReferPolicy
from srs_twisted.policy.security import SecurityPolicy

from .common import ScriptedHttp, make_client, make_ctx

CONF = """
vhost __defaultVhost__ {
    security { enabled on; deny publish 10.0.0.1; allow publish all; allow play all; }
    refer { enabled on; all ossrs.net; play ossrs.net; }
    http_hooks { enabled on; on_connect http://h/c; on_publish http://h/p; on_play http://h/play;
                 on_unpublish http://h/u; on_stop http://h/s; on_close http://h/close; }
}
"""


class BuildTests(unittest.TestCase):
    def setUp(self):
        self.ctx = make_ctx(CONF)
        self.http = ScriptedHttp(self.ctx.clock)
        self.policy = build_policy(self.ctx, self.http)

    def test_shape(self):
        self.assertIsInstance(self.policy, ChainPolicy)
        self.assertEqual([type(p) for p in self.policy.policies], [OverloadPolicy, SecurityPolicy, ReferPolicy, HooksPolicy, DirectoryPolicy])
        default = build_policy(self.ctx)
        self.assertIs(default.policies[3].http.reactor, self.ctx.clock)

    def test_security_refusal_never_reaches_the_hooks(self):
        self.failureResultOf(self.policy.on_publish(make_client(self.ctx, ip="10.0.0.1")), Denied)
        self.assertEqual(self.http.requests, [])

    def test_refer_refusal_never_reaches_the_hooks(self):
        client = make_client(self.ctx, page_url="http://leech.com/")
        self.failureResultOf(self.policy.on_connect(client), Denied)
        self.failureResultOf(self.policy.on_play(client), Denied)
        self.assertEqual(self.http.requests, [])

    def test_allowed_client_goes_through_the_hooks(self):
        client = make_client(self.ctx)
        self.successResultOf(self.policy.on_connect(client))
        self.successResultOf(self.policy.on_publish(client))
        self.policy.on_unpublish(client)
        self.successResultOf(self.policy.on_play(client))
        self.policy.on_stop(client)
        self.policy.on_close(client)
        self.assertEqual(self.http.urls(), ["http://h/c", "http://h/p", "http://h/u", "http://h/play", "http://h/s",
                                            "http://h/close"])

    def test_hook_refusal(self):
        self.http.replies["http://h/p"] = (200, b'{"code":1}')
        self.failureResultOf(self.policy.on_publish(make_client(self.ctx)), Denied)
