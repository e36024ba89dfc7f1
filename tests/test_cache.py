"""The logit cache: same targets as the live teacher, refusal of caches that do not fit,
resume after SIGKILL, integrity checks, disk errors, and the CLI."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from distill.cache import StoreFormat, load_manifest
from distill.engine import LogReporter, Reporter, train
from distill.engine.cache_build import build_cache
from distill.engine.cache_verify import live_check
from distill.errors import RunError, UsageError
from distill.recipe import load_recipe
from tests.conftest import FAST, ROOT, SMOKE

pytestmark = pytest.mark.integration

MIX = ["augment.mixup=0.8", "augment.cutmix=1.0"]


def recipe(*sets: str, **shortcuts):
    return load_recipe(SMOKE, [*FAST, *sets], **shortcuts)


def build(out: Path, *sets: str, teacher: str | None = None, **kwargs):
    return build_cache(recipe(*sets, teacher=teacher), out, reporter=Reporter(), **kwargs)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model.safetensors")


def shard_hashes(folder: Path) -> dict[str, str]:
    return {s.file: s.sha256 for s in load_manifest(folder).shards}


# -- store formats -------------------------------------------------------------------------
def test_store_formats_decode_to_the_stored_distribution():
    torch.manual_seed(0)
    logits = 3 * torch.randn(6, 12)
    full = StoreFormat.parse("full")
    dec = full.decode(full.encode(logits, 2.0), 12, 2.0)
    assert torch.equal(dec, logits.half().float())
    topk = StoreFormat.parse("topk:4", 12)
    rows = topk.encode(logits, 2.0)
    p = topk.probs(rows, 12, 2.0)
    p_true = F.softmax(logits / 2.0, -1)
    ids = p_true.topk(4, -1).indices
    assert torch.allclose(p.gather(-1, ids), p_true.gather(-1, ids), atol=1e-3)
    assert torch.allclose(p.sum(-1), torch.ones(6), atol=1e-3)
    rest = p_true.sum(-1) - p_true.gather(-1, ids).sum(-1)  # spread over the 8 others
    mask = torch.ones_like(p, dtype=torch.bool).scatter_(-1, ids, False)
    assert torch.allclose(p[mask].view(6, 8), (rest / 8)[:, None].expand(6, 8), atol=1e-3)
    dec = topk.decode(rows, 12, 2.0)  # softmax(dec / τ) gives back the stored distribution
    assert torch.allclose(F.softmax(dec / 2.0, -1), p, atol=1e-5)
    hard = StoreFormat.parse("hard")
    dec = hard.decode(hard.encode(logits, 1.0), 12, 1.0)
    assert torch.equal(dec.argmax(-1), logits.argmax(-1))
    lam = 0.7  # interpolation mixes distributions with the batch's partner, flip(0)
    mixed = F.softmax(full.decode(full.encode(logits, 1.0), 12, 1.0, lam), -1)
    q = F.softmax(logits.half().float(), -1)
    assert torch.allclose(mixed, lam * q + (1 - lam) * q.flip(0), atol=1e-5)
    with pytest.raises(UsageError, match="topk:12 keeps every one"):
        StoreFormat.parse("topk:12", 12)
    with pytest.raises(UsageError, match="got 'top3'"):
        StoreFormat.parse("top3")


# -- same targets as live ------------------------------------------------------------------
@pytest.mark.parametrize("mixing", [[], MIX], ids=["no-mixup", "mixup-cutmix"])
def test_hard_cache_trains_exactly_like_the_live_teacher(tmp_path, mixing):
    cache = tmp_path / "cache"
    build(cache, *mixing, store="hard")
    assert load_manifest(cache).mix_targets == ("exact" if mixing else None)
    live = train(recipe(*mixing, f"run.out={tmp_path / 'live'}"))
    cached = train(recipe(*mixing, f"run.out={tmp_path / 'cached'}",
                          teacher=f"cache:{cache}"))
    a, b = weights(live.out), weights(cached.out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert cached.summary["teacher_top1"] == live.summary["teacher_top1"]


def test_full_cache_differs_from_live_by_fp16_rounding_only(tmp_path):
    cache = tmp_path / "cache"
    build(cache, "loss.name=soft", "student.name=deit_tiny_patch16_224", store="full")
    res = live_check(cache, 24)
    assert res["argmax_mismatch"] == 0.0
    assert 0 < res["max_abs_diff"] < 1e-2  # fp16 of logits of magnitude ~1
    r = ["loss.name=soft", "student.name=deit_tiny_patch16_224"]
    live = train(recipe(*r, f"run.out={tmp_path / 'live'}"))
    cached = train(recipe(*r, f"run.out={tmp_path / 'cached'}", teacher=f"cache:{cache}"))
    a, b = weights(live.out), weights(cached.out)
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert 0 < diff < 1e-2


def test_interpolated_targets_free_the_batch_size_and_static_caches_train(tmp_path):
    cache = tmp_path / "cache"
    build(cache, *MIX, "teacher.mix_targets=interpolate", store="topk:3")
    m = load_manifest(cache)
    assert m.mix_targets == "interpolate" and m.batch_size is None
    out = train(recipe(*MIX, "teacher.mix_targets=interpolate", "data.batch_size=8",
                       "loss.target=soft", f"run.out={tmp_path / 'run'}",
                       teacher=f"cache:{cache}"))
    assert out.summary["teacher"] == f"cache:{cache}"
    static = tmp_path / "static"
    res = build(static, mode="static", store="hard")
    assert res.manifest.rows_per_epoch == 64 and res.manifest.shards[0].epoch is None
    notes = []

    class Notes(LogReporter):
        def note(self, text: str) -> None:
            notes.append(text)

    run = train(recipe(f"run.out={tmp_path / 'static-run'}", teacher=f"cache:{static}"),
                reporter=Notes())
    assert run.summary["teacher"] == f"cache:{static}"
    assert any("static cache" in n and "un-augmented" in n for n in notes)


# -- refusal -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exact_cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exact") / "cache"
    build(folder, *MIX, store="hard")
    return folder


@pytest.mark.parametrize("sets, named", [
    (["teacher.kwargs={num_classes: 10, stem_chs: 16}"], "teacher.kwargs"),
    (["teacher.name=timm:resnet10t"], "teacher.name"),
    (["data.options.train_size=96"], "training images"),
    (["data.train_limit=48"], "training images"),
    (["data.options.seed=1"], "training labels"),
    (["augment.re_prob=0.0"], "augment.re_prob"),
    (["augment.mixup=0.5"], "augment.mixup"),
    (["run.seed=1"], "run.seed"),
    (["schedule.epochs=3"], "schedule.epochs"),
    (["data.batch_size=32"], "data.batch_size"),
    (["loss.target=soft"], "soft cache"),
    (["teacher.mix_targets=interpolate"], "teacher.mix_targets"),
])
def test_a_cache_that_does_not_fit_is_refused_before_training(tmp_path, exact_cache, sets,
                                                               named):
    out = tmp_path / "run"
    r = recipe(*MIX, *sets, f"teacher.cache={exact_cache}", f"run.out={out}")
    with pytest.raises(UsageError, match=named) as err:
        train(r)
    assert "does not fit this run" in str(err.value) and "\n" not in str(err.value)
    assert not out.exists()  # nothing started


def test_an_exact_cache_for_another_world_size_names_the_option(exact_cache):
    with pytest.raises(UsageError, match=r"^out: '.*' holds a cache for 1 training process, "
                       r"not 2; to finish or reuse it, pass --world-size 1"):
        build(exact_cache, *MIX, store="hard", world_size=2)


def test_exact_mixing_checks_the_world_size(exact_cache):
    from distill.cache import mismatches

    r = recipe(*MIX)
    m = load_manifest(exact_cache)
    assert mismatches(m, r, world_size=1) == []
    assert mismatches(m, r, world_size=2) == ["world size (cache 1, run 2)"]


def test_every_mismatch_is_named_at_once(tmp_path, exact_cache):
    r = recipe(*MIX, "run.seed=3", "augment.hflip=0.0", "schedule.epochs=4",
               f"run.out={tmp_path}", teacher=f"cache:{exact_cache}")
    with pytest.raises(UsageError) as err:
        train(r)
    for field in ("run.seed", "augment.hflip", "schedule.epochs"):
        assert field in str(err.value)


def test_topk_cache_is_refused_at_another_temperature(tmp_path):
    cache = tmp_path / "cache"
    build(cache, "loss.target=soft", "loss.tau=2.0", store="topk:3")
    with pytest.raises(UsageError, match=r"loss.tau \(cache 2.0, run 3.0\)"):
        train(recipe("loss.target=soft", "loss.tau=3.0", f"run.out={tmp_path / 'r'}",
                     teacher=f"cache:{cache}"))


def test_other_teacher_weights_are_refused(tmp_path):
    ckpt = tmp_path / "teacher"
    train(recipe(f"run.out={ckpt}", "schedule.epochs=1", "student.kwargs={}",
                 "student.drop_path_rate=null", loss="none", student="cifar_resnet8"))
    cache = tmp_path / "cache"
    own = ["teacher.kwargs={}", "teacher.input_size=null"]
    build(cache, *own, store="hard", teacher=f"checkpoint:{ckpt}")
    train(recipe(*own, f"teacher.cache={cache}", f"run.out={tmp_path / 'ok'}",
                 teacher=f"checkpoint:{ckpt}"))  # the same weights: accepted
    state = weights(ckpt)
    state = {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}
    from distill.checkpoint import read_metadata, save_weights

    save_weights(ckpt / "model.safetensors", state, read_metadata(ckpt / "model.safetensors"))
    with pytest.raises(UsageError, match="teacher weights"):
        train(recipe(*own, f"teacher.cache={cache}", f"run.out={tmp_path / 'r'}",
                     teacher=f"checkpoint:{ckpt}"))


# -- resume --------------------------------------------------------------------------------
# One thread: the builds in a fresh interpreter and in this process compute the same bytes
# whatever the machine's core count.
CLI_BUILD = ["cache", "build", str(SMOKE), "--store", "full", "--shard-rows", "16",
             *[x for s in [*FAST, "data.options.train_size=256", "schedule.epochs=3",
                           "run.threads=1"]
               for x in ("--set", s)]]


def test_a_written_shard_is_listed_while_the_next_one_computes(tmp_path):
    """A kill during shard k loses only shard k: the ones before it are already listed."""
    out = tmp_path / "cache"
    listed: list[tuple[int, int]] = []  # (shard being computed, shards listed), second batch

    class Watch(Reporter):
        calls = 0

        def advance(self, *_: object) -> None:
            shard, second = divmod(Watch.calls, 2)  # 2 teacher batches of 16 per shard
            Watch.calls += 1
            if not second:
                time.sleep(0.3)  # the writer thread finishes the previous shard meanwhile
            elif (out / "manifest.json").exists():
                listed.append((shard, len(load_manifest(out).shards)))

    build_cache(recipe(), out, store="hard", batch_size=16, shard_rows=32, reporter=Watch())
    assert listed == [(k, k) for k in range(4)]


def test_a_validation_split_too_small_fails_before_any_work(tmp_path, monkeypatch):
    import distill.engine.cache_build as cb

    def refuse(*_: object, **__: object):
        raise UsageError("data: 1 validation images cannot be shared by 2 processes")

    monkeypatch.setattr(cb, "build_val_loader", refuse)
    with pytest.raises(UsageError, match="cannot be shared by 2 processes"):
        build(tmp_path / "cache", store="hard")
    assert not (tmp_path / "cache").exists()


def test_build_killed_at_any_point_resumes_to_identical_contents(tmp_path, cli):
    """A build SIGKILLed mid-way (in a fresh interpreter) resumes to the bytes of a build never
    interrupted; the uninterrupted build and the resume run in this process."""
    whole = tmp_path / "whole"
    assert cli(*CLI_BUILD, "--out", whole).code == 0
    expected = shard_hashes(whole)
    assert len(expected) == 48
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "distill", *CLI_BUILD, "--out", str(killed)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:  # kill once a few shards are listed, mid-build
        try:
            if len(json.loads((killed / "manifest.json").read_text())["shards"]) >= 5:
                break
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = load_manifest(killed)
    assert 5 <= len(partial.shards) < 48 and not partial.complete
    # What a kill can leave: a temporary file, and a shard renamed but not yet listed.
    (killed / ".epoch-0002-part-015.safetensors.x.tmp").write_bytes(b"half")
    listed = {s.file for s in partial.shards}
    unlisted = next(n for n in sorted(expected) if n not in listed)
    (killed / unlisted).write_bytes(b"garbage")
    res = cli(*CLI_BUILD, "--out", killed)
    assert res.code == 0 and "resuming" in res.err, res.err
    assert shard_hashes(killed) == expected
    assert load_manifest(killed).identity() == load_manifest(whole).identity()
    assert sorted(p.name for p in killed.iterdir()) == sorted(p.name for p in whole.iterdir())


def test_a_different_build_into_the_same_directory_is_refused(tmp_path):
    cache = tmp_path / "cache"
    build(cache, store="hard")
    with pytest.raises(UsageError, match="^out: '.*' holds a different cache.*store"):
        build(cache, store="full")
    assert build(cache, store="hard").images == 0  # complete: nothing to do
    dry = build(tmp_path / "dry", store="hard", dry_run=True)
    assert dry.images == 128 and not (tmp_path / "dry").exists()


# -- integrity -----------------------------------------------------------------------------
def test_corrupted_or_truncated_shards_are_detected_naming_the_file(tmp_path, cli):
    cache = tmp_path / "cache"
    build(cache, store="full", shard_rows=32)
    assert cli("cache", "verify", cache).code == 0
    shard = cache / load_manifest(cache).shards[1].file
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0xFF  # a flipped bit in the payload, same size
    shard.write_bytes(bytes(data))
    res = cli("cache", "verify", cache)
    assert res.code == 2 and str(shard) in res.err and "sha256" in res.err
    with pytest.raises(UsageError, match=f"'{shard}' fails its sha256"):
        train(recipe(f"run.out={tmp_path / 'r'}", teacher=f"cache:{cache}"))
    shard.write_bytes(bytes(data[:-40]))  # truncated: caught even by the quick check
    with pytest.raises(UsageError, match=f"'{shard}' is truncated"):
        train(recipe(f"run.out={tmp_path / 'r'}", "teacher.cache_verify=quick",
                     teacher=f"cache:{cache}"))
    res = cli("cache", "verify", cache)
    assert res.code == 2 and "truncated" in res.err


def test_rows_never_computed_are_an_error_not_zeros(tmp_path):
    from distill.cache import ShardReader

    cache = tmp_path / "cache"
    build(cache, store="hard")
    info = load_manifest(cache).shards[0]
    reader = ShardReader(cache / info.file, info)
    assert reader.row(3)["ids"].shape == ()
    assert reader.maps()["valid"].all()
    from safetensors.torch import save_file

    block = load_file(cache / info.file)
    block["valid"][3] = 0
    save_file(block, str(cache / "x.safetensors"))
    with pytest.raises(RuntimeError, match="no output for row 3"):
        ShardReader(cache / "x.safetensors", info).row(3)


# -- disk errors ---------------------------------------------------------------------------
def test_disk_full_keeps_earlier_shards_and_resumes(tmp_path, monkeypatch):
    import distill.cache.shards as shards

    cache = tmp_path / "cache"
    real = shards.atomic_write_bytes
    calls = []

    def flaky(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(shards, "atomic_write_bytes", flaky)
    with pytest.raises(RunError, match="no space left on device; the shards written before"):
        build(cache, store="full", shard_rows=16)
    partial = load_manifest(cache)
    assert len(partial.shards) == 2 and not partial.complete
    for s in partial.shards:
        assert (cache / s.file).stat().st_size == s.bytes
    monkeypatch.setattr(shards, "atomic_write_bytes", real)
    build(cache, store="full", shard_rows=16)
    assert load_manifest(cache).complete


def test_unwritable_output_is_a_one_line_error(tmp_path, cli):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    res = cli(*CLI_BUILD[:3], "--set", FAST[0], "--out", blocker / "cache")
    assert res.code == 2 and f"--out: '{blocker}' in '{blocker / 'cache'}' is a file" in res.err
    assert "Traceback" not in res.err


# -- the rows of a cache -------------------------------------------------------------------
@pytest.mark.parametrize("world, repeats", [(None, 1), (1, 1), (3, 1), (2, 3)])
def test_each_row_is_computed_once_in_the_batch_that_trains_on_it(world, repeats):
    """Per-sample rows are positions in the epoch's global order; with exact mixing for W
    processes, row r + W·j is slot j of rank r, computed in rank r's own batch and step."""
    from distill.cache import RowLayout
    from distill.data import ReplaySampler

    size, b = 50, 4
    sampler = ReplaySampler(size, 7, repeats=repeats)
    layout = RowLayout(sampler, b, world)
    w = world or 1
    per_rank = len(ReplaySampler(size, 7, repeats=repeats, num_replicas=w))
    rows = w * (per_rank // b * b) if world else len(sampler)
    shard = 2 * w * b  # whole steps of every rank
    seen = []
    for start in range(0, rows, shard):
        n = min(shard, rows - start)
        placed = [(p.rows, p.step, p.rank) for p in layout.batches(1, start, n, keys=False)]
        assert placed == [(p.rows, p.step, p.rank) for p in layout.batches(1, start, n)]
        for batch in layout.batches(1, start, n):
            assert len(batch.keys) <= b
            if world:
                rank_keys = ReplaySampler(size, 7, repeats=repeats, num_replicas=w,
                                          rank=batch.rank, epoch=1).keys()
                assert batch.keys == rank_keys[batch.step * b:(batch.step + 1) * b]
            for k, key in enumerate(batch.keys):
                row = start + batch.rows.start + k * (batch.rows.step or 1)
                assert key[0] == 1 and key[3] == row  # the row is the key's position
                seen.append(row)
                found, slot = layout.locate(1, row)
                assert found.keys[slot] == key and (found.step, found.rank) == \
                    (batch.step, batch.rank)
    assert sorted(seen) == list(range(rows))  # every row once


def test_ranks_that_do_not_see_rank_0s_output_directory_stop_the_build_first(tmp_path,
                                                                             monkeypatch):
    """Under torchrun on several nodes: before any work, every rank reads the token rank 0
    wrote in --out; ranks on a node with its own disk do not find it, and all ranks stop."""
    from distill.engine import dist
    from distill.engine.cache_dist import TOKEN, prepare_out

    m = build(tmp_path / "first", store="hard").manifest
    seen = {}

    def gather(ok, **_):  # rank 0 (this process) and a rank 1 on another node
        seen["rank0"] = ok
        return [ok, False]

    monkeypatch.setattr(dist, "all_gather_object", gather)
    with pytest.raises(UsageError, match=r"^out: rank\(s\) 1 do not see the '.*out' that "
                       "rank 0 writes to; .* every node shares"):
        prepare_out(tmp_path / "out", m, main=True)
    assert seen["rank0"] is True and (tmp_path / "out" / TOKEN).exists()


def test_shards_rank_0_cannot_see_mean_an_unshared_output_directory(tmp_path):
    """Under torchrun on several nodes, a rank that wrote its shards to a directory rank 0
    does not see (a per-node disk) fails the build, naming the file; nothing is listed."""
    from distill.cache import ShardInfo
    from distill.engine.cache_dist import merge_ranks

    cache = tmp_path / "cache"
    m = build(cache, store="hard").manifest
    before = (cache / "manifest.json").read_text()
    elsewhere = ShardInfo(file="epoch-0001-part-007.safetensors", epoch=1, start=0, rows=8,
                          sha256="0" * 64, bytes=100)
    ranks = [{"shards": [], "build_seconds": 1.0},
             {"shards": [elsewhere.model_dump(mode="json")], "build_seconds": 1.0}]
    with pytest.raises(UsageError, match="^out: rank 1 wrote 'epoch-0001-part-007.safetensors'"
                       ".*every node shares"):
        merge_ranks(cache, m, ranks)
    assert (cache / "manifest.json").read_text() == before


# -- command line --------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs: must be at least 1, got 0"),
    (["--batch-size", "0"], "--batch-size: must be at least 1, got 0"),
    (["--mode", "live"], "--mode: expected replay or static, got 'live'"),
    (["--shard-rows", "0"], "--shard-rows: must be at least 1, got 0"),
    (["--set", "teacher.name=timm:resnet1000"], "unknown timm model 'resnet1000'"),
    (["--world-size", "2"], "--world-size: only a cache for exact mixing"),
    (["--world-size", "0", "--set", "augment.mixup=0.8"], "--world-size: must be at least 1"),
    # 62 images on 4 processes: each rank's 16th key pads; batch 16 would train on it
    (["--world-size", "4", "--batch-size", "16", "--set", "augment.mixup=0.8", "--set",
      "data.options.train_size=62"], "--world-size: with exact mixing, 4 processes and batch 16"),
])
def test_bad_build_options_are_one_line_errors(tmp_path, cli, args, message):
    res = cli("cache", "build", SMOKE, "--out", tmp_path / "c", *args)
    assert res.code == 2 and message in res.err and "Traceback" not in res.err
    assert len(res.err.strip().splitlines()) == 1 and not (tmp_path / "c").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs: must be at least 1, got 0"),
    ({"batch_size": 0}, "batch_size: must be at least 1, got 0"),
    ({"mode": "live"}, "mode: expected replay or static, got 'live'"),
    ({"shard_rows": 0}, "shard_rows: must be at least 1, got 0"),
    ({"world_size": 2}, "world_size: only a cache for exact mixing"),
    ({"store": "top3"}, "store: expected full, topk:K or hard, got 'top3'"),
])
def test_bad_build_arguments_name_the_argument_not_a_flag(tmp_path, kwargs, message):
    """Below the command line an error names `build_cache`'s argument; the CLI maps it to its
    flag (the test above)."""
    from distill.errors import OptionError

    with pytest.raises(OptionError) as err:
        build(tmp_path / "c", **kwargs)
    assert str(err.value).startswith(message) and err.value.option == next(iter(kwargs))
    assert not (tmp_path / "c").exists()


