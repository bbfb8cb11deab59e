"""The start-up lines: one per service, with the URLs to use on this host (issue 9 item 16)."""

from twisted.trial import unittest

from srs_twisted import config
from srs_twisted.banner import host_port, startup_lines
from srs_twisted.tap import DEFAULT_CONFIG


class BannerTests(unittest.TestCase):
    def test_built_in_defaults(self):
        self.assertEqual(startup_lines(config.load_string(DEFAULT_CONFIG)), [
            "RTMP listen=1935: publish and play rtmp://127.0.0.1:1935/live/livestream",
            "HTTP-FLV: play http://127.0.0.1:8080/live/livestream.flv, "
            "over WebSocket ws://127.0.0.1:8080/live/livestream.flv",
            "HTTP server listen=8080: files of ./objs/nginx/html at http://127.0.0.1:8080/",
            "HTTP API listen=1985: http://127.0.0.1:1985/api/v1/versions",
        ])

    def test_every_service_hls_dash_https_and_shared_ports(self):
        conf = config.load_string(
            "listen 1935 [::]:1936;\n"
            "http_server { enabled on; listen 0.0.0.0:8080; dir ./html; https { enabled on; listen 8443; } }\n"
            "http_api { enabled on; listen 8080; }\n"
            "exporter { enabled on; listen 9972; }\n"
            "vhost __defaultVhost__ {\n"
            "  http_remux { enabled on; mount [vhost]/[app]/[stream].aac; }\n"
            "  hls { enabled on; hls_path ./html; }\n"
            "  dash { enabled on; dash_path /var/dash; }\n"
            "}\n"
        )
        self.assertEqual(startup_lines(conf), [
            "RTMP listen=1935 [::]:1936: publish and play rtmp://127.0.0.1:1935/live/livestream, "
            "rtmp://[::1]:1936/live/livestream",
            "HTTP-AAC: play http://127.0.0.1:8080/live/livestream.aac, https://127.0.0.1:8443/live/livestream.aac, "
            "over WebSocket ws://127.0.0.1:8080/live/livestream.aac, wss://127.0.0.1:8443/live/livestream.aac",
            "HLS: play http://127.0.0.1:8080/live/livestream.m3u8, https://127.0.0.1:8443/live/livestream.m3u8",
            "DASH: writes /var/dash/live/livestream.mpd, outside http_server.dir ./html, so not served over HTTP",
            "HTTP server listen=0.0.0.0:8080 8443: files of ./html at http://127.0.0.1:8080/, https://127.0.0.1:8443/",
            "HTTP API listen=8080: http://127.0.0.1:8080/api/v1/versions",
            "Exporter listen=9972: http://127.0.0.1:9972/metrics",
        ])

    def test_named_vhost_interface_and_hls_below_the_http_root(self):
        conf = config.load_string(
            "listen 10.1.2.3:1935;\nhttp_server { enabled on; listen 8080; }\n"
            "vhost example.com { hls { enabled on; hls_path ./objs/nginx/html/hls; } }\n"
        )
        self.assertEqual(startup_lines(conf), [
            "RTMP listen=10.1.2.3:1935: publish and play rtmp://10.1.2.3:1935/live?vhost=example.com/livestream",
            "HLS: play http://example.com:8080/hls/live/livestream.m3u8",
            "HTTP server listen=8080: files of ./objs/nginx/html at http://127.0.0.1:8080/",
        ])

    def test_no_enabled_vhost_and_bind_host(self):
        conf = config.load_string("listen 1935;\nvhost a { enabled off; }\n")
        self.assertEqual(startup_lines(conf), ["RTMP listen=1935: no enabled vhost, every stream is refused"])
        self.assertEqual(host_port("1935", "192.168.1.5"), "192.168.1.5:1935")
        self.assertEqual(host_port("[fe80::1]:8080"), "[fe80::1]:8080")

    def test_a_mount_without_a_stream_extension_serves_nothing(self):
        conf = config.load_string(
            "listen 1935;\nhttp_server { enabled on; }\n"
            "vhost __defaultVhost__ { http_remux { enabled on; mount [vhost]/[app]/[stream].mp4; } }\n"
        )
        self.assertIn("HTTP remux: mount [vhost]/[app]/[stream].mp4 ends in none of .flv, .ts, .aac, .mp3: serves nothing",
                      startup_lines(conf))
