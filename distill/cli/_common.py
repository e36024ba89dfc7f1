"""Pieces the subcommands share: the recipe options, the console, the rich reporter."""

from __future__ import annotations

import datetime
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from distill.engine import Reporter
from distill.errors import UsageError
from distill.recipe import Recipe, load_recipe

from ._tables import FittedProgress, on_terminal

console = Console()
err_console = Console(stderr=True)


def provenance(ctx: typer.Context) -> dict[str, Any]:
    """Where a recorded result came from: the command as typed (the arguments `main` was
    called with, kept in the root context's `obj`), the UTC date and time of this call, and
    the git commit of this checkout (None outside one)."""
    argv = (ctx.find_root().obj or {}).get("argv", sys.argv[1:])
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"command": "distill " + " ".join(shlex.quote(a) for a in argv),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": commit}

SetOption = typer.Option(
    None, "--set", "-s", metavar="KEY=VALUE",
    help="Override a recipe field by its dotted path, e.g. --set optim.lr=1e-3 (repeatable).")
TeacherOption = typer.Option(
    None, "--teacher", "-t",
    help="Teacher spec: timm:<model>, torchvision:<model>, checkpoint:<run dir>, "
         "python:<module>:<callable>, cache:<cache dir>, or 'none'.")
StudentOption = typer.Option(
    None, "--student", help="Student name (see `distill list students`) or timm:<model>.")
LossOption = typer.Option(None, "--loss", "-l", help="Distillation strategy: none|soft|hard|token.")


def resolve(recipe: Path | None, sets: list[str] | None, teacher: str | None,
            student: str | None, loss: str | None, out: Path | None = None,
            init: Path | None = None) -> Recipe:
    """Load a recipe with the command line's overrides; `--out` wins over run.out. A
    teacher other than the recipe's drops the old teacher's per-model fields (`load_recipe`):
    one note says which, printed by `flush_notes` once the command's work starts."""
    raw = {}
    if out is not None:
        raw["run.out"] = str(out)
    if init is not None:
        raw["student.init"] = str(init)
    _NOTES.clear()
    return load_recipe(recipe, list(sets or []), teacher=teacher, student=student, loss=loss,
                       raw=raw, note=_NOTES.append)


# The notes of the last `resolve` (a swapped teacher's dropped fields), held back until the
# command's work starts, so that bad input found later is still one line of error.
_NOTES: list[str] = []


def print_note(text: str) -> None:
    err_console.print(f"note: {text}", markup=False, highlight=False, soft_wrap=True)


def flush_notes() -> None:
    """Print the notes of the last `resolve`, once (a command calls it when its checks are
    done and its work starts; `RichReporter.start` does for `distill train`)."""
    notes = list(_NOTES)
    _NOTES.clear()
    for text in notes:
        print_note(text)


def at_least(minimum: int, flag: str) -> Any:
    """A typer option callback refusing a count below `minimum` with one line (`--sample:
    must be at least 0, got -3`), before the command runs."""

    def check(value: int | None) -> int | None:
        if value is not None and value < minimum:
            raise UsageError(f"{flag}: must be at least {minimum}, got {value}")
        return value

    return check


def check_folder(path: Path, flag: str) -> None:
    """Refuse, before any work, a folder option naming a file or a path under a file."""
    for p in (path, *path.parents):
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                where = "" if p == path else f"'{p}' in "
                raise UsageError(f"{flag}: {where}'{path}' is a file, not a folder")
            return


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class RichReporter(Reporter):
    """Progress bar with steps/s, images/s, loss parts and ETA; a line per epoch."""

    def __init__(self, console: Console = err_console):
        self.console = console
        epoch = TextColumn("[bold]epoch {task.fields[epoch]}")
        times = (TimeElapsedColumn(), TimeRemainingColumn())
        self.progress = FittedProgress(
            epoch, BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[parts]}"), *times, console=console, transient=False,
            disable=not on_terminal(console),  # logs and pipes get the epoch lines only
            narrow=[epoch, BarColumn(bar_width=10), MofNCompleteColumn(),  # 80 columns
                    TextColumn("{task.fields[short]}"), *times])
        self.task: Any = None
        self.t0 = time.perf_counter()
        self.epochs = 0

    def start(self, *, epochs: int, start_epoch: int, steps_per_epoch: int,
              info: dict[str, Any]) -> None:
        self.epochs = epochs
        flush_notes()
        desc = ", ".join(f"{k}={_fmt(v)}" for k, v in info.items())
        self.console.print(f"[dim]{desc}[/dim]")
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=(epochs - start_epoch) * steps_per_epoch,
            epoch=f"{start_epoch + 1}/{epochs}", rate="", parts="", short="")
        self.t0 = time.perf_counter()

    def advance(self, epoch: int, step_in_epoch: int) -> None:
        self.progress.update(self.task, advance=1, epoch=f"{epoch + 1}/{self.epochs}")

    def step(self, metrics: dict[str, Any]) -> None:
        parts = " ".join(f"{k}={metrics[k]:.3f}" for k in ("loss", "base", "distill")
                         if k in metrics)
        done = self.progress.tasks[0].completed
        steps_s = done / max(time.perf_counter() - self.t0, 1e-9)
        images = f"{metrics['images_per_s']:.0f} img/s"
        self.progress.update(self.task, rate=f"{steps_s:.1f} step/s {images}", parts=parts,
                             short=images + (f" loss={metrics['loss']:.3f}"
                                             if "loss" in metrics else ""))

    def epoch(self, metrics: dict[str, Any]) -> None:
        keys = ("train_loss", "top1", "top1_cls", "top1_dist", "ema_top1", "train_images_per_s")
        text = "  ".join(f"{k}={_fmt(metrics[k])}" for k in keys if k in metrics)
        self.progress.console.print(f"epoch {metrics['epoch'] + 1}/{self.epochs}  {text}")

    def note(self, text: str) -> None:
        self.console.print(f"[dim]{text}[/dim]")

    def finish(self, summary: dict[str, Any]) -> None:
        if self.task is not None:
            self.progress.stop()
