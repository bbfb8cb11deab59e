"""A bounded, fixed-seed atheris run of every fuzz target (fuzz/targets/).

Each target runs for FUZZ_SECONDS (default 10) from its seed corpus with
libFuzzer's -seed=1, a 25 s bound per input (a hang; generous for a loaded machine) and a 1 GB RSS bound; a
target fails when an input ends in anything but a value or the package's
own protocol error.  The failure message holds the traceback and the input
(base64), to be kept in tests/fuzz/crashes/TARGET/ once fixed.  Longer
runs: fuzz/run --minutes N (docs/reliability.md)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile

from twisted.trial import unittest

from fuzz.targets import load

from .. import optional
from . import ROOT

SECONDS = int(os.environ.get("FUZZ_SECONDS", "10"))
HAVE_ATHERIS = importlib.util.find_spec("atheris") is not None


def fuzz(name: str) -> tuple[int, str]:
    work = tempfile.mkdtemp(prefix=f"fuzz-{name}-")
    corpus = os.path.join(work, "corpus")
    os.makedirs(corpus)
    argv = [sys.executable, "-m", "fuzz.atheris_main", name, "-seed=1", f"-max_total_time={SECONDS}",
            "-timeout=25", "-rss_limit_mb=1024", f"-artifact_prefix={work}/", corpus,
            os.path.join(ROOT, "fuzz", "corpus", name)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", timeout=SECONDS + 120)
    out = "\n".join(line for line in proc.stdout.splitlines() if not line.startswith("INFO: Instrumenting"))
    return proc.returncode, out


class FuzzTargets(unittest.TestCase):
    def setUp(self):
        if not HAVE_ATHERIS:
            raise optional.missing("atheris")

    def check(self, name: str) -> None:
        rc, out = fuzz(name)
        done = [line for line in out.splitlines() if "DONE" in line and "cov:" in line]
        self.assertEqual(rc, 0, f"fuzz target {name} found an input that fails:\n{out[-8000:]}")
        self.assertTrue(done, f"fuzz target {name} did not run to its time bound:\n{out[-3000:]}")
        runs = int(done[-1].split()[0].lstrip("#"))
        self.assertGreater(runs, 50, f"fuzz target {name} ran only {runs} inputs:\n{done[-1]}")


for _name in sorted(load()):
    setattr(FuzzTargets, f"test_{_name}", lambda self, n=_name: self.check(n))
