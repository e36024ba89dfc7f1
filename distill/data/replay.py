"""Replayable augmentation: every random choice derives from (seed, epoch, index, repeat).

timm's transforms draw from Python's `random`, NumPy's global generator and torch. Inside
`ReplayDataset.__getitem__` all three are seeded from the sample's key, torch under
`torch.random.fork_rng`, and restored afterwards, so the augmented image depends on the
key alone: not on the worker count, the batch size, or what ran before. The logit cache
relies on this to show a student the very image its teacher saw.

The sampler yields keys `(epoch, index, repeat, position)`, so the epoch reaches persistent
workers without any shared state; `repeat` tells apart the copies of repeated augmentation,
and `position` is the key's place in the epoch's global order (the row of a logit cache).
A stream's sample (tar shards: `base.sample_id(index)`, its key) draws from its key in place
of its index, so its augmentation follows the sample, not the shard order of the epoch.
Mixup/cutmix draw in the main process; `seeded(...)` gives them the same treatment per step.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from distill.errors import UsageError

from .decode import (
    as_tensor,
    crop_resize,
    device_decodable,
    read_bytes,
    read_header,
    resize,
    source_name,
)
from .errors import DataError
from .images import convert_image
from .pil_batch import pil_items

__all__ = ["ReplayDataset", "ReplaySampler", "RowReader", "derive_seed", "preserved_rngs", "reseed",
           "seeded"]

Key = tuple[int, int, int, int]  # (epoch, index, repeat, position)
# A cached teacher's stored rows for each sample: (epoch, position, index) -> the sample's row
# (a tensor, or a dict of tensors: what the cache's store keeps per sample).
RowReader = Callable[[int, int, int], Any]


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from any mix of ints and strings (stable across runs and machines)."""
    h = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") >> 1


@contextlib.contextmanager
def preserved_rngs() -> Iterator[None]:
    """Restore `random`, NumPy's global generator and torch's CPU generator on exit.

    Saving NumPy's state costs ~0.2 ms, so the dataset does it once per batch, not per sample.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def reseed(seed: int) -> None:
    """Seed `random`, NumPy's global generator and torch's CPU generator from `seed`."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.default_generator.manual_seed(seed)  # torch.manual_seed also touches CUDA: slow


@contextlib.contextmanager
def seeded(*parts: int | str) -> Iterator[None]:
    """Seed `random`, NumPy and torch (CPU) from `parts`; restore all three afterwards."""
    with preserved_rngs():
        reseed(derive_seed(*parts))
        yield


Item = tuple[torch.Tensor, int, int, Any]  # (image, label, index, cached row or None)


