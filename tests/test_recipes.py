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


# The 300-epoch trainings; fine-tunes at another resolution (`*_384.yaml`) are tested below.
@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "recipes" / "imagenet").glob("*.yaml")
                                        if not p.stem.endswith("_384")),
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


def test_the_384_fine_tune_is_the_224_recipe_with_the_official_fine_tuning_settings():
    """DeiT-B⚗↑384: the 224 recipe but for the official fine-tuning command's settings
    (30 epochs, lr 5e-6 per 512 images, weight decay 1e-8, min lr 5e-6, 32 images per GPU),
    the 384-pixel input of student and teacher, and the 224 run's weights as its start."""
    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict) and v:
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    base = dict(flat(load_recipe(ROOT / "recipes/imagenet/deit_base_token.yaml").model_dump(mode="json")))
    fine = load_recipe(ROOT / "recipes/imagenet/deit_base_token_384.yaml")
    tuned = dict(flat(fine.model_dump(mode="json")))
    assert {k: v for k, v in tuned.items() if base.get(k) != v and k != "run.out"} == {
        "data.img_size": 384, "data.batch_size": 32, "teacher.input_size": 384,
        "student.init": "runs/imagenet/deit_base_token/model.safetensors",
        "optim.lr": 5e-6, "optim.weight_decay": 1e-8,
        "schedule.epochs": 30, "schedule.min_lr": 5e-6}
    # where the 224 recipe writes its weights, unless --out said otherwise
    assert default_out(ROOT / "recipes/imagenet/deit_base_token.yaml") / "model.safetensors" == \
        Path(tuned["student.init"])
    assert fine.student_kwargs()["img_size"] == 384


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

    from distill.student import build_student
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


# -- hostile recipe text: refused with one short line, fast ------------------------------
def one_line(path_or_none, sets=(), **shortcuts) -> str:
    (line,) = errors(path_or_none, sets, **shortcuts)
    assert "\n" not in line and len(line) < 400, line
    return line


def test_a_recipe_that_is_not_utf8_text_is_refused(tmp_path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes(SMOKE.read_bytes() + "# café\n".encode("latin-1"))
    assert one_line(p) == (f"{p}: not UTF-8 text (byte 0xe9 at offset "
                           f"{len(SMOKE.read_bytes()) + 5}); a recipe is UTF-8 text")
    binary = tmp_path / "weights.yaml"
    binary.write_bytes(b"data:\n  name: synthetic\n\x00\x01\x02\xff")
    assert one_line(binary).startswith(f"{binary}: not a text file (a NUL byte at offset 24)")
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    assert one_line(folder) == f"{folder}: is a folder, not a recipe"
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + SMOKE.read_bytes())  # a byte-order mark is fine
    assert load_recipe(bom).data.num_classes == 10


@pytest.mark.parametrize("text,line,first", [
    ("data: {name: synthetic}\nloss: {name: none}\ndata: {num_classes: 3}\n", 3, 1),
    ("data:\n  name: synthetic\n  num_classes: 10\n  num_classes: 3\n", 4, 3),
    ("student:\n  kwargs:\n    depth: 2\n    depth: 3\n", 4, 3),
    ("augment:\n  scale: [0.5, 1.0]\n  re_prob: 0.1\n  'scale': [0.1, 1.0]\n", 4, 2),
], ids=["top-level", "nested", "two-deep", "quoted"])
def test_a_key_given_twice_is_an_error(tmp_path, text, line, first):
    p = tmp_path / "twice.yaml"
    p.write_text(text)
    found = one_line(p)
    assert found.startswith(f"{p}: line {line}: duplicate key '")
    assert found.endswith(f"' (first on line {first})")


def test_a_key_given_twice_in_a_set_value_is_an_error():
    assert one_line(None, ["data.options={seed: 1, seed: 2}"]) == (
        "--set 'data.options={seed: 1, seed: 2}': duplicate key 'seed' (first on line 1)")
    # A merge key's fields may be overridden: that is no duplicate.
    r = load_recipe(None, ["data.options={<<: {seed: 1, noise: 0.1}, seed: 2}"], loss="none",
                    student="deit_tiny_patch16_224")
    assert r.data.options == {"seed": 2, "noise": 0.1}


