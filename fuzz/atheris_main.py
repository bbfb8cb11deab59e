"""One target under atheris (libFuzzer):
``python -m fuzz.atheris_main TARGET [libFuzzer flags] [corpus dirs]``."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    import atheris

    name = argv[1]
    from fuzz.targets import load, module_of

    module = module_of(name)
    if module is None:
        sys.exit(f"no fuzz target {name!r}; see fuzz/run --list")
    # Only the target's own module (and what it imports) is instrumented: a quick start.
    # Twisted's HTTP parser too (the http target goes through it).
    with atheris.instrument_imports(include=["srs_twisted", "fuzz", "twisted.web"]):
        targets = load([module])
    target = targets[name]
    flags = list(argv[2:])
    if not any(a.startswith("-max_len=") for a in flags):
        flags.append(f"-max_len={target.max_len}")
    atheris.Setup([argv[0]] + flags, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
