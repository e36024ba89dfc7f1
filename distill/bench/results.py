"""A benchmark's files: `results.json`, `results.csv`, `results.md`.

`results.json` holds where and when it ran (`command`, `date`, `device`), one row per cell
and the aggregate over seeds (mean ± sample standard deviation), and each strategy's paired
difference from `none` over the seeds both ran (`paired`). `results.md` puts the aggregate
in the shape of the paper's Table 3: one row per strategy, one column per teacher, then the
paired differences and every measured quantity.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distill.checkpoint import atomic_write_text

__all__ = ["AGGREGATED", "CELL_FIELDS", "aggregate", "paired_differences", "seed_difference",
           "table3_markdown", "write_results"]

CELL_FIELDS = ["loss", "method", "teacher", "student", "seed", "top1", "top1_cls", "top1_dist",
               "teacher_top1", "params", "gflops", "train_images_per_s", "eval_images_per_s",
               "infer_images_per_s", "wall_time_s", "epochs", "train_size", "device_name",
               "precision", "run_dir"]
AGGREGATED = ["top1", "top1_cls", "top1_dist", "teacher_top1", "train_images_per_s",
              "eval_images_per_s", "infer_images_per_s", "wall_time_s"]


def _stats(values: list[float]) -> dict[str, float | None]:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return {"mean": None, "std": None}
    return {"mean": statistics.fmean(vals),
            "std": statistics.stdev(vals) if len(vals) > 1 else None}


def _method(row: dict[str, Any]) -> str:
    """The row's Table 3 label: recorded with the row, or (rows written before labels were
    recorded) the loss's own label with its default target."""
    if row.get("method"):
        return str(row["method"])
    from distill.registry import LOSSES

    name = row["loss"]
    return LOSSES.facts(name).label(name) if name in LOSSES else name


