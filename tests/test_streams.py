"""Streams (issue 25): tar shards and Hugging Face datasets read front to back, every sample
once per epoch over ranks and workers; augmentation by sample key; caches found by sample,
refused over another shard set; training and caches from shards and from an HF dataset on
both pipelines. (Two processes × two workers on gloo: tests/test_stream_dist.py.)"""

from __future__ import annotations

import io
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from distill.cache import load_manifest
from distill.data import build_data
from distill.data.pack import pack_folder
from distill.data.stream import StreamSampler, padding
from distill.engine import Reporter, train
from distill.engine.cache_build import build_cache
from distill.engine.cache_verify import live_check
from distill.errors import UsageError
from distill.recipe import load_recipe
from tests.conftest import SMOKE
from tests.test_shards import make_folder

pytestmark = pytest.mark.integration


def stream_sets(root: Path | str, name: str = "webdataset", workers: int = 0,
                *extra: str) -> list[str]:
    return [f"data.name={name}", f"data.root={root}", "data.options={}", "data.num_classes=3",
            "teacher.kwargs.num_classes=3", "data.batch_size=4", "data.eval_batch_size=4",
            f"data.num_workers={workers}", "schedule.epochs=2", "run.log_every=2", *extra]


def recipe(root: Path | str, *extra: str, name: str = "webdataset", workers: int = 0,
           **shortcuts):
    return load_recipe(SMOKE, stream_sets(root, name, workers, *extra), **shortcuts)


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    """One image folder packed twice (shards of 4 and of 6: the same samples and keys in
    another shard layout), and the same folder as a Hugging Face DatasetDict on disk."""
    root = tmp_path_factory.mktemp("streams")
    folder = make_folder(root / "photos")
    pack_folder(folder, root / "shards", shard_size=4)
    pack_folder(folder, root / "shards6", shard_size=6, seed=3)
    return {"folder": folder, "shards": root / "shards", "shards6": root / "shards6",
            "root": root}


def hf_dataset(folder: Path, out: Path) -> Path:
    """`folder` (imagefolder) saved as a DatasetDict with `save_to_disk` (the images' bytes)."""
    datasets = pytest.importorskip("datasets")
    from distill.data.datasets import imagefolder

    splits = {}
    for split, name in (("train", "train"), ("val", "validation")):
        ds = imagefolder(split, folder)
        features = datasets.Features({"img": datasets.Image(),
                                      "y": datasets.ClassLabel(names=list(ds.classes))})
        splits[name] = datasets.Dataset.from_dict(
            {"img": [{"bytes": Path(p).read_bytes(), "path": None} for p, _ in ds.samples],
             "y": [label for _, label in ds.samples]}, features=features)
    datasets.DatasetDict(splits).save_to_disk(str(out))
    return out


# -- every sample once per epoch -----------------------------------------------------------
@pytest.mark.parametrize("world", [1, 2, 3])
def test_the_plan_deals_every_sample_once_per_epoch(world):
    lengths = [7, 5, 9, 3, 11]
    n = sum(lengths)
    for streams in (1, 2, 3):
        for batch in (1, 4, 5):
            orders = []
            for epoch in (0, 1):
                counts, order = Counter(), []
                for rank in range(world):
                    s = StreamSampler(lengths, 0, batch_size=batch, num_replicas=world,
                                      rank=rank, streams=streams, window=4, epoch=epoch)
                    batches = list(s)
                    assert len(batches) == len(s) and all(len(b) == batch for b in batches)
                    assert all(k[0] == epoch for b in batches for k in b)
                    counts.update(k[1] for b in batches for k in b)
                    order += [k[1] for b in batches for k in b]
                assert set(counts) == set(range(n))  # none missed
                extra = sum(counts.values()) - n  # duplicates: the padding only
                assert extra == padding(n, batch, world) < world * batch
                assert sorted(counts.values())[-1] <= 2
                orders.append(order)
            assert orders[0] != orders[1]  # shard and sample order change with the epoch


