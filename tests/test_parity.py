"""What the official DeiT code does, held against ours (issue 26): its per-epoch LR schedule
(`schedule.step: epoch`) and the initialisation of a DeiT student's tokens and heads."""

from __future__ import annotations

import argparse
import functools
import math

import pytest
import torch
from timm.scheduler import create_scheduler

from distill.engine.optim import LRSchedule
from distill.recipe import ScheduleConfig


def _deit_lrs(epochs: int, warmup: int, peak: float, warmup_lr: float, min_lr: float) -> list[float]:
    """The LR of each epoch as DeiT's main.py gets it: timm's create_scheduler on its
    arguments, `lr_scheduler.step(epoch)` after each epoch."""
    args = argparse.Namespace(sched="cosine", epochs=epochs, lr=peak, warmup_lr=warmup_lr,
                              min_lr=min_lr, warmup_epochs=warmup, cooldown_epochs=10,
                              decay_epochs=30, decay_rate=0.1, lr_noise=None, lr_noise_pct=0.67,
                              lr_noise_std=1.0, patience_epochs=10)
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    sched, _ = create_scheduler(args, opt)
    lrs = []
    for epoch in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step(epoch)
    return lrs


@pytest.mark.parametrize("epochs,warmup,warmup_lr", [(120, 5, 1e-5), (30, 0, 1e-6), (12, 3, 0.0)])
def test_epoch_schedule_is_deits(epochs, warmup, warmup_lr):
    peak, min_lr, spe = 2e-3, 1e-5, 7
    want = _deit_lrs(epochs, warmup, peak, warmup_lr, min_lr)
    ours = LRSchedule(ScheduleConfig(epochs=epochs, warmup_epochs=warmup, warmup_lr=warmup_lr,
                                     min_lr=min_lr, step="epoch"), peak, spe)
    for epoch in range(epochs):
        got = {ours(epoch, k) for k in range(spe)}
        assert len(got) == 1, epoch  # one LR for the whole epoch
        assert got.pop() == pytest.approx(want[epoch], rel=1e-12, abs=0), epoch
    if warmup:  # the lag the issue names: epochs 0 and 1 at warmup_lr, the top in epoch warmup + 1
        assert want[0] == want[1] == pytest.approx(warmup_lr, abs=1e-15)
        assert max(range(epochs), key=want.__getitem__) == warmup + 1


def test_iter_schedule_unchanged():
    s = LRSchedule(ScheduleConfig(epochs=10, warmup_epochs=2, warmup_lr=1e-6, min_lr=1e-5), 1e-3, 4)
    assert s(0) == 1e-6 and s(2, 0) == pytest.approx(1e-3)
    assert s(1, 0) == pytest.approx(1e-6 + (1e-3 - 1e-6) * 4 / 8)
    t = (20 - 8) / (40 - 8)
    assert s(5, 0) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * t)))
    assert s(0, 3) != s(0, 2)  # a new value every step


def test_step_description_says_what_epoch_0_runs_at():
    """The field's description holds for `warmup_epochs: 0` too: epochs 0 and 1 then run at
    the peak, not at warmup_lr."""
    desc = ScheduleConfig.model_fields["step"].description
    s = LRSchedule(ScheduleConfig(epochs=10, warmup_epochs=0, warmup_lr=1e-6, step="epoch"),
                   1e-3, 4)
    assert s(0) == s(1) == 1e-3
    assert "epoch 0 and 1 at warmup_lr" not in desc and "peak" in desc

def test_epoch_schedule_in_recipe_text():
    from distill.recipe import load_recipe

    r = load_recipe("recipes/smoke.yaml", ["schedule.step=epoch"])
    assert r.schedule.step == "epoch"
    with pytest.raises(Exception, match="schedule.step"):
        load_recipe("recipes/smoke.yaml", ["schedule.step=batch"])


def _init_stats(model: torch.nn.Module) -> dict[str, tuple[float, float]]:
    return {k: (v.float().mean().item(), v.float().std().item() if v.numel() > 1 else 0.0)
            for k, v in model.state_dict().items()}


