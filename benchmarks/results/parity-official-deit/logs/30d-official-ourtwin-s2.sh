SEEDS="2" bash /work/parity-out/queue/09b-official-ourtwin.sh
