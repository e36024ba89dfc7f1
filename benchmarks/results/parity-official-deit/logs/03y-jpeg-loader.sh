# Issue 24's benchmark on a machine running nothing else (the study's runs wait).
cd /work/main && git log -1 --format='commit %H'; date -u
.venv/bin/python benchmarks/jpeg_loader.py --photos data/photos --out benchmarks/results/jpeg-loader-cpu
