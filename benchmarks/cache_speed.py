"""Speed of the logit cache, measured in one process.

1. Build: the teacher's pure-inference throughput (batches already in memory), the same
   teacher over the replayed data with nothing stored (`--dry-run`), and `build_cache` over
   the same recipe (augmentation, teacher, encoding, background writes), with MB/s and how
   long the teacher loop waited for the writer.
2. Train, one epoch per arm, in alternating rounds, median images/s: no teacher (`none`);
   the same class-token student with `hard` distillation from the cache (differs from
   `none` by the cache alone); the distilled student with `token` from the cache and from
   the live teacher.

    python benchmarks/cache_speed.py --teacher checkpoint:runs/fmnist/teacher_resnet \
        --out benchmarks/results/cache-speed-cpu --train-limit 20000 --rounds 3

Writes `results.json` and `README.md` in --out (with the command, device and date). The
random-weights `timm:` teachers are fine for timing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill.data import build_train_dataset  # noqa: E402
from distill.engine import build_teacher_for, resolve_runtime, train  # noqa: E402
from distill.engine.cache_build import build_cache  # noqa: E402
from distill.engine.runtime import autocast  # noqa: E402
from distill.recipe import load_recipe  # noqa: E402


class Quiet:
    def note(self, text: str) -> None:
        print("  " + text, flush=True)

    def advance(self, *_: object) -> None:
        pass

    def start(self, **_: object) -> None:
        pass

    def step(self, *_: object) -> None:
        pass

    def epoch(self, *_: object) -> None:
        pass

    def finish(self, *_: object) -> None:
        pass


def pure_inference(recipe, batches: int) -> float:
    """Images/s of the teacher on pre-augmented batches held in memory."""
    rt = resolve_runtime(recipe)
    teacher = build_teacher_for(recipe, rt, live=True)
    ds = build_train_dataset(recipe.data, recipe.augment, recipe.run.seed)
    b = recipe.data.eval_batch_size or 2 * recipe.data.batch_size
    xs = [torch.stack([ds[i][0] for i in range(k * b, (k + 1) * b)]).to(rt.device)
          for k in range(batches)]
    with autocast(rt.device, rt.dtype):
        teacher(xs[0])  # warm-up (a live teacher called on images)
        if rt.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for x in xs:
            teacher(x)
        if rt.device.type == "cuda":
            torch.cuda.synchronize()
    return len(xs) * b / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="recipes/fmnist/deit_token.yaml")
    ap.add_argument("--none-recipe", default="recipes/fmnist/deit_none.yaml")
    ap.add_argument("--same-student-recipe", default="recipes/fmnist/deit_hard.yaml",
                    help="A teacher loss on the none recipe's student (class-token `hard`): "
                         "its cache arm differs from `none` by the cache alone.")
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--train-limit", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--store", default="full")
    ap.add_argument("--set", action="append", default=[], dest="sets")
    args = ap.parse_args()
    sets = [f"data.train_limit={args.train_limit}", "data.val_limit=512", "schedule.epochs=1",
            *args.sets]
    work = Path(tempfile.mkdtemp(prefix="cache-speed-"))
    token = load_recipe(ROOT / args.recipe, sets, teacher=args.teacher)
    res: dict = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
                 "date": datetime.date.today().isoformat(),
                 "device": resolve_runtime(token).summary(), "torch_threads":
                 torch.get_num_threads(), "train_limit": args.train_limit}

    print("pure inference", flush=True)
    res["teacher_pure_images_per_s"] = pure_inference(token, 20)
    print("dry run", flush=True)
    dry = build_cache(token, work / "dry", store=args.store, dry_run=True, reporter=Quiet())
    res["teacher_over_replayed_data_images_per_s"] = dry.images_per_s
    print("build", flush=True)
    built = build_cache(token, work / "cache", store=args.store, reporter=Quiet())
    res["build"] = {"store": args.store, "images": built.images, "seconds": built.seconds,
                    "images_per_s": built.images_per_s, "bytes": built.written,
                    "mb_per_s": built.written / built.seconds / 1e6,
                    "write_seconds": built.write_seconds, "wait_seconds": built.wait_seconds}
    res["build_vs_pure"] = built.images_per_s / res["teacher_pure_images_per_s"]
    res["build_vs_dry_run"] = built.images_per_s / dry.images_per_s

    runs = {
        "none": lambda out: load_recipe(ROOT / args.none_recipe, [*sets, f"run.out={out}"]),
        "same_student_cache": lambda out: load_recipe(
            ROOT / args.same_student_recipe, [*sets, f"run.out={out}"],
            teacher=f"cache:{work / 'cache'}"),
        "cache": lambda out: load_recipe(ROOT / args.recipe, [*sets, f"run.out={out}"],
                                         teacher=f"cache:{work / 'cache'}"),
        "live": lambda out: load_recipe(ROOT / args.recipe, [*sets, f"run.out={out}"],
                                        teacher=args.teacher),
    }
    rates: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(args.rounds):
        order = list(runs) if r % 2 == 0 else list(reversed(runs))
        for name in order:
            out = work / f"{name}-{r}"
            summary = train(runs[name](out), reporter=Quiet()).summary
            rates[name].append(summary["train_images_per_s"])
            print(f"round {r} {name}: {summary['train_images_per_s']:.1f} img/s", flush=True)
    res["train_images_per_s"] = {k: v for k, v in rates.items()}
    med = {k: statistics.median(v) for k, v in rates.items()}
    res["train_median"] = med
    res["cache_vs_none"] = med["cache"] / med["none"]
    res["same_student_cache_vs_none"] = med["same_student_cache"] / med["none"]
    res["cache_vs_live"] = med["cache"] / med["live"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