class ReplayDataset(Dataset):
    """Applies `transform` to `base[index]` under seeds derived from (seed, epoch, index, repeat).

    Items are `(image_tensor, label, index, row)`; `row` is what `rows` (a cached teacher's
    reader of its stored rows, attached by `Teacher.prepare`) returns for the key, else None
    (the collate function stacks them into `Batch.cached`). Keys are
    `(epoch, index, repeat, position)` tuples from `ReplaySampler`, or plain indices (epoch 0,
    repeat 0, position = index: evaluation and static caches).

    Images are converted to `mode` by `datasets.convert_image` (16-bit scaled, not
    clipped). A sample that cannot be read is a one-line `DataError` in the main process
    whether or not a loader worker read it: the base dataset's usage errors, and its
    `OSError`s named by their file.

    With `augment` (a `TensorAugment`: `data.pipeline: tensor`), `transform` is not applied:
    items are `(uint8 image C×H×W, label, index, row, params)`, `params` the sample's random
    parameters (`augment.params` for its key, one row of each tensor, drawn here on the host,
    once per batch in `__getitems__`); the collate function stacks them into `Batch.aug` and
    `augment_batch` applies them on the device. In-memory data (a base with `chw_batch`)
    ships its images whole, in one gather. Images that differ in size (a base with
    `image_file(index) -> (source, label[, name])`, a source being a file's path or its
    encoded bytes (`decode.Source`) and `name` what names it in errors (default: the path),
    such as `imagefolder`; or any base of PIL images) are cropped and resized to the output
    size here, in the worker, where the size is known (see `_sized_items`): the device then
    only flips them, and goes on.
    """

    def __init__(self, base: Dataset, transform: Callable[[Any], torch.Tensor], seed: int,
                 mode: str | None = None, rows: RowReader | None = None,
                 augment: Any = None):
        self.base = base
        self.transform = transform
        self.seed = seed
        self.mode = mode  # PIL mode to convert to ("L" or "RGB"), matching the recipe
        self.rows = rows
        self.augment = augment  # TensorAugment (data.pipeline: tensor) or None

    def with_rows(self, rows: RowReader | None) -> ReplayDataset:
        """The same data, with the stored row `rows(epoch, position, index)` attached to each
        item (None: no rows)."""
        return ReplayDataset(self.base, self.transform, self.seed, self.mode, rows, self.augment)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def _item(self, key: Key | int, transform: Callable[[Any], Any] | None = None) -> Item:
        """Sample `key` through `transform` (default: the dataset's), its seeds set first."""
        epoch, index, repeat, position = _key(key)
        img, label = _read(self.base, index)
        if self.mode is not None and getattr(img, "mode", self.mode) != self.mode:
            img = convert_image(img, self.mode, f"sample {index} of {type(self.base).__name__}")
        reseed(derive_seed(self.seed, epoch, self._sample_id(index), repeat))
        row = self._row(epoch, position, index)
        return (transform or self.transform)(img), label, index, row

    def _sized_items(self, keys: list[Key | int]) -> TensorItems:
        """The tensor pipeline's batch of images of their own sizes, cut and resized here.

        Each image's size comes first (an image file's header: nothing decoded yet), then the
        batch's parameters (`augment.params`: the crop box drawn from the size), then each
        image is decoded (`data.decode`: in full, or a JPEG at a reduced scale), converted to
        `mode` and its crop resized to the output size with the sample's filter
        (`decode.crop_resize`: the pixels the device's `resized_crop` gives on the whole
        image). Its `params["crop"]` becomes the whole output, so the device only flips it.
        With `data.decode: device`, a JPEG that the device decodes as Pillow does is shipped
        as its file's bytes (a 1-D uint8 tensor) with its crop box, for `TensorAugment`."""
        augment = self.augment
        size = augment.settings.size
        parts = [_key(key) for key in keys]
        file_of = getattr(self.base, "image_file", None)
        loaded: list[Any] = []
        if file_of is None:  # a dataset of PIL images (or arrays): read whole
            loaded = [self._loaded(index) for _, index, _, _ in parts]
            labels = [label for _, label in loaded]
            sizes = [(img.height, img.width) for img, _ in loaded]
        else:
            files = [file_of(index) for _, index, _, _ in parts]
            labels = [f[1] for f in files]
            sources: list[Any] = [f[0] for f in files]
            where = [f[2] if len(f) > 2 else source_name(f[0]) for f in files]
            if augment.decode == "device":  # read once: the bytes, the header from them
                sources = [read_bytes(src, name) for src, name in zip(sources, where, strict=True)]
            headers = [read_header(src, name) for src, name in zip(sources, where, strict=True)]
            sizes = [h.hw for h in headers]
        params = augment.params(self._draw_keys(keys), sizes)
        boxes, interps = params["crop"].tolist(), params["interp"].tolist()
        items, names = [], [None] * len(parts)
        for i, (epoch, index, _, position) in enumerate(parts):
            box, interp = boxes[i], interps[i]
            if file_of is None:
                image = resize(loaded[i][0], box, size, interp)
            elif augment.decode == "device" and device_decodable(headers[i], sources[i]):
                image = as_tensor(sources[i])  # decoded on the device, then cut there
                names[i] = headers[i].name
            else:
                image = crop_resize(sources[i], box, size, interp, self.mode or "RGB",
                                    decode="reduced" if augment.decode == "reduced" else "full",
                                    name=headers[i].name, header=headers[i])
            items.append((image, labels[i], index, self._row(epoch, position, index)))
        cut = torch.tensor([item[0].ndim == 3 for item in items])  # the others: the device's
        params["crop"][cut] = torch.tensor([0, 0, *size], dtype=params["crop"].dtype)
        return TensorItems(items, params, names=names)

    def _loaded(self, index: int) -> tuple[Image.Image, int]:
        """Sample `index` of the base as a PIL image in `mode` (an array: its uint8 pixels)."""
        img, label = _read(self.base, index)
        if not isinstance(img, Image.Image):
            a = np.asarray(img)
            if a.dtype != np.uint8:
                raise DataError(f"data.pipeline: tensor needs 8-bit images, got {a.dtype}")
            img = Image.fromarray(a)
        if self.mode is not None and img.mode != self.mode:
            img = convert_image(img, self.mode, f"sample {index} of {type(self.base).__name__}")
        return img, label

    def _sample_id(self, index: int) -> int | str:
        """What sample `index`'s augmentation is drawn from: its index, or the key of a
        stream's sample (`base.sample_id`, tar shards), so that the augmentation follows the
        sample, not where it falls in the stream's shard order."""
        sample_id = getattr(self.base, "sample_id", None)
        return index if sample_id is None else sample_id(index)

    def _draw_keys(self, keys: list[Key | int]) -> list[Key | int]:
        """`keys` for the tensor pipeline's draws (`augment.params`), a stream's sample key
        in place of the index (as a stable 63-bit integer, `shards.sample_id64`)."""
        if getattr(self.base, "sample_id", None) is None:
            return keys
        from .shards import sample_id64

        out: list[Key | int] = []
        for key in keys:
            epoch, index, repeat, position = _key(key)
            ident = self._sample_id(index)
            out.append((epoch, sample_id64(ident) if isinstance(ident, str) else ident, repeat,
                        position))
        return out

    def _row(self, epoch: int, position: int, index: int) -> Any:
        try:
            return self.rows(epoch, position, index) if self.rows is not None else None
        except DataError:
            raise
        except UsageError as exc:  # one line from a loader worker too (see `DataError`)
            raise DataError(*exc.lines) from None

    @property
    def _chw_batch(self) -> Callable[[Sequence[int]], tuple[torch.Tensor, list[int]]] | None:
        """The base's reader of a batch as one uint8 B×C×H×W tensor, where it holds its
        images in memory in the mode the recipe asks for (else None: images are read and
        converted as PIL images)."""
        read = getattr(self.base, "chw_batch", None)
        return read if read is not None and getattr(self.base, "mode", None) == self.mode \
            else None

    def __getitem__(self, key: Key | int) -> Item:
        items = self.__getitems__([key])
        if isinstance(items, TensorItems):  # one sample: its parameters ride with it
            return (*items[0], {k: v[0] for k, v in items.params.items()})
        return items[0]

    def __getitems__(self, keys: list[Key | int]) -> list[Item]:
        """A whole batch under one save/restore of the generators (DataLoader calls this);
        on the tensor pipeline a `TensorItems`, the batch's parameters drawn at once (and,
        for in-memory data, its images read in one gather). A base that reads ahead
        (`reading`, tar shards) is told the batch first."""
        reading = getattr(self.base, "reading", None)
        if reading is not None and keys:
            parts = [_key(key) for key in keys]
            reading(parts[0][0], [index for _, index, _, _ in parts])
        if self.augment is not None and self._chw_batch is not None:
            parts = [_key(key) for key in keys]
            images, labels = self._chw_batch([index for _, index, _, _ in parts])
            items = [(images[i], labels[i], index, self._row(epoch, position, index))
                     for i, (epoch, index, _, position) in enumerate(parts)]
            params = self.augment.params(keys, tuple(images.shape[-2:]))
            return TensorItems(items, params, images)
        if self.augment is not None:
            return self._sized_items(keys)
        with preserved_rngs():  # the batch made in one buffer (see `pil_batch`)
            return pil_items(self._item, keys, self.transform)


