"""FFmpeg argument lists, built as SRS's SrsFFMPEG builds them."""

from __future__ import annotations

import calendar
import dataclasses

from twisted.trial import unittest

from srs_twisted.config import load_string
from srs_twisted.process import ffmpeg as ff

IN = "rtmp://127.0.0.1:1935/live?vhost=__defaultVhost__/livestream"
OUT = "rtmp://127.0.0.1:1935/live/livestream_ff?vhost=__defaultVhost__"


def engine(body: str, name: str = "ff"):
    """An EngineConfig parsed from an ``engine NAME { body }`` block."""
    cfg = load_string(f"vhost __defaultVhost__ {{ transcode {{ enabled on; engine {name} {{ {body} }} }} }}")
    return cfg.vhost("__defaultVhost__").transcodes[0].engines[0]


def ingest(body: str):
    cfg = load_string(f"vhost __defaultVhost__ {{ ingest livestream {{ {body} }} }}")
    return cfg.vhost("__defaultVhost__").ingests[0]


FULL = """
    enabled on;
    perfile { re; rtsp_transport tcp; }
    iformat flv;
    vfilter { i ./doc/ffmpeg-logo.png; filter_complex overlay=10:10; }
    vcodec libx264; vbitrate 1500; vfps 25; vwidth 768; vheight 320; vthreads 12;
    vprofile main; vpreset medium;
    vparams { t 100; coder 1; b_strategy 2; bf 3; refs 10; }
    acodec libfdk_aac; abitrate 70; asample_rate 44100; achannels 2;
    aparams { profile:a aac_low; }
    oformat flv;
    output rtmp://127.0.0.1:[port]/[app]/[stream]_[engine]?vhost=[vhost];
"""

X264 = "enabled on; vcodec libx264; vprofile baseline; vpreset superfast; output o;"