@pytest.mark.parametrize("streams, workers", [(2, 2), (4, 2), (4, 4)])
def test_each_worker_reads_whole_stretches_front_to_back(streams, workers):
    s = StreamSampler([10] * 6, 0, batch_size=2, streams=streams, window=4)
    batches, sequence = list(s), s.sequence().tolist()
    stretches = {}
    for t in range(streams):  # stretch t: the batches t, t + S, …; worker t mod V reads it
        read = [k[1] for b in batches[t::streams] for k in b]
        start = sequence.index(min(read, key=sequence.index))
        stretch = sequence[start:start + len(read)]  # a contiguous run of the shard order
        for w in range(0, len(read), 4):  # shuffled within windows of 4 consecutive samples
            assert sorted(read[w:w + 4]) == sorted(stretch[w:w + 4])
        assert read != stretch
        stretches[start] = stretch
    assert [k for _, part in sorted(stretches.items()) for k in part] == sequence  # cover it
    for v in range(workers):  # the loader hands worker v the batches v, v + V, …
        mine = [k[1] for b in batches[v::workers] for k in b]
        theirs = [k[1] for b in batches if b not in batches[v::workers] for k in b]
        assert mine == [i for part in s.reader_batches(0, v, workers) for i in part.tolist()]
        assert not set(mine) & set(theirs)


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_the_batches_do_not_depend_on_the_loader_workers(sets):
    """The same recipe gives the same batches, training and validation, with 0, 2 or 4
    loader workers (data.num_workers is free to change on resume), over 1 or 2 processes;
    the loader delivers them so with workers too."""
    from distill.recipe.resume import RESUME_FREE_FIELDS

    assert "data.num_workers" in RESUME_FREE_FIELDS
    for world in (1, 2):
        plans = []
        for workers in (0, 2, 4):
            r = recipe(sets["shards"], "data.batch_size=2", workers=workers)
            plan = []
            for rank in range(world):
                data = build_data(r.data, r.augment, r.run.seed, num_replicas=world, rank=rank)
                plan.append([data.sampler.batches(e) for e in (0, 1)])
                plan.append(list(data.val_loader.batch_sampler))
            plans.append(plan)
        assert plans[0] == plans[1] == plans[2]
    seen = []
    for workers in (0, 2):
        r = recipe(sets["shards"], "data.batch_size=2", workers=workers)
        data = build_data(r.data, r.augment, r.run.seed)
        seen.append([[int(i) for i in b.index] for b in data.epoch(1)])
    assert seen[0] == seen[1]


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_read_ahead_reads_each_sample_once_over_ranks_and_workers(tmp_path, monkeypatch):
    """4 processes × 4 loader workers (each simulated in turn, as the loader deals the
    batches: batch t to worker t mod 4) read every sample of an epoch once: nothing another
    worker or process reads, nothing twice (the read-ahead read other workers' samples,
    and samples again: 1.3-2.6× at 8 × 8)."""
    import pickle
    from types import SimpleNamespace

    import torch.utils.data

    from distill.data import shards as shards_module
    from tests.test_shards import jpeg, write_info, write_tar

    folder = tmp_path / "shards"
    folder.mkdir()
    files = []
    for k in range(8):
        write_tar(folder / f"train-{k}.tar",
                  [m for i in range(25) for m in ((f"s{k}_{i}.jpg", jpeg(i, 8)),
                                                  (f"s{k}_{i}.cls", str(i % 3).encode()))])
        files.append((f"train-{k}.tar", 25))
    write_info(folder, {"train": files, "validation": files[:1]})
    reads, order = Counter(), []
    plain = shards_module.ShardFile.read

    def counted(self, member):
        if not member.name.endswith(".cls"):
            reads[(self.path.name, member.name)] += 1
            order.append((rank, v, self.path.name, member.offset))
        return plain(self, member)

    monkeypatch.setattr(shards_module.ShardFile, "read", counted)
    world, workers = 4, 4
    asked = 0
    for rank in range(world):
        r = recipe(folder, "data.batch_size=4", "data.options={shuffle_buffer: 16}",
                   workers=workers)
        data = build_data(r.data, r.augment, r.run.seed, num_replicas=world, rank=rank)
        batches = data.sampler.batches(1)
        for v in range(workers):
            info = SimpleNamespace(id=v, num_workers=workers)
            monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda info=info: info)
            worker = pickle.loads(pickle.dumps(data.train))  # a worker's own copy
            for batch in batches[v::workers]:
                worker.__getitems__(batch)
                asked += len(batch)
    n = 200
    assert asked == n + padding(n, 4, world) and len(reads) == n
    assert sum(reads.values()) == asked  # each read once, the padding's samples twice
    by_file: dict[tuple, list[int]] = {}
    for rank_, v_, name, offset in order:
        by_file.setdefault((rank_, v_, name), []).append(offset)
    assert all(offsets == sorted(offsets) for offsets in by_file.values())  # front to back


