#!/usr/bin/env bash
# The quickstart's three runs, 2 epochs each, from two trees: are the weights bitwise equal?
set -e
for tag in old new; do
  if [ $tag = old ]; then T=/work/parity; else T=/work/main; fi
  cd $T; export PYTHONPATH=$T; O=/tmp/qcheck/$tag; rm -rf $O
  git log -1 --format="$tag: %H"
  .venv/bin/distill train recipes/fmnist/teacher_resnet.yaml --set schedule.epochs=2 --set schedule.warmup_epochs=1 --out $O/teacher > $O.teacher.log 2>&1
  .venv/bin/distill train recipes/fmnist/deit_token.yaml --set schedule.epochs=2 --set schedule.warmup_epochs=1 --teacher checkpoint:/work/parity/runs/fmnist/teacher_resnet --out $O/token > $O.token.log 2>&1
  .venv/bin/distill train recipes/fmnist/deit_none.yaml --set schedule.epochs=2 --set schedule.warmup_epochs=1 --out $O/none > $O.none.log 2>&1
done
for r in teacher token none; do
  echo "$r: $(sha256sum /tmp/qcheck/old/$r/model.safetensors | cut -c1-16) $(sha256sum /tmp/qcheck/new/$r/model.safetensors | cut -c1-16)  top1 $(python3 -c "import json;print(json.load(open('/tmp/qcheck/old/$r/summary.json')).get('top1'))") $(python3 -c "import json;print(json.load(open('/tmp/qcheck/new/$r/summary.json')).get('top1'))")"
done
