"""The teacher contract: what the engine reads of every teacher, and what an adapter is
given to build one.

`Teacher` is the whole contract; its defaults are no-ops:
- `identity`: who it is (adapter, name, sha256 of its weights, classes, mean/std, input
  size, a `TeacherIdentity`): two teachers with equal identities give equal targets, and
  the logit cache keys on it;
- `prepare(dataset)`: the dataset to train on (identity for a live teacher; a cached
  teacher checks itself against the data and attaches its rows);
- `targets(batch)`: teacher logits for a `distill.data.Batch` of *student-normalised*
  images (a cached teacher decodes the rows that came with the batch);
- `notes`: what the teacher wants the user to know before the run (shown once);
- `val_top1`: its top-1 on the validation split where already measured (a cache's build),
  else None and the engine measures it;
- `place(device, channels_last=…, compile=…)`: put it on the run's device;
- `checked`: set by the engine once `distill.engine.setup.check_teacher` has seen the
  teacher's outputs on a first batch (shape B × classes, finite). A cached teacher is not
  run through it: its rows were checked when its cache was built, and come with the batch.

An adapter is a function registered in `TEACHERS` with its `AdapterFacts`, called as
`fn(target, options, context)`: `options` are the recipe's `teacher.*` facts
(`TeacherOptions`), `context` what the run is (`TeacherContext`: the student's input, the
recipe, the world size). An adapter is handed these; it never reads the recipe's schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict

__all__ = ["StudentInput", "Teacher", "TeacherContext", "TeacherIdentity", "TeacherOptions"]


class TeacherIdentity(BaseModel):
    """Who a teacher is: two teachers with equal identities produce equal targets. A logit
    cache records it (its manifest's `teacher`) and refuses another."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    adapter: str
    name: str
    weights_sha256: str
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int, int]
    interpolation: str = "bicubic"


@dataclass(frozen=True)
class StudentInput:
    """What the student's batches look like: the teacher adapts from these."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    in_chans: int
    img_size: int
    num_classes: int


@dataclass(frozen=True)
class TeacherOptions:
    """The recipe's facts about a teacher (`teacher.*`): None means "the model's own"."""

    pretrained: bool = False
    weights: Path | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    input_size: int | None = None
    interpolation: str | None = None

    @classmethod
    def of(cls, config: Any) -> TeacherOptions:
        """From a recipe's `teacher` section."""
        return cls(pretrained=config.pretrained, weights=config.weights,
                   kwargs=dict(config.kwargs), mean=config.mean, std=config.std,
                   input_size=config.input_size, interpolation=config.interpolation)


@dataclass(frozen=True)
class TeacherContext:
    """What the run is: the student's input, and (for a cached teacher, which checks itself
    against it) the recipe, the number of training processes and the device the run's
    images are made on (a `data.decode: device` cache replays only on its decoder)."""

    student: StudentInput
    recipe: Any = None
    world_size: int = 1
    device: torch.device | None = None


class Teacher:
    """The contract every teacher keeps (see the module docstring). Defaults are no-ops."""

    notes: tuple[str, ...] = ()
    val_top1: float | None = None
    checked: bool = False  # its outputs on a first batch passed the engine's check

    @property
    def identity(self) -> TeacherIdentity:
        if type(self).spec is not Teacher.spec:  # a teacher written for the old name
            return self.spec
        raise NotImplementedError(f"{type(self).__name__} must define identity")

    @property
    def spec(self) -> TeacherIdentity:
        """The former name of `identity`, kept for teachers written against it."""
        return self.identity

    def prepare(self, dataset: Any) -> Any:
        return dataset

    def targets(self, batch: Any) -> torch.Tensor:
        """Logits for a `distill.data.Batch` of student-normalised images."""
        raise NotImplementedError(f"{type(self).__name__} must define targets")

    def place(self, device: torch.device, *, channels_last: bool | None = None,
              compile: bool = False) -> Teacher:
        """Put the teacher on `device`; `channels_last` None: the teacher's own choice."""
        return self
