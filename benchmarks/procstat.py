"""CPU seconds of this process and its live loader workers, for the benchmarks that time a
loader per CPU-second (`jpeg_loader.py`, `shards_speed.py`). Linux: read from /proc."""

from __future__ import annotations

import os


def _children(pid: int) -> list[int]:
    """The live child processes of `pid` (Linux: /proc/PID/task/*/children)."""
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                kids += [int(k) for k in fh.read().split()]
        except OSError:
            continue
    return kids


def _proc_cpu(pid: int) -> float:
    """user + system seconds of process `pid` (all its threads), 0 where it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu() -> float:
    """CPU seconds of this process, its reaped children and its live descendants. The
    difference of two readings is what the process tree spent between them (a child that
    was live at the first and reaped by the second counts once: its reaped total less its
    first reading)."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    todo = _children(os.getpid())
    while todo:
        pid = todo.pop()
        total += _proc_cpu(pid)
        todo += _children(pid)
    return total
