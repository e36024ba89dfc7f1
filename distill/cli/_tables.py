"""Tables fitted to the terminal: what `train`, `report` and `bench` print never has a value
cut to "…".

- A table that fits the terminal is printed whole, and so is any table printed to a file or
  a pipe (a log gets every column, however wide), FORCE_COLOR or not (`on_terminal`).
- In a terminal too narrow for it, one row becomes label/value rows.
- Several rows keep their key columns (what tells the rows apart and the top-1 figures) and
  as many of the others as fit, in the order given; a line under the table names the
  columns left out and where every column can be read.
- Where even the key columns do not fit, each row becomes label/value rows.

A table of many rows redrawn in place (`fitted_rows`: `distill bench`'s live table) is never
label/value rows: its rows' short forms, the key columns with the long ones folded within
their cells, and, where its rows are taller than the terminal, those around the rows that
change, with a line naming the rows not shown (rich's `Live` crops what is taller).

A progress display (`FittedProgress`) likewise shows fewer columns where its own would be cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.progress import Progress, ProgressColumn, Task
from rich.table import Table
from rich.text import Text

__all__ = ["Column", "FittedProgress", "fitted", "fitted_rows", "on_terminal", "print_table"]

_UNBOUNDED = 100_000


def on_terminal(console: Console) -> bool:
    """Whether `console` writes to a terminal (its file is a tty). Rich's `is_terminal` also
    says so of a file or a pipe where FORCE_COLOR or TTY_COMPATIBLE is set (colours asked
    for in a log): such output still gets full tables and no live display."""
    isatty = getattr(console.file, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except (OSError, ValueError):  # a closed or detached file
        return False


@dataclass(frozen=True)
class Column:
    """A column's header; `numeric` ones are right-aligned; `key` ones are kept at any
    width (the others, in their order, while they fit); `fold` ones (long labels) may
    fold within their cells where the key columns would not fit otherwise (`fitted_rows`)."""

    name: str
    numeric: bool = False
    key: bool = False
    fold: bool = False


def _table(columns: Sequence[Column], rows: Sequence[Sequence[str]], *, compact: bool,
           title: str | None = None, caption: str | None = None) -> Table:
    style = (dict(show_edge=False, pad_edge=False, collapse_padding=True) if compact else {})
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", title=title, caption=caption,
                  caption_justify="left", caption_style="dim", **style)
    for c in columns:
        table.add_column(c.name, justify="right" if c.numeric else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def _width(console: Console, table: RenderableType) -> int:
    """The width `table` takes when nothing is squeezed."""
    return Measurement.get(console, console.options.update_width(_UNBOUNDED), table).maximum


def _labelled(columns: Sequence[Column], row: Sequence[str]) -> Table:
    """One row as label/value rows; a value wider than the terminal wraps, never cut."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for column, value in zip(columns, row, strict=True):
        if value:
            grid.add_row(column.name, value)
    return grid


def _lines(words: Sequence[str], width: int) -> str:
    """`words` in lines of at most `width` cells, broken only between words (a column's
    name, spaces and all, is one word)."""
    lines: list[str] = []
    for word in words:
        if lines and cell_len(lines[-1]) + 1 + cell_len(word) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return "\n".join(lines)


def fitted(console: Console, columns: Sequence[Column], rows: Sequence[Sequence[str]], *,
           width: int | None, where: str, title: str | None = None) -> RenderableType:
    """`rows` under `columns` for a terminal `width` columns wide (None: the full table,
    as for a file), by the module's rules; `where` says where every column can be read."""
    full = _table(columns, rows, compact=False, title=title)
    if width is None or _width(console, full) <= width:
        return full
    if len(rows) > 1:
        def narrowed(keep: list[int], caption: str | None = None) -> Table:
            return _table([columns[i] for i in keep], [[r[i] for i in keep] for r in rows],
                          compact=True, title=title, caption=caption)

        keep = [i for i, c in enumerate(columns) if c.key]
        if _width(console, narrowed(keep)) <= width:
            for i, c in enumerate(columns):
                if not c.key and _width(console, narrowed(sorted([*keep, i]))) <= width:
                    keep = sorted([*keep, i])
            dropped = [c.name for i, c in enumerate(columns) if i not in keep]
            if not dropped:
                return narrowed(keep)
            names = [f"{name}," for name in dropped[:-1]] + [dropped[-1]]
            return narrowed(keep, _lines([*f"not shown at {width} columns:".split(), *names,
                                          *f"({where})".split()],
                                         _width(console, narrowed(keep))))
    blocks: list[RenderableType] = [Text(title, style="bold")] if title else []
    for n, row in enumerate(rows):
        blocks += [Text("")] if n else []
        blocks.append(_labelled(columns, row))
    return Group(*blocks)


def _fold(value: str, width: int) -> str:
    """`value` in lines of at most `width` cells, broken after a `+`, `_`, `/`, `.`, `:` or
    `-` where one falls in the second half of a line, else at `width`."""
    lines, rest = [], value
    while cell_len(rest) > width:
        cut = width
        while cut > 0 and cell_len(rest[:cut]) > width:
            cut -= 1
        soft = max(rest.rfind(ch, 0, cut) for ch in "+_/.:-") + 1
        cut = soft if soft > cut // 2 else max(cut, 1)
        lines.append(rest[:cut])
        rest = rest[cut:]
    return "\n".join([*lines, rest])


def _ranges(rows: Sequence[int]) -> str:
    """1-based row numbers as ranges: `1–3, 7, 9–12`."""
    spans: list[list[int]] = []
    for n in rows:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in spans)


