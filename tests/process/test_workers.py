"""Transcode, exec and ingest observers with a fake spawner and task.Clock."""

from __future__ import annotations

import signal

from twisted.internet import task
from twisted.trial import unittest

from srs_twisted import log
from srs_twisted.config import load_string
from srs_twisted.context import ClientInfo, ServerContext
from srs_twisted.process.workers import ServerWorkers, matching_transcodes
from srs_twisted.url import StreamRequest

from .fakes import FakeSpawner

DV = "__defaultVhost__"

TRANSCODE = """
vhost __defaultVhost__ {
    transcode live {
        enabled on;
        ffmpeg ./objs/ffmpeg/bin/ffmpeg;
        engine ff {
            enabled on;
            vcodec libx264; vwidth 160; vheight 120; vprofile baseline; vpreset superfast;
            acodec aac;
            output rtmp://127.0.0.1:[port]/[app]/[stream]_[engine]?vhost=[vhost];
        }
        engine off { enabled off; vcodec copy; acodec copy; output rtmp://127.0.0.1:[port]/[app]/[stream]_off; }
    }
}
"""


class Producer:
    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def stopProducing(self):
        pass


class Base(unittest.TestCase):
    conf = "vhost __defaultVhost__ {}"

    def setUp(self):
        self.clock = task.Clock()
        self.spawner = FakeSpawner()
        self.events = []
        self.addCleanup(log.capture(self.events))
        self.ctx = ServerContext(load_string(f"listen 127.0.0.1:19350;\nff_log_dir /dev/null;\n{self.conf}"), self.clock)
        self.workers = ServerWorkers(self.ctx, self.spawner)
        for finder in (self.workers.transcode, self.workers.ingest, self.workers.snapshot):
            finder.find = lambda configured: "/usr/bin/ffmpeg"
        self.ctx.registry.observers.extend(self.workers.observers)

    def publish(self, stream="livestream", app="live", vhost=DV, param="", client_id="cid00001", settle=True):
        source = self.ctx.registry.fetch_or_create(vhost, app, stream)
        self.ctx.registry.publish(source, Producer())
        req = StreamRequest(host="127.0.0.1", port=19350, vhost=vhost, app=app, stream=stream, param=param,
                            tc_url=f"rtmp://127.0.0.1:19350/{app}")
        source.publisher_info = ClientInfo(ip="127.0.0.1", id=client_id, request=req, page_url="http://p", swf_url="s")
        if settle:
            self.clock.advance(0)
        return source

    def unpublish(self, source):
        self.ctx.registry.unpublish(source)

    def reap_all(self, sig=signal.SIGTERM):
        for p in self.spawner.alive():
            if sig in p.signals:
                p.exit(signal=sig)

    def messages(self):
        return [e[2] for e in self.events]

    def reload(self, conf):
        self.ctx.config = load_string(f"listen 127.0.0.1:19350;\nff_log_dir /dev/null;\n{conf}")
        return self.workers.reload()


