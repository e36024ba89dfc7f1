#!/usr/bin/env bash
# Issue 14's study on Fashion-MNIST, in parts; each resumes where it stopped (finished runs
# and bench cells are read back, a half-trained one continues), also from a fresh clone of
# a commit that holds the finished cells (the teachers' weights are committed, the cells'
# are not).
#
#   benchmarks/fmnist_study.sh teacher SIZE   the convnet teacher trained on the first SIZE images
#   benchmarks/fmnist_study.sh size SIZE      `none` and `token` students at SIZE (its own teacher)
#   benchmarks/fmnist_study.sh table3         none, soft, hard, token at $TABLE3_SIZE
#   benchmarks/fmnist_study.sh table2         DeiT⚗ (token) at $TABLE3_SIZE taught by a transformer
#                                             and by a convnet of similar accuracy (both on 60k)
#   benchmarks/fmnist_study.sh strong         soft, hard, token at $TABLE3_SIZE taught by a convnet
#                                             aimed at >= 93 % (60 epochs on all 60k); `none` is size-$TABLE3_SIZE's
#   benchmarks/fmnist_study.sh report         the tables and figures (benchmarks/fmnist_study_report.py)
#
# Everything goes under OUT (default benchmarks/results/fmnist-study): teachers/resnet-SIZE/,
# size-SIZE/ (a `distill bench` folder: results.json, cells/*/{recipe.yaml,summary.json,
# metrics.jsonl}), each command's log with its device, date and commit beside it; table2
# adds teachers/deit-60000/, teachers/resnet-60000-CANDIDATE/ and table2/ (a bench folder); strong
# adds teachers/resnet-60000-e60/ and table3-strong/ (a bench folder); report
# writes data-efficiency/ (a bench folder of every size's none and token cells, with
# data_efficiency.png), curves/none-SIZE.png and summary.md.
#
# The setting is the quickstart's recipes (recipes/fmnist/*.yaml: the small DeiT, crops of
# 35-100 % and flips, smoothing 0.1, the tensor pipeline) at batch 64, without RandAugment
# and erasing: those, and mixup/cutmix, lowered the no-teacher baseline in the sweep of
# benchmarks/results/fmnist-quickstart-sweep/ (batch 64 raised it). Epochs per size:
# 2k x 120, 6k x 60, 60k x 10 (240k, 360k and 600k images seen); the teachers train as
# long, except on the full 60k (30 epochs: the issue asks for a teacher at >= 93 %).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-benchmarks/results/fmnist-study}
DISTILL=${DISTILL:-.venv/bin/distill}
PYTHON=${PYTHON:-.venv/bin/python}
TABLE3_SIZE=${TABLE3_SIZE:-6000}

epochs() {  # SIZE -> the students' epochs
  case $1 in 1000) echo 200 ;; 2000) echo 120 ;; 6000) echo 60 ;; 60000) echo 10 ;;
    *) echo "no schedule for $1 images" >&2; exit 2 ;; esac
}
teacher_epochs() {  # SIZE -> the teacher's epochs: the students', more on the full set
  [ "$1" = 60000 ] && echo 30 || epochs "$1"
}
eval_every() {  # SIZE -> epochs between evaluations: enough points to see the curve flatten
  case $1 in 1000) echo 40 ;; 2000) echo 20 ;; 6000) echo 5 ;; *) echo 1 ;; esac
}
seeds() { [ "$1" = 60000 ] && echo 0,1 || echo 0,1,2; }
limit() { [ "$1" = 60000 ] && echo null || echo "$1"; }

teacher() {  # SIZE: the convnet teacher on the first SIZE images
  local size=$1 dir=$out/teachers/resnet-$1 n
  n=$(teacher_epochs "$size")  # an unknown size stops here
  [ -f "$dir/summary.json" ] && return
  benchmarks/record.sh "$out/teachers/resnet-$size.log" -- "$DISTILL" train \
    recipes/fmnist/teacher_resnet.yaml --out "$dir" --resume \
    --set "data.train_limit=$(limit "$size")" --set "schedule.epochs=$n"
}

