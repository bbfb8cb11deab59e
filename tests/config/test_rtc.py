"""WebRTC configuration (issue 10 section 1, issue 11's bridge directives): every directive of
``rtc_server`` and ``vhost.rtc`` with SRS's default, parsed, overridden by its ``SRS_*``
variable, checked at FILE:LINE:COL, rewritten from SRS's legacy forms; the candidate as SRS
expands it and as answers will list it."""

from __future__ import annotations

import dataclasses

from twisted.trial import unittest

from srs_twisted.config import ConfigError, load_string
from srs_twisted.config import model as m
from srs_twisted.config.env import env_names
from srs_twisted.config.rtc import (
    Candidate,
    black_hole_problem,
    candidate_problem,
    expand_candidate,
    resolve_candidates,
    split_host_port,
)

# (directive path under rtc_server, SRS's default, a value to write, what it loads as, SRS's variable)
SERVER = [
    (("enabled",), False, "on", True, "SRS_RTC_SERVER_ENABLED"),
    (("listen",), ["8000"], "9000 127.0.0.1:9001", ["9000", "127.0.0.1:9001"], "SRS_RTC_SERVER_LISTEN"),
    (("candidate",), "*", "192.168.3.11", "192.168.3.11", "SRS_RTC_SERVER_CANDIDATE"),
    (("protocol",), "udp", "all", "all", "SRS_RTC_SERVER_PROTOCOL"),
    (("ip_family",), "ipv4", "ipv6", "ipv6", "SRS_RTC_SERVER_IP_FAMILY"),
    (("api_as_candidates",), True, "off", False, "SRS_RTC_SERVER_API_AS_CANDIDATES"),
    (("resolve_api_domain",), True, "off", False, "SRS_RTC_SERVER_RESOLVE_API_DOMAIN"),
    (("keep_api_domain",), False, "on", True, "SRS_RTC_SERVER_KEEP_API_DOMAIN"),
    (("use_auto_detect_network_ip",), True, "off", False, "SRS_RTC_SERVER_USE_AUTO_DETECT_NETWORK_IP"),
    (("ecdsa",), True, "off", False, "SRS_RTC_SERVER_ECDSA"),
    (("encrypt",), True, "off", False, "SRS_RTC_SERVER_ENCRYPT"),
    (("reuseport",), 1, "4", 4, "SRS_RTC_SERVER_REUSEPORT"),
    (("merge_nalus",), False, "on", True, "SRS_RTC_SERVER_MERGE_NALUS"),
    (("tcp", "enabled"), False, "on", True, "SRS_RTC_SERVER_TCP_ENABLED"),
    (("tcp", "listen"), ["8000"], "8443", ["8443"], "SRS_RTC_SERVER_TCP_LISTEN"),
    (("black_hole", "enabled"), False, "on", True, "SRS_RTC_SERVER_BLACK_HOLE_ENABLED"),
    (("black_hole", "addr"), "", "127.0.0.1:10000", "127.0.0.1:10000", "SRS_RTC_SERVER_BLACK_HOLE_ADDR"),
]

# The same for vhost.rtc (SRS_VHOST_* variables apply to every vhost).
VHOST = [
    ("enabled", False, "on", True),
    ("nack", True, "off", False),
    ("nack_no_copy", True, "off", False),
    ("twcc", True, "off", False),
    ("stun_timeout", 30, "60", 60),
    ("stun_strict_check", False, "on", True),
    ("dtls_role", "passive", "active", "active"),
    ("dtls_version", "auto", "dtls1.2", "dtls1.2"),
    ("drop_for_pt", 0, "111", 111),
    ("rtmp_to_rtc", False, "on", True),
    ("keep_bframe", False, "on", True),
    ("keep_avc_nalu_sei", True, "off", False),
    ("opus_bitrate", 48000, "64000", 64000),
    ("rtc_to_rtmp", False, "on", True),
    ("pli_for_rtmp", 6.0, "2.5", 2.5),
    ("aac_bitrate", 48000, "128000", 128000),
    ("init_rate_from_sdp", False, "on", True),
    ("keep_original_ssrc", False, "on", True),
]

