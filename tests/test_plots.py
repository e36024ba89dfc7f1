"""The figures (`distill.plots`), read back from the matplotlib Figure rather than from
pixels; `distill report --plot`; and the small things: `--version`, shell completion."""

from __future__ import annotations

import json
import math
import shutil
import statistics

import pytest

from distill.plots import accuracy_vs_throughput, data_efficiency, read_metrics, training_curves

from .conftest import ROOT

RESULTS = ROOT / "benchmarks" / "results"
PNG = b"\x89PNG\r\n\x1a\n"


def recorded(folder: str) -> list[dict]:
    return json.loads((RESULTS / folder / "results.json").read_text())["cells"]


def is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG


def markers(fig) -> list[tuple[str, float, float, tuple]]:
    """(label, x, y, face colour) of every scatter marker of the figure's one axes."""
    (ax,) = fig.axes
    out = []
    for coll in ax.collections:
        colour = tuple(coll.get_facecolor()[0])
        out += [(coll.get_label(), float(x), float(y), colour) for x, y in coll.get_offsets()]
    return out


def dashed(ax) -> list:
    return [ln for ln in ax.lines if ln.get_linestyle() == "--"]


# -- Figure 1 ----------------------------------------------------------------------------
def test_figure1_holds_every_recorded_cell_and_the_teachers_top1(tmp_path):
    from matplotlib.colors import to_rgba

    rows = recorded("fmnist-cpu")
    fig = accuracy_vs_throughput(rows, tmp_path / "f.png", title="fmnist")
    assert is_png(tmp_path / "f.png")
    (ax,) = fig.axes
    pts = markers(fig)
    # a marker per cell, at its measured (throughput, top-1)
    assert sorted((x, y) for _, x, y, _ in pts) == sorted(
        (r["infer_images_per_s"], r["top1"]) for r in rows)
    assert ax.get_xscale() == "linear"  # 2404 to 2660 images/s: no decade
    # the shape is the strategy: one per loss, shared by that loss's cells
    shape = {}
    for coll in ax.collections:
        loss = coll.get_label().split(" · ")[0]
        verts = coll.get_paths()[0].vertices.round(6).tobytes()
        assert shape.setdefault(loss, verts) == verts
    assert len(set(shape.values())) == len(shape) == 4
    # the colour is the teacher; its top-1 is one dashed line of that colour
    (line,) = dashed(ax)
    assert list(line.get_ydata()) == [91.74, 91.74]
    teacher_colour = to_rgba(line.get_color())
    for label, _, _, colour in pts:
        assert (colour == teacher_colour) == (not label.endswith("no teacher")), label
    lo, hi = ax.get_ylim()
    assert lo < min(r["top1"] for r in rows) and hi > 91.74  # nothing clipped
    assert "throughput" in ax.get_xlabel() and "top-1" in ax.get_ylabel()
    assert ax.get_title(loc="left") == "fmnist"
    legend = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
    assert legend[:4] == ["none", "soft", "hard", "token"]
    assert "checkpoint:teacher_resnet (91.74)" in legend and "no teacher" in legend


def test_figure1_one_dashed_line_per_teacher_in_its_colour(tmp_path):
    from matplotlib.colors import to_rgba

    rows = recorded("fmnist-cpu-teachers")
    fig = accuracy_vs_throughput(rows, tmp_path / "f.png")
    (ax,) = fig.axes
    lines = dashed(ax)
    assert [ln.get_ydata()[0] for ln in lines] == [r["teacher_top1"] for r in rows]
    assert len({ln.get_color() for ln in lines}) == 3
    for r, ln in zip(rows, lines):  # each cell in its teacher's colour
        (hit,) = [c for _, x, y, c in markers(fig) if (x, y) == (r["infer_images_per_s"], r["top1"])]
        assert hit == to_rgba(ln.get_color())


def test_figure1_log_scale_for_a_wide_range_and_seed_mean_teacher(tmp_path):
    rows = [dict(loss=loss, teacher="random:t", seed=s, top1=50.0 + s, teacher_top1=10.0 + 2 * s,
                 infer_images_per_s=ips)
            for loss, ips in (("a", 100.0), ("b", 5000.0)) for s in (0, 1)]
    rows.append(dict(loss="a", teacher="random:t", seed=2, top1=None, teacher_top1=None,
                     infer_images_per_s=100.0))  # a cell without its top-1: not drawn
    fig = accuracy_vs_throughput(rows, tmp_path / "f.png")
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert len(markers(fig)) == 4
    (line,) = dashed(ax)
    assert line.get_ydata()[0] == pytest.approx(11.0)  # mean over the seeds


