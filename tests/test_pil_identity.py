"""The `pil` pipeline's images, bit for bit (issue 24: its loader made cheaper, no image changed).

- The definition of replay: for a key (epoch, index, repeat, position), the image is timm's
  whole transform applied to the sample's image under `reseed(derive_seed(seed, epoch,
  index, repeat))`. The dataset, one item or a batch, and the training loader with a worker
  give exactly that, for a folder of photos of several sizes and modes (training and
  evaluation transforms) and for Fashion-MNIST.
- A few keys' images, and finished (mixed) training batches, hash as they did before the
  loader was changed. The hashes hold in the environment they were recorded in (library
  versions, the CPU's vector unit); elsewhere that check is skipped and the first one holds.
"""

from __future__ import annotations

import hashlib
import platform

import numpy as np
import PIL
import pytest
import timm
import torch
from PIL import Image

from distill.data import Mixer, build_data, build_train_dataset, build_val_loader
from distill.data.datasets import FASHION_MNIST_ROOT
from distill.data.images import convert_image
from distill.data.replay import derive_seed, preserved_rngs, reseed
from distill.recipe import load_recipe
from tests.conftest import ROOT

PAPER_AUG = ["augment.scale=[0.08, 1.0]", "augment.auto_augment=rand-m9-mstd0.5-inc1",
             "augment.re_prob=0.25", "augment.re_mode=pixel", "augment.mixup=0.8",
             "augment.cutmix=1.0", "augment.repeated_aug=1", "data.pipeline=pil"]

# (size, mode, format) of the folder's images: photos of several shapes, grayscale, palette,
# alpha, and one smaller than the output.
FILES = [((320, 240), "RGB", "JPEG"), ((240, 320), "RGB", "PNG"), ((500, 375), "RGB", "JPEG"),
         ((200, 150), "L", "PNG"), ((180, 180), "P", "PNG"), ((150, 210), "RGBA", "PNG"),
         ((48, 40), "RGB", "JPEG"), ((260, 200), "RGB", "PNG")]

# sha256 of the images of KEYS (then of the val images, then of two finished training
# batches), recorded at commit a9b8bf8, before the pil loader's overhead was cut.
RECORDED_ENV = {"pillow": "12.3.0", "timm": "1.0.31", "torch": "2.14.1", "numpy": "2.4.6",
                "cpu": "AVX2", "machine": "x86_64"}
RECORDED = {
    "folder": {"items": "127e9a2369b097dfa8a92e87497283da3bd15a860c218b195e4a1c2ee1dce8e9",
               "val": "822ac1479f8d74ef73e043ca7527f4827202114a0ed326c0a26053d05f16978d",
               "batches": "d7b603a2273ca7ca091fc0844702a00b84c8c92488665d3e6b9e41d7ed8d5155"},
    "fmnist": {"items": "ad6cfe7073a32351ddcf431289f4085f2dbde74fcf8ead2c4601a2be51e4f0b5",
               "val": "34523457d6cafe37bbb895c0b10a9ac07d1ce6a20ac468f5a34162eb92a0abaf",
               "batches": "5f0e0bf5ac9637d3a83faed7422c3e3eccb505533cb914e22ae0b69a9942d781"},
}


def environment() -> dict[str, str]:
    return {"pillow": PIL.__version__, "timm": timm.__version__,
            "torch": torch.__version__.split("+")[0], "numpy": np.__version__,
            "cpu": torch.backends.cpu.get_cpu_capability(), "machine": platform.machine()}


def photo_folder(root) -> None:
    """`root/{train,val}/class_{0,1}/…`: FILES, smooth random pictures (seeded)."""
    rng = np.random.default_rng(24)
    for split in ("train", "val"):
        for i, ((w, h), mode, fmt) in enumerate(FILES):
            low = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 4), dtype=np.uint8)
            img = Image.fromarray(low, "RGBA").resize((w, h), Image.BILINEAR)
            img = img.convert(mode) if mode in ("L", "RGBA") else (
                img.convert("RGB").quantize(16) if mode == "P" else img.convert("RGB"))
            folder = root / split / f"class_{i % 2}"
            folder.mkdir(parents=True, exist_ok=True)
            img.save(folder / f"img_{i}.{'jpg' if fmt == 'JPEG' else 'png'}", fmt, quality=90)


def folder_recipe(tmp_path, *extra: str):
    photo_folder(tmp_path)
    return load_recipe(ROOT / "recipes/imagenet/deit_tiny_none.yaml",
                       [f"data.root={tmp_path}", "data.num_classes=2", "data.img_size=64",
                        "data.batch_size=4", "data.num_workers=0", *PAPER_AUG, *extra])


def fmnist_recipe(*extra: str):
    return load_recipe(ROOT / "recipes/fmnist/deit_none.yaml",
                       ["data.train_limit=64", "data.val_limit=16", "data.batch_size=16",
                        "data.num_workers=0", *PAPER_AUG, *extra])


def expected(ds, key) -> torch.Tensor:
    """Replay's definition: the transform on the sample's image under the sample's seeds."""
    epoch, index, repeat, _ = (0, key, 0, key) if isinstance(key, int) else key
    img, _ = ds.base[index]
    if ds.mode is not None and img.mode != ds.mode:
        img = convert_image(img, ds.mode)
    with preserved_rngs():
        reseed(derive_seed(ds.seed, epoch, index, repeat))
        return ds.transform(img)


