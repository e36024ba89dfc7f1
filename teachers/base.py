"""The teacher contract, and the live teacher every model-backed adapter returns.

`Teacher` is the whole contract the engine reads; its defaults are no-ops:
- `spec`: what it is (adapter, name, sha256 of its weights, classes, mean/std, input size);
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
recipe, the world size).

`LiveTeacher` runs its model in eval mode under `torch.inference_mode()`. It maps the
student's input to its own in one fused affine op (undo the student's mean/std, apply its
own), repeats a grayscale channel to RGB where needed, and resizes to its input size.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from torch import nn

from distill.checkpoint import state_dict_sha256
from distill.errors import UsageError

if TYPE_CHECKING:
    from distill.data import Batch

__all__ = ["LiveTeacher", "StudentInput", "Teacher", "TeacherContext", "TeacherOptions",
           "TeacherSpec", "expected_input", "fixed_input_size", "is_convnet", "model_io"]


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
    against it) the recipe and the number of training processes."""

    student: StudentInput
    recipe: Any = None
    world_size: int = 1


class Teacher:
    """The contract every teacher keeps (see the module docstring). Defaults are no-ops."""

    notes: tuple[str, ...] = ()
    val_top1: float | None = None
    checked: bool = False  # its outputs on a first batch passed the engine's check

    @property
    def spec(self) -> TeacherSpec:
        raise NotImplementedError(f"{type(self).__name__} must define spec")

    def prepare(self, dataset: Any) -> Any:
        return dataset

    def targets(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define targets")

    def place(self, device: torch.device, *, channels_last: bool | None = None,
              compile: bool = False) -> Teacher:
        """Put the teacher on `device`; `channels_last` None: the teacher's own choice."""
        return self


def is_convnet(model: nn.Module) -> bool:
    """More than one 2-D convolution: a convnet (a ViT has just its patch embedding)."""
    return sum(isinstance(m, nn.Conv2d) for m in model.modules()) > 1


def model_io(model: nn.Module) -> dict[str, Any]:
    """mean/std/input size/interpolation from a timm-style `pretrained_cfg`, where present."""
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    out: dict[str, Any] = {}
    for key in ("mean", "std", "input_size", "interpolation"):
        if cfg.get(key) is not None:
            out[key] = cfg[key]
    return out


def fixed_input_size(model: nn.Module) -> tuple[int, int] | None:
    """(H, W) a model takes and no other, else None: a timm patch embedding with
    `strict_img_size` (ViT, DeiT, …) that is not built with `dynamic_img_size`."""
    embed = getattr(model, "patch_embed", None)
    size = getattr(embed, "img_size", None)
    if (size is None or not getattr(embed, "strict_img_size", False)
            or getattr(embed, "dynamic_img_size", False)
            or getattr(model, "dynamic_img_size", False)):
        return None
    if isinstance(size, int):
        return size, size
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        return None
    return h, w


def expected_input(model: nn.Module) -> str | None:
    """What the model says it takes, in words ("224×224 (its patch_embed.img_size)"), where
    it says: its fixed size, else its config's `input_size`."""
    fixed = fixed_input_size(model)
    if fixed is not None:
        return f"{fixed[0]}×{fixed[1]} (its patch_embed.img_size)"
    size = model_io(model).get("input_size")
    if size is not None and len(size) == 3:
        return f"{size[1]}×{size[2]} (its pretrained_cfg input_size)"
    return None


class LiveTeacher(nn.Module, Teacher):
    """A frozen model answering `targets(batch)` for student-normalised images; called as a
    module, `teacher(images)` gives the same logits."""

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
        self.input_size = tuple(input_size)  # (C, H, W) the model is given
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

    def train(self, mode: bool = True) -> LiveTeacher:
        return super().train(False)  # a teacher is always in eval mode

    def place(self, device: torch.device, *, channels_last: bool | None = None,
              compile: bool = False) -> LiveTeacher:
        """On `device`; channels_last when asked, or (None) for a convnet on CUDA; the
        forward pass compiled with `compile` (`spec` keeps hashing the uncompiled weights)."""
        self.to(device)
        if channels_last or (channels_last is None and device.type == "cuda"
                             and is_convnet(self.model)):
            self.channels_last = True
            self.model.to(memory_format=torch.channels_last)
        if compile:
            object.__setattr__(self, "_run", torch.compile(self.model))  # not a submodule
        return self

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

    def targets(self, batch: Batch) -> torch.Tensor:
        """Logits for a batch: the teacher sees `batch.images`, after whatever mixing the
        student's batch went through."""
        return self(batch.images)

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (fp32) for student-normalised images."""
        run = self._run if self._run is not None else self.model
        out = run(self.adapt(images))
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.float()


def _infer_classes(model: nn.Module) -> int | None:
    """The model's `num_classes` where it is a positive integer (not a bool), else None."""
    n = getattr(model, "num_classes", None)
    if isinstance(n, bool):
        return None
    try:
        n = operator.index(n)  # an int, a NumPy integer, a 0-d integer tensor
    except TypeError:
        return None
    return n if n > 0 else None
