"""`data.name: hf`: a Hugging Face dataset from disk, read as a stream.

    data:
      name: hf
      root: data/flowers-hf        # a DatasetDict saved with save_to_disk, or a local
                                   # folder that `datasets.load_dataset` reads
      options: {image: image, label: label, train: train, val: validation}

Nothing is fetched: `root` must be a folder here (never a Hub name). A `DatasetDict` saved
with `save_to_disk` (splits `train` and `validation`, as on the Hub) is memory-mapped as
it is; any other folder goes through `datasets.load_dataset(root)` (image folders,
parquet, …: the `datasets` builders that read local files; its Arrow cache is written where
`datasets` keeps it, `HF_DATASETS_CACHE`). The image and label columns are `image` and
`label` unless the options name others; images are read as their encoded bytes and
decoded in the loader workers (`distill.data.decode`), as files are.

`datasets` runs offline (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE) and runs no code of the
folder's: a folder with a loading script (a top-level `*.py`) is refused before
`load_dataset` sees it, and so is a dataset card (README.md, .huggingface.yaml) whose
`configs` name files outside the folder or a URL; anything `datasets` raises is one line
naming the folder. An image given as a file's path, not its bytes, must be a file inside
the folder (`HFDataset._inside`): a dataset saved with its images as paths to elsewhere is
refused, naming the row.

The rows are read as a stream (`distill.data.stream`) in blocks of `block` rows, the
block order drawn per epoch: every row once per epoch over processes and workers, each
worker reading its own stretch of blocks. A row's index is its key: its augmentation is
drawn from (seed, epoch, row), and a logit cache built over the dataset finds its rows by
row. Needs the `datasets` package (`pip install 'deit-distill[hf]'`).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from distill.errors import UsageError, few, first_line
from distill.readers import inside, read_text
from distill.registry import DATASETS

from .decode import load_image
from .errors import DataError
from .stream import DEFAULT_STREAMS, DEFAULT_WINDOW

__all__ = ["HFDataset", "hf"]

DICT_FILE = "dataset_dict.json"
CARD, CARD_YAML = "README.md", ".huggingface.yaml"  # where load_dataset reads `configs`
MAX_CARD_BYTES = 4 << 20


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise UsageError("data.name: 'hf' reads Hugging Face datasets with the `datasets` "
                         "package, which is not installed: pip install 'deit-distill[hf]'"
                         ) from None
    return datasets


@contextlib.contextmanager
def _offline(datasets: Any) -> Iterator[None]:
    """`datasets` and `huggingface_hub` in offline mode (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE)
    for the call: nothing is fetched, whatever the folder names. Both read the variables
    when imported, so their flags are set too, and everything is put back afterwards."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    saved_env = {name: os.environ.get(name) for name in names}
    flags = [(datasets.config, name) for name in names if hasattr(datasets.config, name)]
    try:
        import huggingface_hub.constants as hub

        flags.append((hub, "HF_HUB_OFFLINE"))
    except ImportError:  # pragma: no cover - datasets depends on it
        pass
    saved = [(owner, name, getattr(owner, name)) for owner, name in flags]
    try:
        os.environ.update({name: "1" for name in names})
        for owner, name in flags:
            setattr(owner, name, True)
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _card_configs(root: Path) -> list[tuple[Path, Any]]:
    """The `configs` a folder's dataset card gives `load_dataset` (the YAML front matter of
    its README.md, and .huggingface.yaml), each with its file."""
    import yaml

    found = []
    for name in (CARD, CARD_YAML):
        path = root / name
        if not path.is_file():
            continue
        text = read_text(path, "dataset card", MAX_CARD_BYTES)
        if name == CARD:
            lines = text.splitlines()
            if not lines or lines[0].strip() != "---":
                continue
            end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
            text = "\n".join(lines[1:end]) if end is not None else ""
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise DataError(f"{path}: its YAML cannot be read ({first_line(exc)})") from None
        if isinstance(doc, dict) and doc.get("configs") is not None:
            found.append((path, doc["configs"]))
    return found


def _check_card(root: Path) -> None:
    """Refuse a dataset card whose `configs` point `load_dataset` at files outside `root`
    (`data_files`, `data_dir`: an absolute path, `..`, a link leading out) or at a URL: one
    line naming the card, the field and the entry."""
    for path, configs in _card_configs(root):
        if not isinstance(configs, list):
            raise DataError(f"{path}: configs is not a list of configurations")
        for i, entry in enumerate(configs):
            if not isinstance(entry, dict):
                raise DataError(f"{path}: configs[{i}] is not a configuration (a mapping)")
            base = entry.get("data_dir") or ""
            if base:
                _local(root, base, path, f"configs[{i}].data_dir")
            files = entry.get("data_files")
            items = files if isinstance(files, list) else [] if files is None else [files]
            for item in items:
                paths = item.get("path") if isinstance(item, dict) else item
                for one in paths if isinstance(paths, list) else [paths]:
                    where = f"configs[{i}].data_files"
                    if not isinstance(one, str):
                        raise DataError(f"{path}: {where} holds {one!r}, not a file pattern")
                    _local(root, f"{base.rstrip('/')}/{one}" if base else one, path, where)


