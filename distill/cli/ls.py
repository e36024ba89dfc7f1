"""`distill list teachers|students|losses|datasets [PATTERN]`."""

from __future__ import annotations

from enum import Enum

import typer
from rich.table import Table

from distill.errors import UsageError
from distill.registry import DATASETS, LOSSES, STUDENTS, TEACHERS, Registry

from ._common import console


class Kind(str, Enum):
    teachers = "teachers"
    students = "students"
    losses = "losses"
    datasets = "datasets"


REGISTRIES: dict[Kind, Registry] = {
    Kind.teachers: TEACHERS, Kind.students: STUDENTS, Kind.losses: LOSSES,
    Kind.datasets: DATASETS,
}


def _doc(fn: object) -> str:
    return ((getattr(fn, "__doc__", None) or "").strip().splitlines() or [""])[0]


def _models(source: str, pattern: str) -> list[str]:
    glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
    if source == "timm":
        import timm

        return [f"timm:{m}" for m in timm.list_models(glob)]
    if source == "torchvision":
        import fnmatch

        import torchvision.models as tvm

        return [f"torchvision:{m}" for m in sorted(tvm.list_models(module=tvm))
                if fnmatch.fnmatch(m, glob)]
    raise UsageError(f"--source: expected 'timm' or 'torchvision', got '{source}'")


def list_parts(
    kind: Kind = typer.Argument(..., help="What to list."),
    pattern: str = typer.Argument(None, help="Filter names (glob or substring). For teachers "
                                  "and students it also searches timm and torchvision models."),
    source: str = typer.Option(None, "--source", help="Only models of this source: timm or "
                               "torchvision."),
) -> None:
    """List registered parts; with a PATTERN also the matching timm/torchvision models."""
    registry = REGISTRIES[kind]
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("name")
    table.add_column("description")
    if source is None:
        for name in registry.names(pattern):
            entry = registry.entry(name)
            desc = _doc(entry.fn)
            if kind is Kind.teachers:
                name = f"{name}:<...>"
            if kind is Kind.students and entry.facts.distilled:
                desc = f"distilled {desc}"
            if entry.source.startswith("plugin "):
                desc += f" [{entry.source}]"
            table.add_row(name, desc)
    models: list[str] = []
    if pattern and kind in (Kind.teachers, Kind.students):
        sources = [source] if source else (["timm", "torchvision"] if kind is Kind.teachers
                                           else ["timm"])
        for src in sources:
            models += _models(src, pattern)
    elif source is not None:
        raise UsageError("--source: give a PATTERN to search timm or torchvision models")
    for m in models:
        table.add_row(m, "")
    if table.row_count == 0:
        raise UsageError(f"no {kind.value} match '{pattern}'")
    console.print(table)
