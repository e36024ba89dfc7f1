"""`distill bench RECIPE`: the strategy × teacher matrix (the paper's Tables 2 and 3)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import typer
from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from distill.bench import CacheUse, Cell, plan_cells, run_cells, teacher_slug, write_results
from distill.engine import Reporter, resolve_runtime
from distill.errors import UsageError

from ._common import SetOption, check_folder, console, err_console, print_note, provenance
from ._tables import Column, fitted_rows, on_terminal, print_table


def _fmt(v: Any, digits: int = 2) -> str:
    return "" if v is None else f"{v:.{digits}f}"


# The live table's columns; in a narrow terminal the key ones stay (what tells the cells
# apart, the seed included, and their figures), the teacher's slug folded where they would
# not fit otherwise, the others while they fit.
LIVE_COLUMNS = [Column("cell", key=True), Column("loss", key=True),
                Column("teacher", key=True, fold=True), Column("student"),
                Column("seed", numeric=True, key=True), Column("status", key=True),
                Column("img/s", numeric=True), Column("top1", numeric=True, key=True),
                Column("cls", numeric=True, key=True), Column("dist", numeric=True, key=True),
                Column("teacher top1", numeric=True)]
# results.md's columns kept in a narrow terminal: what a row is and its top-1 figures
# (and every teacher's column of the paper's Table 3, headed "teacher `spec`").
RESULT_KEYS = {"method", "loss", "teacher", "top-1", "class head", "dist. head",
               "top-1 difference ± s.e."}
_NUMBER = re.compile(r"[-+]?[\d,]*\.?\d+(e[-+]?\d+)?( ± [\d.]+)?|–")


def print_results(md: str, where: str) -> None:
    """results.md as it is where its tables fit the terminal, or where it goes to a file or
    a pipe; in a narrower terminal, its text wrapped at words and its tables fitted
    (`_tables`), with `where` (the file) named for the columns left out."""
    lines = md.splitlines()
    tables = [cell_len(line) for line in lines if line.startswith("|")]
    if not on_terminal(console) or max(tables, default=0) <= console.width:
        typer.echo(md)  # markdown, unwrapped
        return
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and lines[j].startswith("|"):
            j += 1
        if j > i:
            _print_markdown_table(lines[i:j], where)
            i = j
        else:
            console.print(Text(lines[i]))
            i += 1


def _print_markdown_table(lines: list[str], where: str) -> None:
    header, rule, *rows = [[c.strip() for c in ln.strip()[1:-1].split("|")] for ln in lines]
    if rows and (set("".join(rule)) == {"-"} and {len(r) for r in rows} == {len(header)}):
        columns = [Column(h.replace("`", ""), key=h in RESULT_KEYS or h.startswith("teacher `"),
                          numeric=all(_NUMBER.fullmatch(r[k]) for r in rows))
                   for k, h in enumerate(header)]
        print_table(console, columns, [[c.replace("`", "") for c in r] for r in rows],
                    where=where)
    else:  # not a table of this file's shape: its lines as they are
        for line in lines:
            console.print(Text(line))


class LiveBench(Reporter):
    """A rich table of the cells, redrawn as they train (a line per event in logs)."""

    def __init__(self, cells: list[Cell], out: Console = err_console):
        self.cells, self.console = cells, out
        self.state: dict[int, dict[str, Any]] = {i: {"status": "waiting"} for i in range(len(cells))}
        self.live: Live | None = None
        self.t0 = time.perf_counter()

    def table(self) -> RenderableType:
        """The cells, a row each (a few lines where a teacher's name folds), fitted to the
        terminal: rich's `Live` crops what is taller, so the rows around the running cell
        are shown where all of them do not fit (`_tables.fitted_rows`)."""
        states = list(self.state.values())
        rows = [[str(i + 1), c.loss, c.teacher or "–", c.student, str(c.seed), s["status"],
                 _fmt(s.get("rate"), 0), _fmt(s.get("top1")), _fmt(s.get("top1_cls")),
                 _fmt(s.get("top1_dist")), _fmt(s.get("teacher_top1"))]
                for i, (c, s) in enumerate(zip(self.cells, states, strict=True))]
        short = [[*r[:2], teacher_slug(c.teacher) if c.teacher else "–", *r[3:]]
                 for r, c in zip(rows, self.cells, strict=True)]
        running = [i for i, s in enumerate(states) if not s["status"].startswith(("done",
                                                                                  "waiting"))]
        waiting = [i for i, s in enumerate(states) if s["status"] == "waiting"]
        terminal = on_terminal(self.console)
        return fitted_rows(self.console, LIVE_COLUMNS, rows, short=short,
                           width=self.console.width if terminal else None,
                           height=self.console.height - 1 if terminal else None,
                           focus=running or waiting[:1], where="results.md will have them all",
                           title=f"distill bench: {len(self.cells)} cells, "
                                 f"{time.perf_counter() - self.t0:.0f} s")

    def __enter__(self) -> LiveBench:
        if on_terminal(self.console):
            self.live = Live(get_renderable=self.table, console=self.console,
                             refresh_per_second=2)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def _line(self, text: str) -> None:
        if self.live is None:
            self.console.print(text, highlight=False, soft_wrap=True)

    def note(self, text: str) -> None:
        if self.live is not None:
            self.live.console.print(f"[dim]{text}[/dim]")
        else:
            self._line(text)

    def cell_start(self, cell: Cell, index: int) -> Reporter:
        self.state[index]["status"] = "starting"
        self._line(f"cell {index + 1}/{len(self.cells)} {cell.name}: training")
        return _CellReporter(self, index)

    def cell_done(self, cell: Cell, index: int, row: dict[str, Any], ran: bool) -> None:
        s = self.state[index]
        s.update(status="done" if ran else "done before", rate=row["train_images_per_s"],
                 **{k: row[k] for k in ("top1", "top1_cls", "top1_dist", "teacher_top1")})
        self._line(f"cell {index + 1}/{len(self.cells)} {cell.name}: {s['status']}, top1 "
                   f"{_fmt(row['top1'])}, {_fmt(row['train_images_per_s'], 0)} img/s")


class _CellReporter(Reporter):
    """One cell's training run, shown in the bench's table."""

    def __init__(self, bench: LiveBench, index: int):
        self.bench, self.index, self.epochs = bench, index, 0

    def start(self, *, epochs: int, start_epoch: int, steps_per_epoch: int,
              info: dict[str, Any]) -> None:
        self.epochs = epochs
        self.bench.state[self.index]["status"] = f"epoch {start_epoch + 1}/{epochs}"

    def step(self, metrics: dict[str, Any]) -> None:
        self.bench.state[self.index]["rate"] = metrics.get("images_per_s")

    def epoch(self, metrics: dict[str, Any]) -> None:
        e = metrics["epoch"] + 1
        s = self.bench.state[self.index]
        s["status"] = f"epoch {min(e + 1, self.epochs)}/{self.epochs}"
        s["rate"] = metrics.get("train_images_per_s")
        s.update({k: metrics[k] for k in ("top1", "top1_cls", "top1_dist") if k in metrics})
        self.bench._line(f"  epoch {e}/{self.epochs} loss {metrics.get('train_loss', 0):.4f} "
                         f"{metrics.get('train_images_per_s', 0):.0f} img/s"
                         + (f" top1 {metrics['top1']:.2f}" if "top1" in metrics else ""))

    def note(self, text: str) -> None:
        self.bench.note(f"  {text}")


def bench(
    ctx: typer.Context,
    recipe: Path = typer.Argument(..., help="Recipe YAML file: data, budget and optimizer of "
                                  "every cell."),
    losses: str = typer.Option(None, "--losses", help="Comma-separated strategies, e.g. "
                               "none,soft,hard,token (default: the recipe's)."),
    teachers: str = typer.Option(None, "--teachers", help="Comma-separated teacher specs, "
                                 "e.g. timm:regnety_160,checkpoint:runs/x (default: the "
                                 "recipe's)."),
    students: str = typer.Option(None, "--students", help="Comma-separated students; each "
                                 "loss gets those that fit it (default: the recipe's student, "
                                 "with or without the distillation token as the loss needs)."),
    seeds: str = typer.Option(None, "--seeds", help="Comma-separated seeds, e.g. 0,1,2 "
                              "(default: the recipe's run.seed)."),
    out: Path = typer.Option(None, "--out", "-o", help="Benchmark folder (default: "
                             "runs/bench/<recipe name>)."),
    cache: str = typer.Option(None, "--cache", help="Share each teacher's outputs between "
                              "cells: a folder for the logit caches, or 'auto' for "
                              "OUT/caches."),
    store: str = typer.Option(None, "--store", help="Cache store: full | topk:K | hard "
                              "(default: hard, full when a cell needs soft targets)."),
    sets: list[str] = SetOption,
    plot: bool = typer.Option(True, "--plot/--no-plot", help="Draw accuracy_vs_throughput.png."),
) -> None:
    """Run the matrix of losses × teachers × students × seeds; write results.json, .csv, .md
    and accuracy_vs_throughput.png into OUT. Finished cells are kept: run again to resume."""
    out = out or Path("runs", "bench", recipe.stem)
    check_folder(out, "--out")
    cells = plan_cells(recipe, losses=losses, teachers=teachers, students=students,
                       seeds=seeds, sets=sets, out=out, note=print_note)
    use = None
    if cache is not None:
        if not cache.strip():
            raise UsageError("--cache: expected a folder or 'auto'")
        use = CacheUse(out / "caches" if cache == "auto" else Path(cache), store)
    elif store is not None:
        raise UsageError(f"--store: '{store}' needs --cache (the store of the shared caches)")
    meta = provenance(ctx) | {"device": resolve_runtime(cells[0].recipe).summary()["device_name"],
                           "recipe": str(recipe), "cells_planned": len(cells)}
    with LiveBench(cells) as live:
        rows = run_cells(cells, cache=use, reporter=live,  # files kept current as cells end
                         on_row=lambda done: write_results(out, done, meta=meta, plot=False))
    write_results(out, rows, meta=meta, plot=plot)
    console.print(f"[bold]{len(rows)} cells[/bold] → {out}/results.md", highlight=False)
    print_results((out / "results.md").read_text(), f"{out}/results.md has them all")
