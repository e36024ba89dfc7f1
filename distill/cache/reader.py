"""Reading a cache inside data-loader workers: `(epoch, position, index)` -> stored row."""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import Any

import torch

from .manifest import Manifest
from .shards import ShardReader

__all__ = ["CacheReader", "cache_summary"]


class CacheReader:
    """Maps a sample's key to its row: replay caches by (epoch, position in the epoch's
    global order), or, built over a stream (`rows_by: sample`), by (epoch, the sample's own
    index); static caches by dataset index. Pickles without its memory maps, so each worker
    maps the shards it touches itself."""

    def __init__(self, folder: Path, manifest: Manifest):
        self.static = manifest.mode == "static"
        self.by_sample = manifest.rows_by == "sample"
        by_epoch: dict[int | None, list[ShardReader]] = {}
        for info in sorted(manifest.shards, key=lambda s: (s.epoch or 0, s.start)):
            by_epoch.setdefault(info.epoch, []).append(ShardReader(Path(folder) / info.file, info))
        self.readers = by_epoch
        self.starts = {e: [r.info.start for r in rs] for e, rs in by_epoch.items()}

    def __call__(self, epoch: int, position: int, index: int) -> dict[str, torch.Tensor]:
        key, row = (None, index) if self.static else (epoch, index if self.by_sample
                                                      else position)
        readers = self.readers.get(key)
        if not readers:
            raise RuntimeError(f"the logit cache holds no shard for epoch {epoch}")
        k = bisect.bisect_right(self.starts[key], row) - 1
        return readers[max(k, 0)].row(row)


def cache_summary(folder: Path, manifest: Manifest) -> dict[str, Any]:
    """Manifest summary for `distill cache inspect`."""
    planned = manifest.planned()
    return {
        "teacher": f"{manifest.teacher['adapter']}:{manifest.teacher['name']}",
        "weights_sha256": manifest.teacher["weights_sha256"][:16],
        "teacher_top1": manifest.teacher_top1,
        "dataset": f"{manifest.dataset.name} ({manifest.dataset.length} images)",
        "mode": manifest.mode,
        "store": manifest.store,
        "tau": manifest.tau,
        "epochs": manifest.epochs if manifest.mode == "replay" else None,
        "mix_targets": manifest.mix_targets,
        "batch_size": manifest.batch_size,
        "world_size": manifest.world_size,
        "seed": manifest.seed,
        "rows_per_epoch": manifest.rows_per_epoch,
        "rows_by": manifest.rows_by if manifest.mode == "replay" else None,
        "shards": f"{len(manifest.shards)} of {len(planned)}",
        "complete": manifest.complete,
        "bytes": manifest.size_bytes(),
        "build_seconds": round(manifest.build_seconds, 1),
    }