class EngineArgsTests(unittest.TestCase):
    def test_full_conf_example_engine(self):
        args = ff.ffmpeg_args("ffmpeg", IN, OUT, engine(FULL))
        self.assertEqual(
            args,
            [
                "ffmpeg",
                "-re", "-rtsp_transport", "tcp",
                "-f", "flv", "-i", IN,
                "-i", "./doc/ffmpeg-logo.png", "-filter_complex", "overlay=10:10",
                "-vcodec", "libx264", "-b:v", "1500000", "-r", "25.00", "-s", "768x320", "-aspect", "768:320",
                "-threads", "12", "-profile:v", "main", "-preset", "medium",
                "-t", "100", "-coder", "1", "-b_strategy", "2", "-bf", "3", "-refs", "10",
                "-acodec", "libfdk_aac", "-b:a", "70000", "-ar", "44100", "-ac", "2",
                "-profile:a", "aac_low",
                "-f", "flv", "-y", OUT,
            ],
        )

    def test_copy_both(self):
        args = ff.ffmpeg_args("ffmpeg", IN, OUT, engine("enabled on; vcodec copy; acodec copy; output o;"))
        self.assertEqual(args, ["ffmpeg", "-f", "flv", "-i", IN, "-vcodec", "copy", "-acodec", "copy", "-f", "flv", "-y", OUT])

    def test_copy_ignores_video_options(self):
        e = engine("enabled on; vcodec copy; vbitrate 300; vwidth 320; vheight 240; vparams { g 10; } acodec copy; output o;")
        args = ff.ffmpeg_args("ffmpeg", IN, OUT, e)
        self.assertEqual(args, ["ffmpeg", "-f", "flv", "-i", IN, "-vcodec", "copy", "-acodec", "copy", "-f", "flv", "-y", OUT])

    def test_audio_copy_keeps_only_adtstoasc(self):
        e = engine("enabled on; vcodec copy; acodec copy; aparams { profile:a aac_low; bsf:a aac_adtstoasc; } output o;")
        self.assertEqual(
            ff.ffmpeg_args("ffmpeg", IN, OUT, e),
            ["ffmpeg", "-f", "flv", "-i", IN, "-vcodec", "copy", "-acodec", "copy", "-bsf:a", "aac_adtstoasc",
             "-f", "flv", "-y", OUT],
        )

    def test_audio_copy_drops_other_bitstream_filters(self):
        e = engine("enabled on; vcodec copy; acodec copy; aparams { bsf:a mp3decomp; } output o;")
        self.assertNotIn("-bsf:a", ff.ffmpeg_args("ffmpeg", IN, OUT, e))

    def test_no_video(self):
        e = engine("enabled on; vcodec vn; vbitrate 300; acodec aac; abitrate 64; output o;")
        args = ff.ffmpeg_args("ffmpeg", IN, OUT, e)
        self.assertEqual(args, ["ffmpeg", "-f", "flv", "-i", IN, "-vn", "-acodec", "aac", "-b:a", "64000", "-f", "flv", "-y", OUT])

    def test_no_audio(self):
        e = engine("enabled on; vcodec copy; acodec an; abitrate 64; aparams { bsf:a aac_adtstoasc; } output o;")
        args = ff.ffmpeg_args("ffmpeg", IN, OUT, e)
        self.assertEqual(args, ["ffmpeg", "-f", "flv", "-i", IN, "-vcodec", "copy", "-an", "-f", "flv", "-y", OUT])

    def test_no_video_and_no_audio_is_refused(self):
        e = engine("enabled on; vcodec vn; acodec an; output o;")
        with self.assertRaisesRegex(ff.EngineError, "video and audio disabled"):
            ff.ffmpeg_args("ffmpeg", IN, OUT, e)

    def test_x264_needs_profile_and_preset(self):
        with self.assertRaisesRegex(ff.EngineError, "invalid vprofile"):
            ff.ffmpeg_args("ffmpeg", IN, OUT, engine("enabled on; vcodec libx264; vpreset fast; acodec copy; output o;"))
        with self.assertRaisesRegex(ff.EngineError, "invalid vpreset"):
            ff.ffmpeg_args("ffmpeg", IN, OUT, engine("enabled on; vcodec libx264; vprofile main; acodec copy; output o;"))

    def test_png_needs_no_profile(self):
        e = engine(
            "enabled on; iformat flv; vfilter { vf fps=1; } vcodec png; vparams { vframes 6; } acodec an;"
            " oformat image2; output ./objs/nginx/html/[app]/[stream]-%03d.png;",
            "snapshot",
        )
        out = "./objs/nginx/html/live/livestream-%03d.png"
        self.assertEqual(
            ff.ffmpeg_args("ffmpeg", IN, out, e),
            ["ffmpeg", "-f", "flv", "-i", IN, "-vf", "fps=1", "-vcodec", "png", "-threads", "1", "-vframes", "6",
             "-an", "-f", "image2", "-y", out],
        )

    def test_mjpeg_needs_no_profile_either(self):
        e = engine("enabled on; vcodec mjpeg; vparams { vframes 1; } acodec an; oformat image2; output a.jpg;")
        self.assertIn("mjpeg", ff.ffmpeg_args("ffmpeg", IN, "a.jpg", e))

    def test_sizes_are_made_even_and_need_both(self):
        args = ff.ffmpeg_args("ffmpeg", IN, OUT, engine(X264.replace("output", "vwidth 161; vheight 121; output")))
        self.assertEqual(args[args.index("-s") + 1], "160x120")
        self.assertEqual(args[args.index("-aspect") + 1], "160:120")
        args = ff.ffmpeg_args("ffmpeg", IN, OUT, engine(X264.replace("output", "vwidth 160; output")))
        self.assertNotIn("-s", args)
        self.assertNotIn("-aspect", args)

    def test_fractional_fps_and_zero_values_are_left_out(self):
        args = ff.ffmpeg_args("ffmpeg", IN, OUT, engine(X264.replace("output", "vfps 29.97; vbitrate 0; vthreads 0; output")))
        self.assertEqual(args[args.index("-r") + 1], "29.97")
        self.assertNotIn("-b:v", args)
        self.assertNotIn("-threads", args)

    def test_vthreads_defaults_to_one(self):
        args = ff.ffmpeg_args("ffmpeg", IN, OUT, engine(X264))
        self.assertEqual(args[args.index("-threads") + 1], "1")

    def test_vparams_and_aparams_keep_dashes_and_flags(self):
        e = engine(X264.replace("output", "vparams { -g 50; tune zerolatency; } acodec aac; aparams { strict -2; } output"))
        args = ff.ffmpeg_args("ffmpeg", IN, OUT, e)
        self.assertEqual(args[args.index("-preset") + 2 : args.index("-acodec")], ["-g", "50", "-tune", "zerolatency"])
        self.assertEqual(args[args.index("-acodec") + 2 : args.index("-y") - 2], ["-strict", "-2"])

    def test_iformat_off_and_oformat_off(self):
        e = engine("enabled on; iformat off; vcodec copy; acodec copy; oformat off; output o;")
        self.assertEqual(
            ff.ffmpeg_args("ffmpeg", IN, "out.flv", e),
            ["ffmpeg", "-i", IN, "-vcodec", "copy", "-acodec", "copy", "-y", "out.flv"],
        )

    def test_iformat_only_for_rtmp_input(self):
        e = engine("enabled on; iformat mpegts; vcodec copy; acodec copy; output o;")
        self.assertEqual(ff.ffmpeg_args("ffmpeg", "udp://1.2.3.4:1234", OUT, e)[1:3], ["-i", "udp://1.2.3.4:1234"])
        self.assertEqual(ff.ffmpeg_args("ffmpeg", IN, OUT, e)[1:3], ["-f", "mpegts"])

    def test_audio_checks(self):
        # The config check already refuses achannels 3 and negative numbers; an engine
        # made in code is checked again when its command line is built, as SRS does.
        aac = engine("enabled on; vcodec copy; acodec aac; output o;")
        for values, message in (
            ({"achannels": 3}, "invalid achannels"),
            ({"abitrate": -1}, "invalid abitrate"),
            ({"asample_rate": -1}, "invalid sample rate"),
            ({"acodec": "libaacplus", "abitrate": 80}, r"must in \[16, 72\]"),
        ):
            with self.assertRaisesRegex(ff.EngineError, message):
                ff.ffmpeg_args("ffmpeg", IN, OUT, dataclasses.replace(aac, **values))

    def test_negative_video_values(self):
        with self.assertRaisesRegex(ff.EngineError, "invalid vbitrate"):
            ff.ffmpeg_args("ffmpeg", IN, OUT, dataclasses.replace(engine(X264), vbitrate=-5))

    def test_empty_output(self):
        with self.assertRaisesRegex(ff.EngineError, "empty output"):
            ff.ffmpeg_args("ffmpeg", IN, "", engine("enabled on; vcodec copy; acodec copy;"))

    def test_copy_mode_is_srs_initialize_copy(self):
        self.assertEqual(
            ff.ffmpeg_args("ffmpeg", "a.flv", OUT, None, iparams=["-loglevel", "info", "", "-re"], copy=True),
            ["ffmpeg", "-loglevel", "info", "-re", "-i", "a.flv", "-vcodec", "copy", "-acodec", "copy", "-f", "flv", "-y", OUT],
        )