class TranscodeTests(Base):
    conf = TRANSCODE

    def test_publish_starts_one_ffmpeg_per_enabled_engine(self):
        self.publish()
        self.assertEqual(
            self.spawner.argvs(),
            [[
                "/usr/bin/ffmpeg", "-f", "flv", "-i", "rtmp://127.0.0.1:19350/live?vhost=__defaultVhost__/livestream",
                "-vcodec", "libx264", "-s", "160x120", "-aspect", "160:120", "-threads", "1",
                "-profile:v", "baseline", "-preset", "superfast", "-acodec", "aac",
                "-f", "flv", "-y", "rtmp://127.0.0.1:19350/live/livestream_ff?vhost=__defaultVhost__",
            ]],
        )

    def test_children_log_with_the_publisher_cid(self):
        self.publish(client_id="pubcid42")
        self.spawner.last.err(b"frame=1\n")
        self.assertIn("pubcid42", [e[1] for e in self.events if "frame=1" in e[2]])

    def test_unpublish_stops_them(self):
        source = self.publish()
        p = self.spawner.last
        d = self.workers.transcode.source_unpublished(source)
        self.assertEqual(p.signals, [signal.SIGTERM])
        p.exit(signal=signal.SIGTERM)
        self.successResultOf(d)
        self.assertEqual(self.workers.supervisors, set())

    def test_unpublish_before_start_starts_nothing(self):
        source = self.publish(settle=False)
        self.unpublish(source)
        self.clock.advance(1)
        self.assertEqual(self.spawner.processes, [])

    def test_other_app_is_not_transcoded(self):
        self.publish(app="other")
        self.assertEqual(self.spawner.processes, [])

    def test_loop_transcoded_stream_is_not_transcoded_again(self):
        self.publish()
        self.publish(stream="livestream_ff")
        self.assertEqual(len(self.spawner.processes), 1)
        self.assertTrue(any("not transcoded again" in m for m in self.messages()))

    def test_after_the_origin_stops_its_output_name_is_free_again(self):
        origin = self.publish()
        self.unpublish(origin)
        self.reap_all()
        self.publish(stream="livestream_ff")
        self.assertEqual(len(self.spawner.processes), 2)

    def test_ffmpeg_restarts_while_published(self):
        self.publish()
        self.spawner.last.exit(signal=signal.SIGKILL)
        self.clock.advance(1)
        self.assertEqual(len(self.spawner.processes), 2)
        self.assertTrue(self.spawner.last.alive)

    def test_param_is_passed(self):
        self.reload(TRANSCODE.replace("[stream]_[engine]?vhost=[vhost]", "[stream]_[engine][param]"))
        self.publish(param="?token=abc")
        self.assertEqual(self.spawner.last.args[-1], "rtmp://127.0.0.1:19350/live/livestream_ff?token=abc")

    def test_bad_engine_is_logged_and_skipped(self):
        self.reload(TRANSCODE.replace("vprofile baseline;", ""))
        source = self.publish()
        self.assertEqual(self.spawner.processes, [])
        self.assertTrue(any("invalid vprofile" in m for m in self.messages()))
        self.assertTrue(source.active)

    def test_reload_restarts_only_on_change(self):
        self.publish()
        self.successResultOf(self.reload(TRANSCODE))
        self.assertEqual(len(self.spawner.processes), 1)
        self.assertEqual(self.spawner.last.signals, [])
        d = self.reload(TRANSCODE.replace("vwidth 160; vheight 120;", "vwidth 320; vheight 240;"))
        self.assertEqual(self.spawner.last.signals, [signal.SIGTERM])
        self.reap_all()
        self.successResultOf(d)
        self.assertEqual(len(self.spawner.processes), 2)
        self.assertIn("320x240", self.spawner.last.args)

    def test_reload_that_disables_stops(self):
        self.publish()
        d = self.reload(TRANSCODE.replace("transcode live {\n        enabled on;", "transcode live {\n        enabled off;"))
        self.reap_all()
        self.successResultOf(d)
        self.assertEqual(self.spawner.alive(), [])

    def test_scope_order(self):
        conf = load_string(
            "vhost v { transcode live/s { enabled on; } transcode { enabled on; } transcode live { enabled on; }"
            " transcode other { enabled on; } }"
        ).vhost("v")
        self.assertEqual([t.scope for t in matching_transcodes(conf, "live", "s")], ["", "live", "live/s"])

    def test_shutdown_stops_everything_and_starts_nothing_more(self):
        self.workers.startService()
        self.publish()
        d = self.workers.stopService()
        self.assertEqual(self.spawner.last.signals, [signal.SIGTERM])
        self.clock.advance(1)
        self.assertEqual(self.spawner.last.signals, [signal.SIGTERM, signal.SIGKILL])
        self.spawner.last.exit(signal=signal.SIGKILL)
        self.successResultOf(d)
        self.publish(stream="late")
        self.assertEqual(len(self.spawner.processes), 1)


EXEC = """
vhost __defaultVhost__ {
    exec {
        enabled on;
        publish ./objs/ffmpeg/bin/ffmpeg -f flv -i [url] -c copy -y ./[stream].flv;
        publish /bin/logger [vhost] [app] [stream] [tcUrl] [pageUrl] [swfUrl] [port] 1>/tmp/[stream].out;
    }
}
"""


