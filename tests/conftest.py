"""Shared fixtures: the smoke recipe, a CLI runner, tiny recipes that train in a second."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "recipes" / "smoke.yaml"

torch.set_num_threads(min(2, torch.get_num_threads()))

# Tiny overrides that make the smoke recipe a one-second run.
FAST = ["data.options.train_size=64", "data.options.val_size=32", "data.batch_size=16",
        "run.log_every=2"]


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Run `distill ARGS` in-process; returns exit code, stdout and stderr."""
    from distill.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_distill(*args: str, cwd: Path | None = None, env: dict | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter (for kills and exit codes seen from outside).

    Each one imports torch again: 3-4 s of CPU, where the `cli` fixture takes milliseconds.
    Keep fresh interpreters for what needs a process of its own (a signal, a kill, an exit
    code or a traceback seen from outside, torchrun), and run the references such a test
    compares against (an uninterrupted run, a resume) in-process."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "distill", *map(str, args)], cwd=cwd or ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def smoke() -> Path:
    return SMOKE


@pytest.fixture(autouse=True)
def _torch_threads():
    """A run in this process with `run.threads` set sets torch's thread count: put it back,
    so that tests which train in-process (rather than pay a fresh interpreter) leave the
    next test the threads it would have had."""
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
