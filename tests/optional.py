"""Test-only dependencies (the "test" extra of setup.py): a missing one skips
a test locally with its reason and fails it in CI (``CI=true``), where
.ci/run has installed everything."""

from __future__ import annotations

import os

from twisted.trial.unittest import SkipTest

IN_CI = os.environ.get("CI", "").lower() == "true"


def _message(what: str) -> str:
    return f"{what} is not installed (pip install '.[test]': a test-only dependency)"


def missing(what: str) -> Exception:
    """The exception to raise in a test or setUp when ``what`` is missing."""
    return AssertionError(_message(what)) if IN_CI else SkipTest(_message(what))


def skip_reason(present: bool, what: str) -> str | None:
    """A class-level ``skip`` value: None when ``what`` is present, its reason
    when not; in CI a missing ``what`` fails the module's import instead."""
    if present:
        return None
    if IN_CI:
        raise AssertionError(_message(what))
    return _message(what)
