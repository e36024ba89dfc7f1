"""Tar shards (issue 25): `distill data pack` and `check`, the shard reader, `_info.json`
as timm reads it, paths inside the shard set, and each bad shard named in one line."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distill.data.errors import DataError
from distill.data.pack import pack_folder
from distill.data.shards import expand_braces, key_of
from distill.data.webdataset import webdataset
from distill.errors import UsageError


def make_folder(root: Path, classes=("a", "b", "c"), per_class: int = 5, size: int = 20) -> Path:
    """A tiny image folder: JPEGs and one PNG, a file name with dots, a sub-folder."""
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("val", 2)):
        for c, cls in enumerate(classes):
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 255, (size, size + c, 3), dtype=np.uint8)
                name = f"img.{i}.v2.jpg" if i == 1 else f"{i}.jpeg" if i == 2 else f"{i}.jpg"
                Image.fromarray(pixels).save(folder / name)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(
            root / split / classes[0] / "p.png")
    (root / "train" / classes[1] / "sub").mkdir()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(
        root / "train" / classes[1] / "sub" / "0.jpg")
    return root


def tar_samples(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def jpeg(seed: int = 0, size: int = 20) -> bytes:
    buf = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, "JPEG")
    return buf.getvalue()


def write_info(folder: Path, splits: dict[str, list[tuple[str, int]]], **extra) -> None:
    """An `_info.json` as timm's WebDataset reader reads it (counts only)."""
    doc = {"name": folder.name, **extra, "splits": {
        s: {"name": s, "num_samples": sum(n for _, n in files),
            "filenames": [f for f, _ in files], "shard_lengths": [n for _, n in files]}
        for s, files in splits.items()}}
    (folder / "_info.json").write_text(json.dumps(doc))


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("shards")
    folder = make_folder(root / "photos")
    pack_folder(folder, root / "shards", shard_size=4)
    return folder, root / "shards"


# -- the format ----------------------------------------------------------------------------
def test_keys_and_braces_as_webdataset_reads_them():
    assert key_of("n014/n014_100.jpg") == ("n014/n014_100", "jpg")
    assert key_of("a.b/c.seg.png") == ("a.b/c", "seg.png")
    assert key_of("x.CLS") == ("x", "cls")
    assert expand_braces("t-{00..02}.tar") == ["t-00.tar", "t-01.tar", "t-02.tar"]
    assert expand_braces("{a,b}-{8..10}") == ["a-8", "a-9", "a-10", "b-8", "b-9", "b-10"]
    with pytest.raises(UsageError, match="runs backwards"):
        expand_braces("t-{5..2}.tar")


def test_pack_writes_timms_layout_with_the_original_bytes(packed):
    folder, shards = packed
    info = json.loads((shards / "_info.json").read_text())
    assert info["num_classes"] == 3 and info["classes"] == ["a", "b", "c"]
    assert set(info["splits"]) == {"train", "validation"}
    from distill.data.datasets import imagefolder

    for split, name in (("train", "train"), ("val", "validation")):
        entry = info["splits"][name]
        source = imagefolder(split, folder)
        n = len(source)
        # what timm's reader reads: name, num_samples, filenames, shard_lengths
        assert entry["name"] == name and entry["num_samples"] == n
        assert entry["shard_lengths"] == [min(4, n - s) for s in range(0, n, 4)]
        assert entry["filenames"] == [f"{name}-{k:06d}.tar" for k in range(len(entry["filenames"]))]
        members = [m for f in entry["filenames"] for m in tar_samples(shards / f)]
        images = {key_of(m)[0]: data for m, data in members if not m.endswith(".cls")}
        labels = {key_of(m)[0]: int(data) for m, data in members if m.endswith(".cls")}
        assert len(images) == len(labels) == n  # every sample once, image and label
        originals = {Path(p).read_bytes(): lab for p, lab in source.samples}
        assert all(originals[images[k]] == labels[k] for k in images)  # the file's own bytes
        exts = Counter(m.rsplit(".", 1)[1] for m, _ in members)
        assert set(exts) == {"jpg", "png", "cls"}  # .jpeg is named jpg, as timm looks for
        order = [labels[key_of(m)[0]] for m, _ in members if m.endswith(".cls")]
        if split == "train":  # shuffled before sharding: the first shard mixes the classes
            assert len(set(order[:4])) > 1
        else:
            assert order == sorted(order)  # validation in the folder's order
    keys = list(images)
    assert "a/img_1_v2" in [k for f in info["splits"]["train"]["filenames"]
                            for k in (key_of(m)[0] for m, _ in tar_samples(shards / f))]
    assert "b/sub/0" in {key_of(m)[0] for f in info["splits"]["train"]["filenames"]
                         for m, _ in tar_samples(shards / f)}
    assert all("." not in k.rsplit("/", 1)[-1] for k in keys)


