"""The row layout of a cache: which image each row is, and the batches it is computed in.

A replay cache stores, for epoch e, one row per position of the epoch's global order (the
order `distill.data.ReplaySampler` deals the keys in); a static cache one row per dataset
index. With exact mixing a row's output depends on the whole training batch it was mixed
in, so rows are laid out as a W-process run forms its batches: row r + W·j of an epoch is
slot j of training rank r. The same layout tells a build where each teacher batch goes, the
build's data loader which keys to load (`KeyBatches`), and a live check which batch
recomputes a row. Shards hold whole batches (whole steps of every rank with exact mixing),
so a shard is built, listed and resumed on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distill.data import ReplaySampler

__all__ = ["SHARD_BYTES", "KeyBatches", "RowLayout", "TeacherBatch", "shard_plan_rows"]

SHARD_BYTES = 256 << 20  # target shard size


def shard_plan_rows(rows: int, bytes_per_row: int, batch: int, exact: bool,
                    requested: int | None = None, world: int = 1) -> int:
    """Rows per shard: about SHARD_BYTES, a multiple of the batch (whole batches per shard;
    with exact mixing, whole steps of every training rank: a multiple of batch × world)."""
    unit = batch * world if exact else batch
    want = requested if requested is not None else max(1, SHARD_BYTES // bytes_per_row)
    want = max(unit, want // unit * unit) if (exact or requested is None) else want
    return max(1, min(want, rows))


@dataclass
class TeacherBatch:
    """One teacher batch: its sample keys, the shard rows its outputs fill, and (exact
    mixing) the training step and rank whose batch it is."""

    keys: list[Any]
    rows: slice
    step: int = 0
    rank: int = 0


class RowLayout:
    """Which image each row of a cache is, and the batches the teacher sees them in.

    Per-sample outputs: row p is the key at position p of the epoch's global order, in
    batches of consecutive rows. Exact mixing for W training processes: row r + W·j is slot j
    of rank r's keys, and the batches are the run's own, rank r's keys j·B … (j+1)·B − 1."""

    def __init__(self, sampler: ReplaySampler | None, batch: int, world: int | None,
                 streams: int = 1):
        self.sampler, self.batch, self.world = sampler, batch, world
        self.streams = max(1, streams)  # per-sample batches of a shard, dealt to readers
        self._epoch: int | None = None
        self._keys: list[list[Any]] = []

    def rank_keys(self, epoch: int) -> list[list[Any]]:
        """The epoch's keys: in global order, or (exact) each training rank's in its order."""
        if epoch != self._epoch:
            s = self.sampler
            assert s is not None
            if self.world is None:
                s.set_epoch(epoch)
                self._keys = [s.keys()]
            else:
                from distill.data import ReplaySampler

                self._keys = ReplaySampler(s.size, s.seed, shuffle=s.shuffle, repeats=s.repeats,
                                           num_replicas=self.world, epoch=epoch).dealt()
            self._epoch = epoch
        return self._keys

    def batches(self, epoch: int | None, start: int, rows: int, *,
                keys: bool = True) -> Iterator[TeacherBatch]:
        """The batches that fill rows start … start + rows − 1 of `epoch` (None: static).
        `keys=False`: where each batch goes only (no shuffle computed; the keys are empty)."""
        b = self.batch
        if epoch is None or self.world is None:
            order = self.rank_keys(epoch)[0] if keys and epoch is not None else None
            for o in self._offsets(rows):
                n = min(b, rows - o)
                part = ([] if not keys else list(range(start + o, start + o + n))
                        if order is None else order[start + o:start + o + n])
                yield TeacherBatch(part, slice(o, o + n))
            return
        w = self.world
        per_rank = self.rank_keys(epoch) if keys else None
        for step in range(start // (w * b), (start + rows) // (w * b)):
            for r in range(w):
                first = r + w * step * b - start
                part = per_rank[r][step * b:(step + 1) * b] if per_rank is not None else []
                yield TeacherBatch(part, slice(first, first + w * b, w), step, r)

    def _offsets(self, rows: int) -> list[int]:
        """The first rows of the batches of a shard, in the order they are computed: in
        turn, or (`streams` V > 1) the shard's batches cut into V contiguous stretches and
        dealt in turn, so that loader worker v (which the loader hands every V-th batch)
        reads stretch v front to back."""
        starts = list(range(0, rows, self.batch))
        v = min(self.streams, len(starts))
        if v <= 1:
            return starts
        cuts = [len(starts) * i // v for i in range(v + 1)]
        parts = [starts[cuts[i]:cuts[i + 1]] for i in range(v)]
        return [p[j] for j in range(max(map(len, parts))) for p in parts if j < len(p)]

    def locate(self, epoch: int | None, row: int) -> tuple[TeacherBatch, int]:
        """The batch that computes `row`, and the row's slot in it (for live checks)."""
        if epoch is None:
            return TeacherBatch([row], slice(row, row + 1)), 0
        if self.world is None:
            return TeacherBatch([self.rank_keys(epoch)[0][row]], slice(row, row + 1)), 0
        w, b = self.world, self.batch
        r, j = row % w, row // w
        step = j // b
        return TeacherBatch(self.rank_keys(epoch)[r][step * b:(step + 1) * b],
                            slice(row, row + 1), step, r), j - step * b


class KeyBatches:
    """The data loader's batch sampler: the keys of each batch of the pending shards (a
    batch never spans two shards; with exact mixing, batches are the run's own)."""

    def __init__(self, pending: list[tuple[int | None, int, int]], layout: RowLayout):
        self.pending, self.layout = pending, layout

    def __len__(self) -> int:
        return sum(-(-rows // self.layout.batch) for _, _, rows in self.pending)

    def __iter__(self) -> Iterator[list[Any]]:
        for epoch, start, rows in self.pending:
            for batch in self.layout.batches(epoch, start, rows):
                yield batch.keys
