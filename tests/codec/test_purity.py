"""The codec layer must stay pure: no Twisted, sockets or logging on import."""

import os
import pkgutil
import subprocess
import sys

from twisted.trial import unittest

import srs_twisted.codec

FORBIDDEN = ("twisted", "socket", "logging", "asyncio")


def codec_modules():
    return sorted("srs_twisted.codec." + info.name
                  for info in pkgutil.iter_modules(srs_twisted.codec.__path__))


class PurityTests(unittest.TestCase):
    def test_codec_modules_listed(self):
        names = codec_modules()
        for expected in ("errors", "bitreader", "amf0", "amf3", "flv", "avc", "hevc", "aac",
                         "mp3", "opus", "av1", "vp9", "info", "stun", "sdp", "sdp_negotiate"):
            self.assertIn("srs_twisted.codec." + expected, names)

    def test_no_twisted_in_subprocess(self):
        script = (
            "import importlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "    importlib.import_module(name)\n"
            "bad = [m for m in %r if m in sys.modules]\n"
            "print(' '.join(bad))\n" % (FORBIDDEN,))
        root = os.path.dirname(os.path.dirname(os.path.abspath(srs_twisted.__file__)))
        env = dict(os.environ, PYTHONPATH=root)
        result = subprocess.run([sys.executable, "-c", script] + codec_modules(),
                                capture_output=True, text=True, env=env, cwd=root, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "", "codec imports pulled in: " + result.stdout)
