"""Fuzz targets for every parser and state machine that takes outside bytes.

Each target (see :mod:`fuzz.targets`) is a function of one ``bytes`` input
that must end in a value or in the package's own protocol error; anything
else is a finding.  ``fuzz/run`` drives them with atheris (coverage-guided,
libFuzzer), tests/fuzz runs a short fixed-seed pass of each in the suite.
See docs/reliability.md.
"""
