SEEDS="5" ARMS=token bash /work/parity-out/queue/09-official.sh
