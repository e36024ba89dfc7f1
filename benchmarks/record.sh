#!/usr/bin/env bash
# Run a command and keep its raw output with where, when and how it ran:
#   benchmarks/record.sh OUT.log -- COMMAND [ARGS...]
# OUT.log starts with `# command:`, `# device:`, `# date:` and `# commit:` lines, then the
# command's stdout and stderr; its exit code is recorded last and returned. A log that
# exists is appended to (a resumed part of a long run keeps the earlier parts' output).
set -uo pipefail
out=$1; shift
[ "${1:-}" = "--" ] && shift
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  device="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), $(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) CPU cores"
else
  device="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) cores, no GPU"
fi
mkdir -p "$(dirname "$out")"
{
  echo "# command: $*"
  echo "# device: $device"
  echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# commit: $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
} >> "$out"
"$@" >> "$out" 2>&1
code=$?
echo "# exit code: $code" >> "$out"
exit $code
