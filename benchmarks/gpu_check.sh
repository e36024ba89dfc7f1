#!/usr/bin/env bash
# Issue 24's GPU check, one prepared script that fits in 8 minutes on one H100:
#   1. the CUDA tests (pytest -m cuda);
#   2. DeiT-S⚗ bf16 training step, images/s (distill speed): no teacher, live RegNetY-16GF
#      (timm:regnety_160, pretrained=False: random weights time the same), cached;
#   3. the JPEG loader on the photo sets (benchmarks/jpeg_loader.py): the decode floor,
#      timm's loader, our pil and tensor loaders with CPU workers (data.decode full,
#      reduced) and with the JPEGs decoded on the GPU (data.decode: device), finished
#      batches on the GPU, set against the step of 2;
#   4. the cache build with RegNetY-16GF against its pure inference (the same script).
# Everything goes under OUT, 8 files at most (what the device tool brings back): each
# step's raw log (benchmarks/record.sh: command, device, date, commit, exit code),
# speed.json, jpeg-loader/results.{json,md}, and summary.md (the loaders' images/s ÷ the
# step's, the cache build ÷ inference, the device, date, command). The photo sets it builds
# go to data/gpu-check-photos (PHOTOS=DIR: use sets built already).
#
#   benchmarks/gpu_check.sh OUT                  # on the GPU machine
#   benchmarks/gpu_check.sh --dry-run OUT        # (or DRY_RUN=1) the same steps at toy
#                                                # sizes on the CPU: tests/test_gpu_check.py
#   benchmarks/gpu_check.sh --prepare            # here, where pip and the photos are
#
# The GPU machine has torch, torchvision, timm, typer, rich, safetensors and PyYAML but not
# pydantic, and reaches no package index. `--prepare` (run in the repository, with network)
# downloads the wheels this script installs there into .whl/ (git-ignored): pydantic,
# pydantic-core (CPython 3.12, manylinux x86-64), annotated-types, typing-inspection and
# typing-extensions at the versions installed here, and timm at ours (the machine's may be
# older); about 5 MB. It also copies the 25 source photographs of benchmarks/photo_sets.py
# (24 MB, from the Debian wallpaper packages; `make photos` installs them) into
# .photo-sources/ (git-ignored), from which this script builds smaller photo sets on the
# machine while the tests run. Then, with the device tool, carry both: carry [".whl",
# ".photo-sources"], command `benchmarks/gpu_check.sh $OUT/gpu-check`, timeout 600.
# Without .whl/, a Python that imports pydantic already is used as it is.
#
# Settings (environment): PYTHON (python3), WORKERS (loader workers: cores − 2), BATCH (256),
# PHONE_BATCH (32), IMAGENET_N (1024) and PHONE_N (64) training photos to build, COMPILE
# (0: eager; 1 adds torch.compile to the step, several minutes more).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
dry=${DRY_RUN:-0}
prepare=0
args_given="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1; shift ;;
    --prepare) prepare=1; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d'; exit 0 ;;
    -*) echo "error: unknown option '$1' (options: --dry-run, --prepare)" >&2; exit 2 ;;
    *) break ;;
  esac
done
py=${PYTHON:-python3}

if [ "$prepare" = 1 ]; then
  [ -x .venv/bin/python ] && py=${PYTHON:-.venv/bin/python}
  versions=$("$py" - <<'EOF'
import importlib.metadata as m
names = ["pydantic", "pydantic-core", "annotated-types", "typing-inspection", "typing-extensions",
         "timm"]
print(" ".join(f"{n}=={m.version(n)}" for n in names))
EOF
) || { echo "error: $py lacks one of pydantic, pydantic-core, annotated-types, typing-inspection, typing-extensions, timm" >&2; exit 2; }
  mkdir -p .whl
  # shellcheck disable=SC2086  # one argument per requirement
  "$py" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d .whl $versions || exit 1
  "$py" - <<'EOF' || exit 1
import shutil, sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
from photo_sets import SOURCES
for package, path in SOURCES:
    if not Path(path).is_file():
        sys.exit(f"error: {path}: not found; run `make photos` first (it installs {package})")
    dest = Path(".photo-sources") / path.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, dest)