bench() {  # SIZE NAME LOSSES: a bench folder of LOSSES with SIZE's own teacher
  local size=$1 name=$2 losses=$3 n
  n=$(epochs "$size")  # an unknown size stops here
  teacher "$size"
  benchmarks/record.sh "$out/$name.log" -- "$DISTILL" bench recipes/fmnist/deit_token.yaml \
    --losses "$losses" --teachers "checkpoint:$out/teachers/resnet-$size" \
    --seeds "$(seeds "$size")" --cache auto --out "$out/$name" \
    --set "data.train_limit=$(limit "$size")" --set "schedule.epochs=$n" \
    --set data.batch_size=64 --set augment.auto_augment=null --set augment.re_prob=0 \
    --set "run.eval_every=$(eval_every "$size")"
}

top1() { "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["top1"])' "$1"; }

convnet_sets() {  # NAME -> the --set arguments of Table 2's convnet candidate NAME
  # In the order tried: 1 and 2 epochs at the recipe's batch 128 (81.08, 86.30 against the
  # transformer's 84.20); 1 epoch at batch 96 (more steps: 80.93); 1 epoch with a 0.1-epoch
  # warm-up instead of 0.5 (81.26); 2 epochs at width 1 (0.08M parameters instead of 0.31M:
  # 83.47, the one within 1 point).
  local a
  case $1 in
    e1) a=(schedule.epochs=1) ;;
    e2) a=(schedule.epochs=2) ;;
    e1-b96) a=(schedule.epochs=1 data.batch_size=96) ;;
    e1-wu0.1) a=(schedule.epochs=1 schedule.warmup_epochs=0.1) ;;
    e2-w1) a=(schedule.epochs=2 'student.kwargs={width: 1, stem_stride: 2}') ;;
    *) echo "no convnet candidate $1" >&2; exit 2 ;;
  esac
  printf -- '--set\n%s\n' "${a[@]}"
}

table2() {  # the paper's Table 2: which kind of teacher, at similar accuracy
  local size=$TABLE3_SIZE deit=$out/teachers/deit-60000 t conv=
  local n
  n=$(epochs "$size")
  # The transformer: the students' own DeiT (class token, no teacher) on all 60k images, as
  # the size-60000 `none` cells train it (10 epochs, batch 64, crops and flips).
  local sets=(--set data.train_limit=null --set schedule.epochs=10 --set data.batch_size=64
              --set augment.auto_augment=null --set augment.re_prob=0 --set run.eval_every=1)
  # The size-60000 `none` cell of seed 0 is that very run when its resolved recipe equals
  # this one but for `run.out`: then its files are copied instead of training it again.
  local cell=$out/size-60000/cells/none-no_teacher-deit_tiny-s0 f
  if [ ! -f "$deit/summary.json" ] && [ -f "$cell/summary.json" ] \
      && [ -f "$cell/model.safetensors" ] && [ ! -e "$deit" ] \
      && diff <("$DISTILL" recipe show recipes/fmnist/deit_none.yaml "${sets[@]}" | grep -v '^  out: ') \
              <(grep -v '^  out: ' "$cell/recipe.yaml") >/dev/null; then
    mkdir -p "$deit.tmp.$$"  # copied whole, then renamed: an interrupted copy leaves no $deit
    for f in config.json metrics.jsonl model.safetensors recipe.yaml run.json summary.json; do
      cp "$cell/$f" "$deit.tmp.$$/$f"
    done
    mv "$deit.tmp.$$" "$deit"
    echo "# $(date -u +%FT%TZ): the transformer teacher is $cell (its recipe equals" \
      "deit_none.yaml ${sets[*]} but for run.out), copied here, not trained again" \
      >> "$out/teachers/deit-60000.log"
  fi
  [ -f "$deit/summary.json" ] || benchmarks/record.sh "$out/teachers/deit-60000.log" -- \
    "$DISTILL" train recipes/fmnist/deit_none.yaml --out "$deit" --resume "${sets[@]}"
  t=$(top1 "$deit/summary.json")
  # The convnet: the teacher recipe on all 60k images with a short training, the first of
  # the candidates below whose top-1 is within 1 point of the transformer's (below or
  # above); none: stop, say so.
  local found= c name cset
  for name in e1 e2 e1-b96 e1-wu0.1 e2-w1; do
    conv=$out/teachers/resnet-60000-$name
    c=$(convnet_sets "$name")  # an assignment, so that its exit status stops the script
    mapfile -t cset <<<"$c"
    [ -f "$conv/summary.json" ] || benchmarks/record.sh "$out/teachers/resnet-60000-$name.log" \
      -- "$DISTILL" train recipes/fmnist/teacher_resnet.yaml --out "$conv" --resume \
      --set data.train_limit=null --set schedule.warmup_epochs=0.5 "${cset[@]}"
    c=$(top1 "$conv/summary.json")
    if "$PYTHON" -c 'import sys; sys.exit(abs(float(sys.argv[1]) - float(sys.argv[2])) > 1)' \
        "$c" "$t"; then found=$conv; break; fi
  done
  if [ -z "$found" ]; then
    echo "table2: no ResNet-8 candidate within 1 point of the transformer's $t" >&2
    exit 1
  fi
  echo "table2: transformer $t, convnet $c ($conv)"
  benchmarks/record.sh "$out/table2.log" -- "$DISTILL" bench recipes/fmnist/deit_token.yaml \
    --losses token --teachers "checkpoint:$deit,checkpoint:$conv" \
    --seeds 0,1,2 --cache auto --out "$out/table2" \
    --set "data.train_limit=$(limit "$size")" --set "schedule.epochs=$n" \
    --set data.batch_size=64 --set augment.auto_augment=null --set augment.re_prob=0 \
    --set "run.eval_every=$(eval_every "$size")"
}

