# Issue 25's benchmark on a machine running nothing else.
cd /work/main && git log -1 --format='commit %H'; date -u
.venv/bin/python benchmarks/shards_speed.py --photos data/photos/imagenet --out benchmarks/results/shards-speed-cpu --work /tmp/shards-bench