# A bad value per directive and the start of the message (the model's declarations decide).
SERVER_BAD = {
    ("enabled",): ("yes", '"enabled" must be on or off'),
    ("listen",): ("80000", "invalid rtc_server.listen '80000'"),
    ("candidate",): ("http://x/", "invalid rtc_server.candidate"),
    ("protocol",): ("quic", '"protocol" must be one of udp, tcp, all'),
    ("ip_family",): ("ipv5", '"ip_family" must be one of ipv4, ipv6, all'),
    ("api_as_candidates",): ("true", '"api_as_candidates" must be on or off'),
    ("resolve_api_domain",): ("1", '"resolve_api_domain" must be on or off'),
    ("keep_api_domain",): ("ON", '"keep_api_domain" must be on or off'),
    ("use_auto_detect_network_ip",): ("no", '"use_auto_detect_network_ip" must be on or off'),
    ("ecdsa",): ("rsa", '"ecdsa" must be on or off'),
    ("encrypt",): ("srtp", '"encrypt" must be on or off'),
    ("reuseport",): ("0", '"reuseport" must be >= 1'),
    ("merge_nalus",): ("y", '"merge_nalus" must be on or off'),
    ("tcp", "enabled"): ("tcp", '"enabled" must be on or off'),
    ("tcp", "listen"): ("http", "invalid rtc_server.tcp.listen 'http'"),
    ("black_hole", "enabled"): ("1", '"enabled" must be on or off'),
    ("black_hole", "addr"): ("localhost:10000", "invalid rtc_server.black_hole.addr"),
}
VHOST_BAD = {
    "enabled": ("yes", '"enabled" must be on or off'),
    "nack": ("enabled", '"nack" must be on or off'),
    "nack_no_copy": ("copy", '"nack_no_copy" must be on or off'),
    "twcc": ("1", '"twcc" must be on or off'),
    "stun_timeout": ("0", '"stun_timeout" must be >= 1'),
    "stun_strict_check": ("strict", '"stun_strict_check" must be on or off'),
    "dtls_role": ("actpass", '"dtls_role" must be one of passive, active'),
    "dtls_version": ("dtls1.3", '"dtls_version" must be one of auto, dtls1.0, dtls1.2'),
    "drop_for_pt": ("128", '"drop_for_pt" must be in 0..127'),
    "rtmp_to_rtc": ("transcode", '"rtmp_to_rtc" must be on or off'),
    "keep_bframe": ("keep", '"keep_bframe" must be on or off'),
    "keep_avc_nalu_sei": ("keep", '"keep_avc_nalu_sei" must be on or off'),
    "opus_bitrate": ("high", '"opus_bitrate" expects a number'),
    "rtc_to_rtmp": ("yes", '"rtc_to_rtmp" must be on or off'),
    "pli_for_rtmp": ("often", '"pli_for_rtmp" expects a number'),
    "aac_bitrate": ("low", '"aac_bitrate" expects a number'),
    "init_rate_from_sdp": ("sdp", '"init_rate_from_sdp" must be on or off'),
    "keep_original_ssrc": ("keep", '"keep_original_ssrc" must be on or off'),
}


def server_value(cfg, path):
    node = cfg.rtc_server
    for key in path[:-1]:
        node = getattr(node, key)
    return getattr(node, "listens" if path[-1] == "listen" else path[-1])


def server_text(path, value):
    """``rtc_server`` with ``path value;`` on line 3 of its own; the value's column."""
    opening = "".join(f"{key} {{ " for key in path[:-1])
    closing = " }" * (len(path) - 1)
    line = f"    {opening}{path[-1]} {value};{closing}"
    return f"# rtc\nrtc_server {{\n{line}\n}}\nvhost v {{}}\n", 3, line.index(f"{path[-1]} ") + len(path[-1]) + 2


