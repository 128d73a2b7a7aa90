"""Strings that end up in a command line: a strict grammar, and one way to put them there.

Flagger's load tester runs a webhook's `cmd` with `sh -c` (type `cmd`; type `bash` with `bash -c`):
it has no argument-vector form, so whatever reaches `cmd` is shell text, run in a pod shared by
every team. Two layers keep a declaration from turning into commands there:

1. the model: a declared string that reaches a command (a probe path, a service or team name, a
   port) must match a grammar with no character any POSIX shell treats specially (no quote, `$`,
   backtick, `;`, `&`, `|`, `<`, `>`, parenthesis, glob, backslash, whitespace, or `~`);
2. the renderer: each such value is one argument word, single-quoted with `shlex.quote` and
   checked against the grammar again (`argument`), so a value that got past the model still
   cannot be read by the shell as anything but one literal argument.

tests/test_shell_safety.py checks with Hypothesis that every rendered command splits back into
exactly the intended words.
"""

from __future__ import annotations

import re
import shlex
from typing import Iterable

# An absolute URL path as a probe takes it: RFC 3986 path characters minus everything a shell
# interprets: letters, digits, and `/ . _ - % + = , :` (`%` for percent-encoding). Segments are not
# empty (no `//`, which would be a protocol-relative URL) and not all dots (no `.` or `..`).
_SEGMENT = r"[A-Za-z0-9._%+=,:-]*[A-Za-z0-9_%+=,:-][A-Za-z0-9._%+=,:-]*"
URL_PATH = rf"^/({_SEGMENT}(/{_SEGMENT})*/?)?$"
URL_PATH_MAX = 200
# The only characters a command word may contain (the union of the grammars above and below).
WORD = re.compile(r"^[A-Za-z0-9/._%+=,:@-]+$")


class UnsafeArgument(ValueError):
    """A value outside the command grammar reached the renderer (a model rule is missing)."""


def argument(value: object) -> str:
    """`value` as one command word: grammar-checked, then quoted so a shell reads it literally."""
    text = str(value)
    if not WORD.match(text):
        raise UnsafeArgument(f"{text[:60]!r} is not a safe command argument (allowed: letters, digits and / . _ % + = , : @ -)")
    return shlex.quote(text)


def command(words: Iterable[object]) -> str:
    """A command line from words, each passed through `argument`."""
    return " ".join(argument(w) for w in words)
