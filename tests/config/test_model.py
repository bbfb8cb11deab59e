"""The typed model: SRS's defaults, reading rules, env overrides, vhost fallback, load()."""

import dataclasses
import os

from twisted.trial import unittest

from srs_twisted.config import ConfigError, load, load_string
from srs_twisted.config.model import (
    DEFAULT_VHOST,
    PlayConfig,
    PublishConfig,
    SrsConfig,
    VhostConfig,
)

MINIMAL = "listen 1935;\nvhost __defaultVhost__ {}\n"


def values(section):
    """A section's typed values by name, without its raw directive."""
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section) if f.name != "directive"}


class DefaultTests(unittest.TestCase):
    """Each value is SRS's (the getters in srs_app_config.cpp win over full.conf)."""

    def test_play_defaults(self):
        play = load_string(MINIMAL).vhost("any").play
        expected = {
            "gop_cache": True,
            "gop_cache_max_frames": 2500,
            "queue_length": 30.0,
            "time_jitter": "full",
            "atc": False,
            "atc_auto": False,
            "mix_correct": False,
            "mw_latency": 350,
            "mw_msgs": 8,
            "send_min_interval": 0.0,
            "reduce_sequence_header": False,
            "mw_by_frame": True,  # ours: neither mw_latency nor mw_msgs set
        }
        self.assertEqual(values(play), expected)
        self.assertEqual(PlayConfig(mw_by_frame=True), dataclasses.replace(play, directive=None))

    def test_publish_defaults(self):
        publish = load_string(MINIMAL).vhost("any").publish
        expected = {
            "mr": False,
            "mr_latency": 350,
            "firstpkt_timeout": 20000,
            "normal_timeout": 5000,
            "parse_sps": True,
            "try_annexb_first": True,
            "kickoff_for_idle": 0.0,
        }
        self.assertEqual(values(publish), expected)
        self.assertEqual(PublishConfig(), publish)

    def test_vhost_defaults(self):
        v = load_string(MINIMAL).vhost(DEFAULT_VHOST)
        self.assertEqual(v.name, DEFAULT_VHOST)
        self.assertEqual(
            (v.enabled, v.chunk_size, v.in_ack_size, v.out_ack_size, v.tcp_nodelay, v.min_latency, v.rtc_min_latency),
            (True, None, 0, 2500000, False, False, True),
        )
        self.assertEqual((v.cluster.mode, v.cluster.protocol, v.cluster.vhost, v.cluster.origin), ("local", "rtmp", "[vhost]", []))
        self.assertEqual((v.cluster.token_traverse, v.cluster.follow_client, v.cluster.debug_srs_upnode), (False, False, True))
        self.assertFalse(v.is_edge)
        self.assertEqual(
            (v.hls.enabled, v.hls.hls_fragment, v.hls.hls_window, v.hls.hls_td_ratio, v.hls.hls_aof_ratio),
            (False, 10.0, 60.0, 1.0, 2.1),
        )
        self.assertEqual((v.hls.hls_path, v.hls.hls_m3u8_file, v.hls.hls_ts_file),
                         ("./objs/nginx/html", "[app]/[stream].m3u8", "[app]/[stream]-[seq].ts"))
        self.assertEqual((v.hls.hls_dispose, v.hls.hls_cleanup, v.hls.hls_wait_keyframe, v.hls.hls_on_error),
                         (120, True, True, "continue"))
        self.assertEqual((v.hls.hls_key_file_path, v.hls.hls_key_url), ("./objs/nginx/html", "./objs/nginx/html"))
        self.assertEqual((v.hls.hls_low_latency, v.hls.hls_part_duration), (False, 1.0))
        self.assertEqual((v.http_remux.enabled, v.http_remux.mount, v.http_remux.fast_cache),
                         (False, "[vhost]/[app]/[stream].flv", 0.0))
        self.assertEqual((v.dash.dash_fragment, v.dash.dash_update_period, v.dash.dash_timeshift, v.dash.dash_window_size),
                         (10.0, 5.0, 300.0, 5))
        self.assertEqual((v.dvr.dvr_plan, v.dvr.dvr_duration, v.dvr.dvr_apply, v.dvr.dvr_wait_keyframe),
                         ("session", 30, ["all"], True))
        self.assertEqual(v.dvr.dvr_path, "./objs/nginx/html/[app]/[stream].[timestamp].flv")
        self.assertEqual((v.rtc.enabled, v.rtc.nack, v.rtc.twcc, v.rtc.stun_timeout, v.rtc.dtls_role, v.rtc.dtls_version),
                         (False, True, True, 30, "passive", "auto"))
        self.assertEqual((v.rtc.opus_bitrate, v.rtc.aac_bitrate, v.rtc.pli_for_rtmp), (48000, 48000, 6.0))
        self.assertEqual((v.srt.enabled, v.srt.srt_to_rtmp), (False, True))
        self.assertEqual((v.http_static.mount, v.http_static.dir), ("[vhost]/", "./objs/nginx/html"))
        self.assertEqual((v.http_hooks.enabled, v.http_hooks.on_publish), (False, []))
        self.assertEqual((v.security.enabled, v.security.rules), (False, []))
        self.assertEqual((v.refer.enabled, v.refer.all, v.refer.play), (False, None, None))
        self.assertEqual((v.forward.enabled, v.forward.destination, v.forward.backend), (False, [], ""))
        self.assertEqual((v.ingests, v.transcodes, v.exec.publish), ([], [], []))

    def test_global_defaults(self):
        c = load_string(MINIMAL)
        self.assertEqual(
            (c.listen, c.chunk_size, c.max_connections, c.pid, c.work_dir, c.daemon),
            (["1935"], 60000, 1000, "./objs/srs.pid", "./", True),
        )
        self.assertEqual((c.srs_log_tank, c.srs_log_level, c.srs_log_file), ("console", "trace", "./objs/srs.log"))
        self.assertEqual((c.ff_log_dir, c.ff_log_level), ("./objs", "info"))
        self.assertEqual((c.grace_start_wait, c.grace_final_wait, c.force_grace_quit), (2300, 3200, False))
        self.assertEqual((c.disable_daemon_for_docker, c.inotify_auto_reload, c.asprocess), (True, False, False))
        self.assertEqual((c.utc_time, c.pithy_print_ms, c.tcmalloc_release_rate), (False, 10000, 0.8))
        a = c.http_api
        self.assertEqual((a.enabled, a.listen, a.listens, a.crossdomain), (False, "1985", ["1985"], True))
        self.assertEqual((a.raw_api.enabled, a.raw_api.allow_reload), (False, False))
        self.assertEqual((a.auth.enabled, a.auth.username, a.auth.password), (False, "", ""))
        self.assertEqual((a.https.enabled, a.https.listen, a.https.key, a.https.cert),
                         (False, "1990", "./conf/server.key", "./conf/server.crt"))
        s = c.http_server
        self.assertEqual((s.enabled, s.listen, s.dir, s.crossdomain), (False, "8080", "./objs/nginx/html", True))
        self.assertEqual((s.https.enabled, s.https.listen, s.https.key, s.https.cert),
                         (False, "8088", "./conf/server.key", "./conf/server.crt"))
        r = c.rtc_server
        self.assertEqual((r.enabled, r.listen, r.candidate, r.protocol, r.ecdsa, r.encrypt, r.reuseport),
                         (False, "8000", "*", "udp", True, True, 1))
        self.assertEqual((r.tcp.enabled, r.tcp.listen), (False, "8000"))
        t = c.srt_server
        self.assertEqual((t.listen, t.latency, t.recvlatency, t.peerlatency, t.connect_timeout, t.peer_idle_timeout),
                         ("10080", 120, 120, 0, 3000, 10000))
        self.assertEqual((t.maxbw, t.mss, t.tsbpdmode, t.tlpktdrop, t.default_app, t.payloadsize),
                         (-1, 1500, True, True, "live", 1316))
        self.assertEqual((c.exporter.enabled, c.exporter.listen), (False, "9972"))
        self.assertEqual((c.heartbeat.enabled, c.heartbeat.interval, c.heartbeat.url),
                         (False, 10, "http://127.0.0.1:8085/api/v1/servers"))
        self.assertEqual((c.stats.enabled, c.stats.network, c.stats.disk), (True, 0, []))
        self.assertEqual((c.circuit_breaker.high_threshold, c.circuit_breaker.critical_threshold,
                          c.circuit_breaker.dying_threshold), (90, 95, 99))
        self.assertEqual((c.rtsp_server.enabled, c.rtsp_server.listen, c.rtmps.listens), (False, "554", []))
        self.assertEqual(c.stream_casters, [])
        self.assertEqual(list(c.vhosts), [DEFAULT_VHOST])

    def test_dataclass_defaults_match_loaded_defaults(self):
        loaded = load_string(MINIMAL)
        bare = SrsConfig()
        for name in ("http_api", "http_server", "rtc_server", "srt_server", "exporter", "stats", "heartbeat"):
            self.assertEqual(getattr(bare, name), getattr(loaded, name), name)

    def test_models_are_frozen(self):
        c = load_string(MINIMAL)
        self.assertRaises(dataclasses.FrozenInstanceError, setattr, c, "chunk_size", 1)
        self.assertRaises(dataclasses.FrozenInstanceError, setattr, c.vhost("x").play, "gop_cache", False)


