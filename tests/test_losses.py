"""Each loss against values computed by hand from the paper's formulas."""

from __future__ import annotations

import math

import pytest
import torch

from distill import losses
from distill.registry import LOSSES

# Two samples, three classes: small enough to compute by hand.
Z_CLS = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
Z_DIST = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 2.0]])
Z_T = torch.tensor([[1.0, 3.0, 0.0], [0.0, 0.0, 4.0]])  # teacher argmax: 1, 2
Y = torch.tensor([0, 1])


def log_softmax(row: list[float]) -> list[float]:
    m = max(row)
    lse = m + math.log(sum(math.exp(v - m) for v in row))
    return [v - lse for v in row]


def ce(rows: torch.Tensor, labels: list[int], smoothing: float = 0.0) -> float:
    total = 0.0
    for row, y in zip(rows.tolist(), labels):
        lp = log_softmax(row)
        c = len(row)
        total += -((1 - smoothing) * lp[y] + smoothing * sum(lp) / c)
    return total / len(labels)


def kl_sum(student: torch.Tensor, teacher: torch.Tensor, tau: float) -> float:
    total = 0.0
    for s, t in zip(student.tolist(), teacher.tolist()):
        ls = log_softmax([v / tau for v in s])
        lt = log_softmax([v / tau for v in t])
        total += sum(math.exp(a) * (a - b) for a, b in zip(lt, ls))
    return total


def test_none_is_the_base_cross_entropy():
    loss = losses.build("none", smoothing=0.1)
    assert loss(Z_CLS, Y, None).item() == pytest.approx(ce(Z_CLS, [0, 1], 0.1), rel=1e-6)


@pytest.mark.parametrize("tau", [1.0, 3.0])
@pytest.mark.parametrize("reduction", ["numel", "batchmean"])
def test_soft_is_hinton_kl_scaled_by_tau_squared(tau, reduction):
    alpha = 0.3
    loss = losses.build("soft", alpha=alpha, tau=tau, kl_reduction=reduction)
    denom = Z_CLS.numel() if reduction == "numel" else Z_CLS.shape[0]  # B·C or B
    distill = kl_sum(Z_CLS, Z_T, tau) * tau * tau / denom
    expected = (1 - alpha) * ce(Z_CLS, [0, 1]) + alpha * distill
    parts = loss.parts(Z_CLS, Y, Z_T)
    assert parts["distill"].item() == pytest.approx(distill, rel=1e-5)
    assert parts["loss"].item() == pytest.approx(expected, rel=1e-5)


def test_hard_uses_teacher_argmax_without_smoothing():
    loss = losses.build("hard", alpha=0.5, smoothing=0.2)
    expected = 0.5 * ce(Z_CLS, [0, 1], 0.2) + 0.5 * ce(Z_CLS, [1, 2], 0.0)
    assert loss(Z_CLS, Y, Z_T).item() == pytest.approx(expected, rel=1e-6)


def test_token_hard_trains_dist_head_on_teacher_and_cls_head_on_labels():
    loss = losses.build("token", alpha=0.5, smoothing=0.1)
    expected = 0.5 * ce(Z_CLS, [0, 1], 0.1) + 0.5 * ce(Z_DIST, [1, 2])
    parts = loss.parts((Z_CLS, Z_DIST), Y, Z_T)
    assert parts["loss"].item() == pytest.approx(expected, rel=1e-6)
    assert parts["base"].item() == pytest.approx(ce(Z_CLS, [0, 1], 0.1), rel=1e-6)


def test_token_soft_matches_official_deit_formula():
    tau = 2.0
    loss = losses.build("token", alpha=0.5, tau=tau, target="soft")
    distill = kl_sum(Z_DIST, Z_T, tau) * tau * tau / Z_DIST.numel()
    expected = 0.5 * ce(Z_CLS, [0, 1]) + 0.5 * distill
    assert loss((Z_CLS, Z_DIST), Y, Z_T).item() == pytest.approx(expected, rel=1e-5)


def test_soft_targets_from_mixup_use_soft_target_cross_entropy():
    soft_y = torch.tensor([[0.7, 0.3, 0.0], [0.1, 0.1, 0.8]])
    expected = 0.0
    for row, t in zip(Z_CLS.tolist(), soft_y.tolist()):
        expected += -sum(p * lp for p, lp in zip(t, log_softmax(row)))
    expected /= 2
    loss = losses.build("none", smoothing=0.5)  # smoothing applies to index targets only
    assert loss(Z_CLS, soft_y).item() == pytest.approx(expected, rel=1e-6)


def test_alpha_extremes():
    only_base = losses.build("token", alpha=0.0)((Z_CLS, Z_DIST), Y, Z_T)
    only_teacher = losses.build("token", alpha=1.0)((Z_CLS, Z_DIST), Y, Z_T)
    assert only_base.item() == pytest.approx(ce(Z_CLS, [0, 1]), rel=1e-6)
    assert only_teacher.item() == pytest.approx(ce(Z_DIST, [1, 2]), rel=1e-6)


def test_gradients_flow_to_the_right_heads():
    cls = Z_CLS.clone().requires_grad_(True)
    dist = Z_DIST.clone().requires_grad_(True)
    losses.build("token", alpha=1.0)((cls, dist), Y, Z_T).backward()
    assert cls.grad.abs().sum() == 0 and dist.grad.abs().sum() > 0


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_registered_loss_builds_and_runs(name):
    loss = LOSSES.build(name, alpha=0.5, tau=1.0)
    heads = LOSSES.facts(name).heads
    outputs = (Z_CLS, Z_DIST) if heads == "dist" else Z_CLS
    value = loss(outputs, Y, Z_T)
    assert value.ndim == 0 and torch.isfinite(value)


def test_token_without_dist_head_and_missing_teacher_are_errors():
    with pytest.raises(ValueError, match="distillation head"):
        losses.build("token")(Z_CLS, Y, Z_T)
    with pytest.raises(ValueError, match="needs teacher logits"):
        losses.build("soft")(Z_CLS, Y, None)


@pytest.mark.parametrize("params", [{"alpha": 1.5}, {"tau": 0.0}, {"target": "medium"},
                                    {"kl_reduction": "mean"}])
def test_bad_parameters_are_refused(params):
    with pytest.raises(ValueError):
        losses.build("token", **params)