def test_timms_webdataset_reader_reads_our_info(packed):
    """timm's own parser of `_info.json` (its `wds/` datasets) reads what the pack wrote."""
    from timm.data.readers.reader_wds import _parse_split_info

    info = json.loads((packed[1] / "_info.json").read_text())
    for name in ("train", "validation"):
        split = _parse_split_info(name, info)
        entry = info["splits"][name]
        assert split.name == name and split.num_samples == entry["num_samples"]
        assert split.filenames == tuple(entry["filenames"])
        assert split.shard_lengths == tuple(entry["shard_lengths"])
        assert all((packed[1] / f).is_file() for f in split.filenames)


def test_the_shard_dataset_reads_every_sample_in_any_order(packed):
    shards = packed[1]
    ds = webdataset("train", shards, num_classes=3)
    assert ds.shard_lengths == [4, 4, 4, 4, 1] and len(ds) == 17
    forward = [(ds.sample_id(i), ds[i][1]) for i in range(len(ds))]
    again = webdataset("train", shards, num_classes=3)
    backward = [(again.sample_id(i), again[i][1]) for i in reversed(range(len(ds)))]
    assert forward == backward[::-1] and len({k for k, _ in forward}) == 17
    img, _ = ds[3]
    assert img.mode == "RGB" and img.size[1] == 20
    assert webdataset("train", shards, num_classes=3, in_chans=1)[0][0].mode == "L"
    # a brace pattern of shards: their counts from the folder's _info.json
    part = webdataset("train", f"{shards}/train-{{000001..000002}}.tar", num_classes=3)
    assert part.shard_lengths == [4, 4] and part.sample_id(0) == ds.sample_id(4)
    val = webdataset("val", f"{shards}/train-{{000001..000002}}.tar", num_classes=3)
    assert len(val) == 7  # options.val: the folder's 'validation' split


def test_check_passes_then_names_an_altered_or_truncated_shard(packed, tmp_path, cli):
    shards = tmp_path / "shards"
    shutil.copytree(packed[1], shards)
    res = cli("data", "check", shards, "--quiet")
    assert res.code == 0 and "train: 5 shards, 17 samples" in res.out and ": ok" in res.out
    target = shards / "train-000002.tar"
    data = bytearray(target.read_bytes())
    data[700] ^= 0xFF  # inside the first image: the tar still parses
    target.write_bytes(bytes(data))
    res = cli("data", "check", shards, "--quiet")
    assert res.code == 2 and res.err.count("error:") == 1
    assert str(target) in res.err and "sha256" in res.err
    target.write_bytes(bytes(data[:1500]))  # cut inside a member
    res = cli("data", "check", shards, "--quiet")
    assert res.code == 2 and str(target) in res.err and "truncated" in res.err


def test_a_stopped_pack_resumes_to_the_same_shards(packed, tmp_path):
    folder, whole = packed
    out = tmp_path / "out"
    seen: list[str] = []

    def stop_after_two(text: str) -> None:
        seen.append(text)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pack_folder(folder, out, shard_size=4, note=stop_after_two)
    assert not (out / "_info.json").exists() and (out / "_pack.json").exists()
    # what a kill can leave: a temporary file, and a shard renamed but not yet listed
    (out / ".train-000002.tar.0123abcd.tmp").write_bytes(b"half")
    progress = json.loads((out / "_pack.json").read_text())
    shutil.copy(whole / "train-000002.tar", out / "train-000002.tar")
    import hashlib

    progress["pending"]["train-000002.tar"] = {
        "samples": 4, "sha256": hashlib.sha256((out / "train-000002.tar").read_bytes()).hexdigest(),
        "bytes": (out / "train-000002.tar").stat().st_size, "keys_sha256": "", "labels_sha256": ""}
    (out / "_pack.json").write_text(json.dumps(progress))
    written: list[str] = []
    res = pack_folder(folder, out, shard_size=4, note=written.append)
    assert res.written == 4 and written[0].startswith(f"resuming {out}: 3 of 7 shards")
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in whole.iterdir())
    for p in whole.iterdir():
        if p.name != "_info.json":
            assert p.read_bytes() == (out / p.name).read_bytes(), p.name  # deterministic shards
    assert pack_folder(folder, out, shard_size=4).done_before  # complete: nothing to do


@pytest.mark.parametrize("intruder", ["notes.txt", "train-000001.tar", "_info.json"])
def test_pack_never_overwrites_a_file_it_did_not_write(packed, tmp_path, cli, intruder):
    folder, _ = packed
    out = tmp_path / "out"
    out.mkdir()
    (out / intruder).write_text('{"splits": {}}')
    res = cli("data", "pack", folder, "--out", out, "--shard-size", "4")
    assert res.code == 2 and res.err.count("\n") == 1
    assert f"--out: '{out / intruder}' is not a file `distill data pack` wrote" in res.err
    assert [p.name for p in out.iterdir()] == [intruder]
    assert (out / intruder).read_text() == '{"splits": {}}'
    res = cli("data", "pack", folder, "--out", folder / "train" / "x")
    assert res.code == 2 and "inside" in res.err and not (folder / "train" / "x").exists()


