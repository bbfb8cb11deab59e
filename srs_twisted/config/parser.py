"""Reader for the SRS configuration language.

The grammar is the one SRS inherited from nginx (see docs/config.md):

* a file is a list of directives, ``name arg* ;`` or ``name arg* { directive* }``;
* words are split on space, tab, CR and LF; ``;`` and ``{`` also end a bare word;
* ``#`` opens a comment only where a word could start; inside a word it is literal;
* a word may be quoted with ``"`` or ``'``; there are no escapes, the closing quote must be
  followed by whitespace, ``;`` or ``{``; an empty quoted word is dropped;
* ``}`` must stand alone; a directive must end on the line where its words are;
* ``include FILE...;`` splices the directives of other files in place, at any level.

Every node remembers the file, line and column where it starts, and every error is a
:class:`ConfigError` that points at the offending character.  This module is pure stdlib.
"""

from __future__ import annotations

import os
from typing import Iterator

__all__ = ["ConfigError", "Directive", "parse_string", "parse_file", "MAX_INCLUDE_DEPTH"]

#: Deepest chain of nested ``include`` directives we follow before giving up.
MAX_INCLUDE_DEPTH = 16

_SPACES = frozenset(" \t\r\n")


class ConfigError(Exception):
    """A configuration problem at a precise place: ``path:line:col: message``."""

    def __init__(self, path: str, line: int, col: int, message: str) -> None:
        self.path = path
        self.line = line
        self.col = col
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"

    @classmethod
    def at(cls, node: "Directive", message: str, arg: int | None = None) -> "ConfigError":
        """An error located at ``node`` or, when ``arg`` is given, at that argument of it."""
        line, col = node.line, node.col
        if arg is not None and 0 <= arg < len(node.arg_pos):
            line, col = node.arg_pos[arg]
        return cls(node.path, line, col, message)


