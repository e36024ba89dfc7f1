"""`distill bench` (the strategy × teacher matrix) and `distill speed` (step timing)."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch

from distill.bench import aggregate, paired_differences, plan_cells, student_for, table3_markdown
from distill.errors import UsageError

from .conftest import FAST

ONE_EPOCH = [*FAST, "schedule.epochs=1", "schedule.warmup_epochs=0"]


def sets(*items: str) -> list[str]:
    return [a for s in items for a in ("--set", s)]


# -- planning ----------------------------------------------------------------------------
def test_cells_fit_students_to_losses_with_the_papers_settings(smoke, tmp_path):
    cells = plan_cells(smoke, losses="none,soft,hard,token", seeds="0,1", out=tmp_path)
    assert [(c.loss, c.seed) for c in cells] == [
        (loss, s) for loss in ("none", "soft", "hard", "token") for s in (0, 1)]
    by = {c.loss: c for c in cells}
    assert by["none"].teacher is None and by["none"].recipe.teacher.name is None
    assert {by[k].teacher for k in ("soft", "hard", "token")} == {"timm:test_resnet"}
    assert by["token"].student == "deit_tiny_distilled_patch16_224"
    assert {by[k].student for k in ("none", "soft", "hard")} == {"deit_tiny_patch16_224"}
    soft = by["soft"].recipe.loss
    assert (soft.alpha, soft.tau) == (0.1, 3.0)  # the paper's soft distillation
    assert by["hard"].recipe.loss.alpha == 0.5
    # the student keeps the recipe's architecture, only the token changes
    assert by["none"].recipe.student.kwargs == by["token"].recipe.student.kwargs
    assert len({c.recipe.run.out for c in cells}) == len(cells)
    assert all(str(c.recipe.run.out).startswith(str(tmp_path / "cells")) for c in cells)


def test_user_sets_win_over_the_papers_settings(smoke, tmp_path):
    cells = plan_cells(smoke, losses="soft,token", sets=["loss.alpha=0.3"], out=tmp_path)
    assert [c.recipe.loss.alpha for c in cells] == [0.3, 0.3]


def test_given_students_go_to_the_losses_they_fit(smoke, tmp_path):
    cells = plan_cells(smoke, losses="hard,token",
                       students="deit_tiny_patch16_224,deit_tiny_distilled_patch16_224",
                       out=tmp_path)
    assert [(c.loss, c.student) for c in cells] == [
        ("hard", "deit_tiny_patch16_224"), ("token", "deit_tiny_distilled_patch16_224")]


def test_counterparts():
    assert student_for("token", "deit_small_patch16_224") == "deit_small_distilled_patch16_224"
    assert student_for("none", "deit_small_distilled_patch16_224") == "deit_small_patch16_224"
    assert student_for("token", "timm:deit_tiny_patch16_224") == \
        "timm:deit_tiny_distilled_patch16_224"
    assert student_for("token", "cifar_resnet8") is None


@pytest.mark.parametrize("kwargs,needle", [
    ({"losses": "none,sofft"}, "losses: "),
    ({"losses": "token", "students": "cifar_resnet8"}, "students: none of cifar_resnet8"),
    ({"losses": "token", "students": None, "teachers": None, "seeds": "0,x"}, "seeds: 'x'"),
    ({"losses": ","}, "losses: expected a comma-separated list"),
    ({"teachers": "timm:test_resnet,timm:nope_net"}, "nope_net"),
])
def test_bad_matrix_is_a_usage_error(smoke, tmp_path, kwargs, needle):
    """The library names its arguments (`losses: …`); the CLI names its flags (`--losses: …`,
    tested with the command below)."""
    with pytest.raises(UsageError) as info:
        plan_cells(smoke, out=tmp_path, **kwargs)
    assert needle in str(info.value)


def test_a_loss_that_needs_a_teacher_needs_one(tmp_path):
    from .conftest import SMOKE

    with pytest.raises(UsageError, match="^teachers: loss 'soft' needs a teacher"):
        plan_cells(SMOKE, losses="soft", sets=["teacher.name=null", "loss.name=none",
                                                "student.name=deit_tiny_patch16_224"],
                   out=tmp_path)


# -- results -----------------------------------------------------------------------------
def _row(loss, teacher, seed, top1, **kw):
    return {"loss": loss, "teacher": teacher, "student": "s", "seed": seed, "top1": top1,
            "top1_cls": kw.get("cls"), "top1_dist": kw.get("dist"), "teacher_top1": 90.0
            if teacher else None, "params": 10, "gflops": 0.5, "train_images_per_s": 100.0,
            "eval_images_per_s": 300.0, "infer_images_per_s": 900.0, "wall_time_s": 1.0}


def test_aggregate_is_mean_and_sample_std_over_seeds():
    agg = aggregate([_row("none", None, 0, 80.0), _row("none", None, 1, 82.0),
                     _row("token", "t", 0, 85.0, cls=84.0, dist=86.0)])
    none, token = agg
    assert none["seeds"] == [0, 1] and none["top1"]["mean"] == 81.0
    assert none["top1"]["std"] == pytest.approx(2 ** 0.5)
    assert token["top1"] == {"mean": 85.0, "std": None}  # one seed: no spread claimed
    md = table3_markdown(agg)
    assert "| no distillation | s | 81.00 ± 1.41 |" in md
    assert "distillation head | s | 86.00 |" in md and "teacher itself | – | 90.00 |" in md


def test_paired_differences_pair_seeds_and_training_sizes():
    rows = [_row("none", None, 0, 80.0), _row("none", None, 1, 82.0), _row("none", None, 2, 81.0),
            _row("token", "t", 0, 83.0), _row("token", "t", 1, 86.0),  # seed 2 not run
            _row("hard", "t", 5, 90.0)]  # no `none` with seed 5: no pair
    for r in rows:
        r["train_size"] = 1000
    small = _row("none", None, 0, 70.0) | {"train_size": 500}  # another size: not a baseline
    paired = paired_differences([*rows, small])
    assert len(paired) == 1
    (p,) = paired
    assert p["loss"] == "token" and p["seeds"] == [0, 1] and p["train_size"] == 1000
    assert p["diff_mean"] == pytest.approx(3.5)  # (3 + 4) / 2, not 84.5 - 81
    assert p["diff_se"] == pytest.approx(0.5)  # stdev(3, 4) / sqrt(2)
    one = paired_differences([_row("none", None, 0, 80.0), _row("soft", "t", 0, 79.0)])
    assert one[0]["diff_mean"] == pytest.approx(-1.0) and one[0]["diff_se"] is None
    agg = aggregate([*rows, small])
    assert {a["train_size"] for a in agg} == {1000, 500}  # a training size is its own group
    md = table3_markdown(agg)
    assert "| no distillation | s (1000 images) | 81.00 ± 1.00 |" in md
    assert "| no distillation | s (500 images) | 70.00 |" in md
    # several `none` students: each strategy is paired with its own class-token twin
    two = [_row("none", None, 0, 80.0) | {"student": "deit_tiny_patch16_224"},
           _row("none", None, 0, 70.0) | {"student": "deit_small_patch16_224"},
           _row("token", "t", 0, 83.0) | {"student": "deit_small_distilled_patch16_224"}]
    (p,) = paired_differences(two)
    assert p["baseline_student"] == "deit_small_patch16_224" and p["diff_mean"] == 13.0


# -- the command -------------------------------------------------------------------------
def test_bench_four_cells_resume_and_refuse_another_recipe(cli, smoke, tmp_path, monkeypatch):
    from matplotlib.colors import to_rgba

    import distill.plots as bench_plot

    out = tmp_path / "bench"
    args = ["bench", smoke, "--losses", "none,soft,hard,token", "--out", out, *sets(*ONE_EPOCH)]
    drawn, draw = [], bench_plot.accuracy_vs_throughput  # the figure, read back from its artists
    monkeypatch.setattr(bench_plot, "accuracy_vs_throughput",
                        lambda *a, **kw: drawn.append(draw(*a, **kw)) or drawn[-1])
    res = cli(*args)
    assert res.code == 0, res.err
    doc = json.loads((out / "results.json").read_text())
    assert {"command", "date", "device", "commit", "cells", "aggregate"} <= set(doc)
    assert doc["command"].startswith("distill bench ") and doc["date"].endswith("+00:00")
    rows = doc["cells"]
    assert [r["loss"] for r in rows] == ["none", "soft", "hard", "token"]
    for r in rows:
        summary = json.loads((out / "cells" / r["run_dir"].split("/")[-1] /
                              "summary.json").read_text())
        assert r["top1"] == summary["top1"] and r["params"] == summary["params"]
        assert r["gflops"] > 0 and r["train_images_per_s"] > 0
        assert (r["teacher_top1"] is None) == (r["loss"] == "none")
        assert r["train_size"] == summary["train_size"] > 0
    # soft, hard and token against none, each over seed 0
    assert [(p["loss"], p["seeds"]) for p in doc["paired"]] == [("soft", [0]), ("hard", [0]),
                                                                ("token", [0])]
    assert doc["paired"][2]["diff_mean"] == pytest.approx(rows[3]["top1"] - rows[0]["top1"])
    assert rows[3]["top1_cls"] is not None and rows[3]["top1_dist"] is not None
    with open(out / "results.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [t["loss"] for t in table] == ["none", "soft", "hard", "token"]
    md = (out / "results.md").read_text()
    assert "usual distillation, soft" in md and "DeiT⚗ distillation token" in md
    assert (out / "accuracy_vs_throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = drawn  # drawn once, at the end
    (ax,) = fig.axes
    cells = [(float(x), float(y), tuple(c.get_facecolor()[0]))
             for c in ax.collections for x, y in c.get_offsets()]
    # a marker per cell at its (model images/s, top-1)
    assert sorted(c[:2] for c in cells) == sorted((r["infer_images_per_s"], r["top1"]) for r in rows)
    (line,) = [ln for ln in ax.lines if ln.get_linestyle() == "--"]  # the teacher's top-1
    assert list(line.get_ydata()) == [rows[1]["teacher_top1"]] * 2
    teacher = to_rgba(line.get_color())  # its cells in its colour, the no-teacher one not
    assert sorted((x, y, c == teacher) for x, y, c in cells) == sorted(
        (r["infer_images_per_s"], r["top1"], r["teacher"] is not None) for r in rows)
    # the model's own throughput: one value per architecture, the same for every seed
    assert {r["infer_images_per_s"] > 0 for r in rows} == {True}
    # again: every cell is finished, nothing trains; the files follow each cell
    import distill.cli.bench as bench_cli

    stamps = {p: p.stat().st_mtime_ns for p in out.glob("cells/*/model.safetensors")}
    seen, real = [], bench_cli.write_results
    monkeypatch.setattr(bench_cli, "write_results",
                        lambda out, rows, **kw: (seen.append(len(rows)), real(out, rows, **kw))[1])
    res = cli(*args)
    assert res.code == 0 and res.err.count("done before") == 4
    assert seen == [1, 2, 3, 4, 4]  # after each cell, then once more with the plot
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("cells/*/model.safetensors")}
    # the same folder with another recipe: refused, nothing touched
    res = cli(*args, "--set", "optim.lr=1e-3")
    assert res.code == 2 and "optim.lr" in res.err and "another --out" in res.err
    assert "Traceback" not in res.err


def test_bench_resumes_a_cell_killed_half_way(cli, smoke, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from .conftest import ROOT

    many = [*FAST, "schedule.epochs=6", "schedule.warmup_epochs=0"]
    args = ["bench", smoke, "--losses", "none", "--no-plot", *sets(*many)]
    out = tmp_path / "killed"
    job = subprocess.Popen([sys.executable, "-m", "distill", *map(str, args), "--out", out],
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(out.glob("cells/*/state.pt")):  # the first epoch's checkpoint
        assert job.poll() is None and time.time() < deadline
        time.sleep(0.02)
    os.kill(job.pid, signal.SIGKILL)
    job.wait()
    cell = next(out.glob("cells/*"))
    assert not (cell / "summary.json").exists() and not (out / "results.json").exists()
    res = cli(*args, "--out", out)
    assert res.code == 0 and "resuming" in res.err and "done, top1" in res.err
    assert cli(*args, "--out", tmp_path / "whole").code == 0
    a = json.loads((out / "results.json").read_text())["cells"][0]
    b = json.loads((tmp_path / "whole" / "results.json").read_text())["cells"][0]
    assert a["top1"] == b["top1"]  # the resumed cell ends where an uninterrupted one does


def test_shared_cache_gives_the_live_results(cli, smoke, tmp_path):
    base = ["--losses", "hard,token", *sets(*ONE_EPOCH, "augment.re_prob=0")]
    live, cached = tmp_path / "live", tmp_path / "cached"
    assert cli("bench", smoke, *base, "--out", live, "--no-plot").code == 0
    res = cli("bench", smoke, *base, "--out", cached, "--cache", "auto", "--no-plot")
    assert res.code == 0, res.err
    caches = list((cached / "caches").iterdir())
    assert [c.name for c in caches] == ["timm_test_resnet-s0"]  # built once, used twice
    manifest = json.loads((caches[0] / "manifest.json").read_text())
    assert manifest["store"] == "hard" and manifest["complete"]
    a = json.loads((live / "results.json").read_text())["cells"]
    b = json.loads((cached / "results.json").read_text())["cells"]
    for x, y in zip(a, b, strict=True):  # hard targets replay exactly
        assert (x["top1"], x["top1_cls"], x["top1_dist"]) == (y["top1"], y["top1_cls"],
                                                              y["top1_dist"])
    recipe_text = next((cached / "cells").glob("token-*")).joinpath("recipe.yaml").read_text()
    assert str(caches[0]) in recipe_text
    # run again with the cache: the finished cells are read back, not refused or retrained
    res = cli("bench", smoke, *base, "--out", cached, "--cache", "auto", "--no-plot")
    assert res.code == 0 and res.err.count("done before") == 2, res.err
    # as a fresh clone of a committed results folder has it: no weights, states or caches
    shutil.rmtree(cached / "caches")
    for name in ("model.safetensors", "state.pt"):
        for path in (cached / "cells").glob(f"*/{name}"):
            path.unlink()
    res = cli("bench", smoke, *base, "--out", cached, "--cache", "auto", "--no-plot")
    assert res.code == 0 and res.err.count("done before") == 2, res.err
    assert not (cached / "caches").exists()  # nothing to train: no cache rebuilt
    again = json.loads((cached / "results.json").read_text())["cells"]
    assert [r["top1"] for r in again] == [r["top1"] for r in b]
    # a file that is there must still be the run's own
    (next((cached / "cells").glob("token-*")) / "summary.json").write_text("{}\n")
    res = cli("bench", smoke, *base, "--out", cached, "--cache", "auto", "--no-plot")
    assert res.code == 2 and "summary.json" in res.err, res.err


def test_a_cache_that_cannot_serve_a_cell_is_refused_before_training(cli, smoke, tmp_path):
    out = tmp_path / "b"
    res = cli("bench", smoke, "--losses", "hard,soft", "--cache", "auto", "--store", "hard",
              "--out", out, *sets(*ONE_EPOCH))
    assert res.code == 2 and "--store: 'hard' keeps only the teacher's argmax" in res.err
    assert not (out / "cells").exists()
    # top-k probabilities are stored at the soft cell's τ = 3: the token cell (soft target,
    # the paper's τ = 1) cannot use them, and this is found before any cell trains
    res = cli("bench", smoke, "--losses", "soft,token", "--cache", "auto", "--store", "topk:3",
              "--set", "loss.target=soft", "--out", out, *sets(*ONE_EPOCH))
    assert res.code == 2 and "does not fit cell token-" in res.err
    assert "loss.tau (cache 3.0, run 1.0)" in res.err
    assert (out / "caches").is_dir() and not (out / "cells").exists()


def test_a_cache_folder_holding_something_else_names_the_cache_option(cli, smoke, tmp_path):
    """The build's `out` is the bench's `--cache` folder: its errors name `--cache`."""
    out = tmp_path / "b"
    folder = out / "caches" / "timm_test_resnet-s0"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("not a cache")
    res = cli("bench", smoke, "--losses", "hard", "--cache", "auto", "--out", out,
              *sets(*ONE_EPOCH))
    assert res.code == 2 and f"--cache: '{folder}' is not empty and holds no cache" in res.err
    assert "--out:" not in res.err and not (out / "cells").exists()


def test_bench_bad_options_exit_2(cli, smoke, tmp_path):
    res = cli("bench", smoke, "--losses", "none", "--store", "hard", "--out", tmp_path / "b")
    assert res.code == 2 and "--store: 'hard' needs --cache" in res.err
    res = cli("bench", smoke, "--losses", "token", "--students", "deit_tiny_patch16_224",
              "--out", tmp_path / "b")
    assert res.code == 2 and "--students: none of deit_tiny_patch16_224 fits loss 'token'" in res.err
    res = cli("bench", smoke, "--seeds", "0,x", "--out", tmp_path / "b")
    assert res.code == 2 and "--seeds: 'x' is not an integer" in res.err  # the flag, mapped
    assert not (tmp_path / "b").exists()


# -- distill speed -----------------------------------------------------------------------
def test_our_token_loss_is_timms_on_the_same_weights(smoke):
    """The `timm` arm computes what ours does: same student weights, same teacher, same
    batch give the same loss (so the speed ratio compares equal work)."""
    from distill.bench.speed import speed_recipe, timm_task
    from distill.data import Batch
    from distill.engine import build_student_for, build_teacher_for, resolve_runtime
    from distill.losses import build as build_loss
    from distill.recipe import load_recipe

    r = speed_recipe(load_recipe(smoke, ["student.drop_path_rate=0.0"]), 8)
    rt = resolve_runtime(r)
    task, model, _ = timm_task(r, rt, 1e-3)
    ours = build_student_for(r, rt)
    model.load_state_dict(ours.state_dict())  # the contract: timm's key names
    teacher = build_teacher_for(r, rt, live=True)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    loss_fn = build_loss("token", alpha=r.loss.alpha, tau=r.loss.tau,
                         smoothing=r.loss.smoothing, target="hard")
    with torch.no_grad():
        mine = loss_fn.parts(ours(x), y, teacher.targets(Batch(x, y, torch.arange(8))))["loss"]
        theirs = task(x, y)["loss"]
    assert torch.allclose(mine, theirs, atol=1e-5), (mine, theirs)
    # and with the recipe's drop path (0.1 in the smoke recipe) timm's DeiT drops as ours
    _, model, _ = timm_task(speed_recipe(load_recipe(smoke), 8), rt, 1e-3)
    assert model.blocks[-1].drop_path1.drop_prob == pytest.approx(0.1)


def test_speed_times_every_arm_and_writes_json(cli, smoke, tmp_path):
    out = tmp_path / "speed.json"
    res = cli("speed", smoke, "--steps", "2", "--repeats", "2", "--warmup", "1",
              "--batch-size", "8", "--out", out)
    assert res.code == 0, res.err
    doc = json.loads(out.read_text())
    assert {"command", "date", "device", "commit", "arms", "ratios"} <= set(doc)
    assert doc["command"].startswith("distill speed ") and doc["date"].endswith("+00:00")
    assert list(doc["arms"]) == ["none", "live", "cache", "timm"]
    for name, arm in doc["arms"].items():
        assert arm["skipped"] is None, (name, arm["skipped"])
        assert arm["images_per_s"] > 0 and len(arm["blocks_images_per_s"]) == 2
        assert arm["flops_per_step"] > 0 and arm["mfu"] is None  # no known peak on a CPU
        assert arm["peak_mem_mb"] is None  # CUDA's allocator peak only (see test_cuda.py)
    # a live teacher adds its forward to the student's step
    assert doc["arms"]["live"]["flops_per_step"] > doc["arms"]["none"]["flops_per_step"]
    # the cache arm adds only the distillation head's backward to the student's step
    flops = {k: a["flops_per_step"] for k, a in doc["arms"].items()}
    assert flops["none"] <= flops["cache"] < 1.01 * flops["none"] < flops["live"]
    rate = {k: a["images_per_s"] for k, a in doc["arms"].items()}
    assert doc["ratios"]["cache_vs_none"] == pytest.approx(rate["cache"] / rate["none"])
    assert doc["ratios"]["live_vs_timm"] == pytest.approx(rate["live"] / rate["timm"])
    assert "images/s" in res.out and "cache ÷ none:" in res.out
    # the goals are the benchmarks' (benchmarks/speed_goals.py), checked on this very JSON
    from benchmarks.speed_goals import check

    verdicts = {g["goal"]: g for g in check(doc)}
    cache_goal = verdicts["cached teacher vs no teacher"]
    assert cache_goal["value"] == doc["ratios"]["cache_vs_none"]
    assert cache_goal["met"] == (doc["ratios"]["cache_vs_none"] >= 0.97)


def test_speed_goals_say_met_below_and_not_measured():
    from benchmarks.speed_goals import check

    def doc(cache_vs_none, live_vs_timm, device="cpu", name="Xeon", rate=None):
        return {"device": {"device": device, "device_name": name, "precision": "bf16"},
                "ratios": {"cache_vs_none": cache_vs_none, "live_vs_timm": live_vs_timm},
                "arms": {"none": {"images_per_s": rate}}, "image_size": 224,
                "student": "deit_small_distilled_patch16_224"}

    cpu = {g["goal"]: g["met"] for g in check(doc(0.96, 1.01))}
    assert list(cpu.values()) == [False, True]  # 0.96 < 0.97; 1.01 ≥ 1.0 on a CPU
    gpu = check(doc(0.98, 1.2, "cuda", "NVIDIA H100 80GB HBM3", 12000.0))
    assert [g["met"] for g in gpu] == [True, False, True]  # 1.2 < 1.25 on a GPU; 12k ≥ 10k
    assert [g["met"] for g in check(doc(None, None))] == [None, None]


@pytest.mark.parametrize("args,needle", [
    (["--arms", "none,warp"], "--arms: unknown arm 'warp'"),
    (["--steps", "0"], "--steps: must be at least 1"),
    (["--batch-size", "0"], "--batch-size: must be at least 1"),
    (["--out", "/proc/no/such/speed.json"], "--out: cannot create '/proc/no/such'"),
    (["--teacher", "none"], "teacher.name: loss 'token' needs a teacher"),
    (["--teacher", "none", "--set", "loss.name=none", "--student", "deit_tiny_patch16_224"],
     "teacher.name: `distill speed` needs a live teacher"),
    (["--student", "cifar_resnet8", "--set", "loss.name=hard", "--set", "student.kwargs={}",
      "--set", "student.drop_path_rate=null"],
     "'cifar_resnet8' has no counterpart with a distillation token"),
])
def test_speed_bad_input_exit_2(cli, smoke, args, needle):
    res = cli("speed", smoke, *args)
    assert res.code == 2 and needle in res.err and "Traceback" not in res.err


def test_live_table_shows_each_cells_state(smoke, tmp_path):
    import io

    from rich.console import Console

    from distill.cli.bench import LiveBench

    cells = plan_cells(smoke, losses="none,token", out=tmp_path)
    buf = io.StringIO()
    bench = LiveBench(cells, Console(file=buf, width=200))
    rep = bench.cell_start(cells[0], 0)
    rep.start(epochs=2, start_epoch=0, steps_per_epoch=4, info={})
    rep.epoch({"epoch": 0, "train_loss": 1.0, "train_images_per_s": 321.0, "top1": 55.5})
    bench.cell_done(cells[1], 1, {"train_images_per_s": 99.0, "top1": 60.0, "top1_cls": 59.0,
                                  "top1_dist": 61.0, "teacher_top1": 70.0}, ran=False)
    Console(file=buf, width=200).print(bench.table())
    text = buf.getvalue()
    assert "epoch 2/2" in text and "321" in text and "55.50" in text
    assert "done before" in text and "61.00" in text and "70.00" in text


def test_a_finished_cell_altered_on_disk_is_named_not_read_back(cli, smoke, tmp_path):
    out = tmp_path / "bench"
    args = ["bench", smoke, "--losses", "none", "--out", out, "--no-plot", *sets(*ONE_EPOCH)]
    assert cli(*args).code == 0
    summary = next((out / "cells").glob("*/summary.json"))
    summary.write_text(summary.read_text().replace('"top1"', '"top1" ', 1))  # one byte more
    res = cli(*args)
    assert res.code == 2 and "summary.json" in res.err and "Traceback" not in res.err


def test_finished_cells_need_no_teacher_to_be_read_back(cli, smoke, tmp_path):
    """A committed results folder whose `checkpoint:` teacher is gone still reads back; a
    cell that has to train still gets the teacher checked before anything runs."""
    teacher = tmp_path / "teacher"
    own = sets(*ONE_EPOCH, "teacher.name=null", "loss.name=none",
               "student.name=deit_tiny_patch16_224")
    assert cli("train", smoke, "--out", teacher, *own).code == 0
    out = tmp_path / "bench"
    args = ["bench", smoke, "--losses", "hard", "--teachers", f"checkpoint:{teacher}",
            "--out", out, "--no-plot", *sets(*ONE_EPOCH)]
    assert cli(*args).code == 0
    shutil.rmtree(teacher)
    res = cli(*args)
    assert res.code == 0 and res.err.count("done before") == 1, res.err
    res = cli(*args, "--seeds", "0,1")  # seed 1 must train: its teacher is named
    assert res.code == 2 and str(teacher) in res.err and "Traceback" not in res.err
    assert not list(out.glob("cells/*-s1"))
