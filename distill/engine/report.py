"""How the engine tells the world what it is doing, without printing.

The engine calls a `Reporter`: one class whose every event is a no-op by default, so a
reporter overrides only what it shows. `Reporter()` itself says nothing (the ranks of a
torchrun job other than 0, tests); `LogReporter` speaks through `logging` (library
users); the CLI's reporters draw rich progress bars and tables. `metrics.jsonl` is written
by the engine itself, whatever the reporter.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from distill.checkpoint import atomic_write_text

__all__ = ["LogReporter", "MetricsLog", "Reporter"]

_log = logging.getLogger("distill")


class Reporter:
    """What a run (or a build, or a bench of runs) tells as it goes. Every event is a no-op
    here; subclasses show the ones they care about."""

    def start(self, *, epochs: int, start_epoch: int, steps_per_epoch: int,
              info: dict[str, Any]) -> None:
        """A training run starts (or resumes at `start_epoch`)."""

    def advance(self, epoch: int, step_in_epoch: int) -> None:
        """One more batch done (training steps, or teacher batches of a cache build)."""

    def step(self, metrics: dict[str, Any]) -> None:
        """A log step's metrics (the `metrics.jsonl` line)."""

    def epoch(self, metrics: dict[str, Any]) -> None:
        """An epoch's metrics, evaluation included where it ran."""

    def note(self, text: str) -> None:
        """Something the user should know (a resumed run, a cache's size, …)."""

    def finish(self, summary: dict[str, Any]) -> None:
        """The run's summary."""

    def cell_start(self, cell: Any, index: int) -> Reporter:
        """A benchmark cell starts; returns the reporter of its training run."""
        return self

    def cell_done(self, cell: Any, index: int, row: dict[str, Any], ran: bool) -> None:
        """A benchmark cell is done (`ran`: trained now, not read back)."""


class LogReporter(Reporter):
    """Reports through `logging`: one line per log step and per epoch."""

    def start(self, *, epochs: int, start_epoch: int, steps_per_epoch: int,
              info: dict[str, Any]) -> None:
        _log.info("training %s epochs from epoch %s, %s steps each: %s", epochs, start_epoch,
                  steps_per_epoch, info)

    def step(self, metrics: dict[str, Any]) -> None:
        _log.debug("step %s", metrics)

    def epoch(self, metrics: dict[str, Any]) -> None:
        _log.info("epoch %s", metrics)

    def note(self, text: str) -> None:
        _log.info(text)

    def finish(self, summary: dict[str, Any]) -> None:
        _log.info("done %s", summary)


class MetricsLog:
    """`metrics.jsonl`: one JSON object per log step and per epoch, appended, flushed and
    fsynced line by line (a kill can cut the last line short; readers skip it, and a resumed
    run rewrites the file atomically without the epochs it redoes)."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path, self.enabled = path, enabled  # under torchrun, rank 0 alone writes

    def truncate_after(self, epoch: int) -> None:
        """Drop lines of epochs after `epoch` (a resumed run redoes them)."""
        if not self.enabled or not self.path.exists():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if row.get("epoch", 0) <= epoch:
                keep.append(line)
        atomic_write_text(self.path, "".join(f"{k}\n" for k in keep))

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as fh:
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
