"""How the engine tells the world what it is doing, without printing.

The engine calls a `Reporter`; the CLI passes one that draws a rich progress bar, tests
and library users get `LogReporter` (the `logging` module). `metrics.jsonl` is written by
the engine itself, whatever the reporter.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Protocol

from distill.checkpoint import atomic_write_text

__all__ = ["LogReporter", "MetricsLog", "Reporter"]

_log = logging.getLogger("distill")


class Reporter(Protocol):
    def start(self, *, epochs: int, start_epoch: int, steps_per_epoch: int,
              info: dict[str, Any]) -> None: ...

    def advance(self, epoch: int, step_in_epoch: int) -> None: ...

    def step(self, metrics: dict[str, Any]) -> None: ...

    def epoch(self, metrics: dict[str, Any]) -> None: ...

    def note(self, text: str) -> None: ...

    def finish(self, summary: dict[str, Any]) -> None: ...


class LogReporter:
    """Reports through `logging`: one line per log step and per epoch."""

    def start(self, *, epochs: int, start_epoch: int, steps_per_epoch: int,
              info: dict[str, Any]) -> None:
        _log.info("training %s epochs from epoch %s, %s steps each: %s", epochs, start_epoch,
                  steps_per_epoch, info)

    def advance(self, epoch: int, step_in_epoch: int) -> None:
        pass

    def step(self, metrics: dict[str, Any]) -> None:
        _log.debug("step %s", metrics)

    def epoch(self, metrics: dict[str, Any]) -> None:
        _log.info("epoch %s", metrics)

    def note(self, text: str) -> None:
        _log.info(text)

    def finish(self, summary: dict[str, Any]) -> None:
        _log.info("done %s", summary)


class MetricsLog:
    """`metrics.jsonl`: one JSON object per log step and per epoch, appended and flushed."""

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
