"""`distill cache inspect --sample` / `verify --live`: recompute rows of a cache and compare.

The integrity of a cache's files is `distill.cache.check_shard` (sizes, headers, sha256);
this is the check of its contents: random rows are recomputed with the live teacher its
recipe builds, on the very images (and, with exact mixing, the very mixed batches) the
build computed them on, and compared with what the cache gives back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill.cache import MANIFEST, CacheReader, RowLayout, StoreFormat, load_manifest
from distill.cache.check import draws_problem
from distill.data import Batch, Mixer, augment_batch
from distill.data.batch import collate
from distill.errors import UsageError
from distill.recipe import recipe_from_dict

from .cache_build import cache_source
from .runtime import autocast, resolve_runtime
from .setup import build_teacher_for

__all__ = ["live_check"]


def live_check(folder: Path, n: int, *, seed: int = 0) -> dict[str, Any]:
    """Recompute `n` random rows of a cache with its live teacher and compare.

    Returns the largest absolute difference (fp16 logits for `full`, probabilities for
    `topk`), the share of rows whose argmax differs, and for `topk` the mean KL from the live
    distribution to the reconstructed one. Rows of an exact-mixing cache are recomputed a
    whole training batch at a time, mixed as the run mixes them.
    """
    import torch
    import torch.nn.functional as F

    folder = Path(folder)
    manifest = load_manifest(folder)
    if not manifest.shards:
        raise UsageError(f"cache '{folder}' holds no shards yet")
    problem = draws_problem(manifest)
    if problem:
        raise UsageError(f"cache '{folder}': {problem}")
    source = str(folder / MANIFEST)
    recipe = recipe_from_dict(manifest.recipe, source)
    if manifest.batch_size is not None and manifest.batch_size != recipe.data.batch_size:
        recipe = recipe.updated({"data.batch_size": manifest.batch_size}, source)
    rt = resolve_runtime(recipe)
    teacher = build_teacher_for(recipe, rt, live=True)
    if teacher.identity.model_dump(mode="json") != manifest.teacher:
        raise UsageError(f"cache '{folder}': the teacher its recipe builds now is not the one "
                         "it was built with (other weights?)")
    fmt = StoreFormat.parse(manifest.store)
    dataset, sampler = cache_source(recipe, manifest.mode)
    reader = CacheReader(folder, manifest)
    g = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(manifest.shards), (n,), generator=g).tolist()
    rows = []
    for k in picks:
        info = manifest.shards[k]
        rows.append((info.epoch, info.start + int(torch.randint(info.rows, (1,), generator=g))))
    exact = manifest.mix_targets == "exact"
    mixer = Mixer.from_recipe(recipe) if exact else None
    layout = RowLayout(sampler, manifest.batch_size or 1, manifest.world_size if exact else None)
    live_rows, stored_rows = [], []
    for epoch, row in rows:
        batch, slot = layout.locate(epoch, row)
        got = augment_batch(collate(dataset.__getitems__(batch.keys)), dataset.augment,
                            rt.device)  # data.pipeline: tensor augments on the device
        x, y, index = got.images.to(rt.device), got.labels.to(rt.device), got.index
        lam = None
        if mixer is not None:  # the whole batch of training rank `batch.rank`, mixed as it is
            x, y, lam = mixer(x, y, epoch, batch.step, batch.rank)
        with autocast(rt.device, rt.dtype):
            logits = teacher.targets(Batch(x, y, index, lam=lam)).float().cpu()
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
