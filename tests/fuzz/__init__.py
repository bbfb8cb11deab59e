"""The fuzz targets of fuzz/ in the suite: a short fixed-seed atheris run of
each (test_targets) and a replay of every seed and kept crash (test_regressions)."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.append(ROOT)  # for the fuzz package only: srs_twisted stays the one found first
