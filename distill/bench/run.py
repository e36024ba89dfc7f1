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

from distill.cache import StoreFormat, load_manifest
from distill.cache.check import mismatches, needs_soft_targets
from distill.engine import LogReporter, Reporter, train
from distill.engine.cache_build import build_cache
from distill.engine.train import RESUME_FREE_FIELDS, recipe_diff
from distill.errors import UsageError
from distill.recipe import Recipe, check_paths, parse_yaml, recipe_from_dict
from distill.registry import LOSSES

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


_THROUGHPUT: dict[str, float] = {}


def model_images_per_s(recipe: Recipe, min_seconds: float = 1.0) -> float:
    """The student's inference throughput (images/s) on the run's device and precision, on
    a fixed in-memory batch: the model alone, as the paper's Figure 1 measures it. Once per
    architecture in a process."""
    from distill.engine import build_student_for, resolve_runtime
    from distill.engine.evaluate import autocast, split_heads

    rt = resolve_runtime(recipe)
    key = json.dumps([recipe.student.name, recipe.student_kwargs(), str(rt.device),
                      str(rt.dtype)], sort_keys=True, default=str)
    if key not in _THROUGHPUT:
        model = build_student_for(recipe, rt).eval()
        d = recipe.data
        b = d.eval_batch_size or 2 * d.batch_size
        x = torch.randn(b, d.in_chans, d.img_size, d.img_size, device=rt.device)
        if rt.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)

        def sync() -> None:
            if rt.device.type == "cuda":
                torch.cuda.synchronize(rt.device)

        with torch.inference_mode(), autocast(rt.device, rt.dtype):
            split_heads(model, x)  # warm-up
            sync()
            n, t0 = 0, time.perf_counter()
            while n < 2 or time.perf_counter() - t0 < min_seconds:
                split_heads(model, x)
                n += 1
            sync()
        _THROUGHPUT[key] = n * b / (time.perf_counter() - t0)
    return _THROUGHPUT[key]


def cell_row(cell: Cell, summary: dict[str, Any]) -> dict[str, Any]:
    """One line of results.json: what the cell is and what it measured."""
    return {
        "loss": cell.loss, "method": LOSSES.facts(cell.loss).label(cell.loss,
                                                                   cell.recipe.loss.target),
        "teacher": cell.teacher, "student": cell.student, "seed": cell.seed,
        "top1": summary.get("top1"), "top1_cls": summary.get("top1_cls"),
        "top1_dist": summary.get("top1_dist"), "teacher_top1": summary.get("teacher_top1"),
        "params": summary.get("params"), "gflops": model_gflops(cell.recipe),
        "train_images_per_s": summary.get("train_images_per_s"),
        "eval_images_per_s": summary.get("eval_images_per_s"),
        "infer_images_per_s": model_images_per_s(cell.recipe),
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
    """Point each teacher cell at its (teacher, seed) cache, build the caches unfinished
    cells need, and check every cell against its cache before any of them trains."""
    groups: dict[Path, list[Cell]] = {}
    for cell in cells:
        if cell.teacher is not None:
            groups.setdefault(cache.folder(cell), []).append(cell)
    for folder, members in groups.items():
        soft = [c for c in members if needs_soft_targets(c.recipe.loss)]
        store = cache.store or ("full" if soft else "hard")
        if soft and StoreFormat.parse(store, members[0].recipe.data.num_classes).kind == "hard":
            raise UsageError(f"--store: '{store}' keeps only the teacher's argmax and the "
                             f"'{soft[0].loss}' cells need its distribution; use full or topk:K")
        src = (soft or members)[0].recipe  # top-k is stored at the soft cells' temperature
        for c in members:  # first: a finished cell's recipe.yaml names its cache
            c.recipe.teacher.cache = folder
        if any(_finished(c) is None for c in members):
            reporter.note(f"cache {folder}: {store} store of {members[0].teacher}, "
                          f"seed {members[0].seed}")
            live = src.model_copy(update={"teacher": src.teacher.model_copy(
                update={"cache": None})})
            try:
                build_cache(live, folder, store=store, reporter=LogReporter())
            except UsageError as exc:  # its --out is our --cache
                raise UsageError(*[line.replace("--out:", "--cache:", 1)
                                   for line in exc.lines]) from None
        manifest = load_manifest(folder)
        for c in members:
            problems = mismatches(manifest, c.recipe, world_size=1)
            if problems:
                raise UsageError(f"--cache: '{folder}' does not fit cell {c.name}: "
                                 f"{'; '.join(problems)}")


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
            summary = train(cell.recipe, resume=True, reporter=reporter.cell_start(cell, i)).summary
        row = cell_row(cell, summary)
        rows.append(row)
        reporter.cell_done(cell, i, row, ran)
        if on_row is not None:
            on_row(list(rows))
    return rows