class VariableTests(unittest.TestCase):
    def test_transcode_input_is_srs_form(self):
        self.assertEqual(ff.transcode_input(1935, "v.com", "live", "s"), "rtmp://127.0.0.1:1935/live?vhost=v.com/s")

    def test_transcode_output_variables(self):
        out = ff.transcode_output(
            "rtmp://127.0.0.1:[port]/[app]/[stream]_[engine][param]",
            vhost="v", port=19350, app="live", stream="s", param="?token=x", engine="hd",
        )
        self.assertEqual(out, "rtmp://127.0.0.1:19350/live/s_hd?token=x")
        out = ff.transcode_output(
            "rtmp://127.0.0.1:[port]/[app]?vhost=[vhost]/[stream]_[engine]",
            vhost="__defaultVhost__", port=1935, app="live", stream="s", engine="",
        )
        self.assertEqual(out, "rtmp://127.0.0.1:1935/live?vhost=__defaultVhost__/s_")

    def test_dates(self):
        when = calendar.timegm((2024, 3, 9, 7, 5, 4)) + 0.123
        out = ff.build_timestamp("[2006]-[01]-[02]_[15].[04].[05]_[999]/[timestamp]", when, utc=True)
        self.assertEqual(out, f"2024-03-09_07.05.04_123/{int(when * 1000)}")
        self.assertEqual(ff.build_timestamp("no vars", when), "no vars")

    def test_ingest_output_drops_default_vhost(self):
        for template, expected in (
            ("rtmp://127.0.0.1:[port]/live/livestream?vhost=[vhost]", "rtmp://127.0.0.1:1935/live/livestream"),
            ("rtmp://127.0.0.1:[port]/live?vhost=[vhost]/livestream", "rtmp://127.0.0.1:1935/live/livestream"),
            ("rtmp://127.0.0.1:[port]/live/s?vhost=[vhost]&k=v", "rtmp://127.0.0.1:1935/live/s?k=v"),
        ):
            self.assertEqual(ff.ingest_output(template, vhost="__defaultVhost__", port=1935), expected)
        self.assertEqual(
            ff.ingest_output("rtmp://127.0.0.1:[port]/live?vhost=[vhost]/s", vhost="v.com", port=1936),
            "rtmp://127.0.0.1:1936/live?vhost=v.com/s",
        )

    def test_ingest_output_leaves_app_and_stream_alone(self):
        # SRS substitutes only [vhost], [port] and dates in an ingest output.
        self.assertEqual(
            ff.ingest_output("rtmp://h:[port]/[app]/[stream]", vhost="v", port=1), "rtmp://h:1/[app]/[stream]"
        )

    def test_rtmp_identity(self):
        self.assertEqual(ff.rtmp_identity("rtmp://127.0.0.1:1935/live?vhost=v/s"), ("v", "live", "s"))
        self.assertEqual(ff.rtmp_identity("rtmp://127.0.0.1:1935/live/s_ff?vhost=v&a=b"), ("v", "live", "s_ff"))
        self.assertEqual(ff.rtmp_identity("rtmp://example.com/live/s"), ("example.com", "live", "s"))
        self.assertIsNone(ff.rtmp_identity("./objs/a.png"))

    def test_rtmp_endpoint(self):
        cfg = lambda *listen: type("C", (), {"listen": list(listen)})()  # noqa: E731
        self.assertEqual(ff.rtmp_endpoint(cfg("1935")), ("127.0.0.1", 1935))
        self.assertEqual(ff.rtmp_endpoint(cfg("0.0.0.0:1936", "1937")), ("127.0.0.1", 1936))
        self.assertEqual(ff.rtmp_endpoint(cfg("10.0.0.5:1938")), ("10.0.0.5", 1938))
        self.assertEqual(ff.rtmp_endpoint(cfg("[::1]:1939")), ("[::1]", 1939))
        self.assertEqual(ff.rtmp_endpoint(cfg("[::]:1940")), ("127.0.0.1", 1940))

    def test_log_file_names(self):
        self.assertEqual(ff.log_file_path("./objs", "encoder", "v", "live", "s", "hd"), "./objs/ffmpeg-encoder-v-live-s-hd.log")
        self.assertEqual(ff.log_file_path("./objs", "encoder", "v", "live", "s"), "./objs/ffmpeg-encoder-v-live-s.log")
        self.assertEqual(ff.log_file_path("/var/log", "ingest", "v", "a/b", "s"), "/var/log/ffmpeg-ingest-v-a-b-s.log")
        self.assertEqual(ff.log_file_path("/dev/null", "ingest", "v", "a", "s"), "")