@pytest.mark.parametrize("intruder", ["notes.txt", "train-000001.tar"])
def test_a_refused_pack_deletes_nothing_not_even_its_own_temporaries(packed, tmp_path, cli,
                                                                      intruder):
    """A file of a pack's temporary pattern beside a file the pack did not write: the
    folder is refused and both stay (the temporary was deleted before the refusal)."""
    folder, _ = packed
    out = tmp_path / "out"
    out.mkdir()
    temporary = out / ".train-000000.tar.0123abcd.tmp"
    temporary.write_bytes(b"half")
    (out / intruder).write_text("theirs")
    res = cli("data", "pack", folder, "--out", out, "--shard-size", "4")
    assert res.code == 2 and f"'{out / intruder}' is not a file" in res.err
    assert sorted(p.name for p in out.iterdir()) == sorted([temporary.name, intruder])
    assert temporary.read_bytes() == b"half"


def test_other_pack_settings_are_refused(packed, tmp_path, cli):
    folder, shards = packed
    copy = tmp_path / "shards"
    shutil.copytree(shards, copy)
    res = cli("data", "pack", folder, "--out", copy, "--shard-size", "5")
    assert res.code == 2 and "differs at shard_size" in res.err


def test_write_info_counts_shards_made_elsewhere(packed, tmp_path, cli):
    folder = tmp_path / "wds"
    folder.mkdir()
    for p in packed[1].glob("*.tar"):
        shutil.copy(p, folder / p.name)
    res = cli("data", "check", folder)
    assert res.code == 2 and "no _info.json" in res.err and "--write-info" in res.err
    res = cli("data", "check", folder, "--write-info", "--quiet")
    assert res.code == 0, res.err
    info = json.loads((folder / "_info.json").read_text())
    ours = json.loads((packed[1] / "_info.json").read_text())
    for split in ("train", "validation"):
        for key in ("filenames", "shard_lengths", "shard_sha256", "keys_sha256", "num_samples"):
            assert info["splits"][split][key] == ours["splits"][split][key]
    assert cli("data", "check", folder, "--quiet").code == 0
    res = cli("data", "check", folder, "--write-info")
    assert res.code == 2 and "exists already" in res.err
    # a read-only set: the counts kept elsewhere, named by data.options.info
    elsewhere = tmp_path / "kept" / "counts.json"
    elsewhere.parent.mkdir()
    (folder / "_info.json").unlink()
    res = cli("data", "check", folder, "--write-info", "--info", elsewhere, "--quiet")
    assert res.code == 0 and elsewhere.is_file() and not (folder / "_info.json").exists()
    ds = webdataset("train", folder, num_classes=3, info=str(elsewhere))
    assert len(ds) == 17 and ds[16][1] in (0, 1, 2)


# -- paths inside the shard set, bad shards ------------------------------------------------
@pytest.mark.parametrize("entry", ["../elsewhere/train-000000.tar", "/tmp/x.tar",
                                   "link/train-000000.tar"])
def test_info_filenames_outside_the_folder_are_refused_before_reading(tmp_path, entry):
    shards = tmp_path / "shards"
    shards.mkdir()
    (tmp_path / "elsewhere").mkdir()
    write_tar(tmp_path / "elsewhere" / "train-000000.tar", [("k.jpg", jpeg()), ("k.cls", b"0")])
    os.symlink(tmp_path / "elsewhere", shards / "link")
    write_info(shards, {"train": [(entry, 1)]})
    with pytest.raises(UsageError) as err:
        webdataset("train", shards, num_classes=2)
    assert str(shards / "_info.json") in str(err.value)
    assert "splits.train.filenames[0]" in str(err.value) and entry in str(err.value)


