"""The folder walker of `imagefolder`: `root/<class>/**/<image>`, listed as torchvision's
ImageFolder lists it (the same samples in the same order), with every problem of the tree
named before any image is read: an empty class folder, a folder without class folders, an
unreadable folder, a symbolic-link loop (refused, not followed), a broken link. Images are
read one by one, when a sample is asked for (`distill.data.decode`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from .decode import load_image
from .errors import DataError

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder", "class_names"]

# The file names torchvision's ImageFolder takes for images (case-insensitive).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


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


def class_names(folder: str) -> list[str]:
    """The class folders of `folder`, sorted by name (symbolic links to folders included)."""
    return [e.name for e in _entries(folder) if _is_dir(e)]


class ImageFolder(Dataset):
    """The images of `root/<class>/**/<file>`, listed as torchvision's ImageFolder lists
    them (classes sorted, files by extension, sub-folders and symbolic links followed; the
    same samples in the same order), with every problem named: an empty class folder, a
    folder without class folders, an unreadable folder, a symbolic-link loop (refused, not
    followed), a broken link; and, when a sample is read (in a loader worker or not), a
    file that cannot be read or decoded. Images come in `mode` (see `convert_image`)."""

    def __init__(self, root: Path, mode: str = "RGB"):
        self.root = str(root)
        self.mode = mode
        classes = class_names(self.root)
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

    def image_file(self, index: int) -> tuple[str, int]:
        """Sample `index`'s file and label, nothing read (the tensor pipeline decodes it
        itself, see `distill.data.decode`)."""
        return self.samples[index]

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
