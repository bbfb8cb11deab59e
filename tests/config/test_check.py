"""The check phase: directive whitelist and value rules, each error at its line:col."""

from twisted.trial import unittest

from srs_twisted.config.check import SCHEMA, check, parse_endpoint
from srs_twisted.config.parser import ConfigError, Directive, parse_string
from srs_twisted.config.transform import transform


def run(text, environ=None, path="conf/x.conf"):
    check(transform(parse_string(text, path)), environ)


class CheckAssertions:
    def assertRejected(self, text, line, col, fragment, environ=None, path="conf/x.conf"):
        with self.assertRaises(ConfigError) as ctx:
            run(text, environ, path)
        e = ctx.exception
        self.assertEqual((e.path, e.line, e.col), (path, line, col), str(e))
        self.assertIn(fragment, e.message)
        return e


class WhitelistTests(unittest.TestCase, CheckAssertions):
    def test_accepts_a_typical_config(self):
        run(
            "listen 1935;\nmax_connections 1000;\ndaemon off;\nsrs_log_tank console;\n"
            "http_api { enabled on; listen 1985; raw_api { enabled on; allow_reload on; }"
            " auth { enabled on; username a; password b; } }\n"
            "http_server { enabled on; listen 8080; dir ./objs/nginx/html; }\n"
            "rtc_server { enabled on; listen 8000; candidate $CANDIDATE; tcp { enabled on; listen 8000; } }\n"
            "srt_server { enabled on; listen 10080; }\n"
            "vhost __defaultVhost__ {\n"
            "  hls { enabled on; hls_fragment 10; }\n"
            "  http_remux { enabled on; mount [vhost]/[app]/[stream].flv; }\n"
            "  rtc { enabled on; rtmp_to_rtc on; }\n"
            "  play { gop_cache on; queue_length 10; }\n"
            "  transcode live { enabled on; engine sd { vcodec libx264; vfilter { vf 'scale=1:2'; }"
            " vparams { preset fast; } } }\n"
            "}\n"
        )

    def test_unknown_root_directive(self):
        e = self.assertRejected("listen 1935;\n\n   lisen 1936;\n", 3, 4, 'illegal directive "lisen"')
        self.assertEqual(str(e), 'conf/x.conf:3:4: illegal directive "lisen"')

    def test_unknown_in_global_blocks(self):
        self.assertRejected("http_api {\n  enabled on;\n  port 1985;\n}", 3, 3, '"port" in http_api')
        self.assertRejected("http_api { https { enabled on; crt x; } }", 1, 32, '"crt" in http_api.https')
        self.assertRejected("http_api { auth { user a; } }", 1, 19, '"user" in http_api.auth')
        self.assertRejected("http_server { https { pem x; } }", 1, 23, "http_server.https")
        self.assertRejected("rtc_server { tcp { port 1; } }", 1, 20, "rtc_server.tcp")
        self.assertRejected("srt_server { latencyy 1; }", 1, 14, "srt_server")
        self.assertRejected("stream_caster { sip { port 1; } }", 1, 23, "stream_caster.sip")
        self.assertRejected("exporter { label a; bogus b; }", 1, 21, "exporter")
        self.assertRejected("heartbeat { every 1; }", 1, 13, "heartbeat")
        self.assertRejected("stats { cpu 1; }", 1, 9, "stats")
        self.assertRejected("circuit_breaker { low 1; }", 1, 19, "circuit_breaker")
        self.assertRejected("rtmp { listen 1935; port 1; }", 1, 21, '"port" in rtmp')
        self.assertRejected("rtmps { enabled on; pem x; }", 1, 21, "rtmps")
        self.assertRejected("rtsp_server { port 1; }", 1, 15, "rtsp_server")
        self.assertRejected("tencentcloud_cls { x 1; }", 1, 20, "tencentcloud_cls")

    def test_unknown_in_vhost_and_sub_blocks(self):
        self.assertRejected("vhost a {\n    gopcache on;\n}", 2, 5, '"gopcache" in vhost')
        e = self.assertRejected("vhost a {\n  play {\n    foo 1;\n  }\n}", 3, 5, 'illegal directive "foo" in vhost.play')
        self.assertEqual(str(e), 'conf/x.conf:3:5: illegal directive "foo" in vhost.play')
        for block, bad in (
            ("publish", "mrr"),
            ("hls", "hls_fragmnet"),
            ("dash", "dash_x"),
            ("dvr", "dvr_x"),
            ("http_remux", "mnt"),
            ("http_hooks", "on_foo"),
            ("forward", "dest"),
            ("cluster", "mod"),
            ("security", "permit"),
            ("refer", "none"),
            ("exec", "play"),
            ("rtc", "nak"),
            ("srt", "to_rtc"),
            ("rtsp", "x"),
            ("http_static", "root"),
            ("hds", "x"),
            ("ingest", "output"),
            ("transcode", "output"),
        ):
            self.assertRejected(f"vhost a {{ {block} {{ {bad} 1; }} }}", 1, 14 + len(block), f"in vhost.{block}")

    def test_engine_keys_are_checked_but_ffmpeg_options_are_free(self):
        self.assertRejected("vhost a { transcode { engine x { vcodek x; } } }", 1, 34, "in vhost.transcode.engine")
        self.assertRejected("vhost a { ingest i { engine { vcodek x; } } }", 1, 31, "in vhost.ingest.engine")
        self.assertRejected("vhost a { ingest i { input { typ file; } } }", 1, 30, "in vhost.ingest.input")
        run("vhost a { transcode { engine x { vparams { anything 1; x; } aparams { y 2; } perfile { re; } } } }")

    def test_legacy_layouts_pass_after_transform(self):
        run("listen 1935;\nvhost a { gop_cache off; mode remote; origin 1.1.1.1; mr { enabled on; } refer a.com; }")

    def test_extensions_and_v7_keys_are_known(self):
        run(
            "rtmp { listen 1935; chunk_size 60000; }\nrtmps { enabled on; listen 1443; }\n"
            "rtsp_server { enabled on; listen 8554; }\n"
            "vhost a { hls { hls_low_latency on; hls_part_duration 0.5; hls_use_fmp4 on; } rtsp { rtmp_to_rtsp on; } }"
        )

    def test_include_is_accepted_anywhere(self):
        # A tree built by code may keep unresolved includes; check lets them through.
        root = parse_string("listen 1935;")
        root.children.append(Directive("include", ["x.conf"]))
        root.children.append(Directive("vhost", ["a"], [Directive("include", ["v.conf"])]))
        check(root)

    def test_schema_lists_vhost_blocks(self):
        vhost = SCHEMA.get("vhost")
        for name in ("play", "publish", "hls", "dash", "dvr", "http_remux", "http_hooks", "forward", "cluster",
                     "security", "refer", "transcode", "exec", "ingest", "rtc", "srt", "http_static"):
            self.assertIsNotNone(vhost.get(name), name)
        self.assertIsNotNone(vhost.get("hls").get("hls_low_latency"))