def _key(key: Key | int) -> Key:
    """A sampler key `(epoch, index, repeat, position)`; a plain index is epoch 0, repeat 0,
    position = index."""
    return (0, key, 0, key) if isinstance(key, int) else key


class TensorItems(list):
    """A batch of tensor-pipeline items `(uint8 image, label, index, row)` with `params`,
    the batch's augmentation parameters (one row per item), for `collate`."""

    def __init__(self, items: list[Item], params: dict[str, torch.Tensor],
                 images: torch.Tensor | None = None, names: list[str | None] | None = None):
        super().__init__(items)
        self.params = params
        self.images = images  # the items' images stacked already (in-memory data), or None
        self.names = names  # each JPEG file's name, where it is shipped encoded (else None)


def _read(base: Dataset, index: int) -> tuple[Any, int]:
    """`base[index]`, its errors as one-line `DataError`s (which survive a loader worker): a
    usage error as it is, a file the system cannot read named with its path."""
    try:
        return base[index]
    except DataError:
        raise
    except UsageError as exc:
        raise DataError(*exc.lines) from None
    except OSError as exc:
        where = exc.filename or f"sample {index} of {type(base).__name__}"
        raise DataError(f"{where}: cannot read it ({exc.strerror or exc})") from None


class ReplaySampler(Sampler[Key]):
    """Shuffled keys `(epoch, index, repeat, position)` for one rank of `num_replicas`.

    The permutation of epoch e is a function of (seed, e). With `repeats` > 1 (DeiT's
    repeated augmentation) each index appears `repeats` times in a row in the global order,
    which is then dealt to ranks in turn and cut to `len(dataset)` keys per epoch overall,
    as the official RASampler does. `position` is the key's place in the global order before
    dealing; keys that pad the last round repeat an earlier key, position included.
    """

    def __init__(self, size: int, seed: int, *, shuffle: bool = True, repeats: int = 1,
                 num_replicas: int = 1, rank: int = 0, epoch: int = 0):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}")
        self.size, self.seed, self.shuffle, self.repeats = size, seed, shuffle, repeats
        self.num_replicas, self.rank, self.epoch = num_replicas, rank, epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.repeats > 1:
            return self.size // self.num_replicas
        return math.ceil(self.size / self.num_replicas)

    def global_keys(self) -> list[Key]:
        """The epoch's keys in global order, before dealing to ranks."""
        if self.shuffle:
            g = torch.Generator().manual_seed(derive_seed(self.seed, "sampler", self.epoch))
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        pairs = [(i, r) for i in order for r in range(self.repeats)]
        return [(self.epoch, i, r, p) for p, (i, r) in enumerate(pairs)]

    def keys(self) -> list[Key]:
        """This rank's keys, in the order it trains on them."""
        return self.dealt([self.rank])[0]

    def dealt(self, ranks: list[int] | None = None) -> list[list[Key]]:
        """The keys of each rank in `ranks` (default: all), from one shuffle of the epoch."""
        keys = self.global_keys()
        world = self.num_replicas
        total = math.ceil(len(keys) / world) * world
        keys += keys[: total - len(keys)]  # pad so every rank gets the same count
        return [keys[r:total:world][: len(self)]
                for r in (range(world) if ranks is None else ranks)]

    def __iter__(self) -> Iterator[Key]:
        return iter(self.keys())
