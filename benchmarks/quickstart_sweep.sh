#!/usr/bin/env bash
# Issue 14's search for a quickstart whose distilled student visibly gains: a convnet
# teacher, then `none` and `token` students, on a small Fashion-MNIST subset with a long
# schedule, at a few augmentation strengths. Every setting the runs depend on is set here
# (the recipes' own values have changed since: they are the quickstart's now). Each run is recorded (command, device, date,
# commit) in OUT/NAME.log beside its run folder OUT/NAME/. Resumable: run it again and
# finished runs are read back, unfinished ones continue.
#   benchmarks/quickstart_sweep.sh ROUND [OUT]   (default OUT: benchmarks/results/fmnist-quickstart-sweep)
set -euo pipefail
cd "$(dirname "$0")/.."
round=${1:?round: 1}
out=${2:-benchmarks/results/fmnist-quickstart-sweep}
DISTILL=${DISTILL:-.venv/bin/distill}

run() {  # NAME RECIPE [--set K=V ...]
  local name=$1 recipe=$2; shift 2
  if [ -f "$out/$name/summary.json" ]; then echo "$name: finished"; return; fi
  benchmarks/record.sh "$out/$name.log" -- "$DISTILL" train "$recipe" --out "$out/$name" \
    --resume "$@"
  echo "$name: $(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['top1'])" \
    "$out/$name/summary.json")"
}
sets() { for s in "$@"; do printf -- '--set\n%s\n' "$s"; done; }

case $round in
1)  # 2,000 images, 120 epochs, batch 128; light (RRC 0.35-1) and strong (+ RandAugment, erasing)
  mapfile -t common < <(sets data.train_limit=2000 data.pipeline=tensor schedule.epochs=120 \
    schedule.warmup_epochs=5 run.eval_every=20 data.batch_size=128)
  mapfile -t light < <(sets 'augment.scale=[0.35, 1.0]' 'augment.ratio=[0.75, 1.3333333]' \
    augment.auto_augment=null augment.re_prob=0)
  mapfile -t strong < <(sets augment.auto_augment=rand-m9-mstd0.5-inc1 augment.re_prob=0.25 \
    augment.re_mode=pixel)
  teacher=checkpoint:$out/r1-teacher
  run r1-teacher recipes/fmnist/teacher_resnet.yaml "${common[@]}" "${light[@]}"
  run r1-none-light recipes/fmnist/deit_none.yaml "${common[@]}" "${light[@]}"
  run r1-token-light recipes/fmnist/deit_token.yaml "${common[@]}" "${light[@]}" \
    --set "teacher.name=$teacher"
  run r1-none-strong recipes/fmnist/deit_none.yaml "${common[@]}" "${light[@]}" "${strong[@]}"
  run r1-token-strong recipes/fmnist/deit_token.yaml "${common[@]}" "${light[@]}" \
    "${strong[@]}" --set "teacher.name=$teacher"
  ;;
2)  # round 1's light setting and teacher, with mixup/cutmix, and the soft token target
  mapfile -t common < <(sets data.train_limit=2000 data.pipeline=tensor schedule.epochs=120 \
    schedule.warmup_epochs=5 run.eval_every=20 data.batch_size=128 \
    'augment.scale=[0.35, 1.0]' 'augment.ratio=[0.75, 1.3333333]' \
    augment.auto_augment=null augment.re_prob=0)
  mapfile -t mix < <(sets augment.mixup=0.8 augment.cutmix=1.0)
  teacher=checkpoint:$out/r1-teacher
  run r2-none-mix recipes/fmnist/deit_none.yaml "${common[@]}" "${mix[@]}"
  run r2-token-mix recipes/fmnist/deit_token.yaml "${common[@]}" "${mix[@]}" \
    --set "teacher.name=$teacher"
  run r2-token-soft recipes/fmnist/deit_token.yaml "${common[@]}" --set loss.target=soft \
    --set "teacher.name=$teacher"
  # a milder RandAugment (magnitude 5), no erasing
  mapfile -t ra5 < <(sets augment.auto_augment=rand-m5-mstd0.5-inc1)
  run r2-none-ra5 recipes/fmnist/deit_none.yaml "${common[@]}" "${ra5[@]}"
  run r2-token-ra5 recipes/fmnist/deit_token.yaml "${common[@]}" "${ra5[@]}" \
    --set "teacher.name=$teacher"
  ;;
3)  # round 1's light setting and teacher with more, smaller steps: batch 64 and 32
  mapfile -t common < <(sets data.train_limit=2000 data.pipeline=tensor schedule.epochs=120 \
    schedule.warmup_epochs=5 run.eval_every=20 \
    'augment.scale=[0.35, 1.0]' 'augment.ratio=[0.75, 1.3333333]' \
    augment.auto_augment=null augment.re_prob=0)
  teacher=checkpoint:$out/r1-teacher
  for b in 64; do  # (32 was started and stopped, for time)
    run r3-none-b$b recipes/fmnist/deit_none.yaml "${common[@]}" --set data.batch_size=$b
    run r3-token-b$b recipes/fmnist/deit_token.yaml "${common[@]}" --set data.batch_size=$b \
      --set "teacher.name=$teacher"
  done
  ;;
4)  # batch 64, RandAugment m9 and erasing for the students, and a teacher trained with them
  mapfile -t common < <(sets data.train_limit=2000 data.pipeline=tensor schedule.epochs=120 \
    schedule.warmup_epochs=5 run.eval_every=20 data.batch_size=64 \
    'augment.scale=[0.35, 1.0]' 'augment.ratio=[0.75, 1.3333333]' \
    augment.auto_augment=rand-m9-mstd0.5-inc1 augment.re_prob=0.25 augment.re_mode=pixel)
  run r4-teacher-strong recipes/fmnist/teacher_resnet.yaml "${common[@]}" \
    --set data.batch_size=128
  run r4-none-strong-b64 recipes/fmnist/deit_none.yaml "${common[@]}"
  run r4-token-strong-b64 recipes/fmnist/deit_token.yaml "${common[@]}" \
    --set "teacher.name=checkpoint:$out/r4-teacher-strong"
  ;;
5)  # round 3's batch-64 light setting with DeiT's repeated augmentation (3 copies of an
    # image in a row, epochs cut to the subset's size, as the official RASampler does)
  mapfile -t common < <(sets data.train_limit=2000 data.pipeline=tensor schedule.epochs=120 \
    schedule.warmup_epochs=5 run.eval_every=20 data.batch_size=64 \
    'augment.scale=[0.35, 1.0]' 'augment.ratio=[0.75, 1.3333333]' \
    augment.auto_augment=null augment.re_prob=0)
  run r5-none-b64-ra3 recipes/fmnist/deit_none.yaml "${common[@]}" --set augment.repeated_aug=3
  ;;
*) echo "unknown round '$round'" >&2; exit 2 ;;
esac