class ValueTests(unittest.TestCase, CheckAssertions):
    def test_empty_conf(self):
        self.assertRejected("", 1, 1, "conf is empty")
        self.assertRejected("# nothing\n", 1, 1, "conf is empty")
        check(parse_string(""), env_only=True)

    def test_listen_endpoints(self):
        run("listen 1935 0.0.0.0:1936 [::]:1937 [::1]:1938 127.0.0.1:65535;")
        self.assertRejected("listen 1935 70000;", 1, 13, "port '70000'")
        self.assertRejected("listen 0;", 1, 8, "1..65535")
        self.assertRejected("listen abc;", 1, 8, "port 'abc'")
        self.assertRejected("listen example.com:1935;", 1, 8, "not an IPv4 or IPv6")
        self.assertRejected("listen;", 1, 1, "needs at least one")
        self.assertRejected("rtmp { listen 1935x; }", 1, 15, "listen")
        self.assertRejected("http_api { listen 19850000; }", 1, 19, "http_api.listen")
        self.assertRejected("http_server { https { listen x; } }", 1, 30, "http_server.https.listen")
        self.assertRejected("rtc_server { listen -1; }", 1, 21, "rtc_server.listen")
        self.assertRejected("srt_server { listen 1:2:3; }", 1, 21, "srt_server.listen")
        self.assertRejected("exporter { listen :x; }", 1, 19, "exporter.listen")
        self.assertRejected("stream_caster { listen 99999; }", 1, 24, "stream_caster.listen")

    def test_listen_from_environment(self):
        with self.assertRaises(ConfigError) as ctx:
            run("listen 1935;", {"SRS_LISTEN": "1935 nope"})
        self.assertEqual(ctx.exception.path, "<env SRS_LISTEN>")
        self.assertIn("'nope'", ctx.exception.message)
        run("listen 1935;", {"SRS_LISTEN": "1936 [::]:1936"})

    def test_chunk_size(self):
        run("chunk_size 128; vhost a { chunk_size 65536; }")
        self.assertRejected("chunk_size 127;", 1, 12, "128..65536")
        self.assertRejected("rtmp { chunk_size 65537; }", 1, 19, "128..65536")
        self.assertRejected("vhost a {\n chunk_size big;\n}", 2, 13, "must be an integer")
        with self.assertRaises(ConfigError) as ctx:
            run("listen 1935;", {"SRS_VHOST_CHUNK_SIZE": "64"})
        self.assertEqual(ctx.exception.path, "<env SRS_VHOST_CHUNK_SIZE>")

    def test_max_connections_and_stats_and_heartbeat(self):
        self.assertRejected("max_connections 0;", 1, 17, "max_connections")
        self.assertRejected("max_connections many;", 1, 17, "integer")
        self.assertRejected("stats { network -1; }", 1, 17, "stats.network")
        self.assertRejected("heartbeat { interval 0.5; }", 1, 22, "heartbeat.interval")
        run("heartbeat { interval 9.9; } stats { network 0; } max_connections 10;")

    def test_daemon_conflicts_with_asprocess(self):
        # SRS's daemon defaults to on, so asprocess alone already conflicts.
        self.assertRejected("listen 1935;\nasprocess on;", 2, 1, "daemon conflicts with asprocess")
        run("asprocess on; daemon off;")
        run("asprocess on;", {"SRS_DAEMON": "off"})
        with self.assertRaises(ConfigError):
            run("daemon off;", {"SRS_ASPROCESS": "on", "SRS_DAEMON": "on"})

    def test_https_needs_http(self):
        self.assertRejected("http_api {\n  https { enabled on; }\n}", 2, 11, "http_api.https needs http_api enabled")
        self.assertRejected("http_server { https { enabled on; } }", 1, 23, "http_server.https needs")
        run("http_api { enabled on; https { enabled on; } }")
        run("http_api { https { enabled on; } }", {"SRS_HTTP_API_ENABLED": "on"})

    def test_shared_port_needs_matching_https(self):
        # Sharing 8080: the API's HTTPS port follows the server's unless set differently.
        run("http_api { enabled on; listen 8080; } http_server { enabled on; listen 8080; }")
        self.assertRejected(
            "http_api { listen 8080; https { listen 1990; } }\nhttp_server { listen 8080; }",
            1, 33, "share the HTTP port",
        )
        self.assertRejected(
            "http_api { listen 1985; https { listen 8088; } }\nhttp_server { listen 8080; }",
            1, 12, "share the HTTPS port",
        )

    def test_one_http_remux_per_vhost(self):
        self.assertRejected(
            "vhost a {\n http_remux { enabled on; }\n http_remux { enabled off; }\n}", 3, 2, "only one http_remux"
        )

    def test_hls_conflicts_with_http_ts(self):
        self.assertRejected(
            "vhost a {\n hls { enabled on; }\n http_remux { enabled on; mount [vhost]/[app]/[stream].ts; }\n}",
            3, 27, "hls conflicts with http_remux",
        )
        run("vhost a { hls { enabled off; } http_remux { enabled on; mount [vhost]/[app]/[stream].ts; } }")
        run("vhost a { hls { enabled on; } http_remux { enabled on; mount [vhost]/[app]/[stream].flv; } }")

    def test_forward_conflicts_with_kickoff(self):
        self.assertRejected(
            "vhost a {\n forward { enabled on; destination 1.1.1.1; }\n publish { kickoff_for_idle 10; }\n}",
            3, 12, "forward conflicts",
        )
        run("vhost a { forward { enabled off; } publish { kickoff_for_idle 10; } }")
        with self.assertRaises(ConfigError) as ctx:
            run("vhost a { forward { enabled on; } }", {"SRS_VHOST_PUBLISH_KICKOFF_FOR_IDLE": "5"})
        self.assertEqual(ctx.exception.path, "<env SRS_VHOST_PUBLISH_KICKOFF_FOR_IDLE>")

    def test_ingest_ids_unique(self):
        self.assertRejected("vhost a {\n ingest x { }\n ingest y { }\n ingest x { }\n}", 4, 2, "'x' is used twice")

    def test_is_full(self):
        self.assertRejected("listen 1935;\nis_full on;", 2, 1, "never use full.conf")
        run("listen 1935; is_full off;")

    def test_vhost_needs_name(self):
        self.assertRejected("vhost { }", 1, 1, "vhost needs a name")


class EndpointTests(unittest.TestCase):
    def test_parse_endpoint(self):
        self.assertEqual(parse_endpoint("1935"), ("", 1935))
        self.assertEqual(parse_endpoint("0.0.0.0:1935"), ("0.0.0.0", 1935))
        self.assertEqual(parse_endpoint("[::]:1935"), ("::", 1935))
        self.assertEqual(parse_endpoint("[fe80::1]:80"), ("fe80::1", 80))
        for bad in ("", "x", "1.2.3.4:", "1.2.3.4:0", "[::]:65536", "host:80", ":80x"):
            self.assertRaises(ValueError, parse_endpoint, bad)
