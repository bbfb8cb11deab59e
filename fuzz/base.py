"""The target registry and the input-splitting helpers targets share."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# How a stream input is cut into the pieces a transport would deliver:
# the first byte picks one size, so one corpus entry tries one split.
_SPLITS = (1, 3, 7, 64, 188, 1000, 4096, 1 << 30)


@dataclass
class Target:
    name: str
    run: Callable[[bytes], object]
    # The package's own protocol errors: the only exceptions an input may end in.
    allowed: tuple = ()
    # Largest input worth trying (libFuzzer's -max_len).
    max_len: int = 4096

    def __call__(self, data: bytes):
        try:
            return self.run(data)
        except self.allowed:
            return None

    @property
    def corpus(self) -> str:
        return os.path.join(CORPUS, self.name)


TARGETS: dict[str, Target] = {}


def target(name: str, allowed=(), max_len: int = 4096):
    def register(fn):
        TARGETS[name] = Target(name, fn, tuple(allowed), max_len)
        return fn

    return register


def pieces(data: bytes):
    """A stream input cut into transport reads: byte 0 picks the read size."""
    if not data:
        return
    size = _SPLITS[data[0] % len(_SPLITS)]
    data = data[1:]
    for i in range(0, len(data), size):
        yield data[i : i + size]


def demux(parser, data: bytes, held=None) -> list:
    """A demuxer (``feed``/``flush``) fed a stream input; ``held(parser)``
    is the bytes it holds after each read, which must stay under a packet."""
    out = []
    for piece in pieces(data):
        out += parser.feed(piece)
        if held is not None:
            assert held(parser) < 188 * 2, f"the demuxer holds {held(parser)} raw bytes"
    return out + parser.flush()


def stream_input(payload: bytes, split: int = 7) -> bytes:
    """A seed for a stream target: ``payload`` read in one piece (split 7 = whole)."""
    return bytes([split]) + payload


def datagrams(data: bytes):
    """A datagram input: each datagram is a 2-byte big-endian length and its bytes."""
    pos = 0
    while pos + 2 <= len(data):
        size = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        yield data[pos : pos + size]
        pos += size


def datagram_input(packets) -> bytes:
    return b"".join(len(p).to_bytes(2, "big") + bytes(p) for p in packets)
