echo "OMP_NUM_THREADS=$OMP_NUM_THREADS"
SEEDS="5" bash /work/parity-out/queue/09-official.sh
