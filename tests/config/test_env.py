"""SRS_* variable names and lookup."""

from twisted.trial import unittest

from srs_twisted.config.env import (
    KNOWN_PATHS,
    config_file,
    env_lookup,
    env_name,
    env_names,
    env_value,
    expand_dollar,
    getenv,
    is_env_only,
)


class NameTests(unittest.TestCase):
    def test_mechanical_names(self):
        self.assertEqual(env_name(("http_api", "listen")), "SRS_HTTP_API_LISTEN")
        self.assertEqual(env_name("vhost.hls.hls_fragment"), "SRS_VHOST_HLS_HLS_FRAGMENT")
        self.assertEqual(env_names(("http_api", "https", "key")), ("SRS_HTTP_API_HTTPS_KEY",))
        self.assertEqual(env_names(("vhost", "play", "gop_cache")), ("SRS_VHOST_PLAY_GOP_CACHE",))

    def test_srs_specific_names(self):
        self.assertEqual(env_names(("rtmp", "listen")), ("SRS_LISTEN",))
        self.assertEqual(env_names(("listen",)), ("SRS_LISTEN",))
        self.assertEqual(env_names(("rtmp", "chunk_size")), ("SRS_VHOST_CHUNK_SIZE", "SRS_CHUNK_SIZE"))
        self.assertEqual(env_names(("srs_log_tank",)), ("SRS_SRS_LOG_TANK", "SRS_LOG_TANK"))
        self.assertEqual(env_names(("srs_log_level",)), ("SRS_SRS_LOG_LEVEL", "SRS_LOG_LEVEL"))
        self.assertEqual(env_names(("srs_log_file",)), ("SRS_SRS_LOG_FILE", "SRS_LOG_FILE"))
        self.assertEqual(
            env_names(("vhost", "srt", "srt_to_rtmp")), ("SRS_VHOST_SRT_SRT_TO_RTMP", "SRS_VHOST_SRT_TO_RTMP")
        )

    def test_only_keys_srs_reads_have_variables(self):
        self.assertEqual(env_names(("vhost", "cluster", "mode")), ())
        self.assertEqual(env_names(("stream_caster", "listen")), ())
        self.assertIn(("vhost", "publish", "kickoff_for_idle"), KNOWN_PATHS)
        self.assertIn(("rtc_server", "black_hole", "addr"), KNOWN_PATHS)
        # Our LL-HLS extension follows the same naming.
        self.assertEqual(env_names(("vhost", "hls", "hls_low_latency")), ("SRS_VHOST_HLS_HLS_LOW_LATENCY",))


class LookupTests(unittest.TestCase):
    def test_value_and_name(self):
        env = {"SRS_HTTP_API_ENABLED": "on"}
        self.assertEqual(env_value(("http_api", "enabled"), env), "on")
        self.assertEqual(env_lookup(("http_api", "enabled"), env), ("SRS_HTTP_API_ENABLED", "on"))

    def test_empty_or_unset_does_not_count(self):
        self.assertIsNone(env_value(("http_api", "enabled"), {"SRS_HTTP_API_ENABLED": ""}))
        self.assertIsNone(env_value(("http_api", "enabled"), {}))
        self.assertIsNone(env_value(("http_api", "enabled"), None))

    def test_unknown_path_ignores_a_matching_variable(self):
        self.assertIsNone(env_value(("vhost", "cluster", "mode"), {"SRS_VHOST_CLUSTER_MODE": "remote"}))

    def test_alias_priority(self):
        both = {"SRS_SRS_LOG_TANK": "file", "SRS_LOG_TANK": "console"}
        self.assertEqual(env_value(("srs_log_tank",), both), "file")
        self.assertEqual(env_value(("srs_log_tank",), {"SRS_LOG_TANK": "console"}), "console")
        self.assertEqual(env_lookup(("rtmp", "chunk_size"), {"SRS_CHUNK_SIZE": "4096"}), ("SRS_CHUNK_SIZE", "4096"))

    def test_lists_split_on_whitespace(self):
        self.assertEqual(env_value(("rtmp", "listen"), {"SRS_LISTEN": "1935  [::]:1935\t19350"}),
                         ["1935", "[::]:1935", "19350"])
        self.assertEqual(
            env_value(("vhost", "http_hooks", "on_publish"), {"SRS_VHOST_HTTP_HOOKS_ON_PUBLISH": "http://a http://b"}),
            ["http://a", "http://b"],
        )
        self.assertEqual(env_value(("http_api", "listen"), {"SRS_HTTP_API_LISTEN": "1985"}), ["1985"])
        # Scalars keep their spaces.
        self.assertEqual(env_value(("vhost", "dvr", "dvr_path"), {"SRS_VHOST_DVR_DVR_PATH": "a b"}), "a b")


class HelperTests(unittest.TestCase):
    def test_getenv_like_srs(self):
        env = {"CANDIDATE": "1.2.3.4", "SRS_SERVER_ID": "x"}
        self.assertEqual(getenv("$CANDIDATE", env), "1.2.3.4")
        self.assertEqual(getenv("candidate", env), "1.2.3.4")
        self.assertEqual(getenv("srs.server_id", env), "x")
        self.assertEqual(getenv("$", env), "")
        self.assertEqual(getenv("$NOPE", env), "")

    def test_expand_dollar(self):
        env = {"CANDIDATE": "10.0.0.1"}
        self.assertEqual(expand_dollar("$CANDIDATE", env, "*"), "10.0.0.1")
        self.assertEqual(expand_dollar("$MISSING", env, "*"), "*")
        self.assertEqual(expand_dollar("192.168.1.1", env, "*"), "192.168.1.1")
        self.assertEqual(expand_dollar("*", env, "*"), "*")

    def test_config_file_and_env_only(self):
        self.assertEqual(config_file({"SRS_CONFIG_FILE": "conf/x.conf"}), "conf/x.conf")
        self.assertIsNone(config_file({"SRS_CONFIG_FILE": ""}))
        self.assertTrue(is_env_only({"SRS_ENV_ONLY": ""}))
        self.assertTrue(is_env_only({"SRS_ENV_ONLY": "on"}))
        self.assertFalse(is_env_only({}))