# -- training curves ---------------------------------------------------------------------
QUICKSTART = RESULTS / "fmnist-cpu-quickstart"


def copy_run(name: str, dest, cut: bool = False):
    dest.mkdir(parents=True)
    shutil.copy(QUICKSTART / f"{name}.summary.json", dest / "summary.json")
    text = (QUICKSTART / f"{name}.metrics.jsonl").read_text()
    if cut:  # a kill cut the last line short
        text += '{"kind": "step", "epoch": 4, "st'
    (dest / "metrics.jsonl").write_text(text)
    return dest


def curves(name: str):
    rows = [json.loads(ln) for ln in (QUICKSTART / f"{name}.metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r["kind"] == "step"]
    evals = [r for r in rows if r["kind"] == "epoch" and "top1" in r]
    return ([r["step"] for r in steps], [r["loss"] for r in steps], [r["lr"] for r in steps],
            [r["epoch"] + 1 for r in evals], [r["top1"] for r in evals])


def test_report_plot_draws_each_runs_recorded_curves(cli, tmp_path, monkeypatch):
    import distill.plots

    copy_run("deit_token", tmp_path / "runs" / "token", cut=True)
    copy_run("teacher_resnet", tmp_path / "runs" / "teacher")
    monkeypatch.chdir(tmp_path)
    drawn = []
    real = distill.plots.training_curves
    monkeypatch.setattr(distill.plots, "training_curves",
                        lambda *a, **kw: drawn.append(real(*a, **kw)) or drawn[-1])
    res = cli("report", tmp_path / "runs" / "token", "runs/teacher", "--plot", "out/curves.png")
    assert res.code == 0, res.err
    assert is_png(tmp_path / "out" / "curves.png")
    assert "runs/token" in res.out and "runs/teacher" in res.out  # relative to the cwd
    assert str(tmp_path) not in res.out and "training curves → out/curves.png" in res.out
    (fig,) = drawn
    loss_ax, top1_ax, lr_ax = fig.axes
    assert (loss_ax.get_xlabel(), lr_ax.get_xlabel(), top1_ax.get_xlabel()) == ("step", "step", "epoch")
    assert "loss" in loss_ax.get_ylabel() and "top-1" in top1_ax.get_ylabel()
    assert "learning rate" in lr_ax.get_ylabel()
    for i, name in enumerate(("deit_token", "teacher_resnet")):
        step, loss, lr, epoch, top1 = curves(name)
        label = ["runs/token", "runs/teacher"][i]
        for ax, xs, ys in ((loss_ax, step, loss), (lr_ax, step, lr), (top1_ax, epoch, top1)):
            line = ax.lines[i]
            assert line.get_label() == label
            assert list(line.get_xdata()) == xs and list(line.get_ydata()) == ys
    assert top1_ax.lines[0].get_ydata()[-1] == 85.83 and top1_ax.lines[1].get_ydata()[-1] == 91.74
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["runs/token", "runs/teacher"]


def test_report_plot_bad_input_is_one_line(cli, tmp_path, monkeypatch):
    run = copy_run("deit_none", tmp_path / "run")
    (run / "metrics.jsonl").unlink()
    monkeypatch.chdir(tmp_path)
    for args, says in (((run, "--plot", "c.png"), "--plot: run/metrics.jsonl: no such file"),
                       ((run, "--plot", "c.jpg"), "--plot: 'c.jpg' is not a .png file name"),
                       ((tmp_path / "nothing", "--plot", "c.png"), "no summary.json")):
        res = cli("report", *args)
        lines = [ln for ln in res.err.strip().splitlines() if ln.strip()]
        assert res.code == 2 and len(lines) == 1 and says in lines[0], res.err
        assert "Traceback" not in res.err and not (tmp_path / "c.png").exists()
    assert cli("report", run).code == 0  # without --plot the metrics are not needed


def test_curves_fall_back_to_epochs_without_step_lines(tmp_path):
    rows = [{"kind": "epoch", "epoch": e, "train_loss": 2.0 - e / 2, "lr": 1e-3 / (e + 1)}
            for e in range(3)]
    rows[1]["top1"] = 40.0
    rows[2]["top1"] = 55.5
    fig = training_curves({"a": rows, "b": rows[:2]}, tmp_path / "c.png", title="t")
    assert is_png(tmp_path / "c.png")
    loss_ax, top1_ax, lr_ax = fig.axes
    assert loss_ax.get_xlabel() == "epoch"
    assert list(loss_ax.lines[0].get_xdata()) == [1, 2, 3]
    assert list(loss_ax.lines[0].get_ydata()) == [2.0, 1.5, 1.0]
    assert list(lr_ax.lines[1].get_ydata()) == [1e-3, 5e-4]
    assert list(top1_ax.lines[0].get_xdata()) == [2, 3]
    assert list(top1_ax.lines[1].get_ydata()) == [40.0]


def test_read_metrics_skips_what_is_not_a_json_object(tmp_path):
    f = tmp_path / "metrics.jsonl"
    f.write_text('{"kind": "step", "step": 1}\n[1, 2]\n\n{"kind": "epoch", "epoch": 0}\n{"ki')
    assert read_metrics(f) == [{"kind": "step", "step": 1}, {"kind": "epoch", "epoch": 0}]


# -- data efficiency ---------------------------------------------------------------------
def test_data_efficiency_mean_and_std_over_seeds_per_size(tmp_path):
    sizes = (1000, 10000, 60000)
    rows = [dict(loss=loss, teacher=None if loss == "none" else "timm:t", seed=s, train_size=n,
                 top1=50 + 10 * math.log10(n) + (3 if loss == "token" else 0) + s,
                 teacher_top1=None if loss == "none" else 60 + 8 * math.log10(n))
            for loss in ("none", "token") for s in (0, 1, 2) for n in sizes]
    fig = data_efficiency(rows, tmp_path / "d.png", title="data")
    assert is_png(tmp_path / "d.png")
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and "training" in ax.get_xlabel() and "top-1" in ax.get_ylabel()
    bars = ax.containers
    assert [b.get_label() for b in bars] == ["none", "token"]
    for bar, loss in zip(bars, ("none", "token")):
        data, _, (ranges,) = bar.lines
        assert list(data.get_xdata()) == list(sizes)
        want = [statistics.fmean(r["top1"] for r in rows if r["loss"] == loss and r["train_size"] == n)
                for n in sizes]
        assert list(data.get_ydata()) == pytest.approx(want)
        for seg in ranges.get_segments():  # ± the sample std of seeds 0, 1, 2: 1
            assert seg[1][1] - seg[0][1] == pytest.approx(2.0)
    (teacher,) = dashed(ax)
    assert teacher.get_label() == "teacher" and list(teacher.get_xdata()) == list(sizes)
    assert list(teacher.get_ydata()) == pytest.approx([60 + 8 * math.log10(n) for n in sizes])
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"none", "token", "teacher"}


def test_data_efficiency_joins_each_sizes_own_teacher_into_one_line(tmp_path):
    # A study trains each size's teacher on that size's subset: one spec per size.
    sizes = (2000, 6000, 60000)
    rows = [dict(loss="token", teacher=f"checkpoint:teachers/resnet-{n}", seed=s, train_size=n,
                 top1=70 + s + sizes.index(n), teacher_top1=80 + sizes.index(n))
            for s in (0, 1) for n in sizes]
    apart = data_efficiency(rows, tmp_path / "a.png")
    assert len(apart.axes[0].containers) == 3 and len(dashed(apart.axes[0])) == 3
    fig = data_efficiency(rows, tmp_path / "d.png", teacher_label=lambda t: "ResNet-8")
    (ax,) = fig.axes
    (bar,) = ax.containers
    assert bar.get_label() == "token" and list(bar.lines[0].get_xdata()) == list(sizes)
    assert list(bar.lines[0].get_ydata()) == pytest.approx([70.5, 71.5, 72.5])
    (teacher,) = dashed(ax)
    assert teacher.get_label() == "teacher" and list(teacher.get_ydata()) == [80, 81, 82]
    assert rows[0]["teacher"] == "checkpoint:teachers/resnet-2000"  # the rows are left as given


# -- the small things --------------------------------------------------------------------
def test_version(cli):
    from distill import __version__

    res = cli("--version")
    assert res.code == 0 and res.out.strip() == f"distill {__version__}"


def test_shell_completion_is_typers(cli, monkeypatch):
    res = cli("--help")
    assert res.code == 0 and "--install-completion" in res.out and "--show-completion" in res.out
    monkeypatch.setenv("_DISTILL_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "distill report --pl")
    monkeypatch.setenv("COMP_CWORD", "2")
    res = cli()
    assert res.code == 0 and res.out.split() == ["--plot"]
