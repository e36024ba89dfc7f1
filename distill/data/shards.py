"""WebDataset tar shards: the shard set (`_info.json`, brace patterns) and reading samples.

A shard is a tar file whose members are grouped into samples by key, as WebDataset groups
them: `n01440764/n01440764_10026.jpg` and `n01440764/n01440764_10026.cls` are the image
and the label (decimal text) of sample `n01440764/n01440764_10026` (the key is the member
name up to the first dot of its file name). A shard set is a folder of such shards and an
`_info.json` that counts them, in the layout timm's WebDataset reader reads:

    {"name": ..., "splits": {"train": {"name": "train", "num_samples": N,
        "filenames": ["train-000000.tar", ...], "shard_lengths": [1000, ...]}, ...}}

`distill data pack` adds, per shard, its `shard_sha256`, `shard_bytes`, `keys_sha256` and
`labels_sha256` (timm ignores them), and `classes`. Every file name an `_info.json` lists
must stay inside the shard set's folder (`distill.readers.inside`); a split names each shard
once (a file named twice, by the list, a brace pattern or a link, would be read twice per
epoch), and counts no more samples in a shard than its size holds (two tar blocks each).

Reading: the tar headers are parsed here (strictly: a header whose checksum fails, or a
file that ends inside a header or a member, is an error naming the shard and the last
sample key read), so a sample is found by its number in the shard without reading the
members before it. Each process learns a shard's table of samples as it reads. A loader
worker is told which samples it will be asked for next (`SplitReader.expect`: its batch,
and its next batches of the stream's plan), and reads ahead only those, in file order,
keeping each until it is asked for: a worker reading a stretch of a shard in a shuffled
order reads the file front to back, and never a sample another worker reads.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distill.checkpoint import file_sha256
from distill.errors import UsageError
from distill.readers import inside, read_json

from .errors import DataError

__all__ = ["IMAGE_EXTS", "INFO", "LABEL_EXT", "Shard", "ShardDigest",
           "ShardFile", "ShardSplit", "SplitReader", "expand_braces", "key_of", "load_info",
           "open_split", "parse_label", "sample_id64", "shard_digest",
           "split_of_name"]

INFO = "_info.json"
LABEL_EXT = "cls"
# The members that can hold a sample's image, in the order they are looked for.
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "ppm", "bmp", "pgm", "tif", "tiff")
BLOCK = 512
MAX_MEMBER = 1 << 31  # a member larger than 2 GB is no image: a damaged header
MIN_SAMPLE = 2 * BLOCK  # the least a sample takes in a tar: the headers of its two members


def sample_id64(key: str) -> int:
    """A sample key as a stable 63-bit integer (what the tensor pipeline's draws take)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") >> 1


def key_of(name: str) -> tuple[str, str]:
    """A member name as (key, extension), as WebDataset splits it: the key is the name up
    to the first dot of its last part; the extension, lowercased, the rest."""
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), (ext.lower() if dot else "")


# -- brace patterns and _info.json -------------------------------------------------------
_BRACE = re.compile(r"\{([^{}]*)\}")


def expand_braces(pattern: str) -> list[str]:
    """`train-{000000..000099}.tar` (a numeric range, zero-padded as written) and
    `{a,b}` (alternatives), any number of groups, left to right."""
    found = _BRACE.search(pattern)
    if found is None:
        return [pattern]
    body = found.group(1)
    span = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    if span:
        lo, hi = span.groups()
        width = len(lo) if lo.startswith("0") else 0
        if int(hi) < int(lo):
            raise UsageError(f"data.root: the range {{{body}}} of '{pattern}' runs backwards")
        if int(hi) - int(lo) >= 10_000_000:
            raise UsageError(f"data.root: the range {{{body}}} of '{pattern}' is too long")
        parts = [str(i).zfill(width) for i in range(int(lo), int(hi) + 1)]
    else:
        parts = body.split(",")
    head, tail = pattern[:found.start()], pattern[found.end():]
    return [name for part in parts for name in expand_braces(head + part + tail)]


