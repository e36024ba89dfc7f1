SEEDS="6" bash /work/parity-out/queue/09-official.sh
