"""Fitting the ecosystem: a run folder is a timm model folder (`config.json`), teachers
from timm's own sources (`timm:local-dir:`, `timm:hf-hub:`), and teacher ensembles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from distill.cache import load_manifest
from distill.checkpoint import load_weights, save_weights
from distill.engine import Reporter, train
from distill.engine.cache_build import build_cache
from distill.errors import UsageError
from distill.recipe import load_recipe
from distill.registry import TEACHERS
from distill.teacher import StudentInput, build_teacher

from .conftest import FAST, SMOKE

pytestmark = pytest.mark.integration  # most tests train the smoke recipe for a tiny epoch

ONE_EPOCH = [*FAST, "schedule.epochs=1", "schedule.warmup_epochs=0"]
RGB32 = StudentInput(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), in_chans=3, img_size=32,
                     num_classes=10)
PAIR = "ensemble:timm:test_resnet+timm:test_efficientnet"
# Random members for the smoke data (a command line naming another teacher than the recipe's
# drops the recipe's teacher.kwargs and teacher.input_size).
OWN = ["teacher.kwargs={num_classes: 10}", "teacher.input_size=32"]


def recipe(*sets: str, **shortcuts):
    return load_recipe(SMOKE, [*ONE_EPOCH, *sets], **shortcuts)


def run(out: Path, *sets: str, **shortcuts) -> dict:
    return train(recipe(f"run.out={out}", *sets, **shortcuts), reporter=Reporter()).summary


def sets(*items: str) -> list[str]:
    return [a for s in items for a in ("--set", s)]


# -- 1. a run folder is a timm model folder -------------------------------------------------
STUDENTS = {
    "deit_distilled": ([], {}),
    "deit": (["loss.name=none"], {"student": "deit_tiny_patch16_224"}),
    "timm_resnet": (["loss.name=none", "student.kwargs={}"], {"student": "timm:test_resnet"}),
}


@pytest.fixture(scope="module")
def distilled_run(tmp_path_factory) -> Path:
    """A DeiT⚗ trained one tiny epoch with the smoke recipe (its run folder)."""
    out = tmp_path_factory.mktemp("student") / "run"
    run(out)
    return out


def _ours_and_timms(folder: Path):
    """The student as `distill eval` builds it, and as timm alone builds it."""
    import timm

    from distill.engine import build_student_for, resolve_runtime
    from distill.recipe import load_run_recipe

    r = load_run_recipe(folder, []).updated({"student.init": None})
    ours = build_student_for(r, resolve_runtime(r))
    ours.load_state_dict(load_weights(folder / "model.safetensors"), strict=True)
    theirs = timm.create_model(f"local-dir:{folder}", pretrained=True)
    return r, ours.eval(), theirs.eval()


@pytest.mark.parametrize("kind", list(STUDENTS))
def test_a_run_folder_is_a_timm_model_folder(kind, cli, tmp_path, distilled_run):
    import timm

    from distill.data import build_val_loader

    folder = distilled_run
    if kind != "deit_distilled":
        extra, shortcuts = STUDENTS[kind]
        folder = tmp_path / kind
        run(folder, *extra, **shortcuts)
    cfg = json.loads((folder / "config.json").read_text())
    assert {"architecture", "num_classes", "num_features", "model_args",
            "pretrained_cfg"} <= set(cfg)
    pc = cfg["pretrained_cfg"]
    assert pc["input_size"] == [3, 32, 32] and pc["mean"] == [0.5] * 3 and pc["std"] == [0.25] * 3
    assert {"interpolation", "crop_pct", "classifier"} <= set(pc)
    r, ours, theirs = _ours_and_timms(folder)
    assert tuple(theirs.pretrained_cfg["mean"]) == (0.5, 0.5, 0.5)  # timm reads our data facts
    # built by timm alone, with our weights: the logits `distill eval` computes
    from distill.engine.evaluate import split_heads

    batch = next(iter(build_val_loader(r.data, r.run.seed)))
    with torch.inference_mode():
        cls, dist = split_heads(ours, batch.images)
        mine = cls if dist is None else (cls + dist) / 2
        got = theirs(batch.images)
    assert torch.allclose(got, mine, atol=1e-5)
    with torch.inference_mode():  # not by chance: timm's random init gives other logits
        fresh = timm.create_model(f"local-dir:{folder}", pretrained=False).eval()
        assert not torch.allclose(fresh(batch.images), mine, atol=1e-3)
    if kind == "deit_distilled":
        assert pc["classifier"] == ["head", "head_dist"]
        assert type(theirs).__name__ == "VisionTransformerDistilled"
    res = cli("eval", folder, "--json")
    assert res.code == 0, res.err
    top1 = json.loads(res.out)["top1"]
    hits = n = 0
    with torch.inference_mode():
        for b in build_val_loader(r.data, r.run.seed):
            hits += int((theirs(b.images).argmax(-1) == b.labels).sum())
            n += len(b.labels)
    assert abs(100.0 * hits / n - top1) < 1e-9


def test_a_student_timm_cannot_build_gets_no_config(tmp_path):
    out = tmp_path / "resnet8"
    run(out, "loss.name=none", "student.kwargs={}", "student.drop_path_rate=null",
        student="cifar_resnet8")
    assert (out / "model.safetensors").is_file() and not (out / "config.json").exists()


# -- teachers by timm's own sources ---------------------------------------------------------
def test_timm_local_dir_teacher_runs_offline(distilled_run, tmp_path, monkeypatch):
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    student = json.loads((distilled_run / "summary.json").read_text())
    summary = run(tmp_path / "r", "teacher.kwargs={}", "teacher.input_size=null",
                  teacher=f"timm:local-dir:{distilled_run}")
    # the teacher is that student, seen through timm: same images, same top-1
    assert summary["teacher_top1"] == pytest.approx(student["top1"])
    t = build_teacher(f"timm:local-dir:{distilled_run}", student=RGB32)
    from distill.checkpoint import file_sha256

    assert t.identity.weights_sha256 == file_sha256(distilled_run / "model.safetensors")
    assert t.identity.mean == (0.5, 0.5, 0.5) and t.identity.input_size == (3, 32, 32)


def test_timm_source_targets_are_checked(tmp_path, monkeypatch):
    facts = TEACHERS.facts("timm")
    facts.check("local-dir:anything")  # syntax only; the folder is checked with the paths
    with pytest.raises(UsageError, match="no config.json"):
        facts.check_paths(f"local-dir:{tmp_path}")
    (tmp_path / "config.json").write_text('{"architecture": "no_such_net"}')
    with pytest.raises(UsageError, match="names no timm architecture"):
        facts.check_paths(f"local-dir:{tmp_path}")
    with pytest.raises(UsageError, match="Hugging Face model id"):
        facts.check("hf-hub:not a repo")
    facts.check("hf-hub:timm/resnet18.a1_in1k")
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError, match="needs the network") as err:
        build_teacher("timm:hf-hub:timm/no-such-model-xyz", student=RGB32)
    assert "\n" not in str(err.value)


# -- 2. teacher ensembles -------------------------------------------------------------------
def _weights_file(path: Path, seed: int, **kwargs) -> Path:
    import timm

    torch.manual_seed(seed)
    save_weights(path, timm.create_model("test_resnet", num_classes=10, **kwargs).state_dict())
    return path


@pytest.mark.parametrize("mode", ["probs", "logits"])
def test_ensemble_output_is_the_members_combined_by_hand(mode, tmp_path):
    a, b = _weights_file(tmp_path / "a.safetensors", 1), _weights_file(tmp_path / "b.safetensors", 2)
    own = [{"weights": str(a), "input_size": 32},
           {"weights": str(b), "input_size": 48, "mean": [0.4, 0.4, 0.4], "std": [0.3, 0.3, 0.3]}]
    ens = build_teacher("ensemble:0.6*timm:test_resnet+0.2*timm:test_resnet", student=RGB32,
                        kwargs={"num_classes": 10, "combine": mode, "members": own})
    one = build_teacher("timm:test_resnet", student=RGB32, kwargs={"num_classes": 10},
                        weights=a, input_size=32)
    two = build_teacher("timm:test_resnet", student=RGB32, kwargs={"num_classes": 10},
                        weights=b, input_size=48, mean=(0.4,) * 3, std=(0.3,) * 3)
    x = torch.randn(4, 3, 32, 32)
    z1, z2 = one(x), two(x)
    assert not torch.allclose(z1, z2)
    if mode == "probs":  # weights 0.6 : 0.2 normalised to 0.75 : 0.25
        expected = torch.log(0.75 * F.softmax(z1, -1) + 0.25 * F.softmax(z2, -1))
    else:
        expected = 0.75 * z1 + 0.25 * z2
    out = ens(x)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.equal(out.argmax(-1), expected.argmax(-1))  # the hard target
    # each member keeps its own normalisation and input size
    assert [t.identity.input_size for t in ens.teachers] == [(3, 32, 32), (3, 48, 48)]
    assert ens.teachers[1].identity.mean == (0.4, 0.4, 0.4)
    # its spec names every member: another weighting or mode is another teacher
    other = build_teacher("ensemble:timm:test_resnet+timm:test_resnet", student=RGB32,
                          kwargs={"num_classes": 10, "combine": mode, "members": own})
    assert other.identity.weights_sha256 != ens.identity.weights_sha256
    assert ens.identity.adapter == "ensemble" and ens.identity.num_classes == 10


def test_ensemble_spec_and_recipe_list_are_one_parser(tmp_path):
    from distill.teacher import parse_members

    assert parse_members("0.7*timm:a+0.3*checkpoint:runs/b") == [(0.7, "timm:a"),
                                                                  (0.3, "checkpoint:runs/b")]
    r = recipe("teacher.name=null", "teacher.kwargs={num_classes: 10}",
               "teacher.members=[{name: 'timm:test_resnet', weight: 3, input_size: 32}, "
               "{name: 'timm:test_efficientnet', weight: 1}]")
    assert r.teacher.name == "ensemble:3*timm:test_resnet+1*timm:test_efficientnet"
    assert r.teacher.members is None
    assert r.teacher.kwargs == {"num_classes": 10, "members": [{"input_size": 32}, {}]}
    again = load_recipe(None, raw={"teacher": r.teacher.model_dump(mode="json")})
    assert again.teacher == r.teacher  # a resolved recipe reads back as it is
    for bad, needle in [("ensemble:timm:test_resnet", "at least two"),
                        ("ensemble:timm:test_resnet+cache:x", "is a cache"),
                        ("ensemble:timm:test_resnet+0*timm:test_resnet", "weight > 0"),
                        ("ensemble:timm:test_resnet+timm:nope_net", "member 2")]:
        with pytest.raises(UsageError, match=needle):
            recipe(teacher=bad)
    with pytest.raises(UsageError, match="combine"):
        build_teacher(PAIR, student=RGB32, kwargs={"num_classes": 10, "combine": "votes"})
    with pytest.raises(UsageError, match="one entry per member"):
        build_teacher(PAIR, student=RGB32, kwargs={"num_classes": 10, "members": [{}]})


def test_an_ensemble_trains_the_smoke_recipe(tmp_path):
    summary = run(tmp_path / "r", *OWN, teacher=PAIR)
    assert summary["teacher"] == PAIR and 0 <= summary["teacher_top1"] <= 100


def test_an_ensemble_trains_under_torchrun_like_one_process(tmp_path):
    from .test_distributed import SETS, epoch_rows, torchrun

    common = [*SETS, "schedule.epochs=1", "schedule.warmup_epochs=0"]
    job = torchrun(2, "train", SMOKE, "--out", tmp_path / "w2", "--teacher", PAIR,
                   *sets(*common, *OWN, "data.batch_size=16"))
    out, _ = job.communicate(timeout=300)
    assert job.returncode == 0, out
    one = run(tmp_path / "w1", *common, *OWN, "data.batch_size=32", teacher=PAIR)
    two = json.loads((tmp_path / "w2" / "summary.json").read_text())
    assert two["world_size"] == 2 and two["teacher"] == PAIR
    assert two["teacher_top1"] == pytest.approx(one["teacher_top1"])  # the same teacher
    (a,), (b,) = epoch_rows(tmp_path / "w2"), epoch_rows(tmp_path / "w1")
    assert a["train_loss"] == pytest.approx(b["train_loss"], rel=0.02)


def test_an_ensemble_cache_records_its_members_replays_and_refuses_another(tmp_path):
    a, b = _weights_file(tmp_path / "a.safetensors", 1), _weights_file(tmp_path / "b.safetensors", 2)
    members = (f"teacher.members=[{{name: 'timm:test_resnet', weights: '{a}'}}, "
               f"{{name: 'timm:test_resnet', weights: '{b}', weight: 2}}]")
    cache = tmp_path / "cache"
    build_cache(recipe("teacher.name=null", members, *OWN), cache, store="hard",
                reporter=Reporter())
    m = load_manifest(cache)
    from distill.checkpoint import file_sha256

    assert m.teacher["adapter"] == "ensemble"
    assert [(x["spec"], x["weights_sha256"]) for x in m.teacher_description["members"]] == [
        ("timm:test_resnet", file_sha256(a)), ("timm:test_resnet", file_sha256(b))]
    assert [x["weight"] for x in m.teacher_description["members"]] == pytest.approx([1 / 3, 2 / 3])
    # replayed: the same weights as with the live ensemble
    cached = run(tmp_path / "cached", "teacher.name=null", members, *OWN,
                 f"teacher.cache={cache}")
    live = run(tmp_path / "live", "teacher.name=null", members, *OWN)
    assert cached["top1"] == live["top1"]
    assert torch.equal(load_weights(tmp_path / "cached" / "model.safetensors")["head.weight"],
                       load_weights(tmp_path / "live" / "model.safetensors")["head.weight"])
    # another ensemble: refused, naming the teacher
    with pytest.raises(UsageError, match=r"teacher.name \(cache 'ensemble:1\*timm:test_resnet"
                                         r"\+2\*timm:test_resnet', run 'ensemble:timm:"):
        run(tmp_path / "other", *OWN, f"teacher.cache={cache}", teacher=PAIR)
    # the same ensemble, one member's weights changed: refused, naming the member
    _weights_file(b, 3)
    with pytest.raises(UsageError, match=r"teacher member 2 'timm:test_resnet' weights"):
        run(tmp_path / "changed", "teacher.name=null", members, *OWN, f"teacher.cache={cache}")


def test_bench_cells_keep_a_recipe_ensembles_members(tmp_path):
    from distill.bench import plan_cells

    path = tmp_path / "ens.yaml"
    text = SMOKE.read_text().replace("  name: timm:test_resnet\n", "  members:\n"
                                     "    - {name: 'timm:test_resnet', input_size: 48}\n"
                                     "    - {name: 'timm:test_efficientnet', weight: 3}\n")
    path.write_text(text)
    cells = plan_cells(path, teachers=None, out=tmp_path / "b")
    (cell,) = cells
    assert cell.recipe.teacher.name == "ensemble:1*timm:test_resnet+3*timm:test_efficientnet"
    assert cell.recipe.teacher.kwargs == {"num_classes": 10,
                                          "members": [{"input_size": 48}, {}]}
    assert cell.recipe.teacher.input_size == 32
    other = plan_cells(path, teachers="timm:test_resnet", out=tmp_path / "c")
    assert other[0].recipe.teacher.name == "timm:test_resnet"


def test_bench_gives_an_ensemble_one_column(cli, smoke, tmp_path):
    from distill.bench.cells import teacher_slug

    assert teacher_slug("ensemble:0.7*timm:a+0.3*checkpoint:runs/b") == \
        "ensemble_0.7timm_a+0.3checkpoint_b"
    long = teacher_slug("ensemble:" + "+".join(f"timm:model_{i:03d}_long_name" for i in range(9)))
    assert len(long) <= 80 and long.startswith("ensemble_timm_model_000")
    out = tmp_path / "bench"
    res = cli("bench", smoke, "--losses", "token", "--teachers", f"timm:test_resnet,{PAIR}",
              "--out", out, *sets(*ONE_EPOCH, *OWN))
    assert res.code == 0, res.err
    rows = json.loads((out / "results.json").read_text())["cells"]
    assert [r["teacher"] for r in rows] == ["timm:test_resnet", PAIR]
    assert sorted(p.name for p in (out / "cells").iterdir()) == [
        "token-ensemble_timm_test_resnet+timm_test_efficientnet-deit_tiny_distilled-s0",
        "token-timm_test_resnet-deit_tiny_distilled-s0"]
    md = (out / "results.md").read_text().splitlines()
    header = next(line for line in md if line.startswith("| method"))
    assert header.count("teacher `") == 2 and f"teacher `{PAIR}`" in header