class JobTests(unittest.TestCase):
    def test_transcode_job(self):
        job = ff.transcode_job(
            "/usr/bin/ffmpeg", engine(FULL), vhost="__defaultVhost__", app="live", stream="livestream",
            port=1935, ff_log_dir="./objs",
        )
        self.assertEqual(job.output, "rtmp://127.0.0.1:1935/live/livestream_ff?vhost=__defaultVhost__")
        self.assertEqual(job.input, IN)
        self.assertEqual(job.argv[0], "/usr/bin/ffmpeg")
        self.assertEqual(job.argv[-2:], ["-y", job.output])
        self.assertEqual(job.log_file, "./objs/ffmpeg-encoder-__defaultVhost__-live-livestream-ff.log")

    def test_ingest_file_copy_loops(self):
        ing = ingest(
            "enabled on; input { type file; url ./doc/source.flv; } ffmpeg ./objs/ffmpeg/bin/ffmpeg;"
            " engine { enabled off; output rtmp://127.0.0.1:[port]/live?vhost=[vhost]/livestream; }"
        )
        job = ff.ingest_job("ffmpeg", ing, ing.engines[0], vhost="__defaultVhost__", port=1935, ff_log_dir="./objs")
        out = "rtmp://127.0.0.1:1935/live/livestream"
        self.assertEqual(
            job.argv,
            ["ffmpeg", "-loglevel", "info", "-re", "-stream_loop", "-1", "-i", "./doc/source.flv",
             "-vcodec", "copy", "-acodec", "copy", "-f", "flv", "-y", out],
        )
        self.assertEqual(job.log_file, "./objs/ffmpeg-ingest-__defaultVhost__-live-livestream.log")
        job = ff.ingest_job("ffmpeg", ing, ing.engines[0], vhost="__defaultVhost__", port=1935, loop_files=False)
        self.assertNotIn("-stream_loop", job.argv)
        self.assertEqual(job.log_file, "")

    def test_ingest_stream_is_not_looped(self):
        ing = ingest("enabled on; input { type stream; url rtmp://a/b/c; } engine { output rtmp://127.0.0.1:[port]/live/x; }")
        job = ff.ingest_job("ffmpeg", ing, ing.engines[0], vhost="v", port=1935, ff_log_level="warning")
        self.assertEqual(job.argv[:6], ["ffmpeg", "-loglevel", "warning", "-re", "-i", "rtmp://a/b/c"])

    def test_ingest_engine_needs_both_codecs_to_transcode(self):
        ing = ingest(
            "enabled on; input { type file; url a.flv; }"
            " engine { enabled on; vcodec libx264; output rtmp://127.0.0.1:[port]/live/x; }"
        )
        job = ff.ingest_job("ffmpeg", ing, ing.engines[0], vhost="v", port=1935)
        self.assertEqual(job.argv[job.argv.index("-vcodec") + 1], "copy")

    def test_ingest_with_transcode_engine(self):
        ing = ingest(
            "enabled on; input { type file; url a.flv; }"
            " engine { enabled on; perfile { fflags +genpts; } iformat flv; vcodec libx264; vprofile main; vpreset fast;"
            " vwidth 160; vheight 120; acodec aac; oformat flv; output rtmp://127.0.0.1:[port]/live/x; }"
        )
        job = ff.ingest_job("ffmpeg", ing, ing.engines[0], vhost="v", port=1935, ff_log_level="")
        self.assertEqual(
            job.argv,
            ["ffmpeg", "-re", "-stream_loop", "-1", "-fflags", "+genpts", "-i", "a.flv",
             "-vcodec", "libx264", "-s", "160x120", "-aspect", "160:120", "-threads", "1",
             "-profile:v", "main", "-preset", "fast", "-acodec", "aac", "-f", "flv", "-y",
             "rtmp://127.0.0.1:1935/live/x"],
        )

    def test_ingest_errors(self):
        ing = ingest("enabled on; input { type file; url a; } engine { output rtmp://h/a/b; }")
        ing = dataclasses.replace(ing, input=dataclasses.replace(ing.input, type="device"))  # config refuses it
        with self.assertRaisesRegex(ff.EngineError, "type=device"):
            ff.ingest_job("ffmpeg", ing, ing.engines[0], vhost="v")
        ing = ingest("enabled on; input { type file; } engine { output rtmp://h/a/b; }")
        with self.assertRaisesRegex(ff.EngineError, "empty intput url"):
            ff.ingest_job("ffmpeg", ing, ing.engines[0], vhost="v")
        ing = ingest("enabled on; input { type file; url a.flv; }")
        with self.assertRaisesRegex(ff.EngineError, "empty output url"):
            ff.ingest_job("ffmpeg", ing, None, vhost="v")


