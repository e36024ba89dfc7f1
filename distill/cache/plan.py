"""The cache a build makes, and the one it continues: planning and resume.

`plan_manifest` turns a recipe, the build's options and the data into the manifest of the
finished cache, with no shards listed: what a build of these options holds, row for row.
`resume_manifest` reads what a build left in its directory and returns the manifest to
continue from: the one on disk when it describes the very same cache (its identity, see
`Manifest.identity`), with the shards the ranks of an interrupted torchrun build listed in
their progress files merged in, each quick-checked on disk. A directory holding another
cache, or anything else, is refused rather than overwritten.

Errors name the build's argument they concern (`out`, `world_size`, `batch_size`): a
command line maps them to its own flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.errors import OptionError, UsageError

from .check import run_mixing
from .layout import shard_plan_rows
from .manifest import (
    MANIFEST,
    DatasetFingerprint,
    Manifest,
    augment_facts,
    load_manifest,
    progress_files,
    teacher_description,
    teacher_facts,
    transform_facts,
)
from .shards import check_shard
from .store import StoreFormat

if TYPE_CHECKING:
    from distill.data import ReplayDataset, ReplaySampler

__all__ = ["identity_diff", "plan_manifest", "resume_manifest"]


def plan_manifest(recipe: Any, *, mode: str, store: StoreFormat, epochs: int, batch_size: int,
                  world_size: int, dataset: ReplayDataset, sampler: ReplaySampler | None,
                  teacher: dict[str, Any], shard_rows: int | None,
                  decoder: dict[str, Any] | None = None) -> Manifest:
    """The cache to build, no shard listed yet. `dataset`/`sampler`: the images it is
    computed over (`sampler` None: static, by index); `world_size`: the training processes
    exact mixing is tied to; `teacher`: the teacher's identity (`Teacher.identity`, dumped);
    `decoder`: the JPEG decoder of the build's device (`data.decode: device` records it)."""
    from distill.data import ReplaySampler, dataset_fingerprint
    from distill.data.stream import is_stream

    mixing = run_mixing(recipe) if mode == "replay" else None
    exact = mixing == "exact"
    stream = is_stream(dataset.base)
    if exact and stream:
        raise UsageError(f"teacher.mix_targets: exact stores the outputs on a run's own mixed "
                         f"batches; '{recipe.data.name}' is read as a stream, whose batches "
                         "depend on the shard order and the processes: set "
                         "teacher.mix_targets: interpolate (per-sample outputs, mixed as the "
                         "run mixes its images)")
    if sampler is not None:
        rows = len(sampler)
        if exact:  # training drops each rank's last partial batch; so does the cache
            per_rank = len(ReplaySampler(sampler.size, sampler.seed, repeats=sampler.repeats,
                                         num_replicas=world_size))
            rows = world_size * (per_rank // batch_size * batch_size)
            if rows > sampler.size * sampler.repeats:
                raise OptionError(
                    "world_size",
                    f"with exact mixing, {world_size} processes and batch {batch_size}, the "
                    f"last batch of some ranks repeats samples that pad the {sampler.size} "
                    f"images to a multiple of {world_size}; choose another batch size, or "
                    "teacher.mix_targets: interpolate")
    else:
        rows = len(dataset)
    if rows == 0:
        share = f" shared by {world_size} processes" if exact and world_size > 1 else ""
        raise OptionError("batch_size", f"{batch_size} leaves no full batch of the "
                          f"{len(dataset)} training images{share}")
    fp = dataset_fingerprint(dataset.base)
    n_cls = recipe.data.num_classes
    return Manifest(
        teacher=teacher,
        teacher_recipe=teacher_facts(recipe.teacher),
        teacher_description=teacher_description(recipe.teacher),
        dataset=DatasetFingerprint(name=recipe.data.name, length=len(dataset.base), **fp),
        transform=transform_facts(recipe.data, mode, decoder),
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
        rows_by="sample" if stream and mode == "replay" else "position",
        shard_rows=shard_plan_rows(rows, store.bytes_per_row(n_cls), batch_size, exact,
                                   shard_rows, world_size),
        recipe=recipe.model_dump(mode="json"),
    )


def identity_diff(a: Manifest, b: Manifest) -> list[str]:
    """The identity fields at which two manifests differ (none: the same cache)."""
    ia, ib = a.identity(), b.identity()
    return sorted(k for k in set(ia) | set(ib) if ia.get(k) != ib.get(k))


def resume_manifest(out: Path, planned: Manifest, reporter: Any) -> Manifest:
    """The manifest to continue from: the one on disk if it describes the same cache, with
    the shards that the ranks of an interrupted torchrun build listed in their progress
    files; `planned` when `out` holds nothing yet. A damaged shard is dropped (rebuilt), and
    `reporter.note` says so."""
    if not (out / MANIFEST).exists():
        if out.exists() and any(p for p in out.iterdir() if not p.name.startswith(".")):
            raise OptionError("out", f"'{out}' is not empty and holds no cache; choose an "
                              "empty or new directory")
        return planned
    prior = load_manifest(out)
    diff = identity_diff(prior, planned)
    if diff == ["world_size"]:
        n = prior.world_size
        raise OptionError("out", f"'{out}' holds a cache for {n} training process"
                          f"{'es' if n != 1 else ''}, not {planned.world_size}; to finish or "
                          f"reuse it, pass --world-size {n}")
    if diff:
        raise OptionError("out", f"'{out}' holds a different cache (it differs at "
                          f"{', '.join(diff)}); choose another --out or remove it")
    listed = list(prior.shards)
    for path in progress_files(out):
        part = load_manifest(out, path.name)
        if identity_diff(part, planned):
            raise OptionError("out", f"'{path}' lists shards of a different cache; remove it")
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
