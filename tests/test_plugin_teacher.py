"""A third party's teacher of several members, written outside this repository's packages:
one file, one decorator, installed through an entry point. Nothing in `distill` names it,
yet it trains, builds a cache that records its members, replays it, and has a changed
member refused, as the built-in `ensemble` does."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest

from distill.cache import load_manifest
from distill.checkpoint import file_sha256, load_weights, save_weights
from distill.engine import Reporter, train
from distill.engine.cache_build import build_cache
from distill.errors import UsageError
from distill.recipe import load_recipe
from distill.registry import TEACHERS

from .conftest import FAST, SMOKE

pytestmark = pytest.mark.integration  # trains the smoke recipe for a tiny epoch

PLUGIN = '''
    """Teachers whose logits are their members' weighted mean (a third party's plug-in)."""

    import hashlib
    import json

    import torch
    from torch import nn

    from distill.registry import TEACHERS
    from distill.teacher import Teacher, TeacherIdentity, build_teacher, members_of


    class MeanTeacher(nn.Module, Teacher):
        def __init__(self, teachers, weights, target, student):
            super().__init__()
            self.teachers, self.weights, self.target, self.student = teachers, weights, target, student
            self.held = nn.ModuleList([t for t in teachers if isinstance(t, nn.Module)])

        @property
        def identity(self):
            parts = [[w, t.identity.model_dump(mode="json")] for w, t in zip(self.weights, self.teachers)]
            s = self.student
            return TeacherIdentity(
                adapter="mean", name=self.target,
                weights_sha256=hashlib.sha256(json.dumps(parts).encode()).hexdigest(),
                num_classes=self.teachers[0].identity.num_classes, mean=s.mean, std=s.std,
                input_size=(s.in_chans, s.img_size, s.img_size))

        def place(self, device, **how):
            self.teachers = [t.place(device, **how) for t in self.teachers]
            return self

        @torch.inference_mode()
        def targets(self, batch):
            return sum(w * t.targets(batch) for w, t in zip(self.weights, self.teachers))


    @TEACHERS.register(name="mean", members=True)
    def mean_teacher(target, options, context):
        """The weighted mean of its members' logits."""
        members = members_of(target, options, "mean")
        built = [build_teacher(m.spec, context=context, options=m.options) for m in members]
        return MeanTeacher(built, [m.weight for m in members], target, context.student)
