"""The validation pass: every check that reads a registry or spans sections, on a recipe
whose schema already holds, collecting every problem (as torchtune's `config._validate`
collects every bad component) instead of stopping at the first.

Each problem names its dotted field and the value the user wrote: `source: field:
message (got value)`. A check is skipped when a name it depends on is unknown (already
reported) or when a section it reads failed the schema (`skip`), so one mistake makes one
line. The student is built on the meta device only where no direct check knows its shape
rules: a student whose registration declares none (`StudentFacts.shape_problem`), and
`timm:` students.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from distill.errors import UsageError, one_line, show
from distill.registry import DATASETS, LOSSES, LossFacts, StudentFacts
from distill.student import build_student, check_kwargs, student_facts
from distill.teacher import TeacherRef, parse_teacher

if TYPE_CHECKING:
    from .schema import Recipe

__all__ = ["Problem", "one_line", "problems", "validate"]

_UNSET: Any = object()


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a recipe: its dotted field, what is wrong, the value given."""

    field: str
    message: str
    value: Any = _UNSET

    def line(self, source: str = "recipe") -> str:
        shown = "" if self.value is _UNSET else f" (got {show(self.value)})"
        return one_line(f"{source}: {self.field}: {self.message}{shown}")


def validate(recipe: Recipe, source: str = "recipe") -> Recipe:
    """The recipe if every check passes; else one `UsageError` with a line per problem."""
    found = problems(recipe)
    if found:
        raise UsageError(*[p.line(source) for p in found])
    return recipe


def problems(recipe: Recipe, skip: Collection[str] = ()) -> list[Problem]:
    """Every problem of `recipe`. Sections in `skip` failed the schema (they hold defaults
    here): their own checks are left out, and so are the checks across sections, which
    wait for a recipe whose every section is sound (as they did inside pydantic)."""
    out: list[Problem] = []
    ok = {name: name not in skip for name in type(recipe).model_fields}
    if ok["data"]:
        _dataset(recipe, out)
    student = _student(recipe, out) if ok["student"] else None
    before = len(out)
    teacher = _teacher(recipe, out) if ok["teacher"] else None
    teacher_ok = ok["teacher"] and len(out) == before  # no teacher, or a sound spec
    loss = _loss(recipe, out) if ok["loss"] else None
    if ok["augment"]:
        _auto_augment(recipe, out)
    if skip:
        return out
    if loss is not None and student is not None:
        _heads(recipe, loss, student, out)
    if loss is not None and loss.needs_teacher and recipe.teacher.name is None:
        out.append(Problem("teacher.name", f"loss '{recipe.loss.name}' needs a teacher",
                           recipe.teacher.name))
    if teacher_ok and recipe.teacher.cache is not None and (teacher is None or teacher.cached):
        out.append(Problem("teacher.cache", "names the cache of the teacher in teacher.name; "
                           "set teacher.name to the teacher it was built from, or use "
                           "--teacher cache:<dir> alone", str(recipe.teacher.cache)))
    if recipe.augment.mixing and recipe.data.batch_size % 2:
        out.append(Problem("data.batch_size", "must be even with mixup/cutmix",
                           recipe.data.batch_size))
    if student is not None:
        _student_builds(recipe, student, out)
    return out


# -- one section -------------------------------------------------------------------------
def _dataset(recipe: Recipe, out: list[Problem]) -> None:
    d = recipe.data
    try:
        DATASETS.entry(d.name)
    except UsageError as exc:
        out.append(Problem("data.name", str(exc), d.name))
        return
    params = inspect.signature(DATASETS.get(d.name)).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [k for k in params if k not in ("split", "root")]
    accepts = f"(accepts: {', '.join(allowed) or 'none'})"
    unknown = [key for key in d.options if key not in allowed]
    if len(unknown) > 3:  # one line, not one per key
        out.append(Problem("data.options", f"unknown options for dataset '{d.name}': "
                           f"{', '.join(map(show, unknown[:3]))} and {len(unknown) - 3} more "
                           f"{accepts}"))
        return
    for key in unknown:
        out.append(Problem(f"data.options.{key}", f"unknown option for dataset '{d.name}' "
                           f"{accepts}", d.options[key]))


