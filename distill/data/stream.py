"""Every sample once per epoch, read front to back: the order of a stream (tar shards, a
Hugging Face dataset read in blocks), split over ranks and loader workers.

A stream is a dataset in shards: `shard_lengths`, the samples of each shard, and samples
numbered shard after shard (its own order, the order of `_info.json`). Epoch e of a run of
W processes with batch B and S streams per process (`data.options.streams`, default
`DEFAULT_STREAMS`; fewer when the epoch has fewer steps) is planned in the main process,
from (seed, e) alone:

1. the shards are put in the order of a permutation drawn from (seed, e), and their
   samples laid out in that order: a sequence of the N samples, each once;
2. the sequence is padded to W·T·B samples, T = ceil(N / (W·B)) steps, by repeating its
   first W·T·B − N samples (fewer than W·B: the padding DDP needs so that every process
   runs T full steps; nothing is dropped);
3. process r takes the contiguous range r·T·B … (r+1)·T·B − 1 of it, and cuts that into S
   contiguous stretches of whole batches, stretch s holding the batches s, s+S, s+2S, …
   of the process's T steps;
4. each stretch is shuffled within windows of `window` consecutive samples (a permutation
   of each window drawn from (seed, e, r, s)) and cut into batches.

The number of loader workers V enters none of this: the batches, and so what a run
computes, are the same with 0, 2 or 4 workers (`data.num_workers` is free to change on
resume). The data loader hands batch t to worker t mod V; with V dividing S, worker v
reads the stretches s ≡ v (mod V), each front to back within its windows (otherwise a
stretch's batches are shared by workers, each reading its own). A worker knows what it
will read (`StreamReads`: its own batches of the plan), so the shard reader reads ahead
only the samples it will be asked for next, in file order, and keeps each until asked for
it. The keys carry the epoch, so persistent workers need no shared state; what each worker
reads is decided here, so workers can neither miss nor repeat a sample. Proof of
exactly-once: the sequence holds each sample once (a permutation of shards, each shard's
samples once); the ranges of the processes, and the stretches of a process, are disjoint
and cover the padded sequence; a window shuffle is a permutation; step t takes the next
batch of stretch t mod S, and stretch s has exactly the batches of the steps t ≡ s (mod
S). So over the W processes an epoch yields the sequence and its padding, nothing else.

A sample's augmentation does not depend on any of this: it is drawn from (seed, epoch,
sample key, repeat) (`ReplayDataset`), so shard order, workers and ranks change where a
sample falls, never how it looks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from distill.errors import UsageError

from .replay import derive_seed

__all__ = ["DEFAULT_STREAMS", "DEFAULT_WINDOW", "StreamEvalBatches", "StreamReads",
           "StreamSampler", "check_stream", "is_stream", "padding", "stream_lengths"]

Key = tuple[int, int, int, int]  # (epoch, index, repeat, position), as ReplaySampler's
DEFAULT_WINDOW = 1024  # samples shuffled together in a stream (what is read ahead in it)
# Streams per process: the stretches an epoch is planned in, whatever the loader workers
# (a multiple of the usual worker counts 1, 2, 4, 8 lets each worker read whole stretches).
DEFAULT_STREAMS = 8


def is_stream(ds: Any) -> bool:
    """Whether a dataset is read as a stream (it has `shard_lengths`)."""
    return getattr(ds, "shard_lengths", None) is not None


def stream_lengths(ds: Any) -> list[int]:
    """The samples of each shard of a stream dataset, cut to `len(ds)` (a `train_limit`
    keeps the first N samples: the shards that hold them)."""
    out, left = [], len(ds)
    for n in ds.shard_lengths:
        if left <= 0:
            break
        out.append(min(int(n), left))
        left -= out[-1]
    return out


def check_stream(augment: Any, name: str) -> None:
    """Refuse what a stream cannot do: repeated augmentation (DeiT's RASampler repeats
    each image of a shuffled list of indices and cuts the epoch to N samples, so an epoch
    sees a third of the images three times; a stream reads every sample once)."""
    if augment.repeated_aug > 1:
        raise UsageError(f"augment.repeated_aug: {augment.repeated_aug} repeats images of a "
                         f"shuffled list of indices and sees a part of them per epoch; "
                         f"'{name}' is read as a stream, every sample once per epoch: set "
                         "augment.repeated_aug: 1")


def padding(samples: int, batch: int, world: int = 1) -> int:
    """Samples repeated at the end of an epoch so that `world` processes run the same
    number of full batches: W·ceil(N / (W·B))·B − N, fewer than W·B."""
    per_step = batch * world
    return math.ceil(samples / per_step) * per_step - samples


def _rng(*parts: int | str) -> np.random.Generator:
    return np.random.default_rng(derive_seed(*parts))


def _layout(lengths: Sequence[int], order: np.ndarray) -> np.ndarray:
    """The sample numbers of the shards in `order`, shard after shard."""
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return np.concatenate([np.arange(starts[k], starts[k + 1], dtype=np.int64) for k in order]
                          or [np.zeros(0, dtype=np.int64)])


class StreamSampler(Sampler[list[Key]]):
    """The batches of keys `(epoch, index, repeat 0, position)` of one process (see the
    module); a batch sampler for `DataLoader(batch_sampler=...)`."""

    def __init__(self, lengths: Sequence[int], seed: int, *, batch_size: int,
                 num_replicas: int = 1, rank: int = 0, streams: int = DEFAULT_STREAMS,
                 window: int = DEFAULT_WINDOW, epoch: int = 0):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}")
        self.lengths = [int(n) for n in lengths]
        self.size = sum(self.lengths)
        if self.size == 0:
            raise UsageError("data: the stream holds no samples")
        self.seed, self.batch, self.window = seed, batch_size, max(1, int(window))
        self.num_replicas, self.rank, self.epoch = num_replicas, rank, epoch
        self.steps = math.ceil(self.size / (batch_size * num_replicas))
        self.streams = max(1, min(int(streams), self.steps))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps

    @property
    def padding(self) -> int:
        return padding(self.size, self.batch, self.num_replicas)

    def sequence(self, epoch: int | None = None) -> np.ndarray:
        """The epoch's samples in shard order, padded (steps 1 and 2 of the module)."""
        epoch = self.epoch if epoch is None else epoch
        order = _rng(self.seed, "stream-shards", epoch).permutation(len(self.lengths))
        seq = _layout(self.lengths, order)
        return np.resize(seq, self.num_replicas * self.steps * self.batch)  # cyclic padding

    def stretches(self, epoch: int | None = None, rank: int | None = None) -> list[np.ndarray]:
        """Process `rank`'s S stretches, each shuffled within its windows (steps 3, 4)."""
        epoch = self.epoch if epoch is None else epoch
        rank = self.rank if rank is None else rank
        per_rank = self.steps * self.batch
        mine = self.sequence(epoch)[rank * per_rank:(rank + 1) * per_rank]
        out, at = [], 0
        for v in range(self.streams):
            n = len(range(v, self.steps, self.streams)) * self.batch
            part = mine[at:at + n].copy()
            at += n
            rng = _rng(self.seed, "stream-window", epoch, rank, v)
            for w in range(0, n, self.window):
                part[w:w + self.window] = rng.permutation(part[w:w + self.window])
            out.append(part)
        return out

    def batches(self, epoch: int | None = None, rank: int | None = None) -> list[list[Key]]:
        """Process `rank`'s batches of `epoch`, in the order it trains on them."""
        epoch = self.epoch if epoch is None else epoch
        rank = self.rank if rank is None else rank
        parts = self.stretches(epoch, rank)
        first = rank * self.steps * self.batch
        out = []
        for t in range(self.steps):
            v, j = t % self.streams, t // self.streams
            chunk = parts[v][j * self.batch:(j + 1) * self.batch].tolist()
            out.append([(epoch, index, 0, first + t * self.batch + i)
                        for i, index in enumerate(chunk)])
        return out

    def reader_batches(self, epoch: int, reader: int, readers: int) -> list[np.ndarray]:
        """The sample numbers of the batches loader worker `reader` of `readers` reads in
        `epoch` (the loader hands it the batches t ≡ reader mod readers), in its order."""
        parts = self.stretches(epoch, self.rank)
        b, s = self.batch, self.streams
        return [parts[t % s][t // s * b:(t // s + 1) * b] for t in range(reader, self.steps,
                                                                          readers)]

    def __iter__(self) -> Iterator[list[Key]]:
        return iter(self.batches())


