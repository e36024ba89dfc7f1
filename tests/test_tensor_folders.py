"""Image folders on `data.pipeline: tensor` (issue 24): photos of any size and mode decoded,
cut and resized in the loader worker, the rest batched on the device; `data.decode`.

- The worker's images are the ones the device's `resized_crop` gives on the whole decoded
  image, with the same draws for the same key and size (`reference` below is the tensor
  path as it was: whole images padded into a batch and resampled on the device).
- Replay is exact: a sample's image depends on (seed, epoch, index, repeat) alone, and a
  cache built on a JPEG folder trains exactly like the live teacher (hard store, mixing on
  and off), with each `data.decode`.
- `data.decode: device` on the CPU (torchvision's decoder) gives `full`'s pixels;
  `reduced` gives other pixels, close ones; a cache records the setting and a run of the
  other setting is refused, naming `data.decode`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from distill.cache import load_manifest
from distill.data import TensorAugment, augment_batch, build_data, build_val_loader, eval_transform
from distill.data.batch import collate
from distill.data.decode import load_image
from distill.data.loaders import build_train_dataset
from distill.engine import Reporter, train
from distill.engine.cache_build import build_cache
from distill.engine.cache_verify import live_check
from distill.errors import UsageError
from distill.recipe import load_recipe
from tests.conftest import SMOKE

CPU = torch.device("cpu")
MIX = ["augment.mixup=0.8", "augment.cutmix=1.0"]
# Sizes (h, w) and how each file is stored: most are JPEGs of assorted sizes (some ≥ 2× and
# 4× the 32-pixel output, where `reduced` decodes at 1/2 or 1/4), with the other modes and
# formats Pillow reads among them.
FILES = [
    ((150, 200), "jpg", {"quality": 90}),
    ((200, 150), "jpg", {"quality": 85, "subsampling": 0}),  # 4:4:4
    ((97, 131), "jpg", {"quality": 90, "progressive": True}),
    ((300, 260), "jpg", {"quality": 92}),
    ((64, 48), "jpg", {"quality": 75}),
    ((120, 90), "gray.jpg", {"quality": 90}),
    ((110, 140), "cmyk.jpg", {"quality": 90}),
    ((40, 56), "png", {}),
    ((72, 60), "palette.png", {}),
    ((66, 80), "rgba.png", {}),
    ((90, 70), "16bit.png", {}),
    ((30, 41), "bmp", {}),
]


def picture(h: int, w: int, seed: int) -> Image.Image:
    """A real-looking picture: a colour gradient, smooth blobs and a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([xx, yy, 1 - xx * yy], -1) * rng.uniform(100, 200, 3)
    coarse = rng.uniform(0, 80, (h // 16 + 2, w // 16 + 2, 3)).astype(np.uint8)
    img += np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC), dtype=np.float64)
    img += rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def save(img: Image.Image, path: Path, kind: str, options: dict) -> None:
    if kind == "gray.jpg":
        img.convert("L").save(path, "JPEG", **options)
    elif kind == "cmyk.jpg":
        img.convert("CMYK").save(path, "JPEG", **options)
    elif kind == "palette.png":
        img.convert("P", palette=Image.Palette.ADAPTIVE).save(path)
    elif kind == "rgba.png":
        a = img.convert("RGBA")
        a.putalpha(128)
        a.save(path)
    elif kind == "16bit.png":
        Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257).save(path)
    else:
        img.save(path, **options)


def photo_folder(root: Path, per_class: int = len(FILES)) -> Path:
    """train/ and val/, two classes, the `FILES` (per class, rotated), real-looking."""
    seed = 0
    for split, count in (("train", per_class), ("val", 3)):
        for c, cls in enumerate(("a", "b")):
            (root / split / cls).mkdir(parents=True)
            for i in range(count):
                (h, w), kind, options = FILES[(i + c) % len(FILES)]
                seed += 1
                save(picture(h, w, seed), root / split / cls / f"{i:02d}.{kind}", kind, options)
    return root


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return photo_folder(tmp_path_factory.mktemp("photos"))


