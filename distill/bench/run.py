"""Run a benchmark's cells, one after another, each an ordinary run directory.

A finished cell (its `summary.json` is there and its recipe is the cell's) is read back,
not run again; a cell killed half-way resumes from its last epoch. With a cache folder,
each (teacher, seed) pair's outputs are built once, before the cells that use it, and
every such cell replays them; the seed is part of the key because the replayed
augmentation is drawn from it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from distill.cache.check import needs_soft_targets
from distill.engine import LogReporter, Reporter, train
from distill.engine.cache_build import build_cache
from distill.engine.train import RESUME_FREE_FIELDS, recipe_diff
from distill.errors import UsageError
from distill.recipe import Recipe, check_paths, parse_yaml, recipe_from_dict

from .cells import Cell, teacher_slug

__all__ = ["BenchReporter", "CacheUse", "cell_row", "model_gflops", "run_cells"]


class BenchReporter(Protocol):
    def cell_start(self, cell: Cell, index: int) -> Reporter: ...

    def cell_done(self, cell: Cell, index: int, row: dict[str, Any], ran: bool) -> None: ...

    def note(self, text: str) -> None: ...


class _LogBench:
    def cell_start(self, cell: Cell, index: int) -> Reporter:
        return LogReporter()

    def cell_done(self, cell: Cell, index: int, row: dict[str, Any], ran: bool) -> None:
        pass

    def note(self, text: str) -> None:
        LogReporter().note(text)


@dataclass
class CacheUse:
    """Where the cells keep their teachers' outputs, and in which store."""

    root: Path
    store: str | None = None  # None: `hard` unless a cell needs soft targets, then `full`

    def folder(self, cell: Cell) -> Path:
        return self.root / f"{teacher_slug(cell.teacher or '')}-s{cell.seed}"


_GFLOPS: dict[str, float] = {}


def model_gflops(recipe: Recipe) -> float:
    """Multiply-adds (in billions) of one image through the student's eval forward, as
    counted by `torch.utils.flop_counter` (matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    from students import build_student

    key = json.dumps([recipe.student.name, recipe.student_kwargs()], sort_keys=True, default=str)
    if key not in _GFLOPS:
        model = build_student(recipe.student.name, **recipe.student_kwargs()).eval()
        d = recipe.data
        x = torch.zeros(1, d.in_chans, d.img_size, d.img_size)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
        _GFLOPS[key] = counter.get_total_flops() / 2e9
    return _GFLOPS[key]


def cell_row(cell: Cell, summary: dict[str, Any]) -> dict[str, Any]:
    """One line of results.json: what the cell is and what it measured."""
    return {
        "loss": cell.loss, "teacher": cell.teacher, "student": cell.student, "seed": cell.seed,
        "top1": summary.get("top1"), "top1_cls": summary.get("top1_cls"),
        "top1_dist": summary.get("top1_dist"), "teacher_top1": summary.get("teacher_top1"),
        "params": summary.get("params"), "gflops": model_gflops(cell.recipe),
        "train_images_per_s": summary.get("train_images_per_s"),
        "eval_images_per_s": summary.get("eval_images_per_s"),
        "wall_time_s": summary.get("wall_time_s"), "epochs": summary.get("epochs"),
        "device_name": summary.get("device_name"), "precision": summary.get("precision"),
        "run_dir": str(cell.recipe.run.out),
    }


def _finished(cell: Cell) -> dict[str, Any] | None:
    """The cell's summary if it already ran to the end with this very recipe."""
    out = Path(cell.recipe.run.out)
    summary, prior = out / "summary.json", out / "recipe.yaml"
    if not (summary.is_file() and prior.is_file()):
        return None
    before = recipe_from_dict(parse_yaml(prior.read_text()), str(prior))
    changed = [f for f in recipe_diff(before, cell.recipe) if f not in RESUME_FREE_FIELDS]
    if changed:
        raise UsageError(f"--out: cell '{out}' was run with another recipe (it differs at "
                         f"{', '.join(changed)}); use another --out for a new benchmark")
    return json.loads(summary.read_text())


def _attach_caches(cells: Sequence[Cell], cache: CacheUse, reporter: BenchReporter) -> None:
    """Build each (teacher, seed) cache the unfinished cells need; point them at it."""
    groups: dict[Path, list[Cell]] = {}
    for cell in cells:
        if cell.teacher is not None:
            groups.setdefault(cache.folder(cell), []).append(cell)
    for folder, members in groups.items():
        store = cache.store or ("full" if any(needs_soft_targets(c.recipe.loss) for c in members) else "hard")
        if any(_finished(c) is None for c in members):
            first = members[0].recipe
            reporter.note(f"cache {folder}: {store} store of {members[0].teacher}, "
                          f"seed {members[0].seed}")
            build_cache(first, folder, store=store, reporter=LogReporter())
        for c in members:
            c.recipe.teacher.cache = folder


def run_cells(cells: Sequence[Cell], *, cache: CacheUse | None = None,
              reporter: BenchReporter | None = None,
              on_row: Callable[[list[dict[str, Any]]], None] | None = None
              ) -> list[dict[str, Any]]:
    """Run (or read back) every cell; one results row per cell, in order. `on_row` gets the
    rows so far after each cell (the CLI rewrites the result files with them)."""
    reporter = reporter or _LogBench()
    for cell in cells:
        check_paths(cell.recipe)  # every teacher and data path, before the first cell runs
    if cache is not None:
        _attach_caches(cells, cache, reporter)
    rows = []
    for i, cell in enumerate(cells):
        summary = _finished(cell)
        ran = summary is None
        if ran:
            t0 = time.perf_counter()
            summary = train(cell.recipe, resume=True, reporter=reporter.cell_start(cell, i)).summary
            summary.setdefault("wall_time_s", time.perf_counter() - t0)
        row = cell_row(cell, summary)
        rows.append(row)
        reporter.cell_done(cell, i, row, ran)
        if on_row is not None:
            on_row(list(rows))
    return rows
