"""Tables fitted to the terminal: what `train`, `report` and `bench` print never has a value
cut to "…".

- A table that fits the terminal is printed whole, and so is any table printed to a file or
  a pipe (a log gets every column, however wide).
- In a terminal too narrow for it, one row becomes label/value rows.
- Several rows keep their key columns (what tells the rows apart and the top-1 figures) and
  as many of the others as fit, in the order given; a line under the table names the
  columns left out and where every column can be read.
- Where even the key columns do not fit, each row becomes label/value rows.

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

__all__ = ["Column", "FittedProgress", "fitted", "print_table"]

_UNBOUNDED = 100_000


@dataclass(frozen=True)
class Column:
    """A column's header; `numeric` ones are right-aligned; `key` ones are kept at any
    width (the others, in their order, while they fit)."""

    name: str
    numeric: bool = False
    key: bool = False


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


def print_table(console: Console, columns: Sequence[Column], rows: Sequence[Sequence[str]],
                *, where: str) -> None:
    """Print `rows` fitted to `console` where it is a terminal; elsewhere (a file, a pipe)
    the full table, as wide as it needs."""
    if console.is_terminal:
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