def _local(root: Path, entry: str, source: Path, field: str) -> None:
    """A path a dataset card names: a URL is refused (nothing is fetched), a path must stay
    inside `root` (`readers.inside`)."""
    if not isinstance(entry, str) or "://" in entry or "::" in entry or \
            entry.split("/", 1)[0].endswith(":"):
        raise DataError(f"{source}: {field} '{entry}' is not a path inside the folder (a URL?); "
                        "data.name: hf reads local files only, nothing is fetched")
    inside(root, entry, source, field)


def _load(root: Path, cache_dir: str | None = None) -> Any:
    """The DatasetDict at `root` (saved with save_to_disk, or read by load_dataset, whose
    Arrow cache goes to `cache_dir`, default `datasets`' own), offline. A folder with a
    loading script (a top-level `*.py`) is refused before `load_dataset` sees it (no code of
    a dataset runs), and so is a dataset card pointing outside the folder (`_check_card`);
    any failure of `datasets` is one line naming the folder."""
    datasets = _datasets()
    if not root.is_dir():
        raise DataError(f"data.root: '{root}' is not a folder (data.name: hf reads a dataset "
                        "from disk: a DatasetDict saved with save_to_disk, or a folder that "
                        "datasets.load_dataset reads; nothing is downloaded)")
    if (root / DICT_FILE).is_file():
        read: Callable[[], Any] = partial(datasets.load_from_disk, str(root))
    elif (root / "state.json").is_file():
        raise DataError(f"{root}: a single Dataset saved with save_to_disk; data.name: hf "
                        "reads a DatasetDict (splits train and validation): save one")
    else:
        scripts = sorted(p.name for p in root.glob("*.py"))
        if scripts:
            raise DataError(f"{root / scripts[0]}: a dataset loading script; data.name: hf runs "
                            "no code a dataset folder holds: convert the dataset to data files "
                            "(parquet, an image folder) or save it with save_to_disk")
        _check_card(root)
        kwargs: dict[str, Any] = {"cache_dir": cache_dir}
        if "trust_remote_code" in inspect.signature(datasets.load_dataset).parameters:
            kwargs["trust_remote_code"] = False  # datasets 3.x; 4 and later run no scripts
        read = partial(datasets.load_dataset, str(root), **kwargs)
    try:
        with _offline(datasets):
            return read()
    except DataError:
        raise
    except Exception as exc:  # whatever datasets raises: one line naming the folder
        raise DataError(f"{root}: cannot read it as a Hugging Face dataset "
                        f"({first_line(exc)})") from None