def _lines_of(console: Console, table: RenderableType, width: int) -> int:
    return len(console.render_lines(table, console.options.update_width(width), pad=False))


def fitted_rows(console: Console, columns: Sequence[Column], rows: Sequence[Sequence[str]], *,
                width: int | None, height: int | None, where: str, title: str | None = None,
                short: Sequence[Sequence[str]] | None = None,
                focus: Sequence[int] = ()) -> Table:
    """`rows` under `columns`, a line or a few per row, never label/value rows, for a
    terminal `width` columns wide and `height` lines tall (None: no limit, as for a file).

    The full table where it fits the width. Otherwise the key columns and as many others
    as fit, of the `short` rows (shorter labels) where the key columns of `rows` would not
    fit; where even those do not fit, the `fold` columns fold within their cells to the
    width the others leave them. Where
    the rows are taller than `height`, those around the rows of `focus` (the ones that
    change) are shown. A line under the table names what is not shown and `where` every
    column and row can be read."""
    keep = list(range(len(columns)))
    dropped: list[str] = []
    full = _table(columns, rows, compact=False, title=title)
    compact = not (width is None or _width(console, full) <= width)
    if compact:
        assert width is not None

        def narrowed(keep: list[int], body: Sequence[Sequence[str]]) -> Table:
            return _table([columns[i] for i in keep], [[r[i] for i in keep] for r in body],
                          compact=True, title=title)

        keep = [i for i, c in enumerate(columns) if c.key]
        if short is not None and _width(console, narrowed(keep, rows)) > width:
            rows = short
        if _width(console, narrowed(keep, rows)) <= width:
            for i, c in enumerate(columns):
                if not c.key and _width(console, narrowed(sorted([*keep, i]), rows)) <= width:
                    keep = sorted([*keep, i])
        else:
            folds = [i for i in keep if columns[i].fold]
            if folds:
                blank = [["" if i in folds else v for i, v in enumerate(r)] for r in rows]
                spare = max(0, width - _width(console, narrowed(keep, blank))) // len(folds)
                room = {i: max(cell_len(columns[i].name) + spare, 8) for i in folds}
                rows = [[_fold(v, room[i]) if i in room else v for i, v in enumerate(r)]
                        for r in rows]
        dropped = [c.name for i, c in enumerate(columns) if i not in keep]
        rows = [[r[i] for i in keep] for r in rows]
        columns = [columns[i] for i in keep]

    def note(hidden: Sequence[int]) -> str | None:
        words = f"rows {_ranges(hidden)} not shown;".split() if hidden else []
        if dropped:
            words += f"not shown at {width} columns:".split()
            words += [f"{name}," for name in dropped[:-1]] + [dropped[-1]]
        if not words:
            return None
        words[-1] = words[-1].rstrip(";")
        words += f"({where})".split()
        measure = width if width is not None else _width(console, full)
        return _lines(words, min(measure, _width(console, _table(columns, rows,
                                                                  compact=compact))))

    def table(shown: Sequence[int], caption: str | None) -> Table:
        return _table(columns, [rows[n] for n in shown], compact=compact, title=title,
                      caption=caption)

    shown = list(range(len(rows)))
    if height is not None and rows:
        measure = width if width is not None else _UNBOUNDED
        if _lines_of(console, table(shown, note([])), measure) > height:
            # what the rows leave: the worst note (every other row hidden) under no row
            worst = note(list(range(1, len(rows) + 1, 2)))
            budget = height - _lines_of(console, table([], worst), measure)
            tall = [max(v.count("\n") + 1 for v in r) if r else 1 for r in rows]
            at = sorted(n for n in focus if 0 <= n < len(rows)) or [len(rows) - 1]
            lo, hi = at[0], at[0]
            used = tall[lo]
            if used > budget:
                shown = [lo]
            else:
                while True:  # one row below, then one above, while they fit
                    grew = False
                    for n in (hi + 1, lo - 1):
                        if 0 <= n < len(rows) and used + tall[n] <= budget:
                            used += tall[n]
                            lo, hi, grew = min(lo, n), max(hi, n), True
                    if not grew:
                        break
                shown = list(range(lo, hi + 1))
    hidden = [n + 1 for n in range(len(rows)) if n not in shown]
    return table(shown, note(hidden))


def print_table(console: Console, columns: Sequence[Column], rows: Sequence[Sequence[str]],
                *, where: str) -> None:
    """Print `rows` fitted to `console` where it is a terminal; elsewhere (a file, a pipe)
    the full table, as wide as it needs."""
    if on_terminal(console):
        console.print(fitted(console, columns, rows, width=console.width, where=where))
        return
    table = _table(columns, rows, compact=False)
    Console(width=_width(console, table), file=console.file).print(table)


class FittedProgress(Progress):
    """A `Progress` that shows its `narrow` columns where its own would not fit the
    terminal (rich would cut each of them to "…")."""

    def __init__(self, *columns: str | ProgressColumn, narrow: Sequence[str | ProgressColumn],
                 **kwargs: Any) -> None:
        self.narrow = tuple(narrow)
        super().__init__(*columns, **kwargs)

    def make_tasks_table(self, tasks: Iterable[Task]) -> Table:
        tasks = list(tasks)
        table = super().make_tasks_table(tasks)
        live = getattr(self, "live", None)  # None: rich's __init__ drawing a first frame
        if live is not None and _width(live.console, table) > live.console.width:
            full, self.columns = self.columns, self.narrow
            try:
                table = super().make_tasks_table(tasks)
            finally:
                self.columns = full
        return table
