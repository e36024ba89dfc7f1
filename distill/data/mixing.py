"""Mixup/CutMix on the batch, seeded per step, returning λ.

The draws and the mixing are those of timm's `Mixup` (per batch, per pair or per element),
made with the same NumPy calls in the same order, so a seed gives bitwise the images,
targets and λ that `timm.data.Mixup` would; only timm's public functions are used
(`cutmix_bbox_and_lam` for the boxes, `mixup_target` for the soft targets). The partner of
sample i is always sample B − 1 − i (`flip(0)`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .replay import seeded

if TYPE_CHECKING:
    from distill.recipe import AugmentConfig

__all__ = ["Mixer"]


class Mixer:
    """Mixup/CutMix with its draws seeded from (seed, epoch, step, rank); it also returns λ,
    which a cache replaying per-sample teacher outputs needs to mix them.

    `augment.mixup`/`augment.cutmix` are the Beta alphas (0: off; with both on, a draw with
    `switch_prob` picks cutmix), `mixup_prob` the chance a batch (or element) is mixed at all,
    `mixup_mode` "batch", "pair" or "elem". CutMix corrects λ to the box's clipped area.
    """

    def __init__(self, augment: AugmentConfig, num_classes: int, smoothing: float, seed: int):
        if not (augment.mixup > 0 or augment.cutmix > 0):
            raise ValueError("Mixer: needs augment.mixup > 0 or augment.cutmix > 0")
        if augment.mixup_mode not in ("batch", "pair", "elem"):
            raise ValueError(f"Mixer: unknown mixup_mode '{augment.mixup_mode}'")
        self.seed = seed
        self.mixup_alpha = augment.mixup
        self.cutmix_alpha = augment.cutmix
        self.prob = augment.mixup_prob
        self.switch_prob = augment.switch_prob
        self.mode = augment.mixup_mode
        self.num_classes = num_classes
        self.smoothing = smoothing

    @classmethod
    def from_recipe(cls, recipe: Any) -> Mixer:
        """The recipe's mixup/cutmix (training and exact-mixing caches use this one)."""
        return cls(recipe.augment, recipe.data.num_classes, recipe.loss.smoothing,
                   recipe.run.seed)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, epoch: int, step: int, rank: int = 0
                 ) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """Mix `x` in place; return it, the soft targets and λ (partner: `flip(0)`).

        λ is a float in batch mode (1.0: the draw left the batch alone), else a B×1 tensor of
        `x`'s dtype; the targets are λ·onehot(y) + (1 − λ)·onehot(y.flip(0)), smoothed."""
        from timm.data.mixup import mixup_target

        with seeded(self.seed, "mix", epoch, step, rank):
            if self.mode == "elem":
                lam = self._mix_elem(x)
            elif self.mode == "pair":
                lam = self._mix_pair(x)
            else:
                lam = self._mix_batch(x)
        return x, mixup_target(y, self.num_classes, lam, self.smoothing), lam

    # -- draws (NumPy's global generator, seeded by `__call__`) ------------------------------
    def _draw_per_elem(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """λ (float32) and use-cutmix flags for `n` elements; λ = 1 where not mixed."""
        a, c = self.mixup_alpha, self.cutmix_alpha
        if a > 0 and c > 0:
            use_cutmix = np.random.rand(n) < self.switch_prob
            cut = np.random.beta(c, c, size=n)  # drawn before the mixup λ, as timm does
            lam_mix = np.where(use_cutmix, cut, np.random.beta(a, a, size=n))
        elif a > 0:
            use_cutmix = np.zeros(n, dtype=bool)
            lam_mix = np.random.beta(a, a, size=n)
        else:
            use_cutmix = np.ones(n, dtype=bool)
            lam_mix = np.random.beta(c, c, size=n)
        lam = np.where(np.random.rand(n) < self.prob, lam_mix.astype(np.float32),
                       np.ones(n, dtype=np.float32))
        return lam, use_cutmix

    def _draw_per_batch(self) -> tuple[float, bool]:
        """λ and whether to cut for the whole batch; (1.0, False) where not mixed."""
        if not np.random.rand() < self.prob:
            return 1.0, False
        a, c = self.mixup_alpha, self.cutmix_alpha
        if a > 0 and c > 0:
            use_cutmix = bool(np.random.rand() < self.switch_prob)
            lam = np.random.beta(c, c) if use_cutmix else np.random.beta(a, a)
        elif a > 0:
            use_cutmix, lam = False, np.random.beta(a, a)
        else:
            use_cutmix, lam = True, np.random.beta(c, c)
        return float(lam), use_cutmix

    # -- mixing ------------------------------------------------------------------------------
    @staticmethod
    def _box(shape: torch.Size, lam: Any) -> tuple[tuple[Any, Any, Any, Any], Any]:
        """A random box for λ and λ corrected to its area clipped by the image borders."""
        from timm.data.mixup import cutmix_bbox_and_lam

        return cutmix_bbox_and_lam(shape, lam, correct_lam=True)

    def _mix_elem(self, x: torch.Tensor) -> torch.Tensor:
        batch = len(x)
        lams, use_cutmix = self._draw_per_elem(batch)
        orig = x.clone()  # the unmixed partners
        for i in range(batch):
            j, lam = batch - i - 1, lams[i]
            if lam != 1.0:
                if use_cutmix[i]:
                    (yl, yh, xl, xh), lam = self._box(x[i].shape, lam)
                    x[i][:, yl:yh, xl:xh] = orig[j][:, yl:yh, xl:xh]
                    lams[i] = lam
                else:
                    x[i] = x[i] * lam + orig[j] * (1 - lam)
        return torch.tensor(lams, device=x.device, dtype=x.dtype).unsqueeze(1)

    def _mix_pair(self, x: torch.Tensor) -> torch.Tensor:
        batch = len(x)
        lams, use_cutmix = self._draw_per_elem(batch // 2)
        orig = x.clone()  # the unmixed partners
        for i in range(batch // 2):
            j, lam = batch - i - 1, lams[i]
            if lam != 1.0:
                if use_cutmix[i]:
                    (yl, yh, xl, xh), lam = self._box(x[i].shape, lam)
                    x[i][:, yl:yh, xl:xh] = orig[j][:, yl:yh, xl:xh]
                    x[j][:, yl:yh, xl:xh] = orig[i][:, yl:yh, xl:xh]
                    lams[i] = lam
                else:
                    x[i] = x[i] * lam + orig[j] * (1 - lam)
                    x[j] = x[j] * lam + orig[i] * (1 - lam)
        lams = np.concatenate((lams, lams[::-1]))
        return torch.tensor(lams, device=x.device, dtype=x.dtype).unsqueeze(1)

    def _mix_batch(self, x: torch.Tensor) -> float:
        lam, use_cutmix = self._draw_per_batch()
        if lam == 1.0:
            return 1.0
        if use_cutmix:  # the partners' box: the box of x.flip(0), flipping the box alone
            (yl, yh, xl, xh), lam = self._box(x.shape, lam)
            x[:, :, yl:yh, xl:xh] = x[:, :, yl:yh, xl:xh].flip(0)
        else:
            _blend_flipped(x, lam)
        return lam


_PAIRS = 8  # sample pairs blended at a time by `_blend_flipped`


def _blend_flipped(x: torch.Tensor, lam: float) -> None:
    """`x.mul_(lam).add_(x.flip(0).mul_(1 - lam))`, the same floats, a few pairs (i, B−1−i)
    at a time: no flipped copy of the whole batch (77 MB at 128×3×224², allocated afresh each
    step) is made."""
    n, rest = len(x), 1.0 - lam
    half = n // 2
    for start in range(0, half, _PAIRS):
        stop = min(start + _PAIRS, half)
        low, high = x[start:stop], x[n - stop:n - start]  # high reversed: low's partners
        low_part, high_part = high.flip(0).mul_(rest), low.flip(0).mul_(rest)
        low.mul_(lam).add_(low_part)
        high.mul_(lam).add_(high_part)
    if n % 2:  # the middle sample is its own partner
        middle = x[half]
        part = middle.mul(rest)
        middle.mul_(lam).add_(part)
