"""workers N: the directive, per-worker ports, the supervisor's directory table, log tags."""

import socket

from twisted.trial import unittest

from srs_twisted import config, log
from srs_twisted.config import ConfigError
from srs_twisted.workers import offset_listen, per_worker_config, worker_count, worker_index
from srs_twisted.workers.directory import StreamTable
from srs_twisted.workers.supervisor import ports_to_check
from srs_twisted.workers.worker import stable_vhost_id


class WorkersDirective(unittest.TestCase):
    def test_default_is_one(self):
        self.assertEqual(worker_count(config.load_string("vhost a {}", environ={})), 1)

    def test_number_auto_and_env(self):
        self.assertEqual(worker_count(config.load_string("workers 3; vhost a {}", environ={})), 3)
        auto = config.load_string("workers auto; vhost a {}", environ={})
        self.assertEqual(worker_count(auto, cpus=16), 16)
        env = config.load_string("workers 3; vhost a {}", environ={"SRS_WORKERS": "2"})
        self.assertEqual(worker_count(env), 2)

    def test_bad_values_refused(self):
        for bad in ("workers 0;", "workers x;", "workers 2000;"):
            with self.assertRaises(ConfigError):
                config.load_string(bad + " vhost a {}", environ={})
        with self.assertRaises(ConfigError):
            config.load_string("vhost a {}", environ={"SRS_WORKERS": "none"})

    def test_worker_index_from_env(self):
        self.assertIsNone(worker_index({}))
        self.assertEqual(worker_index({"SRSTW_WORKER_INDEX": "1"}), 1)


class PerWorkerPorts(unittest.TestCase):
    def test_offset_listen_forms(self):
        self.assertEqual(offset_listen("8000", 1), "8001")
        self.assertEqual(offset_listen("0.0.0.0:8000", 2), "0.0.0.0:8002")
        self.assertEqual(offset_listen("[::]:8000", 1), "[::]:8001")
        self.assertEqual(offset_listen("8000", 0), "8000")

    def test_udp_services_and_rtc_tcp_move_tcp_listeners_stay(self):
        conf = config.load_string(
            "listen 1935; http_api { enabled on; listen 1985; }"
            "rtc_server { enabled on; listen 8000; tcp { enabled on; listen 8000; } }"
            "srt_server { enabled on; listen 10080; } vhost a {}", environ={})
        w1 = per_worker_config(conf, 1)
        self.assertEqual(w1.rtc_server.listens, ["8001"])
        self.assertEqual(w1.rtc_server.tcp.listens, ["8001"])
        self.assertEqual(w1.srt_server.listens, ["10081"])
        self.assertEqual(w1.listen, ["1935"])
        self.assertEqual(w1.http_api.listens, ["1985"])
        self.assertIs(per_worker_config(conf, 0), conf)

    def test_supervisor_checks_shared_and_per_worker_ports(self):
        conf = config.load_string(
            "listen 1935; http_api { enabled on; listen 8080; } http_server { enabled on; listen 8080; }"
            "rtc_server { enabled on; listen 8000; } srt_server { enabled on; listen 10080; } vhost a {}",
            environ={})
        found = [(what, port, kind) for what, _host, port, kind in ports_to_check(conf, 2)]
        tcp, udp = socket.SOCK_STREAM, socket.SOCK_DGRAM
        self.assertEqual(found, [("rtmp", 1935, tcp), ("http_server", 8080, tcp), ("rtc udp", 8000, udp),
                                 ("rtc udp", 8001, udp), ("srt udp", 10080, udp), ("srt udp", 10081, udp)])


class Table(unittest.TestCase):
    def test_first_claim_wins_until_released(self):
        table = StreamTable()
        a, b = {"node": "w0", "endpoints": {"rtmp": "127.0.0.1:1"}}, {"node": "w1", "endpoints": {}}
        self.assertEqual(table.register("v/live/s", a), (True, a))
        self.assertEqual(table.register("v/live/s", b), (False, a))
        self.assertEqual(table.register("v/live/s", a), (True, a))  # a re-claim by the owner
        self.assertFalse(table.unregister("v/live/s", "w1"))
        self.assertEqual(table.lookup("v/live/s"), a)
        self.assertTrue(table.unregister("v/live/s", "w0"))
        self.assertIsNone(table.lookup("v/live/s"))

    def test_a_dead_worker_drops_its_streams(self):
        table = StreamTable()
        table.register("v/live/a", {"node": "w0"})
        table.register("v/live/b", {"node": "w1"})
        self.assertEqual(table.drop("w0"), ["v/live/a"])
        self.assertIsNone(table.lookup("v/live/a"))
        self.assertEqual(table.lookup("v/live/b"), {"node": "w1"})


class Misc(unittest.TestCase):
    def test_vhost_ids_agree_across_workers(self):
        one = stable_vhost_id("vid-abc", "__defaultVhost__")
        self.assertEqual(one, stable_vhost_id("vid-abc", "__defaultVhost__"))
        self.assertNotEqual(one, stable_vhost_id("vid-abc", "other"))
        self.assertRegex(one, r"^vid-[0-9a-f]{7}$")

    def test_log_lines_carry_the_worker_tag(self):
        self.addCleanup(log.set_tag, "")
        log.set_tag("w1")
        self.assertRegex(log.format_line("trace", "abcd1234", "hello"), r"\]\[abcd1234\]\[w1\] hello\n$")
        log.set_tag("")
        self.assertRegex(log.format_line("trace", "abcd1234", "hello"), r"\]\[abcd1234\] hello\n$")
