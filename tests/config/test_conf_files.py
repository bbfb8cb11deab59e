"""Every sample under conf/ loads and checks, and conf/full.conf shows every directive."""

import glob
import os

from twisted.trial import unittest

from srs_twisted.config import DEFAULT_VHOST, load
from srs_twisted.config.check import SCHEMA
from srs_twisted.config.parser import parse_file

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF = os.path.join(REPO, "conf")

# Names the whitelist accepts only to rewrite or ignore them, so full.conf does not show them.
NOT_SHOWN = {
    ("listen",),  # legacy spelling of rtmp.listen
    ("chunk_size",),  # legacy spelling of rtmp.chunk_size
    ("vhost", "rtc", "aac"),  # legacy, becomes rtmp_to_rtc
    ("vhost", "rtc", "bframe"),  # legacy, becomes keep_bframe
}
IGNORED_BLOCKS = {("tencentcloud_cls",), ("tencentcloud_apm",)}


def schema_paths(node, prefix=()):
    for child in node.children:
        path = prefix + (child.name,)
        yield path
        if path not in IGNORED_BLOCKS:
            yield from schema_paths(child, path)


def tree_paths(node, prefix=()):
    for child in node.children:
        path = prefix + (child.name,)
        yield path
        yield from tree_paths(child, path)


class ConfFilesTests(unittest.TestCase):
    def setUp(self):
        # Like SRS, the samples expect to be run from the repository root (for include).
        cwd = os.getcwd()
        os.chdir(REPO)
        self.addCleanup(os.chdir, cwd)

    def test_there_are_samples(self):
        names = {os.path.basename(p) for p in glob.glob(os.path.join(CONF, "*.conf"))}
        self.assertTrue({"srs.conf", "rtmp.conf", "full.conf", "hls.conf", "http.flv.live.conf"} <= names, names)

    def test_every_sample_loads_and_checks(self):
        for path in sorted(glob.glob(os.path.join(CONF, "*.conf"))):
            cfg = load(path, environ={})
            self.assertEqual(cfg.path, path)
            self.assertIn(DEFAULT_VHOST, cfg.vhosts, path)

    def test_srs_conf(self):
        cfg = load(os.path.join(CONF, "srs.conf"), environ={})
        self.assertEqual(cfg.listen, ["1935"])
        self.assertEqual((cfg.http_api.enabled, cfg.http_api.listen), (True, "1985"))
        self.assertEqual((cfg.http_server.enabled, cfg.http_server.listen), (True, "8080"))
        self.assertEqual((cfg.daemon, cfg.srs_log_tank), (False, "console"))
        vhost = cfg.vhost("anything")
        self.assertTrue(vhost.http_remux.enabled)
        self.assertEqual(vhost.http_remux.mount, "[vhost]/[app]/[stream].flv")

    def test_include_sample(self):
        cfg = load(os.path.join(CONF, "include.conf"), environ={})
        self.assertEqual(cfg.vhost(DEFAULT_VHOST).directive.path, "./conf/include.vhost.conf")

    def test_full_conf_shows_every_accepted_directive(self):
        shown = set(tree_paths(parse_file(os.path.join(CONF, "full.conf"))))

        def is_shown(path):
            if path[:3] == ("vhost", "ingest", "engine"):
                # An ingest engine takes the directives of a transcode engine, shown there.
                path = ("vhost", "transcode") + path[2:]
            return path in shown or path in NOT_SHOWN

        missing = sorted(".".join(p) for p in schema_paths(SCHEMA) if not is_shown(p))
        self.assertEqual(missing, [])

    def test_full_conf_values_are_the_documented_defaults(self):
        # Where full.conf shows a value equal to the default, the model agrees.
        cfg = load(os.path.join(CONF, "full.conf"), environ={})
        play = cfg.vhost("play.example.com").play
        self.assertEqual((play.gop_cache, play.queue_length, play.mw_latency, play.mw_msgs), (True, 30.0, 350, 8))
        publish = cfg.vhost("play.example.com").publish
        self.assertEqual((publish.firstpkt_timeout, publish.normal_timeout), (20000, 5000))
        self.assertTrue(cfg.vhost("edge.example.com").is_edge)
        self.assertEqual(cfg.vhost("ffmpeg.example.com").transcodes[0].engines[0].vfilter, ["-vf", "scale=640:-2"])
        self.assertEqual(cfg.srt_server.default_streamid, "#!::r=live/livestream,m=request")
        self.assertEqual(cfg.srt_server.passphrase, "")