strong() {  # Table 3's strategies with a teacher aimed at the issue's >= 93 %: the 6k teacher
  # reaches 88.76, the 60k one 92.70 in 30 epochs, so this one trains 60 epochs on all 60k
  # images; the students still see the first $TABLE3_SIZE. Not the paper's setting (its teacher
  # saw the students' data, no more): what a stronger teacher adds. `none` needs no teacher:
  # the report pairs these cells with size-$TABLE3_SIZE's.
  local size=$TABLE3_SIZE dir=$out/teachers/resnet-60000-e60 n
  n=$(epochs "$size")
  [ -f "$dir/summary.json" ] || benchmarks/record.sh "$out/teachers/resnet-60000-e60.log" -- \
    "$DISTILL" train recipes/fmnist/teacher_resnet.yaml --out "$dir" --resume \
    --set data.train_limit=null --set schedule.epochs=60 --set run.eval_every=10
  echo "strong: teacher $(top1 "$dir/summary.json") ($dir)"
  benchmarks/record.sh "$out/table3-strong.log" -- "$DISTILL" bench recipes/fmnist/deit_token.yaml \
    --losses soft,hard,token --teachers "checkpoint:$dir" \
    --seeds 0,1,2 --cache auto --out "$out/table3-strong" \
    --set "data.train_limit=$(limit "$size")" --set "schedule.epochs=$n" \
    --set data.batch_size=64 --set augment.auto_augment=null --set augment.re_prob=0 \
    --set "run.eval_every=$(eval_every "$size")"
}

case ${1:-} in
teacher) teacher "${2:?SIZE}" ;;
size) size=${2:?SIZE}
  if [ "$size" = "$TABLE3_SIZE" ]; then bench "$size" "size-$size" none,soft,hard,token
  else bench "$size" "size-$size" none,token; fi ;;
table3) bench "$TABLE3_SIZE" "size-$TABLE3_SIZE" none,soft,hard,token ;;
table2) table2 ;;
strong) strong ;;
report) "$PYTHON" benchmarks/fmnist_study_report.py --out "$out" --table3-size "$TABLE3_SIZE" ;;
*) echo "usage: $0 teacher SIZE | size SIZE | table3 | table2 | strong | report" >&2; exit 2 ;;
esac
