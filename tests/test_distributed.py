"""Several processes under torchrun, on CPU with gloo: training, resume after a lost rank,
cache building (the cache one process builds, resumable with any number of processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from distill.cache import load_manifest, progress_files, progress_name, save_manifest
from distill.checkpoint import load_weights
from distill.engine import Reporter
from distill.errors import UsageError
from distill.recipe import load_recipe

from .conftest import ROOT, SMOKE

pytestmark = pytest.mark.integration

# 2 epochs of 128 images; the global batch is 32 whatever the number of processes.
SETS = ["data.options.train_size=128", "data.options.val_size=64", "run.threads=1",
        "run.log_every=2"]


def torchrun(nproc: int, *args: str, env: dict[str, str] | None = None,
             script: Path | None = None, **popen: object) -> subprocess.Popen:
    """`torchrun … -m distill ARGS`, or `torchrun … SCRIPT ARGS`."""
    what = ["-m", "distill"] if script is None else [str(script)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", *what, *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DISTILL_DIST_TIMEOUT": "60", **(env or {})}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)


def train_args(out: Path, nproc: int, epochs: int = 2, *extra: str) -> list[str]:
    sets = [*SETS, f"data.batch_size={32 // nproc}", f"schedule.epochs={epochs}"]
    return ["train", SMOKE, "--out", out, *[a for s in sets for a in ("--set", s)], *extra]


def epoch_rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == "epoch"]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory) -> tuple[Path, str]:
    """3 epochs on 2 processes, never interrupted: its directory and its output."""
    run = tmp_path_factory.mktemp("w2") / "run"
    two = torchrun(2, *train_args(run, 2, 3))
    out, _ = two.communicate(timeout=300)
    assert two.returncode == 0, out
    return run, out


def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path, two_process_run,
                                                                 cli):
    """The one process trains here, in-process (the same command, outside torchrun)."""
    run, out = two_process_run
    one = cli(*train_args(tmp_path / "w1", 1, 3))
    assert one.code == 0, one.err
    assert {p.name for p in run.iterdir()} >= {"model.safetensors", "state.pt", "recipe.yaml",
                                               "metrics.jsonl", "summary.json"}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["dist_backend"] == "gloo"
    assert out.count("top1") >= 2 and "[rank 1]" not in out  # rank 0 alone reports
    # each rank takes half of every global batch: the same images per step as one process
    a, b = epoch_rows(run), epoch_rows(tmp_path / "w1")
    assert len(a) == len(b) == 3
    for x, y in zip(a, b, strict=True):
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=0.02)
        assert x["lr"] == y["lr"]  # the LR follows the global batch
    # the sharded evaluation covers the whole validation set once
    assert len([r for r in (run / "metrics.jsonl").read_text().splitlines()
                if '"kind": "step"' in r]) == len([r for r in (tmp_path / "w1" / "metrics.jsonl")
                                                   .read_text().splitlines()
                                                   if '"kind": "step"' in r])


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def test_a_killed_rank_ends_the_job_and_resume_finishes_it(tmp_path, two_process_run):
    run, ref = tmp_path / "run", two_process_run[0]  # ref: the same run, never interrupted
    job = torchrun(2, *train_args(run, 2, 3))
    deadline = time.time() + 240
    while not (run / "state.pt").exists():  # the first epoch's checkpoint
        assert job.poll() is None and time.time() < deadline, job.stdout.read()
        time.sleep(0.2)
    workers = _children(job.pid)
    assert len(workers) == 2
    os.kill(workers[-1], signal.SIGKILL)
    t0 = time.time()
    out, _ = job.communicate(timeout=120)  # torchrun ends the other rank: no hang
    assert job.returncode != 0 and time.time() - t0 < 120
    assert not (run / "summary.json").exists()
    again = torchrun(2, *train_args(run, 2, 3, "--resume"))
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    assert "resuming" in out
    assert [r["epoch"] for r in epoch_rows(run)] == [0, 1, 2]
    a, b = load_weights(run / "model.safetensors"), load_weights(ref / "model.safetensors")
    for key in b:  # resumed after the kill = never interrupted
        assert torch.allclose(a[key], b[key], atol=1e-6), key


def test_one_process_commands_refuse_torchrun(monkeypatch, cli, tmp_path):
    from distill.engine import resolve_runtime

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(UsageError, match="torchrun with 2 processes: this command runs in one"):
        resolve_runtime(load_recipe(SMOKE))
    # from the command line: one line, tagged with the rank that says it, exit 2
    res = cli("speed", SMOKE, "--out", tmp_path / "s")
    assert res.code == 2 and res.err.startswith("error: [rank 1] torchrun with 2 processes")
    assert "\n" not in res.err.strip() and not (tmp_path / "s").exists()


def test_bad_torchrun_environment_is_named(monkeypatch):
    from distill.engine import dist

    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(UsageError, match="WORLD_SIZE: expected an integer from torchrun, got 'two'"):
        dist.topology()
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "5")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    top = dist.topology()
    assert (top.rank, top.local_rank, top.world_size, top.main) == (5, 5, 4, False)
    # one process: in a group of one only when torchrun started it (not any WORLD_SIZE=1)
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert not dist.topology().launched
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job")
    assert dist.topology().launched and not dist.topology().distributed


# -- cache building ------------------------------------------------------------------------
# 4 shards of 32 rows per epoch: each of 2 processes builds a part of every epoch.
CACHE_SETS = [*SETS, "data.batch_size=16"]
MIX = ["augment.mixup=0.8", "augment.cutmix=1.0"]


def cache_args(out: Path, *extra: str, sets: list[str] = CACHE_SETS) -> list[str]:
    return ["cache", "build", SMOKE, "--out", out, "--shard-rows", "32",
            *[a for s in sets for a in ("--set", s)], *extra]


def same_cache(a: Path, b: Path) -> None:
    """Same identity, same shards, same bytes (sha256): the same cache."""
    ma, mb = load_manifest(a), load_manifest(b)
    assert ma.identity() == mb.identity()
    assert [(s.file, s.epoch, s.start, s.rows, s.sha256) for s in ma.shards] == \
        [(s.file, s.epoch, s.start, s.rows, s.sha256) for s in mb.shards]
    assert ma.complete and mb.complete and ma.teacher_top1 == mb.teacher_top1


@pytest.fixture(scope="module")
def two_process_cache(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cache2") / "cache"
    job = torchrun(2, *cache_args(out))
    log, _ = job.communicate(timeout=300)
    assert job.returncode == 0, log
    assert "2 processes share 8 shards" in log and "[rank 1]" not in log
    return out


def test_two_processes_build_the_cache_one_process_builds(tmp_path, two_process_cache, cli):
    """The one process builds here, in-process (the same command, outside torchrun)."""
    one = cli(*cache_args(tmp_path / "one"))
    assert one.code == 0, one.err
    same_cache(two_process_cache, tmp_path / "one")
    assert not progress_files(two_process_cache)  # merged into the manifest, then removed
    res = cli("cache", "verify", two_process_cache)
    assert res.code == 0 and "8 shards ok" in res.out, res.err
    from distill.engine import train

    alone = [s for s in CACHE_SETS if not s.startswith("run.threads")]  # one process trains
    run = train(load_recipe(SMOKE, [*alone, f"run.out={tmp_path / 'run'}"],
                            teacher=f"cache:{two_process_cache}"))
    assert run.summary["teacher"] == f"cache:{two_process_cache}"
    assert run.summary["world_size"] == 1 and "dist_backend" not in run.summary


def test_an_interrupted_torchrun_build_resumes_with_any_number_of_processes(
        tmp_path, two_process_cache, cli):
    """What a build killed mid-way leaves: rank 0's shards in the manifest, rank 1's in its
    progress file, a rank's shard half-written; one process (this one) finishes it."""
    out = tmp_path / "cache"
    out.mkdir()
    m = load_manifest(two_process_cache)
    for s in m.shards:
        (out / s.file).write_bytes((two_process_cache / s.file).read_bytes())
    rank1 = [s for k, s in enumerate(m.shards) if k % 2 == 1]
    part = m.model_copy(update={"shards": rank1[:1]}, deep=True)
    save_manifest(out, part, progress_name(1))
    for s in rank1[1:]:  # never finished: rank 1 was killed first
        (out / s.file).unlink()
    (out / f".{rank1[1].file}.123.tmp").write_bytes(b"half")
    m.shards, m.complete, m.teacher_top1 = m.shards[0::2], False, None
    save_manifest(out, m)
    res = cli(*cache_args(out))
    err = " ".join(res.err.split())  # an in-process console wraps notes at 80 columns
    assert res.code == 0, res.err
    assert "resuming" in err and "5 of 8 shards present" in err
    assert "96 images" in err  # the 3 missing shards of 32 rows, nothing else
    same_cache(out, two_process_cache)
    assert not progress_files(out) and not list(out.glob(".*.tmp"))


