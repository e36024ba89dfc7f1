# Diagnostic (issue 26): deit's main.py (7e160fe, unmodified), `none` arm, with Python's `random`
# seeded too (PY_SEED=1 in shim/run_official.py; deit leaves random.seed commented out), so that
# one --seed gives one run; STUDENT=official (timm's VisionTransformer) or ours-sameinit (our
# class with timm's initial weights). Env: STUDENT, SEEDS; cells in official-pyseed-$STUDENT.
cd /work/parity && export PYTHONPATH=/work/parity:/work/deit-official/shim PY_SEED=1
git log -1 --format='deit-distill commit %H'; date -u; lscpu | grep 'Model name'; echo "OMP_NUM_THREADS=$OMP_NUM_THREADS STUDENT=$STUDENT"
O=/work/parity-out/official-pyseed-$STUDENT; mkdir -p $O
COMMON="--batch-size 128 --epochs 120 --lr 8e-3 --weight-decay 0.05 --warmup-epochs 5 --warmup-lr 1e-5
 --min-lr 1e-5 --smoothing 0.1 --mixup 0 --cutmix 0 --reprob 0.25 --remode pixel --recount 1
 --aa rand-m9-mstd0.5-inc1 --drop-path 0.0 --no-model-ema --input-size 28 --data-set CIFAR
 --data-path unused --device cpu --num_workers 0 --no-pin-mem --no-repeated-aug"
for seed in $SEEDS; do
  d=$O/none-s$seed; [ -e $d/DONE ] && continue; mkdir -p $d
  rm -f $d/checkpoint.pth $d/best_checkpoint.pth $d/log.txt $d/stdout.log
  echo "== none ($STUDENT, PY_SEED=1) seed $seed $(date -u +%FT%TZ)"; S=$(date +%s)
  .venv/bin/python /work/deit-official/shim/run_official.py $COMMON --model fmnist_deit --distillation-type none \
    --seed $seed --output_dir $d > $d/stdout.log 2>&1 || { echo failed; tail -20 $d/stdout.log; exit 1; }
  grep -m2 "^students:\|^PY_SEED" $d/stdout.log
  echo "none seed $seed: $(tail -1 $d/log.txt | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print("epoch", r["epoch"], "test_acc1", r["test_acc1"])')  ($(( $(date +%s)-S )) s)"
  touch $d/DONE
done
