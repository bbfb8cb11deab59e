"""Every fuzz target, by name (importing a module registers its targets)."""

from __future__ import annotations

import importlib
import os

from ..base import TARGETS, Target

MODULES = ("rtmp", "media", "rtc", "srt", "web", "recovery", "gb")
HERE = os.path.dirname(os.path.abspath(__file__))


def module_of(name: str) -> str | None:
    """The module defining target ``name``, found without importing anything
    (a fuzzing process imports, and instruments, only that one)."""
    for module in MODULES:
        with open(os.path.join(HERE, module + ".py"), encoding="utf-8") as f:
            if f'@target("{name}"' in f.read():
                return module
    return None


def load(modules=MODULES) -> dict[str, Target]:
    """Import the target modules (all by default); returns the registry."""
    for name in modules:
        importlib.import_module(f"{__name__}.{name}")
    return TARGETS
