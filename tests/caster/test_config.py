"""The typed ``stream_caster`` blocks (srs_twisted/config/caster.py) and the service's registry
of caster kinds (srs_twisted/caster/__init__.py, SrsService._add_casters)."""

from __future__ import annotations

from twisted.application import service
from twisted.trial import unittest

from srs_twisted import caster as casters
from srs_twisted.config import ConfigError, load_string
from srs_twisted.config.env import env_names
from srs_twisted.service import SrsService, StartError

from .. import test_reload
from ..test_reload import PortReactor

FULL = """
stream_caster { enabled on; caster mpegts_over_udp; output rtmp://127.0.0.1/live/livestream; listen 8935; }
stream_caster { enabled on; caster flv; output rtmp://127.0.0.1/[app]/[stream]; listen 8936; }
stream_caster {
    enabled off; caster gb28181; output rtmp://127.0.0.1/live/[stream]; listen 9000;
    sip { enabled on; listen 5060; timeout 60; reinvite 5; candidate *; }
}
vhost __defaultVhost__ {}
"""


class ModelTests(unittest.TestCase):
    def test_full_conf_blocks_in_order(self):
        udp, flv, gb = load_string(FULL).stream_casters
        self.assertEqual((udp.enabled, udp.caster, udp.listen, udp.output, udp.is_udp),
                         (True, "mpegts_over_udp", 8935, "rtmp://127.0.0.1/live/livestream", True))
        self.assertEqual((flv.caster, flv.listen, flv.output, flv.is_flv), ("flv", 8936, "rtmp://127.0.0.1/[app]/[stream]", True))
        self.assertEqual((gb.enabled, gb.is_gb28181, gb.listen), (False, True, 9000))
        self.assertEqual((gb.sip.enabled, gb.sip.listen, gb.sip.timeout, gb.sip.reinvite, gb.sip.candidate),
                         (True, 5060, 60.0, 5.0, "*"))

    def test_srs_getter_defaults(self):
        (c,) = load_string("stream_caster { }\nvhost v {}").stream_casters
        self.assertEqual((c.enabled, c.caster, c.output, c.listen), (False, "", "", 0))
        self.assertEqual((c.sip.enabled, c.sip.listen, c.sip.timeout, c.sip.reinvite, c.sip.candidate),
                         (True, 5060, 60.0, 5.0, "*"))
        self.assertEqual(load_string("vhost v {}").stream_casters, [])

    def test_fractional_sip_times_and_off_switch(self):
        (c,) = load_string("stream_caster { caster gb28181; sip { enabled off; timeout 2.5; reinvite 0.5; } }").stream_casters
        self.assertEqual((c.sip.enabled, c.sip.timeout, c.sip.reinvite), (False, 2.5, 0.5))

    def test_candidate_variable_as_srs(self):
        text = "stream_caster { caster gb28181; sip { candidate $CANDIDATE; } }"
        self.assertEqual(load_string(text, {"CANDIDATE": "192.168.1.10"}).stream_casters[0].sip.candidate, "192.168.1.10")
        self.assertEqual(load_string(text, {}).stream_casters[0].sip.candidate, "*")  # unset: SRS's default
        text = "stream_caster { caster gb28181; sip { candidate 10.0.0.2; } }"
        self.assertEqual(load_string(text, {"CANDIDATE": "x"}).stream_casters[0].sip.candidate, "10.0.0.2")

    def test_no_srs_stream_caster_variables(self):
        # SRS's getters read no environment for stream_caster: nor does the model.
        for keys in (("enabled",), ("listen",), ("caster",), ("output",), ("sip", "listen")):
            self.assertEqual(env_names(("stream_caster",) + keys), ())
        (c,) = load_string(FULL, {"SRS_STREAM_CASTER_LISTEN": "1", "SRS_STREAM_CASTER_ENABLED": "off"}).stream_casters[:1]
        self.assertEqual((c.listen, c.enabled), (8935, True))


