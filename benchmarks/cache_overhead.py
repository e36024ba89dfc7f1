"""What reading a logit cache adds to a training run, measured in one process.

    python benchmarks/cache_overhead.py RECIPE --cache DIR [--passes 3] [--batches 60]

- `reader_us_per_row`: one `CacheReader` lookup (memory-mapped shard row), averaged;
- `loader_images_per_s`: the run's training loader with and without the cached rows
  attached, in alternating passes over the same batches;
- `decode_ms_per_batch`: `CachedTeacher.targets` on one batch (rows -> logits).
Prints JSON with the command, device and date.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill.data import build_data  # noqa: E402
from distill.engine import build_teacher_for, resolve_runtime  # noqa: E402
from distill.recipe import load_recipe  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe", type=Path)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--reads", type=int, default=10000)
    args = ap.parse_args()
    r = load_recipe(args.recipe, [], teacher=f"cache:{args.cache}")
    rt = resolve_runtime(r)
    teacher = build_teacher_for(r, rt)
    cached = build_data(r.data, r.augment, r.run.seed, prepare=teacher.prepare)
    plain = build_data(r.data, r.augment, r.run.seed)
    rates: dict[str, list[float]] = {"with_rows": [], "without_rows": []}
    for p in range(args.passes):
        arms = [("without_rows", plain), ("with_rows", cached)]
        for name, data in arms if p % 2 == 0 else arms[::-1]:
            it = data.epoch(p)
            t0 = time.perf_counter()
            for _, _batch in zip(range(args.batches), it):
                pass
            rates[name].append(args.batches * r.data.batch_size / (time.perf_counter() - t0))
    reader = cached.train.rows
    t0 = time.perf_counter()
    for i in range(args.reads):
        reader(0, i % len(cached.train), i % len(cached.train))
    reader_us = (time.perf_counter() - t0) / args.reads * 1e6
    batch = next(iter(cached.epoch(0)))
    t0 = time.perf_counter()
    for _ in range(200):
        teacher.targets(batch)
    decode_ms = (time.perf_counter() - t0) / 200 * 1e3
    print(json.dumps({
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "date": datetime.date.today().isoformat(), "device": rt.summary(),
        "batch_size": r.data.batch_size, "num_workers": r.data.num_workers,
        "reader_us_per_row": reader_us, "loader_images_per_s": rates,
        "loader_median": {k: statistics.median(v) for k, v in rates.items()},
        "decode_ms_per_batch": decode_ms}, indent=2))


if __name__ == "__main__":
    main()
