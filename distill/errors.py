"""Errors the CLI turns into one-line messages.

`UsageError` is bad input (a recipe field, a teacher name, a path): exit code 2, no
traceback. `RunError` is a run that had to stop (a NaN loss): exit code 1.
"""

from __future__ import annotations

__all__ = ["DistillError", "RunError", "UsageError"]


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