class ExecTests(unittest.TestCase):
    values = dict(
        vhost="__defaultVhost__", port=1935, app="live", stream="s", tc_url="rtmp://example.com/live",
        swf_url="swf", page_url="page", host="example.com", param="?token=1",
    )

    def test_exec_variables(self):
        self.assertEqual(
            ff.exec_vars("[vhost]|[port]|[app]|[stream]|[tcUrl]|[swfUrl]|[pageUrl]|[engine]|[param]", **self.values),
            "__defaultVhost__|1935|live|s|rtmp://example.com/live|swf|page|[engine]|[param]",
        )

    def test_exec_url(self):
        self.assertEqual(ff.exec_vars("[url]", **self.values), "rtmp://example.com:1935/live/s?token=1&vhost=example.com")
        values = dict(self.values, host="127.0.0.1", param="")
        self.assertEqual(ff.exec_vars("[url]", **values), "rtmp://127.0.0.1:1935/live/s")
        values = dict(self.values, vhost="v.com", param="")
        self.assertEqual(ff.exec_vars("[url]", **values), "rtmp://example.com:1935/live/s?vhost=v.com")

    def test_redirects(self):
        cases = [
            (["a", "-x", "1>/tmp/o"], (["a", "-x"], "/tmp/o", "")),
            (["a", ">/tmp/o"], (["a"], "/tmp/o", "")),
            (["a", ">", "/tmp/o", "2>", "/tmp/e"], (["a"], "/tmp/o", "/tmp/e")),
            (["a", "1", ">", "/tmp/o", "2", ">/tmp/e"], (["a"], "/tmp/o", "/tmp/e")),
            (["a", ">/tmp/o", "2>&1"], (["a"], "/tmp/o", "/tmp/o")),
            (["a", "x>y"], (["a", "x>y"], "", "")),
            (["a", "1", "2"], (["a", "1", "2"], "", "")),
        ]
        for words, expected in cases:
            self.assertEqual(ff.split_redirects(words), expected, words)


