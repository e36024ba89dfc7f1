"""`distill report RUN_DIR...`: one table of finished runs (accuracy, size, speed)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from distill.errors import UsageError

from ._common import console

COLUMNS = [
    ("run", None), ("student", None), ("loss", None), ("teacher", None),
    ("top1", "{:.2f}"), ("top1_cls", "{:.2f}"), ("top1_dist", "{:.2f}"),
    ("teacher_top1", "{:.2f}"), ("params", "{:,}"), ("train img/s", "{:.0f}"),
    ("eval img/s", "{:.0f}"), ("wall s", "{:.0f}"),
]
KEYS = {"train img/s": "train_images_per_s", "eval img/s": "eval_images_per_s",
        "wall s": "wall_time_s"}


def load_summary(run: Path) -> dict:
    path = run / "summary.json"
    if not path.is_file():
        raise UsageError(f"{run}: no summary.json (is the run finished?)")
    return json.loads(path.read_text())


def print_runs(runs: list[Path]) -> None:
    table = Table(show_header=True, header_style="bold", box=box.SIMPLE_HEAD)
    rows = []
    for run in runs:
        s = load_summary(run) | {"run": run.name or str(run)}
        rows.append([("" if s.get(KEYS.get(c, c)) is None else
                      (fmt.format(s[KEYS.get(c, c)]) if fmt else str(s[KEYS.get(c, c)])))
                     for c, fmt in COLUMNS])
    keep = [i for i, _ in enumerate(COLUMNS) if any(r[i] for r in rows)]
    for i in keep:
        table.add_column(COLUMNS[i][0], justify="left" if COLUMNS[i][1] is None else "right")
    for r in rows:
        table.add_row(*[r[i] for i in keep])
    # Piped or captured output gets the whole table rather than an 80-column squeeze.
    out = console if console.is_terminal else Console(width=220, file=console.file)
    out.print(table)


def report(runs: list[Path] = typer.Argument(..., help="Run directories.")) -> None:
    """Print a table of finished runs: accuracy of each head, teacher, parameters, images/s."""
    print_runs(runs)