def test_the_loader_reads_every_shard_sample_once_per_epoch(sets):
    r = recipe(sets["shards"], workers=2)
    data = build_data(r.data, r.augment, r.run.seed)
    assert isinstance(data.sampler, StreamSampler)
    assert len(data.train_loader) == 5  # 17 samples, batch 4: 5 steps, 3 repeated
    seen = []
    for epoch in (0, 1):
        idx = [int(i) for b in data.epoch(epoch) for i in b.index]
        assert len(idx) == 20 and set(idx) == set(range(17))
        seen.append(idx)
    assert seen[0] != seen[1]
    val = [int(i) for b in data.val_loader for i in b.index]
    assert sorted(val) == list(range(7))  # every validation image once, no padding


def test_repeated_augmentation_and_exact_mixing_are_refused_on_a_stream(sets):
    r = recipe(sets["shards"], "augment.repeated_aug=3")
    with pytest.raises(UsageError, match=r"augment.repeated_aug: 3 .* every sample once per "):
        build_data(r.data, r.augment, r.run.seed)
    r = recipe(sets["shards"], "augment.mixup=0.8", "teacher.mix_targets=exact")
    with pytest.raises(UsageError, match="teacher.mix_targets: exact .* interpolate"):
        build_cache(r, sets["root"] / "never", store="hard", reporter=Reporter())
    assert not (sets["root"] / "never").exists()


# -- replay by key -------------------------------------------------------------------------
@pytest.mark.parametrize("pipeline", ["pil", "tensor"])
def test_a_samples_augmentation_follows_its_key_not_its_shard_layout(sets, pipeline):
    from distill.data import augment_batch
    from distill.data.batch import collate

    def images(root: Path, epoch: int) -> dict[str, torch.Tensor]:
        r = recipe(root, f"data.pipeline={pipeline}")
        data = build_data(r.data, r.augment, r.run.seed)
        ds = data.train
        keys = [(epoch, i, 0, 100 + i) for i in range(len(ds))]  # any position
        batch = augment_batch(collate(ds.__getitems__(keys)), ds.augment, "cpu")
        return {ds.base.sample_id(i): batch.images[i] for i in range(len(ds))}

    a, b = images(sets["shards"], 1), images(sets["shards6"], 1)
    assert a.keys() == b.keys() and len(a) == 17
    assert all(torch.equal(a[k], b[k]) for k in a)  # another shard layout, the same images
    c = images(sets["shards"], 2)
    assert sum(not torch.equal(a[k], c[k]) for k in a) >= 15  # another epoch, other draws


# -- training and caches -------------------------------------------------------------------
def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model.safetensors")


