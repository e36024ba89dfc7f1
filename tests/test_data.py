"""Datasets and replayable augmentation: the same key gives the same image, always."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from distill.data import Mixer, build_data, build_dataset, seeded
from distill.data.datasets import FASHION_MNIST_ROOT, fashion_mnist, read_idx, synthetic
from distill.data.replay import ReplaySampler
from distill.errors import UsageError
from distill.recipe import load_recipe
from distill.registry import DATASETS


def smoke_recipe(*sets: str):
    return load_recipe("recipes/smoke.yaml", list(sets))


def batches(loader: DataLoader, epoch_data, epoch: int) -> dict[tuple, torch.Tensor]:
    """image per (index) for one epoch, from whatever loader."""
    out = {}
    for x, _, idx, *_ in epoch_data(epoch):
        for xi, i in zip(x, idx.tolist()):
            out[i] = xi
    return out


def test_augmentation_replays_across_workers_and_batch_sizes():
    r = smoke_recipe()  # RandAugment, random erasing, crop and flip all on
    a = build_data(r.data, r.augment, seed=0)
    r2 = smoke_recipe("data.num_workers=2", "data.batch_size=8")
    b = build_data(r2.data, r2.augment, seed=0)
    ea, eb = batches(None, a.epoch, 1), batches(None, b.epoch, 1)
    assert set(ea) == set(eb) and len(ea) == 256
    assert all(torch.equal(ea[i], eb[i]) for i in ea)
    # Direct access by key gives the same image, in any order.
    assert torch.equal(a.train[(1, 17, 0, 5)][0], ea[17])
    # Another epoch or seed gives other augmentations.
    assert not torch.equal(a.train[(2, 17, 0, 5)][0], ea[17])
    c = build_data(r.data, r.augment, seed=1)
    assert not torch.equal(c.train[(1, 17, 0, 5)][0], ea[17])


def test_replay_leaves_global_generators_alone():
    r = smoke_recipe()
    data = build_data(r.data, r.augment, seed=0)
    torch.manual_seed(5)
    np.random.seed(5)
    expected = (torch.rand(3), np.random.rand(3))
    torch.manual_seed(5)
    np.random.seed(5)
    data.train.__getitems__([(0, i, 0, i) for i in range(4)])
    data.train[(0, 9, 0, 9)]
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3),
                                                                       expected[1])


def test_sampler_orders_epochs_and_repeats():
    s = ReplaySampler(10, seed=0)
    e0 = s.keys()
    s.set_epoch(1)
    e1 = s.keys()
    assert sorted(k[1] for k in e0) == list(range(10)) and [k[1] for k in e0] != [
        k[1] for k in e1]
    assert all(k[0] == 1 for k in e1)
    assert [k[3] for k in e0] == list(range(10))  # one rank: positions in order
    ra = ReplaySampler(12, seed=0, repeats=3)
    keys = ra.keys()
    assert len(keys) == 12 and keys[0][1] == keys[1][1] == keys[2][1]
    assert [k[2] for k in keys[:3]] == [0, 1, 2]  # copies differ by their repeat number
    ranks = [ReplaySampler(12, seed=0, repeats=3, num_replicas=2, rank=r).keys() for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 6 and not set(ranks[0]) & set(ranks[1])
    # Dealt in turn: rank r holds global positions r, r+2, r+4, ...
    assert [k[3] for k in ranks[1]] == [1, 3, 5, 7, 9, 11]
    odd = [ReplaySampler(5, seed=0, num_replicas=2, rank=r).keys() for r in (0, 1)]
    assert odd[1][-1] == odd[0][0]  # padding repeats the first key, position included


def test_mixer_is_seeded_per_step():
    r = smoke_recipe("augment.mixup=0.8", "augment.cutmix=1.0")
    mix = Mixer(r.augment, 10, smoothing=0.1, seed=0)
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    a, ya, lam = mix(x.clone(), y, epoch=0, step=3)
    b, yb, _ = mix(x.clone(), y, epoch=0, step=3)
    c, _, _ = mix(x.clone(), y, epoch=0, step=4)
    assert torch.equal(a, b) and torch.equal(ya, yb) and ya.shape == (4, 10)
    assert not torch.equal(a, c)
    # λ is what timm used: the targets are λ·onehot(y) + (1−λ)·onehot(y.flip(0)), smoothed.
    one = torch.nn.functional.one_hot(y, 10).float() * 0.9 + 0.01
    assert torch.allclose(ya, lam * one + (1 - lam) * one.flip(0), atol=1e-6)


MIX_CONFIGS = {  # (mixup alpha, cutmix alpha, mixup_prob): mixup, cutmix, both (switching)
    "mixup": (0.8, 0.0, 1.0), "cutmix": (0.0, 1.0, 1.0), "both": (0.8, 1.0, 1.0),
    "both_sometimes": (0.8, 1.0, 0.6),
}


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("config", list(MIX_CONFIGS))
def test_mixer_equals_timm_mixup(mode, config):
    """Our draws and mixing are timm's `Mixup.__call__`, bit for bit, under the same seeding;
    λ is the one the targets were mixed with."""
    from timm.data import Mixup
    from timm.data.mixup import mixup_target

    alpha, cut, prob = MIX_CONFIGS[config]
    r = smoke_recipe(f"augment.mixup={alpha}", f"augment.cutmix={cut}",
                     f"augment.mixup_prob={prob}", "augment.switch_prob=0.5",
                     f"augment.mixup_mode={mode}")
    timm_mix = Mixup(mixup_alpha=alpha, cutmix_alpha=cut, prob=prob, switch_prob=0.5, mode=mode,
                     label_smoothing=0.1, num_classes=10)
    g = torch.Generator().manual_seed(0)
    unmixed = 0
    for seed in (0, 1, 7):
        mix = Mixer(r.augment, 10, smoothing=0.1, seed=seed)
        for epoch, step, rank in ((0, 0, 0), (0, 1, 0), (1, 5, 0), (2, 3, 1), (3, 11, 2)):
            x = torch.randn(6, 3, 12, 10, generator=g)  # not square: rows and columns differ
            y = torch.randint(0, 10, (6,), generator=g)
            ours, y_ours, lam = mix(x.clone(), y, epoch, step, rank)
            with seeded(seed, "mix", epoch, step, rank):
                theirs, y_theirs = timm_mix(x.clone(), y)
            assert torch.equal(ours, theirs) and torch.equal(y_ours, y_theirs)
            assert torch.equal(y_ours, mixup_target(y, 10, lam, 0.1))
            if mode == "batch":
                assert isinstance(lam, float)
                unmixed += lam == 1.0
            else:
                assert lam.shape == (6, 1) and lam.dtype == x.dtype
                if mode == "pair":  # a pair shares its λ
                    assert torch.equal(lam, lam.flip(0))
    if prob < 1 and mode == "batch":
        assert unmixed > 0  # the mixup_prob draw left some batches alone


def test_synthetic_is_seeded_and_learnable_shape():
    a, b = synthetic("train", train_size=20), synthetic("train", train_size=20)
    assert np.array_equal(a.images, b.images) and a.num_classes == 10
    assert not np.array_equal(a.images, synthetic("train", train_size=20, seed=1).images)
    gray = synthetic("val", in_chans=1, img_size=16, val_size=5)
    img, label = gray[0]
    assert img.mode == "L" and img.size == (16, 16) and 0 <= label < 10


def write_idx(path, array: np.ndarray, gz: bool = True) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def test_fashion_mnist_reader(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (6, 28, 28)).astype(np.uint8)
    labels = np.array([0, 1, 2, 3, 4, 9], dtype=np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, gz=False)
    ds = fashion_mnist("val", root=tmp_path)
    assert len(ds) == 6 and ds.num_classes == 10
    img, label = ds[5]
    assert label == 9 and np.array_equal(np.asarray(img), images[5])
    with pytest.raises(UsageError, match="has no train-images-idx3-ubyte"):
        fashion_mnist("train", root=tmp_path)
    (tmp_path / "cut.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1, 2])))
    with pytest.raises(UsageError, match="truncated IDX"):
        read_idx(tmp_path / "cut.gz")


@pytest.mark.fmnist
@pytest.mark.skipif(not FASHION_MNIST_ROOT.exists(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    train, val = fashion_mnist("train"), fashion_mnist("val")
    assert (len(train), len(val)) == (60000, 10000)
    assert np.bincount(val.labels).tolist() == [1000] * 10


def test_dataset_class_count_is_checked(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(2))
    r = load_recipe(None, ["data.name=fashion_mnist", f"data.root={tmp_path}",
                           "data.num_classes=12", "data.in_chans=1", "data.mean=[0.5]",
                           "data.std=[0.5]", "student.name=deit_tiny_patch16_224",
                           "loss.name=none"])
    with pytest.raises(UsageError, match="data.num_classes: 12 but dataset 'fashion_mnist'"):
        build_dataset(r.data, "val")


def test_train_limit_keeps_dataset_attributes():
    r = smoke_recipe("data.train_limit=10")
    ds = build_dataset(r.data, "train")
    assert len(ds) == 10 and ds.num_classes == 10


def test_seeded_restores_state():
    torch.manual_seed(0)
    ref = torch.rand(2)
    torch.manual_seed(0)
    with seeded(1, 2, 3):
        inside = torch.rand(2)
    assert torch.equal(torch.rand(2), ref)
    with seeded(1, 2, 3):
        assert torch.equal(torch.rand(2), inside)


def test_imagefolder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(
                    folder / f"{i}.png")
    r = load_recipe(None, ["data.name=imagefolder", f"data.root={tmp_path}",
                           "data.num_classes=2", "data.img_size=32", "data.batch_size=2",
                           "data.num_workers=0", "augment.mixup=0", "augment.cutmix=0",
                           "student.name=deit_tiny_patch16_224", "loss.name=none"])
    data = build_data(r.data, r.augment, seed=0)
    x, y, *_ = next(data.epoch(0))
    assert x.shape == (2, 3, 32, 32) and set(y.tolist()) <= {0, 1}
    assert data.train.base.classes == ("cat", "dog")
    with pytest.raises(UsageError, match="has no 'val/' folder"):
        from distill.data.datasets import imagefolder

        imagefolder("val", root=tmp_path / "train")


def test_dataset_fingerprints_tell_data_apart(tmp_path):
    """What a logit cache keys on: labels and content, separately; a subset is other data."""
    import shutil

    from distill.data import dataset_fingerprint
    from distill.data.datasets import imagefolder

    test_imagefolder(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # a copy elsewhere is the same data
    fa = dataset_fingerprint(imagefolder("train", root=tmp_path / "a"))
    assert fa == dataset_fingerprint(imagefolder("train", root=tmp_path / "b"))
    with open(tmp_path / "b" / "train" / "cat" / "0.png", "ab") as fh:
        fh.write(b"more")  # another file content (size)
    fb = dataset_fingerprint(imagefolder("train", root=tmp_path / "b"))
    assert fb["labels_sha256"] == fa["labels_sha256"] and fb["content_sha256"] != fa["content_sha256"]
    full = build_dataset(smoke_recipe().data, "train")
    part = build_dataset(smoke_recipe("data.train_limit=10").data, "train")
    assert dataset_fingerprint(part) != dataset_fingerprint(full)

    class Plain(torch.utils.data.Dataset):  # no fingerprint(): every item is hashed
        def __init__(self, labels):
            self.labels = labels

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            return np.full((2, 2), i, dtype=np.uint8), self.labels[i]

    a, b = dataset_fingerprint(Plain([0, 1])), dataset_fingerprint(Plain([0, 0]))
    assert a["content_sha256"] == b["content_sha256"] and a["labels_sha256"] != b["labels_sha256"]


def _tiny_fashion_mnist(tmp_path):
    for prefix, n in (("train", 4), ("t10k", 2)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", np.zeros((n, 28, 28)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return {"root": tmp_path}


def _tiny_imagefolder(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        (tmp_path / split / "a").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / split / "a" / "0.png")
    return {"root": tmp_path}


def _tiny_webdataset(tmp_path):
    from distill.data.pack import pack_folder

    _tiny_imagefolder(tmp_path / "folder")
    pack_folder(tmp_path / "folder", tmp_path / "shards")
    return {"root": tmp_path / "shards", "num_classes": 1}


def _tiny_hf(tmp_path):
    import io

    datasets = pytest.importorskip("datasets")
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    features = datasets.Features({"image": datasets.Image(),
                                  "label": datasets.ClassLabel(names=["a"])})
    table = datasets.Dataset.from_dict({"image": [{"bytes": buf.getvalue(), "path": None}],
                                        "label": [0]}, features=features)
    datasets.DatasetDict({"train": table, "validation": table}).save_to_disk(str(tmp_path / "hf"))
    return {"root": tmp_path / "hf"}


DATASET_FIXTURES = {
    "synthetic": lambda tmp: {"train_size": 4, "val_size": 2},
    "fashion_mnist": _tiny_fashion_mnist,
    "imagefolder": _tiny_imagefolder,
    "webdataset": _tiny_webdataset,
    "hf": _tiny_hf,
}


@pytest.mark.parametrize("name", [n for n in DATASETS.names()
                                  if not DATASETS.entry(n).source.startswith("plugin ")])
def test_every_registered_dataset(name, tmp_path):
    """Each built-in dataset yields (PIL image, int) with its class count (a new one needs a
    fixture here, as timm's tests walk its model registry)."""
    assert name in DATASET_FIXTURES, f"add a tiny fixture for dataset '{name}'"
    options = DATASET_FIXTURES[name](tmp_path)
    for split in ("train", "val"):
        ds = DATASETS.build(name, split=split, **options)
        img, label = ds[0]
        assert hasattr(img, "mode") and isinstance(label, int) and ds.num_classes >= 1


def _one_image_folder(tmp_path, save, name="0.png"):
    """root/train/a/<name> written by `save(path)`; the folder's dataset."""
    from distill.data.datasets import imagefolder

    (tmp_path / "train" / "a").mkdir(parents=True)
    save(tmp_path / "train" / "a" / name)
    return lambda in_chans: imagefolder("train", root=tmp_path, in_chans=in_chans)


@pytest.mark.parametrize("kind", ["png16", "tiff32"])
def test_16_bit_images_are_scaled_not_clipped(tmp_path, kind):
    from PIL import Image

    values = np.array([[0, 257, 25700, 32896, 65535]])  # 0, 1, 100, 128, 255 in 8 bits
    if kind == "png16":  # PIL opens it as "I;16"
        save = lambda p: Image.fromarray(values.astype(np.uint16)).save(p)  # noqa: E731
    else:  # 32-bit integers ("I"), as PIL opens 16-bit data of some TIFF and PNG files
        save = lambda p: Image.fromarray(values.astype(np.int32)).save(p)  # noqa: E731
    ds = _one_image_folder(tmp_path, save, "0.png" if kind == "png16" else "0.tif")
    gray, _ = ds(1)[0]
    assert gray.mode == "L" and np.asarray(gray).tolist() == [[0, 1, 100, 128, 255]]
    rgb, _ = ds(3)[0]
    assert rgb.mode == "RGB" and np.asarray(rgb)[..., 1].tolist() == [[0, 1, 100, 128, 255]]


def test_odd_modes_are_converted_or_refused():
    """Palette (with transparency), RGBA, LA and CMYK give their colours (alpha dropped);
    float images are scaled from 0..1; what cannot be converted is refused, named."""
    import warnings

    from PIL import Image

    from distill.data.datasets import convert_image
    from distill.data.errors import DataError

    pal = Image.new("P", (2, 1))
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pal.putpixel((1, 0), 1)
    pal.info["transparency"] = bytes([0] + [255] * 255)  # colour 0 fully transparent
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL warns on P → RGB with transparency bytes
        rgb = convert_image(pal, "RGB")
    assert np.asarray(rgb).tolist() == [[[10, 20, 30], [200, 100, 50]]]
    assert np.asarray(convert_image(pal, "L")).tolist() == [[
        int(np.asarray(Image.new("RGB", (1, 1), (10, 20, 30)).convert("L"))[0, 0]),
        int(np.asarray(Image.new("RGB", (1, 1), (200, 100, 50)).convert("L"))[0, 0])]]
    rgba = Image.new("RGBA", (1, 1), (40, 50, 60, 0))
    assert np.asarray(convert_image(rgba, "RGB")).tolist() == [[[40, 50, 60]]]
    assert np.asarray(convert_image(Image.new("LA", (1, 1), (77, 0)), "RGB")).tolist() == [
        [[77, 77, 77]]]
    cmyk = Image.new("CMYK", (1, 1), (0, 255, 255, 0))  # pure red
    assert np.asarray(convert_image(cmyk, "RGB")).tolist() == [[[255, 0, 0]]]
    assert np.asarray(convert_image(cmyk, "L")).tolist() == [[76]]  # luma of red
    flt = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert np.asarray(convert_image(flt, "L")).tolist() == [[0, 128, 255]]
    with pytest.raises(DataError, match="float pixels outside 0..1"):
        convert_image(Image.fromarray(np.array([[3.0]], dtype=np.float32)), "L", "x.tif")
    with pytest.raises(DataError, match="^img.tif: cannot convert an image of PIL mode 'La'"):
        convert_image(Image.new("La", (1, 1)), "RGB", "img.tif")


def test_odd_modes_from_any_dataset_are_converted_by_replay():
    from PIL import Image

    from distill.data import ReplayDataset

    img = Image.fromarray(np.array([[0, 25700, 65535]], dtype=np.uint16))  # I;16
    ds = ReplayDataset([(img, 0)], lambda im: torch.from_numpy(np.asarray(im).copy()), seed=0,
                       mode="L")
    assert ds[0][0].tolist() == [[0, 100, 255]]  # not [[0, 255, 255]]: clipped
