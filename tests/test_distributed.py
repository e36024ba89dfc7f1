"""Several processes under torchrun, on CPU with gloo: training, resume after a lost rank."""

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

from distill.checkpoint import load_weights
from distill.errors import UsageError
from distill.recipe import load_recipe

from .conftest import ROOT, SMOKE

pytestmark = pytest.mark.integration

# 2 epochs of 128 images; the global batch is 32 whatever the number of processes.
SETS = ["data.options.train_size=128", "data.options.val_size=64", "run.threads=1",
        "run.log_every=2"]


def torchrun(nproc: int, *args: str, **popen: object) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", "-m", "distill", *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DISTILL_DIST_TIMEOUT": "60"}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)


def train_args(out: Path, nproc: int, epochs: int = 2, *extra: str) -> list[str]:
    sets = [*SETS, f"data.batch_size={32 // nproc}", f"schedule.epochs={epochs}"]
    return ["train", SMOKE, "--out", out, *[a for s in sets for a in ("--set", s)], *extra]


def epoch_rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == "epoch"]


def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path):
    two = torchrun(2, *train_args(tmp_path / "w2", 2))
    out, _ = two.communicate(timeout=300)
    assert two.returncode == 0, out
    one = subprocess.run([sys.executable, "-m", "distill", *map(str, train_args(
        tmp_path / "w1", 1))], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    run = tmp_path / "w2"
    assert {p.name for p in run.iterdir()} >= {"model.safetensors", "state.pt", "recipe.yaml",
                                               "metrics.jsonl", "summary.json"}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert out.count("top1") >= 2 and "[rank 1]" not in out  # rank 0 alone reports
    # each rank takes half of every global batch: the same images per step as one process
    a, b = epoch_rows(run), epoch_rows(tmp_path / "w1")
    assert len(a) == len(b) == 2
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


def test_a_killed_rank_ends_the_job_and_resume_finishes_it(tmp_path):
    run, ref = tmp_path / "run", tmp_path / "ref"
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
    whole = torchrun(2, *train_args(ref, 2, 3))
    assert whole.communicate(timeout=300)[0] and whole.returncode == 0
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
    res = cli("cache", "build", SMOKE, "--out", tmp_path / "c")
    assert res.code == 2 and res.err.startswith("error: [rank 1] torchrun with 2 processes")
    assert not (tmp_path / "c").exists()


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
