"""vhost.security: SRS's order (deny first, then allow required), IPv4,
IPv6 and CIDR targets."""

from __future__ import annotations

from twisted.trial import unittest

from srs_twisted.errors import Denied
from srs_twisted.policy.security import SecurityPolicy, check, target_matches

from .common import make_client, make_ctx


def policy_for(rules: str, enabled: str = "on"):
    ctx = make_ctx(f"vhost __defaultVhost__ {{ security {{ enabled {enabled}; {rules} }} }}")
    return ctx, SecurityPolicy(ctx)


class SecurityTests(unittest.TestCase):
    def allowed(self, rules, method, ip, protocol="rtmp", enabled="on"):
        ctx, policy = policy_for(rules, enabled)
        client = make_client(ctx, ip=ip, protocol=protocol)
        d = getattr(policy, "on_" + method)(client)
        results = []
        d.addCallbacks(lambda _: results.append(True), lambda f: (f.trap(Denied), results.append(False)))
        return results[0]

    def test_disabled_allows_everything(self):
        self.assertTrue(self.allowed("deny publish all; deny play all;", "publish", "1.2.3.4", enabled="off"))
        ctx = make_ctx("vhost __defaultVhost__ {}")
        self.successResultOf(SecurityPolicy(ctx).on_play(make_client(ctx)))

    def test_enabled_without_rules_denies_everything(self):
        self.assertFalse(self.allowed("", "publish", "127.0.0.1"))
        self.assertFalse(self.allowed("", "play", "127.0.0.1"))

    def test_allow_all(self):
        self.assertTrue(self.allowed("allow publish all; allow play all;", "publish", "8.8.8.8"))
        self.assertTrue(self.allowed("allow publish all; allow play all;", "play", "2001:db8::1"))

    def test_an_allow_rule_for_the_other_method_does_not_allow(self):
        # Any allow rule at all makes an allow match mandatory.
        self.assertFalse(self.allowed("allow play all;", "publish", "1.2.3.4"))
        self.assertTrue(self.allowed("allow play all;", "play", "1.2.3.4"))

    def test_deny_only_allows_the_rest(self):
        rules = "deny publish 10.0.0.13;"
        self.assertFalse(self.allowed(rules, "publish", "10.0.0.13"))
        self.assertTrue(self.allowed(rules, "publish", "10.0.0.14"))
        self.assertTrue(self.allowed(rules, "play", "10.0.0.13"))

    def test_deny_wins_over_allow_whatever_the_line_order(self):
        for rules in ["allow publish all; deny publish 10.0.0.13;", "deny publish 10.0.0.13; allow publish all;"]:
            self.assertFalse(self.allowed(rules, "publish", "10.0.0.13"), rules)
            self.assertTrue(self.allowed(rules, "publish", "10.0.0.12"), rules)

    def test_deny_all_then_allow_cannot_open(self):
        self.assertFalse(self.allowed("deny play all; allow play 127.0.0.1;", "play", "127.0.0.1"))

    def test_ipv4_address_and_cidr(self):
        rules = "allow publish 127.0.0.1; allow publish 192.168.0.0/16; allow play 10.1.2.3/8;"
        self.assertTrue(self.allowed(rules, "publish", "127.0.0.1"))
        self.assertFalse(self.allowed(rules, "publish", "127.0.0.2"))
        self.assertTrue(self.allowed(rules, "publish", "192.168.200.7"))
        self.assertFalse(self.allowed(rules, "publish", "192.169.0.1"))
        # host bits in the network are ignored, as SRS masks both sides
        self.assertTrue(self.allowed(rules, "play", "10.200.0.1"))
        self.assertFalse(self.allowed(rules, "play", "11.0.0.1"))

    def test_cidr_deny(self):
        rules = "deny play 172.16.0.0/12; allow play all;"
        self.assertFalse(self.allowed(rules, "play", "172.20.1.1"))
        self.assertTrue(self.allowed(rules, "play", "172.32.0.1"))

    def test_ipv6_address_and_cidr(self):
        rules = "allow play ::1; allow play 2001:db8::/32; deny play 2001:db8:dead::/48;"
        self.assertTrue(self.allowed(rules, "play", "::1"))
        self.assertTrue(self.allowed(rules, "play", "0:0:0:0:0:0:0:1"))  # same address, other spelling
        self.assertTrue(self.allowed(rules, "play", "2001:db8:1::5"))
        self.assertFalse(self.allowed(rules, "play", "2001:db8:dead::5"))
        self.assertFalse(self.allowed(rules, "play", "2001:db9::1"))
        self.assertFalse(self.allowed(rules, "play", "127.0.0.1"))

    def test_ipv4_mapped_client_matches_ipv4_rules(self):
        self.assertTrue(self.allowed("allow publish 10.0.0.0/8;", "publish", "::ffff:10.1.1.1"))
        self.assertFalse(self.allowed("deny publish 10.0.0.0/8;", "publish", "::ffff:10.1.1.1"))

    def test_versions_never_cross(self):
        self.assertFalse(target_matches("10.0.0.0/8", "2001:db8::1"))
        self.assertFalse(target_matches("::/0", "10.0.0.1"))
        self.assertTrue(target_matches("0.0.0.0/0", "10.0.0.1"))

    def test_odd_targets_and_ips(self):
        self.assertFalse(target_matches("not-an-ip", "1.2.3.4"))
        self.assertTrue(target_matches("localhost", "localhost"))  # plain string equality, as SRS
        self.assertFalse(target_matches("10.0.0.0/8", "?"))
        self.assertTrue(target_matches("fe80::/10", "fe80::1%eth0"))

    def test_every_protocol_is_checked(self):
        for protocol in ("rtmp", "http-flv", "webrtc", "srt", "hls"):
            self.assertFalse(self.allowed("deny play 1.1.1.1;", "play", "1.1.1.1", protocol=protocol))

    def test_connect_is_not_checked(self):
        ctx, policy = policy_for("")
        self.successResultOf(policy.on_connect(make_client(ctx)))
        policy.on_unpublish(None), policy.on_stop(None), policy.on_close(None)

    def test_reason(self):
        ctx, policy = policy_for("deny publish 10.0.0.0/8;")
        failure = self.failureResultOf(policy.on_publish(make_client(ctx, ip="10.9.9.9")), Denied)
        self.assertIn("deny publish 10.0.0.0/8", failure.getErrorMessage())
        self.assertIn("not allowed", check([], "play", "1.2.3.4"))
