"""`distill speed RECIPE`: time training steps of no teacher, a live teacher, a cached teacher
and timm's TokenDistillationTask in one process; print the arms and their ratios (the goals
we hold them to are checked by `benchmarks/speed_goals.py` on the JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich import box
from rich.table import Table

from distill.bench.speed import ARMS, measure_speed
from distill.checkpoint import atomic_write_text
from distill.errors import UsageError

from ._common import (
    SetOption,
    StudentOption,
    TeacherOption,
    console,
    err_console,
    flush_notes,
    provenance,
    resolve,
)


def _f(v: float | None, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def _note(text: str) -> None:
    flush_notes()  # the timing has started: the recipe's notes first
    err_console.print(f"[dim]{text}[/dim]", highlight=False)


def speed(
    ctx: typer.Context,
    recipe: Path = typer.Argument(..., help="Recipe YAML file (its student, teacher, "
                                  "precision and compile setting are timed)."),
    teacher: str = TeacherOption,
    student: str = StudentOption,
    sets: list[str] = SetOption,
    batch_size: int = typer.Option(None, "--batch-size", "-b", help="Batch size (default: "
                                   "the recipe's data.batch_size)."),
    steps: int = typer.Option(20, "--steps", help="Steps per timed block."),
    repeats: int = typer.Option(5, "--repeats", help="Timed blocks per arm (the median is "
                                "reported)."),
    warmup: int = typer.Option(5, "--warmup", help="Untimed steps first (compilation "
                               "included)."),
    arms: str = typer.Option(",".join(ARMS), "--arms", help="Which arms to time, of "
                             f"{', '.join(ARMS)}."),
    store: str = typer.Option(None, "--store", help="Cache store replayed by the cache arm: "
                              "full | topk:K | hard (default: hard, full for soft targets)."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the results here as JSON."),
) -> None:
    """Images/s, peak memory and MFU of one training step per arm, and the ratios."""
    r = resolve(recipe, sets, teacher, student, None)
    chosen = tuple(a.strip() for a in arms.split(",") if a.strip())
    if not chosen:
        raise UsageError(f"--arms: expected a comma-separated list of {', '.join(ARMS)}")
    if out is not None and out.is_dir():
        raise UsageError(f"--out: '{out}' is a folder; give a file name such as speed.json")
    if out is not None:  # before minutes of timing, not after
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out: cannot create '{out.parent}' ({exc.strerror or exc})"
                             ) from None
    res = measure_speed(r, batch_size=batch_size, steps=steps, warmup=warmup, repeats=repeats,
                        arms=chosen, store=store,
                        note=_note)
    res = provenance(ctx) | {"recipe": str(recipe)} | res
    table = Table(box=box.SIMPLE_HEAD, header_style="bold",
                  title=f"{res['student']} ← {res['teacher']}, batch {res['batch_size']}, "
                        f"{res['device']['precision']}, {res['device']['device_name']}")
    for col in ("arm", "images/s", "ms/step", "peak MB", "GFLOP/step", "TFLOP/s", "MFU"):
        table.add_column(col, justify="left" if col == "arm" else "right")
    for name, a in res["arms"].items():
        if a["skipped"]:
            table.add_row(name, f"skipped: {a['skipped']}", "", "", "", "", "")
            continue
        table.add_row(name, _f(a["images_per_s"], ".1f"), _f(a["step_ms"], ".1f"),
                      _f(a["peak_mem_mb"], ".0f"), _f(a["flops_per_step"] / 1e9, ".2f"),
                      _f(a["tflops"], ".3f"), _f(a["mfu"] and 100 * a["mfu"], ".1f") +
                      ("%" if a["mfu"] else ""))
    console.print(table)
    for name, value in res["ratios"].items():
        num, _, den = name.partition("_vs_")
        console.print(f"{num} ÷ {den}: {_f(value, '.3f')}", highlight=False)
    if out is not None:
        atomic_write_text(out, json.dumps(res, indent=2) + "\n")
        console.print(f"wrote {out}", highlight=False)
