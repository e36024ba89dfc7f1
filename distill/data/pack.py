"""`distill data pack` and `distill data check`: an image folder as WebDataset tar shards.

`pack_folder(folder, out)` writes the splits of an `imagefolder` tree (`train/<class>/…`,
`val/<class>/…`) as `train-000000.tar …` and `validation-000000.tar …` (timm's split
names), each sample `KEY.<ext>` (the image file's own bytes, not re-encoded; `jpeg` named
`jpg`) and `KEY.cls` (its class number as text), `KEY` the file's path in its split
without the extension (dots in the file name become `_`; a key taken already gets `_1`,
`_2`, …). The training samples are shuffled (from `seed`) before they are cut into shards
of `shard_size`, so a shard mixes the classes; the validation samples keep the folder's
order. Then `_info.json` (`distill.data.shards`): the counts timm reads, and per shard its
sha256, size, and the sha256 of its keys and of its labels.

Writes are atomic and a stopped pack resumes: each shard is written to a temporary file,
fsynced, listed as pending with its sha256 in `_pack.json`, renamed, then listed as done;
`_info.json` comes last and `_pack.json` goes. A file in the output folder that the pack
did not write (a name it does not plan, a shard whose content is not the one it recorded,
an `_info.json` of another set) is never overwritten: the pack refuses the folder, and
deletes nothing in it (a stopped pack's temporary files go only once the whole folder is
found to be the pack's).

`check_shards(root)` reads every shard an `_info.json` lists and compares it with what it
records: sha256 and size, the sample count, every sample an image and a label in range,
the keys and the labels. `write_info` counts a shard set made elsewhere (no `_info.json`)
once and records it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distill.checkpoint import atomic_write_text, file_sha256, temporary_target
from distill.errors import OptionError, UsageError, few
from distill.readers import read_json

from .decode import load_image, read_header
from .errors import DataError
from .folder import ImageFolder
from .shards import (
    INFO,
    LABEL_EXT,
    Shard,
    ShardDigest,
    load_info,
    shard_digest,
    split_of_name,
)

__all__ = ["PROGRESS", "CheckResult", "PackResult", "check_shards", "pack_folder",
           "sample_keys"]

PACK_FORMAT = "deit-distill-pack/1"
PROGRESS = "_pack.json"
TOOL = "deit-distill"
# The folder's splits and the names their shards take (timm's: train, validation).
SPLITS = (("train", "train"), ("val", "validation"))

Note = Callable[[str], None]


def sample_keys(folder: ImageFolder) -> list[str]:
    """Each sample's key: its path in the split without the extension, the file name's
    dots made `_` (a WebDataset key ends at the first dot of the name); a key taken already
    gets `_1`, `_2`, … (in the folder's order)."""
    keys, taken = [], set()
    root = Path(folder.root)
    for path, _ in folder.samples:
        rel = Path(path).relative_to(root)
        stem = rel.name.rsplit(".", 1)[0].replace(".", "_") or "_"
        key = (rel.parent / stem).as_posix()
        candidate, n = key, 0
        while candidate in taken:
            n += 1
            candidate = f"{key}_{n}"
        taken.add(candidate)
        keys.append(candidate)
    return keys


def _ext(path: str) -> str:
    ext = Path(path).suffix.lower().lstrip(".")
    return "jpg" if ext == "jpeg" else ext


@dataclass
class _Plan:
    name: str  # the shards' split name
    folder: ImageFolder
    order: list[int]
    keys: list[str]
    shard_size: int

    def shards(self) -> list[tuple[str, list[int]]]:
        n = len(self.order)
        return [(f"{self.name}-{k:06d}.tar", self.order[start:start + self.shard_size])
                for k, start in enumerate(range(0, n, self.shard_size))]


@dataclass
class PackResult:
    out: Path
    splits: dict[str, dict[str, int]]  # split -> shards, samples, bytes
    written: int = 0  # shards written by this call
    seconds: float = 0.0
    done_before: bool = False  # the folder held this very pack already


class _Hashing:
    """A file object that hashes what is written to it (tarfile writes through it)."""

    def __init__(self, fh: Any):
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.fh.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.fh.flush()


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _read_image(path: str) -> bytes:
    """The file's bytes, checked to be an image by its header (nothing decoded)."""
    read_header(path)  # a file gone, unreadable, empty or not an image: one line naming it
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _Progress:
    """`_pack.json`: the pack's identity, the shards done and the one being renamed."""

    def __init__(self, out: Path, identity: dict[str, Any], doc: dict[str, Any] | None = None):
        self.out, self.identity = out, identity
        doc = doc or {}
        self.done: dict[str, dict[str, Any]] = dict(doc.get("shards", {}))
        self.pending: dict[str, dict[str, Any]] = dict(doc.get("pending", {}))

    def save(self) -> None:
        atomic_write_text(self.out / PROGRESS, json.dumps(
            {"format": PACK_FORMAT, "identity": self.identity, "shards": self.done,
             "pending": self.pending}, indent=1) + "\n")


def _differs(a: dict[str, Any], b: dict[str, Any]) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(keys) or "nothing"


def _foreign(out: Path, name: str) -> OptionError:
    return OptionError("out", f"'{out / name}' is not a file `distill data pack` wrote there; "
                       "the pack never overwrites one: choose an empty or new folder")


def _open_out(out: Path, identity: dict[str, Any], planned: set[str]) -> tuple[_Progress, bool]:
    """The progress to continue from, and whether the folder holds this pack complete.
    Refuses a folder holding anything the pack did not write."""
    if out.exists() and not out.is_dir():
        raise OptionError("out", f"'{out}' is a file, not a folder")
    if not out.exists():
        return _Progress(out, identity), False
    names = sorted(p.name for p in out.iterdir())
    prior: dict[str, Any] | None = None
    if PROGRESS in names:
        prior = read_json(out / PROGRESS, "pack progress file")
        if not isinstance(prior, dict) or prior.get("format") != PACK_FORMAT:
            raise _foreign(out, PROGRESS)
        if prior.get("identity") != identity:
            raise OptionError("out", f"'{out}' holds a pack of other settings or images "
                              f"(it differs at {_differs(prior.get('identity') or {}, identity)})"
                              "; choose another --out, or pack with its settings")
    if INFO in names:
        info = read_json(out / INFO, "shard set's _info.json")
        writer = info.get("writer") if isinstance(info, dict) else None
        if not isinstance(writer, dict) or writer.get("tool") != TOOL:
            raise _foreign(out, INFO)
        if writer.get("identity") != identity:
            raise OptionError("out", f"'{out}' holds a shard set packed with other settings or "
                              f"images (it differs at {_differs(writer.get('identity') or {}, identity)}"
                              "); choose another --out")
        if prior is None:
            return _Progress(out, identity), True
    progress = _Progress(out, identity, prior)
    stale = []  # what a stopped pack was writing: removed once the whole folder is ours
    for name in names:
        if name in (PROGRESS, INFO):
            continue
        target = temporary_target(name)
        if target is not None and (target in planned or target in (PROGRESS, INFO)):
            stale.append(name)
            continue
        if name not in planned:
            raise _foreign(out, name)
        listed = progress.done.get(name) or progress.pending.get(name)
        if listed is None:
            raise _foreign(out, name)
        if name in progress.pending:  # renamed or not when the pack stopped: ours if its hash
            if file_sha256(out / name) != listed["sha256"]:
                raise _foreign(out, name)
            progress.done[name] = progress.pending.pop(name)
    for name in stale:
        (out / name).unlink(missing_ok=True)
    progress.pending.clear()
    return progress, False


def _write_shard(out: Path, name: str, plan: _Plan, indices: list[int],
                 progress: _Progress) -> dict[str, Any]:
    """One shard: a temporary file, fsync, listed pending, renamed, listed done."""
    path = out / name
    while True:
        tmp = out / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    keys, labels = hashlib.sha256(), hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as fh:
            sink = _Hashing(fh)
            with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for i in indices:
                    file, label = plan.folder.samples[i]
                    key = plan.keys[i]
                    data = _read_image(file)
                    tar.addfile(_member(f"{key}.{_ext(file)}", len(data)), io.BytesIO(data))
                    text = str(label).encode()
                    tar.addfile(_member(f"{key}.{LABEL_EXT}", len(text)), io.BytesIO(text))
                    keys.update(key.encode("utf-8", "surrogateescape") + b"\n")
                    labels.update(f"{label}\n".encode())
            fh.flush()
            os.fsync(fh.fileno())
        record = {"samples": len(indices), "sha256": sink.sha.hexdigest(), "bytes": sink.size,
                  "keys_sha256": keys.hexdigest(), "labels_sha256": labels.hexdigest()}
        progress.pending[name] = record
        progress.save()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(out)
    progress.done[name] = progress.pending.pop(name)
    progress.save()
    return record


def _plans(folder: Path, shard_size: int, seed: int, shuffle: bool) -> list[_Plan]:
    from .datasets import imagefolder

    if not (folder / "train").is_dir():
        raise DataError(f"{folder}: no 'train/' folder (`distill data pack` packs an image "
                        "folder: train/<class>/<image>, and val/<class>/<image> if there is one)")
    plans = []
    for split, name in SPLITS:
        if not (folder / split).is_dir():
            continue
        ds = imagefolder(split, folder)  # the folder's problems named, val classes checked
        order = list(range(len(ds)))
        if shuffle and split == "train":
            order = np.random.default_rng(seed).permutation(len(ds)).tolist()
        plans.append(_Plan(name, ds, order, sample_keys(ds), shard_size))
    return plans


def pack_folder(folder: str | Path, out: str | Path, *, shard_size: int = 1000, seed: int = 0,
                shuffle: bool = True, note: Note | None = None) -> PackResult:
    """Pack the image folder `folder` as tar shards in `out` (see the module)."""
    note = note or (lambda _: None)
    folder, out = Path(folder), Path(out)
    if shard_size < 1:
        raise OptionError("shard_size", f"must be at least 1, got {shard_size}")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (`distill data pack` packs an image folder)")
    real_out = os.path.realpath(out)
    for split, _ in SPLITS:
        real = os.path.realpath(folder / split)
        if os.path.commonpath([real, real_out]) == real:
            raise OptionError("out", f"'{out}' is inside '{folder / split}', the folder it packs")
    t0 = time.perf_counter()
    plans = _plans(folder, shard_size, seed, shuffle)
    classes = list(plans[0].folder.classes)
    identity = {"source": os.path.realpath(folder), "shard_size": shard_size, "seed": seed,
                "shuffle": shuffle, "classes": classes,
                "splits": {p.name: {"samples": len(p.order), **p.folder.fingerprint()}
                           for p in plans}}
    planned = {name for p in plans for name, _ in p.shards()}
    progress, complete = _open_out(out, identity, planned)
    splits = {p.name: {"shards": len(p.shards()), "samples": len(p.order)} for p in plans}
    if complete:
        note(f"{out} holds this pack complete ({INFO}); nothing to do")
        return PackResult(out, splits, 0, time.perf_counter() - t0, done_before=True)
    out.mkdir(parents=True, exist_ok=True)
    if progress.done:
        note(f"resuming {out}: {len(progress.done)} of {len(planned)} shards written")
    written = 0
    info_splits: dict[str, Any] = {}
    for plan in plans:
        rows = []
        for name, indices in plan.shards():
            record = progress.done.get(name)
            if record is None or not _whole(out / name, record):
                record = _write_shard(out, name, plan, indices, progress)
                written += 1
                note(f"{out / name}: {len(indices)} samples, {record['bytes']} bytes")
            rows.append((name, record))
        info_splits[plan.name] = {
            "name": plan.name, "num_samples": len(plan.order),
            "filenames": [n for n, _ in rows],
            "shard_lengths": [r["samples"] for _, r in rows],
            "shard_sha256": [r["sha256"] for _, r in rows],
            "shard_bytes": [r["bytes"] for _, r in rows],
            "keys_sha256": [r["keys_sha256"] for _, r in rows],
            "labels_sha256": [r["labels_sha256"] for _, r in rows]}
        splits[plan.name]["bytes"] = sum(r["bytes"] for _, r in rows)
    info = {"name": folder.resolve().name, "num_classes": len(classes), "classes": classes,
            "splits": info_splits,
            "writer": {"tool": TOOL, "command": "distill data pack", "identity": identity}}
    atomic_write_text(out / INFO, json.dumps(info, indent=1) + "\n")
    (out / PROGRESS).unlink(missing_ok=True)
    _fsync_dir(out)
    return PackResult(out, splits, written, time.perf_counter() - t0)


def _whole(path: Path, record: dict[str, Any]) -> bool:
    """A shard listed done is whole unless its size changed since (sha256: `check`)."""
    try:
        return path.stat().st_size == record["bytes"]
    except OSError:
        return False


# -- check ---------------------------------------------------------------------------------
@dataclass
class CheckResult:
    info: Path
    splits: dict[str, dict[str, int]] = field(default_factory=dict)  # shards, samples, bytes
    wrote_info: bool = False


def _decoder(mode: str) -> Callable[[bytes, str], Any]:
    def decode(data: bytes, name: str) -> None:
        load_image(data, mode, name=name)

    return decode


def check_shards(root: str | Path, *, info: str | Path | None = None, decode: bool = False,
                 write_info: bool = False, note: Note | None = None) -> CheckResult:
    """Check the shard set in the folder `root` against its `_info.json` (or `info`), or
    with `write_info` count a set that has none and record it there (see the module)."""
    note = note or (lambda _: None)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (a shard set is a folder of .tar files and "
                        f"its {INFO})")
    path = Path(info) if info is not None else root / INFO
    image = _decoder("RGB") if decode else None
    if write_info:
        return _write_info(root, path, image, note)
    if not path.is_file():
        raise DataError(f"{path}: no {INFO}: the shards' sample counts are not recorded; "
                        f"count them once with `distill data check {root} --write-info`")
    doc = load_info(path, root)
    n_cls = doc.get("num_classes")
    n_cls = n_cls if isinstance(n_cls, int) and not isinstance(n_cls, bool) else None
    result = CheckResult(path)
    problems: list[str] = []
    for split, entry in doc["splits"].items():
        size = samples = 0
        for i, (name, length) in enumerate(zip(entry["filenames"], entry["shard_lengths"])):
            def recorded(key: str, i: int = i, entry: dict[str, Any] = entry) -> Any:
                values = entry.get(key)
                return values[i] if values is not None else None

            shard = Shard(root / name, name, length)
            if not shard.path.is_file():
                problems.append(f"{shard.path}: no such shard ({path} lists it)")
                continue
            try:
                got = shard_digest(shard, n_cls, image)
            except DataError as exc:
                problems.append(exc.lines[0])
                continue
            problems += _compare(shard.path, path, got, length, recorded)
            size += got.bytes
            samples += got.samples
            note(f"{shard.path}: {got.samples} samples")
        result.splits[split] = {"shards": len(entry["filenames"]), "samples": samples,
                                "bytes": size}
    if problems:
        more = f" ({len(problems)} problems)" if len(problems) > 1 else ""
        raise DataError(*problems[:20], *([f"… and {len(problems) - 20} more{more}"]
                                          if len(problems) > 20 else []))
    return result


def _compare(shard: Path, info: Path, got: ShardDigest, length: int,
             recorded: Callable[[str], Any]) -> list[str]:
    out = []
    if got.samples != length:
        out.append(f"{shard}: holds {got.samples} samples, {info} counts {length}")
    if recorded("shard_bytes") is not None and got.bytes != recorded("shard_bytes"):
        out.append(f"{shard}: {got.bytes} bytes, {info} records {recorded('shard_bytes')}: "
                   "truncated or altered")
    elif recorded("shard_sha256") is not None and got.sha256 != recorded("shard_sha256"):
        out.append(f"{shard}: fails its sha256 check ({info}): altered or damaged")
    if recorded("keys_sha256") is not None and got.keys_sha256 != recorded("keys_sha256"):
        out.append(f"{shard}: its sample keys are not the ones {info} records")
    if recorded("labels_sha256") is not None and got.labels_sha256 != recorded("labels_sha256"):
        out.append(f"{shard}: its labels are not the ones {info} records")
    return out


def _write_info(root: Path, path: Path, image: Any, note: Note) -> CheckResult:
    """Count the `.tar` files of `root` (splits from their names) into a new `_info.json`."""
    if path.exists():
        raise UsageError(f"{path}: exists already; `--write-info` records the counts of a shard "
                         "set that has none (pass --info FILE to write them elsewhere)")
    tars = sorted(p.name for p in root.iterdir() if p.name.endswith(".tar") and p.is_file())
    if not tars:
        raise DataError(f"{root}: no .tar files to count")
    by_split: dict[str, list[str]] = {}
    for name in tars:
        by_split.setdefault(split_of_name(name), []).append(name)
    result = CheckResult(path, wrote_info=True)
    splits: dict[str, Any] = {}
    for split, names in by_split.items():
        digests = []
        for name in names:
            digests.append(shard_digest(Shard(root / name, name, 0), None, image))
            note(f"{root / name}: {digests[-1].samples} samples")
        splits[split] = {"name": split, "num_samples": sum(d.samples for d in digests),
                         "filenames": names, "shard_lengths": [d.samples for d in digests],
                         "shard_sha256": [d.sha256 for d in digests],
                         "shard_bytes": [d.bytes for d in digests],
                         "keys_sha256": [d.keys_sha256 for d in digests],
                         "labels_sha256": [d.labels_sha256 for d in digests]}
        result.splits[split] = {"shards": len(names), "samples": splits[split]["num_samples"],
                                "bytes": sum(d.bytes for d in digests)}
    doc = {"name": root.resolve().name, "splits": splits,
           "writer": {"tool": TOOL, "command": "distill data check --write-info"}}
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
    note(f"wrote {path}: {few(sorted(splits))}")
    return result
