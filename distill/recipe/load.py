"""Loading recipes: YAML, dotted overrides and shortcuts, then the schema and the
validation pass (`recipe_from_dict`), and the checks and dumps around them."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from distill.errors import UsageError
from distill.registry import DATASETS, LOSSES, RegistryError

from .schema import Recipe, _FieldError
from .validate import _show, validate
from .validate import problems as recipe_problems

__all__ = ["apply_overrides", "check_paths", "default_out", "dump_recipe", "load_recipe",
           "parse_yaml", "recipe_from_dict"]


class _Loader(yaml.SafeLoader):
    """Safe YAML that also reads `1e-3` as a float (YAML 1.2; PyYAML's 1.1 wants `1.0e-3`)."""


_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UsageError(f"{path}: recipe file not found")
    try:
        data = parse_yaml(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{path}:{where}: invalid YAML ({problem})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a recipe is a mapping of sections, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str],
                    raw: dict[str, Any] | None = None) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides (values read as YAML), then `raw` {dotted key: value}
    assignments taken as they are (paths and names from dedicated flags)."""
    data = copy.deepcopy(data)
    problems = []
    items: list[tuple[str, Any, str]] = []
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {item!r}: expected KEY=VALUE, e.g. optim.lr=1e-3")
            continue
        try:
            value = parse_yaml(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        items.append((key, value, item))
    items += [(key, value, f"{key}={value}") for key, value in (raw or {}).items()]
    for key, value, item in items:
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                problems.append(f"--set {item!r}: '{part}' is not a section")
                break
            node = child
        else:
            node[parts[-1]] = value
    if problems:
        raise UsageError(*problems)
    return data


def _format_errors(exc: ValidationError, source: str) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        msg = err["msg"]
        value = err.get("input")
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, _FieldError):
            loc = loc + ctx_err.field.split(".")
            msg, value = ctx_err.message, ctx_err.value
        elif isinstance(ctx_err, (RegistryError, UsageError)):
            msg = str(ctx_err)
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        field = ".".join(loc) or "recipe"
        shown = "" if err["type"] == "missing" else f" (got {_show(value)})"
        lines.append(f"{source}: {field}: {msg}{shown}")
    return lines


def _sound_sections(data: Any, exc: ValidationError) -> tuple[Recipe, set[str]] | None:
    """The sections that passed the schema (the others at their defaults), and the names
    of those that did not; None if the recipe as a whole is not a mapping."""
    bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
    if not isinstance(data, dict) or any(not err["loc"] for err in exc.errors()):
        return None
    try:
        return Recipe.model_validate(
            {k: v for k, v in data.items() if k in Recipe.model_fields and k not in bad}), bad
    except ValidationError:
        return None


def recipe_from_dict(data: dict[str, Any], source: str = "recipe") -> Recipe:
    """The schema, then the validation pass; every problem of both in one `UsageError`."""
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        lines = _format_errors(exc, source)
        sound = _sound_sections(data, exc)
        if sound is not None:  # the checks of the sections that passed, all the same
            lines += [p.line(source) for p in recipe_problems(*sound)]
        raise UsageError(*lines) from None
    return validate(recipe, source)


def load_recipe(
    path: str | Path | None,
    overrides: list[str] | None = None,
    *,
    teacher: str | None = None,
    student: str | None = None,
    loss: str | None = None,
    raw: dict[str, Any] | None = None,
) -> Recipe:
    """Read, override and validate a recipe. Shortcuts and `raw` (values taken verbatim,
    e.g. `{"run.out": "2024"}`) win over `--set` of the same field. Without `run.out`, a
    recipe read from a file runs in `default_out(path)`."""
    data = _read_yaml(Path(path)) if path is not None else {}
    raw = dict(raw or {})
    for key, value in (("teacher.name", teacher), ("student.name", student),
                       ("loss.name", loss)):
        if value is not None:
            raw[key] = value
    data = apply_overrides(data, list(overrides or []), raw)
    run = data.get("run")
    if path is not None and (run is None or (isinstance(run, dict) and run.get("out") is None)):
        data = apply_overrides(data, [], {"run.out": str(default_out(Path(path)))})
    return recipe_from_dict(data, str(path) if path is not None else "recipe")


def default_out(path: Path) -> Path:
    """`recipes/fmnist/teacher.yaml` -> `runs/fmnist/teacher`; elsewhere `runs/<stem>`."""
    parts = path.with_suffix("").parts
    if "recipes" in parts:
        rest = parts[len(parts) - 1 - parts[::-1].index("recipes") + 1:]
        return Path("runs", *rest)
    return Path("runs", path.stem)


def check_paths(recipe: Recipe) -> None:
    """Check the files a recipe points at exist (data root, weights, checkpoints)."""
    problems = []
    if recipe.data.root is not None and not recipe.data.root.exists():
        problems.append(f"data.root: folder not found (got '{recipe.data.root}')")
    if recipe.data.root is None:
        default = DATASETS.facts(recipe.data.name).default_root
        if default is not None and not Path(default).exists():
            problems.append(f"data.root: not set and the default '{default}' does not exist"
                            f" (dataset '{recipe.data.name}')")
    if recipe.student.init is not None and not recipe.student.init.is_file():
        problems.append(f"student.init: file not found (got '{recipe.student.init}')")
    if recipe.teacher.weights is not None and not recipe.teacher.weights.is_file():
        problems.append(f"teacher.weights: file not found (got '{recipe.teacher.weights}')")
    if recipe.teacher.cache is not None and not (recipe.teacher.cache / "manifest.json").is_file():
        problems.append(f"teacher.cache: no manifest.json in '{recipe.teacher.cache}' (build it "
                        "with `distill cache build`)")
    if recipe.teacher.name is not None and LOSSES.facts(recipe.loss.name).needs_teacher:
        from teachers.spec import parse_teacher

        try:
            parse_teacher(recipe.teacher.name).check_paths()
        except UsageError as exc:
            problems.append(f"teacher.name: {exc} (got '{recipe.teacher.name}')")
    if problems:
        raise UsageError(*problems)


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML (every field, defaults included)."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, width=100)