EOF
  echo "prepared: .whl/ ($(ls .whl | wc -l) wheels, $(du -sh .whl | cut -f1)) and .photo-sources/ ($(du -sh .photo-sources | cut -f1))"
  exit 0
fi

out=${1:?usage: benchmarks/gpu_check.sh [--dry-run] OUT | --prepare}
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)

# pydantic (and the rest of .whl/) where this Python lacks it
if ! "$py" -c "import pydantic" 2>/dev/null; then
  if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "error: $py cannot import pydantic and .whl/ holds no wheels: run benchmarks/gpu_check.sh --prepare where pip can download, and carry .whl" >&2
    exit 2
  fi
  site=${TMPDIR:-/tmp}/gpu-check-site
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" .whl/*.whl || exit 2
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
cores=$(nproc)
if [ "$dry" != 1 ] && ! "$py" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  echo "error: no CUDA device here (benchmarks/gpu_check.sh --dry-run runs the steps on the CPU)" >&2
  exit 2
fi
if [ "$dry" = 1 ]; then  # toy sizes, on the CPU: the same steps, in seconds
  export CUDA_VISIBLE_DEVICES=""
  workers=${WORKERS:-0}; batch=${BATCH:-4}; phone_batch=${PHONE_BATCH:-4}
  imagenet_n=${IMAGENET_N:-12}; phone_n=${PHONE_N:-10}
  speed_recipe=recipes/smoke.yaml  # its tiny teacher stands in for RegNetY-16GF
  speed_args=(--set run.device=cpu --batch-size 4 --steps 1 --repeats 1 --warmup 0)
  loader_args=(--rounds 1 --batches 1 --phone-batches 1 --warmup 0 --set data.img_size=32
               --set run.device=cpu --teacher timm:test_resnet --set teacher.input_size=32
               --cache-images 8 --cache-recipe recipes/imagenet/deit_tiny_token.yaml)
  limits=(60 120 120)
else
  workers=${WORKERS:-$(( cores > 3 ? cores - 2 : 1 ))}; batch=${BATCH:-256}
  phone_batch=${PHONE_BATCH:-32}; imagenet_n=${IMAGENET_N:-1024}; phone_n=${PHONE_N:-64}
  speed_recipe=recipes/bench/deit_small_regnety_synthetic.yaml  # timm:regnety_160, random
  compile=false; [ "${COMPILE:-0}" = 1 ] && compile=true
  speed_args=(--student deit_small_distilled_patch16_224 --set "run.compile=$compile"
              --steps 20 --repeats 3 --warmup 5)
  loader_args=(--rounds 1 --batches 4 --phone-batches 4 --warmup 1 --teacher timm:regnety_160
               --cache-images "$imagenet_n" --cache-recipe recipes/imagenet/deit_small_token.yaml)
  limits=(150 150 200)
fi
# the photo sets: not under OUT (thousands of files; OUT keeps to 8)
photos=${PHOTOS:-data/gpu-check-photos$([ "$dry" = 1 ] && echo -dry)}
failed=()
step() {  # NAME LIMIT COMMAND...: recorded, time-limited; a failure is noted, the rest runs
  local name=$1 limit=$2 start=$SECONDS; shift 2
  echo "== $name (at most ${limit}s)"
  "$here/record.sh" "$out/$name.log" -- timeout "$limit" "$@" || failed+=("$name")
  tail -n 3 "$out/$name.log"
  echo "   $name: $((SECONDS - start))s"
}

# the photo sets, built while the tests and the step run (unless PHOTOS has them)
build_pid=
if [ ! -d "$photos/imagenet/train" ] || [ ! -d "$photos/phone/train" ]; then
  sources=()
  [ -d .photo-sources ] && sources=(--sources-root .photo-sources)
  "$here/record.sh" "$out/photos.log" -- "$py" benchmarks/photo_sets.py --out "$photos" \
    --imagenet "$imagenet_n" --phone "$phone_n" "${sources[@]}" &
  build_pid=$!
fi

