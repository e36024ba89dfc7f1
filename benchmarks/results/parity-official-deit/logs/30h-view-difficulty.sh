# The teacher's top-1 on pil's and tensor's training views, stage by stage (issue 26).
cd /work/main && export PYTHONPATH=/work/main
git log -1 --format='commit %H'; date -u; lscpu | grep 'Model name'; echo "OMP_NUM_THREADS=$OMP_NUM_THREADS"
T=/work/parity/runs/fmnist/teacher_resnet
V=".venv/bin/python benchmarks/view_difficulty.py recipes/fmnist/deit_token.yaml $T --seed 1"
echo "== crop + flip"; $V --epochs 10 --set augment.auto_augment=null --set augment.re_prob=0
echo "== crop + flip + RandAugment"; $V --epochs 10 --set augment.re_prob=0
echo "== full (crop + flip + RandAugment + erasing)"; $V --epochs 20
date -u
