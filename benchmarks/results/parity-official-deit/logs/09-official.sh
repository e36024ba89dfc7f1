# The official DeiT code (facebookresearch/deit 7e160fe, unmodified) through the shims of
# /work/deit-official/shim/run_official.py, on the quickstart setting; 3 seeds x {none, hard}.
cd /work/parity && export PYTHONPATH=/work/parity:/work/deit-official/shim
git log -1 --format='deit-distill commit %H'; date -u; lscpu | grep 'Model name'
O=/work/parity-out/official; mkdir -p $O
.venv/bin/python /work/deit-official/shim/teacher_check.py runs/fmnist/teacher_resnet $O/teacher.pth || exit 1
COMMON="--batch-size 128 --epochs 120 --lr 8e-3 --weight-decay 0.05 --warmup-epochs 5 --warmup-lr 1e-5
 --min-lr 1e-5 --smoothing 0.1 --mixup 0 --cutmix 0 --reprob 0.25 --remode pixel --recount 1
 --aa rand-m9-mstd0.5-inc1 --drop-path 0.0 --no-model-ema --input-size 28 --data-set CIFAR
 --data-path unused --device cpu --num_workers 0 --no-pin-mem --no-repeated-aug"
for seed in ${SEEDS:-1 2}; do
  for arm in ${ARMS:-none token}; do
    d=$O/$arm-s$seed; [ -e $d/DONE ] && continue; mkdir -p $d
    if [ $arm = none ]; then A="--model fmnist_deit --distillation-type none"
    else A="--model fmnist_deit_distilled --distillation-type hard --distillation-alpha 0.5
      --distillation-tau 1.0 --teacher-model fmnist_resnet8 --teacher-path $O/teacher.pth"; fi
    rm -f $d/checkpoint.pth $d/best_checkpoint.pth $d/log.txt $d/stdout.log  # a stopped cell starts again
    echo "== $arm seed $seed $(date -u +%FT%TZ)"
    S=$(date +%s)
    .venv/bin/python /work/deit-official/shim/run_official.py $COMMON $A --seed $seed --output_dir $d > $d/stdout.log 2>&1 || { echo failed; tail -20 $d/stdout.log; exit 1; }
    echo "$arm seed $seed: $(tail -1 $d/log.txt | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print("epoch", r["epoch"], "test_acc1", r["test_acc1"])')  ($(( $(date +%s)-S )) s)"
    touch $d/DONE
  done
done
