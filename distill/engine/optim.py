"""Optimizer, learning-rate schedule and EMA, built from the recipe.

- Weight decay skips norms, biases and the model's `no_weight_decay()` (tokens, pos_embed).
- The LR is `optim.lr × global_batch / 512` when `scale_lr` (DeiT's rule), warmed up
  linearly from `warmup_lr`, then cosine to `min_lr`: updated every step
  (`schedule.step: iter`), or once an epoch as the official DeiT code steps timm's
  scheduler (`schedule.step: epoch`).
- AdamW is fused on CUDA unless the recipe says otherwise.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from distill.recipe import OptimConfig, ScheduleConfig

__all__ = ["EMA", "LRSchedule", "build_optimizer", "param_groups", "peak_lr"]


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    skip = set(getattr(model, "no_weight_decay", lambda: set())())
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or name.endswith(".bias") or name in skip:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def peak_lr(optim: OptimConfig, global_batch: int) -> float:
    return optim.lr * global_batch / 512 if optim.scale_lr else optim.lr


def build_optimizer(model: nn.Module, optim: OptimConfig, lr: float,
                    device: torch.device) -> torch.optim.Optimizer:
    groups = param_groups(model, optim.weight_decay)
    if optim.name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=optim.momentum, nesterov=True)
    fused = optim.fused if optim.fused is not None else device.type == "cuda"
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(optim.betas), eps=optim.eps,
                             fused=fused or None)


class LRSchedule:
    """The LR of each optimizer step: linear warm-up from `warmup_lr` to `peak`, then
    cosine to `min_lr` (or flat).

    `schedule.step: iter` (the default) changes it every step, the cosine running over
    the steps after the warm-up. `schedule.step: epoch` gives every step of epoch `e` the
    value that timm's `CosineLRScheduler` (t_initial = epochs, warmup_prefix off, as
    `timm.scheduler.create_scheduler` builds it for DeiT's `main.py`) holds after
    `step(e - 1)`: DeiT steps it after each epoch, so epoch 0 runs at its initial value
    (`warmup_lr`, or the peak without warm-up) and the warm-up lags one epoch."""

    def __init__(self, schedule: ScheduleConfig, peak: float, steps_per_epoch: int):
        self.peak = peak
        self.name = schedule.name
        self.warmup_lr = schedule.warmup_lr
        self.min_lr = min(schedule.min_lr, peak)
        self.total = schedule.epochs * steps_per_epoch
        self.warmup = round(schedule.warmup_epochs * steps_per_epoch)
        self.per_epoch = schedule.step == "epoch"
        self.steps_per_epoch = steps_per_epoch
        self.epochs, self.warmup_epochs = schedule.epochs, schedule.warmup_epochs
        self.timm_min_lr = schedule.min_lr  # timm does not cap lr_min at the peak

    def epoch_lr(self, epoch: int) -> float:
        """The LR of epoch `epoch` under `schedule.step: epoch` (timm's values, one epoch late)."""
        if epoch == 0:
            return self.warmup_lr if self.warmup_epochs > 0 else self.peak
        t = epoch - 1  # the argument of the scheduler's last step(t)
        if t < self.warmup_epochs:
            return self.warmup_lr + t * ((self.peak - self.warmup_lr) / self.warmup_epochs)
        if self.name == "constant":
            return self.peak
        if t >= self.epochs:  # past the cycle: timm holds lr_min
            return self.timm_min_lr
        return self.timm_min_lr + 0.5 * (self.peak - self.timm_min_lr) * (
            1 + math.cos(math.pi * t / self.epochs))

    def __call__(self, epoch: int, i: int = 0) -> float:
        """The LR of step `i` of epoch `epoch`, both as the trainer counts them: a run
        resumed by another number of processes (epochs of another length) takes its
        epoch's LR, not the one its count of optimizer steps would point to."""
        if self.per_epoch:
            return self.epoch_lr(epoch)
        step = epoch * self.steps_per_epoch + i
        if step < self.warmup:
            return self.warmup_lr + (self.peak - self.warmup_lr) * step / self.warmup
        if self.name == "constant":
            return self.peak
        t = (step - self.warmup) / max(1, self.total - self.warmup)
        return self.min_lr + 0.5 * (self.peak - self.min_lr) * (1 + math.cos(math.pi * min(t, 1.0)))

    def apply(self, optimizer: torch.optim.Optimizer, epoch: int, i: int = 0) -> float:
        """Set the LR of step `i` of epoch `epoch` on every group; returns it."""
        lr = self(epoch, i)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr


class EMA:
    """Exponential moving average of the parameters of the model given at construction
    (its floating-point buffers are copied)."""

    def __init__(self, model: nn.Module, decay: float):
        import copy

        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self._pairs = (list(self.module.parameters()), [p.detach() for p in model.parameters()])
        self._buffers = ([b for b in self.module.buffers() if b.is_floating_point()],
                         [b for b in model.buffers() if b.is_floating_point()])

    @torch.no_grad()
    def update(self) -> None:
        """One step: ema ← decay·ema + (1−decay)·params; float buffers (BN stats) copied."""
        torch._foreach_lerp_(self._pairs[0], self._pairs[1], 1.0 - self.decay)
        if self._buffers[0]:
            torch._foreach_copy_(self._buffers[0], self._buffers[1])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
