"""Errors the CLI turns into one-line messages, and the helpers that write those lines.

`UsageError` is bad input (a recipe field, a teacher name, a path): exit code 2, no
traceback. `RunError` is a run that had to stop (a NaN loss): exit code 1.

Every message quotes what the user wrote with `show`, is cut to one bounded line by
`one_line`, quotes a library's error by its `first_line`, and lists names with `few`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

__all__ = ["DistillError", "OptionError", "RunError", "UsageError", "few", "first_line",
           "one_line", "show"]


class DistillError(Exception):
    """Base of the errors meant for the user; `lines` are printed one per line."""

    exit_code = 1

    def __init__(self, *lines: str) -> None:
        self.lines = [line for line in lines if line] or ["error"]
        super().__init__("\n".join(self.lines))


class UsageError(DistillError, ValueError):
    """Bad input: a recipe field, a registry name, a path. Exit code 2."""

    exit_code = 2


class RunError(DistillError, RuntimeError):
    """A run stopped on purpose (NaN loss, unusable checkpoint). Exit code 1."""

    exit_code = 1


class OptionError(UsageError):
    """Bad value of a library function's argument (`out`, `mode`, `world_size`, …).

    The message names the argument as the library knows it (`out: …`); a command line maps
    it to its own flag with `as_flag` (`--out: …`, or `--cache: …` where the bench passes
    its `--cache` folder as a build's `out`)."""

    def __init__(self, option: str, message: str) -> None:
        self.option, self.message = option, message
        super().__init__(f"{option}: {message}")

    def as_flag(self, flag: str | None = None) -> UsageError:
        """The same error naming the command line's `flag` (default `--<option>`)."""
        flag = flag or "--" + self.option.replace("_", "-")
        return UsageError(f"{flag}: {self.message}")


# -- writing one-line messages ---------------------------------------------------------------
# How much of what the user wrote a message shows (values: 80 characters, `show`).
QUOTED_MAX = 160  # a name or path a message quotes
WORD_MAX = 200
LINE_MAX = 1000


def show(value: Any) -> str:
    """The value as the user wrote it, short: 'abc', 1e-3, [0.5, 0.5], {depth: 2}; at most
    80 characters of a huge one, on one line."""
    if isinstance(value, str):
        text = repr(value[:200])
    elif isinstance(value, Path):
        text = repr(str(value)[:200])
    else:
        try:
            text = json.dumps(value, default=str)
        except (TypeError, ValueError, RecursionError):  # keys that are dates, a huge int
            text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


# Line breaks (as str.splitlines sees them) and control characters, written as escapes.
_BREAKS = {c: ascii(chr(c))[1:-1] for c in [*range(32), 127, 0x85, 0x2028, 0x2029] if c != 9}
_QUOTED = re.compile(rf"'([^'\n]{{{QUOTED_MAX + 1},}})'")
_LONG_WORD = re.compile(rf"\S{{{WORD_MAX + 1},}}")


def one_line(text: str) -> str:
    """A message as one line of bounded length: line breaks escaped, a quoted value or a
    word of more than a few dozen characters cut to an excerpt (names and paths a message
    quotes in full included), the whole at most `LINE_MAX` characters."""
    text = text.translate(_BREAKS).encode("utf-8", "backslashreplace").decode("utf-8")
    text = _QUOTED.sub(lambda m: f"'{m.group(1)[:QUOTED_MAX - 3]}...'", text)
    text = _LONG_WORD.sub(lambda m: m.group(0)[:WORD_MAX - 3] + "...", text)
    return text if len(text) <= LINE_MAX else text[:LINE_MAX - 3] + "..."


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a
    one-line error quotes of an error raised by a library."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def few(names: list[str], n: int = 3) -> str:
    """The first `n` of `names` joined by commas, and how many more there are."""
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more
