"""benchmarks/gpu_check.sh: its dry run (every step at toy sizes, on the CPU) and what it leaves.

The GPU check is run by hand on a lent GPU; its dry run keeps it from rotting in between:
the CUDA tests (skipped here), `distill speed`'s three arms, the JPEG loaders on two tiny
photo sets with every arm (the device decode on the CPU), the cache build, and the summary,
each recorded with its command, device, date and commit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
LOADER_ARMS = ["decode_pil", "decode_tv", "timm", "pil", "tensor_full_loader", "tensor_full",
               "tensor_reduced_loader", "tensor_reduced", "tensor_device_loader",
               "tensor_device"]


def tiny_photos(root) -> None:
    """`root/{imagenet,phone}/{train,val}/class_k/*.jpg`, as benchmarks/photo_sets.py lays
    them out, of a few small JPEGs each (10 classes, as there)."""
    rng = np.random.default_rng(0)
    for kind, (w, h), per_class in (("imagenet", (80, 60), 2), ("phone", (160, 120), 1)):
        for split in ("train", "val"):
            for k in range(10):
                folder = root / kind / split / f"class_{k}"
                folder.mkdir(parents=True)
                for i in range(per_class):
                    low = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
                    img = Image.fromarray(low).resize((w, h) if i % 2 == 0 else (h, w))
                    img.save(folder / f"{kind}_{split}_{k}_{i}.jpg", quality=90)


def run(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=timeout)


def test_dry_run_runs_every_step_and_records_it(tmp_path):
    tiny_photos(tmp_path / "photos")
    out = tmp_path / "out"
    r = run("--dry-run", str(out), env={"PHOTOS": str(tmp_path / "photos")})
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["cuda-tests.log", "jpeg-loader.log", "jpeg-loader/results.json",
                     "jpeg-loader/results.md", "speed.json", "speed.log", "summary.md"]
    for log in ("cuda-tests.log", "speed.log", "jpeg-loader.log"):
        lines = (out / log).read_text().splitlines()
        assert [line.split(":")[0] for line in lines[:4]] == \
            ["# command", "# device", "# date", "# commit"], log
        assert lines[-1] == "# exit code: 0", log
    assert "deselected" in (out / "cuda-tests.log").read_text() or \
        "skipped" in (out / "cuda-tests.log").read_text()

    speed = json.loads((out / "speed.json").read_text())
    assert {k: v["images_per_s"] > 0 for k, v in speed["arms"].items()} == \
        {"none": True, "live": True, "cache": True}

    loader = json.loads((out / "jpeg-loader" / "results.json").read_text())
    assert loader["loader"]["skipped"] == {"imagenet": {}, "phone": {}}
    for photo_set in ("imagenet", "phone"):
        medians = loader["loader"]["median"][photo_set]
        assert sorted(medians) == sorted(LOADER_ARMS)
        assert all(v["images_per_s"] > 0 for v in medians.values())
    assert loader["cache"]["median"]["tensor"]["build_images_per_s"] > 0
    assert loader["loader"]["command"].startswith("python benchmarks/jpeg_loader.py ")

    summary = (out / "summary.md").read_text()
    assert "DRY RUN" in summary and "- command: `benchmarks/gpu_check.sh --dry-run " in summary
    rows = [line for line in summary.splitlines() if line.startswith("| imagenet |")]
    assert len(rows) == len(LOADER_ARMS)
    assert all(float(row.split("|")[4]) > 0 for row in rows)  # ÷ the step's images/s


@pytest.mark.parametrize(("args", "says"), [
    (["--bogus"], "unknown option '--bogus'"),
    (["OUT"], "no CUDA device here"),
])
def test_refusals_are_one_line(tmp_path, args, says):
    if args == ["OUT"]:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is here")
        args = [str(tmp_path / "out")]
    r = run(*args, timeout=120)
    assert r.returncode == 2
    assert says in r.stderr and len(r.stderr.strip().splitlines()) == 1
