"""Per-sample random parameters of timm's training transform, drawn on the host, batched.

`AugmentSettings.from_config(data, augment)` reads the recipe the way `train_transform` hands
it to timm's `create_transform` (the RandAugment ops are timm's own objects, parsed by
timm's `rand_augment_transform`), and `draw_params(settings, seed, keys, sizes)` draws, for each
sample key, every random choice of that transform: the crop box and its interpolation, the
flips, RandAugment's ops, magnitudes, signs and interpolations, colour jitter's order and
factors, and random erasing's boxes.

The draws follow timm's rules (RandomResizedCropAndInterpolation's ten attempts and central
fallback, RandAugment's op choice, probability, magnitude noise, clipping and level
functions, RandomErasing's attempts; torchvision's flips and ColorJitter), with the same
distributions, but not from timm's generators: every uniform is a counter-based hash of
(seed, epoch, index, repeat, slot), computed for the whole batch at once in NumPy. So a
sample's parameters depend on its key alone, not on the batch, its size or its order, and
drawing them costs a few microseconds per sample instead of reseeding three generators per
sample. They are not the PIL pipeline's draws for the same key: the two pipelines see
different (equally distributed) augmentations, which is why a logit cache records which
pipeline built it. (The draws use NumPy's exp, log, sqrt and cos: on another CPU or NumPy
build a draw can differ in its last bit, so exact replay is promised on one machine.)

The result is a dict of tensors with one row per sample (see `draw_params`), cheap to ship
with a batch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from distill.errors import UsageError

from .replay import derive_seed
from .tensor_ops import BICUBIC, BILINEAR, NEAREST

if TYPE_CHECKING:
    from distill.recipe import AugmentConfig, DataConfig

__all__ = ["DRAWS", "GEOMETRIC_OPS", "OP_NAMES", "AugmentSettings", "draw_params", "level_args",
           "rotate_matrix", "sample_keys"]

# RandAugment ops the tensor path implements; parameter tensors index into this tuple.
OP_NAMES = (
    "AutoContrast", "Equalize", "Invert", "Rotate",
    "Posterize", "PosterizeIncreasing", "PosterizeOriginal",
    "Solarize", "SolarizeIncreasing", "SolarizeAdd",
    "Color", "ColorIncreasing", "Contrast", "ContrastIncreasing",
    "Brightness", "BrightnessIncreasing", "Sharpness", "SharpnessIncreasing",
    "ShearX", "ShearY", "TranslateX", "TranslateY", "TranslateXRel", "TranslateYRel",
)
GEOMETRIC_OPS = frozenset({"Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY",
                           "TranslateXRel", "TranslateYRel"})
_OP_INDEX = {name: i for i, name in enumerate(OP_NAMES)}


def _interp_code(mode: Any) -> int:
    """A PIL resampling filter or torchvision InterpolationMode (or its name) → code."""
    name = getattr(mode, "value", None)
    if not isinstance(name, str):
        from timm.data.auto_augment import Image

        name = {Image.Resampling.NEAREST: "nearest", Image.Resampling.BILINEAR: "bilinear",
                Image.Resampling.BICUBIC: "bicubic"}.get(mode, str(mode))
    codes = {"nearest": NEAREST, "bilinear": BILINEAR, "bicubic": BICUBIC}
    if name not in codes:
        raise UsageError(f"data.pipeline: tensor supports nearest, bilinear and bicubic "
                         f"interpolation, not {name}")
    return codes[name]


def _unsupported(what: str) -> UsageError:
    return UsageError(f"data.pipeline: tensor does not support {what}; use data.pipeline: pil")


@dataclass(frozen=True)
class AugmentSettings:
    """What the training transform does, as timm's `transforms_imagenet_train` builds it
    from `train_transform`'s arguments (RRC → flips → RandAugment → colour jitter →
    normalise → random erasing)."""

    size: tuple[int, int]
    in_chans: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: tuple[float, float]
    ratio: tuple[float, float]
    interpolation: str  # "nearest" | "bilinear" | "bicubic" | "random"
    hflip: float
    vflip: float
    rand_augment: Any  # timm's RandAugment (its AugmentOp list), or None
    color_jitter: Any  # torchvision's ColorJitter, or None (timm turns it off with RandAugment)
    erasing: Any  # timm's RandomErasing (its draw settings), or None
    fill: tuple[int, ...]  # geometric ops' fill: timm's hparams img_mean

    @property
    def layers(self) -> int:
        return self.rand_augment.num_layers if self.rand_augment is not None else 0

    @property
    def erase_count(self) -> int:
        return self.erasing.max_count if self.erasing is not None else 0

    @classmethod
    def from_config(cls, data: DataConfig, augment: AugmentConfig) -> AugmentSettings:
        """The settings of `train_transform(data, augment)`; UsageError (naming data.pipeline)
        for what the tensor path does not implement."""
        from timm.data.auto_augment import rand_augment_transform
        from timm.data.random_erasing import RandomErasing
        from timm.data.transforms import str_to_pil_interp
        from torchvision import transforms

        size = (data.img_size, data.img_size)
        interpolation = str(data.interpolation)
        if interpolation != "random":
            _interp_code(interpolation)
        mean = tuple(float(m) for m in data.mean)
        fill = tuple(min(255, round(255 * x)) for x in mean)  # timm's aa_params img_mean
        aa = augment.auto_augment
        rand_augment = None
        if aa:
            if not aa.startswith("rand"):
                kind = "augmix" if aa.startswith("augmix") else "AutoAugment policies"
                raise _unsupported(f"auto_augment '{aa}' ({kind}); only RandAugment 'rand-*'")
            hparams: dict[str, Any] = dict(translate_const=int(min(size) * 0.45), img_mean=fill)
            if interpolation != "random":
                hparams["interpolation"] = str_to_pil_interp(interpolation)
            try:
                rand_augment = rand_augment_transform(aa, hparams)
            except (AssertionError, ValueError, KeyError) as exc:
                raise UsageError(f"augment.auto_augment: timm cannot parse '{aa}' ({exc})") \
                    from None
            missing = sorted({op.name for op in rand_augment.ops} - set(OP_NAMES))
            if missing:
                raise _unsupported(f"the RandAugment ops {', '.join(missing)} of '{aa}'")
        # timm: colour jitter is off when an auto-augment is set, unless '3a' is in its spec
        # (force_color_jitter is never passed by train_transform)
        cj = augment.color_jitter or None
        color_jitter = None
        if cj is not None and not (aa and "3a" not in aa):
            color_jitter = transforms.ColorJitter(*(float(cj),) * 3)
        erasing = None
        if augment.re_prob > 0:
            erasing = RandomErasing(augment.re_prob, mode=augment.re_mode,
                                    max_count=augment.re_count, device="cpu")
        return cls(size=size, in_chans=data.in_chans, mean=mean,
                   std=tuple(float(s) for s in data.std), scale=tuple(augment.scale),
                   ratio=tuple(augment.ratio), interpolation=interpolation,
                   hflip=float(augment.hflip), vflip=float(augment.vflip),
                   rand_augment=rand_augment, color_jitter=color_jitter, erasing=erasing,
                   fill=fill)


def rotate_matrix(degrees: float, width: int, height: int) -> tuple[float, ...]:
    """The inverse affine matrix of PIL's `Image.rotate(degrees)` (no expand, centre)."""
    angle = -math.radians(degrees % 360.0)
    matrix = [round(math.cos(angle), 15), round(math.sin(angle), 15), 0.0,
              round(-math.sin(angle), 15), round(math.cos(angle), 15), 0.0]
    cx, cy = width / 2, height / 2
    a, b, c, d, e, f = matrix
    matrix[2], matrix[5] = a * -cx + b * -cy + c, d * -cx + e * -cy + f
    matrix[2] += cx
    matrix[5] += cy
    return tuple(matrix)


_IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


# -- counter-based uniforms ------------------------------------------------------------------
# (`tensor_ops.normal_noise` has its own counter-based hash: it runs on the device, in torch,
# whose int64 has no unsigned 64-bit arithmetic; these draws run on the host in NumPy.)
# The draw scheme's name, recorded by a logit cache built on the tensor pipeline: a cache
# replays only with the draws that built it. Change it with any change to the draws.
DRAWS = "splitmix64-v1"
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_BELOW_ONE = np.nextafter(1.0, 0.0)


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on a uint64 array (arithmetic modulo 2⁶⁴)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def sample_keys(seed: int, keys: Sequence[Any]) -> np.ndarray:
    """Each key's 64-bit stream key (uint64 array): a hash of (seed, epoch, index, repeat).

    `keys` are `ReplaySampler` keys `(epoch, index, repeat, position)` or plain indices
    (epoch 0, repeat 0); the position does not enter, so a sample's draws do not depend on
    where it falls in the epoch's order."""
    parts = np.array([(0, int(k), 0) if isinstance(k, (int, np.integer)) else tuple(k[:3])
                      for k in keys], dtype=np.int64).reshape(-1, 3)
    h = np.full(len(parts), derive_seed("tensor-params", seed), dtype=np.uint64)
    for column in parts.T:
        h = _mix64(h ^ _mix64(column.astype(np.uint64) + _GOLDEN))
    return h


