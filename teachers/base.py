"""The teacher contract, and the live teacher every model-backed adapter returns.

A teacher has
- `spec`: what it is (adapter, name, sha256 of its weights, classes, mean/std, input size);
  the logit cache keys on it;
- `prepare(dataset)`: the dataset to train on (identity for a live teacher);
- `targets(images)`: teacher logits for a batch of *student-normalised* images.

`LiveTeacher` runs its model in eval mode under `torch.inference_mode()`. It maps the
student's input to its own in one fused affine op (undo the student's mean/std, apply its
own), repeats a grayscale channel to RGB where needed, and resizes to its input size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from torch import nn

from distill.checkpoint import state_dict_sha256
from distill.errors import UsageError

__all__ = ["LiveTeacher", "StudentInput", "Teacher", "TeacherSpec", "model_io"]


class TeacherSpec(BaseModel):
    """Identity of a teacher: two teachers with equal specs produce equal targets."""

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


@runtime_checkable
class Teacher(Protocol):
    @property
    def spec(self) -> TeacherSpec: ...

    def prepare(self, dataset: Any) -> Any: ...

    def targets(self, batch: Any) -> torch.Tensor: ...


def model_io(model: nn.Module) -> dict[str, Any]:
    """mean/std/input size/interpolation from a timm-style `pretrained_cfg`, where present."""
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    out: dict[str, Any] = {}
    for key in ("mean", "std", "input_size", "interpolation"):
        if cfg.get(key) is not None:
            out[key] = cfg[key]
    return out


class LiveTeacher(nn.Module):
    """A frozen model answering `targets(images)` for student-normalised images."""

    def __init__(self, model: nn.Module, *, adapter: str, name: str, student: StudentInput,
                 mean: tuple[float, ...], std: tuple[float, ...], input_size: tuple[int, int, int],
                 interpolation: str = "bicubic", num_classes: int | None = None,
                 weights_sha256: str | None = None):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        n_cls = num_classes if num_classes is not None else _infer_classes(model)
        if n_cls is not None and n_cls != student.num_classes:
            raise UsageError(
                f"teacher.name: '{adapter}:{name}' predicts {n_cls} classes but data.num_classes "
                f"is {student.num_classes} (train or fine-tune a teacher for this dataset, or set "
                "teacher.kwargs.num_classes for a randomly initialised one)")
        t_chans = input_size[0]
        if t_chans != student.in_chans and student.in_chans != 1:
            raise UsageError(f"teacher.name: '{adapter}:{name}' takes {t_chans} channels; the "
                             f"student's {student.in_chans}-channel images cannot be converted")
        if len(mean) != t_chans or len(std) != t_chans:
            raise UsageError(f"teacher.mean/std: need {t_chans} values for '{adapter}:{name}'")
        self.repeat = t_chans if student.in_chans == 1 and t_chans > 1 else 1
        s_mean = torch.tensor(student.mean).repeat(self.repeat)
        s_std = torch.tensor(student.std).repeat(self.repeat)
        t_mean, t_std = torch.tensor(mean), torch.tensor(std)
        # x_t = (x_s·σ_s + μ_s − μ_t) / σ_t = x_s·scale + shift
        self.register_buffer("scale", (s_std / t_std).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("shift", ((s_mean - t_mean) / t_std).view(1, -1, 1, 1),
                             persistent=False)
        self.identity_norm = bool(torch.allclose(self.scale, torch.ones(1))
                                  and torch.allclose(self.shift, torch.zeros(1)))
        self.size = tuple(input_size[1:])
        self.resize = self.size != (student.img_size, student.img_size)
        self.interpolation = interpolation if interpolation in ("bilinear", "bicubic") else "bilinear"
        self.channels_last = False
        self._spec_args = dict(adapter=adapter, name=name, num_classes=n_cls or student.num_classes,
                               mean=tuple(mean), std=tuple(std), input_size=tuple(input_size),
                               interpolation=interpolation)
        self._sha = weights_sha256
        self._spec: TeacherSpec | None = None
        self._run: Any = None  # a compiled forward, when asked for

    @property
    def spec(self) -> TeacherSpec:
        if self._spec is None:
            sha = self._sha or state_dict_sha256(self.model.state_dict())
            self._spec = TeacherSpec(weights_sha256=sha, **self._spec_args)
        return self._spec

    def prepare(self, dataset: Any) -> Any:
        return dataset

    def train(self, mode: bool = True) -> LiveTeacher:
        return super().train(False)  # a teacher is always in eval mode

    def use_channels_last(self) -> None:
        self.channels_last = True
        self.model.to(memory_format=torch.channels_last)

    def compile(self, **kwargs: Any) -> None:
        """torch.compile the forward pass; `spec` keeps hashing the uncompiled weights."""
        object.__setattr__(self, "_run", torch.compile(self.model, **kwargs))  # not a submodule

    def adapt(self, images: torch.Tensor) -> torch.Tensor:
        """Student-normalised images -> the teacher's own input."""
        x = images
        if self.repeat > 1:
            x = x.expand(-1, self.repeat, -1, -1)
        if not self.identity_norm:
            x = torch.addcmul(self.shift.to(x.dtype), x, self.scale.to(x.dtype))
        if self.resize:
            x = F.interpolate(x, size=self.size, mode=self.interpolation, align_corners=False,
                              antialias=x.shape[-1] > self.size[-1])
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    @torch.inference_mode()
    def targets(self, batch: Any) -> torch.Tensor:
        """Logits for a batch (`distill.data.Batch`, or a tensor of images): the teacher
        sees `batch.images`, after whatever mixing the student's batch went through."""
        images = batch.images if hasattr(batch, "images") else batch
        run = self._run if self._run is not None else self.model
        out = run(self.adapt(images))
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.float()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.targets(images)


def _infer_classes(model: nn.Module) -> int | None:
    n = getattr(model, "num_classes", None)
    if isinstance(n, int) and n > 0:
        return n
    return None
