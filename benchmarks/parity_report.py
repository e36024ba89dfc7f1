"""The parity study's table (issue 26): the official DeiT code and ours on the quickstart's
setting, arm by arm and seed by seed, with each condition's distillation gain.

    python benchmarks/parity_report.py benchmarks/results/parity-official-deit > table.md

FOLDER holds one sub-folder per condition: `official/` (DeiT's main.py: `none-s<seed>/`
and `token-s<seed>/`, each with the `log.txt` DeiT writes: the last line's `test_acc1`
after the last epoch) and `ours-*/` (a `distill bench --losses none,token` output: its
cells' `summary.json`). Figures are top-1 (%) on the 10,000 test images, both heads
averaged for DeiT⚗. `gain` is token − none of the same seed; mean ± standard error over
seeds. Between conditions: the difference of the means, ± the square root of the summed
squared standard errors (independent arms), or paired by seed where both conditions ran
the same seeds and the label says so.

`ours-<pipeline>` and `ours-<pipeline>-epoch` (pipeline `pil` or `tensor`; `-epoch` for
`--set schedule.step=epoch`) form a 2 × 2 design, which the last section reads by factor:
each factor's effect paired by seed within each level of the other, the pairs of both levels
together (taken as free of interaction, whose estimate is printed beside), with Student's t,
its two-sided p, and the 90 % interval: where it lies within ±1 point, the two one-sided tests
at 5 % show the factor's effect smaller than a point (equivalence at the 1-point level).

`gain's s.d.` is the standard deviation of one run's gain over the seeds: the run-to-run
spread that a standard error of few seeds rests on.

`official-*/` folders (the official code's layout) are ablations run by the official code,
such as `official-ourtwin/` (its `main.py` training our class-token DeiT); they may hold one
arm only, and appear in the per-arm section.

`FOLDER/elsewhere.json`, where present, adds conditions run on another machine:
`{"conditions": {NAME: {"source": TEXT, "none": {SEED: TOP1}, "token": {...}}}, "compare":
[[NAME, OFFICIAL_NAME], ...], "pools": {NAME: [CONDITION, ...]}, "pool_compare": [[POOL,
POOL], ...]}`. `compare` sets a condition against the official code's run on its own
machine; `pool_compare` says which pools to set against which (by default each against the
pool that holds `official`). A pool puts its conditions'
gains together as if independent: a rough figure only (runs of one seed share their
initialisation and data order across machines, and the machines' teachers and commits
differ), printed apart from the comparisons on one machine. Each `pool_compare` pair is also
set side by side arm by arm (every run of each arm, those without the other arm too), and by
the gain taken from the arms' means (token's mean − none's mean, the four sets of runs as
independent): the figure that counts a pool's one-arm runs, such as an ablation's twins.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

ARMS = ("none", "token")


def _official(folder: Path) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {arm: {} for arm in ARMS}
    for cell in sorted(folder.glob("*-s*")):
        arm, seed = cell.name.rsplit("-s", 1)
        log = cell / "log.txt"
        if arm not in out or not (cell / "DONE").exists() or not log.is_file():
            continue
        rows = _jsonl(log)
        last = max(rows, key=lambda r: r["epoch"]) if rows else {}
        top1 = float(last.get("test_acc1", math.nan))
        if math.isfinite(top1):  # the last epoch's evaluation (deit logs NaN between them)
            out[arm][int(seed)] = top1
    return out


def _jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines file (deit's log.txt, our metrics.jsonl)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _ours(folder: Path) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {arm: {} for arm in ARMS}
    for summary in sorted(folder.glob("cells/*/summary.json")):
        s = json.loads(summary.read_text())
        arm = summary.parent.name.split("-", 1)[0]
        seed = int(summary.parent.name.rsplit("-s", 1)[1])
        if arm in out:
            out[arm][seed] = float(s["top1"])
    return out


def mean_sd(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else math.nan
    return m, sd


def mean_se(xs: list[float]) -> tuple[float, float]:
    m, sd = mean_sd(xs)
    return m, sd / math.sqrt(len(xs))


def fmt(m: float, e: float, sign: bool = False) -> str:
    value = f"{m:+.2f}" if sign else f"{m:.2f}"
    return f"{value} (one run)" if math.isnan(e) else f"{value} ± {e:.2f}"


def versus(label: str, a: tuple[float, float], b: tuple[float, float]) -> str:
    """`label`: the difference of two independent means ± √(se₁² + se₂²), and how many
    standard errors that is (none where either side is one run)."""
    d, de = a[0] - b[0], math.hypot(a[1], b[1])
    ratio = "" if math.isnan(de) else (f" ({abs(d) / de:.1f} s.e.)" if de > 0 else " (s.e. 0)")
    return f"- {label}: {fmt(d, de, sign=True)}{ratio}"


def conditions(root: Path) -> dict[str, dict[str, dict[int, float]]]:
    found = {}
    if (root / "official").is_dir():
        found["official"] = _official(root / "official")
    for folder in sorted(root.glob("official-*")):  # ablations run by the official code
        if folder.is_dir():
            found[folder.name] = _official(folder)
    for folder in sorted(root.glob("ours-*")):
        found[folder.name] = _ours(folder)
    for name, cond in _elsewhere(root).get("conditions", {}).items():
        if name in found:
            raise SystemExit(f"elsewhere.json: condition '{name}' is also a folder here")
        missing = [arm for arm in ARMS if arm not in cond]
        if missing:
            raise SystemExit(f"elsewhere.json: condition '{name}' has no '{missing[0]}' cells")
        found[name] = {arm: {int(k): float(v) for k, v in cond[arm].items()} for arm in ARMS}
    return found


def _elsewhere(root: Path) -> dict:
    path = root / "elsewhere.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _pools(root: Path, conds: dict) -> tuple[dict[str, list[str]], list[list[str]] | None]:
    """elsewhere.json's pools and its `pool_compare` pairs (None where it gives none), each
    name checked: one line naming what is wrong, not a KeyError."""
    elsewhere = _elsewhere(root)
    pools = elsewhere.get("pools", {})
    for name, members in pools.items():
        unknown = [c for c in members if c not in conds]
        if unknown:
            raise SystemExit(f"elsewhere.json: pool '{name}' names no condition '{unknown[0]}'")
    pairs = elsewhere.get("pool_compare")
    for a, b in pairs or []:
        if a not in pools or b not in pools:
            raise SystemExit(f"elsewhere.json: pool_compare names no pool '{a if a not in pools else b}'")
    return pools, pairs


def pooled(root: Path, conds: dict[str, dict[str, dict[int, float]]]) -> list[str]:
    """Each pool's gain over all its conditions' seeds, and each against the official pool."""
    pools, pairs = _pools(root, conds)
    if not pools:
        return []
    got = {name: [g for c in members for g in gains(conds[c]).values()]
           for name, members in pools.items()}
    lines = ["", "Pools of conditions (each pool's runs taken as independent; over two "
             "machines a rough figure, as runs of one seed share their initialisation and data "
             "order there; mean ± standard error):", ""]
    for name, g in got.items():
        if len(g) > 1:
            lines.append(f"- {name} ({' + '.join(pools[name])}): {fmt(*mean_se(g), sign=True)} "
                         f"over {len(g)} runs")
    if pairs is None:  # each pool against the one holding the official code's cells here
        ref = next((n for n, members in pools.items() if "official" in members), None)
        pairs = [[name, ref] for name in got if ref is not None and name != ref]
    for a, b in pairs:
        if len(got[a]) > 1 and len(got[b]) > 1:
            lines.append(versus(f"{a} − {b}", mean_se(got[a]), mean_se(got[b])))
    return lines


def arms(root: Path, conds: dict[str, dict[str, dict[int, float]]]) -> list[str]:
    """Each arm alone: every condition's mean ± s.e. of each arm, each condition of this
    machine against the official code's, arm by arm, and the pools of `pool_compare` arm by
    arm (all the runs of an arm, those without the other arm too)."""
    if "official" not in conds:
        return []
    elsewhere = _elsewhere(root)
    lines = ["", "Each arm alone (top-1 %, mean ± standard error over all its runs; against the "
             "official code's on this machine as independent runs):", ""]
    for arm in ARMS:
        ref = list(conds["official"][arm].values())
        for name, cells in conds.items():
            xs = list(cells[arm].values())
            if name == "official" or name in elsewhere.get("conditions", {}) or not xs:
                continue
            if len(ref) > 1:
                runs = f"{len(xs)} run{'s' if len(xs) > 1 else ''}"
                lines.append(versus(f"{arm}: {name} ({runs}) − official ({len(ref)})",
                                    mean_se(xs) if len(xs) > 1 else (xs[0], math.nan),
                                    mean_se(ref)))
    pools, pairs = _pools(root, conds)
    for a, b in pairs or []:
        runs = {}
        for arm in ARMS:
            xa = [v for c in pools[a] for v in conds[c][arm].values()]
            xb = [v for c in pools[b] for v in conds[c][arm].values()]
            runs[arm] = (xa, xb)
            if len(xa) > 1 and len(xb) > 1:
                lines.append(versus(f"{arm}: {a} ({len(xa)} runs) − {b} ({len(xb)})",
                                    mean_se(xa), mean_se(xb)))
        if all(len(x) > 1 for pair in runs.values() for x in pair):
            # token's mean − none's mean on each side, all four sets of runs independent
            (na, nb), (ta, tb) = runs["none"], runs["token"]
            side = []
            for n, t in ((na, ta), (nb, tb)):
                (mn, en), (mt, et) = mean_se(n), mean_se(t)
                side.append((mt - mn, math.hypot(en, et)))
            lines.append(versus(f"gain from the arms' means, unpaired: {a} − {b}", *side))
    return lines


def _curve_rows(root: Path, name: str, arm: str) -> list[list[dict]]:
    """Each finished run of one arm: its per-epoch rows as {epoch (1-based), top1 or None,
    loss}; from deit's log.txt or our metrics.jsonl."""
    runs = []
    if name.startswith("official"):
        for cell in sorted((root / name).glob(f"{arm}-s*")):
            if (cell / "DONE").exists() and (cell / "log.txt").is_file():
                rows = _jsonl(cell / "log.txt")
                runs.append([{"epoch": r["epoch"] + 1, "loss": r.get("train_loss"),
                              "top1": None if math.isnan(r["test_acc1"]) else r["test_acc1"]}
                             for r in rows])
    else:
        for summary in sorted((root / name).glob(f"cells/{arm}-*/summary.json")):
            metrics = summary.parent / "metrics.jsonl"
            if not metrics.is_file():
                continue
            rows = _jsonl(metrics)
            runs.append([{"epoch": r["epoch"] + 1, "loss": r.get("train_loss"), "top1": r.get("top1")}
                         for r in rows if r.get("kind") == "epoch"])
    return runs


