"""`data.pipeline: tensor` in the loader, the engine and the logit cache.

A sample's augmented image depends on (seed, epoch, index) only: not on the batch size or
the loader workers (its random parameters are the tensor pipeline's own draws, not the PIL
pipeline's). A run resumes to the same weights; a tensor cache trains exactly like the live teacher; a
cache built on the other pipeline is refused naming `data.pipeline`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from distill.cache import load_manifest
from distill.data import augment_batch, build_data
from distill.engine import Reporter, train
from distill.engine.cache_build import build_cache
from distill.engine.cache_verify import live_check
from distill.errors import UsageError
from distill.recipe import load_recipe
from tests.conftest import FAST, SMOKE

TENSOR = "data.pipeline=tensor"
MIX = ["augment.mixup=0.8", "augment.cutmix=1.0"]
CPU = torch.device("cpu")


def recipe(*sets: str, **shortcuts):
    return load_recipe(SMOKE, [*FAST, *sets], **shortcuts)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model.safetensors")


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def epoch_images(*sets: str, epoch: int = 1) -> tuple[dict[int, torch.Tensor], dict]:
    """Every training image of `epoch` through the loader (augmented), by index, and each
    sample's erasing boxes (None for the PIL pipeline)."""
    r = recipe(*sets)
    data = build_data(r.data, r.augment, r.run.seed)
    images, boxes = {}, {}
    for batch in data.epoch(epoch):
        params = batch.aug
        batch = augment_batch(batch, data.train.augment, CPU)
        for b, index in enumerate(batch.index.tolist()):
            images[index] = batch.images[b]
            boxes[index] = params["re_box"][b] if params is not None else None
    return images, boxes


def test_defaults_to_pil_and_pil_batches_are_unchanged():
    r = recipe()
    assert r.data.pipeline == "pil"
    data = build_data(r.data, r.augment, r.run.seed)
    assert data.train.augment is None
    batch = next(data.epoch(0))
    assert batch.aug is None and batch.images.dtype == torch.float32


def test_a_samples_image_does_not_depend_on_batch_size_or_workers():
    ref, boxes = epoch_images(TENSOR, "data.batch_size=8", "data.num_workers=0")
    assert len(ref) == 64
    for sets in (["data.batch_size=16", "data.num_workers=0"],
                 ["data.batch_size=8", "data.num_workers=2"],
                 ["data.batch_size=16", "data.num_workers=2"]):
        got, _ = epoch_images(TENSOR, *sets)
        assert got.keys() == ref.keys(), sets
        assert all(torch.equal(got[i], ref[i]) for i in ref), sets
    # the draws are the tensor pipeline's own (not the PIL pipeline's for the key)
    pil, _ = epoch_images("data.batch_size=8", "data.num_workers=0")
    assert pil.keys() == ref.keys()
    assert sum(torch.equal(ref[i], pil[i]) for i in ref) < len(ref) // 4
    erased = sum(int((boxes[i][:, 2] > 0).any()) for i in ref)
    assert 0 < erased < len(ref)  # re_prob 0.25: some samples erased, not all


def test_a_subset_reads_the_same_images_in_one_gather():
    """data.train_limit keeps the first N samples: read through the subset (one gather
    per batch), each sample's image is the one the whole set gives it."""
    whole, _ = epoch_images(TENSOR, "data.batch_size=8", "data.num_workers=0")
    part, _ = epoch_images(TENSOR, "data.batch_size=8", "data.num_workers=0",
                           "data.train_limit=40")
    assert len(part) == 40 and set(part) <= set(whole)
    assert all(torch.equal(part[i], whole[i]) for i in part)
    r = recipe(TENSOR, "data.train_limit=40")
    assert build_data(r.data, r.augment, r.run.seed).train._chw_batch is not None  # no PIL


