"""The `pil` pipeline's batch made in one buffer: the same images, bit for bit, for less work.

timm's training and evaluation transforms end in `MaybeToTensor`, `Normalize` and (training)
`RandomErasing`. Run per sample, they copy the image's bytes, convert them to a new float
tensor, normalise a copy of it; the collate function then stacks the samples into the batch,
and a loader worker copies that batch once more into shared memory to send it. For a
224-pixel photo that is about 1 ms per image of copies, beside timm's own loader, which ships
uint8 and normalises the batch.

Here the transform's PIL steps run as before (the sample's seeds set first, as
`ReplayDataset` does); then the image's bytes go straight into the sample's slot of one batch
tensor (in shared memory in a loader worker, as torch's `default_collate` allocates), are
divided by 255, less the mean and divided by the std in place: the operations of
`to_tensor` and `Normalize`, in their order, so the same floats. timm's own `RandomErasing`
then erases the slot in place, drawing exactly what it drew before. `collate` takes the
batch as it is (`StackedItems.images`).

Any other transform, an image of another mode or size than the batch's first, or a
transform's tail that does not match, falls back to the transform as written, sample by
sample: nothing changes but the speed. `tests/test_pil_identity.py` holds the images to
what they were.
"""

from __future__ import annotations

import contextlib
import math
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import get_worker_info

__all__ = ["StackedItems", "TransformPlan", "batch_buffer", "pil_items", "plan_of"]


class StackedItems(list):
    """A batch of items `(image, label, index, row)` whose images are rows of `images`,
    one tensor made already (`collate` takes it as it is)."""

    def __init__(self, items: list[tuple], images: torch.Tensor):
        super().__init__(items)
        self.images = images


@dataclass(frozen=True)
class TransformPlan:
    """A timm transform cut where its tensor steps start: `head` (the PIL steps) on the
    image, then to a float tensor, `(x − mean) / std` and `tail` (in place) on the tensor;
    `whole` the transform as written (the fallback)."""

    head: Callable[[Any], Any]
    mean: torch.Tensor  # C×1×1, float32, as torchvision's normalize makes it
    std: torch.Tensor
    tail: tuple[Callable[[torch.Tensor], torch.Tensor], ...]
    whole: Callable[[Any], torch.Tensor]

    def shape(self, img: Any) -> tuple[int, int, int] | None:
        """C×H×W of `img` as `to_tensor` makes it, where this plan converts it (8-bit
        grayscale or RGB PIL images), else None."""
        if not isinstance(img, Image.Image) or img.mode not in ("L", "RGB"):
            return None
        channels = 1 if img.mode == "L" else 3
        if channels != len(self.mean) and len(self.mean) != 1:
            return None  # Normalize would refuse it: let the transform say so
        return channels, img.height, img.width

    def finish(self, img: Image.Image, out: torch.Tensor) -> torch.Tensor:
        """`img` (after `head`) through the tensor steps, written into `out` (C×H×W, float,
        `self.shape(img)`): `to_tensor`'s `x.float().div(255)`, `Normalize`'s
        `sub_(mean).div_(std)` and the tail, in place."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a read-only array: only read
            u = torch.from_numpy(np.asarray(img))
        out.copy_(u[None] if u.ndim == 2 else u.permute(2, 0, 1))
        out.div_(255).sub_(self.mean).div_(self.std)
        for step in self.tail:
            out = step(out)
        return out


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def plan_of(transform: Any) -> TransformPlan | None:
    """The plan of a torchvision `Compose` that ends in `ToTensor`/timm's `MaybeToTensor`,
    `Normalize` and, optionally, timm's `RandomErasing` (what `timm.data.create_transform`
    makes without its prefetcher); None for any other transform."""
    try:
        return _PLANS[transform]
    except (KeyError, TypeError):
        pass
    plan = _plan(transform)
    with contextlib.suppress(TypeError):  # not weakly referable: planned again next time
        _PLANS[transform] = plan
    return plan


def _plan(transform: Any) -> TransformPlan | None:
    from timm.data.random_erasing import RandomErasing
    from timm.data.transforms import MaybeToTensor
    from torchvision.transforms import Compose, Normalize, ToTensor

    if type(transform) is not Compose:
        return None
    steps = list(transform.transforms)
    tail: list[Any] = []
    while steps and type(steps[-1]) is RandomErasing:
        tail.insert(0, steps.pop())
    if len(steps) < 2 or type(steps[-1]) is not Normalize or \
            type(steps[-2]) not in (MaybeToTensor, ToTensor):
        return None
    norm = steps[-1]
    dtype = torch.get_default_dtype()  # to_tensor's float type
    mean = torch.as_tensor(norm.mean, dtype=dtype)
    std = torch.as_tensor(norm.std, dtype=dtype)
    if mean.ndim > 1 or std.ndim > 1 or bool((std == 0).any()):
        return None  # Normalize's own checks and error messages apply
    return TransformPlan(Compose(steps[:-2]), mean.view(-1, 1, 1), std.view(-1, 1, 1),
                         tuple(tail), transform)


def batch_buffer(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """An empty tensor for a batch; in a loader worker, in shared memory already (as
    torch's `default_collate` makes it), so sending it to the main process copies nothing."""
    if get_worker_info() is None:
        return torch.empty(tuple(shape), dtype=dtype)
    like = torch.empty(0, dtype=dtype)
    try:
        storage = like._typed_storage()._new_shared(math.prod(shape), device=like.device)
        return like.new(storage).view(tuple(shape))
    except (AttributeError, RuntimeError, TypeError):  # a torch without them: copied later
        return torch.empty(tuple(shape), dtype=dtype)


def pil_items(item: Callable[..., tuple], keys: list[Any], transform: Any) -> list[tuple]:
    """The items of `keys` (`item(key, transform)` → `(image, label, index, row)`, the
    sample's seeds set before `transform` runs), their images made into one batch where
    `transform` has a plan (a `StackedItems`), else a list as `item` makes them."""
    plan = plan_of(transform)
    if plan is None or not keys:
        return [item(key, transform) for key in keys]
    items: list[tuple] = []
    batch: torch.Tensor | None = None
    whole = True  # every image is a row of `batch`
    for i, key in enumerate(keys):
        img, label, index, row = item(key, plan.head)
        shape = plan.shape(img)
        if batch is None and i == 0 and shape is not None:
            batch = batch_buffer((len(keys), *shape), plan.mean.dtype)
        if batch is not None and shape == tuple(batch.shape[1:]):
            x = plan.finish(img, batch[i])
            whole = whole and x.data_ptr() == batch[i].data_ptr()
        else:  # as the transform is written
            x = _finish_alone(plan, img)
            whole = False
        items.append((x, label, index, row))
    return StackedItems(items, batch) if whole and batch is not None else items


def _finish_alone(plan: TransformPlan, img: Any) -> torch.Tensor:
    """`img` (after `head`) through the rest of the transform as written."""
    steps = plan.whole.transforms
    for step in steps[len(steps) - len(plan.tail) - 2:]:
        img = step(img)
    return img
