"""Run a benchmark's cells, one after another, each an ordinary run directory.

A finished cell (its `summary.json` is there and its recipe is the cell's) is read back,
not run again; a cell killed half-way resumes from its last epoch. With a cache folder,
each (teacher, seed) pair's outputs are built once, before the cells that use it, and
every such cell replays them; the seed is part of the key because the replayed
augmentation is drawn from it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from distill.cache import StoreFormat, load_manifest
from distill.cache.check import mismatches, needs_soft_targets
from distill.engine import LogReporter, Reporter, train
from distill.engine.cache_build import build_cache
from distill.engine.rundir import RunDir
from distill.errors import OptionError
from distill.readers import read_json
from distill.recipe import check_paths, load_run_recipe, resume_changes
from distill.registry import LOSSES

from .cells import Cell, teacher_slug
from .measure import ModelMeter

__all__ = ["CacheUse", "result_row", "run_cells"]


@dataclass
class CacheUse:
    """Where the cells keep their teachers' outputs, and in which store."""

    root: Path
    store: str | None = None  # None: `hard` unless a cell needs soft targets, then `full`

    def folder(self, cell: Cell) -> Path:
        return self.root / f"{teacher_slug(cell.teacher or '')}-s{cell.seed}"


def result_row(cell: Cell, summary: dict[str, Any], meter: ModelMeter) -> dict[str, Any]:
    """One line of results.json: what the cell is, what its run measured (`summary`), and
    the student's own size and speed (`meter`, measured once per architecture)."""
    return {
        "loss": cell.loss, "method": LOSSES.facts(cell.loss).label(cell.loss,
                                                                   cell.recipe.loss.target),
        "teacher": cell.teacher, "student": cell.student, "seed": cell.seed,
        "top1": summary.get("top1"), "top1_cls": summary.get("top1_cls"),
        "top1_dist": summary.get("top1_dist"), "teacher_top1": summary.get("teacher_top1"),
        "params": summary.get("params"), "gflops": meter.gflops(cell.recipe),
        "train_images_per_s": summary.get("train_images_per_s"),
        "eval_images_per_s": summary.get("eval_images_per_s"),
        "infer_images_per_s": meter.images_per_s(cell.recipe),
        "wall_time_s": summary.get("wall_time_s"), "epochs": summary.get("epochs"),
        "train_size": summary.get("train_size"),
        "device_name": summary.get("device_name"), "precision": summary.get("precision"),
        "run_dir": str(cell.recipe.run.out),
    }


def _finished(cell: Cell) -> dict[str, Any] | None:
    """The cell's summary if it already ran to the end with this very recipe."""
    out = Path(cell.recipe.run.out)
    summary, prior = out / "summary.json", out / "recipe.yaml"
    if not (summary.is_file() and prior.is_file()):
        return None
    # Every file there as the cell's run wrote it; the weights may be gone: a results
    # folder is committed without them (its summary.json is the cell's result).
    RunDir.open(out).verify(optional=("state.pt", "model.safetensors", "ema.safetensors"))
    changed = resume_changes(load_run_recipe(prior), cell.recipe)
    if changed:
        raise OptionError("out", f"cell '{out}' was run with another recipe (it differs at "
                         f"{', '.join(changed)}); use another --out for a new benchmark")
    return read_json(summary, "summary.json")  # a damaged one: one line naming it


def _with_caches(cells: Sequence[Cell], cache: CacheUse) -> list[Cell]:
    """The cells with each teacher cell pointed at its (teacher, seed) cache (a finished
    cell's recipe.yaml names it)."""
    return [replace(c, recipe=c.recipe.updated({"teacher.cache": str(cache.folder(c))},
                                               f"cell {c.name}"))
            if c.teacher is not None else c for c in cells]


def _build_caches(cells: Sequence[Cell], done: Sequence[dict[str, Any] | None],
                  cache: CacheUse, reporter: Reporter) -> None:
    """Build the caches the unfinished cells (`done[i]` None) need, and check each of them
    against its cache before any cell trains. A cache only finished cells use is neither
    built nor read: it may be gone (a committed results folder holds none)."""
    groups: dict[Path, list[tuple[Cell, bool]]] = {}
    for cell, summary in zip(cells, done, strict=True):
        if cell.teacher is not None:
            groups.setdefault(cache.folder(cell), []).append((cell, summary is None))
    for folder, entries in groups.items():
        members = [c for c, _ in entries]
        pending = [c for c, todo in entries if todo]
        soft = [c for c in members if needs_soft_targets(c.recipe.loss)]
        store = cache.store or ("full" if soft else "hard")
        if soft and StoreFormat.parse(store, members[0].recipe.data.num_classes).kind == "hard":
            raise OptionError("store", f"'{store}' keeps only the teacher's argmax and the "
                             f"'{soft[0].loss}' cells need its distribution; use full or topk:K")
        if not pending:
            continue
        src = (soft or members)[0].recipe  # top-k is stored at the soft cells' temperature
        reporter.note(f"cache {folder}: {store} store of {members[0].teacher}, "
                      f"seed {members[0].seed}")
        live = src.updated({"teacher.cache": None})
        try:
            build_cache(live, folder, store=store, reporter=LogReporter())
        except OptionError as exc:  # the build's `out` is our `cache` folder
            if exc.option != "out":
                raise
            raise OptionError("cache", exc.message) from None
        manifest = load_manifest(folder)
        for c in pending:
            problems = mismatches(manifest, c.recipe, world_size=1)
            if problems:
                raise OptionError("cache", f"'{folder}' does not fit cell {c.name}: "
                                 f"{'; '.join(problems)}")


def run_cells(cells: Sequence[Cell], *, cache: CacheUse | None = None,
              reporter: Reporter | None = None,
              on_row: Callable[[list[dict[str, Any]]], None] | None = None
              ) -> list[dict[str, Any]]:
    """Run (or read back) every cell; one results row per cell, in order. `on_row` gets the
    rows so far after each cell (the CLI rewrites the result files with them)."""
    reporter = reporter or LogReporter()
    meter = ModelMeter()
    planned = list(cells)
    if cache is not None:
        cells = _with_caches(planned, cache)
    done = [_finished(cell) for cell in cells]  # read (and checked) once, before any trains
    for cell, summary in zip(planned, done, strict=True):
        if summary is None:  # every teacher and data path a cell to train needs, up front
            check_paths(cell.recipe)  # (its cache is built below)
    if cache is not None:
        _build_caches(cells, done, cache, reporter)
    rows = []
    for i, (cell, summary) in enumerate(zip(cells, done, strict=True)):
        ran = summary is None
        if ran:
            summary = train(cell.recipe, resume=True, reporter=reporter.cell_start(cell, i)).summary
        row = result_row(cell, summary, meter)
        rows.append(row)
        reporter.cell_done(cell, i, row, ran)
        if on_row is not None:
            on_row(list(rows))
    return rows