@pytest.mark.parametrize("shape", [
    dict(img_size=224, patch_size=16, embed_dim=192, depth=2, num_heads=3, num_classes=1000),
    # the quickstart's and the parity study's student (recipes/fmnist/deit_token.yaml)
    dict(img_size=28, patch_size=7, embed_dim=128, depth=4, num_heads=4, num_classes=10,
         in_chans=1)], ids=["patch16-dim192", "fmnist-patch7-dim128"])
def test_deit_initialisation_is_the_official_one(shape):
    """Every tensor of our DeiT⚗ and of its twin starts from the same distribution as in the
    official code:
    timm's VisionTransformer (the class-token twin; DeiT's DistilledVisionTransformer
    subclasses it) for every key they share, and DeiT's rules for the rest:
    `trunc_normal_(dist_token, std=.02)`, `trunc_normal_(pos_embed, std=.02)`,
    `head_dist.apply(_init_weights)` (timm's: weight std .02, bias 0)."""
    from timm.models.vision_transformer import VisionTransformer

    from distill.registry import STUDENTS

    torch.manual_seed(0)
    ours = _init_stats(STUDENTS.build("deit_tiny_distilled_patch16_224", **shape))
    torch.manual_seed(0)
    timm_vit = VisionTransformer(**shape, qkv_bias=True,
                                 norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-6))
    theirs = _init_stats(timm_vit)
    extra = set(ours) - set(theirs)
    assert extra == {"dist_token", "head_dist.weight", "head_dist.bias"}
    for key, (mean, std) in theirs.items():
        got_mean, got_std = ours[key]
        assert got_mean == pytest.approx(mean, abs=max(2e-3, 0.1 * std)), key
        assert got_std == pytest.approx(std, rel=0.1, abs=1e-9), key
    assert ours["dist_token"][1] == pytest.approx(0.02, rel=0.25)
    assert ours["head_dist.weight"][1] == pytest.approx(0.02, rel=0.05)
    assert ours["head_dist.bias"] == (0.0, 0.0)
    assert ours["cls_token"][1] < 1e-5  # timm: normal_(cls_token, std=1e-6)
    # the twin (the `none` arm's student) is timm's VisionTransformer key for key
    torch.manual_seed(0)
    twin = _init_stats(STUDENTS.build("deit_tiny_patch16_224", **shape))
    assert set(twin) == set(theirs)
    for key, (mean, std) in theirs.items():
        assert twin[key][0] == pytest.approx(mean, abs=max(2e-3, 0.1 * std)), key
        assert twin[key][1] == pytest.approx(std, rel=0.1, abs=1e-9), key


@pytest.mark.parametrize("distilled", [False, True], ids=["twin", "distilled"])
def test_deit_trains_bitwise_as_timm(distilled):
    """Loaded with the same weights, our DeiT and timm's class (VisionTransformer for the twin,
    VisionTransformerDistilled for DeiT⚗) take the same AdamW steps bit for bit: the same loss,
    gradients, parameter groups (timm's create_optimizer_v2, as deit's main.py builds them) and
    weights after each step. So at drop_path 0, as the parity study (issue 26) trains, the class
    alone cannot move top-1. (With drop_path > 0 the per-block rates differ from timm's by
    float rounding, ~1e-9. deit's own DistilledVisionTransformer, which the study's official
    DeiT⚗ is, forwards as timm's does here.)"""
    from timm.models.deit import VisionTransformerDistilled
    from timm.models.vision_transformer import VisionTransformer
    from timm.optim import create_optimizer_v2

    from distill.registry import STUDENTS

    shape = dict(img_size=28, patch_size=7, embed_dim=32, depth=2, num_heads=4, num_classes=10,
                 in_chans=1)
    torch.manual_seed(0)
    cls = VisionTransformerDistilled if distilled else VisionTransformer
    theirs = cls(**shape, qkv_bias=True, norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-6))
    if distilled:
        theirs.set_distilled_training(True)
    for block in theirs.blocks:  # timm's fused attention, whatever TIMM_FUSED_ATTN says
        block.attn.fused_attn = True
    ours = STUDENTS.build("deit_tiny_distilled_patch16_224" if distilled else "deit_tiny_patch16_224",
                          **shape)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    opts = [create_optimizer_v2(m, "adamw", lr=2e-3, weight_decay=0.05) for m in (theirs, ours)]
    groups = []
    for model, opt in zip((theirs, ours), opts):
        names = {id(p): n for n, p in model.named_parameters()}
        groups.append([(g["weight_decay"], sorted(names[id(p)] for p in g["params"]))
                       for g in opt.param_groups])
    assert groups[0] == groups[1]
    no_decay = next(names for wd, names in groups[1] if wd == 0.0)
    assert {"cls_token", "pos_embed", "norm.weight", "head.bias"} <= set(no_decay)
    assert ("dist_token" in no_decay) == distilled
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    for _ in range(3):
        losses = []
        for model, opt in zip((theirs, ours), opts):
            model.train()
            out = model(x)
            out = out if isinstance(out, tuple) else (out,)
            assert len(out) == 1 + distilled  # DeiT⚗: both heads, in training
            loss = sum(torch.nn.functional.cross_entropy(o, y) for o in out)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss)
        assert torch.equal(losses[0], losses[1])
        mine = dict(ours.named_parameters())
        for name, p in theirs.named_parameters():
            assert torch.equal(p.grad, mine[name].grad), name
            assert torch.equal(p, mine[name]), name


