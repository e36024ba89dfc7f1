"""`distill report RUN_DIR...`: one table of finished runs (accuracy, size, speed), and with
`--plot FILE.png` their training curves (train loss, top-1 per evaluation, learning rate)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from distill.errors import UsageError, show
from distill.readers import read_json, read_text

from ._common import console
from ._tables import Column, print_table

COLUMNS = [
    ("run", None), ("student", None), ("loss", None), ("teacher", None),
    ("top1", "{:.2f}"), ("top1_cls", "{:.2f}"), ("top1_dist", "{:.2f}"),
    ("teacher_top1", "{:.2f}"), ("params", "{:,}"), ("train img/s", "{:.0f}"),
    ("eval img/s", "{:.0f}"), ("wall s", "{:.0f}"),
]
KEYS = {"train img/s": "train_images_per_s", "eval img/s": "eval_images_per_s",
        "wall s": "wall_time_s"}
# Kept in a narrow terminal, where the other columns go as they do not fit.
KEY_COLUMNS = {"run", "student", "loss", "top1", "top1_cls", "top1_dist"}


def shown(path: Path) -> str:
    """`path` relative to the working directory (absolute where there is no relative path,
    as between two drives)."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(Path(path).absolute())


def load_summary(run: Path) -> dict:
    """The run's summary.json; a damaged one (not JSON, not an object, a column that is not
    a number) is one line naming the file."""
    path = run / "summary.json"
    if not path.is_file():
        raise UsageError(f"{run}: no summary.json (is the run finished?)")
    summary = read_json(path, "summary.json")
    if not isinstance(summary, dict):
        raise UsageError(f"{path}: expected a JSON object, got {type(summary).__name__} "
                         "(a damaged summary.json?)")
    for column, fmt in COLUMNS:
        key = KEYS.get(column, column)
        value = summary.get(key)
        if fmt is not None and value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))):
            raise UsageError(f"{path}: {key}: expected a number (got {show(value)})")
    return summary


def print_runs(runs: list[Path]) -> None:
    """The runs' table (`_tables`: at 80 columns, one run is label/value rows; several keep
    the run, student, loss and top-1 columns)."""
    rows = []
    for run in runs:
        s = load_summary(run) | {"run": shown(run)}
        rows.append([("" if s.get(KEYS.get(c, c)) is None else
                      (fmt.format(s[KEYS.get(c, c)]) if fmt else str(s[KEYS.get(c, c)])))
                     for c, fmt in COLUMNS])
    keep = [i for i, _ in enumerate(COLUMNS) if any(r[i] for r in rows)]
    columns = [Column(COLUMNS[i][0], numeric=COLUMNS[i][1] is not None,
                      key=COLUMNS[i][0] in KEY_COLUMNS) for i in keep]
    print_table(console, columns, [[r[i] for i in keep] for r in rows],
                where="each run's summary.json has them all")


def metrics_files(runs: list[Path], plot: Path) -> list[Path]:
    """The `metrics.jsonl` of each run, checked before anything is drawn (a file that is
    not UTF-8 text is refused; lines that are not JSON are skipped when read)."""
    if plot.suffix.lower() != ".png":
        raise UsageError(f"--plot: '{plot}' is not a .png file name")
    if plot.is_dir():
        raise UsageError(f"--plot: '{plot}' is a folder; give a file name such as curves.png")
    files = [run / "metrics.jsonl" for run in runs]
    for f in files:
        if not f.is_file():
            raise UsageError(f"--plot: {shown(f)}: no such file (the run's metrics to plot)")
        try:
            read_text(f, "metrics.jsonl")
        except UsageError as exc:
            raise UsageError(f"--plot: {exc.lines[0]}") from None
    return files


def plot_runs(runs: list[Path], path: Path) -> None:
    """Training curves of `runs` (their `metrics.jsonl`) into `path`, a line per run."""
    from distill.plots import read_metrics, training_curves

    files = metrics_files(runs, path)
    training_curves({shown(run): read_metrics(f) for run, f in zip(runs, files)}, path)
    console.print(f"training curves → {shown(path)}", highlight=False)


def report(
    runs: list[Path] = typer.Argument(..., help="Run directories."),
    plot: Path = typer.Option(None, "--plot", metavar="FILE.png", help="Also draw the runs' "
                              "training curves (train loss, top-1 per evaluation, learning "
                              "rate) from their metrics.jsonl into FILE.png."),
) -> None:
    """Print a table of finished runs (accuracy of each head, teacher, parameters, images/s).

    With --plot FILE.png, also draw their training curves."""
    for run in runs:  # every input checked before anything is printed or written
        load_summary(run)
    if plot is not None:
        metrics_files(runs, plot)
    print_runs(runs)
    if plot is not None:
        plot_runs(runs, plot)