def _student(recipe: Recipe, out: list[Problem]) -> StudentFacts | None:
    """The student's facts if its name is known and its builder takes its kwargs."""
    s = recipe.student
    try:
        info = student_facts(s.name)
    except UsageError as exc:
        out.append(Problem("student.name", str(exc), s.name))
        return None
    extra = {} if s.drop_path_rate is None else {"drop_path_rate": s.drop_path_rate}
    try:
        check_kwargs(s.name, {**s.kwargs, **extra})
    except UsageError as exc:
        out.append(Problem("student.kwargs", str(exc), s.kwargs))
        return None
    return info


def _teacher(recipe: Recipe, out: list[Problem]) -> TeacherRef | None:
    """The parsed `teacher.name`; None without a teacher or with a bad spec (reported)."""
    name = recipe.teacher.name
    if name is None:
        return None
    try:
        ref = parse_teacher(name)
        ref.check()
    except UsageError as exc:
        out.append(Problem("teacher.name", str(exc), name))
        return None
    return ref


def _loss(recipe: Recipe, out: list[Problem]) -> LossFacts | None:
    try:
        return LOSSES.facts(recipe.loss.name)
    except UsageError as exc:
        out.append(Problem("loss.name", str(exc), recipe.loss.name))
        return None


def _auto_augment(recipe: Recipe, out: list[Problem]) -> None:
    """Whether timm parses the spec (its form is the schema's)."""
    spec = recipe.augment.auto_augment
    if spec is None:
        return
    try:
        from timm.data.auto_augment import (
            augment_and_mix_transform,
            auto_augment_transform,
            rand_augment_transform,
        )

        hp = dict(translate_const=100, img_mean=(124, 116, 104))
        if spec.startswith("rand"):
            ra = rand_augment_transform(spec, hp)
            weighted = sum(1 for w in ra.choice_weights if w > 0) \
                if ra.choice_weights is not None else None
            if weighted is not None and ra.num_layers > weighted:
                out.append(Problem("augment.auto_augment", f"chooses {ra.num_layers} distinct "
                                   f"ops by weight, but only {weighted} have a weight", spec))
        elif spec.startswith("augmix"):
            augment_and_mix_transform(spec, hp)
        else:
            auto_augment_transform(spec, hp)
    except Exception as exc:  # timm raises AssertionError/ValueError/KeyError
        out.append(Problem("augment.auto_augment", "not a valid timm auto-augment spec "
                           f"({exc or type(exc).__name__})", spec))


# -- across sections ---------------------------------------------------------------------
def _heads(recipe: Recipe, loss: LossFacts, student: StudentFacts, out: list[Problem]) -> None:
    name, sname = recipe.loss.name, recipe.student.name
    if loss.heads == "dist" and not student.distilled:
        out.append(Problem("loss.name", f"'{name}' needs a student with a distillation token; "
                           f"'{sname}' has none (try a *_distilled_* student)", name))
    if loss.heads == "cls" and student.distilled:
        out.append(Problem("loss.name", f"'{name}' trains a class-token student; '{sname}' "
                           "has a distillation token (use 'token' or a student without "
                           "'distilled')", name))


def _student_builds(recipe: Recipe, student: StudentFacts, out: list[Problem]) -> None:
    """The student's shape rules: checked directly where its registration declares them
    (`StudentFacts.shape_problem`: this toolkit's DeiT variants), by building it on the
    meta device for every other student."""
    name, kwargs = recipe.student.name, recipe.student_kwargs()
    check = student.shape_problem
    problem = check(kwargs) if check is not None else _meta_build(name, kwargs)
    if isinstance(problem, Problem):
        out.append(problem)
    elif problem is not None:
        d = recipe.data
        out.append(Problem("student", f"'{name}' cannot be built for {d.img_size}² "
                           f"{d.in_chans}-channel images with these kwargs: {problem}",
                           recipe.student.kwargs))


def _meta_build(name: str, kwargs: dict[str, Any]) -> Problem | str | None:
    import torch

    try:
        with torch.device("meta"):
            build_student(name, **kwargs)
    except UsageError as exc:
        return Problem("student", str(exc), name)
    except (TypeError, ValueError, AssertionError, RuntimeError, ArithmeticError) as exc:
        return str(exc)
    return None
