"""Every seed of fuzz/corpus/ and every input kept in tests/fuzz/crashes/
(one directory per target, files named after what they found), replayed
in-process: each ends in a value or the target's own protocol error."""

from __future__ import annotations

import os

from twisted.trial import unittest

from fuzz.targets import load

HERE = os.path.dirname(os.path.abspath(__file__))
CRASHES = os.path.join(HERE, "crashes")
TARGETS = load()


def files(directory: str) -> list[str]:
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.join(directory, f) for f in os.listdir(directory) if not f.startswith("."))


class KeptCrashes(unittest.TestCase):
    def test_every_kept_crash_names_a_target(self):
        for name in (n for n in os.listdir(CRASHES) if not n.startswith(".")):
            self.assertIn(name, TARGETS, f"tests/fuzz/crashes/{name} is not a fuzz target")

    def replay(self, name: str, paths) -> int:
        target = TARGETS[name]
        for path in paths:
            with open(path, "rb") as f:
                data = f.read()
            try:
                target(data)
            except Exception as e:  # noqa: BLE001 - the failure names the input
                self.fail(f"{name} input {os.path.relpath(path, HERE)}: {type(e).__name__}: {e}")
        return len(paths)


for _name, _target in sorted(TARGETS.items()):
    setattr(KeptCrashes, f"test_crashes_{_name}",
            lambda self, n=_name: self.replay(n, files(os.path.join(CRASHES, n))))

    def _seeds(self, n=_name, t=_target):
        self.assertGreater(self.replay(n, files(t.corpus)), 0, f"fuzz/corpus/{n} has no seeds")

    setattr(KeptCrashes, f"test_seeds_{_name}", _seeds)