class _Uniforms:
    """Uniform float64 draws in (0, 1) for a batch of stream keys, slot after slot: slot s
    of a sample is SplitMix64's output s + 1 from the sample's key, so it depends on the
    key and s only. The slots the settings take, and their order, depend on the settings alone."""

    def __init__(self, keys: np.ndarray):
        self.keys = keys
        self.slot = 0

    def take(self, n: int) -> np.ndarray:
        """The next `n` slots: B×n."""
        s = np.arange(self.slot + 1, self.slot + n + 1, dtype=np.uint64)
        self.slot += n
        z = _mix64(self.keys[:, None] + s[None, :] * _GOLDEN)
        u = ((z >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53
        return np.minimum(u, _BELOW_ONE)  # (2⁵³ − ½)·2⁻⁵³ rounds to 1

    def one(self) -> np.ndarray:
        return self.take(1)[:, 0]


def _randint(u: np.ndarray, high: np.ndarray) -> np.ndarray:
    """random.randint(0, high) from a uniform in (0, 1) (0 where high < 0)."""
    high = np.maximum(high, 0)
    return np.minimum((u * (high + 1)).astype(np.int64), high)


def _first_fit(ok: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Whether any of the attempts (B×A) fits, and each value (B×A) at the first fit."""
    first = ok.argmax(1)
    rows = np.arange(len(ok))
    return (ok.any(1), *(v[rows, first] for v in values))


def _draw_crop(settings: AugmentSettings, u: _Uniforms, h: np.ndarray, w: np.ndarray) -> np.ndarray:
    """timm's RandomResizedCropAndInterpolation.get_params: ten attempts at an area in
    `scale` and a log-uniform aspect ratio in `ratio`, then the central fallback. B×4
    (top, left, h, w)."""
    n = len(h)
    d = u.take(40).reshape(n, 10, 4)
    lo, hi = settings.scale
    target = (lo + (hi - lo) * d[..., 0]) * (h * w).astype(np.float64)[:, None]
    lr0, lr1 = math.log(settings.ratio[0]), math.log(settings.ratio[1])
    aspect = np.exp(lr0 + (lr1 - lr0) * d[..., 1])
    tw = np.rint(np.sqrt(target * aspect)).astype(np.int64)
    th = np.rint(np.sqrt(target / aspect)).astype(np.int64)
    hit, ch, cw, ui, uj = _first_fit((tw <= w[:, None]) & (th <= h[:, None]),
                                     th, tw, d[..., 2], d[..., 3])
    top, left = _randint(ui, h - ch), _randint(uj, w - cw)
    # the fallback: the central crop, clipped to the ratio range
    rmin, rmax = min(settings.ratio), max(settings.ratio)
    in_ratio = w / h
    fw = np.where(in_ratio > rmax, np.rint(h * rmax), w).astype(np.int64)
    fh = np.where(in_ratio < rmin, np.rint(w / rmin), h).astype(np.int64)
    box = np.stack([top, left, ch, cw], 1)
    fallback = np.stack([(h - fh) // 2, (w - fw) // 2, fh, fw], 1)
    return np.where(hit[:, None], box, fallback)


@functools.cache
def _levels() -> dict[Any, Any]:
    """timm's level functions (magnitude → the op's argument), vectorised: NumPy twins of
    `timm.data.auto_augment`'s `_*_level_to_arg`, keyed by timm's function. `x` is the
    magnitude / _LEVEL_DENOM, `sign` ±1 (timm's `_randomly_negate`)."""
    from timm.data import auto_augment as aa

    def clip_int(v: np.ndarray, top: int) -> np.ndarray:
        return np.minimum(top, np.trunc(v))

    return {
        aa._rotate_level_to_arg: lambda x, sign, hp: sign * (x * 30.0),
        aa._enhance_level_to_arg: lambda x, sign, hp: x * 1.8 + 0.1,
        aa._enhance_increasing_level_to_arg:
            lambda x, sign, hp: np.maximum(0.1, 1.0 + sign * (x * 0.9)),
        aa._shear_level_to_arg: lambda x, sign, hp: sign * (x * 0.3),
        aa._translate_abs_level_to_arg:
            lambda x, sign, hp: sign * (x * float(hp["translate_const"])),
        aa._translate_rel_level_to_arg:
            lambda x, sign, hp: sign * (x * hp.get("translate_pct", 0.45)),
        aa._posterize_level_to_arg: lambda x, sign, hp: np.trunc(x * 4),
        aa._posterize_increasing_level_to_arg: lambda x, sign, hp: 4 - np.trunc(x * 4),
        aa._posterize_original_level_to_arg: lambda x, sign, hp: np.trunc(x * 4) + 4,
        aa._solarize_level_to_arg: lambda x, sign, hp: clip_int(x * 256, 256),
        aa._solarize_increasing_level_to_arg: lambda x, sign, hp: 256 - clip_int(x * 256, 256),
        aa._solarize_add_level_to_arg: lambda x, sign, hp: clip_int(x * 110, 128),
    }


def level_args(op: Any, magnitude: np.ndarray, negate: np.ndarray) -> np.ndarray:
    """timm's `op.level_fn(magnitude, op.hparams)[0]` for an array of (clipped) magnitudes,
    with `_randomly_negate` negating where `negate` (0 for ops without an argument)."""
    from timm.data.auto_augment import _LEVEL_DENOM

    if op.level_fn is None:
        return np.zeros_like(magnitude)
    fn = _levels().get(op.level_fn)
    if fn is None:
        raise _unsupported(f"the RandAugment op {op.name} (level function "
                           f"{getattr(op.level_fn, '__name__', op.level_fn)})")
    sign = np.where(negate, -1.0, 1.0)
    return np.asarray(fn(magnitude / _LEVEL_DENOM, sign, op.hparams), dtype=np.float64)


def _op_matrices(name: str, arg: np.ndarray, width: int, height: int) -> np.ndarray:
    """`_op_matrix` for an array of arguments: n×6."""
    if name == "Rotate":  # PIL's rounding of the rotation, per value (Python's round)
        return np.array([rotate_matrix(float(a), width, height) for a in arg]).reshape(-1, 6)
    m = np.tile(np.array(_IDENTITY), (len(arg), 1))
    column = {"ShearX": 1, "ShearY": 3, "TranslateX": 2, "TranslateXRel": 2,
              "TranslateY": 5, "TranslateYRel": 5}[name]
    scale = {"TranslateXRel": width, "TranslateYRel": height}.get(name, 1.0)
    m[:, column] = arg * scale
    return m


def _draw_rand_augment(settings: AugmentSettings, u: _Uniforms, out: dict[str, np.ndarray]) -> None:
    """timm's RandAugment.__call__ and AugmentOp.__call__, without the image work: the ops
    (uniform with replacement; weighted without replacement as NumPy's choice, by
    Efraimidis–Spirakis keys), each applied with its probability, its magnitude drawn
    (Gaussian around m with mstd; uniform in [0, m] for mstd inf), clipped to
    [0, magnitude_max or 10], mapped by its level function, and its resampling filter."""
    from timm.data.auto_augment import _LEVEL_DENOM

    ra = settings.rand_augment
    n, layers, n_ops = len(u.keys), ra.num_layers, len(ra.ops)
    with np.errstate(divide="ignore", invalid="ignore"):
        if ra.choice_weights is None:
            chosen = np.minimum((u.take(layers) * n_ops).astype(np.int64), n_ops - 1)
        else:
            weights = np.asarray(ra.choice_weights, dtype=np.float64)
            keys = np.log(u.take(n_ops)) / weights  # −inf for weight 0: chosen last
            chosen = np.argsort(-keys, axis=1, kind="stable")[:, :layers]
        apply_u, mag_u1, mag_u2, sign_u, interp_u = (u.take(layers) for _ in range(5))
        prob = np.array([op.prob for op in ra.ops])[chosen]
        base = np.array([op.magnitude for op in ra.ops], dtype=np.float64)[chosen]
        std = np.array([op.magnitude_std for op in ra.ops], dtype=np.float64)[chosen]
        upper = np.array([op.magnitude_max or _LEVEL_DENOM for op in ra.ops],
                         dtype=np.float64)[chosen]
        gauss = base + std * (np.sqrt(-2.0 * np.log(mag_u1)) * np.cos(2.0 * math.pi * mag_u2))
        magnitude = np.where(std == np.inf, base * mag_u1, np.where(std > 0, gauss, base))
    magnitude = np.maximum(0.0, np.minimum(magnitude, upper))
    applied = (prob >= 1.0) | (apply_u <= prob)
    ra_op = np.full((n, layers), -1, dtype=np.int64)
    arg = np.zeros((n, layers))
    matrix = np.tile(np.array(_IDENTITY), (n, layers, 1))
    interp = np.zeros((n, layers), dtype=np.int64)
    width, height = settings.size[1], settings.size[0]
    for k in np.unique(chosen[applied]).tolist():
        op = ra.ops[k]
        sel = applied & (chosen == k)
        ra_op[sel] = _OP_INDEX[op.name]
        arg[sel] = level_args(op, magnitude[sel], sign_u[sel] > 0.5)
        if op.name in GEOMETRIC_OPS:  # timm's _check_args_tf draws the resample filter
            resample = op.kwargs["resample"]
            codes = [_interp_code(r) for r in
                     (resample if isinstance(resample, (list, tuple)) else (resample,))]
            pick = np.minimum((interp_u[sel] * len(codes)).astype(np.int64), len(codes) - 1)
            interp[sel] = np.array(codes)[pick]
            matrix[sel] = _op_matrices(op.name, arg[sel], width, height)
    out.update(ra_op=ra_op, ra_arg=arg, ra_matrix=matrix, ra_interp=interp)


def _draw_color_jitter(settings: AugmentSettings, u: _Uniforms, out: dict[str, np.ndarray]) -> None:
    """torchvision's ColorJitter.get_params: a uniform permutation of the four functions
    and each set factor uniform in its range (NaN: off)."""
    cj = settings.color_jitter
    order = np.argsort(u.take(4), axis=1)
    factors = []
    for name in ("brightness", "contrast", "saturation", "hue"):
        r, v = getattr(cj, name), u.one()
        factors.append(np.full_like(v, np.nan) if r is None else r[0] + (r[1] - r[0]) * v)
    out.update(cj_order=order, cj_factor=np.stack(factors, 1))


def _draw_erasing(settings: AugmentSettings, u: _Uniforms, out: dict[str, np.ndarray]) -> None:
    """timm's RandomErasing._erase draws for images of the output size: applied with its
    probability, `count` boxes (uniform in [min_count, max_count]), each the first of ten
    attempts (area in [min_area, max_area] / count, log-uniform aspect) that fits."""
    re = settings.erasing
    img_h, img_w = settings.size
    n = len(u.keys)
    on = u.one() <= re.probability
    if re.min_count == re.max_count:
        count = np.full(n, re.min_count, dtype=np.int64)
    else:
        count = re.min_count + _randint(u.one(), np.full(n, re.max_count - re.min_count))
    la0, la1 = re.log_aspect_ratio
    boxes = np.zeros((n, re.max_count, 4), dtype=np.int64)
    for b in range(re.max_count):
        d = u.take(40).reshape(n, 10, 4)
        target = (re.min_area + (re.max_area - re.min_area) * d[..., 0]) * (img_h * img_w) \
            / count[:, None]
        aspect = np.exp(la0 + (la1 - la0) * d[..., 1])
        h = np.rint(np.sqrt(target * aspect)).astype(np.int64)
        w = np.rint(np.sqrt(target / aspect)).astype(np.int64)
        hit, bh, bw, ut, ul = _first_fit((w < img_w) & (h < img_h), h, w, d[..., 2], d[..., 3])
        box = np.stack([_randint(ut, img_h - bh), _randint(ul, img_w - bw), bh, bw], 1)
        boxes[:, b] = np.where((hit & on & (b < count))[:, None], box, 0)
    out["re_box"] = boxes


def _sizes(sizes: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Source (heights, widths): one pair for all samples or one per sample."""
    if isinstance(sizes, torch.Tensor):
        sizes = sizes.tolist()
    if len(sizes) == 2 and all(isinstance(s, (int, np.integer)) for s in sizes):
        sizes = [sizes] * n
    if len(sizes) != n:
        raise ValueError(f"draw_params: {len(sizes)} sizes for {n} keys")
    hw = np.array(sizes, dtype=np.int64).reshape(n, 2)
    return hw[:, 0], hw[:, 1]


def draw_params(settings: AugmentSettings, seed: int, keys: Sequence[Any], sizes: Any
                ) -> dict[str, torch.Tensor]:
    """Every random parameter of the training transform for each key, one row per sample.

    `keys` are `ReplaySampler` keys `(epoch, index, repeat, position)` or plain indices (as
    `ReplayDataset` takes them); `sizes` is the source images' (height, width), one pair for
    all or one per key. The global generators are not touched.

    Returns CPU tensors: `seed` int64 B (the sample's stream key, for erasing's noise);
    `crop` int64 B×4 (top, left, h, w); `interp` int64 B (tensor_ops codes); `flip` bool B×2
    (horizontal, vertical); `ra_op` int64 B×L (index into OP_NAMES, −1: the layer's op was
    not applied), `ra_arg` float64 B×L (the op's level argument), `ra_matrix` float64 B×L×6
    (geometric ops' PIL affine matrix), `ra_interp` int64 B×L; `cj_order` int64 B×J
    (torchvision's fn_idx), `cj_factor` float64 B×J (brightness, contrast, saturation, hue;
    NaN: off), J = 4 or 0; `re_box` int64 B×R×4 (top, left, h, w; h = 0: no box),
    R = augment.re_count or 0.
    """
    from timm.data.transforms import _RANDOM_INTERPOLATION

    keys = list(keys)
    n = len(keys)
    h, w = _sizes(sizes, n)
    stream = sample_keys(seed, keys)
    u = _Uniforms(stream)
    out: dict[str, np.ndarray] = {"seed": (stream >> np.uint64(1)).astype(np.int64),
                                  "crop": _draw_crop(settings, u, h, w)}
    if settings.interpolation == "random":
        codes = np.array([_interp_code(m) for m in _RANDOM_INTERPOLATION])
        out["interp"] = codes[np.minimum((u.one() * len(codes)).astype(np.int64),
                                         len(codes) - 1)]
    else:
        out["interp"] = np.full(n, _interp_code(settings.interpolation), dtype=np.int64)
    flips = [u.one() < p if p > 0 else np.zeros(n, dtype=bool) for p in (settings.hflip, settings.vflip)]
    out["flip"] = np.stack(flips, 1)
    layers, count = settings.layers, settings.erase_count
    out.update(ra_op=np.zeros((n, layers), dtype=np.int64), ra_arg=np.zeros((n, layers)),
               ra_matrix=np.zeros((n, layers, 6)), ra_interp=np.zeros((n, layers), np.int64),
               cj_order=np.zeros((n, 0), dtype=np.int64), cj_factor=np.zeros((n, 0)),
               re_box=np.zeros((n, count, 4), dtype=np.int64))
    if settings.rand_augment is not None:
        _draw_rand_augment(settings, u, out)
    if settings.color_jitter is not None:
        _draw_color_jitter(settings, u, out)
    if settings.erasing is not None:
        _draw_erasing(settings, u, out)
    dtypes = {"flip": torch.bool, "ra_arg": torch.float64, "ra_matrix": torch.float64,
              "cj_factor": torch.float64}
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(dtypes.get(k, torch.long))
            for k, v in out.items()}