def vhost_text(key, value):
    return f"vhost v {{\n  rtc {{\n    {key} {value};\n  }}\n}}\n", 3, 4 + len(key) + 2


class DefaultTests(unittest.TestCase):
    def test_the_tables_cover_every_directive(self):
        def names(cls, prefix=()):
            for f in dataclasses.fields(cls):
                kind = f.metadata.get("kind")
                key = f.metadata.get("key") or f.name
                if kind == "section":
                    yield from names(f.metadata["cls"], prefix + (key,))
                elif kind not in (None, "raw"):
                    yield prefix + (key,)

        self.assertEqual(sorted(names(m.RtcServerConfig)), sorted(path for path, *_ in SERVER))
        self.assertEqual(sorted(k for (k,) in names(m.RtcConfig)), sorted(key for key, *_ in VHOST))
        self.assertEqual(set(SERVER_BAD), {path for path, *_ in SERVER})
        self.assertEqual(set(VHOST_BAD), {key for key, *_ in VHOST})

    def test_srs_defaults(self):
        for text in ("vhost v {}", "rtc_server {} vhost v { rtc {} }", "rtc_server { tcp {} black_hole {} } vhost v {}"):
            cfg = load_string(text)
            for path, default, *_ in SERVER:
                self.assertEqual(server_value(cfg, path), default, (text, path))
            for key, default, *_ in VHOST:
                self.assertEqual(getattr(cfg.vhost("v").rtc, key), default, (text, key))
        self.assertEqual((cfg.rtc_server.listen, cfg.rtc_server.tcp.listen), ("8000", "8000"))

    def test_the_dataclass_defaults_are_srs_defaults(self):
        for path, default, *_ in SERVER:
            self.assertEqual(server_value(m.SrsConfig(), path), default, path)
        for key, default, *_ in VHOST:
            self.assertEqual(getattr(m.RtcConfig(), key), default, key)


class ParseTests(unittest.TestCase):
    def test_every_server_directive(self):
        for path, _, written, loaded, _ in SERVER:
            text, _, _ = server_text(path, written)
            self.assertEqual(server_value(load_string(text), path), loaded, path)

    def test_every_vhost_directive(self):
        for key, _, written, loaded in VHOST:
            text, _, _ = vhost_text(key, written)
            self.assertEqual(getattr(load_string(text).vhost("v").rtc, key), loaded, key)

    def test_each_vhost_has_its_own(self):
        cfg = load_string("vhost a { rtc { enabled on; rtmp_to_rtc on; } } vhost b { rtc { rtc_to_rtmp on; } }")
        self.assertEqual((cfg.vhost("a").rtc.enabled, cfg.vhost("a").rtc.rtmp_to_rtc, cfg.vhost("a").rtc.rtc_to_rtmp),
                         (True, True, False))
        self.assertEqual((cfg.vhost("b").rtc.enabled, cfg.vhost("b").rtc.rtc_to_rtmp), (False, True))

    def test_an_empty_argument_is_the_default(self):
        v = load_string('vhost v { rtc { nack ""; twcc; stun_timeout ""; dtls_role ""; } }').vhost("v")
        self.assertEqual((v.rtc.nack, v.rtc.twcc, v.rtc.stun_timeout, v.rtc.dtls_role), (True, True, 30, "passive"))

    def test_numbers_read_as_srs_reads_them(self):
        v = load_string("vhost v { rtc { stun_timeout 45s; pli_for_rtmp 1.5s; opus_bitrate 96000bps; } }").vhost("v")
        self.assertEqual((v.rtc.stun_timeout, v.rtc.pli_for_rtmp, v.rtc.opus_bitrate), (45, 1.5, 96000))

    def test_bitrates_and_pli_outside_srs_range_fall_back_to_the_default(self):
        # SRS warns and uses the default: accepted, not rejected.
        for text, want in (
            ("opus_bitrate 7999; aac_bitrate 320001; pli_for_rtmp 0.4;", (48000, 48000, 6.0)),
            ("opus_bitrate 8000; aac_bitrate 320000; pli_for_rtmp 30;", (8000, 320000, 30.0)),
            ("opus_bitrate -5; aac_bitrate 0; pli_for_rtmp -1;", (48000, 48000, 6.0)),
        ):
            rtc = load_string(f"vhost v {{ rtc {{ {text} }} }}").vhost("v").rtc
            self.assertEqual((rtc.opus_bitrate, rtc.aac_bitrate, rtc.pli_for_rtmp), want, text)


