"""The student's own measurements in a benchmark: GFLOPs and model-only inference speed.

A `ModelMeter` measures each architecture once (cells of the same student share it) and
belongs to one benchmark run: nothing is kept between runs.
"""

from __future__ import annotations

import json
import time

import torch

from distill.recipe import Recipe
from distill.student import build_student

__all__ = ["ModelMeter"]


class ModelMeter:
    """GFLOPs and inference images/s of a recipe's student, measured once per architecture."""

    def __init__(self) -> None:
        self._gflops: dict[str, float] = {}
        self._rate: dict[str, float] = {}

    def gflops(self, recipe: Recipe) -> float:
        """Multiply-adds (in billions) of one image through the student's eval forward, as
        counted by `torch.utils.flop_counter` (matmuls and convolutions)."""
        from torch.utils.flop_counter import FlopCounterMode

        key = json.dumps([recipe.student.name, recipe.student_kwargs()], sort_keys=True,
                         default=str)
        if key not in self._gflops:
            model = build_student(recipe.student.name, **recipe.student_kwargs()).eval()
            d = recipe.data
            x = torch.zeros(1, d.in_chans, d.img_size, d.img_size)
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                model(x)
            self._gflops[key] = counter.get_total_flops() / 2e9
        return self._gflops[key]

    def images_per_s(self, recipe: Recipe, min_seconds: float = 1.0) -> float:
        """The student's inference throughput (images/s) on the run's device and precision,
        on a fixed in-memory batch: the model alone, as the paper's Figure 1 measures it."""
        from distill.engine import autocast, build_student_for, resolve_runtime
        from distill.engine.evaluate import split_heads

        rt = resolve_runtime(recipe)
        key = json.dumps([recipe.student.name, recipe.student_kwargs(), str(rt.device),
                          str(rt.dtype)], sort_keys=True, default=str)
        if key not in self._rate:
            model = build_student_for(recipe, rt).eval()
            d = recipe.data
            b = d.eval_batch_size or 2 * d.batch_size
            x = torch.randn(b, d.in_chans, d.img_size, d.img_size, device=rt.device)
            if rt.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)

            def sync() -> None:
                if rt.device.type == "cuda":
                    torch.cuda.synchronize(rt.device)

            with torch.inference_mode(), autocast(rt.device, rt.dtype):
                split_heads(model, x)  # warm-up
                sync()
                n, t0 = 0, time.perf_counter()
                while n < 2 or time.perf_counter() - t0 < min_seconds:
                    split_heads(model, x)
                    n += 1
                sync()
            self._rate[key] = n * b / (time.perf_counter() - t0)
        return self._rate[key]
