"""Batched resampling on tensors that reproduces Pillow's, on any device: timm's
RandomResizedCrop (with the flips after it) and RandAugment's geometric ops.

Images are `uint8` tensors `B×C×H×W`; each op takes one row of parameters per sample and
computes each sample from its own pixels and parameters only (see `tensor_ops`).

- `resized_crop` is PIL's `resize` of the crop: separable, horizontal pass first, with the
  filter's support scaled by the downscaling factor (PIL's antialias), taps clipped to the
  crop and renormalised, 22-bit fixed-point coefficients and a uint8 intermediate between
  the passes; bicubic is the a = −0.5 kernel. Flips are folded into it (they permute the
  output). Unlike `grid_sample` (no antialias when downscaling, border padding instead of
  clipped taps, a = −0.75 bicubic), it gives PIL's pixels.
- `affine` (Rotate, ShearX/Y, TranslateX/YRel) is PIL's `Image.transform(AFFINE)`: sample
  at the pixel centre, fill outside the source, clamped neighbours inside; bilinear, or
  PIL's transform bicubic, which is the a = −1 kernel (not resize's −0.5), in float64,
  truncated to uint8; nearest uses PIL's fixed-point (16.16) and accumulating paths.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import torch

from .tensor_ops import BICUBIC, BILINEAR, NEAREST, div

__all__ = ["affine", "axis_of", "resized_crop"]

_PREC = 22  # Pillow's PRECISION_BITS for 8-bit resampling: 32 - 8 - 2


# -- resized crop (PIL resize of the crop) + flips -----------------------------------------
def _filter(t: torch.Tensor, bicubic: torch.Tensor) -> torch.Tensor:
    """Pillow's `bilinear_filter` or `bicubic_filter` (a = -0.5), evaluated as Pillow does."""
    x = t.abs()
    lin = torch.where(x < 1.0, 1.0 - x, torch.zeros_like(x))
    inner = ((1.5 * x - 2.5) * x) * x + 1  # ((a + 2) x - (a + 3)) x x + 1
    outer = (((x - 5) * x + 8) * x - 4) * -0.5
    cub = torch.where(x < 1.0, inner, torch.where(x < 2.0, outer, torch.zeros_like(x)))
    return torch.where(bicubic, cub, lin)


def _nearest_positions(size: torch.Tensor, out: int) -> torch.Tensor:
    """Pillow's ImagingScaleAffine source positions: x0 = a/2, then += a (a = size/out)."""
    a = div(size.to(torch.float32).double(), float(out))
    pos = []
    xo = a * 0.5
    for _ in range(out):
        pos.append(xo)
        xo = xo + a
    return torch.stack(pos, 1).trunc()  # COORD: positions are >= 0


def _present(interp: torch.Tensor, modes: Collection[int] | None) -> set[int]:
    """The interpolation codes in `interp` (`modes`, where the caller knows them: reading
    them off a CUDA tensor waits for the device)."""
    return set(modes) if modes is not None else set(interp.unique().tolist())


