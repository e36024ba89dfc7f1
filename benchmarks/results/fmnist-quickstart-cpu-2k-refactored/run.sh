# The quickstart's three runs (make quickstart's distill commands) from a fresh clone of main,
# with main's .venv (the clone's own code first on the path), to compare with the
# 7de3b41+schedule.step figures of this machine: teacher 85.94, DeiT⚗ s0 76.82, twin s0 72.60.
set -e
rm -rf /work/qs-clone; git clone -q /work/main /work/qs-clone; cd /work/qs-clone
ln -s /work/main/.venv .venv; export PYTHONPATH=/work/qs-clone
git log -1 --format='commit %H'; date -u; lscpu | grep 'Model name'
L=/work/parity-out/quickstart-main; mkdir -p $L
S=$(date +%s)
benchmarks/record.sh $L/teacher_resnet.log -- .venv/bin/distill train recipes/fmnist/teacher_resnet.yaml --resume
benchmarks/record.sh $L/deit_token.log -- .venv/bin/distill train recipes/fmnist/deit_token.yaml --resume
benchmarks/record.sh $L/deit_none.log -- .venv/bin/distill train recipes/fmnist/deit_none.yaml --resume
benchmarks/record.sh $L/report.log -- .venv/bin/distill report runs/fmnist/teacher_resnet runs/fmnist/deit_token runs/fmnist/deit_none
echo "all: $(( $(date +%s)-S )) s"
for r in teacher_resnet deit_token deit_none; do cp runs/fmnist/$r/summary.json $L/$r.summary.json; cp runs/fmnist/$r/metrics.jsonl $L/$r.metrics.jsonl; done
