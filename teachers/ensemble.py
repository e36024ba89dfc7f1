"""`ensemble:SPEC+SPEC+…` teachers: several teachers combined into one.

The spec (parsed here and nowhere else): members joined by `+`, each an ordinary teacher
spec with an optional weight in front, `W*SPEC`:

    ensemble:timm:regnety_160.deit_in1k+checkpoint:runs/teacher_deit
    ensemble:0.7*timm:regnety_160.deit_in1k+0.3*checkpoint:runs/teacher_deit

Weights default to 1 and are normalised to sum to 1. A member spec cannot contain `+`, be
an ensemble, or be a cache (`cache:`); build a cache *of* the ensemble instead. A recipe can
list the members instead (`teacher.members`, see `distill.recipe.schema.TeacherMember`),
which is read into this spec and `teacher.kwargs.members`.

Options. The ensemble's builder arguments (`teacher.kwargs`) are `combine` (`probs`,
default, or `logits`) and `members`: one `MemberOptions` per member (pretrained, weights,
kwargs, mean, std, input_size, interpolation). A member option left unset is the
ensemble's: `teacher.pretrained`, the rest of `teacher.kwargs`, `teacher.mean`/`std`/
`input_size`/`interpolation` apply to every member that does not set its own (one
`teacher.weights` file cannot be every member's: set it per member). Each member is built
by its own adapter with its own model config, so it keeps its own normalisation and input
size: the student's batch is mapped to each member's input separately.

Combination, for members' logits z_i and weights w_i:
- `probs`: log Σ_i w_i softmax(z_i) — the log of the averaged probabilities, returned as
  logits (log-probabilities), so that everything downstream reads them as a teacher's
  logits: the hard target is argmax Σ w_i p_i, a cache stores them as it stores logits, and
  soft distillation at temperature τ uses softmax(log p̄ / τ) ∝ p̄^(1/τ): τ applies to the
  ensemble's distribution (at τ = 1, exactly the averaged probabilities, MEAL-V2's
  teacher). τ is not applied inside each member, so a `full` cache still serves any τ.
- `logits`: Σ_i w_i z_i, the weighted mean of the logits; τ then acts as for one teacher.

The ensemble's `spec` names every member: `name` is the spec's target, `weights_sha256`
the sha256 of the combination mode and of every member's weight and own spec (adapter,
name, sha256 of its weights, input facts), so a cache built from it is refused by another
ensemble. It is an `nn.Module` holding its members; `place()` places each one.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from distill.errors import UsageError
from distill.registry import TEACHERS

from .base import StudentInput, Teacher, TeacherContext, TeacherOptions, TeacherSpec
from .spec import TeacherRef, parse_teacher

if TYPE_CHECKING:
    from distill.data import Batch

__all__ = ["COMBINE", "EnsembleTeacher", "Member", "combine", "compose", "member_facts",
           "members_of", "parse_members"]

ADAPTER = "ensemble"
COMBINE = ("probs", "logits")
_WEIGHTED = re.compile(r"\s*((?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\*\s*(.*)", re.S)


@dataclass(frozen=True)
class Member:
    """One member of an ensemble: its spec, its normalised weight, its options."""

    spec: str
    weight: float
    options: TeacherOptions

    @property
    def ref(self) -> TeacherRef:
        return parse_teacher(self.spec)


def parse_members(target: str) -> list[tuple[float, str]]:
    """`0.7*timm:a+0.3*checkpoint:b` -> [(0.7, 'timm:a'), (0.3, 'checkpoint:b')]: weights
    as written (1 where none is), not yet normalised. Raises UsageError on a bad target."""
    if not target.strip():
        raise UsageError("ensemble: needs members, e.g. 'ensemble:timm:a+checkpoint:runs/b'")
    out: list[tuple[float, str]] = []
    for k, part in enumerate(target.split("+"), start=1):
        weight, spec = 1.0, part.strip()
        found = _WEIGHTED.fullmatch(part)
        if found:
            weight, spec = float(found.group(1)), found.group(2).strip()
        if not spec:
            raise UsageError(f"ensemble: member {k} is empty (got '{target}'; members are "
                             "joined by '+', e.g. 'ensemble:0.7*timm:a+0.3*timm:b')")
        if not (weight > 0 and math.isfinite(weight)):
            raise UsageError(f"ensemble: member {k} '{spec}' needs a weight > 0 (got {weight})")
        out.append((weight, spec))
    if len(out) < 2:
        raise UsageError(f"ensemble: needs at least two members joined by '+' (got '{target}')")
    return out


def compose(members: list[tuple[float, str]]) -> str:
    """The spec of an ensemble of (weight, spec) members: the inverse of `parse_members`
    (weights written only where they differ). Raises ValueError for a member it cannot hold."""
    for _, spec in members:
        if "+" in spec:
            raise ValueError(f"a member spec cannot contain '+' (got '{spec}')")
    if len(members) < 2:
        raise ValueError("an ensemble needs at least two members")
    weights = {w for w, _ in members}
    parts = [spec if len(weights) == 1 else f"{w:g}*{spec}" for w, spec in members]
    return f"{ADAPTER}:" + "+".join(parts)


def _normalised(pairs: list[tuple[float, str]]) -> list[tuple[float, str]]:
    total = sum(w for w, _ in pairs)
    return [(w / total, spec) for w, spec in pairs]


def check(target: str) -> None:
    """Every member is a known, live, non-ensemble teacher spec with a sound target."""
    for k, (_, spec) in enumerate(parse_members(target), start=1):
        try:
            ref = parse_teacher(spec)
        except UsageError as exc:
            raise UsageError(f"ensemble: member {k} '{spec}': {exc}") from None
        if ref.adapter == ADAPTER:
            raise UsageError(f"ensemble: member {k} '{spec}' is an ensemble; list its members")
        if ref.cached:
            raise UsageError(f"ensemble: member {k} '{spec}' is a cache; members are live "
                             "teachers (build a cache of the whole ensemble instead)")
        try:
            ref.check()
        except UsageError as exc:
            raise UsageError(f"ensemble: member {k} '{spec}': {exc}") from None


def check_paths(target: str) -> None:
    for k, (_, spec) in enumerate(parse_members(target), start=1):
        try:
            parse_teacher(spec).check_paths()
        except UsageError as exc:
            raise UsageError(f"ensemble: member {k} '{spec}': {exc}") from None


_OPTION_FIELDS = tuple(f.name for f in fields(TeacherOptions))


def _combine_mode(options: TeacherOptions) -> str:
    mode = (options.kwargs or {}).get("combine", "probs")
    if mode not in COMBINE:
        raise UsageError(f"teacher.kwargs.combine: 'probs' (average probabilities) or 'logits' "
                         f"(average logits) for an ensemble (got {mode!r})")
    return mode


def members_of(target: str, options: TeacherOptions) -> list[Member]:
    """The members of `ensemble:<target>`, each with its normalised weight and its own
    options (its `teacher.kwargs.members` entry over the ensemble's options)."""
    from pydantic import ValidationError

    from distill.recipe.schema import MemberOptions

    pairs = _normalised(parse_members(target))
    kwargs = dict(options.kwargs or {})
    own = kwargs.pop("members", None) or []
    kwargs.pop("combine", None)
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


def member_facts(config: Any) -> list[dict[str, Any]]:
    """What a cache's manifest records of each member of the ensemble a recipe's teacher
    section names (`teacher_facts`): its spec, normalised weight, and the sha256 of the
    weights file it loads (None where its weights come from timm, torchvision, a hub, or a
    seeded random init)."""
    from distill.checkpoint import file_sha256

    from .cache import weights_file

    ref = parse_teacher(config.name)
    out = []
    for m in members_of(ref.target, TeacherOptions.of(config)):
        path = weights_file(m.ref, m.options.weights)
        out.append({"spec": m.spec, "weight": m.weight,
                    "weights_sha256": file_sha256(path) if path is not None else None})
    return out


def combine(logits: list[torch.Tensor], weights: list[float], mode: str = "probs"
            ) -> torch.Tensor:
    """The ensemble's output from its members' logits (see the module docstring): log of
    the weighted mean of the probabilities (`probs`), or the weighted mean of the logits."""
    z = torch.stack([t.float() for t in logits])  # (members, B, C)
    w = torch.tensor(weights, dtype=z.dtype, device=z.device).view(-1, 1, 1)
    if mode == "logits":
        return (z * w).sum(0)
    return torch.logsumexp(torch.log_softmax(z, dim=-1) + w.log(), dim=0)


class EnsembleTeacher(nn.Module, Teacher):
    """Members (teachers) combined into one teacher; called as a module, `teacher(images)`
    gives the combined output for student-normalised images."""

    def __init__(self, members: list[Teacher], weights: list[float], specs: list[str], *,
                 name: str, mode: str, student: StudentInput):
        super().__init__()
        self.teachers = list(members)
        # The members that are modules, registered so that `.to()`/`state_dict()` see them.
        self.members = nn.ModuleList([t for t in members if isinstance(t, nn.Module)])
        self.weights, self.specs, self.mode = list(weights), list(specs), mode
        self._name, self._student = name, student
        self._spec: TeacherSpec | None = None
        self.notes = tuple(n for t in members for n in t.notes)

    @property
    def spec(self) -> TeacherSpec:
        if self._spec is None:
            parts = [{"spec": s, "weight": w, "teacher": t.spec.model_dump(mode="json")}
                     for s, w, t in zip(self.specs, self.weights, self.teachers)]
            blob = json.dumps({"combine": self.mode, "members": parts}, sort_keys=True)
            num_classes = {t.spec.num_classes for t in self.teachers}
            if len(num_classes) != 1:
                raise UsageError(f"teacher.name: the members of 'ensemble:{self._name}' predict "
                                 f"different class counts ({sorted(num_classes)})")
            s = self._student
            self._spec = TeacherSpec(
                adapter=ADAPTER, name=self._name,
                weights_sha256=hashlib.sha256(blob.encode()).hexdigest(),
                num_classes=num_classes.pop(), mean=tuple(s.mean), std=tuple(s.std),
                input_size=(s.in_chans, s.img_size, s.img_size))
        return self._spec

    def train(self, mode: bool = True) -> EnsembleTeacher:
        return super().train(False)  # a teacher is always in eval mode

    def place(self, device: torch.device, *, channels_last: bool | None = None,
              compile: bool = False) -> EnsembleTeacher:
        """Every member on `device`, each by its own `place` (channels_last for convnets on
        CUDA, compiled with `compile`)."""
        self.teachers = [t.place(device, channels_last=channels_last, compile=compile)
                         for t in self.teachers]
        return self

    def combined(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        return combine(outputs, self.weights, self.mode)

    @torch.inference_mode()
    def targets(self, batch: Batch) -> torch.Tensor:
        return self.combined([t.targets(batch) for t in self.teachers])

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The combined output (fp32) for student-normalised images."""
        return self.combined([t(images) for t in self.teachers])  # type: ignore[operator]


@TEACHERS.register(name=ADAPTER, check=check, check_paths=check_paths)
def ensemble_teacher(target: str, options: TeacherOptions,
                     context: TeacherContext) -> EnsembleTeacher:
    """Several teachers combined (see the module docstring)."""
    from . import build_teacher

    check(target)
    mode = _combine_mode(options)
    members = members_of(target, options)
    built = []
    for k, m in enumerate(members, start=1):
        try:
            built.append(build_teacher(m.ref, context=context, options=m.options))
        except UsageError as exc:
            raise UsageError(f"ensemble: member {k} '{m.spec}': {exc}") from None
    return EnsembleTeacher(built, [m.weight for m in members], [m.spec for m in members],
                           name=target, mode=mode, student=context.student)
