"""The toolkit's figures, drawn with matplotlib's Agg canvas (no display is ever needed).

- `accuracy_vs_throughput`: the paper's Figure 1 from `distill bench`'s rows;
- `training_curves`: train loss, top-1 per evaluation and learning rate of one or several
  runs, from their `metrics.jsonl` (`distill report RUN… --plot FILE.png`);
- `data_efficiency`: top-1 against the training-set size, per strategy, with the teacher's.

Each function returns its `matplotlib.figure.Figure` (the plotted data can be read back from
its artists) and writes the PNG atomically. matplotlib is imported inside them, so that
`import distill` stays cheap.
"""

from __future__ import annotations

import io
import json
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.checkpoint import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["accuracy_vs_throughput", "data_efficiency", "read_metrics", "training_curves"]

# Presentation only: markers are handed out in order of first appearance.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">")
GREY = "0.45"
DPI = 150


def _figure(width: float, height: float, **kw: Any) -> Figure:
    """A figure on an Agg canvas of its own: no pyplot, no global state, no display."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained", **kw)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path, dpi: int) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    atomic_write_bytes(path, buf.getvalue())


def _short(name: str, width: int = 34) -> str:
    """`checkpoint:runs/fmnist/teacher_resnet` → `checkpoint:teacher_resnet`, if too long."""
    if len(name) <= width:
        return name
    adapter, _, target = name.partition(":")
    return f"{adapter}:{Path(target.rstrip('/')).name}"[:width]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


# -- Figure 1 ----------------------------------------------------------------------------
def accuracy_vs_throughput(rows: Sequence[dict[str, Any]], path: str | Path, *, title: str = "",
                           dpi: int = DPI) -> Figure:
    """Top-1 against the student's inference throughput, a marker per cell (`path`: PNG).

    x: images/s of the model alone (`infer_images_per_s`; log scale when the values span
    more than a decade); y: top-1. Marker: the strategy; colour: the teacher; a dashed line
    of the teacher's colour at its top-1 (mean over seeds: a random-weights teacher differs
    by seed). Strategies measured at one throughput are drawn side by side, a few points
    apart on screen; the markers' data stay at the measured values.
    """
    from matplotlib.lines import Line2D
    from matplotlib.transforms import offset_copy

    pts = [r for r in rows if r.get("top1") is not None and r.get("infer_images_per_s")]
    losses = list(dict.fromkeys(r["loss"] for r in rows))
    teachers = list(dict.fromkeys(r["teacher"] for r in rows if r.get("teacher")))
    colour = {t: f"C{i % 10}" for i, t in enumerate(teachers)}
    marker = {loss: MARKERS[i % len(MARKERS)] for i, loss in enumerate(losses)}
    tops = {t: _mean([r["teacher_top1"] for r in rows
                      if r.get("teacher") == t and r.get("teacher_top1") is not None])
            for t in teachers}

    fig = _figure(9.6, 6.0)
    ax = fig.add_subplot()
    for t, v in tops.items():
        if v is not None:
            ax.axhline(v, color=colour[t], linestyle="--", linewidth=1.5, zorder=1)
    at_x: dict[float, list[str]] = {}  # the strategies measured at each throughput
    for r in pts:
        seen = at_x.setdefault(r["infer_images_per_s"], [])
        if r["loss"] not in seen:
            seen.append(r["loss"])
    groups: dict[tuple[str, str | None, float], list[dict[str, Any]]] = {}
    for r in pts:
        here = at_x[r["infer_images_per_s"]]
        dodge = (here.index(r["loss"]) - (len(here) - 1) / 2) * 9.0  # points on screen
        groups.setdefault((r["loss"], r.get("teacher"), dodge), []).append(r)
    for (loss, t, dodge), cells in groups.items():
        shifted = offset_copy(ax.transData, fig=fig, x=dodge, y=0.0, units="points")
        ax.scatter([r["infer_images_per_s"] for r in cells], [r["top1"] for r in cells],
                   marker=marker[loss], s=55, color=colour.get(t, GREY), edgecolors="black",
                   linewidths=0.6, zorder=3, transform=shifted,
                   label=f"{loss} · {_short(t) if t else 'no teacher'}")
    # the markers' transform is shifted on screen: their data do not reach the autoscale
    ax.update_datalim([(r["infer_images_per_s"], r["top1"]) for r in pts])
    ax.margins(y=0.08)
    ax.autoscale_view()
    xs = [r["infer_images_per_s"] for r in pts]
    if xs and max(xs) > 10 * min(xs):
        ax.set_xscale("log")
    else:
        ax.ticklabel_format(axis="x", style="plain", useOffset=False)
        if xs:  # room for the side-by-side markers at either end
            lo, hi = min(xs), max(xs)
            pad = max((hi - lo) * 0.15, hi * 0.05)
            ax.set_xlim(max(0.0, lo - pad), hi + pad)
    ax.set_xlabel("student inference throughput (images/s, the model alone)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.grid(True, color="0.92")
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title, loc="left", fontsize="medium")
    strategies = [Line2D([], [], linestyle="none", marker=marker[loss], markersize=7,
                         color=GREY, markeredgecolor="black", label=loss) for loss in losses]
    who = [Line2D([], [], color=colour[t], linestyle="--", marker="s", markersize=7,
                  label=_short(t) + (f" ({tops[t]:.2f})" if tops[t] is not None else ""))
           for t in teachers]
    if any(r.get("teacher") is None for r in rows):
        who.append(Line2D([], [], linestyle="none", marker="s", markersize=7, color=GREY,
                          label="no teacher"))
    fig.legend(handles=strategies, title="strategy", loc="outside right upper",
               alignment="left", frameon=False)
    if who:
        fig.legend(handles=who, title="teacher (dashed: its top-1)", loc="outside right lower",
                   alignment="left", frameon=False)
    _save(fig, path, dpi)
    return fig


# -- training curves ---------------------------------------------------------------------
def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of a `metrics.jsonl`; a line that is not one (a kill can cut the
    last line short) is skipped."""
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def training_curves(runs: Mapping[str, Sequence[dict[str, Any]]], path: str | Path, *,
                    title: str = "", dpi: int = DPI) -> Figure:
    """Three panels, a line per run (`runs`: label → its `metrics.jsonl` rows):

    train loss against the optimizer step (the `step` lines; the epochs' `train_loss` when
    some run logged no step lines, then against the epoch for every run), top-1 at each
    evaluated epoch, and the learning rate, against the same x as the loss. Epochs are
    counted from 1 (the line of epoch index 0 is the end of epoch 1).
    """
    series = {label: ([r for r in rows if r.get("kind") == "step"],
                      [r for r in rows if r.get("kind") == "epoch"]) for label, rows in runs.items()}
    by_step = bool(series) and all(
        any(_num(r.get("step")) and _num(r.get("loss")) for r in steps)
        for steps, _ in series.values())
    fig = _figure(13.5, 4.4)
    loss_ax, top1_ax, lr_ax = fig.subplots(1, 3)
    for i, (label, (steps, epochs)) in enumerate(series.items()):
        c = f"C{i % 10}"
        if by_step:
            pts = [(r["step"], r["loss"]) for r in steps if _num(r.get("step")) and _num(r.get("loss"))]
            lrs = [(r["step"], r["lr"]) for r in steps if _num(r.get("step")) and _num(r.get("lr"))]
        else:
            pts = [(r["epoch"] + 1, r["train_loss"]) for r in epochs
                   if _num(r.get("epoch")) and _num(r.get("train_loss"))]
            lrs = [(r["epoch"] + 1, r["lr"]) for r in epochs
                   if _num(r.get("epoch")) and _num(r.get("lr"))]
        evals = [(r["epoch"] + 1, r["top1"]) for r in epochs
                 if _num(r.get("epoch")) and _num(r.get("top1"))]
        for ax, xy in ((loss_ax, pts), (top1_ax, evals), (lr_ax, lrs)):
            ax.plot([p[0] for p in xy], [p[1] for p in xy], color=c, label=label,
                    marker="o" if ax is top1_ax or len(xy) < 2 else None, markersize=4)
    x = "step" if by_step else "epoch"
    loss_ax.set(xlabel=x, ylabel="train loss", title="train loss")
    top1_ax.set(xlabel="epoch", ylabel="top-1 accuracy (%)", title="top-1 per evaluation")
    lr_ax.set(xlabel=x, ylabel="learning rate", title="learning rate")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for ax in (loss_ax, top1_ax, lr_ax):
        ax.grid(True, color="0.92")
        ax.set_axisbelow(True)
    last = max((r["epoch"] + 1 for _, epochs in series.values() for r in epochs
                if _num(r.get("epoch"))), default=1)
    top1_ax.set_xlim(0.5, last + 0.5)  # every epoch of the runs, counted from 1
    top1_ax.xaxis.get_major_locator().set_params(integer=True)
    if not by_step:
        for ax in (loss_ax, lr_ax):
            ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    if series:
        fig.legend(handles=loss_ax.lines, loc="outside lower center",
                   ncols=min(len(series), 3), frameon=False)
    _save(fig, path, dpi)
    return fig


