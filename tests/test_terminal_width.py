"""What a terminal shows: the summaries of `train`, `eval`, `report` and `bench` at 80
columns, where nothing is cut (no line wider than the terminal, no value ending in "…"),
and at 200 columns or in a file, where the full tables are printed as before."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from tests.conftest import FAST

STUDENT = "deit_tiny_distilled_patch16_224"
HEADERS = ["run", "student", "loss", "teacher", "top1", "top1_cls", "top1_dist",
           "teacher_top1", "params", "train img/s", "eval img/s", "wall s"]


class _Tty:
    """Whatever `sys.stdout` is when written to (pytest's capture), taken for a tty."""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def terminal(width: int) -> Console:
    """A console that takes itself for a terminal of `width` columns (no colours), writing
    to whatever `sys.stdout` is when it prints (pytest's capture)."""
    return Console(file=_Tty(), width=width, force_terminal=True, color_system=None,
                   legacy_windows=False)


def assert_fits(text: str, width: int = 80) -> None:
    assert text.strip(), "nothing printed"
    assert "…" not in text, text
    wide = [ln for ln in text.splitlines() if cell_len(ln.rstrip()) > width]
    assert not wide, "\n".join(wide)


def summary(top1: float = 7.03125, **kw) -> dict:
    return {"top1": top1, "top1_cls": 44.53125, "top1_dist": 7.03125,
            "eval_images_per_s": 2608.3, "teacher": "timm:test_resnet",
            "teacher_top1": 7.03125, "student": STUDENT, "loss": "token", "params": 67844,
            "epochs": 2, "train_size": 256, "train_images_per_s": 568.8,
            "wall_time_s": 1.07, "device": "cpu"} | kw


def make_run(folder: Path, **kw) -> Path:
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary(**kw)))
    return folder


@pytest.fixture
def at(monkeypatch):
    """Make the commands' consoles terminals of the given width."""

    def set_width(width: int) -> None:
        import distill.cli.bench
        import distill.cli.eval
        import distill.cli.report

        for module in (distill.cli.report, distill.cli.eval, distill.cli.bench):
            monkeypatch.setattr(module, "console", terminal(width))

    return set_width


# -- report (and train, which prints the same table) ------------------------------------------
def test_report_of_two_runs_at_80_columns_keeps_the_key_columns(cli, at, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path / "a")
    make_run(tmp_path / "b", top1=12.5)
    at(80)
    res = cli("report", "a", "b")
    assert res.code == 0, res.err
    assert_fits(res.out)
    lines = res.out.splitlines()
    rows = [ln.split() for ln in lines if ln.split()[:1] in (["a"], ["b"])]
    assert [r[:3] for r in rows] == [["a", STUDENT, "token"], ["b", STUDENT, "token"]]
    assert [r[3:6] for r in rows] == [["7.03", "44.53", "7.03"], ["12.50", "44.53", "7.03"]]
    # the columns left out are named, with the file that holds them all
    note = " ".join(ln.strip() for ln in lines if ln.split()[:1] not in (["a"], ["b"]))
    assert "not shown at 80 columns" in note and "teacher" in note and "summary.json" in note


def test_report_of_runs_with_long_names_at_80_columns_is_one_block_per_run(cli, at, tmp_path,
                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)  # run names of 42 characters: the key columns do not fit
    runs = [make_run(Path("a_run_folder_with_a_rather_long_name") / f"seed{i}", top1=t)
            for i, t in ((0, 7.03125), (1, 12.5))]
    at(80)
    res = cli("report", *runs)
    assert res.code == 0, res.err
    assert_fits(res.out)
    rows = [ln.strip().split(maxsplit=1) for ln in res.out.splitlines() if ln.strip()]
    assert [v.strip() for k, v in rows if k == "run"] == [str(r) for r in runs]
    for label in ("student", "loss", "teacher", "top1", "top1_cls", "top1_dist", "params"):
        assert [k for k, _ in rows].count(label) == 2, rows  # every figure, for each run
    assert [v.strip() for k, v in rows if k == "top1"] == ["7.03", "12.50"]
    assert res.out.count(STUDENT) == 2 and "67,844" in res.out and "2608" in res.out
    assert "not shown" not in res.out
    # a name wider than the terminal wraps in its column, whole
    far = make_run(tmp_path / ("x" * 90))
    res = cli("report", far, far)
    assert res.code == 0, res.err
    assert_fits(res.out)
    assert "".join(ln.split()[-1] for ln in res.out.splitlines()[:2]) == "x" * 90


