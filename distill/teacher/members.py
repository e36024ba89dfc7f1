"""The grammar of a teacher made of members (an ensemble): `adapter:SPEC+SPEC+…`.

Members are joined by `+`, each an ordinary teacher spec with an optional weight in front,
`W*SPEC`:

    ensemble:timm:regnety_160.deit_in1k+checkpoint:runs/teacher_deit
    ensemble:0.7*timm:regnety_160.deit_in1k+0.3*checkpoint:runs/teacher_deit

Weights default to 1 and are normalised to sum to 1 (`members_of`). A member spec cannot
contain `+`. A recipe can list the members instead (`teacher.members`, see
`distill.recipe.schema.TeacherMember`), which is read into this spec (`compose_members`)
and `teacher.kwargs.members`: one `MemberOptions` per member, whose every option left
unset (null) is the whole teacher's.

Any adapter registered with `members=True` takes its target in this grammar; the core
then checks its members, records them in a cache's manifest and compares them against
one, and names it in bench folders, as it does for the built-in `ensemble`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from distill.constants import MAX_SIZE
from distill.errors import UsageError

from .contract import TeacherOptions

__all__ = ["ENSEMBLE", "Member", "MemberOptions", "compose_members", "members_of",
           "parse_members"]

# The adapter a recipe's `teacher.members` list names unless `teacher.name` names another
# one that takes members.
ENSEMBLE = "ensemble"
_WEIGHTED = re.compile(r"\s*((?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\*\s*(.*)", re.S)


class MemberOptions(BaseModel):
    """One ensemble member's own options: each one it leaves unset (null) is the
    ensemble's (`teacher.*`). `teacher.kwargs.members` holds one per member of the spec."""

    # inf and NaN are no size or value; the recipe's sections are read the same way
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    pretrained: bool | None = Field(None, description="Load the source's own pretrained weights.")
    weights: Path | None = Field(None, description="Load this member's weights from this file.")
    kwargs: dict[str, Any] | None = Field(None, description="This member's builder arguments.")
    mean: tuple[float, ...] | None = Field(None, description="This member's own mean.")
    std: tuple[float, ...] | None = Field(None, description="This member's own std.")
    input_size: int | None = Field(None, ge=8, le=MAX_SIZE,
                                   description="This member's input resolution.")
    interpolation: Literal["bilinear", "bicubic", "nearest"] | None = None


@dataclass(frozen=True)
class Member:
    """One member: its spec, its normalised weight, its options."""

    spec: str
    weight: float
    options: TeacherOptions


def parse_members(target: str, adapter: str = ENSEMBLE) -> list[tuple[float, str]]:
    """`0.7*timm:a+0.3*checkpoint:b` -> [(0.7, 'timm:a'), (0.3, 'checkpoint:b')]: weights
    as written (1 where none is), not yet normalised. Raises UsageError (naming `adapter`)
    on a bad target."""
    if not target.strip():
        raise UsageError(f"{adapter}: needs members, e.g. '{adapter}:timm:a+checkpoint:runs/b'")
    out: list[tuple[float, str]] = []
    for k, part in enumerate(target.split("+"), start=1):
        weight, spec = 1.0, part.strip()
        found = _WEIGHTED.fullmatch(part)
        if found:
            weight, spec = float(found.group(1)), found.group(2).strip()
        if not spec:
            raise UsageError(f"{adapter}: member {k} is empty (got '{target}'; members are "
                             f"joined by '+', e.g. '{adapter}:0.7*timm:a+0.3*timm:b')")
        if not (weight > 0 and math.isfinite(weight)):
            raise UsageError(f"{adapter}: member {k} '{spec}' needs a weight > 0 (got {weight})")
        out.append((weight, spec))
    if len(out) < 2:
        raise UsageError(f"{adapter}: needs at least two members joined by '+' (got '{target}')")
    return out


def compose_members(members: list[tuple[float, str]], adapter: str = ENSEMBLE) -> str:
    """The spec of a teacher of (weight, spec) members: the inverse of `parse_members`
    (weights written only where they differ). Raises ValueError for a member it cannot hold."""
    for _, spec in members:
        if "+" in spec:
            raise ValueError(f"a member spec cannot contain '+' (got '{spec}')")
    if len(members) < 2:
        raise ValueError("an ensemble needs at least two members")
    weights = {w for w, _ in members}
    parts = [spec if len(weights) == 1 else f"{w:g}*{spec}" for w, spec in members]
    return f"{adapter}:" + "+".join(parts)


_OPTION_FIELDS = tuple(f.name for f in fields(TeacherOptions))


def members_of(target: str, options: TeacherOptions, adapter: str = ENSEMBLE) -> list[Member]:
    """The members of `adapter:<target>`, each with its normalised weight and its own
    options: its `teacher.kwargs.members` entry over the whole teacher's `options`. The
    adapter's own builder arguments are not the members': leave them out of `options`."""
    pairs = parse_members(target, adapter)
    total = sum(w for w, _ in pairs)
    pairs = [(w / total, spec) for w, spec in pairs]
    kwargs = dict(options.kwargs or {})
    own = kwargs.pop("members", None) or []
    if not isinstance(own, list) or len(own) not in (0, len(pairs)):
        raise UsageError(f"teacher.kwargs.members: one entry per member of the ensemble "
                         f"({len(pairs)}), got {own!r}")
    if options.weights is not None:
        raise UsageError("teacher.weights: one file cannot hold every member of an ensemble; "
                         "set weights per member (teacher.members[i].weights, or "
                         "teacher.kwargs.members)")
    shared = replace(options, kwargs=kwargs)
    out = []
    for k, ((weight, spec), entry) in enumerate(zip(pairs, own or [{}] * len(pairs)), start=1):
        try:
            mine = MemberOptions.model_validate(entry or {})
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"])
            raise UsageError(f"teacher.kwargs.members.{k - 1}.{where}: {err['msg']} (member "
                             f"'{spec}')") from None
        changes = {f: getattr(mine, f) for f in _OPTION_FIELDS
                   if f in MemberOptions.model_fields and getattr(mine, f) is not None}
        if "kwargs" in changes:
            changes["kwargs"] = dict(changes["kwargs"])
        out.append(Member(spec, weight, replace(shared, **changes)))
    return out