@pytest.mark.parametrize("pipeline,workers", [("pil", 2), ("tensor", 0)])
def test_a_hard_cache_over_shards_trains_exactly_like_the_live_teacher(sets, tmp_path,
                                                                       pipeline, workers):
    r = [f"data.pipeline={pipeline}"]
    cache = tmp_path / "cache"
    built = build_cache(recipe(sets["shards"], *r, workers=workers), cache, store="hard",
                        reporter=Reporter())
    m = load_manifest(cache)
    assert m.rows_by == "sample" and m.rows_per_epoch == 17 and m.complete
    assert m.dataset.keys_sha256 and built.images == 34
    live = train(recipe(sets["shards"], *r, f"run.out={tmp_path / 'live'}", workers=workers))
    cached = train(recipe(sets["shards"], *r, f"run.out={tmp_path / 'cached'}",
                          workers=workers, teacher=f"cache:{cache}"))
    a, b = weights(live.out), weights(cached.out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert live.summary["train_size"] == 17
    check = live_check(cache, 6)
    assert check["argmax_mismatch"] == 0.0


def test_a_cache_of_another_shard_set_is_refused_naming_it(sets, tmp_path):
    cache = tmp_path / "cache"
    build_cache(recipe(sets["shards"], "schedule.epochs=1"), cache, store="hard",
                evaluate=False, reporter=Reporter())
    # the same samples in another shard layout: the rows are found by sample, but the
    # shard set is another (contents hashed shard by shard): refused, naming it
    other = recipe(sets["shards6"], "schedule.epochs=1", f"run.out={tmp_path / 'r1'}",
                   teacher=f"cache:{cache}")
    with pytest.raises(UsageError, match="does not fit") as err:
        train(other)
    assert f"the cache was built over the shard set '{sets['shards']}'" in str(err.value)
    # other keys: a folder with one file renamed, packed alike
    folder = tmp_path / "photos"
    shutil.copytree(sets["folder"], folder)
    (folder / "train" / "a" / "0.jpg").rename(folder / "train" / "a" / "zz.jpg")
    pack_folder(folder, tmp_path / "renamed", shard_size=4)
    with pytest.raises(UsageError, match="sample keys") as err:
        train(recipe(tmp_path / "renamed", "schedule.epochs=1", f"run.out={tmp_path / 'r2'}",
                     teacher=f"cache:{cache}"))
    assert str(sets["shards"]) in str(err.value)
    # other contents under the same keys: one image changed
    shutil.rmtree(folder)
    shutil.copytree(sets["folder"], folder)
    Image.new("RGB", (20, 20), "red").save(folder / "train" / "a" / "0.jpg")
    pack_folder(folder, tmp_path / "altered", shard_size=4)
    with pytest.raises(UsageError, match=r"training images \(their sha256 differs"):
        train(recipe(tmp_path / "altered", "schedule.epochs=1", f"run.out={tmp_path / 'r3'}",
                     teacher=f"cache:{cache}"))


def test_a_cache_read_by_the_other_rows_by_is_refused_naming_it(sets, tmp_path):
    """A cache whose rows are found by sample (a stream's) read by a run whose data is not a
    stream, or the other way round: every row would be another sample's; refused."""
    import json

    from distill.cache import mismatches

    cache = tmp_path / "cache"
    build_cache(recipe(sets["shards"], "schedule.epochs=1"), cache, store="hard",
                evaluate=False, reporter=Reporter())
    doc = json.loads((cache / "manifest.json").read_text())
    assert doc["rows_by"] == "sample"
    doc["rows_by"] = "position"
    (cache / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(UsageError, match="does not fit") as err:
        train(recipe(sets["shards"], "schedule.epochs=1", f"run.out={tmp_path / 'run'}",
                     teacher=f"cache:{cache}"))
    assert ("rows_by (cache rows found by position (not a stream), run's 'webdataset' read by "
            "sample (a stream))") in str(err.value)
    m = load_manifest(cache).model_copy(update={"rows_by": "sample"})
    r = recipe(sets["shards"], "schedule.epochs=1", teacher=f"cache:{cache}")
    fp = {"length": m.dataset.length, "labels_sha256": m.dataset.labels_sha256,
          "content_sha256": m.dataset.content_sha256, "keys_sha256": m.dataset.keys_sha256}
    assert mismatches(m, r, world_size=1, dataset={**fp, "rows_by": "sample"}) == []
    assert mismatches(m, r, world_size=1, dataset={**fp, "rows_by": "position"}) == [
        "rows_by (cache rows found by sample (a stream), run's 'webdataset' read by position "
        "(not a stream))"]


def test_a_brace_pattern_trains_and_bad_shards_stop_the_run_in_one_line(sets, tmp_path, cli):
    pattern = f"{sets['shards']}/train-{{000000..000003}}.tar"
    run = train(recipe(pattern, "schedule.epochs=1", f"run.out={tmp_path / 'run'}"))
    assert run.summary["train_size"] == 16  # the four full shards
    bad = tmp_path / "bad"
    shutil.copytree(sets["shards"], bad)
    shard = bad / "train-000003.tar"
    shard.write_bytes(shard.read_bytes()[:3000])
    args = [a for s in stream_sets(bad, workers=2) for a in ("--set", s)]
    res = cli("train", SMOKE, "--out", tmp_path / "r2", *args)
    errors = [line for line in res.err.splitlines() if line.startswith("error:")]
    assert res.code == 2 and len(errors) == 1 and "Traceback" not in res.err
    assert str(shard) in errors[0] and "truncated" in errors[0] and "sample '" in errors[0]
    res = cli("train", SMOKE, "--out", tmp_path / "r3",
              *[a for s in stream_sets(f"{bad}/train-{{000007..000009}}.tar")
                for a in ("--set", s)])
    assert res.code == 2 and "matches no file" in res.err and res.err.count("error:") == 1


@pytest.mark.parametrize("pipeline", ["pil", "tensor"])
def test_a_hugging_face_dataset_trains_and_caches(sets, tmp_path, pipeline):
    hf = hf_dataset(sets["folder"], tmp_path / "hf")
    r = ["data.options={image: img, label: y, block: 4}", f"data.pipeline={pipeline}"]
    data_r = recipe(hf, *r, name="hf")
    data = build_data(data_r.data, data_r.augment, data_r.run.seed)
    assert isinstance(data.sampler, StreamSampler) and data.train.base.shard_lengths == [4] * 4 + [1]
    cache = tmp_path / "cache"
    build_cache(recipe(hf, *r, name="hf"), cache, store="hard", reporter=Reporter())
    assert load_manifest(cache).rows_by == "sample"
    live = train(recipe(hf, *r, f"run.out={tmp_path / 'live'}", name="hf"))
    cached = train(recipe(hf, *r, f"run.out={tmp_path / 'cached'}", name="hf",
                          teacher=f"cache:{cache}"))
    a, b = weights(live.out), weights(cached.out)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(UsageError, match="no column 'image'"):
        build_data(recipe(hf, name="hf").data, data_r.augment, 0)


def test_hf_labels_out_of_range_are_named(sets, tmp_path):
    datasets = pytest.importorskip("datasets")
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "PNG")
    rows = {"image": [{"bytes": buf.getvalue(), "path": None}] * 3, "label": [0, 5, 1]}
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    table = datasets.Dataset.from_dict(rows, features=features)
    datasets.DatasetDict({"train": table, "validation": table}).save_to_disk(
        str(tmp_path / "hf"))
    from distill.data.hf import hf

    ds = hf("train", tmp_path / "hf", num_classes=3)
    with pytest.raises(UsageError, match=r"hf \(train\): row 1: label 5 is outside 0..2"):
        ds[1]


def test_a_local_folder_reads_through_load_dataset(tmp_path):
    pytest.importorskip("datasets")
    from distill.data.datasets import imagefolder
    from distill.data.hf import hf

    folder = make_folder(tmp_path / "photos")
    shutil.rmtree(folder / "train" / "b" / "sub")  # datasets' image folders: one depth
    ds = hf("train", folder, num_classes=3, cache_dir=str(tmp_path / "cache"))
    theirs = imagefolder("train", folder)
    assert len(ds) == len(theirs) and ds.classes == theirs.classes
    assert sorted(ds[i][1] for i in range(len(ds))) == sorted(y for _, y in theirs.samples)
    assert len(hf("val", folder, num_classes=3, cache_dir=str(tmp_path / "cache"))) == 7
    assert any((tmp_path / "cache").iterdir())  # its Arrow cache where it was told


# -- Hugging Face datasets: what identifies them, what is read and run ---------------------
def two_column_dataset(folder: Path, out: Path) -> Path:
    """`folder` as a DatasetDict whose rows hold two image columns, `a` (the images) and `b`
    (each image turned upside down), and one label column."""
    datasets = pytest.importorskip("datasets")
    from distill.data.datasets import imagefolder

    def flipped(path: str) -> bytes:
        buf = io.BytesIO()
        Image.open(path).convert("RGB").rotate(180).save(buf, "PNG")
        return buf.getvalue()

    splits = {}
    for split, name in (("train", "train"), ("val", "validation")):
        ds = imagefolder(split, folder)
        features = datasets.Features({"a": datasets.Image(), "b": datasets.Image(),
                                      "label": datasets.ClassLabel(names=list(ds.classes))})
        splits[name] = datasets.Dataset.from_dict(
            {"a": [{"bytes": Path(p).read_bytes(), "path": None} for p, _ in ds.samples],
             "b": [{"bytes": flipped(p), "path": None} for p, _ in ds.samples],
             "label": [label for _, label in ds.samples]}, features=features)
    datasets.DatasetDict(splits).save_to_disk(str(out))
    return out


def test_a_cache_over_one_hf_image_column_is_refused_over_another(sets, tmp_path):
    """The same rows and labels, another image column: another fingerprint; a cache built
    over column a is refused by a run reading column b, and by a resumed build."""
    from distill.data.hf import hf

    root = two_column_dataset(sets["folder"], tmp_path / "hf")
    a, b = hf("train", root, num_classes=3, image="a"), hf("train", root, num_classes=3, image="b")
    assert a.fingerprint()["labels_sha256"] == b.fingerprint()["labels_sha256"]
    assert a.fingerprint()["content_sha256"] != b.fingerprint()["content_sha256"]
    assert a.fingerprint() == hf("train", root, num_classes=3, image="a").fingerprint()
    cache = tmp_path / "cache"
    over = {col: [f"data.options={{image: {col}, block: 4}}", "schedule.epochs=1"]
            for col in "ab"}
    build_cache(recipe(root, *over["a"], name="hf"), cache, store="hard", evaluate=False,
                reporter=Reporter())
    with pytest.raises(UsageError, match=r"training images \(their sha256 differs"):
        train(recipe(root, *over["b"], f"run.out={tmp_path / 'run'}", name="hf",
                     teacher=f"cache:{cache}"))
    with pytest.raises(UsageError, match="holds a different cache .*dataset"):
        build_cache(recipe(root, *over["b"], name="hf"), cache, store="hard", evaluate=False,
                    reporter=Reporter())
    assert build_cache(recipe(root, *over["a"], name="hf"), cache, store="hard",
                       evaluate=False, reporter=Reporter()).images == 0  # complete: itself


def test_a_folder_with_a_loading_script_is_refused_before_load_dataset(tmp_path, cli,
                                                                        monkeypatch):
    datasets = pytest.importorskip("datasets")
    folder = make_folder(tmp_path / "photos")
    (folder / "photos.py").write_text("raise SystemExit('ran')\n")

    def never(*args, **kwargs):
        raise AssertionError("load_dataset was called")

    monkeypatch.setattr(datasets, "load_dataset", never)
    args = [a for s in stream_sets(folder, "hf") for a in ("--set", s)]
    res = cli("train", SMOKE, "--out", tmp_path / "run", *args)
    assert res.code == 2 and res.err.count("error:") == 1 and "Traceback" not in res.err
    assert f"{folder / 'photos.py'}: a dataset loading script" in res.err


def test_load_dataset_runs_offline_and_its_failures_are_one_line(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    import huggingface_hub.constants as hub

    from distill.data.hf import hf

    folder = make_folder(tmp_path / "photos")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    before = datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE
    seen = {}

    def failing(path, **kwargs):
        seen.update(env=os.environ.get("HF_HUB_OFFLINE"), kwargs=kwargs,
                    flags=(datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE))
        raise RuntimeError("Dataset scripts are no longer supported\nsecond line")

    monkeypatch.setattr(datasets, "load_dataset", failing)
    with pytest.raises(UsageError) as err:
        hf("train", folder, num_classes=3)
    assert err.value.lines == [f"{folder}: cannot read it as a Hugging Face dataset (Dataset "
                               "scripts are no longer supported)"]
    assert seen["env"] == "1" and seen["flags"] == (True, True)
    assert before == (datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE)  # put back
    assert "HF_HUB_OFFLINE" not in os.environ


@pytest.mark.parametrize("where", ["README.md", ".huggingface.yaml"])
@pytest.mark.parametrize("entry", ["../elsewhere/*.parquet", "/etc/*.csv",
                                   "https://example.com/train.parquet"])
def test_a_dataset_card_pointing_outside_the_folder_is_refused(tmp_path, where, entry):
    pytest.importorskip("datasets")
    from distill.data.hf import hf

    folder = make_folder(tmp_path / "photos")
    card = (f"configs:\n- config_name: default\n  data_files:\n  - split: train\n"
            f"    path: train/**\n  - split: validation\n    path:\n    - '{entry}'\n")
    (folder / where).write_text(f"---\n{card}---\n# photos\n" if where == "README.md" else card)
    with pytest.raises(UsageError) as err:
        hf("train", folder, num_classes=3, cache_dir=str(tmp_path / "cache"))
    line = err.value.lines[0]
    assert len(err.value.lines) == 1 and str(folder / where) in line
    assert "configs[0].data_files" in line and entry in line
    assert not (tmp_path / "cache").exists()  # refused before load_dataset


def test_an_hf_image_path_outside_the_dataset_folder_is_refused(tmp_path):
    """Images stored as paths, not bytes: a path inside the dataset's folder is read, one
    that leads out (absolute, `..`) is refused naming the row."""
    datasets = pytest.importorskip("datasets")
    from distill.data.hf import hf

    root = tmp_path / "hf"
    outside = tmp_path / "secret.png"
    Image.new("RGB", (8, 8), "red").save(outside)
    paths = ["inside.png", str(outside), "../secret.png"]
    # the Image feature's storage as it is (save_to_disk would embed what an Image names)
    features = datasets.Features({"image": {"bytes": datasets.Value("binary"),
                                            "path": datasets.Value("string")},
                                  "label": datasets.Value("int64")})
    table = datasets.Dataset.from_dict(
        {"image": [{"bytes": None, "path": p} for p in paths], "label": [0, 1, 2]},
        features=features)
    datasets.DatasetDict({"train": table, "validation": table}).save_to_disk(str(root))
    Image.new("RGB", (8, 8), "blue").save(root / "inside.png")
    ds = hf("train", root, num_classes=3)
    assert ds[0][0].getpixel((0, 0)) == (0, 0, 255)  # read from the folder
    for row, path in ((1, str(outside)), (2, "../secret.png")):
        with pytest.raises(UsageError) as err:
            ds[row]
        line = err.value.lines[0]
        assert len(err.value.lines) == 1 and f"row {row}: column 'image' path '{path}'" in line
        assert "refused" in line