def keys_of(n: int) -> list[tuple[int, int, int, int]]:
    """Keys of two epochs, repeats 0 and 1, in a shuffled order."""
    return [(e, (5 * p + e) % n, r, p) for e in (0, 3) for r in (0, 1) for p in range(n)]


def sha(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(str(tuple(t.shape)).encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def finished_batches(recipe, steps: int = 2) -> list[torch.Tensor]:
    """The first `steps` training batches as the training loop makes them (mixed)."""
    data = build_data(recipe.data, recipe.augment, recipe.run.seed)
    mixer = Mixer.from_recipe(recipe)
    out = []
    for i, batch in enumerate(data.epoch(1)):
        if i == steps:
            break
        x, y, _ = mixer(batch.images, batch.labels, 1, i)
        out += [x, y]
    return out


def check_dataset(recipe) -> tuple[str, str]:
    ds = build_train_dataset(recipe.data, recipe.augment, recipe.run.seed)
    keys = keys_of(len(ds))
    want = [expected(ds, k) for k in keys]
    batch = ds.__getitems__(keys)
    got = [item[0] for item in batch]
    assert len(got) == len(want)
    for k, g, w in zip(keys, got, want):
        assert g.dtype == w.dtype and torch.equal(g, w), f"key {k}: the image changed"
    for k in (keys[0], keys[-1], 3):
        assert torch.equal(ds[k][0], expected(ds, k))
    val = build_val_loader(recipe.data, recipe.run.seed).dataset
    val_images = [item[0] for item in val.__getitems__(list(range(len(val))))]
    for i, g in enumerate(val_images):
        assert torch.equal(g, expected(val, i)), f"val image {i} changed"
    return sha(got), sha(val_images)


def check_recorded(name: str, items: str, val: str, batches: str) -> None:
    env = environment()
    if env != RECORDED_ENV:
        pytest.skip(f"hashes recorded in {RECORDED_ENV}, this is {env} (the definition "
                    "checks above hold everywhere)")
    assert {"items": items, "val": val, "batches": batches} == RECORDED[name]


def test_folder_images_are_replays_definition(tmp_path):
    r = folder_recipe(tmp_path)
    items, val = check_dataset(r)
    check_recorded("folder", items, val, sha(finished_batches(r)))


def test_folder_batches_from_a_worker_equal_the_definition(tmp_path):
    """Through the training loader with a worker process (its batches cross processes)."""
    r = folder_recipe(tmp_path, "data.num_workers=1")
    data = build_data(r.data, r.augment, r.run.seed)
    keys = iter(data.sampler.keys())
    for batch in data.epoch(0):
        want = torch.stack([expected(data.train, next(keys)) for _ in range(len(batch.images))])
        assert torch.equal(batch.images, want)
    zero = load_recipe(ROOT / "recipes/imagenet/deit_tiny_none.yaml",
                       [f"data.root={tmp_path}", "data.num_classes=2", "data.img_size=64",
                        "data.batch_size=4", "data.num_workers=0", *PAPER_AUG])
    assert [torch.equal(a, b) for a, b in zip(finished_batches(r), finished_batches(zero))] \
        == [True] * 4


@pytest.mark.fmnist
@pytest.mark.skipif(not FASHION_MNIST_ROOT.exists(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_images_are_replays_definition():
    r = fmnist_recipe()
    items, val = check_dataset(r)
    check_recorded("fmnist", items, val, sha(finished_batches(r)))



@pytest.mark.parametrize("size", [2, 6, 18, 22])
def test_batch_mixing_equals_timm_for_several_blocks_of_pairs(size):
    """Batch-mode mixup and cutmix (blended a few pairs at a time, the box alone flipped)
    give timm's `Mixup` bit for bit, for batches of one block of pairs and of several."""
    from timm.data import Mixup

    from distill.data import seeded

    r = load_recipe(ROOT / "recipes/smoke.yaml", ["augment.mixup=0.8", "augment.cutmix=1.0",
                                                   "augment.mixup_mode=batch"])
    theirs = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5, mode="batch",
                   label_smoothing=0.1, num_classes=10)
    g = torch.Generator().manual_seed(size)
    mixed = 0
    for step in range(8):
        x = torch.randn(size, 3, 9, 11, generator=g)
        y = torch.randint(0, 10, (size,), generator=g)
        ours, y_ours, lam = Mixer(r.augment, 10, smoothing=0.1, seed=0)(x.clone(), y, 0, step)
        with seeded(0, "mix", 0, step, 0):
            want, y_want = theirs(x.clone(), y)
        assert torch.equal(ours, want) and torch.equal(y_ours, y_want)
        mixed += lam != 1.0
    assert mixed >= 4


@pytest.mark.parametrize("size", [1, 5, 17, 21])
def test_blending_an_odd_batch_equals_the_whole_flip(size):
    """timm's Mixup takes even batches only; ours, any: the middle sample is its own partner,
    the same floats as `x.mul_(lam).add_(x.flip(0).mul_(1 - lam))`."""
    from distill.data.mixing import _blend_flipped

    x = torch.randn(size, 3, 5, 7, generator=torch.Generator().manual_seed(size))
    for lam in (0.3, 0.771234, 0.5):
        want = x.clone()
        want.mul_(lam).add_(x.flip(0).mul_(1.0 - lam))
        got = x.clone()
        _blend_flipped(got, lam)
        assert torch.equal(got, want)
