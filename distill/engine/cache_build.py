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

Exact mixing ties a cache to the training world size W (`world_size`, by default the
processes building it): row r + W·j of an epoch is slot j of training rank r, and is computed
in rank r's batch, mixed with rank r's draws, exactly as a W-process run forms it.

Where the parts live: the row layout (`distill.cache.layout`), the planned manifest and
resume (`distill.cache.plan`) and the shard writer (`distill.cache.writer`) are about the
format; the torchrun protocol is `distill.engine.cache_dist`, the live check of a built cache
`distill.engine.cache_verify`. This module runs the teacher. Its errors name the argument of
`build_cache` they concern (`OptionError`: `out`, `mode`, `epochs`, …); the command line
maps them to its flags.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from distill.cache import (
    MANIFEST,
    KeyBatches,
    Manifest,
    RowLayout,
    ShardWriter,
    StoreFormat,
    plan_manifest,
    progress_name,
    resume_manifest,
    run_mixing,
)
from distill.data import (
    Batch,
    Mixer,
    ReplayDataset,
    ReplaySampler,
    augment_batch,
    build_dataset,
    build_train_dataset,
    build_val_loader,
    eval_transform,
    loader_args,
    pil_mode,
)
from distill.data.stream import check_stream, is_stream
from distill.errors import OptionError, UsageError
from distill.recipe import Recipe, check_paths
from distill.teacher import TeacherRef

from . import dist, interrupt
from .cache_dist import gather_ranks, merge_ranks, prepare_out
from .evaluate import evaluate_teacher
from .report import LogReporter, Reporter
from .runtime import Runtime, autocast, resolve_runtime
from .setup import build_teacher_for, check_teacher

__all__ = ["BuildResult", "build_cache", "cache_source"]


@dataclass
class BuildResult:
    """What one `build_cache` call did (on rank 0, for the whole torchrun job)."""

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


def cache_source(recipe: Recipe, mode: str) -> tuple[ReplayDataset, ReplaySampler | None]:
    """The images a cache is computed over: the replayed training set and its sampler, or
    (static) the training set on the evaluation transform, by index."""
    if mode == "static":
        return ReplayDataset(build_dataset(recipe.data, "train"), eval_transform(recipe.data),
                             recipe.run.seed, pil_mode(recipe.data)), None
    dataset = build_train_dataset(recipe.data, recipe.augment, recipe.run.seed)
    if is_stream(dataset.base):  # rows by sample: the data's own order, read front to back
        check_stream(recipe.augment, recipe.data.name)
        return dataset, ReplaySampler(len(dataset), recipe.run.seed, shuffle=False)
    return dataset, ReplaySampler(len(dataset), recipe.run.seed,
                                  repeats=recipe.augment.repeated_aug)


