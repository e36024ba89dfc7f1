#!/usr/bin/env bash
# Issue 13's accuracy check: the Fashion-MNIST `none` student trained through both
# augmentation pipelines with the paper's augmentation (RRC 0.08-1, flips, RandAugment
# rand-m9-mstd0.5-inc1, pixel erasing 0.25, mixup 0.8 / cutmix 1.0, smoothing 0.1), two
# seeds each, on the first 6,000 training images for 30 epochs. Resumable: run it again
# and finished cells are read back.
#   benchmarks/pipeline_equivalence.sh [OUT] [PIPELINES]
#   (defaults: benchmarks/results/pipeline-equivalence-fmnist/own-draws, "pil tensor";
#   SEEDS=0,1; the 2026-12-03 run used SEEDS=0,1,2,3,4,5 and "tensor pil")
# Finished cells are read back: measure changed code into a new OUT. The parent folder's
# pil/ and tensor/ cells are the 2026-12-02 run, when the tensor pipeline used timm's draws.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results/pipeline-equivalence-fmnist/own-draws}
DISTILL=${DISTILL:-.venv/bin/distill}
sets=(--set 'augment.scale=[0.08, 1.0]' --set 'augment.ratio=[0.75, 1.3333333]'
      --set augment.auto_augment=rand-m9-mstd0.5-inc1 --set augment.re_prob=0.25
      --set augment.re_mode=pixel --set augment.mixup=0.8 --set augment.cutmix=1.0
      --set data.train_limit=6000 --set schedule.epochs=30 --set schedule.warmup_epochs=3
      --set data.batch_size=256 --set run.eval_every=100)  # as recorded (the recipe moved on)
for pipeline in ${2:-pil tensor}; do
  benchmarks/record.sh "$out/$pipeline.log" -- "$DISTILL" bench recipes/fmnist/deit_none.yaml \
    --losses none --seeds "${SEEDS:-0,1}" --no-plot "${sets[@]}" --set data.pipeline=$pipeline \
    --out "$out/$pipeline"
done