class EnvTests(unittest.TestCase):
    def test_srs_names(self):
        for path, _, _, _, name in SERVER:
            self.assertEqual(env_names(("rtc_server",) + path), (name,), path)
        for key, *_ in VHOST:
            self.assertEqual(env_names(("vhost", "rtc", key)), ("SRS_VHOST_RTC_" + key.upper(),), key)

    # A second value for the directives that are not switches: (as written, as loaded).
    OTHER = {
        ("listen",): ("7000", ["7000"]),
        ("candidate",): ("10.9.9.9", "10.9.9.9"),
        ("protocol",): ("tcp", "tcp"),
        ("ip_family",): ("all", "all"),
        ("reuseport",): ("2", 2),
        ("tcp", "listen"): ("7443", ["7443"]),
        ("black_hole", "addr"): ("127.0.0.1:9", "127.0.0.1:9"),
    }

    def test_every_server_variable_beats_the_file(self):
        for path, default, written, loaded, name in SERVER:
            self.assertEqual(server_value(load_string("vhost v {}", {name: written}), path), loaded, name)
            text, _, _ = server_text(path, written)
            self.assertEqual(server_value(load_string(text, {"SRS_OTHER": "x"}), path), loaded, name)
            env, want = self.OTHER.get(path) or ("off" if loaded else "on", not loaded)
            self.assertEqual(server_value(load_string(text, {name: env}), path), want, name)

    def test_every_vhost_variable_applies_to_every_vhost(self):
        for key, default, written, loaded in VHOST:
            name = "SRS_VHOST_RTC_" + key.upper()
            cfg = load_string(f"vhost a {{}} vhost b {{ rtc {{ {key} {written}; }} }}", {name: written})
            self.assertEqual((getattr(cfg.vhost("a").rtc, key), getattr(cfg.vhost("b").rtc, key)), (loaded, loaded),
                             name)
            if not isinstance(default, bool):
                continue
            flipped = "off" if loaded else "on"
            cfg = load_string(f"vhost b {{ rtc {{ {key} {written}; }} }}", {name: flipped})
            self.assertEqual(getattr(cfg.vhost("b").rtc, key), not loaded, name)

    def test_an_empty_variable_does_not_count(self):
        cfg = load_string("rtc_server { enabled on; } vhost v { rtc { nack off; } }",
                          {"SRS_RTC_SERVER_ENABLED": "", "SRS_VHOST_RTC_NACK": ""})
        self.assertEqual((cfg.rtc_server.enabled, cfg.vhost("v").rtc.nack), (True, False))

    def test_variables_are_clamped_as_the_file(self):
        rtc = load_string("vhost v {}", {"SRS_VHOST_RTC_OPUS_BITRATE": "1", "SRS_VHOST_RTC_AAC_BITRATE": "999999",
                                         "SRS_VHOST_RTC_PLI_FOR_RTMP": "0.1"}).vhost("v").rtc
        self.assertEqual((rtc.opus_bitrate, rtc.aac_bitrate, rtc.pli_for_rtmp), (48000, 48000, 6.0))

    def test_env_only_configuration(self):
        from srs_twisted.config import load

        cfg = load(environ={"SRS_ENV_ONLY": "1", "SRS_RTC_SERVER_ENABLED": "on", "SRS_VHOST_RTC_ENABLED": "on",
                            "SRS_RTC_SERVER_LISTEN": "8000 8001", "SRS_VHOST_RTC_RTC_TO_RTMP": "on"})
        self.assertEqual((cfg.rtc_server.enabled, cfg.rtc_server.listens), (True, ["8000", "8001"]))
        self.assertEqual((cfg.vhost("x").rtc.enabled, cfg.vhost("x").rtc.rtc_to_rtmp), (True, True))


