"""The Prometheus exporter: SRS's metric set, our per-stream series, the cap."""

from __future__ import annotations

import json
import os

import prometheus_client
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.task import Clock
from twisted.trial import unittest
from twisted.web.resource import getChildForRequest
from twisted.web.test.requesthelper import DummyRequest

from srs_twisted import config as srs_config
from srs_twisted.context import ClientInfo, ServerContext
from srs_twisted.http import exporter
from srs_twisted.http.exporter import (
    MAX_STREAM_SERIES,
    OTHER,
    metrics_resource,
    registry_for,
    render,
)
from srs_twisted.http.procstats import SELF_STAT_FIELDS, ProcStats
from srs_twisted.live.packet import AUDIO, VIDEO, MediaPacket

CONF = """
exporter { enabled on; }
vhost __defaultVhost__ { play { mw_latency 0; queue_length 1; } }
"""

# name -> (type, label names) of every SRS 7.0.18 metric.
SRS_METRICS = {
    "srs_node_uname_info": ("gauge", {"sysname", "nodename", "release", "version", "machine"}),
    "srs_build_info": (
        "gauge",
        {"server", "service", "pid", "build_date", "major", "minor", "revision", "version", "code"},
    ),
    "srs_cpu_percent": ("gauge", set()),
    "srs_memory": ("gauge", set()),
    "srs_send_bytes_total": ("counter", set()),
    "srs_receive_bytes_total": ("counter", set()),
    "srs_streams": ("gauge", set()),
    "srs_clients": ("gauge", set()),
    "srs_clients_total": ("counter", set()),
    "srs_clients_errs_total": ("counter", set()),
}

STREAM_METRICS = {
    "srs_stream_recv_bytes_total": "counter",
    "srs_stream_send_bytes_total": "counter",
    "srs_stream_players": "gauge",
    "srs_stream_fps": "gauge",
    "srs_stream_dropped_packets_total": "counter",
    "srs_stream_gop_length_frames": "gauge",
}


def make_ctx(conf: str = CONF) -> ServerContext:
    return ServerContext(srs_config.load_string(conf), Clock())


