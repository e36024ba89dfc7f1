"""Datasets: `synthetic` (seeded, in memory), `fashion_mnist` (IDX files), `imagefolder`.

A builder takes `split` ("train" or "val"), `root`, and its own options; it returns a
map-style dataset of `(PIL image, class index)` with `num_classes` and `in_chans`. Builders
whose signature names `num_classes`, `in_chans` or `img_size` receive the recipe's values.
Nothing here downloads.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from distill.errors import UsageError
from distill.registry import DATASETS

from .errors import DataError

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


# The file names torchvision's ImageFolder takes for images (case-insensitive).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
_GRAY16 = ("I;16", "I;16L", "I;16B", "I;16N")


def convert_image(img: Image.Image, mode: str, where: object = "image") -> Image.Image:
    """`img` in PIL mode `mode` ("L" or "RGB"), every source mode converted or refused.

    - 16-bit grayscale ("I;16", "I;16B", …) and 32-bit integer ("I", how PIL opens 16-bit
      PNG and TIFF files) are scaled from 0..65535 to 0..255 (v·255/65535, rounded), not
      clipped at 255 as PIL's `convert` does; "I" values outside 0..65535 are refused.
      32-bit float ("F") is scaled from 0..1; values outside 0..1 are refused.
    - Palette ("P", "PA") and premultiplied ("RGBa") images go through "RGBA" first, so a
      palette's transparency is resolved.
    - Alpha ("RGBA", "LA", "PA", transparent palettes) is dropped: the stored colours are
      kept, not composited onto a background. This is what PIL's `convert` and
      torchvision's ImageFolder do, so an image that loaded before gives the same pixels.
    - CMYK, YCbCr, HSV, LAB and bilevel ("1") images use PIL's conversion to RGB; "L" from a
      colour image is PIL's ITU-R 601-2 luma of its RGB.
    - Anything PIL cannot convert is a `DataError` naming `where` and the mode.
    """
    if img.mode == mode:
        return img
    source = img.mode
    if source in _GRAY16 or source in ("I", "F"):
        img = _to_8bit(img, where)
    elif source in ("P", "PA", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == mode:
        return img
    try:
        if mode == "L" and img.mode not in ("1", "L", "LA"):
            img = img.convert("RGB")
        return img.convert(mode)
    except (ValueError, OSError) as exc:
        raise DataError(f"{where}: cannot convert an image of PIL mode '{source}' to "
                        f"'{mode}' ({exc}); save it as 8-bit RGB or grayscale") from None


def _to_8bit(img: Image.Image, where: object) -> Image.Image:
    """A 16-bit, 32-bit integer or float grayscale image as 8-bit "L" (see `convert_image`)."""
    a = np.asarray(img)
    if img.mode == "F":
        if a.size and (not np.isfinite(a).all() or a.min() < 0 or a.max() > 1):
            raise DataError(f"{where}: 32-bit float pixels outside 0..1 (found "
                            f"{np.nanmin(a):g}..{np.nanmax(a):g}); save it as 8- or 16-bit")
        return Image.fromarray(np.rint(a * 255.0).astype(np.uint8), "L")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() > 65535):
        raise DataError(f"{where}: 32-bit integer pixels outside 0..65535 (found {a.min()}.."
                        f"{a.max()}); save it as 8- or 16-bit")
    return Image.fromarray(((a * 255 + 32767) // 65535).astype(np.uint8), "L")


def load_image(path: str, mode: str) -> Image.Image:
    """The image file `path`, fully decoded and converted to `mode` ("L" or "RGB"); any
    problem is one `DataError` naming the file."""
    try:
        with open(path, "rb") as fh:
            img = Image.open(fh)
            img.load()  # decode it all here: a truncated file fails now, named
        return convert_image(img, mode, path)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: the file is gone (it was there when the dataset was listed)"
                        ) from None
    except PermissionError:
        raise DataError(f"{path}: cannot read the file (permission denied)") from None
    except Image.UnidentifiedImageError:
        what = ("an empty file (0 bytes)" if _size(path) == 0 else
                "not an image (PIL cannot identify its format)")
        raise DataError(f"{path}: {what}; replace or remove it") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path}: {_first_line(exc)}") from None
    except OSError as exc:
        if exc.errno is not None:  # the system could not read it
            raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
        raise DataError(f"{path}: cannot decode the image ({_first_line(exc)}): the file is "
                        "damaged or truncated; replace or remove it") from None
    except (SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error) as exc:
        raise DataError(f"{path}: cannot decode the image ({_first_line(exc)}): the file is "
                        "damaged; replace or remove it") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _entries(folder: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except PermissionError:
        raise DataError(f"{folder}: cannot read the folder (permission denied)") from None
    except OSError as exc:
        raise DataError(f"{folder}: cannot read the folder ({exc.strerror or exc})") from None


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows symbolic links, as torchvision's ImageFolder does
    except OSError:  # a link to itself, say: not a folder (named below if it is an image)
        return False


def _dir_id(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the folder ({exc.strerror or exc})") from None
    return st.st_dev, st.st_ino


def _walk(top: str, above: tuple[tuple[int, int], ...]
          ) -> Iterator[tuple[str, list[os.DirEntry]]]:
    """`(folder, non-folder entries)` under `top`, symbolic links to folders followed (as
    `os.walk(top, followlinks=True)` in torchvision's ImageFolder), except a link back to
    `top` or a folder above it (`above`: their device and inode numbers, `top`'s
    included): that loop is a `DataError` naming the link, never followed."""
    entries = _entries(top)
    yield top, [e for e in entries if not _is_dir(e)]
    for entry in entries:
        if not _is_dir(entry):
            continue
        path = os.path.join(top, entry.name)
        ident = _dir_id(path)
        if ident in above:
            raise DataError(f"{path}: a symbolic link back to '{os.path.realpath(path)}', a "
                            "folder that contains it (a loop); remove the link")
        yield from _walk(path, (*above, ident))


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _class_names(folder: str) -> list[str]:
    return [e.name for e in _entries(folder) if _is_dir(e)]


class _ImageFolder(Dataset):
    """The images of `root/<class>/**/<file>`, listed as torchvision's ImageFolder lists
    them (classes sorted, files by extension, sub-folders and symbolic links followed; the
    same samples in the same order), with every problem named: an empty class folder, a
    folder without class folders, an unreadable folder, a symbolic-link loop (refused, not
    followed), a broken link; and, when a sample is read (in a loader worker or not), a
    file that cannot be read or decoded. Images come in `mode` (see `convert_image`)."""

    def __init__(self, root: Path, mode: str = "RGB"):
        self.root = str(root)
        self.mode = mode
        classes = _class_names(self.root)
        if not classes:
            loose = sum(1 for e in _entries(self.root) if _is_image_name(e.name))
            hint = (f"; it holds {loose} image file(s) directly: put them in one folder per "
                    "class" if loose else "")
            raise DataError(f"{self.root}: no class folders (expected "
                            f"{os.path.join(self.root, '<class>', '<image>')}){hint}")
        self.samples: list[tuple[str, int]] = []
        empty: list[str] = []
        top = _dir_id(self.root)
        for label, name in enumerate(classes):
            class_dir = os.path.join(self.root, name)
            ident = _dir_id(class_dir)
            if ident == top:
                raise DataError(f"{class_dir}: a symbolic link back to '{self.root}', the "
                                "folder that contains it (a loop); remove the link")
            found = self._scan(class_dir, label, (top, ident))
            if not found:
                empty.append(class_dir)
        if empty:
            shown = ", ".join(f"'{p}'" for p in empty[:3])
            more = f" and {len(empty) - 3} more" if len(empty) > 3 else ""
            raise DataError(f"{empty[0]}: class folder{'s' if len(empty) > 1 else ''} {shown}"
                            f"{more} hold{'' if len(empty) > 1 else 's'} no images (files "
                            f"ending {', '.join(IMAGE_EXTENSIONS)}); add images or remove "
                            f"the folder{'s' if len(empty) > 1 else ''}")
        self.classes = tuple(classes)
        self.num_classes = len(self.classes)
        self.in_chans = 1 if mode == "L" else 3

    def _scan(self, class_dir: str, label: int, above: tuple[tuple[int, int], ...]) -> int:
        walked = sorted(_walk(class_dir, above), key=lambda pair: pair[0])
        count = 0
        for folder, files in walked:
            for entry in files:  # sorted by name
                if not _is_image_name(entry.name):
                    continue
                path = os.path.join(folder, entry.name)
                if not _is_regular(entry):
                    what = ("a broken symbolic link" if entry.is_symlink() and
                            not os.path.exists(path) else "not a regular file")
                    raise DataError(f"{path}: {what}; remove it or point it at an image")
                self.samples.append((path, label))
                count += 1
        return count

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        path, label = self.samples[index]
        return load_image(path, self.mode), label

    def fingerprint(self) -> dict[str, str]:
        """Hashes of the labels and of the file list (relative paths and sizes)."""
        labels, files = hashlib.sha256(), hashlib.sha256()
        for path, label in self.samples:
            try:
                size = os.stat(path).st_size
            except OSError as exc:
                raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})"
                                ) from None
            labels.update(f"{label}\n".encode())
            files.update(f"{Path(path).relative_to(self.root)}|{size}\n".encode())
        return {"labels_sha256": labels.hexdigest(), "content_sha256": files.hexdigest()}


def _is_regular(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


@DATASETS.register(default_root=None)
def imagefolder(split: Split, root: Path | None = None, in_chans: int = 3) -> _ImageFolder:
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
    ds = _ImageFolder(folder, "L" if in_chans == 1 else "RGB")
    train = Path(root) / "train"
    if split != "train" and train.is_dir():
        theirs = _class_names(str(train))
        if list(ds.classes) != theirs:
            only_here = sorted(set(ds.classes) - set(theirs))
            only_there = sorted(set(theirs) - set(ds.classes))
            diff = "; ".join(part for part in (
                f"only in {split}/: {', '.join(only_here[:5])}" if only_here else "",
                f"only in train/: {', '.join(only_there[:5])}" if only_there else "") if part)
            raise DataError(f"{folder}: its class folders differ from those of '{train}' "
                            f"({diff or 'another order'}); the labels would not match")
    return ds