def test_a_samples_image_does_not_depend_on_the_world_size():
    """Two ranks (as torchrun shards an epoch) see between them the images one process
    sees, each sample's image the same (the keys, not the shard, seed the draws)."""
    r = recipe(TENSOR, "data.batch_size=8", "data.num_workers=0")
    ref, _ = epoch_images(TENSOR, "data.batch_size=8", "data.num_workers=0")
    seen: dict[int, torch.Tensor] = {}
    for rank in (0, 1):
        data = build_data(r.data, r.augment, r.run.seed, num_replicas=2, rank=rank)
        for batch in data.epoch(1):
            batch = augment_batch(batch, data.train.augment, CPU)
            for b, index in enumerate(batch.index.tolist()):
                assert index not in seen
                seen[index] = batch.images[b]
    assert len(seen) >= len(ref) - 8  # a rank drops its last partial batch at most
    assert all(torch.equal(seen[i], ref[i]) for i in seen)


def test_a_run_interrupted_after_an_epoch_resumes_to_the_same_weights(tmp_path):
    straight = train(recipe(TENSOR, f"run.out={tmp_path / 'straight'}"), reporter=Reporter())

    class Stop(Reporter):
        def advance(self, epoch, step):
            if epoch == 1 and step == 2:
                raise KeyboardInterrupt

    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        train(recipe(TENSOR, f"run.out={out}"), reporter=Stop())
    assert (out / "state.pt").is_file() and not (out / "summary.json").exists()
    train(recipe(TENSOR, f"run.out={out}"), resume=True, reporter=Reporter())
    assert same_weights(straight.out, out)
    pil = train(recipe(f"run.out={tmp_path / 'pil'}"), reporter=Reporter())
    assert not same_weights(pil.out, out)  # erasing noise differs: other weights


@pytest.mark.parametrize("mixing", [[], MIX], ids=["no-mixup", "mixup-cutmix"])
def test_hard_tensor_cache_trains_exactly_like_the_live_teacher(tmp_path, mixing):
    cache = tmp_path / "cache"
    build_cache(recipe(TENSOR, *mixing), cache, store="hard", reporter=Reporter())
    manifest = load_manifest(cache)
    assert manifest.transform["pipeline"] == "tensor"
    assert manifest.mix_targets == ("exact" if mixing else None)
    live = train(recipe(TENSOR, *mixing, f"run.out={tmp_path / 'live'}"), reporter=Reporter())
    cached = train(recipe(TENSOR, *mixing, f"run.out={tmp_path / 'cached'}",
                          teacher=f"cache:{cache}"), reporter=Reporter())
    assert same_weights(live.out, cached.out)
    assert cached.summary["teacher_top1"] == live.summary["teacher_top1"]
    # the same cache refuses a PIL run, naming the option
    with pytest.raises(UsageError, match=r"data\.pipeline \(cache 'tensor', run 'pil'\)"):
        train(recipe(*mixing, f"run.out={tmp_path / 'pil'}", teacher=f"cache:{cache}"))
    assert not (tmp_path / "pil").exists()


def test_a_pil_cache_is_refused_for_a_tensor_run(tmp_path):
    cache = tmp_path / "cache"
    build_cache(recipe(), cache, store="hard", epochs=1, reporter=Reporter())
    assert "pipeline" not in load_manifest(cache).transform  # PIL manifests as before
    out = tmp_path / "run"
    with pytest.raises(UsageError, match=r"data\.pipeline \(cache 'pil', run 'tensor'\)") as err:
        train(recipe(TENSOR, "schedule.epochs=1", f"run.out={out}", teacher=f"cache:{cache}"))
    assert "\n" not in str(err.value)
    assert not out.exists()


def test_a_tensor_cache_of_other_draws_is_refused(tmp_path):
    """A tensor cache records its parameter draws; one of other draws (an earlier version's,
    without the record) is refused, naming data.pipeline."""
    import json

    cache = tmp_path / "cache"
    build_cache(recipe(TENSOR), cache, store="hard", epochs=1, reporter=Reporter())
    manifest = cache / "manifest.json"
    doc = json.loads(manifest.read_text())
    assert doc["transform"]["pipeline"] == "tensor" and doc["transform"]["draws"]
    del doc["transform"]["draws"]
    manifest.write_text(json.dumps(doc))
    out = tmp_path / "run"
    with pytest.raises(UsageError, match=r"data\.pipeline: tensor parameter draws") as err:
        train(recipe(TENSOR, "schedule.epochs=1", f"run.out={out}", teacher=f"cache:{cache}"))
    assert "\n" not in str(err.value) and "rebuild" in str(err.value)
    assert not out.exists()
    with pytest.raises(UsageError, match=r"data\.pipeline: tensor parameter draws"):
        live_check(cache, 2)  # `cache verify --live`: the same refusal, not "rows differ"