class ReadingTests(unittest.TestCase):
    def vhost(self, body, environ=None):
        return load_string("vhost v {\n" + body + "\n}", environ).vhost("v")

    def test_prefer_true_and_prefer_false(self):
        # gop_cache is prefer-true (on unless given), atc prefer-false; a switch is on or off
        # (SRS would read "yes" as on for gop_cache and as off for atc: tests/config/test_values.py).
        self.assertTrue(self.vhost("").play.gop_cache)
        self.assertFalse(self.vhost("play { gop_cache off; }").play.gop_cache)
        self.assertFalse(self.vhost("").play.atc)
        self.assertTrue(self.vhost("play { atc on; }").play.atc)
        self.assertFalse(self.vhost("enabled off;").enabled)
        self.assertRaises(ConfigError, self.vhost, "enabled whatever;")

    def test_numbers(self):
        v = self.vhost("play { queue_length 10; mw_latency 100ms; send_min_interval 2.5; } publish { kickoff_for_idle 1.5; }")
        self.assertEqual((v.play.queue_length, v.play.mw_latency, v.play.send_min_interval), (10.0, 100, 2.5))
        self.assertEqual(v.publish.kickoff_for_idle, 1.5)
        self.assertEqual(self.vhost("play { mw_latency 12.7; }").play.mw_latency, 12)

    def test_garbage_number_is_an_error_at_the_argument(self):
        with self.assertRaises(ConfigError) as ctx:
            load_string("vhost v {\n  play {\n    queue_length lots;\n  }\n}", path="conf/q.conf")
        e = ctx.exception
        self.assertEqual((e.path, e.line, e.col), ("conf/q.conf", 3, 18))
        self.assertIn('"queue_length" expects a number', e.message)
        with self.assertRaises(ConfigError) as ctx:
            load_string(MINIMAL, {"SRS_VHOST_PLAY_MW_LATENCY": "fast"})
        self.assertEqual(ctx.exception.path, "<env SRS_VHOST_PLAY_MW_LATENCY>")

    def test_time_jitter_is_full_zero_or_off(self):
        v = self.vhost("play { time_jitter zero; } dvr { time_jitter off; }")
        self.assertEqual((v.play.time_jitter, v.dvr.time_jitter), ("zero", "off"))
        # SRS reads any other value as off; here it is an error.
        self.assertRaises(ConfigError, self.vhost, "play { time_jitter FULL; }")
        self.assertRaises(ConfigError, self.vhost, "dvr { time_jitter none; }")

    def test_empty_argument_means_default(self):
        self.assertEqual(self.vhost("play { queue_length ''; }").play.queue_length, 30.0)

    def test_first_directive_wins(self):
        v = self.vhost("play { gop_cache off; gop_cache on; }")
        self.assertFalse(v.play.gop_cache)
        c = load_string("http_api { listen 1; } http_api { listen 2; }")
        self.assertEqual(c.http_api.listen, "1")

    def test_a_write_per_video_frame_unless_merged_writes_are_configured(self):
        self.assertTrue(self.vhost("").play.mw_by_frame)
        self.assertTrue(self.vhost("play { gop_cache on; }").play.mw_by_frame)
        for body, env in (("play { mw_latency 350; }", {}), ("play { mw_msgs 8; }", {}), ("min_latency on;", {}),
                          ("", {"SRS_VHOST_PLAY_MW_LATENCY": "100"}), ("", {"SRS_VHOST_PLAY_MW_MSGS": "4"})):
            self.assertFalse(self.vhost(body, env).play.mw_by_frame, (body, env))

    def test_min_latency_zeroes_mw_msgs_unless_set(self):
        self.assertEqual(self.vhost("min_latency on;").play.mw_msgs, 0)
        self.assertEqual(self.vhost("min_latency on;").play.mw_latency, 350)
        self.assertEqual(self.vhost("min_latency on; play { mw_msgs 4; }").play.mw_msgs, 4)
        self.assertEqual(self.vhost("min_latency on;", {"SRS_VHOST_PLAY_MW_MSGS": "2"}).play.mw_msgs, 2)
        self.assertEqual(self.vhost("play { mw_msgs 500; }").play.mw_msgs, 128)

    def test_merged_read_needs_min_latency_off(self):
        self.assertTrue(self.vhost("publish { mr on; }").merged_read)
        self.assertFalse(self.vhost("min_latency on; publish { mr on; }").merged_read)

    def test_rtc_min_latency_reads_prefer_true(self):
        self.assertTrue(self.vhost("").rtc_min_latency)
        self.assertFalse(self.vhost("").min_latency)
        self.assertFalse(self.vhost("min_latency off;").rtc_min_latency)
        self.assertTrue(self.vhost("min_latency on;").min_latency)

    def test_rtc_ranges_reset_to_default(self):
        v = self.vhost("rtc { opus_bitrate 100; aac_bitrate 96000; pli_for_rtmp 60; }")
        self.assertEqual((v.rtc.opus_bitrate, v.rtc.aac_bitrate, v.rtc.pli_for_rtmp), (48000, 96000, 6.0))

    def test_lists_and_rules(self):
        v = self.vhost(
            "http_hooks { enabled on; on_publish http://a/x http://b/x; on_hls_notify http://c/[ts_url]; }\n"
            "security { enabled on; allow play all; deny publish 10.0.0.0/8; allow publish 127.0.0.1; }\n"
            "refer { enabled on; play a.com b.com; }\n"
            "cluster { mode remote; origin 1.1.1.1:1935 2.2.2.2:1935; protocol flv; }\n"
            "forward { enabled on; destination 127.0.0.1:1936; backend http://127.0.0.1:8085/api/v1/forward; }\n"
            "exec { enabled on; publish ffmpeg -i [url] out.flv; publish echo hi; }\n"
            "dvr { dvr_apply live/a live/b; }"
        )
        self.assertEqual(v.http_hooks.on_publish, ["http://a/x", "http://b/x"])
        self.assertEqual(v.http_hooks.on_hls_notify, ["http://c/[ts_url]"])
        self.assertEqual([(r.action, r.method, r.target) for r in v.security.rules],
                         [("allow", "play", "all"), ("deny", "publish", "10.0.0.0/8"), ("allow", "publish", "127.0.0.1")])
        self.assertEqual(v.security.rules[1].directive.line, 3)
        self.assertEqual((v.refer.enabled, v.refer.all, v.refer.play), (True, None, ["a.com", "b.com"]))
        self.assertTrue(v.is_edge)
        self.assertEqual((v.cluster.origin, v.cluster.protocol), (["1.1.1.1:1935", "2.2.2.2:1935"], "flv"))
        self.assertEqual((v.forward.destination, v.forward.backend),
                         (["127.0.0.1:1936"], "http://127.0.0.1:8085/api/v1/forward"))
        self.assertEqual(v.exec.publish, [["ffmpeg", "-i", "[url]", "out.flv"], ["echo", "hi"]])
        self.assertEqual(v.dvr.dvr_apply, ["live/a", "live/b"])

    def test_transcode_and_ingest(self):
        v = self.vhost(
            "transcode live/stream { enabled on; ffmpeg ./ffmpeg;\n"
            "  engine hd { enabled on; vcodec libx264; vbitrate 1500; vfps 25; vwidth 768; vheight 320;"
            " vfilter { i logo.png; filter_complex 'overlay=10:10'; } vparams { t 100; -coder 1; }"
            " aparams { profile:a aac_low; } perfile { re; } output rtmp://x/[app]/[stream]_[engine]; }\n"
            "  engine { enabled off; } }\n"
            "ingest cam { enabled on; input { type stream; url rtsp://cam; } ffmpeg ./ffmpeg; engine { enabled off; } }"
        )
        (t,) = v.transcodes
        self.assertEqual((t.scope, t.enabled, t.ffmpeg, len(t.engines)), ("live/stream", True, "./ffmpeg", 2))
        hd, anonymous = t.engines
        self.assertEqual((hd.id, hd.enabled, hd.vcodec, hd.vbitrate, hd.vfps, hd.vwidth, hd.vthreads),
                         ("hd", True, "libx264", 1500, 25.0, 768, 1))
        self.assertEqual(hd.vfilter, ["-i", "logo.png", "-filter_complex", "overlay=10:10"])
        self.assertEqual(hd.vparams, ["-t", "100", "-coder", "1"])
        self.assertEqual(hd.aparams, ["-profile:a", "aac_low"])
        self.assertEqual(hd.perfile, ["-re"])
        self.assertEqual((hd.iformat, hd.oformat), ("flv", "flv"))
        self.assertEqual((anonymous.id, anonymous.enabled), ("", False))
        (i,) = v.ingests
        self.assertEqual((i.id, i.enabled, i.input.type, i.input.url, i.ffmpeg), ("cam", True, "stream", "rtsp://cam", "./ffmpeg"))
        self.assertEqual(len(i.engines), 1)

    def test_stream_casters(self):
        c = load_string(
            "stream_caster { enabled on; caster flv; output rtmp://127.0.0.1/[app]/[stream]; listen 8936; }\n"
            "stream_caster { caster gb28181; listen 9000; sip { listen 5061; candidate $SIP_IP; } }",
            {"SIP_IP": "10.1.1.1"},
        )
        flv, gb = c.stream_casters
        self.assertEqual((flv.enabled, flv.caster, flv.listen, flv.output),
                         (True, "flv", 8936, "rtmp://127.0.0.1/[app]/[stream]"))
        self.assertEqual((gb.enabled, gb.sip.enabled, gb.sip.listen, gb.sip.candidate, gb.sip.timeout),
                         (False, True, 5061, "10.1.1.1", 60.0))


