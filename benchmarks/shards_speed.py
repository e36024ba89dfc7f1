"""The ImageNet-shaped photo set read from its folder and from tar shards; `distill data pack`.

Issue 25, item 8. On the photo set `benchmarks/photo_sets.py` builds (`--imagenet N`: JPEGs of
500×375 / 375×500, ImageNet's usual sizes, in `train/<class>/`, `val/<class>/`):

1. `pack`: `distill data pack PHOTOS --out SHARDS --shard-size S --quiet`, run as a command
   (a fresh interpreter, as a user runs it) into a new folder each round: the command's
   seconds and CPU seconds (user + system, from the kernel's accounting of the finished
   child; both include the interpreter's start-up), and the packing's own seconds as the
   command reports them, with the images/s and MB/s of shards written that they give.
2. `loader`: the training loader of `recipes/imagenet/deit_tiny_none.yaml` (DeiT's
   augmentation: RandomResizedCrop 0.08-1 at 224, flip, RandAugment rand-m9-mstd0.5-inc1,
   colour jitter off under RandAugment as timm does, pixel erasing 0.25; mixup/cutmix are
   drawn on the batch in the main process and are left out here; repeated augmentation 1, as
   a stream requires, on both sources), with `--workers` loader workers and `--batch-size`,
   for each `--pipelines` (`pil`: finished batches; `tensor`: the worker's uint8 crops and
   their parameters, the device's batched augmentation excluded: it is the same for both
   sources), reading `data.name: imagefolder` (the folder) and `data.name: webdataset` (the
   shards of part 1). Arms alternate within each round; each arm is timed over `--batches`
   batches after one untimed batch (workers started, first files opened). Reported:
   images/s (wall clock) and images per CPU-second of this process and its loader workers
   (user + system from /proc, the "per core" figure: it does not depend on how many cores a
   busy machine left free, nor on an idle worker), medians over `--rounds`.

`results.json` (every round, the command, device, date and commit) and `results.md` go to
--out. The figures are the machine's: record them with the command, device and date.

    python benchmarks/shards_speed.py --photos data/photos/imagenet --out benchmarks/results/shards-speed-cpu
    python benchmarks/shards_speed.py --photos /work/photos/imagenet --out /tmp/ss \
        --rounds 1 --batches 2 --batch-size 4 --workers 1 --shard-size 8     # a smoke run
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.procstat import tree_cpu  # noqa: E402
from distill.recipe import load_recipe  # noqa: E402

RECIPE = ROOT / "recipes" / "imagenet" / "deit_tiny_none.yaml"
SOURCES = ("folder", "shards")


# -- the parts -----------------------------------------------------------------------------
def pack_once(photos: Path, out: Path, shard_size: int) -> dict[str, float]:
    """`distill data pack` as a command into `out` (new): wall and CPU seconds, sizes."""
    cmd = [sys.executable, "-m", "distill", "data", "pack", str(photos), "--out", str(out),
           "--shard-size", str(shard_size), "--quiet"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"distill data pack failed: {done.stderr.strip()}")
    info = json.loads((out / "_info.json").read_text())
    images = sum(s["num_samples"] for s in info["splits"].values())
    size = sum(p.stat().st_size for p in out.glob("*.tar"))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    found = re.search(r"shards written in ([0-9.]+) s", done.stdout)  # the pack, no start-up
    packing = float(found.group(1)) if found and float(found.group(1)) > 0 else wall
    return {"images": images, "bytes": size, "wall_s": wall, "cpu_s": cpu, "pack_s": packing,
            "images_per_s": images / packing, "mb_per_s": size / packing / 1e6,
            "images_per_cpu_s": images / cpu if cpu > 0 else float("nan")}


def loader_recipe(source: str, photos: Path, shards: Path, pipeline: str, batch: int,
                  workers: int) -> Any:
    root = photos if source == "folder" else shards
    name = "imagefolder" if source == "folder" else "webdataset"
    classes = len([p for p in (photos / "train").iterdir() if p.is_dir()])
    return load_recipe(RECIPE, [f"data.name={name}", f"data.root={root}", "data.options={}",
                                f"data.num_classes={classes}", f"data.batch_size={batch}",
                                f"data.num_workers={workers}", f"data.pipeline={pipeline}",
                                "augment.repeated_aug=1", "augment.mixup=0.0",
                                "augment.cutmix=0.0"])


def time_loader(recipe: Any, batches: int, epoch: int) -> dict[str, float]:
    """One untimed batch, then `batches` timed ones, from epoch `epoch` of the loader."""
    from distill.data import build_data

    data = build_data(recipe.data, recipe.augment, recipe.run.seed)
    steps = len(data.train_loader)
    if steps < batches + 1:
        raise SystemExit(f"{recipe.data.root}: {steps} batches of {recipe.data.batch_size} "
                         f"per epoch; --batches {batches} needs {batches + 1}")
    it = data.epoch(epoch)
    next(it)
    cpu0, t0 = tree_cpu(), time.perf_counter()
    images = 0
    for _ in range(batches):
        images += len(next(it).labels)
    wall, cpu = time.perf_counter() - t0, tree_cpu() - cpu0
    del it, data
    return {"images": images, "wall_s": wall, "cpu_s": cpu, "images_per_s": images / wall,
            "images_per_cpu_s": images / cpu if cpu > 0 else float("nan")}


def device() -> str:
    model = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs (this process may use {len(os.sched_getaffinity(0))})"


def commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "distill"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (out + ("+uncommitted" if dirty else "")) or None


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def markdown(doc: dict[str, Any]) -> str:
    lines = [f"# Shards against the folder ({doc['date']})", "",
             f"Command: `{doc['command']}`  ", f"Device: {doc['device']}  ",
             f"Commit: {doc['commit']}", "", "## `distill data pack`", "",
             "| images | MB | seconds (the command) | seconds (packing, as it reports) | "
             "images/s (packing) | MB/s (packing) | images per CPU-second (the command) |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    p = doc["pack"]
    if p:
        lines.append(f"| {p[0]['images']} | {p[0]['bytes'] / 1e6:.1f} | "
                     f"{median(p, 'wall_s'):.2f} | {median(p, 'pack_s'):.1f} | "
                     f"{median(p, 'images_per_s'):.1f} | "
                     f"{median(p, 'mb_per_s'):.1f} | {median(p, 'images_per_cpu_s'):.1f} |")
    lines += ["", f"## The training loader ({doc['args']['workers']} workers, batch "
              f"{doc['args']['batch_size']}, {doc['args']['batches']} batches per round, "
              f"medians of {doc['args']['rounds']} rounds)", "",
              "| pipeline | source | images/s | images per CPU-second | shards ÷ folder (per CPU-second) |",
              "|---|---|---:|---:|---:|"]
    for pipeline, arms in doc["loader"].items():
        per_cpu = {s: median(rows, "images_per_cpu_s") for s, rows in arms.items() if rows}
        for source, rows in arms.items():
            if not rows:
                continue
            ratio = (f"{per_cpu['shards'] / per_cpu['folder']:.2f}"
                     if source == "shards" and "folder" in per_cpu else "")
            lines.append(f"| {pipeline} | {source} | {median(rows, 'images_per_s'):.1f} | "
                         f"{per_cpu[source]:.1f} | {ratio} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, required=True,
                    help="the ImageNet-shaped photo set (train/<class>/, val/<class>/)")
    ap.add_argument("--out", type=Path, required=True, help="results folder")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shard-size", type=int, default=1000)
    ap.add_argument("--pipelines", default="pil,tensor")
    ap.add_argument("--work", type=Path, default=None,
                    help="where the shards are written (default: a temporary folder)")
    args = ap.parse_args(argv)
    photos = args.photos.resolve()
    if not (photos / "train").is_dir():
        raise SystemExit(f"{photos}: no train/ folder (build it: python benchmarks/"
                         "photo_sets.py --out DIR --imagenet N --phone 0)")
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="shards-speed-", dir=args.work))
    doc: dict[str, Any] = {
        "command": shlex.join([sys.executable.rsplit("/", 1)[-1], *sys.argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device(), "commit": commit(), "args": {k: str(v) if isinstance(v, Path)
                                                         else v for k, v in vars(args).items()},
        "pack": [], "loader": {p: {s: [] for s in SOURCES}
                               for p in args.pipelines.split(",")}}
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        shards = work / "shards-0"
        for r in range(args.rounds):
            target = work / f"shards-{r}"
            doc["pack"].append(pack_once(photos, target, args.shard_size))
            if r:
                shutil.rmtree(target)
            print(f"pack round {r}: {doc['pack'][-1]['wall_s']:.2f} s", flush=True)
        for r in range(args.rounds):
            for pipeline, arms in doc["loader"].items():
                order = SOURCES if r % 2 == 0 else SOURCES[::-1]
                for source in order:
                    recipe = loader_recipe(source, photos, shards, pipeline, args.batch_size,
                                           args.workers)
                    arms[source].append(time_loader(recipe, args.batches, epoch=r))
                    row = arms[source][-1]
                    print(f"loader round {r} {pipeline} {source}: "
                          f"{row['images_per_s']:.1f} img/s, "
                          f"{row['images_per_cpu_s']:.1f} img/CPU-s", flush=True)
        (args.out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
        (args.out / "results.md").write_text(markdown(doc))
        print(markdown(doc))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
