"""`distill train RECIPE`: train a student (or a teacher) into a run directory."""

from __future__ import annotations

from pathlib import Path

import typer

from distill.engine import dist
from distill.engine import train as run_training

from ._common import LossOption, RichReporter, SetOption, StudentOption, TeacherOption, resolve
from .report import print_runs


def train(
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    teacher: str = TeacherOption,
    student: str = StudentOption,
    loss: str = LossOption,
    sets: list[str] = SetOption,
    out: Path = typer.Option(None, "--out", "-o", help="Run directory (default: run.out, "
                             "else runs/<recipe path>)."),
    init: Path = typer.Option(None, "--init", help="Start the student from these weights "
                              "(a model.safetensors of this toolkit or a timm deit_* checkpoint)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in the output "
                                "directory from its last checkpoint (a fresh start if none; "
                                "a finished run is left as it is)."),
) -> None:
    """Train RECIPE; writes model.safetensors, metrics.jsonl and summary.json."""
    r = resolve(recipe, sets, teacher, student, loss, out, init)
    reporter = RichReporter()
    try:
        result = run_training(r, resume=resume, reporter=reporter)
    except KeyboardInterrupt:  # `distill.cli.main` prints how to continue
        reporter.progress.stop()
        raise
    if dist.topology().main:  # under torchrun, rank 0 speaks for the job
        print_runs([result.out])
