"""Shared steps of the model-backed adapters: load weights, settle the input facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from distill.checkpoint import describe_misfit, file_sha256, load_weights
from distill.constants import IMAGENET_MEAN, IMAGENET_STD
from distill.errors import UsageError

from .base import (
    LiveTeacher,
    TeacherContext,
    TeacherOptions,
    _infer_classes,
    fixed_input_size,
    model_io,
)


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
                         f"({type(exc).__name__}: {_first_line(exc)}); set teacher.input_size "
                         "to the size it takes") from None
    if isinstance(out, (tuple, list)) and out:
        out = out[0]
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 1:
        got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise UsageError(f"teacher.name: {what} returns {got} for one {shape} image, expected "
                         "(1, classes): a teacher maps images to logits")
    return int(out.shape[-1])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def live(model: nn.Module, *, adapter: str, target: str, options: TeacherOptions,
         context: TeacherContext, defaults: dict[str, Any] | None = None,
         facts: dict[str, Any] | None = None, weights_sha256: str | None = None) -> LiveTeacher:
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
    n_cls = _infer_classes(model)
    if n_cls is None:
        n_cls = probe_classes(model, size, what)
    return LiveTeacher(model, adapter=adapter, name=target, student=student, mean=t_mean,
                       std=t_std, input_size=size,
                       interpolation=interpolation or io.get("interpolation", "bicubic"),
                       num_classes=n_cls, weights_sha256=weights_sha256)