def test_exact_mixing_cache_for_two_processes_trains_like_the_live_teacher(tmp_path):
    """Rows r + 2j hold rank r's slot j, computed on rank r's mixed batch: two processes
    training from the cache take the very steps of two processes with the live teacher.
    (One process builds it with `world_size=2`; that N build processes write the cache one
    process writes is the test above.) Both runs train in one torchrun, one after the other
    (tests/_dist_ranks.py); `distill train` under torchrun is the tests above."""
    from distill.engine.cache_build import build_cache

    sets = [*CACHE_SETS, *MIX, "schedule.epochs=1"]
    cache = tmp_path / "cache"
    alone = load_recipe(SMOKE, [s for s in sets if not s.startswith("run.threads")])
    build_cache(alone, cache, store="hard", shard_rows=32, world_size=2, reporter=Reporter())
    m = load_manifest(cache)
    assert (m.mix_targets, m.world_size, m.batch_size, m.rows_per_epoch) == ("exact", 2, 16, 128)
    job = torchrun(2, cache, tmp_path, *sets, script=ROOT / "tests" / "_dist_ranks.py")
    log, _ = job.communicate(timeout=300)
    assert job.returncode == 0, log
    runs = {name: load_weights(tmp_path / name / "model.safetensors")
            for name in ("live", "cached")}
    for key, value in runs["live"].items():
        assert torch.equal(value, runs["cached"][key]), key