class ExecTests(Base):
    conf = EXEC

    def test_publish_runs_each_line_with_variables(self):
        self.publish()
        first, second = self.spawner.processes
        self.assertEqual(
            first.args,
            ["./objs/ffmpeg/bin/ffmpeg", "-f", "flv", "-i", "rtmp://127.0.0.1:19350/live/livestream", "-c", "copy",
             "-y", "./livestream.flv"],
        )
        self.assertEqual(
            second.args,
            ["/bin/logger", DV, "live", "livestream", "rtmp://127.0.0.1:19350/live", "http://p", "s", "19350"],
        )
        self.assertIsInstance(second.childFDs[1], int)  # stdout to /tmp/livestream.out

    def test_unpublish_kills_them(self):
        source = self.publish()
        self.unpublish(source)
        self.assertEqual([p.signals for p in self.spawner.processes], [[signal.SIGTERM]] * 2)
        self.clock.advance(1)
        self.assertEqual([p.signals for p in self.spawner.processes], [[signal.SIGTERM, signal.SIGKILL]] * 2)

    def test_disabled_exec_runs_nothing(self):
        self.reload(EXEC.replace("enabled on;", "enabled off;"))
        self.publish()
        self.assertEqual(self.spawner.processes, [])

    def test_exited_command_is_restarted(self):
        self.publish()
        self.spawner.processes[1].exit(0)
        self.clock.advance(1)
        self.assertEqual(len(self.spawner.processes), 3)


INGEST = """
vhost __defaultVhost__ {
    ingest livestream {
        enabled on;
        input { type file; url ./doc/source.flv; }
        ffmpeg ./objs/ffmpeg/bin/ffmpeg;
        engine { enabled off; output rtmp://127.0.0.1:[port]/live?vhost=[vhost]/livestream; }
    }
    ingest off { enabled off; input { type file; url a.flv; } engine { output rtmp://127.0.0.1:[port]/live/off; } }
    ingest two {
        enabled on;
        input { type stream; url rtmp://127.0.0.1:[port]/live/src; }
        engine a { enabled off; output rtmp://127.0.0.1:[port]/live/a; }
        engine b { enabled off; output rtmp://127.0.0.1:[port]/live/b; }
    }
}
vhost disabled.com { enabled off; ingest x { enabled on; input { type file; url a.flv; } engine { output rtmp://h/a/b; } } }
"""


class IngestTests(Base):
    conf = INGEST

    def test_start_runs_every_enabled_ingest_engine(self):
        self.workers.startService()
        self.assertEqual(
            self.spawner.argvs()[0],
            ["/usr/bin/ffmpeg", "-loglevel", "info", "-re", "-stream_loop", "-1", "-i", "./doc/source.flv",
             "-vcodec", "copy", "-acodec", "copy", "-f", "flv", "-y", "rtmp://127.0.0.1:19350/live/livestream"],
        )
        self.assertEqual([a[-1] for a in self.spawner.argvs()[1:]], ["rtmp://127.0.0.1:19350/live/a", "rtmp://127.0.0.1:19350/live/b"])
        # [port] is not replaced in an ingest input (SRS replaces it in the output only).
        self.assertIn("rtmp://127.0.0.1:[port]/live/src", self.spawner.argvs()[1])

    def test_ingest_is_restarted(self):
        self.workers.startService()
        self.spawner.processes[0].exit(1)
        self.clock.advance(1)
        self.assertEqual(len(self.spawner.processes), 4)

    def test_stop_service_stops_ingests(self):
        self.workers.startService()
        d = self.workers.stopService()
        self.reap_all()
        self.successResultOf(d)
        self.assertEqual(self.spawner.alive(), [])

    def test_reload_restarts_changed_ingests_only(self):
        self.workers.startService()
        d = self.reload(INGEST.replace("./doc/source.flv", "./doc/other.flv"))
        self.assertEqual([bool(p.signals) for p in self.spawner.processes], [True, False, False])
        self.reap_all()
        self.successResultOf(d)
        self.assertEqual(len(self.spawner.processes), 4)
        self.assertIn("./doc/other.flv", self.spawner.last.args)

    def test_reload_removing_an_ingest_stops_it(self):
        self.workers.startService()
        d = self.reload("vhost __defaultVhost__ {}")
        self.reap_all()
        self.successResultOf(d)
        self.assertEqual(self.spawner.alive(), [])
        self.assertEqual(len(self.spawner.processes), 3)

    def test_bad_ingest_is_logged(self):
        self.reload("vhost __defaultVhost__ { ingest bad { enabled on; input { type file; } engine { output rtmp://h/a/b; } } }")
        self.workers.startService()
        self.assertEqual(self.spawner.processes, [])
        self.assertTrue(any("empty intput url" in m for m in self.messages()))