def aggregate(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (loss, teacher, student, training-set size): seeds, and mean/std of
    each measured field."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["loss"], _method(row), row["teacher"], row["student"], row.get("train_size"))
        groups.setdefault(key, []).append(row)
    out = []
    for (loss, _, teacher, student, size), members in groups.items():
        entry: dict[str, Any] = {"loss": loss, "method": _method(members[0]),
                                 "teacher": teacher, "student": student, "train_size": size,
                                 "seeds": [m["seed"] for m in members],
                                 "params": members[0]["params"],
                                 "gflops": members[0]["gflops"]}
        for key in AGGREGATED:
            entry[key] = _stats([m.get(key) for m in members])
        out.append(entry)
    return out


def _baseline(student: str, candidates: list[str]) -> str | None:
    """The `none` student to compare `student` with: the only one there is, or among
    several the class-token counterpart of `student` (a DeiT⚗ against its DeiT)."""
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    from distill.bench.cells import student_for
    from distill.errors import UsageError

    try:
        twin = student_for("none", student)
    except UsageError:
        return None
    return twin if twin in candidates else None


def seed_difference(a: dict[Any, float], b: dict[Any, float]) -> dict[str, Any] | None:
    """Top-1 `a` − `b` (each seed → top-1) over the seeds both ran: `seeds`, `diff_mean` and
    its standard error `diff_se` (their sample std / sqrt(n); None with one seed); None
    when no seed ran both."""
    seeds = [s for s in a if s in b]
    if not seeds:
        return None
    diffs = [a[s] - b[s] for s in seeds]
    return {"seeds": seeds, "diff_mean": statistics.fmean(diffs),
            "diff_se": statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1
            else None}


def paired_differences(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each (strategy, teacher, student, training-set size) against the `none` cells of the
    same training-set size and the same student (less its distillation token), over the
    seeds both ran: the mean of the per-seed differences in
    top-1 and its standard error (their sample std / sqrt(n); None with one seed)."""
    base: dict[tuple[Any, str], dict[Any, float]] = {}
    groups: dict[tuple, dict[Any, float]] = {}
    for row in rows:
        if row.get("top1") is None:
            continue
        size = row.get("train_size")
        if row["loss"] == "none":
            base.setdefault((size, row["student"]), {})[row["seed"]] = row["top1"]
        else:
            key = (row["loss"], _method(row), row["teacher"], row["student"], size)
            groups.setdefault(key, {})[row["seed"]] = row["top1"]
    out = []
    for (loss, method, teacher, student, size), tops in groups.items():
        bstudent = _baseline(student, [b for (bsize, b) in base if bsize == size])
        if bstudent is not None:
            diff = seed_difference(tops, base[(size, bstudent)])
            if diff is None:
                continue
            out.append({"loss": loss, "method": method, "teacher": teacher, "student": student,
                        "train_size": size, "baseline_student": bstudent} | diff)
    return out


def _paired_markdown(paired: Sequence[dict[str, Any]]) -> str:
    lines = ["| method | teacher | student | − `none` of | seeds | top-1 difference ± s.e. |",
             "|---|---|---|---|---|---|"]
    for p in paired:
        se = f" ± {p['diff_se']:.2f}" if p["diff_se"] is not None else ""
        lines.append(f"| {p['method']} | {p['teacher'] or '–'} | {p['student']} | "
                     f"{p['baseline_student']} | {','.join(map(str, p['seeds']))} | "
                     f"{p['diff_mean']:+.2f}{se} |")
    return "\n".join(lines) + "\n"


def _pm(stat: dict[str, float | None], digits: int = 2) -> str:
    if stat["mean"] is None:
        return "–"
    text = f"{stat['mean']:.{digits}f}"
    return text + (f" ± {stat['std']:.{digits}f}" if stat["std"] is not None else "")


def table3_markdown(agg: Sequence[dict[str, Any]]) -> str:
    """Top-1 (mean ± std over seeds) per strategy and teacher, like the paper's Table 3."""
    teachers = list(dict.fromkeys(a["teacher"] for a in agg if a["teacher"] is not None))
    cols = teachers or ["no teacher"]
    lines = ["| method | student | " + " | ".join(f"teacher `{t}`" for t in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    tops = {t: next((a["teacher_top1"] for a in agg if a["teacher"] == t), None) for t in cols}
    lines.append("| teacher itself | – | " + " | ".join(
        _pm(tops[t]) if tops[t] else "–" for t in cols) + " |")
    sizes = {a.get("train_size") for a in agg}
    by_method: dict[tuple[str, str], dict[str | None, dict[str, Any]]] = {}
    for a in agg:  # a row per training-set size, where the rows hold several
        student = (f"{a['student']} ({a.get('train_size')} images)" if len(sizes) > 1
                   else a["student"])
        by_method.setdefault((a["method"], student), {})[a["teacher"]] = a
    for (method, student), per_teacher in by_method.items():
        if any(a["top1_dist"]["mean"] is not None for a in per_teacher.values()):  # two heads
            for head, label in (("top1_cls", "class head"), ("top1_dist", "distillation head"),
                                ("top1", "both heads")):
                lines.append(f"| {method}: {label} | {student} | " + " | ".join(
                    _pm(per_teacher[t][head]) if t in per_teacher else "–" for t in cols) + " |")
            continue
        cells = [_pm(per_teacher[None]["top1"]) if None in per_teacher else
                 (_pm(per_teacher[t]["top1"]) if t in per_teacher else "–") for t in cols]
        lines.append(f"| {method} | {student} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _detail_markdown(agg: Sequence[dict[str, Any]]) -> str:
    head = ("| loss | teacher | student | train images | seeds | top-1 | class head | dist. head | teacher "
            "top-1 | params | GFLOPs | train img/s | eval img/s | model img/s | wall s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for a in agg:
        lines.append(
            f"| {a['loss']} | {a['teacher'] or '–'} | {a['student']} | "
            f"{a['train_size'] if a.get('train_size') is not None else '–'} | "
            f"{','.join(map(str, a['seeds']))} | {_pm(a['top1'])} | {_pm(a['top1_cls'])} | "
            f"{_pm(a['top1_dist'])} | {_pm(a['teacher_top1'])} | {a['params']:,} | "
            f"{a['gflops']:.3g} | {_pm(a['train_images_per_s'], 0)} | "
            f"{_pm(a['eval_images_per_s'], 0)} | {_pm(dict(a['infer_images_per_s'], std=None), 0)} | "
            f"{_pm(a['wall_time_s'], 0)} |")
    return "\n".join(lines) + "\n"


def write_results(out: Path, rows: Sequence[dict[str, Any]], *, meta: dict[str, Any],
                  plot: bool = True) -> dict[str, Any]:
    """Write results.json, results.csv, results.md (and the plot); returns the JSON."""
    agg = aggregate(rows)
    paired = paired_differences(rows)
    doc = dict(meta) | {"cells": list(rows), "aggregate": agg, "paired": paired}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(doc, indent=2) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CELL_FIELDS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "results.csv", buf.getvalue())
    md = [f"# Benchmark: {meta.get('recipe', '')}", "",
          f"- command: `{meta.get('command', '')}`", f"- device: {meta.get('device', '')}",
          f"- date: {meta.get('date', '')}", "",
          "## Top-1 (%) by strategy and teacher, mean ± std over seeds", "",
          table3_markdown(agg), "## Each strategy against `none`, paired by seed", "",
          _paired_markdown(paired) if paired else "(no `none` cells with the same seeds)\n",
          "## Every measurement", "", _detail_markdown(agg),
          "GFLOPs: multiply-adds of one image through the student, counted by "
          "`torch.utils.flop_counter`. train img/s: the training loop, teacher (or cache) and "
          "data loading included; eval img/s: the validation loop, data loading included; "
          "model img/s: the student alone on an in-memory batch, measured once per architecture "
          "(the plot's x axis). "
          "wall s: the session that finished the cell.", ""]
    atomic_write_text(out / "results.md", "\n".join(md))
    if plot:
        from distill.plots import accuracy_vs_throughput

        accuracy_vs_throughput(rows, out / "accuracy_vs_throughput.png",
                               title=str(meta.get("recipe", "")))
    return doc
