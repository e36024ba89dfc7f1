"""The tensor pipeline's parameter draws against timm's: the same rules and distributions.

`draw_params` does not reproduce timm's generators (it hashes (seed, epoch, index, repeat,
slot)), so its draws are compared with draws made by timm's own code, as distributions:
two-sample Kolmogorov–Smirnov distances and frequencies over a few thousand samples, with
fixed seeds on both sides (deterministic; the bounds are about 3 standard errors). The
level functions, which map a magnitude to an op's argument, must equal timm's exactly.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from PIL import Image

from distill.data.tensor_params import OP_NAMES, level_args, sample_keys
from distill.data.tensor_pipeline import TensorAugment
from distill.recipe import AugmentConfig, DataConfig

N = 4000
DATA = DataConfig(img_size=28, in_chans=1, mean=(0.286,), std=(0.353,))


def _ks(a, b) -> float:
    """The two-sample Kolmogorov–Smirnov distance."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    grid = np.concatenate([a, b])
    return float(np.abs(np.searchsorted(a, grid, "right") / len(a)
                        - np.searchsorted(b, grid, "right") / len(b)).max())


KS_BOUND = 1.95 * math.sqrt(2 / N)  # alpha = 0.001


def _ours(augment: AugmentConfig, sizes=(28, 28), n: int = N) -> dict[str, torch.Tensor]:
    return TensorAugment(DATA, augment, seed=0).params([(1, i, 0, i) for i in range(n)], sizes)


@pytest.mark.parametrize("name", OP_NAMES)
def test_level_args_equal_timm(name, monkeypatch):
    """Magnitude → argument for every op, both signs of `_randomly_negate`: timm's value."""
    from timm.data import auto_augment as aa

    op = aa.AugmentOp(name, prob=1.0, magnitude=9,
                      hparams=dict(translate_const=12, img_mean=(128,), translate_pct=0.45))
    mags = np.concatenate([np.linspace(0, 10, 81), [0.05, 3.3333, 9.99, 7.77]])
    for negate in (False, True):
        monkeypatch.setattr(aa.random, "random", lambda v=float(negate): v)
        ref = [float(op.level_fn(float(m), op.hparams)[0]) if op.level_fn else 0.0
               for m in mags]
        got = level_args(op, mags, np.full(len(mags), negate))
        assert got.tolist() == ref, name


def test_crops_follow_timms_distribution():
    """RandomResizedCropAndInterpolation.get_params: box sizes and positions, on a square
    and on a wide source image (where the ten attempts fail more often)."""
    from timm.data.transforms import RandomResizedCropAndInterpolation

    for (h, w), scale, ratio in [((28, 28), (0.08, 1.0), (3 / 4, 4 / 3)),
                                 ((20, 90), (0.5, 1.0), (0.9, 1.1))]:
        augment = AugmentConfig(scale=scale, ratio=ratio, auto_augment=None, re_prob=0.0)
        ours = _ours(augment, (h, w), n=5 * N)["crop"].numpy()
        random.seed(0)
        img = Image.new("L", (w, h))
        ref = np.array([RandomResizedCropAndInterpolation.get_params(img, scale, ratio)
                        for _ in range(5 * N)])
        bound = KS_BOUND / math.sqrt(5)
        for col, what in enumerate(("top", "left", "height", "width")):
            assert _ks(ours[:, col], ref[:, col]) < bound, (h, w, what)
        assert _ks(ours[:, 2] * ours[:, 3], ref[:, 2] * ref[:, 3]) < bound, (h, w, "area")
        assert _ks(ours[:, 3] / ours[:, 2], ref[:, 3] / ref[:, 2]) < bound, (h, w, "ratio")
        assert (ours[:, 0] + ours[:, 2] <= h).all() and (ours[:, 1] + ours[:, 3] <= w).all()


def _timm_rand_augment(spec: str, n: int):
    """timm's RandAugment run on an image n times, its ops recording what they apply:
    per call, a list of (op name, argument) per applied op."""
    from timm.data import auto_augment as aa

    ra = aa.rand_augment_transform(spec, dict(translate_const=12, img_mean=(73,)))
    calls: list[list] = []
    for op in ra.ops:
        def record(img, *args, _name=op.name, **kwargs):
            calls[-1].append((_name, args[0] if args else 0.0))
            return img
        op.aug_fn = record
    random.seed(0)
    np.random.seed(0)
    img = Image.new("L", (28, 28))
    for _ in range(n):
        calls.append([])
        ra(img)
    return calls