def test_recipe_cache_field_is_checked(tmp_path, cli):
    res = cli("recipe", "validate", SMOKE, "--teacher", "none", "--set",
              f"teacher.cache={tmp_path}", "--set", "loss.name=none", "--set",
              "student.name=deit_tiny_patch16_224")
    assert res.code == 2 and "teacher.cache" in res.err and "teacher.name" in res.err
    res = cli("recipe", "validate", SMOKE, "--set", f"teacher.cache={tmp_path}")
    assert res.code == 2 and f"teacher.cache: no manifest.json in '{tmp_path}'" in res.err


def test_cli_build_inspect_verify_and_bad_input(tmp_path, cli):
    cache = tmp_path / "cache"
    sets = [x for s in FAST for x in ("--set", s)]
    res = cli("cache", "build", SMOKE, "--out", cache, "--store", "topk:3", *sets)
    assert res.code == 0, res.err
    assert "estimated size" in res.err and "built" in res.err and "img/s" in res.err
    res = cli("cache", "inspect", cache, "--sample", "8", "--json")
    info = json.loads(res.out)
    assert info["store"] == "topk:3" and info["complete"] and info["coverage"].startswith("128 of 128")
    assert 0 <= info["sample"]["mean_kl"] < 0.5
    res = cli("cache", "verify", cache, "--live", "4")
    assert res.code == 0 and "2 shards ok" in res.out and "largest difference" in res.out
    bad = cli("cache", "build", SMOKE, "--out", tmp_path / "x", "--store", "top3", *sets)
    assert bad.code == 2 and "--store: expected full, topk:K or hard, got 'top3'" in bad.err
    bad = cli("train", SMOKE, "--teacher", f"cache:{tmp_path / 'nowhere'}", *sets)
    assert bad.code == 2 and "no manifest.json" in bad.err and "nowhere" in bad.err
    bad = cli("cache", "build", SMOKE, "--out", tmp_path / "y", "--teacher", f"cache:{cache}",
              *sets)
    assert bad.code == 2 and "built from a live teacher" in bad.err
