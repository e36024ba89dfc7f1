"""Errors the CLI turns into one-line messages.

`UsageError` is bad input (a recipe field, a teacher name, a path): exit code 2, no
traceback. `RunError` is a run that had to stop (a NaN loss): exit code 1.
"""

from __future__ import annotations

__all__ = ["DistillError", "OptionError", "RunError", "UsageError"]


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
