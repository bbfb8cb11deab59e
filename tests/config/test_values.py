"""Values checked by type and range (issue 9 item 17): every switch, bounded number and
enumeration of the typed model, driven by the model's own declarations, so a field added
later is covered too.  Each bad value is a ConfigError at FILE:LINE:COL of the argument."""

from __future__ import annotations

import dataclasses

from twisted.trial import unittest

from srs_twisted.config import ConfigError, load_string
from srs_twisted.config import model as m

# Where each typed section lives in a config file: the text before and after its body.
SECTIONS = [
    (m.SrsConfig, "", ""),
    (m.VhostConfig, "vhost v {\n", "\n}"),
    # The keys an enabled block needs follow the tested one (the first of a name wins).
    (m.StreamCasterConfig, "stream_caster {\n",
     "\ncaster flv;\nlisten 8936;\noutput rtmp://127.0.0.1/[app]/[stream];\n}"),
    (m.IngestConfig, "vhost v {\ningest i {\n", "\n}\n}"),
    (m.TranscodeConfig, "vhost v {\ntranscode {\n", "\n}\n}"),
    (m.EngineConfig, "vhost v {\ntranscode {\nengine e {\n", "\n}\n}\n}"),
]


def typed_fields():
    """(directive path inside its section's file text, field metadata) for every checked value."""
    out = []

    def walk(cls, path, prefix, suffix):
        for f in dataclasses.fields(cls):
            meta = f.metadata
            kind = meta.get("kind")
            key = meta.get("key") or f.name
            keys = key if isinstance(key, tuple) else (key,)
            if kind == "section":
                walk(meta["cls"], path + keys, prefix, suffix)
            elif kind in ("on", "only_on", "int", "float", "str"):
                out.append((cls.__name__ + "." + f.name, path + keys, kind, meta, prefix, suffix))

    for cls, prefix, suffix in SECTIONS:
        walk(cls, (), prefix, suffix)
    return out


def conf_text(path, value, prefix, suffix):
    """The config with ``path value;`` and the line and column of the value."""
    opening = "daemon off;\n" if path == ("asprocess",) else ""  # asprocess conflicts with daemon
    for i, name in enumerate(path[:-1]):
        opening += f"{name} {{\n"
        if path[i + 1] == "https":
            opening += "enabled on;\n"  # https needs its HTTP side enabled
    closing = "\n}" * (len(path) - 1)
    head = prefix + opening
    text = head + f"{path[-1]} {value};" + closing + suffix
    if "vhost v" not in text:
        text += "\nvhost v {}"
    return text, head.count("\n") + 1, len(path[-1]) + 2


