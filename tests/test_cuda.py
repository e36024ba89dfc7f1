"""The CUDA path: bf16 autocast, fused AdamW, torch.compile, channels_last teacher.

Marked `cuda`; skipped on machines without a GPU (see conftest.py).
"""

from __future__ import annotations

import pytest
import torch

from distill.engine import build_teacher_for, resolve_runtime, train
from distill.recipe import load_recipe
from tests.conftest import FAST, SMOKE

pytestmark = [pytest.mark.cuda, pytest.mark.integration]


def test_bf16_compile_smoke_run(tmp_path):
    import json

    runs = {}
    for name, compile_ in (("eager", "false"), ("compiled", "true")):
        r = load_recipe(SMOKE, [*FAST, "run.device=cuda", f"run.compile={compile_}",
                                "schedule.epochs=2", f"run.out={tmp_path / name}"])
        runs[name] = train(r).summary
        rows = [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().split()]
        steps = [row for row in rows if row["kind"] == "step"]
        assert steps and all(torch.isfinite(torch.tensor(row["loss"])) for row in steps)
        runs[name]["first_loss"] = steps[0]["loss"]
    for summary in runs.values():
        assert summary["device"] == "cuda" and summary["precision"] == "bf16"
        assert "teacher_top1" in summary and summary["train_images_per_s"] > 0
    # Compiling changes kernels, not the maths: the first logged losses agree closely.
    assert runs["compiled"]["first_loss"] == pytest.approx(runs["eager"]["first_loss"], rel=0.05)


def test_runtime_and_teacher_on_cuda():
    r = load_recipe(SMOKE, [*FAST, "run.device=cuda"])
    rt = resolve_runtime(r)
    assert rt.device.type == "cuda" and rt.dtype is torch.bfloat16
    teacher = build_teacher_for(r, rt)
    assert teacher.channels_last  # a convnet teacher runs channels_last on CUDA
    x = torch.randn(4, 3, 32, 32, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits = teacher(x)  # a live teacher called on images
    assert logits.dtype == torch.float32 and logits.device.type == "cuda"


def test_fused_adamw_on_cuda():
    from distill.engine.optim import build_optimizer
    from distill.student import build_student

    r = load_recipe(SMOKE, FAST)
    model = build_student("deit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=32,
                          depth=1, num_heads=2).cuda()
    opt = build_optimizer(model, r.optim, 1e-3, torch.device("cuda"))
    assert opt.defaults["fused"] is True


def test_cache_build_and_train_on_cuda(tmp_path):
    """Build with exact mixing on the GPU, recompute rows live, train from the cache."""
    from distill.engine.cache_build import build_cache
    from distill.engine.cache_verify import live_check

    sets = [*FAST, "run.device=cuda", "augment.mixup=0.8", "augment.cutmix=1.0"]
    cache = tmp_path / "cache"
    built = build_cache(load_recipe(SMOKE, sets), cache, store="full")
    assert built.manifest.complete and built.images == built.manifest.rows_per_epoch * 2
    check = live_check(cache, 16)  # the same batches, mixed alike, in bf16 again
    assert check["max_abs_diff"] < 0.1
    run = train(load_recipe(SMOKE, [*sets, f"run.out={tmp_path / 'run'}"],
                            teacher=f"cache:{cache}")).summary
    assert run["device"] == "cuda" and run["teacher_top1"] == built.manifest.teacher_top1


def test_speed_on_cuda_reports_memory_and_compiled_arms():
    from distill.bench.speed import measure_speed

    r = load_recipe(SMOKE, ["run.device=cuda", "run.compile=true", "data.batch_size=16"])
    res = measure_speed(r, steps=2, warmup=2, repeats=2)
    assert res["device"]["precision"] == "bf16" and res["compile"] is True
    for name, arm in res["arms"].items():
        assert arm["skipped"] is None, (name, arm["skipped"])
        assert arm["images_per_s"] > 0 and arm["peak_mem_mb"] > 0 and arm["flops_per_step"] > 0
    assert res["ratios"]["live_vs_timm"] is not None


def test_one_gpu_under_torchrun_takes_the_nccl_path(tmp_path):
    """`torchrun --nproc-per-node 1` on one GPU: a process group of one on NCCL, DDP in the
    step, the sharded evaluation's all-reduce, and a cache build's gather."""
    import json

    from tests.test_distributed import CACHE_SETS, cache_args, torchrun, train_args

    cuda = ["--set", "run.device=cuda"]
    job = torchrun(1, *train_args(tmp_path / "run", 1), *cuda)
    log, _ = job.communicate(timeout=300)
    assert job.returncode == 0, log
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["device"], summary["dist_backend"], summary["world_size"]) == \
        ("cuda", "nccl", 1)
    assert summary["teacher_top1"] >= 0 and summary["train_images_per_s"] > 0
    job = torchrun(1, *cache_args(tmp_path / "cache", sets=[*CACHE_SETS, "run.device=cuda"]))
    log, _ = job.communicate(timeout=300)
    assert job.returncode == 0 and "; 1 process (nccl)" in log, log
