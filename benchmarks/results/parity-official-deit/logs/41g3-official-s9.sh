SEEDS="9" bash /work/parity-out/queue/09-official.sh
