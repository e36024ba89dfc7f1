"""The cells of a benchmark: which (loss, teacher, student, seed) runs, with which recipe.

A cell is an ordinary run of `distill train`. Its recipe is the bench's recipe with the
cell's loss, teacher, student and seed put in, and, unless the recipe is already about
that loss, the paper's settings for the loss (DeiT §5.1 and Table 3): soft distillation
with τ = 3 and α = 0.1, hard and token distillation with α = 0.5 and the teacher's argmax.
The user's `--set` overrides come after those, so they win.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.errors import OptionError, UsageError
from distill.recipe import Recipe, load_recipe, parse_yaml
from distill.registry import LOSSES, TEACHERS
from distill.student import student_facts
from distill.teacher import parse_members

__all__ = ["Cell", "paper_settings", "plan_cells", "student_for", "teacher_slug"]

def paper_settings(loss: str) -> list[str]:
    """The paper's settings of `loss` as `--set` overrides (its `LossFacts.paper`), given to
    a cell when the bench's recipe is about another loss."""
    return [f"loss.{key}={value}" for key, value in LOSSES.facts(loss).paper.items()]


@dataclass(frozen=True)
class Cell:
    """One run of the matrix. `teacher` is None for losses that use no teacher."""

    loss: str
    teacher: str | None
    student: str
    seed: int
    recipe: Recipe = field(compare=False, repr=False, hash=False)

    @property
    def name(self) -> str:
        """The run directory's name: `token-checkpoint_teacher_resnet-deit_tiny_distilled-s0`."""
        return _cell_name(self.loss, self.teacher, self.student, self.seed)


def _cell_name(loss: str, teacher: str | None, student: str, seed: int) -> str:
    """The run directory's name of the cell (loss, teacher, student, seed)."""
    short = re.sub(r"_patch\d+_\d+$", "", student.replace("timm:", "timm_"))
    return f"{loss}-{teacher_slug(teacher) if teacher else 'no_teacher'}-{short}-s{seed}"


def teacher_slug(spec: str) -> str:
    """A file-name-safe short form of a teacher spec (`checkpoint:runs/a/b` -> `checkpoint_b`):
    its adapter's own (`AdapterFacts.slug`); for a teacher of members, its members' joined
    by `+` (`ensemble:0.7*timm:a+0.3*checkpoint:runs/b` -> `ensemble_0.7timm_a+0.3checkpoint_b`,
    cut to 80 characters with a hash of the spec)."""
    adapter, _, target = spec.partition(":")
    facts = TEACHERS.facts(adapter) if adapter in TEACHERS else None
    if facts is not None and facts.slug is not None:
        return _safe_slug(str(facts.slug(target)), spec)
    if facts is not None and facts.members:
        pairs = parse_members(target, adapter)
        weighted = len({w for w, _ in pairs}) > 1
        slug = f"{adapter}_" + "+".join(f"{w:g}" * weighted + teacher_slug(s) for w, s in pairs)
        if len(slug) > 80:
            digest = hashlib.sha256(spec.encode()).hexdigest()[:8]
            slug = f"{slug[:71].rstrip('+_.')}-{digest}"
        return slug
    tail = Path(target.rstrip("/")).name or target
    return re.sub(r"[^A-Za-z0-9_.]+", "_", f"{adapter}_{tail}").strip("_")


def _safe_slug(slug: str, spec: str) -> str:
    """An adapter's own slug under the default one's rules: runs of characters other than
    letters, digits, `_` and `.` become `_`; no `_` or `.` at either end (no `.`, `..` or
    hidden name), no `..` inside; at most 80 characters (cut with a hash of the spec); the
    spec's hash where nothing is left."""
    digest = hashlib.sha256(spec.encode()).hexdigest()[:8]
    slug = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9_.]+", "_", slug)).strip("_.")
    if len(slug) > 80:
        slug = f"{slug[:71].rstrip('_.')}_{digest}"
    return slug or f"teacher_{digest}"


def _counterpart(name: str, distilled: bool) -> str | None:
    """The same student with (or without) the distillation token, by timm's naming
    (`deit_small_patch16_224` <-> `deit_small_distilled_patch16_224`)."""
    if distilled:
        return name.replace("_patch", "_distilled_patch", 1) if "_patch" in name else None
    return name.replace("_distilled", "", 1) if "_distilled" in name else None


def student_for(loss: str, student: str) -> str | None:
    """A student that fits `loss` (a distillation token for `token`, none for the others),
    built like `student`; None if there is no such counterpart."""
    wants_dist = LOSSES.facts(loss).heads == "dist"
    if student_facts(student).distilled == wants_dist:
        return student
    other = _counterpart(student, wants_dist)
    if other is None:
        return None
    try:
        return other if student_facts(other).distilled == wants_dist else None
    except UsageError:
        return None


