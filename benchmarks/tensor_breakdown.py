"""Where the tensor pipeline's time goes on this machine (issue 13), in one process.

Per image, for Fashion-MNIST with the paper's augmentation (the setting of
`tensor_speed.py`), at each batch size: the parameter draws (`TensorAugment.params`) and
the pixel work (`TensorAugment.__call__`), medians over alternating repeats; where the code
has the one-axis affine (`tensor_resample.axis_of`), the pixel work with it turned off too;
and the bicubic affine of 60 rotated 28² images, eager against `torch.compile(dynamic=True)`.
Run it with `PYTHONPATH=<a checkout>` to measure that checkout's code.

    python benchmarks/tensor_breakdown.py --batches 128,256
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tensor_speed import PAPER_AUG

from distill.data import tensor_pipeline as tp
from distill.data import tensor_resample as tr
from distill.data.tensor_params import rotate_matrix
from distill.data.tensor_pipeline import TensorAugment
from distill.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]


def per_image(fn, n_images: int, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) / n_images * 1e6)
    return out


def measure(aug, x, keys, params, repeats: int) -> dict[str, list[float]]:
    """Per-image µs of the draws and the pixel work, alternating, `repeats` times each."""
    n = len(keys) * len(keys[0])

    def draws() -> None:
        for k in keys:
            aug.params(k, (28, 28))

    def pixels() -> None:
        for p in params:
            aug(x, p)

    real = getattr(tp, "axis_of", None)
    times: dict[str, list[float]] = {"draws": [], "pixels": []}
    if real is not None:
        times["pixels_without_one_axis_affine"] = []
    for _ in range(repeats):
        times["draws"] += per_image(draws, n, 1)
        times["pixels"] += per_image(pixels, n, 1)
        if real is not None:
            tp.axis_of = lambda m: torch.zeros(len(m), dtype=torch.long)
            times["pixels_without_one_axis_affine"] += per_image(pixels, n, 1)
            tp.axis_of = real
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="128,256")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    res: dict = {"code": tp.__file__, "torch_threads": torch.get_num_threads()}
    for b in (int(x) for x in args.batches.split(",")):
        r = load_recipe(ROOT / "recipes/fmnist/deit_none.yaml",
                        [*PAPER_AUG, "data.pipeline=tensor", f"data.batch_size={b}"])
        aug = TensorAugment(r.data, r.augment, seed=0)
        x = torch.randint(0, 256, (b, 1, 28, 28), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
        keys = [[(e, j, 0, j) for j in range(b)] for e in range(10)]
        params = [aug.params(k, (28, 28)) for k in keys]

        times = measure(aug, x, keys, params, args.repeats)
        res[f"batch_{b}_us_per_image"] = {k: {"median": statistics.median(v), "min": min(v)}
                                          for k, v in times.items()}
    angles = torch.linspace(-30, 30, 60)
    m = torch.tensor([rotate_matrix(float(a), 28, 28) for a in angles], dtype=torch.float64)
    x = torch.randint(0, 256, (60, 1, 28, 28), dtype=torch.uint8)
    fill = torch.tensor([73])
    compiled = torch.compile(tr._affine, dynamic=True)
    t = time.perf_counter()
    same = torch.equal(compiled(x, m, 2, fill), tr._affine(x, m, 2, fill))
    compile_s = time.perf_counter() - t
    eager = per_image(lambda: tr._affine(x, m, 2, fill), 60, 40)
    comp = per_image(lambda: compiled(x, m, 2, fill), 60, 40)
    res["affine_bicubic_60_rotations_us_per_image"] = {
        "eager_min": min(eager), "compiled_min": min(comp), "compile_s": compile_s,
        "compiled_equals_eager": same}
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