def test_one_run_at_80_columns_is_label_value_rows(cli, at, tmp_path):
    run = make_run(tmp_path / "one")
    at(80)
    res = cli("report", run)
    assert res.code == 0, res.err
    assert_fits(res.out)
    rows = {ln.split()[0]: ln.split()[1:] for ln in res.out.splitlines() if ln.strip()}
    assert rows["student"] == [STUDENT] and rows["loss"] == ["token"]
    assert rows["teacher"] == ["timm:test_resnet"]
    assert rows["top1"] == ["7.03"] and rows["top1_cls"] == ["44.53"]
    assert rows["top1_dist"] == ["7.03"] and rows["params"] == ["67,844"]
    assert rows["train"] == ["img/s", "569"] and rows["wall"] == ["s", "1"]


FILES = ["file", "FORCE_COLOR=1", "TTY_COMPATIBLE=1"]  # colours asked for: still a file


def _into_a_file(monkeypatch, where: str) -> None:
    """Output to a pipe or a log file (pytest's capture), with `where`'s variable set."""
    monkeypatch.setenv("COLUMNS", "80")
    if "=" in where:
        monkeypatch.setenv(*where.split("="))


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.mark.parametrize("where", ["terminal", *FILES])
def test_wide_terminals_and_files_get_the_full_table(cli, at, tmp_path, monkeypatch, where):
    runs = [make_run(tmp_path / "a"), make_run(tmp_path / "b")]
    if where == "terminal":
        monkeypatch.chdir(tmp_path)
        at(200)
    else:  # a pipe or a log file: every column, whatever COLUMNS says or the names' length
        _into_a_file(monkeypatch, where)
    res = cli("report", *runs)
    assert res.code == 0, res.err
    res.out = _plain(res.out)
    assert "…" not in res.out
    (header,) = [ln for ln in res.out.splitlines() if ln.split()[:1] == ["run"]]
    assert header.split() == " ".join(HEADERS).split()
    assert res.out.count(STUDENT) == 2 and "not shown" not in res.out


# -- bench -----------------------------------------------------------------------------------
def _bench_rows(cells) -> list[dict]:
    method = {"none": "no distillation", "token": "DeiT⚗ distillation token, hard"}
    return [{"loss": c.loss, "method": method[c.loss], "teacher": c.teacher,
             "student": c.student, "seed": c.seed, "top1": 25.78 if c.loss == "none" else 7.03,
             "top1_cls": None if c.loss == "none" else 44.53,
             "top1_dist": None if c.loss == "none" else 7.03,
             "teacher_top1": None if c.loss == "none" else 7.03, "params": 67844,
             "gflops": 0.00114, "train_images_per_s": 349.0, "eval_images_per_s": 2186.0,
             "infer_images_per_s": 6337.0, "wall_time_s": 2.0, "epochs": 2, "train_size": 256,
             "device_name": "cpu", "precision": "fp32", "run_dir": str(c.recipe.run.out)}
            for c in cells]


@pytest.fixture
def bench_run(cli, smoke, tmp_path, monkeypatch):
    """`distill bench` of two cells whose training is skipped (their rows made up)."""
    import distill.cli.bench

    monkeypatch.setattr(distill.cli.bench, "run_cells",
                        lambda cells, **kw: _bench_rows(cells))

    def run():
        return cli("bench", smoke, "--losses", "none,token", "--out", tmp_path / "bench",
                   "--no-plot")

    return run


