"""The tensor augmentation path against timm's PIL ops and pipeline, and its replay.

Tolerances, in uint8 levels: every op is compared with timm's PIL op for the same
parameters and must be EXACT (0 levels), the resampling ops included: `tensor_ops`
reproduces Pillow's filters (resize: support scaled when downscaling, clipped and
renormalised taps, a = −0.5 bicubic, 22-bit fixed point, uint8 between the passes;
transform: a = −1 bicubic, clamped neighbours, truncation, 16.16 fixed-point nearest), not
`grid_sample`'s. The whole pipeline must equal timm's and torchvision's PIL functions
applied with the same drawn parameters, outside random erasing's boxes (inside them the
noise comes from a different generator). The draws themselves are tested against timm's in
`test_tensor_draws.py`.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image

from distill.data import tensor_ops as T
from distill.data import tensor_resample as R
from distill.data.tensor_params import GEOMETRIC_OPS, OP_NAMES, rotate_matrix
from distill.data.tensor_pipeline import TensorAugment
from distill.errors import UsageError
from distill.recipe import AugmentConfig, DataConfig

MODES = [("L", 28), ("RGB", 32)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small tensors: one intra-op thread is faster than two contended ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _arrays(mode: str, n: int, size: int, seed: int = 0, h: int | None = None) -> np.ndarray:
    """Uint8 images N×H×W×C: smooth (natural-looking) ones and noise, alternating."""
    rng = np.random.default_rng(seed)
    c = 1 if mode == "L" else 3
    h = h or size
    yy, xx = np.mgrid[:h, :size]
    out = rng.integers(0, 256, (n, h, size, c), dtype=np.uint8)
    for i in range(seed % 2, n, 2):
        a = (np.sin(xx / (2 + i % 5) + i) + np.cos(yy / (3 + i % 3))) * 60 + 128
        a = (a + rng.normal(0, 12, a.shape)).clip(0, 255).astype(np.uint8)
        out[i] = np.stack([a, np.roll(a, i, 0), 255 - a][:c], -1)
    return out


def _pil(arr: np.ndarray, mode: str) -> Image.Image:
    return Image.fromarray(arr[..., 0] if mode == "L" else arr, mode)


def _tensor(arrs: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arrs)).permute(0, 3, 1, 2).contiguous()


def _from_pil(img: Image.Image) -> torch.Tensor:
    a = np.asarray(img)
    return torch.from_numpy((a[..., None] if a.ndim == 2 else a).copy()).permute(2, 0, 1)


def _assert_same(pil_out: list, tensor_out: torch.Tensor, what: str) -> None:
    ref = torch.stack([_from_pil(p) for p in pil_out])
    diff = (ref.int() - tensor_out.int()).abs()
    assert diff.max().item() == 0, f"{what}: max {diff.max().item()} levels, " \
                                   f"{(diff > 0).float().mean().item():.4f} of pixels"


@pytest.fixture(scope="module", params=MODES, ids=[m for m, _ in MODES])
def images(request):
    mode, size = request.param
    arrs = _arrays(mode, 8, size)
    return mode, size, [_pil(a, mode) for a in arrs], _tensor(arrs)


def test_point_and_enhance_ops_equal_timm(images):
    """Invert, Posterize, Solarize, SolarizeAdd, AutoContrast, Equalize, Color, Contrast,
    Brightness, Sharpness: exact."""
    from timm.data import auto_augment as aa

    _, _, pils, t = images
    _assert_same([aa.invert(p) for p in pils], T.invert(t), "invert")
    _assert_same([aa.auto_contrast(p) for p in pils], T.auto_contrast(t), "autocontrast")
    _assert_same([aa.equalize(p) for p in pils], T.equalize(t), "equalize")
    bits = torch.tensor([0, 1, 2, 3, 4, 8, 4, 2])
    _assert_same([aa.posterize(p, int(b)) for p, b in zip(pils, bits)], T.posterize(t, bits),
                 "posterize")
    th = torch.tensor([0, 26, 128, 256, 77, 200, 255, 1])
    _assert_same([aa.solarize(p, int(v)) for p, v in zip(pils, th)], T.solarize(t, th),
                 "solarize")
    add = torch.tensor([0, 10, 50, 99, 110, 3, 60, 128])
    _assert_same([aa.solarize_add(p, int(v)) for p, v in zip(pils, add)],
                 T.solarize_add(t, add), "solarize_add")
    fs = torch.tensor([0.1, 0.55, 1.0, 1.9, 1.37, 0.0, 0.8123, 1.55], dtype=torch.float64)
    for name, fn in (("color", T.color), ("contrast", T.contrast),
                     ("brightness", T.brightness), ("sharpness", T.sharpness)):
        _assert_same([getattr(aa, name)(p, float(f)) for p, f in zip(pils, fs)], fn(t, fs), name)


def test_lookup_ops_edge_cases():
    """Flat, two-level and skewed histograms (equalize's table clips above 255)."""
    from timm.data import auto_augment as aa

    arrs = np.zeros((6, 20, 20, 1), np.uint8)
    arrs[1] = 77
    arrs[2, :4] = 200  # autocontrast: 200 · (255 / 200) is 254.99…: 254, as Python has it
    arrs[3] = np.arange(400).reshape(20, 20, 1) % 3 + 250
    arrs[4, 0, 0] = 255  # one bright pixel: equalize's step is 0
    arrs[4, 1:] = 3
    flat = np.zeros(400, np.uint8)  # equalize's table reaches 399: PIL clips it to 255
    flat[150:399] = np.arange(1, 250)
    flat[399] = 255
    arrs[5] = flat.reshape(20, 20, 1)
    pils, t = [_pil(a, "L") for a in arrs], _tensor(arrs)
    for name, fn in (("equalize", T.equalize), ("auto_contrast", T.auto_contrast)):
        _assert_same([getattr(aa, name)(p) for p in pils], fn(t), name)


@pytest.mark.parametrize("interp", ["bilinear", "bicubic", "nearest"])
def test_geometric_ops_equal_timm(images, interp):
    """Rotate, ShearX/Y, TranslateX/YRel with each filter and timm's fill: exact."""
    from timm.data import auto_augment as aa

    mode, size, pils, t = images
    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
                "nearest": Image.NEAREST}[interp]
    code = torch.full((len(pils),), {"bilinear": T.BILINEAR, "bicubic": T.BICUBIC,
                                     "nearest": T.NEAREST}[interp])
    fill = (73,) if mode == "L" else (124, 116, 104)
    kw = dict(resample=resample, fillcolor=fill)

    def run(matrices: list) -> torch.Tensor:
        return R.affine(t, torch.tensor(matrices, dtype=torch.float64), code, fill)

    angles = [13.7, -22.1, 30.0, -0.5, 9.0, -29.99, 0.0, 17.0]
    _assert_same([aa.rotate(p, a, **kw) for p, a in zip(pils, angles)],
                 run([rotate_matrix(a, size, size) for a in angles]), "rotate")
    shears = [0.3, -0.27, 0.1, -0.05, 0.0, 0.29, -0.3, 0.15]
    _assert_same([aa.shear_x(p, s, **kw) for p, s in zip(pils, shears)],
                 run([(1, s, 0, 0, 1, 0) for s in shears]), "shear_x")
    _assert_same([aa.shear_y(p, s, **kw) for p, s in zip(pils, shears)],
                 run([(1, 0, 0, s, 1, 0) for s in shears]), "shear_y")
    pcts = [0.45, -0.41, 0.1, -0.05, 0.0, 0.33, -0.2, 0.017]
    _assert_same([aa.translate_x_rel(p, q, **kw) for p, q in zip(pils, pcts)],
                 run([(1, 0, q * size, 0, 1, 0) for q in pcts]), "translate_x_rel")
    _assert_same([aa.translate_y_rel(p, q, **kw) for p, q in zip(pils, pcts)],
                 run([(1, 0, 0, 0, 1, q * size) for q in pcts]), "translate_y_rel")