def bad_shards(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A shard set with one bad sample or file: (its folder, what the error must name)."""
    shards = tmp_path / kind
    shards.mkdir()
    good = [m for i in range(3) for m in ((f"s{i}.jpg", jpeg(i)), (f"s{i}.cls", b"1"))]
    files = [("train-0.tar", good), ("train-1.tar", list(good))]
    bad = shards / "train-1.tar"
    if kind == "no_label":
        files[1] = ("train-1.tar", [m for m in good if m[0] != "s1.cls"])
    elif kind == "label_out_of_range":
        files[1] = ("train-1.tar", [(n, b"7" if n == "s1.cls" else d) for n, d in good])
    for name, members in files:
        write_tar(shards / name, [(f"{name[:-4]}/{n}", d) for n, d in members])
    write_info(shards, {"train": [("train-0.tar", 3), ("train-1.tar", 3)],
                        "validation": [("train-0.tar", 3)]})
    if kind == "truncated":
        with tarfile.open(bad) as tar:
            image = tar.getmember("train-1/s1.jpg")
        bad.write_bytes(bad.read_bytes()[:image.offset_data + image.size // 2])
        return shards, f"{bad}: the file ends inside member 'train-1/s1.jpg' of sample 'train-1/s1'"
    if kind == "no_label":
        return shards, f"{bad}: sample 'train-1/s1' has no label"
    if kind == "label_out_of_range":
        return shards, f"{bad}: sample 'train-1/s1': label 7 is outside 0..1"
    if kind == "no_info":
        (shards / "_info.json").unlink()
        return shards, f"{shards / '_info.json'}: no _info.json"
    if kind == "pattern":
        return Path(f"{shards}/train-{{7..9}}.tar"), f"'{shards}/train-{{7..9}}.tar' matches no file"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "no_label", "label_out_of_range", "no_info",
                                  "pattern"])
def test_bad_shards_are_one_line_naming_the_file_and_the_key(tmp_path, kind):
    root, expected = bad_shards(tmp_path, kind)
    with pytest.raises(DataError) as err:
        ds = webdataset("train", root, num_classes=2)
        for i in range(len(ds)):
            ds[i]
    assert len(err.value.lines) == 1 and expected in err.value.lines[0], err.value.lines


@pytest.mark.parametrize("length", [b"00", b"-1", b"99"])
def test_a_pax_record_of_a_bad_length_is_one_line_not_a_hang(tmp_path, length):
    """A PAX record whose length is 0 (it never advanced: the reader looped forever),
    negative or past the header's end: one line naming the shard and the record's key."""
    shards = tmp_path / "shards"
    shards.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("s0.jpg", jpeg()), ("s0.cls", b"1")):
            info = tarfile.TarInfo(name)
            info.size, info.pax_headers = len(data), {"comment": "hello"}
            tar.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    at = data.index(b"17 comment=hello\n")
    (shards / "train-0.tar").write_bytes(data[:at] + length + data[at + 2:])
    write_info(shards, {"train": [("train-0.tar", 1)]})
    with pytest.raises(DataError) as err:
        webdataset("train", shards, num_classes=2)[0]
    line = err.value.lines[0]
    assert len(err.value.lines) == 1 and str(shards / "train-0.tar") in line
    assert "'comment'" in line and "damaged tar header" in line


@pytest.mark.parametrize("how", ["listed_twice", "pattern", "link"])
def test_a_shard_named_twice_is_refused(tmp_path, how):
    """The same shard twice in a split (listed twice, a brace pattern naming it twice, or
    under another name through a link) would read its samples twice per epoch: refused."""
    shards = tmp_path / "shards"
    shards.mkdir()
    write_tar(shards / "train-0.tar", [("s0.jpg", jpeg()), ("s0.cls", b"1")])
    write_tar(shards / "train-1.tar", [("s1.jpg", jpeg(1)), ("s1.cls", b"0")])
    files = [("train-0.tar", 1), ("train-1.tar", 1)]
    if how == "listed_twice":
        files.append(("./train-0.tar", 1))
    elif how == "link":
        os.symlink(shards / "train-0.tar", shards / "train-2.tar")
        files.append(("train-2.tar", 1))
    write_info(shards, {"train": files})
    root = f"{shards}/train-{{0,1,0}}.tar" if how == "pattern" else shards
    with pytest.raises(DataError) as err:
        webdataset("train", root, num_classes=2)
    line = err.value.lines[0]
    assert len(err.value.lines) == 1 and "twice" in line and "train-0.tar" in line
    assert (str(shards / "_info.json") in line) if how != "pattern" else str(root) in line
    write_info(shards, {"train": files[:2]})
    assert len(webdataset("train", shards, num_classes=2)) == 2


def test_a_count_the_shard_cannot_hold_is_refused_before_anything_is_planned(tmp_path):
    """An `_info.json` counting 10^12 samples in a shard of a few kB (it reached np.arange:
    a MemoryError): refused in one line naming the file and the shard."""
    shards = tmp_path / "shards"
    shards.mkdir()
    write_tar(shards / "train-0.tar", [("s0.jpg", jpeg()), ("s0.cls", b"1")])
    size = (shards / "train-0.tar").stat().st_size
    for count in (10**12, size // 1024 + 1):
        write_info(shards, {"train": [("train-0.tar", count)]})
        with pytest.raises(DataError) as err:
            webdataset("train", shards, num_classes=2)
        line = err.value.lines[0]
        assert len(err.value.lines) == 1 and str(shards / "_info.json") in line
        assert f"'train-0.tar' is counted as {count} samples, but its {size} bytes hold 1" \
            in line
