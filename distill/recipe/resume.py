"""A run's recipe read back, and how another recipe differs from it: what `--resume`
and a bench's finished cells may and may not change."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distill.errors import UsageError

from .load import apply_overrides, recipe_from_dict
from .schema import Recipe
from .text import read_yaml

__all__ = ["RESUME_FREE_FIELDS", "load_run_recipe", "recipe_diff", "resume_changes"]

RUN_RECIPE = "recipe.yaml"

# Fields a resumed run may change: they do not alter what is computed.
RESUME_FREE_FIELDS = frozenset({
    "run.out", "run.log_every", "run.threads", "run.compile", "data.num_workers",
    "data.eval_batch_size", "teacher.cache_verify",
})


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def recipe_diff(a: Recipe, b: Recipe) -> list[str]:
    """Dotted fields whose values differ between two recipes."""
    fa, fb = _flatten(a.model_dump(mode="json")), _flatten(b.model_dump(mode="json"))
    return sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))


def resume_changes(prior: Recipe, recipe: Recipe) -> list[str]:
    """The fields at which `recipe` differs from the run's `prior` recipe and which a
    resumed run may not change (all but `RESUME_FREE_FIELDS`)."""
    return [f for f in recipe_diff(prior, recipe) if f not in RESUME_FREE_FIELDS]


def load_run_recipe(run: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """The recipe a run directory (or its `recipe.yaml` itself) was run with, validated
    again, with `--set`-style `overrides` applied."""
    path = Path(run)
    if path.is_dir() or path.suffix not in (".yaml", ".yml"):
        if not (path / RUN_RECIPE).is_file():
            raise UsageError(f"{path}: not a run directory (no {RUN_RECIPE})")
        path = path / RUN_RECIPE
    data = apply_overrides(read_yaml(path), list(overrides))
    return recipe_from_dict(data, str(path))
