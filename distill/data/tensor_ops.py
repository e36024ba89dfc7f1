"""Batched image ops on tensors that reproduce timm's PIL training ops, on any device.

Images are `uint8` tensors `B×C×H×W` (C = 1 or 3) and every op returns `uint8`, as PIL's
ops do, until `normalize` turns them into float. Each op takes one row of parameters per
sample (tensors on the images' device) and computes each sample from its own pixels and
parameters only, with elementwise arithmetic, integer reductions and fixed-order sums, so a
sample's result does not depend on the other samples of the batch or on the batch size.

The arithmetic is Pillow's, step by step (Pillow's C sources: `Blend.c`, `Filter.c`,
`Convert.c`; `ImageOps.py`, `ImageEnhance.py`); the resampling ops (`resized_crop`,
`affine`: `Resample.c`, `Geometry.c`) are in `tensor_resample`:

- point ops (Invert, Posterize, Solarize, SolarizeAdd, AutoContrast, Equalize) build PIL's
  lookup tables in integers (AutoContrast's scale in float64, as Python's).
- enhance ops (Brightness, Contrast, Color, Sharpness) are PIL's `Image.blend` in float32,
  truncated and clipped; grey is ITU-R 601 in PIL's 16-bit fixed point; Sharpness blurs
  with PIL's SMOOTH kernel and copies the border.
- `erase` is timm's RandomErasing on the normalised image for given boxes; its noise comes
  from a counter-based hash of (sample seed, box, channel, y, x), not torch's generator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["BICUBIC", "BILINEAR", "NEAREST", "auto_contrast", "blend", "brightness", "color",
           "contrast", "div", "equalize", "erase", "invert", "normal_noise", "normalize", "posterize",
           "sharpness", "smooth", "solarize", "solarize_add", "to_gray"]

# Interpolation codes used in parameter tensors.
NEAREST, BILINEAR, BICUBIC = 0, 1, 2

def div(a: torch.Tensor, b: float | torch.Tensor) -> torch.Tensor:
    """a / b, correctly rounded on every device: CUDA divides by a CPU scalar as a product
    with its reciprocal, and `scalar / tensor` is `reciprocal(tensor) * scalar` everywhere."""
    return torch.div(a, torch.as_tensor(b, dtype=a.dtype, device=a.device))


def _rows(t: torch.Tensor, ndim: int) -> torch.Tensor:
    """A per-sample vector shaped to broadcast against a `ndim`-dimensional batch."""
    return t.reshape(t.shape[0], *([1] * (ndim - 1)))


# -- point ops (PIL ImageOps lookup tables) --------------------------------------------------
def invert(images: torch.Tensor) -> torch.Tensor:
    """ImageOps.invert: 255 - x."""
    return 255 - images


def posterize(images: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """ImageOps.posterize(img, bits[b]) (bits >= 8: unchanged, 0: black)."""
    shift = (8 - bits.long()).clamp(0, 8)
    s = _rows(shift, images.ndim)
    return ((images.long() >> s) << s).to(torch.uint8)


def solarize(images: torch.Tensor, thresh: torch.Tensor) -> torch.Tensor:
    """ImageOps.solarize(img, thresh[b]): x < thresh ? x : 255 - x."""
    t = _rows(thresh.long(), images.ndim)
    return torch.where(images.long() < t, images, 255 - images)


def solarize_add(images: torch.Tensor, add: torch.Tensor, thresh: int = 128) -> torch.Tensor:
    """timm's solarize_add: x < thresh ? min(255, x + add[b]) : x."""
    x = images.long()
    added = (x + _rows(add.long(), images.ndim)).clamp(max=255)
    return torch.where(x < thresh, added, x).to(torch.uint8)


def auto_contrast(images: torch.Tensor) -> torch.Tensor:
    """ImageOps.autocontrast(img) (no cutoff): each channel stretched from [lo, hi] to
    [0, 255] with PIL's table int(x·scale + offset), scale = 255/(hi − lo)."""
    B, C, H, W = images.shape
    x = images.reshape(B, C, H * W).long()
    lo, hi = x.amin(2, keepdim=True), x.amax(2, keepdim=True)
    scale = div(torch.full(lo.shape, 255.0, dtype=torch.float64, device=x.device),
                 (hi - lo).clamp(min=1).double())
    offset = -lo.double() * scale
    v = (x.double() * scale + offset).trunc().clamp(0, 255).long()
    return torch.where(hi > lo, v, x).to(torch.uint8).reshape(B, C, H, W)


