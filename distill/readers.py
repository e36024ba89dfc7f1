"""Reading the files a user hands the commands (recipes, `summary.json`, `metrics.jsonl`):
bounded in size, strict UTF-8 text, and every problem one `UsageError` line naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from distill.errors import UsageError, show

__all__ = ["MAX_JSON_BYTES", "inside", "path_is", "read_json", "read_text", "size_text"]

MAX_JSON_BYTES = 64 << 20  # a manifest of thousands of shards is a few MB


def path_is(path: Path, kind: str) -> bool | str:
    """Whether `path` is a `kind` ("dir", "file", "any"); the reason it cannot be looked at
    (a name too long for the file system, a loop of links) as text."""
    try:
        return {"dir": path.is_dir, "file": path.is_file, "any": path.exists}[kind]()
    except (OSError, ValueError) as exc:
        return getattr(exc, "strerror", None) or str(exc)


def size_text(n: int) -> str:
    """A byte count as people read it: 300 bytes, 256 KB, 50.0 MB."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"


def read_text(path: str | Path, what: str = "file", max_bytes: int | None = None) -> str:
    """The file's text. Refused with one line: a folder, an unreadable file, one over
    `max_bytes` (never read whole), a NUL byte (binary), bytes that are not UTF-8 (the
    offset of the first). A leading byte-order mark is dropped."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path}: is a folder, not a {what}")
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1) if max_bytes is not None else f.read()
            if max_bytes is not None and len(data) > max_bytes:
                f.seek(0, 2)
                raise UsageError(f"{path}: {size_text(max(f.tell(), len(data)))}; a {what} is at "
                                 f"most {size_text(max_bytes)} (is this the right file?)")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise UsageError(f"{path}: not a text file (a NUL byte at offset {nul}); a {what} is "
                         "UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                         f"{exc.start}); a {what} is UTF-8 text") from None
    return text[1:] if text.startswith("\ufeff") else text


def read_json(path: str | Path, what: str = "JSON file",
              max_bytes: int | None = MAX_JSON_BYTES) -> Any:
    """The file's JSON value; bad text or bad JSON is one line naming the file and where."""
    text = read_text(path, what, max_bytes)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column "
                         f"{exc.colno}); a damaged {what}?") from None
    except (ValueError, RecursionError) as exc:  # nested too deeply, an int of 5000 digits
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:80]
        raise UsageError(f"{path}: not a {what} ({reason})") from None


def inside(folder: str | Path, entry: Any, source: str | Path, field: str) -> Path:
    """`folder / entry`, for a path `entry` read from the file `source` (field `field`), a file
    the toolkit did not just write: a cache manifest's shard name, a shard set's
    `_info.json`, a run's `run.json`. Refused in one line naming `source`, `field` and the
    entry, before anything is read, unless it stays inside `folder`: a non-empty relative
    path, no `..` part, no symbolic link (of the folder's own, or of a part of the entry)
    that leads out of it."""
    def refuse(why: str) -> UsageError:
        named = f"'{entry}'" if isinstance(entry, str) else show(entry)
        return UsageError(f"{source}: {field} {named} {why}; refused (a path a file names "
                          f"must stay inside '{folder}')")

    if not isinstance(entry, str) or not entry or "\0" in entry:
        raise refuse("is not a file name")
    posix, windows = PurePosixPath(entry), PureWindowsPath(entry)
    if posix.is_absolute() or windows.is_absolute() or windows.drive:
        raise refuse("is an absolute path")
    if ".." in posix.parts or ".." in windows.parts:
        raise refuse("climbs out with '..'")
    root = os.path.realpath(folder)
    target = os.path.realpath(os.path.join(root, entry))
    if target == root:
        raise refuse("is the folder itself, not a file in it")
    if os.path.commonpath([root, target]) != root:
        raise refuse(f"leads to '{target}' through a symbolic link")
    return Path(folder) / entry
