"""Per-sample random parameters of timm's training transform, drawn on the host.

`AugmentSpec.from_config(data, augment)` reads the recipe the way `train_transform` hands
it to timm's `create_transform` (the RandAugment ops are timm's own objects, parsed by
timm's `rand_augment_transform`), and `draw_params(spec, seed, keys, sizes)` draws, for each
sample key, every random choice of that transform: the crop box and its interpolation, the
flips, RandAugment's ops, magnitudes, signs and interpolations, colour jitter's order and
factors, and random erasing's boxes.

Each sample's draws are made under `reseed(derive_seed(seed, epoch, index, repeat))`, as
`ReplayDataset` seeds the PIL pipeline, with the same calls in the same order as timm's
transforms make them (timm's `RandomResizedCropAndInterpolation.get_params`, its op level
functions, torchvision's `ColorJitter.get_params`, RandomErasing's draws). So a sample's
parameters are those the PIL pipeline uses for the same key: they depend on the key alone,
not on the batch, its size or its order. Only random erasing's noise differs: the tensor
path makes it on the device from the sample's seed (`tensor_ops.normal_noise`).

The result is a dict of tensors with one row per sample (see `draw_params`), cheap to ship
with a batch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from distill.errors import UsageError

from .replay import derive_seed, preserved_rngs, reseed
from .tensor_ops import BICUBIC, BILINEAR, NEAREST

if TYPE_CHECKING:
    from distill.recipe import AugmentConfig, DataConfig

__all__ = ["GEOMETRIC_OPS", "OP_NAMES", "AugmentSpec", "draw_params", "rotate_matrix"]

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
class AugmentSpec:
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
    def from_config(cls, data: DataConfig, augment: AugmentConfig) -> AugmentSpec:
        """The spec of `train_transform(data, augment)`; UsageError (naming data.pipeline)
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


def _op_matrix(name: str, arg: float, width: int, height: int) -> tuple[float, ...]:
    """The affine matrix timm's geometric op passes to PIL's `Image.transform`."""
    if name == "Rotate":
        return rotate_matrix(arg, width, height)
    if name == "ShearX":
        return (1.0, arg, 0.0, 0.0, 1.0, 0.0)
    if name == "ShearY":
        return (1.0, 0.0, 0.0, arg, 1.0, 0.0)
    if name in ("TranslateX", "TranslateXRel"):
        pixels = arg * width if name == "TranslateXRel" else arg
        return (1.0, 0.0, pixels, 0.0, 1.0, 0.0)
    pixels = arg * height if name == "TranslateYRel" else arg
    return (1.0, 0.0, 0.0, 0.0, 1.0, pixels)


_IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _draw_rand_augment(spec: AugmentSpec, row: dict[str, list]) -> None:
    """timm's RandAugment.__call__ and AugmentOp.__call__, without the image work."""
    from timm.data.auto_augment import _LEVEL_DENOM

    ra = spec.rand_augment
    width, height = spec.size[1], spec.size[0]
    chosen = np.random.choice(len(ra.ops), ra.num_layers, replace=ra.choice_weights is None,
                              p=ra.choice_weights)
    for i in chosen:
        op = ra.ops[int(i)]
        if op.prob < 1.0 and random.random() > op.prob:
            row["ra_op"].append(-1)
            row["ra_arg"].append(0.0)
            row["ra_matrix"].append(_IDENTITY)
            row["ra_interp"].append(0)
            continue
        magnitude = op.magnitude
        if op.magnitude_std > 0:
            if op.magnitude_std == float("inf"):
                magnitude = random.uniform(0, magnitude)
            else:
                magnitude = random.gauss(magnitude, op.magnitude_std)
        upper_bound = op.magnitude_max or _LEVEL_DENOM
        magnitude = max(0.0, min(magnitude, upper_bound))
        level = op.level_fn(magnitude, op.hparams) if op.level_fn is not None else ()
        arg = float(level[0]) if level else 0.0
        interp = 0
        matrix = _IDENTITY
        if op.name in GEOMETRIC_OPS:  # timm's _check_args_tf draws the resample filter
            resample = op.kwargs["resample"]
            if isinstance(resample, (list, tuple)):
                resample = random.choice(resample)
            interp = _interp_code(resample)
            matrix = _op_matrix(op.name, arg, width, height)
        row["ra_op"].append(_OP_INDEX[op.name])
        row["ra_arg"].append(arg)
        row["ra_matrix"].append(matrix)
        row["ra_interp"].append(interp)


def _draw_erasing(spec: AugmentSpec, row: dict[str, list]) -> None:
    """timm's RandomErasing._erase draws for one image of the output size."""
    re = spec.erasing
    img_h, img_w = spec.size
    boxes = [(0, 0, 0, 0)] * re.max_count
    if random.random() <= re.probability:
        area = img_h * img_w
        count = re.min_count if re.min_count == re.max_count else \
            random.randint(re.min_count, re.max_count)
        for n in range(count):
            for _ in range(10):
                target_area = random.uniform(re.min_area, re.max_area) * area / count
                aspect_ratio = math.exp(random.uniform(*re.log_aspect_ratio))
                h = round(math.sqrt(target_area * aspect_ratio))
                w = round(math.sqrt(target_area / aspect_ratio))
                if w < img_w and h < img_h:
                    top = random.randint(0, img_h - h)
                    left = random.randint(0, img_w - w)
                    boxes[n] = (top, left, h, w)
                    break
    row["re_box"].extend(boxes)