class Directive:
    """One node of the configuration tree.

    The root returned by :func:`parse_string` / :func:`parse_file` has the empty name.
    """

    __slots__ = ("name", "args", "children", "line", "col", "path", "arg_pos")

    def __init__(
        self,
        name: str,
        args: list[str] | None = None,
        children: list["Directive"] | None = None,
        line: int = 0,
        col: int = 0,
        path: str = "<string>",
        arg_pos: list[tuple[int, int]] | None = None,
    ) -> None:
        self.name = name
        self.args = list(args) if args else []
        self.children = list(children) if children else []
        self.line = line
        self.col = col
        self.path = path
        # (line, col) of every argument, parallel to ``args`` (may be shorter for
        # directives built by code rather than parsed).
        self.arg_pos = list(arg_pos) if arg_pos else []

    def get(self, name: str) -> "Directive | None":
        """The first child called ``name``; later duplicates are ignored, as in SRS."""
        for child in self.children:
            if child.name == name:
                return child
        return None

    def get_all(self, name: str) -> list["Directive"]:
        return [child for child in self.children if child.name == name]

    def arg(self, i: int = 0, default: str | None = None) -> str | None:
        return self.args[i] if 0 <= i < len(self.args) else default

    def walk(self) -> Iterator["Directive"]:
        """This node and all its descendants, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"

    def __repr__(self) -> str:
        return (
            f"Directive({self.name!r}, {self.args!r}, <{len(self.children)} children>, "
            f"{self.where})"
        )


# What ended a statement.
_END_ENTIRE = ";"
_END_BLOCK_START = "{"
_END_BLOCK_END = "}"
_END_EOF = ""


class _Scanner:
    """Splits text into statements, one at a time (the ``read_token`` loop of SRS)."""

    def __init__(self, text: str, path: str) -> None:
        if text.startswith("\ufeff"):
            text = text[1:]
        self.text = text
        self.path = path
        self.pos = 0
        self.line = 1
        self.col = 1

    def error(self, line: int, col: int, message: str) -> ConfigError:
        return ConfigError(self.path, line, col, message)

    def statement(self) -> tuple[list[str], list[tuple[int, int]], str, tuple[int, int]]:
        """Read one statement: its words, their positions, its terminator and where it is."""
        text = self.text
        args: list[str] = []
        positions: list[tuple[int, int]] = []
        comment = False
        quote = ""  # the quote character of the word being read, if quoted
        need_space = False  # just closed a quote; only space ; { may follow
        last_space = True  # between words
        start = 0  # index where the current word's content starts
        start_pos = (0, 0)

        while True:
            if self.pos >= len(text):
                if args or not last_space:
                    raise self.error(
                        self.line, self.col, 'unexpected end of file, expecting ";" or "}"'
                    )
                return args, positions, _END_EOF, (self.line, self.col)

            ch = text[self.pos]
            here = (self.line, self.col)
            self.pos += 1
            if ch == "\n":
                self.line += 1
                self.col = 1
            else:
                self.col += 1

            if ch == "\n" or ch == "\r":
                comment = False
                if args:
                    raise self._eol(here, args)
            if comment:
                continue

            if need_space:
                if ch in _SPACES:
                    need_space = False
                    last_space = True
                    continue
                if ch == ";":
                    return args, positions, _END_ENTIRE, here
                if ch == "{":
                    return args, positions, _END_BLOCK_START, here
                raise self.error(*here, f"unexpected {ch!r} after a quoted word")

            if last_space:
                if ch in _SPACES:
                    continue
                if ch == ";" or ch == "{":
                    if not args:
                        raise self.error(*here, f"unexpected {ch!r}: no directive name")
                    return args, positions, ch, here
                if ch == "}":
                    if args:
                        raise self.error(*here, "unexpected \"}\": missing ';' before it")
                    return args, positions, _END_BLOCK_END, here
                if ch == "#":
                    comment = True
                    continue
                last_space = False
                start_pos = here
                if ch == '"' or ch == "'":
                    quote = ch
                    start = self.pos
                else:
                    start = self.pos - 1
                continue

            # Inside a word.
            if quote:
                if ch != quote:
                    continue
                quote = ""
                need_space = True
            elif ch in _SPACES or ch == ";" or ch == "{":
                last_space = True
            else:
                continue

            word = text[start : self.pos - 1]
            if word:
                args.append(word)
                positions.append(start_pos)
            if ch == ";" or ch == "{":
                return args, positions, ch, here
            if (ch == "\n" or ch == "\r") and args:
                raise self._eol(here, args)

    def _eol(self, here: tuple[int, int], args: list[str]) -> ConfigError:
        return self.error(
            *here, f'unexpected end of line in directive "{args[0]}": a directive must end with'
            " ';' or '{' on its own line"
        )


class _Parser:
    def __init__(self) -> None:
        self.stack: list[str] = []  # real paths of the files being read, for cycles
        self.depth = 0  # how many includes deep we are

    def parse_text(self, text: str, path: str, into: Directive) -> None:
        self._block(_Scanner(text, path), into, top=True)

    def _block(self, scanner: _Scanner, parent: Directive, top: bool) -> None:
        while True:
            args, positions, end, (line, col) = scanner.statement()
            if end == _END_BLOCK_END:
                if top:
                    raise scanner.error(line, col, 'unexpected "}": no block to close')
                return
            if end == _END_EOF:
                if not top:
                    raise scanner.error(
                        line,
                        col,
                        f'unexpected end of file, expecting "}}" to close "{parent.name}" '
                        f"opened at line {parent.line}",
                    )
                return
            if not args:
                raise scanner.error(line, col, "empty directive")

            node = Directive(
                args[0], args[1:], None, positions[0][0], positions[0][1], scanner.path, positions[1:]
            )
            if node.name == "include":
                if end == _END_BLOCK_START:
                    raise ConfigError.at(node, "include takes file names, not a block")
                if not node.args:
                    raise ConfigError.at(node, "include needs at least one file")
                for i, name in enumerate(node.args):
                    self._include(node, i, name, parent)
                continue

            parent.children.append(node)
            if end == _END_BLOCK_START:
                self._block(scanner, node, top=False)

    def _include(self, node: Directive, i: int, name: str, parent: Directive) -> None:
        found = _resolve_include(name, node.path)
        if found is None:
            raise ConfigError.at(node, f"include file {name!r} not found", i)
        real = os.path.realpath(found)
        if real in self.stack:
            chain = " -> ".join(self.stack[self.stack.index(real) :] + [real])
            raise ConfigError.at(node, f"include cycle: {chain}", i)
        if self.depth >= MAX_INCLUDE_DEPTH:
            raise ConfigError.at(node, f"include nested deeper than {MAX_INCLUDE_DEPTH} files", i)
        try:
            text = _read(found)
        except OSError as e:
            raise ConfigError.at(node, f"cannot read include file {name!r}: {e.strerror}", i)
        self.stack.append(real)
        self.depth += 1
        try:
            self.parse_text(text, found, parent)
        finally:
            self.stack.pop()
            self.depth -= 1


def _resolve_include(name: str, including: str) -> str | None:
    """Where an include points: as given (relative to the cwd, like SRS), else next to the
    including file."""
    if os.path.isfile(name):
        return name
    if not os.path.isabs(name):
        base = os.path.dirname(including)
        if base:
            candidate = os.path.join(base, name)
            if os.path.isfile(candidate):
                return candidate
    return None


def _read(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "surrogateescape")


def parse_string(text: str, path: str = "<string>") -> Directive:
    """Parse configuration text; includes are resolved against the cwd (and ``path``'s dir)."""
    root = Directive("", path=path, line=1, col=1)
    parser = _Parser()
    if os.path.isfile(path):
        parser.stack.append(os.path.realpath(path))
    parser.parse_text(text, path, root)
    return root


def parse_file(path: str) -> Directive:
    """Parse the file at ``path``, following its includes."""
    try:
        text = _read(path)
    except OSError as e:
        raise ConfigError(path, 0, 0, f"cannot read config file: {e.strerror}") from None
    return parse_string(text, path)