def build_cache(recipe: Recipe, out: Path, *, epochs: int | None = None, mode: str = "replay",
                store: str = "full", batch_size: int | None = None,
                shard_rows: int | None = None, world_size: int | None = None,
                evaluate: bool = True, dry_run: bool = False,
                reporter: Reporter | None = None) -> BuildResult:
    """Build (or finish) the cache of `recipe`'s teacher in `out`, with every process of a
    torchrun job. `world_size`: with exact mixing, the training processes the cache is for
    (default: the processes building it). `dry_run`: run the teacher over the replayed data
    exactly as a build does, but store and write nothing (times the pipeline; `out` is not
    touched)."""
    reporter = reporter or LogReporter()
    recipe, fmt, epochs, batch, exact = _options(
        recipe, epochs=epochs, mode=mode, store=store, batch_size=batch_size,
        shard_rows=shard_rows, world_size=world_size)
    check_paths(recipe)
    rt = resolve_runtime(recipe, distributed="cache build")
    if not rt.main:
        reporter = Reporter()  # silent: rank 0 reports for the job; errors name their rank
    dist.patient_group()  # for the ranks that finish first (a collective: all ranks, now)
    teacher = build_teacher_for(recipe, rt, live=True)
    val = None
    if evaluate and not dry_run:  # built now: a split too small for the ranks fails first
        val = build_val_loader(recipe.data, recipe.run.seed, pin_memory=rt.device.type == "cuda",
                               num_replicas=rt.world_size, rank=rt.rank)
    dataset, sampler = cache_source(recipe, mode)
    planned = plan_manifest(recipe, mode=mode, store=fmt, epochs=epochs, batch_size=batch,
                            world_size=world_size or rt.world_size, dataset=dataset,
                            sampler=sampler, teacher=teacher.identity.model_dump(mode="json"),
                            shard_rows=shard_rows, decoder=_decoder(recipe, rt.device))
    out = Path(out)
    if dry_run:
        manifest = planned
    else:  # rank 0 reads what is on disk; every rank continues from the same manifest
        found = resume_manifest(out, planned, reporter).model_dump_json() if rt.main else None
        manifest = Manifest.model_validate_json(str(dist.broadcast_object(found)))
    estimate = (manifest.rows_per_epoch * manifest.epochs * fmt.bytes_per_row(manifest.num_classes)
                + 256 * len(manifest.planned()))  # + shard headers
    reporter.note(f"cache: {manifest.mode} {manifest.store}, {manifest.epochs} epoch(s) × "
                  f"{manifest.rows_per_epoch} rows, {len(manifest.planned())} shards; estimated "
                  f"size {_size(estimate)}")
    if manifest.complete:
        reporter.note(f"{out} is complete ({_size(manifest.size_bytes())}); nothing to do")
        return BuildResult(out, manifest, 0, 0.0)
    if not dry_run:
        prepare_out(out, manifest, rt.main)

    done = {(s.epoch, s.start) for s in manifest.shards}
    pending = [p for p in manifest.planned() if (p[0], p[1]) not in done]
    mine = pending[rt.rank::rt.world_size]  # shard k to rank k mod N
    if rt.world_size > 1:
        reporter.note(f"{rt.world_size} processes share {len(pending)} shards")
    # a stream's batches dealt so that each loader worker reads a stretch of its shards
    streams = recipe.data.num_workers if manifest.rows_by == "sample" else 1
    layout = RowLayout(sampler, batch, manifest.world_size if exact else None, streams)
    loader = DataLoader(dataset, batch_sampler=KeyBatches(mine, layout),
                        **loader_args(recipe.data, rt.device.type == "cuda", persistent=False))
    mixer = Mixer.from_recipe(recipe) if exact else None
    start_time = time.perf_counter()
    own = manifest if rt.main else manifest.model_copy(update={"shards": []}, deep=True)
    writer = ShardWriter(out, own, MANIFEST if rt.main else progress_name(rt.rank))
    try:
        images = _run_teacher(teacher, loader, layout, mine, manifest, fmt, mixer, rt,
                              None if dry_run else writer, reporter)
        writer.settle(wait_all=True)
    finally:
        writer.close()
    seconds = time.perf_counter() - start_time
    ranks = gather_ranks(images, seconds, writer)
    images = sum(int(r["images"]) for r in ranks)
    seconds = max(float(r["seconds"]) for r in ranks)
    if dry_run:
        reporter.note(f"dry run: {images} images through the teacher in {seconds:.1f} s "
                      f"({images / max(seconds, 1e-9):.0f} img/s); nothing written")
        return BuildResult(out, manifest, images, seconds)
    if val is not None:  # sharded over the processes, counts summed
        manifest.teacher_top1 = evaluate_teacher(
            teacher, val, rt.device, rt.dtype,
            reduce=dist.all_reduce_sum if rt.backend is not None else None)["top1"]
    interrupt.check()  # a swallowed Ctrl-C: the shards are kept, the same command finishes
    if not rt.main:
        return BuildResult(out, own, images, seconds)
    merge_ranks(out, manifest, ranks)
    result = BuildResult(out, manifest, images, seconds,
                         written=sum(int(r["written"]) for r in ranks),
                         write_seconds=max(float(r["write_seconds"]) for r in ranks),
                         wait_seconds=max(float(r["wait_seconds"]) for r in ranks))
    reporter.note(_built(result, rt))
    return result


def _decoder(recipe: Recipe, device: torch.device) -> dict[str, Any] | None:
    """The JPEG decoder of `device` where the recipe decodes on it (`data.decode: device`):
    a cache records it, and replays only where that decoder runs."""
    if recipe.data.pipeline != "tensor" or recipe.data.decode != "device":
        return None
    from distill.data.decode import device_decoder

    return device_decoder(device)