class TableTests(unittest.TestCase):
    def setUp(self):
        self.problems = []
        self.addCleanup(lambda: self.assertEqual(self.problems, []))

    def assertRejected(self, name, path, value, prefix, suffix):
        text, line, col = conf_text(path, value, prefix, suffix)
        try:
            load_string(text, path="t.conf")
        except ConfigError as e:
            if (e.path, e.line, e.col) != ("t.conf", line, col) or path[-1] not in e.message:
                self.problems.append(f"{name} {value!r}: want t.conf:{line}:{col}, got {e}")
        else:
            self.problems.append(f"{name} {value!r} accepted")

    def assertAccepted(self, name, path, value, prefix, suffix):
        text, _, _ = conf_text(path, value, prefix, suffix)
        try:
            load_string(text, path="t.conf")
        except ConfigError as e:
            self.problems.append(f"{name} {value!r} rejected: {e}")

    def test_the_table_covers_the_model(self):
        names = {name for name, *_ in typed_fields()}
        for must in ("PlayConfig.gop_cache", "PlayConfig.queue_length", "HlsConfig.hls_on_error",
                     "EngineConfig.vbitrate", "StreamCasterConfig.caster", "SipConfig.timeout"):
            self.assertIn(must, names)

    def test_switches_are_on_or_off(self):
        count = 0
        for name, path, kind, meta, prefix, suffix in typed_fields():
            if kind not in ("on", "only_on"):
                continue
            count += 1
            self.assertAccepted(name, path, "on", prefix, suffix)
            self.assertAccepted(name, path, "off", prefix, suffix)
            for bad in ("maybe", "yes", "true", "ON"):
                self.assertRejected(name, path, bad, prefix, suffix)
        self.assertGreater(count, 100)

    def test_numbers_in_range(self):
        count = 0
        for name, path, kind, meta, prefix, suffix in typed_fields():
            if kind not in ("int", "float"):
                continue
            count += 1
            self.assertRejected(name, path, "lots", prefix, suffix)
            low, high, choices = meta.get("low"), meta.get("high"), meta.get("choices")
            if choices:
                for good in choices:
                    self.assertAccepted(name, path, str(good), prefix, suffix)
                self.assertRejected(name, path, str(max(choices) + 1), prefix, suffix)
                continue
            if low is not None:
                self.assertAccepted(name, path, str(low), prefix, suffix)
                self.assertRejected(name, path, str(low - 1), prefix, suffix)
                if kind == "float":
                    self.assertRejected(name, path, str(low - 0.5), prefix, suffix)
            if high is not None:
                self.assertAccepted(name, path, str(high), prefix, suffix)
                self.assertRejected(name, path, str(high + 1), prefix, suffix)
        self.assertGreater(count, 60)

    def test_enumerations(self):
        count = 0
        for name, path, kind, meta, prefix, suffix in typed_fields():
            if kind != "str" or not meta.get("choices"):
                continue
            count += 1
            for good in meta["choices"]:
                self.assertAccepted(name, path, good, prefix, suffix)
            self.assertRejected(name, path, "bogus", prefix, suffix)
            self.assertRejected(name, path, meta["choices"][0].upper(), prefix, suffix)
        self.assertGreater(count, 15)


class ReportedCaseTests(unittest.TestCase):
    """The two values outside testing found accepted, and their messages."""

    def error(self, text, environ=None):
        with self.assertRaises(ConfigError) as ctx:
            load_string(text, environ, path="conf/x.conf")
        return ctx.exception

    def test_gop_cache_maybe(self):
        e = self.error("vhost v {\n    play {\n        gop_cache maybe;\n    }\n}\n")
        self.assertEqual(str(e), "conf/x.conf:3:19: \"gop_cache\" must be on or off, got 'maybe'")

    def test_negative_queue_length(self):
        e = self.error("vhost v {\n    play {\n        queue_length -5;\n    }\n}\n")
        self.assertEqual(str(e), "conf/x.conf:3:22: \"queue_length\" must be >= 0.0, got '-5'")

    def test_environment_values_are_checked_too(self):
        e = self.error("vhost v {}", {"SRS_VHOST_PLAY_GOP_CACHE": "maybe"})
        self.assertEqual(e.path, "<env SRS_VHOST_PLAY_GOP_CACHE>")
        e = self.error("vhost v {}", {"SRS_VHOST_PLAY_QUEUE_LENGTH": "-5"})
        self.assertEqual(e.path, "<env SRS_VHOST_PLAY_QUEUE_LENGTH>")
        e = self.error("vhost v {}", {"SRS_LOG_LEVEL": "loud"})
        self.assertIn("must be one of verbose, info, trace, warn, error", e.message)

    def test_what_srs_clamps_is_still_accepted(self):
        v = load_string("vhost v { play { mw_msgs 500; } rtc { opus_bitrate 1; pli_for_rtmp 99; } }").vhost("v")
        self.assertEqual((v.play.mw_msgs, v.rtc.opus_bitrate, v.rtc.pli_for_rtmp), (128, 48000, 6.0))
        self.assertEqual(load_string("tcmalloc_release_rate -3; vhost v {}").tcmalloc_release_rate, 0.0)
        # SRT's maxbw takes -1 (unlimited); numbers keep SRS's leading-number reading.
        self.assertEqual(load_string("srt_server { maxbw -1; } vhost v {}").srt_server.maxbw, -1)
        self.assertEqual(load_string("vhost v { play { queue_length 10s; } }").vhost("v").play.queue_length, 10.0)
