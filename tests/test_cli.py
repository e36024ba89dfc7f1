"""The CLI: each command, and bad input of each kind ending in one line and exit code 2."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import FAST, run_distill


def sets(*items: str) -> list[str]:
    return [a for s in items for a in ("--set", s)]


def one_error(res) -> str:
    assert res.code == 2, (res.code, res.out, res.err)
    lines = [ln for ln in res.err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.err
    assert "Traceback" not in res.err
    return lines[0]


def test_recipe_show_applies_overrides_and_shortcuts(cli, smoke):
    res = cli("recipe", "show", smoke, "--set", "optim.lr=0.01", "--teacher",
              "timm:resnet18", "--loss", "token")
    assert res.code == 0, res.err
    shown = yaml.safe_load(res.out)
    assert shown["optim"]["lr"] == 0.01 and shown["teacher"]["name"] == "timm:resnet18"
    assert shown["run"]["out"] == "runs/smoke"


def test_recipe_validate_many_and_schema(cli, smoke, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss: {name: tokn}\n")
    res = cli("recipe", "validate", smoke, bad)
    assert res.code == 2 and f"ok  {smoke}" in res.err
    assert "loss.name: unknown loss 'tokn'; did you mean 'token'?" in res.err
    res = cli("recipe", "schema")
    assert res.code == 0 and json.loads(res.out)["title"] == "Recipe"


@pytest.mark.parametrize("args,needle", [
    (["recipe", "show", "{smoke}", "--set", "optim.lr=abc"], "optim.lr: Input should be a valid"),
    (["recipe", "show", "{smoke}", "--set", "optim.lrr=1"], "optim.lrr: unknown field (got 1)"),
    (["recipe", "show", "{smoke}", "--teacher", "timm:regnety160"],
     "teacher.name: unknown timm model 'regnety160'; did you mean 'regnety_160'"),
    (["recipe", "show", "{smoke}", "--student", "deit_tiny"], "student.name: unknown student"),
    (["recipe", "show", "{tmp}/missing.yaml"], "recipe file not found"),
    (["recipe", "show", "{smoke}", "--set", "nonsense"], "expected KEY=VALUE"),
    (["train", "{smoke}", "--teacher", "checkpoint:{tmp}/no_run", "--out", "{tmp}/o"],
     "teacher.name: no trained model at '{tmp}/no_run'"),
    (["train", "{smoke}", "--init", "{tmp}/nothing.safetensors", "--out", "{tmp}/o"],
     "student.init: file not found"),
    (["train", "{smoke}", "--set", "data.name=fashion_mnist", "--set", "data.options={{}}",
      "--set", "data.root={tmp}/nope", "--out", "{tmp}/o"],
     "data.root: folder not found (got '{tmp}/nope')"),
    (["eval", "{tmp}"], "not a run directory"),
    (["recipe", "validate", "{smoke}", "--student", "cifar_resnet8", "--loss", "none",
      "--set", "student.kwargs={{}}"], "does not accept 'drop_path_rate'"),
    (["recipe", "validate", "{smoke}", "--set", "data.img_size=30"],
     "student: 'deit_tiny_distilled_patch16_224' cannot be built for 30² 3-channel images"),
    (["recipe", "validate", "{smoke}", "--set", "student.kwargs.num_heads=5"],
     "embed_dim 48 is not divisible by num_heads 5"),
    (["train", "{smoke}", "--init", "{tmp}/wrong.safetensors", "--out", "{tmp}/o"],
     "student.init: '{tmp}/wrong.safetensors' does not fit 'deit_tiny_distilled_patch16_224' "
     "(shape patch_embed.proj.weight (48, 3, 4, 4) != (48, 3, 8, 8))"),
    (["train", "{smoke}", "--set", "teacher.weights={tmp}/wrong.safetensors", "--out", "{tmp}/o"],
     "does not fit timm:test_resnet"),
    (["train", "{smoke}", "--out", "{tmp}/a_file/run"], "--out: cannot create"),
    (["list", "students", "zzzz_no_match"], "no students match 'zzzz_no_match'"),
])
def test_bad_input_is_one_line_and_exit_2(cli, smoke, tmp_path, args, needle):
    from distill.checkpoint import save_weights
    from distill.student import build_student

    wrong = build_student("deit_tiny_distilled_patch16_224", img_size=32, patch_size=4,
                          embed_dim=48, depth=2, num_heads=2, num_classes=10)
    save_weights(tmp_path / "wrong.safetensors", wrong.state_dict())
    (tmp_path / "a_file").write_text("not a folder")
    args = [a.format(smoke=smoke, tmp=tmp_path) for a in args]
    line = one_error(cli(*args))
    assert needle.format(tmp=tmp_path) in line


def test_list_commands(cli):
    res = cli("list", "students")
    assert res.code == 0 and "deit_base_distilled_patch16_224" in res.out
    assert "distilled" in res.out
    res = cli("list", "teachers", "regnety_16")
    assert "timm:regnety_160" in res.out and "checkpoint:<...>" not in res.out
    res = cli("list", "teachers")
    assert "checkpoint:<...>" in res.out and "python:<...>" in res.out
    res = cli("list", "teachers", "resnet18", "--source", "torchvision")
    assert "torchvision:resnet18" in res.out and "timm:" not in res.out
    res = cli("list", "losses")
    assert all(n in res.out for n in ("none", "soft", "hard", "token"))
    res = cli("list", "datasets")
    assert "fashion_mnist" in res.out


@pytest.mark.integration
def test_train_then_refuse_overwrite_then_eval_and_report(cli, smoke, tmp_path):
    out = tmp_path / "run"
    res = cli("train", smoke, "--out", out, *sets(*FAST, "schedule.epochs=1"))
    assert res.code == 0, res.err
    assert "top1" in res.out  # the summary table
    again = cli("train", smoke, "--out", out, *sets(*FAST, "schedule.epochs=1"))
    assert "already holds a run; pass --resume" in one_error(again)
    ev = cli("eval", out, "--json")
    assert ev.code == 0, ev.err
    summary = json.loads((out / "summary.json").read_text())
    assert json.loads(ev.out)["top1"] == pytest.approx(summary["top1"])
    rep = cli("report", out, out)
    assert rep.code == 0 and rep.out.count("deit_tiny_distilled") == 2


@pytest.mark.integration
def test_console_script_exit_code_from_outside(tmp_path):
    res = run_distill("recipe", "show", "recipes/smoke.yaml", "--set", "loss.alpha=2")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "loss.alpha" in res.stderr
    assert "Traceback" not in res.stderr


def test_teacher_class_count_mismatch_is_caught_before_training(cli, smoke, tmp_path):
    out = tmp_path / "run"
    res = cli("train", smoke, "--out", out, "--set", "teacher.kwargs={}")
    line = one_error(res)
    assert "'timm:test_resnet' predicts 1000 classes but data.num_classes is 10" in line
    assert not out.exists()  # nothing written


def _hostile_files(tmp_path, smoke):
    """Files that are not what a command expects, as a new user might hand them over."""
    (tmp_path / "latin1.yaml").write_bytes(smoke.read_bytes() + "# café\n".encode("latin-1"))
    (tmp_path / "binary.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (tmp_path / "twice.yaml").write_text(smoke.read_text() + "loss: {name: none}\n")
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "empty").write_text("")
    bomb = "lol: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"l{i}: &l{i} [" + ", ".join([f"*{'a' if i == 0 else f'l{i - 1}'}"] * 9) + "]\n"
        for i in range(10))
    (tmp_path / "bomb.yaml").write_text(smoke.read_text() + bomb)
    run = tmp_path / "run"  # a run directory whose recipe.yaml is damaged
    run.mkdir()
    (run / "recipe.yaml").write_bytes(b"data:\n  name: synthetic\n\xff\xfe garbage\n")
    for name, content in {"garbage": b'{"top1": 9', "list": b"[1, 2]", "binary": b"\xff\x00",
                          "text": b'{"top1": "high"}', "ok": b'{"top1": 1.0}'}.items():
        (tmp_path / f"sum_{name}").mkdir()
        (tmp_path / f"sum_{name}" / "summary.json").write_bytes(content)
    (tmp_path / "sum_ok" / "metrics.jsonl").write_bytes(b'{"kind": "epoch"}\n\xff\n')
    for name, content in {"garbage": b"{oops", "binary": b"\xff\xfe\x00\x01"}.items():
        (tmp_path / f"cache_{name}").mkdir()
        (tmp_path / f"cache_{name}" / "manifest.json").write_bytes(content)


@pytest.mark.parametrize("args,needle", [
    (["recipe", "show", "{tmp}/latin1.yaml"], "{tmp}/latin1.yaml: not UTF-8 text (byte 0xe9"),
    (["recipe", "validate", "{tmp}/binary.yaml"], "{tmp}/binary.yaml: not a text file"),
    (["recipe", "show", "{tmp}/folder.yaml"], "{tmp}/folder.yaml: is a folder, not a recipe"),
    (["recipe", "validate", "{tmp}/twice.yaml", "--no-paths"],
     "twice.yaml: line {last}: duplicate key 'loss' (first on line "),
    (["train", "{tmp}/bomb.yaml"], "bomb.yaml: line {l4}: expands to more than 100,000 values"),
    (["cache", "build", "{tmp}/latin1.yaml", "--out", "{tmp}/c"], "not UTF-8 text"),
    (["speed", "{tmp}/twice.yaml"], "duplicate key 'loss'"),
    (["bench", "{tmp}/binary.yaml"], "not a text file"),
    (["recipe", "show", "{smoke}", "--set", "data.options={{seed: 1, seed: 2}}"],
     "--set 'data.options={{seed: 1, seed: 2}}': duplicate key 'seed'"),
    (["eval", "{tmp}/run"], "{tmp}/run/recipe.yaml: not UTF-8 text (byte 0xff at offset 24)"),
    (["report", "{tmp}/sum_garbage"], "{tmp}/sum_garbage/summary.json: not valid JSON"),
    (["report", "{tmp}/sum_list"], "summary.json: expected a JSON object, got list"),
    (["report", "{tmp}/sum_binary"], "{tmp}/sum_binary/summary.json: not a text file"),
    (["report", "{tmp}/sum_text"], "summary.json: top1: expected a number (got 'high')"),
    (["report", "{tmp}/sum_ok", "--plot", "{tmp}/x.png"],
     "--plot: {tmp}/sum_ok/metrics.jsonl: not UTF-8 text"),
    (["report", "{tmp}/sum_ok", "--plot", "{tmp}/folder.png"],
     "--plot: '{tmp}/folder.png' is a folder"),
    (["cache", "inspect", "{tmp}", "--sample", "-3"], "--sample: must be at least 0, got -3"),
    (["cache", "verify", "{tmp}", "--live", "-1"], "--live: must be at least 0, got -1"),
    (["cache", "inspect", "{tmp}/cache_garbage"], "is not a valid manifest"),
    (["cache", "inspect", "{tmp}/cache_binary"], "manifest.json: not a text file"),
    (["cache", "verify", "{tmp}/cache_binary"], "manifest.json: not a text file"),
    (["recipe", "validate", "{smoke}", "--teacher", "cache:{tmp}/cache_binary"],
     "manifest.json: not a text file"),
    (["cache", "build", "{smoke}", "--out", "{tmp}/empty"],
     "--out: '{tmp}/empty' is a file, not a folder"),
    (["cache", "build", "{smoke}", "--out", "{tmp}/empty/c"],
     "--out: '{tmp}/empty' in '{tmp}/empty/c' is a file, not a folder"),
    (["bench", "{smoke}", "--out", "{tmp}/empty"], "--out: '{tmp}/empty' is a file, not a folder"),
    (["speed", "{smoke}", "--steps", "0"], "--steps: must be at least 1, got 0"),
    (["bench", "{smoke}", "--seeds", "9" * 30, "--out", "{tmp}/b"],
     "run.seed: Input should be less than or equal to 9223372036854775807"),
    (["recipe", "validate", "{smoke}", "--set", "student.init=" + "x" * 5000],
     "student.init: cannot look at 'xxx"),
    (["recipe", "show", "x" * 5000], "cannot look at the recipe file (File name too long)"),
])
def test_hostile_input_to_every_command_is_one_line(cli, smoke, tmp_path, args, needle):
    _hostile_files(tmp_path, smoke)
    args = [a.format(smoke=smoke, tmp=tmp_path) for a in args]
    n = len(smoke.read_text().splitlines())  # the lines appended start after the recipe's
    assert needle.format(tmp=tmp_path, last=n + 1, l4=n + 6) in one_error(cli(*args))


@pytest.mark.parametrize("args,needle", [
    (["train", "{smoke}", "--bogus"], "No such option: --bogus"),
    (["train", "{smoke}", "--lose", "hard"], "(Possible options: --loss"),
    (["train"], "Missing argument 'recipe'. (see: distill train --help)"),
    (["eval"], "Missing argument"),
    (["cache", "inspect", "{tmp}", "--sample", "abc"],
     "Invalid value for '--sample': Input should be a valid integer"),
    (["list", "nothing"], "Invalid value for 'kind': 'nothing' is not one of 'teachers'"),
    (["bench", "{smoke}", "--losses"], "Option '--losses' requires an argument"),
    (["nocmd"], "No such command 'nocmd'. (see: distill --help)"),
    (["cache", "nocmd"], "No such command 'nocmd'. (see: distill cache --help)"),
    (["recipe", "show", "{smoke}", "extra"], "unexpected extra argument"),
    (["speed", "{smoke}", "--steps", "1.5"], "Invalid value for '--steps'"),
])
def test_usage_errors_are_one_line_naming_the_command(cli, smoke, tmp_path, args, needle):
    """What click itself refuses (unknown option, missing or bad argument) is one line
    too, exit 2, with the command whose --help lists what it takes."""
    res = cli(*[a.format(smoke=smoke, tmp=tmp_path) for a in args])
    assert res.code == 2 and needle in one_error(res), res.err
    assert "Usage:" not in res.err and "╭" not in res.err


def test_bare_distill_and_help_show_the_help(cli):
    res = cli()
    assert "Usage: distill" in res.out + res.err and "train" in res.out + res.err
    res = cli("train", "--help")
    assert res.code == 0 and "--resume" in res.out


def test_a_swapped_teacher_prints_one_note_naming_what_it_dropped(cli, smoke):
    res = cli("recipe", "show", smoke, "--teacher", "timm:vit_tiny_patch16_224")
    assert res.code == 0, res.err
    assert yaml.safe_load(res.out)["teacher"]["input_size"] is None
    (note,) = res.err.strip().splitlines()
    assert note.startswith("note: teacher 'timm:vit_tiny_patch16_224' replaces the recipe's "
                           "'timm:test_resnet'; the old teacher's teacher.input_size=32, "
                           'teacher.kwargs={"num_classes": 10} are dropped')
    res = cli("recipe", "show", smoke, "--teacher", "timm:vit_tiny_patch16_224",
              "--set", "teacher.input_size=32", "--set", "teacher.kwargs={}")
    assert res.code == 0 and res.err == "" and yaml.safe_load(res.out)["teacher"]["input_size"] == 32


def test_bench_says_once_what_a_swapped_teacher_drops(cli, smoke, tmp_path, monkeypatch):
    import distill.cli.bench as bench_cli

    def stop(*a, **k):  # the plan and its notes are what is tested, not the training
        raise KeyboardInterrupt

    monkeypatch.setattr(bench_cli, "run_cells", stop)
    res = cli("bench", smoke, "--losses", "hard,soft", "--seeds", "0,1",
              "--teachers", "timm:vit_tiny_patch16_224", "--out", tmp_path / "b")
    notes = [ln for ln in res.err.splitlines() if ln.startswith("note: teacher")]
    assert len(notes) == 1, res.err
    assert "'timm:vit_tiny_patch16_224' replaces the recipe's 'timm:test_resnet'" in notes[0]
    assert "teacher.input_size=32" in notes[0]
