"""How hard are the views each augmentation pipeline makes? The teacher's top-1 on them.

    python benchmarks/view_difficulty.py RECIPE TEACHER [--epochs 10] [--seed 0]
        [--set KEY=VALUE ...]

TEACHER is a run folder of this toolkit (read as `checkpoint:TEACHER`) or `recipe` (the
recipe's own `teacher.*`). For `data.pipeline` pil and tensor, the recipe's training views
(the first `--epochs` epochs of the run's own keys (seed, epoch, index)) go through the
teacher. The teacher's top-1 against the true labels, its mean confidence and simple pixel
statistics measure how much the augmentation destroys. Two pipelines with the same
augmentation distribution give the same figures up to sampling noise, whatever their draws;
a pipeline whose views are harder leaves more for a teacher to relabel, which enlarges the
gain of distillation (issue 26).

Each pipeline's ± is the binomial standard error over views. The difference between the
pipelines is paired by image (both see every training image `--epochs` times): the mean over
images of each image's top-1 on its tensor views minus on its pil views, ± the standard
error over images; an image's own difficulty cancels in it. `--set` overrides recipe fields
for both pipelines, e.g. `--set augment.auto_augment=null --set augment.re_prob=0` for crop
and flip alone: the ops can be compared one stage at a time. Inference only: a minute or two
per 10 epochs on 2 cores at 28 pixels.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math

import torch

from distill.data import augment_batch, build_data
from distill.engine.runtime import resolve_runtime
from distill.engine.setup import build_teacher_for
from distill.recipe import load_recipe


def measure(recipe_path: str, teacher: str, pipeline: str, epochs: int, seed: int,
            overrides: list[str] = ()) -> dict:
    sets = [*overrides, f"data.pipeline={pipeline}", f"run.seed={seed}", "data.num_workers=0",
            "run.device=cpu"]
    if teacher != "recipe":
        sets.append(f"teacher.name=checkpoint:{teacher}")
    r = load_recipe(recipe_path, sets)
    d = r.data
    data = build_data(d, r.augment, r.run.seed)
    t = build_teacher_for(r, resolve_runtime(r), live=True)
    per_image = torch.zeros(len(data.train), 2)  # views the teacher got right, views
    correct, conf, n, pix_mean, pix_sd, hist = [], [], 0, 0.0, 0.0, None
    cpu = torch.device("cpu")
    for epoch in range(epochs):
        for batch in data.epoch(epoch):
            batch = augment_batch(batch, data.train.augment, cpu)
            with torch.inference_mode():
                p = t.targets(batch).float().softmax(-1)
            right = (p.argmax(-1) == batch.labels).float()
            per_image.index_add_(0, batch.index.long(), torch.stack([right, torch.ones_like(right)], 1))
            correct.append(right)
            conf.append(p.max(-1).values)
            x = batch.images.float()
            pix_mean += x.mean().item() * len(x)
            pix_sd += x.flatten(1).std(1).sum().item()
            h = torch.histc(x, bins=20, min=-1.0, max=2.2)
            hist = h if hist is None else hist + h
            n += len(x)
    c = torch.cat(correct)
    k = torch.cat(conf)
    acc = c.mean().item()
    return {"pipeline": pipeline, "views": n, "teacher_top1": 100 * acc,
            "teacher_top1_se": 100 * math.sqrt(acc * (1 - acc) / n),
            "teacher_confidence": k.mean().item(), "confidence_se": k.std().item() / math.sqrt(n),
            "pixel_mean": pix_mean / n, "pixel_sd_per_view": pix_sd / n,
            "histogram": (hist / hist.sum()).tolist(), "per_image": per_image}


def paired(a: dict, b: dict) -> tuple[float, float, int]:
    """b − a: the mean over images seen by both of each image's top-1 (%) on b's views minus
    on a's, and its standard error over those images."""
    (ra, va), (rb, vb) = a["per_image"].unbind(1), b["per_image"].unbind(1)
    seen = (va > 0) & (vb > 0)
    diff = 100 * (rb[seen] / vb[seen] - ra[seen] / va[seen])
    k = int(seen.sum())
    return diff.mean().item(), (diff.std().item() / math.sqrt(k)) if k > 1 else math.nan, k


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("recipe")
    p.add_argument("teacher", help="a run folder of this toolkit, or 'recipe'")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pipelines", default="pil,tensor")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a recipe override for both pipelines (repeatable)")
    args = p.parse_args()
    rows = [measure(args.recipe, args.teacher, pl, args.epochs, args.seed, args.overrides)
            for pl in args.pipelines.split(",")]
    print("# overrides: " + (" ".join(args.overrides) or "none"))
    print(json.dumps([{k: v for k, v in r.items() if k != "per_image"} for r in rows], indent=1))
    print("\n| pipeline | views | teacher top-1 on the views | teacher confidence | pixel mean | "
          "pixel sd per view |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['pipeline']} | {r['views']} | {r['teacher_top1']:.2f} ± {r['teacher_top1_se']:.2f} "
              f"| {r['teacher_confidence']:.4f} ± {r['confidence_se']:.4f} | {r['pixel_mean']:.4f} "
              f"| {r['pixel_sd_per_view']:.4f} |")
    for a, b in itertools.pairwise(rows):
        m, se, k = paired(a, b)
        print(f"\n{b['pipeline']} − {a['pipeline']}, paired by image: {m:+.2f} ± {se:.2f} points of "
              f"teacher top-1 over {k} images"
              + (f" ({abs(m) / se:.1f} s.e.)" if se > 0 else ""))


if __name__ == "__main__":
    main()