class LayoutTests(unittest.TestCase):
    def test_legacy_vhost_gop_cache_ends_up_in_play(self):
        v = load_string("listen 1935;\nvhost v { gop_cache off; queue_length 5; mr { enabled on; latency 100; } }").vhost("v")
        self.assertEqual((v.play.gop_cache, v.play.queue_length), (False, 5.0))
        self.assertEqual((v.publish.mr, v.publish.mr_latency), (True, 100))

    def test_rtmp_block_and_root_listen(self):
        self.assertEqual(load_string("rtmp { listen 1936 [::]:1936; chunk_size 4096; }").listen, ["1936", "[::]:1936"])
        c = load_string("rtmp { listen 1936; chunk_size 4096; }\nlisten 1937;")
        self.assertEqual((c.listen, c.chunk_size), (["1937"], 4096))

    def test_vhost_chunk_size(self):
        c = load_string("chunk_size 4096;\nvhost a { chunk_size 128; }\nvhost b {}")
        self.assertEqual((c.vhost("a").chunk_size, c.vhost("b").chunk_size), (128, None))
        self.assertEqual((c.vhost_chunk_size("a"), c.vhost_chunk_size("b"), c.vhost_chunk_size("zzz")), (128, 4096, 4096))


class VhostLookupTests(unittest.TestCase):
    def test_exact_then_default_then_none(self):
        c = load_string("vhost a.com { play { gop_cache off; } }\nvhost __defaultVhost__ {}")
        self.assertEqual(c.vhost("a.com").name, "a.com")
        self.assertFalse(c.vhost("a.com").play.gop_cache)
        self.assertEqual(c.vhost("b.com").name, DEFAULT_VHOST)
        self.assertIsNone(load_string("vhost a.com {}").vhost("b.com"))

    def test_duplicate_vhost_keeps_the_first(self):
        c = load_string("vhost a { enabled off; }\nvhost a { enabled on; }")
        self.assertFalse(c.vhost("a").enabled)
        self.assertEqual(list(c.vhosts), ["a"])

    def test_vhost_keeps_its_directive(self):
        c = load_string("listen 1935;\nvhost a {\n  hls { enabled on; }\n}")
        v = c.vhost("a")
        self.assertEqual((v.directive.name, v.directive.line), ("vhost", 2))
        self.assertEqual(v.hls.directive.line, 3)
        self.assertIsNone(v.dash.directive)
        self.assertIs(c.root.get("vhost"), v.directive)