def _worker() -> tuple[int, int]:
    """(this loader worker's id, the loader's workers); (0, 1) in the main process."""
    import torch.utils.data

    info = torch.utils.data.get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


class StreamReads:
    """What one loader worker of a stream's training loader will read next: its own
    batches of the plan (`StreamSampler.reader_batches`), so that the shard reader reads
    ahead only those (see the module). A copy goes to each worker with the dataset."""

    def __init__(self, sampler: StreamSampler):
        self.sampler = sampler
        self._epoch: int | None = None
        self._batches: list[np.ndarray] = []
        self._where: dict[int, list[int]] = {}  # a batch's first sample -> its places
        self._next = 0  # the place in `_batches` of the batch expected next

    def horizon(self, readers: int) -> int:
        """The samples a worker looks ahead: from the first batch that takes a sample of a
        window to the last, for each stream it reads (consecutive batches of one stream
        are ceil(S / V) of the worker's batches apart), so that the whole window is
        expected when its first sample is read."""
        b, per_reader = self.sampler.batch, math.ceil(self.sampler.streams / max(1, readers))
        return (math.ceil(self.sampler.window / b) + 1) * per_reader * b

    def open_shards(self) -> int:
        """The shards a worker keeps open: one per stream it reads, and a spare."""
        _, readers = _worker()
        return math.ceil(self.sampler.streams / readers) + 2

    def upcoming(self, epoch: int, indices: Sequence[int]) -> np.ndarray:
        """The samples this worker will be asked for from the batch `indices` of `epoch`
        on, in order: the batch, then its next batches of the plan up to `horizon`
        samples; the batch alone where it is not one of this worker's planned batches."""
        batch = np.asarray(indices, dtype=np.int64)
        reader, readers = _worker()
        if epoch != self._epoch:
            self._epoch, self._next, self._where = epoch, 0, {}
            self._batches = self.sampler.reader_batches(epoch, reader, readers)
            for j, part in enumerate(self._batches):
                self._where.setdefault(int(part[0]), []).append(j)
        places = [j for j in self._where.get(int(batch[0]) if len(batch) else -1, [])
                  if np.array_equal(self._batches[j], batch)]
        if not places:
            return batch
        found = next((j for j in places if j >= self._next), places[0])
        self._next = found + 1
        out, total, limit, j = [batch], len(batch), self.horizon(readers), found + 1
        while total < limit and j < len(self._batches):
            out.append(self._batches[j])
            total += len(self._batches[j])
            j += 1
        return np.concatenate(out)