def curves(root: Path, conds: dict[str, dict[str, dict[int, float]]]) -> list[str]:
    """Each arm's test top-1 at the epochs both codes evaluate, mean over its runs, and
    its mean training loss over the last 20 epochs: when in training two conditions part."""
    if "official" not in conds:
        return []
    names = [n for n in conds if (root / n).is_dir()]
    lines = []
    for arm in ARMS:
        runs = {n: _curve_rows(root, n, arm) for n in names}
        runs = {n: r for n, r in runs.items() if r}
        if "official" not in runs:
            continue
        epochs = sorted({row["epoch"] for row in runs["official"][0] if row["top1"] is not None})
        lines += ["", f"`{arm}` arm: test top-1 by epoch (mean over runs) and training loss over "
                  "the last 20 epochs (mean over runs):", "",
                  "| condition | runs | " + " | ".join(f"epoch {e}" for e in epochs)
                  + " | loss, last 20 |", "|---|---|" + "---|" * (len(epochs) + 1)]
        for name, rs in runs.items():
            cells = []
            for e in epochs:
                xs = [row["top1"] for r in rs for row in r if row["epoch"] == e and row["top1"] is not None]
                cells.append(f"{sum(xs) / len(xs):.2f}" if xs else "–")
            loss = [sum(x) / len(x) for r in rs
                    if (x := [row["loss"] for row in r[-20:] if row["loss"] is not None])]
            lines.append(f"| {name} | {len(rs)} | " + " | ".join(cells)
                         + (f" | {sum(loss) / len(loss):.3f} |" if loss else " | – |"))
    return lines


