#!/usr/bin/env bash
# The GPU speed table of issue 4: DeiT-Ti/S/B⚗ × {no teacher, live RegNetY-16GF, cached,
# timm's TokenDistillationTask} at 224² on synthetic data, bf16, compiled. One `distill
# speed` run per student, each recorded with its command, device, date and commit:
#   benchmarks/speed_table.sh benchmarks/results/speed-<gpu> [extra distill speed options]
set -euo pipefail
out=${1:?usage: benchmarks/speed_table.sh OUT_DIR [options]}; shift
here=$(cd "$(dirname "$0")" && pwd)
distill=${DISTILL:-distill}
for size in tiny small base; do
  "$here/record.sh" "$out/deit_${size}.log" -- $distill speed \
    "$here/../recipes/bench/deit_small_regnety_synthetic.yaml" \
    --student "deit_${size}_distilled_patch16_224" --set run.compile=true \
    --out "$out/deit_${size}.json" "$@"
done
python "$here/speed_goals.py" "$out"/deit_*.json | tee "$out/goals.txt"
