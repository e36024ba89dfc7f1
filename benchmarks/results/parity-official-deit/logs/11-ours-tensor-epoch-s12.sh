SEEDS=1,2 bash /work/parity-out/queue/10-ours-tensor-epoch.sh
