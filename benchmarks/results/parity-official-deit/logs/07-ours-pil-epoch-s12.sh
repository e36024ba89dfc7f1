SEEDS=1,2 bash /work/parity-out/queue/05-ours-pil-epoch.sh.inc