class StreamEvalBatches(Sampler[list[int]]):
    """Evaluation batches of one process, in the stream's own order: process r takes the
    contiguous r-th of W near-equal parts (every sample once over the processes, no
    padding), cut into S contiguous stretches (`streams`, whatever the loader workers:
    the batches do not depend on them), their batches dealt in turn."""

    def __init__(self, size: int, batch_size: int, *, num_replicas: int = 1, rank: int = 0,
                 streams: int = DEFAULT_STREAMS):
        edges = [size * r // num_replicas for r in range(num_replicas + 1)]
        self.first, self.last = edges[rank], edges[rank + 1]
        n = self.last - self.first
        self.batch = batch_size
        self.streams = max(1, min(int(streams), math.ceil(n / batch_size) or 1))

    def _parts(self) -> list[list[list[int]]]:
        n = self.last - self.first
        cuts = [self.first + n * v // self.streams for v in range(self.streams + 1)]
        return [[list(range(b, min(b + self.batch, cuts[v + 1])))
                 for b in range(cuts[v], cuts[v + 1], self.batch)] for v in range(self.streams)]

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts())

    def __iter__(self) -> Iterator[list[int]]:
        parts = self._parts()
        for j in range(max((len(p) for p in parts), default=0)):
            for p in parts:
                if j < len(p):
                    yield p[j]