def _cell(root, cond, arm, seed, top1):
    import json
    if cond == "official":
        d = root / "official" / f"{arm}-s{seed}"
        d.mkdir(parents=True)
        (d / "log.txt").write_text(json.dumps({"epoch": 0, "test_acc1": 0.0}) + "\n"
                                   + json.dumps({"epoch": 119, "test_acc1": top1}) + "\n")
        (d / "DONE").touch()
    else:
        name = "none-no_teacher-x" if arm == "none" else "token-t-x_distilled"
        d = root / cond / "cells" / f"{name}-s{seed}"
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps({"top1": top1}))


def test_parity_report_gains_and_pools(tmp_path):
    """benchmarks/parity_report.py: per-seed gains, an official cell without DONE left out,
    paired differences on this machine, and pools over another machine's cells
    (elsewhere.json) against the official pool."""
    import json

    from benchmarks.parity_report import report

    for seed, (n, t) in enumerate([(70.0, 74.0), (71.0, 76.0)]):
        _cell(tmp_path, "official", "none", seed, n)
        _cell(tmp_path, "official", "token", seed, t)
    running = tmp_path / "official" / "none-s2"  # a cell still running: a log, no DONE
    running.mkdir()
    (running / "log.txt").write_text(json.dumps({"epoch": 3, "test_acc1": 10.0}) + "\n")
    _cell(tmp_path, "official", "token", 3, 80.0)  # a seed with one arm only: no gain
    nan_last = tmp_path / "official" / "none-s3"  # finished, but its last line not evaluated
    nan_last.mkdir()
    (nan_last / "log.txt").write_text(json.dumps({"epoch": 119, "test_acc1": float("nan")}))
    (nan_last / "DONE").touch()
    for seed, (n, t) in enumerate([(70.0, 75.0), (72.0, 78.0)]):
        _cell(tmp_path, "ours-a", "none", seed, n)
        _cell(tmp_path, "ours-a", "token", seed, t)
        _cell(tmp_path, "ours-b", "none", seed, n + 1)
        _cell(tmp_path, "ours-b", "token", seed, t)
    (tmp_path / "elsewhere.json").write_text(json.dumps({
        "conditions": {"official-x": {"source": "s", "none": {"0": 70.0},
                                      "token": {"0": 76.0}}},
        "pools": {"off": ["official", "official-x"], "a": ["ours-a"]}}))
    text = report(tmp_path)
    # official gains 4, 5 (+6 elsewhere): pooled 5 ± 1/sqrt(3); ours-a gains 5, 6: 5.5 ± 0.5
    assert "| official | 0,1 | 70.50 ± 0.71 | 75.00 ± 1.41 | **+4.50 ± 0.50** | 0.71 |" in text
    assert "- off (official + official-x): +5.00 ± 0.58 over 3 runs" in text
    assert "- a − off: +0.50 ± 0.76 (0.7 s.e.)" in text
    assert "- none: ours-b − ours-a: +1.00 ± 0.00 (seeds 0,1)" in text
    assert "- gain: ours-b − ours-a: -1.00 ± 0.00" in text
    assert "official-x −" not in text and "ours-a − official-x" not in text
    assert "10.00" not in text and "80.00 / +" not in text
    # each arm alone, every run of it (official token: 74, 76 and seed 3's 80)
    assert "- none: ours-b (2 runs) − official (2): +1.50 ± 1.12 (1.3 s.e.)" in text
    assert "- token: ours-a (2 runs) − official (3): -0.17 ± 2.32 (0.1 s.e.)" in text
    ablation = tmp_path / "official-mine" / "none-s0"  # an official-layout ablation, one arm
    ablation.mkdir(parents=True)
    (ablation / "log.txt").write_text(json.dumps({"epoch": 119, "test_acc1": 69.0}))
    (ablation / "DONE").touch()
    text = report(tmp_path)
    assert "- none: official-mine (1 run) − official (2): -1.50 ± 0.50 (one run)" not in text
    assert "- none: official-mine (1 run) − official (2): -1.50 (one run)" in text
    assert "| official-mine | 0 |" not in text  # no gain without its token arm,
    assert "| official-mine | 69.00 / – |" in text  # but its run in the per-seed table
    import shutil
    shutil.rmtree(tmp_path / "official-mine")
    # one run a side: no standard error, no count of them
    (tmp_path / "elsewhere.json").write_text(json.dumps({
        "conditions": {"ours-x": {"source": "s", "none": {"0": 70.0}, "token": {"0": 77.0}},
                       "official-x": {"source": "s", "none": {"0": 70.0}, "token": {"0": 76.0}}},
        "compare": [["ours-x", "official-x"]]}))
    assert "- ours-x − official-x: +1.00 (one run)\n" in report(tmp_path)
    (tmp_path / "elsewhere.json").write_text(json.dumps({
        "pools": {"o": ["official"], "ab": ["ours-a", "ours-b"]}, "pool_compare": [["ab", "o"]]}))
    # ours-a gains 5, 6 and ours-b 4, 5: 5 ± 0.41 against the official 4.5 ± 0.5
    text = report(tmp_path)
    assert "- ab − o: +0.50 ± 0.65 (0.8 s.e.)" in text
    # arm by arm, every run of the pool: ab's none 70, 72, 71, 73 (71.50 ± 0.65) and token
    # 75, 78, 75, 78 (76.50 ± 0.87); o's none 70, 71 (70.50 ± 0.50) and token 74, 76, 80
    # (76.67 ± 1.76): gains 5.00 ± 1.08 and 6.17 ± 1.83
    assert "- gain from the arms' means, unpaired: ab − o: -1.17 ± 2.13 (0.5 s.e.)" in text
    (tmp_path / "elsewhere.json").write_text(json.dumps({
        "pools": {"o": ["official"]}, "pool_compare": [["o", "x"]]}))
    with pytest.raises(SystemExit, match="pool_compare names no pool 'x'"):
        report(tmp_path)
    (tmp_path / "elsewhere.json").write_text(json.dumps({"pools": {"p": ["ours-typo"]}}))
    with pytest.raises(SystemExit, match="pool 'p' names no condition 'ours-typo'"):
        report(tmp_path)
    # a typo in a pool that pool_compare sets against another: the same one line, not a KeyError
    (tmp_path / "elsewhere.json").write_text(json.dumps({
        "pools": {"p": ["ours-typo"], "o": ["official"]}, "pool_compare": [["p", "o"]]}))
    with pytest.raises(SystemExit, match="pool 'p' names no condition 'ours-typo'"):
        report(tmp_path)


