SEEDS="3 4 5 6 7" bash /work/parity-out/queue/04-official.sh
