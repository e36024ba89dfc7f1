cd /work/parity && export PYTHONPATH=/work/parity
git log -1 --format='commit %H'; date -u; lscpu | grep 'Model name'
.venv/bin/distill bench recipes/fmnist/deit_token.yaml --losses none,token --seeds 0,1,2,3,4,5,6,7 --no-plot \
  --out /work/parity-out/ours-tensor