def scrape(ctx) -> dict:
    """sample name -> list of (type, labels, value)."""
    body, content_type = render(ctx)
    assert content_type.startswith("text/plain"), content_type
    samples: dict = {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        for s in family.samples:
            samples.setdefault(s.name, []).append((family.type, s.labels, s.value))
    return samples


def value(samples, name, **labels) -> float:
    for _, got, v in samples[name]:
        if all(got.get(k) == want for k, want in labels.items()):
            return v
    raise KeyError(f"{name}{labels}")


class Sink:
    wire_key = "test"

    def __init__(self):
        self.data = []

    def encode(self, pkt):
        return bytes(len(pkt.payload))

    def write(self, data):
        self.data.append(data)

    def stream_published(self):
        pass

    def stream_unpublished(self):
        pass


class Publisher:
    def stopProducing(self):
        pass


def video(dts, key=False, size=100):
    return MediaPacket(VIDEO, dts, b"v" * size, codec="h264", keyframe=key)


def audio(dts, size=10):
    return MediaPacket(AUDIO, dts, b"a" * size, codec="aac")


def publish(ctx, stream="s", app="live"):
    src = ctx.registry.fetch_or_create("__defaultVhost__", app, stream)
    ctx.registry.publish(src, Publisher())
    return src


class SrsMetricSetTests(unittest.TestCase):
    def test_every_srs_metric_with_its_type_and_labels(self):
        samples = scrape(make_ctx())
        for name, (kind, labels) in SRS_METRICS.items():
            self.assertIn(name, samples)
            self.assertEqual(len(samples[name]), 1, name)
            got_kind, got_labels, _ = samples[name][0]
            self.assertEqual(got_kind, kind, name)
            self.assertEqual(set(got_labels), labels, name)

    def test_uname_info(self):
        samples = scrape(make_ctx())
        _, labels, v = samples["srs_node_uname_info"][0]
        u = os.uname()
        self.assertEqual(v, 1)
        self.assertEqual(
            labels,
            {
                "sysname": u.sysname,
                "nodename": u.nodename,
                "release": u.release,
                "version": u.version,
                "machine": u.machine,
            },
        )

    def test_build_info(self):
        ctx = make_ctx()
        _, labels, v = scrape(ctx)["srs_build_info"][0]
        self.assertEqual(v, 1)
        self.assertEqual(labels["server"], ctx.server_id)
        self.assertEqual(labels["service"], ctx.service_id)
        self.assertEqual(labels["pid"], str(os.getpid()))
        self.assertEqual((labels["major"], labels["minor"], labels["revision"]), ("7", "0", "18"))
        self.assertEqual(labels["version"], "7.0.18")
        self.assertEqual(labels["code"], "Hang")
        self.assertRegex(labels["build_date"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")

    def test_build_info_label_and_tag(self):
        ctx = make_ctx('exporter { enabled on; label cn-beijing; tag "edge a"; }')
        _, labels, _ = scrape(ctx)["srs_build_info"][0]
        self.assertEqual(labels["label"], "cn-beijing")
        self.assertEqual(labels["tag"], "edge a")

    def test_text_matches_srs_type_lines(self):
        body, _ = render(make_ctx())
        text = body.decode()
        for name, (kind, _) in SRS_METRICS.items():
            self.assertIn(f"# TYPE {name} {kind}\n", text)

    def test_memory_is_resident_kbytes(self):
        samples = scrape(make_ctx())
        memory = value(samples, "srs_memory")
        self.assertGreater(memory, 1000)  # a Python process is more than 1 MB
        self.assertLess(memory, 64 * 1024 * 1024)  # and reported in kB, not bytes

    def test_cpu_percent_and_memory_as_srs_computes_them(self):
        # CPU time over wall time between two samples x 100; rss pages x 4.
        root = self.mktemp()
        os.makedirs(os.path.join(root, "self"))

        def write_stat(utime, stime, rss):
            fields = dict.fromkeys(SELF_STAT_FIELDS, 0)
            fields.update(ppid=1, utime=utime, stime=stime, rss=rss)
            with open(os.path.join(root, "self", "stat"), "w") as f:
                f.write("4242 (srs twisted) S " + " ".join(str(fields[k]) for k in SELF_STAT_FIELDS))

        now = [100.0]
        stats = ProcStats(root=root, now=lambda: now[0])
        collector = exporter.SrsCollector(make_ctx(), stats=stats)

        def metrics():
            return {f.name: f.samples[0].value for f in collector.collect() if f.samples}

        write_stat(1000, 500, 2500)
        first = metrics()
        self.assertEqual(first["srs_cpu_percent"], 0)
        self.assertEqual(first["srs_memory"], 10000)
        # 1.5 s of CPU in 2 s of wall time.
        hz = stats.user_hz
        write_stat(1000 + hz, 500 + hz // 2, 3000)
        now[0] += 2
        second = metrics()
        self.assertAlmostEqual(second["srs_cpu_percent"], 75.0, places=3)
        self.assertEqual(second["srs_memory"], 12000)


class CountersMoveTests(unittest.TestCase):
    def test_clients_bytes_and_streams(self):
        ctx = make_ctx()
        samples = scrape(ctx)
        for name in ("srs_receive_bytes_total", "srs_send_bytes_total", "srs_streams", "srs_clients"):
            self.assertEqual(value(samples, name), 0, name)

        received = [0]
        pub = ClientInfo(ip="10.0.0.1", type="fmle-publish", publish=True,
                         recv_bytes=lambda: received[0], send_bytes=lambda: 300)
        ctx.add_client(pub)
        player = ClientInfo(ip="10.0.0.2", type="flv-play", protocol="http",
                            recv_bytes=lambda: 50, send_bytes=lambda: 7000)
        ctx.add_client(player)
        src = publish(ctx)
        src.write(video(0, key=True))
        received[0] = 4000

        samples = scrape(ctx)
        self.assertEqual(value(samples, "srs_receive_bytes_total"), 4050)
        self.assertEqual(value(samples, "srs_send_bytes_total"), 7300)
        self.assertEqual(value(samples, "srs_streams"), 1)
        self.assertEqual(value(samples, "srs_clients"), 2)
        self.assertEqual(value(samples, "srs_clients_total"), 2)
        self.assertEqual(value(samples, "srs_clients_errs_total"), 0)

        # Clients that leave keep their bytes in the totals.
        received[0] = 5000
        ctx.remove_client(pub, error=True)
        ctx.remove_client(player)
        ctx.add_client(ClientInfo(ip="10.0.0.3"))
        samples = scrape(ctx)
        self.assertEqual(value(samples, "srs_receive_bytes_total"), 5050)
        self.assertEqual(value(samples, "srs_send_bytes_total"), 7300)
        self.assertEqual(value(samples, "srs_clients"), 1)
        self.assertEqual(value(samples, "srs_clients_total"), 3)
        self.assertEqual(value(samples, "srs_clients_errs_total"), 1)

        # A stream with neither publisher nor player is gone.
        ctx.registry.unpublish(src)
        self.assertEqual(value(scrape(ctx), "srs_streams"), 0)

    def test_protocol_connections(self):
        ctx = make_ctx()
        self.assertEqual(
            scrape(ctx)["srs_protocol_connections"], [("gauge", {"protocol": "rtmp"}, 0)]
        )
        clients = [ClientInfo(ip="1.1.1.1", protocol=p) for p in ("rtmp", "rtmp", "http", "srt")]
        for c in clients:
            ctx.add_client(c)
        samples = scrape(ctx)
        self.assertEqual(value(samples, "srs_protocol_connections", protocol="rtmp"), 2)
        self.assertEqual(value(samples, "srs_protocol_connections", protocol="http"), 1)
        self.assertEqual(value(samples, "srs_protocol_connections", protocol="srt"), 1)
        # A protocol seen once keeps its series, at 0, when its clients leave.
        ctx.remove_client(clients[2])
        samples = scrape(ctx)
        self.assertEqual(value(samples, "srs_protocol_connections", protocol="http"), 0)
        self.assertEqual(len(samples["srs_protocol_connections"]), 3)

    def test_unexpected_errors_are_counted(self):
        from srs_twisted import log

        ctx = make_ctx()
        before = value(scrape(ctx), "srs_unexpected_errors_total")
        self.assertEqual(before, log.unexpected_errors())
        self.addCleanup(log.capture([]))  # keep the report out of trial's log
        log.log_unexpected(None, "a test", RuntimeError("boom"))
        samples = scrape(ctx)
        self.assertEqual(samples["srs_unexpected_errors_total"], [("counter", {}, before + 1)])


class StreamSeriesTests(unittest.TestCase):
    def test_types_and_labels(self):
        ctx = make_ctx()
        publish(ctx, "cam1")
        samples = scrape(ctx)
        labels = {"vhost": "__defaultVhost__", "app": "live", "stream": "cam1"}
        for name, kind in STREAM_METRICS.items():
            self.assertEqual(samples[name], [(kind, labels, 0)], name)

    def test_bytes_players_and_drops(self):
        ctx = make_ctx()
        src = publish(ctx, "cam1")
        fast, slow = Sink(), Sink()
        src.subscribe(fast)
        lagging = src.subscribe(slow)
        lagging.pauseProducing()
        # Three one-second GOPs: the paused player falls more than
        # queue_length (1 s) behind and skips whole GOPs.
        for gop in range(3):
            for i in range(25):
                src.write(video(gop * 1000 + i * 40, key=(i == 0)))
                src.write(audio(gop * 1000 + i * 40))
        samples = scrape(ctx)
        labels = dict(vhost="__defaultVhost__", app="live", stream="cam1")
        self.assertEqual(value(samples, "srs_stream_recv_bytes_total", **labels), 75 * 110)
        self.assertEqual(
            value(samples, "srs_stream_send_bytes_total", **labels), sum(map(len, fast.data))
        )
        self.assertEqual(sum(map(len, fast.data)), 75 * 110)
        self.assertEqual(value(samples, "srs_stream_players", **labels), 2)
        dropped = value(samples, "srs_stream_dropped_packets_total", **labels)
        self.assertGreater(dropped, 0)
        self.assertEqual(dropped, src.stats.dropped)
        self.assertEqual(value(samples, "srs_stream_gop_length_frames", **labels), 25)

    def test_fps_from_frame_counter_deltas(self):
        ctx = make_ctx()
        clock = ctx.clock
        src = publish(ctx, "cam1")
        labels = dict(vhost="__defaultVhost__", app="live", stream="cam1")
        dts = 0
        self.assertEqual(value(scrape(ctx), "srs_stream_fps", **labels), 0)
        for second in range(1, 5):
            for i in range(25):
                src.write(video(dts, key=(i == 0)))
                dts += 40
            clock.advance(1)
            self.assertAlmostEqual(value(scrape(ctx), "srs_stream_fps", **labels), 25.0)
        # Halve the rate: the window average moves towards 12.5.
        for second in range(40):
            for i in range(12):
                src.write(video(dts))
                dts += 80
            clock.advance(1)
            fps = value(scrape(ctx), "srs_stream_fps", **labels)
        self.assertAlmostEqual(fps, 12.0)
        # Scrapes further apart than the window: the rate since the last one.
        for i in range(600):
            src.write(video(dts))
            dts += 100
        clock.advance(60)
        self.assertAlmostEqual(value(scrape(ctx), "srs_stream_fps", **labels), 10.0)
        # No publisher, no frame rate.
        src.subscribe(Sink())  # keeps the source alive after unpublish
        ctx.registry.unpublish(src)
        clock.advance(1)
        self.assertEqual(value(scrape(ctx), "srs_stream_fps", **labels), 0)

    def test_cardinality_cap(self):
        ctx = make_ctx()
        count = MAX_STREAM_SERIES + 5
        sources = [
            ctx.registry.fetch_or_create("__defaultVhost__", "live", f"s{i:05d}")
            for i in range(count)
        ]
        # The five beyond the cap publish a little each (and have a player).
        for src in sources[MAX_STREAM_SERIES:]:
            ctx.registry.publish(src, Publisher())
            src.subscribe(Sink())
            src.write(video(0, key=True, size=10))
        samples = scrape(ctx)
        self.assertEqual(value(samples, "srs_streams"), count)
        for name in STREAM_METRICS:
            self.assertEqual(len(samples[name]), MAX_STREAM_SERIES + 1, name)
        other = dict(vhost=OTHER, app=OTHER, stream=OTHER)
        self.assertEqual(value(samples, "srs_stream_recv_bytes_total", **other), 50)
        self.assertEqual(value(samples, "srs_stream_players", **other), 5)
        # The oldest streams keep series of their own.
        self.assertEqual(
            value(samples, "srs_stream_players", vhost="__defaultVhost__", app="live", stream="s00000"),
            0,
        )
        names = {labels["stream"] for _, labels, _ in samples["srs_stream_players"]}
        self.assertNotIn(f"s{MAX_STREAM_SERIES:05d}", names)

    def test_no_other_series_under_the_cap(self):
        ctx = make_ctx()
        for i in range(3):
            publish(ctx, f"s{i}")
        samples = scrape(ctx)
        names = {labels["stream"] for _, labels, _ in samples["srs_stream_players"]}
        self.assertEqual(names, {"s0", "s1", "s2"})


class RegistryTests(unittest.TestCase):
    def test_one_registry_per_context_and_none_global(self):
        a, b = make_ctx(), make_ctx()
        self.assertIs(registry_for(a), registry_for(a))
        self.assertIsNot(registry_for(a), registry_for(b))
        publish(a, "only-in-a")
        self.assertIn("srs_stream_players", scrape(a))
        self.assertNotIn("srs_stream_players", scrape(b))
        global_text = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
        self.assertNotIn("srs_build_info", global_text)


class ResourceTests(unittest.TestCase):
    def get(self, root, path: bytes):
        request = DummyRequest(path.lstrip(b"/").split(b"/"))
        child = getChildForRequest(root, request)
        body = child.render(request)
        return request, body

    def test_metrics(self):
        ctx = make_ctx()
        request, body = self.get(metrics_resource(ctx), b"/metrics")
        self.assertEqual(
            request.responseHeaders.getRawHeaders(b"content-type"),
            [exporter.CONTENT_TYPE.encode()],
        )
        names = {f.name for f in text_string_to_metric_families(body.decode())}
        self.assertIn("srs_build_info", names)

    def test_disabled_exporter_answers_1090(self):
        ctx = make_ctx("exporter { enabled off; }")
        request, body = self.get(metrics_resource(ctx), b"/metrics")
        self.assertEqual(json.loads(body), {"code": 1090})
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-type"), [b"application/json"])

    def test_other_paths_are_not_found(self):
        ctx = make_ctx()
        request, _ = self.get(metrics_resource(ctx), b"/api/v1/versions")
        self.assertEqual(request.responseCode, 404)
