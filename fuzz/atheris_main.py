"""One target under atheris (libFuzzer):
``python -m fuzz.atheris_main TARGET [libFuzzer flags] [corpus dirs]``."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    import atheris

    name = argv[1]
    # Twisted's HTTP parser too (the http target goes through it).
    with atheris.instrument_imports(include=["srs_twisted", "fuzz", "twisted.web"]):
        from fuzz.targets import load

        targets = load()
    if name not in targets:
        sys.exit(f"no fuzz target {name!r}; there are: {', '.join(sorted(targets))}")
    target = targets[name]
    flags = list(argv[2:])
    if not any(a.startswith("-max_len=") for a in flags):
        flags.append(f"-max_len={target.max_len}")
    atheris.Setup([argv[0]] + flags, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
