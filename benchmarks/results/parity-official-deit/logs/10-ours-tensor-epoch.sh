cd /work/parity && export PYTHONPATH=/work/parity
git log -1 --format='commit %H'; date -u; lscpu | grep 'Model name'
.venv/bin/distill bench recipes/fmnist/deit_token.yaml --losses none,token --seeds ${SEEDS:-0} --no-plot \
  --set schedule.step=epoch --out /work/parity-out/ours-tensor-epoch
