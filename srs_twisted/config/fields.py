"""Field declarations of the typed configuration model (shared by :mod:`.model` and the
section modules such as :mod:`.caster`): each dataclass field records the directive it reads,
how SRS reads it (``kind``) and SRS's default.  The builder in :mod:`.model` walks them.

Pure standard library, no I/O.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any, Callable

from .parser import Directive

__all__ = ["_opt", "_str", "_on", "_only_on", "_int", "_float", "_list", "_section", "_custom", "_raw"]

Path = tuple[str, ...]


def _opt(kind: str, default: Any, key: str | Path | None = None, **extra: Any) -> Any:
    meta = {"kind": kind, "key": key, **extra}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def _str(default: str | None, key: str | Path | None = None, choices: tuple[str, ...] | None = None) -> Any:
    """Text; with ``choices``, one of them."""
    return _opt("str", default, key, choices=choices)


def _on(default: bool, key: str | None = None) -> Any:
    """Prefer-true switch: anything but ``off`` is true."""
    return _opt("on", default, key)


def _only_on(default: bool, key: str | None = None) -> Any:
    """Prefer-false switch: only ``on`` is true."""
    return _opt("only_on", default, key)


def _int(default: int | None, key: str | Path | None = None, low: int | None = 0, high: int | None = None,
         choices: tuple[int, ...] | None = None) -> Any:
    """An integer in ``low``..``high`` (None: unbounded), or one of ``choices``."""
    return _opt("int", default, key, low=low, high=high, choices=choices)


def _float(default: float, key: str | None = None, low: float | None = 0.0, high: float | None = None) -> Any:
    return _opt("float", default, key, low=low, high=high)


def _list(default: list[str], key: str | Path | None = None) -> Any:
    """All the arguments of the directive (or of the variable, split on whitespace)."""
    return _opt("list", default, key)


def _section(cls: type, key: str | None = None, **defaults: Any) -> Any:
    """A nested block; ``defaults`` override the block class's own defaults here."""
    return field(
        default_factory=lambda: cls(**defaults),
        metadata={"kind": "section", "key": key, "cls": cls, "defaults": defaults},
    )


def _custom(fn: Callable[[Directive | None], Any], default_factory: Callable[[], Any]) -> Any:
    """A value computed by ``fn`` from the enclosing block's directive (None if absent)."""
    return field(default_factory=default_factory, metadata={"kind": "custom", "fn": fn})


def _raw() -> Any:
    """The directive this section was read from, None when it is absent from the file."""
    return field(default=None, metadata={"kind": "raw"}, compare=False, repr=False)
