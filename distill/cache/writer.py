"""Writing a cache's shards while the teacher computes the next one.

A build hands each finished shard buffer to `ShardWriter.submit`; a background thread
writes it (`write_shard`: a temporary name, fsync, rename), and once its file is complete
the shard is listed in the manifest, which is saved atomically. A build killed at any point
thus leaves only whole, listed shards (and perhaps a temporary file, ignored and removed on
resume). At most two shards are in memory: the one computing and the one writing.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .manifest import MANIFEST, Manifest, ShardInfo, save_manifest
from .shards import shard_name, write_shard

__all__ = ["ShardWriter"]


class ShardWriter:
    """Writes shards on a background thread while the teacher computes the next one; lists
    each in `manifest` (saved atomically as `name` in `out`: the manifest, or a torchrun
    rank's progress file) once its file is complete. At most two shards are in memory: the
    one computing and the one writing."""

    def __init__(self, out: Path, manifest: Manifest, name: str = MANIFEST):
        self.out, self.manifest, self.name = out, manifest, name
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache-writer")
        self.in_flight: list[tuple[Future, ShardInfo]] = []
        self.new: list[ShardInfo] = []  # the shards this call wrote
        self.written, self.write_seconds, self.wait_seconds = 0, 0.0, 0.0
        self.mark = time.perf_counter()

    @staticmethod
    def _write(path: Path, buf: dict[str, Any]) -> tuple[str, int, float]:
        t0 = time.perf_counter()
        sha, size = write_shard(path, buf)
        return sha, size, time.perf_counter() - t0

    def submit(self, epoch: int | None, first: int, rows: int, buf: dict[str, Any]) -> None:
        """Write the shard of `rows` rows from row `first` of `epoch` (None: static)."""
        name = shard_name(epoch, first // self.manifest.shard_rows)
        info = ShardInfo(file=name, epoch=epoch, start=first, rows=rows, sha256="", bytes=0)
        self.in_flight.append((self.pool.submit(self._write, self.out / name, buf), info))
        self.settle(wait_all=False)

    def settle(self, wait_all: bool) -> None:
        """List the finished shards; wait for the older one when two are in flight."""
        while self.in_flight and (wait_all or len(self.in_flight) > 1
                                  or self.in_flight[0][0].done()):
            fut, info = self.in_flight.pop(0)
            t0 = time.perf_counter()
            sha, size, busy = fut.result()  # re-raises a disk error here
            self.wait_seconds += time.perf_counter() - t0
            self.write_seconds += busy
            self.written += size
            self.new.append(info.model_copy(update={"sha256": sha, "bytes": size}))
            self.manifest.shards.append(self.new[-1])
            now = time.perf_counter()
            self.manifest.build_seconds += now - self.mark
            self.mark = now
            save_manifest(self.out, self.manifest, self.name)

    def close(self) -> None:
        """Wait for the writes in flight (a shard not settled is not listed)."""
        self.pool.shutdown(wait=True)