class EnvOverrideTests(unittest.TestCase):
    TEXT = (
        "listen 1935;\n"
        "http_api { enabled off; listen 1985; }\n"
        "vhost a { play { gop_cache on; } }\n"
        "vhost b { }\n"
        "vhost __defaultVhost__ { hls { enabled off; } }\n"
    )

    def test_env_beats_file(self):
        c = load_string(self.TEXT, {"SRS_HTTP_API_ENABLED": "on", "SRS_HTTP_API_LISTEN": "1986", "SRS_MAX_CONNECTIONS": "50"})
        self.assertEqual((c.http_api.enabled, c.http_api.listen, c.max_connections), (True, "1986", 50))

    def test_empty_variable_does_not_override(self):
        c = load_string(self.TEXT, {"SRS_HTTP_API_LISTEN": ""})
        self.assertEqual(c.http_api.listen, "1985")

    def test_vhost_variables_apply_to_every_vhost(self):
        c = load_string(self.TEXT, {"SRS_VHOST_PLAY_GOP_CACHE": "off", "SRS_VHOST_HLS_ENABLED": "on"})
        for name in ("a", "b", DEFAULT_VHOST):
            self.assertFalse(c.vhost(name).play.gop_cache, name)
            self.assertTrue(c.vhost(name).hls.enabled, name)

    def test_lists_from_env(self):
        c = load_string(self.TEXT, {
            "SRS_LISTEN": "1936 [::]:1936",
            "SRS_VHOST_HTTP_HOOKS_ON_PUBLISH": "http://a/1  http://b/2",
        })
        self.assertEqual(c.listen, ["1936", "[::]:1936"])
        self.assertEqual(c.vhost("b").http_hooks.on_publish, ["http://a/1", "http://b/2"])

    def test_log_aliases(self):
        self.assertEqual(load_string(self.TEXT, {"SRS_LOG_TANK": "file"}).srs_log_tank, "file")
        self.assertEqual(load_string(self.TEXT, {"SRS_SRS_LOG_TANK": "file", "SRS_LOG_TANK": "console"}).srs_log_tank, "file")
        c = load_string(self.TEXT, {"SRS_LOG_LEVEL": "warn", "SRS_LOG_FILE": "/tmp/x.log"})
        self.assertEqual((c.srs_log_level, c.srs_log_file), ("warn", "/tmp/x.log"))

    def test_chunk_size_variable_sets_global_and_vhost(self):
        c = load_string("chunk_size 4096; vhost a { chunk_size 128; }", {"SRS_VHOST_CHUNK_SIZE": "8192"})
        self.assertEqual((c.chunk_size, c.vhost("a").chunk_size), (8192, 8192))

    def test_srt_to_rtmp_alias(self):
        self.assertFalse(load_string(MINIMAL, {"SRS_VHOST_SRT_TO_RTMP": "off"}).vhost("x").srt.srt_to_rtmp)

    def test_candidate_expansion(self):
        text = "rtc_server { enabled on; candidate $CANDIDATE; }"
        self.assertEqual(load_string(text, {"CANDIDATE": "192.168.1.10"}).rtc_server.candidate, "192.168.1.10")
        self.assertEqual(load_string(text, {}).rtc_server.candidate, "*")
        self.assertEqual(load_string(text, {"SRS_RTC_SERVER_CANDIDATE": "10.0.0.2"}).rtc_server.candidate, "10.0.0.2")
        self.assertEqual(
            load_string(text, {"SRS_RTC_SERVER_CANDIDATE": "$MY_IP", "MY_IP": "10.0.0.3"}).rtc_server.candidate,
            "10.0.0.3",
        )

    def test_server_id(self):
        self.assertEqual(load_string("server_id srs-x;").server_id, "srs-x")
        self.assertEqual(load_string("server_id srs-x;", {"SRS_SERVER_ID": "env-id"}).server_id, "env-id")
        generated = load_string(MINIMAL).server_id
        self.assertRegex(generated, r"^vid-[0-9a-z]{7}$")

    def test_https_api_port_follows_shared_http_port(self):
        c = load_string("http_api { enabled on; listen 8080; } http_server { enabled on; listen 8080; https { listen 8443; } }")
        self.assertEqual(c.http_api.https.listen, "8443")
        c = load_string("http_api { enabled on; listen 1985; } http_server { enabled on; listen 8080; }")
        self.assertEqual(c.http_api.https.listen, "1990")


