"""benchmarks/view_difficulty.py (issue 26): the teacher's top-1 on each pipeline's training
views, and their difference paired by image."""

from __future__ import annotations

import pytest
import torch

from benchmarks.view_difficulty import measure, paired

NO_AUGMENTATION = ["augment.auto_augment=null", "augment.re_prob=0", "augment.hflip=0",
                   "augment.color_jitter=null", "augment.scale=[1.0,1.0]",
                   "augment.ratio=[1.0,1.0]"]


def test_without_augmentation_both_pipelines_make_the_same_views():
    """A whole-image crop, no flip, no RandAugment, no erasing, no jitter: the two pipelines
    must give the teacher the same pixels, so every figure agrees and the paired difference
    is exactly 0 over every image."""
    a, b = (measure("recipes/smoke.yaml", "recipe", pl, 1, 0, NO_AUGMENTATION)
            for pl in ("pil", "tensor"))
    assert a["views"] == b["views"] == 256
    for key in ("teacher_top1", "pixel_mean", "pixel_sd_per_view"):
        assert a[key] == pytest.approx(b[key], abs=1e-6), key
    m, se, k = paired(a, b)
    assert (m, se, k) == (0.0, 0.0, 256)


def test_paired_difference_per_image():
    """Each image's top-1 over its own views, then the mean of the differences: an image the
    teacher gets right on 1 of 2 views in one pipeline and 2 of 2 in the other counts +50."""
    a = {"per_image": torch.tensor([[1.0, 2.0], [2.0, 2.0], [0.0, 0.0]])}
    b = {"per_image": torch.tensor([[2.0, 2.0], [2.0, 2.0], [1.0, 1.0]])}  # image 2: b only
    m, se, k = paired(a, b)
    assert k == 2 and m == pytest.approx(25.0) and se == pytest.approx(25.0)


def test_augmented_views_are_counted_per_image():
    r = measure("recipes/smoke.yaml", "recipe", "tensor", 2, 0)
    right, views = r["per_image"].unbind(1)
    assert r["views"] == int(views.sum()) == 512
    assert bool((views == 2).all())  # every image twice, once an epoch
    assert r["teacher_top1"] == pytest.approx(100 * right.sum().item() / 512)
