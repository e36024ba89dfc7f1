SEEDS="0" bash /work/parity-out/queue/09b-official-ourtwin.sh