class HFDataset(Dataset):
    """One split of a Hugging Face dataset: `(PIL image in mode, label)` by row, its rows
    in blocks (`shard_lengths`) for the stream sampler, `image_file(row)` (the encoded
    bytes and the label) for the tensor pipeline."""

    def __init__(self, table: Any, where: str, image: str, label: str, mode: str,
                 num_classes: int | None, block: int, shuffle_buffer: int,
                 root: Path | None = None, streams: int = DEFAULT_STREAMS):
        datasets = _datasets()
        self.where, self.image_column, self.label_column, self.mode = where, image, label, mode
        self.root = Path(root) if root is not None else None
        self._real_root = os.path.realpath(self.root) if self.root is not None else None
        self.cache_files = [f["filename"] for f in getattr(table, "cache_files", [])]
        feature = table.features[label]
        names = getattr(feature, "names", None)
        self.classes = tuple(names) if names else None
        self.num_classes = len(names) if names else num_classes
        self.label_limit = num_classes
        if isinstance(table.features[image], datasets.Image):
            table = table.cast_column(image, datasets.Image(decode=False))
        self.table = table.select_columns([image, label])
        # `datasets`' fingerprint of the two columns read (it follows the cast and the
        # selection): another image column of the same rows is another fingerprint
        self.fingerprint_base = getattr(self.table, "_fingerprint", None)
        self.in_chans = 1 if mode == "L" else 3
        n = len(self.table)
        self.shard_lengths = [min(block, n - s) for s in range(0, n, block)]
        self.shuffle_buffer = shuffle_buffer
        self.streams = streams

    def __len__(self) -> int:
        return len(self.table)

    def _name(self, index: int) -> str:
        return f"{self.where}: row {index}"

    def image_file(self, index: int) -> tuple[Any, int, str]:
        """Row `index`'s encoded image (its bytes, or an image file's path), its label, and
        the name errors give it: what the tensor pipeline decodes, as it does files."""
        row = self.table[index]
        value, label = row[self.image_column], row[self.label_column]
        name = self._name(index)
        if isinstance(value, dict) and value.get("bytes") is not None:
            source: Any = value["bytes"]
        elif isinstance(value, dict) and value.get("path"):
            source = name = self._inside(value["path"], name)
        elif isinstance(value, (bytes, bytearray)):
            source = bytes(value)
        else:
            raise DataError(f"{name}: column '{self.image_column}' holds no image "
                            f"({type(value).__name__})")
        if not isinstance(label, (int, np.integer)) or isinstance(label, bool):
            raise DataError(f"{name}: column '{self.label_column}' holds {label!r}, not a class "
                            "number")
        n = self.label_limit
        if label < 0 or (n is not None and label >= n):
            raise DataError(f"{name}: label {label} is outside 0..{n - 1} (data.num_classes: {n})"
                            if n else f"{name}: label {label} is negative")
        return source, int(label), name

    def _inside(self, path: Any, name: str) -> str:
        """An image given as a file's path (not its bytes), kept inside the dataset's
        folder: a relative path is read from the folder (`readers.inside`: no `..`, no link
        leading out), an absolute one (what `load_dataset` of a folder records) must lead
        into it; anything else is refused, naming the row and the path."""
        if self.root is None:
            return str(path)
        field = f"column '{self.image_column}' path"
        if isinstance(path, str) and os.path.isabs(path):
            real = os.path.realpath(path)
            if os.path.commonpath([self._real_root, real]) != self._real_root:
                raise DataError(f"{name}: {field} '{path}' is outside the dataset's folder; "
                                f"refused (an image a dataset names by its path must be inside "
                                f"'{self.root}': save the dataset with its images' bytes)")
            return path
        try:
            return str(inside(self.root, path, name, field))
        except DataError:
            raise
        except UsageError as exc:  # one line from a loader worker too (see `DataError`)
            raise DataError(*exc.lines) from None

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        source, label, name = self.image_file(index)
        return load_image(source, self.mode, name=name), label

    def fingerprint(self) -> dict[str, str]:
        """Hashes of the label column and of the data: `datasets`' own fingerprint of the
        two columns read (taken after they are selected), their names, its Arrow files'
        names and sizes (the rows' order and content)."""
        labels = np.asarray(self.table.data.column(self.label_column).to_numpy(), np.int64)
        content = hashlib.sha256(f"{self.fingerprint_base}|{len(self)}|image={self.image_column}"
                                 f"|label={self.label_column}\n".encode())
        for file in self.cache_files:
            path = Path(file)
            size = path.stat().st_size if path.exists() else -1
            content.update(f"{path.name}|{size}\n".encode())
        return {"labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest(),
                "content_sha256": content.hexdigest()}


@DATASETS.register(default_root=None)
def hf(split: Literal["train", "val"], root: Path | None = None, num_classes: int | None = None,
       in_chans: int = 3, train: str = "train", val: str = "validation", image: str = "image",
       label: str = "label", block: int = 1024, shuffle_buffer: int = DEFAULT_WINDOW,
       streams: int = DEFAULT_STREAMS, cache_dir: str | None = None) -> HFDataset:
    """A Hugging Face DatasetDict on disk (`save_to_disk`, or a folder `load_dataset` reads).

    `train`, `val`: its split names; `image`, `label`: its columns;
    `block`: rows read together (the stream's shards); `shuffle_buffer`: rows shuffled
    together in a stretch; `streams`: the stretches an epoch of each process is planned
    in, whatever the loader workers; `cache_dir`: where `load_dataset` keeps the Arrow
    cache of a folder it reads (default: `datasets`' own, `HF_DATASETS_CACHE`)."""
    if root is None:
        raise DataError("data.root: dataset 'hf' needs the folder of a dataset on disk")
    for key, value in (("block", block), ("shuffle_buffer", shuffle_buffer),
                       ("streams", streams)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise DataError(f"data.options.{key}: expected a count of rows ≥ 1, got {value!r}")
    root = Path(root)
    dd = _load(root, cache_dir)
    name = train if split == "train" else val
    if name not in dd:
        raise DataError(f"{root}: no split '{name}' (it has {few(sorted(dd))}); name one with "
                        f"data.options.{'train' if split == 'train' else 'val'}")
    table = dd[name]
    for key, column in (("image", image), ("label", label)):
        if column not in table.column_names:
            raise DataError(f"data.options.{key}: no column '{column}' in {root} ({name}: "
                            f"{few(table.column_names, 6)})")
    if len(table) == 0:
        raise DataError(f"{root}: split '{name}' has no rows")
    return HFDataset(table, f"{root} ({name})", image, label, "L" if in_chans == 1 else "RGB",
                     num_classes, block, shuffle_buffer, root, streams)