def split_of_name(name: str) -> str:
    """The split a shard's file name belongs to: `train-000012.tar` -> `train`."""
    base = Path(name).name
    found = re.fullmatch(r"(.+?)[-_]?\d+\.tar", base)
    return found.group(1) if found else Path(base).stem


def load_info(path: Path, folder: Path) -> dict[str, Any]:
    """An `_info.json` as timm writes it, checked: `splits` of `filenames` (each inside
    `folder`) and as many `shard_lengths`; one line naming the file and the field otherwise."""
    doc = read_json(path, "shard set's _info.json")
    if not isinstance(doc, dict) or not isinstance(doc.get("splits"), dict):
        raise DataError(f"{path}: no 'splits' (an _info.json as timm's WebDataset reader reads "
                        "it: splits -> name, num_samples, filenames, shard_lengths)")
    for name, split in doc["splits"].items():
        where = f"splits.{name}"
        if not isinstance(split, dict):
            raise DataError(f"{path}: {where} is not an object")
        files, lengths = split.get("filenames"), split.get("shard_lengths")
        if not isinstance(files, list) or not isinstance(lengths, list):
            raise DataError(f"{path}: {where} needs 'filenames' and 'shard_lengths' lists")
        if len(files) != len(lengths):
            raise DataError(f"{path}: {where} lists {len(files)} filenames but "
                            f"{len(lengths)} shard_lengths")
        for i, n in enumerate(lengths):
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise DataError(f"{path}: {where}.shard_lengths[{i}] is {n!r}, not a count")
        seen: dict[str, int] = {}
        for i, entry in enumerate(files):
            inside(folder, entry, path, f"{where}.filenames[{i}]")
            first = seen.setdefault(os.path.normpath(entry), i)
            if first != i:
                raise DataError(f"{path}: {where}.filenames[{i}] '{entry}' is the shard of "
                                f"filenames[{first}] again: its samples would be read twice per "
                                "epoch; list each shard once")
        for extra in ("shard_sha256", "shard_bytes", "keys_sha256", "labels_sha256"):
            values = split.get(extra)
            if values is not None and (not isinstance(values, list) or len(values) != len(files)):
                raise DataError(f"{path}: {where}.{extra} does not list one value per shard")
        total = split.get("num_samples")
        if total is not None and total != sum(lengths):
            raise DataError(f"{path}: {where}.num_samples is {total} but its shard_lengths sum "
                            f"to {sum(lengths)}")
    return doc


@dataclass(frozen=True)
class Shard:
    """One shard of a split: its file, its sample count and what `_info.json` records."""

    path: Path
    name: str  # as `_info.json` lists it (relative to the shard set's folder)
    length: int
    sha256: str | None = None
    bytes: int | None = None
    keys_sha256: str | None = None
    labels_sha256: str | None = None


@dataclass
class ShardSplit:
    """A split's shards, in their order (the order of `_info.json`, or of the pattern)."""

    source: str  # what the recipe wrote: a folder, a split name or a brace pattern
    folder: Path
    info: Path
    shards: list[Shard]
    classes: tuple[str, ...] | None = None
    num_classes: int | None = None

    @property
    def lengths(self) -> list[int]:
        return [s.length for s in self.shards]


def _info_path(folder: Path, info: str | Path | None, source: str) -> Path:
    path = Path(info) if info is not None else folder / INFO
    if not path.is_file():
        given = "data.options.info" if info is not None else f"'{folder}'"
        raise DataError(f"{path}: no _info.json ({given}): the sample count of each shard is "
                        f"not known for '{source}'; count them once with `distill data check "
                        f"{folder} --write-info`, or name an _info.json with data.options.info")
    return path


