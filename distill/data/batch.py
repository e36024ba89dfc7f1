"""`Batch`, what the engine, the losses and the teachers see, and the loaders' collate."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

__all__ = ["Batch", "augment_batch", "collate"]


class Batch(NamedTuple):
    """A batch as the engine, the losses and the teachers see it.

    `images` are student-normalised (after mixup/cutmix when on); `labels` are class indices
    or, after mixing, soft targets; `cached` are a cached teacher's rows for these samples;
    `lam` is the mixing weight (a float, or a B×1 tensor in pair/elem mode) with partner
    `flip(0)`: None when the run does not mix, 1.0 where a step's draw left the batch unmixed.

    `aug` (`data.pipeline: tensor`, before `augment_batch`): the samples' augmentation
    parameters (a dict of host tensors, one row per sample), `images` still uint8 C×H×W;
    None once augmented, and on the PIL pipeline. `to` leaves it on the host (the
    augmentation plans its work there).
    """

    images: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    cached: Any = None
    lam: Any = None
    aug: Any = None

    def to(self, device: torch.device) -> Batch:
        def move(t: Any) -> Any:
            if isinstance(t, torch.Tensor):
                return t.to(device, non_blocking=True)
            if isinstance(t, dict):
                return {k: move(v) for k, v in t.items()}
            return t

        return Batch(*(move(t) for t in self[:-1]), self.aug)


def augment_batch(batch: Batch, augment: Any, device: torch.device) -> Batch:
    """`batch` with its tensor-pipeline augmentation applied on `device` by `augment` (a
    `TensorAugment`; images uint8 → normalised float); unchanged when it carries none."""
    if batch.aug is None:
        return batch
    if augment is None:
        raise RuntimeError("a batch of the tensor pipeline without its TensorAugment")
    return batch._replace(images=augment(batch.images, batch.aug, device), aug=None)


def collate(items: list[tuple]) -> Batch:
    """`ReplayDataset` items `(image, label, index, row)` stacked into a `Batch`; items of
    the tensor pipeline, `(uint8 image, label, index, row, params)`, with `Batch.aug`
    (images of different sizes zero-padded to the largest: each sample's crop box lies
    within its own image; JPEG files for the device to decode, `data.decode: device`, in
    `aug` as `jpeg` and `jpeg_bytes`, see `_encoded`)."""
    params = getattr(items, "params", None)  # a `TensorItems`: the batch's, drawn at once
    if params is not None:
        (xs, ys, idx, cached), aug = zip(*items), params
    elif len(items[0]) == 5:
        xs, ys, idx, cached, params = zip(*items)
        aug = {k: torch.stack([p[k] for p in params]) for k in params[0]}
    else:
        (xs, ys, idx, cached), aug = zip(*items), None
    rows = None
    if cached[0] is not None:  # a cached teacher's rows: a tensor or a dict of tensors each
        first = cached[0]
        rows = ({k: torch.stack([c[k] for c in cached]) for k in first}
                if isinstance(first, dict) else torch.stack(cached))
    stacked = getattr(items, "images", None)
    if stacked is not None:
        images = stacked
    elif aug is not None and any(x.ndim == 1 for x in xs):  # data.decode: device
        images, aug = _encoded(xs, aug, getattr(items, "names", None))
    elif aug is not None and len({x.shape for x in xs}) > 1:
        from .tensor_pipeline import pad_images

        images = pad_images(list(xs))
    else:
        images = torch.stack(xs)
    return Batch(images, torch.tensor(ys), torch.tensor(idx), rows, aug=aug)


def _encoded(xs: tuple[torch.Tensor, ...], aug: dict[str, Any], names: list | None
             ) -> tuple[torch.Tensor, dict[str, Any]]:
    """A tensor-pipeline batch where some samples are encoded JPEG files (1-D uint8, to be
    decoded on the device) and the others decoded images: the decoded ones stacked in
    sample order (0×0×0×0 where none), and `aug` with `jpeg` (every file's bytes,
    concatenated in sample order), `jpeg_bytes` (int64 per sample: its file's length, 0
    where its image is among the decoded ones) and `jpeg_names` (each file's name, for
    errors; `names`: one per sample, else the files are named by their place)."""
    decoded = [x for x in xs if x.ndim == 3]
    images = torch.stack(decoded) if decoded else torch.zeros((0, 0, 0, 0), dtype=torch.uint8)
    files = [i for i, x in enumerate(xs) if x.ndim == 1]
    lengths = torch.tensor([len(x) if x.ndim == 1 else 0 for x in xs], dtype=torch.long)
    named = [names[i] if names is not None and names[i] else f"sample {i} of the batch"
             for i in files]
    return images, {**aug, "jpeg": torch.cat([xs[i] for i in files]), "jpeg_bytes": lengths,
                    "jpeg_names": named}
