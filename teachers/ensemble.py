"""`ensemble:SPEC+SPEC+…` teachers: several teachers combined into one.

The spec, in the core's grammar of members (`distill.teacher.members`, the one parser):
members joined by `+`, each an ordinary teacher spec with an optional weight in front,
`W*SPEC`:

    ensemble:timm:regnety_160.deit_in1k+checkpoint:runs/teacher_deit
    ensemble:0.7*timm:regnety_160.deit_in1k+0.3*checkpoint:runs/teacher_deit

Weights default to 1 and are normalised to sum to 1. A member spec cannot contain `+`, be
an ensemble, or be a cache (`cache:`); build a cache *of* the ensemble instead. A recipe can
list the members instead (`teacher.members`), which is read into this spec and
`teacher.kwargs.members`. Registered with `members=True`, its members are checked, recorded
in a cache's manifest and compared against one, and named in bench folders by the core.

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

The ensemble's `identity` names every member: `name` is the spec's target, `weights_sha256`
the sha256 of the combination mode and of every member's weight and own spec (adapter,
name, sha256 of its weights, input facts), so a cache built from it is refused by another
ensemble. It is an `nn.Module` holding its members; `place()` places each one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from distill.errors import UsageError
from distill.registry import TEACHERS
from distill.teacher import (
    ENSEMBLE,
    StudentInput,
    Teacher,
    TeacherContext,
    TeacherIdentity,
    TeacherOptions,
    build_teacher,
    members_of,
)

__all__ = ["COMBINE", "EnsembleTeacher", "combine", "ensemble_teacher"]

ADAPTER = ENSEMBLE
COMBINE = ("probs", "logits")


def _combine_mode(options: TeacherOptions) -> str:
    mode = (options.kwargs or {}).get("combine", "probs")
    if mode not in COMBINE:
        raise UsageError(f"teacher.kwargs.combine: 'probs' (average probabilities) or 'logits' "
                         f"(average logits) for an ensemble (got {mode!r})")
    return mode


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
        self._identity: TeacherIdentity | None = None
        self.notes = tuple(n for t in members for n in t.notes)

    @property
    def identity(self) -> TeacherIdentity:
        if self._identity is None:
            parts = [{"spec": s, "weight": w, "teacher": t.identity.model_dump(mode="json")}
                     for s, w, t in zip(self.specs, self.weights, self.teachers)]
            blob = json.dumps({"combine": self.mode, "members": parts}, sort_keys=True)
            num_classes = {t.identity.num_classes for t in self.teachers}
            if len(num_classes) != 1:
                raise UsageError(f"teacher.name: the members of 'ensemble:{self._name}' predict "
                                 f"different class counts ({sorted(num_classes)})")
            s = self._student
            self._identity = TeacherIdentity(
                adapter=ADAPTER, name=self._name,
                weights_sha256=hashlib.sha256(blob.encode()).hexdigest(),
                num_classes=num_classes.pop(), mean=tuple(s.mean), std=tuple(s.std),
                input_size=(s.in_chans, s.img_size, s.img_size))
        return self._identity

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
    def targets(self, batch: Any) -> torch.Tensor:
        return self.combined([t.targets(batch) for t in self.teachers])

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The combined output (fp32) for student-normalised images."""
        return self.combined([t(images) for t in self.teachers])  # type: ignore[operator]


@TEACHERS.register(name=ADAPTER, members=True)
def ensemble_teacher(target: str, options: TeacherOptions,
                     context: TeacherContext) -> EnsembleTeacher:
    """Several teachers combined (see the module docstring)."""
    mode = _combine_mode(options)
    kwargs = {k: v for k, v in (options.kwargs or {}).items() if k != "combine"}
    members = members_of(target, replace(options, kwargs=kwargs), ADAPTER)
    built = []
    for k, m in enumerate(members, start=1):
        try:
            built.append(build_teacher(m.spec, context=context, options=m.options))
        except UsageError as exc:
            raise UsageError(f"ensemble: member {k} '{m.spec}': {exc}") from None
    return EnsembleTeacher(built, [m.weight for m in members], [m.spec for m in members],
                           name=target, mode=mode, student=context.student)
