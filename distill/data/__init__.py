"""Data: datasets from the registry, timm transforms made replayable, loaders, mixup.

`build_data(data, augment, seed)` returns the train and val datasets (wrapped for replay)
and the loaders the engine iterates; mixup/cutmix run on the batch, seeded per step.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from distill.errors import UsageError
from distill.registry import DATASETS

from .replay import ReplayDataset, ReplaySampler, derive_seed, seeded

if TYPE_CHECKING:
    from distill.recipe import AugmentConfig, DataConfig

__all__ = [
    "Batch",
    "Data",
    "Mixer",
    "ReplayDataset",
    "ReplaySampler",
    "build_data",
    "build_dataset",
    "build_train_dataset",
    "build_val_loader",
    "dataset_fingerprint",
    "derive_seed",
    "eval_transform",
    "loader_args",
    "pil_mode",
    "seeded",
    "train_transform",
]


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
        return getattr(self.dataset, name)

    def fingerprint(self) -> dict[str, str]:
        """The base dataset's hashes restricted to the subset (a subset is other data)."""
        import hashlib

        base = dataset_fingerprint(self.dataset)
        return {k: hashlib.sha256(f"{v}|first {len(self)}".encode()).hexdigest()
                for k, v in base.items()}


def dataset_fingerprint(ds: Dataset) -> dict[str, str]:
    """`labels_sha256` and `content_sha256` of a dataset: its own `fingerprint()` where it
    has one, else hashes of every label and image (slow for big datasets: give yours a
    `fingerprint()`)."""
    import hashlib

    if hasattr(ds, "fingerprint"):
        return ds.fingerprint()
    labels, content = hashlib.sha256(), hashlib.sha256()
    for i in range(len(ds)):  # type: ignore[arg-type]
        img, label = ds[i]
        labels.update(f"{int(label)}\n".encode())
        content.update(img.tobytes() if hasattr(img, "tobytes") else repr(img).encode())
    return {"labels_sha256": labels.hexdigest(), "content_sha256": content.hexdigest()}


def train_transform(data: DataConfig, augment: AugmentConfig) -> Any:
    from timm.data import create_transform

    return create_transform(
        (data.in_chans, data.img_size, data.img_size),
        is_training=True,
        scale=tuple(augment.scale),
        ratio=tuple(augment.ratio),
        hflip=augment.hflip,
        vflip=augment.vflip,
        color_jitter=augment.color_jitter or None,  # 0/None: no ColorJitter at all
        auto_augment=augment.auto_augment,
        interpolation=data.interpolation,
        mean=tuple(data.mean),
        std=tuple(data.std),
        re_prob=augment.re_prob,
        re_mode=augment.re_mode,
        re_count=augment.re_count,
    )


def eval_transform(data: DataConfig) -> Any:
    from timm.data import create_transform

    return create_transform(
        (data.in_chans, data.img_size, data.img_size),
        is_training=False,
        crop_pct=data.crop_pct,
        interpolation=data.interpolation,
        mean=tuple(data.mean),
        std=tuple(data.std),
    )


@dataclass
class Data:
    """What the engine needs: replayable datasets, the sampler and the two loaders."""

    train: ReplayDataset
    val: ReplayDataset
    sampler: ReplaySampler
    train_loader: DataLoader
    val_loader: DataLoader

    def epoch(self, epoch: int) -> Iterator[Any]:
        self.sampler.set_epoch(epoch)
        return iter(self.train_loader)


class Batch(NamedTuple):
    """A batch as the engine, the losses and the teachers see it.

    `images` are student-normalised (after mixup/cutmix when on); `labels` are class indices
    or, after mixing, soft targets; `cached` are a cached teacher's rows for these samples;
    `lam` is the mixing weight (a float, or a B×1 tensor in pair/elem mode) with partner
    `flip(0)`, None when the batch was not mixed.
    """

    images: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    cached: Any = None
    lam: Any = None

    def to(self, device: torch.device) -> Batch:
        def move(t: Any) -> Any:
            if isinstance(t, torch.Tensor):
                return t.to(device, non_blocking=True)
            if isinstance(t, dict):
                return {k: move(v) for k, v in t.items()}
            return t

        return Batch(*(move(t) for t in self))