def recipe(root: Path, *sets: str, **shortcuts):
    return load_recipe(SMOKE, [f"data.root={root}", "data.name=imagefolder", "data.options={}",
                               "data.num_classes=2", "teacher.kwargs.num_classes=2",
                               "data.batch_size=8", "run.log_every=2", "data.pipeline=tensor",
                               *sets], **shortcuts)


def loader_images(r, epoch: int = 1) -> dict[int, torch.Tensor]:
    """Every training image of `epoch`, augmented, by index."""
    data = build_data(r.data, r.augment, r.run.seed)
    out = {}
    for batch in data.epoch(epoch):
        batch = augment_batch(batch, data.train.augment, CPU)
        for b, index in enumerate(batch.index.tolist()):
            out[index] = batch.images[b]
    return out


def reference(r, indices, epoch: int = 1) -> dict[int, torch.Tensor]:
    """The tensor path as it was: each image decoded whole (`load_image`), its parameters
    drawn from its size, and the whole image resampled by the device (`TensorAugment`)."""
    augment = TensorAugment(r.data, r.augment, r.run.seed)
    samples = build_train_dataset(r.data, r.augment, r.run.seed).base.samples
    out = {}
    for index in indices:
        a = torch.from_numpy(np.array(load_image(samples[index][0], "RGB"))).permute(2, 0, 1)
        key = (epoch, index, 0, 0)
        params = augment.params([key], [tuple(a.shape[-2:])])
        out[index] = augment([a], params, CPU)[0]
    return out


@pytest.mark.parametrize("decode", ["full", "device"])
def test_worker_crops_are_the_device_resampling_of_the_whole_image(photos, decode):
    """Every sample, every format: the loader's augmented image equals the tensor path's on
    the whole decoded image, for `full` and for `device` on the CPU (torchvision's decoder
    reads these JPEGs as Pillow does; CMYK and the other formats decode in the worker)."""
    r = recipe(photos, f"data.decode={decode}", "data.num_workers=0")
    got = loader_images(r)
    assert len(got) == 2 * len(FILES) - (2 * len(FILES)) % 8  # the last partial batch dropped
    ref = reference(r, got)
    assert all(torch.equal(got[i], ref[i]) for i in got), \
        [i for i in got if not torch.equal(got[i], ref[i])]


def test_the_worker_ships_fixed_size_crops_and_the_device_only_flips(photos, monkeypatch):
    r = recipe(photos, "data.num_workers=0")
    train_set = build_train_dataset(r.data, r.augment, r.run.seed)
    keys = [(0, i, 0, i) for i in range(8)]
    items = train_set.__getitems__(keys)
    assert all(tuple(im.shape) == (3, 32, 32) and im.dtype == torch.uint8 for im, *_ in items)
    assert (items.params["crop"] == torch.tensor([0, 0, 32, 32])).all()
    # the draws are the tensor path's for each image's own size, read from its header
    sizes = [Image.open(train_set.base.samples[i][0]).size[::-1] for i in range(8)]
    drawn = train_set.augment.params(keys, sizes)
    assert all(torch.equal(drawn[k], items.params[k]) for k in drawn if k != "crop")
    assert len({tuple(c) for c in drawn["crop"].tolist()}) == 8
    # on the device: no resampling, the flips alone
    called = []
    monkeypatch.setattr("distill.data.tensor_pipeline.resized_crop",
                        lambda *a, **k: called.append(1))
    batch = augment_batch(collate(items), train_set.augment, CPU)
    assert not called and batch.images.shape == (8, 3, 32, 32)


def test_a_samples_image_does_not_depend_on_batch_workers_or_world_size(photos):
    ref = loader_images(recipe(photos, "data.num_workers=0", "data.batch_size=8"))
    got = loader_images(recipe(photos, "data.num_workers=2", "data.batch_size=6"))
    shared = set(ref) & set(got)
    assert len(shared) >= 16 and all(torch.equal(got[i], ref[i]) for i in shared)
    r = recipe(photos, "data.num_workers=0", "data.batch_size=4")
    for rank in (0, 1):
        data = build_data(r.data, r.augment, r.run.seed, num_replicas=2, rank=rank)
        for batch in data.epoch(1):
            batch = augment_batch(batch, data.train.augment, CPU)
            for b, index in enumerate(batch.index.tolist()):
                if index in ref:
                    assert torch.equal(batch.images[b], ref[index])