class CheckTests(unittest.TestCase):
    def error(self, text, environ=None):
        with self.assertRaises(ConfigError) as ctx:
            load_string(text, environ, path="conf/rtc.conf")
        return ctx.exception

    def test_every_directive_at_file_line_col(self):
        cases = [(path, server_text(path, bad), message) for path, (bad, message) in SERVER_BAD.items()]
        cases += [(key, vhost_text(key, bad), message) for key, (bad, message) in VHOST_BAD.items()]
        for what, (text, line, col), message in cases:
            e = self.error(text)
            self.assertEqual((e.path, e.line, e.col), ("conf/rtc.conf", line, col), (what, str(e)))
            self.assertTrue(e.message.startswith(message), (what, e.message))

    def test_every_variable_at_its_name(self):
        for path, (bad, message) in SERVER_BAD.items():
            name = env_names(("rtc_server",) + path)[0]
            e = self.error("vhost v {}", {name: bad})
            self.assertEqual((e.path, e.line, e.col), (f"<env {name}>", 0, 0), name)
        for key, (bad, message) in VHOST_BAD.items():
            name = "SRS_VHOST_RTC_" + key.upper()
            e = self.error("vhost v {}", {name: bad})
            self.assertEqual(e.path, f"<env {name}>", name)
            self.assertTrue(e.message.startswith(message.replace(f'"{key}"', f'"{name}"')), e.message)

    def test_unknown_directives(self):
        e = self.error("rtc_server {\n  enabled on;\n  stun_port 3478;\n}\nvhost v {}")
        self.assertEqual(str(e), 'conf/rtc.conf:3:3: illegal directive "stun_port" in rtc_server')
        e = self.error("vhost v {\n  rtc {\n    nack on;\n    fec on;\n  }\n}")
        self.assertEqual(str(e), 'conf/rtc.conf:4:5: illegal directive "fec" in vhost.rtc')
        e = self.error("rtc_server { tcp { enabled on; port 8000; } }\nvhost v {}")
        self.assertEqual((e.line, e.col), (1, 32))

    def test_srs_accepts_dir_and_so_do_we(self):
        load_string("rtc_server { dir ./objs/nginx/html; } vhost v {}")

    def test_candidate_values(self):
        for good in ("*", "0.0.0.0", "$CANDIDATE", "$my.ip", "192.168.3.11", "192.168.3.11:18000", "::1", "fe80::1",
                     "[2001:db8::1]:18000", "rtc.example.com", "rtc.example.com.", "host-1:8000", "localhost"):
            self.assertIsNone(candidate_problem(good), good)
            load_string(f"rtc_server {{ candidate {good}; }} vhost v {{}}")
        for bad, why in (("$", "is not a $VARIABLE name"), ("$A-B", "is not a $VARIABLE name"),
                         ("http://x", "port '//x' is not an integer"), ("1.2.3.4:0", "port '0'"),
                         ("1.2.3.4:65536", "port '65536'"), ("300.1.2.3", "not an IPv4 address"),
                         ("a..b", "neither an IP address nor a host name"), ("-a.com", "neither"),
                         ("under_score.com", "neither"), ("[::1", "neither")):
            self.assertIn(why, candidate_problem(bad) or "", bad)
            e = self.error(f"rtc_server {{\n  candidate  {bad};\n}}\nvhost v {{}}")
            self.assertEqual((e.line, e.col), (2, 14), bad)
            self.assertTrue(e.message.startswith("invalid rtc_server.candidate: "), e.message)
        self.assertIn("is not an address", candidate_problem("$X", allow_variable=False))

    def test_candidate_from_variables_is_checked_where_it_comes_from(self):
        text = "rtc_server { candidate $CANDIDATE; } vhost v {}"
        e = self.error(text, {"CANDIDATE": "not a host"})
        self.assertEqual(str(e), "<env CANDIDATE>:0:0: invalid rtc_server.candidate: "
                                 "'not a host' is neither an IP address nor a host name")
        e = self.error(text, {"SRS_RTC_SERVER_CANDIDATE": "1.2.3.4:x"})
        self.assertEqual(e.path, "<env SRS_RTC_SERVER_CANDIDATE>")
        e = self.error(text, {"SRS_RTC_SERVER_CANDIDATE": "$MY_IP", "MY_IP": "$OTHER"})
        self.assertEqual(e.path, "<env MY_IP>")
        e = self.error(text, {"SRS_RTC_SERVER_CANDIDATE": "$MY-IP"})
        self.assertEqual(e.path, "<env SRS_RTC_SERVER_CANDIDATE>")
        # An unset variable is not an error: the candidate is * then.
        self.assertEqual(load_string(text, {}).rtc_server.candidate, "*")

    def test_black_hole_addr(self):
        self.assertIsNone(black_hole_problem("127.0.0.1:10000"))
        for bad in ("127.0.0.1", "localhost:10000", "[::1]:10000", "127.0.0.1:0", "10000"):
            self.assertIsNotNone(black_hole_problem(bad), bad)
        e = self.error("rtc_server {\n  black_hole {\n    enabled on;\n    addr 127.0.0.1;\n  }\n}\nvhost v {}")
        self.assertEqual(str(e), "conf/rtc.conf:4:10: invalid rtc_server.black_hole.addr: '127.0.0.1' has no port")
        # SRS disables the black hole when the address is empty: not an error.
        self.assertEqual(load_string("rtc_server { black_hole { enabled on; } } vhost v {}").rtc_server.black_hole.addr,
                         "")


