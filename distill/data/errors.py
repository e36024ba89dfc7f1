"""`DataError`: a sample or a data folder that cannot be used, named, in one line.

Raised in the main process or inside a data-loader worker alike. Torch re-raises a
worker's exception in the main process as `DataError("Caught DataError in DataLoader worker
process N.\\nOriginal Traceback (most recent call last): …\\ndistill.data.errors.DataError:
<path>: <what>")`; `DataError` keeps only the `<path>: <what>` part of such a message, so the
command line prints the same one line (exit code 2) whatever the number of workers.
"""

from __future__ import annotations

import re

from distill.errors import UsageError

__all__ = ["DataError"]

_WRAPPED = re.compile(r"^Caught \w+ in DataLoader worker process \d+\.\nOriginal Traceback")


class DataError(UsageError):
    """Bad data: `<file or folder>: <what is wrong>` (exit code 2, no traceback)."""

    def __init__(self, *lines: str) -> None:
        if len(lines) == 1 and isinstance(lines[0], str) and _WRAPPED.match(lines[0]):
            lines = tuple(_unwrap(lines[0], type(self).__name__))
        super().__init__(*lines)


def _unwrap(text: str, name: str) -> list[str]:
    """The lines of the original error in a worker's wrapped traceback: from the last line
    `[module.]<name>: …` to the end (the traceback's final lines are the error's message)."""
    rows = text.rstrip().splitlines()
    head = re.compile(rf"^(?:[A-Za-z_][\w.]*\.)?{re.escape(name)}: ?(.*)$")
    for i in range(len(rows) - 1, -1, -1):
        found = head.match(rows[i])
        if found:
            return [found.group(1), *rows[i + 1:]]
    return [rows[-1].strip()] if rows else []