def test_reduced_decoding_is_close_replays_and_differs_only_where_it_reduces(photos):
    full = loader_images(recipe(photos, "data.num_workers=0"))
    reduced = loader_images(recipe(photos, "data.decode=reduced", "data.num_workers=0"))
    again = loader_images(recipe(photos, "data.decode=reduced", "data.num_workers=2",
                                 "data.batch_size=6"))
    assert all(torch.equal(again[i], reduced[i]) for i in set(again) & set(reduced))
    differ = [i for i in full if not torch.equal(full[i], reduced[i])]
    assert 0 < len(differ) < len(full)  # the small images and the PNGs decode in full
    # normalised pixels (std 0.25): a mean difference under 0.05 is ~3 levels of 255
    gaps = [float((full[i] - reduced[i]).abs().mean()) for i in differ]
    assert max(gaps) < 0.05, gaps


def test_device_batches_carry_jpeg_files_and_worker_crops(photos):
    r = recipe(photos, "data.decode=device", "data.num_workers=0")
    train_set = build_train_dataset(r.data, r.augment, r.run.seed)
    keys = [(0, i, 0, i) for i in range(len(train_set))]
    batch = collate(train_set.__getitems__(keys))
    lengths = batch.aug["jpeg_bytes"]
    names = [f"{Path(p).parent.name}/{Path(p).name}" for p, _ in train_set.base.samples]
    on_device = [n for n, k in zip(names, lengths.tolist(), strict=True) if k]
    assert on_device and all(n.endswith(".jpg") and "cmyk" not in n for n in on_device)
    # baseline JPEGs: a progressive one is decoded in the worker (nvjpeg's hybrid path)
    progressive = {n for n, (p, _) in zip(names, train_set.base.samples, strict=True)
                   if Image.open(p).info.get("progressive")}
    assert progressive and not progressive & set(on_device)
    assert {n for n in names if n.endswith(".jpg") and "cmyk" not in n} - progressive \
        == set(on_device)
    assert batch.images.shape == (len(names) - len(on_device), 3, 32, 32)
    assert int(lengths.sum()) == len(batch.aug["jpeg"])
    crops = batch.aug["crop"][lengths > 0]
    assert not (crops == torch.tensor([0, 0, 32, 32])).all(1).any()  # boxes in the file
    # decoded on the device: the same images as the full decode in the worker
    full = recipe(photos, "data.num_workers=0")
    ref_set = build_train_dataset(full.data, full.augment, full.run.seed)
    ref = augment_batch(collate(ref_set.__getitems__(keys)), ref_set.augment, CPU)
    got = augment_batch(batch, train_set.augment, CPU)
    assert torch.equal(got.images, ref.images)


def test_evaluation_is_timms_eval_transform(photos):
    """Validation images on the tensor path: timm's eval transform (resize by crop_pct,
    centre crop) on the whole decoded image, whatever data.decode."""
    r = recipe(photos, "data.decode=reduced", "data.crop_pct=0.875")
    loader = build_val_loader(r.data, r.run.seed)
    batch = next(iter(loader))
    tf = eval_transform(r.data)
    samples = loader.dataset.base.samples
    for b, index in enumerate(batch.index.tolist()):
        assert torch.equal(batch.images[b], tf(load_image(samples[index][0], "RGB")))


