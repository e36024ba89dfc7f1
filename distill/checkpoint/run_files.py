"""A run folder's manifest, `run.json`: what the run wrote, checked before use.

`run.json` lists every file the run wrote with its sha256 and size (`metrics.jsonl`, which
is appended line by line, and `config.json` are listed by name only), the epochs its
checkpoint holds and, once `summary.json` is written, `finished: true`. It carries a sha256
of its own content. A file is written in three steps: `run.json` lists the new file's
sha256 as *pending*, the file is written atomically, and `run.json` takes the pending
entries as the files' own (`RunFiles.write_files`); a run killed in between leaves each
file with either its old or its new content, both of which `run.json` names.

A file read on its own (a `checkpoint:` teacher's weights, `distill eval`'s) is checked
against the `run.json` beside it by `check_run_file`. In a run folder the toolkit deletes
only temporaries that its own atomic writer made for run files (`.{run file}.{8 hex}.tmp`).
What a command accepts as a run folder, and when it may write there, is the engine's
policy (`distill.engine.rundir.RunDir`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.errors import UsageError, few
from distill.readers import inside

from .weights import atomic_write_bytes, atomic_write_text, file_sha256, temporary_target

__all__ = ["HASHED", "RUN_FILES", "RUN_FORMAT", "RUN_MANIFEST", "UNHASHED", "RunFiles",
           "check_run_file", "is_run_temporary"]

RUN_MANIFEST = "run.json"
RUN_FORMAT = "deit-distill-run/1"
# Files of a run checked by their sha256, and files listed by name only.
HASHED = ("recipe.yaml", "model.safetensors", "ema.safetensors", "state.pt", "summary.json")
UNHASHED = ("metrics.jsonl", "config.json")
RUN_FILES = frozenset((RUN_MANIFEST, *HASHED, *UNHASHED))


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def is_run_temporary(name: str) -> bool:
    """Whether `name` is a temporary the atomic writer made for a run file."""
    return temporary_target(name) in RUN_FILES


@dataclass
class RunFiles:
    """A run folder's files as its `run.json` lists them, and the writer of that manifest.

    `kind`: "new" (nothing there yet), "run" (a `run.json`), or "legacy" (a run written
    before run manifests). `files`/`pending`: name → {"sha256", "bytes"} (None for files
    listed by name only)."""

    out: Path
    kind: str = "run"
    files: dict[str, Any] = field(default_factory=dict)
    pending: dict[str, Any] = field(default_factory=dict)
    epoch: int | None = None  # epochs in the last checkpoint (None: no checkpoint yet)
    epochs: int | None = None
    finished: bool = False
    write: bool = True  # under torchrun, rank 0 alone writes

    # -- reading -----------------------------------------------------------------------
    @classmethod
    def load(cls, out: Path) -> RunFiles:
        path = out / RUN_MANIFEST
        try:
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict) or doc.get("format") != RUN_FORMAT:
                raise ValueError(f"not a {RUN_FORMAT} manifest")
            digest = doc.pop("sha256", None)
            if digest != _digest(doc):
                raise ValueError("its sha256 does not match its content")
            run = cls(out, "run", files=dict(doc["files"]), pending=dict(doc["pending"]),
                      epoch=doc["epoch"], epochs=doc["epochs"], finished=bool(doc["finished"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"'{path}' is corrupt ({exc}); the run directory was left as "
                             "it is") from None
        for kind in ("files", "pending"):  # every listed file inside the run, before any read
            for name in getattr(run, kind):
                inside(out, name, path, kind)
        return run

    def verify(self, *, optional: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
        """Check the directory against the manifest: every listed file there (but those in
        `optional`) with its recorded sha256, no file the run did not write. Returns the
        present files' records (a run without a manifest: as found, unchecked)."""
        names = sorted(p.name for p in self.out.iterdir()) if self.out.is_dir() else []
        if self.kind != "run":
            return {n: _record(self.out / n) for n in names if n in HASHED}
        foreign = [n for n in names if n != RUN_MANIFEST and not is_run_temporary(n)
                   and n not in UNHASHED and n not in self.files and n not in self.pending]
        if foreign:
            raise UsageError(f"'{self.out / foreign[0]}' is not a file of the run in "
                             f"'{self.out}' ({RUN_MANIFEST} does not list "
                             f"{few(foreign)}); move it out of the run directory, or choose "
                             "another --out")
        found: dict[str, dict[str, Any]] = {}
        for name in sorted(set(self.files) | set(self.pending)):
            if name in UNHASHED or name not in HASHED:
                continue
            path = self.out / name
            if not path.is_file():
                if name in self.files and name not in optional:
                    raise UsageError(f"'{path}' is missing ({RUN_MANIFEST} lists it); the run "
                                     "directory was left as it is")
                continue
            rec = _record(path)
            accepted = [r for r in (self.files.get(name), self.pending.get(name)) if r]
            if not any(rec == r for r in accepted):
                raise UsageError(_altered(path, rec, accepted[0]))
            found[name] = rec
        return found

    def history(self) -> list[dict[str, Any]]:
        """The epoch rows of `metrics.jsonl`."""
        rows = []
        with contextlib.suppress(OSError):
            for line in (self.out / "metrics.jsonl").read_text().splitlines():
                with contextlib.suppress(json.JSONDecodeError):
                    row = json.loads(line)
                    if isinstance(row, dict) and row.get("kind") == "epoch":
                        rows.append(row)
        return rows

    # -- writing -----------------------------------------------------------------------
    def start(self, records: dict[str, dict[str, Any]], epoch: int | None, epochs: int) -> None:
        """Record the files found (checked by `verify`) and delete the temporaries a killed
        run left; from here on the directory is a run with a manifest."""
        if not self.write:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        for path in self.out.iterdir():
            if is_run_temporary(path.name):  # half-written files of a killed run: never read
                path.unlink(missing_ok=True)
        self.kind, self.files, self.pending = "run", dict(records), {}
        self.files |= {n: None for n in UNHASHED if (self.out / n).exists()}
        self.epoch, self.epochs, self.finished = epoch, epochs, False
        self._save()

    def write_files(self, blobs: dict[str, bytes], *, epoch: int | None = None,
                    finished: bool = False) -> None:
        """Write `blobs` (name → bytes) in order, each listed as pending first; then record
        them (and `epoch`, the epochs in a checkpoint, and `finished`)."""
        if not self.write:
            return
        for name, data in blobs.items():
            self.pending[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            self._save()
            atomic_write_bytes(self.out / name, data)
        self.files |= self.pending
        self.files |= {n: None for n in UNHASHED if (self.out / n).exists()}
        self.pending = {}
        if epoch is not None:
            self.epoch = epoch
        self.finished = self.finished or finished
        self._save()

    def _save(self) -> None:
        doc = {"format": RUN_FORMAT, "epoch": self.epoch, "epochs": self.epochs,
               "finished": self.finished, "files": self.files, "pending": self.pending}
        doc = {**doc, "sha256": _digest(doc)}
        atomic_write_text(self.out / RUN_MANIFEST, json.dumps(doc, indent=2) + "\n")


def _record(path: Path) -> dict[str, Any]:
    return {"sha256": file_sha256(path), "bytes": path.stat().st_size}


def _altered(path: Path, rec: dict[str, Any], want: dict[str, Any]) -> str:
    size = (f"{rec['bytes']} bytes, {want['bytes']} recorded" if rec["bytes"] != want["bytes"]
            else "same size")
    return (f"'{path}' is corrupt or was changed after the run wrote it (its sha256 differs "
            f"from the one in {RUN_MANIFEST}; {size}); not loaded, nothing was changed")


def check_run_file(path: Path) -> tuple[str, RunFiles | None]:
    """Check a run file read on its own (a `checkpoint:` teacher's or `distill eval`'s
    weights) against the `run.json` next to it, if any; returns the file's sha256 and the
    run (None when the file is not in a run directory with a manifest)."""
    path = Path(path)
    sha = file_sha256(path)
    if not (path.parent / RUN_MANIFEST).is_file():
        return sha, None
    rec = {"sha256": sha, "bytes": path.stat().st_size}
    run = RunFiles.load(path.parent)
    for attempt in range(2):  # a running run may have rewritten the file and then run.json
        accepted = [r for r in (run.files.get(path.name), run.pending.get(path.name)) if r]
        if not accepted or any(rec == r for r in accepted):
            return sha, run
        if attempt == 0:
            run = RunFiles.load(path.parent)
    raise UsageError(_altered(path, rec, accepted[0]))