class FindTests(unittest.TestCase):
    def test_configured_executable_wins(self):
        found = ff.find_ffmpeg("/opt/ff", which=lambda n: "/usr/bin/ffmpeg", bundled=lambda: "/b", executable=lambda p: True)
        self.assertEqual(found, "/opt/ff")

    def test_missing_configured_falls_back_to_path_then_bundled(self):
        no = lambda p: False  # noqa: E731
        self.assertEqual(
            ff.find_ffmpeg("./objs/ffmpeg/bin/ffmpeg", which=lambda n: "/usr/bin/ffmpeg", bundled=lambda: "/b", executable=no),
            "/usr/bin/ffmpeg",
        )
        self.assertEqual(ff.find_ffmpeg("", which=lambda n: None, bundled=lambda: "/b", executable=no), "/b")
        self.assertEqual(
            ff.find_ffmpeg("ffmpeg6", which=lambda n: "/x/ffmpeg6" if n == "ffmpeg6" else None, bundled=lambda: None,
                           executable=no),
            "/x/ffmpeg6",
        )
        with self.assertRaises(ff.FFmpegNotFound):
            ff.find_ffmpeg("", which=lambda n: None, bundled=lambda: None, executable=no)

    def test_a_broken_bundled_ffmpeg_is_logged_not_swallowed(self):
        import imageio_ffmpeg

        from srs_twisted import log

        def broken():
            raise RuntimeError("No ffmpeg exe could be found")

        self.patch(imageio_ffmpeg, "get_ffmpeg_exe", broken)
        events = []
        self.addCleanup(log.capture(events))
        self.assertIsNone(ff._imageio_ffmpeg())
        self.assertEqual(
            [msg for _, _, msg in events],
            ["imageio-ffmpeg has no usable FFmpeg: RuntimeError: No ffmpeg exe could be found"],
        )