def _options(recipe: Recipe, *, epochs: int | None, mode: str, store: str,
             batch_size: int | None, shard_rows: int | None, world_size: int | None
             ) -> tuple[Recipe, StoreFormat, int, int, bool]:
    """Check `build_cache`'s arguments before any work. Returns the recipe (with exact
    mixing, at the batch size the cache mixes), the store, the epochs, the teacher batch and
    whether the cache mixes exactly."""
    ref = TeacherRef.of(recipe.teacher, live=True)
    if ref is None or ref.cached:
        raise UsageError(f"teacher.name: a cache is built from a live teacher (got "
                         f"'{recipe.teacher.name}'); pass --teacher timm:<model>, "
                         "checkpoint:<run>, …")
    if mode not in ("replay", "static"):
        raise OptionError("mode", f"expected replay or static, got '{mode}'")
    fmt = StoreFormat.parse(store, recipe.data.num_classes)
    if epochs is not None and epochs < 1:
        raise OptionError("epochs", f"must be at least 1, got {epochs}")
    exact = mode == "replay" and run_mixing(recipe) == "exact"
    if batch_size is not None and batch_size < 1:
        raise OptionError("batch_size", f"must be at least 1, got {batch_size}")
    if shard_rows is not None and shard_rows < 1:
        raise OptionError("shard_rows", f"must be at least 1, got {shard_rows}")
    if world_size is not None and world_size < 1:
        raise OptionError("world_size", f"must be at least 1, got {world_size}")
    if world_size is not None and not exact:
        raise OptionError("world_size", "only a cache for exact mixing (mixup/cutmix with "
                          "teacher.mix_targets: exact) depends on the training world size; "
                          f"this one does not (got {world_size})")
    if exact:
        batch = batch_size or recipe.data.batch_size
        if batch % 2:
            raise OptionError("batch_size", f"must be even with mixup/cutmix, got {batch}")
        if batch != recipe.data.batch_size:  # the run must use the batch the cache mixed
            recipe = recipe.updated({"data.batch_size": batch})
    else:
        batch = batch_size or recipe.data.eval_batch_size or 2 * recipe.data.batch_size
    return recipe, fmt, epochs or recipe.schedule.epochs, batch, exact


def _run_teacher(teacher: Any, loader: DataLoader, layout: RowLayout,
                 mine: list[tuple[int | None, int, int]], manifest: Manifest, fmt: StoreFormat,
                 mixer: Mixer | None, rt: Runtime, writer: ShardWriter | None,
                 reporter: Reporter) -> int:
    """Compute this rank's shards `mine` and hand each to `writer` (None: a dry run, nothing
    encoded); returns the images the teacher ran on."""
    images = 0
    with interrupt.deferred():  # the loader's workers start here
        batches = iter(loader)
    augment = getattr(loader.dataset, "augment", None)  # data.pipeline: tensor
    for epoch, first, rows in mine:
        buf = fmt.empty(rows, manifest.num_classes)
        filled = 0
        # the loader's batch sampler draws the keys; here only where each batch goes
        for spec in layout.batches(epoch, first, rows, keys=False):
            b = augment_batch(next(batches), augment, rt.device)
            x, labels, lam = b.images.to(rt.device, non_blocking=True), b.labels, None
            if mixer is not None:  # mixed as training rank `spec.rank` mixes its step
                x, labels, lam = mixer(x, labels.to(rt.device), epoch, spec.step, spec.rank)
            # once, before anything is stored: the teacher's outputs have the shape, are finite
            check_teacher(teacher, Batch(x, labels, b.index, lam=lam), manifest.num_classes, rt=rt)
            with autocast(rt.device, rt.dtype):
                logits = teacher.targets(Batch(x, labels, b.index, lam=lam))
            n = logits.shape[0]
            if writer is None:
                logits.sum().item()  # wait for the device, as encoding would
            else:
                for key, value in fmt.encode(logits, manifest.tau).items():
                    buf[key][spec.rows] = value
                buf["valid"][spec.rows] = 1
            filled += n
            images += n
            reporter.advance(epoch or 0, filled)
            interrupt.check()  # a Ctrl-C that a fork hook or finalizer swallowed
            if writer is not None:
                writer.settle(wait_all=False)  # list a written shard as soon as it is whole
        if writer is not None:
            writer.submit(epoch, first, rows, buf)
    return images


def _built(result: BuildResult, rt: Runtime) -> str:
    """The note on a finished build."""
    m, images, seconds = result.manifest, result.images, max(result.seconds, 1e-9)
    return (f"built {result.out}: {_size(m.size_bytes())} in {len(m.shards)} shards; {images} "
            f"images in {result.seconds:.1f} s ({images / seconds:.0f} img/s, "
            f"{result.written / seconds / 1e6:.1f} MB/s; writing took "
            f"{result.write_seconds:.1f} s in the background, the teacher waited "
            f"{result.wait_seconds:.1f} s)"
            + (f"; teacher top-1 {m.teacher_top1:.2f}" if m.teacher_top1 is not None else "")
            + (f"; {rt.world_size} process{'es' if rt.world_size > 1 else ''} ({rt.backend})"
               if rt.backend is not None else ""))


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"