'''


@pytest.fixture
def mean_plugin(tmp_path, monkeypatch):
    """A distribution 'mean-teacher' installed in a folder of its own: the module
    `mean_teacher_plugin` and a `distill.teachers` entry point naming it."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "mean_teacher_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "mean_teacher-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mean-teacher\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[distill.teachers]\nmean = mean_teacher_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    TEACHERS.refresh()  # the entry points of the distribution installed just now
    yield "mean"
    TEACHERS.unregister("mean")
    sys.modules.pop("mean_teacher_plugin", None)
    TEACHERS.refresh()


def _weights(path: Path, seed: int) -> Path:
    import timm
    import torch

    torch.manual_seed(seed)
    save_weights(path, timm.create_model("test_resnet", num_classes=10).state_dict())
    return path


def test_a_plugin_teacher_of_members_trains_caches_and_refuses_a_changed_member(
        mean_plugin, tmp_path):
    from distill.bench.cells import teacher_slug

    assert "mean" in TEACHERS.names() and TEACHERS.facts("mean").members
    assert TEACHERS.entry("mean").source == "mean_teacher_plugin"
    a, b = _weights(tmp_path / "a.safetensors", 1), _weights(tmp_path / "b.safetensors", 2)
    # the recipe's list form names the plug-in, as it names the built-in ensemble
    sets = [*FAST, "schedule.epochs=1", "schedule.warmup_epochs=0", "teacher.name=mean",
            "teacher.kwargs={num_classes: 10}", "teacher.input_size=32",
            f"teacher.members=[{{name: 'timm:test_resnet', weights: '{a}'}}, "
            f"{{name: 'timm:test_resnet', weights: '{b}', weight: 3}}]"]

    def run(out: Path, *more: str) -> dict:
        r = load_recipe(SMOKE, [*sets, f"run.out={out}", *more])
        return train(r, reporter=Reporter()).summary

    spec = "mean:1*timm:test_resnet+3*timm:test_resnet"
    assert load_recipe(SMOKE, sets).teacher.name == spec
    # the core checks its members like an ensemble's, and names it in bench folders
    for bad, needle in [("mean:timm:test_resnet", "mean: needs at least two members"),
                        ("mean:timm:test_resnet+cache:x", "mean: member 2 'cache:x' is a cache"),
                        ("mean:timm:test_resnet+ensemble:timm:a", "is an ensemble")]:
        with pytest.raises(UsageError, match=needle):
            load_recipe(SMOKE, [*FAST], teacher=bad)
    assert teacher_slug(spec) == "mean_1timm_test_resnet+3timm_test_resnet"

    # it trains
    live = run(tmp_path / "live")
    assert live["teacher"] == spec and 0 <= live["teacher_top1"] <= 100
    # it builds a cache that records each member and its weights file
    cache = tmp_path / "cache"
    build_cache(load_recipe(SMOKE, sets), cache, store="hard", reporter=Reporter())
    m = load_manifest(cache)
    assert m.teacher["adapter"] == "mean" and m.teacher_recipe["name"] == spec
    assert [(x["spec"], x["weights_sha256"]) for x in m.teacher_description["members"]] == [
        ("timm:test_resnet", file_sha256(a)), ("timm:test_resnet", file_sha256(b))]
    assert [x["weight"] for x in m.teacher_description["members"]] == pytest.approx([0.25, 0.75])
    # a run replays it: the very weights of the live run
    cached = run(tmp_path / "cached", f"teacher.cache={cache}")
    assert cached["top1"] == live["top1"]
    assert (load_weights(tmp_path / "cached" / "model.safetensors")["head.weight"]
            == load_weights(tmp_path / "live" / "model.safetensors")["head.weight"]).all()
    # one member's weights changed: the cache is refused, naming the member
    _weights(b, 3)
    with pytest.raises(UsageError, match=r"teacher member 2 'timm:test_resnet' weights"):
        run(tmp_path / "changed", f"teacher.cache={cache}")


def test_an_adapters_declared_facts_are_what_the_core_reads(tmp_path):
    """An adapter's `slug`, `weights_file`, `describe` and `compare`, declared at its
    registration, are what the bench and the cache read of it; without `compare`, its
    description is compared field by field (None)."""
    from distill.bench.cells import teacher_slug
    from distill.teacher import TeacherOptions, parse_teacher

    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x")

    def differ(cached, run):
        return [] if cached == run else [f"version (cache {cached['version']}, run {run['version']})"]

    @TEACHERS.register(name="db", slug=lambda t: f"db_{t}", weights_file=lambda t: weights,
                       describe=lambda t, options: {"version": t}, compare=differ)
    def db_teacher(target, options, context):
        raise AssertionError("not built here")

    try:
        ref = parse_teacher("db:v2")
        assert teacher_slug("db:v2") == "db_v2"
        assert ref.weights_file() == weights and ref.weights_file(tmp_path / "none") == weights
        assert ref.describe(TeacherOptions()) == {"version": "v2"}
        assert ref.compare({"version": "v1"}, {"version": "v2"}) == ["version (cache v1, run v2)"]
        timm_ref = parse_teacher("timm:test_resnet")
        assert timm_ref.describe(TeacherOptions()) == {} and timm_ref.compare({}, {}) is None
        assert teacher_slug("timm:test_resnet") == "timm_test_resnet"
    finally:
        TEACHERS.unregister("db")


@pytest.mark.parametrize("returned", ["../../etc/passwd", "..", ".", "", "a b/c\\d", "-x",
                                      "/abs/path", "x" * 300])
def test_a_plugin_slug_is_sanitised_as_the_default_one(returned):
    """What an adapter's `slug` returns names folders (`cells/<loss>-<slug>-…`, the bench's
    caches): it gets the default slug's rules, so no `/`, no `..`, no hidden name, nothing
    empty, nothing longer than 80 characters."""
    from distill.bench.cells import teacher_slug

    TEACHERS.register(lambda target, options, context: None, name="odd",
                      slug=lambda t: returned)
    try:
        slug = teacher_slug("odd:v1")
    finally:
        TEACHERS.unregister("odd")
    assert slug and len(slug) <= 80, slug
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.]*", slug), slug
    assert ".." not in slug and not slug.endswith("."), slug
