"""Hostile input: damaged image folders and untrustworthy teachers give one line, exit 2.

Image folders: a file that cannot be decoded is named from the main process and from
loader workers alike; an empty class folder, a root without class folders, a symbolic-link
loop, a broken link are named before any work. Teachers: outputs of the wrong shape, NaN/inf
outputs, or a model that refuses its input size are refused before the first step, naming
the teacher (and `teacher.input_size` where it is the size).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from distill.data.datasets import imagefolder
from distill.data.errors import DataError
from distill.errors import UsageError

from .conftest import FAST, SMOKE

HERE = "tests.test_hostile_data"


# -- tiny image folders -------------------------------------------------------------------

def make_folder(root: Path, classes=("a", "b"), per_class: int = 4, ext: str = "jpg") -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in classes:
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(
                    folder / f"{i}.{ext}")
    return root


def folder_args(root: Path, workers: int, *extra: str) -> list[str]:
    sets = [f"data.root={root}", "data.name=imagefolder", "data.options={}",
            "data.num_classes=2", "teacher.kwargs.num_classes=2", "data.batch_size=4",
            "data.eval_batch_size=4", f"data.num_workers={workers}", "schedule.epochs=1",
            "augment.auto_augment=null", *extra]
    return [a for s in sets for a in ("--set", s)]


def one_error_line(err: str) -> str:
    """The one `error:` line of stderr, its last (what came before is the run's report)."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert "Traceback" not in err and len(errors) == 1 and lines[-1] == errors[0], err
    return errors[0]


@pytest.mark.parametrize("workers", [0, 2])
def test_truncated_jpeg_is_named_from_any_worker(cli, tmp_path, workers):
    root = make_folder(tmp_path / "data")
    bad = root / "train" / "b" / "2.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    res = cli("train", SMOKE, "--out", tmp_path / "run", *folder_args(root, workers))
    assert res.code == 2, res.err
    line = one_error_line(res.err)
    assert str(bad) in line and "truncated" in line and "DataLoader" not in line


@pytest.mark.parametrize("content", [b"", b"this is not an image\n"])
def test_empty_and_non_image_files_are_named(tmp_path, content):
    root = make_folder(tmp_path)
    bad = root / "train" / "a" / "9.png"
    bad.write_bytes(content)
    ds = imagefolder("train", root=root)
    index = [p for p, _ in ds.samples].index(str(bad))
    with pytest.raises(DataError, match="empty file" if not content else "not an image") as exc:
        ds[index]
    assert exc.value.lines[0].startswith(str(bad))


def test_worker_error_keeps_its_one_line():
    """How torch re-raises a worker's DataError in the main process."""
    wrapped = ("Caught DataError in DataLoader worker process 1.\nOriginal Traceback (most "
               "recent call last):\n  File \"x.py\", line 3, in f\n    raise DataError(...)\n"
               "distill.data.errors.DataError: /data/x.jpg: cannot decode the image\n")
    assert DataError(wrapped).lines == ["/data/x.jpg: cannot decode the image"]
    assert DataError("/a: b", "c").lines == ["/a: b", "c"]  # an ordinary one is as it is


class _Lost(torch.utils.data.Dataset):
    """A user's dataset whose files went away."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        with open(f"/nonexistent/sample-{index}.bin", "rb") as fh:
            return fh.read()


@pytest.mark.parametrize("workers", [0, 2])
def test_any_dataset_oserror_is_one_named_line(workers):
    from torch.utils.data import DataLoader

    from distill.data import ReplayDataset

    loader = DataLoader(ReplayDataset(_Lost(), lambda im: im, seed=0), batch_size=2,
                        num_workers=workers)
    with pytest.raises(DataError) as exc:
        next(iter(loader))
    assert exc.value.lines == ["/nonexistent/sample-0.bin: cannot read it (No such file or "
                               "directory)"]


def test_empty_class_folder_is_named(cli, tmp_path):
    root = make_folder(tmp_path / "data")
    (root / "train" / "c").mkdir()
    (root / "train" / "c" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="holds no images") as exc:
        imagefolder("train", root=root)
    assert str(root / "train" / "c") in exc.value.lines[0]
    res = cli("train", SMOKE, "--out", tmp_path / "run", *folder_args(root, 0))
    assert res.code == 2 and "holds no images" in one_error_line(res.err)
    assert not (tmp_path / "run").exists()  # refused before the run directory is made


def _damaged(path: Path, damage: str) -> Path:
    """A file of `damage` kind at `path` (with its extension)."""
    if damage == "truncated":  # the header whole, the image data cut
        path = path.with_suffix(".jpg")
        rng = np.random.default_rng(1)
        Image.fromarray(rng.integers(0, 255, (160, 160, 3), dtype=np.uint8)).save(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "not-an-image":
        path = path.with_suffix(".jpg")
        path.write_bytes(b"this is not an image\n")
    else:  # 32-bit float pixels outside 0..1: an odd mode with no 8-bit form
        path = path.with_suffix(".tif")
        Image.fromarray(np.full((30, 30), 7.5, dtype=np.float32)).save(path)
    return path


@pytest.mark.parametrize("damage, says", [("truncated", "truncated"),
                                          ("not-an-image", "not an image"),
                                          ("odd-mode", "outside 0..1")])
@pytest.mark.parametrize("decode, workers", [("full", 2), ("reduced", 0), ("device", 2)])
def test_bad_files_are_named_on_the_tensor_pipeline(cli, tmp_path, damage, says, decode,
                                                    workers):
    """data.pipeline: tensor reads the header in the worker, then decodes there or (device)
    on the device: each damaged file is one line naming it, from any worker."""
    root = make_folder(tmp_path / "data", per_class=6)
    original = root / "train" / "b" / "2.jpg"
    bad = _damaged(original, damage)
    if bad != original:
        original.unlink()
    args = folder_args(root, workers, "data.pipeline=tensor", f"data.decode={decode}")
    res = cli("train", SMOKE, "--out", tmp_path / "run", *args)
    assert res.code == 2, res.err
    line = one_error_line(res.err)
    assert line.startswith(f"error: {bad}: ") and says in line, line


def test_empty_class_folder_is_named_on_the_tensor_pipeline(cli, tmp_path):
    root = make_folder(tmp_path / "data")
    (root / "train" / "c").mkdir()
    res = cli("train", SMOKE, "--out", tmp_path / "run",
              *folder_args(root, 2, "data.pipeline=tensor", "data.decode=device"))
    assert res.code == 2 and "holds no images" in one_error_line(res.err)
    assert str(root / "train" / "c") in res.err and not (tmp_path / "run").exists()


def test_folder_without_classes_and_missing_root(tmp_path):
    (tmp_path / "flat" / "train").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "flat" / "train" / "0.png")
    with pytest.raises(DataError, match="no class folders.*1 image file"):
        imagefolder("train", root=tmp_path / "flat")
    with pytest.raises(DataError, match="does not exist"):
        imagefolder("train", root=tmp_path / "nowhere")


def test_val_classes_must_be_train_classes(tmp_path):
    root = make_folder(tmp_path)
    (root / "val" / "b").rename(root / "val" / "z")
    with pytest.raises(DataError, match="only in val/: z; only in train/: b"):
        imagefolder("val", root=root)


@pytest.mark.parametrize("target", ["class", "split", "as a class"])
def test_symlink_loop_is_refused_not_followed(tmp_path, target):
    root = make_folder(tmp_path)
    link = root / "train" / "a" / "sub" / "loop"
    link.parent.mkdir()
    if target == "as a class":
        link, target = root / "train" / "c", "split"
    os.symlink(root / "train" / ("a" if target == "class" else ""), link)
    with pytest.raises(DataError, match="symbolic link back to .*loop") as exc:
        imagefolder("train", root=root)
    assert exc.value.lines[0].startswith(str(link))


def test_links_that_are_no_loop_are_followed_and_broken_ones_named(tmp_path):
    import shutil

    from torchvision.datasets import ImageFolder

    root = make_folder(tmp_path / "data")
    shutil.copytree(root / "train" / "a", tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", root / "train" / "b" / "more")
    ours = imagefolder("train", root=root)
    assert ours.samples == ImageFolder(str(root / "train")).samples  # the very same list
    os.symlink(tmp_path / "gone.jpg", root / "train" / "a" / "x.jpg")
    with pytest.raises(DataError, match="broken symbolic link"):
        imagefolder("train", root=root)


def test_unreadable_file_is_named(tmp_path, monkeypatch):
    root = make_folder(tmp_path)
    ds = imagefolder("train", root=root)
    path = ds.samples[0][0]
    real_open = open

    def deny(file, *args, **kwargs):  # as a file without read permission (tests run as root)
        if str(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(DataError, match="permission denied") as exc:
        ds[0]
    assert exc.value.lines[0].startswith(path)


# -- teachers -----------------------------------------------------------------------------

class _Fixed(nn.Module):
    """A classifier with a `num_classes` attribute (so no probe runs at build time)."""

    def __init__(self, num_classes: int = 10, returns: str = "ok", side: int | None = None):
        super().__init__()
        self.num_classes, self.returns, self.side = num_classes, returns, side
        self.lin = nn.Linear(3, num_classes)

    def forward(self, x):
        if self.side is not None:
            assert x.shape[-1] == self.side, (f"Input height ({x.shape[-1]}) doesn't match "
                                              f"model ({self.side})")
        out = self.lin(x.mean(dim=(2, 3)))
        if self.returns == "nan":
            return out * float("nan")
        if self.returns == "inf":
            return out.masked_fill(torch.arange(out.shape[1]) == 3, float("inf"))
        if self.returns == "narrow":
            return out[:, :7]
        return out


def nan_teacher(**_):
    return _Fixed(returns="nan")


def inf_teacher(**_):
    return _Fixed(returns="inf")


def narrow_teacher(**_):
    return _Fixed(returns="narrow")


def picky_teacher(**_):
    return _Fixed(side=224)


def feature_map_teacher(**_):
    """No `num_classes`: probed at build time; answers with a feature map, not logits."""
    return nn.Conv2d(3, 10, 3, padding=1)


def smoke_args(*extra: str) -> list[str]:
    return [a for s in (*FAST, *extra) for a in ("--set", s)]


@pytest.mark.parametrize("factory,expected", [
    ("nan_teacher", "returns NaN/inf on the first batch (160 NaN, 0 inf of 160 outputs"),
    ("inf_teacher", "returns NaN/inf on the first batch (0 NaN, 16 inf of 160 outputs"),
    ("narrow_teacher", "returns shape (16, 7) for 16 3×32×32 images, expected (16, 10)"),
])
def test_bad_teacher_outputs_are_refused_before_training(cli, tmp_path, factory, expected):
    spec = f"python:{HERE}:{factory}"
    res = cli("train", SMOKE, "--teacher", spec, "--out", tmp_path / "run",
              *smoke_args("teacher.input_size=null"))
    assert res.code == 2, res.err
    line = one_error_line(res.err)
    assert f"teacher.name: '{spec}' {expected}" in line
    assert not (tmp_path / "run" / "model.safetensors").exists()  # no step was taken
    # The refused run never checkpointed: the same --out takes the fixed command as it is.
    res = cli("train", SMOKE, "--out", tmp_path / "run", *smoke_args("schedule.epochs=1"))
    assert res.code == 0, res.err
    assert (tmp_path / "run" / "summary.json").is_file()


def test_teacher_returning_feature_maps_is_refused_at_build(cli, tmp_path):
    spec = f"python:{HERE}:feature_map_teacher"
    res = cli("train", SMOKE, "--teacher", spec, "--out", tmp_path / "run",
              *smoke_args("teacher.input_size=null"))
    assert res.code == 2
    assert "returns shape (1, 10, 32, 32) for one 3×32×32 image" in one_error_line(res.err)


def test_model_refusing_its_input_names_teacher_input_size(cli, tmp_path):
    spec = f"python:{HERE}:picky_teacher"
    res = cli("train", SMOKE, "--teacher", spec, "--out", tmp_path / "run",
              *smoke_args("teacher.input_size=32"))
    assert res.code == 2
    line = one_error_line(res.err)
    assert line.startswith(f"error: teacher.input_size: '{spec}' refuses its input")
    assert "Input height (32) doesn't match model (224)" in line


def test_vit_teacher_at_the_wrong_input_size_is_one_line(cli, tmp_path):
    res = cli("train", SMOKE, "--teacher", "timm:vit_tiny_patch16_224", "--out",
              tmp_path / "run", *smoke_args("teacher.kwargs.num_classes=10",
                                            "teacher.input_size=32"))
    assert res.code == 2, res.err
    line = one_error_line(res.err)
    assert "teacher.input_size: 32, but 'timm:vit_tiny_patch16_224' takes 224×224" in line
    assert not (tmp_path / "run").exists()


def test_cache_build_refuses_nan_teacher_before_storing(tmp_path):
    from distill.engine.cache_build import build_cache
    from distill.recipe import load_recipe

    r = load_recipe(SMOKE, [*FAST, f"teacher.name=python:{HERE}:nan_teacher",
                            "teacher.input_size=null", "teacher.kwargs={}"])
    with pytest.raises(UsageError, match="returns NaN/inf on the first batch"):
        build_cache(r, tmp_path / "cache", epochs=1, evaluate=False)
    assert not list((tmp_path / "cache").glob("*.safetensors"))  # no output was stored


def test_check_teacher_draws_nothing_and_skips_cached_rows():
    from distill.data import Batch
    from distill.engine.setup import check_teacher
    from distill.teacher import Teacher

    class Noisy(Teacher):
        calls = 0

        def targets(self, batch):
            self.calls += 1
            return torch.randn(batch.images.shape[0], 10)  # draws from the global generator

    batch = Batch(torch.zeros(4, 3, 8, 8), torch.zeros(4, dtype=torch.long), torch.arange(4))
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    t = Noisy()
    check_teacher(t, batch, 10, name="noisy")
    check_teacher(t, batch, 10, name="noisy")  # once only
    assert t.checked and t.calls == 1 and torch.equal(torch.rand(2), expected)
    cached = Noisy()
    check_teacher(cached, batch._replace(cached=torch.zeros(4, 10)), 10)
    assert cached.calls == 0  # a cache's rows were checked when it was built


def test_nan_only_in_low_precision_says_so():
    from types import SimpleNamespace

    from distill.data import Batch
    from distill.engine.setup import check_teacher
    from distill.teacher import Teacher

    class Overflows(Teacher):
        def targets(self, batch):
            low = torch.is_autocast_enabled("cpu")
            return torch.full((batch.images.shape[0], 10), float("inf") if low else 1.0)

    batch = Batch(torch.zeros(2, 3, 8, 8), torch.zeros(2, dtype=torch.long), torch.arange(2))
    with pytest.raises(UsageError, match="finite in fp32 but not in bfloat16: set "
                       "run.precision: fp32"):
        check_teacher(Overflows(), batch, 10, rt=SimpleNamespace(dtype=torch.bfloat16),
                      name="timm:x")