class CheckTests(unittest.TestCase):
    def assertRejected(self, text, line, col, words):
        with self.assertRaises(ConfigError) as ctx:
            load_string(text, path="t.conf")
        e = ctx.exception
        self.assertEqual((e.path, e.line, e.col), ("t.conf", line, col), str(e))
        self.assertIn(words, e.message)

    def test_unknown_kind_and_names(self):
        self.assertRejected("stream_caster { caster rtsp; }", 1, 24, "caster")
        self.assertRejected("stream_caster { sip { host 1; } }", 1, 23, "stream_caster.sip")
        self.assertRejected("stream_caster { port 1; }", 1, 17, "stream_caster")

    def test_listen_is_ip_port(self):
        self.assertRejected("stream_caster { listen 127.0.0.1:70000; }", 1, 24, "stream_caster.listen")
        self.assertRejected("stream_caster { listen 8935x; }", 1, 24, "stream_caster.listen")
        self.assertRejected("stream_caster { listen localhost:8935; }", 1, 24, "stream_caster.listen")
        self.assertRejected("stream_caster { sip { listen 0; } }", 1, 30, "stream_caster.sip.listen")
        (c,) = load_string("stream_caster { listen 127.0.0.1:8935; sip { listen [::1]:5061; } }").stream_casters
        self.assertEqual((c.listen_ip, c.listen, c.sip.listen_ip, c.sip.listen), ("127.0.0.1", 8935, "::1", 5061))
        (c,) = load_string("stream_caster { listen 8935; }").stream_casters
        self.assertEqual((c.listen_ip, c.listen, c.sip.listen_ip, c.sip.listen), ("", 8935, "", 5060))

    def test_enabled_blocks_need_kind_port_and_rtmp_output(self):
        self.assertRejected("stream_caster {\n  enabled on; listen 8935; output rtmp://h/a/s;\n}", 1, 1, "needs \"caster\"")
        self.assertRejected("stream_caster {\n  enabled on;\n  caster flv; output rtmp://h/a/s;\n}", 1, 1, "listen PORT")
        self.assertRejected("stream_caster {\n  enabled on; caster flv; listen 8936;\n  output http://h/a/s;\n}", 3, 10,
                            "rtmp:// URL")
        # Disabled blocks may be incomplete, as in SRS.
        self.assertEqual(len(load_string("stream_caster { caster flv; }").stream_casters), 1)

    def test_ports_not_shared_by_two_enabled_casters(self):
        self.assertRejected(
            "stream_caster { enabled on; caster flv; listen 8936; output rtmp://h/a/s; }\n"
            "stream_caster { enabled on; caster gb28181; output rtmp://h/a/s;\n  listen 8936; }", 3, 10, "already used")
        self.assertRejected(
            "stream_caster { enabled on; caster flv; listen 8936; output rtmp://h/a/s; }\n"
            "stream_caster { enabled on; caster gb28181; listen 9000; output rtmp://h/a/s; sip { listen 8936; } }", 2, 92,
            "already used")
        # Ports on two addresses do not clash; one on all addresses clashes with any.
        load_string("stream_caster { enabled on; caster flv; listen 127.0.0.1:8936; output rtmp://h/a/s; }\n"
                    "stream_caster { enabled on; caster flv; listen 127.0.0.2:8936; output rtmp://h/a/s; }")
        self.assertRejected(
            "stream_caster { enabled on; caster flv; listen 127.0.0.1:8936; output rtmp://h/a/s; }\n"
            "stream_caster { enabled on; caster flv; listen 8936; output rtmp://h/a/s; }", 2, 48, "already used")
        # UDP and TCP ports of one number are different ports.
        load_string("stream_caster { enabled on; caster flv; listen 8935; output rtmp://h/a/s; }\n"
                    "stream_caster { enabled on; caster mpegts_over_udp; listen 8935; output rtmp://h/a/s; }")


class _Fake(service.Service):
    made: list = []

    def __init__(self, ctx, conf, bind_host):
        self.conf = conf
        self.bind_host = bind_host
        _Fake.made.append(self)


class RegistryTests(unittest.TestCase):
    def setUp(self):
        saved = dict(casters.CASTERS)
        self.addCleanup(lambda: (casters.CASTERS.clear(), casters.CASTERS.update(saved)))
        _Fake.made = []

    def start(self, config, **kw):
        self.reactor = PortReactor()
        self.srv = SrsService(config, self.reactor, **kw)
        self.srv.startService()
        self.addCleanup(test_reload.ReloadTests.stop, self)  # stops it and frees its ports
        return self.srv

    def test_each_enabled_block_starts_by_its_kind(self):
        casters.register("mpegts_over_udp", _Fake)
        casters.register("flv", _Fake)
        srv = self.start(load_string(FULL), bind_host="127.0.0.1")
        self.assertEqual([(f.conf.caster, f.bind_host, f.running, f.name) for f in _Fake.made],
                         [("mpegts_over_udp", "127.0.0.1", 1, "caster-0"), ("flv", "127.0.0.1", 1, "caster-1")])
        self.assertEqual(srv.ctx.casters, _Fake.made)

    def test_factories_by_name(self):
        casters.register("flv", "tests.caster.test_config:_Fake")
        self.assertIs(casters.caster_factory("flv"), _Fake)
        with self.assertRaises(casters.CasterUnavailable):
            casters.caster_factory("rtsp")
        casters.register("flv", "srs_twisted.no_such_module:Thing")
        with self.assertRaises(casters.CasterUnavailable):
            casters.caster_factory("flv")
        casters.register("flv", "srs_twisted.caster:NoSuchThing")
        with self.assertRaises(casters.CasterUnavailable):
            casters.caster_factory("flv")

    def test_unavailable_kind_fails_the_start(self):
        casters.register("gb28181", "srs_twisted.no_such_gb:GbCaster")
        text = "stream_caster { enabled on; caster gb28181; listen 9000; output rtmp://127.0.0.1/live/[stream]; }\nvhost v {}"
        srv = SrsService(load_string(text), PortReactor())
        with self.assertRaises(StartError) as ctx:
            srv.startService()
        self.assertIn("caster gb28181 is not available", str(ctx.exception))

    def test_reload_restarts_changed_casters(self):
        casters.register("flv", _Fake)
        casters.register("mpegts_over_udp", _Fake)
        srv = self.start(load_string(FULL))
        first = list(_Fake.made)
        srv.reload(load_string(FULL))
        self.assertEqual(_Fake.made, first)  # unchanged: kept
        srv.reload(load_string(FULL.replace("8936", "8937")))
        self.assertEqual([f.running for f in first], [0, 0])
        self.assertEqual([(f.conf.listen, f.running) for f in _Fake.made[2:]], [(8935, 1), (8937, 1)])
        self.assertEqual(srv.ctx.casters, _Fake.made[2:])

    def test_casters_run_in_worker_0_only(self):
        from srs_twisted.workers import per_worker_config

        config = load_string(FULL)
        self.assertEqual(per_worker_config(config, 0).stream_casters, config.stream_casters)
        self.assertEqual(per_worker_config(config, 1).stream_casters, [])
