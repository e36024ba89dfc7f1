cd /work/parity && export PYTHONPATH=/work/parity
git log -1 --format='commit %H'; date -u; lscpu | grep 'Model name'; echo "OMP_NUM_THREADS=$OMP_NUM_THREADS"
.venv/bin/distill bench recipes/fmnist/deit_token.yaml --losses none,token --seeds 9 --no-plot --set data.pipeline=pil \
  --out /work/parity-out/ours-pil