# -- data efficiency ---------------------------------------------------------------------
def data_efficiency(rows: Sequence[dict[str, Any]], path: str | Path, *, title: str = "",
                    teacher_label: Callable[[str], str] | None = None,
                    dpi: int = DPI) -> Figure:
    """Top-1 (mean ± sample std over seeds, error bars) against the training-set size
    (`train_size`, log scale), a line per strategy (`loss`; per strategy and teacher when
    the rows hold several teachers), and a dashed line per teacher at its own top-1 per
    size (`teacher_top1`).

    `teacher_label` names the teacher of a row's spec: rows whose teachers get the same
    label are one teacher (a study that trains each size's teacher on its own subset: one
    spec per size, one line)."""
    pts = [r for r in rows if _num(r.get("top1")) and _num(r.get("train_size"))]
    if teacher_label is not None:
        pts = [r | {"teacher": teacher_label(r["teacher"])} if r.get("teacher") else r
               for r in pts]
    teachers = list(dict.fromkeys(r["teacher"] for r in pts if r.get("teacher")))
    several = len(teachers) > 1
    groups: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for r in pts:
        groups.setdefault((r["loss"], r.get("teacher") if several else None), []).append(r)
    fig = _figure(8.0, 5.4)
    ax = fig.add_subplot()

    def line(cells: list[dict[str, Any]], key: str) -> tuple[list, list, list]:
        sizes = sorted({r["train_size"] for r in cells})
        vals = [[r[key] for r in cells if r["train_size"] == s and _num(r.get(key))] for s in sizes]
        keep = [(s, v) for s, v in zip(sizes, vals) if v]
        return ([s for s, _ in keep], [statistics.fmean(v) for _, v in keep],
                [statistics.stdev(v) if len(v) > 1 else 0.0 for _, v in keep])

    for i, ((loss, teacher), cells) in enumerate(groups.items()):
        xs, ys, err = line(cells, "top1")
        ax.errorbar(xs, ys, yerr=err, marker=MARKERS[i % len(MARKERS)], capsize=3,
                    color=f"C{i % 10}", label=loss + (f" · {_short(teacher)}" if teacher else ""))
    for t in teachers:
        xs, ys, _ = line([r for r in pts if r.get("teacher") == t], "teacher_top1")
        if xs:
            ax.plot(xs, ys, color="black", linestyle="--", marker=".",
                    label=f"teacher ({_short(t)})" if several else "teacher")
    ax.set_xscale("log")
    ax.set_xlabel("training images")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.grid(True, which="both", color="0.92")
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title, loc="left", fontsize="medium")
    if groups or teachers:
        ax.legend(frameon=False)
    _save(fig, path, dpi)
    return fig