def test_bench_results_at_80_columns(bench_run, at, tmp_path):
    at(80)
    res = bench_run()
    assert res.code == 0, res.err
    assert_fits(res.out)
    for text in ("no distillation", "DeiT⚗ distillation token, hard: class head", "25.78",
                 "44.53", "timm:test_resnet", "-18.75", "results.md"):
        assert text in res.out, text
    # the columns that did not fit are named, with the files that hold them
    assert "not shown at 80 columns" in res.out and "model img/s" in res.out


@pytest.mark.parametrize("where", ["terminal", *FILES])
def test_bench_results_unchanged_in_wide_terminals_and_files(bench_run, at, tmp_path,
                                                            monkeypatch, where):
    if where == "terminal":
        at(300)
    else:
        _into_a_file(monkeypatch, where)
    res = bench_run()
    assert res.code == 0, res.err
    md = (tmp_path / "bench" / "results.md").read_text()
    assert md in _plain(res.out)  # the markdown itself, unwrapped


def _live(smoke, tmp_path, width: int) -> str:
    from distill.bench import plan_cells
    from distill.cli.bench import LiveBench

    cells = plan_cells(smoke, losses="none,token", out=tmp_path)
    bench = LiveBench(cells, terminal(width))
    rep = bench.cell_start(cells[0], 0)
    rep.start(epochs=2, start_epoch=0, steps_per_epoch=4, info={})
    rep.epoch({"epoch": 0, "train_loss": 1.0, "train_images_per_s": 321.0, "top1": 55.5})
    bench.cell_done(cells[1], 1, {"train_images_per_s": 99.0, "top1": 60.0, "top1_cls": 59.0,
                                  "top1_dist": 61.0, "teacher_top1": 70.0}, ran=False)
    buf = io.StringIO()
    Console(file=buf, width=width).print(bench.table())
    return buf.getvalue()


def test_live_bench_table_at_80_columns(smoke, tmp_path):
    text = _live(smoke, tmp_path, 80)
    assert_fits(text)
    for value in ("none", "token", "timm:test_resnet", "epoch 2/2", "done before", "55.50",
                  "60.00", "59.00", "61.00"):
        assert value in text, value
    assert "not shown at 80 columns" in text and "student" in text
    wide = _live(smoke, tmp_path, 200)
    assert STUDENT in wide and "teacher top1" in wide and "not shown" not in wide


def _live_24(smoke, tmp_path, teachers: str, *, seeds: str = "0,1,2", running: int = -1
             ) -> tuple[str, list]:
    """The live table of `none,token × teachers × seeds` at 80×24 with every cell done but
    `running`, which trains; the lines a terminal of 24 rows shows of it."""
    from distill.bench import plan_cells
    from distill.cli.bench import LiveBench

    cells = plan_cells(smoke, losses="none,token", teachers=teachers, seeds=seeds, out=tmp_path)
    con = Console(file=_Tty(), width=80, height=24, force_terminal=True, color_system=None,
                  legacy_windows=False)
    bench = LiveBench(cells, con)
    running = running % len(cells)
    for i, cell in enumerate(cells):
        if i != running:
            bench.cell_done(cell, i, {"train_images_per_s": 99.0, "top1": 60.0 + i,
                                      "top1_cls": 59.0, "top1_dist": 61.0,
                                      "teacher_top1": 70.0}, ran=True)
    rep = bench.cell_start(cells[running], running)
    rep.start(epochs=2, start_epoch=0, steps_per_epoch=4, info={})
    buf = io.StringIO()
    Console(file=buf, width=80, height=24, legacy_windows=False).print(bench.table())
    return buf.getvalue(), cells