@pytest.mark.parametrize("interp", ["bilinear", "bicubic", "nearest"])
def test_resized_crop_and_flips_equal_torchvision_on_pil(images, interp):
    """timm's RRC (torchvision resized_crop on PIL) + h/v flips, up- and downscaling,
    as one resampling: exact (PIL's antialiased resize, not grid_sample)."""
    import torchvision.transforms.functional as F
    from torchvision.transforms import InterpolationMode

    _, size, pils, t = images
    mode_tv = InterpolationMode(interp)
    code = {"bilinear": T.BILINEAR, "bicubic": T.BICUBIC, "nearest": T.NEAREST}[interp]
    r = random.Random(1)
    for out in (size, 13, 45):
        crops = [(0, 0, size, size)]
        for _ in range(len(pils) - 1):
            h, w = r.randint(2, size), r.randint(2, size)
            crops.append((r.randint(0, size - h), r.randint(0, size - w), h, w))
        flips = torch.tensor([[i % 2, (i // 2) % 2] for i in range(len(pils))], dtype=torch.bool)
        ref = []
        for p, (i, j, h, w), (hf, vf) in zip(pils, crops, flips.tolist()):
            q = F.resized_crop(p, i, j, h, w, [out, out], mode_tv)
            q = F.hflip(q) if hf else q
            ref.append(F.vflip(q) if vf else q)
        for method in ("taps", "matmul"):
            got = R.resized_crop(t, torch.tensor(crops), (out, out),
                                 torch.full((len(pils),), code), flips, method=method, chunk=3)
            _assert_same(ref, got, f"resized_crop {interp} -> {out} ({method})")


def _configs():
    gray = dict(img_size=28, in_chans=1, mean=(0.286,), std=(0.353,))
    rgb = dict(img_size=24, in_chans=3, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    return [
        # (data, augment, source mode, source (h, w) per sample or one)
        pytest.param(gray, {}, "L", (28, 28), id="fmnist-default"),
        pytest.param(rgb, {}, "RGB", (32, 32), id="rgb-default"),
        pytest.param({**rgb, "interpolation": "bilinear"},
                     dict(auto_augment=None, color_jitter=0.4, re_count=3, vflip=0.3),
                     "RGB", [(40, 30), (24, 50), (33, 33)] * 8, id="rgb-jitter-sizes"),
        pytest.param(gray, dict(auto_augment="rand-m7-n3-mstd101-tweights", re_mode="rand",
                                re_prob=0.6, scale=(0.3, 1.0)), "RGB", (30, 26), id="gray-weights"),
        pytest.param({**rgb, "interpolation": "nearest"},
                     dict(auto_augment="rand-m9-mstd0.5", re_mode="const", re_prob=0.5),
                     "L", (28, 28), id="rgb-from-gray-nearest"),
        pytest.param(rgb, dict(re_mode="rand", re_prob=1.0, re_count=2), "RGB", (32, 32),
                     id="rgb-rand-erasing"),
    ]


_PIL_FILTER = {T.NEAREST: Image.Resampling.NEAREST, T.BILINEAR: Image.Resampling.BILINEAR,
               T.BICUBIC: Image.Resampling.BICUBIC}
_INT_ARG = ("Posterize", "Solarize")  # timm's level functions give these ints


def _pil_pipeline(aug: TensorAugment, img: Image.Image, row: dict) -> torch.Tensor:
    """timm's training transform on a PIL image with a sample's drawn parameters instead of
    timm's own draws: torchvision's resized_crop and flips, timm's RandAugment op functions,
    torchvision's colour jitter functions, ToTensor + Normalize (erasing left out)."""
    import torchvision.transforms.functional as F
    from timm.data import auto_augment as aa
    from torchvision.transforms import InterpolationMode

    settings = aug.settings
    modes = {T.NEAREST: "nearest", T.BILINEAR: "bilinear", T.BICUBIC: "bicubic"}
    top, left, h, w = row["crop"].tolist()
    img = F.resized_crop(img, top, left, h, w, list(settings.size),
                         InterpolationMode(modes[int(row["interp"])]))
    hflip, vflip = row["flip"].tolist()
    img = F.hflip(img) if hflip else img
    img = F.vflip(img) if vflip else img
    for op, arg, interp in zip(row["ra_op"].tolist(), row["ra_arg"].tolist(),
                               row["ra_interp"].tolist()):
        if op < 0:
            continue
        name = OP_NAMES[op]
        fn = aa.NAME_TO_OP[name]
        if name in GEOMETRIC_OPS:
            img = fn(img, arg, fillcolor=settings.fill, resample=_PIL_FILTER[interp])
        elif name in ("AutoContrast", "Equalize", "Invert"):
            img = fn(img)
        else:
            img = fn(img, int(arg) if name.startswith(_INT_ARG) else arg)
    jitter = {0: F.adjust_brightness, 1: F.adjust_contrast, 2: F.adjust_saturation}
    for fn_id in row["cj_order"].tolist():
        factor = float(row["cj_factor"][fn_id])
        if fn_id in jitter and factor == factor:
            img = jitter[fn_id](img, factor)
    return F.normalize(F.to_tensor(img), list(settings.mean), list(settings.std))


@pytest.mark.parametrize("data, augment, mode, sizes", _configs())
def test_pipeline_equals_pil_ops_with_its_params(data, augment, mode, sizes):
    """Each sample's drawn parameters, applied by the tensor pipeline and by timm's and
    torchvision's PIL functions: the same image to the bit outside the erased boxes;
    inside them N(0, 1) noise ('pixel'), one value per channel ('rand') or zeros."""
    data, augment = DataConfig(**data), AugmentConfig(**augment)
    n = 24
    hw = [sizes] * n if isinstance(sizes[0], int) else sizes
    arrs = [_arrays(mode, 1, w, seed=i, h=h)[0] for i, (h, w) in enumerate(hw)]
    pil_mode = "L" if data.in_chans == 1 else "RGB"
    aug = TensorAugment(data, augment, seed=5)
    keys = [(3, i, i % 2, i) for i in range(n)]
    params = aug.params(keys, hw)
    ref = torch.stack([_pil_pipeline(aug, _pil(a, mode).convert(pil_mode),
                                     {k: v[i] for k, v in params.items()})
                       for i, a in enumerate(arrs)])
    got = aug([_tensor(a[None])[0] for a in arrs], params)
    assert got.shape == ref.shape and got.dtype == torch.float32
    boxed = torch.zeros_like(got, dtype=torch.bool)
    for b, boxes in enumerate(params["re_box"].tolist()):
        for top, left, h, w in boxes:
            boxed[b, :, top:top + h, left:left + w] = True
    assert torch.equal(got[~boxed], ref[~boxed])
    applied = {OP_NAMES[o] for o in params["ra_op"].flatten().tolist() if o >= 0}
    if augment.auto_augment:  # the batch exercises RandAugment, geometric ops included
        assert len(applied) >= 5 and applied & GEOMETRIC_OPS
    if augment.re_mode == "const":
        assert boxed.any() and (got[boxed] == 0).all()
    elif augment.re_mode == "pixel" and boxed.any():
        x = got[boxed]
        assert abs(x.mean().item()) < 0.2 and abs(x.std().item() - 1) < 0.2
    elif augment.re_mode == "rand":  # one normal value per channel and box
        assert boxed.any()
        fills = []
        for b, boxes in enumerate(params["re_box"].tolist()):
            drawn = [box for box in boxes if box[2]]
            if not drawn:
                continue
            top, left, h, w = drawn[-1]  # the last box: on top
            patch = got[b, :, top:top + h, left:left + w].flatten(1)
            assert (patch == patch[:, :1]).all()
            fills += patch[:, 0].tolist()
        fills = torch.tensor(fills)
        assert len(set(fills.tolist())) == len(fills)  # a value per channel and box
        assert abs(fills.mean()) < 0.5 and 0.6 < fills.std() < 1.4


@pytest.mark.parametrize("interp", [T.BILINEAR, T.BICUBIC])
def test_affine_along_one_axis_equals_the_general_case(interp):
    """Shears and translations along one axis read one row (column) of taps: the same
    pixels as the full 2-D filter, which PIL runs."""
    from distill.data.tensor_resample import axis_of

    x = _tensor(_arrays("RGB", 16, 28, seed=4))
    r = random.Random(5)
    for axis, cols in (("x", (1, 2)), ("y", (3, 5))):
        m = torch.tensor([(1.0, 0.0, 0.0, 0.0, 1.0, 0.0)] * 16, dtype=torch.float64)
        for b in range(16):
            m[b, cols[b % 2]] = r.uniform(-12, 12) if b % 2 else r.uniform(-0.3, 0.3)
        assert axis_of(m).tolist() == [1 if axis == "x" else 2] * 16
        codes = torch.full((16,), interp)
        assert torch.equal(R.affine(x, m, codes, (73, 20, 200), axis=axis),
                           R.affine(x, m, codes, (73, 20, 200)))
    rotated = torch.tensor([rotate_matrix(a, 28, 28) for a in (10.0, -3.0)], dtype=torch.float64)
    assert axis_of(rotated).tolist() == [0, 0]


def test_resize_taps_table_equals_computing_them(monkeypatch):
    """The tabulated taps (crops up to R._TABLE_MAX pixels) and the computed ones (longer
    crops): the same images."""
    x = _tensor(_arrays("RGB", 12, 40, seed=2, h=36))
    r = random.Random(3)
    crops = []
    for _ in range(12):
        h, w = r.randint(1, 36), r.randint(1, 40)
        crops.append((r.randint(0, 36 - h), r.randint(0, 40 - w), h, w))
    crops, interp = torch.tensor(crops), torch.tensor([i % 3 for i in range(12)])
    flips = torch.tensor([[i % 2, (i // 2) % 2] for i in range(12)], dtype=torch.bool)
    for out in (24, 57):
        for method in ("taps", "matmul"):
            tabled = R.resized_crop(x, crops, (out, out), interp, flips, method=method)
            monkeypatch.setattr(R, "_TABLE_MAX", 0)
            computed = R.resized_crop(x, crops, (out, out), interp, flips, method=method)
            monkeypatch.undo()
            assert torch.equal(computed, tabled), (out, method)


@pytest.mark.parametrize("data, augment, mode, sizes", _configs())
def test_spec_reads_the_pil_pipelines_transform(data, augment, mode, sizes):
    """What the tensor pipeline applies (`AugmentSettings`) is what `train_transform` (timm's
    create_transform) builds for the same recipe, stage by stage."""
    from timm.data.auto_augment import RandAugment
    from timm.data.random_erasing import RandomErasing
    from timm.data.transforms import RandomResizedCropAndInterpolation
    from torchvision import transforms as tv

    from distill.data.transforms import train_transform

    data, augment = DataConfig(**data), AugmentConfig(**augment)
    settings = TensorAugment(data, augment).settings
    stages = {type(t): t for t in train_transform(data, augment).transforms}
    rrc = stages[RandomResizedCropAndInterpolation]
    assert tuple(rrc.size) == settings.size and tuple(rrc.scale) == settings.scale
    assert tuple(rrc.ratio) == settings.ratio
    interp = rrc.interpolation
    assert (settings.interpolation == "random") == isinstance(interp, (list, tuple))
    if settings.interpolation != "random":
        assert interp.value == settings.interpolation
    for kind, p in ((tv.RandomHorizontalFlip, settings.hflip), (tv.RandomVerticalFlip, settings.vflip)):
        assert (kind in stages) == (p > 0) and (p == 0 or stages[kind].p == p)

    def ops(ra):
        return [(op.name, op.prob, op.magnitude, op.magnitude_std, op.magnitude_max,
                 op.kwargs.get("fillcolor"), op.kwargs.get("resample"),
                 op.hparams.get("translate_const")) for op in ra.ops]

    assert (RandAugment in stages) == (settings.rand_augment is not None)
    if settings.rand_augment is not None:
        ra = stages[RandAugment]
        assert ops(ra) == ops(settings.rand_augment) and ra.num_layers == settings.layers
        assert (ra.choice_weights is None) == (settings.rand_augment.choice_weights is None)
    assert (tv.ColorJitter in stages) == (settings.color_jitter is not None)
    if settings.color_jitter is not None:
        cj = stages[tv.ColorJitter]
        for name in ("brightness", "contrast", "saturation", "hue"):
            assert getattr(cj, name) == getattr(settings.color_jitter, name), name
    norm = stages[tv.Normalize]
    assert torch.tensor(settings.mean).tolist() == torch.as_tensor(norm.mean).tolist()
    assert torch.tensor(settings.std).tolist() == torch.as_tensor(norm.std).tolist()
    assert (RandomErasing in stages) == (settings.erasing is not None)
    if settings.erasing is not None:
        re = stages[RandomErasing]
        for name in ("probability", "mode", "min_count", "max_count", "min_area", "max_area",
                     "log_aspect_ratio"):
            assert getattr(re, name) == getattr(settings.erasing, name), name


def test_replay_independent_of_batch():
    """A key's parameters and image are the same alone, in a batch of 8 and in a batch of
    256 in another order."""
    data = DataConfig(img_size=28, in_chans=1, mean=(0.286,), std=(0.353,))
    aug = TensorAugment(data, AugmentConfig(re_prob=1.0), seed=11)
    arrs = _arrays("L", 256, 28, seed=3)
    keys = [(2, i, 0, i) for i in range(256)]
    order = torch.randperm(256, generator=torch.Generator().manual_seed(0)).tolist()
    target = 37
    batches = [[target], [*range(32, 40)], order]
    rows, outs = [], []
    for batch in batches:
        p = aug.params([keys[i] for i in batch], (28, 28))
        y = aug(_tensor(arrs[batch]), p)
        at = batch.index(target)
        rows.append({k: v[at] for k, v in p.items()})
        outs.append(y[at])
    for row, out in zip(rows[1:], outs[1:]):
        for k, v in rows[0].items():
            torch.testing.assert_close(v, row[k], rtol=0, atol=0, equal_nan=True, msg=k)
        assert torch.equal(outs[0], out)
    plain = T.normalize(_tensor(arrs[target:target + 1]), data.mean, data.std)[0]
    assert not torch.equal(outs[0], plain)  # it is augmented at all


def test_noise_is_standard_normal_and_keyed_by_seed():
    seeds = torch.tensor([1, 2 ** 62 + 12345, 7])
    z = T.normal_noise(seeds, (3, 64, 64))
    assert abs(z.mean().item()) < 0.02 and abs(z.std().item() - 1) < 0.02
    assert not torch.equal(z[0], z[2])
    assert torch.equal(T.normal_noise(seeds[1:2], (3, 64, 64))[0], z[1])
    assert not torch.equal(T.normal_noise(seeds[:1], (3, 64, 64), stream=1)[0], z[0])


def test_params_leave_global_generators_alone():
    data = DataConfig(img_size=28, in_chans=1, mean=(0.286,), std=(0.353,))
    aug = TensorAugment(data, AugmentConfig(), seed=0)
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    aug.params(range(4), (28, 28))
    after = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    assert after == (random.random(), np.random.rand(), torch.rand(1).item())


def test_color_jitter_only_without_auto_augment():
    """timm drops ColorJitter when RandAugment is on (no force_color_jitter)."""
    data = DataConfig(img_size=28, in_chans=1, mean=(0.286,), std=(0.353,))
    assert TensorAugment(data, AugmentConfig(color_jitter=0.3)).settings.color_jitter is None
    settings = TensorAugment(data, AugmentConfig(auto_augment=None, color_jitter=0.3)).settings
    assert settings.color_jitter is not None and settings.color_jitter.hue is None


@pytest.mark.parametrize("pipeline", ["pil", "tensor"])
def test_weighted_rand_augment_needs_enough_ops(pipeline):
    """timm's weighted choice draws distinct ops: more layers than weighted ops is refused
    when the recipe is read, on both pipelines (not at the first image)."""
    from distill.recipe import load_recipe
    from tests.conftest import SMOKE

    with pytest.raises(UsageError, match=r"augment\.auto_augment: chooses 20 distinct ops") as e:
        load_recipe(SMOKE, ["augment.auto_augment=rand-m9-n20-tweights",
                            f"data.pipeline={pipeline}"])
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("spec", ["original", "augmix-m5-w4-d2", "rand-m9-t3a", "v0"])
def test_unsupported_settings_name_the_pipeline(spec):
    data = DataConfig(img_size=28, in_chans=1, mean=(0.286,), std=(0.353,))
    with pytest.raises(UsageError, match="data.pipeline"):
        TensorAugment(data, AugmentConfig(auto_augment=spec))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    """Same parameters on CUDA: the same image (erasing's noise within float32 rounding)."""
    data = DataConfig(img_size=32, in_chans=3, mean=(0.5,) * 3, std=(0.25,) * 3)
    aug = TensorAugment(data, AugmentConfig(re_prob=0.5), seed=2)
    x = _tensor(_arrays("RGB", 64, 40, seed=4))
    p = aug.params(range(64), (40, 40))
    cpu, gpu = aug(x, p), aug(x, p, device="cuda").cpu()
    assert torch.allclose(cpu, gpu, atol=1e-4, rtol=0)
    assert (cpu == gpu).float().mean() > 0.9
