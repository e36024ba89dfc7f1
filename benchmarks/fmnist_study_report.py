"""The Fashion-MNIST study's report (issue 14), from the bench folders that
`benchmarks/fmnist_study.sh` wrote; nothing is trained here.

    python benchmarks/fmnist_study_report.py [--out benchmarks/results/fmnist-study]

Reads `OUT/size-*/results.json` (and `OUT/table2/`'s and `OUT/table3-strong/`'s where they
exist) and writes:
- `OUT/data-efficiency/`: the `none` and `token` cells of every size in the `distill bench`
  format (`results.json` with `train_size` in every row, the aggregate and the paired
  differences; `results.csv`, `results.md`) and `data_efficiency.png` (top-1 against the
  training-set size, mean ± std over seeds, with the teacher's line);
- `OUT/curves/none-SIZE.png`: the `none` cells' training curves at each size (`distill
  report --plot`'s figure), to show where the no-teacher curve flattens;
- `OUT/summary.md`: the headline tables, each comparison as mean ± std and paired
  difference ± standard error, and the paper's orderings checked against the numbers.
Every figure's command, device and date come from the bench folders' `results.json`.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import statistics
import sys
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill.bench.results import (  # noqa: E402
    aggregate,
    paired_differences,
    seed_difference,
    write_results,
)
from distill.checkpoint import atomic_write_text  # noqa: E402
from distill.plots import data_efficiency, read_metrics, training_curves  # noqa: E402

TEACHER = "CIFAR ResNet-8 w2, trained on the same subset"


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _train_size(folder: Path, doc: dict[str, Any]) -> int:
    """The one training-set size of a bench folder's cells; one line and exit 2 otherwise."""
    sizes = {c.get("train_size") for c in doc.get("cells", [])}
    if len(sizes) != 1 or not isinstance(size := next(iter(sizes)), int):
        _fail(f"{folder}/results.json: expected cells of one train_size, found {sorted(map(str, sizes))}")
    return size


def _size_folders(out: Path) -> list[tuple[int, Path]]:
    found = []
    for p in out.glob("size-*/results.json"):
        try:
            found.append((int(p.parent.name.split("-", 1)[1]), p.parent))
        except ValueError:
            continue
    return sorted(found)


def _source(folder: Path, doc: dict[str, Any]) -> dict[str, Any]:
    return {"folder": folder.name, **{k: doc.get(k) for k in ("command", "date", "commit",
                                                               "device")}}


def _pm(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.2f}" + (f" ± {std:.2f}" if std is not None else "")


def _agg(agg: list[dict[str, Any]], loss: str, size: int | None = None,
         teacher: str | None = None) -> dict[str, Any] | None:
    for a in agg:
        if a["loss"] == loss and (size is None or a["train_size"] == size) and (
                teacher is None or a["teacher"] == teacher):
            return a
    return None


def _paired(paired: list[dict[str, Any]], loss: str, size: int,
            teacher: str | None = None) -> dict[str, Any] | None:
    for p in paired:
        if p["loss"] == loss and p["train_size"] == size and (teacher is None
                                                              or p["teacher"] == teacher):
            return p
    return None


def _diff(p: dict[str, Any] | None) -> str:
    if p is None:
        return "–"
    se = f" ± {p['diff_se']:.2f}" if p["diff_se"] is not None else ""
    return f"{p['diff_mean']:+.2f}{se} (seeds {','.join(map(str, p['seeds']))})"


