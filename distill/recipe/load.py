"""Loading recipes: YAML, dotted overrides and shortcuts, then the schema and the
validation pass (`recipe_from_dict`), and the checks and dumps around them.

Recipe text is read strictly and with bounds by `text` (`parse_yaml`); `--set` values go
through the same parser. Every problem is one short line (values excerpted by
`validate.one_line`). A teacher named on the command
line other than the file's drops the file's `TEACHER_MODEL_FIELDS` (`load_recipe`)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from distill.errors import UsageError, one_line, show
from distill.readers import path_is
from distill.registry import DATASETS, LOSSES, RegistryError
from distill.teacher import NO_TEACHER, parse_teacher

from .schema import FieldError, Recipe
from .text import RecipeYAMLError, parse_yaml, read_yaml
from .validate import problems as recipe_problems
from .validate import validate

__all__ = ["TEACHER_MODEL_FIELDS", "apply_overrides", "check_paths", "default_out",
           "dump_recipe", "load_recipe", "recipe_from_dict"]


# The per-model fields of a teacher: they describe the model `teacher.name` names, so a
# command line that names another teacher drops the recipe file's values of them.
TEACHER_MODEL_FIELDS = ("input_size", "mean", "std", "interpolation", "kwargs", "weights",
                        "cache", "members")


def apply_overrides(data: dict[str, Any], overrides: list[str],
                    raw: dict[str, Any] | None = None) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides (values read as YAML, with a recipe's bounds; a value
    that is not YAML is taken as text), then `raw` {dotted key: value} assignments taken as
    they are (paths and names from dedicated flags)."""
    data = copy.deepcopy(data)
    problems = []
    items: list[tuple[str, Any, str]] = []
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {show(item)}: expected KEY=VALUE, e.g. optim.lr=1e-3")
            continue
        try:
            value = parse_yaml(text) if text.strip() else None
        except RecipeYAMLError as exc:
            problems.append(f"--set {show(item)}: {exc.problem}")
            continue
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
                problems.append(f"--set {show(item)}: {show(part)} is not a section")
                break
            node = child
        else:
            node[parts[-1]] = value
    if problems:
        raise UsageError(*problems)
    return data


MAX_LINES = 10  # problems shown of one recipe; the rest are counted


def _part(p: Any) -> str:
    text = str(p)
    return text if len(text) <= 40 else text[:37] + "..."


def _format_errors(exc: ValidationError, source: str) -> list[str]:
    """One line per problem; errors of the items of one list that say the same thing are
    one line ("and 99 more like it"), and so are more than 3 unknown fields of one section."""
    lines: dict[tuple[Any, ...], list[Any]] = {}
    unknown: dict[tuple[str, ...], list[str]] = {}
    for err in exc.errors(include_url=False):
        loc = [_part(p) for p in err["loc"]]
        msg = err["msg"]
        value = err.get("input")
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, FieldError):
            loc = loc + ctx_err.field.split(".")
            msg, value = ctx_err.message, ctx_err.value
        elif isinstance(ctx_err, (RegistryError, UsageError)):
            msg = str(ctx_err)
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
            unknown.setdefault(tuple(loc[:-1]), []).append(loc[-1] if loc else "?")
        field = ".".join(loc) or "recipe"
        shown = "" if err["type"] == "missing" else f" (got {show(value)})"
        like = (tuple("#" if isinstance(p, int) else str(p) for p in err["loc"]), msg)
        if err["type"] == "extra_forbidden":
            like = ("unknown", tuple(loc[:-1]), len(unknown[tuple(loc[:-1])]))
        if like in lines:
            lines[like][1] += 1
        else:
            lines[like] = [f"{source}: {field}: {msg}{shown}", 0]
    out = []
    for like, (line, more) in lines.items():
        if like[0] == "unknown" and len(unknown[like[1]]) > 3:
            if like[2] == 1:  # the first of many: one line for all of them
                names = unknown[like[1]]
                out.append(f"{source}: {'.'.join(like[1]) or 'recipe'}: unknown fields "
                           f"{', '.join(map(show, names[:3]))} and {len(names) - 3} more")
            continue
        out.append(line + (f" (and {more} more like it)" if more else ""))
    return out


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


def _short_lines(exc: UsageError) -> UsageError:
    """`exc` with each line one short line (values excerpted) and at most `MAX_LINES`."""
    lines = [one_line(line) for line in exc.lines]
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES - 1], f"... and {len(lines) - MAX_LINES + 1} more problems"]
    if lines != exc.lines:
        exc.lines = lines
        exc.args = ("\n".join(lines),)
    return exc


def recipe_from_dict(data: dict[str, Any], source: str = "recipe") -> Recipe:
    """The schema, then the validation pass; every problem of both in one `UsageError`."""
    try:
        try:
            recipe = Recipe.model_validate(data)
        except ValidationError as exc:
            lines = _format_errors(exc, source)
            sound = _sound_sections(data, exc)
            if sound is not None:  # the checks of the sections that passed, all the same
                lines += [p.line(source) for p in recipe_problems(*sound)]
            raise UsageError(*lines) from None
        return validate(recipe, source)
    except UsageError as exc:
        raise _short_lines(exc) from None


def _teacher_name(data: Any) -> Any:
    """The teacher a recipe tree names, "no teacher" spelled None."""
    section = data.get("teacher") if isinstance(data, dict) else None
    name = section.get("name") if isinstance(section, dict) else None
    if isinstance(name, str):
        name = name.strip()
        return None if name.lower() in NO_TEACHER else name
    return name


