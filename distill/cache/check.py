"""Does a cache fit a run? Every field that would change the targets is compared.

The cache's manifest records the facts it was built from; `mismatches` derives the same
facts from the run's recipe and names each field that differs, so a run is refused before
it starts, with every reason at once.
"""

from __future__ import annotations

from typing import Any

from distill.teacher import parse_teacher

from .manifest import (
    Manifest,
    augment_facts,
    decode_of,
    pipeline_of,
    teacher_description,
    teacher_facts,
    transform_facts,
)
from .store import StoreFormat

__all__ = ["decoder_problem", "draws_problem", "mismatches", "needs_soft_targets",
           "run_mixing"]


def run_mixing(recipe: Any) -> str | None:
    """How a run's mixed batches get their targets: None (no mixing), exact, interpolate."""
    return recipe.teacher.mix_targets if recipe.augment.mixing else None


def needs_soft_targets(loss: Any) -> bool:
    """Whether a recipe's loss section reads the teacher's distribution, not only its argmax
    (the loss's `LossFacts.soft_targets`)."""
    from distill.registry import LOSSES

    return LOSSES.facts(loss.name).wants_soft_targets(loss.target)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def draws_problem(manifest: Manifest) -> str | None:
    """Why this toolkit cannot replay a tensor-pipeline cache's augmentation (its parameter
    draws are not this version's, `tensor_params.DRAWS`), or None."""
    if manifest.mode != "replay" or pipeline_of(manifest.transform) != "tensor":
        return None
    from distill.data.tensor_params import DRAWS

    theirs = manifest.transform.get("draws") or "timm's generators (an earlier version)"
    if theirs == DRAWS:
        return None
    return f"data.pipeline: tensor parameter draws (cache {theirs}, run {DRAWS}): rebuild the cache"


def decoder_problem(manifest: Manifest, decoder: dict[str, Any]) -> str | None:
    """Why a cache built with `data.decode: device` does not replay on the run's `decoder`
    (`distill.data.decode.device_decoder`: another device type, GPU model, torchvision,
    CUDA or nvjpeg gives other pixels), naming each fact that differs; or None."""
    theirs = manifest.transform.get("decoder")
    if not isinstance(theirs, dict):
        return ("data.decode: device (the cache does not record which decoder built it; this "
                "run decodes on " + _decoder_text(decoder) + "): rebuild the cache")
    changed = [f"{key} (cache {theirs.get(key)!r}, run {decoder.get(key)!r})"
               for key in sorted(set(theirs) | set(decoder)) if theirs.get(key) != decoder.get(key)]
    if not changed:
        return None
    return (f"data.decode: device with another decoder, whose JPEG pixels differ: "
            f"{', '.join(changed)}; train where the cache was built, or rebuild it here")


def _decoder_text(decoder: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in decoder.items() if v is not None)