def gains(cells: dict[str, dict[int, float]]) -> dict[int, float]:
    return {s: cells["token"][s] - cells["none"][s] for s in cells["none"] if s in cells["token"]}


def report(root: Path) -> str:
    conds = conditions(root)
    lines = ["| condition | seeds | no teacher | DeiT⚗ (token) | gain token − none | gain's s.d. |",
             "|---|---|---|---|---|---|"]
    summary: dict[str, tuple[float, float]] = {}
    for name, cells in conds.items():
        g = gains(cells)
        if not g:
            continue
        none_m = mean_sd([cells["none"][s] for s in g])
        tok_m = mean_sd([cells["token"][s] for s in g])
        summary[name] = mean_se(list(g.values())) if len(g) > 1 else (next(iter(g.values())), math.nan)
        spread = mean_sd(list(g.values()))[1]
        lines.append(f"| {name} | {','.join(map(str, sorted(g)))} | {fmt(*none_m)} | {fmt(*tok_m)} "
                     f"| **{fmt(*summary[name], sign=True)}** | {_f(spread)} |")
    lines += ["", "Per seed (top-1 %, none / token / gain):", "",
              "| condition | " + " | ".join(f"seed {s}" for s in _all_seeds(conds)) + " |",
              "|---|" + "---|" * len(_all_seeds(conds))]
    for name, cells in conds.items():
        row = []
        for s in _all_seeds(conds):
            a, b = cells["none"].get(s), cells["token"].get(s)
            row.append(f"{_f(a)} / {_f(b)}" + (f" / {b - a:+.2f}" if a is not None and b is not None else ""))
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    elsewhere = _elsewhere(root).get("conditions", {})
    if "official" in summary:
        lines += ["", "Gain against the official code's on this machine (independent runs: "
                  "± √(se₁² + se₂²)):", ""]
        for name in summary:
            if name != "official" and name not in elsewhere:
                lines.append(versus(f"{name} − official", summary[name], summary["official"]))
    compare = [(a, b) for a, b in _elsewhere(root).get("compare", []) if a in summary and b in summary]
    if compare:
        lines += ["", "Gain against the official code's on another machine (elsewhere.json):", ""]
        lines += [versus(f"{a} − {b}", summary[a], summary[b]) for a, b in compare]
    lines += arms(root, conds)
    lines += curves(root, conds)
    lines += pooled(root, conds)
    here = [c for c in conds if c.startswith("ours") and c not in _elsewhere(root).get("conditions", {})
            and gains(conds[c])]  # one-arm ablations (another model class) pair with nothing
    pairs = [(a, b) for a in here for b in here if a < b]
    if pairs:
        lines += ["", "Between our conditions on this machine, paired by seed (same seeds, same "
                  "initialisation and data order):", ""]
    for a, b in pairs:
        for arm in ARMS:
            common = sorted(set(conds[a][arm]) & set(conds[b][arm]))
            if len(common) > 1:
                d = [conds[b][arm][s] - conds[a][arm][s] for s in common]
                lines.append(f"- {arm}: {b} − {a}: {fmt(*mean_se(d), sign=True)} (seeds "
                             f"{','.join(map(str, common))})")
        ga, gb = gains(conds[a]), gains(conds[b])
        common = sorted(set(ga) & set(gb))
        if len(common) > 1:
            d = [gb[s] - ga[s] for s in common]
            lines.append(f"- gain: {b} − {a}: {fmt(*mean_se(d), sign=True)}")
    lines += factors({c: conds[c] for c in here})
    return "\n".join(lines) + "\n"


