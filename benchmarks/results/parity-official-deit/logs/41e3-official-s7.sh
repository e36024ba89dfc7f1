SEEDS="7" bash /work/parity-out/queue/09-official.sh
