"""Benchmarks: the strategy × teacher matrix of `distill bench`, the step timing of
`distill speed`.

`distill bench` plans cells (`cells`), runs each as an ordinary training run through the
engine (`run`), and writes its tables and plot (`results`, `plot`). `distill speed`
(`speed`) times training steps of no teacher, a live teacher, a cached teacher and timm's
own `TokenDistillationTask` in one process.
"""

from .cells import Cell, paper_settings, plan_cells, student_for, teacher_slug
from .plot import accuracy_vs_throughput
from .results import aggregate, table3_markdown, write_results
from .run import BenchReporter, CacheUse, cell_row, model_gflops, run_cells

__all__ = [
    "BenchReporter",
    "CacheUse",
    "Cell",
    "accuracy_vs_throughput",
    "aggregate",
    "cell_row",
    "model_gflops",
    "paper_settings",
    "plan_cells",
    "run_cells",
    "student_for",
    "table3_markdown",
    "teacher_slug",
    "write_results",
]