def _swap_teacher(data: dict[str, Any], merged: dict[str, Any],
                  keys: list[str]) -> list[str] | None:
    """The teacher swap rule. When the command line names another teacher than the recipe
    file (`merged` is `data` with the command line applied, `keys` the dotted fields the
    command line set), the file's `TEACHER_MODEL_FIELDS` (those describing its own teacher's
    model) are dropped from `data` in place, but for those the command line sets itself;
    the new teacher's own configuration then applies. Returns `field=value` of each
    dropped value, or None when the teacher is the same."""
    section = data.get("teacher")
    if not isinstance(section, dict) or "teacher" in keys:
        return None
    if _teacher_name(data) == _teacher_name(merged):
        return None
    dropped = []
    for name in TEACHER_MODEL_FIELDS:
        if name not in section or any(k == f"teacher.{name}" or k.startswith(f"teacher.{name}.")
                                      for k in keys):
            continue
        value = section.pop(name)
        if value not in (None, {}, []):
            dropped.append(f"teacher.{name}={show(value)}")
    return dropped


def load_recipe(
    path: str | Path | None,
    overrides: list[str] | None = None,
    *,
    teacher: str | None = None,
    student: str | None = None,
    loss: str | None = None,
    raw: dict[str, Any] | None = None,
    note: Callable[[str], None] | None = None,
) -> Recipe:
    """Read, override and validate a recipe. Shortcuts and `raw` (values taken verbatim,
    e.g. `{"run.out": "2024"}`) win over `--set` of the same field. Without `run.out`, a
    recipe read from a file runs in `default_out(path)`.

    A teacher other than the file's (`teacher=`, `--set teacher.name=…` or `raw`) drops the
    file's per-model teacher fields (`TEACHER_MODEL_FIELDS`: input size, mean, std,
    interpolation, kwargs, weights, cache, members) unless the overrides set them;
    `pretrained`, `mix_targets` and `cache_verify` stay. `note` is told which were dropped,
    once the recipe is valid."""
    try:
        data = read_yaml(Path(path)) if path is not None else {}
        overrides = list(overrides or [])
        raw = dict(raw or {})
        for key, value in (("teacher.name", teacher), ("student.name", student),
                           ("loss.name", loss)):
            if value is not None:
                raw[key] = value
        merged = apply_overrides(data, overrides, raw)
        keys = [item.partition("=")[0].strip() for item in overrides] + list(raw)
        data = copy.deepcopy(data)
        dropped = _swap_teacher(data, merged, keys)
        if dropped:
            merged = apply_overrides(data, overrides, raw)
        run = merged.get("run")
        if path is not None and (run is None or (isinstance(run, dict) and run.get("out") is None)):
            merged = apply_overrides(merged, [], {"run.out": str(default_out(Path(path)))})
        recipe = recipe_from_dict(merged, str(path) if path is not None else "recipe")
    except UsageError as exc:
        raise _short_lines(exc) from None
    if dropped and note is not None and recipe.teacher.name is not None:
        note(one_line(f"teacher {show(recipe.teacher.name)} replaces the recipe's "
                      f"{show(_teacher_name(data))}; the old teacher's {', '.join(dropped)} "
                      f"{'is' if len(dropped) == 1 else 'are'} dropped (the new teacher's own "
                      "apply; set one with --set teacher.FIELD=VALUE)"))
    return recipe


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

    def need(field: str, path: Path | None, kind: str, missing: str) -> None:
        found = True if path is None else path_is(path, kind)
        if isinstance(found, str):
            problems.append(f"{field}: cannot look at '{path}' ({found})")
        elif not found:
            problems.append(f"{field}: {missing} (got '{path}')")

    root_check = DATASETS.facts(recipe.data.name).root_check
    if root_check is not None and recipe.data.root is not None:  # the dataset's own check
        problem = root_check(recipe.data.root)
        problems += [problem] if problem else []
    else:
        need("data.root", recipe.data.root, "any", "folder not found")
    if recipe.data.root is None:
        default = DATASETS.facts(recipe.data.name).default_root
        if default is not None and not Path(default).exists():
            problems.append(f"data.root: not set and the default '{default}' does not exist"
                            f" (dataset '{recipe.data.name}')")
    need("student.init", recipe.student.init, "file", "file not found")
    need("teacher.weights", recipe.teacher.weights, "file", "file not found")
    cache = recipe.teacher.cache
    found = True if cache is None else path_is(cache / "manifest.json", "file")
    if isinstance(found, str):
        problems.append(f"teacher.cache: cannot look at '{cache}' ({found})")
    elif not found:
        problems.append(f"teacher.cache: no manifest.json in '{cache}' (build it "
                        "with `distill cache build`)")
    if recipe.teacher.name is not None and LOSSES.facts(recipe.loss.name).needs_teacher:
        try:
            parse_teacher(recipe.teacher.name).check_paths()
        except UsageError as exc:
            problems.append(f"teacher.name: {exc} (got {show(recipe.teacher.name)})")
        except (OSError, ValueError) as exc:  # a name the file system cannot look at
            reason = getattr(exc, "strerror", None) or exc
            problems.append(f"teacher.name: cannot look at it ({reason}) (got "
                            f"{show(recipe.teacher.name)})")
    if problems:
        raise UsageError(*map(one_line, problems))


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML (every field, defaults included)."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, width=100)
