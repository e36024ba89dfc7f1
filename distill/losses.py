"""Distillation losses: none, soft, hard, token — the paper's formulas, one small module each.

Every loss is an `nn.Module` class registered in `LOSSES` by one decorator, its facts
(heads, teacher, soft targets, the paper's settings: `LossFacts`) declared on the class;
it is built by name, `build(name, **params)`, with
`forward(outputs, labels, teacher_logits) -> Tensor`. `outputs` is the student's logits
(a tensor) or its `(cls, dist)` pair; `labels` are class indices or, after mixup/cutmix,
a B×C float tensor of soft targets; `teacher_logits` are the teacher's B×C logits, live
or replayed from a cache. A loss never calls a model. `parts(...)` returns the total and
each term, for logging.

With base = CE(z_cls, y) (soft-target CE for soft targets, label smoothing on indices):

- none:  base
- soft:  (1−α)·base + α·τ²·Σ p_t·(log p_t − log p_s) / (B·C),  p = softmax(z/τ)
- hard:  (1−α)·base + α·CE(z_cls, argmax z_t)
- token: (1−α)·base + α·D(z_dist), D the hard or soft term above on the distillation head.

The KL is divided by B·C (`kl_reduction="numel"`, the official DeiT code) or by B
(`"batchmean"`, timm's token task). The teacher's hard targets get no label smoothing.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distill.registry import LOSSES, LossFacts

__all__ = [
    "DistillationLoss",
    "HardLoss",
    "LossFacts",
    "NoneLoss",
    "SoftLoss",
    "TokenLoss",
    "base_loss",
    "build",
    "hard_distillation",
    "soft_distillation",
]

Outputs = Tensor | tuple[Tensor, Tensor]


def base_loss(logits: Tensor, labels: Tensor, smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of B×C `logits` on B class indices (with label smoothing) or on B×C
    soft labels (mixup/cutmix)."""
    if labels.is_floating_point():
        return torch.sum(-labels * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()
    return F.cross_entropy(logits.float(), labels, label_smoothing=smoothing)


def soft_distillation(student: Tensor, teacher: Tensor, tau: float,
                      reduction: Literal["numel", "batchmean"] = "numel") -> Tensor:
    """τ²·KL(softmax(z_t/τ) ‖ softmax(z_s/τ)), summed, divided by B·C or by B."""
    kl = F.kl_div(
        F.log_softmax(student.float() / tau, dim=-1),
        F.log_softmax(teacher.float() / tau, dim=-1),
        reduction="sum",
        log_target=True,
    )
    denom = student.numel() if reduction == "numel" else student.shape[0]
    return kl * (tau * tau) / denom


def hard_distillation(student: Tensor, teacher: Tensor) -> Tensor:
    """CE of the student against the teacher's argmax, without label smoothing."""
    return F.cross_entropy(student.float(), teacher.argmax(dim=-1))


def _split(outputs: Outputs) -> tuple[Tensor, Tensor | None]:
    if isinstance(outputs, (tuple, list)):
        cls, dist = outputs
        return cls, dist
    return outputs, None


class DistillationLoss(nn.Module):
    """Shared weighting: total = (1−α)·base + α·distill, in one place.

    A subclass declares its `facts` and, if it uses a teacher, its `distill_term`."""

    facts = LossFacts()

    def __init__(self, alpha: float = 0.5, tau: float = 1.0, smoothing: float = 0.0,
                 target: Literal["hard", "soft"] = "hard",
                 kl_reduction: Literal["numel", "batchmean"] = "numel"):
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        if target not in ("hard", "soft"):
            raise ValueError(f"target must be 'hard' or 'soft', got {target!r}")
        if kl_reduction not in ("numel", "batchmean"):
            raise ValueError(f"kl_reduction must be 'numel' or 'batchmean', got {kl_reduction!r}")
        self.alpha, self.tau, self.smoothing = alpha, tau, smoothing
        self.target, self.kl_reduction = target, kl_reduction

    def distill_term(self, cls: Tensor, dist: Tensor | None, teacher: Tensor) -> Tensor:
        raise NotImplementedError  # each strategy defines its own term

    def parts(self, outputs: Outputs, labels: Tensor,
              teacher_logits: Tensor | None = None) -> dict[str, Tensor]:
        """The total loss and each term: `loss`, `base`, and `distill` where there is one."""
        cls, dist = _split(outputs)
        base = base_loss(cls, labels, self.smoothing)
        if not self.facts.needs_teacher:
            return {"loss": base, "base": base}
        if teacher_logits is None:
            raise ValueError(f"loss '{type(self).__name__}' needs teacher logits")
        distill = self.distill_term(cls, dist, teacher_logits)
        total = (1.0 - self.alpha) * base + self.alpha * distill
        return {"loss": total, "base": base, "distill": distill}

    def forward(self, outputs: Outputs, labels: Tensor,
                teacher_logits: Tensor | None = None) -> Tensor:
        return self.parts(outputs, labels, teacher_logits)["loss"]

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha}, tau={self.tau}, smoothing={self.smoothing}, "
                f"target={self.target}, kl_reduction={self.kl_reduction}")


@LOSSES.register(name="none")
class NoneLoss(DistillationLoss):
    """No distillation: CE(z_cls, y)."""

    facts = LossFacts(heads="cls", needs_teacher=False, method="no distillation")


@LOSSES.register(name="soft")
class SoftLoss(DistillationLoss):
    """(1−α)·CE(z_cls, y) + α·τ²·KL(p_t ‖ p_cls): Hinton's soft distillation on the class
    head of a class-token student."""

    facts = LossFacts(heads="cls", soft_targets=True, paper={"alpha": 0.1, "tau": 3.0},
                      method="usual distillation, soft")

    def distill_term(self, cls: Tensor, dist: Tensor | None, teacher: Tensor) -> Tensor:
        return soft_distillation(cls, teacher, self.tau, self.kl_reduction)


@LOSSES.register(name="hard")
class HardLoss(DistillationLoss):
    """(1−α)·CE(z_cls, y) + α·CE(z_cls, argmax z_t): hard-label distillation on the class
    head."""

    facts = LossFacts(heads="cls", paper={"alpha": 0.5, "tau": 1.0},
                      method="usual distillation, hard")

    def distill_term(self, cls: Tensor, dist: Tensor | None, teacher: Tensor) -> Tensor:
        return hard_distillation(cls, teacher)


@LOSSES.register(name="token")
class TokenLoss(DistillationLoss):
    """(1−α)·CE(z_cls, y) + α·D(z_dist), DeiT⚗: the class head learns the labels, the
    distillation head the teacher (hard D by default, soft with `target="soft"`)."""

    facts = LossFacts(heads="dist", soft_targets="target",
                      paper={"alpha": 0.5, "tau": 1.0, "target": "hard"},
                      method="DeiT⚗ distillation token, {target}")

    def distill_term(self, cls: Tensor, dist: Tensor | None, teacher: Tensor) -> Tensor:
        if dist is None:
            raise ValueError("loss 'token' needs a student with a distillation head")
        if self.target == "soft":
            return soft_distillation(dist, teacher, self.tau, self.kl_reduction)
        return hard_distillation(dist, teacher)


def build(name: str, **params: Any) -> nn.Module:
    """Build the loss registered as `name` (`none`, `soft`, `hard`, `token`, or a plugin's)."""
    return LOSSES.build(name, **params)

