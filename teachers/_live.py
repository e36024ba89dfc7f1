"""Shared steps of the model-backed adapters: load weights, settle the input facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from distill.checkpoint import describe_misfit, file_sha256, load_weights
from distill.errors import UsageError

from .base import LiveTeacher, TeacherContext, TeacherOptions, model_io

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_into(model: nn.Module, path: Path, what: str) -> str:
    """Load a weights file into `model` with strict key and shape matching; return its sha256."""
    state = load_weights(path)
    misfit = describe_misfit(model, state)
    if misfit:
        raise UsageError(f"teacher.weights: '{path}' does not fit {what} ({misfit})")
    model.load_state_dict(state, strict=True)
    return file_sha256(path)


def probe_classes(model: nn.Module, input_size: tuple[int, int, int]) -> int:
    """Number of outputs of `model`, from one forward pass on a zero image."""
    with torch.inference_mode():
        out = model.eval()(torch.zeros(1, *input_size))
    if isinstance(out, (tuple, list)):
        out = out[0]
    return int(out.shape[-1])


def live(model: nn.Module, *, adapter: str, target: str, options: TeacherOptions,
         context: TeacherContext, defaults: dict[str, Any] | None = None,
         facts: dict[str, Any] | None = None, weights_sha256: str | None = None) -> LiveTeacher:
    """Wrap `model` as a live teacher. Precedence: the recipe's `options`, then `facts` the
    adapter knows for sure (a run's metadata), then the model's own config (`model_io`),
    then the adapter's `defaults`."""
    student = context.student
    mean, std, input_size = options.mean, options.std, options.input_size
    interpolation = options.interpolation
    io = {**(defaults or {}), **model_io(model), **(facts or {})}
    chans, *hw = tuple(io.get("input_size", (student.in_chans, student.img_size,
                                             student.img_size)))
    chans = int(io.get("in_chans", chans))
    size = (chans, input_size, input_size) if input_size else (chans, *hw)
    t_mean = tuple(mean) if mean is not None else tuple(io.get("mean", IMAGENET_MEAN))
    t_std = tuple(std) if std is not None else tuple(io.get("std", IMAGENET_STD))
    if len(t_mean) != chans and len(t_mean) == 1:
        t_mean, t_std = t_mean * chans, t_std * chans
    n_cls = getattr(model, "num_classes", None)
    if not isinstance(n_cls, int) or n_cls <= 0:
        n_cls = probe_classes(model, size)
    return LiveTeacher(model, adapter=adapter, name=target, student=student, mean=t_mean,
                       std=t_std, input_size=size,
                       interpolation=interpolation or io.get("interpolation", "bicubic"),
                       num_classes=n_cls, weights_sha256=weights_sha256)
