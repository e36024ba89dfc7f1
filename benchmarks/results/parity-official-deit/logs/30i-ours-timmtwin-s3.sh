# Ablation (issue 26): OUR loop training timm's VisionTransformer as the twin (pil, LR per epoch: the official setting)
cd /work/parity && export PYTHONPATH=/work/parity
git log -1 --format='commit %H'; date -u; lscpu | grep 'Model name'; echo "OMP_NUM_THREADS=$OMP_NUM_THREADS"
.venv/bin/distill train recipes/fmnist/deit_none.yaml --student timm:vit_tiny_patch16_224 \
  --set "student.kwargs={patch_size: 7, embed_dim: 128, depth: 4, num_heads: 4}" \
  --set data.pipeline=pil --set schedule.step=epoch --set run.seed=3 \
  --out /work/parity-out/ours-timmtwin/cells/none-timm_vit-s3