def open_split(root: str | Path, split: str, info: str | Path | None = None) -> ShardSplit:
    """The shards of `split` under `root`. `root`: a folder (its `_info.json`), or a brace
    pattern of shard files (their counts from the `_info.json` of their folder). `split`:
    a split name of that `_info.json`, or a brace pattern relative to the folder."""
    root_text = str(root)
    pattern_root = "{" in root_text or root_text.endswith(".tar")
    folder = Path(root_text).parent if pattern_root else Path(root_text)
    if not pattern_root and not folder.is_dir():
        raise DataError(f"data.root: '{root_text}' is neither a folder nor a brace pattern of "
                        "tar shards")
    pattern = root_text if pattern_root else (
        split if ("{" in split or split.endswith(".tar")) else None)
    info_file = _info_path(folder, info, pattern or root_text)
    doc = load_info(info_file, folder)
    classes = doc.get("classes")
    classes = tuple(map(str, classes)) if isinstance(classes, list) else None
    n_cls = doc.get("num_classes", len(classes) if classes else None)
    n_cls = n_cls if isinstance(n_cls, int) and not isinstance(n_cls, bool) else None
    listed: dict[str, Shard] = {}
    by_split: dict[str, list[Shard]] = {}
    for name, entry in doc["splits"].items():
        def pick(field: str, i: int, entry: dict[str, Any] = entry) -> Any:
            values = entry.get(field)
            return values[i] if values is not None else None

        rows = [Shard(folder / file, file, n, pick("shard_sha256", i), pick("shard_bytes", i),
                      pick("keys_sha256", i), pick("labels_sha256", i))
                for i, (file, n) in enumerate(zip(entry["filenames"], entry["shard_lengths"]))]
        by_split[name] = rows
        listed.update({s.name: s for s in rows})
    if pattern is None:
        if split not in by_split:
            raise DataError(f"{info_file}: no split '{split}' (it has "
                            f"{', '.join(sorted(by_split)) or 'none'}); name another, or a "
                            "brace pattern of shard files")
        shards = by_split[split]
    else:
        names = expand_braces(Path(pattern).name if pattern_root else pattern)
        found = [n for n in names if (folder / n).is_file()]
        if not found:
            raise DataError(f"data.root: '{folder / (Path(pattern).name if pattern_root else pattern)}'"
                            f" matches no file ({len(names)} name(s) tried, from "
                            f"'{names[0]}')")
        missing = [n for n in names if n not in found]
        if missing:
            raise DataError(f"{folder / missing[0]}: no such shard ({len(missing)} of the "
                            f"{len(names)} files of '{pattern}' are missing)")
        unknown = [n for n in names if n not in listed]
        if unknown:
            raise DataError(f"{folder / unknown[0]}: not listed in {info_file}: its sample "
                            f"count is not known; count the shards once with `distill data "
                            f"check {folder} --write-info`")
        shards = [listed[n] for n in names]
    files: dict[str, str] = {}  # each shard's file (links resolved): one name per file
    for shard in shards:
        inside(folder, shard.name, info_file, "filenames")
        if not shard.path.is_file():
            raise DataError(f"{shard.path}: no such shard ({info_file} lists it)")
        real = os.path.realpath(shard.path)
        if real in files:
            named = (f"data.root: '{pattern}'" if pattern is not None
                     else f"{info_file}: split '{split}'")
            raise DataError(f"{named} names the shard '{files[real]}' twice (again as "
                            f"'{shard.name}'): its samples would be read twice per epoch; name "
                            "each shard once")
        files[real] = shard.name
        size = shard.path.stat().st_size
        if shard.length > size // MIN_SAMPLE:  # it cannot hold them: truncated, or miscounted
            f = ShardFile(shard)
            try:
                found = f.count()  # a truncated or damaged tar: named, with its last key
            finally:
                f.close()
            raise DataError(f"{info_file}: the shard '{shard.name}' is counted as "
                            f"{shard.length} samples, but its {size} bytes hold {found} (a "
                            "sample is at least two tar blocks, its image and its label); "
                            "count it again with `distill data check --write-info`")
    if not shards or not sum(s.length for s in shards):
        raise DataError(f"{info_file}: split '{split}' holds no samples")
    return ShardSplit(pattern or split, folder, info_file, shards, classes, n_cls)