def _axis_coeffs(size: torch.Tensor, out: int, interp: torch.Tensor, taps: int,
                 flip: torch.Tensor | None, modes: set[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Source indices (relative to the crop) and fixed-point weights, each B×out×taps, of
    Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for one axis of each sample."""
    f64 = torch.float64
    scale = div(size.to(f64), float(out))  # (in1 - in0) / outSize
    fscale = scale.clamp(min=1.0)
    bicubic = (interp == BICUBIC)[:, None]
    support = torch.where(interp == BICUBIC, 2.0, 1.0).to(f64) * fscale
    inv = div(torch.ones_like(fscale), fscale)
    o = torch.arange(out, device=size.device, dtype=f64)
    center = (o[None, :] + 0.5) * scale[:, None]
    xmin = (center - support[:, None] + 0.5).trunc().clamp(min=0.0)
    xmax = torch.minimum((center + support[:, None] + 0.5).trunc(), size[:, None].to(f64))
    n = xmax - xmin
    ws, total = [], torch.zeros_like(center)
    for k in range(taps):
        w = _filter(((xmin + k) - center + 0.5) * inv[:, None], bicubic)
        w = torch.where(k < n, w, torch.zeros_like(w))
        ws.append(w)
        total = total + w
    w = torch.stack(ws, 2)
    w = torch.where(total[..., None] != 0, w / total[..., None], w)
    one = float(1 << _PREC)
    kk = torch.where(w < 0, (-0.5 + w * one).trunc(), (0.5 + w * one).trunc())
    idx = xmin[..., None].long() + torch.arange(taps, device=size.device)
    idx = torch.minimum(idx, (size - 1)[:, None, None])
    # nearest: Pillow resizes by ImagingScaleAffine, one source pixel per output pixel
    near = (interp == NEAREST)[:, None, None]
    if NEAREST in modes:
        pos = _nearest_positions(size, out).long()
        first = torch.arange(taps, device=size.device) == 0
        kk = torch.where(near, torch.where(first, one, 0.0).to(f64).expand_as(kk), kk)
        idx = torch.where(near, pos[..., None].expand_as(idx), idx)
    # PIL copies the crop when its size is the output size, whatever the filter
    same = (size == out)[:, None, None]
    kk = torch.where(same, torch.where(torch.arange(taps, device=size.device) == 0, one, 0.0)
                     .to(f64).expand_as(kk), kk)
    idx = torch.where(same, o.long()[None, :, None].expand_as(idx), idx)
    if flip is not None:
        rev = flip[:, None, None]
        kk = torch.where(rev, kk.flip(1), kk)
        idx = torch.where(rev, idx.flip(1), idx)
    return idx, kk.long()


def _taps(size: int, out: int) -> int:
    """Enough taps for any crop up to `size` pixels resized to `out` (bicubic's support)."""
    return math.ceil(2.0 * max(size / out, 1.0)) * 2 + 1


def _dense(idx: torch.Tensor, kk: torch.Tensor, width: int) -> torch.Tensor:
    """Taps (B×out×K indices and integer weights) as dense B×out×width float64 matrices."""
    m = torch.zeros((*idx.shape[:2], width), dtype=torch.float64, device=idx.device)
    return m.scatter_add_(2, idx, kk.to(torch.float64))


def _shift(acc: torch.Tensor) -> torch.Tensor:
    """Pillow's clip8(ss) with ss = 2²¹ + Σ k·x: floor(ss / 2²²) clipped to [0, 255]."""
    half = float(1 << (_PREC - 1))
    if acc.dtype == torch.float64:
        return ((acc + half) / float(1 << _PREC)).floor().clamp(0, 255)
    return ((acc + int(half)) >> _PREC).clamp(0, 255)


_TABLES: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
_TABLE_MAX = 256  # longest crop side tabulated (a 224-pixel output: about 10 MB per table)
_ALL_MODES = frozenset({NEAREST, BILINEAR, BICUBIC})


def _table(length: int, out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """`_axis_coeffs` for every crop size 1..`length` and every filter (row
    code·length + size − 1, int32), computed once per (length, out, device): a sample's
    taps depend only on its crop size and filter, so a batch looks them up instead of
    recomputing them (the computation is many small ops)."""
    key = (length, out, str(device))
    if key not in _TABLES:
        if len(_TABLES) >= 16:
            _TABLES.clear()
        sizes = torch.arange(1, length + 1, device=device).repeat(3)
        codes = torch.arange(3, device=device).repeat_interleave(length)
        idx, kk = _axis_coeffs(sizes, out, codes, _taps(length, out), None, _ALL_MODES)
        _TABLES[key] = idx.int(), kk.int()
    return _TABLES[key]


def _lookup(size: torch.Tensor, out: int, interp: torch.Tensor, length: int,
            flip: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample's taps for one axis (crop `size` ≤ `length` resized to `out` with
    `interp`), reversed where `flip`: B×out×taps indices and weights (int64). Looked up in
    `_table` for crops up to `_TABLE_MAX` pixels, else computed."""
    if length > _TABLE_MAX:
        return _axis_coeffs(size, out, interp, _taps(length, out), flip, _ALL_MODES)
    length = -(-length // 32) * 32  # a few table sizes for batches of varied images
    idx, kk = _table(length, out, size.device)
    row = interp * length + size - 1
    idx, kk = idx.index_select(0, row).long(), kk.index_select(0, row).long()
    if flip is not None:
        rev = flip[:, None, None]
        idx, kk = torch.where(rev, idx.flip(1), idx), torch.where(rev, kk.flip(1), kk)
    return idx, kk


def resized_crop(images: torch.Tensor, crop: torch.Tensor, size: tuple[int, int],
                 interp: torch.Tensor, flip: torch.Tensor | None = None,
                 max_crop: tuple[int, int] | None = None, method: str = "auto",
                 chunk: int = 64) -> torch.Tensor:
    """Crop each sample to `crop[b] = (top, left, h, w)`, resize it to `size` (h, w) with
    `interp[b]` (NEAREST/BILINEAR/BICUBIC) as PIL's `resize` does, then flip it where
    `flip[b] = (horizontal, vertical)`: timm's RandomResizedCropAndInterpolation followed by
    torchvision's RandomHorizontalFlip/RandomVerticalFlip on a PIL image.

    `max_crop` (h, w) bounds the crops' sizes (default: the images'); a tighter bound only
    saves work.
    `method`: "taps" (gathers, integer sums: fast on GPUs), "matmul" (float64 products of
    dense weight matrices, `chunk` samples at a time: fast on CPUs) or "auto" (matmul on
    the CPU). Both give the same integers: every product and partial sum is an integer
    below 2⁵³, exact in float64 in any order."""
    B, C, H, W = images.shape
    oh, ow = size
    hc, wc = max_crop if max_crop is not None else (H, W)
    hc, wc = min(hc, H), min(wc, W)
    top, left, ch, cw = crop.long().unbind(1)
    interp = interp.long()
    hflip = flip[:, 0].bool() if flip is not None else None
    vflip = flip[:, 1].bool() if flip is not None else None
    xi, xk = _lookup(cw, ow, interp, wc, hflip)
    yi, yk = _lookup(ch, oh, interp, hc, vflip)
    # the crop's rows (padded by repeating its last row)
    r = torch.arange(hc, device=images.device)
    rows = top[:, None] + torch.minimum(r[None, :], ch[:, None] - 1)
    src = images.gather(2, rows[:, None, :, None].expand(B, C, hc, W))
    if method == "auto":
        method = "matmul" if images.device.type == "cpu" else "taps"
    if method == "matmul":
        c = torch.arange(wc, device=images.device)
        cols = left[:, None] + torch.minimum(c[None, :], cw[:, None] - 1)
        src = src.gather(3, cols[:, None, None, :].expand(B, C, hc, wc))
        out = []
        for s in range(0, B, chunk):
            part = slice(s, s + chunk)
            wx = _dense(xi[part], xk[part], wc).transpose(1, 2)  # b×wc×ow
            tmp = _shift(torch.matmul(src[part].to(torch.float64), wx[:, None]))
            wy = _dense(yi[part], yk[part], hc)  # b×oh×hc
            out.append(_shift(torch.matmul(wy[:, None], tmp)))
        return torch.cat(out).to(torch.uint8)
    # taps: the horizontal pass, then the vertical one, in int64
    cols = xi + left[:, None, None]
    acc = torch.zeros((B, C, hc, ow), dtype=torch.long, device=images.device)
    for k in range(xi.shape[2]):
        g = src.gather(3, cols[:, None, None, :, k].expand(B, C, hc, ow)).long()
        acc = acc + g * xk[:, None, None, :, k]
    tmp = _shift(acc)  # Pillow's uint8 intermediate image
    acc = torch.zeros((B, C, oh, ow), dtype=torch.long, device=images.device)
    for k in range(yi.shape[2]):
        g = tmp.gather(2, yi[:, None, :, k, None].expand(B, C, oh, ow))
        acc = acc + g * yk[:, None, :, k, None]
    return _shift(acc).to(torch.uint8)


# -- affine transforms (PIL Image.transform AFFINE) -----------------------------------------
def _cubic(v1: torch.Tensor, v2: torch.Tensor, v3: torch.Tensor, v4: torch.Tensor,
           d: torch.Tensor) -> torch.Tensor:
    """Pillow Geometry.c's BICUBIC macro (the a = -1 cubic)."""
    p1 = v2
    p2 = -v1 + v3
    p3 = 2 * (v1 - v2) + v3 - v4
    p4 = -v1 + v2 - v3 + v4
    return p1 + d * (p2 + d * (p3 + d * p4))


def _nearest_affine(images: torch.Tensor, m: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """Pillow's nearest affine: ImagingScaleAffine (no shear/rotation: accumulated doubles)
    or affine_fixed (16.16 fixed point)."""
    B, C, H, W = images.shape
    dev = images.device
    # affine_fixed
    fix = torch.floor(m * 65536.0 + 0.5).long()
    a2 = torch.floor(((m[:, 2] + m[:, 0] * 0.5) + m[:, 1] * 0.5) * 65536.0 + 0.5).long()
    a5 = torch.floor(((m[:, 5] + m[:, 3] * 0.5) + m[:, 4] * 0.5) * 65536.0 + 0.5).long()
    y = torch.arange(H, device=dev)[None, :, None]
    x = torch.arange(W, device=dev)[None, None, :]
    xx = a2[:, None, None] + y * fix[:, 1, None, None] + x * fix[:, 0, None, None]
    yy = a5[:, None, None] + y * fix[:, 4, None, None] + x * fix[:, 3, None, None]
    xf, yf = xx >> 16, yy >> 16
    # ImagingScaleAffine: positions accumulate a0 (a4) from a2 + a0/2 (a5 + a4/2)
    xo, yo = m[:, 2] + m[:, 0] * 0.5, m[:, 5] + m[:, 4] * 0.5
    xs, ys = [], []
    for _ in range(W):
        xs.append(xo)
        xo = xo + m[:, 0]
    for _ in range(H):
        ys.append(yo)
        yo = yo + m[:, 4]

    def coord(v: torch.Tensor) -> torch.Tensor:
        return torch.where(v < 0, torch.full_like(v, -1.0), v.trunc()).long()

    xsc = coord(torch.stack(xs, 1))[:, None, :].expand(B, H, W)
    ysc = coord(torch.stack(ys, 1))[:, :, None].expand(B, H, W)
    scale = ((m[:, 1] == 0) & (m[:, 3] == 0))[:, None, None]
    xin = torch.where(scale, xsc, xf)
    yin = torch.where(scale, ysc, yf)
    inside = (xin >= 0) & (xin < W) & (yin >= 0) & (yin < H)
    flat = (yin.clamp(0, H - 1) * W + xin.clamp(0, W - 1)).reshape(B, 1, H * W)
    val = images.reshape(B, C, H * W).gather(2, flat.expand(B, C, H * W)).reshape(B, C, H, W)
    return torch.where(inside[:, None], val, fill.view(1, C, 1, 1).to(images.dtype))


def affine(images: torch.Tensor, matrix: torch.Tensor, interp: torch.Tensor,
           fill: Sequence[int], modes: Collection[int] | None = None,
           axis: str | None = None) -> torch.Tensor:
    """PIL's `img.transform(img.size, Image.AFFINE, matrix[b], interp[b], fillcolor=fill)`:
    output pixel (x, y) samples the source at (a·(x+½) + b·(y+½) + c, d·(x+½) + e·(y+½) + f);
    outside the source it is `fill` (one value per channel). `modes`: the codes present in
    `interp`, if known (saves a device sync).

    `axis`: "x" where every matrix's second row is (0, 1, 0) (ShearX, TranslateX: each
    output row samples its own source row), "y" where every first row is (1, 0, 0) (ShearY,
    TranslateY), else None. Along the other axis the fraction is then 0, where Pillow's
    filters give the middle tap exactly, so only one row (column) of taps is read: the same
    pixels for a quarter of the work (see `axis_of`)."""
    C = images.shape[1]
    fill_t = torch.as_tensor(list(fill), dtype=torch.long, device=images.device).expand(C)
    interp = interp.long()
    present = _present(interp, modes)
    if len(present) == 1:
        return _affine(images, matrix.to(torch.float64), present.pop(), fill_t, axis)
    out = torch.empty_like(images)
    for mode in present:  # each sample resampled by its own filter only
        idx = (interp == mode).nonzero()[:, 0]
        y = _affine(images.index_select(0, idx), matrix.index_select(0, idx).to(torch.float64),
                    mode, fill_t, axis)
        out.index_copy_(0, idx, y)
    return out


def axis_of(matrix: torch.Tensor) -> torch.Tensor:
    """Each affine matrix's `affine` axis code (host tensors, n×6): 1 "x" (second row
    (0, 1, 0)), 2 "y" (first row (1, 0, 0)), 0 otherwise."""
    x = (matrix[:, 3] == 0) & (matrix[:, 4] == 1) & (matrix[:, 5] == 0)
    y = (matrix[:, 0] == 1) & (matrix[:, 1] == 0) & (matrix[:, 2] == 0)
    return torch.where(x, 1, torch.where(y, 2, 0))


def _affine(images: torch.Tensor, m: torch.Tensor, mode: int, fill_t: torch.Tensor,
            axis: str | None = None) -> torch.Tensor:
    """`affine` of samples that all use the filter `mode` (and the same `axis`)."""
    B, C, H, W = images.shape
    if mode == NEAREST:
        return _nearest_affine(images, m, fill_t)
    dev = images.device
    f64 = torch.float64
    ys = (torch.arange(H, device=dev, dtype=f64) + 0.5)[None, :, None]
    xs = (torch.arange(W, device=dev, dtype=f64) + 0.5)[None, None, :]

    def coef(i: int) -> torch.Tensor:
        return m[:, i, None, None]

    xin = (coef(0) * xs + coef(1) * ys) + coef(2)
    yin = (coef(3) * xs + coef(4) * ys) + coef(5)
    inside = (xin >= 0.0) & (xin < W) & (yin >= 0.0) & (yin < H)
    xin, yin = xin - 0.5, yin - 0.5
    x0, y0 = xin.floor(), yin.floor()
    dx, dy = xin - x0, yin - y0
    # the neighbours of every output pixel in one gather, from the source padded by
    # repeating its border (PIL's clamped neighbours; outside pixels get the fill below);
    # along an axis whose fraction is 0 only the middle tap (offset 0)
    taps, lo = (4, -1) if mode == BICUBIC else (2, 0)
    pad = 2  # x0 + lo ≥ −2 and x0 + lo + taps − 1 ≤ W + 1 for the pixels inside
    hp, wp = H + 2 * pad, W + 2 * pad
    rows = (torch.arange(hp, device=dev) - pad).clamp(0, H - 1)
    cols = (torch.arange(wp, device=dev) - pad).clamp(0, W - 1)
    padded = images.index_select(2, rows).index_select(3, cols).reshape(B, C, hp * wp)
    x0 = x0.long().clamp(-1, W - 1) + pad
    y0 = y0.long().clamp(-1, H - 1) + pad
    every = torch.arange(lo, lo + taps, device=dev)
    middle = torch.zeros(1, dtype=torch.long, device=dev)
    tap_rows = middle if axis == "x" else every
    tap_cols = middle if axis == "y" else every
    nr, nc = len(tap_rows), len(tap_cols)
    offsets = (tap_rows[:, None] * wp + tap_cols[None, :]).reshape(1, 1, nr * nc, 1)
    flat = (y0 * wp + x0).reshape(B, 1, 1, H * W) + offsets  # B×1×taps²×HW
    v = padded.gather(2, flat.reshape(B, 1, -1).expand(B, C, -1))
    v = v.reshape(B, C, nr, nc, H * W)  # [b, c, row j, column i, pixel]
    dx, dy = dx.reshape(B, 1, 1, H * W), dy.reshape(B, 1, H * W)
    if nc == 1:  # no pass along x
        rows_v = v[:, :, :, 0].to(f64)
    elif mode == BICUBIC:
        # each row j along x (its coefficients are small integers: exact in int16, and the
        # same doubles as Pillow's once promoted)
        v1, v2, v3, v4 = v.to(torch.int16).unbind(3)
        p3 = 2 * (v1 - v2) + v3 - v4
        p4 = v2 - v1 - v3 + v4
        rows_v = v2 + dx * ((v3 - v1) + dx * (p3 + dx * p4))
    else:
        rows_v = _lerp(*v.to(f64).unbind(3), dx)
    if nr == 1:  # no pass along y
        val = rows_v[:, :, 0]
    elif mode == BICUBIC:  # the rows along y
        val = _cubic(*rows_v.unbind(2), dy)
    else:
        val = _lerp(*rows_v.unbind(2), dy)
    if mode == BICUBIC:
        out = torch.where(val <= 0, 0.0, torch.where(val >= 255, 255.0, val.trunc()))
    else:
        out = val.trunc()
    out = out.reshape(B, C, H, W)
    fill_v = fill_t.view(1, C, 1, 1).to(images.dtype)
    return torch.where(inside[:, None], out.to(images.dtype), fill_v)


def _lerp(a: torch.Tensor, b: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Pillow's bilinear step a + (b − a)·d."""
    return a + (b - a) * d