def _fits(loss: str, student: str) -> bool:
    wants_dist = LOSSES.facts(loss).heads == "dist"
    return student_facts(student).distilled == wants_dist


def _split_list(text: str | None, option: str) -> list[str]:
    items = [t.strip() for t in (text or "").split(",") if t.strip()]
    if text is not None and not items:
        raise OptionError(option, f"expected a comma-separated list, got '{text}'")
    return items


def plan_cells(recipe_path: Path, *, losses: str | None = None, teachers: str | None = None,
               students: str | None = None, seeds: str | None = None,
               sets: list[str] | None = None, out: Path,
               note: Callable[[str], None] | None = None) -> list[Cell]:
    """The matrix: losses × teachers × students × seeds, each cell's recipe validated now.

    Losses that use no teacher get one cell per student and seed, whatever `teachers` says.
    Without `students`, each loss gets the recipe's student or its counterpart with or
    without the distillation token; with `students`, each loss gets those that fit it.
    `note` hears, once each, what a teacher of `teachers` drops of the recipe's teacher.
    """
    sets = list(sets or [])
    base = load_recipe(recipe_path, sets)
    loss_names = _split_list(losses, "losses") or [base.loss.name]
    for name in loss_names:
        try:
            LOSSES.entry(name)
        except UsageError as exc:
            raise OptionError("losses", f"{exc}") from None
    teacher_specs = _split_list(teachers, "teachers") or (
        [base.teacher.name] if base.teacher.name else [])
    seed_list = []
    for s in _split_list(seeds, "seeds") or [str(base.run.seed)]:
        try:
            seed_list.append(int(s))
        except ValueError:
            raise OptionError("seeds", f"'{s}' is not an integer") from None
    given = _split_list(students, "students")
    raw_loss = (parse_yaml(Path(recipe_path).read_text()) or {}).get("loss") or {}
    recipe_loss = raw_loss.get("name", base.loss.name) if isinstance(raw_loss, dict) else None

    heard: dict[str, None] = {}
    cells: list[Cell] = []
    for loss in dict.fromkeys(loss_names):
        if given:
            fit = [s for s in given if _fits(loss, s)]
            if not fit:
                raise OptionError("students", f"none of {', '.join(given)} fits loss '{loss}' "
                                 "(`token` needs a *_distilled_* student, the others one "
                                 "without a distillation token)")
        else:
            one = student_for(loss, base.student.name)
            if one is None:
                raise OptionError("losses", f"'{loss}' needs a student "
                                 f"{'with' if LOSSES.facts(loss).heads == 'dist' else 'without'}"
                                 " a distillation "
                                 f"token and '{base.student.name}' has no such counterpart; "
                                 "pass --students")
            fit = [one]
        facts = LOSSES.facts(loss)
        needs_teacher = facts.needs_teacher
        if needs_teacher and not teacher_specs:
            raise OptionError("teachers", f"loss '{loss}' needs a teacher and the recipe names "
                             "none; pass --teachers timm:<model>,checkpoint:<run dir>,…")
        defaults = [] if loss == recipe_loss else paper_settings(loss)
        for teacher in (teacher_specs if needs_teacher else [None]):
            for student in fit:
                for seed in seed_list:
                    run_dir = out / "cells" / _cell_name(loss, teacher, student, seed)
                    raw: dict[str, Any] = {"loss.name": loss, "student.name": student,
                                           "run.seed": seed, "run.out": str(run_dir)}
                    if teacher is not None and teacher == base.teacher.name:
                        # the recipe's own teacher, as resolved (an ensemble's list of
                        # members is read into its name and kwargs)
                        raw["teacher"] = base.teacher.model_dump(mode="json")
                    else:  # a recipe's cache is its own teacher's
                        raw.update({"teacher.name": teacher, "teacher.cache": None})
                    where = f"cell {loss}/{teacher or 'no teacher'}/{student}/seed {seed}"
                    try:
                        r = load_recipe(recipe_path, [*defaults, *sets], raw=raw,
                                        note=heard.setdefault)
                    except UsageError as exc:
                        raise UsageError(*[f"{where}: {line}" for line in exc.lines]) from None
                    cells.append(Cell(loss, teacher, student, seed, r))
    for text in heard if note is not None else ():
        note(text)
    names = [c.name for c in cells]
    twins = sorted({n for n in names if names.count(n) > 1})
    if twins:
        raise UsageError(f"two cells would share the run folder '{twins[0]}': a seed, student "
                         "or teacher is given twice, or two teachers' checkpoint folders have "
                         "the same name (--seeds, --students, --teachers)")
    return cells
