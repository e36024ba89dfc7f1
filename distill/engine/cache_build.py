"""`distill cache build`: run a live teacher once over the training data and store its outputs.

replay: for every epoch e and sample i, the training augmentation of (seed, e, i) — crop, flip,
RandAugment, erasing — is applied, exactly as a training run of the same recipe applies it,
and the teacher's output on that image is stored at the sample's position in the epoch's
global order. With mixup/cutmix and `teacher.mix_targets: exact`, batches of the training
batch size are formed as the run forms them, mixed with the run's (seed, epoch, step) draws,
and the output on each mixed image is stored; otherwise outputs are per sample.
static: one output per image, on the evaluation transform.

Shards are written by a background thread while the teacher computes the next one; each is
written to a temporary name, fsynced and renamed, then listed in the manifest (itself
rewritten atomically). A build killed at any point resumes with the same command, skipping
the shards the manifest lists.

Under torchrun the shards still to build are dealt to the processes in turn (shard k to rank
k mod N), so every rank computes a disjoint part of the cache, a part of every epoch when an
epoch has N shards or more. The shard layout does not depend on N: N processes build the
very cache one process builds, and a build resumes with any number of processes. Rank r > 0
lists its shards in its own progress file; rank 0 merges them into the manifest at the end.

Exact mixing ties a cache to the training world size W (`--world-size`, by default the
processes building it): row r + W·j of an epoch is slot j of training rank r, and is computed
in rank r's batch, mixed with rank r's draws, exactly as a W-process run forms it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from distill.cache import (
    MANIFEST,
    DatasetFingerprint,
    Manifest,
    ShardInfo,
    StoreFormat,
    augment_facts,
    check_shard,
    load_manifest,
    progress_files,
    progress_name,
    run_mixing,
    save_manifest,
    shard_name,
    teacher_facts,
    transform_facts,
    write_shard,
)
from distill.checkpoint import atomic_write_text
from distill.data import (
    Mixer,
    ReplayDataset,
    ReplaySampler,
    build_dataset,
    build_train_dataset,
    build_val_loader,
    dataset_fingerprint,
    eval_transform,
    loader_args,
    pil_mode,
)
from distill.errors import UsageError
from distill.recipe import Recipe, check_paths

from . import dist
from .evaluate import autocast, evaluate_teacher
from .report import LogReporter
from .setup import build_teacher_for, resolve_runtime

__all__ = ["BuildResult", "build_cache", "shard_plan_rows"]

SHARD_BYTES = 256 << 20  # target shard size


@dataclass
class BuildResult:
    out: Path
    manifest: Manifest
    images: int  # images the teacher ran on in this call
    seconds: float  # teacher + writing time of this call (the evaluation excluded)
    written: int = 0  # shard bytes written in this call
    write_seconds: float = 0.0  # time the writer thread spent writing (overlapped)
    wait_seconds: float = 0.0  # time the teacher loop waited for the writer

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0


def shard_plan_rows(rows: int, bytes_per_row: int, batch: int, exact: bool,
                    requested: int | None = None, world: int = 1) -> int:
    """Rows per shard: about SHARD_BYTES, a multiple of the batch (whole batches per shard;
    with exact mixing, whole steps of every training rank: a multiple of batch × world)."""
    unit = batch * world if exact else batch
    want = requested if requested is not None else max(1, SHARD_BYTES // bytes_per_row)
    want = max(unit, want // unit * unit) if (exact or requested is None) else want
    return max(1, min(want, rows))


@dataclass
class _Batch:
    """One teacher batch: its sample keys, the shard rows its outputs fill, and (exact
    mixing) the training step and rank whose batch it is."""

    keys: list[Any]
    rows: slice
    step: int = 0
    rank: int = 0


class _Layout:
    """Which image each row of a cache is, and the batches the teacher sees them in.

    Per-sample outputs: row p is the key at position p of the epoch's global order, in
    batches of consecutive rows. Exact mixing for W training processes: row r + W·j is slot j
    of rank r's keys, and the batches are the run's own, rank r's keys j·B … (j+1)·B − 1."""

    def __init__(self, sampler: ReplaySampler | None, batch: int, world: int | None):
        self.sampler, self.batch, self.world = sampler, batch, world
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
                self._keys = ReplaySampler(s.size, s.seed, shuffle=s.shuffle, repeats=s.repeats,
                                           num_replicas=self.world, epoch=epoch).dealt()
            self._epoch = epoch
        return self._keys

    def batches(self, epoch: int | None, start: int, rows: int, *,
                keys: bool = True) -> Iterator[_Batch]:
        """The batches that fill rows start … start + rows − 1 of `epoch` (None: static).
        `keys=False`: where each batch goes only (no shuffle computed; the keys are empty)."""
        b = self.batch
        if epoch is None or self.world is None:
            order = self.rank_keys(epoch)[0] if keys and epoch is not None else None
            for o in range(0, rows, b):
                n = min(b, rows - o)
                part = ([] if not keys else list(range(start + o, start + o + n))
                        if order is None else order[start + o:start + o + n])
                yield _Batch(part, slice(o, o + n))
            return
        w = self.world
        per_rank = self.rank_keys(epoch) if keys else None
        for step in range(start // (w * b), (start + rows) // (w * b)):
            for r in range(w):
                first = r + w * step * b - start
                part = per_rank[r][step * b:(step + 1) * b] if per_rank is not None else []
                yield _Batch(part, slice(first, first + w * b, w), step, r)

    def locate(self, epoch: int | None, row: int) -> tuple[_Batch, int]:
        """The batch that computes `row`, and the row's slot in it (for live checks)."""
        if epoch is None:
            return _Batch([row], slice(row, row + 1)), 0
        if self.world is None:
            return _Batch([self.rank_keys(epoch)[0][row]], slice(row, row + 1)), 0
        w, b = self.world, self.batch
        r, j = row % w, row // w
        step = j // b
        return _Batch(self.rank_keys(epoch)[r][step * b:(step + 1) * b],
                      slice(row, row + 1), step, r), j - step * b


def _source(recipe: Recipe, mode: str) -> tuple[ReplayDataset, ReplaySampler | None]:
    """The images a cache is computed over: the replayed training set and its sampler, or
    (static) the training set on the evaluation transform, by index."""
    if mode == "static":
        return ReplayDataset(build_dataset(recipe.data, "train"), eval_transform(recipe.data),
                             recipe.run.seed, pil_mode(recipe.data)), None
    dataset = build_train_dataset(recipe.data, recipe.augment, recipe.run.seed)
    return dataset, ReplaySampler(len(dataset), recipe.run.seed,
                                  repeats=recipe.augment.repeated_aug)


def _plan(recipe: Recipe, *, mode: str, store: StoreFormat, epochs: int, batch_size: int,
          world_size: int, dataset: ReplayDataset, sampler: ReplaySampler | None,
          teacher: Any, shard_rows: int | None) -> Manifest:
    """The cache to build. `world_size`: the training processes exact mixing is tied to."""
    mixing = run_mixing(recipe) if mode == "replay" else None
    exact = mixing == "exact"
    if sampler is not None:
        rows = len(sampler)
        if exact:  # training drops each rank's last partial batch; so does the cache
            per_rank = len(ReplaySampler(sampler.size, sampler.seed, repeats=sampler.repeats,
                                         num_replicas=world_size))
            rows = world_size * (per_rank // batch_size * batch_size)
            if rows > sampler.size * sampler.repeats:
                raise UsageError(
                    f"--world-size: with exact mixing, {world_size} processes and batch "
                    f"{batch_size}, the last batch of some ranks repeats samples that pad the "
                    f"{sampler.size} images to a multiple of {world_size}; choose another "
                    "batch size, or teacher.mix_targets: interpolate")
    else:
        rows = len(dataset)
    if rows == 0:
        share = f" shared by {world_size} processes" if exact and world_size > 1 else ""
        raise UsageError(f"--batch-size: {batch_size} leaves no full batch of the "
                         f"{len(dataset)} training images{share}")
    fp = dataset_fingerprint(dataset.base)
    n_cls = recipe.data.num_classes
    return Manifest(
        teacher=teacher.spec.model_dump(mode="json"),
        teacher_recipe=teacher_facts(recipe.teacher),
        dataset=DatasetFingerprint(name=recipe.data.name, length=len(dataset.base), **fp),
        transform=transform_facts(recipe.data, mode),
        augment=augment_facts(recipe.augment, with_mixing=exact) if mode == "replay" else {},
        seed=recipe.run.seed,
        epochs=epochs if mode == "replay" else 1,
        mode=mode,  # type: ignore[arg-type]
        store=str(store),
        tau=recipe.loss.tau,
        num_classes=n_cls,
        mix_targets=mixing,  # type: ignore[arg-type]
        batch_size=batch_size if exact else None,
        world_size=world_size if exact else None,
        rows_per_epoch=rows,
        shard_rows=shard_plan_rows(rows, store.bytes_per_row(n_cls), batch_size, exact,
                                   shard_rows, world_size),
        recipe=recipe.model_dump(mode="json"),
    )


def _identity_diff(a: Manifest, b: Manifest) -> list[str]:
    ia, ib = a.identity(), b.identity()
    return sorted(k for k in set(ia) | set(ib) if ia.get(k) != ib.get(k))


def _resume(out: Path, planned: Manifest, reporter: Any) -> Manifest:
    """The manifest to continue from: the one on disk if it describes the same cache, with
    the shards that the ranks of an interrupted torchrun build listed in their progress
    files."""
    if not (out / MANIFEST).exists():
        if out.exists() and any(p for p in out.iterdir() if not p.name.startswith(".")):
            raise UsageError(f"--out: '{out}' is not empty and holds no cache; choose an empty "
                             "or new directory")
        return planned
    prior = load_manifest(out)
    diff = _identity_diff(prior, planned)
    if diff == ["world_size"]:
        n = prior.world_size
        raise UsageError(f"--out: '{out}' holds a cache for {n} training process"
                         f"{'es' if n != 1 else ''}, not {planned.world_size}; to finish or "
                         f"reuse it, pass --world-size {n}")
    if diff:
        raise UsageError(f"--out: '{out}' holds a different cache (it differs at "
                         f"{', '.join(diff)}); choose another --out or remove it")
    listed = list(prior.shards)
    for path in progress_files(out):
        part = load_manifest(out, path.name)
        if _identity_diff(part, planned):
            raise UsageError(f"--out: '{path}' lists shards of a different cache; remove it")
        listed += part.shards
        prior.build_seconds = max(prior.build_seconds, part.build_seconds)
    kept, seen = [], set()
    for info in sorted(listed, key=lambda i: (i.epoch or 0, i.start)):
        if (info.epoch, info.start) in seen:
            continue
        try:  # a listed shard is whole unless altered since
            check_shard(out / info.file, info, "quick")
        except UsageError as exc:
            reporter.note(f"rebuilding a damaged shard: {exc}")
            continue
        kept.append(info)
        seen.add((info.epoch, info.start))
    prior.shards = kept
    prior.complete = prior.complete and len(kept) == len(prior.planned())
    if kept and not prior.complete:
        reporter.note(f"resuming {out}: {len(kept)} of {len(prior.planned())} shards present")
    return prior


class _KeyBatches:
    """The data loader's batch sampler: the keys of each batch of the pending shards (a
    batch never spans two shards; with exact mixing, batches are the run's own)."""

    def __init__(self, pending: list[tuple[int | None, int, int]], layout: _Layout):
        self.pending, self.layout = pending, layout

    def __len__(self) -> int:
        return sum(-(-rows // self.layout.batch) for _, _, rows in self.pending)

    def __iter__(self) -> Iterator[list[Any]]:
        for epoch, start, rows in self.pending:
            for batch in self.layout.batches(epoch, start, rows):
                yield batch.keys


class _ShardWriter:
    """Writes shards on a background thread while the teacher computes the next one; lists
    each in the manifest (saved atomically) once its file is complete. At most two shards are
    in memory: the one computing and the one writing."""

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
        self.pool.shutdown(wait=True)


def build_cache(recipe: Recipe, out: Path, *, epochs: int | None = None, mode: str = "replay",
                store: str = "full", batch_size: int | None = None,
                shard_rows: int | None = None, world_size: int | None = None,
                evaluate: bool = True, dry_run: bool = False,
                reporter: Any = None) -> BuildResult:
    """Build (or finish) the cache of `recipe`'s teacher in `out`, with every process of a
    torchrun job. `world_size`: with exact mixing, the training processes the cache is for
    (default: the processes building it). `dry_run`: run the teacher over the replayed data
    exactly as a build does, but store and write nothing (times the pipeline; `out` is not
    touched)."""
    reporter = reporter or LogReporter()
    t = recipe.teacher
    if t.name is None or t.name.startswith("cache:"):
        raise UsageError(f"teacher.name: a cache is built from a live teacher (got "
                         f"'{t.name}'); pass --teacher timm:<model>, checkpoint:<run>, …")
    if mode not in ("replay", "static"):
        raise UsageError(f"--mode: expected replay or static, got '{mode}'")
    fmt = StoreFormat.parse(store, recipe.data.num_classes)
    if epochs is not None and epochs < 1:
        raise UsageError(f"--epochs: must be at least 1, got {epochs}")
    epochs = epochs or recipe.schedule.epochs
    exact = mode == "replay" and run_mixing(recipe) == "exact"
    if batch_size is not None and batch_size < 1:
        raise UsageError(f"--batch-size: must be at least 1, got {batch_size}")
    if world_size is not None and world_size < 1:
        raise UsageError(f"--world-size: must be at least 1, got {world_size}")
    if world_size is not None and not exact:
        raise UsageError(f"--world-size: only a cache for exact mixing (mixup/cutmix with "
                         f"teacher.mix_targets: exact) depends on the training world size; "
                         f"this one does not (got {world_size})")
    if exact:
        batch = batch_size or recipe.data.batch_size
        if batch != recipe.data.batch_size:  # the run must use the batch the cache mixed
            recipe = recipe.model_copy(update={"data": recipe.data.model_copy(
                update={"batch_size": batch})})
        if batch % 2:
            raise UsageError(f"--batch-size: must be even with mixup/cutmix, got {batch}")
    else:
        batch = batch_size or recipe.data.eval_batch_size or 2 * recipe.data.batch_size
    check_paths(recipe)
    rt = resolve_runtime(recipe, distributed="cache build")
    if not rt.main:
        reporter = _Quiet()  # rank 0 reports for the job; errors still name their rank
    dist.patient_group()  # for the ranks that finish first (a collective: all ranks, now)
    teacher = build_teacher_for(recipe, rt, live=True)
    val = None
    if evaluate and not dry_run:  # built now: a split too small for the ranks fails first
        val = build_val_loader(recipe.data, recipe.run.seed, pin_memory=rt.device.type == "cuda",
                               num_replicas=rt.world_size, rank=rt.rank)
    dataset, sampler = _source(recipe, mode)
    planned = _plan(recipe, mode=mode, store=fmt, epochs=epochs, batch_size=batch,
                    world_size=world_size or rt.world_size, dataset=dataset, sampler=sampler,
                    teacher=teacher, shard_rows=shard_rows)
    out = Path(out)
    if dry_run:
        manifest = planned
    else:  # rank 0 reads what is on disk; every rank continues from the same manifest
        found = _resume(out, planned, reporter).model_dump_json() if rt.main else None
        manifest = Manifest.model_validate_json(str(dist.broadcast_object(found)))
    per_row = fmt.bytes_per_row(manifest.num_classes)
    total_rows = manifest.rows_per_epoch * manifest.epochs
    estimate = total_rows * per_row + 256 * len(manifest.planned())  # + shard headers
    reporter.note(f"cache: {manifest.mode} {manifest.store}, {manifest.epochs} epoch(s) × "
                  f"{manifest.rows_per_epoch} rows, {len(manifest.planned())} shards; estimated "
                  f"size {_size(estimate)}")
    if manifest.complete:
        reporter.note(f"{out} is complete ({_size(manifest.size_bytes())}); nothing to do")
        return BuildResult(out, manifest, 0, 0.0)
    if not dry_run:
        _prepare_out(out, manifest, rt.main)

    done = {(s.epoch, s.start) for s in manifest.shards}
    pending = [p for p in manifest.planned() if (p[0], p[1]) not in done]
    mine = pending[rt.rank::rt.world_size]  # shard k to rank k mod N
    if rt.world_size > 1:
        reporter.note(f"{rt.world_size} processes share {len(pending)} shards")
    world = manifest.world_size if exact else None
    layout = _Layout(sampler, batch, world)
    loader = DataLoader(dataset, batch_sampler=_KeyBatches(mine, layout),
                        **loader_args(recipe.data, rt.device.type == "cuda", persistent=False))
    mixer = Mixer.from_recipe(recipe) if exact else None
    start_time = time.perf_counter()
    images = 0
    own = manifest if rt.main else manifest.model_copy(update={"shards": []}, deep=True)
    writer = _ShardWriter(out, own, MANIFEST if rt.main else progress_name(rt.rank))
    batches = iter(loader)
    try:
        for epoch, first, rows in mine:
            buf = fmt.empty(rows, manifest.num_classes)
            filled = 0
            # the loader's batch sampler draws the keys; here only where each batch goes
            for spec in layout.batches(epoch, first, rows, keys=False):
                b = next(batches)
                x = b.images.to(rt.device, non_blocking=True)
                if mixer is not None:  # mixed as training rank `spec.rank` mixes its step
                    x, _, _ = mixer(x, b.labels.to(rt.device), epoch, spec.step, spec.rank)
                with autocast(rt.device, rt.dtype):
                    logits = teacher.targets(x)
                n = logits.shape[0]
                if dry_run:
                    logits.sum().item()  # wait for the device, as encoding would
                else:
                    for key, value in fmt.encode(logits, manifest.tau).items():
                        buf[key][spec.rows] = value
                    buf["valid"][spec.rows] = 1
                filled += n
                images += n
                reporter.advance(epoch or 0, filled)
                writer.settle(wait_all=False)  # list a written shard as soon as it is whole
            if dry_run:
                continue
            writer.submit(epoch, first, rows, buf)
        writer.settle(wait_all=True)
    finally:
        writer.close()
    seconds = time.perf_counter() - start_time
    ranks = dist.all_gather_object(patient=True, obj={
        "images": images, "seconds": seconds, "written": writer.written,
        "write_seconds": writer.write_seconds, "wait_seconds": writer.wait_seconds,
        "build_seconds": own.build_seconds,
        "shards": [i.model_dump(mode="json") for i in writer.new]})
    images = sum(int(r["images"]) for r in ranks)  # type: ignore[index]
    seconds = max(float(r["seconds"]) for r in ranks)  # type: ignore[index]
    if dry_run:
        reporter.note(f"dry run: {images} images through the teacher in {seconds:.1f} s "
                      f"({images / max(seconds, 1e-9):.0f} img/s); nothing written")
        return BuildResult(out, manifest, images, seconds)
    if val is not None:  # sharded over the processes, counts summed
        manifest.teacher_top1 = evaluate_teacher(
            teacher, val, rt.device, rt.dtype,
            reduce=dist.all_reduce_sum if rt.backend is not None else None)["top1"]
    if not rt.main:
        return BuildResult(out, own, images, seconds)
    _merge(out, manifest, ranks)
    written = sum(int(r["written"]) for r in ranks)  # type: ignore[index]
    write_s = max(float(r["write_seconds"]) for r in ranks)  # type: ignore[index]
    wait_s = max(float(r["wait_seconds"]) for r in ranks)  # type: ignore[index]
    reporter.note(f"built {out}: {_size(manifest.size_bytes())} in {len(manifest.shards)} "
                  f"shards; {images} images in {seconds:.1f} s ({images / max(seconds, 1e-9):.0f}"
                  f" img/s, {written / max(seconds, 1e-9) / 1e6:.1f} MB/s; writing took "
                  f"{write_s:.1f} s in the background, the teacher waited {wait_s:.1f} s)"
                  + (f"; teacher top-1 {manifest.teacher_top1:.2f}"
                     if manifest.teacher_top1 is not None else "")
                  + (f"; {rt.world_size} process{'es' if rt.world_size > 1 else ''} "
                     f"({rt.backend})" if rt.backend is not None else ""))
    return BuildResult(out, manifest, images, seconds, written, write_s, wait_s)


class _Quiet:
    """The reporter of ranks other than 0."""

    def note(self, text: str) -> None:
        pass

    def advance(self, *_: object) -> None:
        pass


TOKEN = ".build-token"  # rank 0's mark in `out`: every rank must see it


def _prepare_out(out: Path, manifest: Manifest, main: bool) -> None:
    """Rank 0 creates `out`, clears what a killed build left half-written and writes the
    manifest, with the shards of earlier progress files merged in (then drops those files);
    the other ranks start once it is done, after checking that they see the same `out`."""
    token = secrets.token_hex(8) if main else None
    try:
        if main:
            out.mkdir(parents=True, exist_ok=True)
            for stale in out.glob(".*.tmp"):  # a shard being written when a build was killed
                stale.unlink()
            save_manifest(out, manifest)  # before the progress files go: nothing is lost
            for path in progress_files(out):
                path.unlink()
            atomic_write_text(out / TOKEN, str(token))
    except OSError as exc:
        raise UsageError(f"--out: cannot write to '{out}' ({exc.strerror or exc})") from None
    token = dist.broadcast_object(token)  # after rank 0 wrote it
    try:
        seen = (out / TOKEN).read_text() == token
    except OSError:
        seen = False
    blind = [r for r, ok in enumerate(dist.all_gather_object(seen)) if not ok]
    if blind:
        raise UsageError(f"--out: rank(s) {_ranks(blind)} do not see the '{out}' that rank 0 "
                         "writes to; under torchrun on several nodes --out must be a "
                         "directory every node shares")


def _ranks(ranks: list[int]) -> str:
    return ", ".join(map(str, ranks[:8])) + (f" and {len(ranks) - 8} more" if len(ranks) > 8
                                             else "")


def _merge(out: Path, manifest: Manifest, ranks: list[Any]) -> None:
    """Rank 0, once every rank has finished: list the other ranks' shards in the manifest
    (each checked on disk: every node must write to the same `out`), mark it complete."""
    for r, part in enumerate(ranks[1:], start=1):
        for raw in part["shards"]:
            info = ShardInfo.model_validate(raw)
            try:
                check_shard(out / info.file, info, "quick")
            except UsageError:
                raise UsageError(f"--out: rank {r} wrote '{info.file}', which rank 0 does not "
                                 f"find whole in '{out}'; under torchrun on several nodes --out "
                                 "must be a directory every node shares") from None
            manifest.shards.append(info)
    manifest.shards.sort(key=lambda i: (i.epoch or 0, i.start))
    manifest.build_seconds = max(float(r["build_seconds"]) for r in ranks)
    manifest.complete = len(manifest.shards) == len(manifest.planned())
    save_manifest(out, manifest)
    for path in [*progress_files(out), out / TOKEN]:
        path.unlink(missing_ok=True)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def live_check(folder: Path, n: int, *, seed: int = 0) -> dict[str, Any]:
    """Recompute `n` random rows of a cache with its live teacher and compare.

    Returns the largest absolute difference (fp16 logits for `full`, probabilities for
    `topk`), the share of rows whose argmax differs, and for `topk` the mean KL from the live
    distribution to the reconstructed one. Rows of an exact-mixing cache are recomputed a
    whole training batch at a time, mixed as the run mixes them.
    """
    import torch
    import torch.nn.functional as F

    from distill.cache import CacheReader
    from distill.recipe import recipe_from_dict

    folder = Path(folder)
    manifest = load_manifest(folder)
    if not manifest.shards:
        raise UsageError(f"cache '{folder}' holds no shards yet")
    recipe = recipe_from_dict(manifest.recipe, str(folder / MANIFEST))
    if manifest.batch_size is not None:
        recipe.data.batch_size = manifest.batch_size
    rt = resolve_runtime(recipe)
    teacher = build_teacher_for(recipe, rt, live=True)
    if teacher.spec.model_dump(mode="json") != manifest.teacher:
        raise UsageError(f"cache '{folder}': the teacher its recipe builds now is not the one "
                         "it was built with (other weights?)")
    fmt = StoreFormat.parse(manifest.store)
    dataset, sampler = _source(recipe, manifest.mode)
    reader = CacheReader(folder, manifest)
    g = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(manifest.shards), (n,), generator=g).tolist()
    rows = []
    for k in picks:
        info = manifest.shards[k]
        rows.append((info.epoch, info.start + int(torch.randint(info.rows, (1,), generator=g))))
    exact = manifest.mix_targets == "exact"
    mixer = Mixer.from_recipe(recipe) if exact else None
    layout = _Layout(sampler, manifest.batch_size or 1, manifest.world_size if exact else None)
    live_rows, stored_rows = [], []
    for epoch, row in rows:
        batch, slot = layout.locate(epoch, row)
        items = dataset.__getitems__(batch.keys)
        x = torch.stack([it[0] for it in items]).to(rt.device)
        if mixer is not None:  # the whole batch of training rank `batch.rank`, mixed as it is
            y = torch.tensor([it[1] for it in items], device=rt.device)
            x, _, _ = mixer(x, y, epoch, batch.step, batch.rank)
        with autocast(rt.device, rt.dtype):
            logits = teacher.targets(x).float().cpu()
        live_rows.append(logits[slot])
        key = batch.keys[slot]
        ep, pos, idx = (key[0], key[3], key[1]) if sampler is not None else (0, row, row)
        assert sampler is None or pos == row, (pos, row)  # the row is the key's position
        stored_rows.append(reader(ep, pos, idx))
    live = torch.stack(live_rows)
    stored = {k: torch.stack([r[k] for r in stored_rows]) for k in stored_rows[0]}
    C, tau = manifest.num_classes, manifest.tau
    p_live = F.softmax(live / tau, dim=-1)
    p_rec = fmt.probs(stored, C, tau)
    res: dict[str, Any] = {"rows": n, "store": manifest.store,
                           "argmax_mismatch": float((p_rec.argmax(-1) != live.argmax(-1))
                                                    .float().mean())}
    if fmt.kind == "full":
        res["max_abs_diff"] = float((stored["logits"].float() - live).abs().max())
        res["what"] = "logits (fp16 stored vs fp32 live)"
    elif fmt.kind == "topk":
        top = p_live.gather(-1, stored["ids"].long())
        res["max_abs_diff"] = float((stored["probs"].float() - top).abs().max())
        res["what"] = f"top-{fmt.k} probabilities at tau {tau}"
        kl = (p_live * (p_live.clamp_min(1e-30).log() - p_rec.clamp_min(1e-30).log())).sum(-1)
        res["mean_kl"] = float(kl.mean())
    else:
        res["max_abs_diff"] = res["argmax_mismatch"]
        res["what"] = "share of rows whose class differs"
    return res