@pytest.mark.parametrize("sets, named", [
    (["augment.auto_augment=augmix-m5-w4-d2"], "augmix"),
    (["augment.auto_augment=rand-m9-t3a"], "GaussianBlur"),
])
def test_unsupported_settings_are_refused_naming_the_option(tmp_path, sets, named):
    out = tmp_path / "run"
    with pytest.raises(UsageError, match=rf"^data\.pipeline: .*{named}") as err:
        train(recipe(TENSOR, *sets, f"run.out={out}"), check_files=False)
    assert "\n" not in str(err.value)
    assert not out.exists()


def _photo_folder(root: Path) -> Path:
    """Two classes of RGB photos (JPEG and PNG) of assorted sizes, none the training size."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    sizes = [(20, 31), (48, 40), (33, 33), (64, 25), (27, 52), (96, 80)]  # the last: cut
    for split in ("train", "val"):
        for c, cls in enumerate(("a", "b")):
            (root / split / cls).mkdir(parents=True)
            for i, (h, w) in enumerate(sizes):
                base = rng.integers(0, 255, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
                img = Image.fromarray(base).resize((w, h), Image.BILINEAR)  # some structure
                img.save(root / split / cls / f"{c}{i}.{'jpg' if i % 2 else 'png'}")
    return root


def test_image_folders_decode_in_workers_and_cut_to_their_crops(tmp_path):
    """Photos of any size: decoded in the loader workers, cut to their crop boxes and
    resized to the output there, and augmented on the device, whatever the workers and
    batch size (tests/test_tensor_folders.py: the images the whole photos give)."""
    root = _photo_folder(tmp_path / "photos")
    folder = [f"data.root={root}", "data.name=imagefolder", "data.options={}",
              "data.num_classes=2", "data.in_chans=3"]
    ref, _ = epoch_images(TENSOR, *folder, "data.batch_size=4", "data.num_workers=0")
    assert len(ref) == 12 and all(im.shape == (3, 32, 32) for im in ref.values())
    got, _ = epoch_images(TENSOR, *folder, "data.batch_size=3", "data.num_workers=2")
    assert got.keys() == ref.keys() and all(torch.equal(got[i], ref[i]) for i in ref)
    # a photo travels as its crop resized to the output, its box then the whole output
    r = recipe(TENSOR, *folder, "data.batch_size=4")
    keys = [(e, i, 0, i) for e in range(8) for i in (5, 11)]  # the 96×80 photos
    items = build_data(r.data, r.augment, r.run.seed).train.__getitems__(keys)
    assert all(tuple(im.shape) == (3, 32, 32) for im, *_ in items)
    assert (items.params["crop"] == torch.tensor([0, 0, 32, 32])).all()
    limited, _ = epoch_images(TENSOR, *folder, "data.train_limit=8", "data.batch_size=4")
    assert len(limited) == 8  # a subset of a folder: read as photos, not as an array
    assert all(torch.equal(limited[i], ref[i]) for i in limited if i in ref)


def test_speed_data_arm_times_the_loader_alone(cli, tmp_path):
    import json

    out = tmp_path / "speed.json"
    res = cli("speed", SMOKE, "--arms", "data,none", "--steps", "2", "--repeats", "2",
              "--warmup", "1", "--batch-size", "8", "--set", TENSOR, "--set", FAST[0],
              "--out", out)
    assert res.code == 0, res.err
    doc = json.loads(out.read_text())
    assert list(doc["arms"]) == ["data", "none"]
    arm = doc["arms"]["data"]
    assert arm["skipped"] is None and arm["images_per_s"] > 0
    assert len(arm["blocks_images_per_s"]) == 2 and arm["mfu"] is None
