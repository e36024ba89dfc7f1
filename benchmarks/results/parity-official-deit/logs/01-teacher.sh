cd /work/parity && export PYTHONPATH=/work/parity
git log -1 --format='commit %H'; date -u; lscpu | grep 'Model name'
.venv/bin/distill train recipes/fmnist/teacher_resnet.yaml --resume
