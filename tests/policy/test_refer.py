"""vhost.refer: SRS's page-domain suffix rule, per list."""

from __future__ import annotations

from twisted.trial import unittest

from srs_twisted.errors import Denied
from srs_twisted.policy.refer import ReferPolicy, check, page_domain, refer_matches

from .common import make_client, make_ctx


class ReferRuleTests(unittest.TestCase):
    def test_page_domain(self):
        self.assertEqual(page_domain("http://www.ossrs.net:8080/players/a.html?x=1"), "www.ossrs.net")
        self.assertEqual(page_domain("https://ossrs.net"), "ossrs.net")
        self.assertEqual(page_domain("ossrs.net/a:b"), "ossrs.net")
        self.assertEqual(page_domain(""), "")

    def test_suffix_match(self):
        self.assertTrue(refer_matches("http://www.ossrs.net/p.html", "ossrs.net"))
        self.assertTrue(refer_matches("http://ossrs.net/p.html", "ossrs.net"))
        self.assertTrue(refer_matches("http://evilossrs.net/", "ossrs.net"))  # a plain suffix, as SRS
        self.assertFalse(refer_matches("http://ossrs.net.evil.com/", "ossrs.net"))
        self.assertFalse(refer_matches("http://other.com/ossrs.net", "ossrs.net"))  # the path is not the domain
        self.assertFalse(refer_matches("", "ossrs.net"))
        # SRS looks at the first occurrence only
        self.assertFalse(refer_matches("http://a.com.a.com/", "a.com"))

    def test_lists(self):
        self.assertTrue(check("http://x/", None))
        self.assertFalse(check("http://x/", []))
        self.assertTrue(check("http://www.srs.io/", ["ossrs.net", "srs.io"]))


class ReferPolicyTests(unittest.TestCase):
    conf = """vhost __defaultVhost__ { refer { enabled on; all ossrs.net srs.io; publish ossrs.net; play srs.io; } }"""

    def setUp(self):
        self.ctx = make_ctx(self.conf)
        self.policy = ReferPolicy(self.ctx)

    def client(self, page, protocol="rtmp"):
        return make_client(self.ctx, page_url=page, protocol=protocol)

    def test_all_on_connect(self):
        self.successResultOf(self.policy.on_connect(self.client("http://www.ossrs.net/p.html")))
        self.successResultOf(self.policy.on_connect(self.client("http://srs.io/")))
        failure = self.failureResultOf(self.policy.on_connect(self.client("http://leech.com/")), Denied)
        self.assertIn("leech.com", failure.getErrorMessage())
        self.assertIn("refer all", failure.getErrorMessage())

    def test_publish_and_play_lists(self):
        self.successResultOf(self.policy.on_publish(self.client("http://ossrs.net/")))
        self.failureResultOf(self.policy.on_publish(self.client("http://srs.io/")), Denied)
        self.successResultOf(self.policy.on_play(self.client("http://srs.io/")))
        self.failureResultOf(self.policy.on_play(self.client("http://ossrs.net/")), Denied)

    def test_missing_list_is_not_checked(self):
        ctx = make_ctx("vhost __defaultVhost__ { refer { enabled on; play srs.io; } }")
        policy = ReferPolicy(ctx)
        client = make_client(ctx, page_url="")
        self.successResultOf(policy.on_connect(client))
        self.successResultOf(policy.on_publish(client))
        self.failureResultOf(policy.on_play(client), Denied)

    def test_empty_list_refuses(self):
        ctx = make_ctx("vhost __defaultVhost__ { refer { enabled on; all; } }")
        self.failureResultOf(ReferPolicy(ctx).on_connect(make_client(ctx)), Denied)

    def test_disabled(self):
        ctx = make_ctx("vhost __defaultVhost__ { refer { enabled off; all none.com; } }")
        self.successResultOf(ReferPolicy(ctx).on_connect(make_client(ctx)))

    def test_only_rtmp_is_checked(self):
        client = self.client("", protocol="http-flv")
        self.successResultOf(self.policy.on_play(client))
        self.failureResultOf(self.policy.on_play(self.client("", protocol="rtmps")), Denied)
