#!/usr/bin/env python3
"""Summarise a py-spy raw (collapsed stacks) profile: the functions with the
most samples on the CPU themselves (self) and under them (inclusive).

    py-spy record --format raw --nolineno -o prof.txt --pid PID -d 20
    python bench/pyspy_top.py prof.txt [--top 25] [--focus flush]
"""

from __future__ import annotations

import argparse
import collections
import re

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{m.group('func')} ({path})"


def load(path: str):
    stacks = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, count = line.rpartition(" ")
            try:
                n = int(count)
            except ValueError:
                continue
            frames = [short(x) for x in stack.split(";")]
            # drop the process / thread pseudo-frames py-spy puts first
            frames = [x for x in frames if not x.startswith(("process ", "thread "))]
            stacks.append((frames, n))
    return stacks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("raw")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--focus", action="append", default=[], help="also show callees of frames containing this text")
    args = ap.parse_args()
    stacks = load(args.raw)
    total = sum(n for _, n in stacks)
    own = collections.Counter()
    incl = collections.Counter()
    for frames, n in stacks:
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    print(f"{total} samples")
    print("\n## self (on CPU in the function itself)")
    for f, n in own.most_common(args.top):
        print(f"{100 * n / total:5.1f}%  {f}")
    print("\n## inclusive (the function and what it calls)")
    for f, n in incl.most_common(args.top):
        print(f"{100 * n / total:5.1f}%  {f}")
    for text in args.focus:
        sub = collections.Counter()
        base = 0
        for frames, n in stacks:
            idx = next((i for i, f in enumerate(frames) if text in f), None)
            if idx is None:
                continue
            base += n
            callee = frames[idx + 1] if idx + 1 < len(frames) else "(self)"
            sub[callee] += n
        print(f"\n## under '{text}' ({100 * base / total:.1f}% of samples): direct callees")
        for f, n in sub.most_common(args.top):
            print(f"{100 * n / total:5.1f}%  {f}")


if __name__ == "__main__":
    main()
