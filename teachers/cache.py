"""`cache:<dir>` teachers: outputs a live teacher computed once, read back from disk.

A cached teacher does no work in the training step. Its `prepare(dataset)` checks the cache
against the run (teacher, data, augmentation, seed, epochs, batch and world size for exact
mixing, store and loss) and the shards the run reads (sha256, or size and header with
`teacher.cache_verify: quick`), then attaches a `CacheReader` to the dataset: the data-loader
workers read each sample's row from memory-mapped shards and the row arrives with the batch.
`targets(batch)` turns the rows into logits, mixing per-sample outputs with the batch's λ
when the recipe asks for `mix_targets: interpolate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from distill.cache import (
    CacheReader,
    Manifest,
    StoreFormat,
    check_shard,
    load_manifest,
    mismatches,
    run_mixing,
)
from distill.checkpoint import file_sha256
from distill.data import dataset_fingerprint
from distill.data.decode import device_decoder
from distill.data.stream import is_stream
from distill.errors import RunError, UsageError
from distill.registry import TEACHERS
from distill.teacher import CACHE, Teacher, TeacherContext, TeacherIdentity, TeacherOptions, TeacherRef

__all__ = ["CachedTeacher", "open_cache"]


class CachedTeacher(Teacher):
    """A `Teacher` whose outputs come with the batch (see the module docstring)."""

    def __init__(self, folder: Path, manifest: Manifest, recipe: Any, world_size: int = 1,
                 device: torch.device | None = None):
        self.folder, self.manifest, self.recipe = Path(folder), manifest, recipe
        self.world_size = world_size
        self.device = device  # where the run makes its images (its JPEG decoder)
        self.store = StoreFormat.parse(manifest.store)
        # Per-sample rows on a mixed batch are mixed here with the batch's λ.
        self.interpolate = recipe.augment.mixing and (
            manifest.mode == "static" or run_mixing(recipe) == "interpolate")
        # Full logits mix at the run's τ; top-k probabilities exist at the cache's τ only.
        self.tau = recipe.loss.tau if self.store.kind == "full" else manifest.tau
        self.val_top1 = manifest.teacher_top1
        self.notes = ("static cache: the teacher's outputs are on un-augmented images, not on "
                      "the augmented ones this run trains on",) if manifest.mode == "static" else ()

    @property
    def identity(self) -> TeacherIdentity:
        return TeacherIdentity(**self.manifest.teacher)

    def prepare(self, dataset: Any) -> Any:
        fp = {"length": len(dataset.base), **dataset_fingerprint(dataset.base),
              "rows_by": "sample" if is_stream(dataset.base) else "position"}
        problems = mismatches(self.manifest, self.recipe, world_size=self.world_size,
                              dataset=fp, teacher_sha256=_weights_sha256(self.recipe),
                              decoder=self._decoder())
        if not self.manifest.complete:
            problems.append(f"completeness ({len(self.manifest.shards)} of "
                            f"{len(self.manifest.planned())} shards written: finish it with the "
                            "same `distill cache build` command)")
        if problems:
            raise UsageError(f"teacher cache '{self.folder}' does not fit this run: "
                             + "; ".join(problems))
        epochs = self.recipe.schedule.epochs if self.manifest.mode == "replay" else None
        for info in self.manifest.shards_of(epochs):
            check_shard(self.folder / info.file, info, self.recipe.teacher.cache_verify)
        return dataset.with_rows(CacheReader(self.folder, self.manifest))

    def _decoder(self) -> dict[str, Any] | None:
        """The run's JPEG decoder where it decodes on its device (`data.decode: device`)."""
        d = self.recipe.data
        if self.device is None or d.pipeline != "tensor" or d.decode != "device":
            return None
        return device_decoder(self.device)

    def targets(self, batch: Any) -> torch.Tensor:
        rows = batch.cached
        if rows is None:
            raise RunError("a cached teacher answers only for the training batches its cache "
                           "holds (no rows came with this batch)")
        lam = batch.lam if self.interpolate else None
        return self.store.decode(rows, self.manifest.num_classes, self.tau, lam)


def _weights_sha256(recipe: Any) -> str | None:
    """sha256 of the weights file the recipe's own teacher loads, where it names one."""
    t = recipe.teacher
    if t.cache is None or t.name is None:
        return None
    ref = TeacherRef.of(t, live=True)
    if ref is None:
        return None
    path = ref.weights_file(t.weights)
    return file_sha256(path) if path is not None else None


def open_cache(folder: str | Path, *, recipe: Any, world_size: int = 1,
               device: torch.device | None = None) -> CachedTeacher:
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"teacher cache '{folder}' is not a directory")
    return CachedTeacher(folder, load_manifest(folder), recipe, world_size, device)


def check(target: str) -> None:
    if not target:
        raise UsageError("cache: needs the directory of a cache built by `distill cache build`")


def check_paths(target: str) -> None:
    load_manifest(Path(target))


@TEACHERS.register(name=CACHE, check=check, check_paths=check_paths, cached=True)
def cache_teacher(target: str, options: TeacherOptions, context: TeacherContext) -> CachedTeacher:
    """A teacher's outputs read from a `distill cache build` directory."""
    if context.recipe is None:
        raise UsageError("cache: teachers are read by `distill train`, which checks them "
                         "against the run's recipe")
    return open_cache(target, recipe=context.recipe, world_size=context.world_size,
                      device=context.device)
