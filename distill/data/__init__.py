"""Data: datasets from the registry, timm transforms made replayable, loaders, mixup.

`build_data(data, augment, seed)` returns the train and val datasets (wrapped for replay)
and the loaders the engine iterates; mixup/cutmix run on the batch, seeded per step.

- `datasets`: the registered datasets (`synthetic`, `fashion_mnist`, `imagefolder`);
- `replay`: `ReplayDataset`, `ReplaySampler` and the seeding that makes augmentation replay;
- `transforms`: timm's training and evaluation transforms from the recipe;
- `fingerprint`: the hashes a logit cache keys a dataset on;
- `batch`: `Batch` and the collate function;
- `loaders`: `build_dataset`, `build_data`, `Data` and the loaders;
- `mixing`: `Mixer`, mixup/cutmix seeded per step.
"""

from __future__ import annotations

from .batch import Batch, augment_batch
from .fingerprint import dataset_fingerprint
from .loaders import (
    Data,
    build_data,
    build_dataset,
    build_train_dataset,
    build_val_loader,
    loader_args,
    tensor_augment,
)
from .mixing import Mixer
from .replay import ReplayDataset, ReplaySampler, derive_seed, seeded
from .transforms import eval_transform, pil_mode, train_transform

__all__ = [
    "Batch",
    "Data",
    "Mixer",
    "ReplayDataset",
    "ReplaySampler",
    "augment_batch",
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
    "tensor_augment",
    "train_transform",
]

# `data.pipeline: tensor`: timm's training transform as batched tensor ops (tensor_params,
# tensor_ops, tensor_resample, tensor_pipeline).
from .tensor_pipeline import TensorAugment

__all__ += ["TensorAugment"]