def test_a_huge_recipe_is_refused_fast_without_reading_it(tmp_path):
    import time

    p = tmp_path / "huge.yaml"
    with p.open("w") as f:
        f.write("data:\n  options:\n")
        line = "    k: [" + ", ".join(["1"] * 500) + "]\n"
        for _ in range((50 << 20) // len(line)):
            f.write(line)
    t0 = time.perf_counter()
    line = one_line(p)
    assert time.perf_counter() - t0 < 1.0
    assert line == f"{p}: 50.0 MB; a recipe is at most 256 KB (is this the right file?)"


@pytest.mark.parametrize("bomb", [
    # billion laughs: 9**10 values from ten lines
    "lol: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"l{i}: &l{i} [" + ", ".join([f"*{'a' if i == 0 else f'l{i - 1}'}"] * 9) + "]\n"
        for i in range(10)),
    # the same with merge keys
    "m0: &m0 {a: 1, b: 2, c: 3}\n" + "".join(
        f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 6)}], k{i}: 1}}\n" for i in range(1, 14)),
    # mappings of aliases
    "a: &a {x: lol, y: lol, z: lol, w: lol}\n" + "".join(
        f"a{i}: &a{i} {{x: *{'a' if i == 0 else f'a{i - 1}'}, y: *{'a' if i == 0 else f'a{i - 1}'}, "
        f"z: *{'a' if i == 0 else f'a{i - 1}'}, w: *{'a' if i == 0 else f'a{i - 1}'}}}\n"
        for i in range(16)),
], ids=["sequences", "merge-keys", "mappings"])
def test_an_alias_bomb_is_refused_fast(tmp_path, bomb):
    import time

    p = tmp_path / "bomb.yaml"
    p.write_text("data:\n  name: synthetic\n" + bomb)
    t0 = time.perf_counter()
    line = one_line(p)
    assert time.perf_counter() - t0 < 0.5
    assert "expands to more than 100,000 values" in line and line.startswith(f"{p}: line ")
    with pytest.raises(UsageError, match="expands to more than"):
        load_recipe(None, ["data.options=" + bomb.replace("\n", ", ").join("{}")])


def test_recursive_aliases_and_deep_nesting_are_refused(tmp_path):
    p = tmp_path / "loop.yaml"
    p.write_text("data: &d\n  options: *d\n")
    assert "a recursive alias" in one_line(p)
    deep = tmp_path / "deep.yaml"
    for depth in (70, 100_000):
        deep.write_text("data:\n  options: {x: " + "[" * depth + "]" * depth + "}\n")
        assert one_line(deep).startswith(f"{deep}: line 2: ")
    assert "nested more than 64 levels deep" in one_line(None, ["data.options=" + "[" * 80 + "]" * 80])


@pytest.mark.parametrize("text", [
    "run:\n  seed: " + "9" * 5000 + "\n",  # past Python's int digit limit
    "run:\n  seed: 2024-13-45\n",  # a date that is not one
    "data:\n  name: !!python/object/apply:os.system [ls]\n",
    "data:\n  name: \x07\n",
    'data:\n  root: "a\\0b"\n',  # a NUL by escape: no path holds one
], ids=["huge-int", "bad-date", "python-tag", "control-char", "nul-escape"])
def test_yaml_that_python_cannot_build_is_one_line(tmp_path, text):
    p = tmp_path / "odd.yaml"
    p.write_text(text)
    assert one_line(p).startswith(f"{p}: ")


def test_a_huge_value_is_shown_as_a_short_excerpt(tmp_path):
    p = tmp_path / "long.yaml"
    huge = "y" * 200_000
    for text in (f"data:\n  name: {huge}\n", f"data:\n  mean: {huge}\n",
                 f"student:\n  kwargs: {{depth: {huge}}}\n", f"teacher:\n  name: timm:{huge}\n",
                 "data:\n  mean: [" + ", ".join(["abc"] * 20000) + "]\n",
                 "data:\n  " + "".join(f"k{i}: {huge[:100]}\n  " for i in range(500))):
        p.write_text(text)
        with pytest.raises(UsageError) as exc:
            load_recipe(p, loss="none", student="deit_tiny_patch16_224")
        assert 1 <= len(exc.value.lines) <= 2
        for line in exc.value.lines:
            assert "y" * 161 not in line and len(line) < 600 and "\n" not in line, line
    with pytest.raises(UsageError) as exc:
        load_recipe(None, [f"data.name=a\nb {huge}"], loss="none")
    assert all("\n" not in line and len(line) < 600 for line in exc.value.lines)


