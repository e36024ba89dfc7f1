"""Live teachers: a model run in eval mode under `torch.inference_mode()`, and the steps
every model-backed adapter shares to make one (`live_teacher`).

`LiveTeacher` maps the student's input to its model's own in one fused affine op (undo
the student's mean/std, apply its own), repeats a grayscale channel to RGB where needed,
and resizes to its input size. `live_teacher(model, …)` settles those input facts from the
recipe's options, what the adapter knows, the model's own config and defaults, in that
order; `load_into` loads a weights file into a model strictly; `probe_classes` finds a
model's class count by one forward pass. What a model says it takes: `model_io`,
`fixed_input_size`, `expected_input`; `is_convnet` decides channels_last.
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from distill.checkpoint import describe_misfit, file_sha256, load_weights, state_dict_sha256
from distill.constants import IMAGENET_MEAN, IMAGENET_STD
from distill.errors import UsageError, first_line

from .contract import StudentInput, Teacher, TeacherContext, TeacherIdentity, TeacherOptions

__all__ = ["LiveTeacher", "expected_input", "fixed_input_size", "infer_classes", "is_convnet",
           "live_teacher", "load_into", "model_io", "probe_classes"]


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
        n_cls = num_classes if num_classes is not None else infer_classes(model)
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
        self._identity_args = dict(adapter=adapter, name=name, num_classes=n_cls or student.num_classes,
                               mean=tuple(mean), std=tuple(std), input_size=tuple(input_size),
                               interpolation=interpolation)
        self._sha = weights_sha256
        self._identity: TeacherIdentity | None = None
        self._run: Any = None  # a compiled forward, when asked for

    @property
    def identity(self) -> TeacherIdentity:
        if self._identity is None:
            sha = self._sha or state_dict_sha256(self.model.state_dict())
            self._identity = TeacherIdentity(weights_sha256=sha, **self._identity_args)
        return self._identity

    def train(self, mode: bool = True) -> LiveTeacher:
        return super().train(False)  # a teacher is always in eval mode

    def place(self, device: torch.device, *, channels_last: bool | None = None,
              compile: bool = False) -> LiveTeacher:
        """On `device`; channels_last when asked, or (None) for a convnet on CUDA; the
        forward pass compiled with `compile` (`identity` keeps hashing the uncompiled weights)."""
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

    def targets(self, batch: Any) -> torch.Tensor:
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


def infer_classes(model: nn.Module) -> int | None:
    """The model's `num_classes` where it is a positive integer (not a bool), else None."""
    n = getattr(model, "num_classes", None)
    if isinstance(n, bool):
        return None
    try:
        n = operator.index(n)  # an int, a NumPy integer, a 0-d integer tensor
    except TypeError:
        return None
    return n if n > 0 else None


def load_into(model: nn.Module, path: Path, what: str) -> str:
    """Load a weights file into `model` with strict key and shape matching; return its sha256."""
    state = load_weights(path)
    misfit = describe_misfit(model, state)
    if misfit:
        raise UsageError(f"teacher.weights: '{path}' does not fit {what} ({misfit})")
    model.load_state_dict(state, strict=True)
    return file_sha256(path)


def probe_classes(model: nn.Module, input_size: tuple[int, int, int], what: str = "the model"
                  ) -> int:
    """Number of outputs of `model`, from one forward pass on a zero image; a model that
    refuses the image, or answers with other than (1, classes), is a one-line `UsageError`."""
    shape = "×".join(map(str, input_size))
    try:
        with torch.inference_mode():
            out = model.eval()(torch.zeros(1, *input_size))
    except torch.OutOfMemoryError:
        raise
    except Exception as exc:  # the model's own check or a shape clash, from any model
        raise UsageError(f"teacher.input_size: {what} refuses a {shape} image "
                         f"({type(exc).__name__}: {first_line(exc)}); set teacher.input_size "
                         "to the size it takes") from None
    if isinstance(out, (tuple, list)) and out:
        out = out[0]
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 1:
        got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise UsageError(f"teacher.name: {what} returns {got} for one {shape} image, expected "
                         "(1, classes): a teacher maps images to logits")
    return int(out.shape[-1])


def live_teacher(model: nn.Module, *, adapter: str, target: str, options: TeacherOptions,
                 context: TeacherContext, defaults: dict[str, Any] | None = None,
                 facts: dict[str, Any] | None = None,
                 weights_sha256: str | None = None) -> LiveTeacher:
    """Wrap `model` as a live teacher. Precedence: the recipe's `options`, then `facts` the
    adapter knows for sure (a run's metadata), then the size a fixed-size model takes
    (`fixed_input_size`: a timm ViT's `patch_embed.img_size`, which follows
    `teacher.kwargs.img_size` where its `pretrained_cfg` does not), then the model's own
    config (`model_io`), then the adapter's `defaults`. A `teacher.input_size` a fixed-size
    model cannot take is refused here, in one line."""
    student = context.student
    mean, std, input_size = options.mean, options.std, options.input_size
    interpolation = options.interpolation
    what = f"'{adapter}:{target}'"
    io = {**(defaults or {}), **model_io(model), **(facts or {})}
    chans, *hw = tuple(io.get("input_size", (student.in_chans, student.img_size,
                                             student.img_size)))
    chans = int(io.get("in_chans", chans))
    fixed = fixed_input_size(model)
    if fixed is not None and "input_size" not in (facts or {}):
        hw = list(fixed)
    if input_size and fixed is not None and (input_size, input_size) != fixed:
        raise UsageError(
            f"teacher.input_size: {input_size}, but {what} takes {fixed[0]}×{fixed[1]} images "
            f"only (its patch_embed.img_size); leave teacher.input_size unset (or set it to "
            f"{fixed[0]}), or build the model for {input_size} (timm: teacher.kwargs.img_size)")
    size = (chans, input_size, input_size) if input_size else (chans, *hw)
    t_mean = tuple(mean) if mean is not None else tuple(io.get("mean", IMAGENET_MEAN))
    t_std = tuple(std) if std is not None else tuple(io.get("std", IMAGENET_STD))
    if len(t_mean) != chans and len(t_mean) == 1:
        t_mean, t_std = t_mean * chans, t_std * chans
    n_cls = infer_classes(model)
    if n_cls is None:
        n_cls = probe_classes(model, size, what)
    return LiveTeacher(model, adapter=adapter, name=target, student=student, mean=t_mean,
                       std=t_std, input_size=size,
                       interpolation=interpolation or io.get("interpolation", "bicubic"),
                       num_classes=n_cls, weights_sha256=weights_sha256)