def test_a_failing_rank_ends_a_torchrun_build_with_its_error_shown(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    job = torchrun(2, *cache_args(blocker / "cache"))
    log, _ = job.communicate(timeout=120)
    assert job.returncode != 0
    assert f"error: [rank 0] --out: '{blocker}' in '{blocker / 'cache'}' is a file" in log
    assert "[rank1]: Traceback" not in log  # the other rank: one line at most, no traceback
    assert blocker.read_text() == "not a directory"


def test_ranks_that_finish_first_wait_for_the_others_past_the_collective_timeout(tmp_path):
    """Whole shards are dealt, so a rank may finish long before another. With a 3 s collective
    timeout, rank 1 waits 5 s for rank 0's slow shard: the build still completes."""
    slow = ["teacher.name=python:tests.plugins.user_teacher:slow_on_rank0",
            "teacher.kwargs={num_classes: 10, delay: 5.0}", "data.options.train_size=96",
            "schedule.epochs=1"]
    job = torchrun(2, *cache_args(tmp_path / "cache", "--store", "hard",
                                  sets=[*CACHE_SETS, *slow]), env={"DISTILL_DIST_TIMEOUT": "3"})
    log, _ = job.communicate(timeout=120)
    assert job.returncode == 0, log
    assert "2 processes share 3 shards" in log and load_manifest(tmp_path / "cache").complete


def test_a_lost_peer_is_told_apart_from_a_bug():
    from distill.engine.dist import peer_lost

    gloo = RuntimeError("[/src/gloo/transport/tcp/pair.cc:561] Connection closed by peer "
                        "[127.0.0.1]:4242. This is typically caused by a remote worker crashing.")
    assert peer_lost(gloo) == "Connection closed by peer [127.0.0.1]:4242"
    assert peer_lost(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) is None
    assert peer_lost(ValueError("Connection closed by peer")) is None
    assert peer_lost(RuntimeError("DataLoader timed out after 5 seconds")) is None  # local
    assert peer_lost(torch.distributed.DistBackendError("NCCL error: out of memory")) is None
    timeout = RuntimeError("[../gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting "
                           "3000ms for recv operation to complete")
    assert peer_lost(timeout) == "Timed out waiting 3000ms for recv operation to complete"


def test_one_process_under_torchrun_joins_a_group_of_one(monkeypatch, tmp_path):
    """`torchrun --nproc-per-node 1` (as on a machine with one GPU): the process joins a
    group of one, so the step runs through DDP and the reductions and gathers run."""
    import socket

    from distill.engine import dist, train
    from distill.engine.cache_build import build_cache
    from tests.conftest import FAST

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in (("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", str(port)),
                       ("WORLD_SIZE", "1"), ("RANK", "0"), ("LOCAL_RANK", "0"),
                       ("TORCHELASTIC_RUN_ID", "test")):
        monkeypatch.setenv(key, value)
    notes: list[str] = []

    class Notes(Reporter):
        def note(self, text: str) -> None:
            notes.append(text)

    try:
        run = train(load_recipe(SMOKE, [*FAST, "schedule.epochs=1",
                                        f"run.out={tmp_path / 'run'}"]))
        assert run.summary["dist_backend"] == "gloo" and run.summary["world_size"] == 1
        build_cache(load_recipe(SMOKE, [*FAST, "schedule.epochs=1"]), tmp_path / "cache",
                    store="hard", reporter=Notes())
        assert notes[-1].startswith("built ") and notes[-1].endswith("; 1 process (gloo)")
    finally:
        dist.shutdown()
    assert dist.backend() is None