class TransformTests(unittest.TestCase):
    """SRS's srs_config_transform_vhost for RTC: SRS 4's nack/twcc blocks, SRS 3's aac/bframe,
    and the rtc_server keys SRS 4 dropped."""

    def rtc(self, body, environ=None):
        return load_string(f"vhost v {{\n{body}\n}}", environ, path="old.conf").vhost("v").rtc

    def test_nack_and_twcc_blocks(self):
        rtc = self.rtc("nack { enabled off; no_copy off; }\ntwcc { enabled off; }")
        self.assertEqual((rtc.nack, rtc.nack_no_copy, rtc.twcc), (False, False, False))
        rtc = self.rtc("rtc { enabled on; nack on; }\nnack { enabled off; }")
        self.assertEqual((rtc.enabled, rtc.nack, rtc.nack_no_copy), (True, False, True))

    def test_aac_becomes_rtmp_to_rtc(self):
        self.assertTrue(self.rtc("rtc { aac transcode; }").rtmp_to_rtc)
        for other in ("discard", "keep", "on"):
            self.assertFalse(self.rtc(f"rtc {{ aac {other}; rtmp_to_rtc on; }}").rtmp_to_rtc, other)

    def test_bframe_becomes_keep_bframe(self):
        self.assertTrue(self.rtc("rtc { bframe keep; }").keep_bframe)
        self.assertFalse(self.rtc("rtc { bframe discard; keep_bframe on; }").keep_bframe)

    def test_the_environment_still_wins_over_a_legacy_value(self):
        rtc = self.rtc("rtc { aac transcode; bframe keep; }", {"SRS_VHOST_RTC_RTMP_TO_RTC": "off"})
        self.assertEqual((rtc.rtmp_to_rtc, rtc.keep_bframe), (False, True))

    def test_a_bad_legacy_value_is_reported_where_it_was_written(self):
        with self.assertRaises(ConfigError) as ctx:
            self.rtc("rtc { enabled on; }\n  nack { enabled maybe; }")
        self.assertEqual(str(ctx.exception), 'old.conf:3:18: "nack" must be on or off, got \'maybe\'')
        with self.assertRaises(ConfigError) as ctx:
            self.rtc("twcc {\n  enabled 1;\n}")
        self.assertEqual((ctx.exception.line, ctx.exception.col), (3, 11))

    def test_dropped_rtc_server_keys(self):
        cfg = load_string("rtc_server { enabled on; perf_stat on; queue_length 10; } vhost v {}")
        self.assertTrue(cfg.rtc_server.enabled)