def t_cdf(t: float, df: int) -> float:
    """Student's t distribution function: Simpson's rule on its density (error < 1e-9)."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    a, n = abs(t), 4000
    h = a / n
    f = [c * (1 + (i * h) ** 2 / df) ** (-(df + 1) / 2) for i in range(n + 1)]
    area = h / 3 * (f[0] + f[-1] + 4 * sum(f[1:-1:2]) + 2 * sum(f[2:-1:2]))
    return 0.5 + math.copysign(area, t)


def t_quantile(p: float, df: int) -> float:
    """The t value below which a share `p` (0.5 < p < 1) of the distribution lies."""
    lo, hi = 0.0, 1e3
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def paired_test(d: list[float]) -> str:
    """Mean ± s.e. of paired differences, t, two-sided p, and the 90 % interval with whether
    it lies within ±1 (equivalence at 1 point by two one-sided tests at 5 %)."""
    m, se = mean_se(d)
    df = len(d) - 1
    if df < 1 or not se > 0:
        return fmt(m, se, sign=True) + f" ({len(d)} pairs)"
    t = m / se
    p = 2 * (1 - t_cdf(abs(t), df))
    q = t_quantile(0.95, df)
    eq = "yes" if abs(m) + q * se < 1 else "no"
    return (f"{fmt(m, se, sign=True)} ({len(d)} pairs; t {t:+.2f}, {df} d.f., p {p:.3f}; "
            f"90 % interval {m - q * se:+.2f} to {m + q * se:+.2f}, within ±1: {eq})")


def factors(conds: dict[str, dict[str, dict[int, float]]]) -> list[str]:
    """The 2 × 2 design (pipeline × LR stepping) of our conditions on this machine."""
    cell = {(pipe, step): conds.get(f"ours-{pipe}" + ("-epoch" if step == "epoch" else ""))
            for pipe in ("pil", "tensor") for step in ("iter", "epoch")}
    if any(c is None for c in cell.values()):
        return []

    def arm(c: dict[str, dict[int, float]], name: str) -> dict[int, float]:
        return gains(c) if name == "gain" else c[name]

    lines = ["", "By factor, on this machine (pairs of the same seed; pipeline × LR stepping):",
             ""]
    for factor, levels, others, by_step in (
            ("LR stepping, epoch − iter", ("iter", "epoch"), ("pil", "tensor"), True),
            ("pipeline, tensor − pil", ("pil", "tensor"), ("iter", "epoch"), False)):
        for name in ("none", "token", "gain"):
            per_level = []
            for other in others:
                lo, hi = (((other, lv) if by_step else (lv, other)) for lv in levels)
                a, b = arm(cell[lo], name), arm(cell[hi], name)
                per_level.append([b[s] - a[s] for s in sorted(set(a) & set(b))])
            pooled = [x for d in per_level for x in d]
            line = f"- {factor}, {name}: {paired_test(pooled)}"
            if all(len(d) > 1 for d in per_level):
                (m1, e1), (m2, e2) = (mean_se(d) for d in per_level)
                line += (f"; on {others[0]} {m1:+.2f}, on {others[1]} {m2:+.2f}, their difference "
                         f"{fmt(m2 - m1, math.hypot(e1, e2), sign=True)}")
            lines.append(line)
    return lines


def _all_seeds(conds: dict[str, dict[str, dict[int, float]]]) -> list[int]:
    return sorted({s for cells in conds.values() for arm in cells.values() for s in arm})


def _f(x: float | None) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.2f}"


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        print("usage: parity_report.py FOLDER", file=sys.stderr)
        raise SystemExit(2)
    sys.stdout.write(report(Path(sys.argv[1])))
