SEEDS=0 bash /work/parity-out/queue/05-ours-pil-epoch.sh.inc