def equalize(images: torch.Tensor) -> torch.Tensor:
    """ImageOps.equalize(img): each channel's histogram equalisation table, in integers."""
    B, C, H, W = images.shape
    x = images.reshape(B * C, H * W).long()
    hist = torch.zeros(B * C, 256, dtype=torch.long, device=images.device)
    hist.scatter_add_(1, x, torch.ones_like(x))
    nz = hist > 0
    last = 255 - nz.flip(1).to(torch.uint8).argmax(1)
    step = (H * W - hist.gather(1, last[:, None])) // 255  # B·C×1
    cum = hist.cumsum(1) - hist
    lut = (step // 2 + cum) // step.clamp(min=1)
    same = (nz.sum(1, keepdim=True) <= 1) | (step == 0)
    lut = torch.where(same, torch.arange(256, device=images.device), lut).clamp(0, 255)
    return lut.gather(1, x).to(torch.uint8).reshape(B, C, H, W)


# -- enhance ops (PIL ImageEnhance: blend with a degenerate image) ---------------------------
def to_gray(images: torch.Tensor) -> torch.Tensor:
    """PIL's RGB → L: (19595 R + 38470 G + 7471 B + 0x8000) >> 16 (B×1×H×W uint8)."""
    if images.shape[1] == 1:
        return images
    x = images.long()
    g = (x[:, 0:1] * 19595 + x[:, 1:2] * 38470 + x[:, 2:3] * 7471 + 0x8000) >> 16
    return g.to(torch.uint8)


def blend(degenerate: torch.Tensor, images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL's Image.blend(degenerate, images, factor[b]): float32 d + f·(x − d), truncated
    and clipped to [0, 255]."""
    f = _rows(factor.to(torch.float32), images.ndim)
    d = degenerate.to(torch.float32)
    t = d + f * (images.to(torch.float32) - d)
    return t.clamp(0.0, 255.0).trunc().to(torch.uint8)


def brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """ImageEnhance.Brightness: blend with black."""
    return blend(torch.zeros_like(images), images, factor)


def contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """ImageEnhance.Contrast: blend with the grey level int(mean(L) + 0.5)."""
    g = to_gray(images).long()
    n = g.shape[2] * g.shape[3]
    mean = (div(g.sum((1, 2, 3)).double(), float(n)) + 0.5).floor()
    return blend(_rows(mean, images.ndim).expand_as(images), images, factor)


def color(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """ImageEnhance.Color: blend with the image's grey version (grey images: unchanged)."""
    if images.shape[1] == 1:
        return images.clone()
    return blend(to_gray(images).expand_as(images), images, factor)


def smooth(images: torch.Tensor) -> torch.Tensor:
    """PIL's ImageFilter.SMOOTH (3×3 [1 1 1; 1 5 1; 1 1 1] / 13, rounded; border copied)."""
    x = images.long()
    if x.shape[2] < 3 or x.shape[3] < 3:
        return images.clone()
    inner = (x[:, :, :-2, :-2] + x[:, :, :-2, 1:-1] + x[:, :, :-2, 2:]
             + x[:, :, 1:-1, :-2] + 5 * x[:, :, 1:-1, 1:-1] + x[:, :, 1:-1, 2:]
             + x[:, :, 2:, :-2] + x[:, :, 2:, 1:-1] + x[:, :, 2:, 2:])
    out = x.clone()
    out[:, :, 1:-1, 1:-1] = (2 * inner + 13) // 26  # round(inner / 13); never a tie
    return out.to(torch.uint8)


def sharpness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """ImageEnhance.Sharpness: blend with the SMOOTH-filtered image."""
    return blend(smooth(images), images, factor)


# -- normalisation and random erasing (on the float image) ----------------------------------
def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """torchvision's ToTensor + Normalize: (x / 255 − mean) / std in float32."""
    C = images.shape[1]
    m = torch.tensor(list(mean), dtype=torch.float32, device=images.device).view(1, C, 1, 1)
    s = torch.tensor(list(std), dtype=torch.float32, device=images.device).view(1, C, 1, 1)
    return div(images.to(torch.float32), 255.0).sub(m).div(s)


_M32 = 0xFFFFFFFF


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixer on int64 tensors holding values in [0, 2³²): xorshift-multiply
    rounds with odd multipliers below 2³¹, so no product overflows int64."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x2C1B3C6D) & _M32
    return x ^ (x >> 16)


def _uniform(keys: tuple[torch.Tensor, torch.Tensor], counter: torch.Tensor) -> torch.Tensor:
    """Uniform float32 in (0, 1): a function of the sample's keys and the counter only."""
    h = _hash32(_hash32(counter ^ keys[0]) ^ keys[1])
    return ((h >> 8).to(torch.float32) + 0.5) / float(1 << 24)


def normal_noise(seeds: torch.Tensor, shape: Sequence[int], stream: int = 0) -> torch.Tensor:
    """Standard normal float32 noise of `B×shape`, element i of sample b a function of
    (seeds[b], stream, i) only (Box–Muller on a counter-based hash)."""
    n = math.prod(shape)
    s = seeds.long()
    k0 = _hash32(_hash32((s & _M32) ^ (stream & _M32)) ^ ((s >> 32) & _M32))
    keys = (k0[:, None], _hash32(k0 ^ 0x5BD1E995)[:, None])
    counter = torch.arange(n, device=seeds.device, dtype=torch.long)[None] * 2
    u1, u2 = _uniform(keys, counter), _uniform(keys, counter + 1)
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * math.pi) * u2)
    return z.reshape(len(seeds), *shape)


def erase(images: torch.Tensor, boxes: torch.Tensor, seeds: torch.Tensor,
          mode: str = "pixel") -> torch.Tensor:
    """timm's RandomErasing on normalised images for given boxes: `boxes[b, r]` = (top, left,
    h, w), h = 0 for none; the box is filled with per-pixel normal noise ('pixel'), one
    normal value per channel ('rand') or zeros ('const'). Boxes are filled in order."""
    B, C, H, W = images.shape
    out = images.clone()
    y = torch.arange(H, device=images.device)[None, :, None]
    x = torch.arange(W, device=images.device)[None, None, :]
    for r in range(boxes.shape[1]):
        top, left, h, w = (v[:, None, None] for v in boxes[:, r].long().unbind(1))
        inside = (y >= top) & (y < top + h) & (x >= left) & (x < left + w) & (h > 0)
        if mode == "pixel":
            fill = normal_noise(seeds, (C, H, W), stream=r)
        elif mode == "rand":
            fill = normal_noise(seeds, (C, 1, 1), stream=1000 + r).expand(B, C, H, W)
        else:
            fill = torch.zeros_like(out)
        out = torch.where(inside[:, None], fill.to(out.dtype), out)
    return out