# -- the tar format ----------------------------------------------------------------------
def _octal(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256 for large values
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def _pax(data: bytes) -> dict[str, str]:
    """A PAX extended header's records, `"LENGTH KEY=VALUE\n"` each, LENGTH counting the
    whole record. A record whose length is not a count that holds its own length field and
    ends at its newline inside the header (0, negative, past the end: a damaged header) is a
    ValueError saying so, never a loop."""
    out, i = {}, 0
    while i < len(data) and data[i:].strip(b"\0"):  # NUL padding after the last record
        space = data.find(b" ", i, i + 21)
        field = data[i:space] if space > i else b""
        length = int(field) if field.isdigit() else -1
        end = i + length
        if end <= space + 1 or end > len(data) or data[end - 1:end] != b"\n":
            key = data[space + 1:space + 41].split(b"=", 1)[0].split(b"\n", 1)[0]
            shown = field[:20].decode("ascii", "replace")
            raise ValueError(f"a PAX record of key '{key.decode('utf-8', 'replace')}' gives "
                             f"its length as '{shown}', not a count that ends at its newline "
                             f"within the {len(data) - i} bytes left")
        key, _, value = data[space + 1:end - 1].partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        i = end
    return out


@dataclass
class Member:
    name: str
    offset: int  # of its data
    size: int


class _Tar:
    """Members of one tar file, parsed from its headers (data skipped, not read)."""

    def __init__(self, path: Path, fh: Any, size: int):
        self.path, self.fh, self.size = path, fh, size
        self.next = 0  # offset of the next header
        self.ended = False

    def _problem(self, what: str, after: str | None) -> DataError:
        where = f"after sample '{after}'" if after else "at its start"
        return DataError(f"{self.path}: {what} {where}: a truncated or damaged tar; "
                         "replace the shard")

    def member(self, after: str | None) -> Member | None:
        """The next regular file, or None at the end of the archive. `after`: the last
        sample key read (for messages)."""
        long_name: str | None = None
        pax: dict[str, str] = {}
        while True:
            if self.next == self.size:
                raise self._problem("the file ends without the tar's end marker", after)
            self.fh.seek(self.next)
            head = self.fh.read(BLOCK)
            if len(head) < BLOCK:
                raise self._problem(f"the file ends inside a header (byte {self.size})", after)
            if head.count(0) == BLOCK:
                self.ended = True
                return None
            try:
                if _octal(head[148:156]) != sum(head) - sum(head[148:156]) + 8 * 32:
                    raise ValueError("checksum")
                size = int(pax.get("size", _octal(head[124:136])))
            except ValueError:
                raise self._problem(f"a damaged tar header at byte {self.next}", after) from None
            kind, data = head[156:157], self.next + BLOCK
            name = pax.get("path") or long_name
            if name is None:
                name = head[0:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                if head[257:263] == b"ustar\0":
                    prefix = head[345:500].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                    name = f"{prefix}/{name}" if prefix else name
            if size < 0 or size > MAX_MEMBER:
                raise self._problem(f"a damaged tar header at byte {self.next}", after)
            if data + size > self.size:
                raise DataError(f"{self.path}: the file ends inside member '{name}' of sample "
                                f"'{key_of(name)[0]}' (at byte {self.size}; the member needs "
                                f"{data + size}): a truncated tar; replace the shard")
            self.next = data + (size + BLOCK - 1) // BLOCK * BLOCK
            if kind in (b"x", b"g", b"L"):
                self.fh.seek(data)
                body = self.fh.read(size)
                try:
                    if kind == b"x":
                        pax = _pax(body)
                    elif kind == b"L":
                        long_name = body.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                except (ValueError, IndexError) as exc:
                    raise self._problem(f"a damaged tar header at byte {data - BLOCK} ({exc})",
                                        after) from None
                continue
            if kind not in (b"0", b"\0", b"7"):  # folders, links: not samples
                long_name, pax = None, {}
                continue
            return Member(name, data, size)


@dataclass
class Sample:
    key: str
    members: dict[str, Member] = field(default_factory=dict)


class ShardFile:
    """One shard opened in one process: its samples by number, learned from the headers as
    far as they have been read."""

    def __init__(self, shard: Shard):
        self.shard = shard
        self.path = shard.path
        try:
            self.fh = open(self.path, "rb")  # noqa: SIM115 - closed by close()
            self.size = os.fstat(self.fh.fileno()).st_size
        except OSError as exc:
            raise DataError(f"{self.path}: cannot read the shard ({exc.strerror or exc})"
                            ) from None
        self.tar = _Tar(self.path, self.fh, self.size)
        self.samples: list[Sample] = []
        self._open: Sample | None = None  # the sample whose members are being read

    def close(self) -> None:
        self.fh.close()

    def _last_key(self) -> str | None:
        return self.samples[-1].key if self.samples else None

    def _learn(self) -> bool:
        """Read headers until one more sample is complete; False at the end of the tar."""
        while True:
            if self.tar.ended:
                if self._open is not None:
                    self.samples.append(self._open)
                    self._open = None
                    return True
                return False
            after = self._open.key if self._open is not None else self._last_key()
            member = self.tar.member(after)
            if member is None:
                continue
            key, ext = key_of(member.name)
            if self._open is not None and key != self._open.key:
                done, self._open = self._open, Sample(key, {ext: member})
                self.samples.append(done)
                return True
            if self._open is None:
                self._open = Sample(key, {})
            self._open.members.setdefault(ext, member)

    def sample(self, m: int) -> Sample:
        """Sample number `m` of the shard (its headers read as far as needed)."""
        while len(self.samples) <= m:
            if not self._learn():
                raise DataError(f"{self.path}: holds {len(self.samples)} samples, but its "
                                f"_info.json counts {self.shard.length} (the tar ends after "
                                f"sample '{self._last_key()}'): truncated? replace the shard, "
                                "or count it again with `distill data check --write-info`")
        return self.samples[m]

    def read(self, member: Member) -> bytes:
        self.fh.seek(member.offset)
        data = self.fh.read(member.size)
        if len(data) != member.size:
            raise DataError(f"{self.path}: the file ends inside member '{member.name}': "
                            "truncated; replace the shard")
        return data

    def parts(self, m: int) -> tuple[str, Member, str, Member]:
        """Sample `m`'s key, image member, image extension and label member (nothing read),
        each problem one line naming the shard and the key."""
        s = self.sample(m)
        image = next((e for e in IMAGE_EXTS if e in s.members), None)
        if image is None:
            has = ", ".join(f".{e}" for e in s.members) or "no member"
            raise DataError(f"{self.path}: sample '{s.key}' has no image (.jpg, .png, .webp, …; "
                            f"it has {has})")
        if LABEL_EXT not in s.members:
            raise DataError(f"{self.path}: sample '{s.key}' has no label (a .{LABEL_EXT} "
                            "member holding its class number)")
        return s.key, s.members[image], image, s.members[LABEL_EXT]

    def raw(self, m: int) -> tuple[str, bytes, str, bytes]:
        """Sample `m`'s key, image bytes, image extension and label bytes (read here)."""
        key, image, ext, label = self.parts(m)
        return key, self.read(image), ext, self.read(label)

    def count(self) -> int:
        """All the shard's samples (its headers read to the end)."""
        while self._learn():
            pass
        return len(self.samples)


def parse_label(data: bytes, key: str, path: Path, num_classes: int | None) -> int:
    """A `.cls` member's class number, checked against `num_classes`."""
    text = data.decode("ascii", "replace").strip()
    try:
        label = int(text)
    except ValueError:
        shown = text[:20] + ("…" if len(text) > 20 else "")
        raise DataError(f"{path}: sample '{key}': its label (.{LABEL_EXT}) is '{shown}', not "
                        "a class number") from None
    if label < 0 or (num_classes is not None and label >= num_classes):
        allowed = f"0..{num_classes - 1} (data.num_classes: {num_classes})" if num_classes \
            else "0 or more"
        raise DataError(f"{path}: sample '{key}': label {label} is outside {allowed}")
    return label


@dataclass(frozen=True)
class ShardDigest:
    """What `_info.json` records of a shard (`distill data pack` and `check` compute it)."""

    samples: int
    sha256: str
    bytes: int
    keys_sha256: str
    labels_sha256: str


def shard_digest(shard: Shard, num_classes: int | None = None,
                 image: Callable[[bytes, str], Any] | None = None) -> ShardDigest:
    """Read a whole shard: its sha256 and size, and every sample (an image and a label in
    range, keys unique in the shard); `image(bytes, name)` is called on each image (a
    check that decodes them). Any problem is one `DataError` naming the shard and key."""
    try:
        sha = file_sha256(shard.path)
    except OSError as exc:
        raise DataError(f"{shard.path}: cannot read the shard ({exc.strerror or exc})") from None
    f = ShardFile(shard)
    keys, labels = hashlib.sha256(), hashlib.sha256()
    seen: set[str] = set()
    try:
        n = f.count()
        for m in range(n):
            key, img, _, lab = f.parts(m)
            if key in seen:
                raise DataError(f"{shard.path}: sample '{key}' appears twice in the shard (two "
                                "runs of members with one key); a sample's members go together")
            seen.add(key)
            label = parse_label(f.read(lab), key, shard.path, num_classes)
            if image is not None:
                image(f.read(img), f"{shard.path}: sample '{key}'")
            keys.update(key.encode("utf-8", "surrogateescape") + b"\n")
            labels.update(f"{label}\n".encode())
        return ShardDigest(n, sha, f.size, keys.hexdigest(), labels.hexdigest())
    finally:
        f.close()


class SplitReader:
    """A split's samples by their number in the split (shard after shard), for one process.

    Keeps up to `keep` shards open. Told what it will be asked for next (`expect`: the
    current batch, then what the plan says comes after it), it reads ahead only those
    samples: asked for a sample, it first reads, in file order, the expected samples of
    that shard before it that it has not read, and keeps each until it is asked for it. So
    a worker reading a stretch of a shard in a shuffled order reads the file front to back,
    never a sample another worker or process reads, and never one twice (a sample it is
    asked for twice, the padding of an epoch's end, is read twice)."""

    def __init__(self, split: ShardSplit, keep: int = 4):
        self.split, self.keep = split, max(1, keep)
        self.starts = [0]
        for s in split.shards:
            self.starts.append(self.starts[-1] + s.length)
        self.files: OrderedDict[int, ShardFile] = OrderedDict()
        self.ahead: dict[int, tuple[str, bytes, str, bytes]] = {}  # read, not yet asked for
        self.wanted = np.zeros(0, dtype=np.int64)  # expected, not read yet (sorted)

    def __len__(self) -> int:
        return self.starts[-1]

    def locate(self, index: int) -> tuple[int, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} is outside the split's {len(self)}")
        k = bisect.bisect_right(self.starts, index) - 1
        return k, index - self.starts[k]

    def file(self, k: int) -> ShardFile:
        f = self.files.pop(k, None)
        if f is None:
            f = ShardFile(self.split.shards[k])
            while len(self.files) >= self.keep:
                self.files.popitem(last=False)[1].close()
        self.files[k] = f
        return f

    def key(self, index: int) -> str:
        k, m = self.locate(index)
        return self.file(k).sample(m).key

    def expect(self, upcoming: Any) -> None:
        """The samples this process will be asked for next (the current batch first):
        the only ones read ahead. What was read ahead and is no longer expected (a plan
        not followed) is dropped; everything else read ahead stays until asked for."""
        want = np.unique(np.asarray(upcoming, dtype=np.int64))
        want = want[(want >= 0) & (want < len(self))]
        if self.ahead:
            keep = set(want.tolist())
            for index in [i for i in self.ahead if i not in keep]:
                del self.ahead[index]
            want = want[~np.isin(want, np.fromiter(self.ahead, np.int64, len(self.ahead)))]
        self.wanted = want

    def raw(self, index: int) -> tuple[str, bytes, str, bytes]:
        got = self.ahead.pop(index, None)
        if got is not None:
            return got
        k, m = self.locate(index)
        f = self.file(k)
        lo, at = np.searchsorted(self.wanted, [self.starts[k], index])
        before = self.wanted[lo:at].tolist()  # expected, in this shard, before it: read now
        end = at + int(at < len(self.wanted) and self.wanted[at] == index)
        self.wanted = np.concatenate([self.wanted[:lo], self.wanted[end:]])
        for j in before:
            self.ahead[j] = f.raw(j - self.starts[k])
        return f.raw(m)

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()
        self.ahead.clear()
        self.wanted = np.zeros(0, dtype=np.int64)