@pytest.mark.parametrize("spec", ["rand-m9-mstd0.5-inc1", "rand-m7-n3-mstd101-tweights"])
def test_rand_augment_follows_timms_distribution(spec):
    """Which ops are applied, how often, and their arguments (magnitude noise, clipping,
    level functions, signs): timm's RandAugment recorded against our draws."""
    calls = _timm_rand_augment(spec, N)
    p = _ours(AugmentConfig(auto_augment=spec, re_prob=0.0))
    ours_ops = p["ra_op"].numpy()
    ours = [(OP_NAMES[o], a) for row_o, row_a in zip(ours_ops, p["ra_arg"].numpy())
            for o, a in zip(row_o, row_a) if o >= 0]
    ref = [c for call in calls for c in call]
    layers = ours_ops.shape[1]
    # how many ops a call applies (the ops' probability)
    assert abs(len(ours) - len(ref)) / (N * layers) < 0.03
    names = sorted({name for name, _ in ref})
    for name in names:
        a = [x for nm, x in ours if nm == name]
        b = [x for nm, x in ref if nm == name]
        freq = len(b) / len(ref)
        assert abs(len(a) / len(ours) - freq) < 3 * math.sqrt(freq / len(ref)) + 0.005, name
        if len(set(b)) > 1:  # an argument that varies: its distribution
            bound = 1.95 * math.sqrt(1 / len(a) + 1 / len(b))
            assert _ks(a, b) < bound, name
    # the magnitudes (noise around m, clipped), pooled over the ops whose argument gives
    # them back: |argument| / scale, the same recovery on both sides
    scale = {"Rotate": 3.0, "ShearX": 0.03, "ShearY": 0.03, "TranslateXRel": 0.045,
             "TranslateYRel": 0.045}

    def magnitudes(pairs):
        out = []
        for name, arg in pairs:
            if name in scale:
                out.append(abs(arg) / scale[name])
            elif name.endswith("Increasing") and not name.startswith(("Posterize", "Solarize")):
                out.append(abs(arg - 1.0) / 0.09)
        return out

    a, b = magnitudes(ours), magnitudes(ref)
    assert len(b) > N / 2 and _ks(a, b) < 1.95 * math.sqrt(1 / len(a) + 1 / len(b))
    if "weights" in spec:  # weighted choice: no op twice in a call, as NumPy's choice
        applied = [[o for o in row if o >= 0] for row in ours_ops.tolist()]
        assert all(len(set(row)) == len(row) for row in applied)
        assert sum(len(row) == layers for row in applied) > N / 20


def test_flips_and_erasing_follow_timm():
    """Flip rates, and RandomErasing's probability and box sizes (timm's erasing run on a
    zero image in 'rand' mode: the box is where the image is no longer zero)."""
    from timm.data.random_erasing import RandomErasing

    augment = AugmentConfig(auto_augment=None, re_prob=0.4, hflip=0.5, vflip=0.2)
    p = _ours(augment)
    flips = p["flip"].float().mean(0).tolist()
    assert abs(flips[0] - 0.5) < 0.025 and abs(flips[1] - 0.2) < 0.02
    boxes = p["re_box"][:, 0].numpy()
    erase = RandomErasing(0.4, mode="rand", device="cpu")
    torch.manual_seed(0)
    random.seed(0)
    ref = []
    for _ in range(N):
        x = torch.zeros(1, 28, 28)
        erase(x)
        ys, xs = (x[0] != 0).nonzero(as_tuple=True)
        ref.append((0, 0) if len(ys) == 0 else
                   (int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)))
    ref = np.array(ref)
    on_ours, on_ref = boxes[:, 2] > 0, ref[:, 0] > 0
    assert abs(on_ours.mean() - on_ref.mean()) < 0.03
    for col, what in ((2, "height"), (3, "width")):
        assert _ks(boxes[on_ours, col], ref[on_ref, col - 2]) < \
            1.95 * math.sqrt(1 / on_ours.sum() + 1 / on_ref.sum()), what


def test_uniforms_stay_below_one(monkeypatch):
    """A hash of all ones would round to 1.0 in float64: the draws stay in (0, 1)."""
    from distill.data import tensor_params as P

    monkeypatch.setattr(P, "_mix64", lambda z: np.full_like(z, np.uint64(2 ** 64 - 1)))
    u = P._Uniforms(np.zeros(3, dtype=np.uint64)).take(4)
    assert (u < 1.0).all() and (u > 0.0).all()


def test_an_op_with_an_unknown_level_function_is_refused():
    """A RandAugment op whose level function the tensor path has no twin for: a UsageError
    naming data.pipeline, not a wrong argument."""
    from timm.data import auto_augment as aa

    from distill.errors import UsageError

    op = aa.AugmentOp("Rotate", prob=1.0, magnitude=9, hparams={"img_mean": (128,)})
    op.level_fn = lambda level, hparams: (level,)
    with pytest.raises(UsageError, match="data.pipeline"):
        level_args(op, np.array([5.0]), np.array([False]))


def test_draws_are_keyed_by_seed_epoch_index_repeat():
    """The stream key depends on (seed, epoch, index, repeat), not the position; a plain
    index is epoch 0, repeat 0."""
    base = sample_keys(0, [(1, 5, 0, 9)])[0]
    assert sample_keys(0, [(1, 5, 0, 0)])[0] == base
    others = [sample_keys(1, [(1, 5, 0, 9)]), sample_keys(0, [(2, 5, 0, 9)]),
              sample_keys(0, [(1, 6, 0, 9)]), sample_keys(0, [(1, 5, 1, 9)])]
    assert all(o[0] != base for o in others)
    assert sample_keys(3, [7])[0] == sample_keys(3, [(0, 7, 0, 7)])[0]
    keys = sample_keys(0, [(0, i, 0, i) for i in range(10000)])
    assert len(set(keys.tolist())) == 10000
