"""`data.pipeline: tensor`: timm's training transform as batched tensor ops on the device.

`TensorAugment(data, augment, seed)` is the tensor twin of `train_transform(data, augment)`
under `ReplayDataset`: `params(keys, sizes)` draws each sample's random parameters on the
host, for the whole batch at once (timm's rules and distributions, from a counter-based
hash of the sample's key, see `tensor_params`), and `__call__(images, params, device)`
applies them to a batch of uint8 images on `device`, in timm's order: RandomResizedCrop +
flips (one separable resampling), RandAugment's layers, colour jitter (only where timm
applies it: not together with RandAugment), ToTensor + Normalize, random erasing.
Mixup/cutmix stay with `Mixer`, on the returned batch.

Per sample, the result equals what timm's and torchvision's PIL functions give for the
same parameters, up to random erasing's noise (drawn from the sample's seed on the device
instead of torch's generator): the ops reproduce Pillow's arithmetic (see `tensor_ops`,
`tensor_resample`). A sample's image depends only on (seed, epoch, index, repeat), not on
the batch it is computed in.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

import torch

from . import tensor_ops as ops
from .tensor_params import GEOMETRIC_OPS, OP_NAMES, AugmentSettings, draw_params
from .tensor_resample import affine, axis_of, resized_crop

if TYPE_CHECKING:
    from distill.recipe import AugmentConfig, DataConfig

__all__ = ["TensorAugment", "apply_op", "pad_images"]


def apply_op(name: str, images: torch.Tensor, arg: torch.Tensor, matrix: torch.Tensor,
             interp: torch.Tensor, fill: Sequence[int], modes: Collection[int] | None = None,
             axis: str | None = None) -> torch.Tensor:
    """RandAugment op `name` (timm's name) on every sample of `images` (uint8), with each
    sample's level argument `arg`, affine `matrix` and `interp` (geometric ops; `modes`: the
    codes in `interp`, if known; `axis`: see `affine`)."""
    if name == "AutoContrast":
        return ops.auto_contrast(images)
    if name == "Equalize":
        return ops.equalize(images)
    if name == "Invert":
        return ops.invert(images)
    if name.startswith("Posterize"):
        return ops.posterize(images, arg.long())
    if name == "SolarizeAdd":
        return ops.solarize_add(images, arg.long())
    if name.startswith("Solarize"):
        return ops.solarize(images, arg.long())
    for prefix, fn in (("Color", ops.color), ("Contrast", ops.contrast),
                       ("Brightness", ops.brightness), ("Sharpness", ops.sharpness)):
        if name.startswith(prefix):
            return fn(images, arg)
    return affine(images, matrix, interp, fill, modes, axis)


def pad_images(images: Sequence[torch.Tensor]) -> torch.Tensor:
    """Images of different sizes (C×h×w each) in one zero-padded batch."""
    h = max(int(im.shape[-2]) for im in images)
    w = max(int(im.shape[-1]) for im in images)
    out = images[0].new_zeros((len(images), images[0].shape[0], h, w))
    for i, im in enumerate(images):
        out[i, :, : im.shape[-2], : im.shape[-1]] = im
    return out


class TensorAugment:
    """timm's training transform for `data`/`augment`, batched on tensors.

    Raises UsageError naming `data.pipeline` for settings it does not implement (an
    auto-augment other than RandAugment 'rand-*', or RandAugment ops such as the '3a'
    set's GaussianBlur)."""

    def __init__(self, data: DataConfig, augment: AugmentConfig, seed: int = 0):
        self.settings = AugmentSettings.from_config(data, augment)
        self.seed = seed
        self.decode = data.decode  # how image files are decoded (`ReplayDataset._sized_items`)

    def params(self, keys: Sequence[Any], sizes: Any) -> dict[str, torch.Tensor]:
        """Each key's random parameters (host tensors, one row per sample; `sizes`: the
        source images' (h, w), one pair for all or one per key). See `draw_params`."""
        return draw_params(self.settings, self.seed, keys, sizes)

    def __call__(self, images: torch.Tensor | Sequence[torch.Tensor],
                 params: dict[str, torch.Tensor], device: torch.device | str | None = None
                 ) -> torch.Tensor:
        """The augmented, normalised float32 batch B×in_chans×size×size on `device`
        (default: the images'). `images`: uint8 B×C×H×W, or a list of C×h×w (padded here);
        C = 1 or 3 (converted to in_chans as PIL's "L"/"RGB" modes are). Images cut and
        resized in the loader worker (size×size, `crop` the whole image) are only flipped:
        what the resampling gives them. With `params["jpeg"]` (`data.decode: device`, see
        `batch.collate`), `images` holds only the samples decoded in the worker, and the
        others are decoded here, on `device`, then cut and resized (`_decode_jpegs`).

        Which samples each op touches is planned on the host from `params`, and everything
        goes to the device in one pinned transfer per tensor, so no op waits for the device."""
        settings = self.settings
        x = images if isinstance(images, torch.Tensor) else pad_images(list(images))
        if x.dtype != torch.uint8:
            raise ValueError(f"TensorAugment: expected uint8 images, got {x.dtype}")
        device = torch.device(device) if device is not None else x.device
        params = dict(params)
        jpeg, jpeg_bytes = params.pop("jpeg", None), params.pop("jpeg_bytes", None)
        jpeg_names = params.pop("jpeg_names", None)
        host = {k: v.cpu() for k, v in params.items()}
        plan, groups = self._plan(host)
        order = torch.cat([idx for *_, idx in plan]) if plan else torch.zeros(0, dtype=torch.long)

        def send(t: torch.Tensor) -> torch.Tensor:
            if device.type == "cuda" and t.device.type == "cpu":
                return t.pin_memory().to(device, non_blocking=True)
            return t.to(device)

        dev = {k: send(v) for k, v in host.items()}
        order = send(order)
        x = send(x)
        if jpeg_bytes is not None:
            x, host["crop"] = self._decode_jpegs(x, jpeg, jpeg_bytes.cpu(), jpeg_names, host,
                                                 dev, device, send)
        if x.shape[1] != settings.in_chans:
            x = ops.to_gray(x) if settings.in_chans == 1 else x.expand(-1, 3, -1, -1).contiguous()
        crop = host["crop"]
        if _resized(x, crop, settings.size):  # cut and resized before (the loader worker)
            x = _flip(x, host["flip"], dev["flip"])
        else:
            max_crop = (int(crop[:, 2].max()), int(crop[:, 3].max())) if len(crop) else None
            x = resized_crop(x, dev["crop"], settings.size, dev["interp"], dev["flip"], max_crop)
        for (stage, op, col, modes, axis, _), (start, stop) in zip(plan, groups, strict=True):
            idx = order[start:stop]
            if stage == "ra":  # RandAugment layer `col`, op `op`
                y = apply_op(OP_NAMES[op], x.index_select(0, idx), dev["ra_arg"][idx, col],
                             dev["ra_matrix"][idx, col], dev["ra_interp"][idx, col], settings.fill,
                             modes, axis)
            else:  # colour jitter function `op` (0 brightness, 1 contrast, 2 saturation)
                y = _JITTER[op](x.index_select(0, idx), dev["cj_factor"][idx, op])
            x.index_copy_(0, idx, y)  # x is this call's own tensor
        x = ops.normalize(x, settings.mean, settings.std)
        boxes = host["re_box"]
        if boxes.shape[1]:
            sel = (boxes[:, :, 2] > 0).any(1).nonzero()[:, 0]
            if len(sel):
                idx = send(sel)
                y = ops.erase(x.index_select(0, idx), dev["re_box"][idx], dev["seed"][idx],
                              settings.erasing.mode)
                x = x.index_copy(0, idx, y)
        return x

    def _decode_jpegs(self, x: torch.Tensor, jpeg: torch.Tensor, lengths: torch.Tensor,
                      names: list[str] | None, host: dict[str, torch.Tensor],
                      dev: dict[str, torch.Tensor], device: torch.device, send: Any
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """`data.decode: device`: the batch's JPEG files (`jpeg`, `lengths` bytes each; 0:
        the sample is in `x`, decoded in the worker) decoded on `device` in one batched call,
        each cut to its crop box and all resized at once by `resized_crop` (no flip: that
        comes after, for the whole batch), then put in place among the worker's images.
        Returns the B×C×size×size batch and the crops that now describe it (the whole
        image). Every size and box is read on the host: nothing waits for the device."""
        from .decode import decode_on_device

        settings = self.settings
        sizes = lengths.tolist()
        on_device = [i for i, n in enumerate(sizes) if n]
        in_worker = [i for i, n in enumerate(sizes) if not n]
        ends = torch.tensor(sizes).cumsum(0).tolist()
        files = [jpeg[ends[i] - sizes[i]:ends[i]] for i in on_device]
        decoded = decode_on_device(files, device, settings.in_chans, names)
        boxes = host["crop"][on_device]
        crops = [im[:, t:t + h, left:left + w]
                 for im, (t, left, h, w) in zip(decoded, boxes.tolist(), strict=True)]
        at_origin = boxes.clone()
        at_origin[:, :2] = 0
        idx = send(torch.tensor(on_device))
        resized = resized_crop(pad_images(crops), send(at_origin), settings.size,
                               dev["interp"].index_select(0, idx), None,
                               (int(boxes[:, 2].max()), int(boxes[:, 3].max())))
        out = resized.new_empty((len(sizes), *resized.shape[1:]))
        out.index_copy_(0, idx, resized)
        if in_worker:
            out.index_copy_(0, send(torch.tensor(in_worker)), x)
        whole = torch.tensor([0, 0, *settings.size], dtype=host["crop"].dtype)
        return out, whole.expand(len(sizes), 4)

    @staticmethod
    def _plan(host: dict[str, torch.Tensor]) -> tuple[list, list[tuple[int, int]]]:
        """The op groups in application order: (stage, op, column, interpolation codes,
        affine axis, sample indices), and each group's slice of the concatenated indices."""
        plan: list = []
        for layer in range(host["ra_op"].shape[1]):
            column = host["ra_op"][:, layer]
            geometric = torch.isin(column, _GEOMETRIC)  # one affine resampling per axis kind
            if bool(geometric.any()):
                codes = axis_of(host["ra_matrix"][:, layer])
                for code, axis in ((1, "x"), (2, "y"), (0, None)):
                    sel = geometric & (codes == code)
                    if bool(sel.any()):
                        idx = sel.nonzero()[:, 0]
                        modes = set(host["ra_interp"][idx, layer].tolist())
                        plan.append(("ra", _GEOMETRIC[0].item(), layer, modes, axis, idx))
            for op in column[~geometric].unique().tolist():
                if op >= 0:
                    idx = (column == op).nonzero()[:, 0]
                    plan.append(("ra", op, layer, None, None, idx))
        # torchvision's ColorJitter: brightness (0), contrast (1), saturation (2) in fn_idx
        # order; hue (3) is never set by train_transform
        order, factor = host["cj_order"], host["cj_factor"]
        for pos in range(order.shape[1]):
            for fn_id in _JITTER:
                sel = (order[:, pos] == fn_id) & ~factor[:, fn_id].isnan()
                if bool(sel.any()):
                    plan.append(("cj", fn_id, pos, None, None, sel.nonzero()[:, 0]))
        bounds, start = [], 0
        for *_, idx in plan:
            bounds.append((start, start + len(idx)))
            start += len(idx)
        return plan, bounds


def _resized(x: torch.Tensor, crop: torch.Tensor, size: tuple[int, int]) -> bool:
    """Whether every image of `x` is already its crop at the output `size` (the crop
    (0, 0, size) of a size×size image: `resized_crop` would copy it, then flip it)."""
    whole = torch.tensor([0, 0, *size], dtype=crop.dtype)
    return tuple(x.shape[-2:]) == tuple(size) and bool((crop == whole).all())


def _flip(x: torch.Tensor, host: torch.Tensor, dev: torch.Tensor) -> torch.Tensor:
    """Each image flipped where `flip[b] = (horizontal, vertical)` (host and device copies;
    the host's says whether any is): what `resized_crop` does after its resampling."""
    for axis, dim in ((0, 3), (1, 2)):
        if bool(host[:, axis].any()):
            x = torch.where(dev[:, axis, None, None, None], x.flip(dim), x)
    return x


_JITTER = {0: ops.brightness, 1: ops.contrast, 2: ops.color}
_GEOMETRIC = torch.tensor([OP_NAMES.index(n) for n in sorted(GEOMETRIC_OPS)])