class LoadTests(unittest.TestCase):
    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_load_file(self):
        path = self.write("a.conf", "listen 1940;\nvhost __defaultVhost__ { play { gop_cache off; } }\n")
        c = load(path, environ={})
        self.assertEqual((c.path, c.listen), (path, ["1940"]))
        self.assertFalse(c.vhost("x").play.gop_cache)
        self.assertEqual(c.root.get("rtmp").get("listen").path, path)

    def test_config_file_variable_overrides_path(self):
        other = self.write("b.conf", "listen 1941;")
        c = load(self.write("a.conf", "listen 1940;"), environ={"SRS_CONFIG_FILE": other})
        self.assertEqual((c.path, c.listen), (other, ["1941"]))

    def test_load_reports_check_errors_with_position(self):
        path = self.write("bad.conf", "listen 1935;\nvhost a {\n    play { gop_cahce on; }\n}\n")
        with self.assertRaises(ConfigError) as ctx:
            load(path, environ={})
        self.assertEqual(str(ctx.exception), f'{path}:3:12: illegal directive "gop_cahce" in vhost.play')

    def test_load_missing_file(self):
        with self.assertRaises(ConfigError) as ctx:
            load(os.path.join(self.dir, "none.conf"), environ={})
        self.assertIn("cannot read", ctx.exception.message)

    def test_env_only_mode(self):
        c = load(environ={"SRS_ENV_ONLY": "on", "SRS_LISTEN": "19350", "SRS_HTTP_API_ENABLED": "on",
                          "SRS_VHOST_PLAY_GOP_CACHE": "off"})
        self.assertIsNone(c.path)
        self.assertEqual(list(c.vhosts), [DEFAULT_VHOST])
        self.assertEqual((c.listen, c.http_api.enabled, c.daemon, c.srs_log_tank), (["19350"], True, False, "console"))
        self.assertFalse(c.vhost("any").play.gop_cache)
        self.assertIsInstance(c.vhost("any"), VhostConfig)

    def test_env_only_argument_ignores_config_file(self):
        c = load(self.write("a.conf", "listen 1940;"), environ={"SRS_CONFIG_FILE": "/nonexistent", "SRS_DAEMON": "on"},
                 env_only=True)
        self.assertEqual((c.listen, c.daemon, c.path), (["1935"], True, None))
        self.assertEqual(list(c.vhosts), [DEFAULT_VHOST])

    def test_env_only_with_no_environ(self):
        c = load(environ=None, env_only=True)
        self.assertEqual((c.listen, list(c.vhosts)), (["1935"], [DEFAULT_VHOST]))

    def test_env_only_defaults_can_be_overridden(self):
        c = load(environ={"SRS_ENV_ONLY": "", "SRS_LOG_TANK": "file"})
        self.assertEqual(c.srs_log_tank, "file")

    def test_load_string_path_and_no_env(self):
        os.environ["SRS_VHOST_PLAY_GOP_CACHE"] = "off"
        self.addCleanup(os.environ.pop, "SRS_VHOST_PLAY_GOP_CACHE")
        self.assertTrue(load_string(MINIMAL).vhost("x").play.gop_cache)
        with self.assertRaises(ConfigError) as ctx:
            load_string("bogus;", path="conf/t.conf")
        self.assertEqual(str(ctx.exception), 'conf/t.conf:1:1: illegal directive "bogus"')
