"""The tensor pipeline's speed targets (issue 13), measured in one process, on one machine.

1. Loader alone: finished device batches per second (read, collated, moved, augmented,
   mixed: `distill speed --arms data`'s step) for `data.pipeline: pil` and `tensor`, with the
   paper's augmentation (RRC, flip, RandAugment rand-m9-mstd0.5-inc1, pixel erasing 0.25,
   mixup 0.8 / cutmix 1.0), in alternating rounds; the median of each. PIL is also timed
   with loader workers (`--pil-workers`), its best case on this machine, and the tensor
   pipeline with loader workers (`--tensor-workers`: they draw the parameters and gather the
   batch while the main process does the pixel work).
2. End to end: one training epoch of the student (`none` loss) through `distill train`'s
   loop with the tensor pipeline (and the PIL one), against `distill speed`'s `none` arm:
   the same student's step on a batch already on the device.
3. Cache build: `build_cache` with the tensor pipeline (and the PIL one) against the
   teacher's pure inference on finished batches held in memory.

    python benchmarks/tensor_speed.py --teacher checkpoint:runs/speed-teacher \
        --out benchmarks/results/tensor-speed-cpu

Writes `results.json` and prints it; the command, device, date and commit are in it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill.bench.speed import _data_step, measure_speed  # noqa: E402
from distill.data import augment_batch, build_data  # noqa: E402
from distill.engine import build_teacher_for, resolve_runtime, train  # noqa: E402
from distill.engine.cache_build import build_cache  # noqa: E402
from distill.engine.report import Reporter  # noqa: E402
from distill.engine.runtime import autocast  # noqa: E402
from distill.recipe import load_recipe  # noqa: E402

# The paper's augmentation (the schema's defaults), in place of the Fashion-MNIST recipes'
# flips-only setting.
PAPER_AUG = ["augment.scale=[0.08, 1.0]", "augment.ratio=[0.75, 1.3333333]",
             "augment.auto_augment=rand-m9-mstd0.5-inc1", "augment.re_prob=0.25",
             "augment.re_mode=pixel", "augment.mixup=0.8", "augment.cutmix=1.0"]


def loader_rate(recipe, steps: int, warmup: int = 3) -> float:
    rt = resolve_runtime(recipe)
    step = _data_step(recipe, rt)
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * recipe.data.batch_size / (time.perf_counter() - t0)


def pure_inference(recipe, batches: int) -> float:
    """Images/s of the teacher on finished (augmented, normalised) batches in memory."""
    rt = resolve_runtime(recipe)
    teacher = build_teacher_for(recipe, rt, live=True)
    data = build_data(recipe.data, recipe.augment, recipe.run.seed)
    xs = []
    for batch in data.epoch(0):
        xs.append(augment_batch(batch.to(rt.device), data.train.augment, rt.device).images)
        if len(xs) == batches + 1:
            break
    with torch.no_grad(), autocast(rt.device, rt.dtype):
        teacher(xs[0])  # warm-up
        t0 = time.perf_counter()
        for x in xs[1:]:
            teacher(x)
        if rt.device.type == "cuda":
            torch.cuda.synchronize()
    return sum(len(x) for x in xs[1:]) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="recipes/fmnist/deit_none.yaml")
    ap.add_argument("--teacher-recipe", default="recipes/fmnist/deit_token.yaml")
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--cache-teachers", default="",
                    help="More teachers for the cache-build part (comma-separated specs), "
                         "e.g. a slower one, closer to the study's")
    ap.add_argument("--cache-set", action="append", default=[],
                    help="Recipe overrides for the --cache-teachers only")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--train-limit", type=int, default=20000)
    ap.add_argument("--loader-steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pil-workers", type=int, default=2)
    ap.add_argument("--tensor-workers", type=int, default=1,
                    help="Also time the tensor pipeline with this many loader workers (they "
                         "draw the parameters and gather the batch while the main process "
                         "does the pixel work; 0: not timed)")
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--parts", default="loader,loop,cache",
                    help="Which parts to run (results.json keeps the others' earlier figures)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    base = [*PAPER_AUG, f"data.train_limit={args.train_limit}", "data.val_limit=512",
            "schedule.epochs=1", "schedule.warmup_epochs=0", *args.sets]
    pipe = {p: [*base, f"data.pipeline={p}"] for p in ("pil", "tensor")}
    work = Path(tempfile.mkdtemp(prefix="tensor-speed-"))
    none = {p: load_recipe(ROOT / args.recipe, s) for p, s in pipe.items()}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    res: dict = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
                 "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                 "commit": commit, "device": resolve_runtime(none["tensor"]).summary(),
                 "torch_threads": torch.get_num_threads(), "augment": PAPER_AUG,
                 "batch_size": none["tensor"].data.batch_size}

    args.out.mkdir(parents=True, exist_ok=True)
    done = args.out / "results.json"
    earlier = json.loads(done.read_text()) if done.exists() else {}

    def save(part: str, figures: dict) -> None:  # after each part: a crash keeps the rest
        earlier[part] = figures | {"command": res["command"], "date": res["date"],
                                   "commit": res["commit"]}
        earlier["setting"] = {k: v for k, v in res.items() if k not in ("command", "date",
                                                                        "commit")}
        tmp = done.with_suffix(".tmp")
        tmp.write_text(json.dumps(earlier, indent=2) + "\n")
        tmp.replace(done)

    if "loader" in parts:
        loader_part(args, arms_for(args, pipe), save)
    if "loop" in parts:
        loop_part(args, pipe, work, save)
    if "cache" in parts:
        cache_part(args, pipe, work, save)
    print(json.dumps(earlier, indent=2))


def arms_for(args, pipe):
    none = {p: load_recipe(ROOT / args.recipe, s) for p, s in pipe.items()}
    pil_workers = load_recipe(ROOT / args.recipe,
                              [*pipe["pil"], f"data.num_workers={args.pil_workers}"])
    arms = {"pil": none["pil"], f"pil_{args.pil_workers}_workers": pil_workers,
            "tensor": none["tensor"]}
    if args.tensor_workers:
        arms[f"tensor_{args.tensor_workers}_workers"] = load_recipe(
            ROOT / args.recipe, [*pipe["tensor"], f"data.num_workers={args.tensor_workers}"])
    return arms


def loader_part(args, arms, save) -> None:
    """1. the loader alone"""
    rates: dict[str, list[float]] = {k: [] for k in arms}
    for r in range(args.rounds):
        for name in (list(arms) if r % 2 == 0 else list(reversed(arms))):
            rates[name].append(loader_rate(arms[name], args.loader_steps))
            print(f"loader round {r} {name}: {rates[name][-1]:.0f} img/s", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    pil_w = med[f"pil_{args.pil_workers}_workers"]
    figures = {"images_per_s": rates, "median": med, "tensor_vs_pil": med["tensor"] / med["pil"],
               "tensor_vs_pil_workers": med["tensor"] / pil_w}
    if args.tensor_workers:
        best = max(med["tensor"], med[f"tensor_{args.tensor_workers}_workers"])
        figures |= {"best_tensor_vs_best_pil": best / max(med["pil"], pil_w)}
    save("loader", figures)


def loop_part(args, pipe, work, save) -> None:
    """2. the training loop against the step alone"""
    timed = load_recipe(ROOT / args.recipe, pipe["tensor"], teacher=args.teacher)  # speed needs one
    step = measure_speed(timed, arms=("none",), steps=20, repeats=args.rounds)
    step_rate = step["arms"]["none"]["images_per_s"]
    loop: dict[str, list[float]] = {"tensor": [], "pil": []}
    for r in range(args.rounds):
        for p in (["tensor", "pil"] if r % 2 == 0 else ["pil", "tensor"]):
            rec = load_recipe(ROOT / args.recipe, [*pipe[p], f"run.out={work / f'{p}-{r}'}"])
            loop[p].append(train(rec, reporter=Reporter()).summary["train_images_per_s"])
            print(f"loop round {r} {p}: {loop[p][-1]:.0f} img/s", flush=True)
    lmed = {k: statistics.median(v) for k, v in loop.items()}
    save("loop", {"step_images_per_s": step_rate, "train_images_per_s": loop, "median": lmed,
                  "tensor_loop_vs_step": lmed["tensor"] / step_rate,
                  "pil_loop_vs_step": lmed["pil"] / step_rate})


def cache_part(args, pipe, work, save) -> None:
    """3. the cache build against the teacher's pure inference"""
    build: dict[str, dict] = {}
    teachers = [args.teacher, *[t for t in args.cache_teachers.split(",") if t.strip()]]
    for n, teacher in enumerate(teachers):
        for p in ("tensor", "pil"):
            extra = args.cache_set if n else []
            rec = load_recipe(ROOT / args.teacher_recipe, [*pipe[p], *extra], teacher=teacher)
            pure = pure_inference(rec, 20)
            built = build_cache(rec, work / f"cache-{n}-{p}", store="hard", reporter=Reporter())
            build[f"{teacher} {p}"] = {
                "teacher": teacher, "pipeline": p, "pure_inference_images_per_s": pure,
                "build_images_per_s": built.images_per_s,
                "build_vs_pure": built.images_per_s / pure, "images": built.images,
                "wait_seconds": built.wait_seconds}
            print(f"cache {teacher} {p}: build {built.images_per_s:.0f} img/s, "
                  f"pure {pure:.0f} img/s", flush=True)
        save("cache_build", build)


if __name__ == "__main__":
    main()
