"""`data.name: webdataset`: tar shards in WebDataset's layout, read as a stream.

    data:
      name: webdataset
      root: shards/                       # a folder with _info.json, or a brace pattern:
      # root: shards/train-{000000..000099}.tar
      options: {train: train, val: validation, shuffle_buffer: 1024, streams: 8}

The splits are `_info.json`'s (timm's names: `train`, `validation`), or brace patterns of
shard files (relative to the shard set's folder); their sample counts come from
`_info.json` (`distill data pack` writes one; `distill data check DIR --write-info` counts
a set made elsewhere once and records them). The samples are numbered shard after shard;
the loader reads them as a stream (`distill.data.stream`): every sample once per epoch,
over processes and workers (`streams` stretches per process, whatever the workers), each
worker reading its stretches front to back.
A sample's augmentation is drawn from (seed, epoch, its key), and a logit cache built over
shards finds its rows by sample.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from torch.utils.data import Dataset

from distill.registry import DATASETS

from .decode import load_image
from .errors import DataError
from .shards import (
    ShardSplit,
    SplitReader,
    expand_braces,
    open_split,
    parse_label,
    shard_digest,
)
from .stream import DEFAULT_STREAMS, DEFAULT_WINDOW, StreamReads, StreamSampler

__all__ = ["ShardDataset", "check_root", "webdataset"]


class ShardDataset(Dataset):
    """A split of tar shards: `(PIL image in mode, label)` by sample number (shard after
    shard), `shard_lengths` for the stream sampler, `sample_id(index)` (the key) for the
    replay of its augmentation. Each process opens the shards itself."""

    def __init__(self, split: ShardSplit, mode: str, num_classes: int | None,
                 shuffle_buffer: int = DEFAULT_WINDOW, streams: int = DEFAULT_STREAMS):
        self.split, self.mode = split, mode
        self.label_limit = num_classes  # labels are checked against the recipe's classes
        self.num_classes = split.num_classes if split.num_classes is not None else num_classes
        self.classes = split.classes
        self.in_chans = 1 if mode == "L" else 3
        self.shard_lengths = split.lengths
        self.shuffle_buffer = shuffle_buffer
        self.streams = streams
        self._reads: StreamReads | None = None  # the training plan, for the reads ahead
        self._reader: SplitReader | None = None
        self._pid = -1

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_reader": None, "_pid": -1}

    def __len__(self) -> int:
        return sum(self.shard_lengths)

    def reader(self) -> SplitReader:
        """This process's reader (a loader worker opens its own files)."""
        if self._reader is None or self._pid != os.getpid():
            keep = self._reads.open_shards() if self._reads is not None else 4
            self._reader = SplitReader(self.split, keep=max(4, keep))
            self._pid = os.getpid()
        return self._reader

    def plan_reads(self, sampler: StreamSampler) -> None:
        """Read by `sampler`'s plan (the training loader's): each loader worker reads ahead
        the samples of its next batches, and only those (`StreamReads`)."""
        self._reads = StreamReads(sampler)

    def reading(self, epoch: int, indices: list[int]) -> None:
        """The batch `indices` of `epoch` is read next (`ReplayDataset` says so): what the
        reader may read ahead, this batch and the worker's next ones of the plan."""
        upcoming = indices if self._reads is None else self._reads.upcoming(epoch, indices)
        self.reader().expect(upcoming)

    def image_file(self, index: int) -> tuple[bytes, int, str]:
        """Sample `index`'s encoded image, its label, and the name errors give it
        (`<shard>: sample '<key>'`): what the tensor pipeline decodes, crops and resizes in
        the worker, as it does an image file."""
        reader = self.reader()
        key, image, _, label = reader.raw(index)
        path = reader.split.shards[reader.locate(index)[0]].path
        return image, parse_label(label, key, path, self.label_limit), f"{path}: sample '{key}'"

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        image, label, name = self.image_file(index)
        return load_image(image, self.mode, name=name), label

    def sample_id(self, index: int) -> str:
        """Sample `index`'s key: what its augmentation is drawn from."""
        return self.reader().key(index)

    def fingerprint(self) -> dict[str, str]:
        """Hashes of the keys, the labels and the contents, shard by shard: what
        `_info.json` records for each (`distill data pack` does), else computed by reading
        every shard once (a set without them: record them with `distill data check
        --write-info`). The contents are the shards' sha256 and their sizes on disk."""
        keys, labels, content = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
        for shard in self.split.shards:
            if None in (shard.sha256, shard.keys_sha256, shard.labels_sha256):
                digest = shard_digest(shard, self.label_limit)
                sha, k, lab = digest.sha256, digest.keys_sha256, digest.labels_sha256
            else:
                sha, k, lab = shard.sha256, shard.keys_sha256, shard.labels_sha256
            try:
                size = shard.path.stat().st_size
            except OSError as exc:
                raise DataError(f"{shard.path}: cannot read the shard ({exc.strerror or exc})"
                                ) from None
            keys.update(f"{shard.length}|{k}\n".encode())
            labels.update(f"{shard.length}|{lab}\n".encode())
            content.update(f"{shard.length}|{sha}|{size}\n".encode())
        return {"labels_sha256": labels.hexdigest(), "content_sha256": content.hexdigest(),
                "keys_sha256": keys.hexdigest()}


def check_root(root: Path) -> str | None:
    """What `check_paths` says of a `data.root` that cannot be read (None: fine): a
    brace pattern that matches no file, a folder that is not there."""
    text = str(root)
    if "{" in text or text.endswith(".tar"):
        folder = Path(text).parent
        names = expand_braces(Path(text).name)
        if not any((folder / n).is_file() for n in names):
            return f"data.root: '{text}' matches no file ({len(names)} name(s) tried)"
        return None
    if not Path(text).is_dir():
        return f"data.root: folder not found (got '{text}')"
    return None


@DATASETS.register(root_check=check_root)
def webdataset(split: Literal["train", "val"], root: Path | None = None,
               num_classes: int | None = None, in_chans: int = 3, train: str = "train",
               val: str = "validation", info: str | None = None,
               shuffle_buffer: int = DEFAULT_WINDOW,
               streams: int = DEFAULT_STREAMS) -> ShardDataset:
    """Tar shards in WebDataset's layout (`KEY.jpg` + `KEY.cls`), counted by `_info.json`.

    `root`: the shard set's folder, or a brace pattern of the training shards. `train`,
    `val`: split names of `_info.json`, or brace patterns relative to its folder. `info`:
    an `_info.json` kept elsewhere. `shuffle_buffer`: samples shuffled together in a
    stretch (what is read ahead in it, at most); `streams`: the stretches an epoch of each
    process is planned in, whatever the loader workers (best a multiple of them)."""
    if root is None:
        raise DataError("data.root: dataset 'webdataset' needs the shard set's folder or a "
                        "brace pattern of its shards")
    for key, value in (("shuffle_buffer", shuffle_buffer), ("streams", streams)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise DataError(f"data.options.{key}: expected a count ≥ 1, got {value!r}")
    name = train if split == "train" else val
    pattern_root = "{" in str(root) or str(root).endswith(".tar")
    if pattern_root and split == "train":
        chosen = open_split(root, "train", info)
    elif pattern_root:
        chosen = open_split(Path(str(root)).parent, name, info)
    else:
        chosen = open_split(root, name, info)
    return ShardDataset(chosen, "L" if in_chans == 1 else "RGB", num_classes, shuffle_buffer,
                        streams)
