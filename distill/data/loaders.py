"""Datasets from the registry, checked against the recipe, wrapped for replay; the loaders.

`build_data(data, augment, seed)` returns the train and val datasets (wrapped for replay),
the sampler and the loaders the engine iterates.
"""

from __future__ import annotations

import inspect
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from distill.errors import UsageError
from distill.registry import DATASETS

from .batch import collate
from .fingerprint import subset_fingerprint
from .replay import ReplayDataset, ReplaySampler
from .stream import (
    DEFAULT_STREAMS,
    DEFAULT_WINDOW,
    StreamEvalBatches,
    StreamSampler,
    check_stream,
    is_stream,
    stream_lengths,
)
from .transforms import eval_transform, pil_mode, train_transform

if TYPE_CHECKING:
    from distill.recipe import AugmentConfig, DataConfig

__all__ = ["Data", "build_data", "build_dataset", "build_train_dataset", "build_val_loader",
           "loader_args", "tensor_augment"]


def build_dataset(data: DataConfig, split: str) -> Dataset:
    """The raw dataset of `split` ("train"/"val"), checked against the recipe."""
    fn = DATASETS.get(data.name)
    params = inspect.signature(fn).parameters
    kwargs: dict[str, Any] = dict(data.options)
    for key in ("num_classes", "in_chans", "img_size"):
        if key in params:
            kwargs[key] = getattr(data, key)
    ds = fn(split=split, root=data.root, **kwargs)
    n_cls = getattr(ds, "num_classes", None)
    if n_cls is not None and n_cls != data.num_classes:
        raise UsageError(f"data.num_classes: {data.num_classes} but dataset '{data.name}' "
                         f"({split}) has {n_cls} classes")
    limit = data.train_limit if split == "train" else data.val_limit
    if limit is not None and limit < len(ds):
        ds = _Limited(ds, range(limit))
    return ds


class _Limited(Subset):
    """The first N samples, keeping the base dataset's attributes visible."""

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "indices", "labels"):
            raise AttributeError(name)
        if name == "chw_batch":  # the base's in-memory reader, if it has one, through the subset
            self.dataset.chw_batch  # noqa: B018 - AttributeError where the base has none
            return self._chw_batch_at
        if name == "image_file":  # the base's file of a sample, through the subset
            self.dataset.image_file  # noqa: B018 - AttributeError where the base has none
            return self._image_file_at
        return getattr(self.dataset, name)

    def _image_file_at(self, index: int) -> tuple[str, int]:
        return self.dataset.image_file(self.indices[index])

    def _chw_batch_at(self, indices: Sequence[int]) -> tuple[torch.Tensor, list[int]]:
        return self.dataset.chw_batch([self.indices[i] for i in indices])

    def fingerprint(self) -> dict[str, str]:
        """The base dataset's hashes restricted to the subset (a subset is other data)."""
        return subset_fingerprint(self.dataset, len(self))


@dataclass
class Data:
    """What the engine needs: replayable datasets, the sampler and the two loaders."""

    train: ReplayDataset
    val: ReplayDataset
    sampler: ReplaySampler | StreamSampler  # a stream's: batches, read front to back
    train_loader: DataLoader
    val_loader: DataLoader

    def epoch(self, epoch: int) -> Iterator[Any]:
        self.sampler.set_epoch(epoch)
        return iter(self.train_loader)


def _peer_gone(kind: type[BaseException]) -> bool:
    return issubclass(kind, (ConnectionResetError, BrokenPipeError, EOFError))