def _collate(items: list[tuple]) -> Batch:
    xs, ys, idx, cached = zip(*items)
    rows = None
    if cached[0] is not None:  # a cached teacher's rows: a tensor or a dict of tensors each
        first = cached[0]
        rows = ({k: torch.stack([c[k] for c in cached]) for k in first}
                if isinstance(first, dict) else torch.stack(cached))
    return Batch(torch.stack(xs), torch.tensor(ys), torch.tensor(idx), rows)


def loader_args(data: DataConfig, pin_memory: bool, persistent: bool) -> dict[str, Any]:
    args: dict[str, Any] = dict(num_workers=data.num_workers, pin_memory=pin_memory,
                                collate_fn=_collate,
                                persistent_workers=persistent and data.num_workers > 0,
                                # Its own generator: starting workers must not draw from the
                                # global RNG, which drop path uses (resume equality).
                                generator=torch.Generator())
    if data.num_workers > 0:
        args["prefetch_factor"] = 4
    return args


def pil_mode(data: DataConfig) -> str:
    return "L" if data.in_chans == 1 else "RGB"


def build_val_loader(data: DataConfig, seed: int, *, pin_memory: bool = False,
                     num_replicas: int = 1, rank: int = 0) -> DataLoader:
    """The validation split with the evaluation transform, in order; with several ranks,
    rank r gets images r, r + n, r + 2n, … (every image once, summed over the ranks)."""
    val = ReplayDataset(build_dataset(data, "val"), eval_transform(data), seed, pil_mode(data))
    if len(val) < num_replicas:
        raise UsageError(f"data: {len(val)} validation images cannot be shared by "
                         f"{num_replicas} processes")
    shard = range(rank, len(val), num_replicas) if num_replicas > 1 else None
    return DataLoader(val, batch_size=data.eval_batch_size or 2 * data.batch_size,
                      sampler=shard, shuffle=False, drop_last=False,
                      **loader_args(data, pin_memory, persistent=False))


def build_train_dataset(data: DataConfig, augment: AugmentConfig, seed: int) -> ReplayDataset:
    """The training split with the replayable training transform."""
    return ReplayDataset(build_dataset(data, "train"), train_transform(data, augment), seed,
                         pil_mode(data))


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
    sampler = ReplaySampler(len(train), seed, shuffle=True, repeats=augment.repeated_aug,
                            num_replicas=num_replicas, rank=rank)
    train_loader = DataLoader(train, batch_size=data.batch_size, sampler=sampler, drop_last=True,
                              **loader_args(data, pin_memory, persistent=True))
    val_loader = build_val_loader(data, seed, pin_memory=pin_memory,
                                  num_replicas=num_replicas, rank=rank)
    return Data(train, val_loader.dataset, sampler, train_loader, val_loader)


class Mixer:
    """timm's Mixup/CutMix with its draws seeded from (seed, epoch, step, rank); it also
    returns λ, which a cache replaying per-sample teacher outputs needs to mix them."""

    def __init__(self, augment: AugmentConfig, num_classes: int, smoothing: float, seed: int):
        from timm.data import Mixup

        self.seed = seed
        self.mixup = Mixup(
            mixup_alpha=augment.mixup, cutmix_alpha=augment.cutmix, prob=augment.mixup_prob,
            switch_prob=augment.switch_prob, mode=augment.mixup_mode,
            label_smoothing=smoothing, num_classes=num_classes)

    @classmethod
    def from_recipe(cls, recipe: Any) -> Mixer:
        """The recipe's mixup/cutmix (training and exact-mixing caches use this one)."""
        return cls(recipe.augment, recipe.data.num_classes, recipe.loss.smoothing,
                   recipe.run.seed)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, epoch: int, step: int, rank: int = 0
                 ) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """Mix `x` in place; return it, the soft targets and λ (partner: `flip(0)`)."""
        from timm.data.mixup import mixup_target

        m = self.mixup
        with seeded(self.seed, "mix", epoch, step, rank):
            if m.mode == "elem":
                lam = m._mix_elem(x)
            elif m.mode == "pair":
                lam = m._mix_pair(x)
            else:
                lam = m._mix_batch(x)
        return x, mixup_target(y, m.num_classes, lam, m.label_smoothing), lam