def _draw_one(spec: AugmentSpec, sample_seed: int, src_h: int, src_w: int
              ) -> dict[str, list]:
    from timm.data.transforms import _RANDOM_INTERPOLATION, RandomResizedCropAndInterpolation

    reseed(sample_seed)
    row: dict[str, list] = {k: [] for k in ("ra_op", "ra_arg", "ra_matrix", "ra_interp",
                                            "re_box")}
    # RandomResizedCropAndInterpolation: the box, then (random interpolation) the filter
    probe = torch.empty((0, src_h, src_w))  # get_params reads only the size
    box = RandomResizedCropAndInterpolation.get_params(probe, spec.scale, spec.ratio)
    if spec.interpolation == "random":
        interp = _interp_code(random.choice(_RANDOM_INTERPOLATION))
    else:
        interp = _interp_code(spec.interpolation)
    # torchvision's RandomHorizontalFlip / RandomVerticalFlip (added when p > 0)
    hflip = bool(torch.rand(1) < spec.hflip) if spec.hflip > 0 else False
    vflip = bool(torch.rand(1) < spec.vflip) if spec.vflip > 0 else False
    if spec.rand_augment is not None:
        _draw_rand_augment(spec, row)
    cj_order, cj_factor = [], []
    if spec.color_jitter is not None:
        cj = spec.color_jitter
        order, *factors = cj.get_params(cj.brightness, cj.contrast, cj.saturation, cj.hue)
        cj_order = [int(v) for v in order]
        cj_factor = [float("nan") if f is None else float(f) for f in factors]
    if spec.erasing is not None:
        _draw_erasing(spec, row)
    row.update(seed=[sample_seed], crop=list(box), interp=[interp], flip=[hflip, vflip],
               cj_order=cj_order, cj_factor=cj_factor)
    return row


def _sizes(sizes: Any, n: int) -> list[tuple[int, int]]:
    if isinstance(sizes, torch.Tensor):
        sizes = sizes.tolist()
    if len(sizes) == 2 and all(isinstance(s, (int, np.integer)) for s in sizes):
        return [(int(sizes[0]), int(sizes[1]))] * n
    if len(sizes) != n:
        raise ValueError(f"draw_params: {len(sizes)} sizes for {n} keys")
    return [(int(h), int(w)) for h, w in sizes]


def draw_params(spec: AugmentSpec, seed: int, keys: Sequence[Any], sizes: Any
                ) -> dict[str, torch.Tensor]:
    """Every random parameter of the training transform for each key, one row per sample.

    `keys` are `ReplaySampler` keys `(epoch, index, repeat, position)` or plain indices (as
    `ReplayDataset` takes them); `sizes` is the source images' (height, width), one pair for
    all or one per key. The global generators are restored afterwards.

    Returns CPU tensors: `seed` int64 B (the sample's seed); `crop` int64 B×4 (top, left,
    h, w); `interp` int64 B (tensor_ops codes); `flip` bool B×2 (horizontal, vertical);
    `ra_op` int64 B×L (index into OP_NAMES, −1: the layer's op was not applied), `ra_arg`
    float64 B×L (the op's level argument), `ra_matrix` float64 B×L×6 (geometric ops' PIL
    affine matrix), `ra_interp` int64 B×L; `cj_order` int64 B×J (torchvision's fn_idx),
    `cj_factor` float64 B×J (brightness, contrast, saturation, hue; NaN: off), J = 4 or 0;
    `re_box` int64 B×R×4 (top, left, h, w; h = 0: no box), R = augment.re_count or 0.
    """
    keys = list(keys)
    hw = _sizes(sizes, len(keys))
    rows = []
    with preserved_rngs():
        for key, (h, w) in zip(keys, hw, strict=True):
            epoch, index, repeat = (0, key, 0) if isinstance(key, int) else key[:3]
            rows.append(_draw_one(spec, derive_seed(seed, epoch, index, repeat), h, w))
    n, layers, count = len(rows), spec.layers, spec.erase_count
    j = 4 if spec.color_jitter is not None else 0

    def stack(name: str, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.tensor([r[name] for r in rows], dtype=dtype).reshape(n, *shape)

    return {
        "seed": stack("seed", torch.long, ()),
        "crop": stack("crop", torch.long, (4,)),
        "interp": stack("interp", torch.long, ()),
        "flip": stack("flip", torch.bool, (2,)),
        "ra_op": stack("ra_op", torch.long, (layers,)),
        "ra_arg": stack("ra_arg", torch.float64, (layers,)),
        "ra_matrix": stack("ra_matrix", torch.float64, (layers, 6)),
        "ra_interp": stack("ra_interp", torch.long, (layers,)),
        "cj_order": stack("cj_order", torch.long, (j,)),
        "cj_factor": stack("cj_factor", torch.float64, (j,)),
        "re_box": stack("re_box", torch.long, (count, 4)),
    }