def mismatches(manifest: Manifest, recipe: Any, *, world_size: int,
               dataset: dict[str, Any] | None = None,
               teacher_sha256: str | None = None,
               decoder: dict[str, Any] | None = None) -> list[str]:
    """Fields where the run differs from the cache, each as `field (cache X, run Y)`.

    `dataset`: the training set's length and hashes (and `rows_by`: `sample` where it is
    read as a stream, else `position`); `teacher_sha256`: the sha256 of the weights file
    the recipe's teacher would load, where it names one; `decoder`: the JPEG decoder of the
    run's device (`device_decoder`), compared with a `data.decode: device` cache's."""
    out: list[str] = []

    def differ(field: str, cached: Any, run: Any) -> None:
        if cached != run:
            out.append(f"{field} (cache {_show(cached)}, run {_show(run)})")

    # The teacher: only when the recipe names one and reads it from teacher.cache.
    if recipe.teacher.cache is not None and recipe.teacher.name is not None:
        ref = parse_teacher(recipe.teacher.name)
        mine, theirs = teacher_facts(recipe.teacher), dict(manifest.teacher_recipe)
        if mine.get("name") != theirs.get("name"):  # in full: it says which teacher
            out.append(f"teacher.name (cache {theirs.get('name')!r}, run {mine.get('name')!r})")
        # The adapter's own description (an ensemble's members): the keys its comparison
        # covers compared by it, every other key field by field.
        described, recorded = teacher_description(recipe.teacher), manifest.teacher_description
        keys = set(described) | set(recorded)
        out += ref.compare(dict(recorded), described) or []
        for key in sorted(keys - ref.compared(keys)):
            differ(f"teacher.{key}", recorded.get(key), described.get(key))
        theirs.pop("members", None)  # the list form of an ensemble: read into name and kwargs
        for key in sorted((set(mine) | set(theirs)) - {"name"}):
            differ(f"teacher.{key}", theirs.get(key), mine.get(key))
        sha = teacher_sha256
        if sha is not None and sha != manifest.teacher.get("weights_sha256"):
            out.append(f"teacher weights (cache sha256 {manifest.teacher['weights_sha256'][:12]}"
                       f"…, run {sha[:12]}…)")
    d = recipe.data
    differ("data.num_classes", manifest.num_classes, d.num_classes)
    differ("data.name", manifest.dataset.name, d.name)
    if dataset is not None:
        differ("training images", manifest.dataset.length, dataset["length"])
        keys = manifest.dataset.keys_sha256, dataset.get("keys_sha256")
        # a stream (tar shards): name the shard set the cache was built over
        built = (manifest.recipe.get("data") or {}).get("root") if any(keys) else None
        over = f"; the cache was built over the shard set '{built}'" if built else ""
        if any(keys) and keys[0] != keys[1]:
            out.append(f"sample keys (this run's samples have other keys{over})")
        if manifest.dataset.length == dataset["length"]:
            if manifest.dataset.labels_sha256 != dataset["labels_sha256"]:
                out.append(f"training labels (their sha256 differs{over})")
            if manifest.dataset.content_sha256 != dataset["content_sha256"]:
                out.append(f"training images (their sha256 differs{over})")
        rows_by = dataset.get("rows_by")
        if manifest.mode == "replay" and rows_by is not None and rows_by != manifest.rows_by:
            # a stream's cache finds its rows by sample, any other by position: read the
            # other way, every row would be another sample's
            how = {"sample": "by sample (a stream)", "position": "by position (not a stream)"}
            out.append(f"rows_by (cache rows found {how.get(manifest.rows_by, manifest.rows_by)}"
                       f", run's '{d.name}' read {how.get(rows_by, rows_by)})")
    mine_t = transform_facts(d, manifest.mode)
    for key in mine_t:
        if key not in ("pipeline", "draws", "decode", "decoder"):
            differ(f"data.{key}", manifest.transform.get(key), mine_t[key])
    if manifest.mode == "replay":  # the augmented pixels come from one pipeline or the other
        differ("data.pipeline", pipeline_of(manifest.transform), pipeline_of(mine_t))
        if pipeline_of(manifest.transform) == pipeline_of(mine_t):
            problem = draws_problem(manifest)
            out += [problem] if problem else []
        # reduced or device decoding gives other pixels than full decoding
        differ("data.decode", decode_of(manifest.transform), decode_of(mine_t))
        if decoder is not None and decode_of(manifest.transform) == decode_of(mine_t) == "device":
            problem = decoder_problem(manifest, decoder)  # and each device decoder its own
            out += [problem] if problem else []

    if manifest.mode == "replay":
        mixing = run_mixing(recipe)
        exact = mixing == "exact"
        if exact != (manifest.mix_targets == "exact"):
            differ("teacher.mix_targets", manifest.mix_targets, mixing)
        mine_a = augment_facts(recipe.augment, with_mixing=exact)
        for key in mine_a:
            differ(f"augment.{key}", manifest.augment.get(key), mine_a[key])
        differ("run.seed", manifest.seed, recipe.run.seed)
        if recipe.schedule.epochs > manifest.epochs:
            out.append(f"schedule.epochs (cache holds {manifest.epochs} epochs, run needs "
                       f"{recipe.schedule.epochs})")
        if exact:
            differ("data.batch_size", manifest.batch_size, d.batch_size)
            differ("world size", manifest.world_size, world_size)

    store = StoreFormat.parse(manifest.store)
    if needs_soft_targets(recipe.loss):
        if not store.soft:
            out.append(f"loss (the '{recipe.loss.name}' loss with soft targets needs a soft "
                       f"cache; this one stores '{manifest.store}')")
        elif store.kind == "topk":
            differ("loss.tau", manifest.tau, recipe.loss.tau)
    return out
