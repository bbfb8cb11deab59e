"""send_min_interval and merged read (mr/mr_latency) are accepted and
ignored: the server says so once at start (and on a reload that changes
them), and says nothing when they are unset, off, or disabled by
min_latency."""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest

from srs_twisted import config as srs_config
from srs_twisted.service import SrsService, inert_settings
from tests.test_reload import _Log


def conf(body: str):
    return srs_config.load_string(body)


class InertSettingsTests(unittest.TestCase):
    def start(self, body: str) -> list[str]:
        self.srv = SrsService(conf(body), MemoryReactorClock())
        lines: list[str] = []
        self.srv.log = _Log(lines)
        self.srv.startService()
        self.addCleanup(self.srv.stopService)
        return lines

    def test_defaults_say_nothing(self):
        lines = self.start("vhost __defaultVhost__ {}\n")
        self.assertEqual([line for line in lines if line.startswith("warn")], [])

    def test_send_min_interval_logged_at_start(self):
        lines = self.start("vhost v.com { play { send_min_interval 10.5; } }\n")
        self.assertIn(
            "warn: vhost v.com: play.send_min_interval 10.5ms has no effect "
            "(accepted and ignored; players are flushed by mw_latency/mw_msgs)",
            lines,
        )

    def test_merged_read_logged_at_start(self):
        lines = self.start("vhost __defaultVhost__ { publish { mr on; mr_latency 100; } }\n")
        self.assertIn(
            "warn: vhost __defaultVhost__: publish.mr on (mr_latency 100ms) has no effect "
            "(accepted and ignored; the reactor reads whatever the socket holds)",
            lines,
        )

    def test_off_or_min_latency_say_nothing(self):
        cases = [
            "vhost a { publish { mr off; mr_latency 100; } play { send_min_interval 0; } }",
            "vhost b { min_latency on; publish { mr on; } }",  # SRS skips merged read then
        ]
        for body in cases:
            self.assertEqual(inert_settings(conf(body)), [], body)

    def test_reload_logs_only_when_they_change(self):
        body = "vhost __defaultVhost__ { play { send_min_interval 5; } }\n"
        lines = self.start(body)
        self.assertEqual(sum("send_min_interval" in line for line in lines), 1)
        self.srv.reload(conf(body))
        self.assertEqual(sum("send_min_interval" in line for line in lines), 1)
        self.srv.reload(conf("vhost __defaultVhost__ { play { send_min_interval 7; } }\n"))
        self.assertEqual(sum("send_min_interval 7ms" in line for line in lines), 1)

    def test_rtc_tcp_enabled_is_served_and_says_nothing(self):
        body = (
            "rtc_server { enabled on; listen 8000; protocol all; tcp { enabled on; listen 8001; } }\n"
            "vhost a { rtc { enabled on; rtmp_to_rtc on; } }\nvhost b { rtc { enabled on; rtc_to_rtmp on; } }\n"
        )
        self.assertEqual([line for line in inert_settings(conf(body)) if "rtc_server" in line], [])

    def test_rtc_protocol_tcp_or_all_without_tcp_says_what_happens(self):
        for protocol, effect in (("tcp", "WebRTC sessions are refused (no candidate to offer)"),
                                 ("all", "answers offer UDP candidates only")):
            body = f"rtc_server {{ enabled on; protocol {protocol}; }}\nvhost a {{ rtc {{ enabled on; }} }}\n"
            self.assertEqual(
                [line for line in inert_settings(conf(body)) if "rtc_server" in line],
                [f"rtc_server.protocol {protocol} without rtc_server.tcp.enabled on: {effect}"],
            )

    def test_rtc_server_udp_only_says_nothing(self):
        config = srs_config.load_string("vhost v {}", {"SRS_RTC_SERVER_ENABLED": "on"})
        self.assertEqual(inert_settings(config), [])

    def test_rtc_off_says_nothing(self):
        for body in ("rtc_server { enabled off; } vhost v { rtc { enabled on; rtmp_to_rtc on; } }",
                     "vhost v { rtc { enabled on; } }"):
            self.assertEqual(inert_settings(conf(body)), [], body)

    def test_srt_settings_all_take_effect(self):
        body = ("srt_server { enabled on; maxbw 0; payloadsize 1456; }\n"
                "vhost __defaultVhost__ { srt { enabled on; srt_to_rtmp off; } }\n")
        self.assertEqual(inert_settings(conf(body)), [])  # maxbw, payloadsize, srt_to_rtmp: tests/srt/
        self.assertEqual(inert_settings(conf("srt_server { enabled on; maxbw 1000000; }")), [])