def worker_init(_worker_id: int) -> None:
    """Ctrl-C belongs to the main process, which stops the workers itself: a worker ignores
    SIGINT, and a worker's file-descriptor sharing thread (multiprocessing's resource
    sharer, which reports through `sys.excepthook`) stays quiet when the main process hung
    up mid-transfer because it was interrupted. Other errors are reported as before."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    report = sys.excepthook

    def excepthook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if not _peer_gone(kind):
            report(kind, value, tb)

    sys.excepthook = excepthook


def loader_args(data: DataConfig, pin_memory: bool, persistent: bool) -> dict[str, Any]:
    """`DataLoader` arguments shared by every loader of the toolkit (collate into `Batch`)."""
    args: dict[str, Any] = dict(num_workers=data.num_workers, pin_memory=pin_memory,
                                collate_fn=collate, worker_init_fn=worker_init,
                                persistent_workers=persistent and data.num_workers > 0,
                                # Its own generator: starting workers must not draw from the
                                # global RNG, which drop path uses (resume equality).
                                generator=torch.Generator())
    if data.num_workers > 0:
        args["prefetch_factor"] = 4
    return args


def build_val_loader(data: DataConfig, seed: int, *, pin_memory: bool = False,
                     num_replicas: int = 1, rank: int = 0) -> DataLoader:
    """The validation split with the evaluation transform, in order; with several ranks,
    rank r gets images r, r + n, r + 2n, … (every image once, summed over the ranks)."""
    val = ReplayDataset(build_dataset(data, "val"), eval_transform(data), seed, pil_mode(data))
    if len(val) < num_replicas:
        raise UsageError(f"data: {len(val)} validation images cannot be shared by "
                         f"{num_replicas} processes")
    batch = data.eval_batch_size or 2 * data.batch_size
    if is_stream(val.base):  # each rank a contiguous part, each worker a stretch of it
        return DataLoader(val, batch_sampler=StreamEvalBatches(
            len(val), batch, num_replicas=num_replicas, rank=rank,
            streams=getattr(val.base, "streams", DEFAULT_STREAMS)),
            **loader_args(data, pin_memory, persistent=False))
    shard = range(rank, len(val), num_replicas) if num_replicas > 1 else None
    return DataLoader(val, batch_size=batch, sampler=shard, shuffle=False, drop_last=False,
                      **loader_args(data, pin_memory, persistent=False))


def build_train_dataset(data: DataConfig, augment: AugmentConfig, seed: int) -> ReplayDataset:
    """The training split with the replayable training transform; with `data.pipeline:
    tensor`, its items carry uint8 images and their augmentation parameters instead
    (`ReplayDataset`, `TensorAugment`), to be augmented on the device (`augment_batch`)."""
    tensor_aug = tensor_augment(data, augment, seed)  # unsupported settings fail first
    base = build_dataset(data, "train")
    return ReplayDataset(base, train_transform(data, augment), seed, pil_mode(data),
                         augment=tensor_aug)


def tensor_augment(data: DataConfig, augment: AugmentConfig, seed: int) -> Any:
    """The `TensorAugment` of `data.pipeline: tensor` (None for `pil`); a UsageError naming
    `data.pipeline` for augmentation settings it does not implement."""
    if data.pipeline != "tensor":
        return None
    from .tensor_pipeline import TensorAugment

    return TensorAugment(data, augment, seed)


def build_data(data: DataConfig, augment: AugmentConfig, seed: int, *, pin_memory: bool = False,
               num_replicas: int = 1, rank: int = 0,
               prepare: Callable[[ReplayDataset], ReplayDataset] | None = None) -> Data:
    """Datasets and loaders; `prepare` is the teacher's hook on the training set (a cached
    teacher attaches its stored rows to each sample there)."""
    train = build_train_dataset(data, augment, seed)
    if prepare is not None:
        train = prepare(train)
    if len(train) < data.batch_size * num_replicas:
        raise UsageError(f"data.batch_size: {data.batch_size} exceeds the {len(train)} training "
                         f"images of '{data.name}'")
    if is_stream(train.base):  # every sample once per epoch, each worker reading its stretches
        check_stream(augment, data.name)
        sampler: Any = StreamSampler(  # the same batches whatever data.num_workers
            stream_lengths(train.base), seed, batch_size=data.batch_size,
            num_replicas=num_replicas, rank=rank,
            streams=getattr(train.base, "streams", DEFAULT_STREAMS),
            window=getattr(train.base, "shuffle_buffer", DEFAULT_WINDOW))
        plan_reads = getattr(train.base, "plan_reads", None)
        if plan_reads is not None:  # each worker reads ahead its own next batches
            plan_reads(sampler)
        train_loader = DataLoader(train, batch_sampler=sampler,
                                  **loader_args(data, pin_memory, persistent=True))
    else:
        sampler = ReplaySampler(len(train), seed, shuffle=True, repeats=augment.repeated_aug,
                                num_replicas=num_replicas, rank=rank)
        train_loader = DataLoader(train, batch_size=data.batch_size, sampler=sampler,
                                  drop_last=True, **loader_args(data, pin_memory, persistent=True))
    val_loader = build_val_loader(data, seed, pin_memory=pin_memory,
                                  num_replicas=num_replicas, rank=rank)
    return Data(train, val_loader.dataset, sampler, train_loader, val_loader)
