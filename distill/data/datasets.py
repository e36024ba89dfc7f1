"""Datasets: `synthetic` (seeded, in memory), `fashion_mnist` (IDX files), `imagefolder`
(a folder tree: walked by `folder`, each image decoded by `images`).

A builder takes `split` ("train" or "val"), `root`, and its own options; it returns a
map-style dataset of `(PIL image, class index)` with `num_classes` and `in_chans`. Builders
whose signature names `num_classes`, `in_chans` or `img_size` receive the recipe's values.
Nothing here downloads.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from distill.errors import UsageError
from distill.registry import DATASETS

from .decode import load_image
from .errors import DataError
from .folder import ImageFolder, class_names
from .images import convert_image

__all__ = ["ArrayImageDataset", "convert_image", "fashion_mnist", "imagefolder", "load_image",
           "read_idx", "synthetic"]

Split = Literal["train", "val"]
FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


class ArrayImageDataset(Dataset):
    """Images held as one uint8 array (N×H×W or N×H×W×C) with integer labels."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.astype(np.int64)
        self.classes = classes
        self.num_classes = len(classes)
        self.in_chans = 1 if images.ndim == 3 else images.shape[-1]
        self.mode = "L" if self.in_chans == 1 else "RGB"
        self._chw: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.images[index], self.mode), int(self.labels[index])

    def _uint8(self) -> torch.Tensor:
        """All images as one uint8 N×C×H×W tensor (a view of the array: no copy)."""
        if self._chw is None:
            with warnings.catch_warnings():  # a read-only array (np.frombuffer): only read
                warnings.simplefilter("ignore", UserWarning)
                t = torch.from_numpy(self.images)
            self._chw = t[:, None] if t.ndim == 3 else t.permute(0, 3, 1, 2)
        return self._chw

    def chw_batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, list[int]]:
        """Samples `indices` as one uint8 B×C×H×W tensor (one gather, no PIL image), and
        their labels: what `data.pipeline: tensor` reads."""
        idx = np.asarray(indices, dtype=np.int64)
        return self._uint8()[torch.from_numpy(idx)].contiguous(), self.labels[idx].tolist()

    def fingerprint(self) -> dict[str, str]:
        """Hashes of the labels and of the pixels (identify the data for logit caches)."""
        return {"labels_sha256": hashlib.sha256(self.labels.tobytes()).hexdigest(),
                "content_sha256": hashlib.sha256(
                    np.ascontiguousarray(self.images).tobytes()).hexdigest()}


@DATASETS.register(default_root=None)
def synthetic(split: Split, root: Path | None = None, num_classes: int = 10, in_chans: int = 3,
              img_size: int = 32, train_size: int = 512, val_size: int = 256,
              noise: float = 0.2, seed: int = 0) -> ArrayImageDataset:
    """Seeded, learnable images: each class three coloured blobs at its own places; each
    image its class's blobs shifted by a few pixels, plus Gaussian noise. Nothing on disk;
    the same seed gives the same data."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:img_size, 0:img_size] / img_size
    protos = np.zeros((num_classes, img_size, img_size, in_chans))
    for c in range(num_classes):
        for _ in range(3):
            cy, cx = rng.uniform(0.2, 0.8, 2)
            radius = rng.uniform(0.08, 0.18)
            color = 2 * rng.uniform(0, 1, in_chans) - 1
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))
            protos[c] += blob[..., None] * color
    protos = 0.5 + 0.5 * protos / np.abs(protos).max()
    n = train_size if split == "train" else val_size
    srng = np.random.default_rng([seed, 0 if split == "train" else 1])
    labels = srng.integers(0, num_classes, n)
    shift = srng.integers(-(img_size // 16), img_size // 16 + 1, (n, 2))
    images = np.stack([np.roll(protos[lab], tuple(sh), axis=(0, 1))
                       for lab, sh in zip(labels, shift)])
    images = images + noise * srng.standard_normal(images.shape)
    images = np.clip(images * 255, 0, 255).astype(np.uint8)
    if in_chans == 1:
        images = images[..., 0]
    return ArrayImageDataset(images, labels, tuple(f"class_{c}" for c in range(num_classes)))


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise UsageError(f"{path}: unreadable IDX file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UsageError(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise UsageError(f"{path}: truncated IDX file ({data.size} of {int(np.prod(dims))} bytes)")
    return data.reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (root / name).is_file():
            return root / name
    raise UsageError(f"data.root: '{root}' has no {stem}[.gz] (install the Debian package "
                     "dataset-fashion-mnist or point data.root at the IDX files)")


@DATASETS.register(default_root=str(FASHION_MNIST_ROOT))
def fashion_mnist(split: Split, root: Path | None = None) -> ArrayImageDataset:
    """Fashion-MNIST from its IDX files (60,000 train / 10,000 test, 1×28×28, 10 classes).

    Reads the Debian package `dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist) by
    default; "val" is the official test set.
    """
    root = Path(root) if root is not None else FASHION_MNIST_ROOT
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_find(root, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"))
    return ArrayImageDataset(images, labels, FASHION_MNIST_CLASSES)


@DATASETS.register(default_root=None)
def imagefolder(split: Split, root: Path | None = None, in_chans: int = 3) -> ImageFolder:
    """An ImageNet-style tree: `root/train/<class>/*.JPEG` and `root/val/<class>/*.JPEG`.

    Images are converted to the recipe's channels (`data.in_chans` 1: "L", else "RGB"; see
    `convert_image`). The val split must have the train split's classes."""
    if root is None:
        raise UsageError("data.root: dataset 'imagefolder' needs a root folder")
    if not Path(root).exists():
        raise DataError(f"data.root: '{root}' does not exist")
    if not Path(root).is_dir():
        raise DataError(f"data.root: '{root}' is not a folder")
    folder = Path(root) / split
    if not folder.is_dir():
        raise UsageError(f"data.root: '{root}' has no '{split}/' folder")
    ds = ImageFolder(folder, "L" if in_chans == 1 else "RGB")
    train = Path(root) / "train"
    if split != "train" and train.is_dir():
        theirs = class_names(str(train))
        if list(ds.classes) != theirs:
            only_here = sorted(set(ds.classes) - set(theirs))
            only_there = sorted(set(theirs) - set(ds.classes))
            diff = "; ".join(part for part in (
                f"only in {split}/: {', '.join(only_here[:5])}" if only_here else "",
                f"only in train/: {', '.join(only_there[:5])}" if only_there else "") if part)
            raise DataError(f"{folder}: its class folders differ from those of '{train}' "
                            f"({diff or 'another order'}); the labels would not match")
    return ds
