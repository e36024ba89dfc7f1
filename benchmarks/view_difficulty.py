"""How hard are the views each augmentation pipeline makes? The teacher's top-1 on them.

    python benchmarks/view_difficulty.py RECIPE TEACHER_RUN [--epochs 10] [--seed 0]

For `data.pipeline` pil and tensor, the recipe's training views (the first `--epochs`
epochs of the run's own keys (seed, epoch, index)) go through the teacher (a run folder of
this toolkit). The teacher's top-1 against the true labels, its mean confidence, the share
of views where it disagrees with the label, and simple pixel statistics measure how much
the augmentation destroys. Two pipelines with the same augmentation distribution give the
same figures up to sampling noise (± the standard error printed, over views), whatever
their draws; a pipeline whose views are harder leaves more for a teacher to relabel, which
enlarges the gain of distillation (issue 26). Inference only: a minute or two on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import math

import torch

from distill.data import augment_batch, build_data
from distill.recipe import load_recipe
from distill.teacher import StudentInput, build_teacher


def measure(recipe_path: str, teacher_run: str, pipeline: str, epochs: int, seed: int) -> dict:
    r = load_recipe(recipe_path, [f"data.pipeline={pipeline}", f"run.seed={seed}",
                                  "data.num_workers=0"])
    d = r.data
    data = build_data(d, r.augment, r.run.seed)
    teacher = build_teacher(f"checkpoint:{teacher_run}", student=StudentInput(
        mean=tuple(d.mean), std=tuple(d.std), in_chans=d.in_chans, img_size=d.img_size,
        num_classes=d.num_classes))
    correct, conf, n, pix_mean, pix_sd, hist = [], [], 0, 0.0, 0.0, None
    cpu = torch.device("cpu")
    for epoch in range(epochs):
        for batch in data.epoch(epoch):
            batch = augment_batch(batch, data.train.augment, cpu)
            with torch.inference_mode():
                p = teacher.targets(batch).float().softmax(-1)
            correct.append((p.argmax(-1) == batch.labels).float())
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
            "histogram": (hist / hist.sum()).tolist()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("recipe")
    p.add_argument("teacher_run")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pipelines", default="pil,tensor")
    args = p.parse_args()
    rows = [measure(args.recipe, args.teacher_run, pl, args.epochs, args.seed)
            for pl in args.pipelines.split(",")]
    print(json.dumps(rows, indent=1))
    print("\n| pipeline | views | teacher top-1 on the views | teacher confidence | pixel mean | "
          "pixel sd per view |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['pipeline']} | {r['views']} | {r['teacher_top1']:.2f} ± {r['teacher_top1_se']:.2f} "
              f"| {r['teacher_confidence']:.4f} ± {r['confidence_se']:.4f} | {r['pixel_mean']:.4f} "
              f"| {r['pixel_sd_per_view']:.4f} |")


if __name__ == "__main__":
    main()