def test_parity_report_t_distribution():
    """The report's Student t against published quantiles and a closed form (df 1: Cauchy)."""
    from benchmarks.parity_report import t_cdf, t_quantile

    assert t_quantile(0.975, 2) == pytest.approx(4.303, abs=1e-3)
    assert t_quantile(0.975, 4) == pytest.approx(2.776, abs=1e-3)
    assert t_quantile(0.95, 3) == pytest.approx(2.353, abs=1e-3)
    assert t_cdf(1.0, 1) == pytest.approx(0.75, abs=1e-9)  # 1/2 + atan(1)/π
    assert t_cdf(-2.0, 5) == pytest.approx(1 - t_cdf(2.0, 5), abs=1e-12)


def test_parity_report_factors(tmp_path):
    """The 2 × 2 section: each factor's paired effects over both levels of the other, its t
    and p, its 90 % interval against ±1 point, and the interaction; absent when a corner of the
    design is missing."""
    from benchmarks.parity_report import report

    # none: epoch adds 2 on pil, 0 on tensor; token: tensor adds 0.5 everywhere (+ seed jitter)
    base = {0: (70.0, 75.0), 1: (71.0, 75.5), 2: (72.0, 77.0)}
    for cond, dn, dt in (("ours-pil", 0.0, 0.0), ("ours-pil-epoch", 2.0, 0.0),
                         ("ours-tensor", 0.0, 0.5), ("ours-tensor-epoch", 0.0, 0.5)):
        for seed, (n, t) in base.items():
            jitter = 0.1 * seed if cond == "ours-tensor" else 0.0
            _cell(tmp_path, cond, "none", seed, n + dn)
            _cell(tmp_path, cond, "token", seed, t + dt + jitter)
    text = report(tmp_path)
    lines = {line.split(":", 1)[0]: line for line in text.splitlines() if line.startswith("- ")}
    step_none = lines["- LR stepping, epoch − iter, none"]
    # pairs +2 +2 +2 (pil) and 0 0 0 (tensor): mean 1, sd 1.095, se 0.447, t 2.24 on 5 d.f.
    assert "+1.00 ± 0.45 (6 pairs; t +2.24, 5 d.f., p 0.076; 90 % interval +0.10 to +1.90, " \
        "within ±1: no)" in step_none
    assert "on pil +2.00, on tensor +0.00, their difference -2.00 ± 0.00" in step_none
    pipe_tok = lines["- pipeline, tensor − pil, token"]
    # pairs 0.5 0.6 0.7 (iter) and 0.5 0.5 0.5 (epoch): mean 0.55, within ±1 at 90 %
    assert pipe_tok.startswith("- pipeline, tensor − pil, token: +0.55 ± 0.03 (6 pairs")
    assert pipe_tok.endswith("within ±1: yes); on iter +0.60, on epoch +0.50, their difference "
                             "-0.10 ± 0.06")
    # gains: pil −2 −2 −2, tensor 0 −0.1 −0.2: mean −1.05, the interval beyond −1
    assert lines["- LR stepping, epoch − iter, gain"].startswith(
        "- LR stepping, epoch − iter, gain: -1.05 ± 0.43 (6 pairs")
    import shutil
    shutil.rmtree(tmp_path / "ours-tensor-epoch")
    assert "By factor" not in report(tmp_path)


