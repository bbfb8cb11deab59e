"""SRS's stream URL conventions."""

from twisted.trial import unittest

from srs_twisted.errors import InvalidStreamName
from srs_twisted.url import DEFAULT_VHOST, discover, parse_tc_url, validate_names


class DiscoverTests(unittest.TestCase):
    def test_plain(self):
        r = discover("rtmp://127.0.0.1:1936/live", "livestream")
        self.assertEqual((r.schema, r.host, r.port, r.vhost, r.app, r.stream, r.param),
                         ("rtmp", "127.0.0.1", 1936, "127.0.0.1", "live", "livestream", ""))

    def test_default_port_and_domain_vhost(self):
        r = discover("rtmp://ossrs.net/live", "s")
        self.assertEqual((r.port, r.vhost), (1935, "ossrs.net"))

    def test_vhost_in_app_query(self):
        r = discover("rtmp://127.0.0.1/live?vhost=v.com", "s")
        self.assertEqual((r.vhost, r.app, r.param), ("v.com", "live", "?vhost=v.com"))

    def test_vhost_and_token_in_stream(self):
        r = discover("rtmp://127.0.0.1/live", "s?vhost=v.com&token=xyz")
        self.assertEqual((r.vhost, r.stream, r.param), ("v.com", "s", "?vhost=v.com&token=xyz"))
        self.assertEqual(r.query(), {"vhost": "v.com", "token": "xyz"})

    def test_domain_parameter(self):
        self.assertEqual(discover("rtmp://1.2.3.4/live?domain=d.com", "s").vhost, "d.com")

    def test_old_vhost_in_app_trick(self):
        r = discover("rtmp://127.0.0.1/live...vhost...v.com", "s")
        self.assertEqual((r.app, r.vhost), ("live", "v.com"))

    def test_ipv6_host(self):
        r = parse_tc_url("rtmp://[::1]:1935/live")
        self.assertEqual((r.host, r.port, r.app), ("::1", 1935, "live"))

    def test_multi_level_app(self):
        r = discover("rtmp://h/live/sub", "s")
        self.assertEqual(r.app, "live/sub")
        self.assertEqual(r.stream_url, "h/live/sub/s")
        r.vhost = DEFAULT_VHOST
        self.assertEqual(r.stream_url, "/live/sub/s")


class ValidateTests(unittest.TestCase):
    def test_good_names(self):
        for app, stream in [("live", "livestream"), ("live/sub", "s-1_2.x"), ("a", "b~c")]:
            validate_names(app, stream)

    def test_bad_names(self):
        for app, stream in [("live", ""), ("live", "a b"), ("live", "../x"), ("..", "s"),
                            ("live", "x;rm"), ("live", "a\x00"), ("live", "s" * 300), ("live", "a'b")]:
            self.assertRaises(InvalidStreamName, validate_names, app, stream)
