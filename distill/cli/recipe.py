"""`distill recipe show|validate|schema`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from distill.errors import DistillError, UsageError
from distill.recipe import Recipe, check_paths, dump_recipe

from ._common import (
    LossOption,
    SetOption,
    StudentOption,
    TeacherOption,
    console,
    err_console,
    flush_notes,
    resolve,
)

app = typer.Typer(help="Show, validate and describe recipes.", no_args_is_help=True)


@app.command("show")
def show(
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    teacher: str = TeacherOption,
    student: str = StudentOption,
    loss: str = LossOption,
    sets: list[str] = SetOption,
) -> None:
    """Print the resolved recipe (defaults and overrides applied) as YAML."""
    r = resolve(recipe, sets, teacher, student, loss)
    flush_notes()
    typer.echo(dump_recipe(r), nl=False)


@app.command("validate")
def validate(
    recipes: list[Path] = typer.Argument(..., help="Recipe YAML files."),
    teacher: str = TeacherOption,
    student: str = StudentOption,
    loss: str = LossOption,
    sets: list[str] = SetOption,
    paths: bool = typer.Option(True, "--paths/--no-paths", help="Also check that data roots, "
                               "weights and checkpoints exist."),
) -> None:
    """Validate recipes: schema, registry names, loss/student fit, and (by default) paths."""
    problems: list[str] = []
    for path in recipes:
        try:
            r = resolve(path, sets, teacher, student, loss)
            if paths:
                check_paths(r)
        except DistillError as exc:
            problems += [line if line.startswith(str(path)) else f"{path}: {line}"
                         for line in exc.lines]
            continue
        flush_notes()
        err_console.print(f"ok  {path}")
    if problems:
        raise UsageError(*problems)


@app.command("schema")
def schema() -> None:
    """Print the recipe JSON Schema (for editors: completion and checking)."""
    typer.echo(json.dumps(Recipe.model_json_schema(), indent=2))


__all__ = ["app", "console"]
