"""Shard files: safetensors written atomically, read back through memory maps.

A reader parses the safetensors header itself and maps each tensor with `numpy.memmap`, so
a data-loader worker reads one row in microseconds and only the pages it touches. A file
shorter than its header says, a header that does not parse, or (with `verify="full"`) a
sha256 that differs from the manifest's is an error naming the file; nothing is zero-filled.
"""

from __future__ import annotations

import errno
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save

from distill.checkpoint import atomic_write_bytes, file_sha256
from distill.errors import OptionError, RunError, UsageError

from .manifest import ShardInfo

__all__ = ["ShardReader", "check_shard", "shard_name", "write_shard"]

_DTYPES = {"F16": np.float16, "F32": np.float32, "I16": np.int16, "I32": np.int32,
           "I64": np.int64, "U8": np.uint8}


def shard_name(epoch: int | None, part: int) -> str:
    prefix = "static" if epoch is None else f"epoch-{epoch:04d}"
    return f"{prefix}-part-{part:03d}.safetensors"


def write_shard(path: Path, tensors: dict[str, torch.Tensor]) -> tuple[str, int]:
    """Write a shard atomically; returns (sha256, bytes). Disk errors become one-line errors:
    a full disk a `RunError` (resume once there is space), others an error of the build's
    `out` (the cache directory the shard goes to)."""
    data = save({k: v.contiguous() for k, v in tensors.items()})
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise RunError(f"{path}: no space left on device; the shards written before it are "
                           "intact: free space and run the same command to resume") from None
        raise OptionError("out", f"cannot write '{path}' ({exc.strerror or exc})") from None
    return hashlib.sha256(data).hexdigest(), len(data)


def _header(path: Path) -> tuple[dict[str, Any], int]:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError("shorter than a safetensors header")
            (n,) = struct.unpack("<Q", head)
            if n > 100_000_000:
                raise ValueError("implausible header length")
            raw = fh.read(n)
            if len(raw) < n:
                raise ValueError("truncated header")
            header = json.loads(raw)
    except FileNotFoundError:
        raise UsageError(f"cache shard '{path}' is missing") from None
    except (ValueError, OSError) as exc:
        raise UsageError(f"cache shard '{path}' is corrupt ({exc})") from None
    return header, 8 + n


def check_shard(path: Path, info: ShardInfo, verify: str = "full") -> None:
    """Raise naming the file if it is missing, truncated, or (full) fails its checksum."""
    header, start = _header(path)
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"),
              default=0)
    size = path.stat().st_size
    if size != start + end or size != info.bytes:
        raise UsageError(f"cache shard '{path}' is truncated or altered ({size} bytes, "
                         f"manifest says {info.bytes})")
    if verify == "full" and file_sha256(path) != info.sha256:
        raise UsageError(f"cache shard '{path}' fails its sha256 check (corrupted)")


class ShardReader:
    """Rows of one shard, memory-mapped on first use in each process (pickles cheaply)."""

    def __init__(self, path: Path, info: ShardInfo):
        self.path, self.info = Path(path), info
        self._maps: dict[str, np.memmap] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "info": self.info, "_maps": None}

    def _open(self) -> dict[str, np.memmap]:
        header, start = _header(self.path)
        maps = {}
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            begin, _ = meta["data_offsets"]
            maps[name] = np.memmap(self.path, dtype=_DTYPES[meta["dtype"]], mode="r",
                                   offset=start + begin, shape=tuple(meta["shape"]))
        return maps

    def maps(self) -> dict[str, np.memmap]:
        """The shard's tensors as read-only memory maps (`valid` included)."""
        if self._maps is None:
            self._maps = self._open()
        return self._maps

    def row(self, row: int) -> dict[str, torch.Tensor]:
        maps = self.maps()
        i = row - self.info.start
        if not 0 <= i < self.info.rows:
            raise IndexError(f"row {row} is outside shard '{self.path}'")
        if not maps["valid"][i]:
            raise RuntimeError(f"cache shard '{self.path}' has no output for row {row}: the "
                               "run reads a sample the build did not compute")
        return {k: torch.from_numpy(np.array(v[i])) for k, v in maps.items() if k != "valid"}