def _curves(out: Path, sizes: list[tuple[int, Path]]) -> list[str]:
    """The `none` curves per size, and a table of the seeds' mean top-1 at the last
    evaluations: what the last quarter of the schedule, and the last evaluation interval,
    still added (under a cosine schedule the curve rises as the rate decays; flat at the
    end means more of the same schedule would add little)."""
    lines = ["| training images | epochs | top-1 at the evaluation nearest 3/4 of the schedule "
             "| at the evaluation before the end | at the end | added since the first | "
             "added since the second |",
             "|---|---|---|---|---|---|---|"]
    (out / "curves").mkdir(exist_ok=True)
    for size, folder in sizes:
        runs = {}
        for cell in sorted((folder / "cells").glob("none-*")):
            rows = read_metrics(cell / "metrics.jsonl")
            if rows and (cell / "summary.json").is_file():
                runs[cell.name.rsplit("-", 1)[-1]] = rows
        if not runs:
            continue
        training_curves(runs, out / "curves" / f"none-{size}.png",
                        title=f"DeiT, no teacher, {size:,} training images (one line per seed)")
        evals: dict[int, list[float]] = {}
        for rows in runs.values():
            for r in rows:
                if r.get("kind") == "epoch" and isinstance(r.get("top1"), (int, float)):
                    evals.setdefault(int(r["epoch"]) + 1, []).append(float(r["top1"]))
        epochs = sorted(e for e, v in evals.items() if len(v) == len(runs))
        if len(epochs) < 2:
            continue
        last = epochs[-1]
        mid = min(epochs, key=lambda e: (abs(e - 0.75 * last), -e))
        prev = epochs[-2]
        a, p, b = (statistics.fmean(evals[e]) for e in (mid, prev, last))
        lines.append(f"| {size:,} | {last} | {a:.2f} (epoch {mid}) | {p:.2f} (epoch {prev}) | "
                     f"{b:.2f} | {b - a:+.2f} | {b - p:+.2f} |")
    return lines


def _verdict(p: dict[str, Any] | None, claim: str) -> str:
    """Whether the paired difference `p` bears out `claim` (">": above zero, ">=": not
    below zero, "~": about zero), in words: a difference within two standard errors of
    zero is not resolved by these seeds (with 3 seeds, 2 s.e. is no 95 % bound either)."""
    if p is None:
        return "cannot tell (no seed ran both)"
    m, se = p["diff_mean"], p["diff_se"]
    if se is None:
        return "cannot tell (one seed)"
    unresolved = abs(m) <= 2 * se
    if claim == "~":
        return ("holds: no difference these seeds resolve" if unresolved else
                "does **not** hold: a difference of more than 2 s.e.")
    ok = m > 0 or (claim == ">=" and m == 0)
    if unresolved:
        return ("holds on the mean, within 2 s.e. of zero" if ok else
                "does **not** hold on the mean, within 2 s.e. of zero")
    return "holds" if ok else "does **not** hold, by more than 2 s.e."


def _tops(cells: list[dict[str, Any]], size: int | None = None) -> dict[str, dict[int, float]]:
    """loss → seed → top-1 (one teacher per loss, as in a bench folder of one teacher)."""
    out: dict[str, dict[int, float]] = {}
    for c in cells:
        if c.get("top1") is not None and (size is None or c.get("train_size") == size):
            out.setdefault(c["loss"], {})[c["seed"]] = c["top1"]
    return out


def _ordering(cells: list[dict[str, Any]], size: int) -> list[str]:
    """The paper's Table 3 ordering, token ≥ hard > soft ≈ none, each step as a paired
    difference over the seeds both strategies ran."""
    tops = _tops(cells, size)
    missing = [k for k in ("none", "soft", "hard", "token") if k not in tops]
    if missing:
        return [f"(not run at {size:,} images yet: {', '.join(missing)})"]
    lines = []
    for a, b, claim, text in (("token", "hard", ">=", "`token` ≥ `hard`"),
                              ("hard", "soft", ">", "`hard` > `soft`"),
                              ("soft", "none", "~", "`soft` ≈ `none`"),
                              ("token", "none", ">", "`token` > `none`")):
        p = seed_difference(tops[a], tops[b])
        lines.append(f"- {text}: {_verdict(p, claim)} ({a} − {b}: {_diff(p)}).")
    p = seed_difference(tops["token"], tops["none"])
    target = p is not None and p["diff_mean"] >= 1.0
    lines.append(f"- The issue's target, `token` − `none` ≥ +1.0: "
                 f"{'reached' if target else '**not** reached'} ({_diff(p)}).")
    return lines


