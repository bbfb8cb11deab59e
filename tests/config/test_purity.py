"""The config package is plain Python: importing and using it never loads Twisted."""

import subprocess
import sys

from twisted.trial import unittest

from .test_conf_files import REPO


class PurityTests(unittest.TestCase):
    def test_no_twisted_import(self):
        code = (
            "import sys\n"
            "from srs_twisted import config\n"
            "config.load_string('listen 1935; vhost __defaultVhost__ { hls { enabled on; } }')\n"
            "bad = sorted(m for m in sys.modules if m == 'twisted' or m.startswith('twisted.'))\n"
            "print(','.join(bad))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.strip(), "")