def test_many_problems_are_at_most_ten_lines():
    lines = errors(None, [f"optim.x{i}=1" for i in range(30)] +
                   [f"run.y{i}={i}" for i in range(2)] + [f"data.z{i}=1" for i in range(3)])
    assert "recipe: optim: unknown fields 'x0', 'x1', 'x2' and 27 more" in lines
    assert len(lines) == 6  # optim, run.y0, run.y1, data.z0..z2
    lines = errors(None, [f"loss.bad{i}={i}" for i in range(3)] +
                   [f"{s}.lr=x" for s in ("data", "student", "teacher", "optim", "schedule",
                                          "augment", "run")] + ["loss.alpha=9"] * 2)
    assert len(lines) == 10 and lines[-1] == "... and 2 more problems"


# -- the teacher swap ---------------------------------------------------------------------
def test_swapping_the_teacher_drops_the_old_teachers_model_fields():
    base = load_recipe(SMOKE)
    assert (base.teacher.input_size, base.teacher.kwargs) == (32, {"num_classes": 10})
    notes: list[str] = []
    r = load_recipe(SMOKE, ["teacher.pretrained=false", "teacher.mix_targets=interpolate"],
                    teacher="timm:vit_tiny_patch16_224", note=notes.append)
    assert r.teacher.name == "timm:vit_tiny_patch16_224"
    assert (r.teacher.input_size, r.teacher.kwargs, r.teacher.mean) == (None, {}, None)
    assert r.teacher.mix_targets == "interpolate" and r.teacher.pretrained is False
    (note,) = notes
    assert note == ("teacher 'timm:vit_tiny_patch16_224' replaces the recipe's "
                    "'timm:test_resnet'; the old teacher's teacher.input_size=32, "
                    'teacher.kwargs={"num_classes": 10} are dropped (the new teacher\'s own '
                    "apply; set one with --set teacher.FIELD=VALUE)")
    # `--set teacher.name=…` is a swap too; what the command line sets itself is kept.
    notes.clear()
    r = load_recipe(SMOKE, ["teacher.name=timm:vit_tiny_patch16_224", "teacher.input_size=64",
                            "teacher.kwargs.num_classes=10"], note=notes.append)
    assert (r.teacher.input_size, r.teacher.kwargs) == (64, {"num_classes": 10})
    assert notes == []  # nothing of the file's was dropped
    # The recipe's own teacher: nothing changes.
    assert load_recipe(SMOKE, teacher="timm:test_resnet", note=notes.append) == base
    assert notes == []


def test_a_swapped_teacher_builds_at_its_own_input_size():
    import torch

    from distill.engine import build_teacher_for, resolve_runtime

    r = load_recipe(SMOKE, ["teacher.pretrained=false", "teacher.kwargs.num_classes=10",
                            "run.device=cpu"], teacher="timm:test_vit")
    teacher = build_teacher_for(r, resolve_runtime(r))
    assert teacher.size == (160, 160)  # test_vit's own, not the recipe's old 32
    with torch.inference_mode():
        out = teacher(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


@pytest.mark.parametrize("override,needle", [
    ("data.img_size=100000000000", "data.img_size: Input should be less than or equal to 4096"),
    ("teacher.input_size=99999", "teacher.input_size: Input should be less than or equal"),
    ("data.batch_size=10000000", "data.batch_size: Input should be less than or equal to 65536"),
    ("loss.tau=.inf", "loss.tau: Input should be a finite number"),
    ("optim.lr=.nan", "optim.lr: Input should be a finite number"),
    ("augment.re_count=100000", "augment.re_count: Input should be less than or equal"),
])
def test_sizes_are_bounded_and_numbers_finite(override, needle):
    """A typo of a few digits is refused by the recipe, before it asks for terabytes."""
    (line,) = errors(SMOKE, [override])
    assert needle in line, line