@pytest.mark.parametrize("decode, mixing", [
    ("full", []), ("full", MIX), ("reduced", MIX), ("device", []),
], ids=["full", "full-mixup-cutmix", "reduced-mixup-cutmix", "device"])
def test_hard_cache_on_a_jpeg_folder_trains_exactly_like_the_live_teacher(
        tmp_path, photos, decode, mixing):
    sets = [f"data.decode={decode}", "data.num_workers=0", "schedule.epochs=2", *mixing]
    cache = tmp_path / "cache"
    build_cache(recipe(photos, *sets), cache, store="hard", reporter=Reporter())
    manifest = load_manifest(cache)
    assert manifest.transform["pipeline"] == "tensor"
    assert manifest.transform.get("decode", "full") == decode
    live = train(recipe(photos, *sets, f"run.out={tmp_path / 'live'}"), reporter=Reporter())
    cached = train(recipe(photos, *sets, "data.num_workers=2", f"run.out={tmp_path / 'cached'}",
                          teacher=f"cache:{cache}"), reporter=Reporter())
    a, b = load_file(live.out / "model.safetensors"), load_file(cached.out / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert cached.summary["teacher_top1"] == live.summary["teacher_top1"]


@pytest.fixture(scope="module")
def caches(tmp_path_factory, photos) -> dict[str, Path]:
    """A one-epoch full-store cache of each decoding."""
    out = {}
    for decode in ("full", "reduced"):
        cache = tmp_path_factory.mktemp(f"cache-{decode}")
        build_cache(recipe(photos, f"data.decode={decode}", "schedule.epochs=1",
                           "data.num_workers=0"), cache, store="full", reporter=Reporter())
        out[decode] = cache
    return out


@pytest.mark.parametrize("built, run", [("full", "reduced"), ("reduced", "full"),
                                         ("full", "device"), ("reduced", "device")])
def test_a_cache_is_refused_for_a_run_of_another_decode(tmp_path, photos, caches, built, run):
    out = tmp_path / "run"
    with pytest.raises(UsageError, match=rf"data\.decode \(cache '{built}', run '{run}'\)") as err:
        train(recipe(photos, f"data.decode={run}", "schedule.epochs=1", f"run.out={out}",
                     teacher=f"cache:{caches[built]}"))
    assert "\n" not in str(err.value)
    assert not out.exists()


def test_a_device_decoded_cache_replays_only_on_its_decoder(tmp_path, photos):
    """`data.decode: device` records the decoder that built the cache (device type,
    torchvision; on CUDA the GPU, CUDA and nvjpeg): a run, or a resumed build, on another
    decoder is refused naming data.decode and each fact that differs."""
    import json

    import torchvision

    from distill.data.decode import device_decoder

    sets = ["data.decode=device", "data.num_workers=0", "schedule.epochs=1"]
    cache = tmp_path / "cache"
    build_cache(recipe(photos, *sets), cache, store="hard", evaluate=False, reporter=Reporter())
    assert load_manifest(cache).transform["decoder"] == device_decoder(CPU) == {
        "device": "cpu", "torchvision": torchvision.__version__}
    doc = json.loads((cache / "manifest.json").read_text())
    doc["transform"]["decoder"] = {"device": "cuda", "torchvision": torchvision.__version__,
                                   "gpu": "NVIDIA H100 80GB HBM3", "cuda": "13.0",
                                   "nvjpeg": "libnvjpeg.so.13"}
    (cache / "manifest.json").write_text(json.dumps(doc))
    out = tmp_path / "run"
    with pytest.raises(UsageError, match="does not fit") as err:
        train(recipe(photos, *sets, f"run.out={out}", teacher=f"cache:{cache}"))
    text = str(err.value)
    assert "\n" not in text and "data.decode: device with another decoder" in text
    assert "device (cache 'cuda', run 'cpu')" in text
    assert "gpu (cache 'NVIDIA H100 80GB HBM3', run None)" in text and not out.exists()
    with pytest.raises(UsageError, match="holds a different cache .*transform"):
        build_cache(recipe(photos, *sets), cache, store="hard", evaluate=False,
                    reporter=Reporter())
    del doc["transform"]["decoder"]  # a cache that does not say which decoder built it
    (cache / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(UsageError, match="does not record which decoder built it"):
        train(recipe(photos, *sets, f"run.out={out}", teacher=f"cache:{cache}"))


def test_cache_verify_live_recomputes_with_the_caches_decode(caches):
    """`cache verify --live` decodes as the cache was built: its rows agree for each
    decoding; told the other decoding (a manifest edited by hand), they no longer do."""
    honest = {}
    for decode, cache in caches.items():
        honest[decode] = live_check(cache, 16)  # fp16 storage alone: ~1e-5 on these logits
        assert honest[decode]["argmax_mismatch"] == 0, honest
        assert honest[decode]["max_abs_diff"] < 1e-4, honest
    cache = caches["reduced"]
    doc = json.loads((cache / "manifest.json").read_text())
    doc["recipe"]["data"]["decode"] = "full"
    (cache / "manifest.json").write_text(json.dumps(doc))
    try:
        res = live_check(cache, 16)  # the same rows, recomputed on full decodes
        assert res["max_abs_diff"] > 5 * honest["reduced"]["max_abs_diff"], (res, honest)
    finally:
        doc["recipe"]["data"]["decode"] = "reduced"
        (cache / "manifest.json").write_text(json.dumps(doc))


def test_decode_is_a_tensor_pipeline_field(photos, cli):
    res = cli("recipe", "schema")
    field = json.loads(res.out)["$defs"]["DataConfig"]["properties"]["decode"]
    assert field["enum"] == ["full", "reduced", "device"] and field["default"] == "full"
    with pytest.raises(UsageError, match=r"data\.decode: 'reduced' needs data\.pipeline: "
                                         r"tensor") as err:
        recipe(photos, "data.pipeline=pil", "data.decode=reduced")
    assert "\n" not in str(err.value)
    with pytest.raises(UsageError, match=r"data\.decode: .*'full', 'reduced' or 'device'"):
        recipe(photos, "data.decode=half")
    assert recipe(photos).data.decode == "full"


@pytest.mark.cuda
def test_device_decode_on_cuda_replays_and_is_close_to_the_cpu_decode(photos):
    """nvjpeg's pixels are not libjpeg-turbo's to the bit: close ones; and a sample's image
    does not depend on the batch it is decoded in."""
    cuda = torch.device("cuda")
    r = recipe(photos, "data.decode=device", "data.num_workers=0")
    train_set = build_train_dataset(r.data, r.augment, r.run.seed)
    keys = [(0, i, 0, i) for i in range(len(train_set))]
    whole = augment_batch(collate(train_set.__getitems__(keys)), train_set.augment, cuda).images
    halves = torch.cat([augment_batch(collate(train_set.__getitems__(part)), train_set.augment,
                                      cuda).images for part in (keys[::2], keys[1::2])])
    order = [*range(0, len(keys), 2), *range(1, len(keys), 2)]
    assert torch.equal(whole[order], halves)
    cpu = augment_batch(collate(train_set.__getitems__(keys)), train_set.augment, CPU).images
    assert float((whole.cpu() - cpu).abs().mean()) < 0.05


class _InMemoryFiles(torch.utils.data.Dataset):
    """A dataset whose samples come as encoded bytes with a name (as tar shards give them)."""

    def __init__(self, folder):
        self.folder = folder

    def __len__(self):
        return len(self.folder)

    def __getitem__(self, index):  # not read by the tensor pipeline
        raise AssertionError("the tensor pipeline reads image_file")

    def image_file(self, index):
        path, label = self.folder.samples[index]
        return Path(path).read_bytes(), label, f"shard-0.tar:{Path(path).name}"


@pytest.mark.parametrize("decode", ["full", "reduced", "device"])
def test_samples_given_as_bytes_decode_as_their_files(photos, decode):
    from distill.data import ReplayDataset

    r = recipe(photos, f"data.decode={decode}", "data.num_workers=0")
    files = build_train_dataset(r.data, r.augment, r.run.seed)
    as_bytes = ReplayDataset(_InMemoryFiles(files.base), files.transform, files.seed, files.mode,
                             augment=files.augment)
    keys = [(2, i, 0, i) for i in range(len(files))]
    a = augment_batch(collate(files.__getitems__(keys)), files.augment, CPU)
    b = augment_batch(collate(as_bytes.__getitems__(keys)), files.augment, CPU)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    if decode == "device":
        names = collate(as_bytes.__getitems__(keys)).aug["jpeg_names"]
        assert names and all(n.startswith("shard-0.tar:") for n in names)