def _teachers(cells: list[dict[str, Any]]) -> list[str]:
    """The paper's Table 2 claim (a convnet teacher beats a transformer one of similar
    accuracy), as the paired difference of the students of the two teachers over the seeds
    both ran; the convnet is the teacher whose folder's name says resnet."""
    by: dict[str, dict[int, float]] = {}
    for c in cells:
        if c["loss"] != "none" and c.get("top1") is not None:
            by.setdefault(c["teacher"], {})[c["seed"]] = c["top1"]
    conv = [t for t in by if "resnet" in Path(t.split(":", 1)[-1]).name.lower()]
    trans = [t for t in by if t not in conv]
    if len(conv) != 1 or len(trans) != 1:
        return [f"(Table 2 needs one convnet and one transformer teacher; found {sorted(by)})"]
    p = seed_difference(by[conv[0]], by[trans[0]])
    verdict = _verdict(p, ">")
    return [f"Convnet-taught minus transformer-taught student, paired: {_diff(p)}. The "
            f"paper's finding (the convnet teacher teaches better): {verdict}"
            + ("" if verdict.endswith(".") else ".")]


def _table3(cells: list[dict[str, Any]], size: int) -> list[str]:
    """Table 3's rows (one teacher), the teacher against the issue's 93 %, the paper's
    ordering and the best student against its teacher, all from `cells`."""
    a3, p3 = aggregate(cells), paired_differences(cells)
    md = ["| strategy | top-1 | class head | dist. head | − `none`, paired ± s.e. |",
          "|---|---|---|---|---|"]
    for loss in ("none", "soft", "hard", "token"):
        a = _agg(a3, loss)
        if a is None:
            continue
        md.append(f"| {a['method']} | {_pm(a['top1']['mean'], a['top1']['std'])} | "
                  f"{_pm(a['top1_cls']['mean'], a['top1_cls']['std'])} | "
                  f"{_pm(a['top1_dist']['mean'], a['top1_dist']['std'])} | "
                  f"{_diff(_paired(p3, loss, size)) if loss != 'none' else ''} |")
    teacher = next((a["teacher_top1"]["mean"] for a in a3 if a["teacher_top1"]["mean"]), None)
    if teacher:
        md += ["", f"Teacher: {_pm(teacher, None)} (the issue asks for ≥ 93.0: "
               f"{'reached' if teacher >= 93.0 else '**not** reached'})."]
    md += ["", "The paper's ordering, checked on these numbers:", "", *_ordering(cells, size)]
    best = max((a for a in a3 if a["loss"] != "none" and a["top1"]["mean"] is not None),
               key=lambda a: a["top1"]["mean"], default=None)
    if best is not None and teacher:
        md += ["", f"Student against teacher: the best distilled student ({best['method']}) "
               f"{best['top1']['mean']:.2f} against its teacher's {teacher:.2f} "
               f"({best['top1']['mean'] - teacher:+.2f})."]
    return md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/fmnist-study")
    ap.add_argument("--table3-size", type=int, default=6000)
    args = ap.parse_args()
    out: Path = args.out
    sizes = _size_folders(out)
    if not sizes:
        _fail(f"no {out}/size-*/results.json: run benchmarks/fmnist_study.sh first")
    docs = {size: json.loads((folder / "results.json").read_text()) for size, folder in sizes}
    rows = [c for size in docs for c in docs[size]["cells"] if c["loss"] in ("none", "token")]
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    meta = {"command": "python benchmarks/fmnist_study_report.py " + " ".join(sys.argv[1:]),
            "date": now, "recipe": "recipes/fmnist/deit_token.yaml (benchmarks/fmnist_study.sh)",
            "device": "; ".join(sorted({str(d.get("device")) for d in docs.values()})),
            "sources": [_source(folder, docs[size]) for size, folder in sizes]}
    eff = out / "data-efficiency"
    doc = write_results(eff, rows, meta=meta, plot=False)
    data_efficiency(rows, eff / "data_efficiency.png", teacher_label=lambda t: TEACHER,
                    title="Fashion-MNIST: DeiT⚗ (token) and DeiT (none) against training images")
    agg, paired = doc["aggregate"], doc["paired"]

    md = ["# Fashion-MNIST study: the report", "",
          f"Written by `{meta['command'].strip()}` on {now} from the bench folders below "
          "(each one's command, device, date and commit are in its `results.json`).", "",
          "| folder | command | device | date | commit |", "|---|---|---|---|---|"]
    extra = {name: json.loads(p.read_text()) for name in ("table2", "table3-strong")
             if (p := out / name / "results.json").is_file()}
    t2 = extra.get("table2")
    for s in meta["sources"] + [_source(out / name, d) for name, d in extra.items()]:
        md.append(f"| `{s['folder']}` | `{s['command']}` | {s['device']} | {s['date']} | "
                  f"`{s['commit']}` |")
    md += ["", "## Data efficiency (`data-efficiency/`, figure `data_efficiency.png`)", "",
           "| training images | teacher | `none` | `token` (DeiT⚗) | `token` − `none`, paired ± s.e. |",
           "|---|---|---|---|---|"]
    for size, _ in sizes:
        n, t = _agg(agg, "none", size), _agg(agg, "token", size)
        md.append(f"| {size:,} | {_pm(t['teacher_top1']['mean'], None) if t else '–'} | "
                  f"{_pm(n['top1']['mean'], n['top1']['std']) if n else '–'} | "
                  f"{_pm(t['top1']['mean'], t['top1']['std']) if t else '–'} | "
                  f"{_diff(_paired(paired, 'token', size))} |")
    gains = [(size, p["diff_mean"]) for size, _ in sizes
             if (p := _paired(paired, "token", size)) is not None]
    if len(gains) > 1:
        shrink = all(a[1] >= b[1] for a, b in itertools.pairwise(gains))
        md += ["", f"The gain from distillation {'grows' if shrink else 'does **not** grow'} "
               "as the training set shrinks: " + ", ".join(f"{g:+.2f} at {s:,}" for s, g in gains)
               + "."]
    md += ["", "## Does the `none` curve flatten? (`curves/none-SIZE.png`)", "", *_curves(out, sizes)]

    t3 = docs.get(args.table3_size)
    if t3 is not None:
        md += ["", f"## Table 3 at {args.table3_size:,} training images "
               f"(`size-{args.table3_size}/`)", "", *_table3(t3["cells"], args.table3_size)]
    ts = extra.get("table3-strong")
    if ts is not None:
        size = _train_size(out / "table3-strong", ts)
        base = [c for c in docs.get(size, {"cells": []})["cells"] if c["loss"] == "none"]
        md += ["", f"## Table 3 with a stronger teacher (`table3-strong/`, students on "
               f"{size:,} images)", "",
               "The teacher trained on all 60,000 images, the students on the first "
               f"{size:,} (not the paper's setting, where the teacher saw no more than the "
               f"students); `none` is `size-{size}/`'s.", "", *_table3(ts["cells"] + base, size)]
    if t2 is not None:
        size = _train_size(out / "table2", t2)
        base = [c for c in docs.get(size, {"cells": []})["cells"] if c["loss"] == "none"]
        rows2 = t2["cells"] + base
        a2, p2 = aggregate(rows2), paired_differences(rows2)
        md += ["", f"## Table 2: which teacher? (`table2/`, students on {size:,} images)", "",
               "| teacher | teacher top-1 | DeiT⚗ `token` | − `none`, paired ± s.e. |",
               "|---|---|---|---|"]
        for a in a2:
            if a["loss"] == "none":
                continue
            md.append(f"| `{a['teacher']}` | {_pm(a['teacher_top1']['mean'], None)} | "
                      f"{_pm(a['top1']['mean'], a['top1']['std'])} | "
                      f"{_diff(_paired(p2, a['loss'], size, a['teacher']))} |")
        none = _agg(a2, "none")
        if none is not None:
            md += ["", f"`none` at {size:,} images (from `size-{size}/`): "
                   f"{_pm(none['top1']['mean'], none['top1']['std'])}."]
        md += ["", *_teachers(t2["cells"])]
    atomic_write_text(out / "summary.md", "\n".join(md) + "\n")
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
