"""Every fuzz target, by name (importing a module registers its targets)."""

from __future__ import annotations

import importlib

from ..base import TARGETS, Target

MODULES = ("rtmp", "media", "rtc", "srt", "web", "recovery", "gb")


def load(instrument: bool = False) -> dict[str, Target]:
    """Import every target module (under atheris' instrumentation when asked)."""
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return TARGETS