def test_parity_report_curves(tmp_path):
    """The per-epoch table: the official code's evaluated epochs (NaN between them left out),
    our runs' top-1 at those epochs, each run's training loss over its last 20 epochs."""
    import json

    from benchmarks.parity_report import report

    for seed, last in enumerate([70.0, 72.0]):
        d = tmp_path / "official" / f"none-s{seed}"
        d.mkdir(parents=True)
        rows = [{"epoch": e, "train_loss": 2.0 - e / 100, "test_acc1": float("nan")} for e in range(40)]
        rows[19]["test_acc1"], rows[39]["test_acc1"] = 50.0 + seed, last
        (d / "log.txt").write_text("\n".join(json.dumps(r) for r in rows))
        (d / "DONE").touch()
        _cell(tmp_path, "official", "token", seed, last + 4)
        c = tmp_path / "ours-a" / "cells" / f"none-no_teacher-x-s{seed}"
        c.mkdir(parents=True)
        (c / "summary.json").write_text(json.dumps({"top1": 60.0}))
        (c / "metrics.jsonl").write_text("\n".join(json.dumps(
            {"kind": "epoch", "epoch": e, "train_loss": 1.0, **({"top1": 60.0} if e in (19, 39) else {})})
            for e in range(40)))
    text = report(tmp_path)
    assert "| condition | runs | epoch 20 | epoch 40 | loss, last 20 |" in text
    # official loss over epochs 20..39: 2 − (20..39)/100, mean 1.705
    assert "| official | 2 | 50.50 | 71.00 | 1.705 |" in text
    assert "| ours-a | 2 | 60.00 | 60.00 | 1.000 |" in text
