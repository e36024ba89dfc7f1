STUDENT=ours-sameinit SEEDS="5" bash /work/parity-out/queue/09d-official-pyseed.sh
