"""Every shipped recipe validates; bad recipes fail with one line per problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill.errors import UsageError
from distill.recipe import (
    RESUME_FREE_FIELDS,
    Recipe,
    apply_overrides,
    default_out,
    dump_recipe,
    load_recipe,
    load_run_recipe,
    resume_changes,
)

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "recipes" / "smoke.yaml"
RECIPES = sorted((ROOT / "recipes").rglob("*.yaml"))


def test_there_are_recipes_for_each_family():
    names = {p.relative_to(ROOT / "recipes").as_posix() for p in RECIPES}
    assert "smoke.yaml" in names
    assert {f"imagenet/deit_{s}_{k}.yaml" for s in ("tiny", "small", "base")
            for k in ("none", "token")} <= names
    assert {f"fmnist/deit_{k}.yaml" for k in ("none", "soft", "hard", "token")} <= names
    assert "fmnist/teacher_resnet.yaml" in names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_recipe_validates(path):
    recipe = load_recipe(path)
    assert isinstance(recipe, Recipe)
    # The resolved YAML is itself a valid recipe that resolves to the same thing.
    again = Recipe.model_validate(__import__("yaml").safe_load(dump_recipe(recipe)))
    assert again == recipe


@pytest.mark.parametrize("path", sorted((ROOT / "recipes" / "imagenet").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_imagenet_recipes_carry_the_paper_hyperparameters(path):
    r = load_recipe(path)
    assert (r.schedule.epochs, r.schedule.warmup_epochs, r.schedule.name) == (300, 5, "cosine")
    assert (r.optim.name, r.optim.lr, r.optim.scale_lr, r.optim.weight_decay) == (
        "adamw", 5e-4, True, 0.05)
    a = r.augment
    assert (a.auto_augment, a.mixup, a.cutmix, a.re_prob, a.repeated_aug) == (
        "rand-m9-mstd0.5-inc1", 0.8, 1.0, 0.25, 3)
    assert r.loss.smoothing == 0.1 and r.run.ema and r.run.ema_decay == 0.99996
    assert r.student.drop_path_rate == (0.0 if "tiny" in path.name else 0.1)
    if "token" in path.name:
        assert r.teacher.name == "timm:regnety_160.deit_in1k" and r.teacher.pretrained
        assert r.loss.name == "token" and r.loss.target == "hard" and r.loss.alpha == 0.5


def errors(path_or_none, sets=(), **shortcuts) -> list[str]:
    with pytest.raises(UsageError) as exc:
        load_recipe(path_or_none, list(sets), **shortcuts)
    return exc.value.lines


def test_unknown_key_names_the_dotted_field(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("optim:\n  learning_rate: 0.1\n")
    assert errors(p) == [f"{p}: optim.learning_rate: unknown field (got 0.1)"]


def test_bad_type_names_field_and_value():
    (line,) = errors(None, ["optim.lr=fast"])
    assert line.startswith("recipe: optim.lr:") and "(got 'fast')" in line


def test_several_problems_one_line_each():
    lines = errors(None, ["optim.lr=-1", "data.batch_size=0", "loss.tau=0"])
    assert len(lines) == 3
    assert {ln.split(":")[1].strip() for ln in lines} == {"optim.lr", "data.batch_size",
                                                            "loss.tau"}


def test_unknown_teacher_suggests_close_names():
    (line,) = errors(None, teacher="timm:regnety160")
    assert "teacher.name" in line and "did you mean 'regnety_160'" in line
    (line,) = errors(None, teacher="timmm:resnet18")
    assert "unknown teacher 'timmm'" in line and "'timm'" in line


def test_unknown_student_and_loss_and_dataset():
    assert "did you mean 'deit_small_distilled_patch16_224'" in errors(
        None, student="deit_smal_distilled_patch16_224")[0]
    assert "unknown loss 'tokn'" in errors(None, loss="tokn")[0]
    assert "unknown dataset 'fmnist'" in errors(None, ["data.name=fmnist"])[0]


def test_loss_must_fit_the_student_heads():
    (line,) = errors(None, ["teacher.name=timm:resnet18"], loss="token",
                     student="deit_tiny_patch16_224")
    assert line.startswith("recipe: loss.name:") and "distillation token" in line
    (line,) = errors(None, ["teacher.name=timm:resnet18"], loss="soft")
    assert "has a distillation token" in line


def test_distillation_needs_a_teacher():
    (line,) = errors(None, loss="token")
    assert line.startswith("recipe: teacher.name: loss 'token' needs a teacher")


def test_cross_field_checks():
    assert "has 1 values for in_chans=3" in errors(None, ["data.mean=[0.5]"])[0]
    assert "unknown option for dataset 'synthetic'" in errors(None, ["data.options.sizee=3"])[0]
    assert "is set by the recipe" in errors(None, ["student.kwargs.num_classes=3"])[0]
    assert "warmup_epochs" in errors(None, ["schedule.epochs=2", "schedule.warmup_epochs=5"])[0]
    assert "auto-augment" in errors(None, ["augment.auto_augment=rand-q9"])[0]


def test_overrides_are_typed_and_shortcuts_win():
    r = load_recipe(None, ["optim.lr=1e-3", "augment.scale=[0.5, 1.0]", "teacher.name=none",
                           "loss.name=none", "student.name=deit_tiny_patch16_224"],
                    loss="none")
    assert r.optim.lr == 1e-3 and r.augment.scale == (0.5, 1.0) and r.teacher.name is None
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        apply_overrides({}, ["optim.lr"])
    with pytest.raises(UsageError, match="'lr' is not a section"):
        apply_overrides({"optim": {"lr": 1}}, ["optim.lr.x=2"])


def test_yaml_problems(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    assert "invalid YAML" in errors(bad)[0]
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    assert "a recipe is a mapping" in errors(listy)[0]
    assert "recipe file not found" in errors(tmp_path / "missing.yaml")[0]


def test_default_output_follows_the_recipe_path():
    assert default_out(Path("recipes/fmnist/deit_token.yaml")) == Path("runs/fmnist/deit_token")
    assert default_out(Path("/x/my.yaml")) == Path("runs/my")


def test_schema_describes_fields():
    schema = Recipe.model_json_schema()
    assert set(schema["properties"]) == {"data", "student", "teacher", "loss", "optim",
                                         "schedule", "augment", "run"}
    text = json.dumps(schema)
    assert "Weight of the distillation term" in text


def test_the_validation_pass_reports_every_problem_at_once():
    lines = errors(None, ["data.name=fmnist", "teacher.name=timm:resnet18"], loss="tokn")
    assert [ln.split(":")[1].strip() for ln in lines] == ["data.name", "loss.name"]
    assert "unknown dataset 'fmnist'" in lines[0] and "unknown loss 'tokn'" in lines[1]
    # Across sections too: the loss does not fit the student, and the batch is odd.
    lines = errors(SMOKE, ["data.batch_size=33", "augment.mixup=0.8"],
                   student="deit_tiny_patch16_224")
    assert [ln.split(": ")[1] for ln in lines] == ["loss.name", "data.batch_size"]
    # A schema error and a registry name in another section: both.
    lines = errors(SMOKE, ["optim.lr=-1"], loss="tokn")
    assert sorted(ln.split(": ")[1] for ln in lines) == ["loss.name", "optim.lr"]


def test_updated_returns_a_validated_copy():
    r = load_recipe(SMOKE)
    new = r.updated({"run.out": "elsewhere", "data.batch_size": 8})
    assert (new.run.out, new.data.batch_size) == (Path("elsewhere"), 8)
    assert (r.run.out, r.data.batch_size) == (Path("runs/smoke"), 32)
    with pytest.raises(UsageError) as exc:
        r.updated({"data.batch_size": 0, "loss.name": "soft"})
    assert [ln.split(": ")[1] for ln in exc.value.lines] == ["data.batch_size"]
    with pytest.raises(UsageError, match=r"cell x: loss.name: 'soft' trains a class-token"):
        r.updated({"loss.name": "soft"}, "cell x")
    assert r == load_recipe(SMOKE)


@pytest.mark.parametrize("kwargs", [
    {}, {"img_size": 30}, {"patch_size": 0}, {"num_heads": 5}, {"num_heads": 0},
    {"embed_dim": "48"}, {"depth": 0}, {"mlp_ratio": 0}, {"img_size": 40, "patch_size": 5},
], ids=str)
def test_the_deit_shape_check_agrees_with_building_it(kwargs):
    import torch

    from students import build_student
    from students.deit import builder_args, shape_problem

    name = "deit_tiny_distilled_patch16_224"
    given = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "num_classes": 10, **kwargs}
    try:
        with torch.device("meta"):
            build_student(name, **given)
        built = True
    except (TypeError, ValueError, RuntimeError, ArithmeticError):
        built = False
    assert (shape_problem(builder_args(name, given)) is None) == built
    assert builder_args("timm:deit_tiny_patch16_224", given) is None  # built on meta instead
    for nonsense in ({"depth": -1}, {"num_heads": -2}, {"embed_dim": True}):  # build, refused
        assert shape_problem(builder_args(name, {**given, **nonsense})) is not None


def test_a_run_recipe_is_read_back_and_compared(tmp_path):
    r = load_recipe(SMOKE, [f"run.out={tmp_path}"])
    (tmp_path / "recipe.yaml").write_text(dump_recipe(r))
    prior = load_run_recipe(tmp_path)
    assert prior == load_run_recipe(tmp_path / "recipe.yaml") == r
    assert load_run_recipe(tmp_path, ["optim.lr=0.5"]).optim.lr == 0.5
    changed = r.updated({"optim.lr": 0.5, "run.log_every": 3, "data.num_workers": 1})
    assert resume_changes(prior, changed) == ["optim.lr"]
    assert {"run.log_every", "data.num_workers"} <= RESUME_FREE_FIELDS
    with pytest.raises(UsageError, match="not a run directory"):
        load_run_recipe(tmp_path / "nothing")
