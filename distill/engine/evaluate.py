"""Evaluation: top-1 of the combined prediction and of each head; teacher top-1."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch
from torch import nn

from distill.data import Batch
from distill.teacher import Teacher

from . import interrupt
from .runtime import autocast

__all__ = ["evaluate_model", "evaluate_teacher", "split_heads"]


def split_heads(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(class-head logits, distillation-head logits or None) in eval mode."""
    heads = getattr(model, "forward_heads", None)
    if heads is not None:
        return heads(x)
    if hasattr(model, "head_dist") and hasattr(model, "forward_features"):  # timm's DeiT⚗
        feats = model.forward_features(x)
        return model.head(feats[:, 0]), model.head_dist(feats[:, 1])
    out = model(x)
    if isinstance(out, (tuple, list)):
        return out[0], out[1]
    return out, None


Reduce = Callable[[torch.Tensor], torch.Tensor]


def _accumulate(batches: Iterable[Batch], device: torch.device,
                predict: Callable[[Batch], dict[str, torch.Tensor]],
                reduce: Reduce | None = None) -> dict[str, float]:
    """Top-1 of each prediction; with `reduce` (a sum over ranks, each holding a non-empty
    shard of the validation set), of the whole set."""
    correct: dict[str, torch.Tensor] = {}
    total = torch.zeros((), dtype=torch.float64, device=device)
    start = time.perf_counter()
    with interrupt.deferred():  # a loader's workers start here
        batches = iter(batches)
    for batch in batches:
        batch = batch.to(device)
        y = batch.labels
        for key, logits in predict(batch).items():
            hit = (logits.argmax(dim=-1) == y).sum()
            correct[key] = correct[key] + hit if key in correct else hit
        total += y.shape[0]
        interrupt.check()  # a Ctrl-C that a fork hook or finalizer swallowed
    keys = sorted(correct)
    counts = torch.stack([correct[k].to(torch.float64) for k in keys] + [total])
    if reduce is not None:
        counts = reduce(counts)
    seconds = time.perf_counter() - start
    n = int(counts[-1].item())
    out = {k: 100.0 * counts[i].item() / max(n, 1) for i, k in enumerate(keys)}
    out["images"] = n
    out["images_per_s"] = n / seconds if seconds > 0 else 0.0
    return out


@torch.inference_mode()
def evaluate_model(model: nn.Module, batches: Iterable[Batch], device: torch.device,
                   dtype: torch.dtype | None = None, channels_last: bool = False,
                   reduce: Reduce | None = None) -> dict[str, float]:
    """`top1` of the model's eval output (the heads' average for DeiT⚗), `top1_cls` and
    `top1_dist` where there is a distillation head."""
    was_training = model.training
    model.eval()

    def predict(batch: Batch) -> dict[str, torch.Tensor]:
        x = batch.images
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, dtype):
            cls, dist = split_heads(model, x)
        if dist is None:
            return {"top1": cls}
        return {"top1": (cls + dist) / 2, "top1_cls": cls, "top1_dist": dist}

    try:
        return _accumulate(batches, device, predict, reduce)
    finally:
        model.train(was_training)


@torch.inference_mode()
def evaluate_teacher(teacher: Teacher, batches: Iterable[Batch], device: torch.device,
                     dtype: torch.dtype | None = None,
                     reduce: Reduce | None = None) -> dict[str, float]:
    """Top-1 of a teacher through its own `targets` path (student-normalised inputs)."""

    def predict(batch: Batch) -> dict[str, torch.Tensor]:
        with autocast(device, dtype):
            return {"top1": teacher.targets(batch)}

    return _accumulate(batches, device, predict, reduce)