@pytest.mark.parametrize("teachers", [
    "timm:convnext_tiny.fb_in22k_ft_in1k",
    "ensemble:0.7*timm:test_resnet+0.3*timm:test_efficientnet",
    "checkpoint:runs/some/very/long/experiment/folder/regnety_160_finetuned_on_fmnist_seed0"])
def test_live_bench_table_at_80x24_is_one_row_per_cell(smoke, tmp_path, teachers):
    """A long teacher spec: the live table stays a table (no label/value rows), short
    enough for 24 lines (rich's Live crops the rest), each cell's seed shown, the running
    cell visible."""
    text, cells = _live_24(smoke, tmp_path, teachers)
    assert_fits(text)
    lines = text.splitlines()
    assert len(lines) <= 23, text
    assert "epoch 1/2" in text
    rows = [ln.split() for ln in lines if ln.split() and ln.split()[0].isdigit()]
    assert [int(r[0]) for r in rows] == list(range(1, len(cells) + 1)), text
    seeds = [next((t for t in r[2:r.index("done")] if t.isdigit()), None)
             for r in rows if r[1] == "none"]
    assert sorted(seeds) == ["0", "1", "2"], text  # the seed tells the rows apart


def test_live_bench_table_taller_than_the_terminal_keeps_the_running_cell(smoke, tmp_path):
    """More cells than 24 lines hold: the rows around the running one, and a line saying
    which are not shown."""
    text, cells = _live_24(smoke, tmp_path, "timm:test_resnet",
                           seeds=",".join(map(str, range(12))), running=17)
    assert_fits(text)
    assert len(text.splitlines()) <= 23, text
    assert "epoch 1/2" in text and "not shown" in text
    shown = [int(ln.split()[0]) for ln in text.splitlines() if ln.split()
             and ln.split()[0].isdigit()]
    assert 18 in shown and len(shown) < len(cells)

# -- a whole run, as a new user types it -----------------------------------------------------
@pytest.mark.integration
def test_train_eval_report_at_80_columns(cli, at, smoke, tmp_path):
    at(80)
    out = tmp_path / "run"
    res = cli("train", smoke, "--out", out, *[a for s in FAST for a in ("--set", s)],
              "--set", "schedule.epochs=1")
    assert res.code == 0, res.err
    assert_fits(res.out)
    done = json.loads((out / "summary.json").read_text())
    rows = {ln.split()[0]: ln.split()[1:] for ln in res.out.splitlines() if ln.strip()}
    assert rows["student"] == [STUDENT] and rows["loss"] == ["token"]
    assert rows["top1"] == [f"{done['top1']:.2f}"]
    assert rows["top1_cls"] == [f"{done['top1_cls']:.2f}"]
    ev = cli("eval", out)
    assert ev.code == 0, ev.err
    assert_fits(ev.out)
    assert f"{done['top1']:.2f}%" in ev.out
    rep = cli("report", out, out)
    assert rep.code == 0, rep.err
    assert_fits(rep.out)
    assert rep.out.count(STUDENT) == 2


@pytest.mark.parametrize("width", [80, 200])
def test_train_progress_line_is_not_cut(width):
    from distill.cli._common import RichReporter

    reporter = RichReporter(Console(file=io.StringIO(), width=width, force_terminal=True,
                                    color_system=None))
    reporter.start(epochs=300, start_epoch=119, steps_per_epoch=1250, info={})
    for _ in range(800):
        reporter.advance(119, 0)
    reporter.step({"loss": 1.686, "base": 2.21, "distill": 1.162, "images_per_s": 12345.0})
    buf = io.StringIO()
    Console(file=buf, width=width).print(reporter.progress.get_renderable())
    reporter.finish({})
    text = buf.getvalue()
    assert_fits(text, width)
    assert "epoch 120/300" in text and "800/226250" in text and "12345 img/s" in text
    assert "loss=1.686" in text
    assert ("distill=1.162" in text) == (width == 200)  # the loss's parts: where they fit
