cd /work/parity && export PYTHONPATH=/work/parity
git log -1 --format='commit %H'; date -u; lscpu | grep 'Model name'
.venv/bin/distill bench recipes/fmnist/deit_token.yaml --losses none,token --seeds 0,1,2 --no-plot \
  --set schedule.step=epoch --set data.pipeline=pil --out /work/parity-out/ours-pil-epoch