mapfile -t cuda_tests < <(grep -l "pytest.mark.cuda" tests/test_*.py)
step cuda-tests "${limits[0]}" "$py" -m pytest -q -m cuda -p no:cacheprovider "${cuda_tests[@]}"
step speed "${limits[1]}" "$py" -m distill speed "$speed_recipe" --arms none,live,cache \
  "${speed_args[@]}" --out "$out/speed.json"
if [ -n "$build_pid" ]; then
  wait "$build_pid" || failed+=(photos)
fi
step jpeg-loader "${limits[2]}" "$py" benchmarks/jpeg_loader.py --photos "$photos" \
  --out "$out/jpeg-loader" --parts loader,cache --workers "$workers" --batch-size "$batch" \
  --phone-batch-size "$phone_batch" --cache-pipelines tensor \
  --arms decode_pil,decode_tv,timm,pil,tensor_full,tensor_reduced,tensor_device "${loader_args[@]}"

"$py" - "$out" "$dry" "benchmarks/gpu_check.sh $args_given" <<'EOF' || failed+=(summary)
"""summary.md: the step's images/s per arm, each loader's ÷ the step's, the cache build."""
import datetime, json, subprocess, sys
from pathlib import Path

out, dry, command = Path(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
speed = json.loads((out / "speed.json").read_text()) if (out / "speed.json").is_file() else {}
loader_file = out / "jpeg-loader" / "results.json"
loader = json.loads(loader_file.read_text()) if loader_file.is_file() else {}
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=20).stdout.strip()
except (OSError, subprocess.SubprocessError):
    gpu = ""
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                        text=True).stdout.strip()
lines = ["# GPU check (issue 24)" + (" — DRY RUN: toy sizes on the CPU, no figure to keep" if dry else ""),
         "", f"- command: `{command}`",
         f"- device: {gpu or 'no GPU'}; {loader.get('setting', {}).get('device', '')}",
         f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
         f"- commit: {commit}", ""]
arms = speed.get("arms", {})
step = (arms.get("none") or {}).get("images_per_s")
lines += ["## Training step (distill speed)", "",
          f"{speed.get('student', '?')}, batch {speed.get('batch_size', '?')}, "
          f"{speed.get('device', {}).get('precision', '?')}, compile {speed.get('compile', '?')}",
          "", "| arm | images/s | step ms | peak MB |", "|---|---|---|---|"]
def fmt(value, digits=1):
    return "" if value is None else f"{value:.{digits}f}"


for name, arm in arms.items():
    rate = arm.get("images_per_s")
    lines.append(f"| {name} | {fmt(rate) or arm.get('skipped', '')} | {fmt(arm.get('step_ms'))} "
                 f"| {fmt(arm.get('peak_mem_mb'), 0)} |")
lines += ["", "## JPEG loaders against the step (no teacher)", "",
          "| set | arm | images/s | ÷ step | images per CPU-second |", "|---|---|---|---|---|"]
for photo_set, got in loader.get("loader", {}).get("median", {}).items():
    for name, v in got.items():
        ratio = f"{v['images_per_s'] / step:.2f}" if step else ""
        lines.append(f"| {photo_set} | {name} | {v['images_per_s']:.1f} | {ratio} | "
                     f"{fmt(v['images_per_cpu_s'])} |")
for photo_set, why in loader.get("loader", {}).get("skipped", {}).items():
    for name, reason in why.items():
        lines.append(f"| {photo_set} | {name} | skipped: {reason} | | |")
cache = loader.get("cache", {})
lines += ["", f"## Cache build against the teacher's inference ({cache.get('teacher', '?')})", "",
          "| pipeline | build images/s | pure inference images/s | ÷ |", "|---|---|---|---|"]
for p, m in cache.get("median", {}).items():
    lines.append(f"| {p} | {m['build_images_per_s']:.1f} | {m['pure_inference_images_per_s']:.1f} "
                 f"| {m['build_vs_pure']:.2f} |")
text = "\n".join(lines) + "\n"
tmp = out / ".summary.md.tmp"
tmp.write_text(text)
tmp.replace(out / "summary.md")
print(text)
EOF

if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]} (see their logs in $out)" >&2
  exit 1
fi
echo "done: $out/summary.md"
