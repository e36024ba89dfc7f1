"""Benchmarks: the strategy × teacher matrix of `distill bench`, the step timing of
`distill speed`.

`distill bench` plans cells (`cells`), runs each as an ordinary training run through the
engine (`run`), measures each student once (`measure`), and writes its tables and Figure 1
(`results`; the figure is drawn by `distill.plots`). `distill speed`
(`speed`) times training steps of no teacher, a live teacher, a cached teacher and timm's
own `TokenDistillationTask` in one process.
"""

from .cells import Cell, paper_settings, plan_cells, student_for, teacher_slug
from .measure import ModelMeter
from .results import aggregate, paired_differences, table3_markdown, write_results
from .run import CacheUse, result_row, run_cells

__all__ = [
    "CacheUse",
    "Cell",
    "ModelMeter",
    "aggregate",
    "paired_differences",
    "paper_settings",
    "plan_cells",
    "result_row",
    "run_cells",
    "student_for",
    "table3_markdown",
    "teacher_slug",
    "write_results",
]