class CandidateTests(unittest.TestCase):
    def test_expand_as_srs(self):
        cases = [
            # (file value, environment, effective value, the variable it came from)
            (None, {}, "*", None),
            ("", {}, "*", None),
            ("*", {}, "*", None),
            ("10.0.0.1", {}, "10.0.0.1", None),
            ("$CANDIDATE", {}, "*", None),
            ("$CANDIDATE", {"CANDIDATE": "10.0.0.2"}, "10.0.0.2", "CANDIDATE"),
            ("$candidate", {"CANDIDATE": "10.0.0.2"}, "10.0.0.2", "CANDIDATE"),
            ("$my.ip", {"MY_IP": "10.0.0.3"}, "10.0.0.3", "MY_IP"),
            ("$CANDIDATE", {"CANDIDATE": ""}, "*", None),
            # SRS looks any value up as a variable name, not only $NAME.
            ("myhost", {"MYHOST": "10.0.0.4"}, "10.0.0.4", "MYHOST"),
            ("10.0.0.1", {"SRS_RTC_SERVER_CANDIDATE": "10.0.0.5"}, "10.0.0.5", "SRS_RTC_SERVER_CANDIDATE"),
            ("10.0.0.1", {"SRS_RTC_SERVER_CANDIDATE": "$EIP", "EIP": "10.0.0.6"}, "10.0.0.6", "EIP"),
            # $NAME in the variable, NAME unset: the file decides (SRS falls through).
            ("10.0.0.1", {"SRS_RTC_SERVER_CANDIDATE": "$EIP"}, "10.0.0.1", None),
            ("$CANDIDATE", {"SRS_RTC_SERVER_CANDIDATE": "$EIP", "CANDIDATE": "10.0.0.7"}, "10.0.0.7", "CANDIDATE"),
        ]
        for configured, environ, value, variable in cases:
            self.assertEqual(expand_candidate(configured, environ), (value, variable), (configured, environ))
            self.assertEqual(expand_candidate(configured, None)[0], "*" if not configured or configured[0] == "$"
                             else configured)

    def test_loaded_candidate(self):
        text = "rtc_server { candidate 10.0.0.1; } vhost v {}"
        self.assertEqual(load_string(text, {"SRS_RTC_SERVER_CANDIDATE": "$EIP"}).rtc_server.candidate, "10.0.0.1")
        self.assertEqual(load_string("vhost v {}", {"SRS_RTC_SERVER_CANDIDATE": "$EIP"}).rtc_server.candidate, "*")

    def test_split_host_port(self):
        self.assertEqual(split_host_port("1.2.3.4"), ("1.2.3.4", None))
        self.assertEqual(split_host_port("1.2.3.4:18000"), ("1.2.3.4", "18000"))
        self.assertEqual(split_host_port("::1"), ("::1", None))
        self.assertEqual(split_host_port("[::1]:18000"), ("::1", "18000"))
        self.assertEqual(split_host_port("[::1]"), ("::1", None))
        self.assertEqual(split_host_port("a.com:"), ("a.com", ""))

    HOST = ["127.0.0.1", "::1", "192.168.1.10", "10.0.0.5", "fe80::1", "2001:db8::5", "not-an-ip"]

    def test_detect_picks_non_loopback_addresses_of_the_family(self):
        self.assertEqual(resolve_candidates("*", None, self.HOST),
                         [Candidate("192.168.1.10"), Candidate("10.0.0.5")])
        self.assertEqual(resolve_candidates("0.0.0.0", None, self.HOST, ip_family="ipv6"),
                         [Candidate("fe80::1"), Candidate("2001:db8::5")])
        self.assertEqual(len(resolve_candidates("*", None, self.HOST, ip_family="all")), 4)

    def test_fallbacks_when_nothing_matches(self):
        # Only loopback: SRS takes the first IPv4 address, else the first address.
        self.assertEqual(resolve_candidates("*", None, ["::1", "127.0.0.1"]), [Candidate("127.0.0.1")])
        self.assertEqual(resolve_candidates("*", None, ["::1"]), [Candidate("::1")])
        self.assertEqual(resolve_candidates("*", None, ["2001:db8::5"]), [Candidate("2001:db8::5")])
        self.assertEqual(resolve_candidates("*", None, ["192.168.1.10"], auto_detect=False),
                         [Candidate("192.168.1.10")])
        self.assertEqual(resolve_candidates("*", None, []), [])

    def test_configured_address_replaces_detection(self):
        self.assertEqual(resolve_candidates("203.0.113.7", None, self.HOST), [Candidate("203.0.113.7")])
        self.assertEqual(resolve_candidates("203.0.113.7:18000", None, self.HOST), [Candidate("203.0.113.7", 18000)])
        self.assertEqual(resolve_candidates("$CANDIDATE", {"CANDIDATE": "rtc.example.com"}, self.HOST),
                         [Candidate("rtc.example.com")])
        self.assertEqual(resolve_candidates("$CANDIDATE", {}, ["10.0.0.5"]), [Candidate("10.0.0.5")])

    def test_eip_comes_first(self):
        self.assertEqual(resolve_candidates("*", None, ["10.0.0.5"], eip="198.51.100.1:18000"),
                         [Candidate("198.51.100.1", 18000), Candidate("10.0.0.5")])
        self.assertEqual(resolve_candidates("203.0.113.7", None, [], eip="203.0.113.7"), [Candidate("203.0.113.7")])
        for junk in ("*", "$X", "a b", "1.2.3.4:99999"):
            self.assertEqual(resolve_candidates("203.0.113.7", None, [], eip=junk), [Candidate("203.0.113.7")], junk)

    def test_api_host(self):
        def resolve(name):
            return {"rtc.example.com": "198.51.100.9", "local.example.com": "127.0.0.1"}.get(name)

        conf = "203.0.113.7"
        self.assertEqual(resolve_candidates(conf, None, [], api_host="198.51.100.2"),
                         [Candidate("198.51.100.2"), Candidate(conf)])
        self.assertEqual(resolve_candidates(conf, None, [], api_host="198.51.100.2", api_as_candidates=False),
                         [Candidate(conf)])
        for local in ("localhost", "127.0.0.1", "0.0.0.0", "::"):
            self.assertEqual(resolve_candidates(conf, None, [], api_host=local, resolve=resolve), [Candidate(conf)])
        self.assertEqual(resolve_candidates(conf, None, [], api_host="rtc.example.com", resolve=resolve),
                         [Candidate("198.51.100.9"), Candidate(conf)])
        self.assertEqual(resolve_candidates(conf, None, [], api_host="rtc.example.com", resolve=resolve,
                                            keep_api_domain=True, resolve_api_domain=False),
                         [Candidate("rtc.example.com"), Candidate(conf)])
        self.assertEqual(resolve_candidates(conf, None, [], api_host="rtc.example.com", resolve=resolve,
                                            keep_api_domain=True),
                         [Candidate("rtc.example.com"), Candidate("198.51.100.9"), Candidate(conf)])
        self.assertEqual(resolve_candidates(conf, None, [], api_host="local.example.com", resolve=resolve),
                         [Candidate(conf)])
        self.assertEqual(resolve_candidates(conf, None, [], api_host="rtc.example.com"), [Candidate(conf)])

    def test_no_duplicates(self):
        self.assertEqual(resolve_candidates("*", None, ["10.0.0.5", "10.0.0.5"], eip="10.0.0.5",
                                            api_host="10.0.0.5"), [Candidate("10.0.0.5")])
