"""Whole runs of the smoke recipe: the run directory, resume after SIGKILL, NaN stops,
initialisation, EMA, and that training learns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from distill.checkpoint import load_state, read_metadata
from distill.engine import build_student_for, resolve_runtime, train
from distill.errors import RunError
from distill.recipe import load_recipe
from distill.registry import LOSSES
from tests.conftest import FAST, ROOT, SMOKE

pytestmark = pytest.mark.integration


def recipe(out, *sets: str, **shortcuts):
    return load_recipe(SMOKE, [*FAST, f"run.out={out}", *sets], **shortcuts)


def test_run_directory_is_complete(tmp_path):
    out = tmp_path / "run"
    r = recipe(out, "schedule.epochs=2", "run.ema=true", "run.ema_decay=0.9")
    result = train(r)
    names = {p.name for p in out.iterdir()}
    assert {"recipe.yaml", "metrics.jsonl", "state.pt", "model.safetensors", "ema.safetensors",
            "summary.json"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    summary = json.loads((out / "summary.json").read_text())
    for key in ("top1", "top1_cls", "top1_dist", "teacher_top1", "ema_top1",
                "train_images_per_s", "eval_images_per_s", "wall_time_s", "params"):
        assert isinstance(summary[key], (int, float)), key
    assert summary == result.summary and summary["teacher"] == "timm:test_resnet"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == [0, 1]
    assert any(r["kind"] == "step" and "distill" in r for r in rows)
    meta = read_metadata(out / "model.safetensors")
    assert meta["distill_model"] == "deit_tiny_distilled_patch16_224" and meta["epoch"] == "2"
    assert load_recipe(out / "recipe.yaml") == r
    assert load_state(out / "state.pt")["epoch"] == 2


def test_training_learns_the_synthetic_task(tmp_path):
    r = load_recipe(SMOKE, ["schedule.epochs=6", f"run.out={tmp_path}", "run.log_every=50"],
                    student="deit_tiny_patch16_224", loss="none")
    summary = train(r).summary
    assert summary["top1"] > 25.0  # chance is 10%
    assert "teacher_top1" not in summary  # `none` builds no teacher


def _kill_mid_run(out, args, env):
    proc = subprocess.Popen([sys.executable, "-m", "distill", "train", str(SMOKE), *args],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    killed_in = None
    while time.time() < deadline and proc.poll() is None:
        metrics = out / "metrics.jsonl"
        if (out / "state.pt").exists() and metrics.exists():
            rows = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
            steps = [r for r in rows if r["kind"] == "step" and r["epoch"] >= 1]
            if steps:
                os.kill(proc.pid, signal.SIGKILL)
                killed_in = steps[-1]["epoch"]
                break
        time.sleep(0.005)
    proc.wait()
    return killed_in


def test_resume_after_sigkill_reaches_the_same_weights(tmp_path, cli):
    """A run killed with SIGKILL mid-epoch (a fresh interpreter, killed from outside) resumes
    to the weights of a run never interrupted. The uninterrupted run and the resume run in
    this process (the same recipe, one thread, one loader worker): only the kill needs its
    own interpreter. (Resuming the command a stopped run prints, in a fresh interpreter:
    tests/test_safety.py::test_ctrl_c_says_how_to_resume_and_resume_finishes.)"""
    common = ["data.options.train_size=128", "data.batch_size=16", "run.log_every=1",
              "schedule.epochs=3", "run.threads=1", "data.num_workers=1"]
    args = [a for s in common for a in ("--set", s)]
    env = {**os.environ, "COLUMNS": "200"}
    straight = tmp_path / "straight"
    train(load_recipe(SMOKE, [*common, f"run.out={straight}"]))
    killed = tmp_path / "killed"
    epoch = _kill_mid_run(killed, [*args, "--out", str(killed)], env)
    assert epoch is not None and epoch < 3, "the run ended before it could be killed"
    assert not (killed / "summary.json").exists()
    resumed = cli("train", SMOKE, *args, "--out", killed, "--resume")
    assert resumed.code == 0, resumed.err
    assert "resuming" in resumed.err
    a, b = load_file(straight / "model.safetensors"), load_file(killed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == [0, 1, 2]


def test_resume_refuses_a_changed_recipe(tmp_path):
    train(recipe(tmp_path, "schedule.epochs=1"))
    from distill.errors import UsageError

    with pytest.raises(UsageError, match=r"differs from the run .* at optim.lr"):
        train(recipe(tmp_path, "schedule.epochs=1", "optim.lr=0.5"), resume=True)
    # A finished run resumes to its summary without training again.
    again = train(recipe(tmp_path, "schedule.epochs=1", "run.log_every=3"), resume=True)
    assert again.summary == json.loads((tmp_path / "summary.json").read_text())


def test_nan_loss_stops_with_the_last_checkpoint_intact(tmp_path):
    calls = {"n": 0}

    def nan_after(**params):
        base = LOSSES.build("none", **params)

        class Poisoned(type(base)):
            def parts(self, outputs, targets, teacher_logits=None):
                calls["n"] += 1
                parts = super().parts(outputs, targets, teacher_logits)
                if calls["n"] > 6:  # epoch 0 has 4 steps: poison epoch 1
                    parts["loss"] = parts["loss"] * float("nan")
                return parts

        return Poisoned(**params)

    LOSSES.register(nan_after, name="nan_after", heads="cls", needs_teacher=False)
    try:
        r = recipe(tmp_path, "schedule.epochs=3", student="deit_tiny_patch16_224",
                   loss="nan_after")
        with pytest.raises(RunError, match=r"loss became nan in epoch 1 \(step 3 of the epoch\)"):
            train(r)
    finally:
        LOSSES.unregister("nan_after")
    state = load_state(tmp_path / "state.pt")
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values())
    assert read_metadata(tmp_path / "model.safetensors")["epoch"] == "1"
    assert not (tmp_path / "summary.json").exists()


def test_init_from_a_run_and_from_a_timm_checkpoint(tmp_path):
    import timm

    first = tmp_path / "first"
    train(recipe(first, "schedule.epochs=1"))
    r = recipe(tmp_path / "second", f"student.init={first / 'model.safetensors'}")
    model = build_student_for(r, resolve_runtime(r))
    saved = load_file(first / "model.safetensors")
    assert all(torch.equal(model.state_dict()[k], saved[k]) for k in saved)

    ref = timm.create_model("deit_tiny_patch16_224", pretrained=False, depth=2, embed_dim=48,
                            num_heads=2, patch_size=8)  # 224² grid of 28×28, resampled to 4×4
    torch.save({"model": ref.state_dict()}, tmp_path / "deit.pth")
    r = recipe(tmp_path / "third", f"student.init={tmp_path / 'deit.pth'}")
    model = build_student_for(r, resolve_runtime(r))
    assert torch.equal(model.blocks[1].attn.qkv.weight, ref.blocks[1].attn.qkv.weight)


def test_init_adapts_for_a_plug_in_student_that_builds_a_deit(tmp_path):
    """A plug-in registered without `adapt_state` whose builder returns a `DeiT` gets its
    state dict fitted by the model's own `adapt_state` (the position embedding of a
    32-pixel run resampled to 64 pixels), as the built-in DeiT students do."""
    from safetensors.torch import save_file

    from distill.registry import STUDENTS
    from students.deit import DeiT

    shape = dict(patch_size=8, embed_dim=48, depth=2, num_heads=2)

    @STUDENTS.register(name="my_deit", distilled=True, family="deit")
    def my_deit(**kwargs):
        return DeiT(distilled=True, **kwargs)

    try:
        small = DeiT(distilled=True, img_size=32, num_classes=10, **shape)
        save_file(small.state_dict(), tmp_path / "small.safetensors")
        r = recipe(tmp_path / "big", "data.img_size=64", "student.name=my_deit",
                   f"student.init={tmp_path / 'small.safetensors'}")
        model = build_student_for(r, resolve_runtime(r))
        assert model.pos_embed.shape == (1, 2 + 8 * 8, 48)
        assert torch.equal(model.blocks[1].attn.qkv.weight, small.blocks[1].attn.qkv.weight)
    finally:
        STUDENTS.unregister("my_deit")


def test_init_refusal_names_the_adapt_state_fact(tmp_path):
    """A plug-in student with no way to fit a foreign state dict is refused, and the
    refusal says how a student declares one."""
    from safetensors.torch import save_file

    from distill.errors import UsageError
    from distill.registry import STUDENTS
    from students.deit import DeiT

    shape = dict(patch_size=8, embed_dim=48, depth=2, num_heads=2)

    class Wrapped(torch.nn.Module):  # a DeiT inside: no `adapt_state` of its own
        def __init__(self, **kwargs):
            super().__init__()
            self.inner = DeiT(distilled=True, **kwargs)

        def forward(self, x):
            return self.inner(x)

    STUDENTS.register(Wrapped, name="wrapped_deit", distilled=True, family="deit")
    try:
        small = Wrapped(img_size=32, num_classes=10, **shape)
        save_file(small.state_dict(), tmp_path / "small.safetensors")
        r = recipe(tmp_path / "big", "data.img_size=64", "student.name=wrapped_deit",
                   f"student.init={tmp_path / 'small.safetensors'}")
        with pytest.raises(UsageError, match=r"does not fit 'wrapped_deit' .*adapt_state"):
            build_student_for(r, resolve_runtime(r))
    finally:
        STUDENTS.unregister("wrapped_deit")


@pytest.mark.parametrize("mode", ["iter", "epoch"])
def test_lr_follows_the_epoch_after_a_resume_on_another_world_size(tmp_path, mode):
    """A run resumed by another number of processes holds a step count made of other
    epochs' lengths (2 processes: half the steps per epoch); the LR of each step follows
    the trainer's epoch and the step within it, not that count."""
    from distill.engine.report import Reporter
    from distill.engine.train import _Trainer

    class Steps(Reporter):
        def __init__(self):
            self.lrs = []

        def step(self, metrics):
            self.lrs.append(metrics["lr"])

    r = recipe(tmp_path, "schedule.epochs=4", f"schedule.step={mode}", loss="none",
               student="deit_tiny_patch16_224")
    lrs = {}
    for steps_before in (8, 4):  # epoch 2 after 2 epochs of 4 steps, or of 2 (2 processes)
        reporter = Steps()
        trainer = _Trainer(r, tmp_path, resolve_runtime(r), reporter)
        assert trainer.steps_per_epoch == 4
        trainer.epoch, trainer.step = 2, steps_before
        trainer.train_epoch()
        lrs[steps_before] = reporter.lrs
    assert lrs[4] == lrs[8] and len(lrs[8]) == 2


def test_atomic_write_leaves_old_file_on_failure_and_normal_permissions(tmp_path):
    import stat

    from distill.checkpoint import atomic_write, atomic_write_text

    path = tmp_path / "f.json"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_write(path) as fh:
        fh.write(b"half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_accelerated_path_runs_on_cpu(tmp_path):
    """The GPU code path (bf16 autocast, fused AdamW, channels_last teacher, torch.compile of
    student and teacher) exercised on the CPU, against an eager fp32 run of the same recipe."""
    fast = ["schedule.epochs=1", "run.log_every=1"]
    eager = train(recipe(tmp_path / "eager", *fast))
    accel = train(recipe(tmp_path / "accel", *fast, "run.precision=bf16", "optim.fused=true",
                         "run.channels_last=true", "run.compile=true"))
    assert accel.summary["precision"] == "bf16" and eager.summary["precision"] == "fp32"

    def first_loss(out):
        rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        return next(r["loss"] for r in rows if r["kind"] == "step")

    # Same data, same init: the first step's loss differs only by bf16 rounding.
    assert first_loss(tmp_path / "accel") == pytest.approx(first_loss(tmp_path / "eager"),
                                                           rel=0.03)
