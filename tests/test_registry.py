"""The generic registry and third-party plugins through entry points."""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass

import pytest

from distill.registry import DATASETS, LOSSES, STUDENTS, TEACHERS, Registry, RegistryError


@dataclass(frozen=True)
class WidgetFacts:
    heavy: bool = False


def test_register_get_build_names():
    reg = Registry("widget", "widgets", WidgetFacts)

    @reg.register
    def small(size: int = 1):
        """A small widget."""
        return ("small", size)

    @reg.register(name="big", heavy=True)
    def _big():
        return "big"

    class Medium:
        facts = WidgetFacts(heavy=True)

    reg.register(Medium, name="medium")
    assert reg.names() == ["big", "medium", "small"]
    assert reg.get("small") is small
    assert reg.build("small", size=3) == ("small", 3)
    assert reg.facts("big") == WidgetFacts(heavy=True)  # declared in the decorator
    assert reg.facts("medium") == WidgetFacts(heavy=True)  # declared on the class
    assert reg.facts("small") == WidgetFacts()  # the kind's defaults
    assert reg.names("sm") == ["small"]
    assert reg.names("b*") == ["big"]
    assert "small" in reg and "large" not in reg


def test_an_unknown_fact_is_an_error_at_registration():
    reg = Registry("widget", "widgets", WidgetFacts)
    with pytest.raises(TypeError, match="widget 'f'.*colour"):
        reg.register(name="f", colour="red")(lambda: 1)


def test_duplicate_name_is_an_error():
    reg = Registry("widget", "widgets", WidgetFacts)
    reg.register(lambda: 1, name="a")
    with pytest.raises(RegistryError, match="duplicate widget name 'a'"):
        reg.register(lambda: 2, name="a")


def test_unknown_name_lists_closest():
    with pytest.raises(RegistryError) as exc:
        STUDENTS.entry("deit_tiny_distiled_patch16_224")
    msg = str(exc.value)
    assert "unknown student 'deit_tiny_distiled_patch16_224'" in msg
    assert "'deit_tiny_distilled_patch16_224'" in msg
    assert "distill list students" in msg


def test_builtin_instances_are_populated():
    assert set(LOSSES.names()) >= {"none", "soft", "hard", "token"}
    assert set(TEACHERS.names()) >= {"timm", "torchvision", "checkpoint", "python"}
    assert set(DATASETS.names()) >= {"synthetic", "fashion_mnist", "imagefolder"}
    deit = {f"deit_{s}_{d}patch16_224" for s in ("tiny", "small", "base")
            for d in ("", "distilled_")}
    assert deit <= set(STUDENTS.names())


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """An installed distribution 'tiny-plugin' with a `distill.losses` entry point."""
    pkg = tmp_path / "tiny_distill_plugin.py"
    pkg.write_text(textwrap.dedent('''
        import torch.nn.functional as F
        from distill.losses import DistillationLoss, LossFacts

        class ScaledCE(DistillationLoss):
            """Twice the cross-entropy (a plugin)."""

            facts = LossFacts(needs_teacher=False)

            def parts(self, outputs, targets, teacher_logits=None):
                cls = outputs[0] if isinstance(outputs, tuple) else outputs
                loss = 2.0 * F.cross_entropy(cls, targets)
                return {"loss": loss, "base": loss}
        '''))
    dist = tmp_path / "tiny_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[distill.losses]\nscaled_ce = tiny_distill_plugin:ScaledCE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    LOSSES.refresh()  # the entry points of the distribution installed just now
    yield "scaled_ce"
    LOSSES.unregister("scaled_ce")
    sys.modules.pop("tiny_distill_plugin", None)


def test_entry_point_plugin_is_listed_and_used(plugin, cli, smoke, tmp_path, monkeypatch):
    """A plugin loss is one class with its facts: declared `needs_teacher=False`, the run
    builds no teacher although the recipe names one."""
    import importlib

    import torch

    def no_teacher(*args, **kwargs):
        raise AssertionError("a teacher was built for a loss that needs none")

    trainer = importlib.import_module("distill.engine.train")  # the module, not the function
    monkeypatch.setattr(trainer, "build_teacher_for", no_teacher)

    assert plugin in LOSSES.names()
    assert LOSSES.entry(plugin).source == "plugin tiny_distill_plugin:ScaledCE"
    assert LOSSES.facts(plugin).needs_teacher is False  # declared on the class, read as is
    loss = LOSSES.build(plugin)
    logits, y = torch.randn(4, 10), torch.tensor([1, 2, 3, 4])
    assert torch.allclose(loss(logits, y), 2 * torch.nn.functional.cross_entropy(logits, y))

    listed = cli("list", "losses")
    assert listed.code == 0 and "scaled_ce" in listed.out and "plugin" in listed.out

    from tests.conftest import FAST

    res = cli("train", smoke, "--loss", plugin, "--student", "deit_tiny_patch16_224",
              "--out", tmp_path / "run", "--set", "schedule.epochs=1",
              *[a for s in FAST for a in ("--set", s)])
    assert res.code == 0, res.err
    import json

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["loss"] == plugin
    assert summary["teacher"] is None and "teacher_top1" not in summary
